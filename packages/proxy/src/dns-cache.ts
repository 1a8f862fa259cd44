// A short-lived cache in front of a Resolve (dns.lookup by default).
//
// getaddrinfo runs on libuv's thread pool and re-reads /etc/hosts and resolv.conf each time; at
// 600 new proxied connections/s one look-up per request was ~7-10 % of the device agent's CPU, and
// customers mostly ask for a handful of names again and again. dns.lookup does not tell the record's
// TTL, so answers are kept for a fixed `ttlMs` (default 5 s): a changed DNS answer is seen at most
// that much later. Bounded: at most `maxNames` names (the oldest is evicted), concurrent look-ups of
// one name share one in-flight promise, and failures are not cached (the next request asks again).
//
// The policy check still runs on every request against the cached addresses (dialer.ts), so the
// cache never lets a forbidden address through.
import type { Resolve, ResolvedAddress } from './dialer.js';

export interface DnsCacheOptions {
  /** How long an answer is reused (default 5000 ms; 0 = no cache, every call resolves). */
  readonly ttlMs?: number;
  /** Most names kept (default 10,000); the oldest entry goes first. */
  readonly maxNames?: number;
  readonly now?: () => number;
}

export const DEFAULT_DNS_CACHE_MS = 5_000;
export const DEFAULT_DNS_CACHE_NAMES = 10_000;

interface Entry {
  /** Settled answers expire at `expires`; an in-flight look-up has expires = Infinity. */
  expires: number;
  answer: Promise<readonly ResolvedAddress[]>;
}

export interface CachedResolve extends Resolve {
  /** Names currently held (in flight or fresh or not yet evicted). */
  readonly size: number;
  clear(): void;
}

export function createDnsCache(resolve: Resolve, opts: DnsCacheOptions = {}): CachedResolve {
  const ttlMs = opts.ttlMs ?? DEFAULT_DNS_CACHE_MS;
  const maxNames = opts.maxNames ?? DEFAULT_DNS_CACHE_NAMES;
  const now = opts.now ?? Date.now;
  if (!(ttlMs >= 0) || !Number.isFinite(ttlMs)) throw new RangeError('ttlMs must be a finite number >= 0');
  if (!Number.isInteger(maxNames) || maxNames < 1) throw new RangeError('maxNames must be an integer >= 1');
  // Map iteration order is insertion order: the first key is the oldest entry.
  const entries = new Map<string, Entry>();

  const lookup = (host: string): Promise<ResolvedAddress[]> => {
    if (ttlMs === 0) return resolve(host);
    const key = host.toLowerCase();
    const hit = entries.get(key);
    if (hit && now() < hit.expires) return hit.answer as Promise<ResolvedAddress[]>;
    if (hit) entries.delete(key);
    // In the map before the look-up starts, so a resolve that fails synchronously is forgotten too.
    const entry = { expires: Infinity } as Entry;
    entries.set(key, entry);
    while (entries.size > maxNames) entries.delete(entries.keys().next().value!);
    const answer = (async () => {
      try {
        // Frozen: every caller gets the same array.
        const a = Object.freeze(
          (await resolve(host)).map((x) => Object.freeze({ address: x.address, family: x.family })),
        );
        if (entries.get(key) === entry) entry.expires = now() + ttlMs;
        return a;
      } catch (e) {
        if (entries.get(key) === entry) entries.delete(key);
        throw e;
      }
    })();
    entry.answer = answer;
    return answer as Promise<ResolvedAddress[]>;
  };
  return Object.defineProperties(lookup, {
    size: { get: () => entries.size },
    clear: { value: () => entries.clear() },
  }) as CachedResolve;
}
