// Customers' answers go back into the tunnel. The relay forwards each customer to the device with
// the customer's own address (no source NAT, so the device knows who is asking: docs/security.md),
// so an answer to 192.0.2.1 would follow the device's main routing table out of the cellular
// interface, with the tunnel address as its source, and be lost. One policy rule sends everything
// whose source is the tunnel address to a table whose only route is the TUN:
//
//   ip route replace default dev ppd0 table 5210
//   ip rule add from <vpn_ip>/32 lookup 5210 pref 5210
//
// Egress sockets are bound to the cellular address (proxy/egress.ts), never to vpn_ip, so customer
// traffic to targets is not affected. The rule's preference doubles as its handle: leftovers of a
// run that died are deleted by it before the new rule goes in, and at stop.
import type { CommandRunner } from '@pocketproxy/tun';

/** Table number and rule preference (`--reply-table`). */
export const DEFAULT_REPLY_TABLE = 5210;

export interface ReplyRoute {
  readonly tun: string;
  readonly address: string;
  readonly table: number;
}

/** The `ip` commands that install the route and rule, in order (after removeReplyRoute). */
export function replyRouteCommands(r: ReplyRoute): string[][] {
  return [
    ['route', 'replace', 'default', 'dev', r.tun, 'table', String(r.table)],
    ['rule', 'add', 'from', `${r.address}/32`, 'lookup', String(r.table), 'pref', String(r.table)],
  ];
}

/** Deletes every rule at our preference (there is at most one unless an earlier run died). */
export async function removeReplyRoute(table: number, runner: CommandRunner): Promise<number> {
  let removed = 0;
  for (; removed < 16; removed++) {
    try {
      await runner.run('ip', ['rule', 'del', 'pref', String(table)]);
    } catch {
      break; // "No such file or directory": none left
    }
  }
  return removed;
}

export async function installReplyRoute(r: ReplyRoute, runner: CommandRunner): Promise<void> {
  if (
    !Number.isInteger(r.table) ||
    r.table < 1 ||
    r.table > 0x7fffffff ||
    r.table === 253 ||
    r.table === 254 ||
    r.table === 255
  ) {
    throw new RangeError(
      `reply table must be an integer 1-2147483647 other than 253-255 (default, main, local), got ${r.table}`,
    );
  }
  await removeReplyRoute(r.table, runner);
  for (const args of replyRouteCommands(r)) await runner.run('ip', args);
}
