// The carrier NAT of one device, and its IP rotation. Stateless on purpose: the rotate CLI runs
// from inside a device namespace (as the agent's --rotate-command) with no access to the lab
// object, so the current address is read from the carrier namespace itself.
//
//   devN (100.64.N.2) --lan0-- cgnN [masquerade to 198.18.N.x] --wan0-- inet (198.18.N.1)
import { setTimeout as sleep } from 'node:timers/promises';
import { labError } from './errors.js';
import { CGN_LAN, CGN_WAN, NAT_TABLE, devicePlan, isCarrierPoolAddress, nextCarrierAddress, nsName } from './plan.js';
import { inNs, ipBatch, nftScript, run, runChecked } from './run.js';

export interface Rotation {
  n: number;
  oldIp: string;
  newIp: string;
}

/** nft ruleset of a carrier: masquerade out of wan0, and no unsolicited inbound (like a real CGNAT). */
export function carrierRuleset(): string {
  return `table ip ${NAT_TABLE} {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "${CGN_WAN}" masquerade
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "${CGN_WAN}" oifname "${CGN_LAN}" ct state new drop
  }
}
`;
}

export async function setupCarrierNat(cgnNs: string): Promise<void> {
  await nftScript(cgnNs, carrierRuleset());
}

/** The public address currently on carrier n's uplink, read from the namespace. */
export async function currentCarrierAddress(prefix: string, n: number): Promise<string> {
  const ns = nsName(prefix, `cgn${n}`);
  const r = await runChecked('ip', ['-n', ns, '-j', '-4', 'addr', 'show', 'dev', CGN_WAN], { ns });
  const links = JSON.parse(r.stdout || '[]') as { addr_info?: { local?: string }[] }[];
  const addrs = links.flatMap((l) => l.addr_info ?? []).map((a) => a.local ?? '');
  const ip = addrs.find((a) => isCarrierPoolAddress(n, a));
  if (!ip) throw labError('PP_ERR_LAB_NO_CARRIER_ADDRESS', { ns, iface: CGN_WAN });
  return ip;
}

/**
 * Move carrier n to the next address of its pool: add the new address, drop the old one (the new
 * one is promoted to primary, so masquerade uses it), restore the default route, and flush
 * conntrack entries of the old address so existing flows die as on a real carrier. inet needs no
 * route change (the whole pool is on-link there); its stale neighbour entry is dropped.
 * `to` picks a specific pool address instead of the next one; `outageMs` keeps the uplink down
 * that long first, like a phone in airplane mode (nothing gets through in either direction).
 */
export async function rotateCarrier(
  prefix: string,
  n: number,
  to?: string,
  opts: { outageMs?: number } = {},
): Promise<Rotation> {
  const plan = devicePlan(n);
  const cgn = nsName(prefix, `cgn${n}`);
  const inet = nsName(prefix, 'inet');
  const oldIp = await currentCarrierAddress(prefix, n);
  const newIp = to ?? nextCarrierAddress(n, oldIp);
  if (!isCarrierPoolAddress(n, newIp) || newIp === oldIp) {
    throw labError('PP_ERR_LAB_BAD_ARGS', {
      reason: `${newIp} is not another address of carrier ${n}'s pool 198.18.${n}.2-254`,
    });
  }
  const outageMs = Math.min(Math.max(opts.outageMs ?? 0, 0), 120_000);
  if (outageMs > 0) {
    await ipBatch(cgn, [`link set ${CGN_WAN} down`]);
    await sleep(outageMs);
  }
  await ipBatch(cgn, [
    `addr add ${newIp}/${plan.carrierPrefixLen} dev ${CGN_WAN}`,
    `addr del ${oldIp}/${plan.carrierPrefixLen} dev ${CGN_WAN}`,
    `link set ${CGN_WAN} up`,
    `route replace default via ${plan.carrierGateway} dev ${CGN_WAN}`,
  ]);
  // Masquerade's own address-removal hook also drops these; flushing explicitly makes it certain
  // and immediate. Exit code 1 just means "nothing matched".
  const [c, a] = inNs(cgn, 'conntrack', ['-D', '--reply-dst', oldIp]);
  await run(c, a, { timeoutMs: 10_000 });
  await run('ip', ['-n', inet, 'neigh', 'del', oldIp, 'dev', plan.inetIface], { timeoutMs: 10_000 });
  return { n, oldIp, newIp };
}
