import * as fs from 'node:fs';

/**
 * Makes a WAL file's commits durable with `fdatasync`, off the event loop.
 *
 * SQLite's `synchronous=FULL` syncs the WAL inside `COMMIT`, on the calling
 * thread: 0.5–1 ms per batch during which the tracker answers nobody and
 * applies nothing. Instead the log connection runs `synchronous=NORMAL`
 * (commits are written, not synced; checkpoints still sync the WAL before
 * copying it and the database after) and the tracker syncs the WAL itself,
 * on libuv's thread pool, before it answers anyone. That is the same
 * durability as FULL for every answered change, and the batches that
 * arrive while one sync runs are committed meanwhile and share the next
 * sync (group commit without a stall).
 *
 * On Linux `fdatasync` flushes the file, whichever descriptor names it: this
 * one is ours, opened beside SQLite's. SQLite unlinks a WAL only when its
 * last connection closes, and the tracker's log connection stays open as long
 * as this object is used; `syncNow` still checks that the path names the file
 * we hold, so that a replaced WAL can never be "synced" through a stale
 * descriptor.
 */
export class WalSync {
  readonly path: string;
  private fd: number;
  private running: Promise<void> | undefined;
  /** The sync that starts when `running` ends: it covers whatever was written after `running` began. */
  private next: Promise<void> | undefined;

  constructor(walPath: string) {
    this.path = walPath;
    // O_CREAT: the WAL exists once SQLite opened in WAL mode, but an empty one is harmless if not.
    this.fd = fs.openSync(walPath, fs.constants.O_RDONLY | fs.constants.O_CREAT, 0o600);
  }

  /**
   * Resolves once everything written to the WAL before this call is on disk;
   * rejects when the sync fails (the caller must then stop: after a failed
   * fsync the kernel may have dropped the dirty pages, so nothing that was
   * written can be trusted to be durable).
   */
  sync(): Promise<void> {
    if (this.running === undefined) return this.start();
    // A sync already running may have begun before our writes: wait for the one after it.
    this.next ??= this.running.then(
      () => this.startQueued(),
      () => this.startQueued(),
    );
    return this.next;
  }

  /** Syncs now, on this thread (rare: before the state file is committed, at shutdown). */
  syncNow(): void {
    const onDisk = fs.statSync(this.path, { throwIfNoEntry: false });
    const held = fs.fstatSync(this.fd);
    if (onDisk === undefined || onDisk.ino !== held.ino || onDisk.dev !== held.dev) {
      throw new Error(`the WAL file ${this.path} was replaced while the tracker held it open`);
    }
    fs.fdatasyncSync(this.fd);
  }

  close(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
  }

  private startQueued(): Promise<void> {
    this.next = undefined;
    return this.start();
  }

  private start(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      fs.fdatasync(this.fd, (error) => (error ? reject(error) : resolve()));
    });
    this.running = done;
    const clear = (): void => {
      if (this.running === done) this.running = undefined;
    };
    done.then(clear, clear);
    return done;
  }
}
