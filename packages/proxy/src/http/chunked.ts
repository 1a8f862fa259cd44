// Incremental decoder for a chunked body (RFC 9112 §7.1): the customer's request body (re-framed
// towards the target by forward.ts) and the origin's answer (response-reader.ts, which turns the
// errors into PP_ERR_PROXY_BAD_UPSTREAM_RESPONSE). Bounded: size lines and trailers are limited.
import { proxyError } from '../errors.js';

const MAX_LINE = 4096;
const MAX_TRAILER_BYTES = 16 * 1024;

type State = 'size' | 'data' | 'data-crlf' | 'trailer' | 'done';

export class ChunkedDecoder {
  private state: State = 'size';
  private line = '';
  private remaining = 0;
  private trailerBytes = 0;

  get done(): boolean {
    return this.state === 'done';
  }

  /**
   * Consumes bytes; calls `onData` with body slices (views into `buf`, no copies).
   * Returns how many bytes of `buf` belong to this body (the rest is the next request).
   */
  push(buf: Buffer, onData: (b: Buffer) => void): number {
    let i = 0;
    while (i < buf.length && this.state !== 'done') {
      if (this.state === 'data') {
        const n = Math.min(this.remaining, buf.length - i);
        onData(buf.subarray(i, i + n));
        i += n;
        this.remaining -= n;
        if (this.remaining === 0) this.state = 'data-crlf';
        continue;
      }
      // Line-oriented states.
      const nl = buf.indexOf(10, i);
      const end = nl < 0 ? buf.length : nl + 1;
      this.line += buf.toString('latin1', i, end);
      i = end;
      if (this.line.length > MAX_LINE || this.trailerBytes > MAX_TRAILER_BYTES) this.fail('chunk line too long');
      if (nl < 0) break;
      const line = this.line;
      this.line = '';
      if (!line.endsWith('\r\n')) this.fail('bare LF in chunked body');
      const text = line.slice(0, -2);
      if (this.state === 'data-crlf') {
        if (text !== '') this.fail('missing CRLF after chunk');
        this.state = 'size';
      } else if (this.state === 'size') {
        const m = /^([0-9A-Fa-f]{1,8})(?:[ \t]*;.*)?$/.exec(text);
        if (!m) this.fail('bad chunk size');
        this.remaining = parseInt(m[1]!, 16);
        this.state = this.remaining === 0 ? 'trailer' : 'data';
      } else if (this.state === 'trailer') {
        this.trailerBytes += line.length;
        if (text === '') this.state = 'done';
      }
    }
    return i;
  }

  private fail(reason: string): never {
    throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason });
  }
}
