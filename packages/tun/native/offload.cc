#include "offload.h"

#include <string.h>

#include <algorithm>

namespace pp {
namespace {

constexpr uint8_t kFin = 0x01, kPsh = 0x08, kAck = 0x10, kCwr = 0x80;
constexpr uint8_t kProtoTcp = 6;

inline uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t Be32(const uint8_t* p) { return static_cast<uint32_t>(p[0]) << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
inline void Put16(uint8_t* p, uint16_t v) { p[0] = static_cast<uint8_t>(v >> 8), p[1] = static_cast<uint8_t>(v); }
inline void Put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24), p[1] = static_cast<uint8_t>(v >> 16), p[2] = static_cast<uint8_t>(v >> 8), p[3] = static_cast<uint8_t>(v);
}
inline uint16_t Le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
inline void PutLe16(uint8_t* p, uint16_t v) { p[0] = static_cast<uint8_t>(v), p[1] = static_cast<uint8_t>(v >> 8); }
// A 16-bit value as it sits in memory in network order, loaded in host order: what CsumPartial
// adds for the same bytes.
inline uint32_t NetWord(uint16_t v) {
  uint8_t b[2] = {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
  uint16_t w;
  memcpy(&w, b, 2);
  return w;
}
inline void StoreCsum(uint8_t* p, uint16_t c) { memcpy(p, &c, 2); }

// Sum of the TCP/UDP pseudo-header for `l4_len` bytes of protocol `proto`.
uint32_t PseudoSum(const uint8_t* ip, bool v6, uint8_t proto, size_t l4_len) {
  uint32_t s = v6 ? CsumPartial(ip + 8, 32, 0) : CsumPartial(ip + 12, 8, 0);
  // l4_len <= 65535 here (one IP packet), so its upper 16 bits add nothing.
  uint64_t t = static_cast<uint64_t>(s) + NetWord(proto) + NetWord(static_cast<uint16_t>(l4_len));
  while (t >> 32) t = (t & 0xffffffff) + (t >> 32);
  return static_cast<uint32_t>(t);
}

// What the Coalescer glues: IPv4 without options (20-byte header) or IPv6 with TCP next (40).
constexpr size_t IpLen(bool v6) { return v6 ? 40 : 20; }
// Flow key: source and destination addresses, then both ports.
constexpr size_t KeyLen(bool v6) { return v6 ? 36 : 12; }

inline uint32_t Add32(uint32_t a, uint32_t b) {
  uint64_t t = static_cast<uint64_t>(a) + b;
  return static_cast<uint32_t>((t & 0xffffffff) + (t >> 32));
}

void FixIpv4Csum(uint8_t* ip, size_t ihl) {
  ip[10] = ip[11] = 0;
  StoreCsum(ip + 10, static_cast<uint16_t>(~CsumFold(CsumPartial(ip, ihl, 0))));
}

}  // namespace

VnetHdr ReadVnetHdr(const uint8_t* p) {
  // Legacy virtio header in the host's byte order (little-endian on every target we build for).
  return VnetHdr{p[0], p[1], Le16(p + 2), Le16(p + 4), Le16(p + 6), Le16(p + 8)};
}

void WriteVnetHdr(uint8_t* p, const VnetHdr& h) {
  p[0] = h.flags;
  p[1] = h.gso_type;
  PutLe16(p + 2, h.hdr_len);
  PutLe16(p + 4, h.gso_size);
  PutLe16(p + 6, h.csum_start);
  PutLe16(p + 8, h.csum_offset);
}

uint32_t CsumPartial(const uint8_t* p, size_t len, uint32_t sum) {
  // 32-bit words into a 64-bit accumulator; equal to the RFC 1071 16-bit sum once folded.
  uint64_t acc = sum;
  while (len >= 32) {
    uint32_t w[8];
    memcpy(w, p, 32);
    acc += static_cast<uint64_t>(w[0]) + w[1] + w[2] + w[3] + w[4] + w[5] + w[6] + w[7];
    p += 32;
    len -= 32;
  }
  while (len >= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    acc += w;
    p += 4;
    len -= 4;
  }
  if (len > 0) {
    uint8_t tail[4] = {0, 0, 0, 0};
    memcpy(tail, p, len);
    uint32_t w;
    memcpy(&w, tail, 4);
    acc += w;
  }
  while (acc >> 32) acc = (acc & 0xffffffff) + (acc >> 32);
  return static_cast<uint32_t>(acc);
}

uint16_t CsumFold(uint32_t sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

int Segment(const VnetHdr& h, const uint8_t* pkt, size_t len, uint8_t* out, size_t out_len, std::vector<uint32_t>& ends) {
  const uint8_t gso = h.gso_type & static_cast<uint8_t>(~kGsoEcn);
  if (len < 20 || len > 65535) return -1;
  if (gso == kGsoNone) {
    if (len > out_len) return -1;
    memcpy(out, pkt, len);
    if (h.flags & kVnetFlagNeedsCsum) {
      // The field at csum_start + csum_offset holds the pseudo-header sum: sum everything from
      // csum_start to the end over it.
      const size_t cs = h.csum_start, co = h.csum_offset;
      if (cs >= len || co > len - cs || len - cs - co < 2 || (cs & 1) != 0) return -1;
      uint16_t c = static_cast<uint16_t>(~CsumFold(CsumPartial(out + cs, len - cs, 0)));
      if (co == 6 && c == 0) c = 0xffff;  // UDP: a zero sum is sent as all ones (RFC 768)
      StoreCsum(out + cs + co, c);
    }
    ends.push_back(static_cast<uint32_t>(len));
    return 1;
  }
  if (gso != kGsoTcpV4 && gso != kGsoTcpV6) return -1;
  const bool v6 = gso == kGsoTcpV6;
  size_t iphl;
  if (!v6) {
    if (pkt[0] >> 4 != 4 || pkt[9] != kProtoTcp) return -1;
    iphl = static_cast<size_t>(pkt[0] & 15) * 4;
    if (iphl < 20) return -1;
  } else {
    if (pkt[0] >> 4 != 6 || pkt[6] != kProtoTcp) return -1;
    iphl = 40;
  }
  if (len < iphl + 20) return -1;
  const size_t thl = static_cast<size_t>(pkt[iphl + 12] >> 4) * 4;
  if (thl < 20 || iphl + thl > len) return -1;
  const size_t hl = iphl + thl;
  const size_t payload = len - hl;
  const size_t mss = h.gso_size;
  if (mss < kMinGsoSize) return -1;
  const size_t nseg = payload == 0 ? 1 : (payload + mss - 1) / mss;
  if (nseg > kMaxSegments || payload + nseg * hl > out_len) return -1;
  const uint32_t seq0 = Be32(pkt + iphl + 4);
  const uint16_t id0 = v6 ? 0 : Be16(pkt + 4);
  const uint8_t flags = pkt[iphl + 13];
  const uint32_t pseudo_addr = v6 ? CsumPartial(pkt + 8, 32, 0) : CsumPartial(pkt + 12, 8, 0);
  size_t off = 0;
  for (size_t i = 0; i < nseg; i++) {
    const size_t seg = std::min(mss, payload - i * mss);
    uint8_t* o = out + off;
    const size_t total = hl + seg;
    memcpy(o, pkt, hl);
    memcpy(o + hl, pkt + hl + i * mss, seg);
    if (!v6) {
      Put16(o + 2, static_cast<uint16_t>(total));
      Put16(o + 4, static_cast<uint16_t>(id0 + i));
      FixIpv4Csum(o, iphl);
    } else {
      Put16(o + 4, static_cast<uint16_t>(total - 40));
    }
    uint8_t* th = o + iphl;
    Put32(th + 4, static_cast<uint32_t>(seq0 + i * mss));
    uint8_t f = flags;
    if (i + 1 != nseg) f &= static_cast<uint8_t>(~(kFin | kPsh));
    if (i != 0) f &= static_cast<uint8_t>(~kCwr);
    th[13] = f;
    th[16] = th[17] = 0;
    const size_t l4 = thl + seg;
    uint32_t s = Add32(pseudo_addr, NetWord(kProtoTcp));
    s = Add32(s, NetWord(static_cast<uint16_t>(l4)));
    StoreCsum(th + 16, static_cast<uint16_t>(~CsumFold(CsumPartial(th, l4, s))));
    off += total;
    ends.push_back(static_cast<uint32_t>(off));
  }
  return static_cast<int>(nseg);
}

Coalescer::Coalescer(Sink sink, void* ctx) : sink_(sink), ctx_(ctx) {
  for (int i = 0; i < kItems; i++) order_[i] = i;
}

void Coalescer::EmitRaw(const uint8_t* pkt, size_t len) {
  static const uint8_t kZero[kVnetHdrLen] = {0};
  sink_(ctx_, kZero, pkt, len, 1);
}

void Coalescer::Emit(Item& it) {
  if (it.segs <= 1) {
    EmitRaw(it.buf, it.len);
    return;
  }
  uint8_t* ip = it.buf;
  if (!it.v6) {
    Put16(ip + 2, static_cast<uint16_t>(it.len));
    FixIpv4Csum(ip, IpLen(false));
  } else {
    Put16(ip + 4, static_cast<uint16_t>(it.len - 40));
  }
  // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, the kernel finishes it.
  const size_t iphl = IpLen(it.v6);
  uint8_t* th = ip + iphl;
  StoreCsum(th + 16, CsumFold(PseudoSum(ip, it.v6, kProtoTcp, it.len - iphl)));
  uint16_t gso = it.gso_size;
  if (sizer_ != nullptr && !it.v6) {
    const uint16_t want = sizer_(sizer_ctx_, ip, iphl, it.hdr_len - iphl, gso);
    if (want > gso && want < it.len - it.hdr_len) gso = want;
  }
  uint8_t hdr[kVnetHdrLen];
  WriteVnetHdr(hdr, VnetHdr{kVnetFlagNeedsCsum, it.v6 ? kGsoTcpV6 : kGsoTcpV4, static_cast<uint16_t>(it.hdr_len), gso,
                            static_cast<uint16_t>(iphl), 16});
  sink_(ctx_, hdr, ip, it.len, it.segs);
}

void Coalescer::Remove(int pos) {
  // order_[0, used_) are the open items oldest first; the rest are free slots.
  const int slot = order_[pos];
  for (int j = pos; j + 1 < used_; j++) order_[j] = order_[j + 1];
  order_[--used_] = slot;
}

void Coalescer::Flush() {
  for (int i = 0; i < used_; i++) Emit(items_[order_[i]]);
  used_ = 0;
}

void Coalescer::Add(const uint8_t* pkt, size_t len) {
  // Which packets may be glued: TCP over IPv4 without options or fragments, or IPv6 with TCP as
  // the first next-header; a non-empty payload; only ACK (and PSH) set; a valid checksum (a
  // segment that fails it is passed on alone so the kernel drops it, not hidden in a new sum).
  // Any other TCP packet of a flow with an open item (a pure ACK, FIN, RST) first flushes it.
  bool v6 = false;
  size_t iphl = 0;
  bool ok = len >= 40 && len <= 65535;
  if (ok && pkt[0] >> 4 == 4) {
    iphl = static_cast<size_t>(pkt[0] & 15) * 4;
    ok = iphl == 20 && pkt[9] == kProtoTcp && Be16(pkt + 2) == len && (Be16(pkt + 6) & 0x3fff) == 0;
  } else if (ok && pkt[0] >> 4 == 6) {
    v6 = true;
    iphl = 40;
    ok = len >= 60 && pkt[6] == kProtoTcp && Be16(pkt + 4) + 40u == len;
  } else {
    ok = false;
  }
  size_t thl = 0;
  if (ok) {
    thl = static_cast<size_t>(pkt[iphl + 12] >> 4) * 4;
    ok = thl >= 20 && iphl + thl <= len;
  }
  if (!ok) return EmitRaw(pkt, len);  // not TCP we can read: no flow to keep in order with
  const uint8_t* th = pkt + iphl;
  const uint8_t flags = th[13];
  uint8_t key[36];
  const size_t key_len = KeyLen(v6);
  memcpy(key, pkt + (v6 ? 8 : 12), key_len - 4);
  memcpy(key + key_len - 4, th, 4);
  int at = -1;  // position in order_
  for (int i = 0; i < used_; i++) {
    const Item& it = items_[order_[i]];
    if (it.v6 == v6 && memcmp(it.key, key, key_len) == 0) {
      at = i;
      break;
    }
  }
  const bool glueable = iphl + thl < len && (flags & ~(kAck | kPsh)) == 0 && (flags & kAck) != 0 &&
                        CsumFold(CsumPartial(th, len - iphl, PseudoSum(pkt, v6, kProtoTcp, len - iphl))) == 0xffff;
  if (!glueable) {
    if (at >= 0) {
      Emit(items_[order_[at]]);
      Remove(at);
    }
    return EmitRaw(pkt, len);
  }
  const size_t hl = iphl + thl;
  const size_t payload = len - hl;
  const uint32_t seq = Be32(th + 4);
  if (at >= 0) {
    Item& it = items_[order_[at]];
    const uint8_t* ih = it.buf;
    const uint8_t* ith = ih + iphl;
    bool same = !it.closed && it.hdr_len == hl && seq == it.next_seq && Be32(th + 8) == it.ack && payload <= it.gso_size &&
                it.len + payload <= 65535 && it.segs < 64 &&
                memcmp(th + 14, ith + 14, 2) == 0 &&         // window
                memcmp(th + 20, ith + 20, thl - 20) == 0;    // options (timestamps included)
    if (same) {
      same = v6 ? memcmp(pkt, ih, 4) == 0 && pkt[7] == ih[7]                   // class, flow label, hop limit
                : pkt[1] == ih[1] && pkt[8] == ih[8] && (pkt[6] & 0x40) == (ih[6] & 0x40);  // tos, ttl, DF
    }
    if (same) {
      memcpy(it.buf + it.len, pkt + hl, payload);
      it.len += payload;
      it.segs++;
      it.next_seq = seq + static_cast<uint32_t>(payload);
      if (flags & kPsh) it.buf[iphl + 13] |= kPsh;
      if (payload < it.gso_size || (flags & kPsh)) it.closed = true;
      return;
    }
    Emit(it);
    Remove(at);
  }
  if (used_ == kItems) {
    Emit(items_[order_[0]]);
    Remove(0);
  }
  Item& it = items_[order_[used_++]];
  it.v6 = v6;
  memcpy(it.key, key, key_len);
  it.next_seq = seq + static_cast<uint32_t>(payload);
  it.ack = Be32(th + 8);
  it.gso_size = static_cast<uint16_t>(payload);
  it.segs = 1;
  it.closed = (flags & kPsh) != 0 || payload < kMinGsoSize;  // tiny segments are not worth a GSO write
  it.hdr_len = hl;
  it.len = len;
  memcpy(it.buf, pkt, len);
}

}  // namespace pp
