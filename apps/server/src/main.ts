#!/usr/bin/env node
// pocketproxy — the relay server. Thin: read config, build the system, start it, handle signals.
//   up       API + dashboard + worker here; the tunnel (packet path) in a child process
//   api      REST API, WebSocket hub, dashboard
//   worker   background jobs
//   tunnel   device tunnel, TUN, nftables, push API, transparent proxy
//   migrate  apply database migrations and exit
import { fork, type ChildProcess } from 'node:child_process';
import cluster from 'node:cluster';
import { isPPError } from '@pocketproxy/errors';
import { ConfigError, loadConfig, type Config } from './config.js';
import { buildSystem, createLogger } from './system.js';
import { migrate, openDb } from '@pocketproxy/db';
import { tunnelAvailability } from './preflight.js';

// The tunnel child's V8 young generation: the packet path makes short-lived garbage at a high
// rate, and with the default 16 MB semi-spaces the heap's reserve (not live data: ~26 MB live at
// 1,000 devices) was most of the process's RSS. Flags given to `up` itself come later and win.
// (A separately started `pocketproxy tunnel` gets the same from deploy/systemd.)
const TUNNEL_V8_FLAGS = ['--max-semi-space-size=2'];

const HELP: Record<string, string> = {
  '': `pocketproxy — self-hosted mobile proxy relay

Usage: pocketproxy <command> [--help]

Commands:
  up        start everything: API + dashboard + worker, and the device tunnel in a child process
  api       start the REST API, WebSocket hub and dashboard only
  worker    start the background worker only (needs DATABASE_URL, shared with the API)
  tunnel    start the device tunnel only (needs root and /dev/net/tun)
  migrate   apply database migrations and exit

Configuration is read from the environment (see docs/operations.md): DATABASE_URL,
POCKETPROXY_DATA_DIR, POCKETPROXY_ADMIN_EMAIL, POCKETPROXY_ADMIN_PASSWORD, POCKETPROXY_PUBLIC_HOST,
POCKETPROXY_API_PORT, POCKETPROXY_INTERNAL_TOKEN, ...`,
  up: `pocketproxy up — start the whole platform

Runs the API, dashboard and worker in this process and the device tunnel (the packet path) in a
child process, so packet work never shares an event loop with API requests. Without DATABASE_URL the
embedded database lives in POCKETPROXY_DATA_DIR (default ./data) and is locked to this process.
Without root or /dev/net/tun the tunnel stays off and the reason is printed.`,
  api: 'pocketproxy api — serve the REST API, /ws and the dashboard on POCKETPROXY_API_PORT (default 8080).',
  worker:
    'pocketproxy worker — run background jobs (stale devices, expiry, rotation schedules, retention, webhooks).\n' +
    'With the embedded database, the worker runs inside `up`/`api` instead.',
  tunnel:
    'pocketproxy tunnel — device tunnel on UDP+TCP POCKETPROXY_TUNNEL_PORT (1194), TUN pp0, nftables, push API on POCKETPROXY_PUSH_PORT (8081).',
  migrate: 'pocketproxy migrate — apply pending SQL migrations (the same files on PGlite and PostgreSQL) and exit.',
};

function die(msg: string, code = 1): never {
  process.stderr.write(`pocketproxy: ${msg}\n`);
  process.exit(code);
}

async function runApiAndWorker(config: Config, withWorker: boolean) {
  const log = createLogger(config);
  const sys = await buildSystem(config, { log });
  await sys.api.listen({ host: config.apiHost, port: config.apiPort });
  if (withWorker) sys.worker.start();
  log.info({ url: config.publicUrl, port: config.apiPort, database: sys.db.kind }, 'api listening');
  return { sys, log };
}

async function main() {
  const [cmd = '', ...rest] = process.argv.slice(2);
  if (cmd === '--help' || cmd === '-h' || cmd === 'help' || cmd === '') {
    process.stdout.write(`${HELP['']}\n`);
    return;
  }
  if (!(cmd in HELP)) die(`unknown command "${cmd}"; see pocketproxy --help`, 2);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${HELP[cmd]}\n`);
    return;
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) die(e.message, 2);
    throw e;
  }
  const stops: (() => Promise<void>)[] = [];
  const shutdown = async (signal: string) => {
    process.stderr.write(`pocketproxy: ${signal}, stopping\n`);
    for (const s of stops.reverse()) await s().catch(() => {});
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));

  switch (cmd) {
    case 'migrate': {
      const db = await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
      const applied = await migrate(db);
      await db.close();
      process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
      return;
    }
    case 'api': {
      // Several API processes may share the port on PostgreSQL (node:cluster hands connections out);
      // WebSocket events reach every process through LISTEN/NOTIFY.
      if (config.apiProcesses > 1 && cluster.isPrimary) {
        const forkOne = () => cluster.fork().on('error', () => {}); // EPIPE while a worker is going away
        for (let i = 0; i < config.apiProcesses; i++) forkOne();
        cluster.on('exit', (w, code, signal) => {
          if (w.exitedAfterDisconnect) return;
          process.stderr.write(
            `pocketproxy: api process ${w.process.pid} exited (${code ?? signal}); starting another\n`,
          );
          setTimeout(forkOne, 1000);
        });
        stops.push(async () => {
          const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
          await Promise.all(
            workers.map(
              (w) =>
                new Promise((r) => {
                  w.once('exit', r);
                  w.disconnect();
                }),
            ),
          );
        });
        return;
      }
      // With the embedded database only one process may open it, so the worker runs here too.
      const { sys } = await runApiAndWorker(config, !config.databaseUrl);
      stops.push(() => sys.close());
      if (cluster.isWorker) process.once('disconnect', () => void shutdown('primary stopped'));
      return;
    }
    case 'worker': {
      if (!config.databaseUrl)
        die(
          'the worker alone needs DATABASE_URL; with the embedded database run `pocketproxy up` or `api`, which include it',
          2,
        );
      const log = createLogger(config);
      const sys = await buildSystem(config, { log });
      sys.worker.start();
      stops.push(() => sys.close());
      log.info('worker started');
      return;
    }
    case 'tunnel': {
      const { runTunnel } = await import('./tunnel/main.js');
      const stop = await runTunnel(config);
      stops.push(stop);
      return;
    }
    case 'up': {
      const { sys, log } = await runApiAndWorker(config, true);
      stops.push(() => sys.close());
      const why = tunnelAvailability(config);
      if (why !== null) {
        log.warn(
          { reason: why },
          `device tunnel is OFF: ${why}. The API and dashboard are running; devices cannot connect until the tunnel runs.`,
        );
        return;
      }
      let child: ChildProcess | null = null;
      let stopping = false;
      const spawnTunnel = () => {
        child = fork(process.argv[1]!, ['tunnel'], {
          stdio: 'inherit',
          execArgv: [...TUNNEL_V8_FLAGS, ...process.execArgv],
          env: { ...process.env, POCKETPROXY_INTERNAL_TOKEN: sys.ctx.internalToken },
        });
        child.on('exit', (code, signal) => {
          if (stopping) return;
          if (code === 3) {
            log.warn('device tunnel is OFF: this build has no tunnel; the API and dashboard keep running');
            return;
          }
          log.error({ code, signal }, 'tunnel process exited; restarting in 1 s');
          setTimeout(spawnTunnel, 1000);
        });
      };
      spawnTunnel();
      stops.push(async () => {
        stopping = true;
        const c = child as ChildProcess | null;
        if (c && c.exitCode === null) {
          c.kill('SIGTERM');
          await new Promise((r) => c.once('exit', r));
        }
      });
      return;
    }
  }
}

main().catch((e) => {
  if (isPPError(e)) die(`${e.code}: ${e.message}`);
  die(e instanceof Error ? (e.stack ?? e.message) : String(e));
});
