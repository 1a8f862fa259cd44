// See ack_filter.h.
#include "ack_filter.h"

#include <string.h>

namespace pp {

namespace {

// What a TCP segment of one read says about its flow's acknowledgements.
struct Seg {
  enum Kind { kNone, kPure, kCarrier } kind = kNone;
  uint8_t key[12];  // source, destination, source port, destination port
  uint32_t ack;
  uint16_t win;  // the raw window field (one flow's scale is fixed at its SYN)
};

// Reads p[0, len): a pure ACK as ack_filter.h defines it; a carrier (an IPv4 TCP segment without IP
// options, not a fragment, with the ACK flag, without SYN, RST, URG or reserved bits, and with a payload or
// a FIN: it acknowledges as a pure ACK does); or neither.
Seg ReadSeg(const uint8_t* p, size_t len) {
  Seg out;
  if (len < 40 || p[0] != 0x45 || p[9] != 6) return out;
  const size_t total = (size_t{p[2]} << 8) | p[3];
  if (total != len || (p[6] & 0x3f) != 0 || p[7] != 0) return out;  // MF or a fragment offset
  const uint8_t* t = p + 20;
  const size_t doff = static_cast<size_t>(t[12] >> 4) * 4;
  if (doff < 20 || 20 + doff > len || (t[12] & 0x0f) != 0) return out;
  const uint8_t flags = t[13];
  if ((flags & 0x10) == 0 || (flags & 0x26) != 0) return out;  // no ACK; SYN, RST or URG
  memcpy(out.key, p + 12, 8);
  memcpy(out.key + 8, t, 4);
  out.ack = (uint32_t{t[8]} << 24) | (uint32_t{t[9]} << 16) | (uint32_t{t[10]} << 8) | t[11];
  out.win = static_cast<uint16_t>((t[14] << 8) | t[15]);
  if (20 + doff < len || (flags & 0x01) != 0) {
    out.kind = Seg::kCarrier;
    return out;
  }
  if (flags != 0x10 || (p[1] & 0x03) != 0) return out;  // PSH, ECE or CWR alone; an ECN mark
  for (size_t o = 20; o < doff;) {
    const uint8_t kind = t[o];
    if (kind == 0) break;  // EOL: the rest is padding
    if (kind == 1) {
      o++;
      continue;
    }
    if (kind != 8 || o + 10 > doff || t[o + 1] != 10) return out;  // only timestamps
    o += 10;
  }
  out.kind = Seg::kPure;
  return out;
}

}  // namespace

uint32_t MarkRedundantAcks(const uint8_t* slab, const uint32_t* offsets, uint32_t n, bool* drop) {
  // From the newest back, per flow: the highest acknowledgement seen later in the batch (`bar`), and the
  // largest window of a later carrier that acknowledges exactly that much (`win`, -1: none). A batch holds
  // few flows, so a short list searched linearly does; when it is full, packets of flows not in it stay.
  struct Flow {
    uint8_t key[12];
    uint32_t bar;
    int32_t win;
  };
  constexpr uint32_t kFlows = 32;
  Flow later[kFlows];
  uint32_t flows = 0, dropped = 0;
  for (uint32_t i = n; i-- > 0;) {
    drop[i] = false;
    const Seg a = ReadSeg(slab + offsets[i], offsets[i + 1] - offsets[i]);
    if (a.kind == Seg::kNone) continue;
    const int32_t win = a.kind == Seg::kCarrier ? a.win : -1;
    uint32_t f = 0;
    while (f < flows && memcmp(later[f].key, a.key, sizeof a.key) != 0) f++;
    if (f == flows) {
      if (flows < kFlows) {
        memcpy(later[flows].key, a.key, sizeof a.key);
        later[flows].bar = a.ack;
        later[flows].win = win;
        flows++;
      }
      continue;
    }
    Flow& l = later[f];
    const int32_t ahead = static_cast<int32_t>(l.bar - a.ack);
    // A pure ACK goes when a later segment acknowledges more, or as much with a carrier's window at least
    // as large (a later pure ACK of the same number is a duplicate ACK: both stay).
    if (a.kind == Seg::kPure && (ahead > 0 || (ahead == 0 && l.win >= a.win))) {
      drop[i] = true;
      dropped++;
    } else if (ahead < 0) {
      l.bar = a.ack;  // this one acknowledges more (reordered): the bar for older ones
      l.win = win;
    } else if (ahead == 0 && win > l.win) {
      l.win = win;
    }
  }
  return dropped;
}

}  // namespace pp
