// createTunnel: the relay's tunnel process as one object built from injected parts (clock, API
// client, firewall, TUN, UDP factory, logger), so unit tests run it with FakeTun, netfw's fake
// runner and a fake API while main.ts passes the real ones.
//
//   devices <-UDP/TCP :1194-> [responder] <-> datapath <-> pp0 <-> nftables DNAT <-> customers
//   API <-HTTP-> register / peers / vpn connected|disconnected / forwarding / usage
//   API -> push server :8081 -> 0x05 command / 0x07 control frames -> device
import type { Logger } from 'pino';
import { createResponder, encodeJsonMessage, MAX_JSON_MESSAGE_LEN, type JsonMessage, type TunnelTimers } from '@pocketproxy/protocol';
import type { Firewall, OpenVpnState } from '@pocketproxy/netfw';
import { tryNativeAead, type TunConfig, type TunDevice } from '@pocketproxy/tun';
import type { InternalApi, DeviceForwarding } from './api-client.js';
import { DeviceTable, type DeviceEntry } from './devices.js';
import { createDataPath, type PathDrop } from './datapath.js';
import { buildState, checkedPorts, connectionPorts, type BaseState } from './forwarding.js';
import { parseSubnet } from './ipv4.js';
import { LogLimiter, TokenBuckets } from './limits.js';
import { startPushServer, type PushHandler, type PushServer } from './push-server.js';
import { describeEndpoint, listenTcp, sameEndpoint, type Endpoint, type TcpListener, type UdpPort } from './transport.js';
import { UsageMeter } from './usage.js';
import { PendingCommands } from './commands.js';
import { createPushRoutes } from './push-routes.js';

export interface TunnelSettings {
  readonly relayName: string;
  readonly publicHost: string;
  readonly tunnelPort: number;
  readonly pushPort: number;
  readonly pushUrl: string;
  readonly deviceSubnet: string;
  readonly tunnelMtu: number;
  readonly tunnelInterface: string;
  /** Where UDP and TCP listen (default 0.0.0.0). */
  readonly listenHost?: string;
  /** Where the push API listens (default 127.0.0.1: only local processes may push). */
  readonly pushHost?: string;
  /** OpenVPN customers: REDIRECT to the transparent proxy, QUIC reject, no leak (netfw). */
  readonly openvpn?: OpenVpnState;
}

export interface TunnelIntervals {
  tickMs: number;
  forwardingMs: number;
  usageMs: number;
  peersMs: number;
  /** Least time between two peer-list fetches triggered by unknown keys. */
  peersMinGapMs: number;
  repushMs: number;
  /** Longest back-off between API retries (register, vpn/connected). */
  retryMaxMs: number;
}

// A silent device must be offline with its ports closed within 30 s (DESIGN §2, §4). The
// protocol's 30 s dead-peer window plus the 1 s tick and the firewall update always overshot
// that, so the relay declares a peer dead after 25 s: still 2.5 device keepalives (10 s).
const RELAY_PROTOCOL_TIMERS = { deadAfterMs: 25_000 } satisfies Partial<TunnelTimers>;
const DEFAULT_INTERVALS: TunnelIntervals = { tickMs: 1_000, forwardingMs: 10_000, usageMs: 30_000, peersMs: 60_000, peersMinGapMs: 2_000, repushMs: 5_000, retryMaxMs: 10_000 };

export interface TunnelDeps {
  readonly settings: TunnelSettings;
  readonly relayKey: { readonly privateKey: Buffer; readonly publicKey: Buffer };
  readonly internalToken: string;
  readonly api: InternalApi;
  readonly firewall: Firewall;
  readonly tun: TunDevice;
  readonly configureTun: (cfg: TunConfig) => Promise<void>;
  readonly openUdp: (host: string, port: number) => Promise<UdpPort>;
  readonly logger: Logger;
  readonly now?: () => number;
  readonly intervals?: Partial<TunnelIntervals>;
  readonly protocolTimers?: Partial<TunnelTimers>;
  /** false: no setInterval; the test drives tick()/pollForwarding()/reportUsage(). Default true. */
  readonly autoTimers?: boolean;
  /** More push routes ("POST /openvpn/client": handler) from other modules (transparent proxy). */
  readonly extraRoutes?: Record<string, PushHandler>;
  /**
   * Initiations per second and burst per source address (default 50/s, burst 500). One carrier NAT address can
   * hide hundreds of phones that all re-handshake after a relay restart; MAC1 already drops garbage before any
   * key agreement, and an accepted initiation costs about 0.1 ms, so this only bounds a flood from one address.
   */
  readonly initiationRate?: { perSec: number; burst: number };
}

export interface TunnelStatus {
  relay_id: string | null;
  devices_known: number;
  devices_connected: number;
  devices_forwarded: number;
  ports_forwarded: number;
  tcp_connections: number;
  pending_commands: number;
  frames_in: number;
  frames_out: number;
  packets_to_tun: number;
  packets_from_tun: number;
  drops: Partial<Record<PathDrop, number>>;
  uptime_s: number;
  /** process.memoryUsage() in MB: where the tunnel's RSS goes (V8 heap, Buffers, the rest). */
  memory_mb: { rss: number; heap_used: number; heap_total: number; external: number; array_buffers: number };
}

export interface Tunnel {
  start(): Promise<void>;
  /** Resolves once the relay is registered and the peer list loaded (devices can handshake). */
  readonly ready: Promise<void>;
  stop(): Promise<void>;
  tick(): void;
  pollForwarding(): Promise<void>;
  reportUsage(): Promise<void>;
  refreshPeers(): Promise<void>;
  push(deviceId: string, message: JsonMessage): boolean;
  status(): TunnelStatus;
  readonly devices: DeviceTable;
  readonly addresses: { udp: number; tcp: number; push: number };
}

export function createTunnel(deps: TunnelDeps): Tunnel {
  const s = deps.settings;
  const iv = { ...DEFAULT_INTERVALS, ...deps.intervals };
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ subsys: 'tunnel' });
  const subnet = parseSubnet(s.deviceSubnet);
  const base: BaseState = { tunnelInterface: s.tunnelInterface, deviceSubnet: subnet.cidr, tunnelAddress: subnet.relayAddress, mssClamp: 'pmtu', ...(s.openvpn ? { openvpn: s.openvpn } : {}) };
  const devices = new DeviceTable(subnet);
  const usage = new UsageMeter();
  const commands = new PendingCommands(iv.repushMs);
  const logLimit = new LogLimiter(10_000);
  const startedAt = now();
  let relayId: string | undefined;
  let stopped = false;
  let udp: UdpPort | undefined;
  let tcp: TcpListener | undefined;
  let pushServer: PushServer | undefined;
  const timers: NodeJS.Timeout[] = [];
  const addresses = { udp: 0, tcp: 0, push: 0 };
  let lastPeersFetch = -Infinity;
  let peersInFlight: Promise<void> | undefined;
  /** Ports whose usage is owed: connection ports of forwarded devices, and ones removed since the last report. */
  const owedPorts = new Set<number>();

  const devLog = (e: DeviceEntry | string) => log.child({ deviceId: typeof e === 'string' ? e : e.id });

  const protocolTimers = { ...RELAY_PROTOCOL_TIMERS, ...deps.protocolTimers };
  // Transport AEAD: the addon's OpenSSL path (~5x less CPU per packet) when it loads, else node:crypto; same bytes.
  const aead = tryNativeAead();
  const responder = createResponder<Endpoint>({
    aead,
    privateKey: deps.relayKey.privateKey,
    lookupPeer: (pub) => devices.lookup(pub),
    timers: protocolTimers,
    sameEndpoint,
    onEvent: (ev) => {
      if (ev.type === 'peer_up') onPeerUp(ev.deviceId, ev.endpoint);
      else if (ev.type === 'peer_down') onPeerDown(ev.deviceId, ev.reason, ev.silentMs);
      else if (ev.type === 'endpoint_changed') {
        const e = devices.byId.get(ev.deviceId);
        if (e) e.endpoint = ev.to;
        if (logLimit.allow(`roam:${ev.deviceId}`, now()) !== undefined) devLog(ev.deviceId).info({ from: describeEndpoint(ev.from), to: describeEndpoint(ev.to) }, 'device endpoint changed');
      } else if (ev.type === 'handshake' && logLimit.allow(`hs:${ev.deviceId}`, now()) !== undefined) {
        devLog(ev.deviceId).debug({ endpoint: describeEndpoint(ev.endpoint) }, 'handshake answered');
      }
    },
  });

  const path = createDataPath({
    responder,
    devices,
    tun: deps.tun,
    udp: () => udp,
    now,
    initiations: new TokenBuckets(deps.initiationRate?.perSec ?? 50, deps.initiationRate?.burst ?? 500),
    onMessage,
    onDrop(reason, deviceId, from) {
      if (reason === 'unknown_peer') void requestPeers('unknown key');
      const suppressed = logLimit.allow(`drop:${reason}`, now());
      if (suppressed === undefined) return;
      const level = reason === 'spoofed' || reason === 'rate_limited' || reason === 'tun_full' ? 'warn' : 'debug';
      log[level]({ reason, deviceId, from: from ? describeEndpoint(from) : undefined, suppressed }, 'frame or packet dropped');
    },
  });

  // ---- device lifecycle ---------------------------------------------------------------------

  function onPeerUp(id: string, endpoint: Endpoint): void {
    const e = devices.byId.get(id);
    if (!e) return;
    e.up = true;
    e.gen++;
    e.endpoint = endpoint;
    e.reported = false;
    e.reporting = false;
    e.reportFailures = 0;
    e.nextReportAt = 0;
    devLog(e).info({ endpoint: describeEndpoint(endpoint), vpnIp: e.vpnIp }, 'device connected');
    sendConfig(e);
    reportConnected(e);
  }

  function onPeerDown(id: string, reason: string, silentMs: number): void {
    const e = devices.byId.get(id);
    if (!e) return;
    e.up = false;
    e.gen++;
    e.reported = false;
    e.reporting = false;
    for (const p of e.forwarding ? connectionPorts(e.forwarding) : []) owedPorts.add(p);
    e.forwarding = undefined;
    e.ports = [];
    e.endpoint = undefined;
    commands.forgetDevice(id);
    devLog(e).info({ reason, silentMs }, 'device disconnected');
    void syncFirewall();
    e.chain = e.chain.then(() => reportDisconnected(id, reason));
  }

  async function reportDisconnected(id: string, reason: string): Promise<void> {
    for (let attempt = 1; attempt <= 3 && !stopped; attempt++) {
      try {
        await deps.api.disconnected({ device_id: id, reason });
        return;
      } catch (err) {
        devLog(id).warn({ err: String(err), attempt }, 'vpn/disconnected failed');
        await sleep(500 * attempt);
      }
    }
  }

  function reportConnected(e: DeviceEntry): void {
    if (!relayId || e.reporting) return;
    e.reporting = true;
    const gen = e.gen;
    const rid = relayId;
    e.chain = e.chain.then(async () => {
      if (e.gen !== gen || !e.up || stopped) return;
      try {
        const ans = await deps.api.connected({ device_id: e.id, vpn_ip: e.vpnIp, relay_id: rid, endpoint: e.endpoint ? describeEndpoint(e.endpoint).slice(0, 80) : '' });
        // Went down (or down and up) meanwhile: this answer is stale; the newer period reports itself.
        if (e.gen !== gen || !e.up) return;
        if (ans.vpn_ip !== e.vpnIp) {
          const ok = devices.readdress(e, ans.vpn_ip);
          devLog(e).warn({ peers: e.vpnIp, api: ans.vpn_ip, followed: ok }, 'API answered another vpn_ip than the peer list');
          if (ok) sendConfig(e);
        }
        e.reported = true;
        e.reportFailures = 0;
        setForwarding(e, ans);
        sendCredentials(e, ans.credentials);
        devLog(e).info({ basePort: ans.base_port, connections: ans.connections.length, ports: e.ports.length }, 'device ports forwarded');
        await syncFirewall();
      } catch (err) {
        e.reportFailures++;
        e.nextReportAt = now() + Math.min(iv.retryMaxMs, 500 * 2 ** Math.min(e.reportFailures, 10));
        devLog(e).warn({ err: String(err), failures: e.reportFailures }, 'vpn/connected failed; will retry');
      } finally {
        if (e.gen === gen) e.reporting = false;
      }
    });
  }

  function setForwarding(e: DeviceEntry, f: DeviceForwarding): boolean {
    const before = JSON.stringify(e.forwarding ?? null);
    if (before === JSON.stringify(f) && e.ports.length > 0) return false;
    for (const p of e.forwarding ? connectionPorts(e.forwarding) : []) owedPorts.add(p);
    const { ports, rejected } = checkedPorts(base, e.id, { ...f, vpn_ip: e.vpnIp });
    for (const r of rejected) devLog(e).warn({ port: r.port, reason: r.reason }, 'port not forwarded');
    e.forwarding = f;
    e.ports = ports;
    return true;
  }

  // Many devices connect at once after a relay restart: building the whole desired state is O(ports), so
  // doing it once per device is quadratic. Calls within 25 ms share one build and one nft transaction.
  let syncQueued: Promise<void> | null = null;
  function syncFirewall(): Promise<void> {
    syncQueued ??= new Promise<void>((resolve) => {
      setTimeout(() => {
        syncQueued = null;
        void syncFirewallNow().finally(resolve);
      }, 25);
    });
    return syncQueued;
  }

  async function syncFirewallNow(): Promise<void> {
    const perDevice = new Map<string, DeviceEntry['ports']>();
    for (const e of devices.byId.values()) if (e.up && e.reported && e.ports.length) perDevice.set(e.id, e.ports);
    const { state, conflicts } = buildState(base, perDevice);
    for (const c of conflicts) if (logLimit.allow(`conflict:${c.port}`, now()) !== undefined) devLog(c.deviceId).warn({ port: c.port, reason: c.reason }, 'port not forwarded');
    try {
      const r = await deps.firewall.apply(state);
      if (r.kind === 'full') usage.reset();
    } catch (err) {
      log.error({ err: String(err), ports: state.ports.length }, 'firewall apply failed; retried at the next forwarding poll');
    }
  }

  function sendTo(deviceId: string, message: JsonMessage): boolean {
    let ob;
    try {
      ob = responder.sendMessage(deviceId, message, now());
    } catch (err) {
      devLog(deviceId).warn({ err: String(err) }, 'message not sent');
      return false;
    }
    if (!ob) return false;
    path.send([ob]);
    return true;
  }

  function sendConfig(e: DeviceEntry): void {
    sendTo(e.id, { kind: 'control', control: { type: 'config', payload: { address: `${e.vpnIp}/${subnet.prefix}`, gateway: subnet.relayAddress, mtu: s.tunnelMtu } } });
  }

  /** Credential sync hint: the list when it fits one message, else ask the device to fetch it. */
  function sendCredentials(e: DeviceEntry, items: readonly unknown[]): void {
    const full: JsonMessage = { kind: 'control', control: { type: 'credentials', payload: { items } } };
    let fits = false;
    try {
      fits = encodeJsonMessage(full).length <= MAX_JSON_MESSAGE_LEN;
    } catch {
      fits = false;
    }
    sendTo(e.id, fits ? full : { kind: 'control', control: { type: 'credentials', payload: { refetch: true } } });
  }

  function onMessage(deviceId: string, m: JsonMessage): void {
    const l = devLog(deviceId);
    if (m.kind === 'ack') {
      const settled = commands.acked(m.ack.id, deviceId);
      l.info({ commandId: m.ack.id, status: m.ack.status, settled, error: m.ack.error }, 'command ack');
    } else if (m.kind === 'control') {
      if (logLimit.allow(`ctl:${deviceId}`, now()) !== undefined) l.debug({ type: m.control.type }, 'control message from device');
    } else if (logLimit.allow(`cmd:${deviceId}`, now()) !== undefined) {
      l.warn({ commandId: m.command.id }, 'device sent a command frame; ignored');
    }
  }

  function push(deviceId: string, message: JsonMessage): boolean {
    const ok = sendTo(deviceId, message);
    if (ok && message.kind === 'command') commands.sent(message.command.id, deviceId, message, now());
    return ok;
  }

  // ---- API sync -----------------------------------------------------------------------------

  async function register(): Promise<void> {
    for (let attempt = 1; !stopped; attempt++) {
      try {
        const r = await deps.api.register({ name: s.relayName, host: s.publicHost, tunnel_port: s.tunnelPort, push_url: s.pushUrl, public_key: deps.relayKey.publicKey.toString('base64') });
        relayId = r.relay_id;
        log.info({ relayId, attempt }, 'relay registered');
        return;
      } catch (err) {
        const wait = Math.min(iv.retryMaxMs, 250 * 2 ** Math.min(attempt, 10));
        if (attempt === 1 || logLimit.allow('register', now()) !== undefined) log.warn({ err: String(err), attempt, retryMs: wait }, 'relay registration failed; retrying');
        await sleep(wait);
      }
    }
  }

  function requestPeers(why: string): Promise<void> {
    if (peersInFlight) return peersInFlight;
    if (now() - lastPeersFetch < iv.peersMinGapMs) return Promise.resolve();
    log.debug({ why }, 'refreshing peer list');
    return refreshPeers();
  }

  function refreshPeers(): Promise<void> {
    if (!relayId) return Promise.resolve();
    if (peersInFlight) return peersInFlight;
    lastPeersFetch = now();
    const rid = relayId;
    peersInFlight = (async () => {
      try {
        const peers = await deps.api.peers(rid);
        // Sessions of devices that left the list or got a new key go first (peer_down is reported).
        for (const id of devices.diff(peers)) responder.removePeer(id, now());
        for (const sk of devices.replace(peers)) if (logLimit.allow(`skip:${sk.deviceId}`, now()) !== undefined) devLog(sk.deviceId).warn({ reason: sk.reason }, 'device left out of the tunnel');
        log.debug({ peers: peers.length }, 'peer list loaded');
      } catch (err) {
        if (logLimit.allow('peers', now()) !== undefined) log.warn({ err: String(err) }, 'peer list fetch failed');
        throw err;
      } finally {
        peersInFlight = undefined;
      }
    })();
    return peersInFlight;
  }

  let polling = false;
  async function pollForwarding(): Promise<void> {
    if (polling || !relayId) return;
    polling = true;
    try {
      const ids = devices.connected().filter((e) => e.reported).map((e) => e.id);
      if (ids.length > 0) {
        const got = await deps.api.forwarding(ids);
        for (const id of ids) {
          const e = devices.byId.get(id);
          if (!e || !e.up || !e.reported) continue;
          const f = got.get(id);
          if (f) {
            if (setForwarding(e, f)) {
              devLog(e).info({ ports: e.ports.length }, 'device forwarding changed');
              // A connection was added, removed or re-enabled: the device needs its verifiers now,
              // not at its next heartbeat (up to 30 s later), or the new port answers 407.
              sendTo(e.id, { kind: 'control', control: { type: 'credentials', payload: { refetch: true } } });
            }
          } else if (e.ports.length) {
            // Deleted upstream: stop forwarding; the next peer refresh ends its session.
            for (const p of e.forwarding ? connectionPorts(e.forwarding) : []) owedPorts.add(p);
            e.forwarding = undefined;
            e.ports = [];
            devLog(e).info('device no longer known to the API; ports removed');
          }
        }
      }
      await syncFirewall();
    } catch (err) {
      if (logLimit.allow('forwarding', now()) !== undefined) log.warn({ err: String(err) }, 'forwarding poll failed');
    } finally {
      polling = false;
    }
  }

  let reporting = false;
  async function reportUsage(): Promise<void> {
    if (reporting) return;
    reporting = true;
    try {
      const ports = new Set(owedPorts);
      for (const e of devices.byId.values()) if (e.reported && e.forwarding) for (const p of connectionPorts(e.forwarding)) ports.add(p);
      if (ports.size === 0) return;
      const counters = await deps.firewall.readCounters();
      const { samples, commit } = usage.deltas(counters, ports);
      if (samples.length > 0) await deps.api.usage(samples);
      commit();
      owedPorts.clear();
    } catch (err) {
      if (logLimit.allow('usage', now()) !== undefined) log.warn({ err: String(err) }, 'usage report failed; carried into the next one');
    } finally {
      reporting = false;
    }
  }

  function tick(): void {
    const t = now();
    const out = responder.tick(t);
    if (out.length) path.send(out);
    for (const e of devices.byId.values()) if (e.up && !e.reported && !e.reporting && t >= e.nextReportAt) reportConnected(e);
    for (const c of commands.due(t, (id) => devices.byId.get(id)?.up === true)) {
      sendTo(c.deviceId, c.message);
      devLog(c.deviceId).info({ commandId: c.id }, 'command re-pushed (no ack yet)');
    }
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));

  async function start(): Promise<void> {
    const host = s.listenHost ?? '0.0.0.0';
    await deps.configureTun({ name: deps.tun.name, address: subnet.relayAddress, prefixLength: subnet.prefix, mtu: s.tunnelMtu });
    // Rebuild our table from nothing: ports of a crashed run must not survive; devices re-handshake.
    await deps.firewall.apply({ ...base, ports: [] });
    await deps.firewall.applySysctls();
    udp = await deps.openUdp(host, s.tunnelPort);
    udp.start((dgs) => path.onUdpDatagrams(dgs), (err) => {
      if (logLimit.allow('udp-error', now()) !== undefined) log.warn({ err: String(err) }, 'UDP receive error');
    });
    addresses.udp = udp.address().port;
    tcp = await listenTcp({
      host,
      port: addresses.udp,
      onFrame: (f, c) => path.onTcpFrame(f, c),
      onBadStream: (c, why) => {
        if (logLimit.allow('tcp-desync', now()) !== undefined) log.debug({ from: c.remoteAddress, why }, 'TCP stream out of sync; closed');
      },
      idleMs: (protocolTimers.deadAfterMs ?? RELAY_PROTOCOL_TIMERS.deadAfterMs) * 2,
    });
    addresses.tcp = (tcp.server.address() as { port: number }).port;
    const routes = { ...createPushRoutes({ push, status }), ...deps.extraRoutes };
    pushServer = await startPushServer({ host: s.pushHost ?? '127.0.0.1', port: s.pushPort, token: deps.internalToken, routes, onError: (err, route) => log.error({ err: String(err), route }, 'push route failed') });
    addresses.push = pushServer.port;
    deps.tun.start((b) => path.onTunBatch(b), (err) => {
      if (logLimit.allow('tun-error', now()) !== undefined) log.error({ err: String(err) }, 'TUN read error');
    });
    log.info({ udp: addresses.udp, tcp: addresses.tcp, push: addresses.push, tun: deps.tun.name, address: `${subnet.relayAddress}/${subnet.prefix}`, mtu: s.tunnelMtu, aead: aead?.name ?? 'node:crypto' }, 'tunnel listening');
    if (deps.autoTimers !== false) {
      const every = (ms: number, f: () => unknown) => {
        const t = setInterval(() => void f(), ms);
        timers.push(t);
      };
      every(iv.tickMs, tick);
      every(iv.forwardingMs, pollForwarding);
      every(iv.usageMs, reportUsage);
      every(iv.peersMs, () => refreshPeers().catch(() => {}));
    }
    void (async () => {
      await register();
      while (!stopped && !devices.ready) {
        await refreshPeers().catch(() => sleep(Math.min(iv.retryMaxMs, 1000)));
      }
      if (!stopped) resolveReady();
    })();
  }

  async function stop(): Promise<void> {
    if (stopped) return;
    stopped = true;
    for (const t of timers) clearInterval(t);
    deps.tun.pause();
    const up = devices.connected().map((e) => e.id);
    udp?.close();
    await tcp?.close();
    await pushServer?.close();
    // Leave nothing forwarding to a tunnel that is gone; tell the API, bounded in time.
    await Promise.race([Promise.allSettled(up.map((id) => deps.api.disconnected({ device_id: id, reason: 'relay_stopped' }))), sleep(2_000)]);
    await deps.firewall.teardown().catch((err) => log.warn({ err: String(err) }, 'firewall teardown failed'));
    deps.tun.close();
    log.info({ devices: up.length }, 'tunnel stopped');
  }

  function status(): TunnelStatus {
    const c = path.counters;
    const connected = devices.connected();
    return {
      relay_id: relayId ?? null,
      devices_known: devices.byId.size,
      devices_connected: connected.length,
      devices_forwarded: connected.filter((e) => e.reported).length,
      ports_forwarded: deps.firewall.current()?.ports.length ?? 0,
      tcp_connections: tcp?.connections ?? 0,
      pending_commands: commands.size,
      frames_in: c.framesIn,
      frames_out: c.framesOut,
      packets_to_tun: c.packetsToTun,
      packets_from_tun: c.packetsFromTun,
      drops: { ...c.drops },
      uptime_s: Math.round((now() - startedAt) / 1000),
      memory_mb: memoryMb(),
    };
  }

  return { start, ready, stop, tick, pollForwarding, reportUsage, refreshPeers, push, status, devices, addresses };
}

function memoryMb(): TunnelStatus['memory_mb'] {
  const m = process.memoryUsage();
  const mb = (n: number) => Math.round(n / 1048576);
  return { rss: mb(m.rss), heap_used: mb(m.heapUsed), heap_total: mb(m.heapTotal), external: mb(m.external), array_buffers: mb(m.arrayBuffers) };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
