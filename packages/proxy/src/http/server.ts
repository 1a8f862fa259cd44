// HTTP proxy: CONNECT tunnels and absolute-form requests.
//
//   customer -> relay:30000 -> tunnel -> device:8080 -> [this] -> target
//
// One customer connection may carry several absolute-form requests (keep-alive) and end in a
// CONNECT tunnel. Every request is authenticated (Proxy-Authorization: Basic) and dialed through
// the same `dial`, so the policy and egress binding apply to both paths.
import type * as net from 'node:net';
import { isPPError } from '@pocketproxy/errors';
import { proxyError, type PPError } from '../errors.js';
import { createPolicyDialer, classifyDialError } from '../dialer.js';
import { silentLogger } from '../logger.js';
import { relay } from '../relay.js';
import { ProxyServer, SocketAuthContext } from '../server-base.js';
import type { AllowNoAuth, AuthContext, Authenticate, Dial, Logger } from '../types.js';
import { parseProxyAuthorization } from './basic-auth.js';
import { ChunkedDecoder } from './chunked.js';
import { forward, endToEndHeaders, type Forwarded } from './forward.js';
import { findHeadEnd, headerValues, listMembers, parseAuthority, parseRequestHead, MAX_HEAD_BYTES, type RequestHead } from './head.js';
import { writeFailure } from './responses.js';

export interface HttpProxyOptions {
  readonly authenticate: Authenticate;
  /** Serve customers without Proxy-Authorization (an allow-listed source). Default false. */
  readonly allowNoAuth?: AllowNoAuth;
  /** Egress. Default: createPolicyDialer with the strict default policy (public addresses only). */
  readonly dial?: Dial;
  readonly logger?: Logger;
  /** Time allowed to send a complete request head (default 10 s). */
  readonly headTimeoutMs?: number;
  /** Idle time allowed between keep-alive requests (default 30 s). */
  readonly keepAliveTimeoutMs?: number;
  /** Tunnel / response idle timeout (default 5 min). */
  readonly idleTimeoutMs?: number;
  readonly maxConnections?: number;
  /**
   * Called just before the proxy ends a customer connection after its last answer, while that
   * answer's bytes are usually still in Node's write buffer. The agent sets TCP_CORK here, so the
   * answer's tail and the FIN leave in one segment (one tunnel frame each way fewer per request).
   */
  readonly beforeEnd?: (socket: net.Socket) => void;
}

const EMPTY = Buffer.alloc(0);

export function createHttpProxy(opts: HttpProxyOptions): ProxyServer {
  const dial = opts.dial ?? createPolicyDialer({ policy: {} });
  const cfg = {
    ...opts,
    dial,
    logger: opts.logger ?? silentLogger,
    headTimeoutMs: opts.headTimeoutMs ?? 10_000,
    keepAliveTimeoutMs: opts.keepAliveTimeoutMs ?? 30_000,
    idleTimeoutMs: opts.idleTimeoutMs ?? 300_000,
  };
  const server: ProxyServer = new ProxyServer((socket) => new HttpConnection(socket, cfg, server), opts.maxConnections);
  return server;
}

type Cfg = HttpProxyOptions & { dial: Dial; logger: Logger; headTimeoutMs: number; keepAliveTimeoutMs: number; idleTimeoutMs: number };
type BodySink = (chunk: Buffer) => number;

class HttpConnection {
  private buf: Buffer = EMPTY;
  /** 'head': parsing; 'busy': a request is being handled; 'tunnel'/'closing': no more parsing. */
  private state: 'head' | 'busy' | 'tunnel' | 'closing' = 'head';
  private body: BodySink | null = null;
  private principal: string | undefined;
  private fwd: Forwarded | null = null;
  private requests = 0;
  private readonly started = Date.now();
  private readonly ctx: AuthContext;

  constructor(private readonly socket: net.Socket, private readonly cfg: Cfg, private readonly events: ProxyServer) {
    this.ctx = new SocketAuthContext('http', socket);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.once('close', () => {
      this.fwd?.abort();
      if (this.principal === undefined) return;
      this.events.emit('connectionClosed', {
        principal: this.principal, protocol: 'http', bytesIn: socket.bytesRead, bytesOut: socket.bytesWritten, durationMs: Date.now() - this.started,
      });
    });
    // One listener for the connection's life; each phase only re-arms the duration.
    socket.on('timeout', this.onTimeout);
    socket.setTimeout(cfg.headTimeoutMs);
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.body) {
      const used = this.body(chunk);
      if (used === chunk.length) return;
      chunk = chunk.subarray(used);
    }
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.state === 'head') this.parseNext();
    // A pipelining client waits while we answer; stop reading once a head's worth is queued.
    else if (this.buf.length > MAX_HEAD_BYTES) this.socket.pause();
  };

  private readonly onEnd = (): void => {
    // Customer finished sending. Between requests that means goodbye; mid-request the answer still flows.
    if (this.state === 'head') this.socket.end();
  };

  private readonly onTimeout = (): void => {
    if (this.state === 'head' && this.buf.length > 0) {
      this.fail(proxyError('PP_ERR_PROXY_HANDSHAKE_TIMEOUT', { ms: this.cfg.headTimeoutMs }));
    } else this.socket.destroy();
  };

  private parseNext(): void {
    let end: number;
    let head: RequestHead;
    try {
      end = findHeadEnd(this.buf);
      if (end < 0) return;
      head = parseRequestHead(this.buf.subarray(0, end));
    } catch (e) {
      return this.fail(e);
    }
    this.buf = this.buf.subarray(end);
    this.state = 'busy';
    this.requests++;
    this.socket.setTimeout(this.cfg.idleTimeoutMs);
    this.handle(head).catch((e: unknown) => this.fail(e));
  }

  private async handle(head: RequestHead): Promise<void> {
    const isConnect = head.method === 'CONNECT';
    let host: string;
    let port: number;
    let url: URL | undefined;
    if (isConnect) ({ host, port } = parseAuthority(head.target));
    else {
      if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(head.target)) throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'a proxy request needs an absolute URI' });
      try { url = new URL(head.target); } catch { throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'invalid URI' }); }
      if (url.protocol !== 'http:') throw proxyError('PP_ERR_PROXY_UNSUPPORTED_SCHEME', { scheme: url.protocol.slice(0, -1) });
      if (url.username || url.password) throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'userinfo in URI' });
      host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
      port = url.port ? Number(url.port) : 80;
      if (host === '') throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'empty host' });
    }
    const framing = isConnect ? null : bodyFraming(head);
    const principal = await this.authenticate(head);
    this.principal = principal;

    // Hold the customer's bytes while we dial; they are replayed afterwards.
    this.socket.pause();
    let upstream: net.Socket;
    try {
      upstream = await this.cfg.dial({ host, port, principal });
    } catch (e) {
      throw classifyDialError(e, host, port);
    }
    if (this.socket.destroyed) return void upstream.destroy();
    if (isConnect) return this.tunnel(upstream);
    await this.forward(head, url!, framing!, upstream);
  }

  private async authenticate(head: RequestHead): Promise<string> {
    const cred = parseProxyAuthorization(head.headers);
    try {
      if (cred === undefined) {
        const anon = this.cfg.allowNoAuth;
        if (anon === true) return 'anonymous';
        const ok = typeof anon === 'function' ? await anon(this.ctx) : null;
        if (ok) return ok.principal;
        throw proxyError('PP_ERR_PROXY_AUTH_REQUIRED');
      }
      if (cred === 'malformed') throw proxyError('PP_ERR_PROXY_AUTH_FAILED');
      const ok = await this.cfg.authenticate(cred.user, cred.pass, this.ctx);
      if (!ok) throw proxyError('PP_ERR_PROXY_AUTH_FAILED');
      return ok.principal;
    } catch (e) {
      throw isPPError(e) ? e : proxyError('PP_ERR_PROXY_AUTH_UNAVAILABLE', {}, { cause: e });
    }
  }

  private tunnel(upstream: net.Socket): void {
    this.state = 'tunnel';
    this.socket.removeListener('data', this.onData);
    this.socket.removeListener('end', this.onEnd);
    this.socket.removeListener('timeout', this.onTimeout);
    this.socket.setTimeout(0);
    this.socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    // Bytes the customer sent right behind the CONNECT head (e.g. an eager ClientHello).
    if (this.buf.length > 0) upstream.write(this.buf);
    this.buf = EMPTY;
    relay(this.socket, upstream, { idleTimeoutMs: this.cfg.idleTimeoutMs }, () => {});
  }

  private async forward(head: RequestHead, url: URL, framing: Framing, upstream: net.Socket): Promise<void> {
    const conn = listMembers(head.headers, 'connection');
    const keepAlive = head.version === '1.1' && !conn.includes('close') && !listMembers(head.headers, 'proxy-connection').includes('close');
    const headers = endToEndHeaders(head.headers, conn);
    headers.unshift(['Host', url.host]);
    if (framing.kind === 'chunked') headers.push(['Transfer-Encoding', 'chunked']);
    const fwd = forward({ client: this.socket, upstream, method: head.method, path: url.pathname + url.search, headers, clientHttp11: head.version === '1.1', keepAlive });
    this.fwd = fwd;
    this.streamBody(framing, fwd);
    let result: { keepAlive: boolean };
    try {
      result = await fwd.done;
    } catch (e) {
      throw classifyDialError(e, url.hostname, Number(url.port || 80));
    }
    if (this.body) {
      // The origin answered before reading the whole body; the rest cannot be framed any more.
      result = { keepAlive: false };
      this.body = null;
    }
    this.fwd = null;
    if (!result.keepAlive || this.socket.readableEnded) {
      this.state = 'closing';
      this.cfg.beforeEnd?.(this.socket);
      this.socket.end();
      return;
    }
    this.state = 'head';
    this.socket.setTimeout(this.cfg.keepAliveTimeoutMs);
    this.socket.resume();
    if (this.buf.length > 0) this.parseNext();
  }

  /** Feeds the request body (buffered bytes first, then the socket) into the upstream request. */
  private streamBody(framing: Framing, fwd: Forwarded): void {
    const finish = (): void => { this.body = null; fwd.end(); };
    const put = (b: Buffer): void => {
      if (!fwd.write(b)) { this.socket.pause(); fwd.onDrain(() => this.socket.resume()); }
    };
    let sink: BodySink;
    if (framing.kind === 'none') return void (finish(), this.socket.resume());
    if (framing.kind === 'length') {
      let left = framing.length;
      sink = (chunk) => {
        const n = Math.min(left, chunk.length);
        if (n > 0) put(chunk.subarray(0, n));
        left -= n;
        if (left === 0) finish();
        return n;
      };
    } else {
      const dec = new ChunkedDecoder();
      sink = (chunk) => {
        let n: number;
        try { n = dec.push(chunk, put); } catch (e) { fwd.abort(); this.fail(e); return chunk.length; }
        if (dec.done) finish();
        return n;
      };
    }
    this.body = sink;
    const pending = this.buf;
    this.buf = EMPTY;
    if (pending.length > 0) {
      const used = sink(pending);
      this.buf = pending.subarray(used);
    }
    this.socket.resume();
  }

  private fail(e: unknown): void {
    const err: PPError = isPPError(e) ? e : proxyError('PP_ERR_PROXY_UPSTREAM_FAILED', { host: '?', port: 0 }, { cause: e });
    if (!isPPError(e)) this.cfg.logger.error({ err: e }, 'http proxy: unexpected failure');
    this.events.emit('requestFailed', { principal: this.principal, protocol: 'http', code: err.code, remoteAddress: this.ctx.remoteAddress });
    const answered = this.state === 'tunnel' || (this.fwd?.responded ?? false);
    this.state = 'closing';
    this.body = null;
    this.fwd?.abort();
    this.socket.removeListener('data', this.onData);
    // A failure after the answer started cannot be reported in-band.
    if (answered) this.socket.destroy();
    else writeFailure(this.socket, err);
    this.socket.resume();
  }
}

type Framing = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' };

/** RFC 9112 §6.3. Ambiguous framing is rejected outright (request smuggling). */
function bodyFraming(head: RequestHead): Framing {
  const te = listMembers(head.headers, 'transfer-encoding');
  const cl = headerValues(head.headers, 'content-length');
  if (te.length > 0) {
    if (cl.length > 0) throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'both Content-Length and Transfer-Encoding' });
    if (te.length !== 1 || te[0] !== 'chunked') throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'unsupported Transfer-Encoding' });
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
