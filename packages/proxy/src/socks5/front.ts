// The SOCKS5 front (front/connection.ts): the SOCKS5 server's decision for a connection the native
// engine accepted. The engine asks at every read with the bytes read since; the handshake is framed
// and parsed here by the server's own codecs (wire.ts), and each answer goes back through
// frontReply, which writes it and reads on. A CONNECT of an unlimited customer is connected by the
// engine, which writes the success reply (its BND.ADDR and BND.PORT are the target socket's local
// address, as the JS path answers) and relays the pair kernel to kernel.
//
// Answers are written only when more bytes are needed: a client that sends greeting, credentials and
// request in one segment gets the three answers in one segment too, the last one at the join.
//
// One home per flow: what is not a CONNECT of an unlimited customer is adopted. Before any answer
// (a greeting without username/password, for allow-listed customers) the JS path reads the handshake
// from the start; after the credentials (UDP ASSOCIATE, BIND, limited meters) it resumes where this
// one stopped (socks5Resume): it writes the answers not sent yet, checks the same credentials again on
// its own socket (so revocation and max_connections hold it, not the front's handle), and reads the
// request.
import { proxyError, type PPError } from '../errors.js';
import type { LeanSocket } from '../lean/socket.js';
import { FrontConnection, type FrontHeadEnd, type FrontJoin } from '../front/connection.js';
import { SocketAuthContext, type ProxyStats } from '../server-base.js';
import type { ProxySocket } from '../socket.js';
import type { AuthContext, Authenticate, Principal } from '../types.js';
import { replyCodeFor } from './reply.js';
import {
  CMD_CONNECT,
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

/** Where an adopted connection's handshake stands: credentials checked, these answers not yet written. */
export interface Socks5Resume {
  readonly user: string;
  readonly pass: string;
  readonly out: Buffer;
}

/** Adopted sockets whose greeting and credentials the front read (server.ts resumes them). */
export const socks5Resume = new WeakMap<object, Socks5Resume>();

/**
 * An adopted socket's handshake deadline (epoch ms), counted from the engine's accept: server.ts keeps
 * it instead of starting a full one (a greeting adopted before any answer must not get a second).
 */
export const handshakeDeadline = new WeakMap<object, number>();

const EMPTY = Buffer.alloc(0);
const CHOOSE_USERPASS = Buffer.from([VERSION, METHOD_USERPASS]);
const NO_METHOD = Buffer.from([VERSION, METHOD_NONE_ACCEPTABLE]);
const AUTH_OK = Buffer.from([0x01, 0x00]);
const AUTH_FAILED = Buffer.from([0x01, 0x01]);
/** The success reply's length with an IPv4 / IPv6 BND.ADDR. */
const REPLY_V4 = 10;
const REPLY_V6 = 22;

/**
 * The credentials check of both SOCKS5 paths (server.ts, and here): the principal, or a PPError
 * (AUTH_UNAVAILABLE when the check itself failed; AUTH_FAILED, counted in `stats`, when refused).
 */
export async function verifyCredentials(
  authenticate: Authenticate,
  user: string,
  pass: string,
  ctx: AuthContext,
  stats: ProxyStats,
): Promise<Principal> {
  let ok: Principal | null;
  try {
    ok = await authenticate(user, pass, ctx);
  } catch (e) {
    throw proxyError('PP_ERR_PROXY_AUTH_UNAVAILABLE', {}, { cause: e });
  }
  if (!ok) {
    stats.authFailures++;
    throw proxyError('PP_ERR_PROXY_AUTH_FAILED');
  }
  return ok;
}

/** One customer connection of a SOCKS5 front, from its first bytes on (see the file's head). */
export class Socks5FrontConnection extends FrontConnection {
  /** Handshake bytes read and not parsed yet. */
  private buf: Buffer = this.bytes;
  private stage: 'greeting' | 'auth' | 'request' | 'busy' = 'greeting';
  /** Answers not written yet (written when more bytes are needed, at the join, or with a failure). */
  private out: Buffer[] = [];
  private leave: () => void = () => {};
  private credentials: { user: string; pass: string } | undefined;
  private granted: Principal | undefined;
  /** The customer's FIN came (a half-close is fine once a CONNECT was read). */
  private eof = false;
  /** A failure that closes without a reply even at the request stage. */
  private closeOnly = false;

  protected readonly protocol = 'socks5';

  protected start(leave: () => void): void {
    this.leave = leave;
    this.step(this.why);
  }

  override more(bytes: Buffer, why: FrontHeadEnd): void {
    if (this.destroyed) return;
    this.bytesRead += bytes.length;
    this.buf = this.buf.length === 0 ? bytes : Buffer.concat([this.buf, bytes]);
    this.step(why);
  }

  /** Consumes the complete messages in hand; asks for more (with the answers so far) when short. */
  private step(why: FrontHeadEnd): void {
    if (why === 'eof') this.eof = true;
    try {
      if (why === 'timeout') {
        this.server!.stats.handshakeTimeouts++;
        this.closeOnly = true;
        throw proxyError('PP_ERR_PROXY_HANDSHAKE_TIMEOUT', { ms: this.cfg!.headTimeoutMs });
      }
      if (this.buf.length > MAX_HANDSHAKE_BYTES) {
        this.closeOnly = true;
        throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'handshake too large' });
      }
      for (;;) {
        if (this.stage === 'greeting') {
          const g = parseGreeting(this.buf);
          if (!g) break;
          if (!g.methods.includes(METHOD_USERPASS)) {
            // No answer went out yet: the JS path reads the greeting itself (no-auth customers).
            if (g.methods.includes(METHOD_NO_AUTH) && this.cfg!.allowNoAuth) {
              this.handOver(this.buf);
              return;
            }
            this.out.push(NO_METHOD);
            throw proxyError('PP_ERR_PROXY_SOCKS_NO_METHOD');
          }
          this.consume(g.length);
          this.out.push(CHOOSE_USERPASS);
          this.stage = 'auth';
        } else if (this.stage === 'auth') {
          const up = parseUserPass(this.buf);
          if (!up) break;
          this.consume(up.length);
          this.stage = 'busy';
          this.checkPassword(up.user, up.pass).then(
            () => {
              if (this.destroyed) return;
              this.stage = 'request';
              this.step(this.eof ? 'eof' : 'complete');
            },
            (e: unknown) => this.fail(e),
          );
          return;
        } else if (this.stage === 'request') {
          const r = parseRequest(this.buf);
          if (!r) break;
          this.request(r.cmd, r.host, r.port, r.length);
          return;
        } else return;
      }
    } catch (e) {
      this.fail(e);
      return;
    }
    // Short of a message: the answers so far go, and the engine reads on.
    if (this.eof) {
      this.destroy();
      return;
    }
    const out = this.takeOut();
    if (!this.front.engine.frontReply(this.id, out)) this.destroy();
    else this.bytesWritten += out.length;
  }

  private consume(n: number): void {
    this.buf = n >= this.buf.length ? EMPTY : this.buf.subarray(n);
  }

  private takeOut(): Buffer {
    const out = this.out.length === 0 ? EMPTY : this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out);
    this.out = [];
    return out;
  }

  private async checkPassword(user: string, pass: string): Promise<void> {
    const ctx = new SocketAuthContext('socks5', this as unknown as ProxySocket);
    let ok: Principal;
    try {
      ok = await verifyCredentials(this.cfg!.authenticate, user, pass, ctx, this.server!.stats);
    } catch (e) {
      // RFC 1929 §2: a non-zero status MUST be followed by closing the connection.
      this.out.push(AUTH_FAILED);
      throw e;
    }
    this.principal = ok.principal;
    this.granted = ok;
    this.credentials = { user, pass };
    // A denied customer is answered with the refusal (RFC 1929 has only "failure") and moved nothing.
    this.served = !ok.deny;
    this.leave();
    this.out.push(AUTH_OK);
  }

  private request(cmd: number, host: string, port: number, length: number): void {
    if (this.granted?.deny) {
      this.server!.stats.denied++;
      throw this.granted.deny;
    }
    const meter = this.granted?.meter;
    // UDP ASSOCIATE, BIND (answered there) and limited meters: the JS path takes over from here.
    if (cmd !== CMD_CONNECT || (meter && meter.unlimited?.() !== true)) {
      this.resumeInJs();
      return;
    }
    this.consume(length);
    this.stage = 'busy';
    this.meter = meter;
    // Optimistic data the client sent before our reply goes first, as on the JS path.
    this.first = this.buf.length > 0 ? this.buf : null;
    this.buf = EMPTY;
    this.dial(host, port).catch((e: unknown) => this.fail(e));
  }

  /** adopt(), the handshake's deadline from the engine's accept going along (handshakeDeadline). */
  private handOver(bytes: Buffer, prepare?: (s: LeanSocket) => void): void {
    const left = this.front.engine.frontHeadLeft(this.id);
    const deadline = Date.now() + left;
    this.adopt(bytes, (s) => {
      if (left >= 0) handshakeDeadline.set(s, deadline);
      prepare?.(s);
    });
  }

  /** Adopted after the credentials: the JS path resumes the handshake at the request. */
  private resumeInJs(): void {
    const { user, pass } = this.credentials!;
    const out = this.takeOut();
    const read = this.bytesRead;
    const written = this.bytesWritten;
    this.handOver(this.buf, (s) => {
      socks5Resume.set(s, { user, pass, out });
      s.bytesRead = read;
      s.bytesWritten += written;
    });
  }

  protected joinWith(family: 4 | 6): FrontJoin {
    // The answers not written yet go ahead of the engine's success reply (kept for a failure's answer
    // until the join: nothing is written before it).
    const out = this.out.length === 0 ? EMPTY : Buffer.concat(this.out);
    return {
      toClient: out.length > 0 ? out : null,
      replyBytes: out.length + (family === 6 ? REPLY_V6 : REPLY_V4),
      request: false,
    };
  }

  /**
   * Before the request stage: the answers so far (a refusal among them), then the close; from it on,
   * a reply with the failure's code, except for the deadline and an oversized handshake (closed
   * without one, as the JS path does).
   */
  protected failureAnswer(err: PPError): Buffer {
    const out = this.takeOut();
    if (!this.credentials || this.closeOnly) return out;
    return Buffer.concat([out, encodeReply(replyCodeFor(err))]);
  }
}
