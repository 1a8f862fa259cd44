// CarryMss: see carry_mss.h.
#include "carry_mss.h"

#include <string.h>

namespace pp {

CarryMss::CarryMss(uint16_t max_seg) : max_seg_(max_seg), slots_(new Slot[kSlots]()) {}

size_t CarryMss::Index(uint32_t cust, uint16_t cust_port, uint32_t dev, uint16_t dev_port) {
  // A multiply-xorshift mix of the 12 bytes; the slot count is a power of two.
  uint64_t h = (static_cast<uint64_t>(cust) << 32 | dev) * 0x9e3779b97f4a7c15ull;
  h ^= (static_cast<uint64_t>(cust_port) << 16 | dev_port) * 0xc2b2ae3d27d4eb4full;
  h ^= h >> 29;
  return static_cast<size_t>(h & (kSlots - 1));
}

void CarryMss::Record(uint32_t cust, uint16_t cust_port, uint32_t dev, uint16_t dev_port, uint16_t mss) {
  Slot& s = slots_[Index(cust, cust_port, dev, dev_port)];
  s.cust = cust;
  s.dev = dev;
  s.cust_port = cust_port;
  s.dev_port = dev_port;
  s.mss = mss >= 536 ? mss : 0;
}

uint16_t CarryMss::SegmentSize(const uint8_t* ip, size_t iphl, size_t thl, uint16_t gso_size) const {
  if (thl < 20) return gso_size;
  uint32_t dev, cust;
  uint16_t dev_port, cust_port;
  memcpy(&dev, ip + 12, 4);
  memcpy(&cust, ip + 16, 4);
  memcpy(&dev_port, ip + iphl, 2);
  memcpy(&cust_port, ip + iphl + 2, 2);
  const Slot& s = slots_[Index(cust, cust_port, dev, dev_port)];
  if (s.mss == 0 || s.cust != cust || s.dev != dev || s.cust_port != cust_port || s.dev_port != dev_port)
    return gso_size;
  // The MSS counts TCP options with the payload (RFC 6691): this flow's options come off it.
  const size_t mss = s.mss < max_seg_ ? s.mss : max_seg_;
  const size_t options = thl - 20;
  if (mss <= options) return gso_size;
  const size_t want = mss - options;
  // Only a packet that stays more than one segment at the new size (its IPv4 total length is set).
  const size_t total = static_cast<size_t>(ip[2]) << 8 | ip[3];
  const size_t payload = total > iphl + thl ? total - iphl - thl : 0;
  return want > gso_size && want < payload ? static_cast<uint16_t>(want) : gso_size;
}

}  // namespace pp
