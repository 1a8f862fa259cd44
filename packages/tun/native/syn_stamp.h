// The original destination stamped into a TCP SYN, for OpenVPN customers whose TCP the relay carries to the
// device instead of ending it (docs/benchmarks.md, "what ending the customer's TCP on the device would
// give"): the relay DNATs the customer's flow to the connection's port on the device, reads where the
// customer was headed from conntrack and writes it into the SYN as a TCP option; the device's listener
// (TCP_SAVE_SYN) reads it back with the saved SYN. Pure functions on packet bytes (no system calls), so
// the TypeScript reference (src/syn-stamp.ts) and a differential fuzz test hold them together.
//
// The option (RFC 6994, shared experimental kind 253): kind 253, length 10, ExID 0x5050 ("PP"), the IPv4
// address (4 bytes) and port (2 bytes), network order. A SYN carries at most 40 bytes of options.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace pp {

constexpr uint8_t kStampKind = 253;
constexpr uint8_t kStampLen = 10;
constexpr uint16_t kStampExid = 0x5050;
// How much longer a stamped packet can be than the one it came from.
constexpr size_t kStampGrowth = 40;

enum StampResult : int {
  kStampNotSyn = -1,     // not an IPv4 TCP SYN without ACK (or truncated, or a fragment): left alone
  kStampMalformed = -2,  // a SYN whose TCP options cannot be read: drop it
  kStampNoRoom = -3,     // its options leave no room for ours, even without a Fast Open cookie: drop it
};

// Writes `pkt` (an IPv4 packet of `len` bytes) to `out` (room: len + kStampGrowth) with the original
// destination `addr`:`port` (network order) as the stamp option: any stamp the SYN already carried is
// replaced, NOP and EOL padding is dropped and the options are padded with EOL to a 4-byte multiple;
// lengths and both checksums are recomputed. Returns the new length, or a StampResult.
int StampSyn(const uint8_t* pkt, size_t len, uint32_t addr, uint16_t port, uint8_t* out);

// The same packet with any stamp option removed (a SYN from anywhere else must not carry one into the
// tunnel): the new length into `out` (room: len), 0 when there was none (the packet is left as it is), or
// a StampResult.
int UnstampSyn(const uint8_t* pkt, size_t len, uint8_t* out);

// The stamp of a saved SYN (TCP_SAVED_SYN: the IPv4 header and the TCP header with its options): true
// with `addr` and `port` (network order) when it carries one, false otherwise (or when malformed).
bool ReadStamp(const uint8_t* syn, size_t len, uint32_t* addr, uint16_t* port);

}  // namespace pp
