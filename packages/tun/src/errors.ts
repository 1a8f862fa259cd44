// Error registry of @pocketproxy/tun. Codes are stable and never reused.
// 5xx: the host refused (no addon built, no /dev/net/tun, not root, ...); 4xx: a bad argument.
import { defineErrors, errorFactory } from '@pocketproxy/errors';

export const ERRORS = defineErrors('tun', {
  PP_ERR_TUN_ADDON_MISSING: {
    status: 500,
    message: 'native addon not found at {path}: run npm run build -w @pocketproxy/tun',
  },
  PP_ERR_TUN_OPEN_FAILED: { status: 500, message: 'cannot open TUN device {name}: {reason}' },
  PP_ERR_TUN_CLOSED: { status: 500, message: '{what} is closed' },
  PP_ERR_TUN_INVALID_CONFIG: { status: 400, message: 'invalid TUN config: {field} {reason}' },
  PP_ERR_TUN_COMMAND_FAILED: { status: 500, message: 'command failed: {command}: {reason}' },
  PP_ERR_TUN_NO_FD: { status: 500, message: 'socket has no file descriptor (not connected, or not a TCP socket)' },
  PP_ERR_TUN_NO_ORIGINAL_DST: { status: 500, message: 'no original destination for this connection: {reason}' },
  PP_ERR_TUN_UDP_BIND_FAILED: { status: 500, message: 'cannot bind UDP socket to {address}:{port}: {reason}' },
  PP_ERR_TUN_INVALID_DATAGRAM: { status: 400, message: 'invalid datagram: {reason}' },
  PP_ERR_TUN_IO: { status: 500, message: '{what} failed: {reason}' },
  PP_ERR_TUN_INVALID_INTERFACE: { status: 400, message: 'invalid interface name {name}: {reason}' },
  PP_ERR_TUN_BIND_DEVICE_FAILED: { status: 500, message: 'cannot bind socket to interface {name}: {reason}' },
});

export type TunErrorCode = Exclude<keyof typeof ERRORS, '__area'>;
export const fail = errorFactory<TunErrorCode>(ERRORS);

/** The message of a caught value, for the {reason} hole. */
export function reasonOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
