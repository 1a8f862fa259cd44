// Proxy-Authorization: Basic (RFC 7617, RFC 9110 §11.7.2).
import type { Header } from './head.js';

/** undefined: no usable header; otherwise the decoded pair. Non-Basic schemes count as absent. */
export function parseProxyAuthorization(
  headers: readonly Header[],
): { user: string; pass: string } | undefined | 'malformed' {
  const h = headers.find((x) => x.lower === 'proxy-authorization');
  if (!h) return undefined;
  const m = /^basic +([A-Za-z0-9+/]+={0,2})$/i.exec(h.value);
  if (!m) return 'malformed';
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return 'malformed';
  return { user: decoded.slice(0, colon), pass: decoded.slice(colon + 1) };
}

export function basicAuthValue(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`, 'utf8').toString('base64')}`;
}
