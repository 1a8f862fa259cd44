// The segment size of OpenVPN customers' TCP carried to their devices (syn_stamp.h). A carried flow's
// segments are cut by the device to fit the device tunnel (its MSS is the tunnel MTU - 40, 1340 by
// default), but the customer's own SYN asked for more (~1400 behind OpenVPN's mssfix on an IPv4
// underlay) and the path from the relay to the customer is the OpenVPN TUN's. The relay's writes to
// its TUN glue a flow's segments into one super-packet (offload.h Coalescer); this table tells the
// Coalescer to have the kernel cut it again at the customer's size on the way to the OpenVPN TUN:
// fewer, fuller packets through the relay's openvpn and the customer's, each of which costs them
// about as much as its bytes do, and fewer ACKs back (docs/benchmarks.md "the customer's own MSS").
//
// What the customer's SYN said before the relay's MSS clamp is kept by the firewall in the flow's
// conntrack mark (the carry table: `ct mark set tcp option maxseg size`) and read with the stamp's
// conntrack question (conntrack.h); StampSyns records it here for the flow. Direct-mapped by the
// flow's addresses and ports: a flow whose slot another took is cut as the device cut it, as before.
// Nothing here is trusted for more than a size: at most `max_seg` (the OpenVPN TUN's MTU - 40, so a
// packet never outgrows that TUN), never below what the device sent, and only for the flow that owns
// the slot (both addresses and ports compared).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <memory>

namespace pp {

class CarryMss {
 public:
  static constexpr size_t kSlots = 8192;  // 16 bytes each
  // max_seg: the largest TCP payload plus options a packet towards a customer may carry (the OpenVPN
  // TUN's MTU - 40 for IPv4), 536-65495.
  explicit CarryMss(uint16_t max_seg);
  uint16_t max_seg() const { return max_seg_; }
  // The customer's MSS for the flow cust:cust_port -> dev:dev_port (addresses and ports in network
  // order, as in the packet). An MSS below 536 is not kept (nothing to gain; RFC 9293's default).
  void Record(uint32_t cust, uint16_t cust_port, uint32_t dev, uint16_t dev_port, uint16_t mss);
  // For a super-packet from a device to a customer (IPv4 header of `iphl` bytes with its total length,
  // then a TCP header of `thl`): the larger payload size the customer takes when its flow is known and
  // the packet stays more than one segment at it, else `gso_size` (Coalescer::Sizer).
  uint16_t SegmentSize(const uint8_t* ip, size_t iphl, size_t thl, uint16_t gso_size) const;
  // Coalescer::Sizer over a CarryMss.
  static uint16_t Sizer(void* self, const uint8_t* ip, size_t iphl, size_t thl, uint16_t gso_size) {
    return static_cast<const CarryMss*>(self)->SegmentSize(ip, iphl, thl, gso_size);
  }

 private:
  struct Slot {
    uint32_t cust = 0, dev = 0;
    uint16_t cust_port = 0, dev_port = 0, mss = 0, unused = 0;
  };
  static size_t Index(uint32_t cust, uint16_t cust_port, uint32_t dev, uint16_t dev_port);
  uint16_t max_seg_;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace pp
