// A strict, bounded HTTP/1.x message-head parser (RFC 9112 §2-§5).
//
// We do not use node:http's server parser on the customer side because a proxy must decide what is
// acceptable itself (limits, no obs-fold, no smuggling ambiguity) and answer 400/431 with our error
// header rather than have the connection torn down. Everything here is pure: it takes the bytes of
// one head (up to and excluding the blank line) and either returns a head or throws a PPError.
import { proxyError } from '../errors.js';

export const MAX_HEAD_BYTES = 16 * 1024;
export const MAX_HEADERS = 100;

export interface Header {
  readonly name: string;
  readonly lower: string;
  readonly value: string;
}

export interface RequestHead {
  readonly method: string;
  readonly target: string;
  readonly version: '1.0' | '1.1';
  readonly headers: readonly Header[];
}

export interface ResponseHead {
  readonly version: '1.0' | '1.1';
  readonly status: number;
  readonly reason: string;
  readonly headers: readonly Header[];
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * Index just past the head's terminating blank line, -1 when more bytes are needed.
 * Throws PP_ERR_PROXY_HEAD_TOO_LARGE once `limit` bytes arrived without a complete head.
 * `from` lets a caller resume the search where the last chunk ended.
 */
export function findHeadEnd(buf: Buffer, limit = MAX_HEAD_BYTES, from = 0): number {
  const i = buf.indexOf(CRLFCRLF, Math.max(0, from - 3));
  if (i >= 0 && i + 4 <= limit) return i + 4;
  if (i >= 0 || buf.length >= limit) throw proxyError('PP_ERR_PROXY_HEAD_TOO_LARGE', { limit });
  return -1;
}

// RFC 9110 §5.6.2 token characters.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible ASCII, obs-text, SP and HTAB (RFC 9110 §5.5); no CR, LF or NUL.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

function bad(reason: string): never {
  throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason });
}

function splitLines(head: Buffer): string[] {
  // latin1 maps bytes 1:1, so no byte can hide a CR/LF after decoding.
  const text = head.toString('latin1');
  const body = text.endsWith('\r\n\r\n') ? text.slice(0, -4) : text;
  const lines = body.split('\r\n');
  if (lines.length - 1 > MAX_HEADERS) bad(`more than ${MAX_HEADERS} header fields`);
  return lines;
}

function parseHeaders(lines: string[]): Header[] {
  const headers: Header[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.length === 0) bad('empty header line');
    // RFC 9112 §5.2: a proxy must reject or rewrite obs-fold; we reject.
    if (line[0] === ' ' || line[0] === '\t') bad('obsolete line folding');
    const colon = line.indexOf(':');
    if (colon <= 0) bad('header without a colon');
    const name = line.slice(0, colon);
    // RFC 9112 §5.1: no whitespace between field name and colon (400).
    if (!TOKEN.test(name)) bad('invalid header name');
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!FIELD_VALUE.test(value)) bad('invalid header value');
    headers.push({ name, lower: name.toLowerCase(), value });
  }
  return headers;
}

function parseVersion(v: string | undefined): '1.0' | '1.1' {
  if (v === 'HTTP/1.1') return '1.1';
  if (v === 'HTTP/1.0') return '1.0';
  return bad('unsupported HTTP version');
}

export function parseRequestHead(head: Buffer): RequestHead {
  const lines = splitLines(head);
  const parts = lines[0]!.split(' ');
  if (parts.length !== 3) bad('malformed request line');
  const [method, target] = parts as [string, string, string];
  if (!TOKEN.test(method)) bad('invalid method');
  if (target.length === 0 || !/^[\x21-\x7e]+$/.test(target)) bad('invalid request target');
  return { method, target, version: parseVersion(parts[2]), headers: parseHeaders(lines) };
}

export function parseResponseHead(head: Buffer): ResponseHead {
  const lines = splitLines(head);
  const m = /^(HTTP\/1\.[01]) ([1-9]\d\d)(?: ([^\r\n]*))?$/.exec(lines[0]!);
  if (!m) bad('malformed status line');
  return { version: parseVersion(m[1]), status: Number(m[2]), reason: m[3] ?? '', headers: parseHeaders(lines) };
}

export function headerValues(headers: readonly Header[], lower: string): string[] {
  const out: string[] = [];
  for (const h of headers) if (h.lower === lower) out.push(h.value);
  return out;
}

/** Comma-separated list field members, lower-cased (Connection, Transfer-Encoding). */
export function listMembers(headers: readonly Header[], lower: string): string[] {
  // Runs several times per request; most requests have no such field at all.
  const out: string[] = [];
  for (const h of headers) {
    if (h.lower !== lower) continue;
    for (const part of h.value.split(',')) {
      const m = part.trim();
      if (m !== '') out.push(m.toLowerCase());
    }
  }
  return out;
}

/** host:port of authority-form (CONNECT, RFC 9112 §3.2.3); IPv6 in brackets. */
export function parseAuthority(target: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+)):(\d{1,5})$/.exec(target);
  if (!m) bad('CONNECT target must be host:port');
  const port = Number(m[3]);
  if (port < 1 || port > 65535) bad('port out of range');
  const host = m[1] ?? m[2]!;
  if (host.length > 253) bad('host name too long');
  return { host, port };
}
