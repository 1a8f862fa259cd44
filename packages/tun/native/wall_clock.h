// The clock JS's Date.now() reads, in ms: the native seal and open paths compare a session's
// reject-after time (computed in JS from Date.now()) against it.
#pragma once
#include <time.h>

namespace pp {

inline double WallClockMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) * 1000.0 + static_cast<double>(ts.tv_nsec) / 1e6;
}

}  // namespace pp
