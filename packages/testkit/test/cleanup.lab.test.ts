// Tier-4 lab test: a lab whose owner is killed does not outlive it — SIGTERM runs the exit hook,
// SIGKILL leaves namespaces that cleanupStale() (also run by every createLab) removes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cleanupStale, requireRootOrSkip, waitUntil } from '../src/index.js';
import { TSX_LOADER } from '../src/services.js';

const INDEX = fileURLToPath(new URL('../src/index.ts', import.meta.url));

/** Start a process that owns a 1-device lab with a long-running spawned process; resolve its prefix. */
async function ownerWithLab() {
  const script = `import { createLab } from ${JSON.stringify(INDEX)};
    const lab = await createLab({ devices: 1 });
    lab.spawn('dev1', 'sleep', ['600']);
    console.log('PREFIX ' + lab.prefix);
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', TSX_LOADER, '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const prefix = await waitUntil(() => /PREFIX (pp[0-9a-f]{4})/.exec(out)?.[1], {
    timeoutMs: 20_000,
    what: 'child lab up',
  });
  return { child, prefix };
}

function namespacesOf(prefix: string): string[] {
  return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((l) => l.startsWith(`${prefix}-`));
}

function pidsIn(ns: string): number[] {
  return spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split(/\s+/).filter(Boolean).map(Number);
}

function alive(pid: number): boolean {
  const st = spawnSync('sh', ['-c', `grep '^State:' /proc/${pid}/status 2>/dev/null`], { encoding: 'utf8' }).stdout;
  return st !== '' && !/\bZ\b|zombie/.test(st);
}

test('SIGTERM to the owner tears its lab down', { timeout: 45_000 }, async (t) => {
  if (!requireRootOrSkip(t)) return;
  const { child, prefix } = await ownerWithLab();
  assert.ok(namespacesOf(prefix).length > 0);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  assert.deepEqual(namespacesOf(prefix), []);
});

test('after SIGKILL of the owner, cleanupStale() removes the lab and its processes', { timeout: 45_000 }, async (t) => {
  if (!requireRootOrSkip(t)) return;
  const { child, prefix } = await ownerWithLab();
  const dev1 = `${prefix}-dev1`;
  const leftovers = pidsIn(dev1);
  assert.ok(leftovers.length > 0, 'the spawned sleep runs in dev1');
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  assert.ok(namespacesOf(prefix).length > 0, 'nothing could run on SIGKILL');
  assert.ok(cleanupStale().includes(prefix));
  assert.deepEqual(namespacesOf(prefix), []);
  // Orphans are reparented to pid 1, which may not reap them: a zombie counts as dead.
  for (const pid of leftovers) assert.ok(!alive(pid), `pid ${pid} still running`);
});
