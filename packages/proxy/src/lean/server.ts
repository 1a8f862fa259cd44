// LeanServer: a listening TCP socket whose accepted connections are LeanSockets (net.Server's
// counterpart, for the subset ProxyServer uses). Accept is libuv's, as with net.Server: up to 511
// pending connections, each handed over from libuv's accept loop with one JS call.
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { errnoError, leanBinding, type SockName, type TcpHandle } from './binding.js';
import { LeanSocket } from './socket.js';

export interface LeanServerOptions {
  /** TCP_NODELAY on every accepted connection (one setsockopt each; see ProxyServer.inheritNoDelay). */
  readonly noDelay?: boolean;
}

export class LeanServer extends EventEmitter {
  _handle: TcpHandle | null = null;
  listening = false;
  maxConnections: number | undefined;
  noDelay: boolean;
  private connections = 0;
  private closing: (() => void)[] | null = null;
  private bound: SockName | null = null;

  constructor(opts: LeanServerOptions = {}, onConnection?: (s: LeanSocket) => void) {
    super();
    this.noDelay = opts.noDelay ?? false;
    if (onConnection) this.on('connection', onConnection);
  }

  /** Binds and listens; 'listening' (and `cb`) on the next tick, or 'error' (EADDRINUSE, ...). */
  listen(port: number, host: string, cb?: () => void): this {
    const b = leanBinding();
    if (!b) throw new Error('LeanServer: this Node has no tcp_wrap binding');
    const h = new b.TCP(b.SERVER);
    let err = net.isIPv6(host) ? h.bind6(host, port, 0) : h.bind(host, port);
    if (err === 0) {
      h.owner = this;
      h.onconnection = onConnection;
      err = h.listen(511);
    }
    if (err !== 0) {
      h.close();
      const e = errnoError(err, 'listen', host, port);
      process.nextTick(() => this.emit('error', e));
      return this;
    }
    this._handle = h;
    this.listening = true;
    if (cb) this.once('listening', cb);
    process.nextTick(() => this.emit('listening'));
    return this;
  }

  address(): net.AddressInfo | null {
    if (this.bound === null && this._handle) {
      const out: SockName = {};
      if (this._handle.getsockname(out) === 0) this.bound = out;
    }
    const a = this.bound;
    return a ? { address: a.address ?? '', port: a.port ?? 0, family: a.family ?? '' } : null;
  }

  /** @internal from onConnection. */
  accepted(status: number, client: TcpHandle | undefined): void {
    if (status !== 0 || !client) {
      this.emit('error', errnoError(status, 'accept'));
      return;
    }
    if (this.maxConnections !== undefined && this.connections >= this.maxConnections) {
      client.close();
      return;
    }
    if (this.noDelay) client.setNoDelay(true);
    const s = new LeanSocket(client);
    this.connections++;
    s.once('close', () => {
      this.connections--;
      this.maybeClosed();
    });
    this.emit('connection', s);
  }

  /** Stops accepting; `cb` (and 'close') once every accepted connection has closed too, as net.Server. */
  close(cb?: () => void): this {
    const h = this._handle;
    if (!h) {
      if (cb) process.nextTick(cb);
      return this;
    }
    this._handle = null;
    this.listening = false;
    this.closing ??= [];
    if (cb) this.closing.push(cb);
    h.close(() => {
      this.handleClosed = true;
      this.maybeClosed();
    });
    return this;
  }

  private handleClosed = false;

  private maybeClosed(): void {
    if (!this.handleClosed || this.connections > 0 || this.closing === null) return;
    const cbs = this.closing;
    this.closing = null;
    this.emit('close');
    for (const c of cbs) c();
  }
}

function onConnection(this: TcpHandle, status: number, client: TcpHandle | undefined): void {
  (this.owner as LeanServer).accepted(status, client);
}
