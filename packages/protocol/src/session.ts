// One transport session: the keys from one handshake, the send counter and the replay window.
// The hot path (seal/open) avoids allocation where node:crypto lets it: the header is written
// straight into the caller's buffer and the nonce buffer is reused. node:crypto has no update-into
// API, so the cipher object and its output chunk are the only per-packet garbage.
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { COUNTER_LIMIT, FRAME_TRANSPORT, PROTOCOL_VERSION, TAG_LEN, TRANSPORT_HEADER_LEN, TRANSPORT_MIN_LEN, TRANSPORT_OVERHEAD, MAX_FRAME_LEN } from './constants.js';
import { tunnelError } from './errors.js';
import type { TransportKeys } from './handshake.js';
import { readCounter, writeCounter } from './messages.js';
import { ReplayWindow } from './replay.js';
import type { TunnelTimers } from './timers.js';

const AEAD = 'chacha20-poly1305';
const AEAD_OPTS = { authTagLength: TAG_LEN } as const;

export type OpenFailure = 'malformed' | 'replay' | 'decrypt';

export class TransportSession {
  readonly localIndex: number;
  readonly remoteIndex: number;
  readonly createdAt: number;
  readonly isInitiator: boolean;
  private readonly sendKey: KeyObject;
  private readonly recvKey: KeyObject;
  private readonly sendNonce = Buffer.alloc(12);
  private readonly recvNonce = Buffer.alloc(12);
  private readonly replay = new ReplayWindow();
  private nextCounter = 0;
  /** Frames authenticated on this session. */
  received = 0;

  constructor(o: { localIndex: number; remoteIndex: number; keys: TransportKeys; createdAt: number; isInitiator: boolean }) {
    this.localIndex = o.localIndex;
    this.remoteIndex = o.remoteIndex;
    this.createdAt = o.createdAt;
    this.isInitiator = o.isInitiator;
    this.sendKey = createSecretKey(o.keys.sendKey);
    this.recvKey = createSecretKey(o.keys.recvKey);
  }

  get sent(): number {
    return this.nextCounter;
  }

  /** Highest counter received so far (-1 before any). */
  get highestReceived(): number {
    return this.replay.greatest;
  }

  /**
   * Encrypts `plaintext` (empty = keepalive) into a transport frame. Writes into `out` when given
   * (must hold plaintext.length + 32 bytes) and returns the view of the written frame.
   */
  seal(plaintext: Buffer, out?: Buffer): Buffer {
    const len = plaintext.length + TRANSPORT_OVERHEAD;
    if (len > MAX_FRAME_LEN) throw tunnelError('PP_ERR_TUNNEL_MESSAGE_TOO_LARGE', { what: 'transport frame', size: len, limit: MAX_FRAME_LEN });
    const counter = this.nextCounter;
    if (counter >= COUNTER_LIMIT) throw tunnelError('PP_ERR_TUNNEL_COUNTER_EXHAUSTED');
    this.nextCounter = counter + 1;
    let buf: Buffer;
    if (out === undefined) buf = Buffer.allocUnsafe(len);
    else if (out.length >= len) buf = out;
    else throw tunnelError('PP_ERR_TUNNEL_MESSAGE_TOO_LARGE', { what: 'transport frame', size: len, limit: out.length });
    buf[0] = FRAME_TRANSPORT;
    buf[1] = PROTOCOL_VERSION;
    buf[2] = 0;
    buf[3] = 0;
    buf.writeUInt32LE(this.remoteIndex, 4);
    writeCounter(buf, 8, counter);
    // Noise nonce = 4 zero bytes || the same 8 counter bytes as in the header.
    buf.copy(this.sendNonce, 4, 8, 16);
    const c = createCipheriv(AEAD, this.sendKey, this.sendNonce, AEAD_OPTS);
    if (plaintext.length > 0) c.update(plaintext).copy(buf, TRANSPORT_HEADER_LEN);
    c.final();
    c.getAuthTag().copy(buf, TRANSPORT_HEADER_LEN + plaintext.length);
    return len === buf.length ? buf : buf.subarray(0, len);
  }

  /**
   * Authenticates and decrypts a transport frame addressed to this session (the caller matched
   * the receiver index). Returns the plaintext, or why it was refused. Never throws.
   */
  open(frame: Buffer): Buffer | OpenFailure {
    if (frame.length < TRANSPORT_MIN_LEN || frame.length > MAX_FRAME_LEN) return 'malformed';
    const counter = readCounter(frame, 8);
    if (!this.replay.check(counter)) return 'replay';
    frame.copy(this.recvNonce, 4, 8, 16);
    const tagAt = frame.length - TAG_LEN;
    const d = createDecipheriv(AEAD, this.recvKey, this.recvNonce, AEAD_OPTS);
    d.setAuthTag(frame.subarray(tagAt));
    const pt = tagAt > TRANSPORT_HEADER_LEN ? d.update(frame.subarray(TRANSPORT_HEADER_LEN, tagAt)) : EMPTY;
    try {
      d.final();
    } catch {
      return 'decrypt';
    }
    this.replay.mark(counter);
    this.received++;
    return pt;
  }

  /** Rekey hint: the initiator should start a new handshake (time or message count). */
  needsRekey(now: number, t: TunnelTimers): boolean {
    return now - this.createdAt >= t.rekeyAfterMs || this.nextCounter >= t.rekeyAfterMessages || this.replay.greatest >= t.rekeyAfterMessages;
  }

  /** Past its hard limits: must not be used in either direction. */
  expired(now: number, t: TunnelTimers): boolean {
    return now - this.createdAt >= t.rejectAfterMs || this.nextCounter >= t.rejectAfterMessages || this.replay.greatest >= t.rejectAfterMessages;
  }
}

const EMPTY = Buffer.alloc(0);
