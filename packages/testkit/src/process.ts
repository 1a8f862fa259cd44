// A process the lab started inside one of its namespaces: output capture, wait-for-line, and a
// kill that reaches the whole process group (the product's binaries start children of their own,
// e.g. `openvpn`). The lab keeps every handle and kills each one by pid at teardown.
import { spawn, type ChildProcess } from 'node:child_process';
import { labError } from './errors.js';
import { inNs } from './run.js';

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** 'pipe' keeps stdin open (write with `handle.stdin`); a closed pipe tells our services the lab is gone. Default 'ignore'. */
  stdin?: 'pipe' | 'ignore';
  /** Mirror output lines to this sink (e.g. console.error) with a `[ns cmd]` tag, for debugging. */
  echo?: (line: string) => void;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

// Keep at most this many lines per stream: a long benchmark must not grow memory without bound.
const MAX_LINES = 20_000;

export class LabProcess {
  readonly pid: number;
  readonly ns: string;
  readonly cmd: string;
  readonly args: readonly string[];
  readonly lines: string[] = [];
  readonly exited: Promise<ExitStatus>;
  exitStatus: ExitStatus | null = null;
  private readonly child: ChildProcess;
  private out = '';
  private err = '';
  private waiters = new Set<() => void>();
  // Lines trimmed from the front of `lines`; waitForLine counts in absolute line numbers.
  private dropped = 0;

  constructor(ns: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}) {
    this.ns = ns;
    this.cmd = cmd;
    this.args = args;
    const [c, a] = inNs(ns, cmd, args);
    // detached: its own process group, so teardown can signal the group (-pid).
    this.child = spawn(c, a, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      detached: true,
      stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'],
    });
    if (this.child.pid === undefined)
      throw labError('PP_ERR_LAB_COMMAND_FAILED', { ns, cmd, code: 'spawn', stderr: 'no pid' });
    this.pid = this.child.pid;
    const tag = `[${ns} ${cmd.split('/').pop()}:${this.pid}]`;
    const feed = (which: 'out' | 'err') => (chunk: string) => {
      let buf = (which === 'out' ? this.out : this.err) + chunk;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.pushLine(line);
        opts.echo?.(`${tag} ${line}`);
      }
      if (which === 'out') this.out = buf;
      else this.err = buf;
    };
    this.child.stdout!.setEncoding('utf8').on('data', feed('out'));
    this.child.stderr!.setEncoding('utf8').on('data', feed('err'));
    this.exited = new Promise((resolve) => {
      this.child.on('error', (e) => {
        this.pushLine(`spawn error: ${String(e)}`);
      });
      this.child.on('close', (code, signal) => {
        if (this.out) this.pushLine(this.out);
        if (this.err) this.pushLine(this.err);
        this.out = this.err = '';
        this.exitStatus = { code, signal };
        this.wake();
        resolve(this.exitStatus);
      });
    });
  }

  get stdin() {
    return this.child.stdin;
  }

  /** All captured output (stdout and stderr interleaved by arrival), as text. */
  output(): string {
    return this.lines.join('\n');
  }

  /**
   * Resolve with the first captured line (already seen or future) matching `pattern`; reject with
   * PP_ERR_LAB_TIMEOUT after `timeoutMs`, or PP_ERR_LAB_PROCESS_EXITED if the process ends first.
   */
  waitForLine(pattern: RegExp | string, timeoutMs = 10_000): Promise<string> {
    const match = (l: string) => (typeof pattern === 'string' ? l.includes(pattern) : pattern.test(l));
    let seen = this.dropped;
    return new Promise((resolve, reject) => {
      const check = () => {
        seen = Math.max(seen, this.dropped);
        for (; seen - this.dropped < this.lines.length; seen++) {
          const l = this.lines[seen - this.dropped]!;
          if (match(l)) {
            done();
            resolve(l);
            return;
          }
        }
        if (this.exitStatus) {
          done();
          reject(
            labError('PP_ERR_LAB_PROCESS_EXITED', {
              cmd: this.cmd,
              pid: this.pid,
              pattern: String(pattern),
              status: `${this.exitStatus.code ?? this.exitStatus.signal}; output tail: ${this.lines.slice(-15).join(' | ')}`,
            }),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          labError('PP_ERR_LAB_TIMEOUT', {
            ms: timeoutMs,
            what: `${this.cmd} printing ${String(pattern)}; output tail: ${this.lines.slice(-15).join(' | ')}`,
          }),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Signal the process group (falls back to the pid alone). No-op once exited. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.exitStatus) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      try {
        process.kill(this.pid, signal);
      } catch {
        /* already gone */
      }
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  async stop(graceMs = 2_000): Promise<ExitStatus> {
    if (this.exitStatus) return this.exitStatus;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    const s = await this.exited;
    clearTimeout(timer);
    // Children that left the group's leader behind still carry its pgid.
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      /* group empty */
    }
    return s;
  }

  private pushLine(line: string) {
    this.lines.push(line);
    if (this.lines.length > MAX_LINES) {
      const n = this.lines.length - MAX_LINES;
      this.lines.splice(0, n);
      this.dropped += n;
    }
    this.wake();
  }

  private wake() {
    for (const w of [...this.waiters]) w();
  }
}
