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
  classifyDialError,
  proxyError,
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

/**
 * Connects, writes `hello` at once (handshake and early bytes: one segment), feeds what comes back
 * to `answered` until it says where the proxy's answer ends (undefined = need more; a thrown PPError
 * = refused), within `timeoutMs`. Resolves with the paused socket and the bytes after the answer.
 */
function pipelined(
  o: ConnectViaOptions,
  hello: Buffer,
  answered: (buf: Buffer) => number | undefined,
): Promise<{ socket: net.Socket; head: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = openSocket(o);
    let buf: Buffer = Buffer.alloc(0);
    let settled = false;
    const done = (err: Error | null, head?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('error', onError);
      socket.removeListener('end', onEnd);
      if (err) {
        socket.destroy();
        reject(err);
        return;
      }
      socket.pause();
      // Later errors surface to the caller as 'close'; an unlistened 'error' must not crash the process.
      socket.on('error', () => {});
      resolve({ socket, head: head! });
    };
    const timer = setTimeout(
      () => done(proxyError('PP_ERR_PROXY_TARGET_TIMEOUT', { host: o.proxyHost, port: o.proxyPort })),
      o.timeoutMs ?? 10_000,
    );
    const onError = (e: Error): void => done(classifyDialError(e, o.proxyHost, o.proxyPort));
    const onEnd = (): void => done(proxyError('PP_ERR_PROXY_TARGET_RESET', { host: o.proxyHost, port: o.proxyPort }));
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      let end: number | undefined;
      try {
        end = answered(buf);
      } catch (e) {
        done(e as Error);
        return;
      }
      if (end !== undefined) done(null, buf.subarray(end));
    };
    socket.on('error', onError);
    socket.on('end', onEnd);
    socket.on('data', onData);
    // Queued before the connection is up: Node writes it as soon as connect() completes.
    socket.write(hello);
  });
}
