// Server Name Indication from a TLS ClientHello (RFC 8446 §4.1.2, RFC 6066 §3), read from the raw
// bytes a client sent first. The ClientHello may span several TLS records (RFC 8446 §5.1 allows
// handshake messages to be fragmented) and several TCP segments, so records are reassembled first;
// everything is bounded by `maxBytes`. Throws only PPError (PP_ERR_PROXY_TLS_MALFORMED).
import { proxyError } from '../errors.js';

export type ClientHelloResult = { readonly state: 'need-more' } | { readonly state: 'done'; readonly sni?: string };

const RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const MAX_RECORD = 16384 + 2048; // TLSPlaintext.length bound, RFC 8446 §5.1 (+ TLS 1.2 slack)

function bad(reason: string): never {
  throw proxyError('PP_ERR_PROXY_TLS_MALFORMED', { reason });
}

/** True when `b` can only be the start of a TLS handshake record. */
export function looksLikeTls(b: Buffer): boolean {
  return b.length >= 1 && b[0] === RECORD_HANDSHAKE && (b.length < 2 || b[1] === 3);
}

export function parseClientHello(buf: Buffer, maxBytes = 16 * 1024): ClientHelloResult {
  // 1. Reassemble handshake bytes from consecutive records (a partial last record counts too).
  const parts: Buffer[] = [];
  let have = 0;
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < 5) break;
    if (buf[off] !== RECORD_HANDSHAKE) bad('not a handshake record');
    if (buf[off + 1] !== 3) bad('bad record version');
    const len = buf.readUInt16BE(off + 3);
    if (len === 0 || len > MAX_RECORD) bad('bad record length');
    const end = Math.min(buf.length, off + 5 + len);
    parts.push(buf.subarray(off + 5, end));
    have += end - off - 5;
    off += 5 + len;
  }
  const hs = parts.length === 1 ? parts[0]! : Buffer.concat(parts, have);
  if (hs.length < 4) return needMore(buf, maxBytes);
  if (hs[0] !== HANDSHAKE_CLIENT_HELLO) bad('first handshake message is not a ClientHello');
  const bodyLen = hs.readUIntBE(1, 3);
  if (bodyLen + 4 + 5 > maxBytes) return { state: 'done' }; // too big to bother: no SNI
  if (hs.length < 4 + bodyLen) return needMore(buf, maxBytes);
  return { state: 'done', sni: readSni(hs.subarray(4, 4 + bodyLen)) };
}

function needMore(buf: Buffer, maxBytes: number): ClientHelloResult {
  return buf.length >= maxBytes ? { state: 'done' } : { state: 'need-more' };
}

function readSni(b: Buffer): string | undefined {
  let p = 2 + 32; // legacy_version, random
  const need = (n: number): void => {
    if (p + n > b.length) bad('truncated ClientHello');
  };
  need(1);
  p += 1 + b[p]!; // legacy_session_id <0..32>
  need(2);
  const cs = b.readUInt16BE(p);
  p += 2;
  if (cs % 2 !== 0) bad('odd cipher_suites length');
  need(cs);
  p += cs;
  need(1);
  p += 1 + b[p]!; // legacy_compression_methods
  if (p === b.length) return undefined; // no extensions (SSLv3-style hello)
  need(2);
  const extEnd = p + 2 + b.readUInt16BE(p);
  p += 2;
  if (extEnd > b.length) bad('extensions overrun');
  while (p + 4 <= extEnd) {
    const type = b.readUInt16BE(p);
    const len = b.readUInt16BE(p + 2);
    p += 4;
    if (p + len > extEnd) bad('extension overrun');
    if (type === EXT_SERVER_NAME) return serverName(b.subarray(p, p + len));
    p += len;
  }
  return undefined;
}

/** RFC 6066 §3 ServerNameList; only host_name (0) is defined. */
function serverName(e: Buffer): string | undefined {
  if (e.length < 2) bad('short server_name');
  const end = 2 + e.readUInt16BE(0);
  if (end > e.length) bad('server_name list overrun');
  let p = 2;
  while (p + 3 <= end) {
    const nameType = e[p]!;
    const len = e.readUInt16BE(p + 1);
    p += 3;
    if (p + len > end) bad('server_name overrun');
    if (nameType === 0) return validHost(e.toString('latin1', p, p + len));
    p += len;
  }
  return undefined;
}

/** RFC 6066 §3: ASCII host name without a trailing dot; anything else is ignored, not trusted. */
export function validHost(h: string): string | undefined {
  const host = h.toLowerCase().replace(/\.$/, '');
  if (host.length === 0 || host.length > 253 || !/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(host)) return undefined;
  return host;
}
