// FdPoller: one non-blocking fd watched for readability by a uv_poll_t on the loop of the env
// (main thread or worker) that created it. TunQueue and UdpBatch derive from it.
//
// Why uv_poll and not fs.read: fs.read runs each read() on the libuv thread pool, a thread hop and
// a JS callback per packet. Here readiness comes from epoll on the JS thread and the subclass drains
// a whole batch with plain read()/recvmmsg() before calling into JS once.
#pragma once
#include <napi.h>
#include <uv.h>

namespace pp {

class FdPoller {
 public:
  FdPoller() = default;
  virtual ~FdPoller();
  FdPoller(const FdPoller&) = delete;
  FdPoller& operator=(const FdPoller&) = delete;

  // Takes ownership of `fd` (already O_NONBLOCK). Returns a libuv error code (0 on success).
  int Attach(napi_env env, int fd);
  // Takes ownership of a fd that must stay blocking (uv_poll_init would make it non-blocking):
  // no polling, Start() fails. Only for the fs.read comparison in bench/tun.bench.ts.
  void AdoptUnpolled(int fd) { fd_ = fd; }
  int Start();
  void Stop();
  // Stops polling, closes the fd, releases the uv handle. Idempotent.
  void CloseFd();
  void SetRef(bool ref);
  int fd() const { return fd_; }
  bool is_closed() const { return fd_ < 0; }
  bool is_polling() const { return polling_; }

 protected:
  virtual void OnReadable() = 0;
  virtual void OnPollError(int uv_status) = 0;

 private:
  static void PollCb(uv_poll_t* handle, int status, int events);
  static void EnvCleanup(void* arg);

  napi_env env_ = nullptr;
  uv_poll_t* handle_ = nullptr;
  int fd_ = -1;
  bool polling_ = false;
  bool cleanup_hook_ = false;
};

}  // namespace pp
