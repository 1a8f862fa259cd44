// The native front: a proxy listener whose per-connection socket work is in a native engine
// (@pocketproxy/tun SpliceEngine, native/splice_relay.cc "HTTP front"). The engine accepts, reads the
// customer's first bytes and asks here; the protocol's module decides with the proxy's own parser,
// credentials check, destination policy and egress (http/front.ts for HTTP, socks5/front.ts for
// SOCKS5), and the engine connects, writes the protocol's answer and relays the pair kernel to kernel.
// Against the JS path that is per connection no libuv handles (accept, connect), no stream objects,
// no getpeername, no handoff (dup, epoll changes, handle closes): on the lab's device the CPU of a
// short request fell by about a third (docs/benchmarks.md "the HTTP front").
//
// One home per flow: what a protocol's front does not serve is adopted, that is the socket and the
// bytes read so far go to the JS path as if it had accepted them (and, for SOCKS5, where its
// handshake stands). This file holds what both protocols share: the listener (FrontServer), and a
// connection's life once decided (FrontConnection): the dial through the plan's addresses, usage,
// failures answered in the protocol's words, adoption, the end.
//
// A FrontConnection is the customer's handle for the rest of the proxy (ProxyServer's set of
// sockets, the handshake guard, the agent's max_connections and revocation): destroy() and
// resetAndDestroy() end it at whatever stage it is, and 'close' comes once, at its end.
import { EventEmitter } from 'node:events';
import { closeSync } from 'node:fs';
import * as util from 'node:util';
import { isPPError } from '@pocketproxy/errors';
import { classifyDialError } from '../dialer.js';
import { proxyError, type PPError } from '../errors.js';
import { LeanSocket } from '../lean/socket.js';
import { relay, type RelayOptions } from '../relay.js';
import type { ProxyServer } from '../server-base.js';
import type { ProxySocket } from '../socket.js';
import type {
  AllowNoAuth,
  AuthContext,
  Authenticate,
  Dial,
  DialPlan,
  Logger,
  Meter,
  PrepareDial,
  Principal,
} from '../types.js';

/** Why the engine asks about a connection (@pocketproxy/tun FrontHeadEnd). */
export type FrontHeadEnd = 'complete' | 'eof' | 'full' | 'timeout';

/** A front connection's events from the engine (@pocketproxy/tun FrontPairEvents). */
export interface FrontEvents {
  progress(up: number, down: number): void;
  done(up: number, down: number, end: 'clean' | 'error' | 'idle'): void;
  failed(errno: number, answering: boolean): void;
  answered(bytes: Buffer): -1 | readonly [number, Buffer, number] | undefined;
}

/** The engine asks about a new connection (@pocketproxy/tun FrontHandler.head; `stamp`: TransparentFront). */
export type FrontHead = (
  id: number,
  ip: string,
  port: number,
  bytes: Buffer,
  why: FrontHeadEnd,
  stamp?: readonly [string, number],
) => FrontEvents | undefined;

/** What the front needs of the native engine; @pocketproxy/tun's SpliceEngine has this shape. */
export interface FrontEngine {
  frontListen(
    host: string,
    port: number,
    headMs: number,
    handler: { head: FrontHead },
    exempt?: string,
    socks?: boolean,
    stamps?: boolean,
    fd?: number,
    lanes?: number,
  ): { port: number; tag: number; laneFds?: number[] };
  /** A new descriptor of a front listener, for another thread's engine (frontListen's `fd` there). */
  frontDup?(tag: number): number;
  frontStamps(tag: number, on: boolean): boolean;
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
  frontReply(id: number, bytes: Buffer): boolean;
  frontAdopt(id: number): number;
  frontHeadLeft(id: number): number;
  kill(id: number, reset?: { client?: boolean; target?: boolean }): readonly [number, number] | null;
}

/**
 * Connections the relay carried here for OpenVPN customers (their SYN stamped with where the customer was
 * headed, @pocketproxy/tun syn-stamp.ts): no proxy handshake, the relay vouched for the customer at its
 * sign-in. `vouch` admits one (the connection's state, limits, max_connections) or refuses it (null).
 */
export interface TransparentFront {
  vouch(ctx: AuthContext): Promise<Principal | null>;
}

/** What a front connection is served with (its proxy's configuration). */
export interface FrontConfig {
  readonly authenticate: Authenticate;
  /** Stamped connections (the listener reads SYNs for stamps only with it). */
  readonly transparent?: TransparentFront;
  /** The JS path's dial and pump options, for a stamped connection whose meter is limited. */
  readonly dial?: Dial;
  readonly beforeEnd?: RelayOptions['beforeEnd'];
  readonly handoff?: RelayOptions['handoff'];
  readonly allowNoAuth?: AllowNoAuth;
  readonly prepare: PrepareDial;
  readonly logger: Logger;
  readonly headTimeoutMs: number;
  readonly idleTimeoutMs: number;
}

/** Makes the connection object of a front's new customer (one per protocol). */
export type MakeFrontConnection = (...a: ConstructorParameters<typeof FrontConnection>) => FrontConnection;

const EMPTY = Buffer.alloc(0);
/** A stamped connection joins with nothing for the customer: it never spoke the proxy's protocol. */
const CARRIED: FrontJoin = { toClient: null, replyBytes: 0, request: false };
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
  /** Lanes 1.. of a listener with lanes (laneListener), until handed on; -1 once taken. */
  private laneFds: number[] = [];
  /** A SOCKS5 front's connections by id while their handshake is read (the engine asks at every read). */
  private readonly reading = new Map<number, FrontConnection>();

  constructor(
    readonly engine: FrontEngine,
    private readonly headMs: number,
    onConnection: (s: ProxySocket) => void,
    private readonly make: MakeFrontConnection,
    private readonly exempt?: string,
    private readonly socks = false,
    private stamps = false,
    private shared?: number,
    /** A device's lanes: the listener is a group of this many sockets (laneListener gives the others). */
    readonly lanes = 1,
  ) {
    super();
    this.on('connection', onConnection);
  }

  /** Binds and listens (IPv4); 'listening' (and `cb`) on the next tick, or 'error'. */
  listen(port: number, host: string, cb?: () => void): this {
    try {
      // A shared listener is given once: the engine owns (and closes) it from this call on.
      const fd = this.shared;
      this.shared = undefined;
      const r = this.engine.frontListen(
        host,
        port,
        this.headMs,
        { head: this.head },
        this.exempt,
        this.socks,
        this.stamps,
        fd,
        this.lanes,
      );
      this.tag = r.tag;
      this.laneFds = r.laneFds ?? [];
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

  /**
   * A new descriptor of this listener (the engine's frontDup), for another thread's engine to accept from
   * too (its FrontServer's `shared`); the caller's to hand on or close.
   */
  dupListener(): number {
    if (!this.listening || !this.engine.frontDup) throw new Error('FrontServer.dupListener: not listening');
    return this.engine.frontDup(this.tag);
  }

  /**
   * The listening socket of lane `k` (1 .. lanes-1) of a listener with lanes, for that lane's engine (its
   * FrontServer's `shared`): given once, the caller's from then on; undefined once given (or for no such lane).
   */
  laneListener(k: number): number | undefined {
    const fd = this.laneFds[k - 1];
    if (fd === undefined || fd < 0) return undefined;
    this.laneFds[k - 1] = -1;
    return fd;
  }

  /** Whether its connections' SYNs are read for stamps from now on (see the constructor's `stamps`). */
  readStamps(on: boolean): void {
    if (on === this.stamps) return;
    this.stamps = on;
    if (this.listening) this.engine.frontStamps(this.tag, on);
  }

  /** Stops accepting; `cb` (and 'close') once every connection it handed out has closed, as net.Server. */
  close(cb?: () => void): this {
    if (!this.listening) {
      if (cb) process.nextTick(cb);
      return this;
    }
    this.listening = false;
    this.engine.frontClose(this.tag);
    // Lanes never handed on go with the listener.
    for (const fd of this.laneFds)
      if (fd >= 0)
        try {
          closeSync(fd);
        } catch {
          // already closed
        }
    this.laneFds = [];
    this.closing ??= [];
    if (cb) this.closing.push(cb);
    this.handleClosed = true;
    process.nextTick(() => this.maybeClosed());
    return this;
  }

  private readonly head: FrontHead = (id, ip, port, bytes, why, stamp) => {
    const known = this.reading.get(id);
    if (known) {
      known.more(bytes, why);
      return known.destroyed ? undefined : known.events;
    }
    if (this.maxConnections !== undefined && this.connections >= this.maxConnections) {
      this.engine.kill(id, {});
      return undefined;
    }
    const c = this.make(this, id, ip, port, this.bound?.port ?? 0, bytes, why, stamp);
    if (this.socks && !stamp) {
      this.reading.set(id, c);
      c.once('close', () => this.reading.delete(id));
    }
    this.track(c);
    this.emit('connection', c);
    return c.destroyed ? undefined : c.events;
  };

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

/** How a decided connection joins: what goes to the customer first, and whether it is a request. */
export interface FrontJoin {
  /** Bytes for the customer once connected (the 200; for SOCKS5 the replies before the engine's). */
  readonly toClient: Buffer | null;
  /** Bytes written to the customer at the join, counted once it is known to have joined. */
  readonly replyBytes: number;
  /** toTarget is a request whose answer head answered() rewrites (a customer's last GET). */
  readonly request: boolean;
}

/** One customer connection of a FrontServer, from its first bytes on (see the file's head). */
export abstract class FrontConnection extends EventEmitter {
  destroyed = false;
  /** Bytes read from / written to the customer (handshake and answers included), as a socket counts them. */
  bytesRead: number;
  bytesWritten = 0;
  readonly events: FrontEvents;
  protected bytes: Buffer;
  protected cfg: FrontConfig | undefined;
  protected server: ProxyServer | undefined;
  protected principal: string | undefined;
  /** Authenticated and not denied: its end is reported (connectionClosed). */
  protected served = false;
  protected meter: Meter | undefined;
  protected host = '';
  /** Bytes for the target once connected (behind the head, or a request). */
  protected first: Buffer | null = null;
  /** The customer's request head's length (charged as upload for a request). */
  protected headBytes = 0;
  /** Bytes read from the origin with its answer head, charged with the pair's first report. */
  protected unchargedDown = 0;
  /** Why answered() refused the origin's answer. */
  protected badAnswer: PPError | undefined;
  private plan: DialPlan | undefined;
  private attempt = 0;
  private last: PPError | undefined;
  /** Bytes handed to the engine for the target (behind the head), charged with the first report. */
  private unchargedUp = 0;
  /** Written at the join, counted once the pair is known to have joined (the engine says nothing of it). */
  private replyPending = 0;
  /** A stamped connection relayed in JS (a limited meter): the customer's socket, taken from the engine. */
  private carriedSocket: ProxySocket | undefined;
  private readonly started = Date.now();
  protected abstract readonly protocol: 'http' | 'socks5';

  constructor(
    protected readonly front: FrontServer,
    readonly id: number,
    readonly remoteAddress: string,
    readonly remotePort: number,
    readonly localPort: number,
    bytes: Buffer,
    protected readonly why: FrontHeadEnd,
    /** Where its SYN's stamp says the customer was headed (see TransparentFront). */
    readonly stamp?: readonly [string, number],
  ) {
    super();
    this.bytes = bytes;
    this.bytesRead = bytes.length;
    this.events = {
      progress: (up, down) => this.progress(up, down),
      done: (up, down, end) => this.ended(up, down, end),
      failed: (errno, answering) => this.connectFailed(errno, answering),
      answered: (b) => this.answered(b),
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

  protected kill(reset: { client?: boolean }): this {
    if (this.destroyed) return this;
    if (this.carriedSocket) {
      if (reset.client) this.carriedSocket.resetAndDestroy();
      else this.carriedSocket.destroy();
      this.close();
      return this;
    }
    const left = this.front.engine.kill(this.id, reset);
    this.ended(left?.[0] ?? 0, left?.[1] ?? 0, 'error');
    return this;
  }

  /** @internal ProxyServer's onConnection: decides what becomes of the connection. */
  serve(cfg: FrontConfig, server: ProxyServer, leave: () => void): void {
    this.cfg = cfg;
    this.server = server;
    if (this.stamp) this.carried(leave, this.stamp).catch((e: unknown) => this.fail(e));
    else this.start(leave);
  }

  /**
   * A stamped connection: admitted by `transparent.vouch` (no credentials: the relay checked them at the
   * customer's sign-in), then connected to the stamp's destination, the customer's bytes so far first.
   * Refused, or where the connection fails, the customer gets a reset, as a closed port would give it.
   */
  private async carried(leave: () => void, [host, port]: readonly [string, number]): Promise<void> {
    const cfg = this.cfg!;
    const server = this.server!;
    const ctx: AuthContext = {
      protocol: this.protocol,
      socket: this as unknown as ProxySocket,
      remoteAddress: this.remoteAddress,
      remotePort: this.remotePort,
      localPort: this.localPort,
    };
    const p = cfg.transparent ? await cfg.transparent.vouch(ctx) : null;
    leave();
    if (!p) server.stats.authFailures++;
    else if (p.deny) server.stats.denied++;
    this.principal = p?.principal;
    if (!p || p.deny) return void this.kill({ client: true });
    if (this.destroyed) return;
    this.meter = p.meter;
    if (p.meter && p.meter.unlimited?.() !== true) return this.carryInJs(host, port, p.principal, p.meter);
    this.first = this.bytes.length > 0 ? this.bytes : null;
    await this.dial(host, port);
  }

  /** A limited meter is applied as bytes move, in JS: the customer's socket leaves the engine. */
  private async carryInJs(host: string, port: number, principal: string, meter: Meter): Promise<void> {
    const cfg = this.cfg!;
    if (!cfg.dial) return void this.kill({ client: true });
    const fd = this.front.engine.frontAdopt(this.id);
    if (fd < 0) return this.close();
    const s = LeanSocket.fromFd(fd);
    this.carriedSocket = s;
    this.served = true;
    this.host = host;
    let target: ProxySocket;
    try {
      target = await cfg.dial({ host, port, principal });
    } catch (e) {
      this.requestFailed(classifyDialError(e, host, port));
      return void this.kill({ client: true });
    }
    if (this.destroyed) return void target.destroy();
    const first = this.bytes;
    this.bytes = EMPTY;
    relay(
      s,
      target,
      {
        meter,
        first,
        idleTimeoutMs: cfg.idleTimeoutMs,
        ...(cfg.beforeEnd ? { beforeEnd: cfg.beforeEnd } : {}),
        ...(cfg.handoff ? { handoff: cfg.handoff } : {}),
      },
      (r) => {
        this.bytesRead = r.bytesIn + first.length;
        this.bytesWritten = r.bytesOut;
        this.close();
      },
    );
  }

  /** The protocol's decision, from the bytes read so far (failures through fail()). */
  protected abstract start(leave: () => void): void;

  /** @internal a SOCKS5 front's next bytes (the engine asks at every read). */
  more(_bytes: Buffer, _why: FrontHeadEnd): void {
    this.destroy();
  }

  /** The protocol's answer to a failure (its bytes may be empty: just close). */
  protected abstract failureAnswer(e: PPError): Buffer;

  /** How the connection joins once an address connected. */
  protected abstract joinWith(family: 4 | 6): FrontJoin;

  /** Resolves and connects: the plan's addresses in turn, the first connected joins. */
  protected async dial(host: string, port: number): Promise<void> {
    const cfg = this.cfg!;
    this.served = true;
    this.host = host;
    let plan: DialPlan;
    try {
      plan = await cfg.prepare({ host, port });
    } catch (e) {
      throw classifyDialError(e, host, port);
    }
    if (this.destroyed) return;
    this.plan = plan;
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
      const join = this.stamp ? CARRIED : this.joinWith(a.family);
      const rc = this.front.engine.frontConnect(
        this.id,
        fd,
        a.address,
        plan.port,
        left,
        this.first,
        join.toClient,
        this.cfg!.idleTimeoutMs,
        join.request,
      );
      if (rc === 0) {
        // A tunnel's bytes behind the head are relayed; a request's head was charged as read (as the
        // JS path charges the customer's head as upload).
        this.unchargedUp = join.request ? this.headBytes : (this.first?.length ?? 0);
        this.replyPending = join.replyBytes;
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
    this.replyPending = 0;
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

  /** A request's answer so far (http/front.ts); no other connection sends one. */
  protected answered(_bytes: Buffer): -1 | readonly [number, Buffer, number] | undefined {
    return undefined;
  }

  /** The failure's answer (the JS path's own), then the engine closes the connection. */
  protected fail(e: unknown): void {
    if (this.destroyed) return;
    const err: PPError = isPPError(e)
      ? e
      : proxyError('PP_ERR_PROXY_UPSTREAM_FAILED', { host: '?', port: 0 }, { cause: e });
    if (!isPPError(e)) this.cfg?.logger.error({ err: e }, `${this.protocol} front: unexpected failure`);
    this.requestFailed(err);
    // A stamped connection's customer never spoke the protocol: a reset, as from a closed port.
    if (this.stamp) return void this.kill({ client: true });
    const answer = this.failureAnswer(err);
    if (this.front.engine.frontAnswer(this.id, answer)) this.bytesWritten += answer.length;
  }

  private requestFailed(err: PPError): void {
    this.server?.emit('requestFailed', {
      principal: this.principal,
      protocol: this.protocol,
      code: err.code,
      remoteAddress: this.remoteAddress,
    });
  }

  /**
   * The socket and `bytes` (read but not taken) go to the JS path, as a connection it accepted
   * itself; `prepare` sees the socket before the server does (where a SOCKS5 handshake stands).
   */
  protected adopt(bytes: Buffer = this.bytes, prepare?: (s: LeanSocket) => void): void {
    if (this.destroyed) return;
    const fd = this.front.engine.frontAdopt(this.id);
    this.served = false;
    this.close();
    if (fd < 0) return;
    let s: LeanSocket;
    try {
      s = LeanSocket.fromFd(fd);
    } catch (e) {
      this.cfg?.logger.warn({ err: e }, `${this.protocol} front: a connection could not be handed to the JS path`);
      return;
    }
    s.unshift(bytes);
    s.bytesRead += bytes.length;
    prepare?.(s);
    this.front.adopted(s);
  }

  private replySent(): void {
    this.bytesWritten += this.replyPending;
    this.replyPending = 0;
  }

  private progress(up: number, down: number): void {
    this.replySent();
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
    // A pair that moved bytes or ended cleanly had joined, so its reply went out; one that failed
    // without a byte either way may have ended before (counted as not sent).
    if (up > 0 || down > 0 || end !== 'error') this.replySent();
    this.charge(up, down);
    this.close();
  }

  protected close(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.served)
      this.server?.emit('connectionClosed', {
        principal: this.principal!,
        protocol: this.protocol,
        bytesIn: this.bytesRead,
        bytesOut: this.bytesWritten,
        durationMs: Date.now() - this.started,
      });
    this.emit('close');
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
