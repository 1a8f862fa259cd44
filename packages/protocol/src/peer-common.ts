// Pieces both ends of the tunnel share: drop reasons, random sources, inner decoding of an
// authenticated plaintext into the result shape the state machines return.
import { randomBytes } from 'node:crypto';
import { isPPError } from '@pocketproxy/errors';
import { tunnelError } from './errors.js';
import { decodeInner, type JsonMessage } from './inner.js';

/** Why a received frame produced nothing. Counted by the app; never answered on the wire. */
export type DropReason =
  | 'malformed' // not a frame of ours (length, header, version, type)
  | 'mac1' // initiation/response MAC1 wrong: garbage or not meant for us
  | 'decrypt' // AEAD failed: wrong keys, tampered, or forged
  | 'unknown_peer' // initiation from a static key lookupPeer does not know
  | 'replayed_initiation' // initiation timestamp not newer than the last accepted one
  | 'unknown_index' // no session with that receiver index
  | 'replay' // counter already seen or older than the replay window
  | 'expired' // session past its reject-after limits
  | 'unexpected' // a valid frame type this side does not accept (e.g. a response at the responder)
  | 'inner'; // authenticated, but the inner message is malformed or of an unknown type

/** Source of randomness; tests inject a deterministic one. */
export type RandomBytes = (n: number) => Buffer;
export const defaultRandom: RandomBytes = (n) => randomBytes(n);

/** Result of decoding an authenticated plaintext, before the caller adds who it came from. */
export type Delivered =
  | { kind: 'keepalive' }
  | { kind: 'packet'; packet: Buffer }
  | { kind: 'message'; message: JsonMessage }
  | { kind: 'dropped'; reason: 'inner'; error: Error };

export function deliver(pt: Buffer): Delivered {
  try {
    const m = decodeInner(pt);
    if (m.kind === 'keepalive' || m.kind === 'packet') return m;
    return { kind: 'message', message: m };
  } catch (e) {
    if (isPPError(e)) return { kind: 'dropped', reason: 'inner', error: e };
    throw e;
  }
}

/** A random 32-bit index not in use locally (indices only need to be unique per receiver). */
export function freshIndex(random: RandomBytes, inUse: (i: number) => boolean): number {
  for (let attempt = 0; attempt < 64; attempt++) {
    const i = random(4).readUInt32LE(0);
    if (!inUse(i)) return i;
  }
  throw tunnelError('PP_ERR_TUNNEL_CONFIG_INVALID', { reason: 'random source keeps repeating session indices' });
}
