// Where a DNAT'ed flow was headed, asked of conntrack by the flow's reply tuple (ctnetlink
// IPCTNL_MSG_CT_GET with CTA_TUPLE_REPLY; answered with the entry, whose CTA_TUPLE_ORIG holds the
// destination before the DNAT). The relay's TUN read stamps it into an OpenVPN customer's SYN
// (syn_stamp.h). One NETLINK_NETFILTER socket per user, synchronous: the kernel answers a GET within
// the send, ~9 us per question on the lab's host. Needs CAP_NET_ADMIN in the relay's network namespace.
#pragma once

#include <stdint.h>

namespace pp {

class ConntrackQuery {
 public:
  ConntrackQuery() = default;
  ~ConntrackQuery();
  ConntrackQuery(const ConntrackQuery&) = delete;
  ConntrackQuery& operator=(const ConntrackQuery&) = delete;

  // The original destination of the TCP flow whose reply goes rsrc:rsport -> rdst:rdport (all network
  // order), and its conntrack mark (host order; 0 when it has none) when `mark` is given. 0, or -errno
  // (ENOENT: no such flow; the socket is opened on first use).
  int OriginalDst(uint32_t rsrc, uint16_t rsport, uint32_t rdst, uint16_t rdport, uint32_t* odst, uint16_t* odport,
                  uint32_t* mark = nullptr);

 private:
  int fd_ = -1;
  uint32_t seq_ = 0;
};

}  // namespace pp
