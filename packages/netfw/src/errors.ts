// Error registry of @pocketproxy/netfw. Codes are stable and never reused.
// 4xx codes describe a bad desired state (caught before any command runs); 5xx codes describe
// the host refusing a command (nft missing, kernel without nf_tables, not root...).
import { defineErrors, errorFactory } from '@pocketproxy/errors';

export const ERRORS = defineErrors('netfw', {
  PP_ERR_NETFW_INVALID_STATE: { status: 400, message: 'invalid firewall state: {field} {reason}' },
  PP_ERR_NETFW_INVALID_PORT: { status: 400, message: 'invalid port in {field}: {value} (want an integer 1-65535)' },
  PP_ERR_NETFW_INVALID_ADDRESS: { status: 400, message: 'invalid IPv4 address in {field}: {value}' },
  PP_ERR_NETFW_INVALID_CIDR: { status: 400, message: 'invalid IPv4 CIDR in {field}: {value} ({reason})' },
  PP_ERR_NETFW_INVALID_INTERFACE: { status: 400, message: 'invalid interface name in {field}: {value}' },
  PP_ERR_NETFW_ADDRESS_OUTSIDE_SUBNET: {
    status: 400,
    message: '{field} {value} is not a usable host address of {subnet}',
  },
  PP_ERR_NETFW_DUPLICATE_PORT: { status: 409, message: 'port {port} appears more than once' },
  PP_ERR_NETFW_DUPLICATE_SOURCE: { status: 400, message: 'port {port}: allowFrom entries {a} and {b} overlap' },
  PP_ERR_NETFW_COMMAND_FAILED: { status: 500, message: 'command failed: {command} (exit {code}): {stderr}' },
  PP_ERR_NETFW_COUNTERS_UNPARSABLE: { status: 500, message: 'could not parse nft counters output: {reason}' },
});

export type NetfwErrorCode = Exclude<keyof typeof ERRORS, '__area'>;
export const fail = errorFactory<NetfwErrorCode>(ERRORS);
