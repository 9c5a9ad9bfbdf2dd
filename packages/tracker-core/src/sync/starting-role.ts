import type { Role } from '../options.js';

export interface StartingRole {
  role: Role;
  /** Why it differs from the command line's; absent when it does not. */
  reason?: string;
}

/**
 * The role a tracker takes at start. The command line says how the operator
 * set the pair up; the log says what happened since, and wins where they
 * disagree:
 *
 * - a tracker that was promoted to the epoch it is at, and has seen no later
 *   one, is still the primary, even when its supervisor restarts it with its
 *   old `tracker-replica` command line (otherwise the pair is left with two
 *   replicas and no primary). Nobody is promoted to epoch 1: the primary of
 *   epoch 1 is the original one, and one started as `tracker-replica` is
 *   being brought back as the replica after a failover (the runbook) — were
 *   it primary while the new primary is out of reach, the writes it took
 *   would be dropped when it is fenced;
 * - a tracker that has followed the primary of a later epoch than any it led
 *   is not the primary, even with its old `tracker-primary` command line: it
 *   would otherwise take writes at the same epoch as the real primary, two
 *   histories that cannot both be kept. It follows its peer until promoted.
 *
 * `ledEpoch` is the last epoch this tracker was primary of (undefined: never,
 * or a database from before this was recorded; then the command line holds).
 */
export function startingRole(configured: Role, epoch: number, ledEpoch: number | undefined): StartingRole {
  if (ledEpoch === undefined) return { role: configured };
  if (configured === 'primary' && ledEpoch < epoch) {
    return {
      role: 'replica',
      reason: `it was last primary of epoch ${ledEpoch} and has since followed the primary of epoch ${epoch}; promote it (tracker-admin promote) to make it primary again`,
    };
  }
  if (configured === 'replica' && ledEpoch === epoch && epoch > 1) {
    return { role: 'primary', reason: `it was promoted to epoch ${epoch} and has seen no later primary` };
  }
  return { role: configured };
}
