// TCP socket options Node does not expose (native/tcp_flags.cc says what each one does):
//   setTcpFlag     TCP_QUICKACK, TCP_CORK, TCP_DEFER_ACCEPT, TCP_NODELAY on a socket or listening server. Best effort by design:
//                  a segment saved is an optimisation, so a socket without an fd (already closed, or
//                  not TCP) or a failing setsockopt answers false instead of throwing.
//   openTcpSocket  an outgoing socket (Nagle off) bound with IP_BIND_ADDRESS_NO_PORT, optionally
//                  in delayed-ACK mode and pinned to a device (SO_BINDTODEVICE, bind-device.ts),
//                  adopted by Node and connected with socket.connect().
//
// Adoption: `new Socket({ fd })` asks libuv what the fd is (uv_guess_handle: isatty's ioctl, fstat,
// getsockopt(SO_TYPE), getsockname): four system calls per outgoing connection for an answer we
// know. Node's own TCP handle class (process.binding('tcp_wrap'), on node's allow-list for
// process.binding; documentation-only deprecated, no warning) opens the fd directly, and
// `new Socket({ handle })` is the path net.Server takes for every accepted connection. Where that
// binding is not there (a future Node), the documented `{ fd }` path is taken.
import { Socket } from 'node:net';
import { bindDeviceError, validateInterfaceName } from './bind-device.js';
import { loadAddon } from './native.js';
import { socketFd, type FdOwner } from './original-dst.js';

export type TcpFlag = 'quickack' | 'cork' | 'defer_accept' | 'nodelay';

/** Sets `flag` on the socket (or on a listening server: inherited by connections it accepts). */
export function setTcpFlag(target: FdOwner, flag: TcpFlag, on: boolean): boolean {
  try {
    loadAddon().setTcpFlag(socketFd(target), flag, on);
    return true;
  } catch {
    return false;
  }
}

export interface OpenTcpSocketOptions {
  /** TCP_QUICKACK off before connect(): delayed-ACK mode from the handshake on. Default false. */
  quietAck?: boolean;
  /** Interface name: SO_BINDTODEVICE before bind and connect, so the connection leaves by it. */
  device?: string;
}

/**
 * An unconnected TCP socket bound to `bindAddress` (port chosen at connect time) and, with
 * `device`, pinned to that interface, for the caller to connect(). Throws a system error
 * (EADDRNOTAVAIL when the address is gone, ...), PP_ERR_TUN_INVALID_INTERFACE /
 * PP_ERR_TUN_BIND_DEVICE_FAILED (ENODEV: no such interface) for the device, or
 * PP_ERR_TUN_ADDON_MISSING; callers without a device fall back to net.connect.
 */
export function openTcpSocket(family: 4 | 6, bindAddress?: string, opts: OpenTcpSocketOptions = {}): Socket {
  return adopt(openTcpFd(family, bindAddress, opts));
}

/**
 * openTcpSocket's socket as a bare fd, for a caller that adopts it itself (@pocketproxy/proxy's
 * LeanSocket.fromFd); the caller owns the fd. Same errors as openTcpSocket.
 */
export function openTcpFd(family: 4 | 6, bindAddress?: string, opts: OpenTcpSocketOptions = {}): number {
  if (opts.device !== undefined) validateInterfaceName(opts.device);
  const addon = loadAddon();
  try {
    return addon.openTcpSocket(family, bindAddress ?? null, opts.quietAck ?? false, opts.device ?? null);
  } catch (e) {
    throw opts.device !== undefined ? bindDeviceError(opts.device, e) : e;
  }
}

interface TcpHandle {
  open(fd: number): number;
  close(): void;
}
interface TcpWrapBinding {
  TCP: new (type: number) => TcpHandle;
  constants: { SOCKET: number };
}
let tcpWrap: TcpWrapBinding | null | undefined;

function tcpWrapBinding(): TcpWrapBinding | null {
  if (tcpWrap === undefined) {
    try {
      const b = (process as unknown as { binding(name: string): Partial<TcpWrapBinding> }).binding('tcp_wrap');
      tcpWrap = typeof b.TCP === 'function' && typeof b.constants?.SOCKET === 'number' ? (b as TcpWrapBinding) : null;
    } catch {
      tcpWrap = null;
    }
  }
  return tcpWrap;
}

/** A net.Socket owning `fd` (an unconnected TCP socket); see "Adoption" above. */
function adopt(fd: number): Socket {
  // allowHalfOpen: a tunnel forwards each direction's FIN on its own (packages/proxy relay.ts).
  const opts = { allowHalfOpen: true, readable: true, writable: true };
  const b = tcpWrapBinding();
  if (b) {
    const handle = new b.TCP(b.constants.SOCKET);
    if (handle.open(fd) === 0) return new Socket({ ...opts, handle } as ConstructorParameters<typeof Socket>[0]);
    handle.close(); // it never owned the fd
  }
  return new Socket({ ...opts, fd });
}
