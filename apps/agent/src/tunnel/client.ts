// The device side of the tunnel: the protocol Initiator (sans-IO) driven over UDP, or TCP with a
// 2-byte length prefix on the same port when UDP does not get through.
//
//   TUN packet -> sendPacket -> Initiator.seal -> UDP | TCP -> relay
//   relay -> UDP | TCP -> Initiator.receive -> packet (-> TUN) | message (-> commands/control)
//   every tickMs: Initiator.tick (handshakes — retried after 0.25, 0.5, 1, 2 s, then every 5 s while
//                 there is no session —, keepalives, 30 s dead peer)
//                 TransportPolicy (UDP -> TCP fallback, UDP probes while on TCP: 1, 2, 4, ... 60 s)
//                 Liveness (probe a silent relay; re-handshake when it stays silent: relay restart)
//
// Our own address changing (rotation, Wi-Fi <-> cellular) needs nothing: the UDP socket is not
// bound to an address, the kernel picks the new source, and the relay follows the newest
// authenticated frame (docs/protocol.md §10). A TCP connection that dies with the old address is
// reconnected with back-off.
//
// UDP goes through the native BatchUdpSocket of @pocketproxy/tun when the addon is there (recvmmsg
// batches in; the frames sealed from one TUN read batch leave in one sendmmsg): node:dgram costs a
// dns.lookup + nextTick + send request per frame, ~15 % of the agent's CPU at 600 new proxied
// connections/s, and one sendto per frame was still ~12 %. node:dgram otherwise.
//
// Native seal (native-routes.ts): with that socket, the native AEAD and a kernel TUN, packets read
// from the TUN while established over UDP are sealed and sent in C++ (the TUN's default seal route),
// never reaching sendPackets; this client keeps the route equal to what sendPackets would do.
import { EventEmitter } from 'node:events';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { lookup } from 'node:dns/promises';
import type { Logger } from 'pino';
import {
  createInitiator,
  encodeTcpFrame,
  FRAME_INITIATION,
  FRAME_TRANSPORT,
  TcpFrameDecoder,
  type Initiator,
  type InitiatorEvent,
  type JsonMessage,
  type Lane,
  type TunnelTimers,
} from '@pocketproxy/protocol';
import {
  addonAvailable,
  createBatchUdpSocket,
  tryNativeAead,
  type OutDatagram,
  type PacketBatch,
} from '@pocketproxy/tun';
import { TransportPolicy, type Transport, type TransportPolicyOptions } from './transport-policy.js';
import { Liveness, type LivenessOptions } from './liveness.js';
import { icmpEcho } from './probe.js';
import { NativeRoutes, type NativeSealIo } from './native-routes.js';

interface UdpPort {
  send(frame: Buffer, port: number, address: string): void;
  /** Several frames to one peer, in order (one sendmmsg on the native socket). */
  sendMany(frames: readonly Buffer[], port: number, address: string): void;
  close(): Promise<void>;
}

export interface TunnelClientOptions {
  /** false: node:dgram even when the native UDP socket is available (default: native when available). */
  nativeUdp?: boolean;
  /** UDP GSO/GRO on the native socket (default true; main.ts passes false for POCKETPROXY_OFFLOAD=0). */
  offload?: boolean;
  /**
   * The TUN's native seal path (native-routes.ts): used when the native UDP socket is; absent, every
   * packet goes through sendPackets. host.ts passes the kernel TUN's unless POCKETPROXY_NATIVE_SEAL=0.
   */
  nativeSeal?: NativeSealIo;
  /** Local IPv4 address of the UDP and TCP sockets (the farm: the phone's interface, routed out of it by a source rule). */
  bindAddress?: string;
  relayHost: string;
  relayPort: number;
  relayPublicKey: Buffer;
  privateKey: Buffer;
  psk: Buffer;
  /** ICMP echo probe addresses (our vpn_ip → the relay's tunnel address); no probes without it. */
  probe?: { src: string; dst: string };
  timers?: Partial<TunnelTimers>;
  /** One of the device's lanes (docs/protocol.md §3.1; host.ts TunnelSpec.lanes); absent: the only one. */
  lane?: Lane;
  policy?: TransportPolicyOptions;
  liveness?: LivenessOptions;
  tickMs?: number;
  now?: () => number;
  resolve?: (host: string) => Promise<{ address: string; family: 4 | 6 }>;
  logger: Logger;
  /** Packets from the relay: those opened from one UDP receive batch come together (one TUN writeBatch). */
  onPackets?: (packets: Buffer[]) => void;
  onMessage?: (message: JsonMessage) => void;
}

export interface TunnelStats {
  transport: Transport;
  established: boolean;
  handshakes: number;
  restarts: number;
  fallbacks: number;
  /** udp includes the frames opened natively (framesInNative of them). */
  framesIn: { udp: number; tcp: number };
  framesInNative: number;
  /** Whether frames from the relay are opened in C++ now (the open route is set). */
  nativeOpening: boolean;
  /** udp includes the frames sealed natively (framesOutNative of them). */
  framesOut: { udp: number; tcp: number };
  framesOutNative: number;
  /** Whether TUN packets are sealed in C++ now (the default seal route is set). */
  nativeSealing: boolean;
  dropped: number;
  tcpConnects: number;
}

export type TunnelClientEvents = {
  /**
   * `recovered`: this session follows one presumed lost (the relay silent or dead), lost at `lostAt`
   * (the client's clock, Date.now by default): the relay may have restarted, and forgotten the device's
   * other lanes' sessions too (agent.ts tells them, proxy/threads.ts).
   */
  established: [{ transport: Transport; handshakeMs: number; rekey: boolean; recovered?: { lostAt: number } }];
  down: [{ reason: 'dead' | 'restart' | 'expired' }];
  /**
   * The transport changed. `why`: 'answered' (an authenticated frame came over UDP while on TCP: UDP works),
   * 'timeout' (no handshake answer on the other one), 'lane' (another lane's word, relayLost / udpAgain).
   */
  transport: [{ transport: Transport; why: 'answered' | 'timeout' | 'lane' }];
};

/**
 * The agent's first retries of an unanswered initiation while it has no session (timers.connectRetryMs;
 * the protocol default is every 5 s): a relay that learned of us a moment ago, or whose tunnel just
 * started, answers within a second instead of at the next 5 s retry. Then every 5 s as before. Five
 * initiations in the first 4 s, far below the relay's per-source limit (50/s, burst 500).
 */
export const AGENT_CONNECT_RETRY_MS: readonly number[] = Object.freeze([250, 500, 1_000, 2_000]);

/** The agent's protocol timers: `timers` over the fast first retries (those longer than its rekeyTimeoutMs dropped). */
export function agentTimers(timers: Partial<TunnelTimers> | undefined): Partial<TunnelTimers> {
  if (timers?.connectRetryMs) return timers;
  const rekeyTimeoutMs = timers?.rekeyTimeoutMs ?? 5_000;
  return { ...timers, connectRetryMs: AGENT_CONNECT_RETRY_MS.filter((ms) => ms <= rekeyTimeoutMs) };
}

const defaultResolve = async (host: string) => {
  const r = await lookup(host, { verbatim: true });
  return { address: r.address, family: (r.family === 6 ? 6 : 4) as 4 | 6 };
};

export class TunnelClient extends EventEmitter<TunnelClientEvents> {
  readonly initiator: Initiator;
  readonly policy: TransportPolicy;
  readonly liveness: Liveness;
  /** The native seal route and its accounting (public so tests can look). */
  readonly native: NativeRoutes;
  private readonly now: () => number;
  private readonly log: Logger;
  private udp: UdpPort | undefined;
  private tcp: net.Socket | undefined;
  private tcpReady = false;
  private tcpRetryTimer: NodeJS.Timeout | undefined;
  private tcpBackoffMs = 500;
  private ticker: NodeJS.Timeout | undefined;
  private relayAddr: { address: string; family: 4 | 6 } | undefined;
  private running = false;
  private probeSeq = 0;
  /** When the last session was presumed lost (restart or dead), until the next one is established. */
  private lostAt: number | undefined;
  /** When the current session was established (0: never). */
  private establishedAt = 0;
  /** Packets opened during the current recvmmsg batch, delivered together at its end. */
  private rxPackets: Buffer[] | undefined;
  private readonly stats_: TunnelStats;

  constructor(private readonly o: TunnelClientOptions) {
    super();
    this.now = o.now ?? Date.now;
    this.log = o.logger.child({ subsys: 'tunnel' });
    // Transport AEAD: the addon's OpenSSL path when it loads, else node:crypto (same bytes on the wire).
    this.initiator = createInitiator({
      aead: tryNativeAead(),
      privateKey: o.privateKey,
      responderPublicKey: o.relayPublicKey,
      psk: o.psk,
      timers: agentTimers(o.timers),
      lane: o.lane,
      onEvent: (e) => this.onInitiatorEvent(e),
    });
    this.policy = new TransportPolicy(o.policy, this.now());
    this.liveness = new Liveness(o.liveness);
    this.native = new NativeRoutes(o.nativeSeal);
    this.stats_ = {
      transport: 'udp',
      established: false,
      handshakes: 0,
      restarts: 0,
      fallbacks: 0,
      framesIn: { udp: 0, tcp: 0 },
      framesOut: { udp: 0, tcp: 0 },
      framesOutNative: 0,
      nativeSealing: false,
      framesInNative: 0,
      nativeOpening: false,
      dropped: 0,
      tcpConnects: 0,
    };
  }

  get established(): boolean {
    return this.initiator.state === 'established';
  }

  get transport(): Transport {
    return this.policy.mode;
  }

  stats(): TunnelStats {
    const native = this.native.sealedTotal;
    const opened = this.native.openedTotal;
    return {
      ...this.stats_,
      transport: this.policy.mode,
      established: this.established,
      restarts: this.liveness.restarts,
      framesIn: { udp: this.stats_.framesIn.udp + opened, tcp: this.stats_.framesIn.tcp },
      framesInNative: opened,
      nativeOpening: this.native.opening,
      framesOut: { udp: this.stats_.framesOut.udp + native, tcp: this.stats_.framesOut.tcp },
      framesOutNative: native,
      nativeSealing: this.native.sealing,
    };
  }

  async start(): Promise<void> {
    this.running = true;
    this.native.resetCount();
    this.relayAddr = await (this.o.resolve ?? defaultResolve)(this.o.relayHost);
    this.openUdp();
    this.ticker = setInterval(() => this.tick(), this.o.tickMs ?? 250);
    this.tick();
  }

  async stop(): Promise<void> {
    this.running = false;
    // First, so no packet is sealed natively once stop has begun.
    this.native.detach();
    if (this.ticker) clearInterval(this.ticker);
    if (this.tcpRetryTimer) clearTimeout(this.tcpRetryTimer);
    this.tcp?.destroy();
    this.tcp = undefined;
    const u = this.udp;
    this.udp = undefined;
    if (u) await u.close();
  }

  /** Seals and sends an IP packet from the TUN (queued by the initiator while connecting). */
  sendPacket(packet: Buffer): void {
    const now = this.now();
    const f = this.initiator.sendPacket(packet, now);
    if (f) this.sendFrame(f, now);
  }

  /**
   * Seals every packet of one TUN read batch. Over UDP the frames leave together (one sendmmsg on
   * the native socket), over TCP in one corked write.
   */
  sendPackets(batch: PacketBatch): void {
    if (batch.count === 1) {
      this.sendPacket(batch.data.subarray(batch.offsets[0]!, batch.offsets[1]!));
      return;
    }
    const now = this.now();
    const frames: Buffer[] = [];
    for (let i = 0; i < batch.count; i++) {
      const f = this.initiator.sendPacket(batch.data.subarray(batch.offsets[i]!, batch.offsets[i + 1]!), now);
      if (f) frames.push(f);
    }
    this.sendFrames(frames, now);
  }

  sendMessage(message: JsonMessage): void {
    const now = this.now();
    const f = this.initiator.sendMessage(message, now);
    if (f) this.sendFrame(f, now);
  }

  /** Timer work; public so tests can drive it. */
  tick(): void {
    if (!this.running) return;
    const now = this.now();
    // Frames the TUN sealed in C++ since the last tick went out on the current session: no keepalive
    // needed, and the relay owes us an answer (before the timers below look).
    if (this.native.takeSealed() > 0 && this.established) {
      this.initiator.noteSent(now);
      this.liveness.onSent(now);
    }
    // Frames the socket opened in C++ since the last tick: the relay is alive (the Initiator reads
    // the session's stamp itself).
    if (this.native.takeHeard() && this.established) this.liveness.onAuthenticated(now);
    const act = this.policy.tick(now);
    if (act.switchTo) this.onSwitch(act.switchTo, 'timeout');
    for (const f of this.initiator.tick(now)) this.sendFrame(f, now);
    if (this.established) {
      const l = this.liveness.tick(now);
      if (l === 'probe') this.probe(now, this.policy.mode);
      else if (l === 'restart') {
        this.log.warn(
          { transport: this.policy.mode, slow: this.liveness.slow },
          'relay silent: re-handshaking (relay restart?)',
        );
        this.restartSession(now);
      }
      if (act.probeUdp) this.probe(now, 'udp');
    }
    // Per tick as well as on each event: the session may have expired (peer's counter, time).
    this.syncNative(now);
  }

  /** Sets or drops the native seal route to match what sendPackets would do now (native-routes.ts). */
  private syncNative(now: number = this.now()): void {
    this.native.sync({
      running: this.running,
      transport: this.policy.mode,
      session: this.initiator.session,
      relay: this.relayAddr,
      relayPort: this.o.relayPort,
      timers: this.initiator.timers,
      now,
    });
  }

  private probe(now: number, via: Transport): void {
    const p = this.o.probe;
    const f = p
      ? this.initiator.sendPacket(icmpEcho(p.src, p.dst, 0x5050, ++this.probeSeq), now)
      : this.initiator.sendMessage({ kind: 'control', control: { type: 'ping' } }, now);
    if (f) this.sendFrame(f, now, via);
  }

  /**
   * Another lane's session was presumed lost at `at` (this client's clock) and it has a new one, over
   * `transport`: the relay may have restarted and forgotten this lane's session too, or the path may have
   * stopped carrying UDP (proxy/threads.ts). Unless this session was established since, it is dropped and
   * a handshake goes now, over `transport` (given), without waiting for this lane's own 15 s without an
   * answer, nor for its own fallback timer before it tries TCP.
   */
  relayLost(at: number, transport?: Transport): void {
    if (!this.running || this.establishedAt >= at) return;
    const now = this.now();
    this.log.info(
      { transport: transport ?? this.policy.mode },
      're-handshaking: lane 0 found the relay silent (restarted?)',
    );
    if (transport !== undefined && this.policy.adopt(transport, now)) this.onSwitch(transport, 'lane');
    this.restartSession(now);
  }

  /**
   * Lane 0 hears the relay over UDP again after a time on TCP (proxy/threads.ts). A lane but 0 on TCP goes
   * back to UDP now and sends a frame over it, so the relay's end of its session follows (§10's roaming):
   * its own UDP probes are control frames the relay does not answer, and its next TCP frame would move
   * the relay's end back before anything came by UDP, so on its own an idle lane stayed on TCP.
   */
  udpAgain(): void {
    const now = this.now();
    if (!this.running || !this.policy.adopt('udp', now)) return;
    this.onSwitch('udp', 'lane');
    if (this.established) this.probe(now, 'udp');
  }

  private restartSession(now: number): void {
    this.sessionLost(now, 'restart');
    for (const f of this.initiator.tick(now)) this.sendFrame(f, now);
  }

  private sessionLost(now: number, reason: 'dead' | 'restart' | 'expired'): void {
    if (reason !== 'expired') this.lostAt ??= now;
    if (reason === 'restart') this.initiator.reset();
    this.policy.onSessionLost(now);
    // No session: no native route either, before anyone hears of it.
    this.syncNative(now);
    this.emit('down', { reason });
    // The relay's name may point elsewhere now (failover); refresh it in the background.
    void (this.o.resolve ?? defaultResolve)(this.o.relayHost).then(
      (a) => {
        if (!this.running) return;
        this.relayAddr = a;
        this.syncNative();
      },
      () => {},
    );
  }

  private onInitiatorEvent(e: InitiatorEvent): void {
    if (e.type === 'handshake_sent') {
      this.stats_.handshakes++;
      this.log.debug({ reason: e.reason, attempt: e.attempt, transport: this.policy.mode }, 'handshake sent');
    } else if (e.type === 'peer_dead') {
      this.log.warn(
        { silentMs: e.silentMs, ...(e.unsentMs !== undefined ? { unsentMs: e.unsentMs } : {}) },
        e.unsentMs !== undefined
          ? 'nothing sent for two keepalive periods (the process was frozen?): handshaking again'
          : 'relay dead',
      );
      this.sessionLost(this.now(), 'dead');
    } else if (e.type === 'session_expired') {
      this.sessionLost(this.now(), 'expired');
    } else if (e.type === 'established') {
      this.log.info({ transport: this.policy.mode, handshakeMs: e.handshakeMs, rekey: e.rekey }, 'tunnel established');
    }
  }

  private onSwitch(t: Transport, why: 'answered' | 'timeout' | 'lane'): void {
    this.stats_.fallbacks++;
    this.log.info({ transport: t, why }, 'tunnel transport switched');
    this.emit('transport', { transport: t, why });
    if (t === 'tcp') {
      this.ensureTcp();
    } else {
      this.closeTcp();
    }
    if (!this.established) {
      // Start a fresh handshake on the new transport now rather than at the next 5 s retry.
      this.initiator.reset();
      if (t === 'udp') for (const f of this.initiator.tick(this.now())) this.sendFrame(f, this.now());
    }
    this.syncNative();
  }

  private sendFrame(frame: Buffer, now: number, via: Transport = this.policy.mode): void {
    if (frame[0] === FRAME_TRANSPORT && this.established) this.liveness.onSent(now);
    if (via === 'udp') {
      const a = this.relayAddr;
      if (!this.udp || !a) return;
      this.stats_.framesOut.udp++;
      this.udp.send(frame, this.o.relayPort, a.address);
      return;
    }
    if (this.tcp && this.tcpReady) {
      this.stats_.framesOut.tcp++;
      this.tcp.write(encodeTcpFrame(frame));
    } else {
      this.ensureTcp();
      // No TCP connection (yet, or the relay refuses it): an initiation goes over UDP meanwhile rather
      // than nowhere. A relay whose tunnel was still starting when we fell back, or UDP that works
      // again, answers there, and that answer moves us back to UDP at once (onFrame).
      if (frame[0] === FRAME_INITIATION) this.sendFrame(frame, now, 'udp');
    }
  }

  private sendFrames(frames: readonly Buffer[], now: number): void {
    if (frames.length <= 1) {
      if (frames.length === 1) this.sendFrame(frames[0]!, now);
      return;
    }
    const via = this.policy.mode;
    if (via === 'udp') {
      const a = this.relayAddr;
      if (!this.udp || !a) return;
      // Every frame here is a sealed transport frame.
      if (this.established) this.liveness.onSent(now);
      this.stats_.framesOut.udp += frames.length;
      this.udp.sendMany(frames, this.o.relayPort, a.address);
      return;
    }
    if (this.tcp && this.tcpReady) {
      this.tcp.cork();
      for (const f of frames) this.sendFrame(f, now, 'tcp');
      this.tcp.uncork();
    } else {
      this.ensureTcp();
    }
  }

  private onFrame(frame: Buffer, via: Transport): void {
    const now = this.now();
    this.stats_.framesIn[via]++;
    const r = this.initiator.receive(frame, now);
    if (r.kind === 'dropped') {
      this.stats_.dropped++;
      return;
    }
    const sw = this.policy.onAuthenticated(via, now);
    if (sw) this.onSwitch(sw, 'answered');
    if (r.kind === 'established') {
      this.policy.onEstablished(now);
      this.liveness.onEstablished(now);
      this.tcpBackoffMs = 500;
      for (const f of r.send) this.sendFrame(f, now, via);
      // A new session (first, or a rekey): the route moves to it before the next TUN read.
      this.syncNative(now);
      const lostAt = this.lostAt;
      this.lostAt = undefined;
      this.establishedAt = now;
      this.emit('established', {
        transport: via,
        handshakeMs: 0,
        rekey: false,
        ...(lostAt !== undefined ? { recovered: { lostAt } } : {}),
      });
      return;
    }
    this.liveness.onAuthenticated(now);
    if (r.kind === 'packet') this.deliver(r.packet);
    else if (r.kind === 'message') this.o.onMessage?.(r.message);
  }

  private deliver(packet: Buffer): void {
    if (this.rxPackets) this.rxPackets.push(packet);
    else this.o.onPackets?.([packet]);
  }

  private flushRx(): void {
    const ps = this.rxPackets;
    this.rxPackets = undefined;
    if (ps && ps.length > 0) this.o.onPackets?.(ps);
  }

  private openUdp(): void {
    const a = this.relayAddr!;
    const type = a.family === 6 ? 'udp6' : 'udp4';
    // Only the relay's address:port; everything else is noise (and would fail auth anyway).
    const onDatagram = (msg: Buffer, port: number) => {
      if (port === this.o.relayPort) this.onFrame(msg, 'udp');
    };
    // ENETUNREACH etc. while the link is down during rotation: the next tick retries.
    const sendFailed = (err: string) => this.log.debug({ err }, 'udp send failed');
    if (this.o.nativeUdp !== false && addonAvailable()) {
      try {
        // 4 MB each way: bursts of 64 KB GSO/GRO messages overflow the 208 KB default (uncapped
        // with CAP_NET_ADMIN, else limited by net.core.rmem_max/wmem_max).
        const b = createBatchUdpSocket({
          type,
          ...(this.o.bindAddress && type === 'udp4' ? { address: this.o.bindAddress } : {}),
          recvBufferSize: 4 << 20,
          sendBufferSize: 4 << 20,
          offload: this.o.offload,
        });
        b.startRaw(
          (data, meta, _addrs, count) => {
            // Opened packets are fresh buffers (Initiator.receive), so they may wait for the batch's end.
            this.rxPackets = count > 1 ? [] : undefined;
            try {
              for (let i = 0; i < count; i++) {
                const off = meta[3 * i]!;
                onDatagram(data.subarray(off, off + meta[3 * i + 1]!), meta[3 * i + 2]!);
              }
            } finally {
              this.flushRx();
            }
          },
          (e) => this.log.debug({ err: e.message }, 'udp socket error'),
        );
        this.native.attach(b);
        this.udp = {
          send: (frame, port, address) => {
            try {
              if (!b.send(frame, address, port)) sendFailed('dropped');
            } catch (e) {
              sendFailed((e as Error).message);
            }
          },
          sendMany: (frames, port, address) => {
            const out: OutDatagram[] = new Array(frames.length);
            for (let i = 0; i < frames.length; i++) out[i] = { data: frames[i]!, address, port };
            try {
              const n = b.sendBatch(out);
              if (n < out.length) sendFailed(`${out.length - n} of ${out.length} dropped`);
            } catch (e) {
              sendFailed((e as Error).message);
            }
          },
          close: async () => b.close(),
        };
        return;
      } catch (e) {
        this.log.debug({ err: (e as Error).message }, 'native UDP socket unavailable; using node:dgram');
      }
    }
    const s = dgram.createSocket(type);
    if (this.o.bindAddress && type === 'udp4') s.bind({ address: this.o.bindAddress });
    s.on('message', (msg, rinfo) => onDatagram(msg, rinfo.port));
    s.on('error', (e) => this.log.debug({ err: e.message }, 'udp socket error'));
    this.udp = {
      send: (frame, port, address) =>
        s.send(frame, port, address, (err) => {
          if (err) sendFailed(err.message);
        }),
      sendMany: (frames, port, address) => {
        for (const f of frames)
          s.send(f, port, address, (err) => {
            if (err) sendFailed(err.message);
          });
      },
      close: () =>
        new Promise<void>((r) => {
          try {
            s.close(() => r());
          } catch {
            r();
          }
        }),
    };
  }

  private ensureTcp(): void {
    if (!this.running || this.tcp || this.tcpRetryTimer || !this.relayAddr) return;
    const s = net.connect({
      host: this.relayAddr.address,
      port: this.o.relayPort,
      noDelay: true,
      ...(this.o.bindAddress && this.relayAddr.family === 4 ? { localAddress: this.o.bindAddress } : {}),
    });
    this.tcp = s;
    this.tcpReady = false;
    const decoder = new TcpFrameDecoder();
    s.setKeepAlive(true, 15_000);
    s.on('connect', () => {
      this.tcpReady = true;
      this.stats_.tcpConnects++;
      this.log.info({ relay: `${this.relayAddr?.address}:${this.o.relayPort}` }, 'tcp connected');
      if (this.policy.mode === 'tcp') {
        if (!this.established) this.initiator.reset();
        // Established: a keepalive moves the relay's endpoint to this connection; else a handshake.
        for (const f of this.initiator.tick(this.now())) this.sendFrame(f, this.now(), 'tcp');
        if (this.established) {
          const f = this.initiator.sendMessage({ kind: 'control', control: { type: 'ping' } }, this.now());
          if (f) this.sendFrame(f, this.now(), 'tcp');
        }
      }
    });
    s.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = decoder.push(chunk);
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'tcp stream out of sync');
        s.destroy();
        return;
      }
      for (const f of frames) this.onFrame(f, 'tcp');
    });
    s.on('error', (e) => this.log.debug({ err: e.message }, 'tcp error'));
    s.on('close', () => {
      if (this.tcp !== s) return;
      this.tcp = undefined;
      this.tcpReady = false;
      if (!this.running || this.policy.mode !== 'tcp') return;
      const delay = this.tcpBackoffMs;
      this.tcpBackoffMs = Math.min(30_000, this.tcpBackoffMs * 2);
      this.tcpRetryTimer = setTimeout(() => {
        this.tcpRetryTimer = undefined;
        this.ensureTcp();
      }, delay);
    });
  }

  private closeTcp(): void {
    if (this.tcpRetryTimer) clearTimeout(this.tcpRetryTimer);
    this.tcpRetryTimer = undefined;
    const s = this.tcp;
    this.tcp = undefined;
    this.tcpReady = false;
    s?.end();
    setTimeout(() => s?.destroy(), 2_000).unref();
  }
}

export function createTunnelClient(o: TunnelClientOptions): TunnelClient {
  return new TunnelClient(o);
}
