// Finds every *.test.ts in the workspaces and runs them with node's test runner (TypeScript via tsx).
// Usage: node scripts/run-tests.mjs [substring-filter ...]
// Tier-4 lab tests (file names containing ".lab.") run one at a time after the others: they own
// network namespaces and fixed lab addresses.
import { readdirSync, statSync, mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);
const found = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.') || name === 'dist' || name === 'out' || name === 'build')
      continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts')) found.push(relative(root, p));
  }
}
walk(join(root, 'packages'));
walk(join(root, 'apps'));
const files = found.sort().filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('run-tests: no test files matched', filters);
  process.exit(1);
}
const env = {
  ...process.env,
  NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import tsx --conditions=source`.trim(),
};
const unit = files.filter((f) => !f.includes('.lab.'));
const lab = files.filter((f) => f.includes('.lab.'));
let failed = false;
const tmp = mkdtempSync(join(tmpdir(), 'pp-tests-'));
const total = { passed: 0, failed: 0, skipped: 0, failures: [] };
for (const [name, group, concurrency] of [
  ['unit', unit, Math.max(2, availableParallelism())],
  ['lab', lab, 1],
]) {
  if (group.length === 0) continue;
  const counts = join(tmp, `${name}.json`);
  const reporters = [
    '--test-reporter',
    process.stdout.isTTY ? 'spec' : 'tap',
    '--test-reporter-destination',
    'stdout',
    '--test-reporter',
    join(root, 'scripts/summary-reporter.mjs'),
    '--test-reporter-destination',
    counts,
  ];
  // A test may take 5 minutes; a whole group 40. A process that hangs (a deadlock does not fire timers) is
  // killed by the group limit, and the run fails instead of holding CI until its own deadline.
  const r = spawnSync(
    process.execPath,
    ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=300000', ...reporters, ...group],
    { stdio: 'inherit', env, cwd: root, timeout: 40 * 60_000, killSignal: 'SIGKILL' },
  );
  if (r.error || r.signal)
    console.error(`run-tests: the ${name} group did not finish (${r.error?.message ?? r.signal}); counted as failed`);
  if (r.status !== 0) failed = true;
  if (existsSync(counts)) {
    for (const line of readFileSync(counts, 'utf8').split('\n').filter(Boolean)) {
      const c = JSON.parse(line);
      total.passed += c.passed;
      total.failed += c.failed;
      total.skipped += c.skipped;
      total.failures.push(...c.failures);
    }
  }
}
if (total.failures.length) console.log(`\nFailed:\n${total.failures.map((f) => `  - ${f}`).join('\n')}`);
if (failed && total.failed === 0) total.failed = 1; // a file that crashed before reporting
console.log(`\n${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
process.exit(failed ? 1 : 0);
