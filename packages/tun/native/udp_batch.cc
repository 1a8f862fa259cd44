#include "udp_batch.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "errno_error.h"
#include "js_call.h"
#include "sockaddr.h"

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
                     });
}

namespace {
void SetIntOpt(Napi::Env env, int fd, int level, int name, int value, const char* what) {
  if (setsockopt(fd, level, name, &value, sizeof value) < 0) {
    int err = errno;
    ::close(fd);
    throw ErrnoError(env, what, err);
  }
}
}  // namespace

// new UdpBatch(family: 4 | 6, address: string, port: number,
//              opts: {reusePort?, recvBufferSize?, sendBufferSize?, ipv6Only?})
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
  Napi::Value rcv = opts.Get("recvBufferSize");
  if (rcv.IsNumber()) SetIntOpt(env, fd, SOL_SOCKET, SO_RCVBUF, rcv.As<Napi::Number>().Int32Value(), "setsockopt SO_RCVBUF");
  Napi::Value snd = opts.Get("sendBufferSize");
  if (snd.IsNumber()) SetIntOpt(env, fd, SOL_SOCKET, SO_SNDBUF, snd.As<Napi::Number>().Int32Value(), "setsockopt SO_SNDBUF");
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), salen) < 0) {
    int err = errno;
    ::close(fd);
    throw ErrnoError(env, "bind", err);
  }
  int r = Attach(env, fd);
  if (r != 0) {
    ::close(fd);
    throw Napi::Error::New(env, std::string("uv_poll_init: ") + uv_strerror(r));
  }
  smsgs_.resize(kSendChunk);
  siov_.resize(kSendChunk);
  snames_.resize(kSendChunk);
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
  if (!slab_ || batch != batch_ || max_dgram != max_datagram_) {
    batch_ = batch;
    max_datagram_ = max_dgram;
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
    Napi::Uint32Array meta = Napi::Uint32Array::New(env, static_cast<size_t>(batch) * 3);
    meta_ = meta.Data();
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
  size_t total = 0;
  for (int i = 0; i < n; i++) {
    if (rmsgs_[i].msg_hdr.msg_flags & MSG_TRUNC) continue;
    total += rmsgs_[i].msg_len;
  }
  Napi::Buffer<uint8_t> data = Napi::Buffer<uint8_t>::New(env, total);
  Napi::Array addrs = Napi::Array::New(env);
  uint8_t* out = data.Data();
  size_t off = 0;
  uint32_t k = 0;
  const sockaddr_storage* prev = nullptr;
  napi_value prev_str = nullptr;
  for (int i = 0; i < n; i++) {
    if (rmsgs_[i].msg_hdr.msg_flags & MSG_TRUNC) {
      stats_.rx_truncated += 1;
      continue;
    }
    uint32_t len = rmsgs_[i].msg_len;
    memcpy(out + off, riov_[i].iov_base, len);
    char buf[INET6_ADDRSTRLEN];
    int port;
    if (prev != nullptr && SameSockaddr(prev, &rnames_[i])) {
      port = static_cast<int>(meta_[3 * (k - 1) + 2]);
    } else {
      port = FormatSockaddr(&rnames_[i], buf, sizeof buf);
      prev_str = Napi::String::New(env, buf);
      prev = &rnames_[i];
    }
    addrs.Set(k, Napi::Value(env, prev_str));
    meta_[3 * k] = static_cast<uint32_t>(off);
    meta_[3 * k + 1] = len;
    meta_[3 * k + 2] = static_cast<uint32_t>(port);
    off += len;
    k++;
  }
  if (k == 0) return;
  stats_.rx_packets += k;
  stats_.rx_bytes += static_cast<double>(total);
  stats_.rx_batches += 1;
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

uint32_t UdpBatch::FlushSend(uint32_t count) {
  uint32_t sent = 0;
  uint32_t i = 0;
  while (i < count) {
    int r = sendmmsg(fd(), smsgs_.data() + i, count - i, MSG_DONTWAIT);
    stats_.tx_syscalls += 1;
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == ENOBUFS) {
        // Socket buffer full: drop the rest of this chunk (UDP may drop; the caller sees the count).
        stats_.tx_drops += count - i;
        return sent;
      }
      stats_.tx_errors += 1;  // this one datagram is bad (EMSGSIZE, ENETUNREACH, ...): skip it
      i++;
      continue;
    }
    for (int j = 0; j < r; j++) stats_.tx_bytes += smsgs_[i + j].msg_len;
    stats_.tx_packets += r;
    sent += r;
    i += r;
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
    mmsghdr& m = smsgs_[fill];
    memset(&m, 0, sizeof m);
    if (!ResolveDest(env, a, p.As<Napi::Number>().Uint32Value(), &snames_[fill], &m.msg_hdr.msg_namelen)) {
      throw Napi::TypeError::New(env, "sendBatch: invalid address or port");
    }
    siov_[fill].iov_base = bytes.Data();
    siov_[fill].iov_len = bytes.ByteLength();
    m.msg_hdr.msg_name = &snames_[fill];
    m.msg_hdr.msg_iov = &siov_[fill];
    m.msg_hdr.msg_iovlen = 1;
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
  mmsghdr& m = smsgs_[0];
  memset(&m, 0, sizeof m);
  if (!ResolveDest(env, info[1], info[2].As<Napi::Number>().Uint32Value(), &snames_[0], &m.msg_hdr.msg_namelen)) {
    throw Napi::TypeError::New(env, "send: invalid address or port");
  }
  siov_[0].iov_base = bytes.Data();
  siov_[0].iov_len = bytes.ByteLength();
  m.msg_hdr.msg_name = &snames_[0];
  m.msg_hdr.msg_iov = &siov_[0];
  m.msg_hdr.msg_iovlen = 1;
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
  on_batch_.Reset();
  on_error_.Reset();
  if (js_ref_held_) {
    js_ref_held_ = false;
    Napi::ObjectWrap<UdpBatch>::Unref();
  }
  return info.Env().Undefined();
}

}  // namespace pp
