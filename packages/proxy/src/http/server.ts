// HTTP proxy: CONNECT tunnels and absolute-form requests.
//
//   customer -> relay:30000 -> tunnel -> device:30000 -> [this] -> target
//
// One customer connection may carry several absolute-form requests (keep-alive) and end in a
// CONNECT tunnel. Every request is authenticated (Proxy-Authorization: Basic) and dialed through
// the same `dial`, so the policy and egress binding apply to both paths. A request head must be
// complete within headTimeoutMs counted from accept (first request) or from its first byte (later
// keep-alive requests): an absolute deadline, so a client trickling a byte now and then is still
// closed in time.
import type { ProxySocket } from '../socket.js';
import { isPPError } from '@pocketproxy/errors';
import { proxyError, type PPError } from '../errors.js';
import { createPolicyDialer, classifyDialError } from '../dialer.js';
import { BudgetSpent, MeteredFeed, NamedHolds } from '../limits/flow.js';
import type { HandshakeGuard } from '../limits/guard.js';
import { silentLogger } from '../logger.js';
import { forwardEarly, relay } from '../relay.js';
import type { RelayHandoff } from '../lean/handoff.js';
import { ProxyServer, SocketAuthContext } from '../server-base.js';
import type { AllowNoAuth, AuthContext, Authenticate, Dial, Logger, Meter } from '../types.js';
import { bodyFraming, bodySink, type BodySink, type Framing } from './body.js';
import { forward, endToEndHeaders, requestHead, type Forwarded } from './forward.js';
import { findHeadEnd, listMembers, parseRequestHead, MAX_HEAD_BYTES, type RequestHead } from './head.js';
import { authenticateRequest, requestTarget } from './request.js';
import { writeFailure } from './responses.js';
import { FrontConnection, type FrontConfig, type FrontEngine, type TransparentFront } from '../front/connection.js';
import { HttpFrontConnection } from './front.js';
import { frontByDefault, handoffByDefault, leanByDefault } from '../lean/default.js';

export interface HttpProxyOptions {
  readonly authenticate: Authenticate;
  /** Serve customers without Proxy-Authorization (an allow-listed source). Default false. */
  readonly allowNoAuth?: AllowNoAuth;
  /** Egress. Default: createPolicyDialer with the strict default policy (public addresses only). */
  readonly dial?: Dial;
  readonly logger?: Logger;
  /** Deadline for a complete request head, from accept / from the head's first byte (default 10 s). */
  readonly headTimeoutMs?: number;
  /** Idle time allowed between keep-alive requests (default 30 s). */
  readonly keepAliveTimeoutMs?: number;
  /** Tunnel / response idle timeout (default 5 min). */
  readonly idleTimeoutMs?: number;
  readonly maxConnections?: number;
  /** Caps unauthenticated sockets per address and in total; may be shared with other servers. */
  readonly guard?: HandshakeGuard;
  /** Accepted connections are LeanSockets (lean/socket.ts: no stream machinery) instead of net.Sockets. */
  readonly lean?: boolean;
  /**
   * Called just before the proxy ends a customer connection after its last answer, while that
   * answer's bytes are usually still in Node's write buffer, and in a CONNECT tunnel when the
   * target's EOF follows its last bytes closely (relay.ts holds them back for it). The agent sets
   * TCP_CORK here, so the answer's tail and the FIN leave in one segment (one tunnel frame fewer
   * per request).
   */
  readonly beforeEnd?: (socket: ProxySocket) => void;
  /** Offered each established tunnel before the JS pump (relay.ts RelayOptions.handoff). */
  readonly handoff?: RelayHandoff;
  /**
   * The native front (http/front.ts): the engine accepts and serves CONNECTs and last GETs itself; the rest
   * comes to HttpConnection as LeanSockets. Taken only when `dial` has `prepare` (and `lean`: the
   * adopted sockets are LeanSockets); the listener must then be IPv4. `exempt`: an address the
   * engine's per-address cap on unauthenticated connections does not apply to (as the guard's).
   */
  readonly front?: {
    readonly engine: FrontEngine;
    readonly exempt?: string;
    /** Stamped connections (OpenVPN customers the relay carried here): front/connection.ts TransparentFront. */
    readonly transparent?: TransparentFront;
    /**
     * With `transparent`: whether the listener reads its connections' SYNs for stamps from the start (default
     * true); ProxyServer.readStamps changes it. Without `transparent` it reads none.
     */
    readonly stamps?: boolean;
    /** Accept from this listener of another thread's engine (FrontServer.dupListener there) instead of opening one. */
    readonly shared?: number;
    /** A device's lanes: a listener per lane, picked by TUN queue (FrontServer.laneListener hands the others on). */
    readonly lanes?: number;
  };
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
  const fallback = frontByDefault();
  const frontOpts = opts.front ?? (fallback && { engine: fallback.engine });
  const lean = opts.lean ?? leanByDefault();
  const prepare = frontOpts && lean ? dial.prepare : undefined;
  const transparent = opts.front?.transparent;
  const front: FrontConfig | undefined = prepare && { ...cfg, prepare, ...(transparent ? { transparent } : {}) };
  const server: ProxyServer = new ProxyServer(
    (socket, leave) => {
      if (front && socket instanceof FrontConnection) socket.serve(front, server, leave);
      else new HttpConnection(socket, cfg, server, leave);
    },
    opts.maxConnections,
    opts.guard,
    opts.lean,
    front && frontOpts
      ? {
          engine: frontOpts.engine,
          headMs: cfg.headTimeoutMs,
          exempt: frontOpts.exempt,
          make: (...a) => new HttpFrontConnection(...a),
          stamps: transparent !== undefined && opts.front?.stamps !== false,
          ...(opts.front?.shared === undefined ? {} : { shared: opts.front.shared }),
          ...((opts.front?.lanes ?? 1) > 1 ? { lanes: opts.front!.lanes } : {}),
        }
      : undefined,
  );
  return server;
}

type Cfg = HttpProxyOptions & {
  dial: Dial;
  logger: Logger;
  headTimeoutMs: number;
  keepAliveTimeoutMs: number;
  idleTimeoutMs: number;
};

class HttpConnection {
  private buf: Buffer = EMPTY;
  /** 'head': parsing; 'busy': a request is being handled; 'tunnel'/'closing': no more parsing. */
  private state: 'head' | 'busy' | 'tunnel' | 'closing' = 'head';
  private body: BodySink | null = null;
  /** Principal of the latest request (events); `served` once one was not denied. */
  private principal: string | undefined;
  private served = false;
  private fwd: Forwarded | null = null;
  /** Meters the upload of an absolute-form request (body); null without a meter. */
  private upFeed: MeteredFeed | null = null;
  private killed = false;
  private headTimer: NodeJS.Timeout | null;
  /** Why the customer socket is paused: dialing, upstream backpressure, pipelined bytes queued (+ meter waits). */
  private readonly holds: NamedHolds<'dial' | 'drain' | 'pipeline'>;
  private readonly started = Date.now();
  private readonly ctx: AuthContext;

  constructor(
    private readonly socket: ProxySocket,
    private readonly cfg: Cfg,
    private readonly events: ProxyServer,
    private readonly leave: () => void,
  ) {
    this.ctx = new SocketAuthContext('http', socket);
    this.holds = new NamedHolds(socket);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.once('close', () => {
      this.clearHeadTimer();
      this.upFeed?.stop();
      this.fwd?.abort();
      if (!this.served) return;
      this.events.emit('connectionClosed', {
        principal: this.principal!,
        protocol: 'http',
        bytesIn: socket.bytesRead,
        bytesOut: socket.bytesWritten,
        durationMs: Date.now() - this.started,
      });
    });
    // One listener for the connection's life; each later phase only re-arms the duration.
    socket.on('timeout', this.onTimeout);
    this.headTimer = setTimeout(this.onHeadDeadline, cfg.headTimeoutMs);
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.body) {
      if (this.upFeed) this.upFeed.push(chunk);
      else this.feedBody(chunk);
      return;
    }
    // The first byte of a later keep-alive request starts that head's deadline.
    if (this.state === 'head' && this.headTimer === null)
      this.headTimer = setTimeout(this.onHeadDeadline, this.cfg.headTimeoutMs);
    this.buffer(chunk);
  };

  /** Body bytes to the body sink; what is left over belongs to the next request. */
  private readonly feedBody = (chunk: Buffer): void => {
    const used = this.body ? this.body(chunk) : 0;
    if (used < chunk.length) this.buffer(used === 0 ? chunk : chunk.subarray(used));
  };

  private buffer(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.state === 'head') this.parseNext();
    // A pipelining client waits while we answer; stop reading once a head's worth is queued.
    else if (this.buf.length > MAX_HEAD_BYTES) this.holds.take('pipeline');
  }

  private readonly onEnd = (): void => {
    // Customer finished sending. Between requests that means goodbye; mid-request the answer still flows.
    if (this.state === 'head') this.socket.end();
  };

  private readonly onHeadDeadline = (): void => {
    this.headTimer = null;
    if (this.state !== 'head') return;
    this.events.stats.handshakeTimeouts++;
    // Someone who sent nothing gets nothing: an answer would only help a port scanner.
    if (this.buf.length > 0) this.fail(proxyError('PP_ERR_PROXY_HANDSHAKE_TIMEOUT', { ms: this.cfg.headTimeoutMs }));
    else this.socket.destroy();
  };

  private readonly onTimeout = (): void => {
    // Keep-alive idle with a half-sent head: the head deadline's verdict, a little early.
    if (this.state === 'head' && this.buf.length > 0) {
      this.onHeadDeadline();
      return;
    }
    if (this.state === 'busy') this.events.stats.idleClosed++;
    this.socket.destroy();
  };

  private clearHeadTimer(): void {
    if (this.headTimer !== null) clearTimeout(this.headTimer);
    this.headTimer = null;
  }

  private parseNext(): void {
    let end: number;
    let head: RequestHead;
    try {
      end = findHeadEnd(this.buf);
      if (end < 0) return;
      head = parseRequestHead(this.buf.subarray(0, end));
    } catch (e) {
      this.fail(e);
      return;
    }
    this.clearHeadTimer();
    this.buf = this.buf.subarray(end);
    this.state = 'busy';
    this.socket.setTimeout(this.cfg.idleTimeoutMs);
    this.handle(head, end).catch((e: unknown) => this.fail(e));
  }

  private async handle(head: RequestHead, headBytes: number): Promise<void> {
    const { host, port, url } = requestTarget(head);
    const isConnect = url === undefined;
    const framing = isConnect ? null : bodyFraming(head);
    const p = await authenticateRequest(head, this.cfg, this.ctx, this.events.stats);
    this.principal = p.principal;
    this.leave();
    if (p.deny) {
      this.events.stats.denied++;
      throw p.deny;
    }
    this.served = true;
    const out = isConnect ? null : upstreamRequest(head, url, framing!);
    // A request without a body, where no byte budget or rate limit has to be charged before bytes
    // move: its head is written on the socket while it connects, so it leaves from the connect callback
    // itself instead of after the dial's promise and the set-up below (in the lab's device captures the
    // SYN-ACK -> request gap went from 72 to 64 µs median). A request with a body keeps the old order, so
    // an origin never gets a head whose body cannot follow (the customer gone during the dial).
    const early = out !== null && framing!.kind === 'none' && (p.meter === undefined || p.meter.unlimited?.() === true);
    let headOn: ProxySocket | null = null;

    // Hold the customer's bytes while we dial; they are replayed afterwards.
    this.holds.take('dial');
    let upstream: ProxySocket;
    try {
      upstream = await this.cfg.dial({
        host,
        port,
        principal: p.principal,
        onSocket: early
          ? (s) => {
              s.write(out.request.head);
              headOn = s;
            }
          : undefined,
      });
    } catch (e) {
      throw classifyDialError(e, host, port);
    }
    if (this.socket.destroyed) return void upstream.destroy();
    if (out === null) return this.tunnel(upstream, p.meter);
    await this.forward(head, out, framing!, upstream, p.meter, headBytes, headOn === upstream);
  }

  private tunnel(upstream: ProxySocket, meter: Meter | undefined): void {
    this.state = 'tunnel';
    this.socket.removeListener('data', this.onData);
    this.socket.removeListener('end', this.onEnd);
    this.socket.removeListener('timeout', this.onTimeout);
    this.socket.setTimeout(0);
    // Bytes the customer sent right behind the CONNECT head (e.g. an eager ClientHello, or the request
    // behind the transparent proxy's CONNECT) go first, ahead of our answer when no limit holds them.
    const first = forwardEarly(upstream, this.buf, meter);
    this.buf = EMPTY;
    this.socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    // The relay owns pausing from here (it resumes the socket itself).
    relay(
      this.socket,
      upstream,
      {
        idleTimeoutMs: this.cfg.idleTimeoutMs,
        meter,
        first,
        beforeEnd: this.cfg.beforeEnd,
        handoff: this.cfg.handoff,
        onIdle: () => {
          this.events.stats.idleClosed++;
        },
      },
      () => {},
    );
  }

  private async forward(
    head: RequestHead,
    out: UpstreamRequest,
    framing: Framing,
    upstream: ProxySocket,
    meter: Meter | undefined,
    headBytes: number,
    headSent: boolean,
  ): Promise<void> {
    const { keepAlive } = out;
    if (meter) {
      // The head goes upstream too (rewritten): charged as upload, so headers are no free channel.
      this.upFeed = new MeteredFeed(meter, 'up', this.holds.counter, this.feedBody, this.kill);
      if (!this.upFeed.charge(headBytes)) return void upstream.destroy();
    }
    const fwd = forward({
      client: this.socket,
      upstream,
      method: head.method,
      request: out.request,
      headSent,
      clientHttp11: head.version === '1.1',
      keepAlive,
      meter,
      // A request without a body: the origin's socket carries nothing more of ours, so its answer's body may
      // leave JS (a body still streaming up would need that socket).
      bodyHandoff: framing.kind === 'none' ? (this.cfg.handoff ?? handoffByDefault())?.body : undefined,
      idleTimeoutMs: this.cfg.idleTimeoutMs,
    });
    this.fwd = fwd;
    this.streamBody(framing, fwd);
    let result: { keepAlive: boolean };
    try {
      result = await fwd.done;
    } catch (e) {
      throw e instanceof BudgetSpent ? e : classifyDialError(e, out.url.hostname, Number(out.url.port || 80));
    }
    // The customer said this was its last request and sent all of it: nothing more may come.
    const lastRequest = !keepAlive && this.body === null;
    if (this.body) {
      // The origin answered before reading the whole body; the rest cannot be framed any more.
      result = { keepAlive: false };
      this.body = null;
    }
    this.fwd = null;
    // Bytes the meter still held back (a pipelined next request) were read already: keep them.
    const rest = this.upFeed?.stop();
    this.upFeed = null;
    if (rest) this.buf = this.buf.length === 0 ? rest : Buffer.concat([this.buf, rest]);
    // Between requests nothing may keep the socket paused.
    this.holds.clear();
    if (this.socket.destroyed) return;
    if (!result.keepAlive || this.socket.readableEnded) {
      this.state = 'closing';
      this.cfg.beforeEnd?.(this.socket);
      // A customer with nothing more to send (its last request, read whole, or its FIN came): the
      // connection closes once the answer is in the kernel, without waiting for the customer's FIN
      // (nginx does the same without lingering). Otherwise a half-close, and its FIN is read (RFC 9112
      // §9.6: bytes it still sends must not meet a closed socket's reset while the answer is on its way).
      if ((lastRequest || this.socket.readableEnded) && this.buf.length === 0 && this.socket.closeAfterWrites)
        this.socket.closeAfterWrites();
      else this.socket.end();
      return;
    }
    this.state = 'head';
    this.socket.setTimeout(this.cfg.keepAliveTimeoutMs);
    if (this.buf.length > 0) {
      this.headTimer = setTimeout(this.onHeadDeadline, this.cfg.headTimeoutMs);
      this.parseNext();
    }
  }

  /** Feeds the request body (buffered bytes first, then the socket) into the upstream request. */
  private streamBody(framing: Framing, fwd: Forwarded): void {
    if (framing.kind !== 'none') {
      const put = (b: Buffer): void => {
        if (fwd.write(b) || this.holds.has('drain')) return;
        this.holds.take('drain');
        fwd.onDrain(() => this.holds.give('drain'));
      };
      const finish = (): void => {
        this.body = null;
        fwd.end();
      };
      this.body = bodySink(framing, put, finish, (e) => {
        fwd.abort();
        this.fail(e);
      });
    } else fwd.end();
    const pending = this.buf;
    this.buf = EMPTY;
    if (pending.length > 0) {
      if (this.body && this.upFeed) this.upFeed.push(pending);
      else if (this.body) this.feedBody(pending);
      else this.buf = pending;
    }
    this.holds.give('dial');
  }

  /** Budget spent mid-request: no in-band answer is possible, both sides go at once. */
  private readonly kill = (): void => {
    this.killed = true;
    this.fwd?.abort();
    this.socket.destroy();
  };

  private fail(e: unknown): void {
    if (this.killed || e instanceof BudgetSpent) return void this.socket.destroy();
    const err: PPError = isPPError(e)
      ? e
      : proxyError('PP_ERR_PROXY_UPSTREAM_FAILED', { host: '?', port: 0 }, { cause: e });
    if (!isPPError(e)) this.cfg.logger.error({ err: e }, 'http proxy: unexpected failure');
    this.events.emit('requestFailed', {
      principal: this.principal,
      protocol: 'http',
      code: err.code,
      remoteAddress: this.ctx.remoteAddress,
    });
    const answered = this.state === 'tunnel' || (this.fwd?.responded ?? false);
    this.state = 'closing';
    this.body = null;
    this.clearHeadTimer();
    this.upFeed?.stop();
    this.fwd?.abort();
    this.socket.removeListener('data', this.onData);
    // A failure after the answer started cannot be reported in-band.
    if (answered) this.socket.destroy();
    else writeFailure(this.socket, err);
    // Read on, to see the customer's FIN or reset.
    this.holds.clear();
  }
}

/** An absolute-form request as it goes to its origin: its head (requestHead) and the customer's keep-alive wish. */
export interface UpstreamRequest {
  readonly url: URL;
  readonly keepAlive: boolean;
  readonly request: { readonly head: string; readonly chunked: boolean };
}

export function upstreamRequest(head: RequestHead, url: URL, framing: Framing): UpstreamRequest {
  const conn = listMembers(head.headers, 'connection');
  const keepAlive =
    head.version === '1.1' &&
    !conn.includes('close') &&
    !listMembers(head.headers, 'proxy-connection').includes('close');
  const headers = endToEndHeaders(head.headers, conn);
  headers.unshift(['Host', url.host]);
  if (framing.kind === 'chunked') headers.push(['Transfer-Encoding', 'chunked']);
  return { url, keepAlive, request: requestHead(head.method, url.pathname + url.search, headers) };
}
