// The transparent proxy for OpenVPN customers (docs/design.md §2.4):
//
//   customer 10.9.0.6 -> 93.184.216.34:443 --nft REDIRECT (tun1)--> relay :12345
//     -> SO_ORIGINAL_DST (93.184.216.34:443) -> peek SNI / Host (short, bounded wait)
//     -> the connection's own listener on the device (vpn_ip:PORT), in its protocol:
//        HTTP "CONNECT sni-or-ip:443" or SOCKS5 CONNECT, with the connection's credentials and
//        the peeked bytes behind it in one segment (device-dial.ts) -> target
//
// Which device and connection serve which customer address comes from the OpenVPN client-connect
// hook: it asks the API (`POST /api/internal/openvpn/connect`) and pushes the answer here
// (`POST /openvpn/client {client_ip, device_vpn_ip, proxy_port, protocol, username, password}`;
// `DELETE /openvpn/client {client_ip}` on disconnect). A customer address with no mapping is
// refused: nothing ever leaves through the relay's own address. The device applies the
// connection's state and limits to these sockets as to any other of that connection.
import * as net from 'node:net';
import type { Logger } from 'pino';
import { peekTarget as realPeek, type PeekResult } from '@pocketproxy/proxy';
import { setTcpFlag, type OriginalDst } from '@pocketproxy/tun';
import { badRequest, type PushHandler } from './push-server.js';
import { ipv4ToNumber } from './ipv4.js';
import { LogLimiter } from './limits.js';
import { dialThroughConnection, type ConnectionRoute, type DeviceDialers } from './device-dial.js';

export type OpenVpnClientRoute = ConnectionRoute;

export interface TransparentProxyDeps extends DeviceDialers {
  host: string;
  port: number;
  logger: Logger;
  getOriginalDst: (socket: net.Socket) => OriginalDst;
  peekTimeoutMs?: number;
  connectTimeoutMs?: number;
  maxConnections?: number;
  peekTarget?: (socket: net.Socket, o: { timeoutMs: number }) => Promise<PeekResult>;
}

export interface TransparentProxy {
  readonly clients: Map<string, OpenVpnClientRoute>;
  readonly routes: Record<string, PushHandler>;
  readonly port: number;
  readonly stats: { accepted: number; refused: number; failed: number; active: number };
  start(): Promise<void>;
  close(): Promise<void>;
}

const plainIp = (a: string | undefined) => (a?.startsWith('::ffff:') ? a.slice(7) : (a ?? ''));

export function createTransparentProxy(d: TransparentProxyDeps): TransparentProxy {
  const log = d.logger.child({ subsys: 'tproxy' });
  const clients = new Map<string, OpenVpnClientRoute>();
  const peek = d.peekTarget ?? realPeek;
  const limit = new LogLimiter(10_000);
  const stats = { accepted: 0, refused: 0, failed: 0, active: 0 };
  const sockets = new Set<net.Socket>();
  let port = d.port;

  async function handle(client: net.Socket): Promise<void> {
    const clientIp = plainIp(client.remoteAddress);
    const route = clients.get(clientIp);
    if (!route) {
      stats.refused++;
      if (limit.allow(`nomap:${clientIp}`, Date.now()) !== undefined)
        log.info({ clientIp }, 'no device mapped for this OpenVPN client; refused');
      return void client.destroy();
    }
    let dst: OriginalDst;
    try {
      dst = d.getOriginalDst(client);
    } catch (err) {
      stats.refused++;
      if (limit.allow('nodst', Date.now()) !== undefined)
        log.warn({ clientIp, err: String(err) }, 'no original destination (not redirected?); refused');
      return void client.destroy();
    }
    const p = await peek(client, { timeoutMs: d.peekTimeoutMs ?? 300 });
    if (client.destroyed) return;
    // The domain when the first bytes name one (so the device resolves it: no DNS answer from the
    // relay's resolver decides where the customer goes), else the address the customer dialled.
    const host = p.host ?? dst.address;
    let up: { socket: net.Socket; head: Buffer };
    try {
      // The peeked bytes ride behind the handshake (device-dial.ts): one tunnel round trip, not two.
      up = await dialThroughConnection(route, host, dst.port, d.connectTimeoutMs ?? 10_000, d, p.buffered);
    } catch (err) {
      stats.failed++;
      if (limit.allow(`fail:${clientIp}`, Date.now()) !== undefined)
        log.info({ clientIp, host, port: dst.port, err: String(err) }, 'device proxy refused or unreachable');
      return void client.resetAndDestroy();
    }
    if (client.destroyed) return void up.socket.destroy();
    const server = up.socket;
    sockets.add(server);
    server.on('close', () => sockets.delete(server));
    if (up.head.length) client.write(up.head);
    client.pipe(server);
    server.pipe(client);
    // A reset on one side resets the other: when the device revokes the connection it resets its
    // socket, and the customer must hear of it at once, not after what is still queued towards it.
    for (const [from, to] of [
      [client, server],
      [server, client],
    ] as const) {
      from.on('error', () => {
        if (!to.destroyed) to.resetAndDestroy();
      });
      from.on('close', () => to.destroy());
    }
    server.resume();
    client.resume();
  }

  const srv = net.createServer({ noDelay: true, pauseOnConnect: true }, (client) => {
    if (stats.active >= (d.maxConnections ?? 20_000)) return void client.destroy();
    stats.accepted++;
    stats.active++;
    sockets.add(client);
    client.on('error', () => {});
    client.on('close', () => {
      stats.active--;
      sockets.delete(client);
    });
    handle(client).catch((err) => {
      log.warn({ err: String(err) }, 'transparent proxy connection failed');
      client.destroy();
    });
  });

  const routes: Record<string, PushHandler> = {
    'POST /openvpn/client': (body) => {
      const b = (body ?? {}) as Record<string, unknown>;
      const ip = typeof b.client_ip === 'string' ? b.client_ip : '';
      const dev = typeof b.device_vpn_ip === 'string' ? b.device_vpn_ip : '';
      if (ipv4ToNumber(ip) === undefined) return badRequest('client_ip must be an IPv4 address');
      if (ipv4ToNumber(dev) === undefined) return badRequest('device_vpn_ip must be an IPv4 address');
      const port = b.proxy_port;
      if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
        return badRequest('proxy_port must be a port number');
      if (b.protocol !== 'http' && b.protocol !== 'socks5') return badRequest("protocol must be 'http' or 'socks5'");
      if (typeof b.username !== 'string' || b.username === '' || typeof b.password !== 'string')
        return badRequest('username and password are required');
      clients.set(ip, {
        deviceVpnIp: dev,
        proxyPort: port,
        protocol: b.protocol,
        username: b.username,
        password: b.password,
      });
      log.info(
        { clientIp: ip, deviceVpnIp: dev, port, protocol: b.protocol, username: b.username },
        'OpenVPN client mapped',
      );
      return { status: 200, body: { ok: true } };
    },
    'DELETE /openvpn/client': (body, url) => {
      const b = (body ?? {}) as Record<string, unknown>;
      const ip = typeof b.client_ip === 'string' ? b.client_ip : (url.searchParams.get('client_ip') ?? '');
      if (ipv4ToNumber(ip) === undefined) return badRequest('client_ip must be an IPv4 address');
      return { status: 200, body: { removed: clients.delete(ip) } };
    },
  };

  return {
    clients,
    routes,
    stats,
    get port() {
      return port;
    },
    start: () =>
      new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(d.port, d.host, () => {
          srv.off('error', reject);
          port = (srv.address() as net.AddressInfo).port;
          // Delayed-ACK mode, inherited by every accepted socket: the ACK of the customer's request
          // rides on the answer instead of crossing both OpenVPN processes as a packet of its own.
          setTcpFlag(srv, 'quickack', false);
          log.info({ port }, 'transparent proxy listening');
          resolve();
        });
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        if (!srv.listening) return resolve();
        srv.close(() => resolve());
      }),
  };
}
