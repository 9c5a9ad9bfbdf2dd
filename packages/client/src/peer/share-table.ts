import type { Bitfield } from './bitfield.js';

/** A file this client serves now, in one group. */
export interface ServedFile {
  group: string;
  /** The name it is shared under. */
  file: string;
  sha256: string;
  size: number;
  pieceSize: number;
  /** Where its bytes are: the shared file, or a download's `.part` file until it completes. */
  path: string;
  /** The pieces held (all of them for a shared file; the verified ones for a download). Shared, live. */
  have: Bitfield;
  /**
   * SHA-256 of each piece (hex), as announced: a piece read back from disk is
   * checked against it before it is sent, so that a file changed since it was
   * shared is never served as the announced one.
   */
  hashes: readonly string[];
}

/**
 * What the piece server may serve: the share context is the pair
 * (group, sha256). An entry exists only while this client's session shares
 * the file with the tracker (cleared on logout: sharing is paused).
 */
export class ShareTable {
  private readonly byKey = new Map<string, ServedFile>();

  private static key(group: string, sha256: string): string {
    return `${group}\u0000${sha256}`;
  }

  get(group: string, sha256: string): ServedFile | undefined {
    return this.byKey.get(ShareTable.key(group, sha256));
  }

  set(entry: ServedFile): void {
    this.byKey.set(ShareTable.key(entry.group, entry.sha256), entry);
  }

  /** Stops serving the file shared as `file` in `group`; true if there was one. */
  removeByName(group: string, file: string): boolean {
    for (const [key, entry] of this.byKey) {
      if (entry.group === group && entry.file === file) {
        this.byKey.delete(key);
        return true;
      }
    }
    return false;
  }

  remove(group: string, sha256: string): void {
    this.byKey.delete(ShareTable.key(group, sha256));
  }

  clear(): void {
    this.byKey.clear();
  }

  get size(): number {
    return this.byKey.size;
  }

  list(): ServedFile[] {
    return [...this.byKey.values()];
  }
}
