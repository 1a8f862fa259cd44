// JS access to the pure stamp functions (syn_stamp.h), for unit tests and the differential fuzz run:
//   synStamp(packet: Uint8Array, addr: string, port: number) -> Buffer | number (a StampResult)
//   synUnstamp(packet: Uint8Array) -> Buffer | number (0: no stamp in it; < 0: a StampResult)
//   synReadStamp(savedSyn: Uint8Array) -> [addr: string, port: number] | null
#include <arpa/inet.h>
#include <napi.h>

#include <vector>

#include "syn_stamp.h"

namespace pp {

Napi::Value SynStamp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsTypedArray() || !info[1].IsString() || !info[2].IsNumber())
    throw Napi::TypeError::New(env, "synStamp(packet: Uint8Array, addr: string, port: number)");
  Napi::Uint8Array in = info[0].As<Napi::Uint8Array>();
  in_addr a{};
  if (inet_pton(AF_INET, info[1].As<Napi::String>().Utf8Value().c_str(), &a) != 1)
    throw Napi::TypeError::New(env, "synStamp: addr is not an IPv4 address");
  const double p = info[2].As<Napi::Number>().DoubleValue();
  if (!(p >= 0 && p <= 65535) || p != static_cast<double>(static_cast<uint16_t>(p)))
    throw Napi::TypeError::New(env, "synStamp: port must be an integer 0-65535");
  std::vector<uint8_t> out(in.ByteLength() + kStampGrowth);
  const int n = StampSyn(in.Data(), in.ByteLength(), a.s_addr, htons(static_cast<uint16_t>(p)), out.data());
  if (n < 0) return Napi::Number::New(env, n);
  return Napi::Buffer<uint8_t>::Copy(env, out.data(), static_cast<size_t>(n));
}

Napi::Value SynUnstamp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "synUnstamp(packet: Uint8Array)");
  Napi::Uint8Array in = info[0].As<Napi::Uint8Array>();
  std::vector<uint8_t> out(in.ByteLength() + 1);
  const int n = UnstampSyn(in.Data(), in.ByteLength(), out.data());
  if (n <= 0) return Napi::Number::New(env, n);
  return Napi::Buffer<uint8_t>::Copy(env, out.data(), static_cast<size_t>(n));
}

Napi::Value SynReadStamp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "synReadStamp(savedSyn: Uint8Array)");
  Napi::Uint8Array in = info[0].As<Napi::Uint8Array>();
  uint32_t addr = 0;
  uint16_t port = 0;
  if (!ReadStamp(in.Data(), in.ByteLength(), &addr, &port)) return env.Null();
  char s[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &addr, s, sizeof s);
  Napi::Array r = Napi::Array::New(env, 2);
  r.Set(0u, Napi::String::New(env, s));
  r.Set(1u, Napi::Number::New(env, ntohs(port)));
  return r;
}

}  // namespace pp
