// JS access to the pure offload functions (offload.h), for unit tests and the fuzz run:
//   offloadSegment(vnetPacket: Uint8Array) -> Buffer[] | null   (null: the header does not fit the packet)
//   offloadCoalesce(packets: Uint8Array[], carry?: {maxSeg, flows: [cust, custPort, dev, devPort, mss][]})
//     -> Buffer[] (each: 10-byte vnet header + packet); `carry`: a CarryMss (carry_mss.h) of those flows
//     (IPv4 addresses as host-order numbers, ports as numbers) as the Coalescer's sizer
#include <napi.h>

#include <memory>
#include <string.h>
#include <vector>

#include <netinet/in.h>

#include "carry_mss.h"
#include "offload.h"

namespace pp {

Napi::Value OffloadSegment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "offloadSegment(vnetPacket: Uint8Array)");
  Napi::Uint8Array in = info[0].As<Napi::Uint8Array>();
  if (in.ByteLength() < kVnetHdrLen) return env.Null();
  std::vector<uint8_t> out(kMaxSegmentOutput);
  std::vector<uint32_t> ends;
  const VnetHdr h = ReadVnetHdr(in.Data());
  if (Segment(h, in.Data() + kVnetHdrLen, in.ByteLength() - kVnetHdrLen, out.data(), out.size(), ends) < 0) return env.Null();
  Napi::Array arr = Napi::Array::New(env, ends.size());
  uint32_t start = 0;
  for (size_t i = 0; i < ends.size(); i++) {
    arr.Set(static_cast<uint32_t>(i), Napi::Buffer<uint8_t>::Copy(env, out.data() + start, ends[i] - start));
    start = ends[i];
  }
  return arr;
}

namespace {
struct Collect {
  Napi::Env env;
  Napi::Array arr;
  uint32_t n = 0;
};
void CollectSink(void* ctx, const uint8_t* hdr, const uint8_t* pkt, size_t len, uint32_t) {
  Collect* c = static_cast<Collect*>(ctx);
  Napi::Buffer<uint8_t> b = Napi::Buffer<uint8_t>::New(c->env, kVnetHdrLen + len);
  memcpy(b.Data(), hdr, kVnetHdrLen);
  memcpy(b.Data() + kVnetHdrLen, pkt, len);
  c->arr.Set(c->n++, b);
}
}  // namespace

Napi::Value OffloadCoalesce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "offloadCoalesce(packets: Uint8Array[])");
  Napi::Array in = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < in.Length(); i++) {
    if (!in.Get(i).IsTypedArray()) throw Napi::TypeError::New(env, "offloadCoalesce: element is not a Uint8Array");
  }
  std::unique_ptr<CarryMss> carry;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    const char* usage = "offloadCoalesce: carry is {maxSeg: 536-65495, flows: [cust, custPort, dev, devPort, mss][]}";
    if (!info[1].IsObject()) throw Napi::TypeError::New(env, usage);
    Napi::Object o = info[1].As<Napi::Object>();
    const Napi::Value max = o.Get("maxSeg");
    const Napi::Value flows = o.Get("flows");
    if (!max.IsNumber() || !flows.IsArray()) throw Napi::TypeError::New(env, usage);
    const uint32_t max_seg = max.As<Napi::Number>().Uint32Value();
    if (max_seg < 536 || max_seg > 65495) throw Napi::RangeError::New(env, usage);
    carry = std::make_unique<CarryMss>(static_cast<uint16_t>(max_seg));
    Napi::Array fa = flows.As<Napi::Array>();
    for (uint32_t i = 0; i < fa.Length(); i++) {
      if (!fa.Get(i).IsArray()) throw Napi::TypeError::New(env, usage);
      Napi::Array f = fa.Get(i).As<Napi::Array>();
      uint32_t v[5];
      for (uint32_t k = 0; k < 5; k++) {
        if (!f.Get(k).IsNumber()) throw Napi::TypeError::New(env, usage);
        v[k] = f.Get(k).As<Napi::Number>().Uint32Value();
      }
      carry->Record(htonl(v[0]), htons(static_cast<uint16_t>(v[1])), htonl(v[2]), htons(static_cast<uint16_t>(v[3])),
                    static_cast<uint16_t>(v[4]));
    }
  }
  Collect c{env, Napi::Array::New(env)};
  auto co = std::make_unique<Coalescer>(&CollectSink, &c);
  if (carry) co->SetSizer(&CarryMss::Sizer, carry.get());
  for (uint32_t i = 0; i < in.Length(); i++) {
    Napi::Uint8Array p = in.Get(i).As<Napi::Uint8Array>();
    co->Add(p.Data(), p.ByteLength());
  }
  co->Flush();
  return c.arr;
}

}  // namespace pp
