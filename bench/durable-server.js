// Baselines for `npm run bench`: the least a server must do to answer a
// durable write, and nothing more, so that the `write` and `repl-write`
// figures can be read against what this machine's disk and loopback allow.
//
//   node bench/durable-server.js alone FILE
//   node bench/durable-server.js replica FILE
//   node bench/durable-server.js primary FILE HOST:PORT   (HOST:PORT: a running replica)
//
// Each takes the tracker's framing and answers `create_group <name>` as the
// tracker does (`OK group created`, or `ERR GROUP_EXISTS`). Per request it does
// one Map lookup and insert and writes one JSON line to FILE; the lines that
// arrive in one event-loop turn are written with one write(2) (group commit),
// and their answers leave only after an fdatasync that began after that write
// returned: the tracker's own WalSync (store/wal-sync.ts), on libuv's thread
// pool, one at a time, the batches written while one runs sharing the next.
// There is no parsing beyond the name, no session, no validation, no SQLite,
// no hash: the tracker cannot beat these figures.
//
// `primary` adds semi-sync replication: each batch is sent to the replica as
// soon as it is written, while the primary's own fdatasync runs; the replica
// appends it, fdatasyncs, and acknowledges the highest batch on its disk; the
// primary answers a batch once both its own sync and that acknowledgement
// cover it (as the tracker's semi-sync does).
//
// Prints `durable-server ready on HOST:PORT` when it listens (port 0: any).
import fs from 'node:fs';
import net from 'node:net';
import { encodeFrame } from '@tracker-cluster/protocol';
import { WalSync } from '@tracker-cluster/tracker-core';
import { onFrames, serveUntilSignal } from './frames.js';

const CREATED = 'OK group created';
const EXISTS = 'ERR GROUP_EXISTS group already exists';

/**
 * An append-only file whose writes are made durable in the background by
 * the tracker's own WalSync (store/wal-sync.ts): `sync()` resolves once
 * everything written before the call is on disk; one fdatasync at a time,
 * and callers that arrive while one runs share the next. The file is filled
 * with zeros ahead of the writes (as PostgreSQL's `wal_init_zero` does), so
 * that an fdatasync flushes data only: on a file that grows, each one must
 * also commit the new size to the filesystem's journal.
 */
class DurableFile {
  static CHUNK = 64 * 1024 * 1024;

  constructor(file) {
    this.fd = fs.openSync(file, 'w', 0o600);
    this.length = 0;
    this.zeroed = 0;
    this.zeroAhead(1);
    this.syncer = new WalSync(file);
  }

  append(text) {
    const data = Buffer.from(text, 'utf8');
    if (this.length + data.length > this.zeroed) this.zeroAhead(Math.ceil((this.length + data.length - this.zeroed) / DurableFile.CHUNK));
    fs.writeSync(this.fd, data, 0, data.length, this.length);
    this.length += data.length;
  }

  zeroAhead(chunks) {
    const zeros = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < chunks * DurableFile.CHUNK; i += zeros.length) fs.writeSync(this.fd, zeros, 0, zeros.length, this.zeroed + i);
    this.zeroed += chunks * DurableFile.CHUNK;
    fs.fsyncSync(this.fd);
  }

  sync() {
    return this.syncer.sync();
  }
}

/** A server answering `create_group`; `commitBatch(text)` makes a batch durable (resolves when it may be answered). */
function serveWrites(commitBatch, onFatal) {
  const groups = new Map();
  let lines = [];
  let answers = [];
  let scheduled = false;

  const flush = () => {
    scheduled = false;
    const text = lines.join('');
    const batch = answers;
    lines = [];
    answers = [];
    commitBatch(text).then(() => {
      for (const [socket, frame] of batch) if (!socket.destroyed) socket.write(frame);
    }, onFatal);
  };

  return net.createServer({ noDelay: true }, (socket) => {
    onFrames(socket, (frames) => {
      for (const { session, payload } of frames) {
        const name = payload.toString('utf8').split(' ')[1] ?? '';
        if (groups.has(name)) {
          // Nothing to write, but answered with its batch: never before an earlier request of this connection.
          answers.push([socket, encodeFrame(session, EXISTS)]);
        } else {
          groups.set(name, { owner: String(session), members: [String(session)] });
          lines.push(`${JSON.stringify({ type: 'group_created', group: name, owner: String(session) })}\n`);
          answers.push([socket, encodeFrame(session, CREATED)]);
        }
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      }
    });
  });
}

function alone(file) {
  const log = new DurableFile(file);
  return serveWrites(
    (text) => {
      log.append(text);
      return log.sync();
    },
    fatal,
  );
}

function replica(file) {
  const log = new DurableFile(file);
  return net.createServer({ noDelay: true }, (link) => {
    onFrames(link, (frames) => {
      let last = 0;
      for (const { payload } of frames) {
        const text = payload.toString('utf8');
        const newline = text.indexOf('\n');
        log.append(text.slice(newline + 1));
        last = Number(text.slice(0, newline));
      }
      if (last > 0) log.sync().then(() => link.write(encodeFrame(0n, `ACK ${last}`)), fatal);
    });
  });
}

async function primary(file, replicaAddress) {
  const log = new DurableFile(file);
  const [host, port] = splitAddress(replicaAddress);
  const link = await new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true }, () => resolve(socket));
    socket.once('error', reject);
  });
  let batchId = 0;
  let acked = 0;
  const waiting = new Map(); // batch id → resolve, for batches not yet acknowledged
  onFrames(link, (frames) => {
    for (const { payload } of frames) acked = Math.max(acked, Number(payload.toString('utf8').split(' ')[1]));
    for (const [id, resolve] of waiting) {
      if (id > acked) break;
      waiting.delete(id);
      resolve();
    }
  });
  link.on('close', () => fatal(new Error('the replica closed the link')));
  return serveWrites((text) => {
    const id = ++batchId;
    log.append(text);
    const ack = new Promise((resolve) => waiting.set(id, resolve));
    link.write(encodeFrame(0n, `${id}\n${text}`));
    return Promise.all([log.sync(), ack]);
  }, fatal);
}

function splitAddress(text) {
  const at = text.lastIndexOf(':');
  const port = Number(text.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`bad address "${text}": expected HOST:PORT`);
  return [text.slice(0, at), port];
}

function fatal(err) {
  process.stderr.write(`durable-server: ${err?.stack ?? err}\n`);
  process.exit(1);
}

async function main() {
  const [role, file, replicaAddress] = process.argv.slice(2);
  const usage = 'usage: durable-server.js alone|replica FILE | primary FILE HOST:PORT';
  if (!file || !['alone', 'replica', 'primary'].includes(role) || (role === 'primary') !== (replicaAddress !== undefined)) throw new Error(usage);
  const server = role === 'alone' ? alone(file) : role === 'replica' ? replica(file) : await primary(file, replicaAddress);
  serveUntilSignal(server, 'durable-server');
}

main().catch(fatal);
