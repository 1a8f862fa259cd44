// TCP_QUICKACK and TCP_CORK on a Node socket or listening server (Node exposes neither). Used to
// spend fewer segments on short proxied connections; see native/tcp_flags.cc for what each does.
//
// Best effort by design: a segment saved is an optimisation, so a socket without an fd (already
// closed, or not TCP) or a failing setsockopt answers false instead of throwing.
import type { Server, Socket } from 'node:net';
import { loadAddon } from './native.js';

export type TcpFlag = 'quickack' | 'cork';

/** Sets `flag` on the socket (or on a listening server: inherited by connections it accepts). */
export function setTcpFlag(target: Socket | Server, flag: TcpFlag, on: boolean): boolean {
  const fd = (target as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return false;
  try {
    loadAddon().setTcpFlag(fd, flag, on);
    return true;
  } catch {
    return false;
  }
}
