// SO_BINDTODEVICE, shared by openTcpSocket (before bind/connect) and bindToDevice (an existing fd).
#pragma once
#include <string>

namespace pp {

// Pins `fd` to the interface `ifname`: the kernel then routes the socket's packets only out of that
// interface (the route lookup is restricted to it, so it needs a route there, e.g. a default route
// with a higher metric) and delivers to it only packets that arrived on it. Returns 0 or an errno.
// Names of IFNAMSIZ bytes or more answer EINVAL without a system call.
int SetBindToDevice(int fd, const std::string& ifname);

}  // namespace pp
