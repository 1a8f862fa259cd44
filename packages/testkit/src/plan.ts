// The lab's address plan and naming, as pure functions: the lab builder, the stateless rotate CLI
// and the tests all derive names and addresses from here, so nothing needs shared in-memory state.
//
// Every range is a documentation / benchmarking range (RFC 5737, RFC 2544) or carrier-grade NAT
// space (RFC 6598). They exist only inside the lab's namespaces, which are linked only to each
// other, so the same fixed plan can be used by several labs at once; only namespace names carry
// the per-lab prefix.
import { labError } from './errors.js';

export const MAX_DEVICES = 250;

/** Lab prefixes are `pp` + 4 hex digits, so leftovers are easy to recognise and never collide. */
export const PREFIX_RE = /^pp[0-9a-f]{4}$/;

export const INET = {
  /** HTTP echo (80), HTTPS SNI echo (443), echo TCP+UDP (7), UDP whoami (8). Lives on inet's `lo`. */
  servicesIp: '203.0.113.10',
  /** DNS for `*.test` (53/udp). Also on inet's `lo`. */
  dnsIp: '203.0.113.53',
  httpPort: 80,
  httpsPort: 443,
  echoPort: 7,
  whoamiPort: 8,
  dnsPort: 53,
} as const;

export const RELAY = {
  ip: '198.51.100.1',
  gateway: '198.51.100.254',
  prefixLen: 24,
  iface: 'eth0',
  inetIface: 'relay0',
} as const;
export const CUST = {
  ip: '192.0.2.1',
  gateway: '192.0.2.254',
  prefixLen: 24,
  iface: 'eth0',
  inetIface: 'cust0',
} as const;

/** Interface names inside a carrier namespace (created directly there, so no prefix is needed). */
export const CGN_WAN = 'wan0';
export const CGN_LAN = 'lan0';
/** The device's uplink, named like a Linux cellular modem interface. */
export const DEV_IFACE = 'wwan0';
/** A device's second uplink (createLab({wifi: [n]})), named like a Linux Wi-Fi interface. */
export const WIFI_IFACE = 'wlan0';
/**
 * Default-route metrics of a device with two uplinks, as NetworkManager sets them: Wi-Fi (100)
 * holds the default route, cellular (600) stays in the main table as the less preferred one.
 */
export const WIFI_METRIC = 100;
export const CELLULAR_METRIC = 600;

/** Our own nft table names inside lab namespaces (never touching tables the product owns). */
export const NAT_TABLE = 'pplab_nat';
export const BLOCK_TABLE = 'pplab_block';

export type Role = 'inet' | 'relay' | 'cust' | `dev${number}` | `cgn${number}` | `wifi${number}`;

export function nsName(prefix: string, role: Role | string): string {
  return `${prefix}-${role}`;
}

export function assertPrefix(prefix: string): void {
  if (!PREFIX_RE.test(prefix)) throw labError('PP_ERR_LAB_BAD_PREFIX', { prefix });
}

export function assertDevice(n: number, count = MAX_DEVICES): void {
  if (!Number.isInteger(n) || n < 1 || n > count) throw labError('PP_ERR_LAB_BAD_DEVICE', { n: String(n), max: count });
}

/**
 * Device n sits in 100.64.n.0/24 behind carrier n, whose uplink is 198.18.n.0/24: inet holds .1
 * (the carrier's gateway) and the carrier's public address is one of .2 ... .254 (its pool).
 * Rotation moves to the next address of the pool, so the relay sees a new source address.
 */
export function devicePlan(n: number) {
  assertDevice(n);
  return {
    privateIp: `100.64.${n}.2`,
    cgnLanIp: `100.64.${n}.1`,
    lanPrefixLen: 24,
    carrierGateway: `198.18.${n}.1`,
    carrierPrefixLen: 24,
    firstCarrierIp: `198.18.${n}.2`,
    inetIface: `cgn${n}`,
  };
}

/**
 * Device n's second uplink (only with createLab({wifi: [n]})): its `wlan0` (100.65.n.2, RFC 6598
 * space like the carrier LANs) behind the Wi-Fi router namespace `wifiN`, which masquerades its LAN
 * to 198.19.n.2 (RFC 2544 benchmarking space, the upper half of 198.18.0.0/15); inet holds .1.
 * The address does not rotate.
 */
export function wifiPlan(n: number) {
  assertDevice(n);
  return {
    devIp: `100.65.${n}.2`,
    lanIp: `100.65.${n}.1`,
    lanPrefixLen: 24,
    lanCidr: `100.65.${n}.0/24`,
    publicIp: `198.19.${n}.2`,
    publicGateway: `198.19.${n}.1`,
    publicPrefixLen: 24,
    inetIface: `wifi${n}`,
  };
}

export function isCarrierPoolAddress(n: number, ip: string): boolean {
  const m = /^198\.18\.(\d+)\.(\d+)$/.exec(ip);
  if (!m) return false;
  const host = Number(m[2]);
  return Number(m[1]) === n && host >= 2 && host <= 254;
}

/** The next public address of carrier n's pool, wrapping from .254 back to .2. */
export function nextCarrierAddress(n: number, current: string): string {
  if (!isCarrierPoolAddress(n, current)) return devicePlan(n).firstCarrierIp;
  const host = Number(current.split('.')[3]);
  return `198.18.${n}.${host >= 254 ? 2 : host + 1}`;
}

/** Names the lab DNS answers (A records); everything else is NXDOMAIN. */
export function defaultDnsRecords(): Record<string, string> {
  return {
    'echo.test': INET.servicesIp,
    'www.test': INET.servicesIp,
    'a.test': INET.servicesIp,
    'b.test': INET.servicesIp,
    'sni.test': INET.servicesIp,
    'dns.test': INET.dnsIp,
    'relay.test': RELAY.ip,
    'cust.test': CUST.ip,
  };
}
