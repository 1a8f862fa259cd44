// SOCKS5 server (RFC 1928) with username/password authentication (RFC 1929).
//
//   customer -> relay:30001 -> tunnel -> device:30001 -> [this] -> target
//
// A state machine over a byte buffer: messages may arrive split or coalesced (clients that send
// greeting, credentials and request in one segment), so nothing assumes one 'data' event is one
// message. The handshake must finish within handshakeTimeoutMs and no message may exceed its
// bounded size. CONNECT and UDP ASSOCIATE are served; BIND answers "command not supported".
// A customer the app refuses (Principal.deny) passes authentication and gets the refusal as the
// request's reply code: RFC 1929 has only "failure", which would read as a wrong password.
import type { ProxySocket } from '../socket.js';
import { isPPError } from '@pocketproxy/errors';
import { proxyError, type PPError } from '../errors.js';
import { createPolicyDialer, classifyDialError } from '../dialer.js';
import type { HandshakeGuard } from '../limits/guard.js';
import { silentLogger } from '../logger.js';
import { forwardEarly, relay } from '../relay.js';
import type { RelayHandoff } from '../lean/handoff.js';
import { ProxyServer, SocketAuthContext, normalizeIp } from '../server-base.js';
import { FrontConnection, type FrontConfig, type FrontEngine, type TransparentFront } from '../front/connection.js';
import { frontByDefault, leanByDefault } from '../lean/default.js';
import {
  handshakeDeadline,
  Socks5FrontConnection,
  socks5Resume,
  verifyCredentials,
  type Socks5Resume,
} from './front.js';
import type { AllowNoAuth, AuthContext, Authenticate, Dial, Logger, Principal } from '../types.js';
import { associate, type Socks5UdpOptions } from './associate.js';
import { UdpRelay } from '../udp/relay.js';
import { REP, replyCodeFor } from './reply.js';
import {
  CMD_CONNECT,
  CMD_UDP_ASSOCIATE,
  METHOD_NO_AUTH,
  METHOD_NONE_ACCEPTABLE,
  MAX_HANDSHAKE_BYTES,
  METHOD_USERPASS,
  VERSION,
  encodeReply,
  parseGreeting,
  parseRequest,
  parseUserPass,
} from './wire.js';

export type { Socks5UdpOptions };

export interface Socks5Options {
  readonly authenticate: Authenticate;
  /** Offer method 0x00 (no authentication). Default false: only 0x02 is accepted. */
  readonly allowNoAuth?: AllowNoAuth;
  readonly dial?: Dial;
  /** UDP ASSOCIATE support; `false` answers it with 0x07. Default: private relays, strict policy. */
  readonly udp?: Socks5UdpOptions | false;
  readonly logger?: Logger;
  /** Absolute deadline from accept to a complete request (default 10 s). */
  readonly handshakeTimeoutMs?: number;
  /** Tunnel idle timeout (default 5 min). */
  readonly idleTimeoutMs?: number;
  readonly maxConnections?: number;
  /** Caps unauthenticated sockets per address and in total; may be shared with other servers. */
  readonly guard?: HandshakeGuard;
  /** Accepted connections are LeanSockets (lean/socket.ts: no stream machinery) instead of net.Sockets. */
  readonly lean?: boolean;
  /**
   * Called just before a CONNECT's relay ends the customer connection while the target's last bytes
   * are still held back for its EOF (relay.ts); the agent sets TCP_CORK here, so those bytes and the
   * FIN leave in one segment (one tunnel frame fewer per short request).
   */
  readonly beforeEnd?: (socket: ProxySocket) => void;
  /** Offered each established tunnel before the JS pump (relay.ts RelayOptions.handoff). */
  readonly handoff?: RelayHandoff;
  /**
   * The native front (socks5/front.ts): the engine accepts and the handshake's answers and a CONNECT
   * of an unlimited customer are served there; the rest comes to Socks5Connection as LeanSockets.
   * Taken only when `dial` has `prepare` (and `lean`); the listener must then be IPv4. `exempt`: an
   * address the engine's per-address cap on unauthenticated connections does not apply to.
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
    /** Accept from this listener of another thread's engine (FrontServer.dupListener / laneListener there). */
    readonly shared?: number;
    /** A device's lanes: a listener per lane, picked by TUN queue (FrontServer.laneListener hands the others on). */
    readonly lanes?: number;
  };
}

const EMPTY = Buffer.alloc(0);

type Cfg = Socks5Options & { dial: Dial; logger: Logger; handshakeTimeoutMs: number; idleTimeoutMs: number };

export function createSocks5Server(opts: Socks5Options): ProxyServer {
  const cfg: Cfg = {
    ...opts,
    dial: opts.dial ?? createPolicyDialer({ policy: {} }),
    logger: opts.logger ?? silentLogger,
    handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 10_000,
    idleTimeoutMs: opts.idleTimeoutMs ?? 300_000,
  };
  const fallback = frontByDefault();
  const frontOpts = opts.front ?? (fallback && { engine: fallback.engine });
  const prepare = frontOpts && (opts.lean ?? leanByDefault()) ? cfg.dial.prepare : undefined;
  const transparent = opts.front?.transparent;
  const front: FrontConfig | undefined = prepare && {
    ...cfg,
    headTimeoutMs: cfg.handshakeTimeoutMs,
    prepare,
    ...(transparent ? { transparent } : {}),
  };
  const server: ProxyServer = new ProxyServer(
    (socket, leave) => {
      if (front && socket instanceof FrontConnection) socket.serve(front, server, leave);
      else new Socks5Connection(socket, cfg, server, leave);
    },
    opts.maxConnections,
    opts.guard,
    opts.lean,
    front && frontOpts
      ? {
          engine: frontOpts.engine,
          headMs: cfg.handshakeTimeoutMs,
          exempt: frontOpts.exempt,
          make: (...a) => new Socks5FrontConnection(...a),
          socks: true,
          stamps: transparent !== undefined && opts.front?.stamps !== false,
          ...(opts.front?.shared === undefined ? {} : { shared: opts.front.shared }),
          ...((opts.front?.lanes ?? 1) > 1 ? { lanes: opts.front!.lanes } : {}),
        }
      : undefined,
  );
  const shared = opts.udp ? opts.udp.relay : undefined;
  if (shared instanceof UdpRelay) {
    shared.on('requestFailed', (e) => server.emit('requestFailed', e));
  }
  return server;
}

class Socks5Connection {
  private buf: Buffer = EMPTY;
  private state: 'greeting' | 'auth' | 'request' | 'busy' | 'done' = 'greeting';
  private principal: string | undefined;
  /** What authentication returned (meter, deny). */
  private granted: Principal | undefined;
  private readonly started = Date.now();
  private readonly ctx: AuthContext;
  private readonly timer: NodeJS.Timeout;
  /** A CONNECT request was read (a FIN after it is the customer's half-close, not an abort). */
  private connectAsked = false;

  constructor(
    private readonly socket: ProxySocket,
    private readonly cfg: Cfg,
    private readonly events: ProxyServer,
    private readonly leave: () => void,
  ) {
    this.ctx = new SocketAuthContext('socks5', socket);
    // Absolute: counted from accept, not re-armed by bytes, so trickling clients are closed in time;
    // for a socket the front adopted, from the front's accept (its handshake does not start over).
    const deadline = handshakeDeadline.get(socket);
    const ms = deadline === undefined ? cfg.handshakeTimeoutMs : Math.max(0, deadline - Date.now());
    this.timer = setTimeout(() => {
      this.events.stats.handshakeTimeouts++;
      this.fail(proxyError('PP_ERR_PROXY_HANDSHAKE_TIMEOUT', { ms: cfg.handshakeTimeoutMs }), null);
    }, ms);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    const resume = socks5Resume.get(socket);
    if (resume) this.resume(resume);
    socket.once('close', () => {
      clearTimeout(this.timer);
      // Only a customer that was served reports usage (a denied one moved nothing).
      if (this.principal === undefined || this.granted?.deny) return;
      this.events.emit('connectionClosed', {
        principal: this.principal,
        protocol: 'socks5',
        bytesIn: socket.bytesRead,
        bytesOut: socket.bytesWritten,
        durationMs: Date.now() - this.started,
      });
    });
  }

  private readonly onEnd = (): void => {
    // A FIN behind a complete CONNECT request is a half-close: the relay passes it on once dialled.
    if (this.state !== 'done' && !this.connectAsked) this.socket.destroy();
  };

  private readonly onData = (chunk: Buffer): void => {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.buf.length > MAX_HANDSHAKE_BYTES) {
      this.fail(proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'handshake too large' }), null);
      return;
    }
    this.step();
  };

  /** Consumes as many complete messages as the buffer holds; async steps set state 'busy'. */
  private step(): void {
    try {
      while (this.state !== 'busy' && this.state !== 'done') {
        if (this.state === 'greeting') {
          const g = parseGreeting(this.buf);
          if (!g) return;
          this.consume(g.length);
          this.chooseMethod(g.methods);
        } else if (this.state === 'auth') {
          const up = parseUserPass(this.buf);
          if (!up) return;
          this.consume(up.length);
          this.busy(this.checkPassword(up.user, up.pass), 'request');
        } else {
          const r = parseRequest(this.buf);
          if (!r) return;
          this.consume(r.length);
          // The client did its part; from here the dial's own timeout applies.
          clearTimeout(this.timer);
          if (this.granted?.deny) {
            this.events.stats.denied++;
            throw this.granted.deny;
          }
          if (r.cmd === CMD_CONNECT) {
            this.connectAsked = true;
            this.busy(this.connect(r.host, r.port), 'done');
          } else if (r.cmd === CMD_UDP_ASSOCIATE && this.cfg.udp !== false) this.busy(this.associate(r.port), 'done');
          else throw proxyError('PP_ERR_PROXY_SOCKS_COMMAND_UNSUPPORTED', { cmd: r.cmd });
        }
      }
    } catch (e) {
      // Before the request stage there is no reply format for errors: just close (RFC 1928 §3).
      this.fail(e, this.state === 'request' ? 'reply' : null);
    }
  }

  private consume(n: number): void {
    this.buf = n >= this.buf.length ? EMPTY : this.buf.subarray(n);
  }

  private busy(p: Promise<void>, next: 'request' | 'done'): void {
    this.state = 'busy';
    this.socket.pause();
    p.then(
      () => {
        if (this.state !== 'busy') return; // finished (tunnel/association) or failed meanwhile
        this.state = next;
        this.socket.resume();
        this.step();
      },
      (e: unknown) => this.fail(e, next === 'done' ? 'reply' : null),
    );
  }

  /**
   * A connection the native front adopted after the credentials (socks5/front.ts): its answers not
   * written yet go now, and the same credentials are checked again on this socket (revocation and
   * max_connections follow it from here), with nothing more written; then the request is read.
   */
  private resume(r: Socks5Resume): void {
    if (r.out.length > 0) this.socket.write(r.out);
    this.busy(
      (async () => {
        this.authenticated(await verifyCredentials(this.cfg.authenticate, r.user, r.pass, this.ctx, this.events.stats));
      })(),
      'request',
    );
  }

  private chooseMethod(methods: readonly number[]): void {
    if (methods.includes(METHOD_USERPASS)) {
      this.socket.write(Buffer.from([VERSION, METHOD_USERPASS]));
      this.state = 'auth';
      return;
    }
    const anon = this.cfg.allowNoAuth;
    if (methods.includes(METHOD_NO_AUTH) && anon) {
      this.busy(
        (async () => {
          const ok = anon === true ? { principal: 'anonymous' } : await anon(this.ctx);
          if (!ok) {
            this.socket.write(Buffer.from([VERSION, METHOD_NONE_ACCEPTABLE]));
            throw proxyError('PP_ERR_PROXY_SOCKS_NO_METHOD');
          }
          this.authenticated(ok);
          this.socket.write(Buffer.from([VERSION, METHOD_NO_AUTH]));
        })(),
        'request',
      );
      return;
    }
    this.socket.write(Buffer.from([VERSION, METHOD_NONE_ACCEPTABLE]));
    throw proxyError('PP_ERR_PROXY_SOCKS_NO_METHOD');
  }

  private async checkPassword(user: string, pass: string): Promise<void> {
    let ok: Principal;
    try {
      ok = await verifyCredentials(this.cfg.authenticate, user, pass, this.ctx, this.events.stats);
    } catch (e) {
      // RFC 1929 §2: a non-zero status MUST be followed by closing the connection.
      this.socket.write(Buffer.from([0x01, 0x01]));
      throw e;
    }
    this.authenticated(ok);
    this.socket.write(Buffer.from([0x01, 0x00]));
  }

  private authenticated(p: Principal): void {
    this.principal = p.principal;
    this.granted = p;
    this.leave();
  }

  private async connect(host: string, port: number): Promise<void> {
    let target: ProxySocket;
    try {
      target = await this.cfg.dial({ host, port, principal: this.principal! });
    } catch (e) {
      throw classifyDialError(e, host, port);
    }
    if (this.socket.destroyed) return void target.destroy();
    this.finishHandshake();
    // Optimistic data the client sent before our reply goes first, ahead of the reply when no limit holds it.
    const first = forwardEarly(target, this.buf, this.granted?.meter);
    this.buf = EMPTY;
    // RFC 1928 §6: BND.ADDR/BND.PORT of a CONNECT reply is the address the server used to connect.
    this.socket.write(encodeReply(REP.SUCCEEDED, normalizeIp(target.localAddress) || '0.0.0.0', target.localPort ?? 0));
    relay(
      this.socket,
      target,
      {
        idleTimeoutMs: this.cfg.idleTimeoutMs,
        meter: this.granted?.meter,
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

  private associate(clientPort: number): Promise<void> {
    return associate({
      socket: this.socket,
      udp: this.cfg.udp || {},
      logger: this.cfg.logger,
      events: this.events,
      principal: this.principal!,
      meter: this.granted?.meter,
      clientIp: this.ctx.remoteAddress,
      clientPort,
      finishHandshake: () => this.finishHandshake(),
    });
  }

  private finishHandshake(): void {
    clearTimeout(this.timer);
    this.state = 'done';
    this.socket.removeListener('data', this.onData);
    this.socket.removeListener('end', this.onEnd);
  }

  /** `reply`: answer with a RFC 1928 §6 reply before closing; null: just close. */
  private fail(e: unknown, mode: 'reply' | null): void {
    if (this.state === 'done') return;
    const err: PPError = isPPError(e)
      ? e
      : proxyError('PP_ERR_PROXY_UPSTREAM_FAILED', { host: '?', port: 0 }, { cause: e });
    if (!isPPError(e)) this.cfg.logger.error({ err: e }, 'socks5: unexpected failure');
    clearTimeout(this.timer);
    this.state = 'done';
    this.socket.removeListener('data', this.onData);
    this.events.emit('requestFailed', {
      principal: this.principal,
      protocol: 'socks5',
      code: err.code,
      remoteAddress: this.ctx.remoteAddress,
    });
    if (mode === 'reply' && this.socket.writable) this.socket.end(encodeReply(replyCodeFor(err)));
    else if (this.socket.writable) this.socket.end();
    this.socket.resume();
    setTimeout(() => this.socket.destroy(), 2_000).unref();
  }
}
