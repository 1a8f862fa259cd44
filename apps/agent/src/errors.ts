// Error registry of the device agent. Codes are stable and never reused.
import { defineErrors, errorFactory } from '@pocketproxy/errors';

export const AGENT_ERRORS = defineErrors('agent', {
  PP_ERR_AGENT_USAGE: { status: 400, message: '{reason}' },
  PP_ERR_AGENT_STATE_MISSING: { status: 404, message: 'no state file at {path}: run `pocketproxy-agent pair` first' },
  PP_ERR_AGENT_STATE_INVALID: { status: 500, message: 'state file {path} is invalid: {reason}' },
  PP_ERR_AGENT_API: { status: 502, message: '{method} {path} failed: {reason}' },
  PP_ERR_AGENT_ROTATE_FAILED: { status: 502, message: 'rotation failed: {reason}' },
  PP_ERR_AGENT_COMMAND_FAILED: { status: 502, message: 'command {command} failed: {reason}' },
  PP_ERR_AGENT_NOT_SUPPORTED: { status: 400, message: '{what} is not supported by driver {driver}' },
  PP_ERR_AGENT_NOT_ALLOWED: { status: 403, message: '{what} not allowed' },
  PP_ERR_AGENT_INSECURE_SERVER: {
    status: 400,
    message:
      '{server} is plain http and not loopback: the device token, keys and credentials would cross the network ' +
      'readable and alterable; use https, or pass --insecure-http (a lab)',
  },
  PP_ERR_AGENT_SERVER_KEY_MISMATCH: {
    status: 502,
    message:
      'the server answered with a server key whose fingerprint is {got}, not the pairing fingerprint {expected}: ' +
      'something between this device and {server} may be posing as it; nothing was saved',
  },
  PP_ERR_AGENT_TOOL_TIMEOUT: {
    status: 504,
    message: '{command} did not answer within {ms} ms (stopped; the device is reported, not waited for)',
  },
  PP_ERR_AGENT_TOOL_FAILED: { status: 502, message: '{command} failed: {reason}' },
  PP_ERR_AGENT_TOOL_OUTPUT: { status: 502, message: '{command} answered something unexpected: {reason}' },
  PP_ERR_AGENT_ADB_BAD_SERIAL: {
    status: 400,
    message:
      'adb serial {serial} is not a plain serial (letters, digits, . _ : -, at most 64, not starting with -): device ignored',
  },
  PP_ERR_AGENT_ADB_DEVICE_STATE: { status: 409, message: 'phone {serial} is {state}: {hint}' },
  PP_ERR_AGENT_MODEM_BAD_ID: { status: 400, message: 'modem index {id} is not a number ModemManager gave' },
  PP_ERR_AGENT_RELAY_KEY_UNENDORSED: {
    status: 502,
    message:
      'relay key {key} is not endorsed by the server key this device paired with (fingerprint {fingerprint}): refusing to use it',
  },
});

export type AgentErrorCode = keyof typeof AGENT_ERRORS;
export const agentError = errorFactory(AGENT_ERRORS);
