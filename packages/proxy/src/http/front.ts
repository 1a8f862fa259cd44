// The HTTP front: the HTTP proxy's listener with its per-connection socket work in a native engine
// (@pocketproxy/tun SpliceEngine, native/splice_relay.cc "HTTP front"), for the CONNECT tunnels that
// are most of a proxy's connections. The engine accepts, reads the request head and asks here once;
// this module decides with the same parser, credentials check, destination policy and egress as the
// JS path (HttpConnection, server.ts), and the engine connects, writes the 200 and relays the pair
// kernel to kernel. Against the JS path that is per connection no libuv handles (accept, connect),
// no stream objects, no getpeername, no handoff (dup, epoll changes, handle closes): on the lab's
// device the CPU of a short request fell by about a third (docs/benchmarks.md "the HTTP front").
//
// A customer's last GET (HTTP/1.1, Connection: close, no body) is served here too: the engine writes
// the upstream request, answered() rewrites the answer's heads once, the body is spliced.
// One home per flow: everything else is adopted, that is the socket and the bytes read so far go to
// the JS path as if it had accepted them: keep-alive and other requests (bodies, answer framing),
// heads the parser refuses (its 400 / 431 come from there), limited meters (budgets and rates are
// applied in JS). Failures (407, 403, DNS, refused, unreachable, timeout, an unreadable answer) are
// answered here with the JS path's own answers (responses.ts failureResponse).
//
// A FrontConnection is the customer's handle for the rest of the proxy (ProxyServer's set of
// sockets, the handshake guard, the agent's max_connections and revocation): destroy() and
// resetAndDestroy() end it at whatever stage it is, and 'close' comes once, at its end.
import { EventEmitter } from 'node:events';
import * as util from 'node:util';
import { isPPError } from '@pocketproxy/errors';
import { classifyDialError } from '../dialer.js';
import { proxyError, type PPError } from '../errors.js';
import { LeanSocket } from '../lean/socket.js';
import type { ProxyServer } from '../server-base.js';
import { SocketAuthContext } from '../server-base.js';
import type { ProxySocket } from '../socket.js';
import type { AllowNoAuth, Authenticate, DialPlan, Logger, Meter, PrepareDial } from '../types.js';
import { bodyFraming } from './body.js';
import { ChunkedDecoder } from './chunked.js';
import { clientHead, interimHead } from './forward.js';
import { findHeadEnd, parseRequestHead } from './head.js';
import { nextResponseHead, responseFraming } from './response-reader.js';
import { upstreamRequest } from './server.js';
import { authenticateRequest, requestTarget } from './request.js';
import { failureResponse } from './responses.js';

/** Why the engine asks about a connection (@pocketproxy/tun FrontHeadEnd). */
export type FrontHeadEnd = 'complete' | 'eof' | 'full' | 'timeout';

/** A front connection's events from the engine (@pocketproxy/tun FrontPairEvents). */
export interface FrontEvents {
  progress(up: number, down: number): void;
  done(up: number, down: number, end: 'clean' | 'error' | 'idle'): void;
  failed(errno: number, answering: boolean): void;
  answered(bytes: Buffer): -1 | readonly [number, Buffer, number] | undefined;
}

/** What the front needs of the native engine; @pocketproxy/tun's SpliceEngine has this shape. */
export interface FrontEngine {
  frontListen(
    host: string,
    port: number,
    headMs: number,
    handler: { head(id: number, ip: string, port: number, bytes: Buffer, why: FrontHeadEnd): FrontEvents | undefined },
    exempt?: string,
  ): { port: number; tag: number };
  frontClose(tag: number): void;
  frontConnect(
    id: number,
    fd: number,
    ip: string,
    port: number,
    timeoutMs: number,
    toTarget: Buffer | null,
    toClient: Buffer | null,
    idleMs: number,
    request?: boolean,
  ): number;
  frontAnswer(id: number, bytes: Buffer): boolean;
  frontAdopt(id: number): number;
  kill(id: number, reset?: { client?: boolean; target?: boolean }): readonly [number, number] | null;
}

/** What a front connection is served with (the HTTP proxy's configuration). */
export interface FrontConfig {
  readonly authenticate: Authenticate;
  readonly allowNoAuth?: AllowNoAuth;
  readonly prepare: PrepareDial;
  readonly logger: Logger;
  readonly headTimeoutMs: number;
  readonly idleTimeoutMs: number;
}

const EMPTY = Buffer.alloc(0);
const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection Established\r\n\r\n');
/** What the engine reports when answered() refused the origin's answer (errno EPROTO). */
const EPROTO = 71;

/**
 * The listening socket of a ProxyServer whose connections the engine accepts (net.Server's
 * counterpart for what ProxyServer and the agent use: listen, address, close, 'connection').
 * 'connection' carries FrontConnections, and LeanSockets for the connections it adopted.
 */
export class FrontServer extends EventEmitter {
  listening = false;
  maxConnections: number | undefined;
  /** Kept for ProxyServer.inheritNoDelay: the engine's listener has Nagle off for every connection. */
  noDelay = false;
  private tag = -1;
  private bound: { address: string; port: number; family: string } | null = null;
  private connections = 0;
  private closing: (() => void)[] | null = null;
  private handleClosed = false;

  constructor(
    readonly engine: FrontEngine,
    private readonly headMs: number,
    onConnection: (s: ProxySocket) => void,
    private readonly exempt?: string,
  ) {
    super();
    this.on('connection', onConnection);
  }

  /** Binds and listens (IPv4); 'listening' (and `cb`) on the next tick, or 'error'. */
  listen(port: number, host: string, cb?: () => void): this {
    try {
      const r = this.engine.frontListen(
        host,
        port,
        this.headMs,
        { head: (id, ip, p, bytes, why) => this.head(id, ip, p, bytes, why) },
        this.exempt,
      );
      this.tag = r.tag;
      this.bound = { address: host, port: r.port, family: 'IPv4' };
    } catch (e) {
      process.nextTick(() => this.emit('error', e));
      return this;
    }
    this.listening = true;
    if (cb) this.once('listening', cb);
    process.nextTick(() => this.emit('listening'));
    return this;
  }

  address(): { address: string; port: number; family: string } | null {
    return this.bound;
  }

  /** Stops accepting; `cb` (and 'close') once every connection it handed out has closed, as net.Server. */
  close(cb?: () => void): this {
    if (!this.listening) {
      if (cb) process.nextTick(cb);
      return this;
    }
    this.listening = false;
    this.engine.frontClose(this.tag);
    this.closing ??= [];
    if (cb) this.closing.push(cb);
    this.handleClosed = true;
    process.nextTick(() => this.maybeClosed());
    return this;
  }

  private head(id: number, ip: string, port: number, bytes: Buffer, why: FrontHeadEnd): FrontEvents | undefined {
    if (this.maxConnections !== undefined && this.connections >= this.maxConnections) {
      this.engine.kill(id, {});
      return undefined;
    }
    const c = new FrontConnection(this, id, ip, port, this.bound?.port ?? 0, bytes, why);
    this.track(c);
    this.emit('connection', c);
    return c.destroyed ? undefined : c.events;
  }

  /** @internal a connection the front took back from the engine: served on the JS path from here. */
  adopted(s: LeanSocket): void {
    this.track(s);
    this.emit('connection', s);
  }

  private track(s: EventEmitter): void {
    this.connections++;
    s.once('close', () => {
      this.connections--;
      this.maybeClosed();
    });
  }

  private maybeClosed(): void {
    if (!this.handleClosed || this.connections > 0 || this.closing === null) return;
    const cbs = this.closing;
    this.closing = null;
    this.emit('close');
    for (const c of cbs) c();
  }
}

/** One customer connection of a FrontServer, from its request head on (see the file's head). */
export class FrontConnection extends EventEmitter {
  destroyed = false;
  /** Bytes read from / written to the customer (head and 200 included), as a socket counts them. */
  bytesRead: number;
  bytesWritten = 0;
  readonly events: FrontEvents;
  private bytes: Buffer;
  private cfg: FrontConfig | undefined;
  private server: ProxyServer | undefined;
  private principal: string | undefined;
  private served = false;
  private meter: Meter | undefined;
  private plan: DialPlan | undefined;
  private host = '';
  private attempt = 0;
  private last: PPError | undefined;
  private first: Buffer | null = null;
  /** Bytes handed to the engine for the target (behind the head), charged with the first report. */
  private unchargedUp = 0;
  /** A last GET's upstream request (served here, its answer head rewritten by answered()). */
  private request: Buffer | null = null;
  /** The customer's request head's length. */
  private headBytes = 0;
  /** Bytes read from the origin with its answer head, charged with the pair's first report. */
  private unchargedDown = 0;
  /** Why answered() refused the origin's answer. */
  private badAnswer: PPError | undefined;
  /** frontConnect succeeded and no failure came back: the 200 goes out at the join. */
  private connecting = false;
  private readonly started = Date.now();

  constructor(
    private readonly front: FrontServer,
    readonly id: number,
    readonly remoteAddress: string,
    readonly remotePort: number,
    readonly localPort: number,
    bytes: Buffer,
    private readonly why: FrontHeadEnd,
  ) {
    super();
    this.bytes = bytes;
    this.bytesRead = bytes.length;
    this.events = {
      progress: (up, down) => this.progress(up, down),
      done: (up, down, end) => this.ended(up, down, end),
      failed: (errno, answering) => this.connectFailed(errno, answering),
      answered: (bytes) => this.answered(bytes),
    };
  }

  /** Ends the connection at whatever stage (no answer), its target with it. */
  destroy(): this {
    return this.kill({});
  }

  /** As destroy(), with a TCP reset to the customer (revocation: nothing queued reaches it any more). */
  resetAndDestroy(): this {
    return this.kill({ client: true });
  }

  private kill(reset: { client?: boolean }): this {
    if (this.destroyed) return this;
    const left = this.front.engine.kill(this.id, reset);
    this.ended(left?.[0] ?? 0, left?.[1] ?? 0, 'error');
    return this;
  }

  /** @internal ProxyServer's onConnection: decides what becomes of the connection. */
  serve(cfg: FrontConfig, server: ProxyServer, leave: () => void): void {
    this.cfg = cfg;
    this.server = server;
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
    this.served = true;
    this.meter = p.meter;
    this.host = host;
    let plan: DialPlan;
    try {
      plan = await cfg.prepare({ host, port });
    } catch (e) {
      throw classifyDialError(e, host, port);
    }
    if (this.destroyed) return;
    this.plan = plan;
    this.request = request;
    this.headBytes = end;
    this.first = request ?? (bytes.length > end ? bytes.subarray(end) : null);
    this.bytes = EMPTY; // needed only to adopt, which can no longer happen
    this.next();
  }

  /** Connects the next address of the plan, or answers with the last failure. */
  private next(): void {
    const plan = this.plan!;
    while (this.attempt < plan.attempts.length && !this.destroyed) {
      const a = plan.attempts[this.attempt++]!;
      const left = plan.deadline - Date.now();
      if (left <= 0) break;
      let fd: number;
      try {
        fd = plan.openFd(a.family);
      } catch (e) {
        this.last = classifyDialError(e, this.host, plan.port);
        continue;
      }
      const req = this.request !== null;
      const rc = this.front.engine.frontConnect(
        this.id,
        fd,
        a.address,
        plan.port,
        left,
        this.first,
        req ? null : ESTABLISHED,
        this.cfg!.idleTimeoutMs,
        req,
      );
      if (rc === 0) {
        // A tunnel's bytes behind the head are relayed; a request's head was charged as read (as the
        // JS path charges the customer's head as upload).
        this.unchargedUp = req ? this.headBytes : (this.first?.length ?? 0);
        this.connecting = !req;
        return;
      }
      if (rc < 0) return; // gone meanwhile: its done() came or comes
      this.last = classifyDialError(errnoError(rc), this.host, plan.port);
    }
    this.fail(this.last ?? proxyError('PP_ERR_PROXY_TARGET_TIMEOUT', { host: this.host, port: plan.port }));
  }

  private connectFailed(errno: number, answering: boolean): void {
    if (this.destroyed || !this.plan) return;
    this.unchargedUp = 0;
    this.connecting = false;
    // The request went to that origin: no other address is tried (the JS dial has resolved by then).
    if (answering) {
      const bad = errno === EPROTO ? this.badAnswer : undefined;
      this.fail(bad ?? classifyDialError(errnoError(errno), this.host, this.plan.port));
      return;
    }
    this.last = classifyDialError(errnoError(errno), this.host, this.plan.port);
    // As the JS dial: a timeout spent the dial's time, other failures try the next address.
    if (this.last.code === 'PP_ERR_PROXY_TARGET_TIMEOUT') this.fail(this.last);
    else this.next();
  }

  /**
   * A request's answer so far: its heads (interim ones, then the final one) rewritten as the JS path
   * rewrites them (forward.ts), and how long its body is. -1: more bytes are needed; undefined: the
   * answer is refused (502, as the JS path answers an unreadable one).
   */
  private answered(bytes: Buffer): -1 | readonly [number, Buffer, number] | undefined {
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

  /** The failure's answer (the JS path's own), then the engine closes the connection. */
  private fail(e: unknown): void {
    if (this.destroyed) return;
    const err: PPError = isPPError(e)
      ? e
      : proxyError('PP_ERR_PROXY_UPSTREAM_FAILED', { host: '?', port: 0 }, { cause: e });
    if (!isPPError(e)) this.cfg?.logger.error({ err: e }, 'http front: unexpected failure');
    this.server?.emit('requestFailed', {
      principal: this.principal,
      protocol: 'http',
      code: err.code,
      remoteAddress: this.remoteAddress,
    });
    const answer = Buffer.from(failureResponse(err));
    if (this.front.engine.frontAnswer(this.id, answer)) this.bytesWritten += answer.length;
  }

  /** The socket and the bytes read so far go to the JS path, as a connection it accepted itself. */
  private adopt(): void {
    if (this.destroyed) return;
    const fd = this.front.engine.frontAdopt(this.id);
    const bytes = this.bytes;
    this.served = false;
    this.close();
    if (fd < 0) return;
    let s: LeanSocket;
    try {
      s = LeanSocket.fromFd(fd);
    } catch (e) {
      this.cfg?.logger.warn({ err: e }, 'http front: a connection could not be handed to the JS path');
      return;
    }
    s.unshift(bytes);
    s.bytesRead += bytes.length;
    this.front.adopted(s);
  }

  /** The 200 is counted as written once the pair is known to have joined (the engine says nothing of it). */
  private establishedSent(): void {
    if (!this.connecting) return;
    this.connecting = false;
    this.bytesWritten += ESTABLISHED.length;
  }

  private progress(up: number, down: number): void {
    this.establishedSent();
    if (!this.charge(up, down) || this.meter?.unlimited?.() === false) this.kill({});
  }

  /** Counts relayed bytes; false once a budget set meanwhile is spent (the pair must end). */
  private charge(up: number, down: number): boolean {
    this.bytesRead += up;
    this.bytesWritten += down;
    // The bytes behind the head were read with it (bytesRead has them) and relayed at the join.
    up += this.unchargedUp;
    down += this.unchargedDown;
    this.unchargedUp = 0;
    this.unchargedDown = 0;
    const m = this.meter;
    return !m || ((up === 0 || m.take('up', up) !== -1) && (down === 0 || m.take('down', down) !== -1));
  }

  private ended(up: number, down: number, end: 'clean' | 'error' | 'idle'): void {
    if (this.destroyed) return;
    if (end === 'idle' && this.server) this.server.stats.idleClosed++;
    // A pair that moved bytes or ended cleanly had joined, so its 200 went out; one that failed
    // without a byte either way may have ended before (counted as not sent).
    if (up > 0 || down > 0 || end !== 'error') this.establishedSent();
    this.charge(up, down);
    this.close();
  }

  private close(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.served)
      this.server?.emit('connectionClosed', {
        principal: this.principal!,
        protocol: 'http',
        bytesIn: this.bytesRead,
        bytesOut: this.bytesWritten,
        durationMs: Date.now() - this.started,
      });
    this.emit('close');
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

function errnoError(errno: number): NodeJS.ErrnoException {
  let code: string;
  try {
    code = util.getSystemErrorName(-errno);
  } catch {
    code = `E${errno}`;
  }
  return Object.assign(new Error(code), { code, errno: -errno });
}
