import { restoreBackup } from '../backup.js';
import type { AdminCommand } from './command.js';
import { stringOption } from './command.js';

/** `tracker-admin restore --from backup/ --db data/primary.db`: put a backup in place, for a stopped tracker. */
export const restore: AdminCommand = {
  command: 'restore',
  describe: 'check a backup and put it in place of a STOPPED tracker\'s database (--db and <db>-log)',
  builder: (y) =>
    y
      .option('from', { type: 'string', demandOption: true, describe: 'a directory written by tracker-admin backup' })
      .option('db', { type: 'string', demandOption: true, describe: 'the --db the tracker will be started with' })
      .option('force', { type: 'boolean', default: false, describe: 'replace an existing database there (the tracker must be stopped)' }),
  async run(argv, io) {
    const db = stringOption(argv, 'db');
    const manifest = await restoreBackup(stringOption(argv, 'from'), db, { force: argv['force'] === true });
    io.out(`restored ${db} at seq=${manifest.log.seq} (backup of ${manifest.createdAt}); start the tracker with --db ${db}\n`);
    return 0;
  },
};
