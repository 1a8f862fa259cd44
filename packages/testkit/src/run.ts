// The one command runner of the lab: every `ip`, `nft`, `conntrack` and `ip netns exec` goes
// through here, with a bounded run time, so a stuck tool can never hang a test run.
import { spawn, spawnSync } from 'node:child_process';
import { labError } from './errors.js';

export interface RunResult {
  stdout: string;
  stderr: string;
  /** Exit code, or null when killed by a signal. */
  code: number | null;
}

export interface RunOptions {
  /** Written to stdin, then stdin is closed. */
  input?: string;
  /** Killed (SIGKILL) and rejected with PP_ERR_LAB_TIMEOUT after this long. Default 30 s. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;
// Output beyond this is dropped, so a chatty command cannot exhaust memory.
const MAX_CAPTURE = 8 * 1024 * 1024;

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < MAX_CAPTURE) stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < MAX_CAPTURE) stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(labError('PP_ERR_LAB_TIMEOUT', { ms: timeoutMs, what: [cmd, ...args].join(' ') }));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code });
    });
    child.stdin.on('error', () => {
      /* the command may exit without reading its input */
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Like run(), but a non-zero exit becomes PP_ERR_LAB_COMMAND_FAILED. */
export async function runChecked(
  cmd: string,
  args: readonly string[],
  opts: RunOptions & { ns?: string } = {},
): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw commandFailed(opts.ns ?? 'root', cmd, args, r);
  return r;
}

/** Synchronous variant for process-exit hooks, where nothing asynchronous runs any more. */
export function runSync(
  cmd: string,
  args: readonly string[],
  opts: { input?: string; timeoutMs?: number } = {},
): RunResult {
  const r = spawnSync(cmd, args, {
    input: opts.input ?? '',
    timeout: opts.timeoutMs ?? 10_000,
    encoding: 'utf8',
    maxBuffer: MAX_CAPTURE,
  });
  return { stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error ? String(r.error) : ''), code: r.status };
}

/** argv that runs `cmd args` inside namespace `ns`. `ip netns exec` execs in place, so the pid is the command's. */
export function inNs(ns: string, cmd: string, args: readonly string[]): [string, string[]] {
  return ['ip', ['netns', 'exec', ns, cmd, ...args]];
}

export function commandFailed(ns: string, cmd: string, args: readonly string[], r: RunResult) {
  return labError('PP_ERR_LAB_COMMAND_FAILED', {
    ns,
    cmd: [cmd, ...args].join(' '),
    code: String(r.code),
    stderr: r.stderr.trim().slice(0, 500),
  });
}

/** Feed `lines` to `ip [-n ns] -batch -` in one process: far quicker than one `ip` per line. */
export async function ipBatch(ns: string | null, lines: readonly string[]): Promise<void> {
  if (lines.length === 0) return;
  const args = ns ? ['-n', ns, '-batch', '-'] : ['-batch', '-'];
  await runChecked('ip', args, { input: `${lines.join('\n')}\n`, ns: ns ?? 'root' });
}

export async function nftScript(ns: string, script: string): Promise<void> {
  const [c, a] = inNs(ns, 'nft', ['-f', '-']);
  await runChecked(c, a, { input: script, ns });
}
