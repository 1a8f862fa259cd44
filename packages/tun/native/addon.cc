// pp_tun: PocketProxy's native addon. Exposes TunQueue (a TUN device queue with batched reads),
// UdpBatch (recvmmsg/sendmmsg UDP socket), getOriginalDst (SO_ORIGINAL_DST) and
// Aead (ChaCha20-Poly1305 with a reused, keyed context; single and batched). Loaded only by
// packages/tun/src/native.ts; everything else goes through the typed wrappers there.
// Context-aware (NODE_API_MODULE), so each worker thread can load it and open its own TUN queue.
#include <napi.h>

#include "aead.h"
#include "tun_queue.h"
#include "udp_batch.h"

namespace pp {
Napi::Value GetOriginalDst(const Napi::CallbackInfo& info);
Napi::Value OffloadSegment(const Napi::CallbackInfo& info);
Napi::Value OffloadCoalesce(const Napi::CallbackInfo& info);
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Aead", pp::Aead::Init(env));
  exports.Set("TunQueue", pp::TunQueue::Init(env));
  exports.Set("UdpBatch", pp::UdpBatch::Init(env));
  exports.Set("getOriginalDst", Napi::Function::New(env, pp::GetOriginalDst, "getOriginalDst"));
  exports.Set("offloadSegment", Napi::Function::New(env, pp::OffloadSegment, "offloadSegment"));
  exports.Set("offloadCoalesce", Napi::Function::New(env, pp::OffloadCoalesce, "offloadCoalesce"));
  return exports;
}

NODE_API_MODULE(pp_tun, Init)
