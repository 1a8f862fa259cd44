// Outer frame codec: the bytes on the wire (UDP datagram, or one length-prefixed TCP frame).
// Layouts follow WireGuard's (https://www.wireguard.com/papers/wireguard.pdf §5.4) with byte 1
// carrying our protocol version. Integers inside frames are little-endian, as in Noise nonces.
import {
  FRAME_INITIATION,
  FRAME_RESPONSE,
  FRAME_TRANSPORT,
  FRAME_COOKIE_REPLY,
  HEADER_LEN,
  INITIATION_LEN,
  LANE_INITIATION_LEN,
  LANE_PAYLOAD_LEN,
  KEY_LEN,
  MAC_LEN,
  MAX_FRAME_LEN,
  PROTOCOL_VERSION,
  RESPONSE_LEN,
  TAG_LEN,
  TIMESTAMP_LEN,
  TRANSPORT_HEADER_LEN,
  TRANSPORT_MIN_LEN,
} from './constants.js';
import { tunnelError } from './errors.js';

export interface InitiationFrame {
  readonly type: 'initiation';
  readonly senderIndex: number;
  readonly ephemeral: Buffer; // 32
  readonly encryptedStatic: Buffer; // 48
  readonly encryptedTimestamp: Buffer; // 28, or 32 in a lane initiation (the payload)
  readonly mac1: Buffer; // 16
  readonly mac2: Buffer; // 16
}

export interface ResponseFrame {
  readonly type: 'response';
  readonly senderIndex: number;
  readonly receiverIndex: number;
  readonly ephemeral: Buffer; // 32
  readonly encryptedNothing: Buffer; // 16
  readonly mac1: Buffer;
  readonly mac2: Buffer;
}

export interface TransportFrame {
  readonly type: 'transport';
  readonly receiverIndex: number;
  readonly counter: number;
  readonly ciphertext: Buffer; // plaintext length + 16
}

export type OuterFrame = InitiationFrame | ResponseFrame | TransportFrame;

/** Consecutive views into `buf` from `at` on: each call returns the next `len` bytes. */
function views(buf: Buffer, at: number): (len: number) => Buffer {
  let o = at;
  return (len) => {
    const v = buf.subarray(o, o + len);
    o += len;
    return v;
  };
}

/** Fields of a decoded frame are views into `buf`, not copies. Throws PPError on anything malformed. */
export function decodeFrame(buf: Buffer): OuterFrame {
  const type = checkHeader(buf);
  switch (type) {
    case FRAME_INITIATION: {
      if (buf.length !== INITIATION_LEN && buf.length !== LANE_INITIATION_LEN)
        throw malformed(`initiation must be ${INITIATION_LEN} or ${LANE_INITIATION_LEN} bytes, got ${buf.length}`);
      const senderIndex = buf.readUInt32LE(HEADER_LEN);
      const next = views(buf, HEADER_LEN + 4);
      const ephemeral = next(KEY_LEN);
      const encryptedStatic = next(KEY_LEN + TAG_LEN);
      // 148 bytes: the timestamp alone; 152: a lane initiation's payload (constants.ts LANE_PAYLOAD_LEN).
      const encryptedTimestamp = next(buf.length - INITIATION_LEN + TIMESTAMP_LEN + TAG_LEN);
      const mac1 = next(MAC_LEN);
      const mac2 = next(MAC_LEN);
      return { type: 'initiation', senderIndex, ephemeral, encryptedStatic, encryptedTimestamp, mac1, mac2 };
    }
    case FRAME_RESPONSE: {
      if (buf.length !== RESPONSE_LEN) throw malformed(`response must be ${RESPONSE_LEN} bytes, got ${buf.length}`);
      const senderIndex = buf.readUInt32LE(HEADER_LEN);
      const receiverIndex = buf.readUInt32LE(HEADER_LEN + 4);
      const next = views(buf, HEADER_LEN + 8);
      const ephemeral = next(KEY_LEN);
      const encryptedNothing = next(TAG_LEN);
      const mac1 = next(MAC_LEN);
      const mac2 = next(MAC_LEN);
      return { type: 'response', senderIndex, receiverIndex, ephemeral, encryptedNothing, mac1, mac2 };
    }
    case FRAME_TRANSPORT: {
      if (buf.length < TRANSPORT_MIN_LEN)
        throw malformed(`transport frame must be at least ${TRANSPORT_MIN_LEN} bytes, got ${buf.length}`);
      if (buf.length > MAX_FRAME_LEN) throw malformed(`frame longer than ${MAX_FRAME_LEN} bytes`);
      return {
        type: 'transport',
        receiverIndex: buf.readUInt32LE(4),
        counter: readCounter(buf, 8),
        ciphertext: buf.subarray(TRANSPORT_HEADER_LEN),
      };
    }
    case FRAME_COOKIE_REPLY:
      throw tunnelError('PP_ERR_TUNNEL_FRAME_TYPE', { type: 'cookie-reply (reserved, not in v1)' });
    default:
      throw tunnelError('PP_ERR_TUNNEL_FRAME_TYPE', { type });
  }
}

/** Validates the 4-byte header and returns the type byte. */
export function checkHeader(buf: Buffer): number {
  if (buf.length < HEADER_LEN) throw malformed(`frame shorter than its ${HEADER_LEN}-byte header`);
  if (buf[1] !== PROTOCOL_VERSION) throw tunnelError('PP_ERR_TUNNEL_FRAME_VERSION', { version: buf[1] as number });
  if (buf[2] !== 0 || buf[3] !== 0) throw malformed('reserved header bytes must be zero');
  return buf[0] as number;
}

/** u64 little-endian; values at or above 2^53 cannot be a live counter, so they read as Infinity. */
export function readCounter(buf: Buffer, offset: number): number {
  const lo = buf.readUInt32LE(offset);
  const hi = buf.readUInt32LE(offset + 4);
  return hi >= 0x20_0000 ? Infinity : hi * 0x1_0000_0000 + lo;
}

export function writeCounter(buf: Buffer, offset: number, counter: number): void {
  buf.writeUInt32LE(counter >>> 0, offset);
  buf.writeUInt32LE(Math.floor(counter / 0x1_0000_0000), offset + 4);
}

export function writeHeader(buf: Buffer, type: number): void {
  buf[0] = type;
  buf[1] = PROTOCOL_VERSION;
  buf[2] = 0;
  buf[3] = 0;
}

export function encodeInitiation(f: Omit<InitiationFrame, 'type'>): Buffer {
  const lane = f.encryptedTimestamp.length === LANE_PAYLOAD_LEN + TAG_LEN;
  const buf = Buffer.alloc(lane ? LANE_INITIATION_LEN : INITIATION_LEN);
  writeHeader(buf, FRAME_INITIATION);
  let o = HEADER_LEN;
  buf.writeUInt32LE(f.senderIndex >>> 0, o);
  o += 4;
  o += copyExact(f.ephemeral, buf, o, KEY_LEN, 'ephemeral');
  o += copyExact(f.encryptedStatic, buf, o, KEY_LEN + TAG_LEN, 'encrypted static');
  o += copyExact(
    f.encryptedTimestamp,
    buf,
    o,
    (lane ? LANE_PAYLOAD_LEN : TIMESTAMP_LEN) + TAG_LEN,
    'encrypted timestamp',
  );
  o += copyExact(f.mac1, buf, o, MAC_LEN, 'mac1');
  copyExact(f.mac2, buf, o, MAC_LEN, 'mac2');
  return buf;
}

export function encodeResponse(f: Omit<ResponseFrame, 'type'>): Buffer {
  const buf = Buffer.alloc(RESPONSE_LEN);
  writeHeader(buf, FRAME_RESPONSE);
  let o = HEADER_LEN;
  buf.writeUInt32LE(f.senderIndex >>> 0, o);
  o += 4;
  buf.writeUInt32LE(f.receiverIndex >>> 0, o);
  o += 4;
  o += copyExact(f.ephemeral, buf, o, KEY_LEN, 'ephemeral');
  o += copyExact(f.encryptedNothing, buf, o, TAG_LEN, 'encrypted nothing');
  o += copyExact(f.mac1, buf, o, MAC_LEN, 'mac1');
  copyExact(f.mac2, buf, o, MAC_LEN, 'mac2');
  return buf;
}

function copyExact(src: Buffer, dst: Buffer, at: number, len: number, what: string): number {
  if (src.length !== len) throw malformed(`${what} must be ${len} bytes, got ${src.length}`);
  src.copy(dst, at);
  return len;
}

function malformed(reason: string) {
  return tunnelError('PP_ERR_TUNNEL_FRAME_MALFORMED', { reason });
}
