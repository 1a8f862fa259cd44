// ACK thinning within one read of a TUN queue: when a read finds a pure ACK of a TCP flow with a later
// segment of the same flow behind it that acknowledges as much, the pure ACK says nothing the later one does
// not (a cumulative ACK covers it), so only the later one goes on. The packets were queued at the same
// moment and would reach the peer back to back, so the sender loses no timing it would have had. What it
// saves: each of them sealed, sent, opened and handed to the peer's TCP (docs/benchmarks.md, "ACK
// thinning"). Like CAKE's ack-filter (sch_cake.c, cake_ack_filter), but only within a batch and more
// conservative: a pure ACK is an IPv4 TCP segment without IP options, not a fragment, not ECN-marked,
// without payload, with the ACK flag alone (no reserved bits) and with no TCP options but NOP, EOL and
// timestamps (a SACK block or anything unknown keeps it). It goes when a later pure ACK of the flow
// acknowledges strictly more (a duplicate ACK or a window update stays), or when a later carrier — a
// segment of the flow (no IP options, not a fragment) with the ACK flag, without SYN, RST, URG or reserved
// bits, with a payload or a FIN — acknowledges more, or as much with a window at least as large: the
// customer's bare ACK of a handshake or of an answer, followed at once by its next request, is the common
// case (two of the seven packets a short CONNECT sends the device). Dropping a pure ACK is what a lossy
// path may do to any of them; the one signal it can take away is a duplicate ACK without SACK followed by
// data of the same flow in the same read (a sender counting duplicates then sees one fewer). Pure
// functions on packet bytes, held to the TypeScript reference (src/ack-filter.ts) by a differential fuzz
// test.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace pp {

// Packet i of n is slab[offsets[i], offsets[i + 1]). Sets drop[i] for each packet a later one in the batch
// makes redundant (and clears the rest); returns how many.
uint32_t MarkRedundantAcks(const uint8_t* slab, const uint32_t* offsets, uint32_t n, bool* drop);

}  // namespace pp
