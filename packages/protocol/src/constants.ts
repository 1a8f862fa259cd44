// Wire constants. Every number here is specified in docs/protocol.md; change both together.

/** Noise protocol name; hashed to start the chaining key (https://noiseprotocol.org/noise.html §5.2). */
export const CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_SHA256';
/** Noise prologue: binds every handshake to this protocol and version. */
export const IDENTIFIER = 'PocketProxy tunnel v1';
export const LABEL_MAC1 = 'mac1----';

export const PROTOCOL_VERSION = 1;

export const FRAME_INITIATION = 1;
export const FRAME_RESPONSE = 2;
/** Reserved for the cookie reply (MAC2 under load); not sent by v1. */
export const FRAME_COOKIE_REPLY = 3;
export const FRAME_TRANSPORT = 4;

export const KEY_LEN = 32;
export const TAG_LEN = 16;
export const MAC_LEN = 16;
export const TIMESTAMP_LEN = 12;
export const HEADER_LEN = 4; // type, version, 2 reserved zero bytes

export const INITIATION_LEN =
  HEADER_LEN + 4 + KEY_LEN + (KEY_LEN + TAG_LEN) + (TIMESTAMP_LEN + TAG_LEN) + MAC_LEN + MAC_LEN; // 148
export const INITIATION_MAC1_OFFSET = INITIATION_LEN - 2 * MAC_LEN; // 116
/**
 * A lane initiation (docs/protocol.md §3.1, "Lanes"): the same frame with a 16-byte payload, the
 * timestamp followed by the lane's number, the device's lane count and two zero bytes, all inside the AEAD.
 */
export const LANE_PAYLOAD_LEN = TIMESTAMP_LEN + 4; // 16
export const LANE_INITIATION_LEN = INITIATION_LEN + (LANE_PAYLOAD_LEN - TIMESTAMP_LEN); // 152
/** The most lanes (sessions at once) one device may hold on a relay. */
export const MAX_LANES = 16;
export const RESPONSE_LEN = HEADER_LEN + 4 + 4 + KEY_LEN + TAG_LEN + MAC_LEN + MAC_LEN; // 92
export const RESPONSE_MAC1_OFFSET = RESPONSE_LEN - 2 * MAC_LEN; // 60
export const TRANSPORT_HEADER_LEN = HEADER_LEN + 4 + 8; // 16
/** Bytes a transport frame adds to its plaintext: header + Poly1305 tag. */
export const TRANSPORT_OVERHEAD = TRANSPORT_HEADER_LEN + TAG_LEN; // 32
export const TRANSPORT_MIN_LEN = TRANSPORT_OVERHEAD;

/** TCP fallback: 2-byte big-endian length, so no frame may exceed this. */
export const MAX_FRAME_LEN = 0xffff;
export const MAX_PLAINTEXT_LEN = MAX_FRAME_LEN - TRANSPORT_OVERHEAD; // 65503

/**
 * Default tunnel MTU. 1500 underlay minus the worst supported path (IPv6 40 + TCP with options 32
 * + length prefix 2 + our 32) is 1394; 1380 fits every combination of IPv4/IPv6 x UDP/TCP with room
 * for one more small encapsulation on the carrier side. See docs/protocol.md §MTU.
 */
export const DEFAULT_TUNNEL_MTU = 1380;
/** JSON inner messages must fit one tunnel packet so they never depend on IP fragmentation. */
export const MAX_JSON_MESSAGE_LEN = DEFAULT_TUNNEL_MTU;

/** Counters are carried as u64 but kept below 2^52 so they stay exact in a JS number. */
export const COUNTER_LIMIT = 2 ** 52;

/** Replay window in packets (RFC 6479 bitmap; same size as WireGuard's). */
export const REPLAY_WINDOW = 2048;
