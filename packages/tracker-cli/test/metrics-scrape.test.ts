// A scrape reads the tracker's gauges once. `gauges()` counts live sessions
// and shares in one pass over every session, which at 100,000 sessions takes
// several milliseconds of the event loop; read once per gauge instead (about
// twenty of them), one /metrics scrape stalled every client for over 100 ms.
import t from 'tap';
import { createTrackerMetrics } from '@tracker-cluster/tracker-cli';
import type { TrackerGauges } from '@tracker-cluster/tracker-core';

function gaugesOf(role: 'primary' | 'replica'): TrackerGauges {
  return {
    role,
    epoch: 3,
    seq: 42,
    connections: 2,
    users: 7,
    groups: 5,
    liveSessions: 4,
    shares: 1,
    stateFileLag: 0,
    diskFull: false,
    eventBacklogBytes: 0,
    passwordHashesWaiting: 0,
    replicaConnected: true,
    replicaSeq: 42,
    replicaLag: 0,
    degraded: false,
    syncUnsent: 0,
    syncWaiting: 0,
  };
}

/** A source whose every read takes a few milliseconds of the event loop, as a large state's does. */
function slowSource(role: 'primary' | 'replica'): { reads: () => number; gauges: () => TrackerGauges; readiness: () => { ready: boolean; reason: string } } {
  let reads = 0;
  return {
    reads: () => reads,
    gauges: () => {
      reads++;
      const until = Date.now() + 3;
      while (Date.now() < until) {
        // busy, like a pass over a large state
      }
      return gaugesOf(role);
    },
    readiness: () => ({ ready: true, reason: 'serving' }),
  };
}

t.test('one scrape reads the gauges once, however long the read takes', async (t) => {
  const metrics = createTrackerMetrics('primary', '1.2.3');
  const source = slowSource('primary');
  metrics.attach(source);
  const text = await metrics.scrape();
  t.equal(source.reads(), 1, 'gauges() called once for the whole scrape');
  t.match(text, /^tracker_live_sessions 4$/m);
  t.match(text, /^tracker_users 7$/m);
  t.match(text, /^tracker_replica_seq 42$/m);
  t.match(text, /^tracker_info\{role="primary",version="1.2.3"\} 1$/m);
  await metrics.scrape();
  t.equal(source.reads(), 2, 'and the next scrape reads them again (fresh figures)');
});

t.test('the role shown follows the gauges read at the scrape', async (t) => {
  const metrics = createTrackerMetrics('primary', '1.2.3');
  const source = slowSource('replica');
  metrics.attach(source);
  const text = await metrics.scrape();
  t.equal(source.reads(), 1);
  t.match(text, /^tracker_primary_connected /m);
  t.notMatch(text, /^tracker_replica_seq /m);
});

