// Request bodies of absolute-form requests: how they are framed (RFC 9112 §6.3) and a sink that
// consumes exactly the body's bytes from the customer stream, leaving the rest (a pipelined next
// request) to the caller.
import { proxyError } from '../errors.js';
import { ChunkedDecoder } from './chunked.js';
import { headerValues, listMembers, type RequestHead } from './head.js';

export type Framing = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' };

/** Consumes a chunk's body bytes; returns how many were body (the rest belongs to the next request). */
export type BodySink = (chunk: Buffer) => number;

/** RFC 9112 §6.3. Ambiguous framing is rejected outright (request smuggling). */
export function bodyFraming(head: RequestHead): Framing {
  const te = listMembers(head.headers, 'transfer-encoding');
  const cl = headerValues(head.headers, 'content-length');
  if (te.length > 0) {
    if (cl.length > 0)
      throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'both Content-Length and Transfer-Encoding' });
    if (te.length !== 1 || te[0] !== 'chunked')
      throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'unsupported Transfer-Encoding' });
    return { kind: 'chunked' };
  }
  if (cl.length === 0) return { kind: 'none' };
  const values = new Set(cl.flatMap((v) => v.split(',')).map((s) => s.trim()));
  if (values.size !== 1) throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'conflicting Content-Length' });
  const v = [...values][0]!;
  if (!/^\d{1,15}$/.test(v)) throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'invalid Content-Length' });
  const length = Number(v);
  return length === 0 ? { kind: 'none' } : { kind: 'length', length };
}

/**
 * A sink for a body with `framing` (not 'none'). `put` gets body slices (decoded when chunked),
 * `finish` runs once the body is complete, `invalid` on a malformed chunked body (the sink then
 * claims the whole chunk: nothing after it can be trusted).
 */
export function bodySink(
  framing: Exclude<Framing, { kind: 'none' }>,
  put: (b: Buffer) => void,
  finish: () => void,
  invalid: (e: unknown) => void,
): BodySink {
  if (framing.kind === 'length') {
    let left = framing.length;
    return (chunk) => {
      const n = Math.min(left, chunk.length);
      if (n > 0) put(n === chunk.length ? chunk : chunk.subarray(0, n));
      left -= n;
      if (left === 0) finish();
      return n;
    };
  }
  const dec = new ChunkedDecoder();
  return (chunk) => {
    let n: number;
    try {
      n = dec.push(chunk, put);
    } catch (e) {
      invalid(e);
      return chunk.length;
    }
    if (dec.done) finish();
    return n;
  };
}
