// Tier-4 lab test of `npm run demo` as an operator runs it: it prints a dashboard URL on this machine's
// loopback that answers (the page and the API behind it), its printed commands need no sudo, and
// SIGTERM or SIGINT to the pid of `npm run demo` stops it: exit, no namespace of its lab, no process left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { requireRootOrSkip, waitUntil } from '../src/index.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function namespacesOf(prefix: string): string[] {
  return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((l) => l.startsWith(`${prefix}-`));
}

/** Every process inside the lab's namespaces, and the demo's own node process (npm's child). */
function processesOf(prefix: string, npmPid: number): number[] {
  const pids = namespacesOf(prefix).flatMap((ns) =>
    spawnSync('ip', ['netns', 'pids', ns.split(' ')[0]!], { encoding: 'utf8' })
      .stdout.split(/\s+/)
      .filter(Boolean)
      .map(Number),
  );
  const kids = spawnSync('pgrep', ['-P', String(npmPid)], { encoding: 'utf8' })
    .stdout.split(/\s+/)
    .filter(Boolean);
  return [...new Set([...pids, ...kids.map(Number)])];
}

/** Still running (a zombie waiting for its parent counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`npm run demo: dashboard on 127.0.0.1, no sudo, ${signal} to its pid removes everything`, {
    timeout: 240_000,
  }, async (t) => {
    if (requireRootOrSkip(t)) return;
    const child = spawn('npm', ['run', 'demo'], {
      cwd: ROOT,
      env: { ...process.env, PP_DEMO_DEVICES: '1', PP_DEMO_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    let prefix = '';
    try {
      await waitUntil(() => /^Stop: /m.test(out) || child.exitCode !== null, {
        timeoutMs: 180_000,
        intervalMs: 250,
        what: 'the demo is up',
      });
      assert.equal(child.exitCode, null, `the demo is running:\n${out}`);
      prefix = /running in lab (pp[0-9a-f]{4})/.exec(out)?.[1] ?? '';
      assert.ok(prefix, `the demo names its lab:\n${out}`);
      const url = /^Dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/m.exec(out)?.[1];
      assert.ok(url, `a dashboard URL on the loopback is printed:\n${out}`);
      const page = await fetch(url);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<html/i, 'the dashboard page');
      assert.equal((await fetch(`${url}healthz`)).status, 200, 'the API behind it');
      assert.doesNotMatch(out, /\bsudo\b/, 'commands run as root without sudo');
      assert.match(out, /^ip netns exec \S+-cust curl -x http:\/\//m, 'curl lines as root');

      const procs = processesOf(prefix, child.pid!);
      assert.ok(procs.length >= 3, `the demo's processes: ${procs}`);
      assert.ok(child.kill(signal), `${signal} sent to the pid of npm run demo`);
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 30_000))]);
      assert.notEqual(code, 'timeout', `the demo exits on ${signal}:\n${out.slice(-2000)}`);
      const left = () => ({ namespaces: namespacesOf(prefix), processes: procs.filter(alive) });
      await waitUntil(() => left().namespaces.length + left().processes.length === 0, {
        timeoutMs: 15_000,
        what: 'namespaces and processes gone',
      }).catch(() => assert.deepEqual(left(), { namespaces: [], processes: [] }, 'nothing of the demo is left'));
      await assert.rejects(fetch(url), 'the dashboard forward is closed');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      // Belt and braces: whatever a failed run left behind goes (only this lab's prefix).
      if (prefix) for (const ns of namespacesOf(prefix)) spawnSync('ip', ['netns', 'del', ns.split(' ')[0]!]);
    }
  });
}
