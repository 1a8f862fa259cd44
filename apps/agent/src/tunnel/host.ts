// Where the tunnel's packet path runs: on the agent's own event loop (tests, with an injected TUN)
// or on a worker thread of its own (the agent binary).
//
//   main thread:   proxies (accept, parse, dial, relay), heartbeat, commands
//   tunnel worker: TUN read -> seal -> UDP/TCP -> relay;  relay -> open -> TUN write   (worker.ts)
//
// Every customer packet crosses the tunnel, so at a few thousand new connections a second the
// packet path was about a quarter of the agent's one loop (sendmmsg/TUN writes carry the kernel's
// delivery inline). On its own thread it runs beside the proxies instead of between them, the
// same split the relay makes with its tunnel child process. Only JSON messages (commands, acks,
// control) and a state snapshot cross the thread boundary; packets never do.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { SOLE_LANE, type JsonMessage, type Lane } from '@pocketproxy/protocol';
import {
  configureTun,
  execRunner,
  openTun,
  type BatchUdpSocket,
  type SealPath,
  type TunDevice,
} from '@pocketproxy/tun';
import { installReplyRoute, removeReplyRoute } from './routing.js';
import { agentError } from '../errors.js';
import { createTunnelClient, type TunnelClient, type TunnelClientOptions, type TunnelStats } from './client.js';
import type { Transport } from './transport-policy.js';

export interface TunnelSpec {
  /** `replyTable`: route answers from `address` into the TUN (routing.ts); absent with a FakeTun. */
  tun: { name: string; mtu: number; address: string; prefixLength: number; replyTable?: number };
  relayHost: string;
  relayPort: number;
  relayPublicKey: Uint8Array;
  privateKey: Uint8Array;
  psk: Uint8Array;
  probe?: { src: string; dst: string };
  /** TUN and UDP offloads (default on; the agent turns them off for POCKETPROXY_OFFLOAD=0). */
  offload?: boolean;
  /** Local IPv4 address of the tunnel's sockets (the farm: the phone's interface address). */
  bindAddress?: string;
  /**
   * TUN packets sealed and sent in C++ while established over UDP (native-routes.ts; default on when the
   * TUN offers it; main.ts: off for POCKETPROXY_NATIVE_SEAL=0).
   */
  nativeSeal?: boolean;
  /**
   * One of the device's lanes (`run --lanes`; docs/protocol.md §3.1): the TUN is multi-queue, this tunnel
   * one queue of it with a session of its own. Lane 0 configures the TUN and steers its queues by flow
   * (KernelTun.steerByFlow); the others (listener threads, proxy/threads.ts) open a queue of it and carry
   * packets only (no probes). Absent: the only lane.
   */
  lane?: Lane;
  options?: Partial<Pick<TunnelClientOptions, 'timers' | 'policy' | 'liveness' | 'tickMs'>>;
}

/** What the agent needs of a running tunnel, wherever it runs. */
export interface TunnelHandle {
  readonly established: boolean;
  readonly tunName: string;
  stats(): TunnelStats;
  sendMessage(message: JsonMessage): void;
  /**
   * `fn` is called with the time (Date.now) a session was presumed lost (the relay silent or dead) once the
   * next one is established, and the transport it was established over: the relay may have restarted, or
   * the path stopped carrying UDP (agent.ts tells the other lanes). Only where the tunnel runs on the
   * caller's thread, which is where lane 0 runs.
   */
  onRecovered?(fn: (lostAt: number, transport: Transport) => void): void;
  /**
   * `fn` is called when the tunnel moves back to UDP after a time on TCP because the relay answered over UDP
   * (agent.ts tells the other lanes); not when it merely tries UDP again. Same thread rule.
   */
  onUdpAgain?(fn: () => void): void;
  stop(): Promise<void>;
}

export type StartTunnel = (
  spec: TunnelSpec,
  onMessage: (m: JsonMessage) => void,
  logger: Logger,
) => Promise<TunnelHandle>;

/** Options of the TunnelClient a spec describes (shared by both hosts). */
function clientOptions(
  spec: TunnelSpec,
  logger: Logger,
  onPackets: (ps: Buffer[]) => void,
  onMessage: (m: JsonMessage) => void,
): TunnelClientOptions {
  return {
    relayHost: spec.relayHost,
    relayPort: spec.relayPort,
    relayPublicKey: Buffer.from(spec.relayPublicKey),
    privateKey: Buffer.from(spec.privateKey),
    psk: Buffer.from(spec.psk),
    probe: (spec.lane?.index ?? 0) === 0 ? spec.probe : undefined,
    lane: spec.lane,
    offload: spec.offload,
    bindAddress: spec.bindAddress,
    logger,
    onPackets,
    onMessage,
    ...spec.options,
    // A lane but 0 sends no probes (their answers come by the lane the relay's hash picks): it hears
    // the relay's keepalives (every 10 s on an idle lane) and presumes the relay lost after 15 s without
    // a frame back, where lane 0, which probes, notices within ~5 s (liveness.ts).
    ...((spec.lane?.index ?? 0) > 0
      ? { liveness: { ...spec.options?.liveness, replyTimeoutMs: LANE_REPLY_TIMEOUT_MS } }
      : {}),
  };
}

/** How long a lane but 0 waits for a frame back after sending before it handshakes again (ms). */
export const LANE_REPLY_TIMEOUT_MS = 15_000;

/** How the TUN is opened and configured: the kernel's (kernelTun) or a test's FakeTun. */
export interface TunIo {
  /** `multiQueue`: one queue of a multi-queue TUN (lanes); every open of the name adds one. */
  openTun(name: string, mtu: number, offload?: boolean, multiQueue?: boolean): TunDevice;
  configureTun(cfg: TunnelSpec['tun']): Promise<void>;
  /** Undoes what configureTun set up beyond the TUN itself (which goes away when closed). */
  unconfigureTun?(cfg: TunnelSpec['tun']): Promise<void>;
}

/** The real TUN device, configured with `ip` (no shell), answers to customers routed into it. */
export const kernelTun: TunIo = {
  openTun: (name, mtu, offload, multiQueue) =>
    openTun({ name, maxPacket: Math.max(mtu, 1500) + 64, offload, multiQueue }),
  configureTun: async (cfg) => {
    await configureTun(cfg, execRunner);
    if (cfg.replyTable !== undefined)
      await installReplyRoute({ tun: cfg.name, address: cfg.address, table: cfg.replyTable }, execRunner);
  },
  unconfigureTun: async (cfg) => {
    if (cfg.replyTable !== undefined) await removeReplyRoute(cfg.replyTable, execRunner);
  },
};

function steerable(tun: TunDevice): tun is TunDevice & { steerByFlow(lanes: number): void } {
  return typeof (tun as { steerByFlow?: unknown }).steerByFlow === 'function';
}

/** A TUN with a native seal path (the kernel's; FakeTun plays one). */
function sealable(tun: TunDevice): tun is TunDevice & { sealPath(udp: BatchUdpSocket): SealPath } {
  return typeof (tun as { sealPath?: unknown }).sealPath === 'function';
}

/** Opens and configures the TUN, connects the tunnel client to it and starts both. */
export async function runTunnel(
  spec: TunnelSpec,
  io: TunIo,
  onMessage: (m: JsonMessage) => void,
  logger: Logger,
): Promise<{ tun: TunDevice; client: TunnelClient }> {
  const lane = spec.lane ?? SOLE_LANE;
  const tun = io.openTun(spec.tun.name, spec.tun.mtu, spec.offload, lane.count > 1);
  try {
    if (lane.index === 0) {
      await io.configureTun({ ...spec.tun, name: tun.name });
      // The device's answers leave by the queue (the lane) their flow came in on: the relay's hash.
      // Without it (no CAP_BPF) lanes still work, the answers leaving by whichever queue the TUN picks.
      if (lane.count > 1 && steerable(tun))
        try {
          tun.steerByFlow(lane.count);
        } catch (err) {
          logger.warn({ err }, 'lanes: the TUN cannot steer by flow; answers cross between lanes');
        }
    }
    const client = createTunnelClient({
      ...clientOptions(
        spec,
        logger,
        (ps) => {
          if (ps.length === 1) tun.write(ps[0]!);
          else tun.writeBatch(ps);
        },
        onMessage,
      ),
      ...(spec.nativeSeal !== false && sealable(tun)
        ? {
            nativeSeal: {
              sealPath: (udp) => tun.sealPath(udp),
              sealed: () => tun.stats().sealNative ?? 0,
              openPath: (udp) => udp.openPath(tun),
            },
          }
        : {}),
    });
    tun.start(
      (batch) => client.sendPackets(batch),
      (e) => logger.error({ err: e }, 'tun read failed'),
    );
    await client.start();
    return { tun, client };
  } catch (e) {
    tun.close();
    throw e;
  }
}

/** The tunnel on the caller's event loop (tests inject a FakeTun this way). */
export function inProcessTunnel(io: TunIo): StartTunnel {
  return async (spec, onMessage, logger) => {
    const { tun, client } = await runTunnel(spec, io, onMessage, logger);
    return {
      get established() {
        return client.established;
      },
      tunName: tun.name,
      stats: () => client.stats(),
      sendMessage: (m) => client.sendMessage(m),
      onRecovered: (fn) =>
        client.on('established', (e) => {
          if (e.recovered) fn(e.recovered.lostAt, e.transport);
        }),
      onUdpAgain: (fn) =>
        client.on('transport', (e) => {
          if (e.transport === 'udp' && e.why === 'answered') fn();
        }),
      async stop() {
        await client.stop();
        tun.close();
        await io.unconfigureTun?.(spec.tun).catch(() => {});
      },
    };
  };
}

/**
 * Whether the packet path gets a worker thread of its own. POCKETPROXY_AGENT_TUNNEL_THREAD=1 or =0
 * decides; by default only on a host with more than two cores. On its own thread the packet path
 * runs beside the proxies, which pays when the proxies' loop is the limit and a core is free for it.
 * On two cores it is not: packets between the proxies and the TUN wake the other thread a few at
 * a time (a TUN read or socket event each way, small batches, a cross-thread wakeup that a
 * virtualised host charges dearly), while on one loop the packets of several connections wait for
 * the same epoll round and go in one batch. Lab, 2 cores, same build, two A/B pairs (docs/benchmarks.md, issue 13
 * item 2): agent CPU per short connection 754 → 493 µs and 1,050 → 823 µs, new connections/s
 * 900 → 1,202 and 490 → 1,111 with the packet path on the main loop.
 */
export function tunnelOnWorker(
  setting: string | undefined = process.env.POCKETPROXY_AGENT_TUNNEL_THREAD,
  cores: number = availableParallelism(),
): boolean {
  if (setting === '0') return false;
  if (setting === '1') return true;
  return cores > 2;
}

/** main thread -> worker ('start': the spec, for a worker started before the spec was known) */
export type ToWorker = { t: 'start'; spec: TunnelSpec } | { t: 'send'; message: JsonMessage } | { t: 'stop' };
/** worker -> main thread */
export type FromWorker =
  | { t: 'started'; tunName: string; stats: TunnelStats }
  | { t: 'state'; stats: TunnelStats }
  | { t: 'message'; message: JsonMessage }
  | { t: 'failed'; error: string }
  | { t: 'stopped' };

/** Without `spec`, the worker loads and waits for a 'start' message carrying it. */
export interface WorkerData {
  ppRole: 'tunnel';
  spec?: TunnelSpec;
  logLevel: string;
}

/**
 * The tunnel on a worker thread. `entry` is the script the worker runs: the agent's own entry
 * point, which hands over to worker.ts when it finds `workerData.ppRole === 'tunnel'` (one bundle,
 * as the server forks its own entry for the tunnel process). A worker that dies takes the agent
 * with it, as an exception on the packet path would in-process: the supervisor restarts both.
 */
export function workerTunnel(entry: string, logLevel: string, onFatal: (e: unknown) => void): StartTunnel {
  // One worker is started right away, without a spec: it loads the agent's bundle (~0.3-0.5 s on a
  // small device) while the main thread reads its state and asks the API for the tunnel parameters,
  // so the first handshake goes out that much sooner after `run` starts. It holds nothing open (and
  // does not keep the process alive) until it gets its spec.
  const spawn = () => {
    const w = {
      worker: new Worker(entry, { workerData: { ppRole: 'tunnel', logLevel } satisfies WorkerData, argv: [] }),
      gone: false,
    };
    w.worker.unref();
    w.worker.once('error', () => {
      w.gone = true;
    });
    w.worker.once('exit', () => {
      w.gone = true;
    });
    return w;
  };
  let spare: ReturnType<typeof spawn> | undefined = spawn();
  return (spec, onMessage, logger) =>
    new Promise((resolve, reject) => {
      const ready = spare && !spare.gone ? spare : spawn();
      spare = undefined;
      const worker = ready.worker;
      worker.ref();
      let stats: TunnelStats | undefined;
      let tunName = spec.tun.name;
      let started = false;
      let stopped: (() => void) | undefined;
      const handle: TunnelHandle = {
        get established() {
          return stats?.established ?? false;
        },
        get tunName() {
          return tunName;
        },
        stats: () => {
          if (!stats) throw agentError('PP_ERR_AGENT_USAGE', { reason: 'tunnel not started' });
          return stats;
        },
        sendMessage: (message) => worker.postMessage({ t: 'send', message } satisfies ToWorker),
        stop: () =>
          new Promise<void>((done) => {
            const finish = () => {
              clearTimeout(timer);
              void worker.terminate().then(
                () => done(),
                () => done(),
              );
            };
            const timer = setTimeout(finish, 3_000);
            stopped = finish;
            worker.postMessage({ t: 'stop' } satisfies ToWorker);
          }),
      };
      worker.on('message', (m: FromWorker) => {
        switch (m.t) {
          case 'started':
            started = true;
            tunName = m.tunName;
            stats = m.stats;
            resolve(handle);
            break;
          case 'state':
            stats = m.stats;
            break;
          case 'message':
            onMessage(m.message);
            break;
          case 'failed':
            if (!started) {
              reject(new Error(m.error));
              void worker.terminate();
            } else onFatal(new Error(m.error));
            break;
          case 'stopped':
            stopped?.();
            break;
        }
      });
      worker.on('error', (e) => {
        if (!started) reject(e);
        else onFatal(e);
      });
      worker.on('exit', (code) => {
        if (!started) reject(new Error(`tunnel worker exited with code ${code} before starting`));
        else if (!stopped) onFatal(new Error(`tunnel worker exited with code ${code}`));
      });
      worker.postMessage({ t: 'start', spec } satisfies ToWorker);
      logger.debug({ entry }, 'tunnel worker started');
    });
}
