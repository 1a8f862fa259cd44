// The element-level view of a state: every named set, map and counter object of our table as a
// key -> value map. Full render prints these inside the table; renderUpdate diffs two of them,
// so both paths agree by construction on what an element looks like.
import { frontServes, frontTakes, type ValidState } from './state.js';

/** Key -> value (undefined for plain sets). Keys/values are already in nft syntax. */
export type ElementMap = ReadonlyMap<string, string | undefined>;

export interface Collections {
  /** Named counter objects `port_<n>_in` and `port_<n>_out`, two per port in the state (enabled or not). */
  readonly counters: ElementMap;
  /** port -> vpn_ip . target_port, enabled TCP ports only. */
  readonly tcp_fwd: ElementMap;
  readonly udp_fwd: ElementMap;
  /** proto . port -> `port_<n>_in`: customer -> target bytes (conntrack ORIGINAL direction). */
  readonly port_counters_in: ElementMap;
  /** proto . port -> `port_<n>_out`: bytes sent back to the customer (conntrack REPLY direction). */
  readonly port_counters_out: ElementMap;
  /** proto . port of every port in the state: DNAT'ed flows of other ports (removed ones) are cut. */
  readonly forwarded_ports: ElementMap;
  /** proto . port of disabled ports. */
  readonly disabled_ports: ElementMap;
  /** proto . port of ports that have an allow-list. */
  readonly restricted_ports: ElementMap;
  /** proto . port . source-CIDR for each allowed source of a restricted port. */
  readonly allowed_sources: ElementMap;
  /** With a SOCKS5 front: the ports whose new TCP goes to it instead of the DNAT (state.ts frontTakes). */
  readonly socks5_front: ElementMap;
  /**
   * With a SOCKS5 front: vpn_ip . target_port of the ports it may hold flows of (state.ts frontServes):
   * where the device's answers to its sockets come from.
   */
  readonly socks5_front_devices: ElementMap;
}

/** Order matters: it is the order the full render declares them in. */
export const SET_NAMES = [
  'tcp_fwd',
  'udp_fwd',
  'port_counters_in',
  'port_counters_out',
  'forwarded_ports',
  'disabled_ports',
  'restricted_ports',
  'allowed_sources',
  'socks5_front',
  'socks5_front_devices',
] as const;
export type SetName = (typeof SET_NAMES)[number];

/** Which way a byte travels, seen from the customer: `in` = customer -> target (conntrack
 * ORIGINAL direction of the DNAT'ed connection), `out` = back to the customer (REPLY). */
export type Direction = 'in' | 'out';

export function counterName(port: number, dir: Direction): string {
  return `port_${port}_${dir}`;
}

function protosOf(proto: 'tcp' | 'udp' | 'both'): ReadonlyArray<'tcp' | 'udp'> {
  return proto === 'both' ? ['tcp', 'udp'] : [proto];
}

// Remembered per (frozen) state: the firewall diffs against its current state on every apply.
const memo = new WeakMap<ValidState, Collections>();

export function collectionsOf(state: ValidState): Collections {
  let c = memo.get(state);
  if (!c) {
    c = build(state);
    memo.set(state, c);
  }
  return c;
}

function build(state: ValidState): Collections {
  const counters = new Map<string, undefined>();
  const tcp_fwd = new Map<string, string>();
  const udp_fwd = new Map<string, string>();
  const port_counters_in = new Map<string, string>();
  const port_counters_out = new Map<string, string>();
  const forwarded_ports = new Map<string, undefined>();
  const disabled_ports = new Map<string, undefined>();
  const restricted_ports = new Map<string, undefined>();
  const allowed_sources = new Map<string, undefined>();
  const socks5_front = new Map<string, undefined>();
  const socks5_front_devices = new Map<string, undefined>();
  for (const p of state.ports) {
    if (frontTakes(state.socks5Front, p)) socks5_front.set(String(p.port), undefined);
    if (frontServes(state.socks5Front, p)) socks5_front_devices.set(`${p.vpnIp} . ${p.targetPort}`, undefined);
    const nameIn = counterName(p.port, 'in');
    const nameOut = counterName(p.port, 'out');
    counters.set(nameIn, undefined);
    counters.set(nameOut, undefined);
    for (const proto of protosOf(p.proto)) {
      const key = `${proto} . ${p.port}`;
      port_counters_in.set(key, `"${nameIn}"`);
      port_counters_out.set(key, `"${nameOut}"`);
      forwarded_ports.set(key, undefined);
      if (!p.enabled) {
        disabled_ports.set(key, undefined);
        continue;
      }
      (proto === 'tcp' ? tcp_fwd : udp_fwd).set(String(p.port), `${p.vpnIp} . ${p.targetPort}`);
      if (p.allowFrom) {
        restricted_ports.set(key, undefined);
        for (const src of p.allowFrom) allowed_sources.set(`${key} . ${src}`, undefined);
      }
    }
  }
  return {
    counters,
    tcp_fwd,
    udp_fwd,
    port_counters_in,
    port_counters_out,
    forwarded_ports,
    disabled_ports,
    restricted_ports,
    allowed_sources,
    socks5_front,
    socks5_front_devices,
  };
}

export function formatElement(key: string, value: string | undefined): string {
  return value === undefined ? key : `${key} : ${value}`;
}
