/**
 * Helpers for the file-sharing tests: real `tracker-client` processes, real
 * files, and a small in-test fake peer that speaks the peer protocol
 * (docs/protocol.md "Peer protocol") — to hold only some pieces, or to
 * serve corrupt bytes, without any test hook in the client.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { encodeFrame, FrameDecoder } from '@tracker-cluster/protocol';
import { childEnv, ROOT } from './tracker.js';
import type { TeardownHost } from './tracker.js';
import { connect, waitFor } from './wire.js';
import type { WireClient } from './wire.js';
import { send, signUp } from './commands.js';

export const CLIENT_BIN = path.join(ROOT, 'packages/client/bin/tracker-client.js');

export interface SpawnedClient {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with stdout once it matches `re` (deadline `ms`). */
  waitOut(re: RegExp, ms?: number): Promise<string>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts a client; killed (if still running) and awaited in teardown. */
export function spawnClient(t: TeardownHost, args: string[], cwd: string): SpawnedClient {
  const proc = spawn(process.execPath, [CLIENT_BIN, ...args], { cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
  proc.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('close', (code, signal) => resolve({ code, signal }));
  });
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    await exited;
  };
  t.teardown(() => kill());
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    kill,
    waitOut: (re, ms = 30_000) =>
      waitFor(() => (re.test(out) ? out : undefined), { timeoutMs: ms, message: `${re} in client output:\n${out}\n${err}` }),
  };
}

/** Runs a client to its exit (deadline `ms`); its output and status. */
export async function runClient(
  t: TeardownHost,
  args: string[],
  cwd: string,
  ms = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const c = spawnClient(t, args, cwd);
  const status = await Promise.race([
    c.exited,
    new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms).unref()),
  ]);
  if (!status) {
    await c.kill();
    throw new Error(`client ${args.join(' ')} still running after ${ms} ms:\n${c.stdout()}\n${c.stderr()}`);
  }
  return { code: status.code, stdout: c.stdout(), stderr: c.stderr() };
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function sha256OfFile(file: string): Promise<string> {
  return sha256(await readFile(file));
}

/** Writes `size` random bytes to `dir/name`; returns them. */
export async function makeFile(dir: string, name: string, size: number): Promise<Buffer> {
  const data = randomBytes(size);
  await writeFile(path.join(dir, name), data);
  return data;
}

/** Piece hashes as `upload_file` wants them. */
export function pieceHashes(data: Buffer, pieceSize: number): string[] {
  const hashes: string[] = [];
  for (let at = 0; at < data.length; at += pieceSize) hashes.push(sha256(data.subarray(at, at + pieceSize)));
  return hashes;
}

/**
 * A group with an owner and members (each `<user>-pw`), made over a raw
 * connection; returns the owner's raw connection and session.
 */
export async function makeGroup(t: TeardownHost, port: number, group: string, owner: string, members: string[]): Promise<{ c: WireClient; session: bigint }> {
  const c = await connect(port);
  t.teardown(() => c.close());
  const session = await signUp(c, owner);
  await send(c, ['create_group', group], session);
  for (const m of members) {
    const ms = await signUp(c, m);
    await send(c, ['join_group', group], ms);
    const answer = await send(c, ['accept_request', group, m], session);
    if (!answer.payload.startsWith('OK')) throw new Error(`accept ${m}: ${answer.payload}`);
  }
  return { c, session };
}

export interface FakePeer {
  port: number;
  address: string;
  /** PIECE requests answered with bytes. */
  served(): number;
  close(): Promise<void>;
}

/**
 * A peer that holds `data` (only pieces for which `holds(i)`), answering
 * HAVE and PIECE; with `corrupt`, every piece's bytes are wrong.
 */
export async function fakePeer(
  t: TeardownHost,
  opts: { group: string; data: Buffer; pieceSize: number; holds?: (i: number) => boolean; corrupt?: boolean },
): Promise<FakePeer> {
  const { group, data, pieceSize } = opts;
  const holds = opts.holds ?? ((): boolean => true);
  const sha = sha256(data);
  const pieces = Math.ceil(data.length / pieceSize);
  let served = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const decoder = new FrameDecoder({ maxPayload: 4096 });
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        const words = frame.payload.toString('utf8').split(' ');
        if (words[1] !== group || words[2] !== sha) {
          socket.write(encodeFrame(0n, 'ERR NO_SUCH_FILE not here'));
        } else if (words[0] === 'HAVE') {
          const bits = Buffer.alloc(Math.ceil(pieces / 8));
          for (let i = 0; i < pieces; i++) if (holds(i)) bits[i >> 3] = (bits[i >> 3] as number) | (0x80 >> (i & 7));
          socket.write(encodeFrame(0n, `OK ${pieces} ${bits.toString('hex')}`));
        } else {
          const index = Number(words[3]);
          if (!holds(index)) {
            socket.write(encodeFrame(0n, 'ERR NO_SUCH_PIECE no'));
            continue;
          }
          const bytes = Buffer.from(data.subarray(index * pieceSize, (index + 1) * pieceSize));
          if (opts.corrupt) bytes[0] = (bytes[0] as number) ^ 0xff;
          served++;
          socket.write(encodeFrame(0n, Buffer.concat([Buffer.from(`OK ${index} ${bytes.length}\n`), bytes])));
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const close = async (): Promise<void> => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  t.teardown(close);
  return { port, address: `127.0.0.1:${port}`, served: () => served, close };
}

/** Registers a fake peer as a seeder of `data` under `file`, for the raw session's user. */
export async function announceFake(c: WireClient, session: bigint, group: string, file: string, data: Buffer, pieceSize: number, peer: FakePeer): Promise<void> {
  const hashes = pieceHashes(data, pieceSize);
  const answer = await send(
    c,
    ['upload_file', group, file, String(data.length), sha256(data), String(pieceSize), peer.address, hashes.length > 0 ? hashes.join(',') : '-'],
    session,
  );
  if (!answer.payload.startsWith('OK shared')) throw new Error(`upload_file: ${answer.payload}`);
}

/** Verified pieces recorded in a download's `.part.json` (0 when there is none yet). */
export async function sidecarPieces(destDir: string, file: string): Promise<number> {
  try {
    const state = JSON.parse(await readFile(path.join(destDir, `.${file}.part.json`), 'utf8')) as { have: string };
    let n = 0;
    for (const byte of Buffer.from(state.have, 'hex')) for (let b = byte; b > 0; b >>= 1) n += b & 1;
    return n;
  } catch {
    return 0;
  }
}
