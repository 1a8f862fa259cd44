#include "fd_poller.h"

#include <unistd.h>

namespace pp {

FdPoller::~FdPoller() { CloseFd(); }

int FdPoller::Attach(napi_env env, int fd) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return UV_EINVAL;
  auto* h = new uv_poll_t;
  int r = uv_poll_init(loop, h, fd);
  if (r != 0) {
    delete h;
    return r;
  }
  h->data = this;
  env_ = env;
  handle_ = h;
  fd_ = fd;
  // A worker thread that exits with our handle still open would abort in uv_loop_close; close
  // ourselves when the env goes away.
  if (napi_add_env_cleanup_hook(env, EnvCleanup, this) == napi_ok) cleanup_hook_ = true;
  return 0;
}

int FdPoller::Start() {
  if (handle_ == nullptr) return UV_EBADF;
  if (polling_) return 0;
  int r = uv_poll_start(handle_, UV_READABLE, PollCb);
  if (r == 0) polling_ = true;
  return r;
}

void FdPoller::Stop() {
  if (handle_ != nullptr && polling_) uv_poll_stop(handle_);
  polling_ = false;
}

void FdPoller::SetRef(bool ref) {
  if (handle_ == nullptr) return;
  if (ref) uv_ref(reinterpret_cast<uv_handle_t*>(handle_));
  else uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
}

void FdPoller::CloseFd() {
  Stop();
  if (handle_ != nullptr) {
    handle_->data = nullptr;
    // libuv: never close an fd while it is polled; uv_poll_stop above removed it from epoll.
    uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    handle_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (cleanup_hook_) {
    cleanup_hook_ = false;
    napi_remove_env_cleanup_hook(env_, EnvCleanup, this);
  }
}

void FdPoller::PollCb(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<FdPoller*>(handle->data);
  if (self == nullptr) return;
  if (status < 0) {
    self->Stop();
    self->OnPollError(status);
    return;
  }
  if (events & UV_READABLE) self->OnReadable();
}

void FdPoller::EnvCleanup(void* arg) {
  auto* self = static_cast<FdPoller*>(arg);
  self->cleanup_hook_ = false;  // node is running it now; do not try to remove it
  self->CloseFd();
}

}  // namespace pp
