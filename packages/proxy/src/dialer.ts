// The default egress: resolve, check every answer against the destination policy, connect.
//
// Every resolved address is checked (not just the one we connect to), and we connect to an address
// we checked rather than handing the name to net.connect: otherwise a name answering first a public
// and then a private address (DNS rebinding) would slip past the policy.
//
// Answers are reused for `dnsCacheMs` (default 5 s, dns-cache.ts); the check above still runs on
// every request.
import * as net from 'node:net';
import { frontByDefault, leanByDefault } from './lean/default.js';
import { LeanSocket } from './lean/socket.js';
import type { ConnectableSocket, ProxySocket } from './socket.js';
import * as dns from 'node:dns/promises';
import { isPPError } from '@pocketproxy/errors';
import { proxyError, type PPError } from './errors.js';
import { isForbiddenAddress, validatePolicy, type DestinationPolicy } from './policy.js';
import { createDnsCache, DEFAULT_DNS_CACHE_MS } from './dns-cache.js';
import { ipFamily } from './ip.js';
import type { Dial, DialRequest, ResolveChecked } from './types.js';

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}
export type Resolve = (host: string) => Promise<ResolvedAddress[]>;

export const systemResolve: Resolve = async (host) => {
  const all = await dns.lookup(host, { all: true, verbatim: true });
  return all.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

export interface PolicyResolverOptions {
  readonly policy: DestinationPolicy;
  readonly resolve?: Resolve;
  /**
   * How long answers of `resolve` are reused, per resolver (default 5000 ms; 0 = resolve every
   * time). A caller that rebuilds its dialer often passes a cached `resolve` (createDnsCache) and 0.
   */
  readonly dnsCacheMs?: number;
}

const VERDICTS_MAX = 4096;

/** Resolves `host` (or takes an IP literal) and rejects unless every address passes the policy. */
export function createPolicyResolveAll(opts: PolicyResolverOptions): (host: string) => Promise<ResolvedAddress[]> {
  validatePolicy(opts.policy);
  const base = opts.resolve ?? systemResolve;
  const cacheMs = opts.dnsCacheMs ?? DEFAULT_DNS_CACHE_MS;
  const resolve = cacheMs > 0 ? createDnsCache(base, { ttlMs: cacheMs }) : base;
  // The verdict for an address is a pure function of it and this resolver's fixed policy: remember
  // it (bounded) instead of parsing the address and walking the deny list on every request.
  const verdicts = new Map<string, boolean>();
  const forbidden = (address: string): boolean => {
    let v = verdicts.get(address);
    if (v === undefined) {
      v = isForbiddenAddress(address, opts.policy);
      if (verdicts.size >= VERDICTS_MAX) verdicts.clear();
      verdicts.set(address, v);
    }
    return v;
  };
  return async (rawHost) => {
    const host = rawHost.startsWith('[') && rawHost.endsWith(']') ? rawHost.slice(1, -1) : rawHost;
    const fam = ipFamily(host);
    let addrs: ResolvedAddress[];
    if (fam !== 0) addrs = [{ address: host, family: fam === 6 ? 6 : 4 }];
    else {
      try {
        addrs = await resolve(host);
      } catch (e) {
        throw classifyDialError(e, host, 0);
      }
      if (addrs.length === 0) throw proxyError('PP_ERR_PROXY_DNS_NOT_FOUND', { host });
    }
    for (const a of addrs) {
      if (forbidden(a.address)) throw proxyError('PP_ERR_PROXY_FORBIDDEN_DESTINATION', { host });
    }
    return addrs;
  };
}

/** The UDP flavour: first allowed address (all answers were checked). */
export function createPolicyResolver(opts: PolicyResolverOptions): ResolveChecked {
  const all = createPolicyResolveAll(opts);
  return async (host) => (await all(host))[0]!;
}

export interface PolicyDialerOptions extends PolicyResolverOptions {
  /** Local address to bind (the egress interface's address); per family when both are used. */
  readonly bindAddress?: string | { readonly ipv4?: string; readonly ipv6?: string };
  readonly connectTimeoutMs?: number;
  /** At most this many resolved addresses are tried in order (default 2). */
  readonly maxAttempts?: number;
  /**
   * Makes the unconnected socket for one attempt (already bound to `localAddress` if given, and
   * with Nagle off if wanted: it is connected as is), or undefined for a plain net.connect (Nagle
   * off). The agent's egress passes sockets bound with IP_BIND_ADDRESS_NO_PORT (@pocketproxy/tun
   * openTcpSocket).
   */
  readonly openSocket?: (family: 4 | 6, localAddress: string | undefined) => ConnectableSocket | undefined;
  /** Without openSocket (or when it answers undefined): connect LeanSockets (lean/socket.ts) instead of net.Sockets. */
  readonly lean?: boolean;
  /**
   * openSocket's socket as a bare fd (the caller's to connect and close), for the dial's `prepare`
   * (DialPlan.openFd); without it the dial has no `prepare`.
   */
  readonly openFd?: (family: 4 | 6, localAddress: string | undefined) => number;
}

export function createPolicyDialer(opts: PolicyDialerOptions): Dial {
  const resolveAll = createPolicyResolveAll(opts);
  const timeoutMs = opts.connectTimeoutMs ?? 10_000;
  const maxAttempts = opts.maxAttempts ?? 2;
  const bindFor = (family: 4 | 6): string | undefined => {
    const b = opts.bindAddress;
    if (b === undefined) return undefined;
    if (typeof b === 'string') return ipFamily(b) === family ? b : undefined;
    return family === 4 ? b.ipv4 : b.ipv6;
  };
  // When a bind address is configured for only one family, the other family has no egress.
  const usable = (family: 4 | 6): boolean => opts.bindAddress === undefined || bindFor(family) !== undefined;

  const attemptsFor = async (req: Pick<DialRequest, 'host' | 'port'>): Promise<ResolvedAddress[]> => {
    const addrs = (await resolveAll(req.host)).filter((a) => usable(a.family));
    if (addrs.length === 0) throw proxyError('PP_ERR_PROXY_NETWORK_UNREACHABLE', { host: req.host, port: req.port });
    return addrs.slice(0, maxAttempts);
  };
  const dial: Dial = async (req: DialRequest) => {
    const addrs = await attemptsFor(req);
    const deadline = Date.now() + timeoutMs;
    let last: PPError | undefined;
    for (const a of addrs) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        return await connectOnce(
          a,
          req.port,
          bindFor(a.family),
          left,
          opts.openSocket,
          opts.lean ?? leanByDefault(),
          req.onSocket,
        );
      } catch (e) {
        last = classifyDialError(e, req.host, req.port);
        if (last.code === 'PP_ERR_PROXY_TARGET_TIMEOUT') break;
      }
    }
    throw last ?? proxyError('PP_ERR_PROXY_TARGET_TIMEOUT', { host: req.host, port: req.port });
  };
  const openFd = opts.openFd ?? (opts.openSocket ? undefined : frontByDefault()?.openFd);
  if (openFd) {
    dial.prepare = async (req) => ({
      attempts: await attemptsFor(req),
      port: req.port,
      deadline: Date.now() + timeoutMs,
      openFd: (family) => openFd(family, bindFor(family)),
    });
  }
  return dial;
}

function connectOnce(
  to: ResolvedAddress,
  port: number,
  localAddress: string | undefined,
  timeoutMs: number,
  open: PolicyDialerOptions['openSocket'],
  lean: boolean,
  onSocket: DialRequest['onSocket'],
): Promise<ProxySocket> {
  return new Promise((resolve, reject) => {
    const host = to.address;
    let s: ProxySocket;
    try {
      const made = open?.(to.family, localAddress);
      if (made) {
        made.connect({ host, port });
        s = made;
      } else if (lean) {
        const l = LeanSocket.connect({ host, port, localAddress });
        l.setNoDelay(true);
        s = l;
      } else {
        // allowHalfOpen: a tunnel forwards each direction's FIN separately (see relay.ts).
        s = net.connect({ host, port, localAddress, allowHalfOpen: true, noDelay: true });
      }
    } catch (e) {
      return reject(e);
    }
    try {
      onSocket?.(s);
    } catch (e) {
      s.destroy();
      return reject(e);
    }
    const timer = setTimeout(() => {
      s.destroy();
      reject(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** Maps whatever a dial rejected with to one of our codes (caller-supplied dials may throw errno errors). */
export function classifyDialError(e: unknown, host: string, port: number): PPError {
  if (isPPError(e)) return e;
  const code = (e as { code?: unknown } | null)?.code;
  const p = { host, port };
  switch (code) {
    case 'ENOTFOUND':
    case 'EAI_NONAME':
    case 'EAI_NODATA':
    case 'ENODATA':
      return proxyError('PP_ERR_PROXY_DNS_NOT_FOUND', { host }, { cause: e });
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'ESERVFAIL':
    case 'ETIMEOUT':
    case 'ECONNREFUSED_DNS':
      return proxyError('PP_ERR_PROXY_DNS_FAILED', { host }, { cause: e });
    case 'ECONNREFUSED':
      return proxyError('PP_ERR_PROXY_TARGET_REFUSED', p, { cause: e });
    case 'ECONNRESET':
    case 'EPIPE':
      return proxyError('PP_ERR_PROXY_TARGET_RESET', p, { cause: e });
    case 'ETIMEDOUT':
      return proxyError('PP_ERR_PROXY_TARGET_TIMEOUT', p, { cause: e });
    case 'ENETUNREACH':
    case 'ENETDOWN':
    case 'EADDRNOTAVAIL':
      return proxyError('PP_ERR_PROXY_NETWORK_UNREACHABLE', p, { cause: e });
    case 'EHOSTUNREACH':
    case 'EHOSTDOWN':
      return proxyError('PP_ERR_PROXY_HOST_UNREACHABLE', p, { cause: e });
    default:
      return proxyError('PP_ERR_PROXY_UPSTREAM_FAILED', p, { cause: e });
  }
}
