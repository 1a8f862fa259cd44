// Text <-> sockaddr helpers shared by the UDP socket and SO_ORIGINAL_DST. Addresses are rendered
// the way Node's net/dgram render them (IPv4 dotted quad, IPv6 via inet_ntop, v4-mapped kept).
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

namespace pp {

// <linux/netfilter_ipv4.h> SO_ORIGINAL_DST and <linux/netfilter_ipv6/ip6_tables.h>
// IP6T_SO_ORIGINAL_DST; both 80. Not included: those headers clash with glibc's netinet ones.
constexpr int kSoOriginalDst = 80;
constexpr int kIp6tSoOriginalDst = 80;

// Parses `addr` for `family` (AF_INET/AF_INET6). For an AF_INET6 socket an IPv4 text address is
// accepted and mapped (::ffff:a.b.c.d) so one udp6 socket can reach both families.
inline bool ParseSockaddr(int family, const char* addr, uint16_t port, sockaddr_storage* out, socklen_t* len) {
  memset(out, 0, sizeof *out);
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1) return false;
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(out);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) != 1) {
    in_addr v4;
    if (inet_pton(AF_INET, addr, &v4) != 1) return false;
    sin6->sin6_addr.s6_addr[10] = 0xff;
    sin6->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&sin6->sin6_addr.s6_addr[12], &v4, 4);
  }
  *len = sizeof(sockaddr_in6);
  return true;
}

// Writes the address text into buf (>= INET6_ADDRSTRLEN) and returns the port; -1 if not IP.
inline int FormatSockaddr(const sockaddr_storage* sa, char* buf, size_t buflen) {
  if (sa->ss_family == AF_INET) {
    auto* sin = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &sin->sin_addr, buf, buflen);
    return ntohs(sin->sin_port);
  }
  if (sa->ss_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, buflen);
    return ntohs(sin6->sin6_port);
  }
  buf[0] = 0;
  return -1;
}

inline bool SameSockaddr(const sockaddr_storage* a, const sockaddr_storage* b) {
  if (a->ss_family != b->ss_family) return false;
  if (a->ss_family == AF_INET) {
    auto* x = reinterpret_cast<const sockaddr_in*>(a);
    auto* y = reinterpret_cast<const sockaddr_in*>(b);
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  auto* x = reinterpret_cast<const sockaddr_in6*>(a);
  auto* y = reinterpret_cast<const sockaddr_in6*>(b);
  return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

}  // namespace pp
