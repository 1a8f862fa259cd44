// The HTTP proxy's failure answers. Every failure carries its stable code in X-PocketProxy-Error so
// a customer can tell "target refused" from "name does not resolve" (table in README.md).
import type { ProxySocket } from '../socket.js';
import { STATUS_CODES } from 'node:http';
import type { PPError } from '../errors.js';

export const ERROR_HEADER = 'X-PocketProxy-Error';
/** Why an access denial happened (disabled, expired, bandwidth, …): the app's short token. */
export const REASON_HEADER = 'X-PocketProxy-Reason';
export const REALM = 'pocketproxy';

/** Writes a complete failure response and closes the connection after it is flushed. */
export function writeFailure(socket: ProxySocket, err: PPError): void {
  if (socket.destroyed || !socket.writable) return void socket.destroy();
  socket.end(failureResponse(err));
  // Do not wait forever for a client that never reads the answer.
  socket.setTimeout(5_000);
  socket.once('timeout', () => socket.destroy());
}

/** The complete failure response for `err` (status, error code header, a one-line body). */
export function failureResponse(err: PPError): string {
  const body = `${err.code}: ${err.message}\n`;
  const lines = [
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Error'}`,
    `${ERROR_HEADER}: ${err.code}`,
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
  ];
  if (err.status === 407) lines.push(`Proxy-Authenticate: Basic realm="${REALM}"`);
  if (err.code === 'PP_ERR_PROXY_ACCESS_DENIED') lines.push(`${REASON_HEADER}: ${reasonToken(err.params.reason)}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** The reason comes from the app; keep it a header-safe token whatever it is. */
function reasonToken(reason: string | number | undefined): string {
  const t = String(reason ?? '')
    .replace(/[^A-Za-z0-9._-]/g, '')
    .slice(0, 64);
  return t === '' ? 'unspecified' : t;
}
