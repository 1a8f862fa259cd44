// Each device of the farm leaves by its own interface: one source rule per device.
//
//   ip route replace default via <gw> dev usb0 table 5600+N      (or `default dev wwan0` on a point-to-point link)
//   ip rule add from <usb0's address>/32 lookup 5600+N pref 5600+N
//
// The host's own traffic (the API, adb, ssh) keeps following the main table; everything bound to a
// phone's address — that device's tunnel socket, its customers' connections, its public-address
// check — leaves by that phone. SO_BINDTODEVICE on the egress sockets would restrict the route
// lookup to the interface, but the main table has one default route at most per metric and the
// tunnel's native UDP socket takes an address, not a device: the source rule serves both.
//
// The gateway is the one the host's network manager learned for the interface (DHCP from the
// phone's tethering, ModemManager's bearer): a default route through it in the main table, at any
// metric. Without one the device waits (reported: "no default route through usb0").
// The rule's preference is its handle, as for the reply table (tunnel/routing.ts).
import type { Exec } from '../ops/rotation.js';
import { IFNAME } from './interfaces.js';

/** Slot N's egress table and rule preference; slot N's reply table is REPLY_TABLE_BASE + N. */
export const EGRESS_TABLE_BASE = 5600;
export const REPLY_TABLE_BASE = 5300;
/** Slots 0..MAX_SLOTS-1: TUN ppf<N>, reply table 5300+N, egress table 5600+N. */
export const MAX_SLOTS = 250;

export interface EgressRoute {
  ifname: string;
  address: string;
  /** Gateway, or null for a point-to-point link (routes by device only). */
  gateway: string | null;
  table: number;
}

/** The main table's default gateway through `ifname`: a string, null (point-to-point: no gateway needed), or undefined (none). */
export async function defaultGateway(exec: Exec, ifname: string): Promise<string | null | undefined> {
  if (!IFNAME.test(ifname)) return undefined;
  const r = await exec('ip', ['-j', '-4', 'route', 'show', 'default', 'dev', ifname], 5_000);
  const routes = parseJson(r.stdout) as { gateway?: string }[];
  const gw = routes.find((x) => typeof x?.gateway === 'string')?.gateway;
  if (gw) return gw;
  const l = await exec('ip', ['-j', 'link', 'show', 'dev', ifname], 5_000);
  const flags = (parseJson(l.stdout) as { flags?: string[] }[])[0]?.flags ?? [];
  if (flags.includes('POINTOPOINT') || flags.includes('NOARP')) return null;
  return undefined;
}

function parseJson(s: string): unknown[] {
  try {
    const v = JSON.parse(s || '[]') as unknown;
    return Array.isArray(v) ? v : [];
  } catch {
    return [];
  }
}

/** The `ip` commands that install an egress route (after removeEgressRoute). */
export function egressRouteCommands(r: EgressRoute): string[][] {
  return [
    [
      'route',
      'replace',
      'default',
      ...(r.gateway ? ['via', r.gateway] : []),
      'dev',
      r.ifname,
      'table',
      String(r.table),
    ],
    ['rule', 'add', 'from', `${r.address}/32`, 'lookup', String(r.table), 'pref', String(r.table)],
  ];
}

export async function removeEgressRoute(exec: Exec, table: number): Promise<void> {
  for (let i = 0; i < 16; i++) {
    try {
      await exec('ip', ['rule', 'del', 'pref', String(table)], 5_000);
    } catch {
      break; // none left
    }
  }
  await exec('ip', ['route', 'flush', 'table', String(table)], 5_000).catch(() => {});
}

export async function installEgressRoute(exec: Exec, r: EgressRoute): Promise<void> {
  if (!IFNAME.test(r.ifname)) throw new RangeError(`bad interface name ${JSON.stringify(r.ifname)}`);
  await removeEgressRoute(exec, r.table);
  for (const args of egressRouteCommands(r)) await exec('ip', args, 5_000);
}

/**
 * Rules a farm that died left behind (reply rules 5300+N, egress rules 5600+N, N < MAX_SLOTS), removed
 * at start: a stale `from <old address>` rule could send a new device's traffic out of the wrong
 * interface. (The TUN devices went away with the process.) Returns how many were deleted.
 */
export async function removeStaleRules(exec: Exec): Promise<number> {
  const r = await exec('ip', ['-j', '-4', 'rule', 'show'], 5_000);
  const ours = (parseJson(r.stdout) as { priority?: number }[])
    .map((x) => x?.priority)
    .filter(
      (p): p is number =>
        typeof p === 'number' &&
        ((p >= REPLY_TABLE_BASE && p < REPLY_TABLE_BASE + MAX_SLOTS) ||
          (p >= EGRESS_TABLE_BASE && p < EGRESS_TABLE_BASE + MAX_SLOTS)),
    );
  let n = 0;
  for (const p of new Set(ours)) {
    await removeEgressRoute(exec, p);
    n++;
  }
  return n;
}
