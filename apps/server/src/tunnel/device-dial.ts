// How the relay itself reaches the internet through a device on behalf of an OpenVPN customer:
// through that customer's connection, like any other customer of it, so the device applies the
// connection's credentials, state and limits (docs/security.md).
//
//   relay (transparent proxy / DNS forwarder) -> device vpn_ip:<connection port>
//     http connection:   CONNECT host:port + the customer's first bytes, in one segment
//     socks5 connection: greeting + credentials + CONNECT + the customer's first bytes, in one segment
//
// One round trip over the device tunnel per connection, not two: the customer's first bytes (the
// transparent proxy has them from its SNI/Host peek) ride behind the handshake instead of waiting
// for its answer. Both device proxies take them (they forward what follows a CONNECT head or a SOCKS5
// request to the target once it is dialled: packages/proxy `first`), and a refusal closes the
// socket, so nothing after a refused handshake is ever read as a request. The socket starts in
// delayed-ACK mode (the SYN-ACK's ACK rides on the handshake: one tunnel packet less per connection).
//
// Two users: the DNS forwarder takes a ready tunnel (dialThroughConnection, on packages/proxy's
// proxyHandshake); the transparent proxy drives the same handshake from its own per-connection
// state machine (tproxy.ts) with deviceHandshake + openDeviceSocket, to keep reading without a
// pause/resume between steps.
import * as net from 'node:net';
import {
  LeanSocket,
  proxyError,
  proxyHandshake,
  readConnectAnswer,
  readSocks5Answers,
  socks5Hello,
  type ConnectViaOptions,
  type ProxySocket,
  type Tunnel,
} from '@pocketproxy/proxy';
import { openTcpFd, openTcpSocket } from '@pocketproxy/tun';

/** Which connection an OpenVPN customer uses (from the client-connect hook, via the API). */
export interface ConnectionRoute {
  readonly deviceVpnIp: string;
  /** The connection's port on the device (the same as its public port on the relay). */
  readonly proxyPort: number;
  readonly protocol: 'http' | 'socks5';
  readonly username: string;
  readonly password: string;
}

/** Replacements for the real dialers (tests); with one, `early` bytes are written after its handshake. */
export interface DeviceDialers {
  readonly connectVia?: (o: ConnectViaOptions) => Promise<Tunnel>;
  readonly connectViaSocks5?: (o: ConnectViaOptions) => Promise<{ socket: net.Socket }>;
}

export interface DeviceHandshake {
  /** The handshake, with `early` behind it: one write. */
  readonly hello: Buffer;
  /** The length of the device's answer once complete, undefined while more is needed; throws a PPError on a refusal. */
  readonly answered: (buf: Buffer) => number | undefined;
}

const socks5Answered = (buf: Buffer): number | undefined => {
  const a = readSocks5Answers(buf, true);
  if (a.kind === 'more') return undefined;
  if (a.kind === 'rejected') throw proxyError('PP_ERR_PROXY_UPSTREAM_REJECTED', { status: a.status, code: a.code });
  return a.length;
};

/** How to read the device's answer to deviceHandshake for a connection of this protocol. */
export const answerReader = (protocol: ConnectionRoute['protocol']): DeviceHandshake['answered'] =>
  protocol === 'socks5' ? socks5Answered : readConnectAnswer;

const optionsOf = (route: ConnectionRoute, host: string, port: number, timeoutMs?: number): ConnectViaOptions => ({
  proxyHost: route.deviceVpnIp,
  proxyPort: route.proxyPort,
  auth: { username: route.username, password: route.password },
  host,
  port,
  ...(timeoutMs === undefined ? {} : { timeoutMs }),
});

/** The bytes that ask the route's connection for host:port, and how to read its answer. */
export function deviceHandshake(route: ConnectionRoute, host: string, port: number, early: Buffer): DeviceHandshake {
  if (route.protocol === 'socks5') {
    const hello = socks5Hello(optionsOf(route, host, port));
    return { hello: early.length ? Buffer.concat([hello, early]) : hello, answered: answerReader('socks5') };
  }
  const authority = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  const basic = Buffer.from(`${route.username}:${route.password}`, 'utf8').toString('base64');
  const head = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\nProxy-Authorization: Basic ${basic}\r\n\r\n`;
  const bytes = Buffer.from(head, 'latin1');
  return { hello: early.length ? Buffer.concat([bytes, early]) : bytes, answered: answerReader('http') };
}

/**
 * A socket connecting to the route's device port, in delayed-ACK mode when the addon is there:
 * a LeanSocket (packages/proxy lean/) with `lean`, else a net.Socket (half-open, Nagle off).
 */
export function openDeviceSocket(route: ConnectionRoute, lean: boolean): ProxySocket {
  const host = route.deviceVpnIp;
  const family = net.isIPv6(host) ? 6 : 4;
  if (lean) {
    let s: LeanSocket;
    try {
      s = LeanSocket.fromFd(openTcpFd(family, undefined, { quietAck: true }));
    } catch {
      s = new LeanSocket();
    }
    return s.connect({ host, port: route.proxyPort });
  }
  try {
    const s = openTcpSocket(family, undefined, { quietAck: true });
    s.connect(route.proxyPort, host);
    return s;
  } catch {
    return net.connect({ host, port: route.proxyPort, allowHalfOpen: true, noDelay: true });
  }
}

/**
 * A tunnel to host:port through the route's connection; `early` = the customer's bytes already read
 * (sent behind the handshake); `head` = bytes the target sent already. The socket comes back paused.
 */
export async function dialThroughConnection(
  route: ConnectionRoute,
  host: string,
  port: number,
  timeoutMs: number,
  d: DeviceDialers = {},
  early: Buffer = Buffer.alloc(0),
): Promise<{ socket: net.Socket; head: Buffer }> {
  const o = optionsOf(route, host, port, timeoutMs);
  const injected = route.protocol === 'socks5' ? d.connectViaSocks5 : d.connectVia;
  if (injected) {
    const t = await injected(o);
    if (early.length) t.socket.write(early);
    return { socket: t.socket as net.Socket, head: 'head' in t ? (t as Tunnel).head : Buffer.alloc(0) };
  }
  // The shared proxy handshake (packages/proxy) on the relay's own socket: `hello` goes at once.
  const h = deviceHandshake(route, host, port, early);
  const { socket, rest } = await proxyHandshake(o, h.hello, h.answered, openDeviceSocket(route, false) as net.Socket);
  return { socket: socket as net.Socket, head: rest };
}
