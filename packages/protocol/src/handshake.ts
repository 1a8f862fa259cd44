// Noise_IKpsk2 handshake (https://noiseprotocol.org/noise.html §7.5, §9), laid out as WireGuard does
// (https://www.wireguard.com/protocol/), with SHA-256/HMAC in place of BLAKE2s:
//   <- s
//   ...
//   -> e, es, s, ss      (initiation; payload = TAI64N timestamp, or timestamp || lane || lanes || 0 0)
//   <- e, ee, se, psk    (response; empty payload)
// Pure functions: the caller supplies ephemerals, indices and timestamps (tests pin them for
// vectors). Authentication failures return undefined and never throw, so the state machines can
// drop silently; only programming errors (wrong key sizes) throw.
import { timingSafeEqual, type KeyObject } from 'node:crypto';
import {
  CONSTRUCTION,
  IDENTIFIER,
  KEY_LEN,
  LABEL_MAC1,
  LANE_PAYLOAD_LEN,
  MAX_LANES,
  MAC_LEN,
  RESPONSE_MAC1_OFFSET,
  TIMESTAMP_LEN,
} from './constants.js';
import {
  aeadOpen,
  aeadSeal,
  dh,
  hash,
  kdf1,
  kdf2,
  kdf3,
  mac16,
  x25519PrivateKeyObject,
  x25519PublicFromPrivate,
} from './crypto.js';
import { decodeFrame, encodeInitiation, encodeResponse, type OuterFrame } from './messages.js';
import { isPPError } from '@pocketproxy/errors';

const EMPTY = Buffer.alloc(0);
const ZERO_MAC = Buffer.alloc(MAC_LEN);
const INITIAL_CK = hash(Buffer.from(CONSTRUCTION, 'ascii'));
const INITIAL_H = hash(INITIAL_CK, Buffer.from(IDENTIFIER, 'ascii'));

/** A static key pair with its KeyObject and derived values cached (X25519 import is not free). */
export interface StaticIdentity {
  readonly publicKey: Buffer;
  readonly keyObject: KeyObject;
  /** HASH(LABEL_MAC1 || publicKey): what others key MAC1 with when writing to us. */
  readonly mac1Key: Buffer;
}

export function createIdentity(privateKey: Buffer): StaticIdentity {
  const keyObject = x25519PrivateKeyObject(privateKey);
  const publicKey = x25519PublicFromPrivate(keyObject);
  return { publicKey, keyObject, mac1Key: mac1KeyFor(publicKey) };
}

export function mac1KeyFor(publicKey: Buffer): Buffer {
  return hash(Buffer.from(LABEL_MAC1, 'ascii'), publicKey);
}

/** Transport keys from Split(): initiator sends with the first, responder with the second. */
export interface TransportKeys {
  readonly sendKey: Buffer;
  readonly recvKey: Buffer;
}

export interface InitiatorHandshake {
  readonly senderIndex: number;
  readonly responderPublicKey: Buffer;
  readonly ck: Buffer;
  readonly h: Buffer;
  readonly ephemeral: KeyObject;
  readonly ephemeralPublic: Buffer;
  readonly staticPublic: Buffer;
  readonly staticKey: KeyObject;
}

/**
 * One of a device's sessions held at once (docs/protocol.md §3.1 "Lanes"): `index` < `count` <= MAX_LANES.
 * A classic initiation is lane 0 of 1.
 */
export interface Lane {
  readonly index: number;
  readonly count: number;
}

export const SOLE_LANE: Lane = Object.freeze({ index: 0, count: 1 });

export function isLane(l: Lane): boolean {
  return (
    Number.isInteger(l.index) && Number.isInteger(l.count) && l.index >= 0 && l.index < l.count && l.count <= MAX_LANES
  );
}

export interface CreateInitiationInput {
  initiator: StaticIdentity;
  responderPublicKey: Buffer;
  senderIndex: number;
  timestamp: Buffer;
  ephemeralPrivateKey: Buffer;
  /** Absent (or lane 0 of 1): the classic 148-byte initiation; otherwise a 152-byte lane initiation. */
  lane?: Lane;
}

export function createInitiation(i: CreateInitiationInput): { message: Buffer; state: InitiatorHandshake } {
  if (i.timestamp.length !== TIMESTAMP_LEN) throw new RangeError('timestamp must be 12 bytes');
  const lane = i.lane ?? SOLE_LANE;
  if (!isLane(lane)) throw new RangeError(`lane must be 0 <= index < count <= ${MAX_LANES}`);
  let payload = i.timestamp;
  if (lane.count > 1) {
    payload = Buffer.alloc(LANE_PAYLOAD_LEN);
    i.timestamp.copy(payload, 0);
    payload[TIMESTAMP_LEN] = lane.index;
    payload[TIMESTAMP_LEN + 1] = lane.count;
  }
  const ephemeral = x25519PrivateKeyObject(i.ephemeralPrivateKey);
  const ephemeralPublic = x25519PublicFromPrivate(ephemeral);
  let h = hash(INITIAL_H, i.responderPublicKey);
  let ck = kdf1(INITIAL_CK, ephemeralPublic);
  h = hash(h, ephemeralPublic);
  let k: Buffer;
  [ck, k] = kdf2(ck, dh(ephemeral, i.responderPublicKey));
  const encryptedStatic = aeadSeal(k, 0, i.initiator.publicKey, h);
  h = hash(h, encryptedStatic);
  [ck, k] = kdf2(ck, dh(i.initiator.keyObject, i.responderPublicKey));
  const encryptedTimestamp = aeadSeal(k, 0, payload, h);
  h = hash(h, encryptedTimestamp);
  const message = encodeInitiation({
    senderIndex: i.senderIndex,
    ephemeral: ephemeralPublic,
    encryptedStatic,
    encryptedTimestamp,
    mac1: ZERO_MAC,
    mac2: ZERO_MAC,
  });
  const mac1At = message.length - 2 * MAC_LEN;
  mac16(mac1KeyFor(i.responderPublicKey), message.subarray(0, mac1At)).copy(message, mac1At);
  return {
    message,
    state: {
      senderIndex: i.senderIndex,
      responderPublicKey: i.responderPublicKey,
      ck,
      h,
      ephemeral,
      ephemeralPublic,
      staticPublic: i.initiator.publicKey,
      staticKey: i.initiator.keyObject,
    },
  };
}

/** What the responder knows after a valid initiation; `peer` is whatever lookupPeer returned. */
export interface ConsumedInitiation<P> {
  readonly peer: P;
  readonly initiatorStatic: Buffer;
  readonly initiatorIndex: number;
  readonly initiatorEphemeral: Buffer;
  readonly timestamp: Buffer;
  /** Lane 0 of 1 for a classic initiation. */
  readonly lane: Lane;
  readonly ck: Buffer;
  readonly h: Buffer;
}

export type InitiationDrop = 'malformed' | 'mac1' | 'decrypt' | 'unknown_peer';

/**
 * Verifies MAC1 first (one HMAC, before any DH), then runs the Noise tokens. `lookupPeer` is called
 * with the decrypted static key; returning undefined drops the packet.
 */
export function consumeInitiation<P>(
  responder: StaticIdentity,
  msg: Buffer,
  lookupPeer: (publicKey: Buffer) => P | undefined,
): ConsumedInitiation<P> | InitiationDrop {
  let f: OuterFrame;
  try {
    f = decodeFrame(msg);
  } catch {
    return 'malformed';
  }
  if (f.type !== 'initiation') return 'malformed';
  if (!timingSafeEqual(mac16(responder.mac1Key, msg.subarray(0, msg.length - 2 * MAC_LEN)), f.mac1)) return 'mac1';
  try {
    let h = hash(INITIAL_H, responder.publicKey);
    let ck = kdf1(INITIAL_CK, f.ephemeral);
    h = hash(h, f.ephemeral);
    let k: Buffer;
    [ck, k] = kdf2(ck, dh(responder.keyObject, f.ephemeral));
    const initiatorStatic = aeadOpen(k, 0, f.encryptedStatic, h);
    if (!initiatorStatic) return 'decrypt';
    h = hash(h, f.encryptedStatic);
    const peer = lookupPeer(Buffer.from(initiatorStatic));
    if (peer === undefined) return 'unknown_peer';
    [ck, k] = kdf2(ck, dh(responder.keyObject, initiatorStatic));
    const payload = aeadOpen(k, 0, f.encryptedTimestamp, h);
    if (!payload) return 'decrypt';
    h = hash(h, f.encryptedTimestamp);
    let lane = SOLE_LANE;
    if (payload.length === LANE_PAYLOAD_LEN) {
      // Authenticated, so only the device can have written it; still checked, as any input is.
      lane = { index: payload[TIMESTAMP_LEN]!, count: payload[TIMESTAMP_LEN + 1]! };
      if (lane.count < 2 || !isLane(lane) || payload[TIMESTAMP_LEN + 2] !== 0 || payload[TIMESTAMP_LEN + 3] !== 0)
        return 'malformed';
    }
    const timestamp = Buffer.from(payload.subarray(0, TIMESTAMP_LEN));
    return {
      peer,
      initiatorStatic: Buffer.from(initiatorStatic),
      initiatorIndex: f.senderIndex,
      initiatorEphemeral: Buffer.from(f.ephemeral),
      timestamp,
      lane,
      ck,
      h,
    };
  } catch (e) {
    if (isPPError(e)) return 'decrypt'; // low-order ephemeral or static
    throw e;
  }
}

export interface CreateResponseInput {
  consumed: ConsumedInitiation<unknown>;
  psk: Buffer;
  senderIndex: number;
  ephemeralPrivateKey: Buffer;
}

export function createResponse(i: CreateResponseInput): { message: Buffer; keys: TransportKeys } {
  if (i.psk.length !== KEY_LEN) throw new RangeError('psk must be 32 bytes');
  const c = i.consumed;
  const ephemeral = x25519PrivateKeyObject(i.ephemeralPrivateKey);
  const ephemeralPublic = x25519PublicFromPrivate(ephemeral);
  let ck = kdf1(c.ck, ephemeralPublic);
  let h = hash(c.h, ephemeralPublic);
  ck = kdf1(ck, dh(ephemeral, c.initiatorEphemeral));
  ck = kdf1(ck, dh(ephemeral, c.initiatorStatic));
  const [ck2, t, k] = kdf3(ck, i.psk);
  ck = ck2;
  h = hash(h, t);
  const encryptedNothing = aeadSeal(k, 0, EMPTY, h);
  const message = encodeResponse({
    senderIndex: i.senderIndex,
    receiverIndex: c.initiatorIndex,
    ephemeral: ephemeralPublic,
    encryptedNothing,
    mac1: ZERO_MAC,
    mac2: ZERO_MAC,
  });
  mac16(mac1KeyFor(c.initiatorStatic), message.subarray(0, RESPONSE_MAC1_OFFSET)).copy(message, RESPONSE_MAC1_OFFSET);
  const [initiatorSend, responderSend] = kdf2(ck, EMPTY);
  return { message, keys: { sendKey: responderSend, recvKey: initiatorSend } };
}

export type ResponseDrop = 'malformed' | 'mac1' | 'decrypt' | 'unknown_index';

/** Completes the initiator side. `mac1Key` is the initiator's own (mac1KeyFor(its public key)). */
export function consumeResponse(
  state: InitiatorHandshake,
  mac1Key: Buffer,
  psk: Buffer,
  msg: Buffer,
): { keys: TransportKeys; responderIndex: number } | ResponseDrop {
  let f: OuterFrame;
  try {
    f = decodeFrame(msg);
  } catch {
    return 'malformed';
  }
  if (f.type !== 'response') return 'malformed';
  if (f.receiverIndex !== state.senderIndex) return 'unknown_index';
  if (!timingSafeEqual(mac16(mac1Key, msg.subarray(0, RESPONSE_MAC1_OFFSET)), f.mac1)) return 'mac1';
  try {
    let ck = kdf1(state.ck, f.ephemeral);
    let h = hash(state.h, f.ephemeral);
    ck = kdf1(ck, dh(state.ephemeral, f.ephemeral));
    ck = kdf1(ck, dh(state.staticKey, f.ephemeral));
    const [ck2, t, k] = kdf3(ck, psk);
    ck = ck2;
    h = hash(h, t);
    if (!aeadOpen(k, 0, f.encryptedNothing, h)) return 'decrypt';
    const [initiatorSend, responderSend] = kdf2(ck, EMPTY);
    return { keys: { sendKey: initiatorSend, recvKey: responderSend }, responderIndex: f.senderIndex };
  } catch (e) {
    if (isPPError(e)) return 'decrypt';
    throw e;
  }
}
