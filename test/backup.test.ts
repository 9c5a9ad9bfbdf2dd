/**
 * tracker-admin backup / verify / restore against a real tracker under write
 * load: the backup holds every write answered before it began, and a tracker
 * started from it serves exactly the backed-up history.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, cp, link, mkdir, open, readFile, truncate, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import type { Test } from 'tap';
import { parseList, send, signUp, status } from './helpers/commands.js';
import { ADMIN_BIN, childEnv, makeTempDir, startTracker } from './helpers/tracker.js';
import { connect } from './helpers/wire.js';
import type { WireClient } from './helpers/wire.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs tracker-admin; past `timeoutMs` it is SIGKILLed and `code` is null. `runAs` is a command prefix (e.g. setpriv …). */
function admin(args: string[], timeoutMs = 60_000, runAs: string[] = []): Promise<Run> {
  const argv = [...runAs, process.execPath, ADMIN_BIN, ...args];
  return new Promise((resolve) => {
    execFile(argv[0] as string, argv.slice(1), { env: childEnv(), timeout: timeoutMs, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** An operator's mistake or a damaged file: exit 1 and one line `tracker-admin: …` matching `message`, no stack trace. */
function failsPlainly(t: Test, run: Run, message: RegExp, what: string): void {
  t.equal(run.code, 1, `${what}: exit 1`);
  t.match(run.stderr, message, `${what}: says why`);
  t.match(run.stderr, /^tracker-admin: [^\n]*\n$/, `${what}: one line`);
  t.notMatch(run.stderr, /internal error|\n\s+at /, `${what}: not reported as a bug`);
}

async function listGroups(c: WireClient, session: bigint): Promise<string[]> {
  const reply = await send(c, ['list_groups'], session);
  return parseList(reply.payload).map((row) => row.split(' ')[0] as string);
}

t.test('backup of a tracker under write load; a tracker started from it has every write answered before', async (t) => {
  // One user is the whole write load: the group limit must not end it.
  const source = await startTracker(t, { args: ['--max-groups-per-user', '1000000'] });
  const c = await connect(source.port);
  t.teardown(() => c.close());
  const alice = await signUp(c, 'alice');

  // Writers on two more connections, until told to stop; each records the groups answered OK.
  const answered: string[] = [];
  let stop = false;
  const writers = [1, 2].map(async (w) => {
    const conn = await connect(source.port);
    let i = 0;
    try {
      while (!stop) {
        const name = `g${w}-${i++}`;
        // A few in flight at once: group commit batches them, the backup sees a moving log.
        const batch = [name, `${name}b`, `${name}c`].map(async (g) => {
          const reply = await send(conn, ['create_group', g], alice);
          if (reply.payload === 'OK group created') answered.push(g);
          else throw new Error(`create_group ${g}: ${reply.payload}`);
        });
        await Promise.all(batch);
      }
    } finally {
      await conn.close();
    }
  });
  // Let the load build before the backup starts.
  while (answered.length < 150) await new Promise((r) => setImmediate(r));
  const before = [...answered];
  const out = path.join(await makeTempDir(t), 'backup');
  const backup = await admin(['backup', '--db', source.dbPath, '--out', out]);
  const after = [...answered];
  stop = true;
  await Promise.all(writers);
  t.equal(backup.code, 0, backup.stderr);
  t.match(backup.stdout, /^backed up .* seq=\d+ log_hash=[0-9a-f]{64} /);
  t.ok(after.length > before.length, `writes went on during the backup (${before.length} → ${after.length})`);

  const manifest = JSON.parse(await readFile(path.join(out, 'backup.json'), 'utf8')) as {
    state: { seq: number };
    log: { seq: number; logHash: string };
  };
  t.ok(manifest.log.seq >= manifest.state.seq, 'the log copy covers the state copy');

  const verify = await admin(['verify', '--from', out]);
  t.equal(verify.code, 0, verify.stderr);
  t.match(verify.stdout, `ok: seq=${manifest.log.seq} log_hash=${manifest.log.logHash}`);

  // Restore into a fresh place and start a tracker on it (the source keeps running).
  const dir = await makeTempDir(t);
  const db = path.join(dir, 'restored.db');
  const restore = await admin(['restore', '--from', out, '--db', db]);
  t.equal(restore.code, 0, restore.stderr);
  const restored = await startTracker(t, { dir, dbPath: db });
  t.match(restored.description, new RegExp(`seq=${manifest.log.seq}$`), 'it starts at the backup\'s log head (state replayed from the log)');
  const r = await connect(restored.port);
  t.teardown(() => r.close());
  const st = await status(r);
  t.equal(st['log_hash'], manifest.log.logHash, 'the same history, hash for hash');
  const session = (await send(r, ['login', 'alice', 'alice-pw'])).session;
  t.not(session, 0n, 'the user from the backup can log in');
  const groups = new Set(await listGroups(r, session));
  const missing = before.filter((g) => !groups.has(g));
  t.same(missing, [], 'every group answered OK before the backup began is in it');
  const all = new Set(answered);
  t.same([...groups].filter((g) => !all.has(g)), [], 'and nothing that was never answered OK');
  t.ok(groups.size <= after.length, 'at most what was answered by the end of the backup');
});

t.test('restore refuses to overwrite a database without --force; verify catches a mismatched pair', async (t) => {
  const tracker = await startTracker(t);
  const c = await connect(tracker.port);
  t.teardown(() => c.close());
  const bob = await signUp(c, 'bob');
  const out = path.join(await makeTempDir(t), 'b1');
  t.equal((await admin(['backup', '--db', tracker.dbPath, '--out', out])).code, 0);

  const again = await admin(['backup', '--db', tracker.dbPath, '--out', out]);
  t.equal(again.code, 1);
  t.match(again.stderr, /already exists; choose a new --out directory or pass --force/);
  t.equal((await admin(['backup', '--db', tracker.dbPath, '--out', out, '--force'])).code, 0, '--force replaces it');

  for (const force of [[], ['--force']]) {
    const running = await admin(['restore', '--from', out, '--db', tracker.dbPath, ...force]);
    t.equal(running.code, 1, `restore ${force.join(' ')} onto a running tracker is refused`);
    t.match(running.stderr, /a tracker is running on .*: stop it before restoring/);
  }
  t.match((await c.request('whoami', bob)).payload, /^OK bob /, 'and the running tracker is untouched');
  await tracker.stop();
  const existing = await admin(['restore', '--from', out, '--db', tracker.dbPath]);
  t.equal(existing.code, 1);
  t.match(existing.stderr, /already exist; stop the tracker, then pass --force/);

  const missing = await admin(['backup', '--db', path.join(tracker.dir, 'nope.db'), '--out', path.join(tracker.dir, 'x')]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /nope\.db does not exist/);

  const usage = await admin(['backup', '--db', tracker.dbPath]);
  t.equal(usage.code, 2);
  t.match(usage.stderr, /Missing required argument: out/);

  // A backup whose manifest does not describe its files is refused.
  const manifestPath = path.join(out, 'backup.json');
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { log: { seq: number } };
  manifest.log.seq += 1;
  await writeFile(manifestPath, JSON.stringify(manifest));
  const bad = await admin(['verify', '--from', out]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /not the ones backup\.json describes/);
});

t.test('a bad --out or a damaged backup is one line and exit 1, not an internal error', async (t) => {
  const tracker = await startTracker(t);
  await signUp(await connect(tracker.port), 'carol');
  await tracker.stop();
  const dir = await makeTempDir(t);
  const good = path.join(dir, 'good');
  t.equal((await admin(['backup', '--db', tracker.dbPath, '--out', good])).code, 0);

  // --out under a regular file: mkdir says ENOTDIR (for root too).
  const file = path.join(dir, 'a-file');
  await writeFile(file, 'x');
  const underFile = await admin(['backup', '--db', tracker.dbPath, '--out', path.join(file, 'backup')]);
  failsPlainly(t, underFile, /^tracker-admin: cannot create --out .*a-file\/backup: not a directory \(ENOTDIR\)$/m, 'backup --out under a file');

  // A backup whose log file was cut short: SQLite finds it malformed.
  const cut = path.join(dir, 'cut');
  await cp(good, cut, { recursive: true });
  await truncate(path.join(cut, `${path.basename(tracker.dbPath)}-log`), 2048);
  const damagedLog = new RegExp(`^tracker-admin: the backup's log .*cut/${path.basename(tracker.dbPath)}-log is damaged: `, 'm');
  failsPlainly(t, await admin(['verify', '--from', cut]), damagedLog, 'verify of a truncated log');
  const target = path.join(dir, 'restored', 'r.db');
  failsPlainly(t, await admin(['restore', '--from', cut, '--db', target]), damagedLog, 'restore of a truncated log');
  failsPlainly(t, await admin(['restore', '--from', good, '--db', path.join(file, 'r.db')]), /cannot create the directory of --db .*a-file: /, 'restore --db under a file');

  // A backup whose log has a page overwritten: SQLite opens it, and quick_check's report spans lines.
  const garbled = path.join(dir, 'garbled');
  await cp(good, garbled, { recursive: true });
  const garbledLog = path.join(garbled, `${path.basename(tracker.dbPath)}-log`);
  const handle = await open(garbledLog, 'r+');
  const { size } = await handle.stat();
  t.ok(size >= 8192, 'the log has a second page to overwrite');
  await handle.write(Buffer.alloc(4096, 0xde), 0, 4096, 4096);
  await handle.close();
  failsPlainly(t, await admin(['verify', '--from', garbled]), /^tracker-admin: the backup's log .*garbled\/.*-log is damaged: quick_check says /m, 'verify of a log with a garbled page');
});

t.test('backup refuses a database with a second name (a hard link): through it SQLite would miss the WAL', async (t) => {
  const tracker = await startTracker(t);
  await signUp(await connect(tracker.port), 'dave');
  const dir = await makeTempDir(t);
  const alias = path.join(dir, 'alias.db');
  await link(tracker.dbPath, alias);
  await link(`${tracker.dbPath}-log`, `${alias}-log`);
  const through = await admin(['backup', '--db', alias, '--out', path.join(dir, 'b1')]);
  failsPlainly(t, through, new RegExp(`^tracker-admin: ${alias} has 2 names \\(hard links\\): `, 'm'), 'backup through the link');
  t.notOk(existsSync(path.join(dir, 'b1', 'alias.db')), 'no copy was made');
  await unlink(alias);
  failsPlainly(t, await admin(['backup', '--db', tracker.dbPath, '--out', path.join(dir, 'b2')]), /-log has 2 names \(hard links\): /, 'the log linked too');
  await unlink(`${alias}-log`);
  t.equal((await admin(['backup', '--db', tracker.dbPath, '--out', path.join(dir, 'b3')])).code, 0, 'with one name each, the backup is made');
});

t.test('an --out the user may not write into is one line and exit 1', async (t) => {
  // Root ignores mode bits: as root, run tracker-admin as nobody (setpriv); otherwise as ourselves.
  const root = process.getuid?.() === 0;
  // (tap's NODE_OPTIONS, re-added at each spawn, would have the child write under .tap/, which nobody may not.)
  const runAs = root ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'env', '-u', 'NODE_OPTIONS'] : [];
  if (root && (await admin(['--version'], 20_000, runAs)).code !== 0) return t.plan(0, 'skipped: root, and cannot run tracker-admin as nobody (setpriv)');
  const dir = await makeTempDir(t);
  await chmod(dir, 0o755);
  // backup looks at --db before --out: two files by those names are enough to reach --out.
  const db = path.join(dir, 'p.db');
  await writeFile(db, '');
  await writeFile(`${db}-log`, '');
  const locked = path.join(dir, 'locked');
  await mkdir(locked, { mode: 0o555 });
  await chmod(locked, 0o555);
  failsPlainly(
    t,
    await admin(['backup', '--db', db, '--out', path.join(locked, 'b')], 60_000, runAs),
    /^tracker-admin: cannot create --out .*locked\/b: permission denied \(EACCES\)$/m,
    'backup --out in a directory without write permission',
  );
  failsPlainly(
    t,
    await admin(['backup', '--db', db, '--out', locked], 60_000, runAs),
    /^tracker-admin: cannot write into --out .*locked: permission denied \(EACCES\)$/m,
    'backup --out that is a directory without write permission',
  );
});

t.test('a directory that cannot be made (under /proc) fails at once instead of spinning', async (t) => {
  if (!existsSync('/proc/self')) return t.plan(0, 'skipped: no /proc');
  const tracker = await startTracker(t);
  await tracker.stop();
  const good = path.join(await makeTempDir(t), 'good');
  t.equal((await admin(['backup', '--db', tracker.dbPath, '--out', good])).code, 0);
  // Node's recursive mkdir retried ENOENT there for ever (at full CPU); the deadline SIGKILLs it (code null).
  const deadline = 20_000;
  for (const out of ['/proc/tracker-admin-test', '/proc/tracker-admin-test/deeper']) {
    failsPlainly(
      t,
      await admin(['backup', '--db', tracker.dbPath, '--out', out], deadline),
      new RegExp(`^tracker-admin: cannot create --out ${out}: no such file or directory \\(ENOENT\\); /proc exists but takes no new directories$`, 'm'),
      `backup --out ${out}`,
    );
  }
  const file = path.join(path.dirname(good), 'a-file');
  await writeFile(file, 'x');
  failsPlainly(t, await admin(['backup', '--db', tracker.dbPath, '--out', file]), /^tracker-admin: cannot create --out .*a-file: .*a-file is a file, not a directory$/m, 'backup --out a file');
  failsPlainly(
    t,
    await admin(['restore', '--from', good, '--db', '/proc/tracker-admin-test/r.db'], deadline),
    /^tracker-admin: cannot create the directory of --db \/proc\/tracker-admin-test: no such file or directory \(ENOENT\)/m,
    'restore --db under /proc',
  );
});

t.test('tracker-admin health asks /healthz or /readyz', async (t) => {
  const tracker = await startTracker(t, { args: ['--admin-port', '0'] });
  const where = (tracker.adminUrl as string).replace('http://', '');
  const live = await admin(['health', '--admin', where]);
  t.equal(live.code, 0);
  t.match(live.stdout, /\/healthz: 200 ok/);
  const ready = await admin(['health', '--admin', where, '--ready']);
  t.equal(ready.code, 0);
  t.match(ready.stdout, /\/readyz: 200 ready: serving/);
  await tracker.stop();
  const gone = await admin(['health', '--admin', where, '--timeout', '2']);
  t.equal(gone.code, 1);
  t.match(gone.stderr, /no answer/);
  const usage = await admin(['health']);
  t.equal(usage.code, 2);
  t.match(usage.stderr, /TRACKER_ADMIN_PORT/);
});

t.test('a backup does not carry the epoch its source leads: a tracker started from it takes its role from its command line', async (t) => {
  const source = await startTracker(t);
  const out = path.join(await makeTempDir(t), 'backup');
  const made = await admin(['backup', '--db', source.dbPath, '--out', out]);
  t.equal(made.code, 0, made.stderr);
  const ledEpoch = (file: string): string | undefined => {
    const db = new Database(file, { readonly: true });
    try {
      return (db.prepare("SELECT value FROM meta WHERE key = 'led_epoch'").get() as { value: string } | undefined)?.value;
    } finally {
      db.close();
    }
  };
  t.equal(ledEpoch(`${source.dbPath}-log`), '1', 'the running primary records the epoch it leads');
  t.equal(ledEpoch(path.join(out, `${path.basename(source.dbPath)}-log`)), undefined, 'the backup does not');
  // Seeding a replica from the primary's backup: it must start as a replica, not as a second primary.
  const dir = await makeTempDir(t);
  const restored = await admin(['restore', '--from', out, '--db', path.join(dir, 'seeded.db')]);
  t.equal(restored.code, 0, restored.stderr);
  const seeded = await startTracker(t, { role: 'replica', dir, dbPath: path.join(dir, 'seeded.db'), args: ['--primary', source.address] });
  t.match(seeded.description, /^role=replica /);
});
