// HandshakeGuard: caps the sockets that have not authenticated yet, per remote address and in
// total. One guard is shared by every listener of a process, so a slowloris against one port
// cannot exhaust the file descriptors (or memory) the others need.
//
// A socket enters at accept and leaves when it first authenticates successfully or closes,
// whichever comes first. Over either cap it is refused: the server destroys it at once, before
// reading a byte. Exempt addresses (the app's own monitoring, a trusted relay) count only toward
// the total, which still protects the process.
import { normalizeIp } from '../server-base.js';

export interface HandshakeGuardOptions {
  /** Unauthenticated sockets one remote address may hold (default 64). */
  readonly maxPerAddress?: number;
  /** Unauthenticated sockets in all (default 2048). */
  readonly maxTotal?: number;
  /** Addresses that skip the per-address cap. */
  readonly exempt?: (ip: string) => boolean;
}

export interface HandshakeGuardStats {
  /** Sockets inside the guard now. */
  readonly active: number;
  /** Sockets refused because their address held maxPerAddress already. */
  readonly refusedPerAddress: number;
  /** Sockets refused because maxTotal was reached. */
  readonly refusedTotal: number;
}

export interface HandshakeGuard {
  /** Admits a socket from `ip`; returns its (idempotent) leave function, or null = refuse it. */
  admit(ip: string): (() => void) | null;
  readonly stats: HandshakeGuardStats;
}

export function createHandshakeGuard(o: HandshakeGuardOptions = {}): HandshakeGuard {
  const maxPerAddress = o.maxPerAddress ?? 64;
  const maxTotal = o.maxTotal ?? 2048;
  const exempt = o.exempt;
  // Only addresses with a socket inside are kept, so the map is bounded by maxTotal.
  const perAddress = new Map<string, number>();
  let active = 0;
  let refusedPerAddress = 0;
  let refusedTotal = 0;

  return {
    admit(raw: string): (() => void) | null {
      const ip = normalizeIp(raw);
      const counted = !(exempt?.(ip) ?? false);
      const mine = counted ? (perAddress.get(ip) ?? 0) : 0;
      if (counted && mine >= maxPerAddress) {
        refusedPerAddress++;
        return null;
      }
      if (active >= maxTotal) {
        refusedTotal++;
        return null;
      }
      active++;
      if (counted) perAddress.set(ip, mine + 1);
      let inside = true;
      return () => {
        if (!inside) return;
        inside = false;
        active--;
        if (!counted) return;
        const n = perAddress.get(ip)! - 1;
        if (n === 0) perAddress.delete(ip);
        else perAddress.set(ip, n);
      };
    },
    get stats(): HandshakeGuardStats {
      return { active, refusedPerAddress, refusedTotal };
    },
  };
}
