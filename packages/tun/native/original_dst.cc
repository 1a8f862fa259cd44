// getOriginalDst(fd): the destination a TCP connection had before an nftables REDIRECT/DNAT
// rewrote it, read from conntrack with getsockopt(SO_ORIGINAL_DST).
// Kernel: getorigdst() / ipv6_getorigdst() in
// https://elixir.bootlin.com/linux/latest/source/net/netfilter/nf_conntrack_proto.c
#include <errno.h>
#include <napi.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "errno_error.h"
#include "sockaddr.h"

namespace pp {

Napi::Value GetOriginalDst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "getOriginalDst(fd: number)");
  int fd = info[0].As<Napi::Number>().Int32Value();

  sockaddr_storage local;
  socklen_t llen = sizeof local;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) < 0) throw ErrnoError(env, "getsockname", errno);

  sockaddr_storage dst;
  memset(&dst, 0, sizeof dst);
  socklen_t dlen;
  bool v4 = local.ss_family == AF_INET;
  if (local.ss_family == AF_INET6) {
    // An IPv4 client on a dual-stack (::) listener: the conntrack entry is IPv4. The kernel routes
    // SOL_IP on a v6 socket through ip_getsockopt, which reads the mapped v4 addresses.
    v4 = IN6_IS_ADDR_V4MAPPED(&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr);
  } else if (local.ss_family != AF_INET) {
    throw ErrnoError(env, "getOriginalDst", EAFNOSUPPORT);
  }
  if (v4) {
    dlen = sizeof(sockaddr_in);
    if (getsockopt(fd, SOL_IP, kSoOriginalDst, &dst, &dlen) < 0) throw ErrnoError(env, "getsockopt SO_ORIGINAL_DST", errno);
  } else {
    dlen = sizeof(sockaddr_in6);
    if (getsockopt(fd, SOL_IPV6, kIp6tSoOriginalDst, &dst, &dlen) < 0) {
      throw ErrnoError(env, "getsockopt IP6T_SO_ORIGINAL_DST", errno);
    }
  }
  char buf[INET6_ADDRSTRLEN];
  int port = FormatSockaddr(&dst, buf, sizeof buf);
  Napi::Object o = Napi::Object::New(env);
  o.Set("address", buf);
  o.Set("port", port);
  o.Set("family", dst.ss_family == AF_INET ? "IPv4" : "IPv6");
  return o;
}

}  // namespace pp
