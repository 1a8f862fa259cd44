// Removing a lab, and leftovers of labs whose owner died. Synchronous on purpose: it also runs
// from process 'exit' / signal hooks, where no asynchronous work is carried out any more.
// Everything is found from the system itself (namespace names, `ip netns pids`, marker files), so
// a later run can clean what a crashed run left.
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PREFIX_RE, assertPrefix } from './plan.js';
import { runSync } from './run.js';

/** Per-lab scratch dir: owner marker, TLS certificate. */
export function labDir(prefix: string): string {
  return join(tmpdir(), `pplab-${prefix}`);
}

/** `ip netns exec NS` bind-mounts /etc/netns/NS/resolv.conf over /etc/resolv.conf: the lab's DNS. */
export function etcNetnsDir(ns: string): string {
  return join('/etc/netns', ns);
}

/**
 * Claim `prefix` for this process: the scratch dir is created exclusively (mkdir fails if it
 * exists), so two runs that draw the same random prefix can never build — or clean — each other's lab.
 */
export function claimPrefix(prefix: string): boolean {
  if (labNamespaces(prefix).length > 0) return false;
  try {
    mkdirSync(labDir(prefix), { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  writeFileSync(
    join(labDir(prefix), 'owner.json'),
    `${JSON.stringify({ pid: process.pid, created: new Date().toISOString() })}\n`,
  );
  return true;
}

/** 'alive' | 'dead' (marker names a pid that is gone) | 'unknown' (no readable marker: maybe not ours). */
function ownerState(prefix: string): 'alive' | 'dead' | 'unknown' {
  let pid: number;
  try {
    pid = (JSON.parse(readFileSync(join(labDir(prefix), 'owner.json'), 'utf8')) as { pid: number }).pid;
  } catch {
    return 'unknown';
  }
  if (pid === process.pid) return 'alive';
  try {
    process.kill(pid, 0);
    return 'alive';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? 'alive' : 'dead';
  }
}

export function listNamespaces(): string[] {
  const r = runSync('ip', ['netns', 'list']);
  // Lines look like "name" or "name (id: 3)".
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

export function labNamespaces(prefix: string): string[] {
  return listNamespaces().filter((ns) => ns.startsWith(`${prefix}-`));
}

/** Kill (SIGKILL) every process still inside `ns`, by pid. Returns the pids signalled. */
export function killNamespaceProcesses(ns: string): number[] {
  const killed: number[] = [];
  // A process may fork while we kill; a few bounded rounds catch its children.
  for (let round = 0; round < 5; round++) {
    const pids = runSync('ip', ['netns', 'pids', ns])
      .stdout.split(/\s+/)
      .map(Number)
      .filter((p) => p > 0 && p !== process.pid);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
      } catch {
        /* gone */
      }
    }
    runSync('sleep', ['0.05']);
  }
  return killed;
}

/** Delete every namespace, process, /etc/netns entry and scratch dir of lab `prefix`. */
export function cleanupLabSync(prefix: string, namespaces: readonly string[] = []): void {
  assertPrefix(prefix);
  const all = new Set([...namespaces, ...labNamespaces(prefix)]);
  for (const ns of all) killNamespaceProcesses(ns);
  for (const ns of all) {
    runSync('ip', ['netns', 'del', ns]);
    rmSync(etcNetnsDir(ns), { recursive: true, force: true });
  }
  rmSync(labDir(prefix), { recursive: true, force: true });
}

/**
 * With a prefix: remove that lab, whoever owns it. Without: remove every lab whose owner marker
 * names a dead process, leaving labs of live runs — and namespaces without our marker, which may
 * belong to someone else — alone. Returns the prefixes removed.
 */
export function cleanupStale(prefix?: string): string[] {
  if (prefix !== undefined) {
    cleanupLabSync(prefix);
    return [prefix];
  }
  const fromNs = listNamespaces().map((ns) => ns.split('-')[0] ?? '');
  const fromDirs = readdirSync(tmpdir())
    .filter((d) => d.startsWith('pplab-'))
    .map((d) => d.slice('pplab-'.length));
  const prefixes = new Set([...fromNs, ...fromDirs].filter((p) => PREFIX_RE.test(p)));
  const removed: string[] = [];
  for (const p of prefixes) {
    if (ownerState(p) !== 'dead') continue;
    cleanupLabSync(p);
    removed.push(p);
  }
  return removed;
}
