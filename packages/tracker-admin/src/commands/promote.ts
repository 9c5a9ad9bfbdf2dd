import { parseHostPort } from '@tracker-cluster/protocol';
import { requestPromotion } from '@tracker-cluster/tracker-core';
import type { AdminCommand } from './command.js';
import { UsageError, stringOption } from './command.js';

/**
 * `tracker-admin promote --tracker HOST:PORT [--secret S]`: makes a replica
 * the primary of a new epoch (docs/protocol.md §6, promotion). The secret is
 * proved by HMAC, never sent; it comes from `--secret` or `TRACKER_SECRET`.
 * Exit 0 when the tracker is primary afterwards (promoted now or already),
 * 1 when it refused or could not be reached.
 */
export const promote: AdminCommand = {
  command: 'promote',
  describe: 'make a replica the primary (epoch + 1, new history); the old primary is fenced when it meets it',
  builder: (y) =>
    y
      .option('tracker', { type: 'string', demandOption: true, describe: "HOST:PORT of the tracker to promote (its client port)" })
      .option('secret', { type: 'string', describe: 'the cluster secret (prefer TRACKER_SECRET)' })
      .option('timeout', { type: 'number', default: 10, describe: 'seconds to wait for the answer' }),
  async run(argv, io) {
    const text = stringOption(argv, 'tracker');
    let address;
    try {
      address = parseHostPort(text.trim());
    } catch (error) {
      throw new UsageError(`--tracker: ${(error as Error).message}`);
    }
    const secret = typeof argv['secret'] === 'string' ? argv['secret'] : io.env['TRACKER_SECRET'];
    if (secret === undefined || secret === '') throw new UsageError('give the cluster secret: --secret S or TRACKER_SECRET');
    const timeout = Number(argv['timeout']);
    if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError('--timeout must be a positive number of seconds');
    try {
      const answer = await requestPromotion(address, secret, timeout * 1000);
      const ok = answer.startsWith('OK ');
      (ok ? io.out : io.err)(`${text}: ${answer}\n`);
      return ok ? 0 : 1;
    } catch (error) {
      io.err(`${text}: ${(error as Error).message}\n`);
      return 1;
    }
  },
};
