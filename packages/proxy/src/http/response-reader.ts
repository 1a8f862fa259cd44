// Incremental reader of one HTTP/1.x answer from an origin (RFC 9112 §4, §6.3), pure: bytes in,
// events out. forward.ts feeds it the upstream socket's chunks.
//
//   [interim 1xx heads]* final head  body (none | Content-Length | chunked | until close)
//
// Interim answers (100 Continue, 103 Early Hints) come out as `interim` and reading goes on. A 101
// is refused: we never ask for an upgrade (Upgrade is hop-by-hop and stripped). Anything malformed
// (status line, fields, framing, chunk syntax, a head over MAX_HEAD_BYTES) throws
// PP_ERR_PROXY_BAD_UPSTREAM_RESPONSE; the cause says why.
import { isPPError } from '@pocketproxy/errors';
import { proxyError } from '../errors.js';
import { ChunkedDecoder } from './chunked.js';
import {
  findHeadEnd,
  headerValues,
  listMembers,
  parseResponseHead,
  MAX_HEAD_BYTES,
  type ResponseHead,
} from './head.js';

export type ResponseFraming =
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; readonly length: number }
  | { readonly kind: 'chunked' }
  | { readonly kind: 'close' };

export interface ResponseEvents {
  interim(head: ResponseHead): void;
  head(head: ResponseHead, framing: ResponseFraming): void;
  /** A body slice (decoded when chunked); a view into the pushed chunk. */
  body(slice: Buffer): void;
  /** The answer is complete. Bytes after it are ignored (we send Connection: close upstream). */
  end(): void;
}

function invalid(reason: string, cause?: unknown): never {
  throw proxyError('PP_ERR_PROXY_BAD_UPSTREAM_RESPONSE', { reason }, { cause: cause ?? new Error(reason) });
}

/** RFC 9112 §6.3 for an answer to `method`. Throws on ambiguous or invalid framing. */
export function responseFraming(method: string, head: ResponseHead): ResponseFraming {
  const s = head.status;
  if (method === 'HEAD' || (s >= 100 && s < 200) || s === 204 || s === 304) return { kind: 'none' };
  const te = listMembers(head.headers, 'transfer-encoding');
  // Transfer-Encoding overrides Content-Length (§6.3 item 3); chunked must be the final coding,
  // otherwise the body runs until the connection closes.
  if (te.length > 0) return te[te.length - 1] === 'chunked' ? { kind: 'chunked' } : { kind: 'close' };
  const cl = headerValues(head.headers, 'content-length');
  if (cl.length === 0) return { kind: 'close' };
  const values = new Set(cl.flatMap((v) => v.split(',')).map((x) => x.trim()));
  const v = values.size === 1 ? [...values][0]! : '';
  if (!/^\d{1,15}$/.test(v)) invalid('invalid Content-Length');
  return { kind: 'length', length: Number(v) };
}

/**
 * The answer head at the start of `buf` (an interim one or the final one) and where it ends, or null
 * when more bytes are needed; throws PP_ERR_PROXY_BAD_UPSTREAM_RESPONSE for a head over `maxHead`, a
 * malformed one, or a 101 (we never ask for an upgrade). `from`: where the last search stopped.
 */
export function nextResponseHead(
  buf: Buffer,
  maxHead = MAX_HEAD_BYTES,
  from = 0,
): { readonly head: ResponseHead; readonly end: number } | null {
  let end: number;
  try {
    end = findHeadEnd(buf, maxHead, from);
  } catch (e) {
    invalid('response head too large', e);
  }
  if (end < 0) return null;
  let head: ResponseHead;
  try {
    head = parseResponseHead(buf.subarray(0, end));
  } catch (e) {
    invalid(isPPError(e) ? String(e.params?.reason ?? e.message) : 'malformed head', e);
  }
  if (head.status === 101) invalid('unexpected 101 Switching Protocols');
  return { head, end };
}

type State = 'head' | 'length' | 'chunked' | 'close' | 'done';

export class ResponseReader {
  private state: State = 'head';
  private buf: Buffer = Buffer.alloc(0);
  private searched = 0;
  private left = 0;
  private chunked: ChunkedDecoder | undefined;

  constructor(
    private readonly method: string,
    private readonly ev: ResponseEvents,
    private readonly maxHead = MAX_HEAD_BYTES,
  ) {}

  /** True once the final head was read. */
  get headRead(): boolean {
    return this.state !== 'head';
  }

  get done(): boolean {
    return this.state === 'done';
  }

  push(chunk: Buffer): void {
    if (this.state === 'done') return;
    if (this.state === 'head') {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      this.readHeads();
      return;
    }
    this.readBody(chunk);
  }

  /**
   * The origin closed its side. Returns true when that completes the answer (a body read until
   * close, or an answer already complete); false when the answer was cut short.
   */
  eof(): boolean {
    if (this.state === 'done') return true;
    if (this.state !== 'close') return false;
    this.state = 'done';
    this.ev.end();
    return true;
  }

  private readHeads(): void {
    while (this.state === 'head') {
      const next = nextResponseHead(this.buf, this.maxHead, this.searched);
      if (next === null) {
        this.searched = this.buf.length;
        return;
      }
      const { head, end } = next;
      const rest = this.buf.subarray(end);
      this.buf = Buffer.alloc(0);
      this.searched = 0;
      if (head.status < 200) {
        this.ev.interim(head);
        this.buf = rest;
        continue;
      }
      const framing = responseFraming(this.method, head);
      this.state = framing.kind === 'none' ? 'done' : framing.kind;
      if (framing.kind === 'length') this.left = framing.length;
      if (framing.kind === 'chunked') this.chunked = new ChunkedDecoder();
      this.ev.head(head, framing);
      if (framing.kind === 'none' || (framing.kind === 'length' && framing.length === 0)) {
        this.state = 'done';
        this.ev.end();
        return;
      }
      if (rest.length > 0) this.readBody(rest);
    }
  }

  private readBody(chunk: Buffer): void {
    if (this.state === 'close') {
      if (chunk.length > 0) this.ev.body(chunk);
      return;
    }
    if (this.state === 'length') {
      const n = Math.min(this.left, chunk.length);
      this.left -= n;
      if (n > 0) this.ev.body(n === chunk.length ? chunk : chunk.subarray(0, n));
      if (this.left === 0) {
        this.state = 'done';
        this.ev.end();
      }
      return;
    }
    if (this.state === 'chunked') {
      const dec = this.chunked!;
      try {
        dec.push(chunk, (b) => {
          if (b.length > 0) this.ev.body(b);
        });
      } catch (e) {
        if (!isPPError(e) || e.code !== 'PP_ERR_PROXY_BAD_REQUEST') throw e;
        invalid(String(e.params?.reason ?? 'bad chunked body'), e);
      }
      if (dec.done) {
        this.state = 'done';
        this.ev.end();
      }
    }
  }
}
