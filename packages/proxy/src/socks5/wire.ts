// SOCKS5 message codecs (RFC 1928 §3-§7, RFC 1929 §2). Pure functions over a Buffer that may hold a
// partial message: each parser returns null when more bytes are needed, the parsed message and its
// length when complete, and throws a PPError when the bytes can never become a valid message.
import { proxyError } from '../errors.js';
import { ipFamily } from '../ip.js';
import { ipToBytes } from '../policy.js';

export const VERSION = 0x05;
export const METHOD_NO_AUTH = 0x00;
export const METHOD_USERPASS = 0x02;
export const METHOD_NONE_ACCEPTABLE = 0xff;
export const CMD_CONNECT = 0x01;
export const CMD_BIND = 0x02;
export const CMD_UDP_ASSOCIATE = 0x03;
export const ATYP_IPV4 = 0x01;
export const ATYP_DOMAIN = 0x03;
export const ATYP_IPV6 = 0x04;
/** The most handshake bytes a server holds: RFC 1929's longest message is 513 bytes; beyond a few is abuse. */
export const MAX_HANDSHAKE_BYTES = 2048;

export interface Greeting {
  readonly methods: readonly number[];
  readonly length: number;
}
export interface UserPass {
  readonly user: string;
  readonly pass: string;
  readonly length: number;
}
export interface SocksAddress {
  readonly atyp: number;
  readonly host: string;
  readonly port: number;
}
export interface Request extends SocksAddress {
  readonly cmd: number;
  readonly length: number;
}
export interface Reply extends SocksAddress {
  readonly rep: number;
  readonly length: number;
}

/** RFC 1928 §3: VER NMETHODS METHODS[1..255]. */
export function parseGreeting(b: Buffer): Greeting | null {
  if (b.length < 1) return null;
  if (b[0] !== VERSION) throw proxyError('PP_ERR_PROXY_SOCKS_BAD_VERSION', { version: b[0]! });
  if (b.length < 2) return null;
  const n = b[1]!;
  if (n === 0) throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'no SOCKS methods offered' });
  if (b.length < 2 + n) return null;
  return { methods: [...b.subarray(2, 2 + n)], length: 2 + n };
}

/** RFC 1929 §2: VER(0x01) ULEN UNAME PLEN PASSWD. */
export function parseUserPass(b: Buffer): UserPass | null {
  if (b.length < 1) return null;
  if (b[0] !== 0x01)
    throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'bad username/password subnegotiation version' });
  if (b.length < 2) return null;
  const ulen = b[1]!;
  if (b.length < 3 + ulen) return null;
  const plen = b[2 + ulen]!;
  const length = 3 + ulen + plen;
  if (b.length < length) return null;
  return { user: b.toString('utf8', 2, 2 + ulen), pass: b.toString('utf8', 3 + ulen, length), length };
}

/** ATYP ADDR PORT starting at `off`; null when incomplete. Returns the offset after the port. */
export function readAddress(b: Buffer, off: number): { addr: SocksAddress; next: number } | null {
  if (b.length < off + 1) return null;
  const atyp = b[off]!;
  let host: string;
  let p: number;
  if (atyp === ATYP_IPV4) {
    if (b.length < off + 7) return null;
    host = `${b[off + 1]}.${b[off + 2]}.${b[off + 3]}.${b[off + 4]}`;
    p = off + 5;
  } else if (atyp === ATYP_IPV6) {
    if (b.length < off + 19) return null;
    const g: number[] = [];
    for (let i = 0; i < 8; i++) g.push(b.readUInt16BE(off + 1 + i * 2));
    host = formatIpv6(g);
    p = off + 17;
  } else if (atyp === ATYP_DOMAIN) {
    if (b.length < off + 2) return null;
    const len = b[off + 1]!;
    if (len === 0) throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'empty domain name' });
    if (b.length < off + 2 + len + 2) return null;
    host = b.toString('latin1', off + 2, off + 2 + len);
    // A domain (or an IP literal sent as a domain); nothing a resolver would misread.
    if (!/^[A-Za-z0-9._:-]+$/.test(host))
      throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'invalid domain name' });
    p = off + 2 + len;
  } else {
    throw proxyError('PP_ERR_PROXY_SOCKS_ATYP_UNSUPPORTED', { atyp });
  }
  return { addr: { atyp, host, port: b.readUInt16BE(p) }, next: p + 2 };
}

/** RFC 1928 §4: VER CMD RSV ATYP DST.ADDR DST.PORT. */
export function parseRequest(b: Buffer): Request | null {
  if (b.length < 1) return null;
  if (b[0] !== VERSION) throw proxyError('PP_ERR_PROXY_SOCKS_BAD_VERSION', { version: b[0]! });
  if (b.length < 4) return null;
  const cmd = b[1]!;
  const r = readAddress(b, 3);
  if (!r) return null;
  return { cmd, ...r.addr, length: r.next };
}

/** RFC 1928 §6 (client side): VER REP RSV ATYP BND.ADDR BND.PORT. */
export function parseReply(b: Buffer): Reply | null {
  if (b.length < 1) return null;
  if (b[0] !== VERSION) throw proxyError('PP_ERR_PROXY_SOCKS_BAD_VERSION', { version: b[0]! });
  if (b.length < 4) return null;
  const r = readAddress(b, 3);
  if (!r) return null;
  return { rep: b[1]!, ...r.addr, length: r.next };
}

/** ATYP ADDR PORT for an IP literal or a name (names longer than 255 bytes are refused). */
export function encodeAddress(host: string, port: number): Buffer {
  const ip = ipFamily(host) ? ipToBytes(host) : null;
  let out: Buffer;
  if (ip && ip.length === 4) {
    out = Buffer.allocUnsafe(7);
    out[0] = ATYP_IPV4;
    out.set(ip, 1);
  } else if (ip) {
    // A v4-mapped IPv6 address is answered as IPv4: that is what the client sent to.
    const mapped = ip.subarray(0, 12).every((v, i) => v === (i < 10 ? 0 : 0xff));
    if (mapped) return encodeAddress(`${ip[12]}.${ip[13]}.${ip[14]}.${ip[15]}`, port);
    out = Buffer.allocUnsafe(19);
    out[0] = ATYP_IPV6;
    out.set(ip, 1);
  } else {
    const name = Buffer.from(host, 'latin1');
    if (name.length === 0 || name.length > 255)
      throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'domain name length' });
    out = Buffer.allocUnsafe(4 + name.length);
    out[0] = ATYP_DOMAIN;
    out[1] = name.length;
    name.copy(out, 2);
  }
  out.writeUInt16BE(port, out.length - 2);
  return out;
}

/** RFC 1928 §6: VER REP RSV ATYP BND.ADDR BND.PORT. */
export function encodeReply(rep: number, host = '0.0.0.0', port = 0): Buffer {
  return Buffer.concat([Buffer.from([VERSION, rep, 0x00]), encodeAddress(host, port)]);
}

/** RFC 5952 §4 text form (lower case, longest zero run compressed), as node reports addresses. */
export function formatIpv6(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}
