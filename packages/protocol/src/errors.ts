import { defineErrors, errorFactory } from '@pocketproxy/errors';

// Statuses follow the HTTP meaning the app would give the same situation if it surfaced it:
// malformed input 400, authentication 401, size 413, no usable session 503.
export const TUNNEL_ERRORS = defineErrors('tunnel', {
  PP_ERR_TUNNEL_KEY_INVALID: { status: 400, message: 'invalid {what}: {reason}' },
  PP_ERR_TUNNEL_FRAME_MALFORMED: { status: 400, message: 'malformed tunnel frame: {reason}' },
  PP_ERR_TUNNEL_FRAME_TYPE: { status: 400, message: 'unknown tunnel frame type {type}' },
  PP_ERR_TUNNEL_FRAME_VERSION: { status: 400, message: 'unsupported tunnel protocol version {version}' },
  PP_ERR_TUNNEL_INNER_MALFORMED: { status: 400, message: 'malformed inner message: {reason}' },
  PP_ERR_TUNNEL_INNER_TYPE: { status: 400, message: 'unknown inner message type {type}' },
  PP_ERR_TUNNEL_MESSAGE_TOO_LARGE: {
    status: 413,
    message: '{what} of {size} bytes exceeds the limit of {limit} bytes',
  },
  PP_ERR_TUNNEL_TCP_FRAME_LENGTH: {
    status: 400,
    message: 'TCP stream carries a frame of length {length}; valid lengths are {min}..{max}',
  },
  PP_ERR_TUNNEL_DH_FAILED: { status: 401, message: 'X25519 agreement failed (low-order or invalid public key)' },
  PP_ERR_TUNNEL_NO_SESSION: { status: 503, message: 'no established tunnel session for {peer}' },
  PP_ERR_TUNNEL_COUNTER_EXHAUSTED: {
    status: 503,
    message: 'session send counter exhausted; a new handshake is required',
  },
  PP_ERR_TUNNEL_CONFIG_INVALID: { status: 500, message: 'invalid tunnel configuration: {reason}' },
});
export type TunnelErrorCode = Exclude<keyof typeof TUNNEL_ERRORS, '__area'>;
export const tunnelError = errorFactory(TUNNEL_ERRORS);
