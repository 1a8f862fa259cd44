// Node's own TCP handle and stream request classes, the layer net.Socket is built on
// (process.binding('tcp_wrap') and ('stream_wrap'): on node's allow-list for process.binding,
// documentation-only deprecated, no warning; @pocketproxy/tun's openTcpSocket uses the same). Typed
// here with what lean/socket.ts and lean/server.ts call; the shapes are those of Node 20's
// lib/net.js and lib/internal/stream_base_commons.js.
import * as util from 'node:util';

export interface WriteReq {
  handle: TcpHandle;
  oncomplete: (this: WriteReq, status: number) => void;
  async: boolean;
  owner: unknown;
  /** Kept while the write is queued in libuv: the bytes must stay alive until it completes. */
  buffer: unknown;
  cb: ((err?: Error | null) => void) | undefined;
}

export interface ShutdownReq {
  handle: TcpHandle;
  oncomplete: (this: ShutdownReq, status: number) => void;
  owner: unknown;
}

export interface ConnectReq {
  oncomplete: (this: ConnectReq, status: number) => void;
  address: string;
  port: number;
  owner: unknown;
}

export interface SockName {
  address?: string;
  port?: number;
  family?: string;
}

export interface TcpHandle {
  readonly fd: number;
  readonly writeQueueSize: number;
  onread: ((this: TcpHandle, ab: ArrayBuffer | undefined) => void) | null;
  onconnection: ((this: TcpHandle, status: number, client: TcpHandle | undefined) => void) | null;
  /** Our socket or server object (Node keeps it under a private symbol; we use our own field). */
  owner: unknown;
  open(fd: number): number;
  bind(address: string, port: number): number;
  bind6(address: string, port: number, flags: number): number;
  listen(backlog: number): number;
  connect(req: ConnectReq, address: string, port: number): number;
  connect6(req: ConnectReq, address: string, port: number): number;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: WriteReq, data: Uint8Array): number;
  writeUtf8String(req: WriteReq, data: string): number;
  writev(req: WriteReq, chunks: Uint8Array[], allBuffers: true): number;
  shutdown(req: ShutdownReq): number;
  setNoDelay(on: boolean): number;
  getpeername(out: SockName): number;
  getsockname(out: SockName): number;
  reset(cb: () => void): number;
  close(cb?: () => void): void;
}

export interface Binding {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => ConnectReq;
  WriteWrap: new () => WriteReq;
  ShutdownWrap: new () => ShutdownReq;
  SOCKET: number;
  SERVER: number;
  /** Shared with the C++ side: what the last read / write call reported. */
  state: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
  kBytesWritten: number;
  kLastWriteWasAsync: number;
}

let cached: Binding | null | undefined;

/** The binding, or null where this Node does not offer it (callers then use node:net). */
export function leanBinding(): Binding | null {
  if (cached !== undefined) return cached;
  cached = null;
  try {
    const p = process as unknown as { binding(name: string): Record<string, unknown> };
    const tcp = p.binding('tcp_wrap') as {
      TCP?: Binding['TCP'];
      TCPConnectWrap?: Binding['TCPConnectWrap'];
      constants?: { SOCKET?: number; SERVER?: number };
    };
    const sw = p.binding('stream_wrap') as Partial<{
      WriteWrap: Binding['WriteWrap'];
      ShutdownWrap: Binding['ShutdownWrap'];
      streamBaseState: Int32Array;
      kReadBytesOrError: number;
      kArrayBufferOffset: number;
      kBytesWritten: number;
      kLastWriteWasAsync: number;
    }>;
    if (
      typeof tcp.TCP === 'function' &&
      typeof tcp.TCPConnectWrap === 'function' &&
      typeof tcp.constants?.SOCKET === 'number' &&
      typeof tcp.constants.SERVER === 'number' &&
      typeof sw.WriteWrap === 'function' &&
      typeof sw.ShutdownWrap === 'function' &&
      sw.streamBaseState instanceof Int32Array &&
      typeof sw.kReadBytesOrError === 'number' &&
      typeof sw.kArrayBufferOffset === 'number' &&
      typeof sw.kBytesWritten === 'number' &&
      typeof sw.kLastWriteWasAsync === 'number'
    ) {
      cached = {
        TCP: tcp.TCP,
        TCPConnectWrap: tcp.TCPConnectWrap,
        WriteWrap: sw.WriteWrap,
        ShutdownWrap: sw.ShutdownWrap,
        SOCKET: tcp.constants.SOCKET,
        SERVER: tcp.constants.SERVER,
        state: sw.streamBaseState,
        kReadBytesOrError: sw.kReadBytesOrError,
        kArrayBufferOffset: sw.kArrayBufferOffset,
        kBytesWritten: sw.kBytesWritten,
        kLastWriteWasAsync: sw.kLastWriteWasAsync,
      };
    }
  } catch {
    cached = null;
  }
  return cached;
}

/** libuv's end of file (UV_EOF). */
export const UV_EOF = -4095;
/** libuv: shutdown() of a socket that is not connected (any more). */
export const UV_ENOTCONN = -107;

/** A system error as node:net makes them: code, errno, syscall, and the address when there is one. */
export function errnoError(status: number, syscall: string, address?: string, port?: number): NodeJS.ErrnoException {
  const code = util.getSystemErrorName(status);
  const where = address === undefined ? '' : port === undefined ? ` ${address}` : ` ${address}:${port}`;
  const e = new Error(`${syscall} ${code}${where}`) as NodeJS.ErrnoException & { address?: string; port?: number };
  e.code = code;
  e.errno = status;
  e.syscall = syscall;
  if (address !== undefined) e.address = address;
  if (port !== undefined) e.port = port;
  return e;
}
