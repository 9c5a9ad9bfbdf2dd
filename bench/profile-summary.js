// Summarises a V8 .cpuprofile (from `npm run bench -- --cpu-prof DIR`):
// top functions by self time and by total (inclusive) time.
//
//   node bench/profile-summary.js FILE.cpuprofile [--top N] [--filter TEXT]
import fs from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
let top = 30;
let filter;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--top') top = Number(args[++i]);
  else if (args[i] === '--filter') filter = args[++i];
  else files.push(args[i]);
}
if (files.length === 0) {
  process.stderr.write('usage: node bench/profile-summary.js FILE.cpuprofile [--top N] [--filter TEXT]\n');
  process.exit(2);
}

const cwd = process.cwd();
function where(cf) {
  let url = cf.url || '';
  if (url.startsWith('file://')) url = path.relative(cwd, new URL(url).pathname);
  return url ? `${url}:${cf.lineNumber + 1}` : '';
}

for (const file of files) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  // Sample counts weighted by the time delta each sample stands for.
  const selfUs = new Map();
  const deltas = prof.timeDeltas ?? [];
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = deltas[i + 1] ?? deltas[i] ?? 0;
    selfUs.set(prof.samples[i], (selfUs.get(prof.samples[i]) ?? 0) + Math.max(0, dt));
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

  const key = (n) => `${n.callFrame.functionName || '(anonymous)'}  ${where(n.callFrame)}`;
  const self = new Map();
  const incl = new Map();
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    self.set(key(n), (self.get(key(n)) ?? 0) + us);
    // Inclusive: count once per distinct function on the stack.
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const k = key(byId.get(cur));
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + us);
    }
  }
  const idle = [...self].filter(([k]) => /^\((idle|program|garbage collector)\)/.test(k));
  const pct = (us) => `${((us / total) * 100).toFixed(1).padStart(5)}%`;
  const show = (title, map) => {
    process.stdout.write(`\n${title}\n`);
    [...map]
      .filter(([k]) => !filter || k.includes(filter))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .forEach(([k, us]) => process.stdout.write(`${pct(us)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}\n`));
  };
  process.stdout.write(`== ${file}: ${(total / 1e6).toFixed(2)} s sampled`);
  for (const [k, us] of idle) process.stdout.write(`, ${k.trim()} ${pct(us).trim()}`);
  process.stdout.write('\n');
  show('top self time', self);
  show('top total (inclusive) time', incl);
}
