import { AddressError, TrackerError, counted, formatHostPort, formatRow, isValidFileName, ok, okList, parseHostPort, quote } from '@tracker-cluster/protocol';
import type { Reply } from '../services.js';
import { checkName, existingGroup, requireMember } from './checks.js';
import type { Command } from './command.js';
import { commit, sessionOf, userOf } from './command.js';

/**
 * File metadata (PROTOCOL.md §3). Trackers never hold file bytes: a share
 * says that one session's client serves a file's pieces at `peer`. A share
 * belongs to the session that made it and ends with it.
 */

export const MAX_PIECE_SIZE = 64 * 1024 * 1024;
const SHA256 = /^[0-9a-f]{64}$/;
const SIZE = /^(0|[1-9][0-9]*)$/;

interface FileMeta {
  size: number;
  sha256: string;
  pieceSize: number;
  hashes: string;
}

function bad(message: string): never {
  throw new TrackerError('BAD_REQUEST', message);
}

function checkFileName(file: string): void {
  if (!isValidFileName(file)) bad('invalid file name: 1-255 bytes of UTF-8, no "/" and no control characters');
}

export function pieceCount(size: number, pieceSize: number): number {
  return size === 0 ? 0 : Math.ceil(size / pieceSize);
}

function parseMeta(size: string, sha256: string, pieceSize: string, hashes: string): FileMeta {
  if (!SIZE.test(size)) bad('size must be a whole number of bytes');
  if (!Number.isSafeInteger(Number(size))) bad('size must be at most 2^53-1 bytes (9007199254740991)');
  if (!SHA256.test(sha256)) bad('sha256 must be 64 lowercase hex digits');
  if (!SIZE.test(pieceSize) || Number(pieceSize) < 1 || Number(pieceSize) > MAX_PIECE_SIZE) {
    bad(`piece_size must be from 1 to ${MAX_PIECE_SIZE} bytes`);
  }
  const meta = { size: Number(size), sha256, pieceSize: Number(pieceSize), hashes };
  const pieces = pieceCount(meta.size, meta.pieceSize);
  if (pieces === 0) {
    if (hashes !== '-') bad('an empty file has no pieces: hashes must be -');
  } else {
    const list = hashes.split(',');
    if (list.length !== pieces) bad(`a file of ${counted(meta.size, 'byte')} in pieces of ${meta.pieceSize} has ${counted(pieces, 'piece')}; ${counted(list.length, 'hash', 'hashes')} given`);
    if (!list.every((h) => SHA256.test(h))) bad('each piece hash must be 64 lowercase hex digits');
  }
  return meta;
}

/** The peer address in its canonical form: what `file_peers` hands to other clients. */
function parsePeer(peer: string): string {
  try {
    return formatHostPort(parseHostPort(peer));
  } catch (error) {
    if (error instanceof AddressError) bad(`peer must be HOST:PORT where your client serves pieces: ${error.message}`);
    throw error;
  }
}

export const uploadFile: Command = {
  name: 'upload_file',
  auth: true,
  args: ['group', 'file', 'size', 'sha256', 'piece_size', 'peer', 'hashes'],
  summary: 'share a file with a group: its metadata, and where your client serves its pieces (members only)',
  write: true,
  async run(ctx, [group, file, size, sha256, pieceSize, peer, hashes]): Promise<Reply> {
    checkName('group', group as string);
    checkFileName(file as string);
    const meta = parseMeta(size as string, sha256 as string, pieceSize as string, hashes as string);
    const address = parsePeer(peer as string);
    requireMember(ctx, group as string);
    const { store, clock, options } = ctx.services;
    const known = store.file(group as string, file as string);
    if (known && (known.sha256 !== meta.sha256 || known.size !== meta.size || known.piece_size !== meta.pieceSize || known.hashes !== meta.hashes)) {
      throw new TrackerError('FILE_CONFLICT', `${group} already has another file named ${quote(file as string)}`);
    }
    const now = clock.now();
    const { key } = sessionOf(ctx);
    const user = userOf(ctx);
    // The quota counts files: the same file shared from another of the user's sessions is not one more.
    const anotherFile = !store.userSharesLive(user, group as string, file as string, now);
    if (anotherFile && store.liveSharedFileCount(user, now) >= options.maxSharesPerUser) {
      throw new TrackerError('QUOTA_EXCEEDED', `you already share ${counted(options.maxSharesPerUser, 'file')}; stop sharing one first`);
    }
    // This session's share counts once, whether it is new or renewed.
    const seeders = store.liveSeeders(group as string, file as string, now) + (store.hasShare(key, group as string, file as string) ? 0 : 1);
    const body = {
      type: 'file_shared',
      group: group as string,
      file: file as string,
      size: meta.size,
      sha256: meta.sha256,
      piece_size: meta.pieceSize,
      hashes: meta.hashes,
      session: key,
      user,
      peer: address,
      at: now,
    } as const;
    return commit(ctx, body, { payload: ok(`shared ${quote(file as string)} seeders=${seeders}`) });
  },
};

export const listFiles: Command = {
  name: 'list_files',
  auth: true,
  args: ['group'],
  summary: 'files of a group that someone shares now, by name (members only)',
  run(ctx, [group]): Reply {
    checkName('group', group as string);
    requireMember(ctx, group as string);
    const { store, clock } = ctx.services;
    const rows = store
      .listLiveFiles(group as string, clock.now())
      .map((f) => formatRow(f.name, { size: f.size, sha256: f.sha256, seeders: f.seeders }));
    return { payload: okList(rows) };
  },
};

export const filePeers: Command = {
  name: 'file_peers',
  auth: true,
  args: ['group', 'file'],
  summary: "a file's metadata, piece hashes and the peers that serve it (members only)",
  run(ctx, [group, file]): Reply {
    checkName('group', group as string);
    checkFileName(file as string);
    requireMember(ctx, group as string);
    const { store, clock } = ctx.services;
    const meta = store.file(group as string, file as string);
    const peers = meta ? store.livePeers(group as string, file as string, clock.now()) : [];
    if (!meta || peers.length === 0) throw new TrackerError('NO_SUCH_FILE', `nobody shares ${quote(file as string)} in ${group}`);
    const lines = [
      `OK ${formatRow(meta.name, {
        size: meta.size,
        sha256: meta.sha256,
        piece_size: meta.piece_size,
        pieces: pieceCount(meta.size, meta.piece_size),
        peers: peers.length,
      })}`,
      `hashes ${meta.hashes}`,
      ...peers.map((p) => `peer ${p.user} ${p.peer}`),
    ];
    return { payload: lines.join('\n') };
  },
};

export const stopShare: Command = {
  name: 'stop_share',
  auth: true,
  args: ['group', 'file'],
  summary: 'stop sharing a file (this session)',
  write: true,
  async run(ctx, [group, file]): Promise<Reply> {
    checkName('group', group as string);
    checkFileName(file as string);
    existingGroup(ctx, group as string);
    const { store } = ctx.services;
    const { key } = sessionOf(ctx);
    if (!store.hasShare(key, group as string, file as string)) {
      throw new TrackerError('NO_SUCH_FILE', `this session does not share ${quote(file as string)} in ${group}`);
    }
    return commit(ctx, { type: 'share_stopped', session: key, group: group as string, file: file as string }, { payload: ok(`stopped sharing ${quote(file as string)}`) });
  },
};
