// The device's customer-facing proxies, listening on its tunnel address:
//
//   customer -> relay:P (http)          -> DNAT -> tunnel -> vpn_ip:8080 (HTTP)   -> egress -> target
//   customer -> relay:P (socks5 tcp)    -> DNAT -> tunnel -> vpn_ip:1080 (SOCKS5) -> egress -> target
//   customer -> relay:P (socks5 udp)    -> DNAT -> tunnel -> vpn_ip:1080/udp  \
//   customer -> relay:base+2 (udp)      -> DNAT -> tunnel -> vpn_ip:1081/udp  -> one UdpRelay -> target
//
// UDP ASSOCIATE: the reply announces BND = relay host : the SOCKS5 connection's own relay port
// (credentials items carry `port`), so datagrams take the same DNAT as the control connection.
// When the principal has no socks5 item (should not happen) the device-level UDP port is announced.
//
// Association matching: the relay masquerades into the tunnel, so every customer — TCP control
// connections and datagrams alike — appears to come from the relay's tunnel address. UdpRelay's rule
// (packages/proxy README "UDP: who may use the relay port") therefore works per source *port*: an
// association exists only while its authenticated control connection is open; the first datagram
// from an unclaimed (relay-ip, port) binds the oldest open association, and from then on only that
// ip:port is served. Masquerade keeps a customer's source port stable per flow, so concurrent
// customers get distinct ports; the caveat is the window between ASSOCIATE and the first datagram.
import type * as net from 'node:net';
import * as dgram from 'node:dgram';
import type { Logger } from 'pino';
import { setTcpFlag } from '@pocketproxy/tun';
import { createHttpProxy, createSocks5Server, UdpRelay, type AuthContext, type ProxyServer, type RegisterOptions, type UdpAssociation, type UdpRelayOptions } from '@pocketproxy/proxy';
import type { CredentialStore } from '../credentials.js';
import type { Egress } from './egress.js';
import type { UsageMeter, LiveSample } from '../ops/usage.js';
import { DualUdpSocket } from './dual-udp.js';

export const DEFAULT_PORTS: Readonly<{ http: number; socks5: number; udp: number }> = Object.freeze({ http: 8080, socks5: 1080, udp: 1081 });

/** Remembers the principal of the association being registered: the ASSOCIATE reply reads it synchronously. */
class PortAwareUdpRelay extends UdpRelay {
  lastPrincipal: string | undefined;
  constructor(o: UdpRelayOptions) {
    super(o);
  }
  override register(o: RegisterOptions): UdpAssociation | null {
    this.lastPrincipal = o.principal;
    return super.register(o);
  }
}

export interface ProxiesOptions {
  host: string;
  ports?: Partial<typeof DEFAULT_PORTS>;
  credentials: CredentialStore;
  egress: Egress;
  usage: UsageMeter;
  logger: Logger;
  /** What UDP ASSOCIATE announces: the relay's public host and the device-level UDP port. */
  advertise: () => { host: string; udpPort: number };
}

export interface Proxies {
  readonly http: ProxyServer;
  readonly socks5: ProxyServer;
  readonly udp: UdpRelay;
  ports: { http: number; socks5: number; udp: number; socks5Udp: number };
  /** Destroys every open customer connection (and through them their targets and UDP associations). */
  closeCustomerSockets(): number;
  liveSamples(): LiveSample[];
  close(): Promise<void>;
}

export async function startProxies(o: ProxiesOptions): Promise<Proxies> {
  const ports = { ...DEFAULT_PORTS, ...o.ports };
  const log = o.logger.child({ subsys: 'proxy' });
  // The principal of each authenticated customer socket (for live usage samples).
  const principalOf = new WeakMap<net.Socket, string>();
  const open = new Set<net.Socket>();

  const authenticate = async (user: string, pass: string, ctx: AuthContext) => {
    const ok = o.credentials.authenticate(user, pass);
    if (!ok) return null;
    principalOf.set(ctx.socket, ok.principal);
    return { principal: ok.principal };
  };

  const bindUdp = (port: number) =>
    new Promise<dgram.Socket>((resolve, reject) => {
      const s = dgram.createSocket('udp4');
      s.once('error', reject);
      s.bind(port, o.host, () => {
        s.removeListener('error', reject);
        resolve(s);
      });
    });
  const [u1080, u1081] = await Promise.all([bindUdp(ports.socks5), bindUdp(ports.udp)]);
  const dual = new DualUdpSocket(u1080, u1081);
  const udp = new PortAwareUdpRelay({ socket: dual.asSocket(), createSocket: o.egress.createUdpSocket, resolve: o.egress.resolveUdp, logger: log });

  const advertiseFor = () => {
    const a = o.advertise();
    const item = udp.lastPrincipal ? o.credentials.byConnection(udp.lastPrincipal) : undefined;
    return { address: a.host, port: item?.protocol === 'socks5' ? item.port : a.udpPort };
  };
  const udpOpts = {
    relay: udp as UdpRelay,
    get advertise() {
      return advertiseFor();
    },
  };

  // Segment economy (every customer segment is a sealed tunnel frame both ways): the answer's tail
  // and its FIN leave together; see also the listeners below and the egress sockets (egress.ts).
  const http = createHttpProxy({ authenticate, dial: o.egress.dial, logger: log, beforeEnd: (s) => void setTcpFlag(s, 'cork', true) });
  const socks5 = createSocks5Server({ authenticate, dial: o.egress.dial, udp: udpOpts, logger: log });

  for (const srv of [http, socks5]) {
    srv.server.on('connection', (s: net.Socket) => {
      open.add(s);
      s.once('close', () => {
        open.delete(s);
        // connectionClosed (emitted just before, by the library's own close handler) added the
        // totals; take back what live samples of this socket already reported.
        o.usage.closedAfterEvent(s);
      });
    });
    srv.on('connectionClosed', (e) => o.usage.add(e.principal, e.bytesIn, e.bytesOut));
    srv.on('requestFailed', (e) => log.debug({ code: e.code, principal: e.principal }, 'request failed'));
  }
  udp.on('connectionClosed', (e) => o.usage.add(e.principal, e.bytesIn, e.bytesOut));

  try {
    await http.listen(ports.http, o.host);
    await socks5.listen(ports.socks5, o.host);
    // Connections accepted from these listeners start in delayed-ACK mode (the kernel copies the
    // listener's ACK state): a request is acknowledged by its answer, not by a bare ACK of its own.
    // And they are handed to us only once their first bytes are there (HTTP and SOCKS5 clients
    // speak first): one wakeup per connection instead of one for the accept and one for the data.
    for (const srv of [http, socks5]) {
      setTcpFlag(srv.server, 'quickack', false);
      setTcpFlag(srv.server, 'defer_accept', true);
    }
  } catch (e) {
    await Promise.allSettled([http.close(), socks5.close(), udp.close()]);
    dual.close();
    throw e;
  }
  log.info({ host: o.host, ...ports }, 'proxies listening');

  return {
    http,
    socks5,
    udp,
    ports: { http: http.address().port, socks5: socks5.address().port, udp: u1081.address().port, socks5Udp: u1080.address().port },
    closeCustomerSockets() {
      const n = open.size;
      for (const s of [...open]) s.destroy();
      return n;
    },
    liveSamples() {
      const out: LiveSample[] = [];
      for (const s of open) {
        const p = principalOf.get(s);
        if (p) out.push({ key: s, principal: p, bytesIn: s.bytesRead, bytesOut: s.bytesWritten });
      }
      return out;
    },
    async close() {
      await Promise.allSettled([http.close(), socks5.close(), udp.close()]);
      await new Promise<void>((r) => dual.close(r));
    },
  };
}
