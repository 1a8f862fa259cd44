// OpenVPN customers' TCP carried to their device (docs/design.md §2.4): the relay ends none of it.
//
//   customer 10.9.0.6:40000 -> 93.184.216.34:443 --tun1--> table pocketproxy_carry: DNAT (by the customer's
//     address) to its connection's port on the device, 192.168.255.7:PORT -> pp0: the tunnel process stamps
//     the SYN with 93.184.216.34:443, read from conntrack (@pocketproxy/tun syn_stamp.h, tun_queue.h
//     StampSyns) -> the device's listener for PORT reads the stamp (TCP_SAVE_SYN), admits the customer
//     without credentials (from the OpenVPN subnet only: the relay checked them at sign-in) and connects
//     to 93.184.216.34:443 itself. Its answers come back as a public port's do (conntrack un-DNATs them).
//
// One TCP connection from the customer to the device: no second termination and no proxy handshake on the
// relay, which only forwards (docs/benchmarks.md, "what ending the customer's TCP on the device would give":
// new connections/s 1.3-1.4x the redsocks chain, against level with the transparent proxy).
//
// Only for customers whose device said it reads stamps (DeviceTable.readsStamps, the agent's `features`);
// the others, and DNS, go through the transparent proxy as before. This table holds only the map, its
// DNAT and the customers' MSS kept for the tunnel (its forward chain); its prerouting chain runs before the
// main table's (a flow is NATed once: whichever chain maps it first), so a customer not in the map falls
// through to the REDIRECT. The main table's forward chain passes
// the carried flows (netfw OpenVpnState.carried). Updates are one `nft` command each (at sign-in and sign-out).
import type { Logger } from 'pino';
import type { CommandRunner } from '@pocketproxy/netfw';
import type { ConnectionRoute } from '../tunnel/device-dial.js';
import { ipv4ToNumber } from '../tunnel/ipv4.js';

export const CARRY_TABLE = 'pocketproxy_carry';

export interface Carrier {
  /** Maps `customer` (its address in the OpenVPN subnet) to its connection's port on the device. */
  add(customer: string, route: Pick<ConnectionRoute, 'deviceVpnIp' | 'proxyPort'>): Promise<void>;
  /** Takes the mapping away (flows already carried go on until they end, as a public port's). */
  remove(customer: string): Promise<void>;
  /** Every mapping away (openvpn restarted: its customers sign in again). */
  clear(): Promise<void>;
  /** Deletes the table. */
  stop(): Promise<void>;
  readonly size: number;
}

/** The table, empty: created anew (an earlier run's mappings are gone with it). */
export function renderCarryTable(iface: string): string {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(iface)) throw new TypeError(`bad interface name: ${iface}`);
  return [
    `table ip ${CARRY_TABLE} {}`,
    `delete table ip ${CARRY_TABLE}`,
    `table ip ${CARRY_TABLE} {`,
    '  map customers { type ipv4_addr : ipv4_addr . inet_service; }',
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat - 1; policy accept;',
    // Not the relay's own addresses (its DNS forwarder) and not DNS anywhere (the main table sends it to
    // the forwarder); a customer missing from the map is not NATed here.
    `    iifname "${iface}" meta l4proto tcp tcp dport != 53 fib daddr type != local dnat ip to ip saddr map @customers`,
    '  }',
    // What a carried customer's SYN says its MSS is, kept in the flow's conntrack mark before the main table's
    // forward chain clamps it to the device tunnel's: the tunnel reads it with the SYN's stamp and has the
    // device's segments cut at it on their way back to the customer (@pocketproxy/tun carry_mss.h). A SYN
    // without the option sets no mark (the expression finds nothing and the rule does not apply).
    '  chain forward {',
    '    type filter hook forward priority filter - 1; policy accept;',
    `    iifname "${iface}" ct status dnat tcp flags syn / syn,ack,rst ct mark set tcp option maxseg size`,
    '  }',
    '}',
    '',
  ].join('\n');
}

const element = (customer: string, route?: Pick<ConnectionRoute, 'deviceVpnIp' | 'proxyPort'>): string => {
  if (ipv4ToNumber(customer) === undefined) throw new TypeError(`bad customer address: ${customer}`);
  if (!route) return customer;
  if (ipv4ToNumber(route.deviceVpnIp) === undefined || !Number.isInteger(route.proxyPort) || route.proxyPort < 1)
    throw new TypeError(`bad route for ${customer}`);
  return `${customer} : ${route.deviceVpnIp} . ${route.proxyPort}`;
};

/** Creates the table (empty) and returns its updater. */
export async function startCarrier(o: { run: CommandRunner; iface: string; logger: Logger }): Promise<Carrier> {
  const log = o.logger.child({ subsys: 'openvpn-carry' });
  const nft = (script: string) => o.run.run('nft', ['-f', '-'], script);
  await nft(renderCarryTable(o.iface));
  const mapped = new Set<string>();
  return {
    get size() {
      return mapped.size;
    },
    async add(customer, route) {
      await nft(`add element ip ${CARRY_TABLE} customers { ${element(customer, route)} }\n`);
      mapped.add(customer);
    },
    async remove(customer) {
      if (!mapped.delete(customer)) return;
      await nft(`delete element ip ${CARRY_TABLE} customers { ${element(customer)} }\n`).catch((e: unknown) =>
        log.warn({ err: String(e), customer }, 'carried customer not unmapped'),
      );
    },
    async clear() {
      mapped.clear();
      await nft(`flush map ip ${CARRY_TABLE} customers\n`);
    },
    async stop() {
      mapped.clear();
      await nft(`table ip ${CARRY_TABLE} {}\ndelete table ip ${CARRY_TABLE}\n`);
    },
  };
}
