// setTcpFlag(fd, flag, on): the two TCP socket flags Node does not expose, used by the agent's
// proxies to spend fewer segments per short connection (packages/tun/src/tcp-flags.ts):
//   "quickack" TCP_QUICKACK: off puts the socket (or, on a listener, every connection accepted from
//              it: the kernel copies the listener's ACK state into the child) in delayed-ACK mode,
//              so a request is acknowledged by its answer instead of by a bare ACK of its own.
//   "cork"     TCP_CORK: hold partial segments; a shutdown() then sends the queued tail and the FIN
//              in one segment.
#include <errno.h>
#include <napi.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include "errno_error.h"

namespace pp {

Napi::Value SetTcpFlag(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsBoolean()) {
    throw Napi::TypeError::New(env, "setTcpFlag(fd: number, flag: 'quickack' | 'cork', on: boolean)");
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  std::string flag = info[1].As<Napi::String>().Utf8Value();
  int opt;
  if (flag == "quickack") opt = TCP_QUICKACK;
  else if (flag == "cork") opt = TCP_CORK;
  else throw Napi::TypeError::New(env, "setTcpFlag: flag must be 'quickack' or 'cork'");
  int on = info[2].As<Napi::Boolean>().Value() ? 1 : 0;
  if (setsockopt(fd, IPPROTO_TCP, opt, &on, sizeof on) < 0) throw ErrnoError(env, "setsockopt", errno);
  return env.Undefined();
}

}  // namespace pp
