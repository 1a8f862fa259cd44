#include "udp_batch.h"

#include <errno.h>

#include <algorithm>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <unistd.h>

#include "errno_error.h"
#include "js_call.h"
#include "sockaddr.h"
#include "tun_queue.h"
#include "wall_clock.h"

namespace pp {

Napi::Function UdpBatch::Init(Napi::Env env) {
  return DefineClass(env, "UdpBatch",
                     {
                         InstanceMethod<&UdpBatch::LocalAddress>("localAddress"),
                         InstanceMethod<&UdpBatch::Start>("start"),
                         InstanceMethod<&UdpBatch::Pause>("pause"),
                         InstanceMethod<&UdpBatch::Send>("send"),
                         InstanceMethod<&UdpBatch::SendBatch>("sendBatch"),
                         InstanceMethod<&UdpBatch::Stats>("stats"),
                         InstanceMethod<&UdpBatch::JsRef>("ref"),
                         InstanceMethod<&UdpBatch::JsUnref>("unref"),
                         InstanceMethod<&UdpBatch::Close>("close"),
                         InstanceMethod<&UdpBatch::SetOpenTun>("setOpenTun"),
                         InstanceMethod<&UdpBatch::SetOpenRoute>("setOpenRoute"),
                         InstanceMethod<&UdpBatch::DeleteOpenRoute>("deleteOpenRoute"),
                     });
}

namespace {
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
// Linux's UDP_MAX_SEGMENTS: the most datagrams one GSO send may carry.
constexpr uint32_t kMaxGsoSegments = 64;
constexpr size_t kSegCmsg = CMSG_SPACE(sizeof(uint16_t));
constexpr size_t kGroCmsg = CMSG_SPACE(sizeof(int));

void SetIntOpt(Napi::Env env, int fd, int level, int name, int value, const char* what) {
  if (setsockopt(fd, level, name, &value, sizeof value) < 0) {
    int err = errno;
    ::close(fd);
    throw ErrnoError(env, what, err);
  }
}
}  // namespace

// new UdpBatch(family: 4 | 6, address: string, port: number,
//              opts: {reusePort?, recvBufferSize?, sendBufferSize?, ipv6Only?, offload?})
// offload (UDP GSO + GRO): sendBatch sends a run of same-sized datagrams to one peer as one
// message with UDP_SEGMENT (one skb through the stack, cut at the last moment), and the socket
// accepts GRO-merged datagrams (UDP_GRO), split again here before JS sees them. Either is left
// off silently when the kernel refuses it; JS sees the same datagrams either way.
UdpBatch::UdpBatch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UdpBatch>(info) {
  Napi::Env env = info.Env();
  family_ = info[0].As<Napi::Number>().Int32Value() == 6 ? AF_INET6 : AF_INET;
  std::string addr = info[1].As<Napi::String>().Utf8Value();
  uint32_t port = info[2].As<Napi::Number>().Uint32Value();
  Napi::Object opts = info[3].IsObject() ? info[3].As<Napi::Object>() : Napi::Object::New(env);
  if (port > 65535) throw Napi::RangeError::New(env, "port must be 0..65535");

  sockaddr_storage sa;
  socklen_t salen;
  if (!ParseSockaddr(family_, addr.c_str(), static_cast<uint16_t>(port), &sa, &salen)) {
    throw Napi::TypeError::New(env, "invalid bind address: " + addr);
  }
  int fd = socket(family_, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(env, "socket", errno);
  if (opts.Get("reusePort").ToBoolean()) SetIntOpt(env, fd, SOL_SOCKET, SO_REUSEPORT, 1, "setsockopt SO_REUSEPORT");
  if (family_ == AF_INET6 && opts.Has("ipv6Only")) {
    SetIntOpt(env, fd, IPPROTO_IPV6, IPV6_V6ONLY, opts.Get("ipv6Only").ToBoolean() ? 1 : 0, "setsockopt IPV6_V6ONLY");
  }
  // Buffer sizes: the *FORCE variants (CAP_NET_ADMIN) are not capped by net.core.{r,w}mem_max,
  // which is 208 KB by default — a few bursts of 64 KB GSO sends.
  Napi::Value rcv = opts.Get("recvBufferSize");
  if (rcv.IsNumber()) {
    int v = rcv.As<Napi::Number>().Int32Value();
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v) != 0) SetIntOpt(env, fd, SOL_SOCKET, SO_RCVBUF, v, "setsockopt SO_RCVBUF");
  }
  Napi::Value snd = opts.Get("sendBufferSize");
  if (snd.IsNumber()) {
    int v = snd.As<Napi::Number>().Int32Value();
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof v) != 0) SetIntOpt(env, fd, SOL_SOCKET, SO_SNDBUF, v, "setsockopt SO_SNDBUF");
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), salen) < 0) {
    int err = errno;
    ::close(fd);
    throw ErrnoError(env, "bind", err);
  }
  if (opts.Get("offload").ToBoolean()) {
    int zero = 0, one = 1;
    gso_ = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero) == 0;
    gro_ = setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;
  }
  int r = Attach(env, fd);
  if (r != 0) {
    ::close(fd);
    throw Napi::Error::New(env, std::string("uv_poll_init: ") + uv_strerror(r));
  }
  smsgs_.resize(kSendChunk);
  siov_.resize(kSendChunk);
  snames_.resize(kSendChunk);
  snamelens_.resize(kSendChunk);
  mfirst_.resize(kSendChunk);
  mcount_.resize(kSendChunk);
  sctl_.resize(kSendChunk * kSegCmsg);
}

UdpBatch::~UdpBatch() { CloseFd(); }

Napi::Value UdpBatch::LocalAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (is_closed()) throw Napi::Error::New(env, "socket is closed");
  sockaddr_storage sa;
  socklen_t len = sizeof sa;
  if (getsockname(fd(), reinterpret_cast<sockaddr*>(&sa), &len) < 0) throw ErrnoError(env, "getsockname", errno);
  char buf[INET6_ADDRSTRLEN];
  int port = FormatSockaddr(&sa, buf, sizeof buf);
  Napi::Object o = Napi::Object::New(env);
  o.Set("address", buf);
  o.Set("port", port);
  o.Set("family", sa.ss_family == AF_INET ? "IPv4" : "IPv6");
  return o;
}

// start(onBatch, onError, batch, maxDatagram)
//   onBatch(data: Buffer, meta: Uint32Array, addresses: string[], count): datagram i is
//   data[meta[3i], meta[3i] + meta[3i+1]) from addresses[i]:meta[3i+2]. `meta` is reused per batch.
Napi::Value UdpBatch::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (is_closed()) throw Napi::Error::New(env, "socket is closed");
  if (!info[0].IsFunction() || !info[1].IsFunction()) throw Napi::TypeError::New(env, "start(onBatch, onError, ...)");
  uint32_t batch = info[2].IsNumber() ? info[2].As<Napi::Number>().Uint32Value() : 64;
  uint32_t max_dgram = info[3].IsNumber() ? info[3].As<Napi::Number>().Uint32Value() : 2048;
  if (batch < 1 || batch > 1024) throw Napi::RangeError::New(env, "batch must be 1..1024");
  if (max_dgram < 64 || max_dgram > 65535) throw Napi::RangeError::New(env, "maxDatagram must be 64..65535");
  on_batch_ = Napi::Persistent(info[0].As<Napi::Function>());
  on_error_ = Napi::Persistent(info[1].As<Napi::Function>());
  if (!async_ctx_) async_ctx_ = std::make_unique<Napi::AsyncContext>(env, "PocketProxyUdpRecv", Value());
  // A GRO message holds up to 64 KB of merged datagrams; longer single datagrams than asked for
  // are then dropped here instead of by the kernel's truncation.
  limit_ = max_dgram;
  if (gro_) max_dgram = 65535;
  if (!slab_ || batch != batch_ || max_dgram != max_datagram_) {
    batch_ = batch;
    max_datagram_ = max_dgram;
    rctl_.assign(static_cast<size_t>(batch) * kGroCmsg, 0);
    slab_.reset(new uint8_t[static_cast<size_t>(batch) * max_dgram]);
    rmsgs_.assign(batch, mmsghdr{});
    riov_.resize(batch);
    rnames_.resize(batch);
    for (uint32_t i = 0; i < batch; i++) {
      riov_[i].iov_base = slab_.get() + static_cast<size_t>(i) * max_dgram;
      riov_[i].iov_len = max_dgram;
      rmsgs_[i].msg_hdr.msg_iov = &riov_[i];
      rmsgs_[i].msg_hdr.msg_iovlen = 1;
      rmsgs_[i].msg_hdr.msg_name = &rnames_[i];
    }
    Napi::Uint32Array meta = Napi::Uint32Array::New(env, static_cast<size_t>(batch) * 3 * (gro_ ? 8 : 1));
    meta_ = meta.Data();
    meta_len_ = meta.ElementLength();
    meta_ref_ = Napi::Persistent(meta);
  }
  int r = FdPoller::Start();
  if (r != 0) throw Napi::Error::New(env, std::string("uv_poll_start: ") + uv_strerror(r));
  if (!js_ref_held_) {
    Napi::ObjectWrap<UdpBatch>::Ref();
    js_ref_held_ = true;
  }
  return env.Undefined();
}

Napi::Value UdpBatch::Pause(const Napi::CallbackInfo& info) {
  FdPoller::Stop();
  return info.Env().Undefined();
}

void UdpBatch::OnReadable() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  for (uint32_t i = 0; i < batch_; i++) {
    rmsgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    rmsgs_[i].msg_hdr.msg_flags = 0;
    if (gro_) {
      rmsgs_[i].msg_hdr.msg_control = rctl_.data() + static_cast<size_t>(i) * kGroCmsg;
      rmsgs_[i].msg_hdr.msg_controllen = kGroCmsg;
    }
  }
  int n;
  do {
    n = recvmmsg(fd(), rmsgs_.data(), batch_, MSG_DONTWAIT, nullptr);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    // EAGAIN: spurious wakeup. Anything else (e.g. ECONNREFUSED queued by ICMP) is reported but
    // does not stop the socket: the next datagram is still good.
    if (errno != EAGAIN) {
      stats_.rx_errors += 1;
      CallJs(env, on_error_, Value(), {ErrnoError(env, "recvmmsg", errno).Value()}, *async_ctx_);
    }
    return;
  }
  // Each message is one datagram, or with GRO several of gso_size bytes (the last may be shorter).
  // Pieces an open route takes are written to the TUN here; the rest go to JS in one call.
  const bool open = !open_routes_.empty() && open_tun_ != nullptr && !open_tun_->is_closed();
  const double now_ms = open ? WallClockMs() : 0;
  uint32_t opened = 0;
  size_t total = 0, received = 0;
  pieces_.clear();
  for (int i = 0; i < n; i++) {
    if (rmsgs_[i].msg_hdr.msg_flags & MSG_TRUNC) {
      stats_.rx_truncated += 1;
      continue;
    }
    const uint32_t len = rmsgs_[i].msg_len;
    received += len;
    uint32_t gs = 0;
    if (gro_) {
      for (cmsghdr* c = CMSG_FIRSTHDR(&rmsgs_[i].msg_hdr); c != nullptr; c = CMSG_NXTHDR(&rmsgs_[i].msg_hdr, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
          int v;
          memcpy(&v, CMSG_DATA(c), sizeof v);
          if (v > 0) gs = static_cast<uint32_t>(v);
        }
      }
    }
    const uint32_t seg = gs > 0 && gs < len ? gs : len;
    if (gs > 0 && gs < len) stats_.rx_gro += 1;
    const uint8_t* base = static_cast<const uint8_t*>(riov_[i].iov_base);
    uint32_t done = 0;
    do {
      const uint32_t piece = std::min(seg, len - done);
      if (piece > limit_) {
        stats_.rx_truncated += 1;
      } else if (open && OpenFast(base + done, piece, &rnames_[i], now_ms)) {
        opened++;
      } else {
        pieces_.push_back({static_cast<uint32_t>(i), done, piece});
        total += piece;
      }
      done += piece;
    } while (done < len);
  }
  if (opened > 0) OpenFlush();
  const uint32_t k = static_cast<uint32_t>(pieces_.size());
  stats_.rx_packets += k + opened;
  stats_.rx_bytes += static_cast<double>(received);
  stats_.rx_batches += 1;
  if (k == 0) return;
  if (open) stats_.open_to_js += k;
  if (static_cast<size_t>(k) * 3 > meta_len_) {
    Napi::Uint32Array meta = Napi::Uint32Array::New(env, static_cast<size_t>(k) * 3);
    meta_ = meta.Data();
    meta_len_ = static_cast<size_t>(k) * 3;
    meta_ref_ = Napi::Persistent(meta);
  }
  Napi::Buffer<uint8_t> data = Napi::Buffer<uint8_t>::New(env, total);
  Napi::Array addrs = Napi::Array::New(env, k);
  uint8_t* out = data.Data();
  size_t off = 0;
  const sockaddr_storage* prev = nullptr;
  napi_value prev_str = nullptr;
  int prev_port = 0;
  for (uint32_t j = 0; j < k; j++) {
    const Piece& pc = pieces_[j];
    memcpy(out + off, static_cast<const uint8_t*>(riov_[pc.msg].iov_base) + pc.off, pc.len);
    if (prev == nullptr || !SameSockaddr(prev, &rnames_[pc.msg])) {
      char buf[INET6_ADDRSTRLEN];
      prev_port = FormatSockaddr(&rnames_[pc.msg], buf, sizeof buf);
      prev_str = Napi::String::New(env, buf);
      prev = &rnames_[pc.msg];
    }
    addrs.Set(j, Napi::Value(env, prev_str));
    meta_[3 * j] = static_cast<uint32_t>(off);
    meta_[3 * j + 1] = pc.len;
    meta_[3 * j + 2] = static_cast<uint32_t>(prev_port);
    off += pc.len;
  }
  CallJs(env, on_batch_, Value(), {data, meta_ref_.Value(), addrs, Napi::Number::New(env, k)}, *async_ctx_);
}

void UdpBatch::OnPollError(int uv_status) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  stats_.rx_errors += 1;
  if (!on_error_.IsEmpty()) {
    CallJs(env, on_error_, Value(), {Napi::Error::New(env, std::string("uv_poll: ") + uv_strerror(uv_status)).Value()},
           *async_ctx_);
  }
}

bool UdpBatch::ResolveDest(Napi::Env env, napi_value address, uint32_t port, sockaddr_storage* dst, socklen_t* len) {
  char buf[64];
  size_t n = 0;
  if (napi_get_value_string_latin1(env, address, buf, sizeof buf, &n) != napi_ok || n >= sizeof buf - 1) return false;
  if (port > 65535) return false;
  if (port != last_port_ || strcmp(buf, last_addr_) != 0) {
    if (!ParseSockaddr(family_, buf, static_cast<uint16_t>(port), &last_sa_, &last_len_)) return false;
    memcpy(last_addr_, buf, n + 1);
    last_port_ = port;
  }
  memcpy(dst, &last_sa_, last_len_);
  *len = last_len_;
  return true;
}

uint64_t UdpBatch::PeerKey(const sockaddr_storage& sa, socklen_t len) {
  // FNV-1a over the sockaddr bytes (family, port, address; ParseSockaddr zeroes the padding).
  const uint8_t* p = reinterpret_cast<const uint8_t*>(&sa);
  uint64_t h = 1469598103934665603ull;
  for (socklen_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

uint32_t UdpBatch::SendMessages(uint32_t nmsgs, int* gso_failed) {
  *gso_failed = -1;
  uint32_t sent = 0;
  uint32_t i = 0;
  while (i < nmsgs) {
    int r = sendmmsg(fd(), smsgs_.data() + i, nmsgs - i, MSG_DONTWAIT);
    stats_.tx_syscalls += 1;
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == ENOBUFS) {
        // Socket buffer full: drop the rest of this chunk (UDP may drop; the caller sees the count).
        for (uint32_t j = i; j < nmsgs; j++) stats_.tx_drops += mcount_[j];
        return sent;
      }
      if ((errno == EIO || errno == EINVAL || errno == EMSGSIZE) && mcount_[i] > 1) {
        // EIO: the route cannot checksum-offload (GSO off for this socket); EINVAL / EMSGSIZE: a
        // segment is larger than this peer's path MTU (unsegmented it is IP-fragmented instead; GSO
        // off for this peer). Either way the caller resends from here one datagram per message.
        // (With the peer list full, the socket gives GSO up: the resend below must not try GSO again.)
        if (errno == EIO || no_gso_peers_.size() >= 4096) gso_ = false;
        else no_gso_peers_.insert(PeerKey(snames_[mfirst_[i]], snamelens_[mfirst_[i]]));
        *gso_failed = static_cast<int>(i);
        return sent;
      }
      stats_.tx_errors += mcount_[i];  // this message is bad (EMSGSIZE, ENETUNREACH, ...): skip it
      i++;
      continue;
    }
    for (int j = 0; j < r; j++) {
      stats_.tx_bytes += smsgs_[i + j].msg_len;
      stats_.tx_packets += mcount_[i + j];
      if (mcount_[i + j] > 1) stats_.tx_gso += 1;
      sent += mcount_[i + j];
    }
    i += r;
  }
  return sent;
}

uint32_t UdpBatch::FlushSend(uint32_t count) {
  uint32_t sent = 0;
  uint32_t d = 0;  // next datagram
  while (d < count) {
    uint32_t nmsgs = 0;
    for (uint32_t i = d; i < count;) {
      uint32_t n = 1;
      const size_t size = siov_[i].iov_len;
      if (gso_ && (no_gso_peers_.empty() || no_gso_peers_.count(PeerKey(snames_[i], snamelens_[i])) == 0)) {
        // A run: same destination, same size (the last may be shorter, then it ends the run).
        size_t bytes = size;
        while (i + n < count && n < kMaxGsoSegments && snamelens_[i + n] == snamelens_[i] &&
               memcmp(&snames_[i + n], &snames_[i], snamelens_[i]) == 0 && siov_[i + n].iov_len <= size &&
               bytes + siov_[i + n].iov_len <= 65000) {
          bytes += siov_[i + n].iov_len;
          n++;
          if (siov_[i + n - 1].iov_len < size) break;
        }
      }
      mmsghdr& m = smsgs_[nmsgs];
      memset(&m, 0, sizeof m);
      m.msg_hdr.msg_name = &snames_[i];
      m.msg_hdr.msg_namelen = snamelens_[i];
      m.msg_hdr.msg_iov = &siov_[i];
      m.msg_hdr.msg_iovlen = n;
      if (n > 1) {
        uint8_t* ctl = sctl_.data() + static_cast<size_t>(nmsgs) * kSegCmsg;
        memset(ctl, 0, kSegCmsg);
        m.msg_hdr.msg_control = ctl;
        m.msg_hdr.msg_controllen = kSegCmsg;
        cmsghdr* c = CMSG_FIRSTHDR(&m.msg_hdr);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        const uint16_t gs = static_cast<uint16_t>(size);
        memcpy(CMSG_DATA(c), &gs, sizeof gs);
      }
      mfirst_[nmsgs] = i;
      mcount_[nmsgs] = n;
      nmsgs++;
      i += n;
    }
    int failed;
    sent += SendMessages(nmsgs, &failed);
    if (failed < 0) break;
    // GSO refused (now off for the socket or for that peer): the rest goes as regrouped again.
    stats_.tx_gso_off += 1;
    d = mfirst_[failed];
  }
  return sent;
}

uint32_t UdpBatch::SendPrepared(const iovec* iov, const sockaddr_storage* names, const socklen_t* lens, uint32_t n) {
  if (is_closed()) return 0;
  uint32_t sent = 0;
  for (uint32_t at = 0; at < n; at += kSendChunk) {
    const uint32_t k = std::min<uint32_t>(kSendChunk, n - at);
    for (uint32_t i = 0; i < k; i++) {
      siov_[i] = iov[at + i];
      memcpy(&snames_[i], &names[at + i], lens[at + i]);
      snamelens_[i] = lens[at + i];
    }
    sent += FlushSend(k);
  }
  return sent;
}

// sendBatch(datagrams: {data: Uint8Array, address: string, port: number}[]) -> number sent
Napi::Value UdpBatch::SendBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (is_closed()) throw Napi::Error::New(env, "socket is closed");
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "sendBatch(datagrams[])");
  Napi::Array arr = info[0].As<Napi::Array>();
  uint32_t total = arr.Length();
  // Keys made once per call, not per element (Node 20 cannot hold references to strings).
  napi_value kd = Napi::String::New(env, "data"), ka = Napi::String::New(env, "address"), kp = Napi::String::New(env, "port");
  uint32_t sent = 0, fill = 0;
  for (uint32_t i = 0; i < total; i++) {
    Napi::Value v = arr[i];
    if (!v.IsObject()) throw Napi::TypeError::New(env, "sendBatch: element is not an object");
    Napi::Object o = v.As<Napi::Object>();
    Napi::Value d = o.Get(kd);
    Napi::Value a = o.Get(ka);
    Napi::Value p = o.Get(kp);
    if (!d.IsTypedArray() || !a.IsString() || !p.IsNumber()) {
      throw Napi::TypeError::New(env, "sendBatch: element needs {data: Uint8Array, address: string, port: number}");
    }
    Napi::Uint8Array bytes = d.As<Napi::Uint8Array>();
    if (!ResolveDest(env, a, p.As<Napi::Number>().Uint32Value(), &snames_[fill], &snamelens_[fill])) {
      throw Napi::TypeError::New(env, "sendBatch: invalid address or port");
    }
    siov_[fill].iov_base = bytes.Data();
    siov_[fill].iov_len = bytes.ByteLength();
    if (++fill == kSendChunk) {
      sent += FlushSend(fill);
      fill = 0;
    }
  }
  if (fill > 0) sent += FlushSend(fill);
  return Napi::Number::New(env, sent);
}

// send(data, address, port) -> boolean
Napi::Value UdpBatch::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (is_closed()) throw Napi::Error::New(env, "socket is closed");
  if (!info[0].IsTypedArray() || !info[1].IsString() || !info[2].IsNumber()) {
    throw Napi::TypeError::New(env, "send(data: Uint8Array, address: string, port: number)");
  }
  Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
  if (!ResolveDest(env, info[1], info[2].As<Napi::Number>().Uint32Value(), &snames_[0], &snamelens_[0])) {
    throw Napi::TypeError::New(env, "send: invalid address or port");
  }
  siov_[0].iov_base = bytes.Data();
  siov_[0].iov_len = bytes.ByteLength();
  return Napi::Boolean::New(env, FlushSend(1) == 1);
}

Napi::Value UdpBatch::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("rxPackets", stats_.rx_packets);
  o.Set("rxBytes", stats_.rx_bytes);
  o.Set("rxBatches", stats_.rx_batches);
  o.Set("rxTruncated", stats_.rx_truncated);
  o.Set("rxErrors", stats_.rx_errors);
  o.Set("txPackets", stats_.tx_packets);
  o.Set("txBytes", stats_.tx_bytes);
  o.Set("txDrops", stats_.tx_drops);
  o.Set("txErrors", stats_.tx_errors);
  o.Set("txSyscalls", stats_.tx_syscalls);
  o.Set("rxGro", stats_.rx_gro);
  o.Set("txGso", stats_.tx_gso);
  o.Set("txGsoOff", stats_.tx_gso_off);
  o.Set("openNative", stats_.open_native);
  o.Set("openToJs", stats_.open_to_js);
  o.Set("openRoutes", static_cast<double>(open_routes_.size()));
  o.Set("gso", gso_);
  o.Set("gro", gro_);
  return o;
}

Napi::Value UdpBatch::JsRef(const Napi::CallbackInfo& info) {
  SetRef(true);
  return info.Env().Undefined();
}

Napi::Value UdpBatch::JsUnref(const Napi::CallbackInfo& info) {
  SetRef(false);
  return info.Env().Undefined();
}

Napi::Value UdpBatch::Close(const Napi::CallbackInfo& info) {
  CloseFd();
  open_routes_.clear();
  open_tun_ = nullptr;
  open_tun_ref_.Reset();
  on_batch_.Reset();
  on_error_.Reset();
  if (js_ref_held_) {
    js_ref_held_ = false;
    Napi::ObjectWrap<UdpBatch>::Unref();
  }
  return info.Env().Undefined();
}

}  // namespace pp
