import { backup } from './backup.js';
import type { AdminCommand } from './command.js';
import { health } from './health.js';
import { promote } from './promote.js';
import { restore } from './restore.js';
import { verify } from './verify.js';

/** Every subcommand, in `--help` order. A new one is a new file here and one line in this list. */
export const COMMANDS: readonly AdminCommand[] = [promote, backup, restore, verify, health];
