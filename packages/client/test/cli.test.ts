/** `run()` in-process, for what needs no tracker: option errors, help, and no tracker at all. */
import http from 'node:http';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { EXIT, run } from '@tracker-cluster/client';

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

async function runWith(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = capture();
  const err = capture();
  const stdin = new PassThrough();
  stdin.end();
  const code = await run({ argv, env: {}, stdin, stdout: out.stream, stderr: err.stream });
  return { code, stdout: out.text(), stderr: err.text() };
}

t.test('bad options exit 2 with a message on stderr', async (t) => {
  const r = await runWith(['--tracker', 'localhost']);
  t.equal(r.code, EXIT.USAGE);
  t.equal(r.stdout, '');
  t.match(r.stderr, /^tracker-client: bad --tracker value: invalid tracker address "localhost": missing port/);
});

t.test('--help exits 0', async (t) => {
  const r = await runWith(['--help']);
  t.equal(r.code, EXIT.OK);
  t.match(r.stdout, /--tracker/);
});

t.test('no tracker listening exits 3', async (t) => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const r = await runWith(['--tracker', `127.0.0.1:${port}`, '--exec', 'ping']);
  t.equal(r.code, EXIT.UNREACHABLE);
  t.equal(r.stdout, '');
  t.equal(r.stderr, `tracker-client: cannot reach any tracker: 127.0.0.1:${port} (ECONNREFUSED)\n`);
});

t.test('an address that is not a tracker (an HTTP server) is named as perhaps not a tracker', async (t) => {
  const server = http.createServer((_req, res) => res.end('hello'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const name = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const r = await runWith(['--tracker', name, '--exec', 'ping']);
  t.equal(r.code, EXIT.UNREACHABLE);
  t.equal(r.stdout, '');
  t.match(r.stderr, `tracker-client: cannot reach any tracker: ${name} (bad frame from ${name} (`);
  t.match(r.stderr, new RegExp(`; connection closed — is ${name.replace(/\./g, '\\.')} a tracker\\?\\)\n$`));
});
