import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Readiness, Role, TrackerGauges, TrackerObserver } from '@tracker-cluster/tracker-core';

/**
 * The HTTP admin listener of a tracker (`--admin-port`): Prometheus metrics
 * and health probes. tracker-core knows nothing of Prometheus: it calls the
 * `TrackerObserver` hooks built here and answers `gauges()` / `readiness()`
 * at scrape time; this module owns the registry and the `node:http` server.
 *
 *   GET /metrics  Prometheus text format
 *   GET /healthz  200 while the process runs and the event loop turns
 *   GET /readyz   200 when the database is open and the tracker serves a
 *                 consistent state; 503 (with the reason) otherwise
 */

/** What the metrics read from the tracker at scrape time. */
export interface MetricsSource {
  gauges(): TrackerGauges;
  readiness(): Readiness;
}

/** Latency buckets (seconds): a cached read is ~50 µs, a durable write ~1 ms, a login ~50 ms, semi-sync waits up to the timeout. */
const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface TrackerMetrics {
  readonly registry: Registry;
  /** Hooks to hand to `Tracker.open` (deps.observer). */
  readonly observer: TrackerObserver;
  /** Where gauges are read from; set once the tracker is open (before that, only process metrics). */
  attach(source: MetricsSource): void;
  /** The exposition text, with the gauges of the role the tracker has now. */
  scrape(): Promise<string>;
}

/** Builds the registry with every tracker metric; role-specific gauges have a series only while the tracker has that role. */
export function createTrackerMetrics(role: Role, version: string): TrackerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let source: MetricsSource | undefined;
  /**
   * The gauges read at the start of the scrape in progress, which every metric's collect uses:
   * `gauges()` passes over every session (one pass is milliseconds at 100,000 of them), and read
   * per metric, as a per-millisecond cache did once a pass took over a millisecond, one scrape
   * held the event loop for over 100 ms. Outside a scrape (none in progress) a read is fresh.
   */
  let scraped: { gauges: TrackerGauges | undefined } | undefined;
  let scrapesInProgress = 0;
  const read = (): TrackerGauges | undefined => (scraped ? scraped.gauges : source?.gauges());
  const gauge = (name: string, help: string, pick: (g: TrackerGauges) => number | boolean | undefined, registers: Registry[] = [registry]): Gauge => {
    return new Gauge({
      name,
      help,
      registers,
      collect() {
        const g = read();
        const value = g ? pick(g) : undefined;
        if (value === undefined) this.reset();
        else this.set(typeof value === 'boolean' ? (value ? 1 : 0) : value);
      },
    });
  };

  new Gauge({
    name: 'tracker_info',
    help: 'Constant 1, labelled with the current role (it changes on promotion and fencing) and version of this tracker',
    labelNames: ['role', 'version'],
    registers: [registry],
    collect() {
      this.reset();
      this.set({ role: read()?.role ?? role, version }, 1);
    },
  });
  const requests = new Counter({
    name: 'tracker_requests_total',
    help: 'Client requests answered, by command and result (OK or the error code)',
    labelNames: ['command', 'result'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'tracker_request_duration_seconds',
    help: 'Time from dispatch to the answer being ready (scrypt, commit and semi-sync wait included), by command',
    labelNames: ['command'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const snapshots = new Counter({
    name: 'tracker_snapshot_transfers_total',
    help: 'Snapshots sent to a replica (direction=sent) or installed from the primary (direction=installed)',
    labelNames: ['direction'],
    registers: [registry],
  });
  // Present from the first scrape, at 0, so that rate() and alerts see the series (either role may come to use either).
  snapshots.inc({ direction: 'sent' }, 0);
  snapshots.inc({ direction: 'installed' }, 0);

  gauge('tracker_ready', '1 when /readyz answers 200', () => source?.readiness().ready ?? false);
  gauge('tracker_epoch', 'Current epoch (raised by promotion)', (g) => g.epoch);
  gauge('tracker_log_seq', 'seq of the last change in this tracker\'s log', (g) => g.seq);
  gauge('tracker_open_connections', 'Open client and tracker-link connections', (g) => g.connections);
  gauge('tracker_live_sessions', 'Sessions not yet expired', (g) => g.liveSessions);
  gauge('tracker_users', 'User accounts', (g) => g.users);
  gauge('tracker_groups', 'Groups', (g) => g.groups);
  gauge('tracker_shares', 'File shares held by live sessions', (g) => g.shares);
  gauge('tracker_state_file_lag', 'Changes in the log that the state file on disk does not hold yet (grows while it cannot be written)', (g) => g.stateFileLag);
  gauge('tracker_event_backlog_bytes', 'Bytes of events held for clients that are not reading them, all connections together', (g) => g.eventBacklogBytes);
  gauge('tracker_password_hashes_waiting', 'Sign-ups and logins waiting for a password-hashing slot', (g) => g.passwordHashesWaiting);
  gauge('tracker_disk_full', '1 while the last commit found no room on the disk (writes are refused)', (g) => g.diskFull);
  // Each role's own gauges are registered only while the tracker has that role (promotion and fencing change it):
  // a gauge without labels always has a series once registered.
  type Spec = [name: string, help: string, pick: (g: TrackerGauges) => number | boolean | undefined];
  const roleSpecs: Record<Role, Spec[]> = {
    primary: [
      ['tracker_replica_connected', '1 while a replica is linked', (g) => g.replicaConnected],
      ['tracker_replica_seq', 'Last seq the replica acknowledged', (g) => g.replicaSeq],
      ['tracker_replica_lag', 'Committed changes the replica has not acknowledged', (g) => g.replicaLag],
      ['tracker_degraded', '1 while writes are answered without the replica (semi-sync suspended)', (g) => g.degraded],
      ['tracker_sync_queue_depth', 'Committed changes not yet sent to the replica', (g) => g.syncUnsent],
      ['tracker_sync_waiting_batches', 'Commit batches waiting for the replica\'s acknowledgement (semi-sync)', (g) => g.syncWaiting],
    ],
    replica: [['tracker_primary_connected', '1 while the link to the primary is streaming', (g) => g.primaryConnected]],
  };
  const roleGauges = (r: Role): Array<{ name: string; metric: Gauge }> =>
    roleSpecs[r].map(([name, help, pick]) => ({ name, metric: gauge(name, help, pick, []) }));
  const byRole: Record<Role, Array<{ name: string; metric: Gauge }>> = { primary: roleGauges('primary'), replica: roleGauges('replica') };
  let shown: Role | undefined;
  const showRole = (now: Role): void => {
    if (shown === now) return;
    if (shown !== undefined) for (const g of byRole[shown]) registry.removeSingleMetric(g.name);
    for (const g of byRole[now]) registry.registerMetric(g.metric);
    shown = now;
  };
  showRole(role);

  return {
    registry,
    observer: {
      onRequest(command, result, seconds) {
        requests.inc({ command, result });
        latency.observe({ command }, seconds);
      },
      onSnapshot(direction) {
        snapshots.inc({ direction });
      },
    },
    attach(s) {
      source = s;
    },
    async scrape() {
      scraped = { gauges: source?.gauges() };
      scrapesInProgress++;
      try {
        showRole(scraped.gauges?.role ?? role);
        return await registry.metrics();
      } finally {
        if (--scrapesInProgress === 0) scraped = undefined;
      }
    },
  };
}

export interface AdminServer {
  /** The address actually bound (the real port when 0 was asked). */
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

/**
 * Starts the admin listener. `readiness` is asked at every `/readyz`; the
 * caller makes it report "not ready" before the tracker is open and once it
 * is stopping.
 */
export async function startAdminServer(opts: {
  host: string;
  port: number;
  metrics: TrackerMetrics;
  readiness: () => Readiness;
  logger: Logger;
}): Promise<AdminServer> {
  const { metrics, readiness, logger } = opts;
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const send = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(405, 'method not allowed\n');
      return;
    }
    if (url === '/healthz') {
      send(200, 'ok\n');
    } else if (url === '/readyz') {
      const r = readiness();
      send(r.ready ? 200 : 503, `${r.ready ? 'ready' : 'not ready'}: ${r.reason}\n`);
    } else if (url === '/metrics') {
      metrics.scrape().then(
        (text) => send(200, text, metrics.registry.contentType),
        (error: unknown) => {
          logger.error({ err: error }, 'collecting metrics failed');
          send(500, 'collecting metrics failed; see the tracker log\n');
        },
      );
    } else {
      send(404, 'not found: try /metrics, /healthz or /readyz\n');
    }
  });
  // Probes and scrapes are short; a slow client must not hold a socket for long.
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: opts.host, port: opts.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => logger.error({ err: error }, 'admin listener error'));
  const bound = server.address() as AddressInfo;
  return {
    address: { host: bound.address, port: bound.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
