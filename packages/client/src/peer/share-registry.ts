import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

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
 * The shares a user made from this machine, in `<data-dir>/shares-<user>.json`,
 * so that the next `login` as that user re-announces them. Written
 * atomically (temporary file, rename), one write at a time. The data
 * directory is created on the first write only.
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

  async load(user: string): Promise<ShareRecord[]> {
    await this.chain.catch(() => undefined);
    try {
      const data = JSON.parse(await readFile(this.fileFor(user), 'utf8')) as Partial<RegistryFile>;
      return Array.isArray(data.shares) ? data.shares.filter(isRecord) : [];
    } catch {
      return [];
    }
  }

  /** Adds or replaces the share of `record.file` in `record.group`. */
  put(user: string, record: ShareRecord): Promise<void> {
    return this.update(user, (shares) => [...shares.filter((s) => !(s.group === record.group && s.file === record.file)), record]);
  }

  remove(user: string, group: string, file: string): Promise<void> {
    return this.update(user, (shares) => shares.filter((s) => !(s.group === group && s.file === file)));
  }

  /** Replaces the whole list. */
  replace(user: string, shares: ShareRecord[]): Promise<void> {
    return this.update(user, () => shares);
  }

  private update(user: string, change: (shares: ShareRecord[]) => ShareRecord[]): Promise<void> {
    const next = this.chain.catch(() => undefined).then(async () => {
      let shares: ShareRecord[] = [];
      try {
        const data = JSON.parse(await readFile(this.fileFor(user), 'utf8')) as Partial<RegistryFile>;
        if (Array.isArray(data.shares)) shares = data.shares.filter(isRecord);
      } catch {
        // none yet
      }
      const body: RegistryFile = { version: 1, user, shares: change(shares) };
      await mkdir(this.dataDir, { recursive: true });
      const target = this.fileFor(user);
      await writeFile(`${target}.tmp`, `${JSON.stringify(body, null, 1)}\n`);
      await rename(`${target}.tmp`, target);
    });
    this.chain = next;
    return next;
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
