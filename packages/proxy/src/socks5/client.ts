// SOCKS5 client (RFC 1928 CONNECT, RFC 1929 username/password): opens a tunnel through a SOCKS5
// proxy. The relay's transparent proxy uses it to reach a SOCKS5 connection's port on a device,
// as connectVia does for HTTP ones.
//
// Greeting, credentials and request leave in one segment. We offer exactly one method, so the
// server's choice is known in advance and the three answers can be read as they come: one round
// trip instead of three over the tunnel. Servers that read the stream message by message (ours
// does; RFC 1928 does not ask for a pause between messages) accept that.
import type * as net from 'node:net';
import { proxyError } from '../errors.js';
import { proxyHandshake, type ConnectViaOptions } from '../connect-via.js';
import { REP } from './reply.js';
import {
  METHOD_NO_AUTH,
  METHOD_NONE_ACCEPTABLE,
  METHOD_USERPASS,
  VERSION,
  encodeAddress,
  parseReply,
  type Reply,
  type SocksAddress,
} from './wire.js';

/** Same fields as connectVia's. */
export type ConnectViaSocks5Options = ConnectViaOptions;

export interface Socks5Tunnel {
  /** Connected to the target, paused; bytes the target sent early are already unshifted into it. */
  readonly socket: net.Socket;
}

export type Socks5Answers =
  | { readonly kind: 'more' }
  | { readonly kind: 'rejected'; readonly status: number; readonly code: string }
  | { readonly kind: 'connected'; readonly bound: SocksAddress; readonly length: number };

const REPLY_NAMES = new Map<number, string>(Object.entries(REP).map(([k, v]) => [v, k]));

function bad(reason: string): never {
  throw proxyError('PP_ERR_PROXY_BAD_UPSTREAM_RESPONSE', { reason }, { cause: new Error(reason) });
}

/**
 * Reads the server's answers to our greeting (one method offered), credentials (when `withAuth`)
 * and request, from the start of what it sent. Pure, over a possibly partial buffer; throws
 * PP_ERR_PROXY_BAD_UPSTREAM_RESPONSE for bytes no valid server sends.
 */
export function readSocks5Answers(b: Buffer, withAuth: boolean): Socks5Answers {
  if (b.length < 2) return { kind: 'more' };
  if (b[0] !== VERSION) bad(`method selection version ${b[0]}`);
  if (b[1] === METHOD_NONE_ACCEPTABLE)
    return { kind: 'rejected', status: METHOD_NONE_ACCEPTABLE, code: 'NO_ACCEPTABLE_METHOD' };
  if (b[1] !== (withAuth ? METHOD_USERPASS : METHOD_NO_AUTH)) bad(`method ${b[1]} was not offered`);
  let off = 2;
  if (withAuth) {
    if (b.length < off + 2) return { kind: 'more' };
    // RFC 1929 says VER 0x01; some servers echo the SOCKS version instead. Both mean the same.
    if (b[off] !== 0x01 && b[off] !== VERSION) bad(`auth status version ${b[off]}`);
    if (b[off + 1] !== 0x00) return { kind: 'rejected', status: b[off + 1]!, code: 'AUTH_FAILED' };
    off += 2;
  }
  if (b.length < off + 2) return { kind: 'more' };
  if (b[off] !== VERSION) bad(`reply version ${b[off]}`);
  const rep = b[off + 1]!;
  // A failure is final at its code; servers differ in what (if anything) follows it.
  if (rep !== REP.SUCCEEDED) return { kind: 'rejected', status: rep, code: REPLY_NAMES.get(rep) ?? 'UNKNOWN' };
  let r: Reply | null;
  try {
    r = parseReply(b.subarray(off));
  } catch (e) {
    return bad(`reply: ${(e as Error).message}`);
  }
  if (!r) return { kind: 'more' };
  return { kind: 'connected', bound: { atyp: r.atyp, host: r.host, port: r.port }, length: off + r.length };
}

/** Greeting + (credentials) + CONNECT request, in one buffer. Throws PP_ERR_PROXY_BAD_REQUEST for unencodable input. */
export function socks5Hello(o: Pick<ConnectViaOptions, 'auth' | 'host' | 'port'>): Buffer {
  const parts: Buffer[] = [Buffer.from([VERSION, 1, o.auth ? METHOD_USERPASS : METHOD_NO_AUTH])];
  if (o.auth) {
    const user = Buffer.from(o.auth.username, 'utf8');
    const pass = Buffer.from(o.auth.password, 'utf8');
    // RFC 1929: 1..255 bytes each.
    if (user.length < 1 || user.length > 255 || pass.length < 1 || pass.length > 255) {
      throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'SOCKS5 username and password must be 1-255 bytes' });
    }
    parts.push(Buffer.from([0x01, user.length]), user, Buffer.from([pass.length]), pass);
  }
  parts.push(Buffer.from([VERSION, 0x01, 0x00]), encodeAddress(o.host, o.port));
  return Buffer.concat(parts);
}

export async function connectViaSocks5(o: ConnectViaSocks5Options): Promise<Socks5Tunnel> {
  const hello = socks5Hello(o);
  const withAuth = o.auth !== undefined;
  const { socket, rest } = await proxyHandshake(o, hello, (buf) => {
    const a = readSocks5Answers(buf, withAuth);
    if (a.kind === 'more') return undefined;
    if (a.kind === 'rejected') throw proxyError('PP_ERR_PROXY_UPSTREAM_REJECTED', { status: a.status, code: a.code });
    return a.length;
  });
  // The target's first bytes may share a segment with the reply: hand them back to the stream.
  if (rest.length > 0) socket.unshift(rest);
  return { socket };
}
