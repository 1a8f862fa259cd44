// The packet path, both directions, with no awaits in it:
//
//   device -> UDP/TCP frame -> responder.receive -> packet (src must be the device's vpn_ip) -> pp0
//   pp0 batch -> dst vpn_ip -> device -> session.seal -> UDP sendmmsg / TCP write -> device
//
// One UDP batch becomes one TUN writeBatch and one sendBatch of replies; one TUN batch becomes one
// sendBatch.
//
// Native seal path (`seal`, kernel TUN + native AEAD): once JS has sealed a packet to a device over
// UDP, the device's address gets a route in the TUN queue (its session's key, receiver index,
// shared send counter, endpoint), and from then on packets to it are sealed and sent in C++ as they
// are read, without a call into JS. A route is a cache of what JS would do; it is dropped when the
// device's session or endpoint changes (on the frame that changes it, or the responder's event),
// when the device goes, and checked every tick (expiry, a device table change), after which the next
// packet takes the JS path and puts it back. Why: each call into JS after the loop slept costs
// ~100-200 us here, and a customer's packets to a device pass this way twice per time to first
// byte (docs/benchmarks.md, issue 13 h7).
//
// Native open path (`open`, the same conditions): the route also gives the UDP socket the device's
// session (receive key, the replay window's shared memory) under our receiver index, with the
// device's endpoint and its address as the only inner source; frames on it that carry an IPv4
// packet are then opened and written to pp0 in C++. Anything else still reaches frameIn (see
// @pocketproxy/tun OpenPath). The responder hears of those frames through the session
// (nativeReceivedAt) at its tick. An initiation from a key the relay does not know yet is kept (held-initiations.ts) and
// handed to the responder again by `replayHeld` once the peer list knows the key; known peers never
// reach that branch. Multi-core seam: this module holds no state of its own beyond counters — a worker
// per multi-queue TUN queue could run it with its own responder shard (sessions are keyed by
// receiver index, so the UDP socket's reuseport group would have to steer by index; see README).
import type { Responder, JsonMessage, DropReason, Outbound } from '@pocketproxy/protocol';
import { FRAME_INITIATION, MAX_LANES } from '@pocketproxy/protocol';
import type { OpenPath, OutDatagram, PacketBatch, SealPath, TunDevice } from '@pocketproxy/tun';
import type { TransportSession } from '@pocketproxy/protocol';
import type { DeviceTable } from './devices.js';
import { HeldInitiations } from './held-initiations.js';
import { ipv4Dst, ipv4Src } from './ipv4.js';
import type { TokenBuckets } from './limits.js';
import { sourceAddress, type Endpoint, type TcpConn, type UdpPort } from './transport.js';

export type PathDrop =
  | DropReason
  | 'unknown_peer_replayed'
  | 'rate_limited'
  | 'spoofed'
  | 'not_ipv4'
  | 'no_device'
  | 'no_session'
  | 'tun_full'
  | 'send_failed';

export interface DataPathCounters {
  framesIn: number;
  framesOut: number;
  packetsToTun: number;
  packetsFromTun: number;
  /** Kept initiations from keys unknown when they arrived, answered once the peer list knew them. */
  initiationsReplayed: number;
  drops: Partial<Record<PathDrop, number>>;
}

export interface DataPathDeps {
  responder: Responder<Endpoint>;
  devices: DeviceTable;
  tun: TunDevice;
  udp: () => UdpPort | undefined;
  now: () => number;
  initiations: TokenBuckets;
  onMessage: (deviceId: string, message: JsonMessage) => void;
  /** A drop worth a (rate-limited) log line or a reaction, e.g. unknown_peer -> refresh peers. */
  onDrop: (reason: PathDrop, deviceId: string | undefined, from: Endpoint | undefined) => void;
  /** Initiations from unknown keys kept for replayHeld: endpoints at most, and for how long (default 256, 5 s). */
  heldInitiations?: { max: number; ttlMs: number };
  /** The TUN's native seal path, once the UDP socket exists (undefined: every packet through JS). */
  seal?: () => SealPath | undefined;
  /** The UDP socket's native open path into the TUN (undefined: every frame through JS). */
  open?: () => OpenPath | undefined;
}

export interface DataPath {
  readonly counters: DataPathCounters;
  onTunBatch(batch: PacketBatch): void;
  onUdpDatagrams(datagrams: readonly { data: Buffer; address: string; port: number }[]): void;
  onTcpFrame(frame: Buffer, conn: TcpConn): void;
  /** Sends frames the responder produced outside the packet path (keepalives, pushes). */
  send(out: readonly Outbound<Endpoint>[]): void;
  /** Initiations kept from unknown keys (counters: held, expired; replayed below). */
  readonly held: HeldInitiations;
  /** Hands the kept initiations whose key the device table knows now to the responder again; returns how many were answered. */
  replayHeld(): number;
  /** Drops the device's native seal route (its session, endpoint or registration changed); the next packet takes JS. */
  forget(deviceId: string): void;
  /** Drops every native seal route that no longer matches the device table and the responder (per tick). */
  checkRoutes(now: number): void;
  /** Devices with a native route (seal, and open when that path exists). */
  readonly sealRoutes: number;
}

export function createDataPath(d: DataPathDeps): DataPath {
  const counters: DataPathCounters = {
    framesIn: 0,
    framesOut: 0,
    packetsToTun: 0,
    packetsFromTun: 0,
    initiationsReplayed: 0,
    drops: {},
  };
  const tcpEndpoints = new WeakMap<TcpConn, Endpoint>();
  const held = new HeldInitiations(d.heldInitiations?.max, d.heldInitiations?.ttlMs);
  // Native seal routes by device address and lane slot (key vpnNum * MAX_LANES + slot; a device
  // without lanes has slot 0 only): what was installed, to tell when it is stale. A slot whose lane
  // cannot carry now is served by lane 0 (ResponderPeer.laneForSlot): its route seals on lane 0's
  // session, and the open route of a session belongs to its own slot's route only.
  type Route = {
    deviceId: string;
    vpnNum: number;
    slot: number;
    count: number;
    session: TransportSession;
    address: string;
    port: number;
    opens: boolean;
  };
  const routes = new Map<number, Route>();
  /** The keys of each device's routes. */
  const routeOf = new Map<string, Set<number>>();
  const keyOf = (vpnNum: number, slot: number) => vpnNum * MAX_LANES + slot;

  function dropRoute(key: number): void {
    const r = routes.get(key);
    if (!r) return;
    routes.delete(key);
    d.seal?.()?.delete(r.vpnNum, r.slot);
    if (r.opens) d.open?.()?.delete(r.session.localIndex);
    const keys = routeOf.get(r.deviceId);
    keys?.delete(key);
    if (keys?.size === 0) routeOf.delete(r.deviceId);
  }

  /** Drops the device's routes that are no longer valid at `now` (routeValid), or all of them without `now`. */
  function dropRoutesOf(deviceId: string, now?: number): void {
    const keys = routeOf.get(deviceId);
    if (!keys) return;
    // (A Set may lose the entry being visited: the loop goes on with the next.)
    for (const key of keys) if (now === undefined || !routeValid(routes.get(key)!, now)) dropRoute(key);
  }

  /** The route is still what JS would do for its slot: same lane count, session and UDP endpoint, not expired. */
  function routeValid(r: Route, now: number): boolean {
    const peer = d.responder.peer(r.deviceId);
    if (!peer || peer.laneCount !== r.count) return false;
    const l = peer.laneForSlot(r.slot, now);
    const ep = l.endpoint;
    return (
      l.current === r.session &&
      ep?.kind === 'udp' &&
      ep.address === r.address &&
      ep.port === r.port &&
      !r.session.expired(now, d.responder.timers)
    );
  }

  /**
   * After JS sealed a packet to `dev` for lane slot `slot`, or opened one from it on that lane: give the
   * slot native routes (seal by its address and slot, open by our index) if it has none, or stale ones.
   */
  function installRoute(deviceId: string, vpnNum: number, slot: number, now: number): void {
    const seal = d.seal?.();
    const open = d.open?.();
    if (!seal && !open) return;
    const peer = d.responder.peer(deviceId);
    if (!peer || slot >= peer.laneCount) return;
    const l = peer.laneForSlot(slot, now);
    const s = l.current;
    const ep = l.endpoint;
    if (!s || ep?.kind !== 'udp' || s.aeadName !== 'openssl-native') return;
    const key = keyOf(vpnNum, slot);
    const r = routes.get(key);
    if (r && r.session === s && r.address === ep.address && r.port === ep.port && r.count === peer.laneCount) return;
    if (r) dropRoute(key);
    const count = peer.laneCount;
    const route: Route = {
      deviceId,
      vpnNum,
      slot,
      count,
      session: s,
      address: ep.address,
      port: ep.port,
      opens: l.lane === slot,
    };
    if (!routeValid(route, now)) return;
    // A new lane count makes the device's other routes invalid (the native side drops them too).
    dropRoutesOf(deviceId, now);
    seal?.set(vpnNum, s.sendState(d.responder.timers), ep.address, ep.port, count > 1 ? { slot, count } : undefined);
    if (route.opens) open?.set(s.receiveState(d.responder.timers), ep.address, ep.port, vpnNum);
    routes.set(key, route);
    const keys = routeOf.get(deviceId);
    if (keys) keys.add(key);
    else routeOf.set(deviceId, new Set([key]));
  }

  const drop = (reason: PathDrop, deviceId?: string, from?: Endpoint) => {
    counters.drops[reason] = (counters.drops[reason] ?? 0) + 1;
    d.onDrop(reason, deviceId, from);
  };

  // Devices answered a handshake response in this batch: the responder hears when it left (replySent), so
  // that the device's measured round trip (firewall-sync.ts noteRtt) is its link's, not this batch's work.
  const replied: { deviceId: string; lane: number }[] = [];
  function markReplies(): void {
    if (replied.length === 0) return;
    const t = d.now();
    for (const r of replied) d.responder.replySent(r.deviceId, t, r.lane);
    replied.length = 0;
  }

  /** Queues a frame for `to`: UDP into `udpOut` (sent as one batch), TCP written now. */
  function emit(frame: Buffer, to: Endpoint, udpOut: OutDatagram[]): void {
    counters.framesOut++;
    if (to.kind === 'udp') udpOut.push({ data: frame, address: to.address, port: to.port });
    else if (!to.conn.send(frame)) drop('send_failed');
  }

  function flushUdp(out: OutDatagram[]): void {
    if (out.length > 0) sendUdp(out);
    markReplies();
  }

  function sendUdp(out: OutDatagram[]): void {
    const sock = d.udp();
    if (!sock) return void drop('send_failed');
    try {
      const n = sock.sendBatch(out);
      for (let i = n; i < out.length; i++) drop('send_failed');
    } catch {
      drop('send_failed');
    }
  }

  function flushTun(packets: Buffer[]): void {
    if (packets.length === 0) return;
    const n = d.tun.writeBatch(packets);
    counters.packetsToTun += n;
    for (let i = n; i < packets.length; i++) drop('tun_full');
  }

  function frameIn(frame: Buffer, from: Endpoint, now: number, toTun: Buffer[], udpOut: OutDatagram[]): void {
    counters.framesIn++;
    // No cookie reply in v1: an initiation costs two DH, so limit them per source before any crypto.
    if (frame[0] === FRAME_INITIATION && !d.initiations.take(sourceAddress(from), now)) {
      drop('rate_limited', undefined, from);
      return;
    }
    const r = d.responder.receive(frame, from, now);
    // A frame that moved the device's endpoint or confirmed a new session makes its route stale.
    if (routeOf.size > 0 && r.kind !== 'dropped') dropRoutesOf(r.deviceId, now);
    switch (r.kind) {
      case 'packet': {
        const p = r.packet;
        const dev = d.devices.byId.get(r.deviceId);
        if (p[0]! >> 4 !== 4 || p.length < 20) drop('not_ipv4', r.deviceId);
        else if (!dev || ipv4Src(p) !== dev.vpnNum) drop('spoofed', r.deviceId);
        else {
          toTun.push(p);
          if (from.kind === 'udp' && !routes.has(keyOf(dev.vpnNum, r.lane)))
            installRoute(dev.id, dev.vpnNum, r.lane, now);
        }
        return;
      }
      case 'reply':
        emit(r.frame, r.endpoint, udpOut);
        replied.push(r);
        return;
      case 'message':
        d.onMessage(r.deviceId, r.message);
        return;
      case 'keepalive':
        return;
      case 'dropped':
        // Kept so the peer refresh this drop triggers can answer this very initiation (replayHeld).
        if (r.publicKey) held.hold(frame, from, r.publicKey, now);
        drop(r.reason, r.deviceId, from);
        return;
    }
  }

  /** A kept initiation, again: it was counted and rate-limited when it arrived; MAC1 and the rest are checked afresh. */
  function replayOne(frame: Buffer, from: Endpoint, now: number, udpOut: OutDatagram[]): boolean {
    const r = d.responder.receive(frame, from, now);
    if (r.kind === 'reply') {
      emit(r.frame, r.endpoint, udpOut);
      replied.push(r);
      return true;
    }
    if (r.kind === 'dropped') drop(r.reason === 'unknown_peer' ? 'unknown_peer_replayed' : r.reason, r.deviceId, from);
    return false;
  }

  return {
    counters,
    onTunBatch(batch) {
      const now = d.now();
      const udpOut: OutDatagram[] = [];
      const { data, offsets, count } = batch;
      for (let i = 0; i < count; i++) {
        const p = data.subarray(offsets[i]!, offsets[i + 1]!);
        counters.packetsFromTun++;
        if (p.length < 20 || p[0]! >> 4 !== 4) {
          drop('not_ipv4');
          continue;
        }
        const dev = d.devices.byAddress(ipv4Dst(p));
        if (!dev) {
          drop('no_device');
          continue;
        }
        const ob = d.responder.sendPacket(dev.id, p, now);
        if (!ob) {
          drop('no_session', dev.id);
          continue;
        }
        emit(ob.frame, ob.endpoint, udpOut);
        const slot = ob.slot ?? 0;
        if (ob.endpoint.kind === 'udp' && !routes.has(keyOf(dev.vpnNum, slot)))
          installRoute(dev.id, dev.vpnNum, slot, now);
      }
      flushUdp(udpOut);
    },
    onUdpDatagrams(datagrams) {
      const now = d.now();
      const toTun: Buffer[] = [];
      const udpOut: OutDatagram[] = [];
      for (const g of datagrams) frameIn(g.data, { kind: 'udp', address: g.address, port: g.port }, now, toTun, udpOut);
      flushTun(toTun);
      flushUdp(udpOut);
    },
    onTcpFrame(frame, conn) {
      let ep = tcpEndpoints.get(conn);
      if (!ep) {
        ep = { kind: 'tcp', conn };
        tcpEndpoints.set(conn, ep);
      }
      const toTun: Buffer[] = [];
      const udpOut: OutDatagram[] = [];
      frameIn(frame, ep, d.now(), toTun, udpOut);
      flushTun(toTun);
      flushUdp(udpOut);
    },
    send(out) {
      const udpOut: OutDatagram[] = [];
      for (const o of out) emit(o.frame, o.endpoint, udpOut);
      flushUdp(udpOut);
    },
    held,
    replayHeld() {
      if (held.size === 0) return 0;
      const now = d.now();
      const udpOut: OutDatagram[] = [];
      let answered = 0;
      for (const h of held.take((key) => d.devices.lookup(key) !== undefined, now))
        if (replayOne(h.frame, h.from, now, udpOut)) answered++;
      counters.initiationsReplayed += answered;
      flushUdp(udpOut);
      return answered;
    },
    forget(deviceId) {
      dropRoutesOf(deviceId);
    },
    checkRoutes(now) {
      for (const [key, r] of routes)
        if (d.devices.byAddress(r.vpnNum)?.id !== r.deviceId || !routeValid(r, now)) dropRoute(key);
    },
    get sealRoutes() {
      return routeOf.size;
    },
  };
}
