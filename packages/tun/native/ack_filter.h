// ACK thinning within one read of a TUN queue: when a read finds several pure ACKs of one TCP flow queued
// together, the older ones say nothing the newest does not (a cumulative ACK covers them), so only the
// newest goes on. The packets were queued at the same moment and would reach the peer back to back, so
// the sender loses no timing it would have had. What it saves: each of them sealed, sent, opened and
// handed to the peer's TCP (docs/benchmarks.md, "ACK thinning"). Like CAKE's ack-filter (sch_cake.c,
// cake_ack_filter), but only within a batch and more conservative: a pure ACK is an IPv4 TCP segment
// without IP options, not a fragment, not ECN-marked, without payload, with the ACK flag alone (no
// reserved bits) and with no TCP options but NOP, EOL and timestamps (a SACK block or anything unknown
// keeps it); it goes only when a later pure ACK of the same flow acknowledges strictly more (duplicate
// ACKs and window updates stay). Pure functions on packet bytes, held to the TypeScript reference
// (src/ack-filter.ts) by a differential fuzz test.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace pp {

// Packet i of n is slab[offsets[i], offsets[i + 1]). Sets drop[i] for each packet a later one in the batch
// makes redundant (and clears the rest); returns how many.
uint32_t MarkRedundantAcks(const uint8_t* slab, const uint32_t* offsets, uint32_t n, bool* drop);

}  // namespace pp
