// Finds every *.test.ts in the workspaces and runs them with node's test runner (TypeScript via tsx).
// Usage: node scripts/run-tests.mjs [substring-filter ...]
// Tier-4 lab tests (file names containing ".lab.") run one at a time after the others: they own
// network namespaces and fixed lab addresses.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);
const found = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.') || name === 'dist' || name === 'out' || name === 'build') continue;
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
const env = { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import tsx --conditions=source`.trim() };
const unit = files.filter((f) => !f.includes('.lab.'));
const lab = files.filter((f) => f.includes('.lab.'));
let failed = false;
for (const [group, concurrency] of [[unit, Math.max(2, availableParallelism())], [lab, 1]]) {
  if (group.length === 0) continue;
  const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, ...group], { stdio: 'inherit', env, cwd: root });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
