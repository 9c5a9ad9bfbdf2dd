/**
 * The share registry on disk, shared by several client processes (one OS
 * user, one data directory): no lost updates, no shared temporary file, no
 * symlink followed, and a registry that cannot be written never crashes a
 * command. Real files in a temp dir; real child processes.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { lstat, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { PeerNode, ShareRegistry, formatPieceRequest } from '@tracker-cluster/client';
import type { ShareRecord } from '@tracker-cluster/client';

const CLIENT_URL = import.meta.resolve('@tracker-cluster/client');

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'share-registry-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function record(group: string, file: string): ShareRecord {
  return { group, file, path: `/nowhere/${file}`, size: 1, mtimeMs: 1, sha256: '0'.repeat(64), pieceSize: 1, hashes: ['0'.repeat(64)] };
}

/**
 * A client whose data directory cannot be created (a file stands where its
 * parent should be), answered by the tracker with OK, and a file `my.bin`
 * to share: the requests it sends and the notices it gives are recorded.
 */
async function unwritableRegistryPeer(t: Test): Promise<{ peer: PeerNode; sent: string[]; notices: string[]; file: string }> {
  const dir = await tempDir(t);
  const blocker = path.join(dir, 'not-a-dir');
  await writeFile(blocker, '');
  const sent: string[] = [];
  const notices: string[] = [];
  const peer = new PeerNode(
    { listen: { host: '127.0.0.1', port: 0 }, dataDir: path.join(blocker, 'data'), serve: false, uploadRate: 0, maxDownloads: 1, keepaliveMs: 0 },
    {
      request: async (line) => {
        sent.push(line);
        return line.startsWith('upload_file') ? 'OK shared my.bin seeders=1' : 'OK';
      },
      user: () => 'carol',
    },
    (text) => notices.push(text),
  );
  t.teardown(() => peer.close());
  const file = path.join(dir, 'my.bin');
  await writeFile(file, 'some bytes');
  return { peer, sent, notices, file };
}

/**
 * A child process with its own `ShareRegistry` on `dataDir`: says `ready`,
 * waits for a line on stdin, then makes `count` concurrent `put`s for
 * `carol` and exits (1 if any of them failed).
 */
const CHILD = `
const [url, dataDir, tag, count] = process.argv.slice(1);
const { ShareRegistry } = await import(url);
const registry = new ShareRegistry(dataDir);
process.stdout.write('ready\\n');
process.stdin.once('data', async () => {
  process.stdin.pause();
  const puts = [];
  for (let i = 0; i < Number(count); i++) {
    const file = tag + '-' + i + '.bin';
    puts.push(registry.put('carol', { group: 'g', file, path: '/nowhere/' + file, size: 1, mtimeMs: 1, sha256: '0'.repeat(64), pieceSize: 1, hashes: [] }));
  }
  const results = await Promise.allSettled(puts);
  const failed = results.filter((r) => r.status === 'rejected');
  for (const f of failed) process.stderr.write(String(f.reason) + '\\n');
  process.exitCode = failed.length === 0 ? 0 : 1;
});
`;

t.test('two processes on one data dir, many concurrent puts each: every share is kept', async (t) => {
  const dataDir = path.join(await tempDir(t), 'data');
  const count = 25;
  const children = ['a', 'b'].map((tag) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, CLIENT_URL, dataDir, tag, String(count)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill();
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = once(child, 'exit').then(([code]) => ({ code: code as number | null, stderr: () => stderr }));
    return { child, exited };
  });
  // Both are loaded and waiting: start them together.
  await Promise.all(children.map(({ child }) => once(child.stdout.setEncoding('utf8'), 'data')));
  for (const { child } of children) child.stdin.end('go\n');
  for (const { exited } of children) {
    const { code, stderr } = await exited;
    t.equal(code, 0, `a writer exits 0 ${stderr()}`);
  }
  const registry = new ShareRegistry(dataDir);
  const files = (await registry.load('carol')).map((s) => s.file).sort();
  const expected = ['a', 'b'].flatMap((tag) => Array.from({ length: count }, (_, i) => `${tag}-${i}.bin`)).sort();
  t.same(files, expected, `all ${expected.length} shares are in the registry`);
  t.same(await readdir(dataDir), ['shares-carol.json'], 'no temporary file or lock is left behind');
});

t.test('temporary files have names of their own: a symlink at the old fixed name is not followed', async (t) => {
  const dir = await tempDir(t);
  const dataDir = path.join(dir, 'data');
  const registry = new ShareRegistry(dataDir);
  await registry.put('carol', record('g', 'first.bin'));
  const victim = path.join(dir, 'victim.txt');
  await writeFile(victim, 'precious\n');
  const planted = `${registry.fileFor('carol')}.tmp`;
  await symlink(victim, planted);

  await Promise.all([registry.put('carol', record('g', 'second.bin')), registry.remove('carol', 'g', 'first.bin')]);

  t.equal(await readFile(victim, 'utf8'), 'precious\n', 'the symlink target is untouched');
  t.ok((await lstat(planted)).isSymbolicLink(), 'the planted symlink is left as it was');
  t.ok((await lstat(registry.fileFor('carol'))).isFile(), 'the registry is a regular file');
  t.same((await registry.load('carol')).map((s) => s.file), ['second.bin'], 'the registry has the changes');
  t.same((await readdir(dataDir)).sort(), ['shares-carol.json', 'shares-carol.json.tmp'], 'no other file is left behind');
});

t.test('a registry that cannot be written: the command answers, the share is not remembered', async (t) => {
  const { peer, file } = await unwritableRegistryPeer(t);

  const answer = await peer.uploadFile(file, 'g');
  const [first, ...notes] = answer.split('\n');
  t.equal(first, 'OK shared my.bin seeders=1', "the tracker's OK is kept");
  t.equal(notes.length, 1);
  t.match(notes[0], /^\[share\] my\.bin in g is shared, but could not be remembered for the next login: .*ENOTDIR/);
  t.ok(peer.table.list().some((s) => s.file === 'my.bin'), 'the file is served');

  t.match(await peer.stoppedSharing('g', 'my.bin'), [/^\[share\] my\.bin in g could not be forgotten/]);
  t.match(await peer.loggedIn('carol'), [/^\[share\] cannot read the share registry .*ENOTDIR/]);
});

t.test('a shared file found changed while the registry cannot be written: withdrawn, and the notice says it is still remembered', async (t) => {
  const { peer, sent, notices, file } = await unwritableRegistryPeer(t);
  t.match(await peer.uploadFile(file, 'g'), /^OK shared my\.bin/);
  const [served] = peer.table.list();
  await writeFile(file, 'SOME BYTES');

  const answer = await peer.server.answer(Buffer.from(formatPieceRequest('g', served?.sha256 ?? '', 0)));
  t.same(answer, { text: 'ERR NO_SUCH_FILE the shared file changed on disk since it was shared' });
  const deadline = Date.now() + 10_000;
  while (notices.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.same(sent.slice(1), ['stop_share g my.bin'], 'withdrawn from the tracker');
  t.equal(notices.length, 1);
  t.match(
    notices[0],
    new RegExp(`^share_stopped g my\\.bin the file changed on disk since it was shared: ${file} \\(share it again to serve the new content\\); it could not be forgotten \\(the next login shares it again\\): .*ENOTDIR`),
  );
});
