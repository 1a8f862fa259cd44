// Aead: ChaCha20-Poly1305 (RFC 8439) under one key, for the tunnel's transport frames.
//
// Why native: node:crypto builds a cipher object per packet and cannot write into a given buffer
// (~10 us per 1380-byte seal); here the EVP_CIPHER_CTX is created and keyed once and each packet
// only sets the nonce, so a seal is ~the cipher's own cost plus one JS->C++ call, and the batch
// forms pay that call once per batch.
//
// OpenSSL: the one inside the node binary (it exports the OpenSSL symbols; headers come from
// /usr/include/node/openssl), so nothing else is linked.
//
// Two ways through it, byte for byte the same (checked at load and by test/aead.test.ts):
// - "direct" (the default where the node binary exports them): OpenSSL's own ChaCha20 and Poly1305
//   routines (ChaCha20_ctr32, Poly1305_Init/Update/Final: the ones its EVP cipher calls), put together
//   here as RFC 8439 §2.8 without associated data. Per packet that skips EVP's init, parameter and
//   control calls, ~40 % of a small packet's seal or open on the lab's hosts (docs/benchmarks.md,
//   "the tunnel's AEAD without EVP"); a packet up to kOneCall bytes gets its Poly1305 key and its
//   keystream from one ChaCha20 call. The tag is checked (CRYPTO_memcmp, constant time) before a
//   byte is decrypted. These routines are OpenSSL internals that node exports, not API: they are
//   looked up at run time (dlsym), and used only when all are there and a known-answer run against
//   the EVP cipher agrees; otherwise, or with POCKETPROXY_AEAD=evp, every key takes the EVP way.
// - "evp": the EVP cipher (EVP_DecryptFinal_ex's constant-time tag check).
//
// Nonce: 4 zero bytes || u64le(counter) — Noise's ChaChaPoly nonce, as in docs/protocol.md.
// No associated data (transport frames have none). Output: ciphertext || 16-byte tag.
#pragma once
#include <napi.h>
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>

namespace pp {

class TunQueue;

class Aead : public Napi::ObjectWrap<Aead> {
 public:
  static constexpr size_t kTagLen = 16;
  static constexpr size_t kKeyLen = 32;

  // A packet up to this long is sealed or opened with one ChaCha20 call (through a stack buffer).
  static constexpr size_t kOneCall = 512;

  static Napi::Function Init(Napi::Env env);
  // new Aead(key, backend?): backend 'direct' | 'evp' (default: direct where available, see above);
  // 'direct' where it is not available throws.
  explicit Aead(const Napi::CallbackInfo& info);
  ~Aead() override;

 private:
  // The relay's native seal path (tun_queue.h SealFast) seals with a session's key in C++.
  friend class TunQueue;
  friend class UdpBatch;  // and its native open path (udp_open.cc)
  // seal(counter, src, dst, dstOffset) -> bytes written (src.length + 16)
  Napi::Value Seal(const Napi::CallbackInfo& info);
  // open(counter, sealed, dst, dstOffset) -> plaintext length, or -1 when the tag does not verify
  Napi::Value Open(const Napi::CallbackInfo& info);
  // sealBatch(counter0, src, srcOffsets, count, dst, dstOffsets, headroom) -> packets sealed
  Napi::Value SealBatch(const Napi::CallbackInfo& info);
  // openBatch(counters, src, offsets, count, skip, dst, lengths) -> packets authenticated
  Napi::Value OpenBatch(const Napi::CallbackInfo& info);
  // destroy(): frees the contexts (wiping the key) now instead of at garbage collection.
  Napi::Value Destroy(const Napi::CallbackInfo& info);
  // backend -> 'direct' | 'evp'
  Napi::Value Backend(const Napi::CallbackInfo& info);

  void Check(Napi::Env env) const;
  bool SealOne(uint64_t counter, const uint8_t* src, size_t len, uint8_t* dst);
  // Decrypts sealed_len-16 bytes into dst; on a bad tag wipes dst and returns false.
  bool OpenOne(uint64_t counter, const uint8_t* src, size_t sealed_len, uint8_t* dst);
  void Forget();

  EVP_CIPHER_CTX* enc_ = nullptr;
  EVP_CIPHER_CTX* dec_ = nullptr;
  // The key as ChaCha20's eight little-endian words (direct only; wiped with the contexts).
  uint32_t key_[8] = {};
  bool direct_ = false;
};

}  // namespace pp
