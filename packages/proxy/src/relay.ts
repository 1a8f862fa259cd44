// Byte pump between the customer socket and the target socket.
//
// Both sockets are created with allowHalfOpen, and pipe() forwards each direction's FIN on its own,
// so a client that shuts down its sending side still receives the whole answer. pipe() handles
// backpressure (pause on a full write buffer, resume on 'drain'); we add no per-chunk work, and
// byte counts come from the kernel-facing counters (bytesRead/bytesWritten) at the end.
import type * as net from 'node:net';

export interface RelayResult {
  /** Bytes read from the client over the socket's whole life (handshake included). */
  readonly bytesIn: number;
  readonly bytesOut: number;
}

export interface RelayOptions {
  /** Destroy both sides after this long without traffic in either direction (0 = never). */
  readonly idleTimeoutMs?: number;
}

export function relay(client: net.Socket, target: net.Socket, opts: RelayOptions, done: (r: RelayResult) => void): void {
  let open = 2;
  const finish = (): void => {
    if (--open === 0) done({ bytesIn: client.bytesRead, bytesOut: client.bytesWritten });
  };
  // A side that closes without having seen its readable end was torn down (reset, error,
  // destroy()): take the other side with it. A clean close (both FINs) lets the other drain.
  const onClose = (self: net.Socket, other: net.Socket) => () => {
    if (!self.readableEnded || self.errored) other.destroy();
    finish();
  };
  client.once('close', onClose(client, target));
  target.once('close', onClose(target, client));
  client.on('error', () => target.destroy());
  target.on('error', () => client.destroy());
  if (opts.idleTimeoutMs && opts.idleTimeoutMs > 0) {
    // setTimeout on a socket is re-armed by socket activity without extra timers per chunk.
    const idle = (): void => { client.destroy(); target.destroy(); };
    client.setTimeout(opts.idleTimeoutMs, idle);
    target.setTimeout(opts.idleTimeoutMs, idle);
  }
  client.pipe(target);
  target.pipe(client);
  if (client.isPaused()) client.resume();
}
