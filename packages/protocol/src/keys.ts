// Static X25519 keys: the relay's long-term pair, and each device's pair made by the agent at
// pairing (the server stores only the public half). Text form is standard base64, 44 characters,
// like WireGuard's, so keys can be pasted between tools.
import { randomBytes } from 'node:crypto';
import { KEY_LEN } from './constants.js';
import { x25519PrivateKeyObject, x25519PublicFromPrivate } from './crypto.js';
import { tunnelError } from './errors.js';

export interface KeyPair {
  readonly privateKey: Buffer;
  readonly publicKey: Buffer;
}

/**
 * 32 random bytes, clamped as RFC 7748 §5 describes (OpenSSL clamps anyway; stored keys are then canonical,
 * like WireGuard's). Not crypto.generateKeyPairSync: on Node 20 a garbage-collected key-generation job can
 * deadlock the process while another key is being exported (its destructor waits on a mutex the export
 * holds — seen here as a test process hung on a futex), and the relay makes keys while it exports others.
 */
export function generateKeyPair(): KeyPair {
  const privateKey = randomBytes(KEY_LEN);
  privateKey[0]! &= 248;
  privateKey[31]! &= 127;
  privateKey[31]! |= 64;
  return { privateKey, publicKey: publicKeyFromPrivate(privateKey) };
}

export function publicKeyFromPrivate(privateKey: Buffer): Buffer {
  return x25519PublicFromPrivate(x25519PrivateKeyObject(privateKey));
}

/** A pre-shared key from pairing: 32 random bytes. */
export function generatePsk(): Buffer {
  return randomBytes(KEY_LEN);
}

export function encodeKey(key: Buffer): string {
  if (key.length !== KEY_LEN)
    throw tunnelError('PP_ERR_TUNNEL_KEY_INVALID', { what: 'key', reason: `need ${KEY_LEN} bytes, got ${key.length}` });
  return key.toString('base64');
}

const B64_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** Strict: exactly 44 characters of standard base64 that decode to 32 bytes (no url-safe, no whitespace). */
export function decodeKey(text: string, what = 'key'): Buffer {
  if (typeof text !== 'string' || !B64_KEY.test(text)) {
    throw tunnelError('PP_ERR_TUNNEL_KEY_INVALID', {
      what,
      reason: 'expected 44 characters of standard base64 encoding 32 bytes',
    });
  }
  return Buffer.from(text, 'base64');
}
