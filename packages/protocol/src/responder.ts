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
  | { kind: 'reply'; frame: Buffer; endpoint: E; deviceId: string }
  | { kind: 'keepalive'; deviceId: string }
  | { kind: 'packet'; deviceId: string; packet: Buffer }
  | { kind: 'message'; deviceId: string; message: JsonMessage };

export interface Outbound<E> {
  endpoint: E;
  frame: Buffer;
  deviceId: string;
}

/** One device as the responder sees it. Hold on to it to send without a map lookup per packet. */
export class ResponderPeer<E> {
  readonly deviceId: string;
  publicKey: Buffer;
  psk: Buffer;
  endpoint: E | undefined;
  current: TransportSession | undefined;
  previous: TransportSession | undefined;
  /** From the last handshake; becomes current when the first frame arrives on it (key confirmation). */
  next: TransportSession | undefined;
  lastTimestamp: Buffer | undefined;
  /**
   * The round trip over the device's link at its last handshake (ms): from the response leaving (the
   * app's `replySent`; without it, when the initiation was taken) to the device's first frame on the new
   * session, which it sends at once (§4). Undefined until a handshake was confirmed.
   */
  handshakeRttMs: number | undefined;
  /** When the response to the pending handshake (`next`) left, by the app's clock (`replySent`). */
  replySentAt: number | undefined;
  lastRecvAt = 0;
  lastSentAt = 0;
  /** The current session's send counter as tick last saw it (frames a native seal path sent move it). */
  private sentSeen = 0;
  private sentSession: TransportSession | undefined;
  up = false;
  private readonly owner: Responder<E>;

  constructor(owner: Responder<E>, deviceId: string, publicKey: Buffer, psk: Buffer) {
    this.owner = owner;
    this.deviceId = deviceId;
    this.publicKey = publicKey;
    this.psk = psk;
  }

  /** Seals an IP packet to the device; null when it has no confirmed session (it is offline). */
  sendPacket(packet: Buffer, now: number, out?: Buffer): Buffer | null {
    const s = this.current;
    if (!s || s.expired(now, this.owner.timers)) return null;
    this.lastSentAt = now;
    return s.seal(packet, out);
  }

  sendMessage(message: JsonMessage, now: number): Buffer | null {
    return this.sendPacket(encodeJsonMessage(message), now);
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

export class Responder<E> {
  readonly timers: TunnelTimers;
  private readonly identity: StaticIdentity;
  private readonly lookupPeer: (publicKey: Buffer) => PeerLookup | undefined;
  private readonly random: RandomBytes;
  private readonly emit: (e: ResponderEvent<E>) => void;
  private readonly same: (a: E, b: E) => boolean;
  private readonly aead: AeadProvider | undefined;
  private readonly peers = new Map<string, ResponderPeer<E>>();
  private readonly byIndex = new Map<number, { peer: ResponderPeer<E>; session: TransportSession }>();

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
  replySent(deviceId: string, at: number): void {
    const p = this.peers.get(deviceId);
    if (p?.next) p.replySentAt = at;
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

  sendPacket(deviceId: string, packet: Buffer, now: number, out?: Buffer): Outbound<E> | null {
    const p = this.peers.get(deviceId);
    const frame = p?.sendPacket(packet, now, out);
    return p && frame && p.endpoint !== undefined ? { endpoint: p.endpoint, frame, deviceId } : null;
  }

  sendMessage(deviceId: string, message: JsonMessage, now: number): Outbound<E> | null {
    const p = this.peers.get(deviceId);
    const frame = p?.sendMessage(message, now);
    return p && frame && p.endpoint !== undefined ? { endpoint: p.endpoint, frame, deviceId } : null;
  }

  /** Timer work over all peers: expiry, dead-peer detection, keepalives to send. */
  tick(now: number): Outbound<E>[] {
    const out: Outbound<E>[] = [];
    const t = this.timers;
    for (const p of this.peers.values()) {
      if (p.previous?.expired(now, t)) p.previous = this.drop(p.previous);
      if (p.next?.expired(now, t)) p.next = this.drop(p.next);
      if (p.current?.expired(now, t)) p.current = this.drop(p.current);
      if (!p.up) continue;
      // Frames a native open path authenticated (the app's UdpBatch open routes) count as heard.
      const heard = p.current?.nativeReceivedAt ?? 0;
      if (heard > p.lastRecvAt) p.lastRecvAt = heard;
      p.noteSends(now);
      if (!p.current) this.down(p, 'expired', now);
      else if (now - p.lastRecvAt >= t.deadAfterMs) this.down(p, 'dead', now);
      else if (now - p.lastSentAt >= t.keepaliveMs && p.endpoint !== undefined) {
        p.lastSentAt = now;
        out.push({ endpoint: p.endpoint, frame: p.current.seal(EMPTY), deviceId: p.deviceId });
      }
    }
    return out;
  }

  /** Forget a device's sessions (deleted, or key changed); its replay state is forgotten too. */
  removePeer(deviceId: string, now: number): void {
    const p = this.peers.get(deviceId);
    if (!p) return;
    if (p.up) this.down(p, 'removed', now);
    this.drop(p.next);
    this.peers.delete(deviceId);
  }

  private receiveTransport(frame: Buffer, from: E, now: number): ResponderReceive<E> {
    if (frame.length < 16) return DROP_MALFORMED;
    const entry = this.byIndex.get(frame.readUInt32LE(4));
    if (!entry) return { kind: 'dropped', reason: 'unknown_index' };
    const { peer: p, session: s } = entry;
    if (s.expired(now, this.timers)) return { kind: 'dropped', reason: 'expired', deviceId: p.deviceId };
    const pt = s.open(frame);
    if (typeof pt === 'string') return { kind: 'dropped', reason: pt, deviceId: p.deviceId };
    p.lastRecvAt = now;
    if (s === p.next) {
      // Key confirmation: the initiator used the new keys, so switch sending to them.
      p.handshakeRttMs = Math.max(0, now - (p.replySentAt ?? s.createdAt));
      p.replySentAt = undefined;
      this.drop(p.previous);
      p.previous = p.current;
      p.current = s;
      p.next = undefined;
      if (p.previous) this.emit({ type: 'rekeyed', deviceId: p.deviceId });
    }
    this.updateEndpoint(p, from);
    if (!p.up) {
      p.up = true;
      p.lastSentAt = now;
      this.emit({ type: 'peer_up', deviceId: p.deviceId, endpoint: from });
    }
    const d = deliver(pt);
    switch (d.kind) {
      case 'packet':
        return { kind: 'packet', deviceId: p.deviceId, packet: d.packet };
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
    }
    if (p.lastTimestamp && Buffer.compare(c.timestamp, p.lastTimestamp) <= 0)
      return { kind: 'dropped', reason: 'replayed_initiation', deviceId: p.deviceId };
    p.lastTimestamp = c.timestamp;
    p.psk = info.psk;
    const localIndex = freshIndex(this.random, (i) => this.byIndex.has(i));
    const { message, keys } = createResponse({
      consumed: c,
      psk: info.psk,
      senderIndex: localIndex,
      ephemeralPrivateKey: this.random(KEY_LEN),
    });
    this.drop(p.next);
    p.replySentAt = undefined;
    p.next = new TransportSession({
      localIndex,
      remoteIndex: c.initiatorIndex,
      keys,
      createdAt: now,
      isInitiator: false,
      aead: this.aead,
    });
    this.byIndex.set(localIndex, { peer: p, session: p.next });
    p.lastRecvAt = now;
    this.updateEndpoint(p, from);
    this.emit({ type: 'handshake', deviceId: p.deviceId, endpoint: from });
    return { kind: 'reply', frame: message, endpoint: from, deviceId: p.deviceId };
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
