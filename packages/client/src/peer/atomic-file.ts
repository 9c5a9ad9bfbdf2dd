import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';

/**
 * Replaces `target` with `text` atomically: written and synced to a new file
 * beside it, then renamed over it. The temporary file has a name of its own
 * (`<target>.<pid>-<random>.tmp`) and is created exclusively, so two writers
 * never share one, and a file or symlink planted there is never written
 * through (the write fails instead). It is removed if anything fails.
 */
export async function writeFileAtomically(target: string, text: string): Promise<void> {
  const tmp = `${target}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(tmp, 'wx');
  try {
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
  } catch (error) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw error;
  }
}
