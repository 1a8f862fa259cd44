// A device's lanes: the listening group's pick by TUN queue and the TUN's steering (lanes.cc).
#pragma once

namespace pp {

// The SO_REUSEPORT group `fd` listens in picks its socket by the TUN queue a SYN came in on (the group's
// sockets in the order they listened: queue k's SYNs to the k-th). False with errno.
bool AttachByQueue(int fd);

}  // namespace pp
