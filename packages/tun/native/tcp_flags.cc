// TCP socket options Node does not expose, for the agent's proxies (packages/tun/src/tcp-flags.ts).
//
// setTcpFlag(fd, flag, on): flags that spend fewer segments and wakeups per short connection:
//   "quickack" TCP_QUICKACK: off puts the socket (or, on a listener, every connection accepted from
//              it: the kernel copies the listener's ACK state into the child) in delayed-ACK mode,
//              so a request is acknowledged by its answer instead of by a bare ACK of its own.
//   "cork"     TCP_CORK: hold partial segments; a shutdown() then sends the queued tail and the FIN
//              in one segment.
//   "defer_accept" TCP_DEFER_ACCEPT (1 s) on a listener: a connection is handed to accept() when
//              its first data arrives, for protocols whose clients speak first.
//   "nodelay"  TCP_NODELAY: on a listener, inherited by every accepted connection (the kernel
//              clones the listener's socket), so a server need not set it once per connection.
#include <errno.h>
#include <napi.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bind_device.h"
#include "errno_error.h"
#include "sockaddr.h"

namespace pp {

Napi::Value SetTcpFlag(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsBoolean()) {
    throw Napi::TypeError::New(env, "setTcpFlag(fd: number, flag: 'quickack' | 'cork' | 'defer_accept' | 'nodelay', on: boolean)");
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  std::string flag = info[1].As<Napi::String>().Utf8Value();
  int opt;
  if (flag == "quickack") opt = TCP_QUICKACK;
  else if (flag == "cork") opt = TCP_CORK;
  else if (flag == "defer_accept") opt = TCP_DEFER_ACCEPT;
  else if (flag == "nodelay") opt = TCP_NODELAY;
  else throw Napi::TypeError::New(env, "setTcpFlag: flag must be 'quickack', 'cork', 'defer_accept' or 'nodelay'");
  int on = info[2].As<Napi::Boolean>().Value() ? 1 : 0;
  if (setsockopt(fd, IPPROTO_TCP, opt, &on, sizeof on) < 0) throw ErrnoError(env, "setsockopt", errno);
  return env.Undefined();
}

// openTcpSocket(family, bindAddress, quietAck, device?): an unconnected non-blocking TCP socket for an
// outgoing connection, for Node to adopt (new net.Socket({ fd })) and connect.
//   - device (the egress interface's name): SO_BINDTODEVICE before bind and connect, so the SYN
//     and everything after leave by that interface whatever the main table's default route says
//     (the route lookup is restricted to routes through it). Fails with ENODEV for an unknown name.
//   - bound to `bindAddress` (the egress interface's address) with IP_BIND_ADDRESS_NO_PORT, so the
//     local port is chosen at connect() time for the whole 4-tuple. A plain bind(addr, 0) must find
//     a port no other socket on that address holds, TIME_WAIT ones included (28,232 ports, 60 s),
//     and that search slows down as they fill: closing first, loopback, 50 at a time, 5,000
//     connections took 0.7 s and the next 10,000 took 16 s; with this flag 40,000 took 5.2 s.
//   - quietAck: TCP_QUICKACK off before connect(), so the handshake's last ACK is not sent on its
//     own but rides the request (tcp_rcv_synsent_state_process: "Save one ACK").
//   - TCP_NODELAY, as Node's own proxies' sockets have it (one system call fewer than asking Node).
Napi::Value OpenTcpSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool has_device = info.Length() == 4 && info[3].IsString();
  if (info.Length() < 3 || info.Length() > 4 || !info[0].IsNumber() || !(info[1].IsString() || info[1].IsNull()) || !info[2].IsBoolean() ||
      (info.Length() == 4 && !has_device && !info[3].IsNull() && !info[3].IsUndefined())) {
    throw Napi::TypeError::New(env, "openTcpSocket(family: 4 | 6, bindAddress: string | null, quietAck: boolean, device?: string | null)");
  }
  std::string device = has_device ? info[3].As<Napi::String>().Utf8Value() : std::string();
  if (has_device && (device.empty() || device.size() >= IFNAMSIZ)) throw Napi::TypeError::New(env, "openTcpSocket: device must be 1-15 bytes");
  int fam = info[0].As<Napi::Number>().Int32Value();
  if (fam != 4 && fam != 6) throw Napi::TypeError::New(env, "openTcpSocket: family must be 4 or 6");
  int family = fam == 4 ? AF_INET : AF_INET6;
  sockaddr_storage bind_to;
  socklen_t bind_len = 0;
  if (info[1].IsString()) {
    std::string addr = info[1].As<Napi::String>().Utf8Value();
    // No v4-mapped binding here: the bind address must be of the socket's own family.
    in6_addr probe;
    if (inet_pton(family, addr.c_str(), &probe) != 1 || !ParseSockaddr(family, addr.c_str(), 0, &bind_to, &bind_len)) {
      throw Napi::TypeError::New(env, "openTcpSocket: bindAddress is not an address of that family");
    }
  }
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) throw ErrnoError(env, "socket", errno);
  int one = 1, zero = 0;
  if ((info[2].As<Napi::Boolean>().Value() && setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof zero) < 0) ||
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) {
    int e = errno;
    close(fd);
    throw ErrnoError(env, "setsockopt", e);
  }
  if (has_device) {
    int e = SetBindToDevice(fd, device);
    if (e != 0) {
      close(fd);
      throw ErrnoError(env, "setsockopt(SO_BINDTODEVICE)", e);
    }
  }
  if (bind_len > 0) {
    if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) < 0 ||
        bind(fd, reinterpret_cast<sockaddr*>(&bind_to), bind_len) < 0) {
      int e = errno;
      close(fd);
      throw ErrnoError(env, "bind", e);
    }
  }
  return Napi::Number::New(env, fd);
}

}  // namespace pp
