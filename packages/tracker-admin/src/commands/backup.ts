import { backupTracker } from '../backup.js';
import type { AdminCommand } from './command.js';
import { stringOption } from './command.js';

/** `tracker-admin backup --db data/primary.db --out backup/`: a consistent copy of a running tracker. */
export const backup: AdminCommand = {
  command: 'backup',
  describe: "copy a (running) tracker's database consistently: the state file, then its log, with SQLite's online backup",
  builder: (y) =>
    y
      .option('db', { type: 'string', demandOption: true, describe: "the tracker's --db (state file; <db>-log beside it)" })
      .option('out', { type: 'string', demandOption: true, describe: 'directory to write the backup into (created if missing, with its parents)' })
      .option('force', { type: 'boolean', default: false, describe: 'replace a backup already in --out' }),
  async run(argv, io) {
    const manifest = await backupTracker(stringOption(argv, 'db'), stringOption(argv, 'out'), { force: argv['force'] === true });
    io.out(
      `backed up ${manifest.source} to ${stringOption(argv, 'out')}: seq=${manifest.log.seq} log_hash=${manifest.log.logHash} ` +
        `(state at seq=${manifest.state.seq}, replayed from the log at start) history=${manifest.historyId} epoch=${manifest.epoch}\n`,
    );
    return 0;
  },
};
