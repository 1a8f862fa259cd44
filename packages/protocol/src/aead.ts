// The transport AEAD behind an interface, so a faster implementation can be injected without this
// package importing anything native: TransportSession takes an optional `aead` provider (default
// `nodeAead`, node:crypto). @pocketproxy/tun's `nativeAead()` (OpenSSL with a keyed context reused
// per packet, plus batch forms) satisfies it structurally.
//
// Contract (docs/protocol.md §2): ChaCha20-Poly1305 (RFC 8439), nonce = 0^4 || u64le(counter),
// no associated data, output = ciphertext || 16-byte tag. Every provider must give the same bytes.
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { TAG_LEN } from './constants.js';

/** One key. Counters are exact integers 0..2^53 (the protocol keeps them below 2^52). */
export interface AeadKey {
  /**
   * Writes ciphertext || tag (plaintext.length + 16 bytes) at dst[dstOffset] and returns that
   * length. The output may start exactly where `plaintext` starts (in place); no other overlap.
   */
  seal(counter: number, plaintext: Uint8Array, dst: Uint8Array, dstOffset: number): number;
  /**
   * Authenticates and decrypts `sealed` (ciphertext || tag) into dst[dstOffset] and returns the
   * plaintext length, or -1 when it does not authenticate (nothing unauthenticated is left in dst).
   * dst may start exactly where `sealed` starts (in place); no other overlap.
   */
  open(counter: number, sealed: Uint8Array, dst: Uint8Array, dstOffset: number): number;
  /**
   * Optional batch form of seal: packet i is src[srcOffsets[i], srcOffsets[i+1]) and is sealed with
   * counter0 + i into dst at dstOffsets[i] + headroom; sets dstOffsets[i+1] to the end of frame i
   * (headroom + length + 16 after dstOffsets[i]; the caller sets dstOffsets[0]). Stops early when
   * dst is full; returns how many were sealed. src and dst must not overlap.
   */
  sealBatch?(
    counter0: number,
    src: Uint8Array,
    srcOffsets: Uint32Array,
    count: number,
    dst: Uint8Array,
    dstOffsets: Uint32Array,
    headroom: number,
  ): number;
  /**
   * Optional batch form of open: item i is src[offsets[i], offsets[i+1]); its sealed part starts
   * `skip` bytes in and is opened with counters[i] (NaN or negative = skip it, lengths[i] = -2);
   * the plaintext goes to the same offset in dst (dst === src: in place). lengths[i] = plaintext
   * length or -1. Returns how many authenticated.
   */
  openBatch?(
    counters: Float64Array,
    src: Uint8Array,
    offsets: Uint32Array,
    count: number,
    skip: number,
    dst: Uint8Array,
    lengths: Int32Array,
  ): number;
  /** Optional: release resources (wipe the key) before garbage collection. */
  destroy?(): void;
}

export interface AeadProvider {
  /** For logs and benches, e.g. 'node:crypto', 'openssl-native'. */
  readonly name: string;
  /** A key object for a 32-byte key; the caller may reuse `raw` afterwards. */
  key(raw: Uint8Array): AeadKey;
}

const AEAD = 'chacha20-poly1305';
const AEAD_OPTS = { authTagLength: TAG_LEN } as const;

/** node:crypto: a cipher object per packet (~10 us per 1380-byte packet); always available. */
class NodeAeadKey implements AeadKey {
  private readonly key: KeyObject;
  private readonly nonce = Buffer.alloc(12);

  constructor(raw: Uint8Array) {
    this.key = createSecretKey(raw);
  }

  private setNonce(counter: number): Buffer {
    this.nonce.writeUInt32LE(counter >>> 0, 4);
    this.nonce.writeUInt32LE(Math.floor(counter / 0x1_0000_0000), 8);
    return this.nonce;
  }

  seal(counter: number, plaintext: Uint8Array, dst: Uint8Array, dstOffset: number): number {
    const n = plaintext.length;
    if (dstOffset + n + TAG_LEN > dst.length) throw new RangeError('dst too small');
    const c = createCipheriv(AEAD, this.key, this.setNonce(counter), AEAD_OPTS);
    if (n > 0) dst.set(c.update(plaintext), dstOffset);
    c.final();
    dst.set(c.getAuthTag(), dstOffset + n);
    return n + TAG_LEN;
  }

  open(counter: number, sealed: Uint8Array, dst: Uint8Array, dstOffset: number): number {
    if (sealed.length < TAG_LEN) return -1;
    const n = sealed.length - TAG_LEN;
    if (dstOffset + n > dst.length) throw new RangeError('dst too small');
    const d = createDecipheriv(AEAD, this.key, this.setNonce(counter), AEAD_OPTS);
    d.setAuthTag(sealed.subarray(n));
    const pt = n > 0 ? d.update(sealed.subarray(0, n)) : undefined;
    try {
      d.final();
    } catch {
      return -1;
    }
    if (pt) dst.set(pt, dstOffset);
    return n;
  }
}

export const nodeAead: AeadProvider = Object.freeze({
  name: 'node:crypto',
  key: (raw: Uint8Array): AeadKey => new NodeAeadKey(raw),
});
