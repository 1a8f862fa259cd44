// TCP socket options Node does not expose (native/tcp_flags.cc says what each one does):
//   setTcpFlag     TCP_QUICKACK, TCP_CORK, TCP_DEFER_ACCEPT on a socket or listening server. Best effort by design:
//                  a segment saved is an optimisation, so a socket without an fd (already closed, or
//                  not TCP) or a failing setsockopt answers false instead of throwing.
//   openTcpSocket  an outgoing socket (Nagle off) bound with IP_BIND_ADDRESS_NO_PORT and optionally
//                  in delayed-ACK mode, adopted by Node and connected with socket.connect().
import { Socket, type Server } from 'node:net';
import { loadAddon } from './native.js';
import { socketFd } from './original-dst.js';

export type TcpFlag = 'quickack' | 'cork' | 'defer_accept';

/** Sets `flag` on the socket (or on a listening server: inherited by connections it accepts). */
export function setTcpFlag(target: Socket | Server, flag: TcpFlag, on: boolean): boolean {
  try {
    loadAddon().setTcpFlag(socketFd(target), flag, on);
    return true;
  } catch {
    return false;
  }
}

/**
 * An unconnected TCP socket bound to `bindAddress` (port chosen at connect time), for the caller to
 * connect(). Throws a system error (EADDRNOTAVAIL when the address is gone, ...) or when the addon
 * is missing; callers fall back to net.connect.
 */
export function openTcpSocket(family: 4 | 6, bindAddress: string | undefined, opts: { quietAck: boolean }): Socket {
  const fd = loadAddon().openTcpSocket(family, bindAddress ?? null, opts.quietAck);
  // allowHalfOpen: a tunnel forwards each direction's FIN on its own (packages/proxy relay.ts).
  return new Socket({ fd, allowHalfOpen: true, readable: true, writable: true });
}
