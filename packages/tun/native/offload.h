// TUN offloads (IFF_VNET_HDR): the kernel and this process exchange TCP "super-packets" of up to
// 64 KB instead of one MTU-sized packet per read()/write(), each prefixed by a struct
// virtio_net_hdr. Reading, the kernel hands us what its TCP stack built with TSO and we cut it
// into wire-sized IP packets ourselves (Segment); writing, we glue consecutive in-order segments
// of one TCP flow back into one super-packet (Coalescer) so the kernel forwards and receives one
// skb instead of dozens. This is the per-packet cost the issue measured: every userspace tunnel
// that moves one packet per system call stops near 0.63 Gbit/s here.
//
// Pure byte manipulation, no N-API, no system calls: unit-tested and fuzzed through the addon's
// offloadSegment / offloadCoalesce exports.
//   virtio_net_hdr: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html §5.1.6
//   kernel side:    include/linux/virtio_net.h (virtio_net_hdr_to_skb / _from_skb)
#pragma once
#include <stddef.h>
#include <stdint.h>

#include <vector>

namespace pp {

constexpr size_t kVnetHdrLen = 10;  // struct virtio_net_hdr (no num_buffers)
constexpr uint8_t kVnetFlagNeedsCsum = 1;
constexpr uint8_t kGsoNone = 0, kGsoTcpV4 = 1, kGsoUdp = 3, kGsoTcpV6 = 4, kGsoUdpL4 = 5, kGsoEcn = 0x80;
// Worst case growth of Segment: a 64 KB packet cut at the smallest gso_size we accept.
constexpr uint16_t kMinGsoSize = 64;
constexpr size_t kMaxSegments = 65535 / kMinGsoSize + 1;
constexpr size_t kMaxSegmentOutput = 65535 + kMaxSegments * (60 + 60);

struct VnetHdr {
  uint8_t flags, gso_type;
  uint16_t hdr_len, gso_size, csum_start, csum_offset;
};
VnetHdr ReadVnetHdr(const uint8_t* p);
void WriteVnetHdr(uint8_t* p, const VnetHdr& h);

// Ones' complement sum helpers (RFC 1071), little-endian host.
uint32_t CsumPartial(const uint8_t* p, size_t len, uint32_t sum);
uint16_t CsumFold(uint32_t sum);

// Turns one packet read from a vnet-hdr TUN (`hdr` + `pkt`) into plain IP packets with complete
// checksums, appended to `out` at `out_len` (room: kMaxSegmentOutput); each packet's end offset is
// pushed onto `ends`. Returns the number of packets produced, or -1 for a header that does not
// describe `pkt` (dropped; nothing appended).
int Segment(const VnetHdr& hdr, const uint8_t* pkt, size_t len, uint8_t* out, size_t out_len, std::vector<uint32_t>& ends);

// Glues in-order TCP segments of a flow (same addresses, ports, ACK, options, IP fields) into
// one GSO packet. Add() packets in the order they should reach the kernel; each emitted packet is
// handed to `sink` as (vnet header + packet) bytes, in an order that keeps every flow's packets
// in sequence. Flush() at the end of a batch.
class Coalescer {
 public:
  // sink(hdr, pkt, len, segs): a 10-byte vnet header and the IP packet it describes, which carries
  // `segs` of the packets given to Add().
  using Sink = void (*)(void* ctx, const uint8_t* hdr, const uint8_t* pkt, size_t len, uint32_t segs);
  Coalescer(Sink sink, void* ctx);
  void Add(const uint8_t* pkt, size_t len);
  void Flush();
  // sizer(ctx, ip, iphl, thl, gso_size): the payload size the kernel should cut an emitted IPv4 super-packet
  // at (`ip`: its IP header of `iphl` bytes, then a TCP header of `thl`), for a flow whose receiver takes
  // larger segments than it was sent (carry_mss.h). Only a larger size that still leaves the packet more than
  // one segment is taken; the sizer answers for the output interface's MTU. nullptr (the default): none.
  using Sizer = uint16_t (*)(void* ctx, const uint8_t* ip, size_t iphl, size_t thl, uint16_t gso_size);
  void SetSizer(Sizer sizer, void* ctx) {
    sizer_ = sizer;
    sizer_ctx_ = ctx;
  }

 private:
  struct Item {
    bool v6 = false;
    uint8_t key[36];  // addresses + ports: KeyLen(v6) bytes
    uint32_t next_seq = 0, ack = 0;
    uint16_t gso_size = 0;
    uint16_t segs = 0;
    bool closed = false;  // last segment shorter than gso_size, or PSH: nothing may follow
    size_t hdr_len = 0;   // IP + TCP header bytes (the IP header is IpLen(v6): no v4 options)
    size_t len = 0;       // packet bytes in buf
    uint8_t buf[65535];
  };
  static constexpr int kItems = 8;
  void Emit(Item& it);
  void EmitRaw(const uint8_t* pkt, size_t len);
  void Remove(int i);
  Sink sink_;
  void* ctx_;
  Sizer sizer_ = nullptr;
  void* sizer_ctx_ = nullptr;
  Item items_[kItems];
  int order_[kItems];
  int used_ = 0;
};

}  // namespace pp
