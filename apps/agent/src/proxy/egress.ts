// Egress: customer traffic leaves by the egress interface (cellular) even when the tunnel rides
// Wi-Fi. Rotation changes the interface's address, so it is looked up again at most
// `interfacesTtlMs` (1 s) after the previous look-up: os.networkInterfaces() (getifaddrs + one object
// per address) on every dial was ~9 % of the agent's CPU at 500 new connections/s. The egress
// address, the deny list of own addresses and the policy dialer built from them are reused while
// the snapshot is fresh.
//
//   customer -> relay -> tunnel -> device proxy -> [bind egress address + SO_BINDTODEVICE] -> target
//
// Pinning: with two uplinks (tunnel over Wi-Fi/Ethernet holding the default route, customers over
// cellular), a socket bound only to the cellular address is still routed by the main table: out of
// the default interface with a source that network drops. So every egress socket is also bound
// to the interface itself (SO_BINDTODEVICE, @pocketproxy/tun): TCP sockets through `openSocket`
// (which gets the device name), UDP sockets in their bind callback (a dgram socket has no fd
// before; dgram holds datagrams sent meanwhile until after that callback). The route lookup is then
// restricted to routes through the interface, so it needs one in the main table (a default route
// with a higher metric, as NetworkManager/ModemManager install). A socket that cannot be pinned
// is not used (TCP: network unreachable; UDP: closed, its datagrams dropped): never an unpinned
// fallback. Without the addon, egress binds the address only and says so once.
//
// Destinations: public unicast only by default (packages/proxy policy: the lab's documentation
// ranges 203.0.113/24, 198.51.100/24, 192.0.2/24 count as public), plus always refused: the tunnel
// subnet and every address of this device (its own public IP would reach the device itself).
//
// DNS answers are reused for `dnsCacheMs` (default 5 s): one cache for the egress's life, shared by
// the dialers rebuilt with each interface snapshot (packages/proxy dns-cache.ts).
import * as os from 'node:os';
import * as dgram from 'node:dgram';
import { isPPError } from '@pocketproxy/errors';
import { addonAvailable, bindToDevice, openTcpSocket } from '@pocketproxy/tun';
import {
  createDnsCache,
  createPolicyDialer,
  createPolicyResolver,
  proxyError,
  systemResolve,
  DEFAULT_DNS_CACHE_MS,
  type DestinationPolicy,
  type ConnectableSocket,
  type Dial,
  type PolicyDialerOptions,
  type ResolveChecked,
  type UdpSocketFactory,
  type Resolve,
} from '@pocketproxy/proxy';

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
  /**
   * Unconnected outgoing TCP sockets (createPolicyDialer openSocket), bound to `localAddress` and,
   * when `device` is given, pinned to it (openTcpSocket({device})). Must throw rather than return
   * undefined when it cannot pin: undefined means net.connect's own socket, which is not pinned.
   * Default: openTcpSocket({device}) when pinning, else net.connect's own.
   */
  openSocket?: (
    family: 4 | 6,
    localAddress: string | undefined,
    device: string | undefined,
  ) => ConnectableSocket | undefined;
  /** Sockets made without openSocket are LeanSockets (proxy/sockets.ts) instead of net.Sockets. */
  lean?: boolean;
  /**
   * openSocket's socket as a bare fd (@pocketproxy/tun openTcpFd), pinned the same way: with it the
   * dial can `prepare` (the fronts connect natively, packages/proxy front/connection.ts).
   */
  openFd?: (family: 4 | 6, localAddress: string | undefined, device: string | undefined) => number;
  /**
   * Pin egress sockets to `interface` with SO_BINDTODEVICE (default true; needs the
   * @pocketproxy/tun addon, else address binding only). false = address binding only, as before.
   */
  bindToDevice?: boolean;
  /** Where the "egress is not pinned" notice (once) and UDP pinning failures go; default process.emitWarning. */
  logger?: { warn(obj: object, msg: string): void };
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

const emitWarningLogger = {
  warn(obj: object, msg: string) {
    process.emitWarning(`${msg} ${JSON.stringify(obj)}`, { code: 'PP_EGRESS' });
  },
};

/** An error the policy dialer classifies as PP_ERR_PROXY_NETWORK_UNREACHABLE (classifyDialError: ENETUNREACH). */
function notPinned(device: string, cause?: unknown): Error {
  const why = cause instanceof Error ? cause.message : 'the socket factory returned no pinned socket';
  return Object.assign(new Error(`egress socket not pinned to ${device}: ${why}`), { code: 'ENETUNREACH', cause });
}

export function createEgress(o: EgressOptions): Egress {
  const log = o.logger ?? emitWarningLogger;
  // The interface every egress socket is pinned to, or undefined (address binding only).
  let device: string | undefined;
  if (o.interface && (o.bindToDevice ?? true)) {
    if (addonAvailable()) device = o.interface;
    else
      log.warn(
        { interface: o.interface },
        'egress is not pinned to its interface (the @pocketproxy/tun addon is not built): sockets bind its address only, so they follow the main routing table',
      );
  }
  const pinned = device;
  const openSocket: PolicyDialerOptions['openSocket'] = pinned
    ? (family, localAddress) => {
        const open = o.openSocket ?? ((f, a, d) => openTcpSocket(f, a, { device: d }));
        let s: ConnectableSocket | undefined;
        try {
          s = open(family, localAddress, pinned);
        } catch (e) {
          // The interface is gone or was never there (ENODEV), or its name is unusable: unreachable.
          if (isPPError(e) && (e.code === 'PP_ERR_TUN_BIND_DEVICE_FAILED' || e.code === 'PP_ERR_TUN_INVALID_INTERFACE'))
            throw notPinned(pinned, e);
          throw e;
        }
        if (!s) throw notPinned(pinned);
        return s;
      }
    : o.openSocket && ((family, localAddress) => o.openSocket!(family, localAddress, undefined));
  const rawFd = o.openFd;
  const openFd: PolicyDialerOptions['openFd'] =
    rawFd &&
    ((family, localAddress) => {
      if (!pinned) return rawFd(family, localAddress, undefined);
      try {
        return rawFd(family, localAddress, pinned);
      } catch (e) {
        if (isPPError(e) && (e.code === 'PP_ERR_TUN_BIND_DEVICE_FAILED' || e.code === 'PP_ERR_TUN_INVALID_INTERFACE'))
          throw notPinned(pinned, e);
        throw e;
      }
    });
  const ifs = o.interfaces ?? os.networkInterfaces;
  const ttl = o.interfacesTtlMs ?? 1000;
  const now = o.now ?? Date.now;
  const dnsCacheMs = o.dnsCacheMs ?? DEFAULT_DNS_CACHE_MS;
  const base = o.resolve ?? systemResolve;
  const resolve = dnsCacheMs > 0 ? createDnsCache(base, { ttlMs: dnsCacheMs, now }) : base;
  interface Snapshot {
    at: number;
    bind: EgressAddresses | undefined;
    dial: Dial;
    resolveUdp: ResolveChecked;
  }
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
      dial: createPolicyDialer({
        policy,
        resolve,
        dnsCacheMs: 0,
        bindAddress: bind,
        connectTimeoutMs: o.connectTimeoutMs,
        openSocket,
        openFd,
        lean: o.lean,
      }),
      resolveUdp: createPolicyResolver({ policy, resolve, dnsCacheMs: 0 }),
    };
    return snap;
  };
  /** The current snapshot, unless the egress interface has no address at all (unreachable then). */
  const usable = (req: { host: string; port: number }): Snapshot => {
    const s = current();
    const b = s.bind;
    if (b && !b.ipv4 && !b.ipv6)
      throw proxyError('PP_ERR_PROXY_NETWORK_UNREACHABLE', { host: req.host, port: req.port });
    return s;
  };
  const dial: Dial = async (req) => usable(req).dial(req);
  if (openFd) dial.prepare = async (req) => usable(req).dial.prepare!(req);
  return {
    dial,
    resolveUdp: (host) => current().resolveUdp(host),
    createUdpSocket: (type) => {
      const s = dgram.createSocket(type);
      const b = current().bind;
      const addr = type === 'udp6' ? b?.ipv6 : b?.ipv4;
      if (pinned) {
        // Bound now (to the egress address, or the wildcard if the interface has none of this
        // family) and pinned once the fd exists; datagrams sent before wait in dgram's queue until
        // after this callback. If pinning fails the socket is closed and they are dropped.
        s.bind({ address: addr ?? (type === 'udp6' ? '::' : '0.0.0.0'), port: 0, exclusive: true }, () => {
          try {
            bindToDevice(s, pinned);
          } catch (e) {
            log.warn(
              { interface: pinned, err: e instanceof Error ? e.message : String(e) },
              'egress UDP socket could not be pinned to its interface; closed',
            );
            s.close();
          }
        });
      } else if (addr) {
        // Bind now to the egress address (port 0); without an egress interface send() binds implicitly.
        s.bind({ address: addr, port: 0, exclusive: true });
      }
      return s;
    },
  };
}
