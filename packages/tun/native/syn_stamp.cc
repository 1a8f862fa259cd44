// The original destination stamped into a TCP SYN: see syn_stamp.h. RFC 791 (IPv4), RFC 9293 §3.1-3.2
// (TCP header and options), RFC 6994 (shared experimental options), RFC 1071 (checksum).
#include "syn_stamp.h"

#include <string.h>

#include <initializer_list>

namespace pp {
namespace {

constexpr size_t kMaxOptions = 40;
constexpr uint8_t kFastOpenKind = 34;
constexpr uint8_t kExperimentKind = 254;
constexpr uint16_t kFastOpenExid = 0xF989;  // RFC 7413 §4.1.1, the experimental Fast Open option

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
void PutBe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

uint32_t Sum16(const uint8_t* p, size_t n, uint32_t s) {
  size_t i = 0;
  for (; i + 1 < n; i += 2) s += static_cast<uint32_t>((p[i] << 8) | p[i + 1]);
  if (i < n) s += static_cast<uint32_t>(p[i] << 8);
  return s;
}
uint16_t Fold(uint32_t s) {
  while (s > 0xffff) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s & 0xffff);
}

struct Syn {
  size_t ihl = 0, thl = 0, total = 0;
};

// An IPv4 TCP SYN without ACK, not a fragment, its headers within `len` (and, with `whole`, its total length
// too: a saved SYN has no payload but keeps the total length of the packet it came in).
bool View(const uint8_t* p, size_t len, bool whole, Syn* v) {
  if (len < 20 || (p[0] >> 4) != 4) return false;
  v->ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
  v->total = Be16(p + 2);
  if (v->ihl < 20 || p[9] != 6 || (Be16(p + 6) & 0x3fff) != 0) return false;
  if (whole && (v->total > len || v->total < v->ihl + 20)) return false;
  if (v->ihl + 20 > len) return false;
  v->thl = static_cast<size_t>(p[v->ihl + 12] >> 4) * 4;
  if (v->thl < 20 || v->ihl + v->thl > len || (whole && v->ihl + v->thl > v->total)) return false;
  const uint8_t flags = p[v->ihl + 13];
  return (flags & 0x02) != 0 && (flags & 0x10) == 0;
}

bool IsStamp(const uint8_t* o, size_t l) { return o[0] == kStampKind && l >= 4 && Be16(o + 2) == kStampExid; }
bool IsFastOpen(const uint8_t* o, size_t l) {
  return o[0] == kFastOpenKind || (o[0] == kExperimentKind && l >= 4 && Be16(o + 2) == kFastOpenExid);
}

// Walks the options: calls f(option, length) for each kind other than EOL and NOP; false when malformed.
template <typename F>
bool EachOption(const uint8_t* o, size_t n, F f) {
  for (size_t i = 0; i < n;) {
    if (o[i] == 0) return true;  // EOL: the rest is padding
    if (o[i] == 1) {
      i++;
      continue;
    }
    if (i + 1 >= n) return false;
    const size_t l = o[i + 1];
    if (l < 2 || i + l > n) return false;
    f(o + i, l);
    i += l;
  }
  return true;
}

// The options without stamps (and without Fast Open when `drop_fast_open`), padding dropped; -1 malformed.
int Kept(const uint8_t* o, size_t n, bool drop_fast_open, uint8_t* out, size_t cap, bool* had_stamp) {
  size_t k = 0;
  bool over = false;
  const bool ok = EachOption(o, n, [&](const uint8_t* opt, size_t l) {
    if (IsStamp(opt, l)) {
      *had_stamp = true;
      return;
    }
    if (drop_fast_open && IsFastOpen(opt, l)) return;
    if (k + l > cap) {
      over = true;
      return;
    }
    memcpy(out + k, opt, l);
    k += l;
  });
  if (!ok) return -1;
  return over ? static_cast<int>(cap) + 1 : static_cast<int>(k);
}

// `pkt` with its TCP options replaced by `opts` (`n` bytes, padded here), lengths and checksums made anew.
int Rebuild(const uint8_t* pkt, const Syn& v, const uint8_t* opts, size_t n, uint8_t* out) {
  const size_t padded = (n + 3) & ~static_cast<size_t>(3);
  const size_t payload = v.total - v.ihl - v.thl;
  const size_t total = v.ihl + 20 + padded + payload;
  if (total > 0xffff) return kStampNoRoom;
  memcpy(out, pkt, v.ihl + 20);
  memcpy(out + v.ihl + 20, opts, n);
  memset(out + v.ihl + 20 + n, 0, padded - n);
  memcpy(out + v.ihl + 20 + padded, pkt + v.ihl + v.thl, payload);
  PutBe16(out + 2, static_cast<uint16_t>(total));
  out[10] = out[11] = 0;
  PutBe16(out + 10, Fold(Sum16(out, v.ihl, 0)));
  uint8_t* tcp = out + v.ihl;
  tcp[12] = static_cast<uint8_t>((((20 + padded) / 4) << 4) | (tcp[12] & 0x0f));
  tcp[16] = tcp[17] = 0;
  const size_t seg = total - v.ihl;
  uint32_t s = Sum16(out + 12, 8, 0);  // source and destination addresses
  s += 6 + static_cast<uint32_t>(seg);
  PutBe16(tcp + 16, Fold(Sum16(tcp, seg, s)));
  return static_cast<int>(total);
}

}  // namespace

int StampSyn(const uint8_t* pkt, size_t len, uint32_t addr, uint16_t port, uint8_t* out) {
  Syn v;
  if (!View(pkt, len, true, &v)) return kStampNotSyn;
  const uint8_t* o = pkt + v.ihl + 20;
  const size_t n = v.thl - 20;
  uint8_t opts[kMaxOptions + 64];
  for (bool drop_fast_open : {false, true}) {
    bool had = false;
    const int k = Kept(o, n, drop_fast_open, opts, sizeof opts - kStampLen, &had);
    if (k < 0) return kStampMalformed;
    if (static_cast<size_t>(k) + kStampLen > kMaxOptions) continue;
    uint8_t* s = opts + k;
    s[0] = kStampKind;
    s[1] = kStampLen;
    PutBe16(s + 2, kStampExid);
    memcpy(s + 4, &addr, 4);
    memcpy(s + 8, &port, 2);
    return Rebuild(pkt, v, opts, static_cast<size_t>(k) + kStampLen, out);
  }
  return kStampNoRoom;
}

int UnstampSyn(const uint8_t* pkt, size_t len, uint8_t* out) {
  Syn v;
  if (!View(pkt, len, true, &v)) return kStampNotSyn;
  uint8_t opts[kMaxOptions + 64];
  bool had = false;
  const int k = Kept(pkt + v.ihl + 20, v.thl - 20, false, opts, sizeof opts, &had);
  if (k < 0) return kStampMalformed;
  if (!had) return 0;
  return Rebuild(pkt, v, opts, static_cast<size_t>(k), out);
}

bool ReadStamp(const uint8_t* syn, size_t len, uint32_t* addr, uint16_t* port) {
  Syn v;
  if (!View(syn, len, false, &v)) return false;
  bool found = false;
  const bool ok = EachOption(syn + v.ihl + 20, v.thl - 20, [&](const uint8_t* opt, size_t l) {
    if (found || !IsStamp(opt, l) || l != kStampLen) return;
    memcpy(addr, opt + 4, 4);
    memcpy(port, opt + 8, 2);
    found = true;
  });
  return ok && found;
}

}  // namespace pp
