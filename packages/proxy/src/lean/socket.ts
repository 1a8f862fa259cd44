// LeanSocket: a TCP connection as an EventEmitter over Node's own TCP handle, without the stream
// machinery of net.Socket (Readable/Writable state, buffering, nextTick'd emits, the destroy
// sequence). A proxy's short connection pays for that machinery twice (customer and target): on
// the lab's 2-core VM net.Socket cost ~100-130 µs of CPU per proxied request (measured, see
// docs/benchmarks.md "LeanSocket"). libuv underneath is the same; what is gone is JS bookkeeping.
//
// It speaks the subset of net.Socket the proxy engines use (ProxySocket, ../socket.ts), with the
// same meaning:
//   - always half-open (allowHalfOpen): each direction's FIN is its own; 'close' comes once both
//     directions have ended (our end() was flushed and shut down, and the peer's FIN was read), or
//     on destroy() / an error;
//   - reading starts when a 'data' listener is added or resume() is called, unless pause() came
//     first; after pause() no 'data' is emitted, and reading stops as soon as one read's worth has
//     arrived (kept for resume(); the rest waits in the kernel, so backpressure reaches the peer as
//     with net.Socket's readStop);
//   - write() returns false while more than 16 KiB wait in libuv's queue, and 'drain' follows when
//     the queue is empty; a write's callback runs on a later tick, as with net;
//   - destroy(err) emits 'error' (next tick) and then 'close' (once libuv closed the fd, a later
//     loop turn), as net.Socket does; resetAndDestroy() closes with SO_LINGER 0 (a TCP reset);
//   - setTimeout(ms): 'timeout' after ms without a completed read or write (re-armed by activity).
// Byte counts are this socket's own (what was read from / handed to the kernel), kept after close.
import { EventEmitter } from 'node:events';
import { closeSync } from 'node:fs';
import * as net from 'node:net';
import {
  errnoError,
  leanBinding,
  UV_ENOTCONN,
  UV_EOF,
  type Binding,
  type SockName,
  type TcpHandle,
  type WriteReq,
} from './binding.js';
import { ipFamily } from '../ip.js';

/** write() answers false above this many bytes queued in libuv (net.Socket's default highWaterMark). */
const HIGH_WATER = 16 * 1024;

type WriteCb = (err?: Error | null) => void;

let B: Binding;

function need(): Binding {
  const b = leanBinding();
  if (!b) throw new Error('LeanSocket: this Node has no tcp_wrap/stream_wrap binding');
  B = b;
  return b;
}

export interface LeanConnectOptions {
  /** An IP literal: resolution and the destination policy happen before (dialer.ts). */
  readonly host: string;
  readonly port: number;
  /** Bound before connect() when the socket is a fresh one (not one opened on a bound fd). */
  readonly localAddress?: string;
}

export class LeanSocket extends EventEmitter {
  /** The TCP handle (Node's TCPWrap); `_handle.fd` is what @pocketproxy/tun's setsockopt helpers read. */
  _handle: TcpHandle | null;
  destroyed = false;
  connecting = false;
  readableEnded = false;
  writableEnded = false;
  writableFinished = false;
  errored: Error | null = null;
  bytesRead = 0;
  bytesWritten = 0;
  writableCorked = 0;

  private readonly b: Binding;
  /** null: nobody asked yet (a 'data' listener starts reading); false: paused; true: flowing. */
  private flowing: boolean | null = null;
  private reading = false;
  private needDrain = false;
  /** Writes handed to libuv and not completed yet. */
  private inflight = 0;
  private shutdownSent = false;
  private resetting = false;
  private timer: NodeJS.Timeout | null = null;
  private timeoutMs = 0;
  /** Bytes given back with unshift() or read during a pause, emitted first once flowing. */
  private unshifted: Buffer[] | null = null;
  /** The peer's FIN arrived during a pause: 'end' once flowing and the kept bytes are out. */
  private endHeld = false;
  /** Writes made while connecting or corked, sent in one go after. */
  private queued: { data: Uint8Array; cb: WriteCb | undefined }[] | null = null;
  private peer: SockName | null = null;
  private local: SockName | null = null;
  /** closeAfterWrites(): close once the last write is in the kernel. */
  private closeWhenWritten = false;
  /** Set once the connection was handed to a native relay (handoff.ts): destroy() goes there. */
  private nativeKill: ((reset: boolean) => void) | null = null;

  /** Adopts a connected handle (an accepted connection), or makes an unconnected one for connect(). */
  constructor(handle?: TcpHandle) {
    super();
    this.b = need();
    const h = handle ?? new this.b.TCP(this.b.SOCKET);
    h.owner = this;
    h.onread = onRead;
    this._handle = h;
  }

  /** A socket owning `fd` (an unconnected TCP socket, e.g. bound and pinned by @pocketproxy/tun); on failure the fd is closed. */
  static fromFd(fd: number): LeanSocket {
    const b = need();
    const h = new b.TCP(b.SOCKET);
    const err = h.open(fd);
    if (err !== 0) {
      h.close(); // it never owned the fd: ours to close, or it leaks
      closeSync(fd);
      throw errnoError(err, 'open');
    }
    return new LeanSocket(h);
  }

  /** A new outgoing connection (net.connect's counterpart): 'connect' or 'error' + 'close' follows. */
  static connect(o: LeanConnectOptions): LeanSocket {
    const s = new LeanSocket();
    if (o.localAddress !== undefined) {
      const h = s._handle!;
      const err = net.isIPv6(o.localAddress) ? h.bind6(o.localAddress, 0, 0) : h.bind(o.localAddress, 0);
      if (err !== 0) {
        const e = errnoError(err, 'bind', o.localAddress);
        process.nextTick(() => s.destroy(e));
        return s;
      }
    }
    return s.connect(o);
  }

  connect(o: { host: string; port: number }, onConnect?: () => void): this {
    const h = this._handle;
    if (!h || this.destroyed) return this;
    if (onConnect) this.once('connect', onConnect);
    this.connecting = true;
    const req = new this.b.TCPConnectWrap();
    req.oncomplete = afterConnect;
    req.address = o.host;
    req.port = o.port;
    req.owner = this;
    const family = ipFamily(o.host);
    const err =
      family === 6
        ? h.connect6(req, o.host, o.port)
        : family === 4
          ? h.connect(req, o.host, o.port)
          : -22; /* EINVAL: not an IP literal */
    if (err !== 0) {
      const e = errnoError(err, 'connect', o.host, o.port);
      process.nextTick(() => this.destroy(e));
    }
    return this;
  }

  /** @internal the connect request completed. */
  connected(): void {
    this.connecting = false;
    this.emit('connect');
    if (this.destroyed) return;
    this.flushQueued();
    this.startReading();
  }

  // ---- reading ----------------------------------------------------------------------------

  // biome-ignore lint/suspicious/noExplicitAny: EventEmitter's own listener type
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    super.on(event, listener);
    if (event === 'data' && this.flowing !== false) this.resume();
    return this;
  }

  // biome-ignore lint/suspicious/noExplicitAny: EventEmitter's own listener type
  override addListener(event: string | symbol, listener: (...args: any[]) => void): this {
    return this.on(event, listener);
  }

  resume(): this {
    this.flowing = true;
    if (this.unshifted || this.endHeld) process.nextTick(emitUnshifted, this);
    else this.startReading();
    return this;
  }

  /**
   * Stops 'data'. Reading itself stops when the next bytes (or the FIN) arrive: they are kept for
   * resume(). A pause that ends before the peer sends more (the customer waiting while we dial)
   * then costs no readStop/readStart pair, i.e. no two epoll_ctl calls; at most one read's worth
   * is kept, the rest waits in the kernel as with an immediate stop.
   */
  pause(): this {
    this.flowing = false;
    return this;
  }

  isPaused(): boolean {
    return this.flowing === false;
  }

  /** Puts bytes back in front of what is read next (net.Socket#unshift). */
  unshift(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.unshifted ??= [];
    this.unshifted.unshift(chunk);
    if (this.flowing) process.nextTick(emitUnshifted, this);
  }

  /** @internal emits unshifted bytes, then reads on (if still flowing). */
  flushUnshifted(): void {
    while (this.unshifted && this.flowing && !this.destroyed) {
      const c = this.unshifted.shift()!;
      if (this.unshifted.length === 0) this.unshifted = null;
      this.emit('data', c);
    }
    if (this.endHeld && this.flowing && !this.unshifted && !this.destroyed) {
      this.endHeld = false;
      this.ended();
      return;
    }
    this.startReading();
  }

  private stopReading(): void {
    if (!this.reading) return;
    this.reading = false;
    this._handle?.readStop();
  }

  private ended(): void {
    this.readableEnded = true;
    this.emit('end');
    this.maybeClose();
  }

  private startReading(): void {
    if (this.reading || this.connecting || this.destroyed || this.readableEnded || !this.flowing || this.unshifted)
      return;
    const h = this._handle;
    if (!h) return;
    this.reading = true;
    const err = h.readStart();
    if (err !== 0) {
      this.reading = false;
      this.destroy(errnoError(err, 'read'));
    }
  }

  /** @internal from onRead: `n` bytes, 0 (nothing), or a negative libuv status. */
  gotRead(ab: ArrayBuffer | undefined, n: number): void {
    if (this.destroyed) return;
    if (n > 0) {
      const buf = Buffer.from(ab!, this.b.state[this.b.kArrayBufferOffset], n);
      this.bytesRead += n;
      this.timer?.refresh();
      if (this.flowing) this.emit('data', buf);
      else {
        // Arrived during a pause (see pause()): kept, and reading stops now.
        this.unshifted ??= [];
        this.unshifted.push(buf);
        this.stopReading();
      }
      return;
    }
    if (n === 0) return;
    this.stopReading();
    if (n !== UV_EOF) return void this.destroy(errnoError(n, 'read'));
    if (this.flowing && !this.unshifted) this.ended();
    else this.endHeld = true;
  }

  // ---- writing ----------------------------------------------------------------------------

  get writable(): boolean {
    return !this.destroyed && !this.writableEnded;
  }

  get readable(): boolean {
    return !this.destroyed && !this.readableEnded;
  }

  get writableLength(): number {
    return this._handle?.writeQueueSize ?? 0;
  }

  write(data: Uint8Array | string, cb?: WriteCb): boolean {
    if (this.destroyed || this.writableEnded) {
      const e = Object.assign(new Error(this.destroyed ? 'write after destroy' : 'write after end'), {
        code: this.destroyed ? 'ERR_STREAM_DESTROYED' : 'ERR_STREAM_WRITE_AFTER_END',
      });
      if (cb) process.nextTick(cb, e);
      return false;
    }
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (this.connecting || this.writableCorked > 0) {
      this.queued ??= [];
      this.queued.push({ data: bytes, cb });
      return true;
    }
    return this.send([bytes], cb ? [cb] : undefined);
  }

  /** Hands chunks to libuv in one request; false when the queue is above the high-water mark. */
  private send(chunks: Uint8Array[], cbs: WriteCb[] | undefined): boolean {
    const h = this._handle!;
    const b = this.b;
    const req = new b.WriteWrap();
    req.handle = h;
    req.oncomplete = afterWrite;
    req.async = false;
    req.owner = this;
    req.cb =
      cbs === undefined
        ? undefined
        : cbs.length === 1
          ? cbs[0]
          : (e) => {
              for (const c of cbs) c(e);
            };
    req.buffer = null;
    const err = chunks.length === 1 ? h.writeBuffer(req, chunks[0]!) : h.writev(req, chunks, true);
    if (err !== 0) {
      this.destroy(errnoError(err, 'write'));
      return false;
    }
    this.bytesWritten += b.state[b.kBytesWritten]!;
    if (b.state[b.kLastWriteWasAsync]) {
      req.async = true;
      req.buffer = chunks;
      this.inflight++;
    } else {
      this.timer?.refresh();
      if (req.cb) process.nextTick(req.cb, null);
    }
    if (h.writeQueueSize >= HIGH_WATER) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  /** @internal a queued write completed (status < 0: failed, or cancelled by close). */
  wrote(req: WriteReq, status: number): void {
    this.inflight--;
    req.buffer = null;
    if (status < 0) {
      const e = errnoError(status, 'write');
      req.cb?.(e);
      this.destroy(e);
      return;
    }
    this.timer?.refresh();
    req.cb?.(null);
    if (this.closeWhenWritten && this.inflight === 0) {
      this.destroy();
      return;
    }
    if (this.needDrain && this.inflight === 0 && !this.destroyed) {
      this.needDrain = false;
      this.emit('drain');
    }
  }

  cork(): void {
    this.writableCorked++;
  }

  uncork(): void {
    if (this.writableCorked === 0) return;
    if (--this.writableCorked > 0 || this.connecting) return;
    this.flushQueued();
  }

  private flushQueued(): void {
    this.sendQueued();
    if (this.writableEnded) this.shutdown();
  }

  private sendQueued(): void {
    const q = this.queued;
    this.queued = null;
    if (q && q.length > 0 && !this.destroyed) {
      const cbs = q.flatMap((w) => (w.cb ? [w.cb] : []));
      this.send(
        q.map((w) => w.data),
        cbs.length > 0 ? cbs : undefined,
      );
    }
  }

  /**
   * Our last bytes are written: close as soon as libuv has handed them to the kernel, without a
   * shutdown of our own and without waiting for the peer's FIN. close() of a TCP socket sends what
   * the kernel still holds, then the FIN, and the kernel finishes the exchange alone; what this
   * saves over end() + the peer's FIN is the shutdown request (the shutdown, an epoll_ctl and a loop
   * turn), the read of the FIN and two calls into JS. Only for a peer with nothing more to send (an HTTP
   * client that sent `Connection: close` and whose request was read whole, or whose FIN came
   * already): bytes arriving after the close are answered with a reset, and bytes waiting unread at
   * the close make the kernel reset at once, dropping our answer (RFC 9112 §9.6). 'close' follows,
   * no 'finish'. While connecting it is end().
   */
  closeAfterWrites(): void {
    if (this.destroyed || this.writableEnded) return;
    if (this.connecting) return void this.end();
    this.writableEnded = true;
    this.writableCorked = 0;
    this.closeWhenWritten = true;
    this.sendQueued();
    if (this.inflight === 0) this.destroy();
  }

  end(data?: Uint8Array | string | (() => void)): this {
    if (typeof data === 'function') data = undefined;
    if (this.destroyed || this.writableEnded) return this;
    if (data !== undefined && data.length > 0) this.write(data);
    this.writableEnded = true;
    this.writableCorked = 0;
    if (!this.connecting) this.flushQueued();
    return this;
  }

  /** Our FIN, after what libuv still has queued (uv_shutdown waits for pending writes). */
  private shutdown(): void {
    if (this.shutdownSent || this.destroyed || !this._handle) return;
    this.shutdownSent = true;
    const req = new this.b.ShutdownWrap();
    req.handle = this._handle;
    req.oncomplete = afterShutdown;
    req.owner = this;
    const err = this._handle.shutdown(req);
    if (err === 1 || err === UV_ENOTCONN) process.nextTick(finished, this);
    else if (err !== 0) this.destroy(errnoError(err, 'shutdown'));
  }

  /** @internal our side is shut down. */
  finishedWriting(): void {
    if (this.destroyed) return;
    this.writableFinished = true;
    this.emit('finish');
    this.maybeClose();
  }

  private maybeClose(): void {
    if (this.readableEnded && this.writableFinished) this.destroy();
  }

  // ---- handing the connection to a native relay (handoff.ts) ------------------------------

  /**
   * The fd, when nothing of this socket's state lives in JS beyond bytes it read and kept: connected,
   * open both ways as far as we are concerned (no end() called), no write queued or in flight.
   */
  handoffFd(): number | null {
    const h = this._handle;
    if (!h || this.destroyed || this.connecting || this.nativeKill) return null;
    if (this.writableEnded || this.shutdownSent || this.inflight > 0 || this.queued || this.writableCorked > 0)
      return null;
    if (h.writeQueueSize > 0 || typeof h.fd !== 'number' || h.fd < 0) return null;
    return h.fd;
  }

  /** What was read and not emitted yet (a pause's kept bytes), and whether the peer's FIN was read. */
  keptForHandoff(): { bytes: Buffer | null; ended: boolean } {
    const u = this.unshifted;
    return { bytes: u ? (u.length === 1 ? u[0]! : Buffer.concat(u)) : null, ended: this.endHeld || this.readableEnded };
  }

  /**
   * The native relay now owns a duplicate of the fd: our handle closes without a FIN or reset (the
   * connection lives on in the duplicate) and emits nothing more; destroy() / resetAndDestroy() call
   * `kill`, and nativeClosed() ends this socket.
   */
  handedOff(kill: (reset: boolean) => void): void {
    const h = this._handle!;
    this._handle = null;
    this.reading = false;
    this.unshifted = null;
    this.endHeld = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    h.onread = ignoreRead;
    h.close();
    this.nativeKill = kill;
  }

  /** The native relay is over: counts added, both directions ended, then 'close' (on the next tick when `later`). */
  nativeClosed(read: number, written: number, err: boolean, later: boolean): void {
    if (this.destroyed) return;
    this.nativeKill = null;
    this.bytesRead += read;
    this.bytesWritten += written;
    this.readableEnded = true;
    this.writableEnded = true;
    this.writableFinished = !err;
    this.destroyed = true;
    if (later) process.nextTick(emitClose, this, err);
    else this.emit('close', err);
  }

  // ---- closing ----------------------------------------------------------------------------

  destroy(err?: Error): this {
    if (this.nativeKill) {
      const kill = this.nativeKill;
      this.nativeKill = null;
      kill(this.resetting);
      return this;
    }
    if (this.destroyed) return this;
    this.destroyed = true;
    this.reading = false;
    this.connecting = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (err) this.errored = err;
    const h = this._handle;
    this._handle = null;
    if (err) process.nextTick(emitError, this, err);
    const closed = () => this.emit('close', err !== undefined);
    if (!h) {
      process.nextTick(closed);
      return this;
    }
    h.onread = ignoreRead;
    if (this.resetting) {
      const r = h.reset(closed);
      if (r !== 0) {
        h.close(closed);
      }
    } else h.close(closed);
    return this;
  }

  /** Closes with a TCP reset (SO_LINGER 0): the peer's next read fails at once. */
  resetAndDestroy(): this {
    if (this.destroyed) return this;
    this.resetting = true;
    return this.destroy();
  }

  setTimeout(ms: number, onTimeout?: () => void): this {
    if (onTimeout) this.once('timeout', onTimeout);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timeoutMs = ms;
    if (ms > 0 && !this.destroyed) {
      this.timer = setTimeout(emitTimeout, ms, this);
      this.timer.unref();
    }
    return this;
  }

  setNoDelay(on = true): this {
    this._handle?.setNoDelay(on);
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  // ---- addresses --------------------------------------------------------------------------

  private peerName(): SockName {
    this.peer ??= this.askName('getpeername');
    return this.peer ?? {};
  }

  private localName(): SockName {
    this.local ??= this.askName('getsockname');
    return this.local ?? {};
  }

  /** The kernel's answer, or null (not connected, closed: asked again next time, as net does). */
  private askName(call: 'getpeername' | 'getsockname'): SockName | null {
    const out: SockName = {};
    return this._handle?.[call](out) === 0 ? out : null;
  }

  get remoteAddress(): string | undefined {
    return this.peerName().address;
  }
  get remotePort(): number | undefined {
    return this.peerName().port;
  }
  get remoteFamily(): string | undefined {
    return this.peerName().family;
  }
  get localAddress(): string | undefined {
    return this.localName().address;
  }
  get localPort(): number | undefined {
    return this.localName().port;
  }
  address(): SockName {
    return this.localName();
  }
  /** The idle timeout set with setTimeout (0 = none). */
  get timeout(): number {
    return this.timeoutMs;
  }
}

// Callbacks the C++ side calls, with `this` set to the handle or request (module-level: no closure
// per connection).
function onRead(this: TcpHandle, ab: ArrayBuffer | undefined): void {
  const s = this.owner as LeanSocket;
  s.gotRead(ab, B.state[B.kReadBytesOrError]!);
}
function afterWrite(this: WriteReq, status: number): void {
  (this.owner as LeanSocket).wrote(this, status);
}
function afterShutdown(this: { owner: unknown }): void {
  finished(this.owner as LeanSocket);
}
function finished(s: LeanSocket): void {
  s.finishedWriting();
}
function afterConnect(this: { owner: unknown; address: string; port: number }, status: number): void {
  const s = this.owner as LeanSocket;
  if (s.destroyed) return;
  if (status < 0) return void s.destroy(errnoError(status, 'connect', this.address, this.port));
  s.connected();
}
function emitError(s: LeanSocket, e: Error): void {
  s.emit('error', e);
}
function emitClose(s: LeanSocket, err: boolean): void {
  s.emit('close', err);
}
function emitTimeout(s: LeanSocket): void {
  if (!s.destroyed) s.emit('timeout');
}
function emitUnshifted(s: LeanSocket): void {
  s.flushUnshifted();
}
/** A closed handle's onread (the C++ side requires a function there). */
function ignoreRead(): void {}
