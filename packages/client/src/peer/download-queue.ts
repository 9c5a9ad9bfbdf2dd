import type { Download } from './download.js';

/** Downloads run at once by default; the others wait their turn. */
export const DEFAULT_MAX_DOWNLOADS = 2;

/**
 * Downloads in the background, first come first served, at most `maxActive`
 * at once. Keeps every download of this run (queued, running, ended) for
 * `show_downloads`, in the order they were asked for.
 */
export class DownloadQueue {
  private readonly maxActive: number;
  private readonly all: Download[] = [];
  private readonly running = new Map<Download, Promise<void>>();
  private idleWaiters: (() => void)[] = [];

  constructor(maxActive = DEFAULT_MAX_DOWNLOADS) {
    this.maxActive = Math.max(1, maxActive);
  }

  list(): readonly Download[] {
    return this.all;
  }

  /** The queued or running download of `file` in `group`, if any. */
  active(group: string, file: string): Download | undefined {
    return this.all.find((d) => d.group === group && d.file === file && (d.status === 'queued' || d.status === 'running'));
  }

  /**
   * Position in the queue: 0 when it runs now, else 1 for the next to start.
   * A failed download of the same file is replaced (run again, it resumes):
   * `wait_downloads` then reports the new attempt, not the old failure.
   */
  add(download: Download): number {
    for (let i = this.all.length - 1; i >= 0; i--) {
      const old = this.all[i] as Download;
      if (old.status === 'failed' && old.group === download.group && old.file === download.file) this.all.splice(i, 1);
    }
    this.all.push(download);
    this.startMore();
    if (download.status !== 'queued') return 0;
    return this.all.filter((d) => d.status === 'queued').indexOf(download) + 1;
  }

  get busy(): boolean {
    return this.all.some((d) => d.status === 'queued' || d.status === 'running');
  }

  /** Resolves when nothing is queued or running. */
  whenIdle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops every download (they keep their verified pieces) and waits for them to wind down. */
  async abortAll(reason: string): Promise<void> {
    await this.abortWhere(() => true, reason);
  }

  /**
   * Stops the queued and running downloads that `which` picks (they keep their
   * verified pieces) and waits for them to wind down; returns them.
   */
  async abortWhere(which: (download: Download) => boolean, reason: string): Promise<Download[]> {
    const stopped = this.all.filter((d) => (d.status === 'queued' || d.status === 'running') && which(d));
    for (const d of stopped) d.abort(reason);
    // Also those winding down already (failed, cleaning up): when this resolves, none of them touches its files.
    await Promise.all([...this.running].filter(([d]) => which(d)).map(([, job]) => job));
    this.notifyIdle();
    return stopped;
  }

  private startMore(): void {
    while (this.running.size < this.maxActive) {
      const next = this.all.find((d) => d.status === 'queued');
      if (!next) break;
      const job: Promise<void> = next.run().finally(() => {
        this.running.delete(next);
        this.startMore();
        this.notifyIdle();
      });
      this.running.set(next, job);
    }
  }

  private notifyIdle(): void {
    if (this.busy) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
