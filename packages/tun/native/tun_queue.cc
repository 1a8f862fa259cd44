#include "tun_queue.h"

#include "ack_filter.h"

#include "syn_stamp.h"

#include <errno.h>

#include <algorithm>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "aead.h"
#include "errno_error.h"
#include "js_call.h"
#include "sockaddr.h"
#include "udp_batch.h"
#include "wall_clock.h"

namespace pp {

Napi::Function TunQueue::Init(Napi::Env env) {
  return DefineClass(env, "TunQueue",
                     {
                         InstanceAccessor<&TunQueue::GetName>("name"),
                         InstanceAccessor<&TunQueue::GetFd>("fd"),
                         InstanceAccessor<&TunQueue::GetOffload>("offload"),
                         InstanceMethod<&TunQueue::Start>("start"),
                         InstanceMethod<&TunQueue::Pause>("pause"),
                         InstanceMethod<&TunQueue::Write>("write"),
                         InstanceMethod<&TunQueue::WriteBatch>("writeBatch"),
                         InstanceMethod<&TunQueue::Stats>("stats"),
                         InstanceMethod<&TunQueue::JsRef>("ref"),
                         InstanceMethod<&TunQueue::JsUnref>("unref"),
                         InstanceMethod<&TunQueue::Close>("close"),
                         InstanceMethod<&TunQueue::SetSealSocket>("setSealSocket"),
                         InstanceMethod<&TunQueue::SetSealRoute>("setSealRoute"),
                         InstanceMethod<&TunQueue::DeleteSealRoute>("deleteSealRoute"),
                         InstanceMethod<&TunQueue::SetStampSubnet>("setStampSubnet"),
                         InstanceMethod<&TunQueue::SetAckThinning>("setAckThinning"),
                     });
}

// new TunQueue(name: string, multiQueue: boolean, blocking?: boolean, offload?: boolean)
// `blocking` exists only so the bench can compare against fs.read on the thread pool.
// `offload`: IFF_VNET_HDR + TUNSETOFFLOAD(CSUM, TSO4, TSO6) — reads may return 64 KB TCP
// super-packets (cut into wire-sized packets here before JS sees them) and writeBatch glues
// consecutive segments of a flow into one write (offload.h). JS sees plain IP packets either way.
TunQueue::TunQueue(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TunQueue>(info) {
  Napi::Env env = info.Env();
  std::string name = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  bool multi = info[1].ToBoolean();
  bool blocking = info[2].ToBoolean();
  bool offload = info[3].ToBoolean() && !blocking;
  if (name.size() >= IFNAMSIZ) throw Napi::RangeError::New(env, "interface name longer than 15 bytes");

  int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC | (blocking ? 0 : O_NONBLOCK));
  if (fd < 0) throw ErrnoError(env, "open /dev/net/tun", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  // IFF_NO_PI: no 4-byte packet-info header, each read()/write() is exactly one IP packet.
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (multi ? IFF_MULTI_QUEUE : 0) | (offload ? IFF_VNET_HDR : 0);
  memcpy(ifr.ifr_name, name.data(), name.size());
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    ::close(fd);
    throw ErrnoError(env, "ioctl TUNSETIFF", err);
  }
  name_.assign(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  if (offload) {
    int sz = static_cast<int>(kVnetHdrLen);
    if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) {
      int err = errno;
      ::close(fd);
      throw ErrnoError(env, "ioctl TUNSETVNETHDRSZ", err);
    }
    // TSO needs checksum offload; a kernel without TSO for TUN still gives us partial checksums.
    const unsigned long full = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
    if (ioctl(fd, TUNSETOFFLOAD, full) == 0) offloads_ = full;
    else if (ioctl(fd, TUNSETOFFLOAD, static_cast<unsigned long>(TUN_F_CSUM)) == 0) offloads_ = TUN_F_CSUM;
    vnet_ = true;
    scratch_.reset(new uint8_t[kVnetHdrLen + 65535]);
    coalescer_ = std::make_unique<Coalescer>(&TunQueue::CoalescerSink, this);
  }
  if (blocking) {
    AdoptUnpolled(fd);
    return;
  }
  int r = Attach(env, fd);
  if (r != 0) {
    ::close(fd);
    throw Napi::Error::New(env, std::string("uv_poll_init: ") + uv_strerror(r));
  }
}

TunQueue::~TunQueue() { CloseFd(); }

Napi::Value TunQueue::GetName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), name_); }
Napi::Value TunQueue::GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd()); }
Napi::Value TunQueue::GetOffload(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("vnetHdr", vnet_);
  o.Set("checksum", (offloads_ & TUN_F_CSUM) != 0);
  o.Set("tso", (offloads_ & TUN_F_TSO4) != 0);
  return o;
}

// start(onBatch, onError, batchSize, maxPacket, mode)
//   mode 0: onBatch(data: Buffer, offsets: Uint32Array, count) — packet i is data[offsets[i], offsets[i+1]);
//           `offsets` is one array reused for every batch.
//   mode 1: onBatch(packets: Buffer[])
Napi::Value TunQueue::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (is_closed()) throw Napi::Error::New(env, "TUN queue is closed");
  if (!info[0].IsFunction() || !info[1].IsFunction()) throw Napi::TypeError::New(env, "start(onBatch, onError, ...)");
  uint32_t batch = info[2].IsNumber() ? info[2].As<Napi::Number>().Uint32Value() : 64;
  uint32_t max_packet = info[3].IsNumber() ? info[3].As<Napi::Number>().Uint32Value() : 65535;
  uint32_t mode = info[4].IsNumber() ? info[4].As<Napi::Number>().Uint32Value() : 0;
  if (batch < 1 || batch > 1024) throw Napi::RangeError::New(env, "batch must be 1..1024");
  if (max_packet < 576 || max_packet > 65535) throw Napi::RangeError::New(env, "maxPacket must be 576..65535");

  on_batch_ = Napi::Persistent(info[0].As<Napi::Function>());
  on_error_ = Napi::Persistent(info[1].As<Napi::Function>());
  if (!async_ctx_) async_ctx_ = std::make_unique<Napi::AsyncContext>(env, "PocketProxyTunRead", Value());
  if (batch != batch_ || max_packet != max_packet_ || !slab_) {
    batch_ = batch;
    max_packet_ = max_packet;
    // new[] without () leaves memory untouched: only pages packets land in get faulted in.
    // With offloads one read may become ~45 packets.
    // Capped at ~512 KB of packets per JS call (the batch is copied into one Buffer for JS).
    slab_cap_ = vnet_ ? std::min<size_t>(static_cast<size_t>(batch) * 70000, 512 * 1024) + kMaxSegmentOutput
                      : static_cast<size_t>(batch) * max_packet;
    offsets_cap_ = vnet_ ? batch * 64 + static_cast<uint32_t>(kMaxSegments) + 1 : batch + 1;
    // Stamps grow a SYN by up to kStampGrowth bytes: room for 64 of them per batch (more are dropped).
    slab_alloc_ = slab_cap_ + 64 * kStampGrowth;
    slab_.reset(new uint8_t[slab_alloc_]);
    Napi::Uint32Array offsets = Napi::Uint32Array::New(env, offsets_cap_);
    offsets_ = offsets.Data();
    offsets_ref_ = Napi::Persistent(offsets);
  }
  mode_ = mode == 1 ? kArray : kSlab;
  int r = FdPoller::Start();
  if (r != 0) throw Napi::Error::New(env, std::string("uv_poll_start: ") + uv_strerror(r));
  // Keep the JS wrapper alive while the kernel may still call us.
  if (!js_ref_held_) {
    Napi::ObjectWrap<TunQueue>::Ref();
    js_ref_held_ = true;
  }
  return env.Undefined();
}

Napi::Value TunQueue::Pause(const Napi::CallbackInfo& info) {
  FdPoller::Stop();
  return info.Env().Undefined();
}

void TunQueue::OnReadable() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  const size_t cap = slab_cap_;
  size_t used = 0;
  uint32_t n = 0;
  int hard_err = 0;
  offsets_[0] = 0;
  if (!vnet_) {
    // Packets are packed back to back; each read() gets at least max_packet_ bytes of room.
    while (n < batch_ && cap - used >= max_packet_) {
      ssize_t r = ::read(fd(), slab_.get() + used, max_packet_);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) hard_err = errno;
        break;
      }
      used += static_cast<size_t>(r);
      offsets_[++n] = static_cast<uint32_t>(used);
    }
  } else {
    // One read = vnet header + a packet of up to 64 KB, cut into wire-sized packets in the slab.
    uint32_t reads = 0;
    while (reads < batch_ && cap - used >= kMaxSegmentOutput && n + kMaxSegments < offsets_cap_) {
      ssize_t r = ::read(fd(), scratch_.get(), kVnetHdrLen + 65535);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) hard_err = errno;
        break;
      }
      reads++;
      if (static_cast<size_t>(r) <= kVnetHdrLen) {
        stats_.rx_bad_gso += 1;
        continue;
      }
      const VnetHdr h = ReadVnetHdr(scratch_.get());
      ends_.clear();
      if (Segment(h, scratch_.get() + kVnetHdrLen, static_cast<size_t>(r) - kVnetHdrLen, slab_.get() + used, cap - used, ends_) < 0) {
        stats_.rx_bad_gso += 1;
        continue;
      }
      if (h.gso_type != kGsoNone) stats_.rx_gso += 1;
      for (uint32_t e : ends_) offsets_[++n] = static_cast<uint32_t>(used + e);
      used += ends_.back();
    }
  }
  if (n > 0) {
    stats_.rx_packets += n;
    stats_.rx_bytes += used;
    stats_.rx_batches += 1;
    if (stamp_on_) n = StampSyns(n, &used);
    if (ack_thin_ && n > 1) n = ThinAcks(n, &used);
    if (n > 0 && (!routes_.empty() || default_route_)) n = SealFast(n, &used);
  }
  if (n > 0) {
    if (mode_ == kSlab) {
      Napi::Buffer<uint8_t> data = Napi::Buffer<uint8_t>::Copy(env, slab_.get(), used);
      CallJs(env, on_batch_, Value(), {data, offsets_ref_.Value(), Napi::Number::New(env, n)}, *async_ctx_);
    } else {
      Napi::Array arr = Napi::Array::New(env, n);
      for (uint32_t i = 0; i < n; i++) {
        arr[i] = Napi::Buffer<uint8_t>::Copy(env, slab_.get() + offsets_[i], offsets_[i + 1] - offsets_[i]);
      }
      CallJs(env, on_batch_, Value(), {arr}, *async_ctx_);
    }
  }
  if (hard_err != 0 && !is_closed()) {
    // e.g. EBADFD once the interface is deleted: stop, or level-triggered epoll would spin.
    stats_.rx_errors += 1;
    FdPoller::Stop();
    if (!on_error_.IsEmpty()) CallJs(env, on_error_, Value(), {ErrnoError(env, "read", hard_err).Value()}, *async_ctx_);
  }
}

void TunQueue::OnPollError(int uv_status) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  stats_.rx_errors += 1;
  if (!on_error_.IsEmpty()) {
    Napi::Error e = Napi::Error::New(env, std::string("uv_poll: ") + uv_strerror(uv_status));
    CallJs(env, on_error_, Value(), {e.Value()}, *async_ctx_);
  }
}

bool TunQueue::WriteVnet(const uint8_t* hdr, const uint8_t* pkt, size_t len, uint32_t segs) {
  struct iovec iov[2] = {{const_cast<uint8_t*>(hdr), kVnetHdrLen}, {const_cast<uint8_t*>(pkt), len}};
  for (;;) {
    ssize_t r = ::writev(fd(), iov, 2);
    if (r >= 0) {
      stats_.tx_packets += segs;
      stats_.tx_bytes += static_cast<double>(len);
      stats_.tx_writes += 1;
      if (segs > 1) stats_.tx_gso += 1;
      write_ok_ += segs;
      return true;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == ENOBUFS) stats_.tx_drops += segs;
    else stats_.tx_errors += segs;
    return false;
  }
}

uint16_t TunQueue::CarrySizer(void* self, const uint8_t* ip, size_t iphl, size_t thl, uint16_t gso_size) {
  auto* q = static_cast<TunQueue*>(self);
  const uint16_t want = q->carry_mss_ ? q->carry_mss_->SegmentSize(ip, iphl, thl, gso_size) : gso_size;
  if (want != gso_size) q->stats_.carry_resized += 1;
  return want;
}

void TunQueue::CoalescerSink(void* self, const uint8_t* hdr, const uint8_t* pkt, size_t len, uint32_t segs) {
  static_cast<TunQueue*>(self)->WriteVnet(hdr, pkt, len, segs);
}

bool TunQueue::WriteOne(const uint8_t* data, size_t len) {
  if (vnet_) {
    static const uint8_t kPlain[kVnetHdrLen] = {0};
    return WriteVnet(kPlain, data, len, 1);
  }
  for (;;) {
    ssize_t r = ::write(fd(), data, len);
    if (r >= 0) {
      stats_.tx_packets += 1;
      stats_.tx_bytes += static_cast<double>(r);
      return true;
    }
    if (errno == EINTR) continue;
    // A full queue is back-pressure, not a failure: IP is allowed to drop.
    if (errno == EAGAIN || errno == ENOBUFS) stats_.tx_drops += 1;
    else stats_.tx_errors += 1;  // EINVAL (not an IP packet), EIO (interface down), ...
    return false;
  }
}

Napi::Value TunQueue::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (is_closed()) throw Napi::Error::New(env, "TUN queue is closed");
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "write(packet: Uint8Array)");
  Napi::Uint8Array p = info[0].As<Napi::Uint8Array>();
  return Napi::Boolean::New(env, WriteOne(p.Data(), p.ByteLength()));
}

// writeBatch(packets: Uint8Array[]) -> number written. There is no multi-packet write for TUN
// (writev() would concatenate into one packet), so this is a loop of write() without JS in between;
// with offloads, in-order segments of one TCP flow go as one GSO write (offload.h Coalescer).
Napi::Value TunQueue::WriteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (is_closed()) throw Napi::Error::New(env, "TUN queue is closed");
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "writeBatch(packets: Uint8Array[])");
  Napi::Array arr = info[0].As<Napi::Array>();
  // Every element is checked before anything is written; one Get per element.
  const uint32_t len = arr.Length();
  wbatch_.clear();
  for (uint32_t i = 0; i < len; i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsTypedArray()) throw Napi::TypeError::New(env, "writeBatch: element is not a Uint8Array");
    Napi::Uint8Array p = v.As<Napi::Uint8Array>();
    wbatch_.emplace_back(p.Data(), p.ByteLength());
  }
  uint32_t ok = 0;
  if (vnet_) {
    write_ok_ = 0;
    for (const auto& [data, size] : wbatch_) coalescer_->Add(data, size);
    coalescer_->Flush();
    ok = write_ok_;
  } else {
    for (const auto& [data, size] : wbatch_) ok += WriteOne(data, size) ? 1 : 0;
  }
  return Napi::Number::New(env, ok);
}

// The lane of an IPv4 packet's flow: packages/protocol responder.ts flowLane, bit for bit (a packet the
// JS path and this one hash differently would only take the JS path, but the lane must not flap).
static uint32_t FlowLane(const uint8_t* p, size_t len, uint32_t count) {
  if (count < 2 || len < 20) return 0;
  const uint8_t proto = p[9];
  if (proto != 6 && proto != 17) return 0;  // ICMP and the rest: lane 0 (protocol responder.ts flowLane)
  const uint32_t src = (uint32_t{p[12]} << 24) | (uint32_t{p[13]} << 16) | (uint32_t{p[14]} << 8) | p[15];
  const uint32_t dst = (uint32_t{p[16]} << 24) | (uint32_t{p[17]} << 16) | (uint32_t{p[18]} << 8) | p[19];
  uint32_t h = src ^ dst;
  h ^= proto;
  const size_t ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
  const uint32_t later = (uint32_t{p[6] & 0x1fu} << 8) | p[7];
  if (later == 0 && ihl >= 20 && len >= ihl + 4)
    h ^= ((uint32_t{p[ihl]} << 8) | p[ihl + 1]) ^ ((uint32_t{p[ihl + 2]} << 8) | p[ihl + 3]);
  h = (h ^ (h >> 16)) * 0x45d9f3bu;
  h = (h ^ (h >> 16)) * 0x45d9f3bu;
  h ^= h >> 16;
  return h % count;
}

void TunQueue::EraseRoutesOf(uint32_t dst) {
  for (uint64_t slot = 0; slot < kMaxLanes; slot++) routes_.erase(uint64_t{dst} | (slot << 32));
  lanes_.erase(dst);
}

uint32_t TunQueue::SealFast(uint32_t n, size_t* used) {
  if (seal_udp_ == nullptr || seal_udp_->is_closed()) return n;
  const size_t need = static_cast<size_t>(offsets_[n]) + static_cast<size_t>(n) * 32;
  if (seal_out_cap_ < need) {
    seal_out_cap_ = std::max(need, slab_cap_ + static_cast<size_t>(offsets_cap_) * 32);
    seal_out_.reset(new uint8_t[seal_out_cap_]);
  }
  if (seal_iov_.size() < n) {
    seal_iov_.resize(n);
    seal_names_.resize(n);
    seal_lens_.resize(n);
  }
  const double now = WallClockMs();
  uint8_t* slab = slab_.get();
  uint32_t keep = 0, queued = 0;
  size_t wpos = 0, opos = 0;
  for (uint32_t i = 0; i < n; i++) {
    // Read both ends first: offsets_[keep + 1] below may be offsets_[i + 1] (then with the same value).
    const uint32_t start = offsets_[i], end = offsets_[i + 1];
    const size_t len = end - start;
    const uint8_t* p = slab + start;
    SealRoute* r = nullptr;
    if (len >= 20 && (p[0] >> 4) == 4 && len + 32 <= 0xffff) {
      const uint32_t dst = (uint32_t{p[16]} << 24) | (uint32_t{p[17]} << 16) | (uint32_t{p[18]} << 8) | p[19];
      uint64_t key = dst;
      if (!lanes_.empty()) {
        auto ln = lanes_.find(dst);
        if (ln != lanes_.end()) key |= uint64_t{FlowLane(p, len, ln->second)} << 32;
      }
      auto it = routes_.find(key);
      if (it != routes_.end()) r = &it->second;
      else r = default_route_.get();
    }
    if (r != nullptr && r->key->enc_ != nullptr && *r->counter < r->limit && now < r->expires_at) {
      const double c = *r->counter;
      *r->counter = c + 1;  // taken even if the seal fails below: a counter is never used twice
      const uint64_t c64 = static_cast<uint64_t>(c);
      uint8_t* f = seal_out_.get() + opos;
      // Transport frame (docs/protocol.md): type 4, version 1, 2 zero bytes, receiver u32le, counter u64le.
      f[0] = 4;
      f[1] = 1;
      f[2] = 0;
      f[3] = 0;
      for (int b = 0; b < 4; b++) f[4 + b] = static_cast<uint8_t>(r->receiver >> (8 * b));
      for (int b = 0; b < 8; b++) f[8 + b] = static_cast<uint8_t>(c64 >> (8 * b));
      if (!r->key->SealOne(c64, p, len, f + 16)) {
        stats_.seal_errors += 1;
        continue;
      }
      seal_iov_[queued].iov_base = f;
      seal_iov_[queued].iov_len = len + 32;
      memcpy(&seal_names_[queued], &r->dst, r->dst_len);
      seal_lens_[queued] = r->dst_len;
      queued++;
      opos += len + 32;
      continue;
    }
    if (wpos != start) memmove(slab + wpos, p, len);
    wpos += len;
    offsets_[++keep] = static_cast<uint32_t>(wpos);
  }
  if (queued > 0) {
    stats_.seal_native += queued;
    const uint32_t sent = seal_udp_->SendPrepared(seal_iov_.data(), seal_names_.data(), seal_lens_.data(), queued);
    stats_.seal_unsent += queued - sent;
  }
  *used = wpos;
  return keep;
}

// setSealSocket(udp: UdpBatch | null): the socket the native seal path sends from (the tunnel's).
Napi::Value TunQueue::SetSealSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  routes_.clear();
  lanes_.clear();
  default_route_.reset();
  seal_udp_ = nullptr;
  seal_udp_ref_.Reset();
  if (info[0].IsObject()) {
    UdpBatch* u = UdpBatch::Unwrap(info[0].As<Napi::Object>());
    if (u == nullptr) throw Napi::TypeError::New(env, "setSealSocket(udp: UdpBatch | null)");
    seal_udp_ = u;
    seal_udp_ref_ = Napi::Persistent(info[0].As<Napi::Object>());
  }
  return env.Undefined();
}

// setSealRoute(dst: u32 IPv4 | 'default', key: Aead, receiver: u32, counter: Float64Array(>=1), limit, expiresAt, address, port
//              [, slot, count]): with a lane count above 1, the route of the flows that hash to `slot`; a new
//              count for dst drops its other routes first.
Napi::Value TunQueue::SetSealRoute(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (seal_udp_ == nullptr) throw Napi::Error::New(env, "setSealRoute: no seal socket");
  const bool is_default = info[0].IsString() && info[0].As<Napi::String>().Utf8Value() == "default";
  if (info.Length() < 8 || !(info[0].IsNumber() || is_default) || !info[1].IsObject() || !info[2].IsNumber() || !info[3].IsTypedArray() ||
      !info[4].IsNumber() || !info[5].IsNumber() || !info[6].IsString() || !info[7].IsNumber())
    throw Napi::TypeError::New(env, "setSealRoute(dst, key, receiver, counter, limit, expiresAt, address, port)");
  Napi::TypedArray ta = info[3].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_float64_array || ta.ElementLength() < 1)
    throw Napi::TypeError::New(env, "setSealRoute: counter must be a Float64Array");
  Aead* key = Aead::Unwrap(info[1].As<Napi::Object>());
  if (key == nullptr || key->enc_ == nullptr) throw Napi::TypeError::New(env, "setSealRoute: key is not a live Aead");
  const uint32_t port = info[7].As<Napi::Number>().Uint32Value();
  SealRoute r;
  std::string addr = info[6].As<Napi::String>().Utf8Value();
  if (port > 65535 || !ParseSockaddr(seal_udp_->family_, addr.c_str(), static_cast<uint16_t>(port), &r.dst, &r.dst_len))
    throw Napi::TypeError::New(env, "setSealRoute: invalid address or port");
  Napi::Float64Array counter = info[3].As<Napi::Float64Array>();
  r.key = key;
  r.key_ref = Napi::Persistent(info[1].As<Napi::Object>());
  r.receiver = info[2].As<Napi::Number>().Uint32Value();
  r.counter = counter.Data();
  r.counter_ref = Napi::Persistent(counter);
  r.limit = info[4].As<Napi::Number>().DoubleValue();
  r.expires_at = info[5].As<Napi::Number>().DoubleValue();
  uint32_t slot = 0, count = 1;
  if (info.Length() >= 10 && info[8].IsNumber() && info[9].IsNumber()) {
    slot = info[8].As<Napi::Number>().Uint32Value();
    count = info[9].As<Napi::Number>().Uint32Value();
    if (count < 1 || count > kMaxLanes || slot >= count || is_default)
      throw Napi::TypeError::New(env, "setSealRoute: slot must be < count <= 16 (and not for 'default')");
  }
  if (is_default) {
    default_route_ = std::make_unique<SealRoute>(std::move(r));
    return env.Undefined();
  }
  const uint32_t dst = info[0].As<Napi::Number>().Uint32Value();
  auto ln = lanes_.find(dst);
  const uint32_t had = ln == lanes_.end() ? 1 : ln->second;
  if (had != count) {
    EraseRoutesOf(dst);
    if (count > 1) lanes_[dst] = count;
  }
  routes_[uint64_t{dst} | (uint64_t{slot} << 32)] = std::move(r);
  return env.Undefined();
}

// deleteSealRoute(dst: u32 IPv4 | 'default' | -1 for all [, slot]) -> boolean (one was there); without a
// slot, every lane's route of dst.
Napi::Value TunQueue::DeleteSealRoute(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info[0].IsString() && info[0].As<Napi::String>().Utf8Value() == "default") {
    const bool had = default_route_ != nullptr;
    default_route_.reset();
    return Napi::Boolean::New(env, had);
  }
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "deleteSealRoute(dst: number | 'default')");
  const double d = info[0].As<Napi::Number>().DoubleValue();
  if (d < 0) {
    const bool any = !routes_.empty() || default_route_ != nullptr;
    routes_.clear();
    lanes_.clear();
    default_route_.reset();
    return Napi::Boolean::New(env, any);
  }
  const uint32_t dst = info[0].As<Napi::Number>().Uint32Value();
  if (info.Length() >= 2 && info[1].IsNumber()) {
    const uint32_t slot = info[1].As<Napi::Number>().Uint32Value();
    return Napi::Boolean::New(env, slot < kMaxLanes && routes_.erase(uint64_t{dst} | (uint64_t{slot} << 32)) > 0);
  }
  const size_t before = routes_.size();
  EraseRoutesOf(dst);
  return Napi::Boolean::New(env, routes_.size() < before);
}

Napi::Value TunQueue::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("rxPackets", stats_.rx_packets);
  o.Set("rxBytes", stats_.rx_bytes);
  o.Set("rxBatches", stats_.rx_batches);
  o.Set("rxErrors", stats_.rx_errors);
  o.Set("txPackets", stats_.tx_packets);
  o.Set("txBytes", stats_.tx_bytes);
  o.Set("txDrops", stats_.tx_drops);
  o.Set("txErrors", stats_.tx_errors);
  o.Set("rxGso", stats_.rx_gso);
  o.Set("rxBadGso", stats_.rx_bad_gso);
  o.Set("txGso", stats_.tx_gso);
  o.Set("sealNative", stats_.seal_native);
  o.Set("stamped", stats_.stamped);
  o.Set("stampDropped", stats_.stamp_dropped);
  o.Set("unstamped", stats_.unstamped);
  o.Set("acksThinned", stats_.acks_thinned);
  o.Set("carryMssFlows", stats_.carry_mss_flows);
  o.Set("carryResized", stats_.carry_resized);
  o.Set("sealUnsent", stats_.seal_unsent);
  o.Set("sealErrors", stats_.seal_errors);
  o.Set("sealRoutes", static_cast<double>(routes_.size() + (default_route_ ? 1 : 0)));
  o.Set("txWrites", vnet_ ? stats_.tx_writes : stats_.tx_packets + stats_.tx_drops + stats_.tx_errors);
  return o;
}

Napi::Value TunQueue::JsRef(const Napi::CallbackInfo& info) {
  SetRef(true);
  return info.Env().Undefined();
}

Napi::Value TunQueue::JsUnref(const Napi::CallbackInfo& info) {
  SetRef(false);
  return info.Env().Undefined();
}

void TunQueue::ReleaseCallbacks() {
  on_batch_.Reset();
  on_error_.Reset();
  if (js_ref_held_) {
    js_ref_held_ = false;
    Napi::ObjectWrap<TunQueue>::Unref();
  }
}

Napi::Value TunQueue::Close(const Napi::CallbackInfo& info) {
  routes_.clear();
  lanes_.clear();
  default_route_.reset();
  seal_udp_ = nullptr;
  seal_udp_ref_.Reset();
  CloseFd();
  ReleaseCallbacks();
  return info.Env().Undefined();
}

}  // namespace pp

namespace pp {

Napi::Value TunQueue::SetStampSubnet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() >= 1 && info[0].IsNull()) {
    stamp_on_ = false;
    if (coalescer_) coalescer_->SetSizer(nullptr, nullptr);
    carry_mss_.reset();
    return env.Undefined();
  }
  if ((info.Length() != 2 && info.Length() != 3) || !info[0].IsString() || !info[1].IsNumber() ||
      (info.Length() == 3 && !info[2].IsNumber()))
    throw Napi::TypeError::New(
        env, "setStampSubnet(address: string, prefix: number, maxSeg?: number) or setStampSubnet(null)");
  in_addr a{};
  const uint32_t prefix = info[1].As<Napi::Number>().Uint32Value();
  if (inet_pton(AF_INET, info[0].As<Napi::String>().Utf8Value().c_str(), &a) != 1 || prefix < 8 || prefix > 32)
    throw Napi::RangeError::New(env, "setStampSubnet: an IPv4 address and a prefix of 8-32");
  const double max_seg = info.Length() == 3 ? info[2].As<Napi::Number>().DoubleValue() : 0;
  if (max_seg != 0 && !(max_seg >= 536 && max_seg <= 65495 && max_seg == static_cast<uint16_t>(max_seg)))
    throw Napi::RangeError::New(env, "setStampSubnet: maxSeg is 0 (off) or an integer of 536-65495");
  stamp_mask_ = prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix);
  stamp_net_ = ntohl(a.s_addr) & stamp_mask_;
  if (!stamp_tmp_) stamp_tmp_.reset(new uint8_t[65535 + kStampGrowth]);
  stamp_on_ = true;
  // Customers' MSS: only where this queue's writes are glued (a plain queue writes packets as they came).
  if (max_seg != 0 && coalescer_) {
    if (!carry_mss_ || carry_mss_->max_seg() != max_seg) carry_mss_ = std::make_unique<CarryMss>(static_cast<uint16_t>(max_seg));
    coalescer_->SetSizer(&TunQueue::CarrySizer, this);
  } else {
    if (coalescer_) coalescer_->SetSizer(nullptr, nullptr);
    carry_mss_.reset();
  }
  return env.Undefined();
}

Napi::Value TunQueue::SetAckThinning(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsBoolean()) throw Napi::TypeError::New(env, "setAckThinning(on: boolean)");
  ack_thin_ = info[0].As<Napi::Boolean>().Value();
  return env.Undefined();
}

uint32_t TunQueue::ThinAcks(uint32_t n, size_t* used) {
  if (ack_drop_cap_ < n) {
    ack_drop_.reset(new bool[n]);
    ack_drop_cap_ = n;
  }
  bool* drop = ack_drop_.get();
  const uint32_t dropped = MarkRedundantAcks(slab_.get(), offsets_, n, drop);
  if (dropped == 0) return n;
  stats_.acks_thinned += dropped;
  uint8_t* slab = slab_.get();
  uint32_t keep = 0;
  size_t wpos = 0;
  for (uint32_t i = 0; i < n; i++) {
    const uint32_t start = offsets_[i], end = offsets_[i + 1];  // read before offsets_[keep + 1] is written
    if (drop[i]) continue;
    if (wpos != start) memmove(slab + wpos, slab + start, end - start);
    wpos += end - start;
    offsets_[++keep] = static_cast<uint32_t>(wpos);
  }
  *used = wpos;
  return keep;
}

void TunQueue::ReplacePacket(uint32_t i, uint32_t* n, size_t* used, const uint8_t* data, size_t len) {
  uint8_t* slab = slab_.get();
  const size_t start = offsets_[i], end = offsets_[i + 1];
  const ptrdiff_t delta = static_cast<ptrdiff_t>(len) - static_cast<ptrdiff_t>(end - start);
  memmove(slab + end + delta, slab + end, *used - end);
  if (len > 0) memcpy(slab + start, data, len);
  *used = static_cast<size_t>(static_cast<ptrdiff_t>(*used) + delta);
  if (len > 0) {
    for (uint32_t j = i + 1; j <= *n; j++) offsets_[j] = static_cast<uint32_t>(static_cast<ptrdiff_t>(offsets_[j]) + delta);
    return;
  }
  for (uint32_t j = i + 1; j < *n; j++) offsets_[j] = static_cast<uint32_t>(static_cast<ptrdiff_t>(offsets_[j + 1]) + delta);
  *n -= 1;
}

uint32_t TunQueue::StampSyns(uint32_t n, size_t* used) {
  for (uint32_t i = 0; i < n;) {
    const uint8_t* p = slab_.get() + offsets_[i];
    const size_t len = offsets_[i + 1] - offsets_[i];
    const size_t ihl = len >= 20 ? static_cast<size_t>(p[0] & 0x0f) * 4 : 0;
    if (len < 40 || (p[0] >> 4) != 4 || p[9] != 6 || ihl < 20 || ihl + 20 > len || (p[ihl + 13] & 0x12) != 0x02) {
      i++;
      continue;
    }
    uint32_t src;
    memcpy(&src, p + 12, 4);
    if ((ntohl(src) & stamp_mask_) != stamp_net_) {
      const int r = UnstampSyn(p, len, stamp_tmp_.get());
      if (r > 0) {
        stats_.unstamped += 1;
        ReplacePacket(i, &n, used, stamp_tmp_.get(), static_cast<size_t>(r));
      }
      i++;
      continue;
    }
    // The reply tuple: from where the SYN goes (the device's port) to the customer.
    uint32_t dst, odst = 0;
    uint16_t sport, dport, odport = 0;
    memcpy(&dst, p + 16, 4);
    memcpy(&sport, p + ihl, 2);
    memcpy(&dport, p + ihl + 2, 2);
    uint32_t mark = 0;
    int r = ct_.OriginalDst(dst, dport, src, sport, &odst, &odport, carry_mss_ ? &mark : nullptr);
    if (r == 0) r = StampSyn(p, len, odst, odport, stamp_tmp_.get());
    if (r > 0 && *used + static_cast<size_t>(r) - len <= slab_alloc_) {
      stats_.stamped += 1;
      // The customer's MSS before the relay's clamp, kept by the firewall in the flow's mark (carry_mss.h).
      // nft copies the option's two bytes into the mark as they are on the wire, so on a little-endian host
      // the mark reads byte-swapped (1400 = 0x0578 is 0x7805); the smaller of the two readings is taken: it is
      // the MSS either way for any size worth a change (past the device's 1340 the swapped one is > 15,000),
      // and never more than it. A mark above 65535 is not one of ours.
      if (carry_mss_ && mark <= 0xffff) {
        const uint16_t swapped = static_cast<uint16_t>((mark & 0xff) << 8 | mark >> 8);
        const uint16_t mss = swapped < mark ? swapped : static_cast<uint16_t>(mark);
        if (mss >= 536) {
          carry_mss_->Record(src, sport, dst, dport, mss);
          stats_.carry_mss_flows += 1;
        }
      }
      ReplacePacket(i, &n, used, stamp_tmp_.get(), static_cast<size_t>(r));
      i++;
    } else {
      stats_.stamp_dropped += 1;
      ReplacePacket(i, &n, used, nullptr, 0);
    }
  }
  return n;
}

}  // namespace pp
