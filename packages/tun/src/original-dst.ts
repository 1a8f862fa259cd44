// The destination a TCP connection was headed to before nftables REDIRECT sent it to our
// transparent proxy (:12345), read from conntrack via SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST.
//
//   customer 10.9.0.6 -> 93.184.216.34:443 --nft redirect--> relay :12345 --getOriginalDst--> 93.184.216.34:443
import type { Server, Socket } from 'node:net';
import { loadAddon, type NativeSystemError } from './native.js';
import { fail, reasonOf } from './errors.js';

export interface OriginalDst {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

/**
 * Anything holding a libuv TCP handle: net.Socket, net.Server, or @pocketproxy/proxy's LeanSocket
 * and LeanServer (which keep Node's TCP handle under the same name).
 */
export type FdOwner = Socket | Server | { readonly _handle?: unknown };

/** The fd behind a net.Socket or listening net.Server; Node keeps it on the (undocumented, stable since 0.x) TCP handle. */
export function socketFd(socket: FdOwner): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw fail('PP_ERR_TUN_NO_FD');
  return fd;
}

/**
 * Throws PP_ERR_TUN_NO_ORIGINAL_DST when conntrack has no entry for the connection (ENOENT: not
 * NATed and nf_conntrack not tracking it). A connection that was not redirected but is tracked
 * answers its own local address.
 */
export function getOriginalDst(socket: FdOwner): OriginalDst {
  const fd = socketFd(socket);
  try {
    return loadAddon().getOriginalDst(fd);
  } catch (e) {
    if ((e as NativeSystemError).syscall !== undefined)
      throw fail('PP_ERR_TUN_NO_ORIGINAL_DST', { reason: reasonOf(e) }, { cause: e });
    throw e;
  }
}
