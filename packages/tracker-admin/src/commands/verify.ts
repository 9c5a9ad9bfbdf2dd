import { readBackup } from '../backup.js';
import type { AdminCommand } from './command.js';
import { stringOption } from './command.js';

/** `tracker-admin verify --from backup/`: is this backup whole and startable? */
export const verify: AdminCommand = {
  command: 'verify',
  describe: 'check a backup directory: both files intact (quick_check) and belonging together',
  builder: (y) => y.option('from', { type: 'string', demandOption: true, describe: 'a directory written by tracker-admin backup' }),
  async run(argv, io) {
    const { manifest } = await readBackup(stringOption(argv, 'from'));
    io.out(`ok: seq=${manifest.log.seq} log_hash=${manifest.log.logHash} history=${manifest.historyId} epoch=${manifest.epoch} created=${manifest.createdAt}\n`);
    return 0;
  },
};
