// `pocketproxy-agent run`, wired from injected parts (the only module main.ts builds from):
//
//   state.json -> API /tunnel (relay key) -> TUN ppd0 (vpn_ip/prefix, mtu) <-> TunnelClient <-> relay
//   one listener per connection on vpn_ip:<its relay port> (HTTP or SOCKS5 tcp+udp) -> egress interface -> internet
//   heartbeat (metrics, public IP, usage) <-> API; commands by tunnel push or heartbeat -> dispatcher
//   credentials (API, on push / version change) -> listeners (open, close, revoke) + byte budgets
import { isPPError } from '@pocketproxy/errors';
import type { Logger } from 'pino';
import { decodeKey, type JsonMessage } from '@pocketproxy/protocol';
import { SpliceEngine } from '@pocketproxy/tun';
import { ConnectionMeter } from '@pocketproxy/proxy';
import { createApiClient, fetchPublicIp, type ApiClient, type HeartbeatReply, type TunnelInfo } from './api-client.js';
import { CredentialStore } from './credentials.js';
import { agentError } from './errors.js';
import { readState, writeState, type AgentState } from './state.js';
import { AGENT_VERSION } from './version.js';
import type { TunnelClientOptions } from './tunnel/client.js';
import type { StartTunnel, TunnelHandle, TunnelSpec } from './tunnel/host.js';
import { firstHost, prefixLength } from './tunnel/probe.js';
import { interfaceAddresses } from './proxy/egress.js';
import type { Listeners } from './proxy/listeners.js';
import { buildListeners, capsPerThread, threadEngine, type ListenerSetup } from './proxy/setup.js';
import { useLeanSockets } from './proxy/sockets.js';
import { ListenerThreads, type StartListenerThread } from './proxy/threads.js';
import { UsageMeter } from './ops/usage.js';
import { DEFAULT_REPLY_TABLE } from './tunnel/routing.js';
import { HeartbeatLoop } from './ops/heartbeat.js';
import { collectMetrics, type Metrics } from './ops/metrics.js';
import { CommandDispatcher, type CommandHandler } from './ops/commands.js';
import {
  commandCapabilities,
  createRotationDriver,
  realExec,
  rotateIp,
  type DriverName,
  type Exec,
  type RotationDriver,
} from './ops/rotation.js';

/** An IPv4 subnet a.b.c.d/n as the relay's `config` names its OpenVPN customers'. */
const OPENVPN_SUBNET = /^(?:\d{1,3}\.){3}\d{1,3}\/(?:[89]|[12]\d|3[0-2])$/;

/** A tunnel without a session this long makes the agent ask the API whether its relay changed. */
export const NO_SESSION_RECHECK_MS = 60_000;

export interface RunConfig {
  stateDir: string;
  egressInterface?: string;
  tunnelInterface: string;
  rotateDriver?: DriverName;
  rotateCommand?: string;
  ipEchoUrl?: string;
  allowPrivateDestinations: boolean;
  closeOnRotate: boolean;
  allowReboot: boolean;
  airplaneSeconds: number;
  /** How long the egress reuses a DNS answer (ms; 0 = resolve on every dial; default 5000). */
  dnsCacheMs?: number;
  /** Request head / SOCKS5 handshake deadline (ms, default 10000). */
  handshakeTimeoutMs?: number;
  /** Established tunnels idle this long are closed (ms, default 300000). */
  idleTimeoutMs?: number;
  /** Unauthenticated sockets allowed per customer address (default 64) and in all (default 2048). */
  maxHandshakesPerAddress?: number;
  maxHandshakes?: number;
  /** Routing table (and rule preference) that sends answers to customers into the tunnel; 0 = none (tests). */
  replyTable?: number;
  /** TUN and UDP offloads of the tunnel (default on; main.ts: off for POCKETPROXY_OFFLOAD=0). */
  offload?: boolean;
  /**
   * Established CONNECT / SOCKS5 tunnels relayed kernel to kernel (@pocketproxy/tun SpliceEngine;
   * default on with LeanSockets and the addon; main.ts: off for POCKETPROXY_SPLICE=0).
   */
  splice?: boolean;
  /**
   * HTTP and SOCKS5 listeners accepted by the same native engine, which serves CONNECTs and last GETs itself (packages/proxy
   * http/front.ts; default on where `splice` is; main.ts: off for POCKETPROXY_NATIVE_FRONT=0).
   */
  front?: boolean;
  /**
   * Threads serving the unlimited HTTP connections' listeners (proxy/threads.ts; default 1: this one).
   * More than 1 needs the native front and `startListenerThread`.
   */
  listenerThreads?: number;
  /**
   * The device's lanes (`run --lanes`, docs/protocol.md §3.1; absent: 1): a packet path per thread, each
   * with its own TUN queue and tunnel session, the listener threads' too (then as many threads as lanes,
   * whatever listenerThreads says), so that a connection's packets never cross threads. Needs what
   * listener threads need, and the packet path on this thread (main.ts).
   */
  lanes?: number;
  /**
   * `lanes` came from `--lanes auto`: where the TUN cannot open with more than one queue, one lane instead
   * of failing the start.
   */
  lanesAuto?: boolean;
  /** The tunnel's native seal path (default on; main.ts: off for POCKETPROXY_NATIVE_SEAL=0). */
  nativeSeal?: boolean;
  /**
   * The tunnel's own socket leaves by the egress interface too (bound to its IPv4 address; the farm,
   * where each phone is its own device, routes each address out of its own interface by a source
   * rule: farm/routes.ts). Default false: the tunnel follows the host's routes (one device per host).
   */
  tunnelViaEgress?: boolean;
  tunnel?: Partial<Pick<TunnelClientOptions, 'timers' | 'policy' | 'liveness' | 'tickMs'>>;
}

export interface AgentDeps {
  logger: Logger;
  api?: ApiClient;
  exec?: Exec;
  publicIp?: () => Promise<string>;
  now?: () => number;
  /** Where the tunnel runs: a worker thread (main.ts) or this event loop (inProcessTunnel; tests with a FakeTun). */
  startTunnel: StartTunnel;
  /** The rotation driver, built by the caller (the farm: adb or ModemManager per device); overrides cfg.rotateDriver. */
  driver?: RotationDriver;
  /** Where listener threads run (main.ts: worker threads of the bundle); without it, none. */
  startListenerThread?: StartListenerThread;
  /** A listener thread failed (main.ts: the process ends, as for the tunnel worker). */
  onListenerThreadFailed?: (e: Error) => void;
  /** The heartbeat's metrics (the farm: the phone's own, from adb); default: this host's (ops/metrics.ts). */
  metrics?: () => Promise<Metrics>;
}

export interface Agent {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly tunnel: TunnelHandle | undefined;
  readonly listeners: Listeners | undefined;
  readonly dispatcher: CommandDispatcher;
  readonly credentials: CredentialStore;
}

export function createAgent(cfg: RunConfig, deps: AgentDeps): Agent {
  const log = deps.logger;
  const exec = deps.exec ?? realExec;
  const now = deps.now ?? Date.now;
  const credentials = new CredentialStore();
  let listeners: Listeners | undefined;
  /** The relay's OpenVPN customers' subnet from its last `config` (onRelayConfig). */
  let openvpnSubnet: string | null = null;
  let heartbeat: HeartbeatLoop | undefined;
  // A connection whose byte budget runs out: every socket of it ends at its next read (the meter
  // answers -1; what was read and billed before is still delivered), new requests get 403
  // "bandwidth", and a heartbeat carries the count at once so the API blocks it everywhere.
  const usage = new UsageMeter(
    (id) =>
      new ConnectionMeter({
        now,
        onExhausted: () => {
          log.info({ connectionId: id }, 'bandwidth limit reached');
          void heartbeat?.beat();
        },
      }),
  );
  let state: AgentState;
  let api: ApiClient;
  let tunnel: TunnelHandle | undefined;
  let stopped = false;
  let monthTimer: NodeJS.Timeout | undefined;
  let current: TunnelInfo | undefined;
  let retuning: Promise<void> | undefined;
  let downSince: number | undefined;
  const startedAt = now();
  const replyTable = cfg.replyTable ?? DEFAULT_REPLY_TABLE;
  // Heartbeats (which carry usage) and credential fetches (which carry the API's usage figure) run
  // one at a time, so the figure a fetch brings back holds exactly the heartbeats sent before it.
  let apiTurn: Promise<unknown> = Promise.resolve();
  const oneAtATime = <T>(f: () => Promise<T>): Promise<T> => {
    const run = apiTurn.then(f, f);
    apiTurn = run.catch(() => {});
    return run;
  };

  let driver: RotationDriver | undefined = deps.driver;
  if (!driver && cfg.rotateDriver)
    driver = createRotationDriver({
      driver: cfg.rotateDriver,
      rotateCommand: cfg.rotateCommand,
      airplaneSeconds: cfg.airplaneSeconds,
      exec,
    });

  const publicIp = () => {
    if (deps.publicIp) return deps.publicIp();
    const local = cfg.egressInterface ? interfaceAddresses(cfg.egressInterface).ipv4 : undefined;
    return fetchPublicIp(cfg.ipEchoUrl ?? `${state.server}/api/public/ip`, {
      localAddress: local,
      device: cfg.egressInterface,
    });
  };

  let rotating: Promise<unknown> = Promise.resolve();
  const handlers: Record<string, CommandHandler> = {
    rotate_ip: () => {
      // One rotation at a time: a second one waits for the first, then rotates again.
      const run = rotating
        .catch(() => {})
        .then(async () => {
          if (!driver)
            throw agentError('PP_ERR_AGENT_NOT_SUPPORTED', {
              what: 'rotate_ip',
              driver: 'none (configure --rotate-driver)',
            });
          const r = await rotateIp({
            driver,
            publicIp,
            lastKnownIp: () => heartbeat?.lastPublicIp ?? null,
            closeCustomerSockets: cfg.closeOnRotate
              ? () =>
                  log.info({ closed: listeners?.closeCustomerSockets() ?? 0 }, 'closed customer sockets after rotation')
              : undefined,
          });
          // The result records this change; a heartbeat built before it must not report the old address after it.
          void heartbeat?.addressChanged();
          return r;
        });
      rotating = run;
      return run;
    },
    reboot: async () => {
      // A driver that reboots its own device (a farm's phone over adb): that, never the host. The
      // answer goes first; the phone leaves adb, the farm stops this agent and starts it when it is back.
      if (driver?.reboot) {
        const d = driver;
        setTimeout(() => void d.reboot?.().catch((e) => log.error({ err: e }, 'reboot failed')), 1_000);
        return { rebooting: true };
      }
      if (!cfg.allowReboot)
        throw agentError('PP_ERR_AGENT_NOT_ALLOWED', { what: 'reboot (start with --allow-reboot)' });
      setTimeout(() => void exec('reboot', [], 30_000).catch((e) => log.error({ err: e }, 'reboot failed')), 1_000);
      return { rebooting: true };
    },
    wifi_toggle: async () => {
      if (!driver?.wifiToggle)
        throw agentError('PP_ERR_AGENT_NOT_SUPPORTED', { what: 'wifi_toggle', driver: driver?.name ?? 'none' });
      await driver.wifiToggle();
      return {};
    },
    airplane_mode: async () => {
      if (!driver?.airplaneMode)
        throw agentError('PP_ERR_AGENT_NOT_SUPPORTED', { what: 'airplane_mode', driver: driver?.name ?? 'none' });
      await driver.airplaneMode();
      return {};
    },
    config_update: async (payload) => {
      const applied: Record<string, unknown> = {};
      const hb = payload.heartbeat_interval_s;
      if (typeof hb === 'number' && Number.isInteger(hb) && hb >= 5 && hb <= 3600) {
        heartbeat?.setInterval(hb);
        applied.heartbeat_interval_s = hb;
      }
      return { applied };
    },
  };

  const dispatcher = new CommandDispatcher({
    handlers,
    report: (id, status, result) => api.commandResult(id, status, result),
    ack: (id, status, extra) => tunnel?.sendMessage({ kind: 'ack', ack: { id, status, ...extra } }),
    logger: log.child({ subsys: 'commands' }),
  });

  // One fetch at a time; a request that arrives while one is in flight (it may have been asked
  // before the change it announces) gets one more fetch after it.
  let credsInFlight: Promise<void> | undefined;
  let credsAgain = false;
  const fetchCredentials = () =>
    oneAtATime(async () => {
      const c = await api.credentials();
      const reportedAt = new Map<string, number>();
      for (const i of c.items as { connection_id?: unknown }[])
        if (typeof i?.connection_id === 'string') reportedAt.set(i.connection_id, usage.of(i.connection_id).reported);
      return { c, reportedAt };
    });
  const refreshCredentials = (): Promise<void> => {
    if (credsInFlight) {
      credsAgain = true;
      return credsInFlight;
    }
    credsInFlight = (async () => {
      do {
        credsAgain = false;
        try {
          const { c, reportedAt } = await fetchCredentials();
          const bad = credentials.replace(c.version, c.items);
          for (const b of bad) log.warn({ connectionId: b.id, reason: b.reason }, 'credential item refused');
          listeners?.setBudgets(reportedAt);
          await listeners?.apply();
          log.info({ version: c.version, count: credentials.size }, 'credentials loaded');
          void api
            .credentialsApplied?.(c.version)
            .catch((e: unknown) => log.debug({ err: e }, 'reporting the applied credentials failed'));
        } catch (e) {
          log.warn({ err: e }, 'fetching credentials failed');
        }
      } while (credsAgain && !stopped);
    })().finally(() => (credsInFlight = undefined));
    return credsInFlight;
  };

  const onMessage = (m: JsonMessage) => {
    if (m.kind === 'command')
      dispatcher.submit({ id: m.command.id, type: m.command.type, payload: m.command.payload }, 'tunnel');
    else if (m.kind === 'control') {
      const t = m.control.type;
      if (t === 'credentials_changed' || t === 'credentials') void refreshCredentials();
      else if (t === 'tunnel_changed') void retune('the API says the tunnel parameters changed');
      else if (t === 'config') {
        log.info({ payload: m.control.payload }, 'relay config');
        onRelayConfig(m.control.payload);
      }
    }
  };

  /**
   * The relay's OpenVPN customers' subnet: their TCP may come to the connection's ports stamped
   * (packages/tun syn-stamp.ts) instead of through the relay's transparent proxy. The relay sends it
   * that way only to a device that said it reads stamps (`features`), so an older agent is never sent one.
   */
  const onRelayConfig = (payload: unknown) => {
    const sub = (payload as { openvpn_subnet?: unknown } | undefined)?.openvpn_subnet;
    openvpnSubnet = typeof sub === 'string' && OPENVPN_SUBNET.test(sub) ? sub : null;
    announceStamps();
  };
  /** The listeners take the subnet, and the relay hears that stamps are read (again at each `config`). */
  const announceStamps = () => {
    listeners?.setOpenvpnSubnet(openvpnSubnet);
    if (openvpnSubnet && listeners?.readsStamps)
      tunnel?.sendMessage({ kind: 'control', control: { type: 'features', payload: { syn_stamps: true } } });
  };

  const onHeartbeatReply = (r: HeartbeatReply) => {
    if (r.heartbeat_interval_s) heartbeat?.setInterval(r.heartbeat_interval_s);
    if (r.credentials_version && r.credentials_version !== credentials.version) void refreshCredentials();
    for (const c of r.commands ?? []) dispatcher.submit(c, 'heartbeat');
  };

  async function tunnelInfo(): Promise<TunnelInfo> {
    // Right after pairing the relay's key may still be null until its tunnel registers: wait.
    for (let delay = 1_000; ; delay = Math.min(30_000, delay * 2)) {
      try {
        const t = await api.tunnel();
        if (t.relay.public_key && t.vpn_ip) return t;
        log.info('relay tunnel key not published yet; waiting');
      } catch (e) {
        log.warn({ err: e }, 'fetching tunnel parameters failed');
      }
      if (stopped) throw agentError('PP_ERR_AGENT_USAGE', { reason: 'stopped' });
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  return {
    get tunnel() {
      return tunnel;
    },
    get listeners() {
      return listeners;
    },
    dispatcher,
    credentials,
    async start() {
      state = await readState(cfg.stateDir);
      api = deps.api ?? createApiClient({ server: state.server, deviceId: state.device_id, token: state.auth_token });
      const t = await tunnelInfo();
      await bringUp(t);
      await refreshCredentials();
      // Budgets are per calendar month (UTC, as the API counts): a new month starts from the API's figure.
      let month = new Date(now()).getUTCMonth();
      monthTimer = setInterval(() => {
        const m = new Date(now()).getUTCMonth();
        if (m !== month) {
          month = m;
          void refreshCredentials();
        }
        // A tunnel without a session for a minute may be dialling a relay that moved or changed its
        // key (the relay cannot push to a device it has no session with): ask the API again.
        if (tunnel && !tunnel.established) {
          downSince ??= now();
          if (now() - downSince >= NO_SESSION_RECHECK_MS) void retune('no tunnel session for a minute');
        } else downSince = undefined;
      }, 10_000);
      monthTimer.unref();

      heartbeat = new HeartbeatLoop({
        send: (body) => api.heartbeat(body),
        metrics: deps.metrics ?? (() => collectMetrics(exec)),
        publicIp,
        usage,
        proxyStats: () => listeners?.stats(),
        transport: () => (tunnel?.established ? tunnel.stats().transport : undefined),
        capabilities: commandCapabilities(driver, cfg.allowReboot),
        oneAtATime,
        onReply: onHeartbeatReply,
        agentVersion: AGENT_VERSION,
        startedAt,
        now,
        logger: log.child({ subsys: 'heartbeat' }),
      });
      heartbeat.start();
      log.info(
        { deviceId: state.device_id, vpnIp: t.vpn_ip, tun: tunnel!.tunName, relay: `${t.relay.host}:${t.relay.port}` },
        'agent running',
      );
    },
    async stop() {
      stopped = true;
      heartbeat?.stop();
      if (monthTimer) clearInterval(monthTimer);
      await listeners?.close();
      await tunnel?.stop();
    },
  };

  /** The tunnel and the listeners for these tunnel parameters (also what retune restarts). */
  async function bringUp(t: TunnelInfo): Promise<void> {
    if (
      t.relay.host !== state.relay.host ||
      t.relay.port !== state.relay.port ||
      t.relay.public_key !== state.relay.public_key ||
      t.vpn_ip !== state.vpn_ip ||
      t.mtu !== state.mtu ||
      t.subnet !== state.subnet
    ) {
      state = {
        ...state,
        relay: { ...state.relay, host: t.relay.host, port: t.relay.port, public_key: t.relay.public_key },
        vpn_ip: t.vpn_ip,
        mtu: t.mtu,
        subnet: t.subnet,
      };
      await writeState(cfg.stateDir, state).catch((e) => log.warn({ err: e }, 'updating state file failed'));
    }
    current = t;
    const vpnIp = t.vpn_ip!;
    const gw = firstHost(t.subnet);
    // The listeners' work on more threads than this one (proxy/threads.ts): only where the native
    // front accepts (the threads share its listening sockets); with lanes, each thread a packet path too.
    // No engine at all with splicing off (POCKETPROXY_SPLICE=0: the listeners would not use it).
    const engine = cfg.splice !== false ? threadEngine(() => new SpliceEngine(), log) : undefined;
    const threadsPossible =
      deps.startListenerThread !== undefined && engine !== undefined && cfg.front !== false && useLeanSockets();
    // A relay from before lanes says nothing (max_lanes 1): it would drop a lane initiation, lane 0's too.
    const relayLanes = t.relay.max_lanes ?? 1;
    let lanes = threadsPossible ? Math.min(cfg.lanes ?? 1, relayLanes) : 1;
    if ((cfg.lanes ?? 1) > lanes)
      log.warn(
        { lanes, asked: cfg.lanes, relayLanes },
        threadsPossible ? 'the relay holds fewer lanes per device' : 'lanes need the native front and splice engine',
      );
    const tunnelSpec: TunnelSpec = {
      tun: {
        name: cfg.tunnelInterface,
        mtu: t.mtu,
        address: vpnIp,
        prefixLength: prefixLength(t.subnet),
        ...(replyTable ? { replyTable } : {}),
      },
      relayHost: t.relay.host,
      relayPort: t.relay.port,
      relayPublicKey: decodeKey(t.relay.public_key!, 'relay public key'),
      privateKey: decodeKey(state.private_key, 'private key'),
      psk: decodeKey(state.psk, 'psk'),
      probe: gw && gw !== vpnIp ? { src: vpnIp, dst: gw } : undefined,
      offload: cfg.offload,
      nativeSeal: cfg.nativeSeal,
      ...(cfg.tunnelViaEgress && cfg.egressInterface
        ? { bindAddress: interfaceAddresses(cfg.egressInterface).ipv4 }
        : {}),
      options: cfg.tunnel,
    };
    const startLane0 = (n: number) =>
      deps.startTunnel(n > 1 ? { ...tunnelSpec, lane: { index: 0, count: n } } : tunnelSpec, onMessage, log);
    try {
      tunnel = await startLane0(lanes);
    } catch (e) {
      // Lanes chosen by `--lanes auto` need a multi-queue TUN: where the kernel has none, or a TUN of the
      // name already exists with one queue (made by `ip tuntap` without multi_queue), one lane. Lanes asked
      // for by number fail the start as asked.
      if (lanes === 1 || !cfg.lanesAuto || !isPPError(e) || e.code !== 'PP_ERR_TUN_OPEN_FAILED') throw e;
      log.warn({ err: e, lanes }, 'no multi-queue TUN; one lane');
      lanes = 1;
      tunnel = await startLane0(1);
    }
    const threads = lanes > 1 ? lanes : threadsPossible ? (cfg.listenerThreads ?? 1) : 1;

    const setup: ListenerSetup = {
      host: vpnIp,
      relayAddress: gw,
      relayHost: t.relay.host,
      egress: {
        interface: cfg.egressInterface,
        tunnelSubnet: t.subnet,
        allowPrivate: cfg.allowPrivateDestinations,
        dnsCacheMs: cfg.dnsCacheMs,
      },
      limits: { headTimeoutMs: cfg.handshakeTimeoutMs ?? 10_000, idleTimeoutMs: cfg.idleTimeoutMs ?? 300_000 },
      caps: capsPerThread(cfg.maxHandshakesPerAddress ?? 64, cfg.maxHandshakes ?? 2048, threads),
      splice: cfg.splice !== false,
      front: cfg.front !== false,
    };
    const peers =
      threads > 1 && deps.startListenerThread
        ? new ListenerThreads(
            threads - 1,
            setup,
            deps.startListenerThread,
            (entries) => {
              for (const e of entries) usage.of(e.connection_id).credit(e.bytes_in, e.bytes_out);
            },
            deps.onListenerThreadFailed ?? ((e) => log.error({ err: e }, 'listener thread failed')),
            log,
            lanes > 1 ? tunnelSpec : undefined,
          )
        : undefined;
    // A relay that restarted forgot every lane's session; lane 0 finds out within seconds (probes), the
    // others would only after 15 s without an answer: lane 0 tells them when it has a session again, and
    // over which transport (a path that stopped carrying UDP: they go to TCP at once, not after trying UDP).
    // And when it is back on UDP: a lane but 0 on TCP would stay there while idle (TunnelClient.udpAgain).
    if (lanes > 1 && peers) {
      tunnel.onRecovered?.((lostAt, transport) => peers.relayLost(lostAt, transport));
      tunnel.onUdpAgain?.(() => peers.udpAgain());
    }
    listeners = buildListeners(setup, { credentials, usage, logger: log, now, engine, peers, lanes });
    const built = listeners;
    peers?.serveUdp((id, ip, port) => built.udpRegister(id, ip, port));
    announceStamps();
  }

  /**
   * The API says (control `tunnel_changed`, or a tunnel down for a minute makes us ask) that the
   * tunnel parameters may have changed: the device moved to another relay, the relay's address, port
   * or key changed. When they did, the tunnel and the listeners start again with the new ones.
   */
  function retune(why: string): Promise<void> {
    retuning ??= (async () => {
      try {
        const t = await api.tunnel();
        if (!t.relay.public_key || !t.vpn_ip || !current) return;
        const same =
          t.relay.host === current.relay.host &&
          t.relay.port === current.relay.port &&
          t.relay.public_key === current.relay.public_key &&
          t.vpn_ip === current.vpn_ip &&
          t.mtu === current.mtu &&
          t.subnet === current.subnet;
        if (same || stopped) return;
        log.info(
          { why, relay: `${t.relay.host}:${t.relay.port}`, vpnIp: t.vpn_ip },
          'tunnel parameters changed; restarting the tunnel and the listeners',
        );
        await listeners?.close();
        await tunnel?.stop();
        downSince = undefined;
        await bringUp(t);
        await refreshCredentials();
      } catch (e) {
        log.warn({ err: e, why }, 'checking the tunnel parameters failed');
      }
    })().finally(() => (retuning = undefined));
    return retuning;
  }
}
