import { createHash, randomBytes } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Frame, HostPort } from '@tracker-cluster/protocol';
import { FrameDecoder, TrackerError, counted, encodeFrame, formatHostPort } from '@tracker-cluster/protocol';
import type { Reply } from '../services.js';
import type { ChangeLog } from '../state/change-log.js';
import { decodeChange } from '../state/changes.js';
import { checkSnapshotFileInWorker } from '../store/snapshot-check.js';
import { LINK_MAX_PAYLOAD, NONCE, SYNC_VERSION, checkProof, newNonce, proof } from './auth.js';
import { CLUSTER_ID_KEY } from '../state/cluster-id.js';
import { HEARTBEAT_MS, LINK_SILENCE_MS } from './primary-link.js';

/** The link's state; every transition is logged. */
export type LinkState =
  | { kind: 'idle' }
  | { kind: 'connecting'; attempt: number }
  | { kind: 'handshaking' }
  /** Receiving and installing a snapshot (the primary's log did not reach back to ours, or ours diverged). */
  | { kind: 'snapshot'; seq: number; bytes: number }
  | { kind: 'streaming'; since: number }
  | { kind: 'waiting'; delayMs: number; reason: string }
  | { kind: 'stopped' };

export interface ReplicaLinkDeps {
  primary: HostPort;
  secret: string;
  /** Where a snapshot from the primary is received before it is installed (beside the state file). */
  snapshotPath: string;
  log: ChangeLog;
  logger: Logger;
  /** A snapshot install begins, succeeds or fails: the state is not one to serve from meanwhile (readiness, metrics). */
  onSnapshot?: (phase: 'installing' | 'installed' | 'failed') => void;
  /** How to reach the primary; a TCP connection unless a test says otherwise. */
  dial?: (to: HostPort) => Duplex;
  /** The link streams again: send the touches it could not carry meanwhile. */
  onStreaming?: () => void;
}

const BACKOFF_START_MS = 100;
const BACKOFF_MAX_MS = 5000;
/** Longest wait for a forwarded write's answer, and then for its change to arrive here. */
export const FORWARD_TIMEOUT_MS = 10_000;
/**
 * Longest wait of a write for a link being set up (connecting, handshaking):
 * a client that writes just after the replica's ready line, or during a
 * reconnect, is not refused for the link's few milliseconds of set-up.
 */
const LINK_SETUP_WAIT_MS = 3000;
/** Room for the SYNC:FORWARD header inside the link's frame limit. */
const FORWARD_HEADER_ROOM = 64;

/** A snapshot being received: where it goes, what it must add up to, and the position it is stamped with. */
interface IncomingSnapshot {
  path: string;
  fd: number;
  received: number;
  bytes: number;
  sha256: string;
  hasher: Hash;
  history: string;
  epoch: number;
  seq: number;
  hash: string;
}

interface PendingForward {
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

interface AwaitingApply {
  seq: number;
  reply: Reply;
  resolve: (reply: Reply) => void;
  timer: NodeJS.Timeout;
}

/**
 * The replica's end of the SYNC: link (docs/protocol.md §6): dial the
 * primary, prove the secret and check the primary's proof, say where our log
 * stands, then apply the stream in order through our own change log and
 * acknowledge what is durable. Any fault closes the link; it comes back with
 * backoff and resumes from what is applied.
 */
export class ReplicaLink {
  private readonly deps: ReplicaLinkDeps;
  private readonly log: Logger;
  private state: LinkState = { kind: 'idle' };
  private socket: Duplex | undefined;
  private retry: NodeJS.Timeout | undefined;
  private silence: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private attempt = 0;
  private nextForwardId = 0;
  /** Forwarded writes waiting for the primary's answer, by id. */
  private readonly forwards = new Map<number, PendingForward>();
  /** Answered writes waiting for their change to be applied here (read-your-writes). */
  private awaiting: AwaitingApply[] = [];
  private incoming: IncomingSnapshot | undefined;
  /** Called at the link's next change of state (writes waiting for its set-up). */
  private stateWaiters: Array<() => void> = [];
  /** Frames that arrived while a snapshot was being installed, handled after it. */
  private queued: string[] | undefined;
  /** Snapshots installed since start (a metric). */
  snapshotsInstalled = 0;
  /** Touches sent and not yet seen come back, so a busy session sends one, not one per request. */
  private readonly touched = new Map<string, number>();

  constructor(deps: ReplicaLinkDeps) {
    this.deps = deps;
    this.log = deps.logger.child({ component: 'replica-link', primary: formatHostPort(deps.primary) });
  }

  get connected(): boolean {
    return this.state.kind === 'streaming';
  }

  get current(): LinkState {
    return this.state;
  }

  start(): void {
    if (this.state.kind === 'idle') this.connect();
  }

  stop(): void {
    this.setState({ kind: 'stopped' });
    if (this.retry) clearTimeout(this.retry);
    this.teardown();
    for (const a of this.awaiting) {
      clearTimeout(a.timer);
      a.resolve(a.reply);
    }
    this.awaiting = [];
  }

  /**
   * Stops following the primary for a promotion, keeping the socket for one
   * last message. `tell` sends `SYNC:PROMOTED <epoch> <kept>` (this tracker
   * is primary now, and holds the old history up to `kept`) and closes the
   * link, so that the old primary steps down at once instead of answering
   * writes nobody will keep (docs/protocol.md §6); `drop` closes it without
   * a word (the promotion failed). One of them must be called. Nothing the
   * primary sends is applied or acknowledged after this call. Undefined when
   * the link is not streaming: there is no primary to tell.
   */
  handOver(): { tell: (epoch: number, kept: number) => void; drop: () => void } | undefined {
    const socket = this.state.kind === 'streaming' ? this.socket : undefined;
    this.socket = undefined; // the data handler ignores a socket that is not the current one
    this.stop();
    if (socket === undefined || socket.destroyed) return undefined;
    return {
      tell: (epoch, kept) => {
        socket.end(encodeFrame(0n, `SYNC:PROMOTED ${epoch} ${kept}`));
        setTimeout(() => socket.destroy(), FORWARD_TIMEOUT_MS).unref();
      },
      drop: () => socket.destroy(),
    };
  }

  /**
   * Asks the primary to extend a session used here (docs/protocol.md §6). One
   * way and best effort, like the primary's own touches. Dropped while the
   * link does not stream: the tracker keeps the extension locally and sends
   * it again when the link streams (`onStreaming`).
   */
  touch(sessionKey: string, expires: number, granularityMs: number): void {
    if (this.state.kind !== 'streaming') return;
    const sent = this.touched.get(sessionKey);
    if (sent !== undefined && expires - sent < granularityMs) return;
    if (this.touched.size >= 10_000) this.touched.clear();
    this.touched.set(sessionKey, expires);
    this.send(`SYNC:TOUCH ${sessionKey} ${expires}`);
  }

  /**
   * Has the primary run a write for a client of this replica (docs/protocol.md
   * §6), and resolves to the primary's answer once the change it made has
   * been applied here, so that the client reads its own write at once.
   */
  async forward(session: bigint, payload: Buffer, origin: string): Promise<Reply> {
    if (payload.length + FORWARD_HEADER_ROOM > LINK_MAX_PAYLOAD) {
      throw new TrackerError('BAD_REQUEST', 'request too large to forward to the primary; send it there directly');
    }
    const deadline = Date.now() + LINK_SETUP_WAIT_MS;
    while (this.settingUp() && Date.now() < deadline) await this.nextState(deadline - Date.now());
    if (this.state.kind !== 'streaming') {
      throw new TrackerError('PRIMARY_UNAVAILABLE', 'the primary cannot be reached; reads and sessions still work here');
    }
    const id = ++this.nextForwardId;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.forwards.delete(id);
        reject(new TrackerError('PRIMARY_UNAVAILABLE', `no answer from the primary within ${FORWARD_TIMEOUT_MS} ms; the write may or may not have been applied`));
      }, FORWARD_TIMEOUT_MS);
      timer.unref();
      this.forwards.set(id, { resolve, reject, timer });
      this.send(`SYNC:FORWARD ${id} ${session} ${origin}\n${payload.toString('utf8')}`);
    });
  }

  /** Connecting or handshaking: streaming, or a failure, is a moment away. */
  private settingUp(): boolean {
    return this.state.kind === 'idle' || this.state.kind === 'connecting' || this.state.kind === 'handshaking';
  }

  /** Resolves at the link's next change of state, or after `ms`. */
  private nextState(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.stateWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private setState(next: LinkState): void {
    const from = this.state.kind;
    this.state = next;
    const waiters = this.stateWaiters;
    this.stateWaiters = [];
    for (const wake of waiters) wake();
    const level = next.kind === 'waiting' ? 'warn' : 'info';
    this.log[level]({ from, to: next.kind, ...next }, `replica link: ${from} -> ${next.kind}`);
    if (next.kind === 'streaming' && from !== 'streaming') {
      // A touch sent on the last connection may have been lost with it.
      this.touched.clear();
      this.deps.onStreaming?.();
    }
  }

  private connect(): void {
    if (this.state.kind === 'stopped') return;
    this.attempt++;
    this.setState({ kind: 'connecting', attempt: this.attempt });
    // No Nagle: acknowledgements, touches and forwarded writes are small frames sent back to back, and each
    // one a writer waits for; Nagle could hold one until the primary's next data carried the TCP ACK of the last.
    const dial = this.deps.dial ?? ((to: HostPort) => net.connect({ host: to.host, port: to.port, noDelay: true }));
    const socket = dial(this.deps.primary);
    this.socket = socket;
    const decoder = new FrameDecoder({ maxPayload: LINK_MAX_PAYLOAD });
    const nonce = newNonce();
    let step: 'hello' | 'auth' | 'snapshot' | 'stream' = 'hello';
    socket.on('error', (error: Error) => this.fault(`connection error: ${error.message}`));
    socket.on('close', () => this.fault('connection closed'));
    socket.on('connect', () => {
      this.setState({ kind: 'handshaking' });
      this.send(`SYNC:HELLO ${SYNC_VERSION} ${nonce}`);
    });
    socket.on('data', (chunk: Buffer) => {
      if (socket !== this.socket) return;
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch (error) {
        this.fault(`undecodable frame from the primary: ${(error as Error).message}`);
        return;
      }
      this.armSilence();
      for (const frame of frames) {
        if (socket !== this.socket) return;
        if (step === 'snapshot') {
          step = this.onSnapshotChunk(frame.payload);
          continue;
        }
        const text = frame.payload.toString('utf8');
        if (this.queued) this.queued.push(text);
        else if (step === 'hello') step = this.onChallenge(text, nonce) ? 'auth' : step;
        else if (step === 'auth') step = this.onStream(text);
        else this.onStreamMessage(text);
      }
    });
  }

  /** `OK SYNC:CHALLENGE <nonce_p> <proof_p>`: check the primary, then tell it who we are. */
  private onChallenge(text: string, ours: string): boolean {
    const m = /^OK SYNC:CHALLENGE (\S+) (\S+)$/.exec(text);
    if (!m || !NONCE.test(m[1] as string)) return this.fault(`primary refused the handshake: ${text.slice(0, 120)}`, true);
    const theirs = m[1] as string;
    if (!checkProof(this.deps.secret, 'primary', ours, theirs, m[2] as string)) {
      return this.fault('the primary failed authentication (wrong secret?)', true);
    }
    const { log } = this.deps;
    const cluster = log.state.getMeta(CLUSTER_ID_KEY);
    this.send(
      `SYNC:AUTH ${proof(this.deps.secret, 'replica', theirs, ours)} ${log.state.getMeta('history_id') ?? '-'} ${log.epoch} ${log.seq} ${log.logHash}${cluster ? ` ${cluster}` : ''}`,
    );
    return true;
  }

  private onStreamMessage(text: string): void {
    if (text.startsWith('SYNC:RESULT ')) this.onResult(text);
    else this.onChanges(text);
  }

  /**
   * `OK SYNC:STREAM <history_id> <epoch> <from_seq>`, or
   * `OK SYNC:SNAPSHOT <history_id> <epoch> <seq> <log_hash> <bytes> <sha256>`
   * and then the snapshot's chunks, before the stream from `seq + 1`.
   */
  private onStream(text: string): 'auth' | 'snapshot' | 'stream' {
    const snap = /^OK SYNC:SNAPSHOT (\S+) (\d+) (\d+) ([0-9a-f]{64}) (\d+) ([0-9a-f]{64})$/.exec(text);
    if (snap) return this.beginSnapshot(snap) ? 'snapshot' : 'auth';
    return this.beginStream(text) ? 'stream' : 'auth';
  }

  private beginSnapshot(m: RegExpExecArray): boolean {
    const path = this.deps.snapshotPath;
    rmSync(path, { force: true });
    const snapshot: IncomingSnapshot = {
      path,
      fd: openSync(path, 'w'),
      received: 0,
      bytes: Number(m[5]),
      sha256: m[6] as string,
      hasher: createHash('sha256'),
      history: m[1] as string,
      epoch: Number(m[2]),
      seq: Number(m[3]),
      hash: m[4] as string,
    };
    this.incoming = snapshot;
    this.setState({ kind: 'snapshot', seq: snapshot.seq, bytes: snapshot.bytes });
    if (snapshot.bytes === 0) return this.fault('the primary announced an empty snapshot', true);
    return true;
  }

  /** `SYNC:SNAPCHUNK <offset>` and raw bytes, in order; the last one starts the install. */
  private onSnapshotChunk(payload: Buffer): 'snapshot' | 'stream' {
    const snapshot = this.incoming as IncomingSnapshot;
    const nl = payload.indexOf(10);
    const head = /^SYNC:SNAPCHUNK (\d+)$/.exec(payload.subarray(0, nl < 0 ? Math.min(payload.length, 64) : nl).toString('utf8'));
    if (!head || Number(head[1]) !== snapshot.received) {
      this.fault(`unexpected message during the snapshot transfer (at byte ${snapshot.received})`);
      return 'snapshot';
    }
    const bytes = payload.subarray(nl + 1);
    if (snapshot.received + bytes.length > snapshot.bytes) {
      this.fault('the snapshot is longer than announced');
      return 'snapshot';
    }
    writeSync(snapshot.fd, bytes);
    snapshot.hasher.update(bytes);
    snapshot.received += bytes.length;
    if (snapshot.received < snapshot.bytes) return 'snapshot';
    // Complete: everything after it (the stream from seq + 1) waits until it is installed.
    this.queued = [];
    void this.installSnapshot(snapshot);
    return 'stream';
  }

  private async installSnapshot(snapshot: IncomingSnapshot): Promise<void> {
    const socket = this.socket;
    this.deps.onSnapshot?.('installing');
    try {
      closeSync(snapshot.fd);
      this.incoming = undefined;
      const digest = snapshot.hasher.digest('hex');
      if (digest !== snapshot.sha256) throw new Error(`the snapshot's SHA-256 is ${digest}, not the announced ${snapshot.sha256}`);
      // Off the event loop: it reads the whole file, and clients of this replica are still answered meanwhile.
      await checkSnapshotFileInWorker(snapshot.path);
      if (this.state.kind === 'stopped') {
        // The tracker is stopping (or promoting): nothing is installed, and the link is not started again.
        this.deps.onSnapshot?.('failed');
        return;
      }
      const position = { seq: snapshot.seq, hash: snapshot.hash };
      await this.deps.log.installSnapshot(snapshot.path, position, snapshot.history, snapshot.epoch, randomBytes(8).toString('hex'));
      this.snapshotsInstalled++;
      this.deps.onSnapshot?.('installed');
      this.log.info({ seq: snapshot.seq, bytes: snapshot.bytes }, 'snapshot installed; streaming from there');
    } catch (error) {
      this.deps.onSnapshot?.('failed');
      this.queued = undefined;
      this.fault(`could not install the snapshot: ${(error as Error).message}`);
      return;
    } finally {
      rmSync(snapshot.path, { force: true });
    }
    if (socket !== this.socket) return;
    this.startStreaming();
    this.send(`SYNC:ACK ${this.deps.log.committed}`);
    const queued = this.queued ?? [];
    this.queued = undefined;
    for (const text of queued) {
      if (socket !== this.socket) return;
      this.onStreamMessage(text);
    }
  }

  private startStreaming(): void {
    this.attempt = 0;
    this.setState({ kind: 'streaming', since: Date.now() });
    this.heartbeat = setInterval(() => this.send(`SYNC:ACK ${this.deps.log.committed}`), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** `OK SYNC:STREAM <history_id> <epoch> <from_seq> [<cluster_id>]`. */
  private beginStream(text: string): boolean {
    const m = /^OK SYNC:STREAM (\S+) (\d+) (\d+)(?: ([0-9a-f]+))?$/.exec(text);
    if (!m) return this.fault(`primary refused the link: ${text.slice(0, 200)}`, true);
    const { log } = this.deps;
    const history = m[1] as string;
    const cluster = m[4] ?? log.state.getMeta(CLUSTER_ID_KEY);
    if (log.state.getMeta('history_id') !== history || log.state.getMeta(CLUSTER_ID_KEY) !== cluster) {
      // An empty replica takes the primary's history and cluster (the primary checked that we are empty, or its).
      log.adoptIdentity(history, Number(m[2]), cluster);
    }
    this.startStreaming();
    return true;
  }

  /** `SYNC:CHANGES <first_seq> <count>` and one change text a line: apply in order, ack when durable. */
  private onChanges(text: string): void {
    const nl = text.indexOf('\n');
    const head = /^SYNC:CHANGES (\d+) (\d+)$/.exec(nl < 0 ? text : text.slice(0, nl));
    if (!head) {
      this.fault(`unexpected message from the primary: ${text.slice(0, 80)}`);
      return;
    }
    const first = Number(head[1]);
    const count = Number(head[2]);
    if (count === 0) return; // heartbeat
    const lines = text.slice(nl + 1).split('\n');
    if (lines.length !== count) {
      this.fault(`SYNC:CHANGES announced ${counted(count, 'change')} and carried ${lines.length}`);
      return;
    }
    const { log } = this.deps;
    let last: Promise<void> | undefined;
    let lastSeq = 0;
    try {
      for (let i = 0; i < count; i++) {
        const seq = first + i;
        if (seq <= log.seq) continue; // already applied: a replay changes nothing
        if (seq !== log.seq + 1) {
          this.fault(`gap in the stream: got seq ${seq}, have ${log.seq}`);
          return;
        }
        const line = lines[i] as string;
        const change = decodeChange(line);
        if (change.seq !== seq) {
          this.fault(`change numbered ${change.seq} where ${seq} was announced`);
          return;
        }
        // The primary's text as received: its log row, so the hash chain cannot drift through a re-encoding.
        last = log.applyOne(change, line).durable;
        lastSeq = seq;
      }
    } catch (error) {
      this.fault(`could not apply the stream: ${(error as Error).message}`);
      return;
    }
    if (last) {
      last.then(
        () => {
          this.send(`SYNC:ACK ${lastSeq}`);
          this.releaseApplied();
        },
        (error: unknown) => this.fault(`could not store replicated changes: ${(error as Error).message}`),
      );
    }
  }

  /** `SYNC:RESULT <id> <seq> <session>` and the primary's answer to a forwarded write. */
  private onResult(text: string): void {
    const nl = text.indexOf('\n');
    const head = /^SYNC:RESULT (\d+) (\d+) (\d+)$/.exec(nl < 0 ? text : text.slice(0, nl));
    if (!head || nl < 0) {
      this.fault(`malformed SYNC:RESULT: ${text.slice(0, 80)}`);
      return;
    }
    const pending = this.forwards.get(Number(head[1]));
    if (!pending) return; // timed out already
    this.forwards.delete(Number(head[1]));
    clearTimeout(pending.timer);
    const reply: Reply = { payload: text.slice(nl + 1), session: BigInt(head[3] as string) };
    const seq = Number(head[2]);
    if (this.deps.log.committed >= seq) {
      pending.resolve(reply);
      return;
    }
    // The answer is true now; it is given once this replica shows the change. If the
    // change does not come in time (the link is down), the answer is given anyway.
    const timer = setTimeout(() => {
      this.awaiting = this.awaiting.filter((a) => a.timer !== timer);
      pending.resolve(reply);
    }, FORWARD_TIMEOUT_MS);
    timer.unref();
    this.awaiting.push({ seq, reply, resolve: pending.resolve, timer });
  }

  /** Gives forwarded answers whose changes are now durable here. */
  private releaseApplied(): void {
    const applied = this.deps.log.committed;
    const ready = this.awaiting.filter((a) => a.seq <= applied);
    if (ready.length === 0) return;
    this.awaiting = this.awaiting.filter((a) => a.seq > applied);
    for (const a of ready) {
      clearTimeout(a.timer);
      a.resolve(a.reply);
    }
  }

  private send(payload: string): void {
    const socket = this.socket;
    if (socket && !socket.destroyed) socket.write(encodeFrame(0n, payload));
  }

  private armSilence(): void {
    if (this.silence) clearTimeout(this.silence);
    this.silence = setTimeout(() => this.fault(`no word from the primary for ${LINK_SILENCE_MS} ms`), LINK_SILENCE_MS);
    this.silence.unref();
  }

  /** Drops the link and schedules the next attempt. Returns false, for the handshake steps. */
  private fault(reason: string, refused = false): false {
    if (this.state.kind === 'stopped' || this.state.kind === 'waiting') return false;
    this.teardown();
    const delayMs = refused ? BACKOFF_MAX_MS : Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** Math.max(0, this.attempt - 1));
    this.setState({ kind: 'waiting', delayMs, reason });
    this.retry = setTimeout(() => this.connect(), delayMs);
    this.retry.unref();
    return false;
  }

  private teardown(): void {
    // Writes the primary has not answered: their fate is unknown to us.
    for (const [id, pending] of this.forwards) {
      clearTimeout(pending.timer);
      pending.reject(new TrackerError('PRIMARY_UNAVAILABLE', 'the link to the primary was lost; the write may or may not have been applied'));
      this.forwards.delete(id);
    }
    if (this.incoming) {
      closeSync(this.incoming.fd);
      rmSync(this.incoming.path, { force: true });
      this.incoming = undefined;
    }
    this.queued = undefined;
    if (this.silence) clearTimeout(this.silence);
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.silence = undefined;
    this.heartbeat = undefined;
    const socket = this.socket;
    this.socket = undefined;
    socket?.destroy();
  }
}
