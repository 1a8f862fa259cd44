// Egress: customer traffic leaves by the egress interface (cellular) even when the tunnel rides
// Wi-Fi. Rotation changes the interface's address, so it is looked up again at most
// `interfacesTtlMs` (1 s) after the previous look-up: os.networkInterfaces() (getifaddrs + one object
// per address) on every dial was ~9 % of the agent's CPU at 500 new connections/s. The egress
// address, the deny list of own addresses and the policy dialer built from them are reused while
// the snapshot is fresh.
//
//   customer -> relay -> tunnel -> device proxy -> [bind egress address] -> target
//
// Destinations: public unicast only by default (packages/proxy policy: the lab's documentation
// ranges 203.0.113/24, 198.51.100/24, 192.0.2/24 count as public), plus always refused: the tunnel
// subnet and every address of this device (its own public IP would reach the device itself).
//
// DNS answers are reused for `dnsCacheMs` (default 5 s): one cache for the egress's life, shared by
// the dialers rebuilt with each interface snapshot (packages/proxy dns-cache.ts).
import * as os from 'node:os';
import * as dgram from 'node:dgram';
import { createDnsCache, createPolicyDialer, createPolicyResolver, proxyError, systemResolve, DEFAULT_DNS_CACHE_MS, type DestinationPolicy, type Dial, type PolicyDialerOptions, type ResolveChecked, type UdpSocketFactory, type Resolve } from '@pocketproxy/proxy';

export type InterfacesFn = () => NodeJS.Dict<os.NetworkInterfaceInfo[]>;

export interface EgressOptions {
  /** Interface name; undefined = no bind, the default route decides. */
  interface?: string;
  tunnelSubnet: string;
  allowPrivate: boolean;
  allowLoopback?: boolean;
  interfaces?: InterfacesFn;
  resolve?: Resolve;
  connectTimeoutMs?: number;
  /** How long a DNS answer is reused (default 5000 ms; 0 = resolve on every dial). */
  dnsCacheMs?: number;
  /** How long one interface snapshot is used (default 1000 ms; 0 = look up on every dial). */
  interfacesTtlMs?: number;
  now?: () => number;
  /** Unconnected outgoing TCP sockets (createPolicyDialer openSocket); default net.connect's own. */
  openSocket?: PolicyDialerOptions['openSocket'];
}

export interface EgressAddresses {
  ipv4?: string;
  ipv6?: string;
}

export function interfaceAddresses(name: string, interfaces: InterfacesFn = os.networkInterfaces): EgressAddresses {
  const out: EgressAddresses = {};
  for (const a of interfaces()[name] ?? []) {
    if (a.family === 'IPv4' && !out.ipv4) out.ipv4 = a.address;
    // Link-local IPv6 cannot reach the internet.
    if (a.family === 'IPv6' && !out.ipv6 && !a.address.toLowerCase().startsWith('fe80:')) out.ipv6 = a.address;
  }
  return out;
}

/** Every address of this host, as /32 or /128, for the deny list. */
export function ownAddresses(interfaces: InterfacesFn = os.networkInterfaces): string[] {
  const out: string[] = [];
  for (const list of Object.values(interfaces())) {
    for (const a of list ?? []) {
      const addr = a.address.split('%')[0]!;
      out.push(a.family === 'IPv4' ? `${addr}/32` : `${addr}/128`);
    }
  }
  return out;
}

export function currentPolicy(o: EgressOptions): DestinationPolicy {
  return {
    allowPrivate: o.allowPrivate,
    allowLoopback: o.allowLoopback ?? false,
    denyCidrs: [o.tunnelSubnet, ...ownAddresses(o.interfaces)],
  };
}

export interface Egress {
  dial: Dial;
  resolveUdp: ResolveChecked;
  createUdpSocket: UdpSocketFactory;
}

export function createEgress(o: EgressOptions): Egress {
  const ifs = o.interfaces ?? os.networkInterfaces;
  const ttl = o.interfacesTtlMs ?? 1000;
  const now = o.now ?? Date.now;
  const dnsCacheMs = o.dnsCacheMs ?? DEFAULT_DNS_CACHE_MS;
  const base = o.resolve ?? systemResolve;
  const resolve = dnsCacheMs > 0 ? createDnsCache(base, { ttlMs: dnsCacheMs, now }) : base;
  interface Snapshot { at: number; bind: EgressAddresses | undefined; dial: Dial; resolveUdp: ResolveChecked }
  let snap: Snapshot | undefined;
  const current = (): Snapshot => {
    const t = now();
    if (snap && ttl > 0 && t - snap.at < ttl && t >= snap.at) return snap;
    // One look-up serves both the bind address and the deny list.
    let cached: ReturnType<InterfacesFn> | undefined;
    const once: InterfacesFn = () => (cached ??= ifs());
    const bind = o.interface ? interfaceAddresses(o.interface, once) : undefined;
    const policy = currentPolicy({ ...o, interfaces: once });
    snap = {
      at: t,
      bind,
      dial: createPolicyDialer({ policy, resolve, dnsCacheMs: 0, bindAddress: bind, connectTimeoutMs: o.connectTimeoutMs, openSocket: o.openSocket }),
      resolveUdp: createPolicyResolver({ policy, resolve, dnsCacheMs: 0 }),
    };
    return snap;
  };
  return {
    dial: async (req) => {
      const s = current();
      const b = s.bind;
      if (b && !b.ipv4 && !b.ipv6) throw proxyError('PP_ERR_PROXY_NETWORK_UNREACHABLE', { host: req.host, port: req.port });
      return s.dial(req);
    },
    resolveUdp: (host) => current().resolveUdp(host),
    createUdpSocket: (type) => {
      const s = dgram.createSocket(type);
      const b = current().bind;
      const addr = type === 'udp6' ? b?.ipv6 : b?.ipv4;
      // Bind now to the egress address (port 0); without an egress interface send() binds implicitly.
      if (addr) s.bind({ address: addr, port: 0, exclusive: true });
      return s;
    },
  };
}
