// pp_tun: PocketProxy's native addon. Exposes TunQueue (a TUN device queue with batched reads),
// UdpBatch (recvmmsg/sendmmsg UDP socket), getOriginalDst (SO_ORIGINAL_DST), SpliceRelay (a proxied connection's bytes kernel to kernel), setTcpFlag (TCP_QUICKACK/TCP_CORK), openTcpSocket and bindToDevice (egress sockets) and
// Aead (ChaCha20-Poly1305 with a reused, keyed context; single and batched). Loaded only by
// packages/tun/src/native.ts; everything else goes through the typed wrappers there.
// Context-aware (NODE_API_MODULE), so each worker thread can load it and open its own TUN queue.
#include <malloc.h>
#include <napi.h>
#include <sys/prctl.h>

#include "aead.h"
#include "tun_queue.h"
#include "udp_batch.h"

namespace pp {
Napi::Value GetOriginalDst(const Napi::CallbackInfo& info);
Napi::Value OffloadSegment(const Napi::CallbackInfo& info);
Napi::Value OffloadCoalesce(const Napi::CallbackInfo& info);
Napi::Value SetTcpFlag(const Napi::CallbackInfo& info);
Napi::Value OpenTcpSocket(const Napi::CallbackInfo& info);
Napi::Value BindToDevice(const Napi::CallbackInfo& info);
Napi::Function InitSpliceRelay(Napi::Env env);
Napi::Value SynStamp(const Napi::CallbackInfo& info);
Napi::Value SynUnstamp(const Napi::CallbackInfo& info);
Napi::Value SynReadStamp(const Napi::CallbackInfo& info);
Napi::Value AckMarkRedundant(const Napi::CallbackInfo& info);
Napi::Value TunSteerByFlow(const Napi::CallbackInfo& info);
}

// setThreadName(name): names the calling thread (PR_SET_NAME, what top -H and /proc/<pid>/task/<tid>/comm
// show; the kernel keeps 15 bytes). Node names none of its threads, so the agent's tunnel worker
// could not be told apart from V8's helper threads when its CPU is measured. False when refused.
static Napi::Value SetThreadName(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "setThreadName(name: string)");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.empty() || name.size() > 15) throw Napi::TypeError::New(env, "setThreadName: name must be 1-15 bytes");
  return Napi::Boolean::New(env, prctl(PR_SET_NAME, name.c_str(), 0, 0, 0) == 0);
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Packet batches reach JS as Buffers of up to a few hundred KB, made and dropped thousands of
  // times a second. glibc raises its mmap threshold to the largest such block freed, after which
  // they come from the heap and their pages stay in the process after free (tens of MB of RSS
  // after bulk traffic). A fixed threshold keeps large blocks mmapped and returned on free.
  static bool malloc_tuned = false;
  if (!malloc_tuned) {
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    malloc_tuned = true;
  }
  exports.Set("Aead", pp::Aead::Init(env));
  exports.Set("TunQueue", pp::TunQueue::Init(env));
  exports.Set("UdpBatch", pp::UdpBatch::Init(env));
  exports.Set("SpliceRelay", pp::InitSpliceRelay(env));
  exports.Set("getOriginalDst", Napi::Function::New(env, pp::GetOriginalDst, "getOriginalDst"));
  exports.Set("offloadSegment", Napi::Function::New(env, pp::OffloadSegment, "offloadSegment"));
  exports.Set("setTcpFlag", Napi::Function::New(env, pp::SetTcpFlag, "setTcpFlag"));
  exports.Set("openTcpSocket", Napi::Function::New(env, pp::OpenTcpSocket, "openTcpSocket"));
  exports.Set("bindToDevice", Napi::Function::New(env, pp::BindToDevice, "bindToDevice"));
  exports.Set("offloadCoalesce", Napi::Function::New(env, pp::OffloadCoalesce, "offloadCoalesce"));
  exports.Set("synStamp", Napi::Function::New(env, pp::SynStamp, "synStamp"));
  exports.Set("synUnstamp", Napi::Function::New(env, pp::SynUnstamp, "synUnstamp"));
  exports.Set("synReadStamp", Napi::Function::New(env, pp::SynReadStamp, "synReadStamp"));
  exports.Set("ackMarkRedundant", Napi::Function::New(env, pp::AckMarkRedundant, "ackMarkRedundant"));
  exports.Set("tunSteerByFlow", Napi::Function::New(env, pp::TunSteerByFlow, "tunSteerByFlow"));
  exports.Set("setThreadName", Napi::Function::New(env, SetThreadName, "setThreadName"));
  return exports;
}

NODE_API_MODULE(pp_tun, Init)
