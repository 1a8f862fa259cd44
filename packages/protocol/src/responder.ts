// The relay side (responder) of the tunnel, sans-IO. The tunnel process feeds it every datagram or
// TCP frame with an opaque `from` endpoint and sends back what it returns.
//
//   device -> socket -> receive(frame, from) -> reply (handshake response, to `from`)
//                                            -> packet (write to TUN) | message | keepalive | dropped
//   TUN packet for device -> peer(deviceId).sendPacket -> frame -> peer.endpoint
//   every ~1 s: tick(now) -> keepalives to send; peer_down events for silent devices
//
// Sessions are found by the receiver index in every frame, never by address: a device that roams
// keeps its session, and the endpoint follows the last authenticated frame (UDP or TCP alike).
// Anything that fails authentication gets no answer at all (`dropped`).
import { type TunnelTimers, resolveTimers } from './timers.js';
import { consumeInitiation, createIdentity, createResponse, type StaticIdentity } from './handshake.js';
import { TransportSession } from './session.js';
import type { AeadProvider } from './aead.js';
import { encodeJsonMessage, type JsonMessage } from './inner.js';
import { defaultRandom, deliver, freshIndex, type DropReason, type RandomBytes } from './peer-common.js';
import { FRAME_INITIATION, FRAME_TRANSPORT, HEADER_LEN, KEY_LEN, PROTOCOL_VERSION } from './constants.js';
import { tunnelError } from './errors.js';

export interface PeerLookup {
  deviceId: string;
  psk: Buffer;
}

export interface ResponderOptions<E> {
  /** The relay's static X25519 private key. */
  privateKey: Buffer;
  /** Synchronous; the app keeps a cache of device public keys. Undefined = unknown device. */
  lookupPeer: (publicKey: Buffer) => PeerLookup | undefined;
  timers?: Partial<TunnelTimers>;
  random?: RandomBytes;
  onEvent?: (e: ResponderEvent<E>) => void;
  /** Endpoint equality for roaming events; default Object.is (use string endpoints, or supply one). */
  sameEndpoint?: (a: E, b: E) => boolean;
  /** Transport AEAD (default node:crypto); e.g. @pocketproxy/tun nativeAead(). Same bytes on the wire. */
  aead?: AeadProvider;
}

export type PeerDownReason = 'dead' | 'expired' | 'removed';

export type ResponderEvent<E> =
  | { type: 'handshake'; deviceId: string; endpoint: E }
  | { type: 'peer_up'; deviceId: string; endpoint: E }
  | { type: 'rekeyed'; deviceId: string }
  | { type: 'endpoint_changed'; deviceId: string; from: E; to: E }
  | { type: 'peer_down'; deviceId: string; reason: PeerDownReason; silentMs: number };

export type ResponderReceive<E> =
  /** `publicKey`: for `unknown_peer`, the static key the initiation carried (authenticated by nothing yet). */
  | { kind: 'dropped'; reason: DropReason; deviceId?: string; error?: Error; publicKey?: Buffer }
  | { kind: 'reply'; frame: Buffer; endpoint: E; deviceId: string; lane: number }
  | { kind: 'keepalive'; deviceId: string }
  /** `lane`: the device's lane the frame came by (0 without lanes). */
  | { kind: 'packet'; deviceId: string; packet: Buffer; lane: number }
  | { kind: 'message'; deviceId: string; message: JsonMessage };

export interface Outbound<E> {
  endpoint: E;
  frame: Buffer;
  deviceId: string;
  /** The device's lane the frame goes by (absent: lane 0). */
  lane?: number;
  /** sendPacket: the lane slot the packet's flow hashes to (flowLane; `lane` is 0 when that lane cannot carry). */
  slot?: number;
}

/**
 * The sessions of one of a device's lanes (docs/protocol.md §3.1 "Lanes"): lane 0 is the ResponderPeer
 * itself, the others its `lanes`. Each lane has its own handshakes, endpoint and liveness.
 */
export class LaneSessions<E> {
  readonly lane: number;
  endpoint: E | undefined;
  current: TransportSession | undefined;
  previous: TransportSession | undefined;
  /** From the last handshake; becomes current when the first frame arrives on it (key confirmation). */
  next: TransportSession | undefined;
  lastTimestamp: Buffer | undefined;
  /** When the response to the pending handshake (`next`) left, by the app's clock (`replySent`). */
  replySentAt: number | undefined;
  lastRecvAt = 0;
  lastSentAt = 0;
  /** The current session's send counter as tick last saw it (frames a native seal path sent move it). */
  private sentSeen = 0;
  private sentSession: TransportSession | undefined;
  protected readonly owner: Responder<E>;

  constructor(owner: Responder<E>, lane: number) {
    this.owner = owner;
    this.lane = lane;
  }

  /** Seals an IP packet on this lane; null when it has no confirmed session. */
  sendPacket(packet: Buffer, now: number, out?: Buffer): Buffer | null {
    const s = this.current;
    if (!s || s.expired(now, this.owner.timers)) return null;
    this.lastSentAt = now;
    return s.seal(packet, out);
  }

  /** A confirmed, unexpired session and somewhere to send. */
  usable(now: number): boolean {
    return this.current !== undefined && this.endpoint !== undefined && !this.current.expired(now, this.owner.timers);
  }

  /** At a tick: frames sealed on the current session since the last tick (JS or native) count as sent now. */
  noteSends(now: number): void {
    const s = this.current;
    const sent = s?.sent ?? 0;
    const moved = s === this.sentSession && sent !== this.sentSeen;
    this.sentSession = s;
    this.sentSeen = sent;
    if (moved && now > this.lastSentAt) this.lastSentAt = now;
  }
}

/** One device as the responder sees it (and its lane 0). Hold on to it to send without a map lookup per packet. */
export class ResponderPeer<E> extends LaneSessions<E> {
  readonly deviceId: string;
  publicKey: Buffer;
  psk: Buffer;
  /**
   * The round trip over the device's link at its last handshake (ms): from the response leaving (the
   * app's `replySent`; without it, when the initiation was taken) to the device's first frame on the new
   * session, which it sends at once (§4). Undefined until a handshake was confirmed.
   */
  handshakeRttMs: number | undefined;
  up = false;
  /** The lanes the device said it holds (its last initiation); 1 for a device without lanes. */
  laneCount = 1;
  /** Lanes 1 .. laneCount-1 that handshook (lane 0 is this object). */
  readonly lanes = new Map<number, LaneSessions<E>>();

  constructor(owner: Responder<E>, deviceId: string, publicKey: Buffer, psk: Buffer) {
    super(owner, 0);
    this.deviceId = deviceId;
    this.publicKey = publicKey;
    this.psk = psk;
  }

  /**
   * The lane that carries the flows hashing to `slot` (flowLane over the device's lane count) now: that
   * lane, or lane 0 when it cannot (no session, expired, or the device is down).
   */
  laneForSlot(slot: number, now: number): LaneSessions<E> {
    if (slot === 0 || !this.up) return this;
    const l = this.lanes.get(slot);
    return l?.usable(now) ? l : this;
  }

  sendMessage(message: JsonMessage, now: number): Buffer | null {
    return this.sendPacket(encodeJsonMessage(message), now);
  }
}

/**
 * The lane (0 .. count-1) of an IPv4 packet's flow: a hash of its addresses, protocol and, for TCP and
 * UDP that is not a later fragment, its ports; lane 0 for any other protocol (ICMP: the answers to the
 * agent's liveness probes, which lane 0 sends and must hear). Symmetric (the same for both directions of
 * a flow): the agent's TUN steers the device's answers to the queue, hence the lane, its flow came in on by
 * the same hash (packages/tun native/lanes.cc). The native seal path (native/tun_queue.cc FlowLane)
 * computes the same.
 */
export function flowLane(p: Uint8Array, count: number): number {
  if (count < 2 || p.length < 20) return 0;
  const proto = p[9]!;
  if (proto !== 6 && proto !== 17) return 0;
  let h =
    (((p[12]! << 24) | (p[13]! << 16) | (p[14]! << 8) | p[15]!) ^
      ((p[16]! << 24) | (p[17]! << 16) | (p[18]! << 8) | p[19]!)) >>>
    0;
  h = (h ^ proto) >>> 0;
  const ihl = (p[0]! & 0x0f) * 4;
  const later = ((p[6]! & 0x1f) << 8) | p[7]!;
  if (later === 0 && ihl >= 20 && p.length >= ihl + 4)
    h = (h ^ (((p[ihl]! << 8) | p[ihl + 1]!) ^ ((p[ihl + 2]! << 8) | p[ihl + 3]!))) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return h % count;
}

export class Responder<E> {
  readonly timers: TunnelTimers;
  private readonly identity: StaticIdentity;
  private readonly lookupPeer: (publicKey: Buffer) => PeerLookup | undefined;
  private readonly random: RandomBytes;
  private readonly emit: (e: ResponderEvent<E>) => void;
  private readonly same: (a: E, b: E) => boolean;
  private readonly aead: AeadProvider | undefined;
  private readonly peers = new Map<string, ResponderPeer<E>>();
  private readonly byIndex = new Map<
    number,
    { peer: ResponderPeer<E>; lane: LaneSessions<E>; session: TransportSession }
  >();

  constructor(o: ResponderOptions<E>) {
    this.timers = resolveTimers(o.timers);
    this.identity = createIdentity(o.privateKey);
    this.lookupPeer = o.lookupPeer;
    this.random = o.random ?? defaultRandom;
    this.emit = o.onEvent ?? (() => {});
    this.same = o.sameEndpoint ?? Object.is;
    this.aead = o.aead;
  }

  get publicKey(): Buffer {
    return this.identity.publicKey;
  }

  /** Devices that currently have a confirmed session. */
  get connectedCount(): number {
    let n = 0;
    for (const p of this.peers.values()) if (p.up) n++;
    return n;
  }

  /**
   * The app sent the response `receive` returned for this device at `at` (its own clock): the handshake's
   * round trip then runs from there, so time the app spent between taking the initiation and sending
   * the answer (the rest of its batch, a cold start) is not counted as the device's link.
   */
  replySent(deviceId: string, at: number, lane = 0): void {
    const p = this.peers.get(deviceId);
    const l = lane === 0 ? p : p?.lanes.get(lane);
    if (l?.next) l.replySentAt = at;
  }

  peer(deviceId: string): ResponderPeer<E> | undefined {
    return this.peers.get(deviceId);
  }

  /** Handles one frame from `from`. Never throws on network input; `dropped` means send nothing. */
  receive(frame: Buffer, from: E, now: number): ResponderReceive<E> {
    if (frame.length < HEADER_LEN || frame[1] !== PROTOCOL_VERSION || frame[2] !== 0 || frame[3] !== 0)
      return DROP_MALFORMED;
    if (frame[0] === FRAME_TRANSPORT) return this.receiveTransport(frame, from, now);
    if (frame[0] === FRAME_INITIATION) return this.receiveInitiation(frame, from, now);
    return frame[0]! >= 1 && frame[0]! <= 3 ? { kind: 'dropped', reason: 'unexpected' } : DROP_MALFORMED;
  }

  /** Seals a packet to the device on its flow's lane (ResponderPeer.laneForSlot). */
  sendPacket(deviceId: string, packet: Buffer, now: number, out?: Buffer): Outbound<E> | null {
    const p = this.peers.get(deviceId);
    if (!p) return null;
    const slot = p.laneCount < 2 ? 0 : flowLane(packet, p.laneCount);
    const l = p.laneForSlot(slot, now);
    const frame = l.sendPacket(packet, now, out);
    return frame && l.endpoint !== undefined ? { endpoint: l.endpoint, frame, deviceId, lane: l.lane, slot } : null;
  }

  sendMessage(deviceId: string, message: JsonMessage, now: number): Outbound<E> | null {
    const p = this.peers.get(deviceId);
    const frame = p?.sendMessage(message, now);
    return p && frame && p.endpoint !== undefined ? { endpoint: p.endpoint, frame, deviceId } : null;
  }

  /** Timer work over all peers: expiry, dead-peer detection, keepalives to send. */
  tick(now: number): Outbound<E>[] {
    const out: Outbound<E>[] = [];
    for (const p of this.peers.values()) {
      const why = this.tickLane(p, p.deviceId, p.up, now, out);
      if (why) this.down(p, why, now);
      // The other lanes: the same timers, each on its own; a silent lane is dropped (its flows go by lane 0).
      for (const l of p.lanes.values())
        if (this.tickLane(l, p.deviceId, p.up && l.current !== undefined, now, out)) {
          l.current = this.drop(l.current);
          l.previous = this.drop(l.previous);
        }
    }
    return out;
  }

  /**
   * One lane's timers at a tick: its expired sessions go; a `live` lane counts the frames a native open path
   * authenticated (the app's UdpBatch open routes) as heard and the native seal path's as sent, gets its
   * keepalive when due, or is over (the reason returned).
   */
  private tickLane(
    l: LaneSessions<E>,
    deviceId: string,
    live: boolean,
    now: number,
    out: Outbound<E>[],
  ): PeerDownReason | undefined {
    const t = this.timers;
    if (l.previous?.expired(now, t)) l.previous = this.drop(l.previous);
    if (l.next?.expired(now, t)) l.next = this.drop(l.next);
    if (l.current?.expired(now, t)) l.current = this.drop(l.current);
    if (!live) return undefined;
    const heard = l.current?.nativeReceivedAt ?? 0;
    if (heard > l.lastRecvAt) l.lastRecvAt = heard;
    l.noteSends(now);
    if (!l.current) return 'expired';
    if (now - l.lastRecvAt >= t.deadAfterMs) return 'dead';
    if (now - l.lastSentAt >= t.keepaliveMs && l.endpoint !== undefined) {
      l.lastSentAt = now;
      out.push({
        endpoint: l.endpoint,
        frame: l.current.seal(EMPTY),
        deviceId,
        ...(l.lane === 0 ? {} : { lane: l.lane }),
      });
    }
    return undefined;
  }

  /** Forget a device's sessions (deleted, or key changed); its replay state is forgotten too. */
  removePeer(deviceId: string, now: number): void {
    const p = this.peers.get(deviceId);
    if (!p) return;
    if (p.up) this.down(p, 'removed', now);
    this.drop(p.next);
    this.dropLanes(p, 1);
    this.peers.delete(deviceId);
  }

  private receiveTransport(frame: Buffer, from: E, now: number): ResponderReceive<E> {
    if (frame.length < 16) return DROP_MALFORMED;
    const entry = this.byIndex.get(frame.readUInt32LE(4));
    if (!entry) return { kind: 'dropped', reason: 'unknown_index' };
    const { peer: p, lane: l, session: s } = entry;
    if (s.expired(now, this.timers)) return { kind: 'dropped', reason: 'expired', deviceId: p.deviceId };
    const pt = s.open(frame);
    if (typeof pt === 'string') return { kind: 'dropped', reason: pt, deviceId: p.deviceId };
    l.lastRecvAt = now;
    if (s === l.next) {
      // Key confirmation: the initiator used the new keys, so switch sending to them.
      if (l === p) p.handshakeRttMs = Math.max(0, now - (p.replySentAt ?? s.createdAt));
      l.replySentAt = undefined;
      this.drop(l.previous);
      l.previous = l.current;
      l.current = s;
      l.next = undefined;
      if (l.previous && l === p) this.emit({ type: 'rekeyed', deviceId: p.deviceId });
    }
    if (l !== p) {
      // Another lane: its own endpoint (its own socket on the device); the device's state is lane 0's.
      l.endpoint = from;
      if (l.lastSentAt === 0) l.lastSentAt = now;
      return this.delivered(p, pt, l.lane);
    }
    this.updateEndpoint(p, from);
    if (!p.up) {
      p.up = true;
      p.lastSentAt = now;
      this.emit({ type: 'peer_up', deviceId: p.deviceId, endpoint: from });
    }
    return this.delivered(p, pt, 0);
  }

  private delivered(p: ResponderPeer<E>, pt: Buffer, lane: number): ResponderReceive<E> {
    const d = deliver(pt);
    switch (d.kind) {
      case 'packet':
        return { kind: 'packet', deviceId: p.deviceId, packet: d.packet, lane };
      case 'keepalive':
        return { kind: 'keepalive', deviceId: p.deviceId };
      case 'message':
        return { kind: 'message', deviceId: p.deviceId, message: d.message };
      default:
        return { kind: 'dropped', reason: 'inner', deviceId: p.deviceId, error: d.error };
    }
  }

  private receiveInitiation(frame: Buffer, from: E, now: number): ResponderReceive<E> {
    let unknownKey: Buffer | undefined;
    const c = consumeInitiation(this.identity, frame, (pub) => {
      const p = this.lookupPeer(pub);
      if (p === undefined) unknownKey = pub;
      return p;
    });
    // An unknown key is returned so the app can keep the initiation and answer it once it learns the key
    // (the same frame handed to receive() again later is judged afresh: MAC1, key, timestamp).
    if (c === 'unknown_peer') return { kind: 'dropped', reason: c, publicKey: unknownKey };
    if (typeof c === 'string') return { kind: 'dropped', reason: c };
    const info = c.peer;
    if (!info || typeof info.deviceId !== 'string' || !Buffer.isBuffer(info.psk) || info.psk.length !== KEY_LEN) {
      throw tunnelError('PP_ERR_TUNNEL_CONFIG_INVALID', {
        reason: 'lookupPeer must return {deviceId: string, psk: 32-byte Buffer}',
      });
    }
    let p = this.peers.get(info.deviceId);
    if (!p) {
      p = new ResponderPeer<E>(this, info.deviceId, c.initiatorStatic, info.psk);
      this.peers.set(info.deviceId, p);
    } else if (!p.publicKey.equals(c.initiatorStatic)) {
      // The device was re-paired with a new key: its old timestamps mean nothing for the new key.
      p.publicKey = c.initiatorStatic;
      p.lastTimestamp = undefined;
      this.dropLanes(p, 1);
    }
    // Each lane's handshakes are ordered by their own timestamps (a device's lanes run side by side).
    let l: LaneSessions<E> | undefined = c.lane.index === 0 ? p : p.lanes.get(c.lane.index);
    if (l?.lastTimestamp && Buffer.compare(c.timestamp, l.lastTimestamp) <= 0)
      return { kind: 'dropped', reason: 'replayed_initiation', deviceId: p.deviceId };
    if (!l) {
      l = new LaneSessions<E>(this, c.lane.index);
      p.lanes.set(c.lane.index, l);
    }
    // The device's lane count is what its last initiation said: lanes beyond it are gone.
    p.laneCount = c.lane.count;
    this.dropLanes(p, c.lane.count);
    l.lastTimestamp = c.timestamp;
    p.psk = info.psk;
    const localIndex = freshIndex(this.random, (i) => this.byIndex.has(i));
    const { message, keys } = createResponse({
      consumed: c,
      psk: info.psk,
      senderIndex: localIndex,
      ephemeralPrivateKey: this.random(KEY_LEN),
    });
    this.drop(l.next);
    l.replySentAt = undefined;
    l.next = new TransportSession({
      localIndex,
      remoteIndex: c.initiatorIndex,
      keys,
      createdAt: now,
      isInitiator: false,
      aead: this.aead,
    });
    this.byIndex.set(localIndex, { peer: p, lane: l, session: l.next });
    l.lastRecvAt = now;
    if (l !== p) {
      l.endpoint = from;
      return { kind: 'reply', frame: message, endpoint: from, deviceId: p.deviceId, lane: l.lane };
    }
    this.updateEndpoint(p, from);
    this.emit({ type: 'handshake', deviceId: p.deviceId, endpoint: from });
    return { kind: 'reply', frame: message, endpoint: from, deviceId: p.deviceId, lane: 0 };
  }

  /** Forgets the device's lanes from `from` on (1: every lane but lane 0). */
  private dropLanes(p: ResponderPeer<E>, from: number): void {
    for (const [k, l] of p.lanes) {
      if (k < from) continue;
      this.drop(l.current);
      this.drop(l.previous);
      this.drop(l.next);
      p.lanes.delete(k);
    }
  }

  private updateEndpoint(p: ResponderPeer<E>, to: E): void {
    const was = p.endpoint;
    if (was !== undefined && this.same(was, to)) return;
    p.endpoint = to;
    if (was !== undefined) this.emit({ type: 'endpoint_changed', deviceId: p.deviceId, from: was, to });
  }

  private down(p: ResponderPeer<E>, reason: PeerDownReason, now: number): void {
    p.up = false;
    p.current = this.drop(p.current);
    p.previous = this.drop(p.previous);
    for (const l of p.lanes.values()) {
      l.current = this.drop(l.current);
      l.previous = this.drop(l.previous);
    }
    this.emit({ type: 'peer_down', deviceId: p.deviceId, reason, silentMs: now - p.lastRecvAt });
  }

  private drop(s: TransportSession | undefined): undefined {
    if (s) this.byIndex.delete(s.localIndex);
    return undefined;
  }
}

const EMPTY = Buffer.alloc(0);
const DROP_MALFORMED = Object.freeze({ kind: 'dropped', reason: 'malformed' }) as {
  kind: 'dropped';
  reason: DropReason;
};

export function createResponder<E = string>(o: ResponderOptions<E>): Responder<E> {
  return new Responder<E>(o);
}
