import os from 'node:os';
import path from 'node:path';

/**
 * A local path as the user typed it (a command's argument, `--data-dir`):
 * a leading `~` or `~/` is the user's home directory (`os.homedir()`), as a
 * shell would expand it; a command line typed at the prompt or given to
 * `--exec` never goes through a shell. `~user` and a `~` further on are
 * left as they are. Pure but for `home`.
 */
export function expandHome(typed: string, home: () => string = os.homedir): string {
  if (typed === '~') return home();
  if (typed.startsWith('~/') || (path.sep !== '/' && typed.startsWith(`~${path.sep}`))) return path.join(home(), typed.slice(2));
  return typed;
}
