// TunQueue: one queue of a Linux TUN device (IFF_TUN | IFF_NO_PI, optionally IFF_MULTI_QUEUE so
// several workers can each open a queue of the same interface).
// Kernel side: https://www.kernel.org/doc/html/latest/networking/tuntap.html and
// https://elixir.bootlin.com/linux/latest/source/drivers/net/tun.c
#pragma once
#include <napi.h>

#include <sys/socket.h>
#include <sys/uio.h>

#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "carry_mss.h"
#include "conntrack.h"
#include "fd_poller.h"
#include "offload.h"

namespace pp {

class Aead;
class UdpBatch;

class TunQueue : public Napi::ObjectWrap<TunQueue>, private FdPoller {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit TunQueue(const Napi::CallbackInfo& info);
  // UdpBatch's native open path writes opened packets here (WriteOne, coalescer_).
  friend class UdpBatch;
  ~TunQueue() override;

 private:
  // Delivery shapes, kept both so the bench can measure them (see README).
  enum Mode { kSlab = 0, kArray = 1 };

  Napi::Value GetName(const Napi::CallbackInfo& info);
  Napi::Value GetFd(const Napi::CallbackInfo& info);
  Napi::Value GetOffload(const Napi::CallbackInfo& info);
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Pause(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value WriteBatch(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value JsRef(const Napi::CallbackInfo& info);
  Napi::Value JsUnref(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  // The native seal path (relay: a route per device address; agent: one default route): see SealFast.
  Napi::Value SetSealSocket(const Napi::CallbackInfo& info);
  Napi::Value SetSealRoute(const Napi::CallbackInfo& info);
  Napi::Value DeleteSealRoute(const Napi::CallbackInfo& info);
  // The relay's SYN stamps (syn_stamp.h): setStampSubnet(address, prefix[, maxSeg]) turns them on for
  // OpenVPN customers' SYNs from that subnet, setStampSubnet(null) off. See StampSyns. With maxSeg (the
  // OpenVPN TUN's MTU - 40), writes towards a stamped flow are cut at the customer's own MSS (carry_mss.h).
  Napi::Value SetStampSubnet(const Napi::CallbackInfo& info);
  // setAckThinning(on): pure ACKs of a flow that a later one in the same read covers go no further
  // (ack_filter.h). See ThinAcks.
  Napi::Value SetAckThinning(const Napi::CallbackInfo& info);

  void OnReadable() override;
  // Packets [0, n) of the slab whose IPv4 destination has a seal route are sealed here and sent
  // through seal_udp_ in one sendmmsg, without a call into JS; the others are moved to the front of
  // the slab (order kept) and their count returned, *used set to their bytes. Why: every call into
  // JS after the loop has slept costs ~100-200 us on this kind of host (cold caches/TLB across
  // V8's code and heap, docs/benchmarks.md issue 13 h7), a C hop ~20-40 us; a customer's packets
  // to a device cross here twice per time to first byte.
  uint32_t SealFast(uint32_t n, size_t* used);
  // With stamps on, before anything else sees packets [0, n) of the slab: a SYN (without ACK) from the
  // stamp subnet is an OpenVPN customer's, DNAT'ed to its connection's port on the device; it gets its
  // original destination (conntrack, by the reply tuple) as the stamp option, or is dropped when that
  // cannot be had (the customer's retransmission tries again). Any other SYN loses a stamp it carries, so
  // no one else can hand the device a destination. Returns the packets left; *used is updated.
  uint32_t StampSyns(uint32_t n, size_t* used);
  // With ACK thinning on: packets [0, n) of the slab less the pure ACKs a later one of the same flow makes
  // redundant (MarkRedundantAcks), order kept. Returns the packets left; *used is updated.
  uint32_t ThinAcks(uint32_t n, size_t* used);
  // Packet i of n becomes `len` bytes of `data` (0: removed); the slab and offsets after it move.
  void ReplacePacket(uint32_t i, uint32_t* n, size_t* used, const uint8_t* data, size_t len);
  void OnPollError(int uv_status) override;
  // Returns true when written; counts drops/errors otherwise.
  bool WriteOne(const uint8_t* data, size_t len);
  // vnet-hdr mode: one write of header + packet (which may carry several coalesced segments).
  bool WriteVnet(const uint8_t* hdr, const uint8_t* pkt, size_t len, uint32_t segs);
  static void CoalescerSink(void* self, const uint8_t* hdr, const uint8_t* pkt, size_t len, uint32_t segs);
  void ReadVnet(Napi::Env env);
  void ReleaseCallbacks();

  std::string name_;
  Mode mode_ = kSlab;
  uint32_t batch_ = 64;
  uint32_t max_packet_ = 65535;
  std::unique_ptr<uint8_t[]> slab_;
  size_t slab_cap_ = 0;
  Napi::Reference<Napi::Uint32Array> offsets_ref_;
  uint32_t* offsets_ = nullptr;
  Napi::FunctionReference on_batch_;
  Napi::FunctionReference on_error_;
  std::unique_ptr<Napi::AsyncContext> async_ctx_;
  bool js_ref_held_ = false;
  // IFF_VNET_HDR with TSO/checksum offload (see offload.h); 0 when the queue is plain.
  unsigned offloads_ = 0;
  bool vnet_ = false;
  std::unique_ptr<uint8_t[]> scratch_;  // one read: header + up to 64 KB packet
  std::unique_ptr<Coalescer> coalescer_;
  std::vector<uint32_t> ends_;
  uint32_t offsets_cap_ = 0;
  uint32_t write_ok_ = 0;  // packets accepted in the current writeBatch
  std::vector<std::pair<const uint8_t*, size_t>> wbatch_;  // the current writeBatch's packets

  // One device's established session as the relay's native seal path uses it. `counter` is the
  // session's send counter, shared with JS (TransportSession keeps it in that Float64Array): both
  // sides take the next value from the same cell on one thread, so no nonce is used twice.
  struct SealRoute {
    Aead* key = nullptr;
    Napi::ObjectReference key_ref;
    uint32_t receiver = 0;
    double* counter = nullptr;
    Napi::Reference<Napi::Float64Array> counter_ref;
    double limit = 0;       // first counter value not to use
    double expires_at = 0;  // ms since the epoch (Date.now()): the session's reject-after time
    sockaddr_storage dst{};
    socklen_t dst_len = 0;
  };
  // By IPv4 destination (host order) | the lane slot << 32: a device with lanes (docs/protocol.md §3.1)
  // has a route per slot its flows hash to (FlowLane over its count in lanes_); others slot 0 only.
  std::unordered_map<uint64_t, SealRoute> routes_;
  std::unordered_map<uint32_t, uint32_t> lanes_;  // destination -> lane count, for counts above 1
  static constexpr uint32_t kMaxLanes = 16;       // packages/protocol MAX_LANES
  void EraseRoutesOf(uint32_t dst);
  // Every IPv4 packet no route above matches (the agent: its one peer, the relay). A separate slot,
  // not a magic key: no address can stand for "any".
  std::unique_ptr<SealRoute> default_route_;
  UdpBatch* seal_udp_ = nullptr;
  Napi::ObjectReference seal_udp_ref_;
  std::unique_ptr<uint8_t[]> seal_out_;
  size_t seal_out_cap_ = 0;
  std::vector<iovec> seal_iov_;
  std::vector<sockaddr_storage> seal_names_;
  std::vector<socklen_t> seal_lens_;

  bool stamp_on_ = false;
  uint32_t stamp_net_ = 0, stamp_mask_ = 0;  // host order
  ConntrackQuery ct_;
  size_t slab_alloc_ = 0;  // slab_cap_ plus room for stamps to grow packets
  std::unique_ptr<uint8_t[]> stamp_tmp_;
  std::unique_ptr<CarryMss> carry_mss_;  // with setStampSubnet's maxSeg; the Coalescer's sizer
  static uint16_t CarrySizer(void* self, const uint8_t* ip, size_t iphl, size_t thl, uint16_t gso_size);
  bool ack_thin_ = false;
  std::unique_ptr<bool[]> ack_drop_;  // MarkRedundantAcks' flags, one per packet of a read
  uint32_t ack_drop_cap_ = 0;

  struct {
    double stamped = 0, stamp_dropped = 0, unstamped = 0, acks_thinned = 0;
    double carry_mss_flows = 0, carry_resized = 0;  // flows with a customer MSS kept; writes cut at one
    double seal_native = 0, seal_unsent = 0, seal_errors = 0;
    double rx_packets = 0, rx_bytes = 0, rx_batches = 0, rx_errors = 0;
    double tx_packets = 0, tx_bytes = 0, tx_drops = 0, tx_errors = 0;
    double rx_gso = 0, rx_bad_gso = 0, tx_gso = 0, tx_writes = 0;
  } stats_;
};

}  // namespace pp
