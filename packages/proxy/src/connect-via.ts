// HTTP CONNECT client: opens a tunnel through an HTTP proxy (RFC 9110 §9.3.6). The transparent proxy
// uses it to reach the device: relay:12345 -> connectVia(device:<connection port>, "host:443") -> target.
import * as net from 'node:net';
import { proxyError, type PPError } from './errors.js';
import { classifyDialError } from './dialer.js';
import { findHeadEnd, parseResponseHead } from './http/head.js';
import { basicAuthValue } from './http/basic-auth.js';

export interface ConnectViaOptions {
  readonly proxyHost: string;
  readonly proxyPort: number;
  readonly auth?: { readonly username: string; readonly password: string };
  readonly host: string;
  readonly port: number;
  readonly timeoutMs?: number;
  readonly localAddress?: string;
}

export interface Tunnel {
  readonly socket: net.Socket;
  /** Bytes the proxy sent after its response head (already the target's). Write them first. */
  readonly head: Buffer;
}

/**
 * Reads a proxy's answer to CONNECT: undefined while its head is incomplete, the head's length when it
 * is a 2xx, else a PPError (rejected with the status and the device's X-PocketProxy-Error, or malformed).
 */
export function readConnectAnswer(buf: Buffer): number | undefined {
  let end: number;
  let status: number;
  let code = 'none';
  try {
    end = findHeadEnd(buf);
    if (end < 0) return undefined;
    const head = parseResponseHead(buf.subarray(0, end));
    status = head.status;
    code = head.headers.find((h) => h.lower === 'x-pocketproxy-error')?.value ?? 'none';
  } catch (e) {
    throw proxyError('PP_ERR_PROXY_BAD_UPSTREAM_RESPONSE', {}, { cause: e });
  }
  if (status < 200 || status > 299) throw proxyError('PP_ERR_PROXY_UPSTREAM_REJECTED', { status, code });
  return end;
}

export function connectVia(o: ConnectViaOptions): Promise<Tunnel> {
  const authority = net.isIPv6(o.host) ? `[${o.host}]:${o.port}` : `${o.host}:${o.port}`;
  const lines = [`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`];
  if (o.auth) lines.push(`Proxy-Authorization: ${basicAuthValue(o.auth.username, o.auth.password)}`);
  const request = `${lines.join('\r\n')}\r\n\r\n`;
  return proxyHandshake(o, request, readConnectAnswer).then(({ socket, rest }) => ({ socket, head: rest }));
}

/**
 * The part every proxy client shares: connect to the proxy, send `hello`, feed what comes back to
 * `answered` until it says where the proxy's answer ends (undefined = need more; a PPError = refused),
 * all within `timeoutMs`. Resolves with the paused socket and the bytes after the answer (the
 * target's, already). `socket`: one the caller opened to the proxy (the relay's delayed-ACK socket);
 * `hello` is written at once either way (Node sends it when the connection is up).
 */
export function proxyHandshake(
  o: ConnectViaOptions,
  hello: Buffer | string,
  answered: (buf: Buffer) => number | undefined,
  opened?: net.Socket,
): Promise<{ socket: net.Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket =
      opened ??
      net.connect({
        host: o.proxyHost,
        port: o.proxyPort,
        localAddress: o.localAddress,
        allowHalfOpen: true,
        noDelay: true,
      });
    let buf: Buffer = Buffer.alloc(0);
    let settled = false;
    const done = (err: PPError | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      if (err) {
        socket.destroy();
        reject(err);
        return;
      }
      socket.pause();
      socket.removeListener('error', onError);
      socket.removeListener('end', onEnd);
      // Later errors surface to the caller as 'close'; an unlistened 'error' must not crash the process.
      socket.on('error', () => {});
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
        done(e as PPError);
        return;
      }
      if (end === undefined) return;
      done(null);
      resolve({ socket, rest: buf.subarray(end) });
    };
    socket.on('error', onError);
    socket.on('end', onEnd);
    socket.on('data', onData);
    socket.write(hello);
  });
}
