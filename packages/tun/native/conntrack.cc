// ConntrackQuery: see conntrack.h. The message layout: linux/netfilter/nfnetlink_conntrack.h.
#include "conntrack.h"

#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

namespace pp {
namespace {

struct Msg {
  alignas(4) uint8_t b[256];
  size_t n = 0;
  nlattr* Put(uint16_t type, const void* data, uint16_t len) {
    auto* a = reinterpret_cast<nlattr*>(b + n);
    a->nla_type = type;
    a->nla_len = static_cast<uint16_t>(NLA_HDRLEN + len);
    if (data != nullptr) memcpy(b + n + NLA_HDRLEN, data, len);
    n += NLA_ALIGN(a->nla_len);
    return a;
  }
  void End(nlattr* a) { a->nla_len = static_cast<uint16_t>(b + n - reinterpret_cast<uint8_t*>(a)); }
};

// Calls f(type, payload, length) for each attribute in [p, e); stops at a malformed one.
template <typename F>
void EachAttr(const uint8_t* p, const uint8_t* e, F f) {
  while (p + NLA_HDRLEN <= e) {
    const auto* a = reinterpret_cast<const nlattr*>(p);
    if (a->nla_len < NLA_HDRLEN || p + a->nla_len > e) return;
    f(a->nla_type & NLA_TYPE_MASK, p + NLA_HDRLEN, static_cast<size_t>(a->nla_len - NLA_HDRLEN));
    p += NLA_ALIGN(a->nla_len);
  }
}

}  // namespace

ConntrackQuery::~ConntrackQuery() {
  if (fd_ >= 0) close(fd_);
}

int ConntrackQuery::OriginalDst(uint32_t rsrc, uint16_t rsport, uint32_t rdst, uint16_t rdport, uint32_t* odst,
                                uint16_t* odport, uint32_t* mark) {
  if (mark != nullptr) *mark = 0;
  if (fd_ < 0) {
    fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (fd_ < 0) return -errno;
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      const int e = errno;
      close(fd_);
      fd_ = -1;
      return -e;
    }
  }
  Msg m;
  auto* h = reinterpret_cast<nlmsghdr*>(m.b);
  h->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
  h->nlmsg_flags = NLM_F_REQUEST;
  h->nlmsg_seq = ++seq_;
  m.n = NLMSG_HDRLEN;
  auto* g = reinterpret_cast<nfgenmsg*>(m.b + m.n);
  g->nfgen_family = AF_INET;
  g->version = NFNETLINK_V0;
  g->res_id = 0;
  m.n += NLMSG_ALIGN(sizeof *g);
  nlattr* tuple = m.Put(CTA_TUPLE_REPLY | NLA_F_NESTED, nullptr, 0);
  nlattr* ip = m.Put(CTA_TUPLE_IP | NLA_F_NESTED, nullptr, 0);
  m.Put(CTA_IP_V4_SRC, &rsrc, 4);
  m.Put(CTA_IP_V4_DST, &rdst, 4);
  m.End(ip);
  nlattr* proto = m.Put(CTA_TUPLE_PROTO | NLA_F_NESTED, nullptr, 0);
  const uint8_t tcp = IPPROTO_TCP;
  m.Put(CTA_PROTO_NUM, &tcp, 1);
  m.Put(CTA_PROTO_SRC_PORT, &rsport, 2);
  m.Put(CTA_PROTO_DST_PORT, &rdport, 2);
  m.End(proto);
  m.End(tuple);
  h->nlmsg_len = static_cast<uint32_t>(m.n);
  if (send(fd_, m.b, m.n, 0) < 0) return -errno;
  alignas(4) uint8_t r[4096];
  for (;;) {
    // The answer to a GET is queued before send() returns; anything older (a reply we gave up on) is skipped.
    const ssize_t n = recv(fd_, r, sizeof r, MSG_DONTWAIT);
    if (n < 0) return errno == EAGAIN ? -ETIMEDOUT : -errno;
    const auto* rh = reinterpret_cast<const nlmsghdr*>(r);
    if (!NLMSG_OK(rh, static_cast<size_t>(n))) return -EBADMSG;
    if (rh->nlmsg_seq != seq_) continue;
    if (rh->nlmsg_type == NLMSG_ERROR) {
      const int e = reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(rh))->error;
      return e < 0 ? e : -ENOENT;
    }
    const uint8_t* p = static_cast<const uint8_t*>(NLMSG_DATA(rh)) + NLMSG_ALIGN(sizeof(nfgenmsg));
    const uint8_t* e = reinterpret_cast<const uint8_t*>(rh) + rh->nlmsg_len;
    int found = 0;
    EachAttr(p, e, [&](int t, const uint8_t* v, size_t len) {
      if (t == CTA_MARK && len == 4 && mark != nullptr) {
        uint32_t m;
        memcpy(&m, v, 4);
        *mark = ntohl(m);
      }
      if (t != CTA_TUPLE_ORIG) return;
      EachAttr(v, v + len, [&](int t2, const uint8_t* v2, size_t len2) {
        EachAttr(v2, v2 + len2, [&](int t3, const uint8_t* v3, size_t len3) {
          if (t2 == CTA_TUPLE_IP && t3 == CTA_IP_V4_DST && len3 == 4) memcpy(odst, v3, 4), found |= 1;
          if (t2 == CTA_TUPLE_PROTO && t3 == CTA_PROTO_DST_PORT && len3 == 2) memcpy(odport, v3, 2), found |= 2;
        });
      });
    });
    return found == 3 ? 0 : -ENOENT;
  }
}

}  // namespace pp
