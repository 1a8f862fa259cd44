// How the relay itself reaches the internet through a device on behalf of an OpenVPN customer:
// through that customer's connection, like any other customer of it, so the device applies the
// connection's credentials, state and limits (docs/security.md).
//
//   relay (transparent proxy / DNS forwarder) -> device vpn_ip:<connection port>
//     http connection:   CONNECT host:port            (connectVia)
//     socks5 connection: SOCKS5 CONNECT host:port     (connectViaSocks5)
import type * as net from 'node:net';
import {
  connectVia as realConnectVia,
  connectViaSocks5 as realConnectSocks5,
  type ConnectViaOptions,
  type Tunnel,
} from '@pocketproxy/proxy';

/** Which connection an OpenVPN customer uses (from the client-connect hook, via the API). */
export interface ConnectionRoute {
  readonly deviceVpnIp: string;
  /** The connection's port on the device (the same as its public port on the relay). */
  readonly proxyPort: number;
  readonly protocol: 'http' | 'socks5';
  readonly username: string;
  readonly password: string;
}

export interface DeviceDialers {
  readonly connectVia?: (o: ConnectViaOptions) => Promise<Tunnel>;
  readonly connectViaSocks5?: (o: ConnectViaOptions) => Promise<{ socket: net.Socket }>;
}

/** A tunnel to host:port through the route's connection; `head` = bytes the target sent already. */
export async function dialThroughConnection(
  route: ConnectionRoute,
  host: string,
  port: number,
  timeoutMs: number,
  d: DeviceDialers = {},
): Promise<{ socket: net.Socket; head: Buffer }> {
  const o: ConnectViaOptions = {
    proxyHost: route.deviceVpnIp,
    proxyPort: route.proxyPort,
    auth: { username: route.username, password: route.password },
    host,
    port,
    timeoutMs,
  };
  if (route.protocol === 'socks5')
    return { socket: (await (d.connectViaSocks5 ?? realConnectSocks5)(o)).socket, head: Buffer.alloc(0) };
  return (d.connectVia ?? realConnectVia)(o);
}
