// SpliceRelay: the established byte path of a proxied TCP connection, out of JS. After the proxy
// has authenticated the customer and connected the target, it hands both sockets here (their fds
// duplicated; the JS handles are then closed) and the bytes flow kernel to kernel with splice()
// through a pipe per direction, driven by one epoll instance of our own that the JS thread's libuv
// loop watches through a single uv_poll. JS hears of the pair again only at its end (one call with
// the byte counts) and once a second for the counts of pairs that moved bytes (usage).
//
// Per direction (src -> dst), edge-triggered, at most kSliceBytes per event (then re-armed):
//   1. what the pipe holds (and bytes handed over from JS first) is written to dst; EAGAIN: wait
//      for dst to be writable, reading nothing more from src meanwhile (backpressure reaches the
//      sender through src's receive window, as with readStop);
//   2. with the pipe empty: src is spliced into it until EAGAIN, the pipe is full or src's FIN; then 1.
//   3. src's FIN, once the pipe is drained: shutdown(dst, SHUT_WR) (half-open both ways). When the
//      FIN came in the same pass as the last bytes, dst is corked first (TCP_CORK), so those bytes and
//      the FIN leave in one segment (a tunnel frame, on the agent).
// The pair ends when both directions have passed their FIN (reason 0), on a socket error or reset in
// either direction (reason 1: both are closed, with a reset when started with resetOnError), after `idleMs` with no byte either way (reason 2),
// or on kill() from JS (no callback: kill returns the counts).
//
// Memory and fds: no user-space buffer. A direction holds a pipe (64 KiB of pipe slots, references to
// the socket's pages) only while bytes are on their way: once its source is drained and its pipe
// empty, the pipe goes back to a pool (up to kPoolMax, for any pair). So a quiet pair costs its two
// sockets and nothing else, and the fds in pipes are bounded by the pairs moving bytes right now.
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <napi.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "errno_error.h"
#include "js_call.h"

namespace pp {

namespace {

constexpr size_t kPipeCap = 64 * 1024;
constexpr size_t kPoolMax = 64;
constexpr int kEvents = 64;
constexpr uint64_t kSweepMs = 1000;
// Bytes a direction moves per event before it gives the loop back (re-armed, it goes on at the next
// turn): without a bound one fast stream held the JS thread for 110-130 ms at a time (512 MiB from a
// local sender), which on the relay is every device's tunnel work waiting.
constexpr size_t kSliceBytes = 256 * 1024;
constexpr uint32_t kWatch = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

enum Reason { kClean = 0, kError = 1, kIdle = 2 };

struct Dir {
  int src = 0;  // side index
  int dst = 1;
  int pipe_r = -1;
  int pipe_w = -1;
  size_t inpipe = 0;
  std::string pending;  // bytes JS had read already; written before anything from the pipe
  size_t pending_off = 0;
  bool eof = false;   // src's FIN read
  bool done = false;  // dst shut down after the FIN
  bool corked = false;
  uint64_t bytes = 0;     // read from src here
  uint64_t reported = 0;  // of which JS was told
};

struct Relay {
  uint32_t id = 0;
  int fd[2] = {-1, -1};  // 0 = client, 1 = target
  Dir dir[2];            // 0 = up (client -> target), 1 = down (target -> client)
  uint64_t last = 0;     // loop time of the last byte moved
  uint64_t idle_ms = 0;
  bool reset_on_error = false;  // a failed side closes the other with a reset, not a FIN
};

}  // namespace

class SpliceRelay : public Napi::ObjectWrap<SpliceRelay> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "SpliceRelay",
                       {InstanceMethod<&SpliceRelay::Start>("start"), InstanceMethod<&SpliceRelay::Kill>("kill"),
                        InstanceMethod<&SpliceRelay::Stats>("stats"), InstanceMethod<&SpliceRelay::Close>("close")});
  }

  // new SpliceRelay(onDone(id, up, down, reason), onProgress(Float64Array [id, up, down]*))
  explicit SpliceRelay(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SpliceRelay>(info) {
    Napi::Env env = info.Env();
    if (info.Length() != 2 || !info[0].IsFunction() || !info[1].IsFunction())
      throw Napi::TypeError::New(env, "new SpliceRelay(onDone, onProgress)");
    on_done_ = Napi::Persistent(info[0].As<Napi::Function>());
    on_progress_ = Napi::Persistent(info[1].As<Napi::Function>());
    ctx_ = std::make_unique<Napi::AsyncContext>(env, "SpliceRelay");
    if (napi_get_uv_event_loop(env, &loop_) != napi_ok) throw Napi::Error::New(env, "SpliceRelay: no event loop");
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw ErrnoError(env, "epoll_create1", errno);
    poll_ = new uv_poll_t;
    if (int r = uv_poll_init(loop_, poll_, epfd_); r != 0) {
      delete poll_;
      poll_ = nullptr;
      ::close(epfd_);
      epfd_ = -1;
      throw Napi::Error::New(env, std::string("SpliceRelay: uv_poll_init: ") + uv_strerror(r));
    }
    poll_->data = this;
    timer_ = new uv_timer_t;
    uv_timer_init(loop_, timer_);
    timer_->data = this;
    env_ = env;
    napi_add_env_cleanup_hook(env, EnvCleanup, this);
  }

  ~SpliceRelay() override { Shutdown(); }

 private:
  // start(clientFd, targetFd, toTarget|null, toClient|null, clientEnded, targetEnded, idleMs, resetOnError) -> id.
  // The fds are duplicated: the caller closes its own afterwards. Throws (and keeps nothing) on failure.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 8 || !info[0].IsNumber() || !info[1].IsNumber() || !info[4].IsBoolean() ||
        !info[5].IsBoolean() || !info[6].IsNumber() || !info[7].IsBoolean())
      throw Napi::TypeError::New(
          env, "start(clientFd, targetFd, toTarget, toClient, clientEnded, targetEnded, idleMs, resetOnError)");
    if (epfd_ < 0) throw Napi::Error::New(env, "SpliceRelay is closed");
    if (unsupported_ != 0) throw ErrnoError(env, "splice", unsupported_);
    auto bytes = [&](const Napi::Value& v, std::string& out) {
      if (v.IsNull() || v.IsUndefined()) return;
      if (!v.IsBuffer()) throw Napi::TypeError::New(env, "start: toTarget/toClient must be a Buffer or null");
      auto b = v.As<Napi::Buffer<char>>();
      out.assign(b.Data(), b.Length());
    };
    auto* r = new Relay;
    // Ids wrap after 2^32 pairs; one still running (a tunnel open for weeks) keeps its id.
    while (next_id_ == 0 || relays_.count(next_id_) != 0) next_id_++;
    r->id = next_id_++;
    started_++;
    r->dir[0].src = 0;
    r->dir[0].dst = 1;
    r->dir[1].src = 1;
    r->dir[1].dst = 0;
    try {
      bytes(info[2], r->dir[0].pending);
      bytes(info[3], r->dir[1].pending);
    } catch (...) {
      delete r;
      throw;
    }
    r->dir[0].eof = info[4].As<Napi::Boolean>().Value();
    r->dir[1].eof = info[5].As<Napi::Boolean>().Value();
    double idle = info[6].As<Napi::Number>().DoubleValue();
    r->idle_ms = idle > 0 ? static_cast<uint64_t>(idle) : 0;
    r->reset_on_error = info[7].As<Napi::Boolean>().Value();
    int in[2] = {info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value()};
    for (int s = 0; s < 2; s++) {
      r->fd[s] = fcntl(in[s], F_DUPFD_CLOEXEC, 3);
      if (r->fd[s] < 0) {
        int e = errno;
        Release(r);
        throw ErrnoError(env, "dup", e);
      }
      if (Watch(EPOLL_CTL_ADD, r, s) != 0) {
        int e = errno;
        Release(r);
        throw ErrnoError(env, "epoll_ctl", e);
      }
    }
    relays_[r->id] = r;
    r->last = uv_now(loop_);
    if (relays_.size() == 1) Arm();
    // The first edge comes from epoll on the next loop turn: bytes handed over go out then.
    return Napi::Number::New(env, r->id);
  }

  // kill(id, reset) -> [up, down] not yet reported, or null (unknown id: already over). Closes both
  // sockets; `reset` bit 0 = the client's, bit 1 = the target's with a TCP reset (SO_LINGER 0).
  Napi::Value Kill(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 2 || !info[0].IsNumber() || !info[1].IsNumber())
      throw Napi::TypeError::New(env, "kill(id, reset)");
    auto it = relays_.find(info[0].As<Napi::Number>().Uint32Value());
    if (it == relays_.end()) return env.Null();
    Relay* r = it->second;
    relays_.erase(it);
    const uint32_t reset = info[1].As<Napi::Number>().Uint32Value();
    for (int s = 0; s < 2; s++)
      if (reset & (1u << s)) Reset(r->fd[s]);
    auto out = Napi::Array::New(env, 2);
    out.Set(0u, Napi::Number::New(env, static_cast<double>(r->dir[0].bytes - r->dir[0].reported)));
    out.Set(1u, Napi::Number::New(env, static_cast<double>(r->dir[1].bytes - r->dir[1].reported)));
    Release(r);
    if (relays_.empty()) Disarm();
    return out;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto o = Napi::Object::New(env);
    o.Set("active", Napi::Number::New(env, static_cast<double>(relays_.size())));
    o.Set("pooledPipes", Napi::Number::New(env, static_cast<double>(pool_.size())));
    o.Set("pipesInUse", Napi::Number::New(env, static_cast<double>(pipes_in_use_)));
    o.Set("unsupported", Napi::Boolean::New(env, unsupported_ != 0));
    o.Set("started", Napi::Number::New(env, static_cast<double>(started_)));
    o.Set("yields", Napi::Number::New(env, static_cast<double>(yields_)));
    return o;
  }

  // close(): every pair is closed without callbacks; the instance is unusable afterwards.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  void Shutdown() {
    for (auto& [id, r] : relays_) Release(r);
    relays_.clear();
    for (auto& p : pool_) {
      ::close(p.first);
      ::close(p.second);
    }
    pool_.clear();
    if (poll_ != nullptr) {
      uv_poll_stop(poll_);
      poll_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
    if (timer_ != nullptr) {
      uv_timer_stop(timer_);
      timer_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
      timer_ = nullptr;
    }
    if (epfd_ >= 0) {
      ::close(epfd_);
      epfd_ = -1;
    }
    if (env_ != nullptr) {
      napi_remove_env_cleanup_hook(env_, EnvCleanup, this);
      env_ = nullptr;
    }
  }

  static void EnvCleanup(void* arg) {
    auto* self = static_cast<SpliceRelay*>(arg);
    self->env_ = nullptr;  // node is running the hook: do not remove it
    self->Shutdown();
  }

  // The epoll fd is watched (and the sweep timer runs) only while pairs exist, and neither keeps
  // the process alive: the sockets' owners decide that.
  void Arm() {
    if (poll_ == nullptr) return;
    uv_poll_start(poll_, UV_READABLE, PollCb);
    uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    uv_timer_start(timer_, TimerCb, kSweepMs, kSweepMs);
    uv_unref(reinterpret_cast<uv_handle_t*>(timer_));
  }

  void Disarm() {
    if (poll_ != nullptr) uv_poll_stop(poll_);
    if (timer_ != nullptr) uv_timer_stop(timer_);
  }

  static void PollCb(uv_poll_t* h, int status, int events) {
    auto* self = static_cast<SpliceRelay*>(h->data);
    if (self != nullptr) self->Dispatch();
  }

  static void TimerCb(uv_timer_t* t) {
    auto* self = static_cast<SpliceRelay*>(t->data);
    if (self != nullptr) self->Sweep();
  }

  void Dispatch() {
    epoll_event evs[kEvents];
    Napi::HandleScope scope(Env());
    for (int round = 0; round < 16; round++) {
      int n = epoll_wait(epfd_, evs, kEvents, 0);
      if (n <= 0) return;
      for (int i = 0; i < n; i++) {
        // A pair ended earlier in this batch is gone from the map: its later events are skipped.
        auto it = relays_.find(static_cast<uint32_t>(evs[i].data.u64 >> 1));
        if (it == relays_.end()) continue;
        Relay* r = it->second;
        int reason = -1;
        if (!Pump(r, r->dir[0]) || !Pump(r, r->dir[1])) reason = kError;
        else if (r->dir[0].done && r->dir[1].done) reason = kClean;
        if (reason >= 0) Finish(r, reason);
      }
      if (n < kEvents) return;
      if (epfd_ < 0) return;  // a callback closed us
    }
  }

  static void Uncork(Dir& d, int fd) {
    if (!d.corked) return;
    int off = 0;
    setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
    d.corked = false;
  }

  int Watch(int op, Relay* r, int side) {
    epoll_event ev{};
    ev.events = kWatch;
    ev.data.u64 = (static_cast<uint64_t>(r->id) << 1) | static_cast<uint64_t>(side);
    return epoll_ctl(epfd_, op, r->fd[side], &ev);
  }

  // Moves what it can in one direction, up to kSliceBytes. False: a socket failed (the pair must end).
  bool Pump(Relay* r, Dir& d) {
    if (d.done) return true;
    const int src = r->fd[d.src];
    const int dst = r->fd[d.dst];
    size_t moved = 0;
    for (;;) {
      while (d.pending_off < d.pending.size()) {
        ssize_t n = ::send(dst, d.pending.data() + d.pending_off, d.pending.size() - d.pending_off,
                           MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
          d.pending_off += static_cast<size_t>(n);
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        return false;
      }
      if (!d.pending.empty()) {
        std::string().swap(d.pending);
        d.pending_off = 0;
      }
      while (d.inpipe > 0) {
        ssize_t n = splice(d.pipe_r, nullptr, dst, nullptr, d.inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
          d.inpipe -= static_cast<size_t>(n);
          r->last = uv_now(loop_);
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        NoteUnsupported(errno);
        return false;
      }
      if (d.eof) {
        if (::shutdown(dst, SHUT_WR) != 0 && errno != ENOTCONN) return false;
        Uncork(d, dst);
        d.done = true;
        ReturnPipe(d);
        return true;
      }
      if (moved >= kSliceBytes) {
        // Enough for one turn. Re-arming src reports it again if it is still readable (edge
        // triggered, nothing else would), so the rest moves at the next turn of the loop.
        yields_++;
        return Watch(EPOLL_CTL_MOD, r, d.src) == 0;
      }
      if (d.pipe_r < 0 && !TakePipe(d)) return false;
      for (;;) {
        ssize_t n = splice(src, nullptr, d.pipe_w, nullptr, kPipeCap - d.inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
          d.inpipe += static_cast<size_t>(n);
          d.bytes += static_cast<uint64_t>(n);
          moved += static_cast<size_t>(n);
          r->last = uv_now(loop_);
          if (d.inpipe >= kPipeCap) break;
          continue;
        }
        if (n == 0) {
          d.eof = true;
          break;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        NoteUnsupported(errno);
        return false;
      }
      if (d.inpipe == 0 && !d.eof) {
        // src is empty (its next edge brings us back): the pipe goes back to the pool, so a quiet
        // pair holds none and open pairs cost their two sockets only.
        ReturnPipe(d);
        return true;
      }
      if (d.eof && d.inpipe > 0 && !d.corked) {
        int on = 1;
        if (setsockopt(dst, IPPROTO_TCP, TCP_CORK, &on, sizeof on) == 0) d.corked = true;
      }
    }
  }

  // splice() refused by the kernel or a sandbox (no such call, or not for these sockets): that pair
  // is lost, and start() refuses from now on, so every later connection stays in the JS pump.
  void NoteUnsupported(int err) {
    if (err == EINVAL || err == ENOSYS || err == EOPNOTSUPP || err == EPERM) unsupported_ = err;
  }

  bool TakePipe(Dir& d) {
    pipes_in_use_++;
    if (!pool_.empty()) {
      d.pipe_r = pool_.back().first;
      d.pipe_w = pool_.back().second;
      pool_.pop_back();
      return true;
    }
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
      pipes_in_use_--;
      return false;
    }
    d.pipe_r = p[0];
    d.pipe_w = p[1];
    return true;
  }

  // An empty pipe goes back to the pool; one still holding bytes (a pair cut short) is closed.
  void ReturnPipe(Dir& d) {
    if (d.pipe_r < 0) return;
    pipes_in_use_--;
    if (d.inpipe == 0 && pool_.size() < kPoolMax) {
      pool_.emplace_back(d.pipe_r, d.pipe_w);
    } else {
      ::close(d.pipe_r);
      ::close(d.pipe_w);
    }
    d.pipe_r = d.pipe_w = -1;
    d.inpipe = 0;
  }

  // Closes the sockets (which also takes them out of epoll: we hold their only fds) and frees the pair.
  void Release(Relay* r) {
    for (int s = 0; s < 2; s++)
      if (r->fd[s] >= 0) ::close(r->fd[s]);
    ReturnPipe(r->dir[0]);
    ReturnPipe(r->dir[1]);
    delete r;
  }

  static void Reset(int fd) {
    linger l{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }

  void Finish(Relay* r, int reason) {
    relays_.erase(r->id);
    if (reason == kError && r->reset_on_error) {
      Reset(r->fd[0]);
      Reset(r->fd[1]);
    }
    const uint32_t id = r->id;
    const double up = static_cast<double>(r->dir[0].bytes - r->dir[0].reported);
    const double down = static_cast<double>(r->dir[1].bytes - r->dir[1].reported);
    Release(r);
    if (relays_.empty()) Disarm();
    Napi::Env env = Env();
    CallJs(env, on_done_, Value(),
           {Napi::Number::New(env, id), Napi::Number::New(env, up), Napi::Number::New(env, down),
            Napi::Number::New(env, reason)},
           *ctx_);
  }

  void Sweep() {
    Napi::HandleScope scope(Env());
    const uint64_t now = uv_now(loop_);
    std::vector<uint32_t> idle;
    std::vector<double> moved;
    for (auto& [id, r] : relays_) {
      if (r->idle_ms > 0 && now - r->last >= r->idle_ms) {
        idle.push_back(id);
        continue;
      }
      const uint64_t up = r->dir[0].bytes - r->dir[0].reported;
      const uint64_t down = r->dir[1].bytes - r->dir[1].reported;
      if (up == 0 && down == 0) continue;
      r->dir[0].reported = r->dir[0].bytes;
      r->dir[1].reported = r->dir[1].bytes;
      moved.push_back(id);
      moved.push_back(static_cast<double>(up));
      moved.push_back(static_cast<double>(down));
    }
    Napi::Env env = Env();
    if (!moved.empty()) {
      auto ab = Napi::ArrayBuffer::New(env, moved.size() * sizeof(double));
      std::copy(moved.begin(), moved.end(), static_cast<double*>(ab.Data()));
      CallJs(env, on_progress_, Value(), {Napi::Float64Array::New(env, moved.size(), ab, 0)}, *ctx_);
    }
    for (uint32_t id : idle) {
      // The progress callback may have killed it meanwhile.
      auto it = relays_.find(id);
      if (it != relays_.end()) Finish(it->second, kIdle);
    }
  }

  Napi::FunctionReference on_done_;
  Napi::FunctionReference on_progress_;
  std::unique_ptr<Napi::AsyncContext> ctx_;
  napi_env env_ = nullptr;
  uv_loop_t* loop_ = nullptr;
  uv_poll_t* poll_ = nullptr;
  uv_timer_t* timer_ = nullptr;
  int epfd_ = -1;
  uint32_t next_id_ = 1;
  uint64_t started_ = 0;
  uint64_t yields_ = 0;  // times a direction gave the loop back after kSliceBytes
  std::unordered_map<uint32_t, Relay*> relays_;
  std::vector<std::pair<int, int>> pool_;
  size_t pipes_in_use_ = 0;
  int unsupported_ = 0;  // errno of a splice() the kernel refuses outright; start() then throws
};

Napi::Function InitSpliceRelay(Napi::Env env) { return SpliceRelay::Init(env); }

}  // namespace pp
