// The one seam between netfw and the operating system. Every `nft`, `ip` and `sysctl` call goes
// through a CommandRunner, so tests can record calls (runner.fake.ts) and lab tests can run the
// same code inside a network namespace (`netns`).
import { spawn } from 'node:child_process';
import { fail } from './errors.js';

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
}

export interface CommandRunner {
  /** Runs `cmd args...`, writing `stdin` to it if given. Rejects with a PPError on non-zero exit. */
  run(cmd: string, args: readonly string[], stdin?: string): Promise<CommandResult>;
}

export interface RunnerOptions {
  /** Run every command as `ip netns exec NETNS cmd ...` (lab tests; the relay itself leaves it unset). */
  readonly netns?: string;
  /** Kill the command (by its own pid) after this long. Default 30 s. */
  readonly timeoutMs?: number;
}

const MAX_OUTPUT = 64 * 1024 * 1024;

export function createRunner(opts: RunnerOptions = {}): CommandRunner {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  if (opts.netns !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(opts.netns))
    throw new TypeError(`bad netns name: ${opts.netns}`);
  return {
    run(cmd, args, stdin) {
      const argv = opts.netns ? ['netns', 'exec', opts.netns, cmd, ...args] : [...args];
      const file = opts.netns ? 'ip' : cmd;
      const shown = [cmd, ...args].join(' ');
      return new Promise<CommandResult>((resolve, reject) => {
        const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        let size = 0;
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, timeoutMs);
        const collect = (into: Buffer[]) => (b: Buffer) => {
          size += b.length;
          if (size > MAX_OUTPUT) child.kill('SIGKILL');
          else into.push(b);
        };
        child.stdout.on('data', collect(out));
        child.stderr.on('data', collect(err));
        child.on('error', (e) => {
          clearTimeout(timer);
          reject(
            fail('PP_ERR_NETFW_COMMAND_FAILED', { command: shown, code: 'spawn', stderr: e.message }, { cause: e }),
          );
        });
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          const stdout = Buffer.concat(out).toString('utf8');
          const stderr = Buffer.concat(err).toString('utf8');
          if (code === 0) return resolve({ stdout, stderr });
          const why = timedOut ? `timed out after ${timeoutMs} ms` : stderr.trim().slice(0, 4000);
          reject(fail('PP_ERR_NETFW_COMMAND_FAILED', { command: shown, code: code ?? String(signal), stderr: why }));
        });
        // EPIPE when the command exits without reading stdin; its exit status reports the real error.
        child.stdin.on('error', () => {});
        child.stdin.end(stdin ?? '');
      });
    },
  };
}
