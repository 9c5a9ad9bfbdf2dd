/**
 * Which trackers belong together. Every database gets a random cluster id
 * when it is created; a snapshot carries it, an empty replica adopts its
 * primary's, and nothing else changes it (a promotion starts a new history
 * id, not a new cluster). Two trackers that both hold data under different
 * cluster ids are strangers: a database of another cluster, or a new one
 * given to a tracker by mistake (a typo in `--db`). Neither replicates to,
 * fences nor overwrites the other: that would drop one side's data on an
 * operator's slip (docs/protocol.md §6).
 */
export const CLUSTER_ID_KEY = 'cluster_id';

/** Where a tracker stands, for telling strangers apart. */
export interface ClusterPosition {
  /** Undefined for a database from before cluster ids. */
  cluster: string | undefined;
  seq: number;
}

/** Both ids known and different. An unknown id (a database from before cluster ids) never makes a stranger. */
function differ(a: ClusterPosition, b: ClusterPosition): boolean {
  return a.cluster !== undefined && b.cluster !== undefined && a.cluster !== b.cluster;
}

/**
 * A replica that holds data of another cluster: following this primary would
 * overwrite it, even when this primary holds nothing (a new `--db` by mistake).
 * An empty replica is nobody's yet: it adopts the primary's cluster.
 */
export function replicaOfAnotherCluster(primary: ClusterPosition, replica: ClusterPosition): boolean {
  return replica.seq > 0 && differ(primary, replica);
}

/**
 * A peer primary of another cluster, both holding data: neither fences the
 * other. An empty primary may be fenced (it loses nothing by it).
 */
export function primaryOfAnotherCluster(ours: ClusterPosition, theirs: ClusterPosition): boolean {
  return ours.seq > 0 && theirs.seq > 0 && differ(ours, theirs);
}

/** `cluster <id> at seq <n>`, for the messages about a stranger. */
export function describePosition(position: ClusterPosition): string {
  return `cluster ${position.cluster ?? 'unknown'} at seq ${position.seq}`;
}
