// Error registry of the lab. Codes are stable and never reused (see @pocketproxy/errors).
import { defineErrors, errorFactory } from '@pocketproxy/errors';

export const LAB_ERRORS = defineErrors('lab', {
  PP_ERR_LAB_NOT_ROOT: {
    status: 500,
    message: 'the network lab needs root (uid 0) to create namespaces; running as uid {uid}',
  },
  PP_ERR_LAB_COMMAND_FAILED: { status: 500, message: 'lab command failed in {ns}: {cmd} (exit {code}): {stderr}' },
  PP_ERR_LAB_TIMEOUT: { status: 500, message: 'lab timed out after {ms} ms: {what}' },
  PP_ERR_LAB_UNKNOWN_NS: { status: 500, message: 'no namespace {ns} in lab {prefix}' },
  PP_ERR_LAB_BAD_DEVICE: { status: 500, message: 'device number {n} is outside 1..{max}' },
  PP_ERR_LAB_BAD_PREFIX: { status: 500, message: 'lab prefix {prefix} must match pp[0-9a-f]{4}' },
  PP_ERR_LAB_PREFIX_IN_USE: { status: 500, message: 'lab prefix {prefix} is already in use (namespaces exist)' },
  PP_ERR_LAB_NO_CARRIER_ADDRESS: { status: 500, message: 'carrier namespace {ns} has no public address on {iface}' },
  PP_ERR_LAB_SERVICE_START: { status: 500, message: 'lab service {service} did not start: {reason}' },
  PP_ERR_LAB_PROCESS_EXITED: {
    status: 500,
    message: 'process {cmd} (pid {pid}) exited with {status} before printing {pattern}',
  },
  PP_ERR_LAB_TORN_DOWN: { status: 500, message: 'lab {prefix} is already torn down' },
  PP_ERR_LAB_BAD_ARGS: { status: 400, message: 'bad arguments: {reason}' },
});

export type LabErrorCode = Exclude<keyof typeof LAB_ERRORS, '__area'>;
export const labError = errorFactory<LabErrorCode>(LAB_ERRORS);
