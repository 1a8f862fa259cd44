// Builds the lab's namespaces and wires them. Every veth pair is created directly between two lab
// namespaces (`ip link add A netns X type veth peer name B netns Y`), so no lab interface ever
// exists in the root namespace and no lab address can be routed off the machine.
//
//   cust (192.0.2.1) ──┐                       ┌── cgn1 ── dev1 (100.64.1.2)
//                      ├── inet (203.0.113.x) ─┼── cgn2 ── dev2 (100.64.2.2)
//   relay (198.51.100.1)┘     services on lo    ├── wifi2 ──┘ (wlan0 100.65.2.2; createLab({wifi: [2]}))
//                                              └── ...
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setupCarrierNat } from './carrier.js';
import { etcNetnsDir } from './cleanup.js';
import {
  CELLULAR_METRIC,
  CGN_LAN,
  CGN_WAN,
  CUST,
  DEV_IFACE,
  INET,
  RELAY,
  WIFI_IFACE,
  WIFI_METRIC,
  devicePlan,
  nsName,
  wifiPlan,
} from './plan.js';
import { inNs, ipBatch, runChecked } from './run.js';
import { setupWifiNat } from './wifi.js';

export interface TopologyNames {
  inet: string;
  relay: string;
  cust: string;
  dev: string[];
  cgn: string[];
  /** Wi-Fi router namespaces of the devices with a second uplink (device number n, namespace). */
  wifi: { n: number; ns: string }[];
}

export function topologyNames(prefix: string, devices: number, wifi: readonly number[] = []): TopologyNames {
  const range = Array.from({ length: devices }, (_, i) => i + 1);
  return {
    inet: nsName(prefix, 'inet'),
    relay: nsName(prefix, 'relay'),
    cust: nsName(prefix, 'cust'),
    dev: range.map((n) => nsName(prefix, `dev${n}`)),
    cgn: range.map((n) => nsName(prefix, `cgn${n}`)),
    wifi: [...wifi].sort((a, b) => a - b).map((n) => ({ n, ns: nsName(prefix, `wifi${n}`) })),
  };
}

export function allNamespaces(t: TopologyNames): string[] {
  return [t.inet, t.relay, t.cust, ...t.cgn, ...t.dev, ...t.wifi.map((w) => w.ns)];
}

async function sysctl(ns: string, settings: Record<string, string>) {
  const [c, a] = inNs(ns, 'sysctl', ['-q', '-w', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)]);
  await runChecked(c, a, { ns });
}

/**
 * Default routes of each namespace (`ip` batch lines, each ending in `dev <iface>`); re-applied by
 * setLinkUp, since taking a link down drops them. A device with Wi-Fi has two: wlan0 metric 100
 * (the default) and wwan0 metric 600, as NetworkManager installs them.
 */
export function defaultRoutes(t: TopologyNames): Map<string, string[]> {
  const m = new Map<string, string[]>();
  m.set(t.relay, [`route replace default via ${RELAY.gateway} dev ${RELAY.iface}`]);
  m.set(t.cust, [`route replace default via ${CUST.gateway} dev ${CUST.iface}`]);
  const wifi = new Set(t.wifi.map((w) => w.n));
  t.dev.forEach((ns, i) => {
    const n = i + 1;
    m.set(
      ns,
      wifi.has(n)
        ? [
            `route replace default via ${wifiPlan(n).lanIp} dev ${WIFI_IFACE} metric ${WIFI_METRIC}`,
            `route replace default via ${devicePlan(n).cgnLanIp} dev ${DEV_IFACE} metric ${CELLULAR_METRIC}`,
          ]
        : [`route replace default via ${devicePlan(n).cgnLanIp} dev ${DEV_IFACE}`],
    );
  });
  for (const [i, ns] of t.cgn.entries()) {
    m.set(ns, [`route replace default via ${devicePlan(i + 1).carrierGateway} dev ${CGN_WAN}`]);
  }
  for (const { n, ns } of t.wifi) m.set(ns, [`route replace default via ${wifiPlan(n).publicGateway} dev ${CGN_WAN}`]);
  return m;
}

export async function buildTopology(t: TopologyNames): Promise<void> {
  const all = allNamespaces(t);
  for (const ns of all) await runChecked('ip', ['netns', 'add', ns]);

  const links = [
    `link add ${RELAY.inetIface} netns ${t.inet} type veth peer name ${RELAY.iface} netns ${t.relay}`,
    `link add ${CUST.inetIface} netns ${t.inet} type veth peer name ${CUST.iface} netns ${t.cust}`,
  ];
  t.dev.forEach((devNs, i) => {
    const n = i + 1;
    links.push(`link add ${devicePlan(n).inetIface} netns ${t.inet} type veth peer name ${CGN_WAN} netns ${t.cgn[i]}`);
    links.push(`link add ${CGN_LAN} netns ${t.cgn[i]} type veth peer name ${DEV_IFACE} netns ${devNs}`);
  });
  for (const { n, ns } of t.wifi) {
    links.push(`link add ${wifiPlan(n).inetIface} netns ${t.inet} type veth peer name ${CGN_WAN} netns ${ns}`);
    links.push(`link add ${CGN_LAN} netns ${ns} type veth peer name ${WIFI_IFACE} netns ${t.dev[n - 1]}`);
  }
  await ipBatch(null, links);

  const routes = defaultRoutes(t);
  const inet = [
    'link set lo up',
    `addr add ${INET.servicesIp}/32 dev lo`,
    `addr add ${INET.dnsIp}/32 dev lo`,
    `addr add ${RELAY.gateway}/${RELAY.prefixLen} dev ${RELAY.inetIface}`,
    `link set ${RELAY.inetIface} up`,
    `addr add ${CUST.gateway}/${CUST.prefixLen} dev ${CUST.inetIface}`,
    `link set ${CUST.inetIface} up`,
  ];
  const jobs: Promise<void>[] = [];
  t.dev.forEach((devNs, i) => {
    const n = i + 1;
    const p = devicePlan(n);
    const cgnNs = t.cgn[i]!;
    inet.push(`addr add ${p.carrierGateway}/${p.carrierPrefixLen} dev ${p.inetIface}`, `link set ${p.inetIface} up`);
    jobs.push(
      (async () => {
        // Routers forward; promote_secondaries keeps the new address when rotation deletes the old primary.
        await sysctl(cgnNs, { 'net.ipv4.ip_forward': '1', 'net.ipv4.conf.all.promote_secondaries': '1' });
        await ipBatch(cgnNs, [
          'link set lo up',
          `addr add ${p.firstCarrierIp}/${p.carrierPrefixLen} dev ${CGN_WAN}`,
          `link set ${CGN_WAN} up`,
          `addr add ${p.cgnLanIp}/${p.lanPrefixLen} dev ${CGN_LAN}`,
          `link set ${CGN_LAN} up`,
          ...routes.get(cgnNs)!,
        ]);
        await setupCarrierNat(cgnNs);
      })(),
    );
    const w = t.wifi.some((x) => x.n === n) ? wifiPlan(n) : undefined;
    jobs.push(
      ipBatch(devNs, [
        'link set lo up',
        `addr add ${p.privateIp}/${p.lanPrefixLen} dev ${DEV_IFACE}`,
        `link set ${DEV_IFACE} up`,
        ...(w ? [`addr add ${w.devIp}/${w.lanPrefixLen} dev ${WIFI_IFACE}`, `link set ${WIFI_IFACE} up`] : []),
        ...routes.get(devNs)!,
      ]),
    );
  });
  for (const { n, ns } of t.wifi) {
    const w = wifiPlan(n);
    inet.push(`addr add ${w.publicGateway}/${w.publicPrefixLen} dev ${w.inetIface}`, `link set ${w.inetIface} up`);
    jobs.push(
      (async () => {
        await sysctl(ns, { 'net.ipv4.ip_forward': '1' });
        await ipBatch(ns, [
          'link set lo up',
          `addr add ${w.publicIp}/${w.publicPrefixLen} dev ${CGN_WAN}`,
          `link set ${CGN_WAN} up`,
          `addr add ${w.lanIp}/${w.lanPrefixLen} dev ${CGN_LAN}`,
          `link set ${CGN_LAN} up`,
          ...routes.get(ns)!,
        ]);
        await setupWifiNat(ns, n);
      })(),
    );
  }
  jobs.push(
    (async () => {
      await sysctl(t.inet, { 'net.ipv4.ip_forward': '1' });
      await ipBatch(t.inet, inet);
    })(),
  );
  jobs.push(
    ipBatch(t.relay, [
      'link set lo up',
      `addr add ${RELAY.ip}/${RELAY.prefixLen} dev ${RELAY.iface}`,
      `link set ${RELAY.iface} up`,
      ...routes.get(t.relay)!,
    ]),
  );
  jobs.push(
    ipBatch(t.cust, [
      'link set lo up',
      `addr add ${CUST.ip}/${CUST.prefixLen} dev ${CUST.iface}`,
      `link set ${CUST.iface} up`,
      ...routes.get(t.cust)!,
    ]),
  );
  await Promise.all(jobs);

  // Programs in the lab resolve through the lab DNS (curl, getaddrinfo, the agent).
  for (const ns of all) {
    mkdirSync(etcNetnsDir(ns), { recursive: true });
    writeFileSync(
      join(etcNetnsDir(ns), 'resolv.conf'),
      `# PocketProxy lab ${ns}\nnameserver ${INET.dnsIp}\noptions timeout:1 attempts:2\n`,
    );
  }
}
