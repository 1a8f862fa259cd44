// Aead: see aead.h. Argument checks are complete (bounds, types, overlap) because a wrong offset
// from JS must be an exception, never a write outside a buffer.
#include "aead.h"

#include <dlfcn.h>
#include <openssl/crypto.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace pp {

namespace {

struct Bytes {
  uint8_t* data = nullptr;
  size_t len = 0;
};

// A Uint8Array (Buffer included) argument, or a TypeError naming it.
Bytes BytesArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  napi_env env = info.Env();
  napi_value v = info[i];
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) throw Napi::TypeError::New(env, std::string(what) + " must be a Uint8Array");
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr), Bytes{});
  if (type != napi_uint8_array) throw Napi::TypeError::New(env, std::string(what) + " must be a Uint8Array");
  return Bytes{static_cast<uint8_t*>(data), length};
}

template <typename T>
T* TypedArg(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type want, size_t min_len, const char* what) {
  napi_env env = info.Env();
  napi_value v = info[i];
  bool is_ta = false;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta || napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != want) {
    throw Napi::TypeError::New(env, std::string(what) + " has the wrong type");
  }
  if (length < min_len) throw Napi::RangeError::New(env, std::string(what) + " is too short");
  return static_cast<T*>(data);
}

constexpr double kMaxExact = 9007199254740992.0;  // 2^53

bool CounterFromDouble(double d, uint64_t* out) {
  if (!(d >= 0 && d <= kMaxExact) || d != std::floor(d)) return false;
  *out = static_cast<uint64_t>(d);
  return true;
}

// A number (exact integer, 0..2^53) or a bigint (0..2^64-1).
uint64_t CounterArg(const Napi::CallbackInfo& info, size_t i) {
  napi_env env = info.Env();
  napi_valuetype t;
  napi_typeof(env, info[i], &t);
  uint64_t c = 0;
  if (t == napi_number) {
    double d = 0;
    napi_get_value_double(env, info[i], &d);
    if (CounterFromDouble(d, &c)) return c;
  } else if (t == napi_bigint) {
    bool lossless = false;
    if (napi_get_value_bigint_uint64(env, info[i], &c, &lossless) == napi_ok && lossless) return c;
  }
  throw Napi::RangeError::New(env, "counter must be an integer in 0..2^53 (number) or 0..2^64-1 (bigint)");
}

size_t SizeArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  napi_env env = info.Env();
  double d = 0;
  if (napi_get_value_double(env, info[i], &d) != napi_ok || !(d >= 0 && d <= 4294967295.0) || d != std::floor(d)) {
    throw Napi::RangeError::New(env, std::string(what) + " must be an integer in 0..2^32-1");
  }
  return static_cast<size_t>(d);
}

// In place (same start) or disjoint: OpenSSL does not allow partial overlap.
// Reading src[0, srcLen) while writing dst[0, dstLen): in place (same start) or not at all.
bool OverlapOk(const uint8_t* src, size_t src_len, const uint8_t* dst, size_t dst_len) {
  return src == dst || src + src_len <= dst || dst + dst_len <= src;
}

inline void Nonce(uint64_t counter, uint8_t nonce[12]) {
  std::memset(nonce, 0, 4);
  for (int k = 0; k < 8; k++) nonce[4 + k] = static_cast<uint8_t>(counter >> (8 * k));
}

constexpr size_t kMaxLen = static_cast<size_t>(std::numeric_limits<int>::max()) - Aead::kTagLen;

// OpenSSL's ChaCha20 and Poly1305 routines (crypto/chacha.h, crypto/poly1305.h: internal, stable since
// 1.1.0), as the node binary exports them. ChaCha20_ctr32 takes the key as eight little-endian words and
// counter[0] as the block counter, counter[1..3] as the nonce's words; out may equal inp.
using ChaChaFn = void (*)(unsigned char* out, const unsigned char* inp, size_t len, const unsigned int key[8],
                          const unsigned int counter[4]);
using PolySizeFn = size_t (*)();
using PolyInitFn = void (*)(void* ctx, const unsigned char key[32]);
using PolyUpdateFn = void (*)(void* ctx, const unsigned char* inp, size_t len);
using PolyFinalFn = void (*)(void* ctx, unsigned char mac[16]);

// Room for OpenSSL's POLY1305 context (248 bytes in 3.0 on x86-64; checked against Poly1305_ctx_size).
constexpr size_t kPolyCtx = 512;

struct Direct {
  ChaChaFn chacha = nullptr;
  PolyInitFn poly_init = nullptr;
  PolyUpdateFn poly_update = nullptr;
  PolyFinalFn poly_final = nullptr;
  bool available = false;  // all found, and the known-answer run agreed with the EVP cipher
  bool found = false;      // all found (unavailable with found: the known-answer run disagreed)
  bool by_default = false;  // available and not POCKETPROXY_AEAD=evp
};

inline uint32_t Le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

// Poly1305 over ciphertext || pad16 || u64le(0) || u64le(len): RFC 8439 §2.8 with no associated data.
void DirectTag(const Direct& d, const uint8_t one_time_key[32], const uint8_t* ct, size_t len, uint8_t tag[16]) {
  static const uint8_t kZeros[16] = {};
  alignas(64) uint8_t ctx[kPolyCtx];
  d.poly_init(ctx, one_time_key);
  if (len > 0) d.poly_update(ctx, ct, len);
  if (len % 16 != 0) d.poly_update(ctx, kZeros, 16 - len % 16);
  uint8_t lengths[16] = {};
  for (int k = 0; k < 8; k++) lengths[8 + k] = static_cast<uint8_t>(static_cast<uint64_t>(len) >> (8 * k));
  d.poly_update(ctx, lengths, 16);
  d.poly_final(ctx, tag);  // which wipes the context
}

// Block 0 of the nonce's keystream (its first 32 bytes are the Poly1305 key), and, with one ChaCha20
// call, the keystream XOR of `len` bytes of `in` into buf[64, 64 + len) (len <= Aead::kOneCall).
void DirectBlocks(const Direct& d, const uint32_t key[8], const uint32_t nonce[4], const uint8_t* in, size_t len,
                  uint8_t* buf) {
  std::memset(buf, 0, 64);
  if (len > 0) std::memcpy(buf + 64, in, len);
  d.chacha(buf, buf, 64 + len, key, nonce);
}

inline void DirectNonce(uint64_t counter, uint32_t nonce[4]) {
  nonce[0] = 0;  // block counter: 0 for the Poly1305 key, 1.. for the data
  nonce[1] = 0;
  nonce[2] = static_cast<uint32_t>(counter);
  nonce[3] = static_cast<uint32_t>(counter >> 32);
}

// A seal: src and dst are the same or disjoint (checked by every caller).
void DirectSeal(const Direct& d, const uint32_t key[8], uint64_t counter, const uint8_t* src, size_t len,
                uint8_t* dst) {
  uint32_t nonce[4];
  DirectNonce(counter, nonce);
  alignas(64) uint8_t buf[64 + Aead::kOneCall];
  if (len <= Aead::kOneCall) {
    DirectBlocks(d, key, nonce, src, len, buf);  // src is copied before dst is written
    if (len > 0) std::memcpy(dst, buf + 64, len);
  } else {
    DirectBlocks(d, key, nonce, nullptr, 0, buf);
    nonce[0] = 1;
    d.chacha(dst, src, len, key, nonce);
  }
  DirectTag(d, buf, dst, len, dst + len);
  OPENSSL_cleanse(buf, 64);  // the one-time key (what follows it is ciphertext)
}

// An open: the tag is checked against the ciphertext first; a bad one leaves dst wiped (as the EVP way
// does), a good one gets the plaintext.
bool DirectOpen(const Direct& d, const uint32_t key[8], uint64_t counter, const uint8_t* src, size_t sealed_len,
                uint8_t* dst) {
  const size_t len = sealed_len - Aead::kTagLen;
  uint32_t nonce[4];
  DirectNonce(counter, nonce);
  alignas(64) uint8_t buf[64 + Aead::kOneCall];
  const bool one = len <= Aead::kOneCall;
  DirectBlocks(d, key, nonce, src, one ? len : 0, buf);
  uint8_t tag[Aead::kTagLen];
  DirectTag(d, buf, src, len, tag);
  const bool ok = CRYPTO_memcmp(tag, src + len, Aead::kTagLen) == 0;
  if (!ok) {
    if (len > 0) OPENSSL_cleanse(dst, len);
  } else if (one) {
    if (len > 0) std::memcpy(dst, buf + 64, len);
  } else {
    nonce[0] = 1;
    d.chacha(dst, src, len, key, nonce);
  }
  OPENSSL_cleanse(buf, 64 + (one ? len : 0));  // the one-time key, and the plaintext staged here
  return ok;
}

// The EVP cipher's way: the nonce set per packet on a context keyed once.
bool EvpSeal(EVP_CIPHER_CTX* enc, uint64_t counter, const uint8_t* src, size_t len, uint8_t* dst) {
  uint8_t nonce[12];
  Nonce(counter, nonce);
  int outl = 0, finl = 0;
  if (EVP_EncryptInit_ex(enc, nullptr, nullptr, nullptr, nonce) != 1) return false;
  if (len > 0 && EVP_EncryptUpdate(enc, dst, &outl, src, static_cast<int>(len)) != 1) return false;
  if (EVP_EncryptFinal_ex(enc, dst + outl, &finl) != 1) return false;
  return EVP_CIPHER_CTX_ctrl(enc, EVP_CTRL_AEAD_GET_TAG, Aead::kTagLen, dst + len) == 1;
}

bool EvpOpen(EVP_CIPHER_CTX* dec, uint64_t counter, const uint8_t* src, size_t sealed_len, uint8_t* dst) {
  const size_t len = sealed_len - Aead::kTagLen;
  uint8_t nonce[12];
  Nonce(counter, nonce);
  uint8_t tag[Aead::kTagLen];
  std::memcpy(tag, src + len, Aead::kTagLen);  // before decrypting: dst may alias src
  int outl = 0, finl = 0;
  bool ok = EVP_DecryptInit_ex(dec, nullptr, nullptr, nullptr, nonce) == 1 &&
            EVP_CIPHER_CTX_ctrl(dec, EVP_CTRL_AEAD_SET_TAG, Aead::kTagLen, tag) == 1 &&
            (len == 0 || EVP_DecryptUpdate(dec, dst, &outl, src, static_cast<int>(len)) == 1) &&
            EVP_DecryptFinal_ex(dec, dst + outl, &finl) == 1;
  if (!ok && len > 0) OPENSSL_cleanse(dst, len);  // never hand out unauthenticated plaintext
  return ok;
}

// Looks the routines up and runs them against the EVP cipher on lengths around every block and
// Poly1305 boundary, both sides of kOneCall, and counters whose high word matters.
Direct ResolveDirect() {
  Direct d;
  void* chacha = dlsym(RTLD_DEFAULT, "ChaCha20_ctr32");
  void* size = dlsym(RTLD_DEFAULT, "Poly1305_ctx_size");
  void* init = dlsym(RTLD_DEFAULT, "Poly1305_Init");
  void* update = dlsym(RTLD_DEFAULT, "Poly1305_Update");
  void* fin = dlsym(RTLD_DEFAULT, "Poly1305_Final");
  if (!chacha || !size || !init || !update || !fin) return d;
  if (reinterpret_cast<PolySizeFn>(size)() > kPolyCtx) return d;
  d.found = true;
  d.chacha = reinterpret_cast<ChaChaFn>(chacha);
  d.poly_init = reinterpret_cast<PolyInitFn>(init);
  d.poly_update = reinterpret_cast<PolyUpdateFn>(update);
  d.poly_final = reinterpret_cast<PolyFinalFn>(fin);

  uint8_t raw_key[32];
  for (int i = 0; i < 32; i++) raw_key[i] = static_cast<uint8_t>(0x80 + 7 * i);
  uint32_t key[8];
  for (int i = 0; i < 8; i++) key[i] = Le32(raw_key + 4 * i);
  EVP_CIPHER_CTX* enc = EVP_CIPHER_CTX_new();
  bool ok = enc && EVP_EncryptInit_ex(enc, EVP_chacha20_poly1305(), nullptr, raw_key, nullptr) == 1;
  constexpr size_t kMax = 1500;
  static_assert(kMax > Aead::kOneCall, "the check covers both ways");
  uint8_t pt[kMax], want[kMax + 16], got[kMax + 16];
  for (size_t i = 0; i < kMax; i++) pt[i] = static_cast<uint8_t>(i * 31 + 5);
  const size_t lens[] = {0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 129, 255, 256, 257, Aead::kOneCall - 1,
                         Aead::kOneCall, Aead::kOneCall + 1, 1399, 1400, kMax};
  const uint64_t counters[] = {0, 1, 0xfffffffful, 0x100000000ull, 0x0123456789abcdefull};
  for (size_t li = 0; ok && li < sizeof lens / sizeof lens[0]; li++) {
    for (uint64_t c : counters) {
      const size_t len = lens[li];
      if (!EvpSeal(enc, c, pt, len, want)) {
        ok = false;
        break;
      }
      DirectSeal(d, key, c, pt, len, got);
      uint8_t back[kMax];
      if (std::memcmp(want, got, len + 16) != 0 || !DirectOpen(d, key, c, want, len + 16, back) ||
          std::memcmp(back, pt, len) != 0) {
        ok = false;
        break;
      }
    }
  }
  EVP_CIPHER_CTX_free(enc);
  d.available = ok;
  const char* env = std::getenv("POCKETPROXY_AEAD");
  d.by_default = ok && !(env && std::strcmp(env, "evp") == 0);
  return d;
}

const Direct& Primitives() {
  static const Direct d = ResolveDirect();
  return d;
}

}  // namespace

Napi::Function Aead::Init(Napi::Env env) {
  return DefineClass(env, "Aead",
                     {
                         InstanceMethod<&Aead::Seal>("seal"),
                         InstanceMethod<&Aead::Open>("open"),
                         InstanceMethod<&Aead::SealBatch>("sealBatch"),
                         InstanceMethod<&Aead::OpenBatch>("openBatch"),
                         InstanceMethod<&Aead::Destroy>("destroy"),
                         InstanceAccessor<&Aead::Backend>("backend"),
                     });
}

Aead::Aead(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Aead>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throw Napi::TypeError::New(env, "new Aead(key): key required");
  Bytes key = BytesArg(info, 0, "key");
  if (key.len != kKeyLen) throw Napi::RangeError::New(env, "key must be 32 bytes");
  const Direct& d = Primitives();
  direct_ = d.by_default;
  if (info.Length() >= 2 && !info[1].IsUndefined()) {
    std::string want = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    if (want == "evp") {
      direct_ = false;
    } else if (want == "direct") {
      if (!d.available) {
        throw Napi::Error::New(env, d.found ? "direct ChaCha20-Poly1305 disagreed with the EVP cipher at load"
                                            : "direct ChaCha20-Poly1305: this node binary does not export OpenSSL's routines");
      }
      direct_ = true;
    } else {
      throw Napi::TypeError::New(env, "backend must be 'direct' or 'evp'");
    }
  }
  for (int i = 0; i < 8; i++) key_[i] = direct_ ? Le32(key.data + 4 * i) : 0;
  enc_ = EVP_CIPHER_CTX_new();
  dec_ = EVP_CIPHER_CTX_new();
  if (!enc_ || !dec_ || EVP_EncryptInit_ex(enc_, EVP_chacha20_poly1305(), nullptr, key.data, nullptr) != 1 ||
      EVP_DecryptInit_ex(dec_, EVP_chacha20_poly1305(), nullptr, key.data, nullptr) != 1) {
    EVP_CIPHER_CTX_free(enc_);
    EVP_CIPHER_CTX_free(dec_);
    enc_ = dec_ = nullptr;
    throw Napi::Error::New(env, "OpenSSL: cannot set up chacha20-poly1305");
  }
}

Aead::~Aead() { Forget(); }

void Aead::Forget() {
  // EVP_CIPHER_CTX_free cleanses the key schedule.
  EVP_CIPHER_CTX_free(enc_);
  EVP_CIPHER_CTX_free(dec_);
  enc_ = dec_ = nullptr;
  OPENSSL_cleanse(key_, sizeof key_);
}

void Aead::Check(Napi::Env env) const {
  if (!enc_) throw Napi::Error::New(env, "Aead is destroyed");
}

// A destroyed key seals and opens nothing (the native paths hold keys across JS calls).
bool Aead::SealOne(uint64_t counter, const uint8_t* src, size_t len, uint8_t* dst) {
  if (!enc_) return false;
  if (!direct_) return EvpSeal(enc_, counter, src, len, dst);
  DirectSeal(Primitives(), key_, counter, src, len, dst);
  return true;
}

bool Aead::OpenOne(uint64_t counter, const uint8_t* src, size_t sealed_len, uint8_t* dst) {
  if (!dec_) return false;
  return direct_ ? DirectOpen(Primitives(), key_, counter, src, sealed_len, dst)
                 : EvpOpen(dec_, counter, src, sealed_len, dst);
}

Napi::Value Aead::Seal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Check(env);
  if (info.Length() < 4) throw Napi::TypeError::New(env, "seal(counter, src, dst, dstOffset)");
  uint64_t counter = CounterArg(info, 0);
  Bytes src = BytesArg(info, 1, "src");
  Bytes dst = BytesArg(info, 2, "dst");
  size_t off = SizeArg(info, 3, "dstOffset");
  if (src.len > kMaxLen) throw Napi::RangeError::New(env, "src too large");
  if (off > dst.len || dst.len - off < src.len + kTagLen) throw Napi::RangeError::New(env, "dst too small for src.length + 16 bytes at dstOffset");
  uint8_t* out = dst.data + off;
  if (!OverlapOk(src.data, src.len, out, src.len + kTagLen)) throw Napi::RangeError::New(env, "src and dst overlap partially");
  if (!SealOne(counter, src.data, src.len, out)) throw Napi::Error::New(env, "OpenSSL: seal failed");
  return Napi::Number::New(env, static_cast<double>(src.len + kTagLen));
}

Napi::Value Aead::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Check(env);
  if (info.Length() < 4) throw Napi::TypeError::New(env, "open(counter, sealed, dst, dstOffset)");
  uint64_t counter = CounterArg(info, 0);
  Bytes src = BytesArg(info, 1, "sealed");
  Bytes dst = BytesArg(info, 2, "dst");
  size_t off = SizeArg(info, 3, "dstOffset");
  if (src.len < kTagLen) return Napi::Number::New(env, -1);
  if (src.len > kMaxLen) throw Napi::RangeError::New(env, "sealed too large");
  const size_t len = src.len - kTagLen;
  if (off > dst.len || dst.len - off < len) throw Napi::RangeError::New(env, "dst too small for sealed.length - 16 bytes at dstOffset");
  uint8_t* out = dst.data + off;
  if (!OverlapOk(src.data, len, out, len)) throw Napi::RangeError::New(env, "sealed and dst overlap partially");
  return Napi::Number::New(env, OpenOne(counter, src.data, src.len, out) ? static_cast<double>(len) : -1);
}

Napi::Value Aead::SealBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Check(env);
  if (info.Length() < 7) throw Napi::TypeError::New(env, "sealBatch(counter0, src, srcOffsets, count, dst, dstOffsets, headroom)");
  uint64_t counter0 = CounterArg(info, 0);
  Bytes src = BytesArg(info, 1, "src");
  size_t count = SizeArg(info, 3, "count");
  const uint32_t* so = TypedArg<uint32_t>(info, 2, napi_uint32_array, count + 1, "srcOffsets (Uint32Array, count + 1)");
  Bytes dst = BytesArg(info, 4, "dst");
  uint32_t* dof = TypedArg<uint32_t>(info, 5, napi_uint32_array, count + 1, "dstOffsets (Uint32Array, count + 1)");
  size_t headroom = SizeArg(info, 6, "headroom");
  if (count > 0 && counter0 > std::numeric_limits<uint64_t>::max() - count) throw Napi::RangeError::New(env, "counter would wrap");
  // Plaintexts must come from src and frames go to dst: they must not overlap at all (a batch
  // cannot be sealed in place because each frame is 16 + headroom bytes longer).
  if (!(src.data + src.len <= dst.data || dst.data + dst.len <= src.data) && src.len > 0 && dst.len > 0) {
    throw Napi::RangeError::New(env, "src and dst must not overlap");
  }
  size_t pos = dof[0];
  size_t i = 0;
  for (; i < count; i++) {
    size_t a = so[i], b = so[i + 1];
    if (a > b || b > src.len) throw Napi::RangeError::New(env, "srcOffsets out of order or past src");
    size_t len = b - a;
    if (len > kMaxLen) throw Napi::RangeError::New(env, "packet too large");
    size_t need = headroom + len + kTagLen;
    if (pos > dst.len || dst.len - pos < need || pos + need > 0xffffffffu) break;  // dst full: sealed i so far
    if (!SealOne(counter0 + i, src.data + a, len, dst.data + pos + headroom)) throw Napi::Error::New(env, "OpenSSL: seal failed");
    pos += need;
    dof[i + 1] = static_cast<uint32_t>(pos);
  }
  return Napi::Number::New(env, static_cast<double>(i));
}

Napi::Value Aead::OpenBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Check(env);
  if (info.Length() < 7) throw Napi::TypeError::New(env, "openBatch(counters, src, offsets, count, skip, dst, lengths)");
  size_t count = SizeArg(info, 3, "count");
  const double* counters = TypedArg<double>(info, 0, napi_float64_array, count, "counters (Float64Array, count)");
  Bytes src = BytesArg(info, 1, "src");
  const uint32_t* so = TypedArg<uint32_t>(info, 2, napi_uint32_array, count + 1, "offsets (Uint32Array, count + 1)");
  size_t skip = SizeArg(info, 4, "skip");
  Bytes dst = BytesArg(info, 5, "dst");
  int32_t* lengths = TypedArg<int32_t>(info, 6, napi_int32_array, count, "lengths (Int32Array, count)");
  // Plaintext i goes to the same offset in dst as its ciphertext has in src: dst === src decrypts
  // in place; otherwise they must be disjoint.
  if (dst.len < src.len) throw Napi::RangeError::New(env, "dst must be at least as long as src");
  if (dst.data != src.data && !(src.data + src.len <= dst.data || dst.data + dst.len <= src.data)) {
    throw Napi::RangeError::New(env, "src and dst overlap partially");
  }
  double ok = 0;
  for (size_t i = 0; i < count; i++) {
    size_t a = so[i], b = so[i + 1];
    if (a > b || b > src.len) throw Napi::RangeError::New(env, "offsets out of order or past src");
    uint64_t counter = 0;
    if (!CounterFromDouble(counters[i], &counter)) {
      lengths[i] = -2;  // skipped by the caller (e.g. refused by the replay window)
      continue;
    }
    if (b - a < skip + kTagLen || b - a - skip > kMaxLen) {
      lengths[i] = -1;
      continue;
    }
    size_t at = a + skip, sealed = b - at;
    if (OpenOne(counter, src.data + at, sealed, dst.data + at)) {
      lengths[i] = static_cast<int32_t>(sealed - kTagLen);
      ok++;
    } else {
      lengths[i] = -1;
    }
  }
  return Napi::Number::New(env, ok);
}

Napi::Value Aead::Destroy(const Napi::CallbackInfo& info) {
  Forget();
  return info.Env().Undefined();
}

Napi::Value Aead::Backend(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), direct_ ? "direct" : "evp");
}

}  // namespace pp
