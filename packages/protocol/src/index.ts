// @pocketproxy/protocol — the device tunnel wire protocol, sans-IO: keys, the Noise_IKpsk2
// handshake, transport sessions (seal/open, replay window, rekey hints), the outer and inner frame
// codecs, the TCP fallback framer, and the initiator/responder state machines with tick(now).
// No sockets, no timers, no product knowledge: callers pass bytes and `now` in, get bytes and
// events out. Spec: docs/protocol.md. Also the control plane's Ed25519 server key that endorses relay
// keys, whose fingerprint a pairing code carries (endorsement.ts, docs/api.md).
// Imported by apps/server (tunnel, push API), apps/agent, and anything implementing the device side.
// Imports only node:crypto and @pocketproxy/errors.
export * from './constants.js';
export { TUNNEL_ERRORS, tunnelError, type TunnelErrorCode } from './errors.js';
export { generateKeyPair, generatePsk, publicKeyFromPrivate, encodeKey, decodeKey, type KeyPair } from './keys.js';
export {
  serverKeyFromSeed,
  serverKeyFingerprint,
  relayKeyStatement,
  checkRelayKeyEndorsement,
  FINGERPRINT_PATTERN,
  type ServerKey,
} from './endorsement.js';
export { tai64n, nextTimestamp } from './timestamp.js';
export {
  createIdentity,
  mac1KeyFor,
  createInitiation,
  consumeInitiation,
  createResponse,
  consumeResponse,
  isLane,
  SOLE_LANE,
  type Lane,
  type StaticIdentity,
  type TransportKeys,
  type InitiatorHandshake,
  type ConsumedInitiation,
  type CreateInitiationInput,
  type CreateResponseInput,
  type InitiationDrop,
  type ResponseDrop,
} from './handshake.js';
export {
  decodeFrame,
  checkHeader,
  encodeInitiation,
  encodeResponse,
  readCounter,
  writeCounter,
  type OuterFrame,
  type InitiationFrame,
  type ResponseFrame,
  type TransportFrame,
} from './messages.js';
export { ReplayWindow } from './replay.js';
export {
  TransportSession,
  OPEN_MALFORMED,
  OPEN_REPLAY,
  OPEN_DECRYPT,
  type OpenFailure,
  type ByteBatch,
} from './session.js';
export { nodeAead, type AeadProvider, type AeadKey } from './aead.js';
export {
  INNER_COMMAND,
  INNER_ACK,
  INNER_CONTROL,
  ACK_STATUSES,
  decodeInner,
  isIpPacket,
  encodeCommand,
  encodeAck,
  encodeControl,
  encodeJsonMessage,
  type CommandPush,
  type CommandAck,
  type AckStatus,
  type ControlMessage,
  type JsonMessage,
  type InnerMessage,
} from './inner.js';
export { TcpFrameDecoder, encodeTcpFrame, tcpLengthPrefix, TCP_MIN_FRAME_LEN } from './tcp-framer.js';
export { DEFAULT_TIMERS, resolveTimers, type TunnelTimers } from './timers.js';
export type { DropReason, RandomBytes } from './peer-common.js';
export {
  Initiator,
  createInitiator,
  type InitiatorOptions,
  type InitiatorEvent,
  type InitiatorReceive,
  type InitiatorState,
  type HandshakeReason,
} from './initiator.js';
export {
  Responder,
  ResponderPeer,
  LaneSessions,
  flowLane,
  createResponder,
  type ResponderOptions,
  type ResponderEvent,
  type ResponderReceive,
  type PeerLookup,
  type PeerDownReason,
  type Outbound,
} from './responder.js';
