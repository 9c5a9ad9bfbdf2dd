import { constants } from 'node:fs';
import { link, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { formatHostPort } from '@tracker-cluster/protocol';
import { backoffDelay } from '../backoff.js';
import { Bitfield } from './bitfield.js';
import { checkWorkingFilesFree, inspectWorkingFiles, lockWorkingFiles, lstatOrUndefined, partPath, removeDownloadState, saveDownloadState, thisProcess } from './download-state.js';
import type { FilePeers } from './file-peers.js';
import { otherPeerCount } from './file-peers.js';
import type { DownloadView } from './format.js';
import { noPeerReason, stallReason } from './format.js';
import { PieceBufferPool } from './frame-reader.js';
import { PeerConnection } from './peer-connection.js';
import { PiecePicker } from './picker.js';
import { PieceSink } from './piece-sink.js';
import { pieceCount, pieceLength } from './pieces.js';
import type { ServedFile } from './share-table.js';
import { PeerAnswerError, PIECE_HEADER_ROOM } from './wire.js';

export interface DownloadTuning {
  /** Piece requests outstanding per peer (pipelining). Default 8. */
  pipeline: number;
  /** Peers downloaded from at once. Default 8. */
  maxPeers: number;
  /** No verified piece for this long fails the download, peers connected or not. Default 60 s. */
  stallTimeoutMs: number;
  /**
   * No peer connected for this long fails the download: the tracker lists
   * nobody else, or every peer it lists refuses the connection, cannot be
   * reached, or answers that it does not have the file. Default 20 s.
   */
  noPeerTimeoutMs: number;
  /**
   * Meanwhile the tracker is asked again, and every peer it lists tried
   * again, after this long, then twice as long each time, up to 8 times as
   * long. Default 0.5 s (0.5, 1, 2, 4, 4 … s).
   */
  noPeerRetryMs: number;
  /** How often to ask the tracker for peers again while pieces are missing and peers are few. Default 2 s. */
  refreshMs: number;
  /** How long an unreachable peer is left alone before it is tried again. Default 5 s. */
  retryMs: number;
}

export const DEFAULT_TUNING: DownloadTuning = {
  pipeline: 8,
  maxPeers: 8,
  stallTimeoutMs: 60_000,
  noPeerTimeoutMs: 20_000,
  noPeerRetryMs: 500,
  refreshMs: 2_000,
  retryMs: 5_000,
};

/**
 * Pieces of equal rarity are asked for in blocks of about 16 MiB of the
 * file, block after block, in a random order within each block: downloaders
 * still spread over the pieces (two downloads that start together hold
 * different pieces of the block at hand, so they can trade), while the
 * pieces arrive nearly in file order, so that the whole-file SHA-256 is
 * computed as they come (./piece-sink.ts) rather than in a second pass.
 */
export function tieBlock(pieceSize: number): number {
  return Math.max(1, Math.floor((16 * 1024 * 1024) / pieceSize));
}

/** What a download needs from the rest of the client. */
export interface DownloadDeps {
  /** `file_peers` for this file, now; throws an Error whose message is the tracker's answer. */
  fetchPeers(): Promise<FilePeers>;
  /** This client's own piece server address as announced (`host:port`), to skip ourselves. */
  self(): string | undefined;
  /** Announce as a seeder of `served` (partial while downloading) and serve it. */
  announce(served: ServedFile): Promise<void>;
  /** The download completed; `served.path` is the final file. Called once `announce`, if it was called, has settled. */
  completed(served: ServedFile): Promise<void>;
  /** The download failed or was interrupted: stop serving the partial file. */
  withdraw(served: ServedFile): Promise<void>;
  /** Called once the download has ended, whatever the outcome. */
  ended?(download: Download): void;
}

export type DownloadStatus = DownloadView['status'];

interface PeerSlot {
  key: string;
  conn: PeerConnection;
  have: Bitfield;
  /** Pieces asked of this peer and not yet answered, or answered and not yet written. */
  pending: Set<number>;
  pausedUntil: number;
}

/**
 * One file downloaded from every peer that has it at once. Strategy:
 *
 * - peers come from the tracker's `file_peers`; each is asked `HAVE` once
 *   connected (partial seeders answer the pieces they hold), and again
 *   every few seconds while pieces are missing;
 * - pieces are chosen rarest first, random tie-break within 16 MiB blocks
 *   taken in file order (./picker.ts, `tieBlock`), with up to `pipeline`
 *   requests outstanding per peer;
 * - each piece's SHA-256 is checked against the tracker's list before it is
 *   written at its offset into `.<file>.part` — both by the `PieceSink`'s
 *   worker thread; a bad piece bans its peer for this download and goes
 *   back to be fetched from another;
 * - a peer that fails (connection lost, stall) gives its outstanding pieces
 *   back and is retried later if the tracker still lists it;
 * - once every missing piece has been asked for, peers with room are asked
 *   for the pieces still outstanding at others too (end game): the first
 *   copy verified is written, the other dropped;
 * - verified pieces are recorded in `.<file>.part.json` (resume); the sink
 *   hashes the whole file in piece order as pieces become contiguous; once
 *   every piece is in, that SHA-256 is checked and the part file is renamed
 *   to its final name;
 * - from its first verified piece the download announces itself to the
 *   tracker as a seeder and serves the pieces it has.
 */
export class Download implements DownloadView {
  readonly group: string;
  readonly file: string;
  readonly destDir: string;
  readonly meta: FilePeers;
  readonly pieces: number;
  status: DownloadStatus = 'queued';
  reason = '';
  /** Pieces verified before this run started (resume). */
  resumedPieces = 0;
  bytesThisRun = 0;
  startedAt = 0;
  endedAt = 0;
  readonly banned = new Map<string, string>();
  readonly sources = new Set<string>();
  private readonly deps: DownloadDeps;
  private readonly tuning: DownloadTuning;
  private have: Bitfield;
  private picker: PiecePicker | undefined;
  private sink: PieceSink | undefined;
  /** Piece buffers, reused between the peer connections and the sink. */
  private readonly buffers: PieceBufferPool;
  private served: ServedFile | undefined;
  private readonly peers = new Map<string, PeerSlot>();
  private readonly retryAt = new Map<string, number>();
  private announced = false;
  /** The announce at the first verified piece, under way or settled; the end waits for it (`DownloadDeps.completed`). */
  private announcing: Promise<void> = Promise.resolve();
  private settle: { resolve: () => void; reject: (error: Error) => void } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastProgress = 0;
  private lastRefresh = 0;
  private refreshing = false;
  /** Pieces handed to the sink and not yet verified: a second copy of one of them is dropped; the download ends only once none is left. */
  private readonly writing = new Set<number>();
  private saveTimer: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();
  private lastPeerError = '';
  /** Why each peer last failed (connection refused, `NO_SUCH_FILE` …), without its address; forgotten once it connects. */
  private readonly peerErrors = new Map<string, string>();
  /** The other peers of the last `file_peers` answer, by `host:port`. */
  private listed: string[] = [];
  /** The last `file_peers` that failed, if the last one did. */
  private trackerError: string | undefined;
  /** Peers being joined (connecting, or waiting for `HAVE`): not joined twice at once. */
  private readonly joining = new Set<string>();
  /**
   * Of those, the ones connected: a peer slow to answer `HAVE` keeps the
   * no-peer clock from failing the download. Closed when the download ends.
   */
  private readonly handshakes = new Set<PeerConnection>();
  /** Since when no peer has been in `peers` (undefined while one is). */
  private noPeerSince: number | undefined;
  /** Rounds of asking again since then, and when the next is due. */
  private noPeerRound = 0;
  private noPeerRetryAt = 0;
  /** Peers other than this client in the last `file_peers` answer (undefined until one came). */
  private othersListed: number | undefined;
  private ended = false;
  /** False once the user stopped sharing this file: the download goes on, and is neither served nor announced. */
  private sharing = true;
  /** Releases the lock on the working files, held from `prepare` to the end of `run`. */
  private unlock: (() => Promise<void>) | undefined;

  constructor(group: string, file: string, destDir: string, meta: FilePeers, deps: DownloadDeps, tuning: Partial<DownloadTuning> = {}) {
    this.group = group;
    this.file = file;
    this.destDir = destDir;
    this.meta = meta;
    this.pieces = pieceCount(meta.size, meta.pieceSize);
    this.deps = deps;
    this.tuning = { ...DEFAULT_TUNING, ...tuning };
    this.have = new Bitfield(this.pieces);
    this.buffers = new PieceBufferPool(meta.pieceSize + PIECE_HEADER_ROOM);
  }

  get destination(): string {
    return path.join(this.destDir, this.file);
  }

  get piecesDone(): number {
    return this.have.count;
  }

  get bytesDone(): number {
    if (this.have.complete) return this.meta.size;
    let bytes = this.have.count * this.meta.pieceSize;
    if (this.pieces > 0 && this.have.get(this.pieces - 1)) bytes -= this.meta.pieceSize - pieceLength(this.meta, this.pieces - 1);
    return bytes;
  }

  get activePeers(): number {
    return this.peers.size;
  }

  /** Bytes per second over this run. */
  get rate(): number {
    const end = this.endedAt || Date.now();
    const seconds = (end - this.startedAt) / 1000;
    return seconds > 0 ? this.bytesThisRun / seconds : 0;
  }

  /** Runs the download to its end; never throws (a failure is `status` 'failed' with `reason`). */
  async run(): Promise<void> {
    this.status = 'running';
    this.startedAt = Date.now();
    try {
      await this.prepare();
      if (!this.have.complete) {
        if (this.have.count > 0) await this.announceOnce();
        await this.transfer();
      }
      await this.finish();
      this.status = 'complete';
    } catch (error) {
      this.status = 'failed';
      this.reason ||= error instanceof Error ? error.message : String(error);
      await this.cleanUpAfterFailure();
    } finally {
      await this.unlock?.().catch(() => undefined); // a lost lock is already released
      this.unlock = undefined;
      this.endedAt = Date.now();
      this.ended = true;
      this.deps.ended?.(this);
    }
  }

  /** Stops the download, keeping what it has for a later resume. A queued one ends at once (and says so, like any other). */
  abort(reason: string): void {
    if (this.status === 'queued') {
      this.status = 'failed';
      this.reason = reason;
      this.ended = true;
      this.endedAt = Date.now();
      this.deps.ended?.(this);
      return;
    }
    this.fail(reason);
  }

  /** `stop_share` of this file while it downloads: finish it, but do not share it. */
  stopSharing(): void {
    this.sharing = false;
  }

  /**
   * The verified pieces of an earlier attempt, if any (read without starting).
   * Throws `WorkingFileError` when the working files' names are taken by
   * files that are not this client's, or another client process is
   * downloading into them.
   */
  async peekResume(): Promise<number> {
    await checkWorkingFilesFree(this.destDir, this.file);
    const files = await inspectWorkingFiles(this.destDir, this.file, { ...this.meta, pieces: this.pieces });
    return files.resume?.count ?? 0;
  }

  private async prepare(): Promise<void> {
    const part = partPath(this.destDir, this.file);
    this.unlock = await lockWorkingFiles(this.destDir, this.file, (error) => this.fail(`lost the lock on ${part}: ${error.message}`));
    const files = await inspectWorkingFiles(this.destDir, this.file, { ...this.meta, pieces: this.pieces });
    if (files.resume) this.have = files.resume;
    this.resumedPieces = this.have.count;
    // The state first: a part file is never on disk without a state of ours that names it.
    await this.saveNow();
    if (files.stalePart) await rm(part, { force: true });
    // Never through a symlink, and a fresh part is created, not reused: what stands at that name is not ours.
    const flags = constants.O_RDWR | constants.O_NOFOLLOW | (files.resume ? 0 : constants.O_CREAT | constants.O_EXCL);
    const fd = await open(part, flags);
    try {
      await fd.truncate(this.meta.size);
    } finally {
      await fd.close();
    }
    this.sink = new PieceSink(part, this.meta, this.have, { reuse: (buffer) => this.buffers.give(buffer) });
    this.picker = new PiecePicker(this.pieces, this.have, Math.random, tieBlock(this.meta.pieceSize));
    this.served = {
      group: this.group,
      file: this.file,
      sha256: this.meta.sha256,
      size: this.meta.size,
      pieceSize: this.meta.pieceSize,
      path: part,
      have: this.have,
      hashes: this.meta.hashes,
    };
  }

  private transfer(): Promise<void> {
    if (this.reason) return Promise.reject(new Error(this.reason));
    return new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
      this.lastProgress = Date.now();
      this.noPeerSince = this.lastProgress;
      this.timer = setInterval(() => this.tick(), Math.min(500, this.tuning.noPeerRetryMs));
      void this.refresh();
    });
  }

  private tick(): void {
    const now = Date.now();
    if (now - this.lastProgress > this.tuning.stallTimeoutMs) {
      this.fail(stallReason(this.peers.size, this.banned.size, this.tuning.stallTimeoutMs, this.lastPeerError, this.othersListed));
      return;
    }
    if (this.noPeerSince !== undefined) {
      // Nobody to wait for: said after a bounded time, not after the stall timeout meant for slow peers.
      if (now - this.noPeerSince >= this.tuning.noPeerTimeoutMs && this.handshakes.size === 0) this.fail(this.noPeerFailure());
      else if (now >= this.noPeerRetryAt) void this.refresh(true);
      return;
    }
    if (now - this.lastRefresh >= this.tuning.refreshMs && (this.peers.size < this.tuning.maxPeers || this.idle())) void this.refresh();
  }

  private noPeerFailure(): string {
    const failed = this.listed.filter((key) => !this.banned.has(key) && this.peerErrors.has(key)).map((key) => ({ peer: key, error: this.peerErrors.get(key) as string }));
    return noPeerReason({
      seconds: Math.round(this.tuning.noPeerTimeoutMs / 1000),
      failed,
      othersListed: this.othersListed,
      trackerError: this.trackerError,
      banned: this.banned.size,
    });
  }

  /**
   * Starts or stops the no-peer clock as the last peer goes or the first one
   * joins. A peer that connects and then refuses (`NO_SUCH_FILE` to `HAVE`)
   * does not restart it: only one that joins does.
   */
  private noteLiveness(): void {
    if (this.peers.size > 0) {
      this.noPeerSince = undefined;
      this.noPeerRound = 0;
    } else {
      this.noPeerSince ??= Date.now();
    }
  }

  /** Why peer `key` failed, as it said it (its address left out: the reason names it once). */
  private notePeerError(key: string, message: string): void {
    this.peerErrors.set(key, message.startsWith(`${key}: `) ? message.slice(key.length + 2) : message);
  }

  /** True when no request is outstanding anywhere. */
  private idle(): boolean {
    for (const p of this.peers.values()) if (p.pending.size > 0) return false;
    return true;
  }

  /**
   * Asks the tracker for peers, connects to new ones, and asks partial peers
   * what they have now. `retryAll` (the no-peer schedule): the peers left
   * alone for `retryMs` after a failure are tried again too.
   */
  private async refresh(retryAll = false): Promise<void> {
    if (this.refreshing || this.settle === undefined) return;
    this.refreshing = true;
    this.lastRefresh = Date.now();
    try {
      let list: FilePeers | undefined;
      try {
        list = await this.deps.fetchPeers();
        this.trackerError = undefined;
      } catch (error) {
        this.trackerError = error instanceof Error ? error.message : String(error);
        this.lastPeerError = `tracker: ${this.trackerError}`;
      }
      const self = this.deps.self();
      if (list) {
        this.othersListed = otherPeerCount(list, self);
        this.listed = list.peers.map((peer) => formatHostPort(peer.address)).filter((key) => key !== self);
      }
      const now = Date.now();
      // With no peer at all, every listed one is tried again on the no-peer schedule, not left alone for retryMs.
      const lonely = retryAll && this.noPeerSince !== undefined;
      const joins: Promise<void>[] = [];
      for (const peer of list?.peers ?? []) {
        const key = formatHostPort(peer.address);
        if (key === self || this.peers.has(key) || this.joining.has(key) || this.banned.has(key) || (!lonely && (this.retryAt.get(key) ?? 0) > now)) continue;
        if (this.peers.size + joins.length >= this.tuning.maxPeers) break;
        joins.push(this.join(key, peer.address));
      }
      for (const slot of this.peers.values()) if (!slot.have.complete) joins.push(this.reHave(slot));
      await Promise.all(joins);
    } finally {
      this.refreshing = false;
      if (this.noPeerSince !== undefined) {
        this.noPeerRetryAt = Date.now() + backoffDelay(++this.noPeerRound, { initialMs: this.tuning.noPeerRetryMs, factor: 2, maxMs: 8 * this.tuning.noPeerRetryMs });
      }
      this.pump();
    }
  }

  private async join(key: string, address: FilePeers['peers'][number]['address']): Promise<void> {
    let conn: PeerConnection | undefined;
    this.joining.add(key);
    try {
      conn = await PeerConnection.connect(address, { maxPieceSize: this.meta.pieceSize, pieces: this.pieces, allocate: (size) => this.buffers.take(size) });
      // Connected: a peer slow to answer is alive (the stall timeout is for it), not a peer that is gone.
      this.handshakes.add(conn);
      let have: Bitfield;
      try {
        have = await conn.have(this.group, this.meta.sha256, this.pieces);
      } finally {
        this.handshakes.delete(conn);
      }
      if (this.ended || this.settle === undefined) {
        conn.close();
        return;
      }
      const slot: PeerSlot = { key, conn, have, pending: new Set(), pausedUntil: 0 };
      this.peers.set(key, slot);
      this.peerErrors.delete(key);
      this.noteLiveness();
      this.picker?.addPeer(have);
      conn.onClose((error) => this.drop(slot, error.message, this.tuning.retryMs));
    } catch (error) {
      conn?.close();
      this.lastPeerError = error instanceof Error ? error.message : String(error);
      this.notePeerError(key, this.lastPeerError);
      this.retryAt.set(key, Date.now() + this.tuning.retryMs);
      // A seeder serving as many peers as it takes is there, only full: it is waited for until the stall
      // timeout, as a slow one is, rather than given up on with the peers that are gone.
      if (this.noPeerSince !== undefined && isBusyAnswer(error)) this.noPeerSince = Date.now();
    } finally {
      this.joining.delete(key);
    }
  }

  private async reHave(slot: PeerSlot): Promise<void> {
    try {
      const have = await slot.conn.have(this.group, this.meta.sha256, this.pieces);
      if (this.peers.get(slot.key) !== slot) return;
      for (let i = 0; i < this.pieces; i++) {
        if (have.get(i) && !slot.have.get(i)) {
          slot.have.set(i);
          this.picker?.addPiece(i);
        }
      }
    } catch {
      // the connection's close handler drops the peer
    }
  }

  /**
   * Issues requests to every peer with room in its pipeline. Once every
   * missing piece has been asked for, a peer with room is also asked for
   * pieces outstanding at another (the end game, `PiecePicker.pickAgain`):
   * one slow or hung peer then no longer holds the download's last pieces
   * until its connection times out.
   */
  private pump(): void {
    const picker = this.picker;
    if (this.settle === undefined || picker === undefined) return;
    if (picker.remaining === 0) {
      if (this.writing.size === 0) this.settleWith();
      return;
    }
    const now = Date.now();
    for (const slot of this.peers.values()) {
      if (slot.pausedUntil > now) continue;
      while (slot.pending.size < this.tuning.pipeline) {
        let index = picker.pick(slot.have);
        if (index < 0) index = picker.pickAgain(slot.have, (i) => slot.pending.has(i) || this.writing.has(i));
        if (index < 0) break;
        this.request(slot, index);
      }
    }
  }

  private request(slot: PeerSlot, index: number): void {
    const picker = this.picker as PiecePicker;
    const length = pieceLength(this.meta, index);
    slot.pending.add(index);
    slot.conn.piece(this.group, this.meta.sha256, index, length).then(
      async (data) => {
        // The end game's other copy came first: this one is not needed.
        if (picker.isDone(index) || this.writing.has(index)) {
          slot.pending.delete(index);
          picker.release(index);
          this.pump();
          return;
        }
        // Checked against its SHA-256 and written by the sink, off this thread. The piece
        // counts in the peer's pipeline until it is written: a slow disk slows the requests.
        this.writing.add(index);
        let verdict;
        try {
          verdict = await (this.sink as PieceSink).put(index, data);
        } catch (error) {
          this.writing.delete(index);
          slot.pending.delete(index);
          picker.release(index);
          this.fail(`cannot write ${partPath(this.destDir, this.file)}: ${(error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error))}`);
          return;
        }
        this.writing.delete(index);
        slot.pending.delete(index);
        if (verdict === 'bad') {
          picker.release(index);
          this.ban(slot, `piece ${index} failed its SHA-256 check`);
          this.pump();
          return;
        }
        this.pieceWritten(index, length);
        this.sources.add(slot.key);
        this.pump();
      },
      (error: unknown) => {
        slot.pending.delete(index);
        picker.release(index);
        this.onRequestError(slot, index, error);
        this.pump();
      },
    );
  }

  /** Piece `index` (`length` bytes) is verified and on disk. */
  private pieceWritten(index: number, length: number): void {
    if (this.ended) return;
    this.have.set(index);
    this.picker?.complete(index);
    this.bytesThisRun += length;
    this.lastProgress = Date.now();
    this.scheduleSave();
    if (!this.announced) void this.announceOnce();
  }

  private onRequestError(slot: PeerSlot, index: number, error: unknown): void {
    if (error instanceof PeerAnswerError) {
      this.lastPeerError = `${slot.key}: ${error.message}`;
      switch (error.code) {
        case 'BUSY':
          slot.pausedUntil = Date.now() + 1000;
          return;
        case 'NO_SUCH_PIECE':
          if (slot.have.get(index)) slot.have.clear(index);
          return;
        case 'PROTOCOL':
          this.ban(slot, error.message);
          return;
        default:
          this.drop(slot, error.message, this.tuning.refreshMs);
          return;
      }
    }
    // A connection error: its close handler drops the peer. Requests cut short by our own drop
    // of the peer say nothing new, and must not hide the answer that made us drop it.
    if (this.peers.get(slot.key) === slot) this.lastPeerError = error instanceof Error ? error.message : String(error);
  }

  private ban(slot: PeerSlot, why: string): void {
    this.banned.set(slot.key, why);
    this.drop(slot, why, Number.POSITIVE_INFINITY);
  }

  /** Forgets a peer (its outstanding pieces come back through their rejections). */
  private drop(slot: PeerSlot, why: string, retryInMs: number): void {
    if (this.peers.get(slot.key) !== slot) return;
    this.peers.delete(slot.key);
    this.picker?.removePeer(slot.have);
    if (Number.isFinite(retryInMs)) this.retryAt.set(slot.key, Date.now() + retryInMs);
    this.lastPeerError = why;
    this.notePeerError(slot.key, why);
    this.noteLiveness();
    slot.conn.close();
    // Try someone else at once rather than at the next tick.
    if (this.settle !== undefined) setImmediate(() => void this.refresh());
  }

  private settleWith(error?: Error): void {
    const settle = this.settle;
    if (!settle) return;
    this.settle = undefined;
    clearInterval(this.timer);
    for (const slot of this.peers.values()) slot.conn.close();
    this.peers.clear();
    for (const conn of this.handshakes) conn.close();
    if (error) settle.reject(error);
    else settle.resolve();
  }

  private fail(reason: string): void {
    if (this.ended || this.status !== 'running') return;
    // Before the transfer started, `transfer()` sees the reason and stops.
    this.reason ||= reason;
    if (this.settle) this.settleWith(new Error(reason));
  }

  private async announceOnce(): Promise<void> {
    if (this.announced || !this.served || !this.sharing) return;
    this.announced = true;
    this.announcing = this.deps.announce(this.served);
    await this.announcing;
  }

  private scheduleSave(): void {
    if (this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      void this.saveNow().catch(() => undefined);
    }, 500);
  }

  private saveNow(): Promise<void> {
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    const state = {
      version: 1 as const,
      group: this.group,
      file: this.file,
      size: this.meta.size,
      sha256: this.meta.sha256,
      pieceSize: this.meta.pieceSize,
      have: this.have.toHex(),
      owner: thisProcess(),
    };
    this.saving = this.saving.catch(() => undefined).then(() => saveDownloadState(this.destDir, state));
    return this.saving;
  }

  private async finish(): Promise<void> {
    const part = partPath(this.destDir, this.file);
    await this.saveNow();
    const sink = this.sink as PieceSink;
    let sum: string;
    try {
      sum = await sink.finish();
    } finally {
      this.sink = undefined;
      await sink.close();
    }
    if (sum !== this.meta.sha256) {
      await rm(part, { force: true });
      await removeDownloadState(this.destDir, this.file);
      throw new Error(`the whole file's SHA-256 is ${sum}, expected ${this.meta.sha256}; partial data discarded`);
    }
    await publish(part, this.destination);
    const served = this.served as ServedFile;
    // At once, before the next await: the piece server takes a missing path it still serves for a file gone (and stops sharing it).
    served.path = this.destination;
    await removeDownloadState(this.destDir, this.file);
    if (!this.sharing) return;
    // Its answer decides whether the tracker must be told again: a last piece can be verified before the first's announce is answered.
    await this.announcing.catch(() => undefined);
    this.announced = true;
    await this.deps.completed(served);
  }

  private async cleanUpAfterFailure(): Promise<void> {
    clearInterval(this.timer);
    for (const slot of this.peers.values()) slot.conn.close();
    this.peers.clear();
    for (const conn of this.handshakes) conn.close();
    try {
      if (this.sink) await this.saveNow();
    } catch {
      // best effort: a resume then starts from the last saved state
    }
    await this.sink?.close().catch(() => undefined);
    this.sink = undefined;
    if (this.served && this.announced) await this.deps.withdraw(this.served).catch(() => undefined);
  }
}

/**
 * Gives the verified part file its final name, never replacing a file that
 * appeared there during the download (`link` fails on any existing name,
 * a symlink included). On a file system without hard links, a `rename`
 * after a last look.
 */
async function publish(part: string, destination: string): Promise<void> {
  const taken = (): Error => new Error(`${destination} appeared during the download; move it away and run download_file again to finish (the verified pieces are kept)`);
  try {
    await link(part, destination);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw taken();
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EMLINK') throw error;
    if (await lstatOrUndefined(destination)) throw taken();
    await rename(part, destination);
    return;
  }
  await rm(part, { force: true });
}

/**
 * Whether a peer refused with `ERR BUSY` (its upload slots are full): as the
 * answer to our first request, or unasked when it refused us on arrival.
 */
function isBusyAnswer(error: unknown): boolean {
  if (error instanceof PeerAnswerError) return error.code === 'BUSY';
  return error instanceof Error && /^\S+: BUSY /.test(error.message);
}
