// JS access to MarkRedundantAcks (ack_filter.h), for unit tests and the differential fuzz run:
//   ackMarkRedundant(packets: Uint8Array[]) -> Uint8Array (1: a later ACK in the batch covers this one)
#include <napi.h>

#include <memory>
#include <vector>

#include "ack_filter.h"

namespace pp {

Napi::Value AckMarkRedundant(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "ackMarkRedundant(packets: Uint8Array[])");
  Napi::Array arr = info[0].As<Napi::Array>();
  const uint32_t n = arr.Length();
  std::vector<uint8_t> slab;
  std::vector<uint32_t> offsets{0};
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw Napi::TypeError::New(env, "ackMarkRedundant: element is not a Uint8Array");
    Napi::Uint8Array p = v.As<Napi::Uint8Array>();
    slab.insert(slab.end(), p.Data(), p.Data() + p.ByteLength());
    offsets.push_back(static_cast<uint32_t>(slab.size()));
  }
  std::unique_ptr<bool[]> drop(new bool[n > 0 ? n : 1]);
  MarkRedundantAcks(slab.data(), offsets.data(), n, drop.get());
  Napi::Uint8Array out = Napi::Uint8Array::New(env, n);
  for (uint32_t i = 0; i < n; i++) out[i] = drop[i] ? 1 : 0;
  return out;
}

}  // namespace pp
