import { defineErrors, errorFactory } from '@pocketproxy/errors';

/** The API's stable error codes. Never reuse a code; add new ones at the end of their area. */
export const API_ERRORS = defineErrors('api', {
  PP_ERR_API_VALIDATION: { status: 400, message: 'the request is not valid: {detail}' },
  PP_ERR_API_BAD_JSON: { status: 400, message: 'the body is not valid JSON' },
  PP_ERR_API_BODY_TOO_LARGE: { status: 413, message: 'the body is larger than {limit} bytes' },
  PP_ERR_API_UNSUPPORTED_MEDIA: { status: 415, message: 'send the body as application/json' },
  PP_ERR_API_UNAUTHENTICATED: { status: 401, message: 'missing or invalid credentials' },
  PP_ERR_API_SESSION_EXPIRED: { status: 401, message: 'the session has expired; sign in again' },
  PP_ERR_API_LOGIN_FAILED: { status: 401, message: 'wrong email or password' },
  PP_ERR_API_FORBIDDEN: { status: 403, message: 'this credential may not do that' },
  PP_ERR_API_NOT_FOUND: { status: 404, message: '{what} not found' },
  PP_ERR_API_ROUTE_NOT_FOUND: { status: 404, message: 'no route {method} {url}' },
  PP_ERR_API_CONFLICT: { status: 409, message: '{detail}' },
  PP_ERR_API_RATE_LIMITED: { status: 429, message: 'too many requests; retry in {retry_s} s' },
  PP_ERR_API_PAIRING_CODE_INVALID: { status: 404, message: 'this pairing code is unknown, used or expired' },
  PP_ERR_API_PORTS_EXHAUSTED: { status: 409, message: 'no free {kind} port left in the configured range' },
  PP_ERR_API_SUBNET_EXHAUSTED: { status: 503, message: 'no free address left in the device subnet' },
  PP_ERR_API_COMMAND_STATE: { status: 409, message: 'command {id} is {status} and cannot become {next}' },
  PP_ERR_API_INTERNAL: { status: 500, message: 'internal error' },
  PP_ERR_API_UNAVAILABLE: { status: 503, message: '{detail}' },
  PP_ERR_API_OPENVPN_DISABLED: { status: 404, message: 'OpenVPN is not enabled on this server' },
  PP_ERR_API_ROTATION_TOO_SOON: {
    status: 429,
    message: 'this connection allows one rotation every {min_s} s; retry in {retry_s} s',
  },
  PP_ERR_API_COMMAND_UNSUPPORTED: {
    status: 409,
    message: "the device cannot run {type}: its agent reports only {capabilities} (its driver's command types)",
  },
  PP_ERR_API_ENROLLMENT_TOKEN_INVALID: { status: 401, message: 'this enrollment token is unknown' },
  PP_ERR_API_ENROLLMENT_TOKEN_REVOKED: { status: 403, message: 'this enrollment token was revoked' },
  PP_ERR_API_ENROLLMENT_TOKEN_EXPIRED: { status: 403, message: 'this enrollment token expired at {expires_at}' },
  PP_ERR_API_ENROLLMENT_TOKEN_EXHAUSTED: {
    status: 403,
    message: 'this enrollment token has enrolled all the {max_devices} devices it allows',
  },
  PP_ERR_API_DEVICE_ALREADY_ENROLLED: {
    status: 409,
    message: 'this farm host already has a device with hardware id {hardware_id} ({device_id})',
  },
});
export const apiError = errorFactory(API_ERRORS);
