/**
 * A primary and its replica as real processes, for the replication tests.
 *
 *   const { primary, replica } = await startCluster(t);
 *   ... writes on the primary ...
 *   const { primary: p, replica: r } = await waitForConvergence(primary, replica);
 *
 * Both trackers get the same cluster secret (`--secret`), each its own
 * temporary directory (`primary.db`, `replica.db`); everything is killed and
 * removed in the test's teardown (see ./tracker.ts). Nothing sleeps: the
 * waits poll `status` against a deadline.
 */
import { execFile } from 'node:child_process';
import { status } from './commands.js';
import { ADMIN_BIN, childEnv, startTracker } from './tracker.js';
import type { RunningTracker, StartOptions, TeardownHost } from './tracker.js';
import { connect, waitFor } from './wire.js';
import type { WireClient } from './wire.js';

export const CLUSTER_SECRET = 'test-cluster-secret';

export interface ClusterOptions {
  /** The secret of both trackers (default CLUSTER_SECRET). */
  secret?: string;
  /** Replica-only secret, to start a replica that does not know the primary's. */
  replicaSecret?: string;
  /** More options for each tracker; their `args` come after the cluster's (a later flag wins). */
  primary?: Omit<StartOptions, 'role'>;
  replica?: Omit<StartOptions, 'role'>;
}

export interface Cluster {
  primary: RunningTracker;
  replica: RunningTracker;
  secret: string;
}

/** Starts a primary, then a replica pointed at it; resolves once both printed their ready line. */
export async function startCluster(t: TeardownHost, opts: ClusterOptions = {}): Promise<Cluster> {
  const secret = opts.secret ?? CLUSTER_SECRET;
  const primary = await startTracker(t, {
    ...opts.primary,
    role: 'primary',
    args: ['--secret', secret, ...(opts.primary?.args ?? [])],
  });
  const replica = await startReplica(t, primary, {
    ...opts.replica,
    args: ['--secret', opts.replicaSecret ?? secret, ...(opts.replica?.args ?? [])],
  });
  return { primary, replica, secret };
}

/** Starts a replica of `primary` (`--primary <its address>`), with the default test secret unless `args` says otherwise. */
export function startReplica(t: TeardownHost, primary: Endpoint & { address: string }, opts: Omit<StartOptions, 'role'> = {}): Promise<RunningTracker> {
  return startTracker(t, { ...opts, role: 'replica', args: ['--primary', primary.address, ...(opts.args ?? [])] });
}

/** Where a tracker answers clients. */
export interface Endpoint {
  port: number;
  host?: string;
}

export interface ConvergenceOptions {
  timeoutMs?: number;
  /** Also wait until the primary reports `replica=connected` and `replica_seq` equal to its `seq`. */
  acked?: boolean;
}

/** `status` of both, once they agree. */
export interface Converged {
  primary: Record<string, string>;
  replica: Record<string, string>;
}

/**
 * Polls `status` on both trackers until `seq` and `log_hash` are equal and
 * the replica reports `primary=connected` (with `acked`, also until the
 * primary has the replica's acknowledgement of that seq). Rejects after
 * `timeoutMs` (default 20 s) with the last statuses seen. A connection that
 * drops (a tracker restarting) is opened again on the next poll.
 */
export async function waitForConvergence(primary: Endpoint, replica: Endpoint, opts: ConvergenceOptions = {}): Promise<Converged> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const clients = new Map<Endpoint, WireClient>();
  const statusOf = async (e: Endpoint): Promise<Record<string, string>> => {
    let c = clients.get(e);
    if (!c || c.isClosed) {
      c = await connect(e.port, e.host ?? '127.0.0.1');
      clients.set(e, c);
    }
    return status(c);
  };
  let last: Converged | undefined;
  try {
    return await waitFor(
      async () => {
        const [p, r] = await Promise.all([statusOf(primary), statusOf(replica)]);
        last = { primary: p, replica: r };
        const agreed = p['seq'] === r['seq'] && p['log_hash'] === r['log_hash'] && r['primary'] === 'connected';
        const acked = !opts.acked || (p['replica'] === 'connected' && p['replica_seq'] === p['seq']);
        return agreed && acked ? last : undefined;
      },
      { timeoutMs, message: 'replica convergence' },
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; last status: ${JSON.stringify(last)}`, { cause: error });
  } finally {
    await Promise.all([...clients.values()].map((c) => c.close()));
  }
}

/**
 * Promotes a tracker with the operator's tool, `tracker-admin promote`
 * (the secret through TRACKER_SECRET, as an operator would). Resolves to the
 * tracker's answer (`OK promoted ...`, `ERR FORBIDDEN ...`) and the exit code.
 */
export function promote(tracker: Endpoint, secret = CLUSTER_SECRET): Promise<string> {
  return promoteWithCode(tracker, secret).then((r) => r.answer);
}

export function promoteWithCode(tracker: Endpoint, secret = CLUSTER_SECRET): Promise<{ answer: string; code: number | null }> {
  const address = `${tracker.host ?? '127.0.0.1'}:${tracker.port}`;
  return new Promise((resolve) => {
    execFile(process.execPath, [ADMIN_BIN, 'promote', '--tracker', address], { env: childEnv({ TRACKER_SECRET: secret }), timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ answer: `${stdout}${stderr}`.trim().replace(`${address}: `, ''), code });
    });
  });
}
