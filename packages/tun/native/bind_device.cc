// bindToDevice(fd, ifname): SO_BINDTODEVICE on a socket Node already owns (a net.Socket after it
// has an fd, a dgram socket after bind()). The egress of the agent pins its sockets this way so they
// leave by the egress interface even when another interface holds the default route: binding only
// to the interface's address leaves the route choice to the main table (packets go out of the
// default interface with a source address that network drops). packages/tun/src/bind-device.ts
// validates the name and turns failures into PP_ERR_TUN_* errors.
#include "bind_device.h"

#include <errno.h>
#include <napi.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>

#include "errno_error.h"

namespace pp {

int SetBindToDevice(int fd, const std::string& ifname) {
  if (ifname.empty() || ifname.size() >= IFNAMSIZ || ifname.find('\0') != std::string::npos) return EINVAL;
  // optlen without the NUL: the kernel copies at most IFNAMSIZ-1 bytes and terminates the name itself.
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname.c_str(), static_cast<socklen_t>(ifname.size())) < 0) return errno;
  return 0;
}

Napi::Value BindToDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsNumber() || !info[1].IsString()) {
    throw Napi::TypeError::New(env, "bindToDevice(fd: number, ifname: string)");
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  if (name.empty() || name.size() >= IFNAMSIZ) throw Napi::TypeError::New(env, "bindToDevice: ifname must be 1-15 bytes");
  int e = SetBindToDevice(fd, name);
  if (e != 0) throw ErrnoError(env, "setsockopt(SO_BINDTODEVICE)", e);
  return env.Undefined();
}

}  // namespace pp
