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
import * as net from 'node:net';
import {
  proxyError,
  proxyHandshake,
  readConnectAnswer,
  readSocks5Answers,
  socks5Hello,
  type ConnectViaOptions,
  type Tunnel,
} from '@pocketproxy/proxy';
import { openTcpSocket } from '@pocketproxy/tun';

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
  const o: ConnectViaOptions = {
    proxyHost: route.deviceVpnIp,
    proxyPort: route.proxyPort,
    auth: { username: route.username, password: route.password },
    host,
    port,
    timeoutMs,
  };
  const injected = route.protocol === 'socks5' ? d.connectViaSocks5 : d.connectVia;
  if (injected) {
    const t = await injected(o);
    if (early.length) t.socket.write(early);
    return { socket: t.socket, head: 'head' in t ? (t as Tunnel).head : Buffer.alloc(0) };
  }
  if (route.protocol === 'socks5') {
    const hello = socks5Hello(o);
    return pipelined(o, Buffer.concat([hello, early]), (buf) => {
      const a = readSocks5Answers(buf, true);
      if (a.kind === 'more') return undefined;
      if (a.kind === 'rejected') throw proxyError('PP_ERR_PROXY_UPSTREAM_REJECTED', { status: a.status, code: a.code });
      return a.length;
    });
  }
  const authority = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  const basic = Buffer.from(`${route.username}:${route.password}`, 'utf8').toString('base64');
  const head = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\nProxy-Authorization: Basic ${basic}\r\n\r\n`;
  return pipelined(o, Buffer.concat([Buffer.from(head, 'latin1'), early]), readConnectAnswer);
}

/** A socket in delayed-ACK mode when the addon is there (else a plain one), connecting to the device. */
function openSocket(o: ConnectViaOptions): net.Socket {
  try {
    const s = openTcpSocket(net.isIPv6(o.proxyHost) ? 6 : 4, undefined, { quietAck: true });
    s.connect(o.proxyPort, o.proxyHost);
    return s;
  } catch {
    return net.connect({ host: o.proxyHost, port: o.proxyPort, allowHalfOpen: true, noDelay: true });
  }
}

/** The shared proxy handshake (packages/proxy) on the relay's own socket: `hello` goes at once. */
const pipelined = (o: ConnectViaOptions, hello: Buffer, answered: (buf: Buffer) => number | undefined) =>
  proxyHandshake(o, hello, answered, openSocket(o)).then(({ socket, rest }) => ({ socket, head: rest }));
