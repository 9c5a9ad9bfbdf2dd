/**
 * `--listen` on the unspecified address (0.0.0.0, ::) listens on every
 * interface, but that address is what the client announces to the other
 * peers, and they cannot connect to it: the client warns on stderr at
 * start and says what to give instead (docs/client.md "Options"). A real
 * tracker and client process.
 */
import t from 'tap';
import { runClient } from './helpers/client.js';
import { startTracker } from './helpers/tracker.js';

t.test('--listen 0.0.0.0:0 warns that other peers cannot reach the announced address', async (t) => {
  const tracker = await startTracker(t);
  const run = await runClient(t, ['--tracker', tracker.address, '--listen', '0.0.0.0:0', '--exec', 'ping']);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /^OK PONG$/m, 'the client works all the same');
  t.match(
    run.stderr,
    /^tracker-client: warning: --listen 0\.0\.0\.0:0 is announced to the other peers as 0\.0\.0\.0:\d+, an address they cannot connect to; give --listen this machine's address as the other peers reach it \(e\.g\. --listen 192\.168\.1\.10:0\)/m,
  );
});

t.test('the default --listen, and a real address, say nothing', async (t) => {
  const tracker = await startTracker(t);
  for (const listen of [[], ['--listen', '127.0.0.1:0']]) {
    const run = await runClient(t, ['--tracker', tracker.address, ...listen, '--exec', 'ping']);
    t.equal(run.code, 0, run.stderr);
    t.equal(run.stderr, '', `no warning with ${listen.join(' ') || 'the default'}`);
  }
});
