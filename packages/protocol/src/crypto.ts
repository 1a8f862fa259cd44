// The primitives of Noise_IKpsk2_25519_ChaChaPoly_SHA256, all from node:crypto.
// HKDF is Noise's own (https://noiseprotocol.org/noise.html §4.3), not RFC 5869's expand with info.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  type KeyObject,
} from 'node:crypto';
import { KEY_LEN, MAC_LEN, TAG_LEN } from './constants.js';
import { tunnelError } from './errors.js';

// Raw X25519 keys in and out through JWK: node imports an OKP JWK with OpenSSL's raw-key calls, ~10x
// cheaper than its DER decoders (private 42 vs 400 µs, public 9 vs 100 µs on OpenSSL 3.0; a handshake
// imports four or five keys). A private JWK's `x` is required by node but not read (the public half is
// derived from `d`), so it goes empty. DER (RFC 8410) stays as the fallback should a Node read it.
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');

function checkLength(raw: Buffer, what: string): void {
  if (raw.length !== KEY_LEN)
    throw tunnelError('PP_ERR_TUNNEL_KEY_INVALID', { what, reason: `need ${KEY_LEN} bytes, got ${raw.length}` });
}

export function x25519PrivateKeyObject(raw: Buffer): KeyObject {
  checkLength(raw, 'private key');
  try {
    return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: raw.toString('base64url'), x: '' }, format: 'jwk' });
  } catch {
    return createPrivateKey({ key: Buffer.concat([PKCS8_X25519, raw]), format: 'der', type: 'pkcs8' });
  }
}

export function x25519PublicKeyObject(raw: Buffer): KeyObject {
  checkLength(raw, 'public key');
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: raw.toString('base64url') }, format: 'jwk' });
  } catch {
    return createPublicKey({ key: Buffer.concat([SPKI_X25519, raw]), format: 'der', type: 'spki' });
  }
}

/** The raw public key of a private KeyObject: its JWK's `x` (the private export carries it). */
export function x25519PublicFromPrivate(priv: KeyObject): Buffer {
  const x = Buffer.from(String(priv.export({ format: 'jwk' }).x), 'base64url');
  if (x.length === KEY_LEN) return x;
  const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' });
  return Buffer.from(spki.subarray(spki.length - KEY_LEN));
}

const ZERO32 = Buffer.alloc(32);

/**
 * X25519. A low-order peer key gives an all-zero secret; OpenSSL refuses it (throws) and we also
 * check, so a forged ephemeral can never yield a predictable key (RFC 7748 §6.1).
 */
export function dh(priv: KeyObject, pubRaw: Buffer): Buffer {
  let out: Buffer;
  try {
    out = diffieHellman({ privateKey: priv, publicKey: x25519PublicKeyObject(pubRaw) });
  } catch (cause) {
    throw tunnelError('PP_ERR_TUNNEL_DH_FAILED', {}, { cause });
  }
  if (out.equals(ZERO32)) throw tunnelError('PP_ERR_TUNNEL_DH_FAILED');
  return out;
}

export function hash(...parts: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

export function hmac(key: Buffer, ...parts: Buffer[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

const B1 = Buffer.from([1]);
const B2 = Buffer.from([2]);
const B3 = Buffer.from([3]);

export function kdf1(key: Buffer, input: Buffer): Buffer {
  return hmac(hmac(key, input), B1);
}
export function kdf2(key: Buffer, input: Buffer): [Buffer, Buffer] {
  const t0 = hmac(key, input);
  const t1 = hmac(t0, B1);
  return [t1, hmac(t0, t1, B2)];
}
export function kdf3(key: Buffer, input: Buffer): [Buffer, Buffer, Buffer] {
  const t0 = hmac(key, input);
  const t1 = hmac(t0, B1);
  const t2 = hmac(t0, t1, B2);
  return [t1, t2, hmac(t0, t2, B3)];
}

/** MAC1: the first 16 bytes of HMAC-SHA256 (WireGuard uses keyed BLAKE2s-128 here). */
export function mac16(key: Buffer, data: Buffer): Buffer {
  return hmac(key, data).subarray(0, MAC_LEN);
}

/** Noise ChaChaPoly nonce: 32 zero bits then the 64-bit counter, little-endian. */
export function nonceFor(counter: number, into: Buffer = Buffer.alloc(12)): Buffer {
  into.writeUInt32LE(0, 0);
  into.writeUInt32LE(counter >>> 0, 4);
  into.writeUInt32LE(Math.floor(counter / 0x1_0000_0000), 8);
  return into;
}

/** AEAD for handshake fields: returns ciphertext || tag. */
export function aeadSeal(key: Buffer, counter: number, plaintext: Buffer, ad: Buffer): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, nonceFor(counter), { authTagLength: TAG_LEN });
  c.setAAD(ad, { plaintextLength: plaintext.length });
  const ct = c.update(plaintext);
  c.final();
  return Buffer.concat([ct, c.getAuthTag()]);
}

/** Returns the plaintext, or undefined when authentication fails (never throws on bad input). */
export function aeadOpen(key: Buffer, counter: number, sealed: Buffer, ad: Buffer): Buffer | undefined {
  if (sealed.length < TAG_LEN) return undefined;
  const ctLen = sealed.length - TAG_LEN;
  const d = createDecipheriv('chacha20-poly1305', key, nonceFor(counter), { authTagLength: TAG_LEN });
  d.setAAD(ad, { plaintextLength: ctLen });
  d.setAuthTag(sealed.subarray(ctLen));
  const pt = d.update(sealed.subarray(0, ctLen));
  try {
    d.final();
  } catch {
    return undefined;
  }
  return pt;
}
