import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { writeFileAtomically } from './atomic-file.js';

/** One file this user shares, as remembered between runs. */
export interface ShareRecord {
  group: string;
  file: string;
  /** Absolute path of the file on this machine. */
  path: string;
  size: number;
  /** Modification time when it was hashed: a changed file is hashed again before it is re-announced. */
  mtimeMs: number;
  sha256: string;
  pieceSize: number;
  hashes: string[];
}

interface RegistryFile {
  version: 1;
  user: string;
  shares: ShareRecord[];
}

/**
 * How long a registry lock may go without its holder refreshing it before
 * another process takes it over (its holder was killed). proper-lockfile
 * refreshes a held lock every `stale / 2` ms.
 */
const LOCK_STALE_MS = 10_000;

/** Waiting for a lock: exponential back-off, 10-250 ms, about 25 s in all (longer than `LOCK_STALE_MS`). */
const LOCK_RETRIES = { retries: 100, factor: 1.5, minTimeout: 10, maxTimeout: 250, randomize: true };

/**
 * The shares a user made from this machine, in `<data-dir>/shares-<user>.json`,
 * so that the next `login` as that user re-announces them. The data
 * directory is created on the first write only.
 *
 * Several client processes may share one data directory (a `--serve`
 * seeder and a prompt, both logged in as the same user): every change is a
 * read-modify-write under a lock on `shares-<user>.json.lock` (a directory,
 * proper-lockfile: works on network file systems; a lock whose holder died
 * is taken over after `LOCK_STALE_MS`), and one change at a time within a
 * process. The file is replaced atomically (`writeFileAtomically`).
 * Readers need no lock.
 */
export class ShareRegistry {
  readonly dataDir: string;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(dataDir: string) {
    this.dataDir = dataDir;
  }

  fileFor(user: string): string {
    return path.join(this.dataDir, `shares-${user}.json`);
  }

  /** The user's shares; none when there is no registry yet (or it is not valid JSON). Rejects on other read errors. */
  async load(user: string): Promise<ShareRecord[]> {
    await this.chain.catch(() => undefined);
    return this.read(user);
  }

  /** Adds or replaces the share of `record.file` in `record.group`. */
  put(user: string, record: ShareRecord): Promise<void> {
    return this.update(user, (shares) => [...shares.filter((s) => !(s.group === record.group && s.file === record.file)), record]);
  }

  remove(user: string, group: string, file: string): Promise<void> {
    return this.update(user, (shares) => shares.filter((s) => !(s.group === group && s.file === file)));
  }

  /** Forgets every share in `group` (the user left it). */
  removeGroup(user: string, group: string): Promise<void> {
    return this.update(user, (shares) => shares.filter((s) => s.group !== group));
  }

  /** Replaces the whole list. */
  replace(user: string, shares: ShareRecord[]): Promise<void> {
    return this.update(user, () => shares);
  }

  private async read(user: string): Promise<ShareRecord[]> {
    let text: string;
    try {
      text = await readFile(this.fileFor(user), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    try {
      const data = JSON.parse(text) as Partial<RegistryFile>;
      return Array.isArray(data.shares) ? data.shares.filter(isRecord) : [];
    } catch {
      return [];
    }
  }

  /** One change at a time in this process (the chain), and across processes (the lock). */
  private update(user: string, change: (shares: ShareRecord[]) => ShareRecord[]): Promise<void> {
    const next = this.chain.catch(() => undefined).then(() => this.locked(user, change));
    this.chain = next;
    return next;
  }

  private async locked(user: string, change: (shares: ShareRecord[]) => ShareRecord[]): Promise<void> {
    await mkdir(this.dataDir, { recursive: true });
    const target = this.fileFor(user);
    let compromised: Error | undefined;
    const release = await lockfile.lock(target, {
      realpath: false, // the registry may not exist yet
      stale: LOCK_STALE_MS,
      retries: LOCK_RETRIES,
      // The default throws from a timer, which would crash the client.
      onCompromised: (error) => {
        compromised = error;
      },
    });
    try {
      const body: RegistryFile = { version: 1, user, shares: change(await this.read(user)) };
      await writeFileAtomically(target, `${JSON.stringify(body, null, 1)}\n`);
    } finally {
      await release().catch(() => undefined); // a compromised lock is already released
    }
    if (compromised) throw compromised;
  }
}

function isRecord(value: unknown): value is ShareRecord {
  const r = value as Partial<ShareRecord> | null;
  return (
    typeof r === 'object' && r !== null &&
    typeof r.group === 'string' && typeof r.file === 'string' && typeof r.path === 'string' &&
    typeof r.size === 'number' && typeof r.mtimeMs === 'number' && typeof r.sha256 === 'string' &&
    typeof r.pieceSize === 'number' && Array.isArray(r.hashes)
  );
}
