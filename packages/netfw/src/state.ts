// The desired state of the relay's firewall, and its validation.
// `validateState` is the only way into render/update: it rejects a bad state with a PPError
// before any command runs, and returns a canonical copy (ports sorted, CIDRs in `nft list`
// form) so two equal states always render byte-for-byte the same text.
import { fail } from './errors.js';
import {
  cidrContains,
  cidrLast,
  cidrsOverlap,
  formatCidr,
  formatIPv4,
  parseCidr,
  parseIPv4,
  type Cidr,
} from './ipv4.js';

export type Proto = 'tcp' | 'udp' | 'both';

/** One public relay port forwarded to a device: customer -> relay:port -> vpnIp:targetPort. */
export interface PortForward {
  readonly port: number;
  readonly proto: Proto;
  readonly vpnIp: string;
  readonly targetPort: number;
  /** CIDRs or bare addresses; when present (even empty) only these sources may connect. */
  readonly allowFrom?: readonly string[];
  /** A disabled port keeps its counter but every packet to it is dropped. */
  readonly enabled: boolean;
  /**
   * An HTTP (tcp) port whose TCP the relay's front takes when its `http` is 'auto': the tunnel sets it on
   * the ports of devices whose link is far (their handshake round trip, POCKETPROXY_HTTP_FRONT=auto).
   */
  readonly viaFront?: boolean;
}

export interface OpenVpnState {
  readonly subnet: string;
  readonly interface: string;
  /** Transparent proxy port; customer TCP is REDIRECTed here (to tun1's own address). */
  readonly tproxyPort: number;
  /** When set, customer DNS (udp+tcp 53) is REDIRECTed here; when not, it is rejected. */
  readonly dnsRedirectPort?: number;
  /**
   * Customers' TCP may be DNAT'ed to their connection's port on a device (the relay's table
   * `pocketproxy_carry`, apps/server openvpn/carry.ts): the forward chain passes those flows both ways.
   */
  readonly carried?: boolean;
}

/**
 * The relay answers SOCKS5 greetings itself (docs/design.md §2.3): the TCP of every enabled SOCKS5 port
 * is REDIRECTed to the relay's SOCKS5 front on `port` instead of DNAT'ed; the front's device sockets
 * carry the customer's own address (IP_TRANSPARENT), and the device's answers to them are marked `mark`
 * (a policy rule routes that mark to the local table).
 */
export interface Socks5FrontState {
  readonly port: number;
  readonly mark: number;
  /**
   * HTTP ports through the front too (POCKETPROXY_HTTP_FRONT): true, all of them; 'auto', those marked
   * `viaFront`; default: SOCKS5 ports only.
   */
  readonly http?: boolean | 'auto';
}

/**
 * Whether the relay's front takes this port's new TCP connections (redirected to it instead of DNAT'ed):
 * enabled SOCKS5 ports, and enabled HTTP ports with `http` (with 'auto', those marked `viaFront`). The nft
 * set `socks5_front` asks this.
 */
export function frontTakes(front: Socks5FrontState | undefined, p: PortForward): boolean {
  return (
    front !== undefined &&
    p.enabled &&
    (p.proto === 'both' ||
      (p.proto === 'tcp' && (front.http === true || (front.http === 'auto' && p.viaFront === true))))
  );
}

/**
 * Whether the front may hold flows of this port: the ports it takes, and with `http` 'auto' every enabled
 * HTTP port, so that a port moving between the front and the DNAT (its device's link got nearer or farther)
 * keeps the flows already open on either path. The front's port map and the nft set `socks5_front_devices`
 * (whose device answers go to the front's sockets) ask this. Through the DNAT a device's answer matches no
 * local socket, so being in that set changes nothing for it.
 */
export function frontServes(front: Socks5FrontState | undefined, p: PortForward): boolean {
  return frontTakes(front, p) || (front?.http === 'auto' && p.enabled && p.proto === 'tcp');
}

export interface FirewallState {
  readonly tunnelInterface: string;
  readonly deviceSubnet: string;
  /** The relay's own address in deviceSubnet (devices may ping it; nothing else of the relay). */
  readonly tunnelAddress: string;
  /** 'pmtu' clamps SYNs into the tunnel to the route MTU; a number clamps both ways to it. */
  readonly mssClamp: 'pmtu' | number;
  readonly ports: readonly PortForward[];
  readonly openvpn?: OpenVpnState;
  readonly socks5Front?: Socks5FrontState;
}

/** A validated, canonical, frozen state. Only `validateState` makes these. */
export interface ValidState extends FirewallState {
  readonly ports: readonly ValidPortForward[];
  readonly __valid: true;
}
export interface ValidPortForward extends PortForward {
  readonly allowFrom?: readonly string[];
}

// Linux IFNAMSIZ is 16 including the NUL; we also refuse quotes, spaces and slashes so a name
// can go into an nft script between double quotes safely.
const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

export function checkPort(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
    throw fail('PP_ERR_NETFW_INVALID_PORT', { field, value: String(v) });
  }
  return v;
}

function checkIfname(field: string, v: unknown): string {
  if (typeof v !== 'string' || !IFNAME.test(v) || v === 'lo')
    throw fail('PP_ERR_NETFW_INVALID_INTERFACE', { field, value: String(v) });
  return v;
}

function checkSubnet(field: string, v: unknown): Cidr {
  const c = parseCidr(v as string, false);
  if (typeof c === 'string') throw fail('PP_ERR_NETFW_INVALID_CIDR', { field, value: String(v), reason: c });
  if (c.prefix < 8 || c.prefix > 30)
    throw fail('PP_ERR_NETFW_INVALID_CIDR', { field, value: String(v), reason: 'prefix must be /8 to /30' });
  return c;
}

function checkHostIn(field: string, v: unknown, subnet: Cidr): string {
  const a = parseIPv4(v as string);
  if (a === undefined) throw fail('PP_ERR_NETFW_INVALID_ADDRESS', { field, value: String(v) });
  if (!cidrContains(subnet, a) || a === subnet.base || a === cidrLast(subnet)) {
    throw fail('PP_ERR_NETFW_ADDRESS_OUTSIDE_SUBNET', { field, value: String(v), subnet: formatCidr(subnet) });
  }
  return formatIPv4(a);
}

function checkAllowFrom(field: string, port: number, list: unknown): string[] {
  if (!Array.isArray(list)) throw fail('PP_ERR_NETFW_INVALID_STATE', { field, reason: 'must be an array of CIDRs' });
  const cidrs: Cidr[] = [];
  for (const [i, text] of list.entries()) {
    const c = parseCidr(text as string, true);
    if (typeof c === 'string')
      throw fail('PP_ERR_NETFW_INVALID_CIDR', { field: `${field}[${i}]`, value: String(text), reason: c });
    // Overlapping intervals in one interval set are refused by the kernel, and a duplicate is
    // almost always a bug upstream; report both clearly rather than merging silently.
    const clash = cidrs.find((o) => cidrsOverlap(o, c));
    if (clash) throw fail('PP_ERR_NETFW_DUPLICATE_SOURCE', { port, a: formatCidr(clash), b: formatCidr(c) });
    cidrs.push(c);
  }
  return cidrs.sort((a, b) => a.base - b.base).map(formatCidr);
}

export function validateState(input: FirewallState): ValidState {
  if (input === null || typeof input !== 'object')
    throw fail('PP_ERR_NETFW_INVALID_STATE', { field: 'state', reason: 'must be an object' });
  const tunnelInterface = checkIfname('tunnelInterface', input.tunnelInterface);
  const subnet = checkSubnet('deviceSubnet', input.deviceSubnet);
  const tunnelAddress = checkHostIn('tunnelAddress', input.tunnelAddress, subnet);
  let mssClamp: 'pmtu' | number;
  if (input.mssClamp === 'pmtu') mssClamp = 'pmtu';
  else if (
    typeof input.mssClamp === 'number' &&
    Number.isInteger(input.mssClamp) &&
    input.mssClamp >= 536 &&
    input.mssClamp <= 9000
  )
    mssClamp = input.mssClamp;
  else
    throw fail('PP_ERR_NETFW_INVALID_STATE', {
      field: 'mssClamp',
      reason: `must be 'pmtu' or an integer 536-9000, got ${String(input.mssClamp)}`,
    });

  let openvpn: OpenVpnState | undefined;
  if (input.openvpn !== undefined) {
    const o = input.openvpn;
    const ovSubnet = checkSubnet('openvpn.subnet', o.subnet);
    if (cidrsOverlap(ovSubnet, subnet))
      throw fail('PP_ERR_NETFW_INVALID_STATE', {
        field: 'openvpn.subnet',
        reason: `overlaps deviceSubnet ${formatCidr(subnet)}`,
      });
    const iface = checkIfname('openvpn.interface', o.interface);
    if (iface === tunnelInterface)
      throw fail('PP_ERR_NETFW_INVALID_STATE', {
        field: 'openvpn.interface',
        reason: 'must differ from tunnelInterface',
      });
    const tproxyPort = checkPort('openvpn.tproxyPort', o.tproxyPort);
    const dns = o.dnsRedirectPort === undefined ? undefined : checkPort('openvpn.dnsRedirectPort', o.dnsRedirectPort);
    if (dns === tproxyPort)
      throw fail('PP_ERR_NETFW_INVALID_STATE', {
        field: 'openvpn.dnsRedirectPort',
        reason: 'must differ from tproxyPort',
      });
    if (o.carried !== undefined && typeof o.carried !== 'boolean')
      throw fail('PP_ERR_NETFW_INVALID_STATE', { field: 'openvpn.carried', reason: 'must be a boolean' });
    openvpn = Object.freeze({
      subnet: formatCidr(ovSubnet),
      interface: iface,
      tproxyPort,
      ...(dns === undefined ? {} : { dnsRedirectPort: dns }),
      ...(o.carried ? { carried: true } : {}),
    });
  }

  let socks5Front: Socks5FrontState | undefined;
  if (input.socks5Front !== undefined) {
    const f = input.socks5Front;
    if (f === null || typeof f !== 'object')
      throw fail('PP_ERR_NETFW_INVALID_STATE', { field: 'socks5Front', reason: 'must be an object' });
    const port = checkPort('socks5Front.port', f.port);
    if (typeof f.mark !== 'number' || !Number.isInteger(f.mark) || f.mark < 1 || f.mark > 0xffffffff)
      throw fail('PP_ERR_NETFW_INVALID_STATE', {
        field: 'socks5Front.mark',
        reason: `must be an integer 1-4294967295, got ${String(f.mark)}`,
      });
    if (f.http !== undefined && typeof f.http !== 'boolean' && f.http !== 'auto')
      throw fail('PP_ERR_NETFW_INVALID_STATE', { field: 'socks5Front.http', reason: "must be a boolean or 'auto'" });
    if (openvpn && (port === openvpn.tproxyPort || port === openvpn.dnsRedirectPort))
      throw fail('PP_ERR_NETFW_INVALID_STATE', {
        field: 'socks5Front.port',
        reason: 'is the transparent proxy or DNS redirect port',
      });
    socks5Front = Object.freeze({ port, mark: f.mark, ...(f.http ? { http: f.http } : {}) });
  }

  if (!Array.isArray(input.ports))
    throw fail('PP_ERR_NETFW_INVALID_STATE', { field: 'ports', reason: 'must be an array' });
  const seen = new Set<number>();
  const ports: ValidPortForward[] = [];
  for (const [i, p] of input.ports.entries()) {
    const f = `ports[${i}]`;
    if (p === null || typeof p !== 'object')
      throw fail('PP_ERR_NETFW_INVALID_STATE', { field: f, reason: 'must be an object' });
    const port = checkPort(`${f}.port`, p.port);
    // One owner per public port, whatever the protocol: 'both' exists for the tcp+udp case.
    if (seen.has(port)) throw fail('PP_ERR_NETFW_DUPLICATE_PORT', { port });
    seen.add(port);
    if (p.proto !== 'tcp' && p.proto !== 'udp' && p.proto !== 'both')
      throw fail('PP_ERR_NETFW_INVALID_STATE', {
        field: `${f}.proto`,
        reason: `must be tcp, udp or both, got ${String(p.proto)}`,
      });
    const vpnIp = checkHostIn(`${f}.vpnIp`, p.vpnIp, subnet);
    if (vpnIp === tunnelAddress)
      throw fail('PP_ERR_NETFW_INVALID_STATE', { field: `${f}.vpnIp`, reason: 'is the relay tunnelAddress' });
    const targetPort = checkPort(`${f}.targetPort`, p.targetPort);
    if (typeof p.enabled !== 'boolean')
      throw fail('PP_ERR_NETFW_INVALID_STATE', { field: `${f}.enabled`, reason: 'must be a boolean' });
    const allowFrom = p.allowFrom === undefined ? undefined : checkAllowFrom(`${f}.allowFrom`, port, p.allowFrom);
    if (p.viaFront !== undefined && typeof p.viaFront !== 'boolean')
      throw fail('PP_ERR_NETFW_INVALID_STATE', { field: `${f}.viaFront`, reason: 'must be a boolean' });
    ports.push(
      Object.freeze({
        port,
        proto: p.proto,
        vpnIp,
        targetPort,
        enabled: p.enabled,
        ...(allowFrom ? { allowFrom: Object.freeze(allowFrom) } : {}),
        ...(p.viaFront ? { viaFront: true } : {}),
      }),
    );
  }
  if (openvpn) {
    for (const p of ports) {
      if (p.port === openvpn.tproxyPort || p.port === openvpn.dnsRedirectPort) {
        throw fail('PP_ERR_NETFW_INVALID_STATE', {
          field: `port ${p.port}`,
          reason: 'is the transparent proxy or DNS redirect port',
        });
      }
    }
  }
  if (socks5Front && ports.some((p) => p.port === socks5Front.port))
    throw fail('PP_ERR_NETFW_INVALID_STATE', { field: `port ${socks5Front.port}`, reason: 'is the SOCKS5 front port' });
  ports.sort((a, b) => a.port - b.port);
  const out: ValidState = Object.freeze({
    tunnelInterface,
    deviceSubnet: formatCidr(subnet),
    tunnelAddress,
    mssClamp,
    ports: Object.freeze(ports),
    ...(openvpn ? { openvpn } : {}),
    ...(socks5Front ? { socks5Front } : {}),
    __valid: true as const,
  });
  validated.add(out);
  return out;
}

const validated = new WeakSet<object>();

/** Accepts a state this module validated as is (cheap), anything else through validateState. */
export function ensureValid(s: FirewallState | ValidState): ValidState {
  return validated.has(s) ? (s as ValidState) : validateState(s);
}
