// Aead: see aead.h. Argument checks are complete (bounds, types, overlap) because a wrong offset
// from JS must be an exception, never a write outside a buffer.
#include "aead.h"

#include <openssl/crypto.h>

#include <cmath>
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

}  // namespace

Napi::Function Aead::Init(Napi::Env env) {
  return DefineClass(env, "Aead",
                     {
                         InstanceMethod<&Aead::Seal>("seal"),
                         InstanceMethod<&Aead::Open>("open"),
                         InstanceMethod<&Aead::SealBatch>("sealBatch"),
                         InstanceMethod<&Aead::OpenBatch>("openBatch"),
                         InstanceMethod<&Aead::Destroy>("destroy"),
                     });
}

Aead::Aead(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Aead>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throw Napi::TypeError::New(env, "new Aead(key): key required");
  Bytes key = BytesArg(info, 0, "key");
  if (key.len != kKeyLen) throw Napi::RangeError::New(env, "key must be 32 bytes");
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

Aead::~Aead() {
  // EVP_CIPHER_CTX_free cleanses the key schedule.
  EVP_CIPHER_CTX_free(enc_);
  EVP_CIPHER_CTX_free(dec_);
}

void Aead::Check(Napi::Env env) const {
  if (!enc_) throw Napi::Error::New(env, "Aead is destroyed");
}

bool Aead::SealOne(uint64_t counter, const uint8_t* src, size_t len, uint8_t* dst) {
  uint8_t nonce[12];
  Nonce(counter, nonce);
  int outl = 0, finl = 0;
  if (EVP_EncryptInit_ex(enc_, nullptr, nullptr, nullptr, nonce) != 1) return false;
  if (len > 0 && EVP_EncryptUpdate(enc_, dst, &outl, src, static_cast<int>(len)) != 1) return false;
  if (EVP_EncryptFinal_ex(enc_, dst + outl, &finl) != 1) return false;
  return EVP_CIPHER_CTX_ctrl(enc_, EVP_CTRL_AEAD_GET_TAG, kTagLen, dst + len) == 1;
}

bool Aead::OpenOne(uint64_t counter, const uint8_t* src, size_t sealed_len, uint8_t* dst) {
  const size_t len = sealed_len - kTagLen;
  uint8_t nonce[12];
  Nonce(counter, nonce);
  uint8_t tag[kTagLen];
  std::memcpy(tag, src + len, kTagLen);  // before decrypting: dst may alias src
  int outl = 0, finl = 0;
  bool ok = EVP_DecryptInit_ex(dec_, nullptr, nullptr, nullptr, nonce) == 1 &&
            EVP_CIPHER_CTX_ctrl(dec_, EVP_CTRL_AEAD_SET_TAG, kTagLen, tag) == 1 &&
            (len == 0 || EVP_DecryptUpdate(dec_, dst, &outl, src, static_cast<int>(len)) == 1) &&
            EVP_DecryptFinal_ex(dec_, dst + outl, &finl) == 1;
  if (!ok && len > 0) OPENSSL_cleanse(dst, len);  // never hand out unauthenticated plaintext
  return ok;
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
  EVP_CIPHER_CTX_free(enc_);
  EVP_CIPHER_CTX_free(dec_);
  enc_ = dec_ = nullptr;
  return info.Env().Undefined();
}

}  // namespace pp
