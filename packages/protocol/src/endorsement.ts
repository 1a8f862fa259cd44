// The control plane's signing key and its endorsement of relay keys. The API holds an Ed25519 "server key"
// (derived from its secret key, so every API instance has the same one) and signs, per device, the relay
// static key that device is to trust. The key's fingerprint travels out of band (pairing code, QR, pairing
// URI), so an agent can check that a relay key it got over the API came from this control plane and not
// from whoever sits on the path — over https or not. Spec: docs/api.md "Pairing: the server fingerprint".
//
//   fingerprint = base64url(SHA-256(raw 32-byte Ed25519 public key)[0..16])          (22 characters)
//   endorsement = base64(Ed25519(server key, "pocketproxy relay-key v1\n" + device_id + "\n" + relay key))
//
// where relay key is the 44-character base64 X25519 key exactly as the API sends it.
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { KEY_LEN } from './constants.js';
import { decodeKey, encodeKey } from './keys.js';
import { tunnelError } from './errors.js';

// DER wrappers for raw Ed25519 keys (RFC 8410), as crypto.ts does for X25519: no JWK (keys.ts).
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
const SIGNATURE_B64 = /^[A-Za-z0-9+/]{86}==$/;

/** 22 characters of base64url: what a pairing URI carries as `fp`. */
export const FINGERPRINT_PATTERN = /^[A-Za-z0-9_-]{22}$/;

export interface ServerKey {
  /** base64 raw Ed25519 public key (44 characters). */
  readonly publicKey: string;
  readonly fingerprint: string;
  /** The endorsement of `relayPublicKey` for `deviceId`. */
  endorseRelayKey(deviceId: string, relayPublicKey: string): string;
}

/** The server key from a 32-byte seed (the API derives the seed from its secret key with HKDF). */
export function serverKeyFromSeed(seed: Buffer): ServerKey {
  if (seed.length !== KEY_LEN)
    throw tunnelError('PP_ERR_TUNNEL_KEY_INVALID', {
      what: 'server key seed',
      reason: `need ${KEY_LEN} bytes, got ${seed.length}`,
    });
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' });
  const publicKey = encodeKey(Buffer.from(spki.subarray(spki.length - KEY_LEN)));
  return {
    publicKey,
    fingerprint: serverKeyFingerprint(publicKey),
    endorseRelayKey: (deviceId, relayPublicKey) =>
      sign(null, relayKeyStatement(deviceId, relayPublicKey), priv).toString('base64'),
  };
}

/** The fingerprint of a base64 server public key; throws PP_ERR_TUNNEL_KEY_INVALID when it is not one. */
export function serverKeyFingerprint(publicKey: string): string {
  return createHash('sha256').update(decodeKey(publicKey, 'server key')).digest().subarray(0, 16).toString('base64url');
}

export function relayKeyStatement(deviceId: string, relayPublicKey: string): Buffer {
  return Buffer.from(`pocketproxy relay-key v1\n${deviceId}\n${relayPublicKey}`, 'utf8');
}

/** True only for a well-formed endorsement of exactly this relay key for this device by this server key. */
export function checkRelayKeyEndorsement(
  serverPublicKey: string,
  deviceId: string,
  relayPublicKey: string,
  endorsement: unknown,
): boolean {
  if (typeof endorsement !== 'string' || !SIGNATURE_B64.test(endorsement)) return false;
  let key: KeyObject;
  try {
    key = createPublicKey({
      key: Buffer.concat([SPKI_ED25519, decodeKey(serverPublicKey, 'server key')]),
      format: 'der',
      type: 'spki',
    });
  } catch {
    return false;
  }
  try {
    return verify(null, relayKeyStatement(deviceId, relayPublicKey), key, Buffer.from(endorsement, 'base64'));
  } catch {
    return false;
  }
}
