// Error registry of @pocketproxy/proxy. Codes are stable and never reused.
//
// `status` is the HTTP status the HTTP proxy answers with (README "Failure responses"); the SOCKS5
// server maps the same codes to RFC 1928 §6 reply codes in socks5/reply.ts. Keep the two tables and
// packages/proxy/README.md in step (test/readme.test.ts checks the README).
import { defineErrors, errorFactory, PPError } from '@pocketproxy/errors';

export const PROXY_ERRORS = defineErrors('proxy', {
  // Client side: what the customer sent.
  PP_ERR_PROXY_BAD_REQUEST: { status: 400, message: 'malformed request: {reason}' },
  PP_ERR_PROXY_HEAD_TOO_LARGE: { status: 431, message: 'request head exceeds {limit}' },
  PP_ERR_PROXY_UNSUPPORTED_SCHEME: {
    status: 400,
    message: 'absolute-form scheme {scheme} is not supported (use CONNECT)',
  },
  PP_ERR_PROXY_AUTH_REQUIRED: { status: 407, message: 'proxy credentials required' },
  PP_ERR_PROXY_AUTH_FAILED: { status: 407, message: 'proxy credentials rejected' },
  PP_ERR_PROXY_AUTH_UNAVAILABLE: { status: 500, message: 'credential check failed' },
  PP_ERR_PROXY_HANDSHAKE_TIMEOUT: { status: 408, message: 'handshake not completed within {ms} ms' },
  // Destination policy.
  PP_ERR_PROXY_FORBIDDEN_DESTINATION: { status: 403, message: 'destination {host} is not allowed' },
  // Name resolution. 503 follows Squid's ERR_DNS_FAIL so "no such name" differs from "refused".
  PP_ERR_PROXY_DNS_NOT_FOUND: { status: 503, message: 'name {host} does not resolve' },
  PP_ERR_PROXY_DNS_FAILED: { status: 503, message: 'name resolution for {host} failed' },
  // Connecting to the target (proxy-chain style: one code per errno family).
  PP_ERR_PROXY_TARGET_REFUSED: { status: 502, message: 'target {host}:{port} refused the connection' },
  PP_ERR_PROXY_TARGET_RESET: { status: 502, message: 'target {host}:{port} reset the connection' },
  PP_ERR_PROXY_TARGET_TIMEOUT: { status: 504, message: 'target {host}:{port} did not answer in time' },
  PP_ERR_PROXY_NETWORK_UNREACHABLE: { status: 502, message: 'network unreachable for {host}:{port}' },
  PP_ERR_PROXY_HOST_UNREACHABLE: { status: 502, message: 'host {host}:{port} unreachable' },
  PP_ERR_PROXY_UPSTREAM_FAILED: { status: 502, message: 'connecting to {host}:{port} failed' },
  PP_ERR_PROXY_BAD_UPSTREAM_RESPONSE: { status: 502, message: 'target sent an invalid response' },
  // SOCKS5 specifics (RFC 1928).
  PP_ERR_PROXY_SOCKS_BAD_VERSION: { status: 400, message: 'SOCKS version {version} is not 5' },
  PP_ERR_PROXY_SOCKS_COMMAND_UNSUPPORTED: { status: 400, message: 'SOCKS command {cmd} is not supported' },
  PP_ERR_PROXY_SOCKS_ATYP_UNSUPPORTED: { status: 400, message: 'SOCKS address type {atyp} is not supported' },
  PP_ERR_PROXY_SOCKS_NO_METHOD: { status: 407, message: 'no acceptable SOCKS authentication method' },
  PP_ERR_PROXY_UDP_MALFORMED: { status: 400, message: 'malformed SOCKS5 UDP datagram: {reason}' },
  // TLS peek.
  PP_ERR_PROXY_TLS_MALFORMED: { status: 400, message: 'malformed TLS ClientHello: {reason}' },
  // connectVia: the next proxy answered CONNECT with a failure.
  PP_ERR_PROXY_UPSTREAM_REJECTED: { status: 502, message: 'upstream proxy answered {status} ({code})' },
  // Refusals the app returns as Principal.deny (credentials right, customer refused).
  PP_ERR_PROXY_ACCESS_DENIED: { status: 403, message: 'access denied: {reason}' },
  PP_ERR_PROXY_TOO_MANY_CONNECTIONS: { status: 503, message: 'too many connections (limit {limit})' },
});

export type ProxyErrorCode = Exclude<keyof typeof PROXY_ERRORS, '__area'>;
export const proxyError = errorFactory<ProxyErrorCode>(PROXY_ERRORS);
export { PPError };
