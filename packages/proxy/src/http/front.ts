// The HTTP front (front/connection.ts): the HTTP proxy's decision for a connection the native engine
// accepted and read the request head of. A CONNECT of an unlimited customer is connected by the
// engine, which writes the 200 and relays the pair kernel to kernel.
//
// A customer's last GET (HTTP/1.1, Connection: close, no body) is served here too: the engine writes
// the upstream request, answered() rewrites the answer's heads once, the body is spliced.
// One home per flow: everything else is adopted, that is the socket and the bytes read so far go to
// the JS path as if it had accepted them: keep-alive and other requests (bodies, answer framing),
// heads the parser refuses (its 400 / 431 come from there), limited meters (budgets and rates are
// applied in JS). Failures (407, 403, DNS, refused, unreachable, timeout, an unreadable answer) are
// answered here with the JS path's own answers (responses.ts failureResponse).
import { isPPError } from '@pocketproxy/errors';
import type { PPError } from '../errors.js';
import { FrontConnection, type FrontJoin } from '../front/connection.js';
import { SocketAuthContext } from '../server-base.js';
import type { ProxySocket } from '../socket.js';
import { bodyFraming } from './body.js';
import { ChunkedDecoder } from './chunked.js';
import { clientHead, interimHead } from './forward.js';
import { findHeadEnd, parseRequestHead } from './head.js';
import { nextResponseHead, responseFraming } from './response-reader.js';
import { upstreamRequest } from './server.js';
import { authenticateRequest, requestTarget } from './request.js';
import { failureResponse } from './responses.js';
import { proxyError } from '../errors.js';

const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection Established\r\n\r\n');
const NO_JOIN: FrontJoin = { toClient: null, replyBytes: 0, request: true };
const TUNNEL: FrontJoin = { toClient: ESTABLISHED, replyBytes: ESTABLISHED.length, request: false };

/** One customer connection of an HTTP front, from its request head on (see the file's head). */
export class HttpFrontConnection extends FrontConnection {
  /** A last GET's upstream request (served here, its answer head rewritten by answered()). */
  private request: Buffer | null = null;

  protected readonly protocol = 'http';

  protected start(leave: () => void): void {
    this.decide(leave).catch((e: unknown) => this.fail(e));
  }

  private async decide(leave: () => void): Promise<void> {
    const cfg = this.cfg!;
    const server = this.server!;
    const bytes = this.bytes;
    if (this.why === 'timeout') {
      server.stats.handshakeTimeouts++;
      throw proxyError('PP_ERR_PROXY_HANDSHAKE_TIMEOUT', { ms: cfg.headTimeoutMs });
    }
    // Anything but a complete, valid CONNECT head goes to the JS path, which answers it as always.
    let end: number;
    let head: ReturnType<typeof parseRequestHead>;
    try {
      end = this.why === 'complete' ? findHeadEnd(bytes) : -1;
      if (end < 0) return this.adopt();
      head = parseRequestHead(bytes.subarray(0, end));
    } catch {
      return this.adopt();
    }
    // A GET that is the customer's last request (HTTP/1.1, Connection: close, no body, nothing behind
    // it) is served here too: its answer ends the connection, so no framing is followed past it.
    let request: Buffer | null = null;
    let target: ReturnType<typeof requestTarget>;
    if (head.method !== 'CONNECT') {
      if (head.method !== 'GET' || head.version !== '1.1' || bytes.length !== end) return this.adopt();
      try {
        target = requestTarget(head);
      } catch {
        return this.adopt();
      }
      const framing = bodyFraming(head);
      if (!target.url || framing.kind !== 'none') return this.adopt();
      const out = upstreamRequest(head, target.url, framing);
      if (out.keepAlive) return this.adopt();
      request = Buffer.from(out.request.head, 'latin1');
    } else target = requestTarget(head); // a bad authority: the JS path's 400, answered here
    const { host, port } = target;
    const ctx = new SocketAuthContext('http', this as unknown as ProxySocket);
    const p = await authenticateRequest(head, cfg, ctx, server.stats);
    this.principal = p.principal;
    leave();
    if (p.deny) {
      server.stats.denied++;
      throw p.deny;
    }
    // A budget or a rate limit is applied as bytes move, in JS: that customer's tunnel runs there.
    if (p.meter && p.meter.unlimited?.() !== true) return this.adopt();
    if (this.destroyed) return;
    this.meter = p.meter;
    this.request = request;
    this.headBytes = end;
    this.first = request ?? (bytes.length > end ? bytes.subarray(end) : null);
    await this.dial(host, port);
  }

  protected joinWith(): FrontJoin {
    return this.request !== null ? NO_JOIN : TUNNEL;
  }

  protected failureAnswer(err: PPError): Buffer {
    return Buffer.from(failureResponse(err));
  }

  /**
   * A request's answer so far: its heads (interim ones, then the final one) rewritten as the JS path
   * rewrites them (forward.ts), and how long its body is. -1: more bytes are needed; undefined: the
   * answer is refused (502, as the JS path answers an unreadable one).
   */
  protected override answered(bytes: Buffer): -1 | readonly [number, Buffer, number] | undefined {
    if (this.destroyed) return undefined;
    try {
      let pos = 0;
      let out = '';
      for (;;) {
        const next = nextResponseHead(bytes.subarray(pos));
        if (next === null) return -1;
        pos += next.end;
        if (next.head.status < 200) {
          out += interimHead(next.head);
          continue;
        }
        const framing = responseFraming('GET', next.head);
        // A body delimited by the origin's close reaches the customer so delimited (its last request:
        // Connection: close), a chunked one as the origin chunked it.
        const head = clientHead(next.head, framing, { clientHttp11: framing.kind !== 'close', keepAlive: false });
        out += head.head;
        const toClient = Buffer.from(out, 'latin1');
        let length = framing.kind === 'length' ? framing.length : framing.kind === 'none' ? 0 : -1;
        if (framing.kind === 'chunked') length = chunkedLength(bytes.subarray(pos));
        // Every byte read from the origin is charged (as the JS path does); the customer gets the
        // rewritten heads and the body bytes read with them (the engine cuts what follows the body).
        this.unchargedDown += bytes.length;
        const body = bytes.length - pos;
        this.bytesWritten += toClient.length + (length >= 0 ? Math.min(body, length) : body);
        return [pos, toClient, length];
      }
    } catch (e) {
      this.badAnswer = isPPError(e) ? e : undefined;
      return undefined;
    }
  }
}

/**
 * The length of a chunked body when all of it (last chunk and trailers) is in `body`, else -1: the
 * engine then ends the answer as soon as it is delivered (its bytes and the FIN in one segment, as the
 * JS path ends after the last chunk) instead of at the origin's close. Bytes that do not parse are
 * passed on as the origin sent them (-1): the customer's parser judges them, as it would behind any proxy
 * that relays chunked bodies unchanged.
 */
function chunkedLength(body: Buffer): number {
  const dec = new ChunkedDecoder();
  try {
    const used = dec.push(body, () => {});
    return dec.done ? used : -1;
  } catch {
    return -1;
  }
}
