// TunQueue: one queue of a Linux TUN device (IFF_TUN | IFF_NO_PI, optionally IFF_MULTI_QUEUE so
// several workers can each open a queue of the same interface).
// Kernel side: https://www.kernel.org/doc/html/latest/networking/tuntap.html and
// https://elixir.bootlin.com/linux/latest/source/drivers/net/tun.c
#pragma once
#include <napi.h>

#include <memory>
#include <utility>
#include <vector>

#include "fd_poller.h"
#include "offload.h"

namespace pp {

class TunQueue : public Napi::ObjectWrap<TunQueue>, private FdPoller {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit TunQueue(const Napi::CallbackInfo& info);
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

  void OnReadable() override;
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

  struct {
    double rx_packets = 0, rx_bytes = 0, rx_batches = 0, rx_errors = 0;
    double tx_packets = 0, tx_bytes = 0, tx_drops = 0, tx_errors = 0;
    double rx_gso = 0, rx_bad_gso = 0, tx_gso = 0, tx_writes = 0;
  } stats_;
};

}  // namespace pp
