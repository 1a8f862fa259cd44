// SO_BINDTODEVICE for sockets: pins a socket to one interface (native/bind_device.cc).
//
// Why: on a device with two uplinks (tunnel over Wi-Fi or Ethernet, customers over cellular) a
// socket bound only to the cellular address is still routed by the main table, i.e. out of the
// default (Wi-Fi) interface with a source address that network drops. Bound to the device, the
// kernel's route lookup is restricted to routes through that interface, so the interface needs a
// route in the main table (a default route through it with a higher metric does, as
// NetworkManager / ModemManager install it). Packets arriving on other interfaces are not
// delivered to a pinned socket either.
//
// Where the fd comes from:
//   - net.Socket: `_handle.fd` (socketFd); openTcpSocket({device}) pins before bind and connect.
//   - dgram.Socket: Node creates the kernel socket only when it binds (bind() is asynchronous even
//     for an address literal: it resolves the address first, then binds and emits 'listening'), so
//     call bindToDevice from the bind callback / 'listening'. The fd lives on the UDP handle kept
//     under the socket's internal `Symbol(state symbol)` (`socket[kStateSymbol].handle.fd`; the
//     public `_handle` getter is deprecated, DEP0112, and would print a warning). Before the bind
//     the handle answers fd -9 (EBADF): PP_ERR_TUN_NO_FD. Datagrams sent before the bind completes
//     are queued by dgram and flushed only after the 'listening' listeners ran, so a socket pinned
//     in its bind callback sends nothing unpinned.
import * as dgram from 'node:dgram';
import type { Socket } from 'node:net';
import { fail, reasonOf } from './errors.js';
import { loadAddon, type NativeSystemError } from './native.js';
import { socketFd } from './original-dst.js';

/** Linux IFNAMSIZ: names are at most 15 bytes plus the NUL. */
export const IFNAMSIZ = 16;

/**
 * Throws PP_ERR_TUN_INVALID_INTERFACE unless `name` is a name the kernel accepts for a device
 * (dev_valid_name): 1-15 bytes, not "." or "..", no '/', ':' (alias labels such as eth0:1 are
 * addresses, not devices), NUL or whitespace.
 */
export function validateInterfaceName(name: string): void {
  const bad = (reason: string) => fail('PP_ERR_TUN_INVALID_INTERFACE', { name: JSON.stringify(name), reason });
  if (typeof name !== 'string' || name.length === 0) throw bad('empty');
  if (Buffer.byteLength(name) >= IFNAMSIZ) throw bad(`longer than ${IFNAMSIZ - 1} bytes`);
  if (name === '.' || name === '..') throw bad('not a device name');
  if (/[/:\s\0]/.test(name)) throw bad("contains '/', ':', NUL or whitespace");
}

/** The fd of a bound dgram socket (see the top of this file), or PP_ERR_TUN_NO_FD. */
export function dgramFd(socket: dgram.Socket): number {
  const state = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const fd = state
    ? (socket as unknown as Record<symbol, { handle?: { fd?: number } | null } | undefined>)[state]?.handle?.fd
    : undefined;
  if (typeof fd !== 'number' || fd < 0) throw fail('PP_ERR_TUN_NO_FD');
  return fd;
}

/** A failed SO_BINDTODEVICE (system error from the addon) as PP_ERR_TUN_BIND_DEVICE_FAILED; anything else as is. */
export function bindDeviceError(name: string, e: unknown): unknown {
  const sys = e as NativeSystemError;
  if (sys?.syscall === 'setsockopt(SO_BINDTODEVICE)') {
    return fail(
      'PP_ERR_TUN_BIND_DEVICE_FAILED',
      {
        name,
        reason: sys.code === 'ENODEV' ? `no such interface (ENODEV)` : `${sys.code ?? 'error'} (${reasonOf(e)})`,
      },
      { cause: e },
    );
  }
  return e;
}

/**
 * SO_BINDTODEVICE on an existing socket: a net.Socket with an fd (connected, or adopted from
 * openTcpSocket) or a bound dgram.Socket (call it from the bind callback). Throws
 * PP_ERR_TUN_INVALID_INTERFACE (bad name), PP_ERR_TUN_NO_FD (no fd yet / closed),
 * PP_ERR_TUN_BIND_DEVICE_FAILED (ENODEV for an unknown interface, EPERM without CAP_NET_RAW when
 * the socket is already pinned elsewhere), PP_ERR_TUN_ADDON_MISSING.
 * On a connected TCP socket it changes the route of the packets still to come, not the connection's addresses.
 */
export function bindToDevice(socket: Socket | dgram.Socket, ifname: string): void {
  validateInterfaceName(ifname);
  const fd = socket instanceof dgram.Socket ? dgramFd(socket) : socketFd(socket);
  try {
    loadAddon().bindToDevice(fd, ifname);
  } catch (e) {
    throw bindDeviceError(ifname, e);
  }
}
