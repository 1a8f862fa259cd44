// Per-request steps of the HTTP proxy that need no connection state: where a request goes, and who
// sends it (Proxy-Authorization: Basic, or an allow-listed source without credentials).
import { isPPError } from '@pocketproxy/errors';
import { proxyError } from '../errors.js';
import type { ProxyStats } from '../server-base.js';
import type { AllowNoAuth, AuthContext, Authenticate, Principal } from '../types.js';
import { parseProxyAuthorization } from './basic-auth.js';
import { parseAuthority, type RequestHead } from './head.js';

export interface RequestTarget {
  readonly host: string;
  readonly port: number;
  /** Absolute-form requests only. */
  readonly url?: URL;
}

/** CONNECT authority or absolute-form http:// URI; throws the PPError to answer with. */
export function requestTarget(head: RequestHead): RequestTarget {
  if (head.method === 'CONNECT') return parseAuthority(head.target);
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(head.target))
    throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'a proxy request needs an absolute URI' });
  let url: URL;
  try {
    url = new URL(head.target);
  } catch {
    throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'invalid URI' });
  }
  if (url.protocol !== 'http:')
    throw proxyError('PP_ERR_PROXY_UNSUPPORTED_SCHEME', { scheme: url.protocol.slice(0, -1) });
  if (url.username || url.password) throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'userinfo in URI' });
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (host === '') throw proxyError('PP_ERR_PROXY_BAD_REQUEST', { reason: 'empty host' });
  return { host, port: url.port ? Number(url.port) : 80, url };
}

export interface AuthDeps {
  readonly authenticate: Authenticate;
  readonly allowNoAuth?: AllowNoAuth;
}

/** The request's principal, or the PPError to answer with (407, or 500 when `authenticate` threw). */
export async function authenticateRequest(
  head: RequestHead,
  deps: AuthDeps,
  ctx: AuthContext,
  stats: ProxyStats,
): Promise<Principal> {
  const cred = parseProxyAuthorization(head.headers);
  try {
    if (cred === undefined) {
      const anon = deps.allowNoAuth;
      if (anon === true) return { principal: 'anonymous' };
      const ok = typeof anon === 'function' ? await anon(ctx) : null;
      if (ok) return ok;
      throw proxyError('PP_ERR_PROXY_AUTH_REQUIRED');
    }
    const ok = cred === 'malformed' ? null : await deps.authenticate(cred.user, cred.pass, ctx);
    if (!ok) {
      stats.authFailures++;
      throw proxyError('PP_ERR_PROXY_AUTH_FAILED');
    }
    return ok;
  } catch (e) {
    throw isPPError(e) ? e : proxyError('PP_ERR_PROXY_AUTH_UNAVAILABLE', {}, { cause: e });
  }
}
