// One absolute-form request forwarded to its origin over a socket we already dialed
// (customer -> device:<connection port> -> [this] -> target:80). We write the request head ourselves and read
// the answer with ResponseReader (response-reader.ts), then write the answer to the customer with
// our own framing. node:http's client (ClientRequest, IncomingMessage, parser, streams) was ~10 % of
// the agent's CPU at 700 new proxied connections/s for what is a few writes and one head parse.
//
// Upstream is one request per connection (Connection: close, as node:http sent without an agent):
// the customer's keep-alive is ours to serve, the origin's is not worth a pool on a phone.
import type { ProxySocket } from '../socket.js';
import { proxyError } from '../errors.js';
import { BudgetSpent, Hold, MeteredFeed } from '../limits/flow.js';
import type { Meter } from '../types.js';
import type { Header, ResponseHead } from './head.js';
import { ResponseReader, type ResponseFraming } from './response-reader.js';
import type { BodyHandoff } from '../lean/handoff.js';

/** RFC 9110 §7.6.1 hop-by-hop fields, plus the proxy-only ones we consume. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export function endToEndHeaders(
  headers: readonly Header[],
  connectionTokens: readonly string[],
): Array<[string, string]> {
  const drop = new Set(connectionTokens);
  const out: Array<[string, string]> = [];
  for (const h of headers)
    if (!HOP_BY_HOP.has(h.lower) && !drop.has(h.lower) && h.lower !== 'host') out.push([h.name, h.value]);
  return out;
}

export interface ForwardParams {
  readonly client: ProxySocket;
  readonly upstream: ProxySocket;
  readonly method: string;
  /** The request head as it goes upstream (requestHead()). */
  readonly request: { readonly head: string; readonly chunked: boolean };
  /** The head was written on `upstream` already (while it was connecting: DialRequest.onSocket). */
  readonly headSent?: boolean;
  /** Whether the customer may get a chunked answer (HTTP/1.1). */
  readonly clientHttp11: boolean;
  readonly keepAlive: boolean;
  /** Charged 'down' for every byte read from the origin (head and body, as received). */
  readonly meter?: Meter;
  /**
   * Offered the rest of an answer body of known length (at least LEND_MIN_BYTES after the first
   * read): it then moves from the origin's socket to the customer's in the kernel (lean/handoff.ts).
   */
  readonly bodyHandoff?: BodyHandoff;
  /** The engine's idle limit for such a body (the customer socket's own timeout is off meanwhile). */
  readonly idleTimeoutMs?: number;
}

/**
 * Bodies shorter than this after the first read stay in JS: a lend costs the engine two dup()s, three
 * epoll_ctl()s and two close()s, which a few reads and writes in JS cost too.
 */
export const LEND_MIN_BYTES = 64 * 1024;

export interface Forwarded {
  /** Write a body slice; false means "pause the customer until onDrain". */
  write(b: Buffer): boolean;
  end(): void;
  onDrain(cb: () => void): void;
  abort(): void;
  /** True once the answer's head went to the customer. */
  readonly responded: boolean;
  /** Settles when the answer was fully written: keepAlive tells whether the customer connection may serve another request. */
  readonly done: Promise<{ keepAlive: boolean }>;
}

// Methods for which a request without framing fields means "no body" anyway (node:http's
// useChunkedEncodingByDefault list); for the others an empty body is announced with Content-Length: 0.
const BODYLESS_BY_DEFAULT = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

/** The request head as it goes upstream. */
export function requestHead(
  method: string,
  path: string,
  headers: ReadonlyArray<readonly [string, string]>,
): { head: string; chunked: boolean } {
  let head = `${method} ${path} HTTP/1.1\r\n`;
  let chunked = false;
  let framed = false;
  for (const [name, value] of headers) {
    head += `${name}: ${value}\r\n`;
    const lower = name.toLowerCase();
    if (lower === 'transfer-encoding') {
      chunked = true;
      framed = true;
    } else if (lower === 'content-length') framed = true;
  }
  if (!framed && !BODYLESS_BY_DEFAULT.has(method)) head += 'Content-Length: 0\r\n';
  return { head: `${head}Connection: close\r\n\r\n`, chunked };
}

/** The answer's head as it goes to the customer, and how its body is framed there. */
export function clientHead(
  res: ResponseHead,
  framing: ResponseFraming,
  p: Pick<ForwardParams, 'clientHttp11' | 'keepAlive'>,
): { head: string; chunk: boolean; keepAlive: boolean } {
  const connTokens = new Set<string>();
  for (const h of res.headers)
    if (h.lower === 'connection') for (const t of h.value.split(',')) connTokens.add(t.trim().toLowerCase());
  const hasTe = framing.kind === 'chunked' || res.headers.some((h) => h.lower === 'transfer-encoding');
  let head = `HTTP/1.1 ${res.status} ${res.reason}\r\n`;
  for (const h of res.headers) {
    if (HOP_BY_HOP.has(h.lower) || connTokens.has(h.lower)) continue;
    if (h.lower === 'content-length' && hasTe) continue;
    head += `${h.name}: ${h.value}\r\n`;
  }
  const empty = framing.kind === 'none';
  const hasLength = framing.kind === 'length';
  const chunk = !empty && !hasLength && p.clientHttp11;
  const keepAlive = p.keepAlive && (empty || hasLength || chunk);
  if (chunk) head += 'Transfer-Encoding: chunked\r\n';
  head += keepAlive ? 'Connection: keep-alive\r\n\r\n' : 'Connection: close\r\n\r\n';
  return { head, chunk, keepAlive };
}

/** An interim answer (100 Continue, 103 Early Hints) passed on with its end-to-end fields. */
export function interimHead(res: ResponseHead): string {
  let head = `HTTP/1.1 ${res.status} ${res.reason}\r\n`;
  for (const h of res.headers) if (!HOP_BY_HOP.has(h.lower)) head += `${h.name}: ${h.value}\r\n`;
  return `${head}\r\n`;
}

/**
 * One chunk of a chunked body. All three writes happen whatever the first ones return (a false
 * only means "buffer full"; skipping the rest would corrupt the framing); the last one's answer is
 * the buffer's state after all of them.
 */
function writeChunk(s: ProxySocket, b: Buffer): boolean {
  s.write(`${b.length.toString(16)}\r\n`);
  s.write(b);
  return s.write('\r\n');
}

const hangUp = (): Error => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

export function forward(p: ForwardParams): Forwarded {
  const { client, upstream, request: req } = p;
  let responded = false;
  let finished = false;
  let chunk = false;
  let keepAlive = false;
  let settle!: { resolve: (r: { keepAlive: boolean }) => void; reject: (e: unknown) => void };
  const done = new Promise<{ keepAlive: boolean }>((resolve, reject) => {
    settle = { resolve, reject };
  });
  done.catch(() => {});
  // Reading from the origin pauses for the customer's full write buffer and for meter waits alike.
  const hold = new Hold(upstream);
  let drainWait = false;
  // An answer whose body may go to the engine: its head and the body bytes read with it wait here until
  // the read that brought them is done (then lent, or written as always). null: not (or no longer) waiting.
  let lendable: { parts: Buffer[]; left: number } | null = null;

  const fail = (e: unknown): void => {
    if (finished) return;
    finished = true;
    cleanup();
    // A failure after the answer started cannot be reported in-band.
    if (responded) client.destroy();
    settle.reject(e);
  };
  const onClientDrain = (): void => {
    if (!drainWait) return;
    drainWait = false;
    hold.release();
  };
  const reader = new ResponseReader(p.method, {
    // RFC 9110 §15.2: no 1xx to an HTTP/1.0 customer.
    interim: (h) => {
      if (p.clientHttp11) client.write(interimHead(h));
    },
    head: (h, framing) => {
      responded = true;
      const out = clientHead(h, framing, p);
      chunk = out.chunk;
      keepAlive = out.keepAlive;
      if (p.bodyHandoff && framing.kind === 'length' && framing.length >= LEND_MIN_BYTES) {
        lendable = { parts: [Buffer.from(out.head, 'latin1')], left: framing.length };
        return;
      }
      // Head and the first body bytes (usually parsed from the same upstream segment) leave in one
      // write: with Nagle off they would be two segments, i.e. two sealed tunnel packets per answer.
      client.cork();
      client.write(out.head);
      setImmediate(() => {
        if (client.writableCorked) client.uncork();
      });
    },
    body: (b) => {
      if (lendable) {
        lendable.parts.push(b);
        lendable.left -= b.length;
        return;
      }
      const ok = chunk ? writeChunk(client, b) : client.write(b);
      if (!ok && !drainWait) {
        drainWait = true;
        hold.hold();
      }
    },
    end: () => {
      if (lendable) writeHeld();
      if (chunk) client.write('0\r\n\r\n');
      finished = true;
      settle.resolve({ keepAlive });
      // The origin's socket goes after the caller's reaction to `done`, queued just now, has handed
      // the answer to the customer's socket (and, on a last request, closed it): closing a socket
      // costs a system call and its FIN, which need not come before the customer's answer.
      queueMicrotask(cleanup);
    },
  });
  // The held head and body bytes, written as the JS path writes them (one write).
  const writeHeld = (): void => {
    const parts = lendable!.parts;
    lendable = null;
    if (!client.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts)) && !drainWait) {
      drainWait = true;
      hold.hold();
    }
  };
  // After the read that brought an answer's head: the rest of its body to the engine, or JS as always.
  const tryLend = (): void => {
    const l = lendable!;
    if (l.left < LEND_MIN_BYTES) return void writeHeld();
    const toClient = Buffer.concat(l.parts);
    const taken = p.bodyHandoff!(client, upstream, {
      toClient,
      length: l.left,
      idleTimeoutMs: p.idleTimeoutMs,
      meter: p.meter,
      done: (end) => {
        if (finished) return;
        if (end !== 'clean') return fail(hangUp());
        finished = true;
        settle.resolve({ keepAlive });
        queueMicrotask(cleanup);
      },
    });
    if (!taken) return void writeHeld();
    lendable = null;
  };
  const onData = (d: Buffer): void => {
    try {
      reader.push(d);
      if (lendable && !finished) tryLend();
    } catch (e) {
      fail(e);
    }
  };
  // Budget spent: the customer connection and the origin go at once (no in-band answer).
  const kill = (): void => {
    if (finished) return;
    finished = true;
    cleanup();
    client.destroy();
    settle.reject(new BudgetSpent());
  };
  const feed = p.meter ? new MeteredFeed(p.meter, 'down', hold, onData, kill) : null;
  // The origin's FIN/close is judged after the bytes the meter still holds back were read.
  const eof = (): void => {
    if (!reader.eof()) fail(hangUp());
  };
  const onEnd = (): void => {
    if (feed) feed.whenFlushed(eof);
    else eof();
  };
  const onError = (e: Error): void => fail(e);
  const onClose = onEnd;
  function cleanup(): void {
    feed?.stop();
    upstream.removeListener('data', feed ? feed.push : onData);
    upstream.removeListener('end', onEnd);
    upstream.removeListener('error', onError);
    upstream.removeListener('close', onClose);
    client.removeListener('drain', onClientDrain);
    upstream.destroy();
  }
  upstream.on('data', feed ? feed.push : onData);
  upstream.on('end', onEnd);
  upstream.on('error', onError);
  upstream.on('close', onClose);
  client.on('drain', onClientDrain);
  if (!p.headSent) upstream.write(req.head);

  return {
    write: (b) => (req.chunked ? writeChunk(upstream, b) : upstream.write(b)),
    end: () => {
      if (req.chunked && !upstream.destroyed) upstream.write('0\r\n\r\n');
    },
    onDrain: (cb) => {
      upstream.once('drain', cb);
    },
    abort: () => {
      if (!finished) {
        finished = true;
        cleanup();
        settle.reject(proxyError('PP_ERR_PROXY_UPSTREAM_FAILED', { host: '?', port: 0 }));
      }
      upstream.destroy();
    },
    get responded() {
      return responded;
    },
    done,
  };
}
