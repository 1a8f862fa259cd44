// TCP fallback framing: each outer frame is preceded by its length as 2 bytes big-endian, on the
// same port as UDP. The decoder accepts any chunking of the stream (a frame split across many
// 'data' events, or many frames in one) and copies only when a frame straddles chunks.
// A bad length means the stream is out of sync and cannot recover: the decoder fails for good and
// the caller closes the connection.
import { MAX_FRAME_LEN, TRANSPORT_MIN_LEN } from './constants.js';
import { tunnelError } from './errors.js';
import type { PPError } from '@pocketproxy/errors';

/** Smallest possible frame (an empty transport frame); anything shorter is a desync. */
export const TCP_MIN_FRAME_LEN = TRANSPORT_MIN_LEN;

/** Returns prefix + frame as one buffer (one copy). For zero-copy use `tcpLengthPrefix` + writev. */
export function encodeTcpFrame(frame: Buffer): Buffer {
  const out = Buffer.allocUnsafe(frame.length + 2);
  out.writeUInt16BE(checkLen(frame.length), 0);
  frame.copy(out, 2);
  return out;
}

export function tcpLengthPrefix(frameLength: number): Buffer {
  const out = Buffer.allocUnsafe(2);
  out.writeUInt16BE(checkLen(frameLength), 0);
  return out;
}

function checkLen(len: number): number {
  if (!Number.isInteger(len) || len < TCP_MIN_FRAME_LEN || len > MAX_FRAME_LEN) {
    throw tunnelError('PP_ERR_TUNNEL_TCP_FRAME_LENGTH', { length: len, min: TCP_MIN_FRAME_LEN, max: MAX_FRAME_LEN });
  }
  return len;
}

export class TcpFrameDecoder {
  private hdr = -1; // first length byte when only one has arrived
  private body: Buffer | undefined; // frame being assembled across chunks
  private filled = 0;
  private failure: PPError | undefined;

  /** Bytes held waiting for the rest of a frame. */
  get buffered(): number {
    return (this.hdr >= 0 ? 1 : 0) + (this.body ? this.filled + 2 : 0);
  }

  /** Feeds one chunk; returns the complete frames it finished (views into `chunk` when possible). */
  push(chunk: Buffer): Buffer[] {
    if (this.failure) throw this.failure;
    const frames: Buffer[] = [];
    let o = 0;
    const n = chunk.length;
    while (o < n) {
      if (this.body) {
        const take = Math.min(this.body.length - this.filled, n - o);
        chunk.copy(this.body, this.filled, o, o + take);
        this.filled += take;
        o += take;
        if (this.filled === this.body.length) {
          frames.push(this.body);
          this.body = undefined;
        }
        continue;
      }
      let len: number;
      if (this.hdr >= 0) {
        len = (this.hdr << 8) | (chunk[o] as number);
        this.hdr = -1;
        o += 1;
      } else if (n - o >= 2) {
        len = chunk.readUInt16BE(o);
        o += 2;
      } else {
        this.hdr = chunk[o] as number;
        o += 1;
        break;
      }
      if (len < TCP_MIN_FRAME_LEN) {
        this.failure = tunnelError('PP_ERR_TUNNEL_TCP_FRAME_LENGTH', {
          length: len,
          min: TCP_MIN_FRAME_LEN,
          max: MAX_FRAME_LEN,
        });
        throw this.failure;
      }
      if (n - o >= len) {
        frames.push(chunk.subarray(o, o + len));
        o += len;
      } else {
        this.body = Buffer.allocUnsafe(len);
        this.filled = 0;
      }
    }
    return frames;
  }
}
