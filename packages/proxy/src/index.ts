// @pocketproxy/proxy — proxy protocol servers and helpers: HTTP proxy (CONNECT + absolute-form),
// SOCKS5 (RFC 1928/1929, CONNECT + UDP ASSOCIATE), a shared SOCKS5 UDP relay port, the destination
// policy with its default dialer, and the transparent proxy's SNI/Host peek + CONNECT client.
//
// A protocol library that knows nothing of the product: callers pass `authenticate`, `dial`, a UDP
// socket factory and a logger; servers emit `connectionClosed` / `requestFailed`. Imported by the
// device agent (apps/agent) and the relay's transparent proxy (apps/server/src/tunnel/tproxy.ts).
// It imports only @pocketproxy/errors and node built-ins; never the database or the API.
export { PROXY_ERRORS, proxyError, type ProxyErrorCode } from './errors.js';
export type * from './types.js';
export { silentLogger } from './logger.js';
export {
  isForbiddenAddress,
  addressCategory,
  validatePolicy,
  ipToBytes,
  type DestinationPolicy,
  type AddressCategory,
} from './policy.js';
export {
  createPolicyDialer,
  createPolicyResolver,
  createPolicyResolveAll,
  classifyDialError,
  systemResolve,
  type PolicyDialerOptions,
  type PolicyResolverOptions,
  type Resolve,
  type ResolvedAddress,
} from './dialer.js';
export {
  createDnsCache,
  DEFAULT_DNS_CACHE_MS,
  DEFAULT_DNS_CACHE_NAMES,
  type CachedResolve,
  type DnsCacheOptions,
} from './dns-cache.js';
export { forwardEarly, relay, TAIL_MAX, TAIL_TRIES, type RelayOptions, type RelayResult } from './relay.js';
export { ConnectionMeter, MIN_BURST_BYTES, type ConnectionMeterOptions } from './limits/meter.js';
export {
  createHandshakeGuard,
  type HandshakeGuard,
  type HandshakeGuardOptions,
  type HandshakeGuardStats,
} from './limits/guard.js';
export { SLICE_BYTES } from './limits/flow.js';
export { ProxyServer, type ProxyStats } from './server-base.js';
export { createHttpProxy, type HttpProxyOptions } from './http/server.js';
export {
  FrontServer,
  FrontConnection,
  type FrontEngine,
  type FrontEvents,
  type FrontHeadEnd,
  type FrontConfig,
  type TransparentFront,
} from './front/connection.js';
export { HttpFrontConnection } from './http/front.js';
export { Socks5FrontConnection } from './socks5/front.js';
export {
  parseRequestHead,
  parseResponseHead,
  findHeadEnd,
  parseAuthority,
  MAX_HEAD_BYTES,
  MAX_HEADERS,
  type RequestHead,
  type ResponseHead,
} from './http/head.js';
export { ERROR_HEADER, REASON_HEADER } from './http/responses.js';
export { basicAuthValue, parseProxyAuthorization } from './http/basic-auth.js';
export { createSocks5Server, type Socks5Options, type Socks5UdpOptions } from './socks5/server.js';
export type { AssociationPort } from './socks5/associate.js';
export {
  parseGreeting,
  parseUserPass,
  parseRequest,
  parseReply,
  encodeReply,
  encodeAddress,
  readAddress,
  type SocksAddress,
  type Reply as Socks5Reply,
} from './socks5/wire.js';
export {
  connectViaSocks5,
  readSocks5Answers,
  socks5Hello,
  type ConnectViaSocks5Options,
  type Socks5Tunnel,
  type Socks5Answers,
} from './socks5/client.js';
export { REP as SOCKS5_REPLY, replyCodeFor } from './socks5/reply.js';
export { createUdpRelay, UdpRelay, type UdpRelayOptions, type RegisterOptions } from './udp/relay.js';
export type { UdpAssociation } from './udp/association.js';
export { parseUdpHeader, encodeUdpHeader, type UdpHeader } from './udp/datagram.js';
export { peekTarget, classifyFirstBytes, type PeekResult, type PeekOptions } from './peek/peek.js';
export { parseClientHello, type ClientHelloResult } from './peek/clienthello.js';
export { connectVia, proxyHandshake, readConnectAnswer, type ConnectViaOptions, type Tunnel } from './connect-via.js';
export type { ProxySocket, ConnectableSocket } from './socket.js';
export { LeanSocket, type LeanConnectOptions } from './lean/socket.js';
export { LeanServer, type LeanServerOptions } from './lean/server.js';
export { leanBinding } from './lean/binding.js';
export {
  createHandoff,
  type PairEngine,
  type PairEnd,
  type RelayHandoff,
  type HandoffStats,
  type HandoffRequest,
} from './lean/handoff.js';
export {
  useLeanSockets,
  leanByDefault,
  useHandoff,
  handoffByDefault,
  useFront,
  frontByDefault,
  type DefaultFront,
} from './lean/default.js';
export type { ProxyListener } from './server-base.js';
