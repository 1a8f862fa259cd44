// createTunnel: the relay's tunnel process as one object built from injected parts (clock, API
// client, firewall, TUN, UDP factory, logger), so unit tests run it with FakeTun, netfw's fake
// runner and a fake API while main.ts passes the real ones.
//
//   devices <-UDP/TCP :1194-> [responder] <-> datapath <-> pp0 <-> nftables DNAT <-> customers
//   API <-HTTP-> register / peers / vpn connected|disconnected / forwarding / usage
//   API -> push server :8081 -> 0x05 command / 0x07 control frames -> device
//
// This file wires the parts together and owns start/stop, the timers (tick) and status();
// peer-lifecycle.ts, registration.ts, firewall-sync.ts, messages.ts and usage-report.ts do the rest.
import type { Logger } from 'pino';
import { createResponder, MAX_LANES, type JsonMessage, type TunnelTimers } from '@pocketproxy/protocol';
import type { Firewall, OpenVpnState, Socks5FrontState } from '@pocketproxy/netfw';
import {
  tryNativeAead,
  type OpenPath,
  type SealPath,
  type TunConfig,
  type TunDevice,
  type TunStats,
} from '@pocketproxy/tun';
import type { InternalApi } from './api-client.js';
import { PendingCommands } from './commands.js';
import { sleep, type TunnelLogs } from './context.js';
import { createDataPath, type PathDrop } from './datapath.js';
import { DeviceTable, type DeviceEntry } from './devices.js';
import { createFirewallSync } from './firewall-sync.js';
import type { BaseState } from './forwarding.js';
import { parseSubnet } from './ipv4.js';
import { LogLimiter, TokenBuckets } from './limits.js';
import { createMessages } from './messages.js';
import { createPeerLifecycle } from './peer-lifecycle.js';
import { createPushRoutes } from './push-routes.js';
import { startPushServer, type PushServer } from './push-server.js';
import { createRegistration } from './registration.js';
import type { Socks5FrontStats } from './socks5-front.js';
import {
  describeEndpoint,
  listenTcp,
  sameEndpoint,
  type Endpoint,
  type TcpListener,
  type UdpPort,
} from './transport.js';
import { createUsageReport } from './usage-report.js';

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
  /** SOCKS5 ports' TCP REDIRECTed to the relay's SOCKS5 front (socks5-front.ts) instead of DNAT'ed. */
  readonly socks5Front?: Socks5FrontState;
  /** With socks5Front.http 'auto': which devices' links are far (firewall-sync.ts noteRtt). */
  readonly httpFrontAuto?: { readonly rttMs: number; readonly holdMs: number };
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
  /** After a start, how long known devices keep their ports while they reconnect (warm start). */
  warmMs: number;
  /** How long the first firewall apply waits for the warm start (an API that does not answer). */
  warmWaitMs: number;
}

// A silent device must be offline with its ports closed within 30 s (docs/design.md §2.2, §4). The
// protocol's 30 s dead-peer window plus the 1 s tick and the firewall update always overshot
// that, so the relay declares a peer dead after 25 s: still 2.5 device keepalives (10 s).
const RELAY_PROTOCOL_TIMERS = { deadAfterMs: 25_000 } satisfies Partial<TunnelTimers>;
const DEFAULT_INTERVALS: TunnelIntervals = {
  tickMs: 1_000,
  forwardingMs: 10_000,
  usageMs: 30_000,
  peersMs: 60_000,
  peersMinGapMs: 2_000,
  repushMs: 5_000,
  retryMaxMs: 10_000,
  warmMs: 30_000,
  warmWaitMs: 10_000,
};

export interface TunnelDeps {
  readonly settings: TunnelSettings;
  readonly relayKey: { readonly privateKey: Buffer; readonly publicKey: Buffer };
  readonly internalToken: string;
  readonly api: InternalApi;
  readonly firewall: Firewall;
  readonly tun: TunDevice;
  readonly configureTun: (cfg: TunConfig) => Promise<void>;
  readonly openUdp: (host: string, port: number) => Promise<UdpPort>;
  /**
   * The TUN's native seal path from the tunnel's UDP socket (main.ts: kernel TUN + BatchUdpSocket,
   * unless POCKETPROXY_NATIVE_SEAL=0); undefined or absent: every packet to a device through JS.
   */
  readonly sealPath?: (udp: UdpPort) => SealPath | undefined;
  /**
   * The UDP socket's native open path into the TUN (main.ts: kernel TUN + BatchUdpSocket, unless
   * POCKETPROXY_NATIVE_OPEN=0); undefined or absent: every frame from a device through JS.
   */
  readonly openPath?: (udp: UdpPort) => OpenPath | undefined;
  readonly logger: Logger;
  /** The relay's SOCKS5 front's counters for status() (main.ts, when the front runs). */
  readonly socks5FrontStats?: () => Socks5FrontStats;
  readonly now?: () => number;
  readonly intervals?: Partial<TunnelIntervals>;
  readonly protocolTimers?: Partial<TunnelTimers>;
  /** false: no setInterval; the test drives tick()/pollForwarding()/reportUsage(). Default true. */
  readonly autoTimers?: boolean;
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
  /** Every frame received, the native open path's included (frames_in_native of them). */
  frames_in: number;
  frames_in_native: number;
  /** Every sealed frame sent, the native seal path's included (frames_out_native of them). */
  frames_out: number;
  frames_out_native: number;
  /** Devices whose packets are sealed (and opened) natively now. */
  seal_routes: number;
  /** Lanes beyond lane 0 that carry now, over the connected devices (docs/protocol.md §3.1). */
  lanes_up: number;
  packets_to_tun: number;
  packets_from_tun: number;
  /** Initiations from keys unknown when they arrived: kept now, and answered after a peer refresh so far. */
  initiations_held: number;
  initiations_replayed: number;
  drops: Partial<Record<PathDrop, number>>;
  uptime_s: number;
  /** Offloads in effect (packages/tun): TUN vnet header/TSO, UDP GSO/GRO; null where not applicable. */
  offload: { tun: { vnet_hdr: boolean; tso: boolean } | null; udp: { gso: boolean; gro: boolean } | null };
  /** The TUN queue's counters: packets vs write() calls shows how much GRO gluing saves; drops/errors. */
  tun_stats: {
    rx_packets: number;
    /** read wakeups that took packets off pp0: rx_packets over it is how many a wakeup finds queued. */
    rx_batches: number;
    tx_packets: number;
    tx_writes: number | null;
    rx_gso: number | null;
    tx_gso: number | null;
    tx_drops: number;
    tx_errors: number;
    /** Pure ACKs to devices left out because a later one in the same read covered them (POCKETPROXY_ACK_THINNING). */
    acks_thinned: number | null;
  };
  /**
   * OpenVPN customers carried to their devices (openvpn/carry.ts; null when not): SYNs stamped, dropped for
   * want of a stamp (no conntrack entry, no room), stamps taken off other SYNs; devices that read stamps;
   * flows whose customer's MSS was kept, and writes to pp0 cut at one (@pocketproxy/tun carry_mss.h).
   */
  syn_stamps: {
    stamped: number;
    dropped: number;
    unstamped: number;
    devices: number;
    mss_kept: number;
    mss_writes: number;
  } | null;
  /** The UDP socket's datagrams against recvmmsg/sendmmsg calls (null on node:dgram). */
  udp_stats: { rx_datagrams: number; rx_batches: number; tx_datagrams: number; tx_syscalls: number } | null;
  /** process.memoryUsage() in MB: where the tunnel's RSS goes (V8 heap, Buffers, the rest). */
  memory_mb: { rss: number; heap_used: number; heap_total: number; external: number; array_buffers: number };
  /** The relay's SOCKS5 front (socks5-front.ts); null when it does not run (SOCKS5 ports DNAT'ed). */
  socks5_front: Socks5FrontStats | null;
  /** The connected devices' link round trips at their last handshake (ms); null when none has one. */
  handshake_rtt_ms: { devices: number; p50: number; p90: number; max: number } | null;
  /**
   * Which HTTP ports the front takes (POCKETPROXY_HTTP_FRONT): 'auto', true (all) or false (none; also
   * without the front), and with 'auto' how many connected devices are far (their HTTP ports through it).
   */
  http_front: { mode: boolean | 'auto'; far_devices: number };
}

export interface Tunnel {
  start(): Promise<void>;
  /** Resolves once the relay is registered and the peer list loaded (devices can handshake). */
  readonly ready: Promise<void>;
  stop(): Promise<void>;
  tick(): void;
  pollForwarding(): Promise<void>;
  /**
   * What POST /sync does: the device's peer entry (a new device can handshake at once, a deleted or
   * moved one loses its session) and its connections as the API has them now. True when it has a session.
   */
  syncDevice(deviceId: string): Promise<boolean>;
  reportUsage(): Promise<void>;
  refreshPeers(): Promise<void>;
  push(deviceId: string, message: JsonMessage): boolean;
  status(): TunnelStatus;
  readonly devices: DeviceTable;
  readonly addresses: { udp: number; tcp: number; push: number };
}

/**
 * The connected devices' round trips at their last handshake (protocol responder.ts handshakeRttMs):
 * how far the fleet's links are, in GET /status. Null when none has one yet.
 */
export function handshakeRtts(
  samples: ReadonlyArray<number | undefined>,
): { devices: number; p50: number; p90: number; max: number } | null {
  const v = samples.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const at = (q: number) => v[Math.min(v.length - 1, Math.floor(v.length * q))]!;
  return { devices: v.length, p50: at(0.5), p90: at(0.9), max: v[v.length - 1]! };
}

export function createTunnel(deps: TunnelDeps): Tunnel {
  const s = deps.settings;
  const iv = { ...DEFAULT_INTERVALS, ...deps.intervals };
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ subsys: 'tunnel' });
  const subnet = parseSubnet(s.deviceSubnet);
  const base: BaseState = {
    tunnelInterface: s.tunnelInterface,
    deviceSubnet: subnet.cidr,
    tunnelAddress: subnet.relayAddress,
    mssClamp: 'pmtu',
    ...(s.openvpn ? { openvpn: s.openvpn } : {}),
    ...(s.socks5Front ? { socks5Front: s.socks5Front } : {}),
  };
  const devices = new DeviceTable(subnet);
  const commands = new PendingCommands(iv.repushMs);
  const logLimit = new LogLimiter(10_000);
  const startedAt = now();
  let stopped = false;
  const isStopped = () => stopped;
  let udp: UdpPort | undefined;
  let seal: SealPath | undefined;
  let open: OpenPath | undefined;
  let tcp: TcpListener | undefined;
  let pushServer: PushServer | undefined;
  const timers: NodeJS.Timeout[] = [];
  const addresses = { udp: 0, tcp: 0, push: 0 };

  const devLog = (e: DeviceEntry | string) => log.child({ deviceId: typeof e === 'string' ? e : e.id });
  const logs: TunnelLogs = { now, log, devLog, logLimit };

  const protocolTimers = { ...RELAY_PROTOCOL_TIMERS, ...deps.protocolTimers };
  // Transport AEAD: the addon's OpenSSL path (~5x less CPU per packet) when it loads, else node:crypto; same bytes.
  const aead = tryNativeAead();
  // The responder's and the data path's callbacks reach parts built below them (peers, messages,
  // registration); none of them fires before start().
  const responder = createResponder<Endpoint>({
    aead,
    privateKey: deps.relayKey.privateKey,
    lookupPeer: (pub) => devices.lookup(pub),
    timers: protocolTimers,
    sameEndpoint,
    onEvent: (ev) => {
      // Anything that changes where or how a device's packets are sealed drops its native route.
      if (ev.type === 'peer_down' || ev.type === 'endpoint_changed' || ev.type === 'rekeyed') path.forget(ev.deviceId);
      if (ev.type === 'peer_up' || ev.type === 'rekeyed') {
        if (ev.type === 'peer_up') peers.onPeerUp(ev.deviceId, ev.endpoint);
        // After onPeerUp's new period: the handshake that confirmed it, or a rekey's, measured the link.
        const e = devices.byId.get(ev.deviceId);
        if (e) forwarding.noteRtt(e, responder.peer(ev.deviceId)?.handshakeRttMs);
      } else if (ev.type === 'peer_down') peers.onPeerDown(ev.deviceId, ev.reason, ev.silentMs);
      else if (ev.type === 'endpoint_changed') {
        const e = devices.byId.get(ev.deviceId);
        if (e) e.endpoint = ev.to;
        if (logLimit.allow(`roam:${ev.deviceId}`, now()) !== undefined)
          devLog(ev.deviceId).info(
            { from: describeEndpoint(ev.from), to: describeEndpoint(ev.to) },
            'device endpoint changed',
          );
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
    seal: () => seal,
    open: () => open,
    now,
    initiations: new TokenBuckets(deps.initiationRate?.perSec ?? 50, deps.initiationRate?.burst ?? 500),
    onMessage: (deviceId, m) => messages.onMessage(deviceId, m),
    onDrop(reason, deviceId, from) {
      if (reason === 'unknown_peer') void registration.requestPeers('unknown key');
      const suppressed = logLimit.allow(`drop:${reason}`, now());
      if (suppressed === undefined) return;
      const level = reason === 'spoofed' || reason === 'rate_limited' || reason === 'tun_full' ? 'warn' : 'debug';
      log[level](
        { reason, deviceId, from: from ? describeEndpoint(from) : undefined, suppressed },
        'frame or packet dropped',
      );
    },
  });

  const messages = createMessages({
    ...logs,
    responder,
    path,
    commands,
    subnet,
    tunnelMtu: s.tunnelMtu,
    isUp: (id) => devices.byId.get(id)?.up === true,
    devices,
    ...(s.openvpn?.carried ? { openvpnSubnet: s.openvpn.subnet } : {}),
  });
  const registration = createRegistration({
    ...logs,
    api: deps.api,
    relay: {
      name: s.relayName,
      host: s.publicHost,
      tunnel_port: s.tunnelPort,
      push_url: s.pushUrl,
      public_key: deps.relayKey.publicKey.toString('base64'),
      max_lanes: MAX_LANES,
    },
    devices,
    // A deleted device's native route goes with its peer entry (not at the next tick).
    responder: {
      removePeer: (id, t) => {
        path.forget(id);
        responder.removePeer(id, t);
      },
    },
    intervals: iv,
    isStopped,
    onPeersLoaded: () => {
      const n = path.replayHeld();
      if (n > 0) log.debug({ answered: n }, 'kept initiations answered after the peer refresh');
    },
  });
  const usage = createUsageReport({ ...logs, devices, firewall: deps.firewall, api: deps.api });
  const forwarding = createFirewallSync({
    ...logs,
    base,
    devices,
    firewall: deps.firewall,
    api: deps.api,
    usage,
    sendTo: messages.sendTo,
    isRegistered: () => registration.relayId() !== undefined,
    ...(s.socks5Front?.http === 'auto' && s.httpFrontAuto ? { httpFrontAuto: s.httpFrontAuto } : {}),
  });
  const peers = createPeerLifecycle({
    ...logs,
    devices,
    api: deps.api,
    messages,
    forwarding,
    commands,
    relayId: registration.relayId,
    retryMaxMs: iv.retryMaxMs,
    isStopped,
  });
  const { push } = messages;
  const { pollForwarding } = forwarding;
  // Both at once: a connection change of a known device is not held up by the peer check.
  async function syncDevice(deviceId: string): Promise<boolean> {
    const [, connected] = await Promise.all([registration.syncPeer(deviceId), forwarding.syncDevice(deviceId)]);
    return connected && devices.byId.get(deviceId)?.up === true;
  }
  const { reportUsage } = usage;
  const { refreshPeers } = registration;

  function tick(): void {
    const t = now();
    const out = responder.tick(t);
    if (out.length) path.send(out);
    path.checkRoutes(t);
    peers.reportDue(t);
    messages.repushDue(t);
    forwarding.expireWarm(t);
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));

  async function start(): Promise<void> {
    const host = s.listenHost ?? '0.0.0.0';
    await deps.configureTun({
      name: deps.tun.name,
      address: subnet.relayAddress,
      prefixLength: subnet.prefix,
      mtu: s.tunnelMtu,
    });
    // The table is rebuilt from the API's state once the warm start has it (below): ports of a
    // crashed run do not survive, and the ports of devices about to reconnect are never missing.
    await deps.firewall.applySysctls();
    // TCP (the fallback transport) listens on the UDP socket's port. With port 0 (tests) the kernel
    // picks the UDP port, and a TCP socket elsewhere may hold that number already: pick again.
    for (let attempt = 1; ; attempt++) {
      udp = await deps.openUdp(host, s.tunnelPort);
      addresses.udp = udp.address().port;
      try {
        tcp = await listenTcp({
          host,
          port: addresses.udp,
          onFrame: (f, c) => path.onTcpFrame(f, c),
          onBadStream: (c, why) => {
            if (logLimit.allow('tcp-desync', now()) !== undefined)
              log.debug({ from: c.remoteAddress, why }, 'TCP stream out of sync; closed');
          },
          idleMs: (protocolTimers.deadAfterMs ?? RELAY_PROTOCOL_TIMERS.deadAfterMs) * 2,
        });
        break;
      } catch (err) {
        const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
        if (!inUse || s.tunnelPort !== 0 || attempt >= 5) throw err;
        udp.close();
      }
    }
    seal = deps.sealPath?.(udp);
    open = deps.openPath?.(udp);
    udp.start(
      (dgs) => path.onUdpDatagrams(dgs),
      (err) => {
        if (logLimit.allow('udp-error', now()) !== undefined) log.warn({ err: String(err) }, 'UDP receive error');
      },
    );
    addresses.tcp = (tcp.server.address() as { port: number }).port;
    const routes = createPushRoutes({ push, status, syncDevice });
    pushServer = await startPushServer({
      host: s.pushHost ?? '127.0.0.1',
      port: s.pushPort,
      token: deps.internalToken,
      routes,
      onError: (err, route) => log.error({ err: String(err), route }, 'push route failed'),
    });
    addresses.push = pushServer.port;
    deps.tun.start(
      (b) => path.onTunBatch(b),
      (err) => {
        if (logLimit.allow('tun-error', now()) !== undefined) log.error({ err: String(err) }, 'TUN read error');
      },
    );
    log.info(
      {
        udp: addresses.udp,
        tcp: addresses.tcp,
        push: addresses.push,
        tun: deps.tun.name,
        address: `${subnet.relayAddress}/${subnet.prefix}`,
        mtu: s.tunnelMtu,
        aead: aead?.name ?? 'node:crypto',
        offload: { tun: deps.tun.offload ?? null, udp: udp?.offload?.() ?? null },
      },
      'tunnel listening',
    );
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
    // Whatever happens to the warm start, the firewall applies after warmWaitMs at the latest.
    const gateTimer = setTimeout(() => forwarding.openGate(), iv.warmWaitMs);
    timers.push(gateTimer as unknown as NodeJS.Timeout);
    void (async () => {
      await registration.register();
      while (!stopped && !devices.ready) {
        await refreshPeers().catch(() => sleep(Math.min(iv.retryMaxMs, 1000)));
      }
      await forwarding
        .warmStart(iv.warmMs)
        .catch((err) => log.warn({ err: String(err) }, 'warm start failed; devices get their ports as they reconnect'));
      forwarding.openGate();
      void forwarding.syncFirewall();
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
    await Promise.race([
      Promise.allSettled(up.map((id) => deps.api.disconnected({ device_id: id, reason: 'relay_stopped' }))),
      sleep(2_000),
    ]);
    await deps.firewall.teardown().catch((err) => log.warn({ err: String(err) }, 'firewall teardown failed'));
    deps.tun.close();
    log.info({ devices: up.length }, 'tunnel stopped');
  }

  function lanesUp(connected: readonly { id: string }[]): number {
    const t = now();
    let n = 0;
    for (const e of connected) for (const l of responder.peer(e.id)?.lanes.values() ?? []) if (l.usable(t)) n++;
    return n;
  }

  function status(): TunnelStatus {
    const c = path.counters;
    const ts = deps.tun.stats();
    const us = udp?.stats?.();
    const opened = us?.openNative ?? 0;
    const connected = devices.connected();
    return {
      relay_id: registration.relayId() ?? null,
      devices_known: devices.byId.size,
      devices_connected: connected.length,
      devices_forwarded: connected.filter((e) => e.reported).length,
      ports_forwarded: deps.firewall.current()?.ports.length ?? 0,
      tcp_connections: tcp?.connections ?? 0,
      pending_commands: commands.size,
      frames_in: c.framesIn + opened,
      frames_in_native: opened,
      frames_out: c.framesOut + (ts.sealNative ?? 0),
      frames_out_native: ts.sealNative ?? 0,
      seal_routes: path.sealRoutes,
      lanes_up: lanesUp(connected),
      packets_to_tun: c.packetsToTun + opened,
      packets_from_tun: c.packetsFromTun + (ts.sealNative ?? 0) + (ts.sealErrors ?? 0),
      initiations_held: path.held.size,
      initiations_replayed: c.initiationsReplayed,
      drops: { ...c.drops },
      uptime_s: Math.round((now() - startedAt) / 1000),
      offload: {
        tun: deps.tun.offload ? { vnet_hdr: deps.tun.offload.vnetHdr, tso: deps.tun.offload.tso } : null,
        udp: udp?.offload?.() ?? null,
      },
      tun_stats: tunStats(ts),
      syn_stamps: s.openvpn?.carried
        ? {
            stamped: ts.stamped ?? 0,
            dropped: ts.stampDropped ?? 0,
            unstamped: ts.unstamped ?? 0,
            devices: connected.filter((e) => e.synStamps).length,
            mss_kept: ts.carryMssFlows ?? 0,
            mss_writes: ts.carryResized ?? 0,
          }
        : null,
      udp_stats: udpStats(us),
      memory_mb: memoryMb(),
      socks5_front: deps.socks5FrontStats?.() ?? null,
      handshake_rtt_ms: handshakeRtts(connected.map((e) => responder.peer(e.id)?.handshakeRttMs)),
      http_front: { mode: s.socks5Front?.http ?? false, far_devices: forwarding.farDevices() },
    };
  }

  return {
    start,
    ready,
    stop,
    tick,
    pollForwarding,
    syncDevice,
    reportUsage,
    refreshPeers,
    push,
    status,
    devices,
    addresses,
  };
}

function udpStats(u: ReturnType<NonNullable<UdpPort['stats']>> | undefined): TunnelStatus['udp_stats'] {
  return u
    ? { rx_datagrams: u.rxPackets, rx_batches: u.rxBatches, tx_datagrams: u.txPackets, tx_syscalls: u.txSyscalls }
    : null;
}

function tunStats(t: TunStats): TunnelStatus['tun_stats'] {
  return {
    rx_packets: t.rxPackets,
    rx_batches: t.rxBatches,
    tx_packets: t.txPackets,
    tx_writes: t.txWrites ?? null,
    rx_gso: t.rxGso ?? null,
    tx_gso: t.txGso ?? null,
    tx_drops: t.txDrops,
    tx_errors: t.txErrors,
    acks_thinned: t.acksThinned ?? null,
  };
}

function memoryMb(): TunnelStatus['memory_mb'] {
  const m = process.memoryUsage();
  const mb = (n: number) => Math.round(n / 1048576);
  return {
    rss: mb(m.rss),
    heap_used: mb(m.heapUsed),
    heap_total: mb(m.heapTotal),
    external: mb(m.external),
    array_buffers: mb(m.arrayBuffers),
  };
}
