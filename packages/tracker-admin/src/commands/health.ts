import { parseHostPort } from '@tracker-cluster/protocol';
import type { AdminCommand } from './command.js';
import { UsageError } from './command.js';

/**
 * `tracker-admin health [--admin HOST:PORT] [--ready]`: asks a tracker's admin
 * listener for `/healthz` (or `/readyz`); exit 0 on 200, 1 otherwise. Without
 * `--admin` it uses the tracker's own `TRACKER_ADMIN_HOST`/`TRACKER_ADMIN_PORT`,
 * which is what a container healthcheck wants (no curl in a slim image).
 */
export const health: AdminCommand = {
  command: 'health',
  describe: "ask a tracker's admin listener whether it is alive (/healthz) or ready (/readyz); exit 0 or 1",
  builder: (y) =>
    y
      .option('admin', { type: 'string', describe: 'HOST:PORT of the admin listener (default: TRACKER_ADMIN_HOST:TRACKER_ADMIN_PORT)' })
      .option('ready', { type: 'boolean', default: false, describe: 'ask /readyz instead of /healthz' })
      .option('timeout', { type: 'number', default: 5, describe: 'seconds to wait for the answer' }),
  async run(argv, io) {
    const url = `http://${adminAddress(argv['admin'], io.env)}${argv['ready'] === true ? '/readyz' : '/healthz'}`;
    const timeout = Number(argv['timeout']);
    if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError('--timeout must be a positive number of seconds');
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeout * 1000) });
      const body = (await res.text()).trim();
      (res.ok ? io.out : io.err)(`${url}: ${res.status} ${body}\n`);
      return res.ok ? 0 : 1;
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      io.err(`${url}: no answer (${cause})\n`);
      return 1;
    }
  },
};

/** The admin listener to ask, as `host:port` for a URL; a wildcard bind address is asked on loopback. */
function adminAddress(flag: unknown, env: Readonly<Record<string, string | undefined>>): string {
  let host: string;
  let port: number;
  if (typeof flag === 'string') {
    try {
      ({ host, port } = parseHostPort(flag.trim()));
    } catch (error) {
      throw new UsageError(`--admin: ${(error as Error).message}`);
    }
  } else {
    const envPort = env['TRACKER_ADMIN_PORT'];
    if (envPort === undefined || !/^\s*\d+\s*$/.test(envPort) || Number(envPort) === 0) {
      throw new UsageError('give --admin HOST:PORT, or set TRACKER_ADMIN_PORT (the tracker\'s own, not 0)');
    }
    host = env['TRACKER_ADMIN_HOST']?.trim() || '127.0.0.1';
    port = Number(envPort);
  }
  if (host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
