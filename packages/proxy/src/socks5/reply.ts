// Our error codes mapped to RFC 1928 §6 reply codes.
import type { PPError } from '../errors.js';

export const REP = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ATYP_NOT_SUPPORTED: 0x08,
} as const;

const TABLE: Record<string, number> = {
  PP_ERR_PROXY_FORBIDDEN_DESTINATION: REP.NOT_ALLOWED,
  // A refused customer: "connection not allowed by ruleset" is the RFC's own word for it.
  PP_ERR_PROXY_ACCESS_DENIED: REP.NOT_ALLOWED,
  // No "busy" code exists; "refused" tells a client to try later rather than that it is banned.
  PP_ERR_PROXY_TOO_MANY_CONNECTIONS: REP.CONNECTION_REFUSED,
  PP_ERR_PROXY_NETWORK_UNREACHABLE: REP.NETWORK_UNREACHABLE,
  PP_ERR_PROXY_HOST_UNREACHABLE: REP.HOST_UNREACHABLE,
  // A name that does not resolve names no reachable host.
  PP_ERR_PROXY_DNS_NOT_FOUND: REP.HOST_UNREACHABLE,
  PP_ERR_PROXY_DNS_FAILED: REP.HOST_UNREACHABLE,
  PP_ERR_PROXY_TARGET_REFUSED: REP.CONNECTION_REFUSED,
  // RFC 1928 has no "timed out" code; 0x06 is the closest and keeps timeouts apart from refusals.
  PP_ERR_PROXY_TARGET_TIMEOUT: REP.TTL_EXPIRED,
  PP_ERR_PROXY_SOCKS_COMMAND_UNSUPPORTED: REP.COMMAND_NOT_SUPPORTED,
  PP_ERR_PROXY_SOCKS_ATYP_UNSUPPORTED: REP.ATYP_NOT_SUPPORTED,
};

export function replyCodeFor(err: PPError): number {
  return TABLE[err.code] ?? REP.GENERAL_FAILURE;
}
