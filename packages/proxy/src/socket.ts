// ProxySocket: what the engines of this package need from a TCP connection. Both node:net's
// Socket and LeanSocket (lean/socket.ts) are one; the servers accept either kind (ProxyServer's
// `lean` option) and the dialer makes either (createPolicyDialer's `lean`/`openSocket`).
import type { EventEmitter } from 'node:events';

export interface ProxySocket extends EventEmitter {
  readonly destroyed: boolean;
  readonly readableEnded: boolean;
  readonly writable: boolean;
  readonly errored: Error | null;
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly writableCorked: number;
  /** Bytes written but not yet handed to the kernel. */
  readonly writableLength: number;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  /** The libuv handle, for the fd (@pocketproxy/tun's setsockopt helpers). */
  readonly _handle?: unknown;
  write(data: Uint8Array | string, cb?: (err?: Error | null) => void): boolean;
  end(data?: Uint8Array | string): this;
  /** LeanSocket: end() for a peer that will send nothing more, closing without waiting for its FIN (lean/socket.ts). */
  closeAfterWrites?(): void;
  destroy(err?: Error): this;
  resetAndDestroy(): this;
  pause(): this;
  resume(): this;
  setTimeout(ms: number): this;
  cork(): void;
  uncork(): void;
  unshift(chunk: Buffer): void;
}

/** A socket made for one outgoing connection, connected by the dialer (dialer.ts openSocket). */
export interface ConnectableSocket extends ProxySocket {
  connect(o: { host: string; port: number }): unknown;
}
