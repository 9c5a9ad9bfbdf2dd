/**
 * The container files, checked without a Docker engine (none runs here):
 * docker-compose.yml and the Dockerfile are parsed, and every program,
 * subcommand, flag and TRACKER_* variable they use is checked against the
 * real CLIs (the yargs definitions of tracker-cli, the tracker-admin and
 * tracker-client --help), ports, volumes and addresses against each other.
 * `docker-compose config -q` runs too where docker-compose is installed;
 * where it is not, that one check is reported as skipped, with the reason.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { envName, optionNames } from '@tracker-cluster/tracker-cli';
import { COMMANDS } from '@tracker-cluster/tracker-admin';
import { ROOT, childEnv } from './helpers/tracker.js';

type Role = 'primary' | 'replica';
interface Service {
  build?: unknown;
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
  restart?: string;
  profiles?: string[];
  depends_on?: string[];
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as Compose;
const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');

/** Every npm bin of the workspace: name → script path. */
const bins = new Map<string, string>();
for (const dir of readdirSync(path.join(ROOT, 'packages'))) {
  const manifest = path.join(ROOT, 'packages', dir, 'package.json');
  if (!existsSync(manifest)) continue;
  const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { bin?: Record<string, string> };
  for (const [name, file] of Object.entries(pkg.bin ?? {})) bins.set(name, path.join(ROOT, 'packages', dir, file));
}

/** `--help` of a bin, as the user would see it. */
function help(bin: string, args: string[] = []): string {
  return execFileSync(process.execPath, [bins.get(bin) as string, ...args, '--help'], { env: childEnv(), encoding: 'utf8' });
}

/** The Dockerfile's ENV names and values (one ENV instruction may set several, continued with backslashes). */
function dockerfileEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  const joined = dockerfile.replace(/\\\n/g, ' ');
  for (const line of joined.split('\n')) {
    const m = /^ENV\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    for (const pair of (m[1] as string).matchAll(/(\w+)=(\S+)/g)) env[pair[1] as string] = pair[2] as string;
  }
  return env;
}

function flags(command: readonly string[]): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  for (let i = 0; i < command.length; i++) {
    const word = command[i] as string;
    if (!word.startsWith('--')) continue;
    const next = command[i + 1];
    out.set(word.slice(2), next !== undefined && !next.startsWith('--') ? next : undefined);
  }
  return out;
}

/** `[ip:]host:container` → { ip, host, container }. */
function portMapping(spec: string): { ip: string | undefined; published: number; container: number } {
  const parts = spec.split(':');
  const container = Number(parts.pop());
  const published = Number(parts.pop());
  return { ip: parts[0], published, container };
}

const trackers: Array<[Role, Service]> = [
  ['primary', compose.services['primary'] as Service],
  ['replica', compose.services['replica'] as Service],
];
const imageEnv = dockerfileEnv();

t.test('both trackers: one image, a healthcheck, restart unless-stopped', async (t) => {
  const [[, primary], [, replica]] = trackers as [[Role, Service], [Role, Service]];
  t.ok(primary && replica, 'services primary and replica');
  t.same(primary.build, replica.build, 'the same build');
  t.ok(primary.image, 'an image name');
  t.equal(primary.image, replica.image, 'the same image');
  for (const [role, s] of trackers) {
    t.equal(s.restart, 'unless-stopped', `${role}: restart`);
    t.ok(s.healthcheck?.test, `${role}: healthcheck`);
  }
});

for (const [role, service] of trackers) {
  t.test(`${role}: command, flags and TRACKER_* variables name real options`, async (t) => {
    const known = new Set(optionNames(role));
    const command = service.command ?? [];
    t.equal(command[0], `tracker-${role}`, 'runs its own bin');
    t.ok(bins.has(command[0] as string), `${command[0]} is a bin of the workspace`);
    for (const name of flags(command).keys()) t.ok(known.has(name), `--${name} is a ${role} option`);
    const knownEnv = new Set([...known].map(envName));
    for (const name of Object.keys(service.environment ?? {})) {
      if (name.startsWith('TRACKER_')) t.ok(knownEnv.has(name), `${name} names a ${role} option`);
    }
    for (const name of Object.keys(imageEnv)) {
      if (name.startsWith('TRACKER_')) t.ok(knownEnv.has(name), `the image's ${name} names a ${role} option`);
    }
    // The secret comes from the environment or .env, never from the file itself.
    t.match(service.environment?.['TRACKER_SECRET'] ?? '', /^\$\{TRACKER_SECRET:\?/, 'TRACKER_SECRET is required from the environment');
    t.notOk(flags(command).has('secret'), 'no --secret on the command line');
  });

  t.test(`${role}: ports, volume and health check agree with its options`, async (t) => {
    const env = { ...imageEnv, ...(service.environment ?? {}) };
    const port = Number(env['TRACKER_PORT']);
    const adminPort = Number(env['TRACKER_ADMIN_PORT']);
    t.ok(port > 0 && adminPort > 0, 'TRACKER_PORT and TRACKER_ADMIN_PORT set');
    t.equal(env['TRACKER_HOST'], '0.0.0.0', 'clients from outside the container reach it');
    t.equal(env['TRACKER_ADMIN_HOST'], '0.0.0.0', 'Prometheus in the compose network reaches it');
    const ports = (service.ports ?? []).map(portMapping);
    const client = ports.find((p) => p.container === port);
    t.ok(client, `the client port ${port} is published`);
    t.equal(client?.published, port, 'on the same number');
    const admin = ports.find((p) => p.container === adminPort);
    t.ok(admin, `the admin port ${adminPort} is published`);
    t.equal(admin?.ip, '127.0.0.1', 'the admin port only on the host\'s loopback');
    t.equal(ports.length, 2, 'nothing else published');

    const db = flags(service.command ?? []).get('db');
    t.ok(db, '--db given');
    const mounts = (service.volumes ?? []).map((v) => v.split(':'));
    const dataMount = mounts.find(([, target]) => target === path.posix.dirname(db as string));
    t.ok(dataMount, `a volume mounted on ${path.posix.dirname(db as string)}, the --db directory`);
    t.ok(compose.volumes && Object.hasOwn(compose.volumes, (dataMount as string[])[0] as string), 'a named volume declared at the top level');

    const test = service.healthcheck?.test ?? [];
    t.equal(test[0], 'CMD');
    t.ok(bins.has(test[1] as string), `${test[1]} is a bin`);
    t.ok(
      COMMANDS.some((c) => c.command === test[2]),
      `${test[2]} is a tracker-admin subcommand`,
    );
    const subHelp = help(test[1] as string, [test[2] as string]);
    for (const flag of test.slice(3).filter((w) => w.startsWith('--'))) t.match(subHelp, flag, `${flag} is an option of ${test[2]}`);
    t.match(subHelp, /TRACKER_ADMIN_PORT/, 'which reads the tracker\'s own TRACKER_ADMIN_PORT');
  });
}

t.test('volumes are not shared; the trackers find each other by service name', async (t) => {
  const [[, primary], [, replica]] = trackers as [[Role, Service], [Role, Service]];
  const volumeOf = (s: Service): string => ((s.volumes ?? [])[0] as string).split(':')[0] as string;
  t.not(volumeOf(primary), volumeOf(replica), 'each its own volume');
  t.equal(flags(replica.command ?? []).get('primary'), `primary:${primary.environment?.['TRACKER_PORT']}`, 'the replica dials the primary\'s service and port');
  t.equal(flags(primary.command ?? []).get('replica'), `replica:${replica.environment?.['TRACKER_PORT']}`, 'the primary names the replica');
  t.same(replica.depends_on, ['primary']);
});

t.test('the client profile and Prometheus point at real things', async (t) => {
  const client = compose.services['client'] as Service;
  t.same(client.profiles, ['client']);
  t.equal(client.image, compose.services['primary']?.image, 'the same image');
  const command = client.command ?? [];
  t.ok(bins.has(command[0] as string), `${command[0]} is a bin`);
  const clientHelp = help(command[0] as string);
  for (const flag of flags(command).keys()) t.match(clientHelp, `--${flag}`, `--${flag} is a tracker-client option`);
  const targets = command.filter((_, i) => command[i - 1] === '--tracker');
  t.same(targets, ['primary:7001', 'replica:7002']);

  const prometheus = compose.services['prometheus'] as Service;
  t.same(prometheus.profiles, ['monitoring']);
  const mount = (prometheus.volumes ?? [])[0]?.split(':')[0] as string;
  const config = parse(readFileSync(path.join(ROOT, mount), 'utf8')) as {
    scrape_configs: Array<{ metrics_path: string; static_configs: Array<{ targets: string[] }> }>;
  };
  const job = config.scrape_configs[0];
  t.equal(job?.metrics_path, '/metrics');
  const scraped = (job?.static_configs ?? []).flatMap((s) => s.targets);
  const expected = trackers.map(([role, s]) => `${role}:${({ ...imageEnv, ...s.environment })['TRACKER_ADMIN_PORT']}`);
  t.same(scraped, expected, 'Prometheus scrapes both admin listeners');
});

t.test('Dockerfile: two stages, non-root, tini, real bins', async (t) => {
  const froms = [...dockerfile.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\w+))?/gim)].map((m) => m[1]);
  t.same(froms, ['node:20-bookworm', 'node:20-bookworm-slim'], 'build on the full image, run on slim');
  t.match(dockerfile, /npm prune --omit=dev/, 'only production dependencies reach the runtime stage');
  t.match(dockerfile, /^USER node$/m, 'runs as the non-root node user');
  const entrypoint = JSON.parse((/^ENTRYPOINT\s+(\[.*\])$/m.exec(dockerfile) as RegExpExecArray)[1] as string) as string[];
  t.same(entrypoint, ['/usr/bin/tini', '--'], 'tini forwards SIGTERM to node');
  t.match(dockerfile, /apt-get install -y --no-install-recommends tini/, 'tini is installed');
  const cmd = JSON.parse((/^CMD\s+(\[.*\])$/m.exec(dockerfile) as RegExpExecArray)[1] as string) as string[];
  t.ok(bins.has(cmd[0] as string), `CMD runs ${cmd[0]}, a bin of the workspace`);
  for (const name of flags(cmd).keys()) t.ok(optionNames('primary').includes(name), `CMD's --${name} is an option`);
  const health = JSON.parse((/HEALTHCHECK[^\n]*\\\n\s*CMD\s+(\[.*\])$/m.exec(dockerfile) as RegExpExecArray)[1] as string) as string[];
  t.ok(bins.has(health[0] as string) && COMMANDS.some((c) => c.command === health[1]), `HEALTHCHECK runs ${health.join(' ')}`);
  t.match(imageEnv['PATH'] ?? '', /^\/app\/node_modules\/\.bin:/, 'the bins are on PATH');
  t.match(dockerfile, /VOLUME \["\/data"\]/);
  t.ok(existsSync(path.join(ROOT, '.dockerignore')));
  const ignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8');
  for (const entry of ['**/node_modules', '**/dist', '.env', '.git']) t.match(ignore, new RegExp(`^${entry.replace(/[.*]/g, '\\$&')}$`, 'm'), `${entry} stays out of the build context`);
});

t.test('.env.example holds a placeholder; .env is ignored by git', async (t) => {
  const example = readFileSync(path.join(ROOT, '.env.example'), 'utf8');
  t.match(example, /^TRACKER_SECRET=change-me/m);
  t.match(readFileSync(path.join(ROOT, '.gitignore'), 'utf8'), /^\.env$/m);
});

const composeBin = ['docker-compose'].find((bin) => {
  try {
    execFileSync(bin, ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});

t.test(
  'docker-compose config -q accepts the file',
  { skip: composeBin ? false : 'docker-compose is not installed on this machine (apt-get install docker-compose); only this check is skipped' },
  async (t) => {
    const run = (env: Record<string, string>): Promise<{ code: number; stderr: string }> =>
      new Promise((resolve) => {
        const cleanEnv = childEnv(env);
        delete cleanEnv['TRACKER_SECRET'];
        Object.assign(cleanEnv, env);
        // An empty --env-file equivalent: run from a directory without .env by naming the file and project directory.
        execFile(composeBin as string, ['-f', path.join(ROOT, 'docker-compose.yml'), '--project-directory', ROOT, 'config', '-q'], { env: cleanEnv, cwd: ROOT }, (error, _out, stderr) =>
          resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stderr }),
        );
      });
    const ok = await run({ TRACKER_SECRET: 'a-test-secret' });
    t.equal(ok.code, 0, ok.stderr);
    if (!existsSync(path.join(ROOT, '.env'))) {
      const missing = await run({});
      t.not(missing.code, 0, 'refused without TRACKER_SECRET');
      t.match(missing.stderr, /set TRACKER_SECRET/);
    }
  },
);
