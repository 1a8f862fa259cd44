// A device's Wi-Fi uplink (createLab({wifi: [n]})): the router namespace `wifiN` between the
// device's wlan0 and inet, like a home router.
//
//   devN wlan0 (100.65.N.2) --lan0-- wifiN [masquerade 100.65.N.0/24 to 198.19.N.2] --wan0-- inet (198.19.N.1)
import { CGN_LAN, CGN_WAN, NAT_TABLE, wifiPlan } from './plan.js';
import { nftScript } from './run.js';

/**
 * nft ruleset of Wi-Fi router n: masquerade its own LAN out of wan0, no unsolicited inbound, and
 * nothing forwarded from a source outside its LAN (BCP 38, as home routers and their ISPs do). So a
 * packet a device sends out of wlan0 with its cellular address (a socket bound only to the
 * cellular address, routed by the Wi-Fi default route) is dropped here, as on a real Wi-Fi network.
 */
export function wifiRuleset(n: number): string {
  const lan = wifiPlan(n).lanCidr;
  return `table ip ${NAT_TABLE} {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "${CGN_WAN}" ip saddr ${lan} masquerade
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "${CGN_WAN}" oifname "${CGN_LAN}" ct state new drop
    iifname "${CGN_LAN}" ip saddr != ${lan} counter drop
  }
}
`;
}

export async function setupWifiNat(wifiNs: string, n: number): Promise<void> {
  await nftScript(wifiNs, wifiRuleset(n));
}
