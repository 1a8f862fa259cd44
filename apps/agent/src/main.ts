// pocketproxy-agent entry point: parse arguments, build, start, handle signals. Nothing else.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { isPPError } from '@pocketproxy/errors';
import { parseCli, type Parsed } from './cli.js';
import { createLogger, type Logger } from './log.js';
import { pairDevice } from './pair.js';
import { readState } from './state.js';
import { trustedApiClient } from './trust.js';
import { createAgent } from './agent.js';
import { buildFarm } from './farm/run.js';
import { inProcessTunnel, kernelTun, tunnelOnWorker, workerTunnel, type WorkerData } from './tunnel/host.js';
import { runTunnelWorker } from './tunnel/worker.js';
import type { FarmWorkerData } from './farm/threads.js';
import { runFarmWorker } from './farm/worker.js';
import { enableFastOpenServer } from './proxy/fastopen.js';
import { runListenerThread, workerListenerThread, type ListenerWorkerData } from './proxy/threads.js';

/** The relay's SOCKS5 front sends its handshakes in the SYN (proxy/fastopen.ts); POCKETPROXY_FASTOPEN=0 leaves the kernel as it is. */
function fastOpen(logger: Logger): void {
  if (process.env.POCKETPROXY_FASTOPEN === '0') return;
  const tfo = enableFastOpenServer();
  if (tfo !== 'on') logger.info({ reason: tfo }, 'TCP Fast Open not enabled for the proxy listeners');
}

async function main(argv: string[]): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parseCli(argv);
  } catch (e) {
    process.stderr.write(`pocketproxy-agent: ${(e as Error).message}\n`);
    return 2;
  }
  if (parsed.command === 'help') {
    process.stdout.write(parsed.text);
    return 0;
  }
  const logger = createLogger({ level: parsed.logLevel });
  if (parsed.command === 'pair') {
    const { state, path } = await pairDevice({
      server: parsed.server,
      code: parsed.code,
      fingerprint: parsed.fingerprint,
      insecureHttp: parsed.insecureHttp,
      stateDir: parsed.stateDir,
      name: parsed.name,
    });
    logger.info(
      {
        deviceId: state.device_id,
        path,
        relay: `${state.relay.host}:${state.relay.port}`,
        serverKey: state.server_key?.fingerprint ?? null,
      },
      'paired',
    );
    if (state.server_key?.from === 'first-use')
      logger.warn(
        { fingerprint: state.server_key.fingerprint },
        'no fingerprint given: pinned the server key the server answered with; compare it with the dashboard',
      );
    process.stdout.write(`paired as ${state.device_id}; state written to ${path}\n`);
    return 0;
  }
  if (parsed.command === 'farm') {
    fastOpen(logger);
    const farm = buildFarm(parsed.farm, logger, process.argv[1]!);
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'stopping the farm');
      const force = setTimeout(() => process.exit(1), 20_000);
      force.unref();
      farm.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    await farm.start();
    return -1; // keep running
  }
  // The tunnel's packet path on a thread of its own with more than two cores, else on the main event
  // loop (tunnel/host.ts tunnelOnWorker); POCKETPROXY_AGENT_TUNNEL_THREAD=1 / =0 decides. With lanes,
  // lane 0's packet path stays with this thread's listeners (each lane's does with its thread's).
  const onWorker = (parsed.config.lanes ?? 1) === 1 && tunnelOnWorker();
  // The API client checks the server URL (https, loopback or --insecure-http) and every relay key
  // against the server key pinned at pairing (trust.ts).
  const api = trustedApiClient(await readState(parsed.config.stateDir), { insecureHttp: parsed.insecureHttp, logger });
  // POCKETPROXY_OFFLOAD=0: the TUN and the tunnel's UDP socket without offloads (packages/tun README).
  // POCKETPROXY_NATIVE_SEAL=0: every TUN packet sealed in JS (tunnel/native-routes.ts).
  // POCKETPROXY_SPLICE=0: established CONNECT / SOCKS5 tunnels pumped in JS (packages/proxy relay.ts).
  // POCKETPROXY_NATIVE_FRONT=0: HTTP and SOCKS5 listeners accepted in JS (packages/proxy front/connection.ts).
  const config = {
    ...parsed.config,
    splice: process.env.POCKETPROXY_SPLICE !== '0',
    front: process.env.POCKETPROXY_NATIVE_FRONT !== '0',
    offload: process.env.POCKETPROXY_OFFLOAD !== '0',
    nativeSeal: process.env.POCKETPROXY_NATIVE_SEAL !== '0',
  };
  fastOpen(logger);
  const agent = createAgent(config, {
    logger,
    api,
    startTunnel: onWorker
      ? workerTunnel(process.argv[1]!, logger.level, (e) => {
          logger.fatal({ err: e }, 'tunnel worker failed');
          process.exit(1);
        })
      : inProcessTunnel(kernelTun),
    startListenerThread: workerListenerThread(process.argv[1]!, logger),
    onListenerThreadFailed: (e) => {
      logger.fatal({ err: e }, 'listener thread failed');
      process.exit(1);
    },
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    agent.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  await agent.start();
  return -1; // keep running
}

const role = isMainThread
  ? undefined
  : (workerData as WorkerData | FarmWorkerData | ListenerWorkerData | undefined)?.ppRole;
if (role === 'farm') runFarmWorker(workerData as FarmWorkerData);
else if (role === 'listeners') runListenerThread(parentPort!, workerData as ListenerWorkerData);
else if (role === 'tunnel') {
  runTunnelWorker(workerData as WorkerData).catch((e: unknown) => {
    process.stderr.write(`pocketproxy-agent tunnel worker: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
} else
  main(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exit(code);
    },
    (e) => {
      process.stderr.write(
        `pocketproxy-agent: ${isPPError(e) ? `${e.code}: ${e.message}` : ((e as Error).stack ?? String(e))}\n`,
      );
      process.exit(1);
    },
  );
