/**
 * Bytes shared by many holders, with a ceiling: each connection bounds its
 * own backlog of unread events, and this bounds all of them together, so
 * that many peers that stop reading cannot take the tracker's memory even
 * while each stays under its own cap (docs/protocol.md §2, backpressure).
 */
export class ByteBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  /** Takes `bytes` if they fit under the ceiling; false (and nothing taken) otherwise. */
  take(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }

  get inUse(): number {
    return this.used;
  }
}
