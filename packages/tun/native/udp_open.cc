// The native open path of UdpBatch: a datagram that is a transport frame to a session with an open
// route is authenticated, replay-checked and written to the TUN from the receive callback, without
// a call into JS. Why: on this kind of host each call into JS after the loop slept costs ~100-200 us
// (docs/benchmarks.md, issue 13), and a reply crosses the relay's open path (device -> customer)
// once per round trip of every customer connection.
//
// A route is a cache of what JS would do with such a frame, so it only takes the frames whose
// outcome is certain: the session's current index, from the peer's current endpoint, a counter the
// shared replay window accepts and below the session's limit, before its reject-after time, that
// authenticates and holds an IPv4 packet (with the required source, when set). Everything else —
// keepalives, JSON messages, other versions, spoofed sources, replays, bad tags, new endpoints,
// other sessions — is left untouched for JS, which decides and counts as before. A frame that fails
// here was decrypted into a scratch buffer, so JS sees the original bytes.
//
// Frame layout (docs/protocol.md): type 4, version 1, 2 zero bytes, receiver index u32le,
// counter u64le, ciphertext || 16-byte tag. Nonce: 4 zero bytes || counter (aead.h).
#include <string.h>

#include "aead.h"
#include "sockaddr.h"
#include "tun_queue.h"
#include "udp_batch.h"

namespace pp {

namespace {

constexpr uint32_t kHeaderLen = 16;
constexpr uint32_t kOverhead = kHeaderLen + Aead::kTagLen;
constexpr uint32_t kReplayWindow = 2048;               // protocol REPLAY_WINDOW
constexpr uint32_t kReplayWords = kReplayWindow / 32 + 1;  // protocol REPLAY_WORDS

uint32_t Le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

uint64_t Le64(const uint8_t* p) { return static_cast<uint64_t>(Le32(p)) | static_cast<uint64_t>(Le32(p + 4)) << 32; }

// The protocol's ReplayWindow (packages/protocol/src/replay.ts), on its memory: `top` is cell[0].
// Counters are below 2^52 here (the route's limit), so they are exact as doubles.
bool ReplayCheck(const uint32_t* bits, double top, uint64_t c) {
  const double cd = static_cast<double>(c);
  if (cd > top) return true;
  if (top - cd >= kReplayWindow) return false;
  return (bits[(c / 32) % kReplayWords] & (1u << (c & 31))) == 0;
}

void ReplayMark(uint32_t* bits, double* top, uint64_t c) {
  const int64_t block = static_cast<int64_t>(c / 32);
  if (static_cast<double>(c) > *top) {
    const int64_t top_block = *top < 0 ? -1 : static_cast<int64_t>(*top) / 32;
    const int64_t advance = std::min<int64_t>(block - top_block, kReplayWords);
    for (int64_t i = 1; i <= advance; i++) bits[(top_block + i + kReplayWords) % kReplayWords] = 0;
    *top = static_cast<double>(c);
  }
  bits[block % kReplayWords] |= 1u << (c & 31);
}

}  // namespace

bool UdpBatch::OpenFast(const uint8_t* f, uint32_t len, const sockaddr_storage* from, double now_ms) {
  if (len < kOverhead || f[0] != 4 || f[1] != 1 || f[2] != 0 || f[3] != 0) return false;
  auto it = open_routes_.find(Le32(f + 4));
  if (it == open_routes_.end()) return false;
  OpenRoute& r = it->second;
  if (!(now_ms < r.expires_at) || r.key->dec_ == nullptr || !SameSockaddr(from, &r.from)) return false;
  const uint64_t c = Le64(f + 8);
  if (!(static_cast<double>(c) < r.limit) || !ReplayCheck(r.bits, r.cell[0], c)) return false;
  const uint32_t n = len - kOverhead;
  if (n < 20) return false;  // keepalives and anything too short for IPv4: JS
  uint8_t* pt = open_pt_.get();
  if (!r.key->OpenOne(c, f + kHeaderLen, len - kHeaderLen, pt)) return false;
  if (pt[0] >> 4 != 4) return false;                                   // messages, IPv6: JS
  if (r.check_src && memcmp(pt + 12, r.inner_src, 4) != 0) return false;  // spoofed: JS drops it
  ReplayMark(r.bits, &r.cell[0], c);
  r.cell[1] += 1;
  r.cell[2] = now_ms;
  stats_.open_native += 1;
  if (open_tun_->vnet_) {
    open_tun_->coalescer_->Add(pt, n);  // copies or writes at once
    open_pending_++;
  } else {
    open_tun_->WriteOne(pt, n);
  }
  return true;
}

void UdpBatch::OpenFlush() {
  if (open_pending_ == 0) return;
  open_pending_ = 0;
  if (open_tun_ != nullptr && !open_tun_->is_closed()) open_tun_->coalescer_->Flush();
}

// setOpenTun(tun: TunQueue | null): where opened packets go. Clears every route.
Napi::Value UdpBatch::SetOpenTun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  open_routes_.clear();
  open_tun_ = nullptr;
  open_tun_ref_.Reset();
  if (info[0].IsObject()) {
    TunQueue* t = TunQueue::Unwrap(info[0].As<Napi::Object>());
    if (t == nullptr || t->is_closed()) throw Napi::TypeError::New(env, "setOpenTun(tun: open TunQueue | null)");
    open_tun_ = t;
    open_tun_ref_ = Napi::Persistent(info[0].As<Napi::Object>());
    if (!open_pt_) open_pt_.reset(new uint8_t[65536]);
  }
  return env.Undefined();
}

// setOpenRoute(index: u32, key: Aead, bits: Uint32Array(65), cell: Float64Array(>=3), limit,
//              expiresAt, address, port, innerSrc: u32 IPv4 | -1 for any)
Napi::Value UdpBatch::SetOpenRoute(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (open_tun_ == nullptr) throw Napi::Error::New(env, "setOpenRoute: no TUN (setOpenTun)");
  if (info.Length() < 9 || !info[0].IsNumber() || !info[1].IsObject() || !info[2].IsTypedArray() ||
      !info[3].IsTypedArray() || !info[4].IsNumber() || !info[5].IsNumber() || !info[6].IsString() ||
      !info[7].IsNumber() || !info[8].IsNumber())
    throw Napi::TypeError::New(env, "setOpenRoute(index, key, bits, cell, limit, expiresAt, address, port, innerSrc)");
  Napi::TypedArray bits = info[2].As<Napi::TypedArray>();
  Napi::TypedArray cell = info[3].As<Napi::TypedArray>();
  if (bits.TypedArrayType() != napi_uint32_array || bits.ElementLength() != kReplayWords)
    throw Napi::TypeError::New(env, "setOpenRoute: bits must be a Uint32Array of the replay window's words");
  if (cell.TypedArrayType() != napi_float64_array || cell.ElementLength() < 3)
    throw Napi::TypeError::New(env, "setOpenRoute: cell must be a Float64Array of 3");
  Aead* key = Aead::Unwrap(info[1].As<Napi::Object>());
  if (key == nullptr || key->dec_ == nullptr) throw Napi::TypeError::New(env, "setOpenRoute: key is not a live Aead");
  const double limit = info[4].As<Napi::Number>().DoubleValue();
  if (!(limit >= 0 && limit <= 4503599627370496.0)) throw Napi::RangeError::New(env, "setOpenRoute: limit must be 0..2^52");
  const uint32_t port = info[7].As<Napi::Number>().Uint32Value();
  OpenRoute r;
  std::string addr = info[6].As<Napi::String>().Utf8Value();
  if (port > 65535 || !ParseSockaddr(family_, addr.c_str(), static_cast<uint16_t>(port), &r.from, &r.from_len))
    throw Napi::TypeError::New(env, "setOpenRoute: invalid address or port");
  const double src = info[8].As<Napi::Number>().DoubleValue();
  if (src >= 0) {
    if (!(src <= 4294967295.0)) throw Napi::RangeError::New(env, "setOpenRoute: innerSrc must be a u32 or -1");
    const uint32_t s = static_cast<uint32_t>(src);
    r.check_src = true;
    r.inner_src[0] = static_cast<uint8_t>(s >> 24);
    r.inner_src[1] = static_cast<uint8_t>(s >> 16);
    r.inner_src[2] = static_cast<uint8_t>(s >> 8);
    r.inner_src[3] = static_cast<uint8_t>(s);
  }
  Napi::Uint32Array b = info[2].As<Napi::Uint32Array>();
  Napi::Float64Array c = info[3].As<Napi::Float64Array>();
  r.key = key;
  r.key_ref = Napi::Persistent(info[1].As<Napi::Object>());
  r.bits = b.Data();
  r.bits_ref = Napi::Persistent(b);
  r.cell = c.Data();
  r.cell_ref = Napi::Persistent(c);
  r.limit = limit;
  r.expires_at = info[5].As<Napi::Number>().DoubleValue();
  open_routes_[info[0].As<Napi::Number>().Uint32Value()] = std::move(r);
  return env.Undefined();
}

// deleteOpenRoute(index: u32 | -1 for all) -> boolean (one was there)
Napi::Value UdpBatch::DeleteOpenRoute(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "deleteOpenRoute(index: number)");
  if (info[0].As<Napi::Number>().DoubleValue() < 0) {
    const bool any = !open_routes_.empty();
    open_routes_.clear();
    return Napi::Boolean::New(env, any);
  }
  return Napi::Boolean::New(env, open_routes_.erase(info[0].As<Napi::Number>().Uint32Value()) > 0);
}

}  // namespace pp
