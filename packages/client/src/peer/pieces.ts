/**
 * Piece arithmetic (PROTOCOL.md §3): a file of `size` bytes is cut into
 * pieces of `pieceSize` bytes, the last one shorter; an empty file has no
 * pieces. Pure.
 */
import { counted } from '@tracker-cluster/protocol';

/** Default piece size of `upload_file <path> <group>`: 512 KiB. */
export const DEFAULT_PIECE_SIZE = 512 * 1024;
/** The tracker's bound on piece_size (PROTOCOL.md §3): 64 MiB. */
export const MAX_PIECE_SIZE = 64 * 1024 * 1024;

export interface PieceLayout {
  size: number;
  pieceSize: number;
}

export function pieceCount(size: number, pieceSize: number): number {
  return size === 0 ? 0 : Math.ceil(size / pieceSize);
}

/** Byte offset of piece `index`. */
export function pieceOffset(layout: PieceLayout, index: number): number {
  return index * layout.pieceSize;
}

/** Length of piece `index` (the last one may be shorter). */
export function pieceLength(layout: PieceLayout, index: number): number {
  const count = pieceCount(layout.size, layout.pieceSize);
  if (!Number.isInteger(index) || index < 0 || index >= count) throw new RangeError(`no piece ${index} in ${counted(count, 'piece')}`);
  return index === count - 1 ? layout.size - index * layout.pieceSize : layout.pieceSize;
}

/**
 * A piece size as typed: bytes (`65536`) or with a binary suffix
 * (`64k`, `512K`, `1m`, `4MiB`). Undefined when not valid or out of 1 B–64 MiB.
 */
export function parsePieceSize(text: string): number | undefined {
  const m = /^([0-9]+)\s*(k|kb|kib|m|mb|mib)?$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? '').toLowerCase();
  const value = Number(m[1]) * (unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 * 1024 : 1);
  return Number.isSafeInteger(value) && value >= 1 && value <= MAX_PIECE_SIZE ? value : undefined;
}
