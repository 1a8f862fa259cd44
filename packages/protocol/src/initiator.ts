// The device side (initiator) of the tunnel, sans-IO: the agent feeds it received frames and the
// time, and sends whatever frames it returns to the relay over UDP or the TCP fallback.
//
//   agent TUN/commands -> sendPacket/sendMessage -> frame -> socket -> relay
//   relay -> socket -> receive(frame) -> packet | message | keepalive | established
//   every ~1 s: tick(now) -> handshakes, retries, keepalives, dead-relay detection
//
// The initiator alone starts handshakes (first connect, retry every rekeyTimeoutMs — sooner at first
// while it has no session, timers.connectRetryMs —, rekey by age or message count, after the relay
// went silent). Roaming needs nothing here: the relay follows
// whatever address the next authenticated frame comes from.
import { type TunnelTimers, resolveTimers } from './timers.js';
import {
  consumeResponse,
  createIdentity,
  createInitiation,
  isLane,
  type InitiatorHandshake,
  type Lane,
  type StaticIdentity,
} from './handshake.js';
import { TransportSession } from './session.js';
import type { AeadProvider } from './aead.js';
import { tai64n, nextTimestamp } from './timestamp.js';
import { encodeJsonMessage, type JsonMessage } from './inner.js';
import { defaultRandom, deliver, freshIndex, type DropReason, type RandomBytes } from './peer-common.js';
import { FRAME_RESPONSE, FRAME_TRANSPORT, HEADER_LEN, KEY_LEN, PROTOCOL_VERSION } from './constants.js';
import { tunnelError } from './errors.js';

export interface InitiatorOptions {
  /** The device's static X25519 private key (32 bytes). */
  privateKey: Buffer;
  /** The relay's static public key, learned at pairing. */
  responderPublicKey: Buffer;
  /** The 32-byte pre-shared key from pairing. */
  psk: Buffer;
  timers?: Partial<TunnelTimers>;
  /** Frames kept while no session exists (oldest dropped first). Default 256. */
  maxQueue?: number;
  random?: RandomBytes;
  onEvent?: (e: InitiatorEvent) => void;
  /** Transport AEAD (default node:crypto); e.g. @pocketproxy/tun nativeAead(). Same bytes on the wire. */
  aead?: AeadProvider;
  /**
   * One of the device's lanes (docs/protocol.md §3.1 "Lanes"): each lane is an Initiator of its own with
   * the same keys, its own socket and sessions. Absent: lane 0 of 1 (classic initiations).
   */
  lane?: Lane;
}

export type HandshakeReason = 'connect' | 'retry' | 'rekey' | 'dead' | 'expired';

export type InitiatorEvent =
  | { type: 'handshake_sent'; reason: HandshakeReason; attempt: number }
  | { type: 'established'; rekey: boolean; localIndex: number; handshakeMs: number }
  /** `unsentMs`: nothing was sent for that long (two keepalive periods or more: the process was frozen). */
  | { type: 'peer_dead'; silentMs: number; unsentMs?: number }
  | { type: 'session_expired' }
  | { type: 'queue_overflow'; dropped: number };

export type InitiatorReceive =
  | { kind: 'dropped'; reason: DropReason; error?: Error }
  | { kind: 'established'; send: Buffer[] }
  | { kind: 'keepalive' }
  | { kind: 'packet'; packet: Buffer }
  | { kind: 'message'; message: JsonMessage };

export type InitiatorState = 'connecting' | 'established';

interface Pending {
  hs: InitiatorHandshake;
  sentAt: number;
  startedAt: number;
  attempt: number;
}

export class Initiator {
  readonly timers: TunnelTimers;
  private readonly identity: StaticIdentity;
  private readonly responderPublicKey: Buffer;
  private readonly psk: Buffer;
  private readonly random: RandomBytes;
  private readonly emit: (e: InitiatorEvent) => void;
  private readonly maxQueue: number;
  private readonly aead: AeadProvider | undefined;
  readonly lane: Lane | undefined;
  private current: TransportSession | undefined;
  private previous: TransportSession | undefined;
  private pending: Pending | undefined;
  private lastTimestamp: Buffer | undefined;
  private queue: Buffer[] = [];
  private lastSentAt = 0;
  private lastRecvAt = 0;
  private everEstablished = false;

  constructor(o: InitiatorOptions) {
    if (o.psk.length !== KEY_LEN)
      throw tunnelError('PP_ERR_TUNNEL_KEY_INVALID', { what: 'psk', reason: `need ${KEY_LEN} bytes` });
    if (o.responderPublicKey.length !== KEY_LEN)
      throw tunnelError('PP_ERR_TUNNEL_KEY_INVALID', { what: 'responder public key', reason: `need ${KEY_LEN} bytes` });
    this.timers = resolveTimers(o.timers);
    this.identity = createIdentity(o.privateKey);
    this.responderPublicKey = Buffer.from(o.responderPublicKey);
    this.psk = Buffer.from(o.psk);
    this.random = o.random ?? defaultRandom;
    this.emit = o.onEvent ?? (() => {});
    this.maxQueue = o.maxQueue ?? 256;
    this.aead = o.aead;
    if (o.lane && !isLane(o.lane))
      throw tunnelError('PP_ERR_TUNNEL_CONFIG_INVALID', { reason: 'lane must be 0 <= index < count <= MAX_LANES' });
    this.lane = o.lane;
  }

  get publicKey(): Buffer {
    return this.identity.publicKey;
  }

  get state(): InitiatorState {
    return this.current ? 'established' : 'connecting';
  }

  /** The session data is sent on (for stats/tests). */
  get session(): TransportSession | undefined {
    return this.current;
  }

  /** Timer work: returns frames to send now. Call at least once a second, and once at start. */
  tick(now: number): Buffer[] {
    const out: Buffer[] = [];
    const t = this.timers;
    if (this.previous?.expired(now, t)) this.previous = undefined;
    if (this.current?.expired(now, t)) {
      this.current = undefined;
      this.emit({ type: 'session_expired' });
    }
    let reason: HandshakeReason | undefined;
    // Frames a native open path authenticated on the session (the agent's open route) count as heard.
    const heard = this.current?.nativeReceivedAt ?? 0;
    if (heard > this.lastRecvAt) this.lastRecvAt = heard;
    // Dead: the relay silent for dead-after; or this side silent for two keepalive periods, which only a
    // frozen process is (a phone's doze, SIGSTOP, a paused VM: a keepalive goes every 10 s otherwise), while
    // a relay may drop a silent device from 25 s on (the reference relay does, apps/server tunnel.ts): a
    // session it dropped would only leave a probe unanswered, so a new handshake goes at once.
    const unsentMs = now - this.lastSentAt;
    const frozen = unsentMs >= 2 * t.keepaliveMs;
    if (this.current && (now - this.lastRecvAt >= t.deadAfterMs || frozen)) {
      this.emit({ type: 'peer_dead', silentMs: now - this.lastRecvAt, ...(frozen ? { unsentMs } : {}) });
      this.current = this.previous = undefined;
      this.pending = undefined;
      reason = 'dead';
    } else if (!this.current) {
      reason = this.everEstablished ? 'expired' : 'connect';
    } else if (this.current.needsRekey(now, t)) {
      reason = 'rekey';
    }
    if (reason) {
      if (!this.pending) out.push(this.startHandshake(now, reason, 1, now));
      else if (now - this.pending.sentAt >= this.retryAfterMs(this.pending.attempt))
        out.push(this.startHandshake(now, 'retry', this.pending.attempt + 1, this.pending.startedAt));
    }
    if (this.current && now - this.lastSentAt >= t.keepaliveMs) out.push(this.sealOn(this.current, EMPTY, now));
    return out;
  }

  /** Handles one frame from the relay. Never throws on network input. */
  receive(frame: Buffer, now: number): InitiatorReceive {
    if (frame.length < HEADER_LEN || frame[1] !== PROTOCOL_VERSION || frame[2] !== 0 || frame[3] !== 0)
      return DROP_MALFORMED;
    if (frame[0] === FRAME_TRANSPORT) {
      if (frame.length < 16) return DROP_MALFORMED;
      const idx = frame.readUInt32LE(4);
      const s =
        this.current?.localIndex === idx ? this.current : this.previous?.localIndex === idx ? this.previous : undefined;
      if (!s) return { kind: 'dropped', reason: 'unknown_index' };
      if (s.expired(now, this.timers)) return { kind: 'dropped', reason: 'expired' };
      const pt = s.open(frame);
      if (typeof pt === 'string') return { kind: 'dropped', reason: pt === 'malformed' ? 'malformed' : pt };
      this.lastRecvAt = now;
      return deliver(pt);
    }
    if (frame[0] === FRAME_RESPONSE) {
      const p = this.pending;
      if (!p) return { kind: 'dropped', reason: 'unexpected' };
      const r = consumeResponse(p.hs, this.identity.mac1Key, this.psk, frame);
      if (typeof r === 'string') return { kind: 'dropped', reason: r === 'unknown_index' ? 'unknown_index' : r };
      const rekey = this.current !== undefined;
      this.previous = this.current;
      this.current = new TransportSession({
        localIndex: p.hs.senderIndex,
        remoteIndex: r.responderIndex,
        keys: r.keys,
        createdAt: now,
        isInitiator: true,
        aead: this.aead,
      });
      this.pending = undefined;
      this.everEstablished = true;
      this.lastRecvAt = now;
      this.emit({ type: 'established', rekey, localIndex: p.hs.senderIndex, handshakeMs: now - p.startedAt });
      // The responder only starts sending on the new keys once it sees a frame on them: flush the
      // queue, or send a keepalive, to confirm at once.
      const send = this.queue.map((pt) => this.sealOn(this.current!, pt, now));
      this.queue = [];
      if (send.length === 0) send.push(this.sealOn(this.current, EMPTY, now));
      return { kind: 'established', send };
    }
    return this.isKnownType(frame[0]!) ? { kind: 'dropped', reason: 'unexpected' } : DROP_MALFORMED;
  }

  /**
   * Seals an IP packet. Returns the frame, or null when there is no session yet (the packet is
   * queued and goes out when the handshake completes). `out` must hold packet.length + 32 bytes;
   * `packet` may be `out.subarray(16)` (sealing in place).
   */
  sendPacket(packet: Buffer, now: number, out?: Buffer): Buffer | null {
    const s = this.current;
    if (s && !s.expired(now, this.timers)) return this.sealOn(s, packet, now, out);
    this.enqueue(Buffer.from(packet));
    return null;
  }

  /** Seals a command / ack / control message; queued like packets when there is no session. */
  sendMessage(message: JsonMessage, now: number): Buffer | null {
    const pt = encodeJsonMessage(message);
    const s = this.current;
    if (s && !s.expired(now, this.timers)) return this.sealOn(s, pt, now);
    this.enqueue(pt);
    return null;
  }

  /**
   * Frames of the current session were sent without sendPacket (a native seal path sealing from the
   * session's sendState): as of `now` nothing needs a keepalive. Call it before tick.
   */
  noteSent(now: number): void {
    if (this.current && now > this.lastSentAt) this.lastSentAt = now;
  }

  /** Forgets all sessions (e.g. the agent switches relays); the next tick handshakes again. */
  reset(): void {
    this.current = this.previous = this.pending = undefined;
    this.queue = [];
  }

  private enqueue(pt: Buffer): void {
    this.queue.push(pt);
    if (this.queue.length > this.maxQueue) {
      this.queue.shift();
      this.emit({ type: 'queue_overflow', dropped: 1 });
    }
  }

  private sealOn(s: TransportSession, pt: Buffer, now: number, out?: Buffer): Buffer {
    this.lastSentAt = now;
    return s.seal(pt, out);
  }

  private startHandshake(now: number, reason: HandshakeReason, attempt: number, startedAt: number): Buffer {
    let ts = tai64n(now);
    // Strictly increasing even within one millisecond or if the clock stepped back a little.
    if (this.lastTimestamp && Buffer.compare(ts, this.lastTimestamp) <= 0) ts = nextTimestamp(this.lastTimestamp);
    this.lastTimestamp = ts;
    const senderIndex = freshIndex(
      this.random,
      (i) => i === this.current?.localIndex || i === this.previous?.localIndex,
    );
    const { message, state } = createInitiation({
      initiator: this.identity,
      responderPublicKey: this.responderPublicKey,
      senderIndex,
      timestamp: ts,
      ephemeralPrivateKey: this.random(KEY_LEN),
      lane: this.lane,
    });
    this.pending = { hs: state, sentAt: now, startedAt, attempt };
    this.emit({ type: 'handshake_sent', reason, attempt });
    return message;
  }

  /** How long the initiation of `attempt` (1 = first of its streak) waits for an answer before the next. */
  retryAfterMs(attempt: number): number {
    const fast = this.timers.connectRetryMs;
    // Fast retries only without a session: nothing is flowing, and the relay answers at once when it knows us.
    return !this.current && attempt <= fast.length ? fast[attempt - 1]! : this.timers.rekeyTimeoutMs;
  }

  private isKnownType(t: number): boolean {
    return t >= 1 && t <= 4;
  }
}

const EMPTY = Buffer.alloc(0);
const DROP_MALFORMED: InitiatorReceive = Object.freeze({ kind: 'dropped', reason: 'malformed' }) as InitiatorReceive;

export function createInitiator(o: InitiatorOptions): Initiator {
  return new Initiator(o);
}
