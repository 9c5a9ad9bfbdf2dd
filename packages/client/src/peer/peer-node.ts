import { mkdtemp, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { formatCommand, formatHostPort, isValidFileName, isValidName, parseResponse, quote } from '@tracker-cluster/protocol';
import type { HostPort } from '@tracker-cluster/protocol';
import { untilAborted } from '../abort.js';
import { AbandonedError } from '../errors.js';
import { Bitfield } from './bitfield.js';
import { Download } from './download.js';
import type { DownloadTuning } from './download.js';
import { DownloadQueue } from './download-queue.js';
import { WorkingFileError } from './download-state.js';
import { otherPeerCount, parseFilePeers } from './file-peers.js';
import type { FilePeers } from './file-peers.js';
import { downloadListing, formatDownload, sessionEndedShareNote } from './format.js';
import type { DownloadListing } from './format.js';
import { hashFile } from './hashing.js';
import { expandHome } from './local-path.js';
import type { FileDigest } from './hashing.js';
import { PieceServer } from './piece-server.js';
import type { FileGoneReason } from './piece-server.js';
import { DEFAULT_PIECE_SIZE, parsePieceSize } from './pieces.js';
import { ShareRegistry } from './share-registry.js';
import type { ShareRecord } from './share-registry.js';
import { ShareTable } from './share-table.js';
import type { ServedFile } from './share-table.js';
import type { PeerOptions } from './options.js';

/** How the peer side talks to the tracker: through the client's connection and session. */
export interface TrackerLink {
  /**
   * Sends one command line with the current session; resolves with the
   * answer's payload. With a `signal`, gives up when it aborts (the command
   * that asked was abandoned): never sent if it had not been yet.
   */
  request(line: string, signal?: AbortSignal): Promise<string>;
  /** The logged-in user, if any. */
  user(): string | undefined;
}

/** A client-side notice (download ended), shown like an event. */
export type Notify = (text: string) => void;

/** How long leaving waits for each `stop_share` answer: an unreachable tracker must not keep the client from exiting. */
const STOP_SHARE_TIMEOUT_MS = 2000;

/** The largest request the tracker takes by default (PROTOCOL.md §1): an `upload_file` line must fit. */
const TRACKER_MAX_REQUEST = 1024 * 1024;

/**
 * The peer side of one client process: the piece server, the shares it
 * serves, the share registry, and the download queue — and the client
 * commands over them (`upload_file <path> <group>`, `download_file`,
 * `show_downloads`, `wait_downloads`, and what `login`, `logout` and
 * `stop_share` mean for sharing).
 */
export class PeerNode {
  readonly table = new ShareTable();
  readonly server: PieceServer;
  readonly registry: ShareRegistry;
  readonly downloads: DownloadQueue;
  private readonly options: PeerOptions;
  private readonly tracker: TrackerLink;
  private readonly notify: Notify;
  private readonly tuning: Partial<DownloadTuning>;
  private announced: string | undefined;

  constructor(options: PeerOptions, tracker: TrackerLink, notify: Notify = () => undefined, tuning: Partial<DownloadTuning> = {}) {
    this.options = options;
    this.tracker = tracker;
    this.notify = notify;
    this.tuning = tuning;
    this.server = new PieceServer(this.table, { uploadRate: options.uploadRate, onFileGone: (served, reason) => void this.fileGone(served, reason) });
    this.registry = new ShareRegistry(options.dataDir);
    this.downloads = new DownloadQueue(options.maxDownloads);
  }

  /** Starts the piece server; resolves with the address it serves on. */
  async start(): Promise<HostPort> {
    const bound = await this.server.listen(this.options.listen);
    this.announced = formatHostPort(bound);
    return bound;
  }

  /** `host:port` announced to the tracker as this client's peer address. */
  get peerAddress(): string | undefined {
    return this.announced;
  }

  /** `upload_file <path> <group> [piece_size]`: hash, register, serve, remember. */
  async uploadFile(filePath: string, group: string, pieceSizeText?: string, signal?: AbortSignal): Promise<string> {
    const user = this.tracker.user();
    if (user === undefined) return 'ERR AUTH_REQUIRED upload_file needs a session: log in first';
    if (!isValidName(group)) return `ERR BAD_REQUEST invalid group name ${quote(group)}`;
    const pieceSize = pieceSizeText === undefined ? DEFAULT_PIECE_SIZE : parsePieceSize(pieceSizeText);
    if (pieceSize === undefined) return `ERR BAD_REQUEST piece size ${quote(pieceSizeText ?? '')} is not 1 B-64 MiB (e.g. 65536, 512k, 4m)`;
    const absolute = path.resolve(expandHome(filePath));
    const name = path.basename(absolute);
    if (!isValidFileName(name)) return `ERR BAD_REQUEST ${quote(name)} is not a valid file name to share`;
    let mtimeMs: number;
    try {
      const info = await stat(absolute);
      if (!info.isFile()) return `ERR BAD_REQUEST ${quote(filePath)} is not a regular file`;
      mtimeMs = info.mtimeMs;
    } catch (error) {
      return `ERR NO_SUCH_FILE cannot read ${quote(filePath)} (${(error as NodeJS.ErrnoException).code ?? String(error)})`;
    }
    let digest: FileDigest;
    try {
      digest = await hashFile(absolute, pieceSize);
    } catch (error) {
      return `ERR NO_SUCH_FILE cannot read ${quote(filePath)} (${(error as NodeJS.ErrnoException).code ?? String(error)})`;
    }
    const record: ShareRecord = { group, file: name, path: absolute, size: digest.size, mtimeMs, sha256: digest.sha256, pieceSize, hashes: digest.hashes };
    const answer = await this.announce(record, signal);
    if (parseResponse(answer).ok) {
      // Shared now whatever happens to the registry: keep the tracker's OK, say it is not remembered.
      const failure = await registryFailure(this.registry.put(user, record));
      if (failure !== undefined) {
        return `${answer}\n[share] ${quote(name)} in ${group} is shared, but could not be remembered for the next login: ${failure}`;
      }
    }
    return answer;
  }

  /** `download_file <group> <file> <dest_dir>`: checks, asks the tracker, queues. */
  async downloadFile(group: string, file: string, destDir: string, signal?: AbortSignal): Promise<string> {
    if (this.tracker.user() === undefined) return 'ERR AUTH_REQUIRED download_file needs a session: log in first';
    if (!isValidName(group)) return `ERR BAD_REQUEST invalid group name ${quote(group)}`;
    if (!isValidFileName(file)) return `ERR BAD_REQUEST invalid file name ${quote(file)}`;
    // Valid on the wire (PROTOCOL.md §2), but no file on disk can have these names.
    if (file === '.' || file === '..') return `ERR BAD_REQUEST ${quote(file)} names a directory, not a file: it cannot be downloaded`;
    if (this.downloads.active(group, file)) return `ERR BAD_REQUEST ${quote(file)} of ${group} is already being downloaded`;
    const dir = path.resolve(expandHome(destDir));
    try {
      if (!(await stat(dir)).isDirectory()) return `ERR BAD_REQUEST ${quote(destDir)} is not a directory`;
    } catch {
      return `ERR BAD_REQUEST no such directory ${quote(destDir)}`;
    }
    const target = path.join(dir, file);
    if (await exists(target)) return `ERR BAD_REQUEST ${quote(target)} already exists`;
    const unwritable = await cannotWriteIn(dir);
    if (unwritable !== undefined) return `ERR BAD_REQUEST cannot write in ${quote(destDir)} (${unwritable})`;
    const answer = await this.tracker.request(formatCommand(['file_peers', group, file]), signal);
    const meta = parseFilePeers(answer);
    if (!meta) return parseResponse(answer).ok ? `ERR PROTOCOL unexpected file_peers answer` : firstLine(answer);
    // Nobody to download from: said now, as the tracker says it when nobody at all shares the file, not after a wait.
    if (otherPeerCount(meta, this.announced) === 0) return `ERR NO_SUCH_FILE nobody else shares ${quote(file)} in ${group} now: the tracker lists only this client`;
    const download = new Download(group, file, dir, meta, this.downloadDeps(group, file), this.tuning);
    let resumed: number;
    try {
      resumed = await download.peekResume();
    } catch (error) {
      if (error instanceof WorkingFileError) return `ERR BAD_REQUEST ${error.message}`;
      throw error;
    }
    // Abandoned while it looked at the working files: the download is not started.
    if (signal?.aborted === true) throw new AbandonedError('download_file', true);
    const position = this.downloads.add(download);
    const where = position > 0 ? `queued position=${position}` : 'started';
    // This client's own share is not a peer to download from (docs/protocol.md §7).
    return `OK download ${where} ${quote(file)} size=${meta.size} pieces=${download.pieces} have=${resumed} peers=${otherPeerCount(meta, this.announced)}`;
  }

  showDownloads(): DownloadListing {
    return downloadListing(this.downloads.list());
  }

  /** Waits until no download is queued or running; `ERR` if any of them failed. The downloads go on when `signal` aborts the wait. */
  async waitDownloads(signal?: AbortSignal): Promise<DownloadListing> {
    await untilAborted(this.downloads.whenIdle(), signal, () => new AbandonedError('wait_downloads', false));
    return downloadListing(this.downloads.list(), true);
  }

  /**
   * After the tracker answered `stop_share`: stop serving, forget the share.
   * Returns lines to show after the answer: a note if the registry could not
   * be updated.
   */
  async stoppedSharing(group: string, file: string): Promise<string[]> {
    this.table.removeByName(group, file);
    const failure = await this.forgetShare(group, file);
    if (failure === undefined) return [];
    return [`[share] ${quote(file)} in ${group} could not be forgotten (the next login shares it again): ${failure}`];
  }

  /**
   * Sharing a file ends (its caller has stopped serving it): a download of
   * it finishes unshared, and the registry forgets it. Resolves with why the
   * registry could not be written, if it could not.
   */
  private async forgetShare(group: string, file: string): Promise<string | undefined> {
    this.downloads.active(group, file)?.stopSharing();
    const user = this.tracker.user();
    return user === undefined ? undefined : registryFailure(this.registry.remove(user, group, file));
  }

  /**
   * After the tracker answered `OK` to `leave_group`: it ended this user's
   * shares in `group` (PROTOCOL.md §3), so stop serving every file in it,
   * stop the downloads in it (queued or running; resumable after joining
   * again) and forget its shares in the registry. Returns lines to show after
   * the answer: one per share that ended, and a note if the registry could
   * not be updated.
   */
  async leftGroup(group: string): Promise<string[]> {
    const active = this.downloads.list().filter((d) => d.group === group && (d.status === 'queued' || d.status === 'running'));
    // Finished, they are neither served nor announced; stopped, they withdraw what they served.
    for (const d of active) d.stopSharing();
    const downloading = new Set(active.map((d) => d.file));
    const served = this.table.list().filter((s) => s.group === group);
    for (const s of served) this.table.remove(s.group, s.sha256);
    await this.downloads.abortWhere((d) => d.group === group, `left the group ${group} (join it again and run download_file again to resume)`);
    const lines = served.filter((s) => !downloading.has(s.file)).map((s) => `[share] left ${group}: ${quote(s.file)} is no longer shared`);
    const user = this.tracker.user();
    if (user === undefined) return lines;
    const failure = await registryFailure(this.registry.removeGroup(user, group));
    if (failure !== undefined) lines.push(`[share] the shares in ${group} could not be forgotten (the next login tries them again): ${failure}`);
    return lines;
  }

  /**
   * After a login: re-announce every share this user made from here whose
   * file is still on disk (hashed again if its size or time changed).
   * Returns lines to show, one per share.
   */
  async loggedIn(user: string, signal?: AbortSignal): Promise<string[]> {
    let records: ShareRecord[];
    try {
      records = await this.registry.load(user);
    } catch (error) {
      return [`[share] cannot read the share registry ${this.registry.fileFor(user)}: ${errorText(error)}`];
    }
    const kept: ShareRecord[] = [];
    const lines: string[] = [];
    for (const old of records) {
      const label = `${quote(old.file)} in ${old.group}`;
      let record = old;
      try {
        const info = await stat(old.path);
        if (!info.isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
        if (info.size !== old.size || info.mtimeMs !== old.mtimeMs) {
          const digest = await hashFile(old.path, old.pieceSize);
          record = { ...old, size: digest.size, sha256: digest.sha256, hashes: digest.hashes, mtimeMs: info.mtimeMs };
        }
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') {
          lines.push(`[share] dropped ${label}: ${old.path} is gone`);
        } else {
          // A read error (EIO, EACCES) or a hasher that failed may pass: kept for the next login, not forgotten.
          kept.push(old);
          lines.push(`[share] not sharing ${label} for now: cannot read ${old.path}: ${errorText(error)}`);
        }
        continue;
      }
      const answer = await this.announce(record, signal);
      const response = parseResponse(answer);
      if (response.ok) {
        kept.push(record);
        lines.push(`[share] sharing ${label} again${record === old ? '' : ' (changed on disk, hashed again)'}`);
      } else if (response.code === 'QUOTA_EXCEEDED' || response.code === 'PRIMARY_UNAVAILABLE' || response.code === 'RATE_LIMITED') {
        kept.push(record);
        lines.push(`[share] not sharing ${label} for now: ${response.code} ${response.message}`);
      } else {
        lines.push(`[share] dropped ${label}: ${response.code} ${response.message}`);
      }
    }
    if (records.length > 0) {
      const failure = await registryFailure(this.registry.replace(user, kept));
      if (failure !== undefined) lines.push(`[share] the share registry could not be updated: ${failure}`);
    }
    return lines;
  }

  /** After a logout (or the session ended): the tracker ended our shares; stop serving and downloading. */
  async loggedOut(): Promise<void> {
    this.table.clear();
    await this.downloads.abortAll('logged out (run download_file again to resume)');
  }

  /**
   * Before the process exits: stop downloads (resumable) and tell the tracker
   * we no longer serve. Resolves to a note for each share the tracker could
   * not be told of (it stays listed until the session ends).
   */
  async close(): Promise<string[]> {
    await this.downloads.abortAll('the client stopped (run download_file again to resume)');
    const served = this.table.list();
    this.table.clear();
    const notes: string[] = [];
    if (this.tracker.user() !== undefined) {
      await Promise.all(
        served.map(async (s) => {
          const answer = await withTimeout(this.tracker.request(formatCommand(['stop_share', s.group, s.file])), STOP_SHARE_TIMEOUT_MS).catch(
            (error: unknown) => `ERR ${errorText(error)}`,
          );
          const response = parseResponse(answer);
          // The session ended before the client: the tracker ended its shares with it (the table is cleared already,
          // so the session-ended notice has none to name).
          if (!response.ok && response.code === 'AUTH_REQUIRED') notes.push(sessionEndedShareNote(s.group, s.file));
          // NO_SUCH_FILE: the tracker no longer lists it anyway.
          else if (!response.ok && response.code !== 'NO_SUCH_FILE') {
            notes.push(`[share] ${quote(s.file)} in ${s.group} could not be withdrawn (${firstLine(answer)}): it stays listed until the session ends; downloaders skip this peer`);
          }
        }),
      );
    }
    await this.server.close();
    return notes;
  }

  /** Sends `upload_file` for a record and serves it when the tracker says OK. */
  private async announce(record: ShareRecord, signal?: AbortSignal): Promise<string> {
    const line = this.uploadLine(record);
    if (Buffer.byteLength(line) > TRACKER_MAX_REQUEST) {
      return `ERR BAD_REQUEST ${record.hashes.length} pieces do not fit in one request; use a larger piece size`;
    }
    const answer = await this.tracker.request(line, signal);
    if (parseResponse(answer).ok) {
      this.table.removeByName(record.group, record.file);
      this.table.set({ ...record, have: Bitfield.full(record.hashes.length) });
    }
    return answer;
  }

  private downloadDeps(group: string, file: string): ConstructorParameters<typeof Download>[4] {
    /** The tracker took the announce at the first verified piece: it lists this client as a seeder of the file already. */
    let listed = false;
    return {
      fetchPeers: async (): Promise<FilePeers> => {
        const answer = await this.tracker.request(formatCommand(['file_peers', group, file]));
        const parsed = parseFilePeers(answer);
        if (!parsed) throw new Error(firstLine(answer));
        return parsed;
      },
      self: () => this.announced,
      announce: async (served: ServedFile) => {
        // Serve first: peers told about us may ask at once.
        this.table.set(served);
        const answer = await this.tracker.request(this.uploadLine(served)).catch((e: unknown) => `ERR ${errorText(e)}`);
        listed = parseResponse(answer).ok;
        if (!listed) {
          this.table.remove(served.group, served.sha256);
          // Said now, not only when the download ends (a quota, a name taken): nobody gets its pieces from us meanwhile.
          if (this.tracker.user() !== undefined) {
            this.notify(`share_not_announced ${group} ${quote(file)} ${firstLine(answer)} (while downloading: the download goes on, its pieces are not served)`);
          }
        }
      },
      completed: async (served: ServedFile) => {
        this.table.set(served);
        const user = this.tracker.user();
        // Listed since its first piece, by the same upload_file line: sent again, it would only be committed, replicated
        // and told to every other member (file_shared) a second time.
        let remember = listed;
        if (!listed) {
          let reached = true;
          const answer = await this.tracker.request(this.uploadLine(served)).catch((e: unknown) => {
            reached = false;
            return `ERR ${errorText(e)}`;
          });
          const response = parseResponse(answer);
          // Not listed now, but only because no primary could take the write: the next login shares it.
          const later = !response.ok && (!reached || response.code === 'PRIMARY_UNAVAILABLE');
          if (user !== undefined && !response.ok) {
            this.notify(`share_not_announced ${group} ${quote(file)} ${firstLine(answer)}${later ? ' (remembered: the next login shares it)' : ''}`);
          }
          remember = response.ok || later;
        }
        if (user !== undefined && remember) {
          const info = await stat(served.path);
          const failure = await registryFailure(this.registry.put(user, {
            group, file, path: served.path, size: served.size, mtimeMs: info.mtimeMs, sha256: served.sha256,
            pieceSize: served.pieceSize, hashes: [...served.hashes],
          }));
          // The download itself succeeded: say so, but not as a failure of it.
          if (failure !== undefined) this.notify(`share_not_remembered ${group} ${quote(file)} ${failure}`);
        }
      },
      ended: (download: Download) => {
        if (download.status === 'complete') this.notify(`download_complete ${group} ${quote(file)}`);
        else this.notify(`download_failed ${group} ${quote(file)} ${download.reason}`);
      },
      withdraw: async (served: ServedFile) => {
        this.table.remove(served.group, served.sha256);
        // Bounded, like close(): a download stopped as the client leaves must not hold it up.
        if (this.tracker.user() !== undefined) await withTimeout(this.tracker.request(formatCommand(['stop_share', group, file])), STOP_SHARE_TIMEOUT_MS).catch(() => undefined);
      },
    };
  }

  /** The tracker's `upload_file` for a file this client serves (a share, or a download), at this client's peer address. */
  private uploadLine(f: Pick<ServedFile, 'group' | 'file' | 'size' | 'sha256' | 'pieceSize' | 'hashes'>): string {
    const hashes = f.hashes.length === 0 ? '-' : f.hashes.join(',');
    return formatCommand(['upload_file', f.group, f.file, String(f.size), f.sha256, String(f.pieceSize), this.announced ?? '', hashes]);
  }

  /**
   * The piece server found that what a share announced is no longer on disk
   * (the file deleted, cut short, or changed) and stopped serving it. Sharing
   * it ends as with `stop_share`: the tracker stops listing this client for it
   * (downloaders would wait on us for nothing), a download of it finishes
   * unshared, and the registry forgets it — the next login would otherwise
   * announce whatever the file holds then, which the user never chose to
   * share. The user is told once: nothing else would say why the file is gone
   * from `list_files`.
   */
  private async fileGone(served: ServedFile, reason: FileGoneReason): Promise<void> {
    const { group, file } = served;
    if (this.tracker.user() !== undefined) await this.tracker.request(formatCommand(['stop_share', group, file])).catch(() => undefined);
    const failure = await this.forgetShare(group, file);
    const unforgotten = failure === undefined ? '' : `; it could not be forgotten (the next login shares it again): ${failure}`;
    this.notify(`share_stopped ${group} ${quote(file)} ${fileGoneText(reason, served.path)}${unforgotten}`);
  }

  /** A line for a download that just ended, for notices. */
  describe(download: Download): string {
    return formatDownload(download);
  }
}

/** Why a share stopped by itself, for its `share_stopped` notice. */
function fileGoneText(reason: FileGoneReason, where: string): string {
  switch (reason) {
    case 'missing':
      return `the file is gone: ${where}`;
    case 'truncated':
      return `the file is shorter than when it was shared: ${where} (share it again to serve the new content)`;
    case 'changed':
      return `the file changed on disk since it was shared: ${where} (share it again to serve the new content)`;
  }
}

/** Waits for a registry change; `undefined` if it was saved, else why not. Never rejects. */
async function registryFailure(change: Promise<void>): Promise<string | undefined> {
  try {
    await change;
    return undefined;
  } catch (error) {
    return errorText(error);
  }
}

/** The first line of an answer, for a note. */
function firstLine(answer: string): string {
  const nl = answer.indexOf('\n');
  return nl < 0 ? answer : answer.slice(0, nl);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Why nothing can be created in `dir` (`EACCES`, `EPERM`, `EROFS` …), found by
 * creating a directory there and removing it — the download creates its
 * lock directory and part file there. Permission bits alone do not tell
 * (root, read-only mounts, /sys). Undefined when it can.
 */
async function cannotWriteIn(dir: string): Promise<string | undefined> {
  try {
    await rmdir(await mkdtemp(path.join(dir, '.tracker-client-check-')));
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? errorText(error);
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out')), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
