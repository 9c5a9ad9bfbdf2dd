import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Frame } from '@tracker-cluster/protocol';
import { err, ok, tokenize } from '@tracker-cluster/protocol';
import type { Connection } from '../net/connection.js';
import type { Reply } from '../services.js';
import type { ChangeLog, CommittedBatch } from '../state/change-log.js';
import type { LogStore } from '../store/log-store.js';
import { LINK_MAX_PAYLOAD, NONCE, SYNC_VERSION, checkProof, newNonce, proof } from './auth.js';
import type { ClusterPosition } from '../state/cluster-id.js';
import { CLUSTER_ID_KEY, describePosition, replicaOfAnotherCluster } from '../state/cluster-id.js';

/** Changes per SYNC:CHANGES frame, and bytes: well inside the default 1 MiB frame. */
const MAX_CHANGES_PER_FRAME = 1000;
const MAX_FRAME_TEXT = 512 * 1024;
/** Committed change texts a link keeps in memory to send; past this (a slow replica) it reads them back from the log. */
const MAX_RECENT_CHANGES = 10_000;
/** An idle link still carries an empty SYNC:CHANGES this often (and the replica an ACK), so each side can tell a dead peer. */
export const HEARTBEAT_MS = 5000;
/** No frame from the other tracker for this long (three heartbeats) means it is gone, on either side of a link. */
export const LINK_SILENCE_MS = 3 * HEARTBEAT_MS;

/** Runs a request a replica forwarded, as the given session; resolves to the answer. */
/** `origin` names the client connection for the per-connection limits (`Request.origin`). */
export type ForwardRunner = (session: bigint, payload: Buffer, origin: string) => Promise<Reply>;

/** Extends a session on behalf of the replica, where it was used. */
export type TouchRunner = (sessionKey: string, expires: number) => void;

export interface SyncServerDeps {
  secret: string;
  runTouch: TouchRunner;
  /** Runs writes forwarded by the replica (docs/protocol.md §6). */
  runForwarded: ForwardRunner;
  /** semi-sync: writers are answered once the replica acknowledged, or after `syncTimeoutMs`. */
  syncMode: 'semi-sync' | 'async';
  syncTimeoutMs: number;
  logStore: LogStore;
  log: ChangeLog;
  logger: Logger;
  /**
   * A replica showed a higher epoch than ours: this primary is stale and must
   * stop acting as one. `kept` is the last of our changes the new primary
   * holds, when it said so (a replica promoted while linked to us).
   */
  onHigherEpoch: (epoch: number, kept?: number) => void;
  /** A snapshot is being sent to a replica (metrics). */
  onSnapshotSent?: () => void;
}

/** Bytes of snapshot per SYNC:SNAPCHUNK frame. */
export const SNAPSHOT_CHUNK = 512 * 1024;

/**
 * The primary's end of the SYNC: link (docs/protocol.md §6): the handshake on
 * any connection, then, once a replica has proved it knows the secret, a
 * stream of the committed log to it. One replica link at a time: a new one
 * replaces the old.
 */
export class SyncServer {
  private readonly deps: SyncServerDeps;
  private readonly log: Logger;
  /** Our nonce and the replica's, per connection between HELLO and AUTH. */
  private readonly challenges = new Map<number, { mine: string; theirs: string }>();
  private link: PrimaryLink | undefined;
  /**
   * Writers waiting for the replica's acknowledgement, by the last seq of
   * their batch (ascending), with the time past which the replica is late
   * (Infinity: a shutdown flush, which has its own timer).
   */
  private waiters: Array<{ seq: number; resolve: () => void; deadline: number }> = [];
  /** One timer for every waiter (not one per batch): it fires at the earliest deadline. */
  private ackTimer: NodeJS.Timeout | undefined;
  /**
   * No connected, caught-up replica: writes are answered after the local
   * commit alone. Set when the link is lost or an acknowledgement times out;
   * cleared when the replica has acknowledged everything committed.
   */
  private degraded = true;
  /** Snapshots sent since start (a metric). */
  snapshotsSent = 0;

  constructor(deps: SyncServerDeps) {
    this.deps = deps;
    this.log = deps.logger.child({ component: 'sync' });
  }

  /** Answers a SYNC: payload that arrived on an ordinary (not yet upgraded) connection. */
  handle(connection: Connection, frame: Frame): Reply {
    let words: string[];
    try {
      words = tokenize(frame.payload.toString('utf8'));
    } catch {
      return { payload: err('FORBIDDEN', 'malformed SYNC: message'), session: 0n };
    }
    const [command, ...args] = words;
    const name = (command ?? '').toUpperCase();
    if (name === 'SYNC:HELLO') return this.hello(connection, args);
    if (name === 'SYNC:AUTH') return this.auth(connection, args);
    return { payload: err('FORBIDDEN', 'SYNC: messages are only accepted on an authenticated tracker link'), session: 0n };
  }

  /**
   * A batch was committed: ship it, and in semi-sync mode return what its
   * writers must wait for.
   */
  onCommitted(batch: CommittedBatch): Promise<void> | undefined {
    const seq = (batch.changes[batch.changes.length - 1] as { seq: number }).seq;
    this.link?.offer((batch.changes[0] as { seq: number }).seq, batch.texts);
    if (this.deps.syncMode !== 'semi-sync' || this.degraded || !this.link) return undefined;
    return new Promise((resolve) => {
      this.waiters.push({ seq, resolve, deadline: Date.now() + this.deps.syncTimeoutMs });
      if (this.ackTimer === undefined) this.armAckTimer();
    });
  }

  /** Arms the timer for the earliest deadline of the waiters; when it passes unacknowledged, degrade. */
  private armAckTimer(): void {
    let earliest = Infinity;
    for (const w of this.waiters) if (w.deadline < earliest) earliest = w.deadline;
    if (earliest === Infinity) return;
    this.ackTimer = setTimeout(
      () => {
        this.ackTimer = undefined;
        const now = Date.now();
        const late = this.waiters.find((w) => w.deadline <= now);
        if (late) this.degrade(`the replica did not acknowledge seq ${late.seq} within ${this.deps.syncTimeoutMs} ms`);
        else this.armAckTimer();
      },
      Math.max(0, earliest - Date.now()),
    );
    this.ackTimer.unref();
  }

  /**
   * Graceful stop: ships everything committed and waits, until `deadline`
   * (ms since the epoch) at the latest, for the replica to acknowledge it
   * (PROTOCOL.md §6: flush the SyncQueue).
   */
  async flush(deadline: number): Promise<void> {
    const link = this.link;
    if (!link) return;
    link.pump();
    const target = this.deps.log.committed;
    if (link.ackedSeq >= target) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
      timer.unref();
      this.waiters.push({
        seq: target,
        deadline: Infinity,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      this.waiters.sort((a, b) => a.seq - b.seq);
    });
    if (link.ackedSeq < target) {
      this.log.warn(
        { acked: link.ackedSeq, committed: target, syncTimeoutMs: this.deps.syncTimeoutMs },
        `stopping before the replica acknowledged everything: it acknowledged seq ${link.ackedSeq} of ${target} within --sync-timeout-ms (${this.deps.syncTimeoutMs} ms) of the stop; it resumes from there when it reconnects`,
      );
    }
  }

  /** The replica acknowledged everything up to `seq`. */
  onAck(seq: number): void {
    while (this.waiters.length > 0 && (this.waiters[0] as { seq: number }).seq <= seq) (this.waiters.shift() as { resolve: () => void }).resolve();
    if (this.degraded && seq >= this.deps.log.committed && this.deps.syncMode === 'semi-sync') {
      this.degraded = false;
      this.log.info({ seq }, 'replica caught up: writes wait for its acknowledgement again (semi-sync)');
    }
  }

  status(): { replica: 'connected' | 'disconnected'; replica_seq: number; replica_lag: number; degraded: 0 | 1 } {
    const acked = this.link ? this.link.ackedSeq : this.lastAcked;
    return {
      replica: this.link ? 'connected' : 'disconnected',
      replica_seq: acked,
      replica_lag: Math.max(0, this.deps.log.committed - acked),
      // Degraded is semi-sync's word: async never waits for the replica, so it never falls short of it.
      degraded: this.deps.syncMode === 'semi-sync' && this.degraded ? 1 : 0,
    };
  }

  /** The SyncQueue for metrics: committed changes not yet sent to the replica, and writers waiting for its ack. */
  queueDepth(): { unsent: number; waiting: number } {
    const sent = this.link ? this.link.sentSeq : this.lastAcked;
    return { unsent: Math.max(0, this.deps.log.committed - sent), waiting: this.waiters.length };
  }

  /** Stops waiting for the replica: every waiting writer is answered now. */
  private degrade(reason: string): void {
    if (!this.degraded && this.deps.syncMode === 'semi-sync') this.log.warn({ reason }, 'degraded: answering writes without the replica (semi-sync suspended)');
    this.degraded = true;
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w.resolve();
  }

  /** The lowest seq the replica link may still need from the log, when one is connected (retention keeps what follows). */
  neededAfter(): number | undefined {
    return this.link?.neededAfter;
  }

  forget(connection: Connection): void {
    // A replica checks our proof before it sends its own: with another secret it hangs up here, and says so only in its log.
    if (this.challenges.delete(connection.id)) {
      this.log.warn({ remote: connection.remote }, 'tracker link closed during its handshake (a replica with another secret?)');
    }
  }

  /** Stops serving the link. Writers still waiting for the replica are released: their batches' fate is the change log's to decide. */
  close(): void {
    if (this.ackTimer !== undefined) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w.resolve();
    this.link?.close();
  }

  /** The replica we stream to was promoted (`SYNC:PROMOTED`): step down, keeping what it holds. */
  private onPromoted(connection: Connection, epoch: number, kept: number): void {
    if (!(epoch > this.deps.log.epoch)) {
      this.log.warn({ remote: connection.remote, epoch, ours: this.deps.log.epoch }, 'SYNC:PROMOTED without a higher epoch; closing the link');
      connection.destroy();
      return;
    }
    this.log.error({ remote: connection.remote, epoch, kept }, 'the replica was promoted: this tracker is no longer the primary');
    this.deps.onHigherEpoch(epoch, kept);
  }

  private lastAcked = 0;

  private hello(connection: Connection, args: string[]): Reply {
    const [version, theirs] = args;
    if (args.length !== 2) return { payload: err('FORBIDDEN', 'usage: SYNC:HELLO <version> <nonce: 32 hex digits>'), session: 0n };
    if (version !== SYNC_VERSION) {
      connection.closeAfterAnswer();
      return { payload: err('PROTOCOL', `unsupported SYNC link version ${String(version)}; this tracker speaks ${SYNC_VERSION}`), session: 0n };
    }
    if (!NONCE.test(theirs as string)) return { payload: err('FORBIDDEN', 'malformed nonce: 32 hex digits expected'), session: 0n };
    const mine = newNonce();
    this.challenges.set(connection.id, { mine, theirs: theirs as string });
    return { payload: ok(`SYNC:CHALLENGE ${mine} ${proof(this.deps.secret, 'primary', theirs as string, mine)}`), session: 0n };
  }

  private auth(connection: Connection, args: string[]): Reply {
    const challenge = this.challenges.get(connection.id);
    this.challenges.delete(connection.id);
    const [received, history, epochText, seqText, hash, theirCluster] = args;
    if (!challenge || args.length < 5 || args.length > 6 || !checkProof(this.deps.secret, 'replica', challenge.mine, challenge.theirs, received as string)) {
      this.log.warn({ remote: connection.remote }, 'tracker link refused: authentication failed (wrong secret?)');
      connection.closeAfterAnswer();
      return { payload: err('FORBIDDEN', 'authentication failed'), session: 0n };
    }
    const { logStore, log } = this.deps;
    const ours = log.state.getMeta('history_id') ?? '';
    const cluster = log.state.getMeta(CLUSTER_ID_KEY);
    const mine: ClusterPosition = { cluster, seq: log.seq };
    const theirs: ClusterPosition = { cluster: theirCluster, seq: Number(seqText) };
    // Before the epoch: a stranger with a higher epoch must not fence this primary, nor one with data be overwritten.
    if (replicaOfAnotherCluster(mine, theirs)) {
      this.log.error(
        { remote: connection.remote },
        `tracker link refused: the replica holds another cluster's data (${describePosition(theirs)}; this primary: ${describePosition(mine)}); it is not overwritten`,
      );
      connection.closeAfterAnswer();
      return {
        payload: err(
          'FORBIDDEN',
          `this primary is of another cluster (${describePosition(mine)}; yours: ${describePosition(theirs)}): your data is not overwritten. Start the replica on an empty --db to follow this primary, or check the primary's --db`,
        ),
        session: 0n,
      };
    }
    const theirEpoch = Number(epochText);
    if (Number.isSafeInteger(theirEpoch) && theirEpoch > log.epoch) {
      this.log.error({ remote: connection.remote, ours: log.epoch, theirs: theirEpoch }, 'a tracker with a higher epoch dialled in: this primary is stale');
      connection.closeAfterAnswer();
      this.deps.onHigherEpoch(theirEpoch);
      return { payload: err('FORBIDDEN', `this tracker's epoch ${log.epoch} is older than yours (${theirEpoch}): it is no longer the primary`), session: 0n };
    }
    const seq = Number(seqText);
    // The replica's history is a prefix of ours when we hold its position with the same hash; then the
    // log streams from there. Otherwise (too old for our log, or a tail we never had) it gets a snapshot.
    const held = Number.isSafeInteger(seq) && seq >= 0 && seq <= log.committed ? logStore.hashAt(seq) : undefined;
    let from = seq;
    let answer: string;
    let snapshot: Buffer | undefined;
    if (held !== undefined && held === hash) {
      answer = `SYNC:STREAM ${ours} ${log.epoch} ${seq + 1}${cluster ? ` ${cluster}` : ''}`;
    } else {
      const snap = log.snapshot();
      snapshot = snap.image;
      from = snap.position.seq;
      const digest = createHash('sha256').update(snap.image).digest('hex');
      answer = `SYNC:SNAPSHOT ${ours} ${snap.epoch} ${from} ${snap.position.hash} ${snap.image.length} ${digest}`;
      this.snapshotsSent++;
      this.deps.onSnapshotSent?.();
      const why = held === undefined ? (seq > log.committed ? 'it is ahead of this primary' : 'the log no longer reaches back to it') : 'its history differs';
      this.log.warn({ remote: connection.remote, history, seq, snapshotSeq: from, bytes: snap.image.length }, `sending a snapshot to the replica: ${why}`);
    }
    this.link?.close();
    const link = new PrimaryLink(
      connection,
      log,
      this.log,
      from,
      { acked: (acked) => this.onAck(acked), promoted: (epoch, kept) => this.onPromoted(connection, epoch, kept) },
      this.deps.runForwarded,
      this.deps.runTouch,
      snapshot,
    );
    this.link = link;
    // The replica acknowledges at least every heartbeat: a short --idle-timeout must not cut the link between two.
    connection.upgrade((frame) => link.onFrame(frame), { maxPayload: LINK_MAX_PAYLOAD, minIdleMs: LINK_SILENCE_MS });
    void connection.closed.then(() => {
      this.lastAcked = link.ackedSeq;
      if (this.link === link) {
        this.link = undefined;
        this.degrade('the replica link was lost');
      }
      link.close();
      if (link.snapshotPending) {
        this.log.warn({ remote: connection.remote, snapshotSeq: from }, 'replica link closed before the replica installed its snapshot; it gets another when it comes back');
      } else {
        this.log.info({ remote: connection.remote, acked: link.ackedSeq }, 'replica link closed');
      }
    });
    // Streaming starts once this answer has been written. A replica that is
    // already caught up counts as having acknowledged where it stands; one
    // that gets a snapshot acknowledges once it has installed it.
    setImmediate(() => link.pump());
    if (!snapshot) this.onAck(seq);
    this.log.info({ remote: connection.remote, from: from + 1 }, 'replica link authenticated; streaming');
    return { payload: ok(answer), session: 0n };
  }
}

/** One authenticated replica: what it has been sent and what it has acknowledged. */
class PrimaryLink {
  ackedSeq: number;
  /** The link began with a snapshot that the replica has not acknowledged yet (it acknowledges once installed). */
  snapshotPending: boolean;
  private nextSeq: number;
  /** The last seq sent on this link (metrics: the SyncQueue's depth). */
  get sentSeq(): number {
    return this.nextSeq - 1;
  }
  private waitingForDrain = false;
  private closed = false;
  private lastSent = Date.now();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly connection: Connection,
    private readonly log: ChangeLog,
    private readonly logger: Logger,
    replicaSeq: number,
    private readonly replica: { acked: (seq: number) => void; promoted: (epoch: number, kept: number) => void },
    private readonly runForwarded: ForwardRunner,
    private readonly runTouch: TouchRunner,
    /** A snapshot to send before the changes after `replicaSeq`. */
    private snapshot?: Buffer,
  ) {
    this.ackedSeq = snapshot ? 0 : replicaSeq;
    this.snapshotPending = snapshot !== undefined;
    this.nextSeq = replicaSeq + 1;
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastSent >= HEARTBEAT_MS) this.send(`SYNC:CHANGES ${this.nextSeq} 0`);
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** Sends committed log rows from `nextSeq` until caught up or the socket is backed up. */
  pump(): void {
    if (this.closed || this.waitingForDrain) return;
    if (this.snapshot && !this.sendSnapshot()) return;
    while (this.nextSeq <= this.log.committed) {
      const texts = this.fromRecent() ?? this.fromLog();
      if (texts.length === 0) {
        this.logger.error({ seq: this.nextSeq }, 'log row missing for the replica; closing the link');
        this.connection.destroy();
        return;
      }
      const ready = this.send(`SYNC:CHANGES ${this.nextSeq} ${texts.length}\n${texts.join('\n')}`);
      this.nextSeq += texts.length;
      if (!ready) {
        this.waitForDrain();
        return;
      }
    }
  }

  /** The next texts to send from `nextSeq`, read from the log file. */
  private fromLog(): string[] {
    const rows = this.log.entriesAfter(this.nextSeq - 1, MAX_CHANGES_PER_FRAME);
    const texts: string[] = [];
    let bytes = 0;
    for (const row of rows) {
      if (row.seq > this.log.committed || (texts.length > 0 && bytes + row.change.length > MAX_FRAME_TEXT)) break;
      texts.push(row.change);
      bytes += row.change.length + 1;
    }
    return texts;
  }

  /** Sends the snapshot's chunks, `SYNC:SNAPCHUNK <offset>` and raw bytes; false while the socket is backed up. */
  private sendSnapshot(): boolean {
    const image = this.snapshot as Buffer;
    while (this.snapshotOffset < image.length) {
      const chunk = image.subarray(this.snapshotOffset, this.snapshotOffset + SNAPSHOT_CHUNK);
      const ready = this.send(Buffer.concat([Buffer.from(`SYNC:SNAPCHUNK ${this.snapshotOffset}\n`), chunk]));
      this.snapshotOffset += chunk.length;
      if (!ready) {
        this.waitForDrain();
        return false;
      }
    }
    this.snapshot = undefined; // sent: let it be collected
    return true;
  }

  private snapshotOffset = 0;

  /**
   * Committed batches' texts not yet sent (oldest first), so that shipping a
   * batch does not read back from the log file the rows just committed.
   */
  private recent: Array<{ first: number; texts: string[] }> = [];
  private recentChanges = 0;

  /** A batch from `first` was committed: keep its texts for sending, and send. */
  offer(first: number, texts: string[]): void {
    if (this.closed) return;
    if (this.recentChanges + texts.length > MAX_RECENT_CHANGES) {
      // The replica is not keeping up: let the log file hold what waits.
      this.recent = [];
      this.recentChanges = 0;
    }
    this.recent.push({ first, texts });
    this.recentChanges += texts.length;
    this.pump();
  }

  /** The next texts to send from `nextSeq`, out of the batches in memory; undefined when they do not hold it. */
  private fromRecent(): string[] | undefined {
    for (;;) {
      const head = this.recent[0];
      if (head === undefined) return undefined;
      if (head.first + head.texts.length > this.nextSeq) break;
      this.recent.shift(); // already sent (or read from the log)
      this.recentChanges -= head.texts.length;
    }
    const head = this.recent[0] as { first: number; texts: string[] };
    if (head.first > this.nextSeq) return undefined;
    const texts: string[] = [];
    let bytes = 0;
    for (let i = this.nextSeq - head.first; i < head.texts.length && texts.length < MAX_CHANGES_PER_FRAME; i++) {
      const text = head.texts[i] as string;
      if (texts.length > 0 && bytes + text.length > MAX_FRAME_TEXT) break;
      texts.push(text);
      bytes += text.length + 1;
    }
    return texts;
  }

  private waitForDrain(): void {
    this.waitingForDrain = true;
    this.connection.onDrain(() => {
      this.waitingForDrain = false;
      this.pump();
    });
  }

  /** The lowest seq this link may still need from the log (retention keeps the rows after it). */
  get neededAfter(): number {
    return Math.min(this.ackedSeq, this.nextSeq - 1);
  }

  onFrame(frame: Frame): void {
    const text = frame.payload.toString('utf8');
    if (text.startsWith('SYNC:FORWARD ')) {
      this.onForward(text);
      return;
    }
    const touch = /^SYNC:TOUCH (\d{1,20}) (\d{1,16})$/.exec(text);
    if (touch) {
      this.runTouch(touch[1] as string, Number(touch[2]));
      return;
    }
    const promoted = /^SYNC:PROMOTED (\d{1,15}) (\d{1,15})$/.exec(text);
    if (promoted) {
      this.replica.promoted(Number(promoted[1]), Number(promoted[2]));
      return;
    }
    const m = /^SYNC:ACK (\d{1,15})$/.exec(text);
    if (!m) {
      this.logger.warn({ message: text.slice(0, 80) }, 'unexpected message on the replica link; closing it');
      this.connection.destroy();
      return;
    }
    const acked = Number(m[1]);
    if (acked > this.sentSeq) {
      // An honest replica acknowledges only what it was sent: believing more would answer semi-sync writes it never had.
      this.logger.warn({ acked, sent: this.sentSeq }, 'the replica acknowledged changes this link never sent; closing it');
      this.connection.destroy();
      return;
    }
    this.ackedSeq = Math.max(this.ackedSeq, acked);
    this.snapshotPending = false;
    this.replica.acked(this.ackedSeq);
  }

  /**
   * `SYNC:FORWARD <id> <session> <origin>` and the client's request line: run
   * it as that session, answer `SYNC:RESULT <id> <seq> <session>` and the
   * answer, where `seq` is committed here and covers the request's change.
   * `origin` is the replica's connection id of the client: failed logins are
   * counted per client connection, not once for every client of the replica.
   */
  private onForward(text: string): void {
    const nl = text.indexOf('\n');
    const head = /^SYNC:FORWARD (\d+) (\d+) (\d+)$/.exec(nl < 0 ? text : text.slice(0, nl));
    if (!head || nl < 0) {
      this.logger.warn({ message: text.slice(0, 80) }, 'malformed SYNC:FORWARD; closing the link');
      this.connection.destroy();
      return;
    }
    const id = head[1] as string;
    const origin = `${this.connection.id}/${head[3] as string}`;
    void this.runForwarded(BigInt(head[2] as string), Buffer.from(text.slice(nl + 1), 'utf8'), origin).then((reply) =>
      this.send(`SYNC:RESULT ${id} ${this.log.committed} ${reply.session ?? 0n}\n${reply.payload}`),
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.recent = [];
    clearInterval(this.heartbeat);
    this.connection.destroy();
  }

  private send(payload: string | Buffer): boolean {
    this.lastSent = Date.now();
    return this.connection.push(payload);
  }
}
