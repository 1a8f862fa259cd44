// UdpBatch: a UDP socket that receives with recvmmsg(2) and sends with sendmmsg(2), so a batch of
// datagrams costs one syscall and one JS call instead of one of each per datagram (Node's dgram).
// https://man7.org/linux/man-pages/man2/recvmmsg.2.html, https://man7.org/linux/man-pages/man2/sendmmsg.2.html
#pragma once
#include <napi.h>
#include <sys/socket.h>

#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "fd_poller.h"
#include "offload.h"

namespace pp {

class Aead;
class TunQueue;

class UdpBatch : public Napi::ObjectWrap<UdpBatch>, private FdPoller {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit UdpBatch(const Napi::CallbackInfo& info);
  ~UdpBatch() override;

 private:
  // The relay's native seal path sends its frames through this socket (SendPrepared, family_).
  friend class TunQueue;
  static constexpr uint32_t kSendChunk = 256;
  // Sends n datagrams already in memory (GSO-grouped like sendBatch); returns how many were sent.
  uint32_t SendPrepared(const iovec* iov, const sockaddr_storage* names, const socklen_t* lens, uint32_t n);

  Napi::Value LocalAddress(const Napi::CallbackInfo& info);
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Pause(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value SendBatch(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value JsRef(const Napi::CallbackInfo& info);
  Napi::Value JsUnref(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  // The native open path (udp_open.cc): transport frames to a session with an open route are
  // authenticated, replay-checked and written to the TUN here, without a call into JS.
  Napi::Value SetOpenTun(const Napi::CallbackInfo& info);
  Napi::Value SetOpenRoute(const Napi::CallbackInfo& info);
  Napi::Value DeleteOpenRoute(const Napi::CallbackInfo& info);
  // Takes datagram [f, f+len) from `from` when an open route accepts all of it, decrypts it and
  // hands the packet to the TUN (written at OpenFlush); false leaves it untouched for JS.
  bool OpenFast(const uint8_t* f, uint32_t len, const sockaddr_storage* from, double now_ms);
  void OpenFlush();

  void OnReadable() override;
  void OnPollError(int uv_status) override;
  // Fills dst from a JS (address, port); caches the last parse since batches often share a peer.
  bool ResolveDest(Napi::Env env, napi_value address, uint32_t port, sockaddr_storage* dst, socklen_t* len);
  // Sends datagrams [0, count) staged in siov_/snames_: grouped into UDP GSO messages when gso_
  // (runs of one destination and one size, the last may be shorter), one message each otherwise.
  // Returns datagrams sent, counting drops/errors.
  uint32_t FlushSend(uint32_t count);
  // sendmmsg over msgs[0..nmsgs) whose datagram counts are mcount_[...]; returns datagrams sent.
  // Sets *gso_failed to the first message index the kernel refused GSO for (EIO), or -1.
  uint32_t SendMessages(uint32_t nmsgs, int* gso_failed);

  int family_;
  uint32_t batch_ = 64;
  uint32_t max_datagram_ = 2048;  // receive buffer per message
  uint32_t limit_ = 2048;         // largest datagram delivered
  std::unique_ptr<uint8_t[]> slab_;
  std::vector<mmsghdr> rmsgs_;
  std::vector<iovec> riov_;
  std::vector<sockaddr_storage> rnames_;
  Napi::Reference<Napi::Uint32Array> meta_ref_;
  uint32_t* meta_ = nullptr;
  size_t meta_len_ = 0;
  // The pieces of one receive for JS: message, offset in it, length (GRO messages hold several).
  struct Piece {
    uint32_t msg, off, len;
  };
  std::vector<Piece> pieces_;

  // One session as the native open path uses it. The replay window (`bits`, `cell[0]` = highest
  // counter) and the counts (`cell[1]` frames authenticated, `cell[2]` when this path last did, ms)
  // are the TransportSession's own memory: JS and this path run the same window on one thread.
  struct OpenRoute {
    Aead* key = nullptr;
    Napi::ObjectReference key_ref;
    uint32_t* bits = nullptr;
    Napi::Reference<Napi::Uint32Array> bits_ref;
    double* cell = nullptr;
    Napi::Reference<Napi::Float64Array> cell_ref;
    double limit = 0;       // first counter not to accept
    double expires_at = 0;  // Date.now() ms: the session's reject-after time
    sockaddr_storage from{};  // the only source accepted (the peer's endpoint)
    socklen_t from_len = 0;
    bool check_src = false;    // the inner IPv4 source must be inner_src (network order)
    uint8_t inner_src[4] = {0, 0, 0, 0};
  };
  std::unordered_map<uint32_t, OpenRoute> open_routes_;  // by our receiver index
  TunQueue* open_tun_ = nullptr;
  Napi::ObjectReference open_tun_ref_;
  std::unique_ptr<uint8_t[]> open_pt_;  // one plaintext
  uint32_t open_pending_ = 0;           // packets handed to the TUN's coalescer, not flushed yet

  std::vector<mmsghdr> smsgs_;
  std::vector<iovec> siov_;
  std::vector<sockaddr_storage> snames_;
  std::vector<socklen_t> snamelens_;
  std::vector<uint32_t> mfirst_, mcount_;  // per message: first datagram, datagram count
  std::vector<uint8_t> sctl_;              // per message: a UDP_SEGMENT cmsg
  std::vector<uint8_t> rctl_;              // per received message: room for a UDP_GRO cmsg
  bool gso_ = false;                       // UDP_SEGMENT on send (kernel >= 4.18, checksum offload on the route)
  // Peers whose path MTU refused a GSO send, by a 64-bit hash of their address and port (a
  // collision only costs another peer its GSO). Checked once per run on the send path.
  std::unordered_set<uint64_t> no_gso_peers_;
  static uint64_t PeerKey(const sockaddr_storage& sa, socklen_t len);
  bool gro_ = false;                       // UDP_GRO on receive (kernel >= 5.0)
  char last_addr_[64] = {0};
  uint32_t last_port_ = 0xffffffff;
  sockaddr_storage last_sa_{};
  socklen_t last_len_ = 0;

  Napi::FunctionReference on_batch_;
  Napi::FunctionReference on_error_;
  std::unique_ptr<Napi::AsyncContext> async_ctx_;
  bool js_ref_held_ = false;

  struct {
    double rx_packets = 0, rx_bytes = 0, rx_batches = 0, rx_truncated = 0, rx_errors = 0;
    double tx_packets = 0, tx_bytes = 0, tx_drops = 0, tx_errors = 0, tx_syscalls = 0;
    double rx_gro = 0, tx_gso = 0, tx_gso_off = 0;
    double open_native = 0, open_to_js = 0;
  } stats_;
};

}  // namespace pp
