// Keeps one `openvpn --config server.conf` running: spawn (no shell), its output into our logger
// line by line, restart with back-off (1 s doubling to 30 s; reset after 60 s of good running),
// SIGTERM on stop and SIGKILL if it has not exited 5 s later.
import { spawn as realSpawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import type { Logger } from 'pino';

export interface SupervisorDeps {
  readonly binary: string;
  readonly args: readonly string[];
  readonly logger: Logger;
  readonly spawn?: (cmd: string, args: readonly string[], opts: SpawnOptions) => ChildProcess;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  readonly healthyAfterMs?: number;
  readonly killAfterMs?: number;
  /** Called for every output line (the lab test and status use it). */
  readonly onLine?: (line: string) => void;
}

export interface Supervisor {
  start(): void;
  stop(): Promise<void>;
  readonly pid: number | undefined;
  readonly restarts: number;
}

export function superviseProcess(d: SupervisorDeps): Supervisor {
  const log = d.logger.child({ subsys: 'openvpn' });
  const spawn = d.spawn ?? realSpawn;
  const minB = d.minBackoffMs ?? 1_000;
  const maxB = d.maxBackoffMs ?? 30_000;
  let child: ChildProcess | undefined;
  let stopped = false;
  let backoff = minB;
  let restarts = 0;
  let timer: NodeJS.Timeout | undefined;

  const lines = (stream: NodeJS.ReadableStream | null) => {
    if (!stream) return;
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (c: string) => {
      buf += c;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i).trimEnd();
        buf = buf.slice(i + 1);
        if (!line) continue;
        d.onLine?.(line);
        const lvl = /error|fatal|exiting|cannot|failed/i.test(line) ? 'warn' : 'info';
        log[lvl]({ out: line }, 'openvpn');
      }
      if (buf.length > 16_384) buf = '';
    });
  };

  function launch(): void {
    if (stopped) return;
    const startedAt = Date.now();
    let c: ChildProcess;
    try {
      c = spawn(d.binary, d.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      log.error({ err: String(err) }, 'openvpn could not be started');
      schedule();
      return;
    }
    child = c;
    lines(c.stdout);
    lines(c.stderr);
    c.on('error', (err) => log.error({ err: String(err) }, 'openvpn spawn error'));
    c.on('exit', (code, signal) => {
      if (child === c) child = undefined;
      if (stopped) return;
      if (Date.now() - startedAt >= (d.healthyAfterMs ?? 60_000)) backoff = minB;
      log.error({ code, signal, restartInMs: backoff }, 'openvpn exited; restarting');
      schedule();
    });
    log.info({ pid: c.pid, binary: d.binary }, 'openvpn started');
  }

  function schedule(): void {
    if (stopped) return;
    const wait = backoff;
    backoff = Math.min(maxB, backoff * 2);
    timer = setTimeout(() => {
      restarts++;
      launch();
    }, wait);
    timer.unref();
  }

  return {
    start: () => launch(),
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise<void>((r) => c.once('exit', () => r()));
      c.kill('SIGTERM');
      const t = setTimeout(() => c.kill('SIGKILL'), d.killAfterMs ?? 5_000);
      await exited;
      clearTimeout(t);
      log.info('openvpn stopped');
    },
    get pid() {
      return child?.pid;
    },
    get restarts() {
      return restarts;
    },
  };
}
