import { counted, quote } from '@tracker-cluster/protocol';

/** What a download line shows: a `Download` has all of it (kept structural so that this module needs nothing of it). */
export interface DownloadView {
  readonly group: string;
  readonly file: string;
  readonly status: 'queued' | 'running' | 'complete' | 'failed';
  readonly reason: string;
  readonly meta: { readonly size: number };
  readonly bytesDone: number;
  readonly rate: number;
  readonly activePeers: number;
  readonly resumedPieces: number;
  readonly banned: { readonly size: number };
  readonly sources: { readonly size: number };
}

/**
 * What `show_downloads` and `wait_downloads` print, one line a download:
 *
 *   [D] [group] file  42% [########............] 12.3 MB/s peers=3
 *   [C] [group] file 100% size=1048576 12.3 MB/s sources=3 resumed=0 banned=0
 *   [F] [group] file failed: <reason>
 *
 * `[Q]` is a download waiting for its turn. File names with spaces are quoted.
 */
const BAR = 20;

export function progressBar(fraction: number, width = BAR): string {
  const full = Math.max(0, Math.min(width, Math.floor(fraction * width)));
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${(bytesPerSecond / 1e6).toFixed(1)} MB/s`;
}

function percent(d: DownloadView): number {
  if (d.meta.size === 0) return d.status === 'complete' ? 100 : 0;
  return Math.floor((d.bytesDone / d.meta.size) * 100);
}

export function formatDownload(d: DownloadView): string {
  const name = `[${d.group}] ${quote(d.file)}`;
  const extras = (): string => {
    const banned = d.banned.size > 0 ? ` banned=${d.banned.size}` : '';
    return `${banned}`;
  };
  switch (d.status) {
    case 'queued':
      return `[Q] ${name} queued`;
    case 'running': {
      const p = percent(d);
      return `[D] ${name} ${String(p).padStart(3)}% ${progressBar(p / 100)} ${formatRate(d.rate)} peers=${d.activePeers}${extras()}`;
    }
    case 'complete':
      return `[C] ${name} 100% size=${d.meta.size} ${formatRate(d.rate)} sources=${d.sources.size} resumed=${d.resumedPieces}${extras()}`;
    case 'failed':
      return `[F] ${name} failed: ${d.reason}`;
  }
}

/** A download's state as `show_downloads` names it (`[Q]`, `[D]`, `[C]`, `[F]`). */
export type DownloadStateName = 'queued' | 'downloading' | 'complete' | 'failed';

const STATE_NAMES: Readonly<Record<DownloadView['status'], DownloadStateName>> = {
  queued: 'queued',
  running: 'downloading',
  complete: 'complete',
  failed: 'failed',
};

/**
 * One download as `--json` shows it: the fields of its text line as data,
 * every key in every row whatever the state, so that a program reads them
 * without parsing the line (`reason` is null unless it failed).
 */
export type DownloadRow = {
  group: string;
  file: string;
  state: DownloadStateName;
  percent: number;
  size: number;
  bytes_per_second: number;
  peers: number;
  sources: number;
  resumed: number;
  banned: number;
  reason: string | null;
};

export function downloadRow(d: DownloadView): DownloadRow {
  return {
    group: d.group,
    file: d.file,
    state: STATE_NAMES[d.status],
    percent: percent(d),
    size: d.meta.size,
    bytes_per_second: Math.round(d.rate),
    peers: d.activePeers,
    sources: d.sources.size,
    resumed: d.resumedPieces,
    banned: d.banned.size,
    reason: d.status === 'failed' ? d.reason : null,
  };
}

/** What `show_downloads` and `wait_downloads` answer: the text, and the same downloads as rows for `--json`. */
export interface DownloadListing {
  payload: string;
  rows: DownloadRow[];
}

/**
 * `show_downloads`' answer, `OK <n>` then one line per download; or
 * `wait_downloads`' (`failedIsError`), whose first line is `ERR
 * DOWNLOAD_FAILED <k> of <n> downloads failed` when any failed (downloadsFailedLine). Text and
 * rows come from one look at the list.
 */
export function downloadListing(list: readonly DownloadView[], failedIsError = false): DownloadListing {
  const rows = list.map(downloadRow);
  const failed = rows.filter((r) => r.state === 'failed').length;
  const head = failedIsError && failed > 0 ? downloadsFailedLine(failed, list.length) : `OK ${list.length}`;
  return { payload: [head, ...list.map(formatDownload)].join('\n'), rows };
}

/** The first line of `wait_downloads` when `failed` of the `total` downloads it lists failed. */
export function downloadsFailedLine(failed: number, total: number): string {
  return `ERR DOWNLOAD_FAILED ${failed} of ${counted(total, 'download')} failed`;
}

/**
 * Why a download that verified no piece for `stallMs` failed: peers that
 * answered nothing useful, peers dropped for bad data, none reachable, or
 * none but this client listed by the tracker (`othersListed` 0: the peers
 * of the last `file_peers` answer, this client's own address left out).
 */
export function stallReason(connected: number, banned: number, stallMs: number, lastPeerError?: string, othersListed?: number): string {
  const why =
    connected > 0
      ? 'the peers sent no usable piece'
      : banned > 0
        ? `no usable peer (${banned} dropped for sending bad data; no other could be reached)`
        : othersListed === 0
          ? 'no other peer shares it (the tracker lists only this client)'
          : 'no peer could be reached';
  const detail = lastPeerError ? ` (last peer error: ${lastPeerError})` : '';
  return `stalled: ${why} for ${Math.round(stallMs / 1000)} s${detail}`;
}

/** What a download with no peer connected knows of why (see `noPeerReason`). */
export interface NoPeerView {
  /** How long it went without a peer, in seconds. */
  seconds: number;
  /** The listed peers (this client left out, banned ones too) that failed, and how: `ECONNREFUSED`, `NO_SUCH_FILE …`. */
  failed: readonly { peer: string; error: string }[];
  /** Peers other than this client in the last `file_peers` answer (undefined until one came). */
  othersListed: number | undefined;
  /** The last `file_peers` failure, if the last one failed (`ERR NO_SUCH_FILE nobody shares …`). */
  trackerError: string | undefined;
  /** Peers dropped for sending bad data. */
  banned: number;
}

/**
 * Why a download failed for want of any peer for `seconds`: the tracker now
 * says nobody shares it; or each listed peer with how it failed (refused or
 * unreachable, or does not have the file); or the tracker lists nobody
 * else. Shows at most 3 peers' errors.
 */
export function noPeerReason(view: NoPeerView): string {
  const { failed, banned } = view;
  const dropped = banned > 0 ? `; ${banned} dropped for sending bad data` : '';
  let why: string;
  if (view.trackerError?.includes('NO_SUCH_FILE') === true) {
    why = `nobody shares it any more (tracker: ${view.trackerError})`;
  } else if (failed.length > 0) {
    const unreachable = failed.every((f) => /^E[A-Z]+$|connection closed$/.test(f.error));
    const absent = failed.every((f) => f.error.startsWith('NO_SUCH_FILE'));
    const how = unreachable ? ['could not be reached', 'could be reached'] : absent ? ['does not have the file', 'has the file'] : ['could not be used', 'could be used'];
    const shown = failed.slice(0, 3).map((f) => `${f.peer}: ${f.error}`);
    if (failed.length > 3) shown.push(`${failed.length - 3} more`);
    const who = failed.length === 1 ? `the only peer the tracker lists ${how[0]}` : `none of the ${failed.length} peers the tracker lists ${how[1]}`;
    why = `${who} (${shown.join('; ')})${dropped}`;
  } else if (view.trackerError !== undefined) {
    why = `the tracker could not tell who shares it (tracker: ${view.trackerError})`;
  } else if (banned > 0) {
    why = `${banned} peer${banned === 1 ? '' : 's'} dropped for sending bad data, no other to try`;
  } else if (view.othersListed === 0) {
    why = 'the tracker lists no peer but this client';
  } else {
    why = 'no peer could be reached';
  }
  return `no usable peer for ${view.seconds} s: ${why}`;
}

/** The note for a share the tracker ended with the session (expired, or logged out elsewhere). */
export function sessionEndedShareNote(group: string, file: string): string {
  return `[share] session ended: ${quote(file)} in ${group} is no longer shared; log in again to share it`;
}
