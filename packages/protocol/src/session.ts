// One transport session: the keys from one handshake, the send counter and the replay window.
// The AEAD is injected (`aead`, default node:crypto — see aead.ts): with node:crypto the cipher
// object is the per-packet garbage; a native provider (@pocketproxy/tun nativeAead) reuses a keyed
// context and writes straight into the caller's buffer. Same bytes on the wire either way.
// The header is always written straight into the caller's buffer.
import {
  COUNTER_LIMIT,
  FRAME_TRANSPORT,
  PROTOCOL_VERSION,
  TRANSPORT_HEADER_LEN,
  TRANSPORT_MIN_LEN,
  TRANSPORT_OVERHEAD,
  MAX_FRAME_LEN,
  MAX_PLAINTEXT_LEN,
} from './constants.js';
import { tunnelError } from './errors.js';
import type { TransportKeys } from './handshake.js';
import { readCounter, writeCounter } from './messages.js';
import { ReplayWindow } from './replay.js';
import type { TunnelTimers } from './timers.js';
import { nodeAead, type AeadKey, type AeadProvider } from './aead.js';

export type OpenFailure = 'malformed' | 'replay' | 'decrypt';

/** Per-frame results of openBatch: a plaintext length (>= 0) or one of these. */
export const OPEN_MALFORMED = -1;
export const OPEN_REPLAY = -2;
export const OPEN_DECRYPT = -3;

/** Packets held in one buffer: packet i is data[offsets[i], offsets[i+1]) (the TUN batch shape). */
export interface ByteBatch {
  data: Uint8Array;
  offsets: Uint32Array | readonly number[];
  count: number;
}

export class TransportSession {
  readonly localIndex: number;
  readonly remoteIndex: number;
  readonly createdAt: number;
  readonly isInitiator: boolean;
  /** The AEAD implementation in use ('node:crypto' unless a provider was injected). */
  readonly aeadName: string;
  private readonly sendKey: AeadKey;
  private readonly recvKey: AeadKey;
  private counters: Float64Array | undefined;
  /**
   * What receiving shares with a native open path (receiveState): [0] the replay window's highest
   * counter, [1] frames authenticated, [2] when the native path last authenticated one (ms, its
   * clock is Date.now; 0 before any). The replay bitmap is shared too.
   */
  private readonly recvCell = new Float64Array(3);
  private readonly replay = new ReplayWindow(this.recvCell);
  /**
   * The send counter, in a cell a native send path may share (sendState): whoever seals takes the
   * value and stores value + 1, on one thread, so no counter (nonce) is used twice.
   */
  private readonly counterCell = new Float64Array(1);
  private get nextCounter(): number {
    return this.counterCell[0]!;
  }
  private set nextCounter(v: number) {
    this.counterCell[0] = v;
  }
  /** Frames authenticated on this session (by JS or a native open path). */
  get received(): number {
    return this.recvCell[1]!;
  }

  /** When a native open path last authenticated a frame on this session (Date.now ms; 0: never). */
  get nativeReceivedAt(): number {
    return this.recvCell[2]!;
  }

  constructor(o: {
    localIndex: number;
    remoteIndex: number;
    keys: TransportKeys;
    createdAt: number;
    isInitiator: boolean;
    aead?: AeadProvider;
  }) {
    this.localIndex = o.localIndex;
    this.remoteIndex = o.remoteIndex;
    this.createdAt = o.createdAt;
    this.isInitiator = o.isInitiator;
    const aead = o.aead ?? nodeAead;
    this.aeadName = aead.name;
    this.sendKey = aead.key(o.keys.sendKey);
    this.recvKey = aead.key(o.keys.recvKey);
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
    if (len > MAX_FRAME_LEN)
      throw tunnelError('PP_ERR_TUNNEL_MESSAGE_TOO_LARGE', {
        what: 'transport frame',
        size: len,
        limit: MAX_FRAME_LEN,
      });
    const counter = this.nextCounter;
    if (counter >= COUNTER_LIMIT) throw tunnelError('PP_ERR_TUNNEL_COUNTER_EXHAUSTED');
    this.nextCounter = counter + 1;
    let buf: Buffer;
    if (out === undefined) buf = Buffer.allocUnsafe(len);
    else if (out.length >= len) buf = out;
    else
      throw tunnelError('PP_ERR_TUNNEL_MESSAGE_TOO_LARGE', { what: 'transport frame', size: len, limit: out.length });
    writeHeader(buf, 0, this.remoteIndex, counter);
    this.sendKey.seal(counter, plaintext, buf, TRANSPORT_HEADER_LEN);
    return len === buf.length ? buf : buf.subarray(0, len);
  }

  /**
   * Authenticates and decrypts a transport frame addressed to this session (the caller matched
   * the receiver index). Returns the plaintext, or why it was refused. Never throws on bad input.
   * The plaintext goes into `out` when given (it may be `frame.subarray(16)`: decrypt in place —
   * the frame's bytes are then overwritten, with zeros when it does not authenticate), else into
   * a new buffer.
   */
  open(frame: Buffer, out?: Buffer): Buffer | OpenFailure {
    if (frame.length < TRANSPORT_MIN_LEN || frame.length > MAX_FRAME_LEN) return 'malformed';
    const counter = readCounter(frame, 8);
    if (!this.replay.check(counter)) return 'replay';
    const n = frame.length - TRANSPORT_OVERHEAD;
    let pt: Buffer;
    if (out === undefined) pt = n === 0 ? EMPTY : Buffer.allocUnsafe(n);
    else if (out.length >= n) pt = out;
    else throw tunnelError('PP_ERR_TUNNEL_MESSAGE_TOO_LARGE', { what: 'plaintext', size: n, limit: out.length });
    if (this.recvKey.open(counter, frame.subarray(TRANSPORT_HEADER_LEN), pt, 0) < 0) return 'decrypt';
    this.replay.mark(counter);
    this.recvCell[1] = this.received + 1;
    return pt.length === n ? pt : pt.subarray(0, n);
  }

  /**
   * Seals packets i = 0..count-1 of `batch` (empty = keepalive) into consecutive frames in `out`:
   * frame i is out[outOffsets[i], outOffsets[i+1]), outOffsets[0] = 0. One call into the provider
   * when it has sealBatch, else one seal per packet. Returns how many were sealed: fewer than count
   * when `out` is full or the counter limit is reached (the rest were not sealed and used no counter).
   */
  sealBatch(batch: ByteBatch, out: Buffer, outOffsets: Uint32Array): number {
    const { data, offsets } = batch;
    let count = Math.min(batch.count, COUNTER_LIMIT - this.nextCounter);
    if (count <= 0) {
      if (batch.count > 0) throw tunnelError('PP_ERR_TUNNEL_COUNTER_EXHAUSTED');
      return 0;
    }
    if (outOffsets.length < count + 1) throw new RangeError('outOffsets must hold count + 1 entries');
    for (let i = 0; i < count; i++) {
      const len = offsets[i + 1]! - offsets[i]!;
      if (len > MAX_PLAINTEXT_LEN)
        throw tunnelError('PP_ERR_TUNNEL_MESSAGE_TOO_LARGE', {
          what: 'transport frame',
          size: len + TRANSPORT_OVERHEAD,
          limit: MAX_FRAME_LEN,
        });
    }
    const counter0 = this.nextCounter;
    outOffsets[0] = 0;
    if (this.sendKey.sealBatch && offsets instanceof Uint32Array) {
      count = this.sendKey.sealBatch(counter0, data, offsets, count, out, outOffsets, TRANSPORT_HEADER_LEN);
      for (let i = 0; i < count; i++) writeHeader(out, outOffsets[i]!, this.remoteIndex, counter0 + i);
    } else {
      let pos = 0;
      let i = 0;
      for (; i < count; i++) {
        const pt = data.subarray(offsets[i]!, offsets[i + 1]!);
        if (pos + pt.length + TRANSPORT_OVERHEAD > out.length) break;
        writeHeader(out, pos, this.remoteIndex, counter0 + i);
        pos += TRANSPORT_HEADER_LEN + this.sendKey.seal(counter0 + i, pt, out, pos + TRANSPORT_HEADER_LEN);
        outOffsets[i + 1] = pos;
      }
      count = i;
    }
    this.nextCounter = counter0 + count;
    return count;
  }

  /**
   * Opens frames i = 0..count-1 of `batch` (all addressed to this session) in place: on success
   * results[i] is the plaintext length and the plaintext is at data[offsets[i] + 16 ...]; else
   * results[i] is OPEN_MALFORMED, OPEN_REPLAY or OPEN_DECRYPT (the frame's bytes may have been
   * overwritten). Same checks and replay rules as open(), one call into the provider when it has
   * openBatch. Returns how many authenticated.
   */
  openBatch(batch: ByteBatch, results: Int32Array): number {
    const { data, offsets, count } = batch;
    if (results.length < count) throw new RangeError('results must hold count entries');
    if (!this.counters || this.counters.length < count) this.counters = new Float64Array(Math.max(count, 64));
    const counters = this.counters;
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    for (let i = 0; i < count; i++) {
      const at = offsets[i]!;
      const len = offsets[i + 1]! - at;
      counters[i] = -1;
      if (len < TRANSPORT_MIN_LEN || len > MAX_FRAME_LEN) results[i] = OPEN_MALFORMED;
      else {
        const c = readCounter(buf, at + 8);
        if (!this.replay.check(c)) results[i] = OPEN_REPLAY;
        else counters[i] = c;
      }
    }
    if (this.recvKey.openBatch && offsets instanceof Uint32Array) {
      this.recvKey.openBatch(counters, data, offsets, count, TRANSPORT_HEADER_LEN, data, results);
    } else {
      for (let i = 0; i < count; i++) {
        if (counters[i]! < 0) {
          results[i] = -2;
          continue;
        }
        const at = offsets[i]! + TRANSPORT_HEADER_LEN;
        results[i] = this.recvKey.open(counters[i]!, data.subarray(at, offsets[i + 1]!), data, at);
      }
    }
    let ok = 0;
    for (let i = 0; i < count; i++) {
      const r = results[i]!;
      if (r === -2) {
        // skipped above; its reason was overwritten by the provider's "skipped" marker
        const len = offsets[i + 1]! - offsets[i]!;
        results[i] = len < TRANSPORT_MIN_LEN || len > MAX_FRAME_LEN ? OPEN_MALFORMED : OPEN_REPLAY;
      } else if (r < 0) results[i] = OPEN_DECRYPT;
      else if (!this.replay.mark(counters[i]!))
        results[i] = OPEN_REPLAY; // a duplicate earlier in this batch
      else {
        this.recvCell[1] = this.received + 1;
        ok++;
      }
    }
    return ok;
  }

  /** Releases the provider's key objects (wipes native keys now rather than at GC). */
  destroy(): void {
    this.sendKey.destroy?.();
    this.recvKey.destroy?.();
  }

  /**
   * What a native open path needs to open frames on this session (@pocketproxy/tun OpenPath): the
   * receive key object (only a native provider's key is usable there), our receiver index, the
   * replay window's bitmap and cell (shared: see recvCell), the first counter it must not accept
   * and the time (same clock as `now`) it must stop. It marks the window, counts `received` and
   * stamps `nativeReceivedAt` in the same memory, so either side sees what the other opened.
   */
  receiveState(t: TunnelTimers): {
    key: AeadKey;
    index: number;
    bits: Uint32Array;
    cell: Float64Array;
    limit: number;
    expiresAt: number;
  } {
    return {
      key: this.recvKey,
      index: this.localIndex,
      bits: this.replay.bits,
      cell: this.recvCell,
      limit: Math.min(t.rejectAfterMessages, COUNTER_LIMIT),
      expiresAt: this.createdAt + t.rejectAfterMs,
    };
  }

  /**
   * What a native send path needs to seal on this session (@pocketproxy/tun SealPath): the send key
   * object (only a native provider's key is usable there), the receiver index, the shared counter
   * cell, the first counter it must not use and the time (same clock as `now`) it must stop.
   * The other reasons `expired` gives (the peer's counter) are the caller's to check, e.g. per tick.
   */
  sendState(t: TunnelTimers): {
    key: AeadKey;
    receiver: number;
    counter: Float64Array;
    limit: number;
    expiresAt: number;
  } {
    return {
      key: this.sendKey,
      receiver: this.remoteIndex,
      counter: this.counterCell,
      limit: Math.min(t.rejectAfterMessages, COUNTER_LIMIT),
      expiresAt: this.createdAt + t.rejectAfterMs,
    };
  }

  /** Rekey hint: the initiator should start a new handshake (time or message count). */
  needsRekey(now: number, t: TunnelTimers): boolean {
    return (
      now - this.createdAt >= t.rekeyAfterMs ||
      this.nextCounter >= t.rekeyAfterMessages ||
      this.replay.greatest >= t.rekeyAfterMessages
    );
  }

  /** Past its hard limits: must not be used in either direction. */
  expired(now: number, t: TunnelTimers): boolean {
    return (
      now - this.createdAt >= t.rejectAfterMs ||
      this.nextCounter >= t.rejectAfterMessages ||
      this.replay.greatest >= t.rejectAfterMessages
    );
  }
}

const EMPTY = Buffer.alloc(0);

function writeHeader(buf: Buffer, at: number, remoteIndex: number, counter: number): void {
  buf[at] = FRAME_TRANSPORT;
  buf[at + 1] = PROTOCOL_VERSION;
  buf[at + 2] = 0;
  buf[at + 3] = 0;
  buf.writeUInt32LE(remoteIndex, at + 4);
  // Noise nonce = 4 zero bytes || these same 8 counter bytes (the provider builds it from counter).
  writeCounter(buf, at + 8, counter);
}
