// See ack_filter.h.
#include "ack_filter.h"

#include <string.h>

namespace pp {

namespace {

struct PureAck {
  uint8_t key[12];  // source, destination, source port, destination port
  uint32_t ack;
};

// True when p[0, len) is a pure ACK as ack_filter.h defines it, with its flow and acknowledgement number.
bool ReadPureAck(const uint8_t* p, size_t len, PureAck* out) {
  if (len < 40 || p[0] != 0x45 || (p[1] & 0x03) != 0 || p[9] != 6) return false;
  const size_t total = (size_t{p[2]} << 8) | p[3];
  if (total != len || (p[6] & 0x3f) != 0 || p[7] != 0) return false;  // MF or a fragment offset
  const uint8_t* t = p + 20;
  const size_t doff = static_cast<size_t>(t[12] >> 4) * 4;
  if (doff < 20 || 20 + doff != len || (t[12] & 0x0f) != 0 || t[13] != 0x10) return false;
  for (size_t o = 20; o < doff;) {
    const uint8_t kind = t[o];
    if (kind == 0) break;  // EOL: the rest is padding
    if (kind == 1) {
      o++;
      continue;
    }
    if (kind != 8 || o + 10 > doff || t[o + 1] != 10) return false;  // only timestamps
    o += 10;
  }
  memcpy(out->key, p + 12, 8);
  memcpy(out->key + 8, t, 4);
  out->ack = (uint32_t{t[8]} << 24) | (uint32_t{t[9]} << 16) | (uint32_t{t[10]} << 8) | t[11];
  return true;
}

}  // namespace

uint32_t MarkRedundantAcks(const uint8_t* slab, const uint32_t* offsets, uint32_t n, bool* drop) {
  // From the newest back: the highest acknowledgement seen later in the batch, per flow. A batch holds at
  // most a few flows' ACKs, so a short list searched linearly does; when it is full, older ACKs of flows
  // not in it simply stay.
  constexpr uint32_t kFlows = 32;
  PureAck later[kFlows];
  uint32_t flows = 0, dropped = 0;
  for (uint32_t i = n; i-- > 0;) {
    drop[i] = false;
    PureAck a;
    if (!ReadPureAck(slab + offsets[i], offsets[i + 1] - offsets[i], &a)) continue;
    uint32_t f = 0;
    while (f < flows && memcmp(later[f].key, a.key, sizeof a.key) != 0) f++;
    if (f == flows) {
      if (flows < kFlows) later[flows++] = a;
      continue;
    }
    const int32_t ahead = static_cast<int32_t>(later[f].ack - a.ack);
    if (ahead > 0) {
      drop[i] = true;
      dropped++;
    } else {
      later[f].ack = a.ack;  // this one acknowledges as much or more (reordered): the bar for older ones
    }
  }
  return dropped;
}

}  // namespace pp
