// SpliceRelay: the established byte path of a proxied TCP connection, out of JS. After the proxy
// has authenticated the customer and connected the target, it hands both sockets here (their fds
// duplicated; the JS handles are then closed) and the bytes flow kernel to kernel with splice()
// through a pipe per direction, driven by one epoll instance of our own that the JS thread's libuv
// loop watches through a single uv_poll. JS hears of the pair again only at its end (one call with
// the byte counts) and once a second for the counts of pairs that moved bytes (usage).
// The same engine can also own a listener (listen(): the relay's transparent proxy, section
// "Transparent listener" below), whose connections are set up here and join as quiet pairs.
//
// Per direction (src -> dst), edge-triggered, at most kSliceBytes per event (then re-armed):
//   1. what the pipe holds (and bytes handed over from JS first) is written to dst; EAGAIN: wait
//      for dst to be writable, reading nothing more from src meanwhile (backpressure reaches the
//      sender through src's receive window, as with readStop);
//   2. with the pipe empty: src is spliced into it until EAGAIN, the pipe is full or src's FIN; then 1.
//      EAGAIN with bytes in the pipe says "src is empty" or "the pipe's slots are full" (16 slots, one
//      socket buffer each: 16 packets of a TUN or a link without GRO, ~22 KB, fill it short of
//      kPipeCap); src is asked again once the pipe is written out, and only an empty pipe's EAGAIN
//      ends the pass. (Taking it for "src is empty" left the rest unread until the sender's next
//      segment, which never comes once it is done: such transfers hung, splice-no-offload.lab.test.ts.)
//   3. src's FIN, once the pipe is drained: shutdown(dst, SHUT_WR) (half-open both ways); when the
//      other direction has passed its FIN already the pair closes at once, and close() sends the FIN
//      (no shutdown: both receive queues are empty). Bytes written once src's FIN is known go with
//      MSG_MORE / SPLICE_F_MORE, so the last of them and the FIN leave in one segment (a tunnel frame,
//      on the agent) without a TCP_CORK on and off around them.
// A pair just set up has its sockets re-armed (EPOLL_CTL_MOD, which reports what either already holds),
// so it writes what was handed over and reads nothing until an event says there is something.
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
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <napi.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <functional>
#include <queue>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "errno_error.h"
#include "syn_stamp.h"
#include "js_call.h"
#include "lanes.h"
#include "sockaddr.h"

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
// Customers' sockets hold at most this many bytes unsent (TCP_NOTSENT_LOWAT on the listener, inherited by
// every accepted socket; what is sent and not yet acknowledged is the congestion window's, not bounded by it).
// Without it a download's socket queued tcp_wmem's whole send buffer (~4 MB) per customer: a customer who stops
// reading held that much of the relay's or the phone's memory (4.1-4.2 MB in each listener's test), and the rest
// of a download now waits behind the source socket's receive window instead (the target's or the device's).
// - The relay's transparent proxy (OpenVPN customers behind the openvpn TUN): 128 KiB. Its sockets pushed
//   their backlog into the TUN in bursts the openvpn process could not take (the ring dropped them: 47-332
//   retransmissions per three 6 s streams; 0-160 with 128 KiB, ~450 with 512 KiB; 2026-12-05, benchmarks.md),
//   and the one-stream figure moved with none of these.
// - Fronts (the relay's SOCKS5 / HTTP front, the agent's listeners; customers on the internet): 512 KiB, the
//   bytes a stall of the engine's thread (a GC pause of the JS thread it shares) must cover before the
//   socket runs dry: ~14 ms at 300 Mbit/s, ~4 ms at 1 Gbit/s.
constexpr int kTransparentNotSent = 128 * 1024;
constexpr int kFrontNotSent = 512 * 1024;

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
  uint64_t bytes = 0;     // read from src here
  uint64_t reported = 0;  // of which JS was told
  // Bytes src may still give (a front's answer body of known length), UINT64_MAX for no limit; at 0
  // the direction ends as at a FIN, and a FIN before 0 is a failure (a truncated answer).
  uint64_t left = UINT64_MAX;
  // The SOCKS5 front's early reply (earlyReply): the device's answers to the handshake come first on this
  // direction and are not the customer's (it was told success already): read into `held` until whole
  // (EarlyAnswerLen), then dropped; anything but a success, or a FIN before it, fails the pair.
  bool early_answer = false;
  bool early_http = false;  // ...the answer is an HTTP head instead (an HTTP CONNECT's 200; HttpEarlyAnswerLen)
  std::string held;
};

struct Relay {
  uint32_t id = 0;
  int fd[2] = {-1, -1};  // 0 = client, 1 = target
  Dir dir[2];            // 0 = up (client -> target), 1 = down (target -> client)
  uint64_t last = 0;     // loop time of the last byte moved
  uint64_t idle_ms = 0;
  bool reset_on_error = false;  // a failed side closes the other with a reset, not a FIN
  bool quiet = false;           // a transparent proxy's pair: no progress, no done callback
  bool end_with_down = false;   // a front's answered request: over once the answer is delivered
  // lend(): one answer body written to a client JS keeps (keep-alive): the client is only written to,
  // never shut down, and its fd leaves our epoll before our duplicate closes (JS still holds the socket).
  bool lent = false;
  uint32_t dev_addr = 0;        // a transparent listener's pair: its device (network order), for cut()
  uint16_t dev_port = 0;
  uint64_t answer_by = 0;       // dir[1].early_answer: the loop time the device must have answered by
};

// A transparent proxy's connection before it joins (see the section "Transparent listener" below).
struct Tconn {
  uint32_t id = 0;
  int cfd = -1;  // the customer
  int dfd = -1;  // the device's proxy port
  bool dialling = false;   // false: peek (reading the customer's first bytes); true: handshake sent or due
  bool connected = false;  // the device socket's connect() completed
  bool client_eof = false;
  bool early = false;      // holds one of its device's early-dial slots
  bool socks = false;
  bool early_reply = false;  // its CONNECT was answered success here (earlyReply): joined at once
  std::string replied;     // what hello() answered the customer here (the device's first answers are not theirs)
  bool per_addr = false;   // holds one of its address's waiting slots (maxWaitingPerAddress)
  sockaddr_in client_sa{};  // the customer's address and port (the device socket's with transparentSource)
  uint32_t dev_addr = 0;   // network order
  uint16_t dev_port = 0;   // host order
  uint16_t dst_port = 0;
  std::string client_ip;
  std::string dev_ip;
  std::string dst_ip;
  std::string buf;  // peek: the customer's bytes; dial: the device's answer so far
  std::string out;  // the handshake (and peeked bytes) not written yet
  size_t out_off = 0;
  uint64_t deadline = 0;
  uint32_t asks = 0;    // hello() calls while peeking
  size_t asked_len = 0;  // the peek's length at the last one
};

constexpr uint64_t kTagTconn = 1ull << 63;
constexpr uint64_t kTagListener = 1ull << 62;
constexpr uint64_t kTagFront = 1ull << 61;  // a front's listening socket; low bits: its tag
constexpr uint64_t kTagFconn = 1ull << 60;  // a front's connection; (id << 1) | side
constexpr size_t kPeekMax = 16 * 1024;
constexpr size_t kAnswerMax = 64 * 1024;  // the device's answer to the handshake (its head parser stops at 16 KiB)
constexpr int kAcceptBurst = 64;
// hello() calls per connection while its first bytes come in: a customer dribbling them one segment
// at a time would otherwise have every segment copied into JS and parsed again (up to 16 KiB each,
// quadratic); past this many, JS is asked again only once the peek has doubled since the last call
// (or it is full, the customer's FIN came or the deadline passed).
constexpr uint32_t kMaxAsks = 16;

// A front's customer connection before it joins a pair, is answered or is adopted by JS (section
// "HTTP front" below).
struct Fconn {
  // kRequest: connected, the request is written and the origin's answer head read (a last GET).
  enum State { kHead, kDecide, kConnect, kRequest, kAnswer };
  uint32_t id = 0;  // from the pairs' id space: the pair it becomes keeps it
  uint32_t tag = 0;
  int cfd = -1;  // the customer
  int tfd = -1;  // the target (kConnect)
  State st = kHead;
  bool asked = false;     // head() was called: JS holds the connection and hears of its end (done)
  bool slot = false;      // holds one of its address's head slots
  bool shut = false;      // kAnswer: written whole and shut down
  bool request = false;   // frontConnect for a request: its answer head is read before the join
  bool socks = false;     // a SOCKS5 front's: JS is asked at every read, and the reply is made at the join
  // Its SYN carried a stamp (syn_stamp.h: an OpenVPN customer's TCP the relay carried here): JS is asked at
  // once, with the stamp, and nothing is answered for the protocol (the customer never spoke it).
  bool stamped = false;
  std::string stamp_ip;
  uint16_t stamp_port = 0;
  std::string peer_ip;
  std::string slot_key;  // group + ' ' + peer_ip, for its head slot
  std::string group;
  uint16_t peer_port = 0;
  std::string buf;        // kHead: the customer's bytes; kConnect: for the target; kAnswer: the answer
  size_t off = 0;         // kAnswer: written so far
  std::string to_client;  // kConnect: for the customer once connected (the 200)
  std::string ans;        // kRequest: the origin's answer so far
  uint64_t idle_ms = 0;
  uint64_t deadline = 0;
  uint64_t head_at = 0;   // the handshake deadline from accept (a SOCKS5 front's reads after a reply keep it)
};

struct Front {
  int lfd = -1;
  std::string group;  // its unauthenticated caps are counted per group: the listen address (a device)
  uint64_t head_ms = 10000;
  std::string exempt;  // an address without a per-address cap (the relay's transparent proxy)
  bool paused = false;
  bool socks = false;  // a SOCKS5 front: each read is handed to JS (its messages are framed there)
  bool stamps = false;  // TCP_SAVE_SYN: each connection's SYN is read for a stamp (syn_stamp.h)
};

// A front waits this long for the customer to read its error answer and close (writeFailure's 5 s).
constexpr uint64_t kAnswerMs = 5000;

}  // namespace

// The SOCKS5 front's answers that need neither a policy nor a parser's judgement, made here so that a
// customer's greeting, credentials and request, and the device's answer, cost no call into JS (each
// such call after a sleep is ~100 µs on the relay; docs/benchmarks.md, "the SOCKS5 front without JS").
// apps/server tunnel/socks5-front.ts `frontHello` / `frontAnswered` stay the reference: this answers
// only where they would answer the same, and says kAsk everywhere else (a differential fuzz test holds
// the two together, apps/server test/socks5-front.test.ts). `known(creds)`: these exact RFC 1929 bytes were
// accepted by JS's check of this port's current credentials (the memo below). Not for a final read (the
// customer's FIN, the deadline): JS decides those.
enum class FrontStep { kAsk, kReply, kPass };
struct FrontDecision {
  FrontStep step = FrontStep::kAsk;
  const char* reply = nullptr;  // kReply: what the customer gets from here
  size_t reply_len = 0;
};
constexpr char kChooseUserPass[] = {0x05, 0x02};
constexpr char kChooseAndOk[] = {0x05, 0x02, 0x01, 0x00};
constexpr char kAuthOk[] = {0x01, 0x00};

// The length of a whole greeting offering username/password (02) at the start of `b`, or 0.
size_t GreetingWithUserPass(const std::string& b) {
  if (b.size() < 2 || b[0] != 0x05 || b[1] == 0) return 0;
  const size_t len = 2 + static_cast<uint8_t>(b[1]);
  if (b.size() < len) return 0;
  for (size_t i = 2; i < len; i++)
    if (b[i] == 0x02) return len;
  return 0;
}

// The length of whole RFC 1929 credentials at `off` of `b`, or 0.
size_t UserPassAt(const std::string& b, size_t off) {
  if (b.size() < off + 2 || b[off] != 0x01) return 0;
  const size_t ulen = static_cast<uint8_t>(b[off + 1]);
  if (b.size() < off + 3 + ulen) return 0;
  const size_t len = 3 + ulen + static_cast<uint8_t>(b[off + 2 + ulen]);
  return b.size() < off + len ? 0 : len;
}

// The length of a SOCKS5 request or reply whose head (VER, CMD/REP, RSV, ATYP) starts at `off` of `b`, the
// address's first byte there too (b.size() >= off + 5): the head, the address (IPv4, IPv6, or a name as long
// as that first byte says) and the port; 0 for an unknown ATYP. ConnectRequestAt and EarlyAnswerLen use it.
size_t SocksMessageLen(const std::string& b, size_t off) {
  const uint8_t atyp = static_cast<uint8_t>(b[off + 3]);
  if (atyp == 0x01) return 4 + 4 + 2;
  if (atyp == 0x04) return 4 + 16 + 2;
  if (atyp == 0x03) return 4 + 1 + static_cast<uint8_t>(b[off + 4]) + 2;
  return 0;
}

// The length of a whole SOCKS5 CONNECT request at `off` of `b` (RFC 1928 §4: IPv4, a name of 1-255
// bytes, IPv6), or 0 (not whole, or not a CONNECT: those go as before, answered by the device).
size_t ConnectRequestAt(const std::string& b, size_t off) {
  if (b.size() < off + 5 || b[off] != 0x05 || b[off + 1] != 0x01 || b[off + 2] != 0x00) return 0;
  if (b[off + 3] == 0x03 && b[off + 4] == 0) return 0;  // an empty name
  const size_t len = SocksMessageLen(b, off);
  return len == 0 || b.size() < off + len ? 0 : len;
}

// What the customer is told at once for an early-replied CONNECT: success, BND 0.0.0.0:0 (the device's
// own egress address and port are not known yet; clients do not use them for a CONNECT).
constexpr char kEarlySuccess[] = {0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0};
// The longest device answer an early reply waits for: 05 02 01 00, then a reply with a 255-byte name.
constexpr size_t kEarlyAnswerMax = 4 + 4 + 1 + 255 + 2;

// The device's answers to a handshake whose credentials and CONNECT were answered here (earlyReply):
// 05 02 01 00 then its reply. The reply's length when whole and a success (REP 00, RSV 00, a known
// ATYP), 0 when more is needed, SIZE_MAX when it is anything else (a refusal of the credentials or the
// request, or not SOCKS5): the customer, told success, is reset.
size_t EarlyAnswerLen(const std::string& b) {
  const size_t k = std::min(b.size(), sizeof kChooseAndOk);
  if (memcmp(b.data(), kChooseAndOk, k) != 0) return SIZE_MAX;
  const size_t o = sizeof kChooseAndOk;
  if (b.size() < o + 5) {
    // What is there of the reply's head must still be a success's.
    const char head[] = {0x05, 0x00, 0x00};
    for (size_t i = o; i < b.size() && i < o + 3; i++)
      if (b[i] != head[i - o]) return SIZE_MAX;
    if (b.size() == o + 4 && b[o + 3] != 0x01 && b[o + 3] != 0x03 && b[o + 3] != 0x04) return SIZE_MAX;
    return 0;
  }
  if (b[o] != 0x05 || b[o + 1] != 0x00 || b[o + 2] != 0x00) return SIZE_MAX;
  const size_t len = SocksMessageLen(b, o);
  if (len == 0) return SIZE_MAX;
  return b.size() < o + len ? 0 : o + len;
}

// The longest device answer head an HTTP early reply waits for (the agent's is 39 bytes).
constexpr size_t kHttpEarlyAnswerMax = 1024;

// The device's answer to an HTTP CONNECT the relay answered (httpEarlyReply): its head's length when whole
// and a 200 (`HTTP/1.0` or `1.1`, status 200, the head up to its blank line within kHttpEarlyAnswerMax
// bytes), 0 when more is needed, SIZE_MAX when it is anything else (a 407, 403, 502, not HTTP, too long):
// the customer, told 200, is reset.
size_t HttpEarlyAnswerLen(const std::string& b) {
  static const char kStatus[] = "HTTP/1.x 200";
  const size_t k = std::min(b.size(), sizeof kStatus - 1);
  for (size_t i = 0; i < k; i++) {
    const bool ok = i == 7 ? (b[i] == '0' || b[i] == '1') : b[i] == kStatus[i];
    if (!ok) return SIZE_MAX;
  }
  if (b.size() < sizeof kStatus) return 0;
  // The status code ends there: a reason phrase (SP) or the line's end (CR).
  const char after = b[sizeof kStatus - 1];
  if (after != ' ' && after != '\r') return SIZE_MAX;
  const size_t end = b.find("\r\n\r\n", sizeof kStatus - 1);
  if (end != std::string::npos && end + 4 <= kHttpEarlyAnswerMax) return end + 4;
  return b.size() >= kHttpEarlyAnswerMax ? SIZE_MAX : 0;
}

FrontDecision Socks5FrontStep(const std::string& buf, const std::string& replied,
                              const std::function<bool(const char*, size_t)>& known) {
  FrontDecision d;
  const size_t g = GreetingWithUserPass(buf);
  if (g == 0) return d;
  if (buf.size() == g) {
    // A whole greeting, nothing behind it: 05 02 (frontHello's [CHOOSE_USERPASS]).
    if (replied.empty()) d = {FrontStep::kReply, kChooseUserPass, sizeof kChooseUserPass};
    return d;
  }
  const size_t c = UserPassAt(buf, g);
  if (c == 0) return d;
  const bool answered = replied.size() == sizeof kChooseAndOk && memcmp(replied.data(), kChooseAndOk, sizeof kChooseAndOk) == 0;
  if (buf.size() > g + c) {
    // A request (or more) behind credentials answered here: the whole peek goes to the device.
    if (answered) d.step = FrontStep::kPass;
    return d;
  }
  // Credentials, nothing behind them, that the check accepted: 01 00 (with the 05 02 first if not sent).
  const bool chose = replied.size() == sizeof kChooseUserPass && memcmp(replied.data(), kChooseUserPass, sizeof kChooseUserPass) == 0;
  if ((replied.empty() || chose) && known(buf.data() + g, c)) {
    if (chose) d = {FrontStep::kReply, kAuthOk, sizeof kAuthOk};
    else d = {FrontStep::kReply, kChooseAndOk, sizeof kChooseAndOk};
  }
  return d;
}

// What an HTTP CONNECT answered on the relay is told (httpEarlyReply): the device's own words, as JS's
// HTTP_ESTABLISHED (apps/server tunnel/socks5-front.ts).
const std::string kHttpEstablished = "HTTP/1.1 200 Connection Established\r\n\r\n";

// An HTTP port's early reply without JS (httpEarlyReply): the Proxy-Authorization value (the first such
// field's, without the spaces around it) of a whole CONNECT head at the start of `b`; false when `b` is not
// one, or it has none. JS's httpEarlyHello stays the reference: the listener answers only a value JS's
// check accepted before for the port's current credentials (the memo), and the device parses the head
// again and decides, as after JS's answer.
bool HttpConnectAuth(const std::string& b, std::string& value) {
  static const char kConnect[] = "CONNECT ";
  if (b.compare(0, sizeof kConnect - 1, kConnect) != 0) return false;
  const size_t end = b.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  static const char kName[] = "proxy-authorization:";
  constexpr size_t n = sizeof kName - 1;
  // Header lines from behind the request line's CRLF up to the head's (the last line's CRLF is at `end`).
  for (size_t line = b.find("\r\n") + 2; line < end + 2;) {
    const size_t eol = b.find("\r\n", line);
    if (eol - line >= n && strncasecmp(b.data() + line, kName, n) == 0) {
      // The first such field decides, as for the device's parser: an empty one is none.
      size_t a = line + n, z = eol;
      while (a < z && (b[a] == ' ' || b[a] == '\t')) a++;
      while (z > a && (b[z - 1] == ' ' || b[z - 1] == '\t')) z--;
      value.assign(b, a, z - a);
      return !value.empty();
    }
    line = eol + 2;
  }
  return false;
}

// A SOCKS5 front's port: the device listener it goes to (the route JS would give), and the tag of the
// credentials JS checks there (username and verifier; empty: none known, the device answers them).
struct FrontRoute {
  uint32_t dev_addr = 0;  // network order
  uint16_t dev_port = 0;
  bool socks = false;
  std::string dev_ip;
  std::string tag;
  bool early = false;  // earlyReply may answer its CONNECTs (no connection cap or data limit on the device)
};
// Credentials remembered as accepted, at most this many (the memo is emptied when it fills, as JS's).
constexpr size_t kCredsMemoMax = 4096;

class SpliceRelay : public Napi::ObjectWrap<SpliceRelay> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "SpliceRelay",
                       {InstanceMethod<&SpliceRelay::Start>("start"), InstanceMethod<&SpliceRelay::Lend>("lend"),
                        InstanceMethod<&SpliceRelay::Kill>("kill"),
                        InstanceMethod<&SpliceRelay::Stats>("stats"), InstanceMethod<&SpliceRelay::Close>("close"),
                        InstanceMethod<&SpliceRelay::Listen>("listen"),
                        InstanceMethod<&SpliceRelay::ListenStats>("listenStats"),
                        InstanceMethod<&SpliceRelay::Cut>("cut"),
                        InstanceMethod<&SpliceRelay::FrontInit>("frontInit"),
                        InstanceMethod<&SpliceRelay::FrontListen>("frontListen"),
                        InstanceMethod<&SpliceRelay::FrontClose>("frontClose"),
                        InstanceMethod<&SpliceRelay::FrontStamps>("frontStamps"),
                        InstanceMethod<&SpliceRelay::FrontDup>("frontDup"),
                        InstanceMethod<&SpliceRelay::FrontConnect>("frontConnect"),
                        InstanceMethod<&SpliceRelay::FrontAnswer>("frontAnswer"),
                        InstanceMethod<&SpliceRelay::FrontReply>("frontReply"),
                        InstanceMethod<&SpliceRelay::FrontAdopt>("frontAdopt"),
                        InstanceMethod<&SpliceRelay::FrontHeadLeft>("frontHeadLeft"),
                        InstanceMethod<&SpliceRelay::FrontStats>("frontStats"),
                        InstanceMethod<&SpliceRelay::SetFrontRoutes>("setFrontRoutes"),
                        StaticMethod<&SpliceRelay::Socks5FrontStepJs>("socks5FrontStep"),
                        StaticMethod<&SpliceRelay::EarlyAnswerJs>("socks5EarlyAnswer"),
                        StaticMethod<&SpliceRelay::HttpEarlyAnswerJs>("httpEarlyAnswer"),
                        StaticMethod<&SpliceRelay::HttpConnectAuthJs>("httpConnectAuth")});
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
    deadline_timer_ = new uv_timer_t;
    uv_timer_init(loop_, deadline_timer_);
    deadline_timer_->data = this;
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
    Relay* r = NewRelay();
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

  // lend(clientFd, targetFd, toClient, length, idleMs) -> id. Moves exactly `length` bytes from the
  // target to the client (after `toClient`), then done(id, 0, down, clean) with the client still open:
  // an HTTP answer's body of known length, the customer's connection staying with JS for its next
  // request. The client is never read or shut down here (JS may read it meanwhile: the next request);
  // the target (the origin, one request per connection) is the engine's, as with start(). A FIN from
  // the target before `length` bytes, or a failed write to the client, is an error (JS resets the
  // customer: a body cut short). Both fds are duplicated; kill() ends it early.
  Napi::Value Lend(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 5 || !info[0].IsNumber() || !info[1].IsNumber() || !info[3].IsNumber() || !info[4].IsNumber())
      throw Napi::TypeError::New(env, "lend(clientFd, targetFd, toClient, length, idleMs)");
    if (epfd_ < 0) throw Napi::Error::New(env, "SpliceRelay is closed");
    if (unsupported_ != 0) throw ErrnoError(env, "splice", unsupported_);
    const double length = info[3].As<Napi::Number>().DoubleValue();
    if (!(length >= 1 && length <= 9007199254740991.0)) throw Napi::RangeError::New(env, "lend: length must be >= 1");
    if (!info[2].IsNull() && !info[2].IsUndefined() && !info[2].IsBuffer())
      throw Napi::TypeError::New(env, "lend: toClient must be a Buffer or null");
    Relay* r = NewRelay();
    r->lent = true;
    r->end_with_down = true;
    r->dir[0].done = true;  // nothing goes to the target
    if (info[2].IsBuffer()) {
      auto b = info[2].As<Napi::Buffer<char>>();
      r->dir[1].pending.assign(b.Data(), b.Length());
    }
    r->dir[1].left = static_cast<uint64_t>(length);
    const double idle = info[4].As<Napi::Number>().DoubleValue();
    r->idle_ms = idle > 0 ? static_cast<uint64_t>(idle) : 0;
    int in[2] = {info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value()};
    for (int s = 0; s < 2; s++) {
      r->fd[s] = fcntl(in[s], F_DUPFD_CLOEXEC, 3);
      if (r->fd[s] < 0 || Watch(EPOLL_CTL_ADD, r, s) != 0) {
        const int e = errno;
        const char* what = r->fd[s] < 0 ? "dup" : "epoll_ctl";
        Release(r);
        throw ErrnoError(env, what, e);
      }
    }
    relays_[r->id] = r;
    r->last = uv_now(loop_);
    if (relays_.size() == 1) Arm();
    return Napi::Number::New(env, r->id);
  }

  // A pair's record with a fresh id; its directions set (up: client -> target, down: back).
  Relay* NewRelay() {
    auto* r = new Relay;
    // Ids wrap after 2^32 pairs; one still running (a tunnel open for weeks) keeps its id.
    r->id = NextId();
    started_++;
    r->dir[1].src = 1;
    r->dir[1].dst = 0;
    return r;
  }

  // A free id for a pair or a front connection (which becomes a pair under its own id). Ids wrap after
  // 2^32; one still in use (a tunnel open for weeks) keeps its id.
  uint32_t NextId() {
    while (next_id_ == 0 || relays_.count(next_id_) != 0 || fconns_.count(next_id_) != 0) next_id_++;
    return next_id_++;
  }

  // kill(id, reset) -> [up, down] not yet reported, or null (unknown id: already over). Closes both
  // sockets; `reset` bit 0 = the client's, bit 1 = the target's with a TCP reset (SO_LINGER 0).
  Napi::Value Kill(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 2 || !info[0].IsNumber() || !info[1].IsNumber())
      throw Napi::TypeError::New(env, "kill(id, reset)");
    const uint32_t id = info[0].As<Napi::Number>().Uint32Value();
    const uint32_t reset = info[1].As<Napi::Number>().Uint32Value();
    auto it = relays_.find(id);
    if (it == relays_.end()) {
      // A front's connection not joined yet: nothing was relayed.
      auto f = fconns_.find(id);
      if (f == fconns_.end()) return env.Null();
      FClose(f->second, (reset & 1) != 0, (reset & 2) != 0);
      auto out = Napi::Array::New(env, 2);
      out.Set(0u, Napi::Number::New(env, 0));
      out.Set(1u, Napi::Number::New(env, 0));
      return out;
    }
    Relay* r = it->second;
    relays_.erase(it);
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
    for (auto& [id, t] : tconns_) {
      if (t->cfd >= 0) ::close(t->cfd);
      if (t->dfd >= 0) ::close(t->dfd);
      delete t;
    }
    tconns_.clear();
    early_.clear();
    for (auto& [id, f] : fconns_) {
      if (f->cfd >= 0) ::close(f->cfd);
      if (f->tfd >= 0) ::close(f->tfd);
      delete f;
    }
    fconns_.clear();
    for (auto& [tag, fr] : fronts_) ::close(fr.lfd);
    fronts_.clear();
    if (lfd_ >= 0) {
      ::close(lfd_);
      lfd_ = -1;
    }
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
    for (uv_timer_t** t : {&timer_, &deadline_timer_}) {
      if (*t == nullptr) continue;
      uv_timer_stop(*t);
      (*t)->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(*t), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
      *t = nullptr;
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

  // The sweep timer runs only while pairs exist. The epoll fd, once watched, stays watched until
  // close(): an empty epoll set never wakes the loop, while stopping and starting the uv_poll with
  // each first and last pair cost three epoll_ctl calls on the loop's epoll per connection when
  // connections come one at a time. Neither keeps the process alive: the sockets' owners decide that.
  // A running sweep is left as it is: restarting it at every new pair (a front's, several a second under
  // load) put it off for as long as pairs kept coming, and with it every idle timeout and usage report
  // (front.test.ts "the sweep").
  void Arm() {
    if (poll_ == nullptr) return;
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(poll_))) {
      uv_poll_start(poll_, UV_READABLE, PollCb);
      uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    }
    if (uv_is_active(reinterpret_cast<uv_handle_t*>(timer_))) return;
    uv_timer_start(timer_, TimerCb, kSweepMs, kSweepMs);
    uv_unref(reinterpret_cast<uv_handle_t*>(timer_));
  }

  void Disarm() {
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
        const uint64_t tag = evs[i].data.u64;
        if (tag & kTagListener) {
          AcceptSome();
          continue;
        }
        if (tag & kTagFront) {
          AcceptFront(static_cast<uint32_t>(tag & 0xffffffffu));
          continue;
        }
        if (tag & kTagFconn) {
          Napi::HandleScope conn_scope(Env());
          auto f = fconns_.find(static_cast<uint32_t>((tag & ~kTagFconn) >> 1));
          if (f != fconns_.end()) OnFconn(f->second, static_cast<int>(tag & 1), evs[i].events);
          continue;
        }
        if (tag & kTagTconn) {
          Napi::HandleScope conn_scope(Env());
          auto t = tconns_.find(static_cast<uint32_t>((tag & ~kTagTconn) >> 1));
          if (t != tconns_.end()) OnTconn(t->second, static_cast<int>(tag & 1), evs[i].events);
          continue;
        }
        // A pair ended earlier in this batch is gone from the map: its later events are skipped.
        auto it = relays_.find(static_cast<uint32_t>(tag >> 1));
        if (it == relays_.end()) continue;
        Relay* r = it->second;
        int reason = -1;
        if (!OnRelay(r, static_cast<int>(tag & 1), evs[i].events)) reason = kError;
        else if (Over(r)) reason = kClean;
        if (reason >= 0) Finish(r, reason);
      }
      if (n < kEvents) return;
      if (epfd_ < 0) return;  // a callback closed us
    }
  }

  int Watch(int op, Relay* r, int side) {
    epoll_event ev{};
    // A lent client is only written to: its readable edges (the customer's next request, for JS) are not ours.
    ev.events = r->lent && side == 0 ? EPOLLOUT | EPOLLET : kWatch;
    ev.data.u64 = (static_cast<uint64_t>(r->id) << 1) | static_cast<uint64_t>(side);
    return epoll_ctl(epfd_, op, r->fd[side], &ev);
  }

  // An event on one of a pair's sockets runs only the directions it concerns: readable (or its FIN)
  // moves the direction reading from that socket; writable, the direction writing to it, and only
  // while that one has bytes waiting. An error or hang-up runs both, so whichever has work meets the
  // failure. Pumping both at every event cost a splice() that found nothing (EAGAIN) per direction
  // not concerned; with the re-read Pump no longer makes, a short CONNECT's splices on the agent went
  // from 14 to 7, of which 8 and then 1 found nothing (strace, docs/benchmarks.md). False: a socket
  // failed.
  bool OnRelay(Relay* r, int side, uint32_t events) {
    Dir& from = r->dir[side];     // reads from `side`
    Dir& to = r->dir[1 - side];   // writes to `side`
    if (events & (EPOLLERR | EPOLLHUP)) return Pump(r, from) && Pump(r, to);
    if ((events & (EPOLLIN | EPOLLRDHUP)) && !Pump(r, from)) return false;
    if ((events & EPOLLOUT) && Waiting(to) && !Pump(r, to)) return false;
    return true;
  }

  // Both FINs passed; or, for a front's answered request, the answer is delivered.
  static bool Over(const Relay* r) { return r->dir[1].done && (r->dir[0].done || r->end_with_down); }

  // Bytes of this direction wait for its destination to take them (the pipe, or bytes handed over).
  static bool Waiting(const Dir& d) { return !d.done && (d.inpipe > 0 || d.pending_off < d.pending.size()); }

  // Moves what it can in one direction, up to kSliceBytes. False: a socket failed (the pair must end).
  // `read` false: only what is on its way already (bytes handed over, the pipe, a FIN read) moves, src
  // is not asked (a pair just set up: the EPOLL_CTL_MOD that re-armed src reports what it holds).
  bool Pump(Relay* r, Dir& d, bool read = true) {
    if (d.done) return true;
    if (d.early_answer) {
      if (!read) return true;
      const int got = ReadEarlyAnswer(r, d);
      if (got <= 0) return got == 0;
    }
    const int src = r->fd[d.src];
    const int dst = r->fd[d.dst];
    size_t moved = 0;
    for (;;) {
      // Once src's FIN is known, what is written is the last: held (MSG_MORE) for the FIN to go with it.
      const bool last = d.eof && !r->lent;
      while (d.pending_off < d.pending.size()) {
        ssize_t n = ::send(dst, d.pending.data() + d.pending_off, d.pending.size() - d.pending_off,
                           MSG_NOSIGNAL | MSG_DONTWAIT | (last ? MSG_MORE : 0));
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
        ssize_t n = splice(d.pipe_r, nullptr, dst, nullptr, d.inpipe,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK | (last ? SPLICE_F_MORE : 0));
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
        // The other direction done too: the pair ends now (Over), and close() sends the FIN.
        const bool closing = (&d == &r->dir[0] ? r->dir[1] : r->dir[0]).done;
        if (!r->lent && !closing && ::shutdown(dst, SHUT_WR) != 0 && errno != ENOTCONN) return false;
        d.done = true;
        ReturnPipe(d);
        return true;
      }
      if (!read) return true;
      if (moved >= kSliceBytes) {
        // Enough for one turn. Re-arming src reports it again if it is still readable (edge
        // triggered, nothing else would), so the rest moves at the next turn of the loop. The pipe
        // (empty here) goes back first: if src has nothing more, that event is not a read of it.
        yields_++;
        ReturnPipe(d);
        return Watch(EPOLL_CTL_MOD, r, d.src) == 0;
      }
      if (d.pipe_r < 0 && !TakePipe(d)) return false;
      for (;;) {
        size_t want = kPipeCap - d.inpipe;
        if (d.left < want) want = static_cast<size_t>(d.left);
        if (want == 0) {
          d.eof = true;  // the answer's body is all read: its end, as a FIN would be
          break;
        }
        ssize_t n = splice(src, nullptr, d.pipe_w, nullptr, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
          if (d.left != UINT64_MAX) d.left -= static_cast<uint64_t>(n);
          d.inpipe += static_cast<size_t>(n);
          d.bytes += static_cast<uint64_t>(n);
          moved += static_cast<size_t>(n);
          r->last = uv_now(loop_);
          if (d.inpipe >= kPipeCap) break;
          continue;
        }
        if (n == 0) {
          if (d.left != UINT64_MAX) return false;  // the origin closed before its Content-Length
          d.eof = true;
          break;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;  // src empty, or the pipe's slots full (see 2.)
        NoteUnsupported(errno);
        return false;
      }
      if (d.inpipe == 0 && !d.eof) {
        // src is empty (its next edge brings us back): the pipe goes back to the pool, so a quiet
        // pair holds none and open pairs cost their two sockets only.
        ReturnPipe(d);
        return true;
      }
    }
  }

  // An early-replied pair's device answers (Dir::early_answer), read until whole: 1 when they were a
  // success (dropped; what came behind them is pending for the customer), 0 when more is to come, -1
  // otherwise (a refusal, a FIN or an error before them: the pair fails and the customer is reset).
  int ReadEarlyAnswer(Relay* r, Dir& d) {
    static_assert(kHttpEarlyAnswerMax >= kEarlyAnswerMax, "tmp holds either answer");
    char tmp[kHttpEarlyAnswerMax];
    const size_t most = d.early_http ? kHttpEarlyAnswerMax : kEarlyAnswerMax;
    for (;;) {
      // Never more than the longest answer: what is read past it would be the customer's and unbounded.
      ssize_t n = ::recv(r->fd[d.src], tmp, most - d.held.size(), 0);
      if (n == 0) return -1;
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
      }
      d.held.append(tmp, static_cast<size_t>(n));
      const size_t len = d.early_http ? HttpEarlyAnswerLen(d.held) : EarlyAnswerLen(d.held);
      if (len == SIZE_MAX) return -1;
      if (len == 0) continue;  // (held is shorter than `most`: an undecided answer is not whole)
      d.pending = d.held.substr(len);
      d.pending_off = 0;
      std::string().swap(d.held);
      d.early_answer = false;
      r->answer_by = 0;
      return 1;
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
    if (r->quiet) t_active_--;
    // A lent client's socket stays open in JS's fd: closing our duplicate would leave it in our epoll.
    if (r->lent && r->fd[0] >= 0) epoll_ctl(epfd_, EPOLL_CTL_DEL, r->fd[0], nullptr);
    for (int s = 0; s < 2; s++)
      if (r->fd[s] >= 0) ::close(r->fd[s]);
    ReturnPipe(r->dir[0]);
    ReturnPipe(r->dir[1]);
    delete r;
  }

  // An event that says the peer's FIN is in (or the socket is shut both ways): a read must go on to it.
  static bool FinReported(uint32_t events) { return (events & (EPOLLRDHUP | EPOLLHUP)) != 0; }

  // Appends what `fd` has to `buf`, up to `max` bytes in all: 1 when it has no more for now (or `buf`
  // is full), 0 at its FIN, -1 on an error (errno). `drain` false: a read shorter than asked ends it (a
  // TCP recv() takes all that is queued, and bytes queued later bring a new edge), saving the read that
  // would find nothing; only a FIN already reported (EPOLLRDHUP / EPOLLHUP: no edge comes after it)
  // needs the read that returns 0.
  static int RecvUpTo(int fd, std::string& buf, size_t max, bool drain = true) {
    char tmp[16 * 1024];
    while (buf.size() < max) {
      const size_t room = std::min(sizeof tmp, max - buf.size());
      ssize_t n = ::recv(fd, tmp, room, 0);
      if (n > 0) {
        buf.append(tmp, static_cast<size_t>(n));
        if (!drain && static_cast<size_t>(n) < room) return 1;
        continue;
      }
      if (n == 0) return 0;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 1;
      return -1;
    }
    return 1;
  }

  // An option's number, or `dflt` when it is missing or not a number.
  static double OptNumber(const Napi::Object& o, const char* key, double dflt) {
    Napi::Value v = o.Get(key);
    return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : dflt;
  }

  static void Reset(int fd) {
    linger l{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }

  // Closes a socket we hold (if any), with a TCP reset when `reset`.
  static void CloseFd(int fd, bool reset) {
    if (fd < 0) return;
    if (reset) Reset(fd);
    ::close(fd);
  }

  void Finish(Relay* r, int reason) {
    relays_.erase(r->id);
    if (r->dir[1].early_answer) t_early_failed_++;
    if (reason == kError && r->reset_on_error) {
      Reset(r->fd[0]);
      Reset(r->fd[1]);
    }
    const uint32_t id = r->id;
    const double up = static_cast<double>(r->dir[0].bytes - r->dir[0].reported);
    const double down = static_cast<double>(r->dir[1].bytes - r->dir[1].reported);
    const bool quiet = r->quiet;
    Release(r);
    if (relays_.empty()) Disarm();
    if (quiet) return;
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
    std::vector<uint32_t> late;
    for (auto& [id, r] : relays_) {
      if (r->dir[1].early_answer && now >= r->answer_by) {
        late.push_back(id);
        continue;
      }
      if (r->quiet) continue;
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
    // Early-replied pairs whose device did not answer by the connect deadline: reset, as a dial that
    // timed out is.
    for (uint32_t id : late) {
      auto it = relays_.find(id);
      if (it != relays_.end()) Finish(it->second, kError);
    }
  }

  // ---- Transparent listener ----------------------------------------------------------------------
  // The relay's transparent proxy for OpenVPN customers (apps/server tunnel/tproxy.ts, docs/design.md
  // §2.4) with its socket work here instead of in JS: accept, SO_ORIGINAL_DST, the peek of the
  // customer's first bytes, the device socket (opened at accept, up to earlyDialsPerDevice per
  // device), the handshake written with the peeked bytes behind it, the device's answer read; then
  // the two sockets join as a pair of this engine (quiet: the device counts the bytes). JS is asked
  // three things per connection, each one call: route(clientIp, fd, dstIp, dstPort) -> [deviceIp,
  // devicePort, socks, dstIp, dstPort] | undefined (which connection serves this customer; in `ask`
  // mode dstIp is '' and JS finds the original destination); hello(clientIp, deviceIp, devicePort,
  // dstIp, dstPort, peeked, final, replied) -> the handshake with the peeked bytes | undefined (a name may
  // still come: read more) | null (refused) | [bytes] (answer the customer from here, read more;
  // `replied` is every such answer so far); answered(socks, bytes, replied) -> the answer's length,
  // -1 when more is needed, -2 refused, [bytes] refused with these bytes to the customer before its
  // close. event(kind, clientIp, dstIp, dstPort, detail) reports refusals and failures (JS logs
  // them, rate-limited). The parsers (SNI / Host, the answers) stay in TypeScript, fuzzed there;
  // what is here is sockets and states:
  //   peek: the customer's bytes are read (at most kPeekMax) until hello() has a handshake, the
  //         customer's FIN, kPeekMax or the peek deadline; the device must not speak meanwhile;
  //   dial: the handshake goes once the device socket is connected; the customer is not read
  //         (its bytes wait in its socket, its window is the hold limit); the device's answer is
  //         read until answered() has it, by the connect deadline;
  //   joined: a quiet Relay (reset on error): the answer's rest goes to the customer first.
  // A failure resets the customer and closes the device socket; a customer that resets or errs
  // before the join resets the device socket.

  // listen(host, port, {peekMs, connectMs, earlyDialsPerDevice, maxConnections, kernelDst}, route, hello, answered, event) -> port
  Napi::Value Listen(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 7 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsObject() ||
        !info[3].IsFunction() || !info[4].IsFunction() || !info[5].IsFunction() || !info[6].IsFunction())
      throw Napi::TypeError::New(env, "listen(host, port, options, route, hello, answered, event)");
    if (epfd_ < 0) throw Napi::Error::New(env, "SpliceRelay is closed");
    if (lfd_ >= 0) throw Napi::Error::New(env, "listen: already listening");
    auto o = info[2].As<Napi::Object>();
    auto num = [&](const char* k, double dflt) { return OptNumber(o, k, dflt); };
    peek_ms_ = static_cast<uint64_t>(std::max(1.0, num("peekMs", 300)));
    connect_ms_ = static_cast<uint64_t>(std::max(1.0, num("connectMs", 10000)));
    early_cap_ = static_cast<uint32_t>(std::max(0.0, num("earlyDialsPerDevice", 256)));
    max_conns_ = static_cast<uint64_t>(std::max(1.0, num("maxConnections", 20000)));
    Napi::Value kd = o.Get("kernelDst");
    kernel_dst_ = !kd.IsBoolean() || kd.As<Napi::Boolean>().Value();
    Napi::Value ts = o.Get("transparentSource");
    transparent_src_ = ts.IsBoolean() && ts.As<Napi::Boolean>().Value();
    per_addr_cap_ = static_cast<uint32_t>(std::max(0.0, num("maxWaitingPerAddress", 0)));
    Napi::Value pu = o.Get("passUnreplied");
    pass_unreplied_ = pu.IsBoolean() && pu.As<Napi::Boolean>().Value();
    Napi::Value fo = o.Get("fastOpen");
    fast_open_ = fo.IsBoolean() && fo.As<Napi::Boolean>().Value();
    Napi::Value sf = o.Get("socks5Front");
    socks5_front_ = sf.IsBoolean() && sf.As<Napi::Boolean>().Value();
    Napi::Value er = o.Get("earlyReply");
    early_reply_ = socks5_front_ && er.IsBoolean() && er.As<Napi::Boolean>().Value();
    Napi::Value her = o.Get("httpEarlyReply");
    http_early_ = socks5_front_ && her.IsBoolean() && her.As<Napi::Boolean>().Value();

    if (transparent_src_) {
      // Every device socket will need IP_TRANSPARENT (CAP_NET_ADMIN): refuse to listen without it rather
      // than fail each customer later.
      int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
      const bool ok = probe >= 0 && setsockopt(probe, SOL_IP, IP_TRANSPARENT, &one, sizeof one) == 0;
      const int e = errno;
      if (probe >= 0) ::close(probe);
      if (!ok) throw ErrnoError(env, "listen: IP_TRANSPARENT", e);
    }
    uint16_t bound = 0;
    Napi::Value da = o.Get("deferAccept");
    const bool defer = da.IsBoolean() && da.As<Napi::Boolean>().Value();
    defer_accept_ = defer;
    lfd_ = OpenListener(env, "listen", info[0].As<Napi::String>().Utf8Value(), info[1], defer,
                       socks5_front_ ? kFrontNotSent : kTransparentNotSent, kTagListener, &bound);
    on_route_ = Napi::Persistent(info[3].As<Napi::Function>());
    on_hello_ = Napi::Persistent(info[4].As<Napi::Function>());
    on_answered_ = Napi::Persistent(info[5].As<Napi::Function>());
    on_event_ = Napi::Persistent(info[6].As<Napi::Function>());
    if (poll_ != nullptr) {
      uv_poll_start(poll_, UV_READABLE, PollCb);
      uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    }
    return Napi::Number::New(env, bound);
  }

  // A listening IPv4 socket in our epoll (level-triggered: a burst left for the next turn is reported
  // again), with Nagle off and in delayed-ACK mode, both inherited by every accepted socket: the ACK
  // of a customer's request rides on the answer. TCP_QUICKACK only after listen(), which resets the
  // socket's ACK state (inet_csk_listen_start). `defer`: TCP_DEFER_ACCEPT, a connection is accepted
  // once its first bytes are there. Throws (a TypeError for a host that is not IPv4).
  // `notsent`: the accepted sockets' TCP_NOTSENT_LOWAT (kTransparentNotSent / kFrontNotSent).
  int OpenListener(Napi::Env env, const char* what, const std::string& host, const Napi::Value& port, bool defer,
                   int notsent, uint64_t tag, uint16_t* bound, uint32_t lanes = 1, std::vector<int>* extra = nullptr) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port.As<Napi::Number>().Uint32Value()));
    if (inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1)
      throw Napi::TypeError::New(env, std::string(what) + ": host must be an IPv4 address");
    // Lanes (lanes.cc): `lanes` sockets in one SO_REUSEPORT group, in order (the first is ours, the others
    // go to `extra` for the lanes' threads), the group picking by the TUN queue a SYN came in on.
    std::vector<int> fds;
    auto fail = [&](const char* call, int e) {
      for (int f : fds) ::close(f);
      throw ErrnoError(env, call, e);
    };
    for (uint32_t k = 0; k < lanes; k++) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) fail("socket", errno);
      fds.push_back(fd);
      int one = 1, zero = 0;
      if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
          (lanes > 1 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
          bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 511) != 0 ||
          setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof zero) != 0 ||
          (defer && setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof one) != 0))
        fail("listen", errno);
      // A front (an agent's proxy listener) takes TCP Fast Open: a SYN with the relay's SOCKS5 front's
      // handshake in it (the front's fastOpen) is answered without a round trip more. Only where the
      // kernel's server side is on (net.ipv4.tcp_fastopen & 2); otherwise the option does nothing.
      if (defer) {
        int qlen = 256;
        setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof qlen);
      }
      // Accepted sockets inherit it as they do TCP_NODELAY (no system call per connection). Where it fails,
      // sockets work as before.
      setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &notsent, sizeof notsent);
      // The other lanes' sockets bind the port the first one got.
      socklen_t sl = sizeof sa;
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &sl);
    }
    if (lanes > 1 && !AttachByQueue(fds[0])) fail("setsockopt(SO_ATTACH_REUSEPORT_CBPF)", errno);
    if (extra) extra->assign(fds.begin() + 1, fds.end());
    return WatchListener(env, fds[0], tag, ntohs(sa.sin_port), bound);
  }

  // A listening socket into our epoll under `tag` (level-triggered); the fd is closed if it cannot be.
  int WatchListener(Napi::Env env, int fd, uint64_t tag, uint16_t port, uint16_t* bound) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      int e = errno;
      ::close(fd);
      throw ErrnoError(env, "epoll_ctl", e);
    }
    *bound = port;
    return fd;
  }

  // cut(deviceIp, port): resets the transparent listener's connections to that device, joined or not
  // (port 0: all of its ports): a port that is no longer forwarded, a device gone. Returns how many.
  Napi::Value Cut(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 2 || !info[0].IsString() || !info[1].IsNumber())
      throw Napi::TypeError::New(env, "cut(deviceIp, port)");
    in_addr dev{};
    if (inet_pton(AF_INET, info[0].As<Napi::String>().Utf8Value().c_str(), &dev) != 1)
      throw Napi::TypeError::New(env, "cut: deviceIp must be an IPv4 address");
    const uint32_t port = info[1].As<Napi::Number>().Uint32Value();
    auto hit = [&](uint32_t addr, uint16_t p) { return addr == dev.s_addr && (port == 0 || p == port); };
    std::vector<uint32_t> pairs, waiting;
    for (auto& [id, r] : relays_)
      if (r->dev_port != 0 && hit(r->dev_addr, r->dev_port)) pairs.push_back(id);
    for (auto& [id, t] : tconns_)
      if (hit(t->dev_addr, t->dev_port)) waiting.push_back(id);
    for (uint32_t id : pairs) {
      auto it = relays_.find(id);
      if (it != relays_.end()) Finish(it->second, kError);
    }
    for (uint32_t id : waiting) {
      auto it = tconns_.find(id);
      if (it == tconns_.end()) continue;
      t_failed_++;
      Remove(it->second, false, true, true);
    }
    return Napi::Number::New(env, static_cast<double>(pairs.size() + waiting.size()));
  }

  // setFrontRoutes([[port, deviceIp, devicePort, socks, credentialsTag], ...]): the SOCKS5 front's ports as JS
  // routes them now (replacing the last list), so their customers are routed and their happy paths answered
  // here (NativeHello). A port not in the list is JS's to route; one whose entry changed since a connection's
  // accept is JS's to judge for that connection (it refuses it, as a moved port's flows are cut).
  Napi::Value SetFrontRoutes(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "setFrontRoutes(routes)");
    auto list = info[0].As<Napi::Array>();
    std::unordered_map<uint16_t, FrontRoute> next;
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Value v = list.Get(i);
      const char* shape = "setFrontRoutes: each route is [port, deviceIp, devicePort, socks, tag, early]";
      if (!v.IsArray()) throw Napi::TypeError::New(env, shape);
      auto a = v.As<Napi::Array>();
      if (a.Length() != 6 || !a.Get(0u).IsNumber() || !a.Get(1u).IsString() || !a.Get(2u).IsNumber() ||
          !a.Get(3u).IsBoolean() || !a.Get(4u).IsString() || !a.Get(5u).IsBoolean())
        throw Napi::TypeError::New(env, shape);
      const uint32_t port = a.Get(0u).As<Napi::Number>().Uint32Value();
      const uint32_t dport = a.Get(2u).As<Napi::Number>().Uint32Value();
      FrontRoute r;
      r.dev_ip = a.Get(1u).As<Napi::String>().Utf8Value();
      in_addr dev{};
      if (port == 0 || port > 65535 || dport == 0 || dport > 65535 || inet_pton(AF_INET, r.dev_ip.c_str(), &dev) != 1)
        throw Napi::TypeError::New(env, "setFrontRoutes: a port is 1-65535 and a device address IPv4");
      r.dev_addr = dev.s_addr;
      r.dev_port = static_cast<uint16_t>(dport);
      r.socks = a.Get(3u).As<Napi::Boolean>().Value();
      r.tag = a.Get(4u).As<Napi::String>().Utf8Value();
      r.early = a.Get(5u).As<Napi::Boolean>().Value();
      next[static_cast<uint16_t>(port)] = std::move(r);
    }
    front_routes_ = std::move(next);
    return env.Undefined();
  }

  // socks5FrontStep(peeked, replied, knownCredentials[]) -> ['ask'] | ['reply', bytes] | ['pass']: the
  // native decision alone, for the differential test against frontHello.
  static Napi::Value Socks5FrontStepJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 3 || !info[0].IsBuffer() || !info[1].IsBuffer() || !info[2].IsArray())
      throw Napi::TypeError::New(env, "socks5FrontStep(peeked, replied, knownCredentials)");
    auto str = [](const Napi::Value& v) {
      auto b = v.As<Napi::Buffer<char>>();
      return std::string(b.Data(), b.Length());
    };
    std::unordered_set<std::string> known;
    auto k = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < k.Length(); i++)
      if (k.Get(i).IsBuffer()) known.insert(str(k.Get(i)));
    const FrontDecision d = Socks5FrontStep(str(info[0]), str(info[1]), [&](const char* c, size_t n) {
      return known.count(std::string(c, n)) != 0;
    });
    auto out = Napi::Array::New(env);
    if (d.step == FrontStep::kAsk) out.Set(0u, Napi::String::New(env, "ask"));
    else if (d.step == FrontStep::kPass) out.Set(0u, Napi::String::New(env, "pass"));
    else {
      out.Set(0u, Napi::String::New(env, "reply"));
      out.Set(1u, Napi::Buffer<char>::Copy(env, d.reply, d.reply_len));
    }
    return out;
  }

  // socks5EarlyAnswer(bytes) -> the length of the device's answers to drop (a success), 0 (more needed) or
  // -1 (anything else): EarlyAnswerLen alone, for its fuzz test.
  static Napi::Value EarlyAnswerJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "socks5EarlyAnswer(bytes)");
    auto b = info[0].As<Napi::Buffer<char>>();
    const size_t n = EarlyAnswerLen(std::string(b.Data(), b.Length()));
    return Napi::Number::New(env, n == SIZE_MAX ? -1.0 : static_cast<double>(n));
  }

  // httpConnectAuth(bytes) -> the Proxy-Authorization value HttpConnectAuth finds (latin1), or null: for
  // its differential test against the proxy's head parser.
  static Napi::Value HttpConnectAuthJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "httpConnectAuth(bytes)");
    auto b = info[0].As<Napi::Buffer<char>>();
    std::string value;
    if (!HttpConnectAuth(std::string(b.Data(), b.Length()), value)) return env.Null();
    return Napi::Buffer<char>::Copy(env, value.data(), value.size());
  }

  // httpEarlyAnswer(bytes) -> HttpEarlyAnswerLen as socks5EarlyAnswer gives EarlyAnswerLen (its fuzz test).
  static Napi::Value HttpEarlyAnswerJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "httpEarlyAnswer(bytes)");
    auto b = info[0].As<Napi::Buffer<char>>();
    const size_t n = HttpEarlyAnswerLen(std::string(b.Data(), b.Length()));
    return Napi::Number::New(env, n == SIZE_MAX ? -1.0 : static_cast<double>(n));
  }

  Napi::Value ListenStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto o = Napi::Object::New(env);
    o.Set("accepted", Napi::Number::New(env, static_cast<double>(t_accepted_)));
    o.Set("refused", Napi::Number::New(env, static_cast<double>(t_refused_)));
    o.Set("refusedPerAddress", Napi::Number::New(env, static_cast<double>(t_refused_addr_)));
    o.Set("failed", Napi::Number::New(env, static_cast<double>(t_failed_)));
    o.Set("active", Napi::Number::New(env, static_cast<double>(t_active_)));
    o.Set("spliced", Napi::Number::New(env, static_cast<double>(t_joined_)));
    o.Set("waiting", Napi::Number::New(env, static_cast<double>(tconns_.size())));
    o.Set("answeredHere", Napi::Number::New(env, static_cast<double>(t_native_replies_)));
    o.Set("credentialsAnsweredHere", Napi::Number::New(env, static_cast<double>(t_native_creds_)));
    o.Set("passedHere", Napi::Number::New(env, static_cast<double>(t_native_passed_)));
    o.Set("earlyReplies", Napi::Number::New(env, static_cast<double>(t_early_replies_)));
    o.Set("earlyFailed", Napi::Number::New(env, static_cast<double>(t_early_failed_)));
    return o;
  }

  // A call into JS that must not throw into libuv: an exception counts as `undefined` here and is
  // reported as uncaught (a bug in the callback, not a customer's doing).
  Napi::Value Ask(Napi::FunctionReference& fn, std::initializer_list<napi_value> args) {
    Napi::Env env = Env();
    try {
      return fn.Call(args);
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
      return env.Undefined();
    }
  }

  void Event(const char* kind, const Tconn* t, const std::string& detail) {
    Napi::Env env = Env();
    Ask(on_event_, {Napi::String::New(env, kind), Napi::String::New(env, t->client_ip),
                    Napi::String::New(env, t->dst_ip), Napi::Number::New(env, t->dst_port),
                    Napi::String::New(env, detail)});
  }

  static std::string ErrText(int e) { return std::string(strerror(e)); }

  void AcceptSome() {
    Napi::HandleScope scope(Env());
    for (int k = 0; k < kAcceptBurst && lfd_ >= 0; k++) {
      sockaddr_storage peer{};
      socklen_t pl = sizeof peer;
      int fd = accept4(lfd_, reinterpret_cast<sockaddr*>(&peer), &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) PauseAccept();
        return;
      }
      if (t_active_ >= max_conns_) {
        ::close(fd);
        continue;
      }
      t_accepted_++;
      Accepted(fd, peer);
    }
  }

  // Out of fds or memory: the listener is not watched for 100 ms (it would report the same backlog
  // at every turn), then again.
  void PauseAccept() {
    epoll_event ev{};
    ev.data.u64 = kTagListener;
    epoll_ctl(epfd_, EPOLL_CTL_MOD, lfd_, &ev);
    accept_paused_until_ = uv_now(loop_) + 100;
    ArmDeadline(accept_paused_until_);
  }

  void Accepted(int fd, const sockaddr_storage& peer) {
    Napi::Env env = Env();
    auto* t = new Tconn;
    t->cfd = fd;
    auto refuse = [&](const char* kind, const std::string& detail) {
      t_refused_++;
      if (kind != nullptr) Event(kind, t, detail);
      ::close(fd);
      delete t;
    };
    char ip[INET6_ADDRSTRLEN];
    FormatSockaddr(&peer, ip, sizeof ip);  // an IPv4 listener: dotted quad
    t->client_ip = ip;
    memcpy(&t->client_sa, &peer, sizeof t->client_sa);
    // maxWaitingPerAddress: one customer address cannot hold the listener's connections (maxConnections,
    // shared by every customer) with handshakes it never finishes; refused here without asking JS.
    if (per_addr_cap_ > 0 && waiting_per_addr_[t->client_sa.sin_addr.s_addr] >= per_addr_cap_) {
      t_refused_addr_++;
      ::close(fd);
      delete t;
      return;
    }
    if (kernel_dst_) {
      sockaddr_storage dst{};
      socklen_t dl = sizeof(sockaddr_in);
      if (getsockopt(fd, SOL_IP, kSoOriginalDst, &dst, &dl) != 0 || dst.ss_family != AF_INET)
        return refuse("nodst", ErrText(errno));
      t->dst_port = static_cast<uint16_t>(FormatSockaddr(&dst, ip, sizeof ip));
      t->dst_ip = ip;
    }
    // A SOCKS5 front's port in the table JS keeps here (setFrontRoutes): no question to JS. Otherwise (an
    // unknown port, whose refusal JS logs; the OpenVPN customers' listener) JS routes it.
    const FrontRoute* fr = socks5_front_ && kernel_dst_ ? FrontRouteOf(t->dst_port) : nullptr;
    if (fr != nullptr) {
      t->dev_ip = fr->dev_ip;
      t->dev_port = fr->dev_port;
      t->socks = fr->socks;
    } else {
      Napi::Value r = Ask(on_route_, {Napi::String::New(env, t->client_ip), Napi::Number::New(env, fd),
                                      Napi::String::New(env, t->dst_ip), Napi::Number::New(env, t->dst_port)});
      if (!r.IsArray()) return refuse(nullptr, "");
      auto a = r.As<Napi::Array>();
      t->dev_ip = a.Get(0u).ToString().Utf8Value();
      t->dev_port = static_cast<uint16_t>(a.Get(1u).ToNumber().Uint32Value());
      t->socks = a.Get(2u).ToBoolean().Value();
      t->dst_ip = a.Get(3u).ToString().Utf8Value();
      t->dst_port = static_cast<uint16_t>(a.Get(4u).ToNumber().Uint32Value());
    }
    in_addr dev{};
    if (inet_pton(AF_INET, t->dev_ip.c_str(), &dev) != 1 || t->dev_port == 0) return refuse("badroute", t->dev_ip);
    t->dev_addr = dev.s_addr;
    while (next_tconn_ == 0 || tconns_.count(next_tconn_) != 0) next_tconn_++;
    t->id = next_tconn_++;
    tconns_[t->id] = t;
    t_active_++;
    if (per_addr_cap_ > 0) {
      waiting_per_addr_[t->client_sa.sin_addr.s_addr]++;
      t->per_addr = true;
    }
    if (WatchConn(EPOLL_CTL_ADD, t, 0) != 0) return Drop(t, false);
    // With fastOpen the SYN waits for the first write anyway: the socket opens once the customer has been
    // answered (Dial), not on the way to that answer.
    uint32_t& n = early_[t->dev_addr];
    if (fast_open_) {
      if (n == 0) early_.erase(t->dev_addr);
    } else if (n < early_cap_) {
      n++;
      t->early = true;
      if (!OpenDevice(t)) return;
    } else if (n == 0) {
      early_.erase(t->dev_addr);
    }
    t->deadline = uv_now(loop_) + peek_ms_;
    peekq_.emplace_back(t->deadline, t->id);
    ArmDeadline(t->deadline);
    // deferAccept: its first bytes are there already; read them now rather than when the watch reports
    // them at the loop's next turn (that report then finds nothing, harmlessly).
    if (defer_accept_) ReadPeek(t);
  }

  int WatchConn(int op, Tconn* t, int side) {
    epoll_event ev{};
    ev.events = side == 0 ? (EPOLLIN | EPOLLRDHUP | EPOLLET) : kWatch;
    ev.data.u64 = kTagTconn | (static_cast<uint64_t>(t->id) << 1) | static_cast<uint64_t>(side);
    return epoll_ctl(epfd_, op, side == 0 ? t->cfd : t->dfd, &ev);
  }

  // The device's proxy port, non-blocking, Nagle off, in delayed-ACK mode (the handshake's last ACK
  // rides on the first write). False: the connection failed and is gone.
  bool OpenDevice(Tconn* t) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Fail(t, ErrText(errno));
    t->dfd = fd;
    int one = 1, zero = 0;
    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof zero);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // transparentSource: the device sees the customer's own address and port, as through a DNAT (the
    // answers come back to this socket by the relay's `socket transparent` mark and local route).
    if (transparent_src_ && (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one) != 0 ||
                             setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
                             bind(fd, reinterpret_cast<const sockaddr*>(&t->client_sa), sizeof t->client_sa) != 0))
      return Fail(t, ErrText(errno));
    // fastOpen: the SYN waits for the handshake and carries it (TCP Fast Open, once the device has given
    // this customer address a cookie; before that a plain SYN goes at the first write). A kernel
    // without it connects as before.
    if (fast_open_) setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = t->dev_addr;
    sa.sin_port = htons(t->dev_port);
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) t->connected = true;
    else if (errno != EINPROGRESS) return Fail(t, ErrText(errno));
    if (WatchConn(EPOLL_CTL_ADD, t, 1) != 0) return Fail(t, ErrText(errno));
    return true;
  }

  void LeaveEarly(Tconn* t) {
    if (!t->early) return;
    t->early = false;
    auto it = early_.find(t->dev_addr);
    if (it == early_.end()) return;
    if (--it->second == 0) early_.erase(it);
  }

  // The connection leaves the waiting states: its fds are closed (the customer's with a reset when
  // `reset_client`; the device's with a reset when `reset_device`) unless `keep_fds` (the join).
  void Remove(Tconn* t, bool keep_fds, bool reset_client, bool reset_device) {
    LeaveEarly(t);
    if (t->per_addr) {
      auto it = waiting_per_addr_.find(t->client_sa.sin_addr.s_addr);
      if (it != waiting_per_addr_.end() && --it->second == 0) waiting_per_addr_.erase(it);
    }
    tconns_.erase(t->id);
    if (!keep_fds) {
      t_active_--;
      CloseFd(t->cfd, reset_client);
      CloseFd(t->dfd, reset_device);
    }
    delete t;
    if (relays_.empty()) Disarm();
  }

  // The customer went away (reset or error) before the join: the device socket is reset.
  void Drop(Tconn* t, bool reset_client) { Remove(t, false, reset_client, true); }

  // The device refused, failed or was not reached: the customer is reset. Always false.
  bool Fail(Tconn* t, const std::string& why) {
    t_failed_++;
    Event("failed", t, why);
    Remove(t, false, true, false);
    return false;
  }

  // answered() refused with `[bytes]`: the customer gets them (as much as its socket takes now), then a
  // close, not a reset: it had been answered from here, and this is the device's verdict in its words.
  void Refuse(Tconn* t, Napi::Value bytes) {
    t_failed_++;
    Event("failed", t, "the device refused the connection");
    if (bytes.IsBuffer()) {
      auto b = bytes.As<Napi::Buffer<char>>();
      std::string reply(b.Data(), b.Length());
      size_t off = 0;
      SendRest(t->cfd, reply, off);
    }
    Remove(t, false, false, false);
  }

  static int SocketError(int fd) {
    int e = 0;
    socklen_t l = sizeof e;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) != 0) return errno;
    return e;
  }

  void OnTconn(Tconn* t, int side, uint32_t events) {
    if (side == 0) {
      if (events & (EPOLLERR | EPOLLHUP)) return Drop(t, true);
      if (!t->dialling && (events & (EPOLLIN | EPOLLRDHUP))) ReadPeek(t);
      return;  // while dialling the customer is not read: its bytes wait in its socket
    }
    if (events & EPOLLERR) {
      int e = SocketError(t->dfd);
      Fail(t, ErrText(e != 0 ? e : ECONNRESET));
      return;
    }
    // Writable without EPOLLERR (above) is a completed connect: SO_ERROR would read 0 (EPOLLERR is
    // reported exactly when the socket holds an error), so it is not asked.
    if (!t->connected && (events & EPOLLOUT)) t->connected = true;
    if (!t->dialling) {
      // The device's proxies never speak first: bytes (or a close) before our handshake are not an answer.
      if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) Fail(t, "the device sent bytes before the handshake");
      return;
    }
    if (t->connected && !Flush(t)) return;
    if (t->connected && JoinIfPassed(t)) return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) ReadAnswer(t);
  }

  void ReadPeek(Tconn* t) {
    size_t before = t->buf.size();
    const int got = RecvUpTo(t->cfd, t->buf, kPeekMax);
    if (got < 0) return Drop(t, true);
    if (got == 0) t->client_eof = true;
    const bool final = t->client_eof || t->buf.size() >= kPeekMax;
    if (t->buf.size() == before && !final) return;
    if (!final && t->asks >= kMaxAsks && t->buf.size() < 2 * t->asked_len) return;
    t->asks++;
    t->asked_len = t->buf.size();
    Dial(t, final);
  }

  // hello(): the handshake, or (not final) undefined to read more. Then the device socket opens if
  // it is not open yet, and the handshake goes as soon as it is connected.
  void Dial(Tconn* t, bool final) {
    if (!final && NativeHello(t)) return;
    Napi::Env env = Env();
    Napi::Value h = Ask(on_hello_, {Napi::String::New(env, t->client_ip), Napi::String::New(env, t->dev_ip),
                                    Napi::Number::New(env, t->dev_port), Napi::String::New(env, t->dst_ip),
                                    Napi::Number::New(env, t->dst_port),
                                    Napi::Buffer<char>::Copy(env, t->buf.data(), t->buf.size()),
                                    Napi::Boolean::New(env, final),
                                    Napi::Buffer<char>::Copy(env, t->replied.data(), t->replied.size())});
    if (h.IsUndefined() && !final) return;
    if (h.IsArray() && !final && h.As<Napi::Array>().Length() == 2 && http_early_ && !t->socks) {
      // [reply, handshake] (httpEarlyReply): an HTTP CONNECT answered here (JS checked its credentials);
      // the handshake goes to the device and the pair forms at once, the device's answer head read off it.
      Napi::Value a = h.As<Napi::Array>().Get(0u), hs = h.As<Napi::Array>().Get(1u);
      if (!a.IsBuffer() || !hs.IsBuffer()) return (void)Fail(t, "no route for this customer any more");
      auto rb = a.As<Napi::Buffer<char>>();
      auto hb = hs.As<Napi::Buffer<char>>();
      size_t off = 0;
      if (SendRest(t->cfd, std::string(rb.Data(), rb.Length()), off) != 1) return Drop(t, true);
      t->early_reply = true;
      t_early_replies_++;
      RememberHttpAuth(t);
      Handshake(t, std::string(hb.Data(), hb.Length()));
      return;
    }
    if (h.IsArray() && !final) {
      // [bytes]: an answer to the customer, from here; its handshake is still to come.
      Napi::Value a = h.As<Napi::Array>().Get(0u);
      if (!a.IsBuffer()) return (void)Fail(t, "no route for this customer any more");
      auto b = a.As<Napi::Buffer<char>>();
      std::string reply(b.Data(), b.Length());
      if (t->replied.size() + reply.size() > kPeekMax) return (void)Fail(t, "too many answers from here");
      const bool creds_ok = reply.size() >= sizeof kAuthOk &&
                            memcmp(reply.data() + reply.size() - sizeof kAuthOk, kAuthOk, sizeof kAuthOk) == 0;
      // JS's check accepted these credentials (its 01 00): the next customer sending the same bytes to this
      // port is answered here.
      if (socks5_front_ && creds_ok) RememberCreds(t);
      Answer(t, reply);
      return;
    }
    if (!h.IsBuffer()) return (void)Fail(t, "refused (no route for this customer any more, or a handshake it did not finish)");
    auto b = h.As<Napi::Buffer<char>>();
    Handshake(t, std::string(b.Data(), b.Length()));
  }

  // Answers the customer from here and reads on. False: the connection is gone (`t` with it).
  bool Answer(Tconn* t, const std::string& reply) {
    size_t off = 0;
    if (SendRest(t->cfd, reply, off) != 1) {
      Drop(t, true);
      return false;
    }
    t->replied += reply;
    // Ready for the rest: with fastOpen nothing leaves before it, the socket is just there.
    if (fast_open_ && t->dfd < 0) return OpenDevice(t);
    return true;
  }

  // The SOCKS5 front's steps without JS (Socks5FrontStep), for a port whose route JS gave here and has not
  // changed since accept. True: done (answered, or the handshake is on its way, or the connection is gone).
  bool NativeHello(Tconn* t) {
    if (!socks5_front_) return false;
    const FrontRoute* fr = FrontRouteOf(t->dst_port);
    if (fr == nullptr || fr->dev_addr != t->dev_addr || fr->dev_port != t->dev_port || fr->socks != t->socks) return false;
    if (!t->socks) {
      // An HTTP port through the front: nothing is answered here, the first bytes go as they came; with
      // httpEarlyReply and a route that says earlyReply, JS looks at them (a CONNECT it may answer here).
      if (t->buf.empty()) return false;
      if (http_early_ && fr->early) {
        // A CONNECT with credentials JS accepted before for this port (RememberHttpAuth): answered here.
        std::string auth;
        if (fr->tag.empty() || !HttpConnectAuth(t->buf, auth) ||
            creds_memo_.count(CredsKey(*fr, auth.data(), auth.size())) == 0)
          return false;
        size_t off = 0;
        if (SendRest(t->cfd, kHttpEstablished, off) != 1) {
          Drop(t, true);
          return true;
        }
        t->early_reply = true;
        t_early_replies_++;
      }
      t_native_passed_++;
      Handshake(t, t->buf);
      return true;
    }
    const FrontDecision d = Socks5FrontStep(t->buf, t->replied, [&](const char* creds, size_t n) {
      return !fr->tag.empty() && creds_memo_.count(CredsKey(*fr, creds, n)) != 0;
    });
    if (d.step == FrontStep::kAsk) return false;
    if (d.step == FrontStep::kPass) {
      t_native_passed_++;
      // earlyReply: a whole CONNECT behind credentials answered here is answered success here too, and the
      // pair forms at once (Handshake), so the customer's first bytes follow the request to the device
      // instead of waiting for the device's reply to come back through the customer.
      if (early_reply_ && fr->early) {
        const size_t g = GreetingWithUserPass(t->buf), c = UserPassAt(t->buf, g);
        if (ConnectRequestAt(t->buf, g + c) != 0) {
          size_t off = 0;
          if (SendRest(t->cfd, std::string(kEarlySuccess, sizeof kEarlySuccess), off) != 1) {
            Drop(t, true);
            return true;
          }
          t->early_reply = true;
          t_early_replies_++;
        }
      }
      Handshake(t, t->buf);
      return true;
    }
    t_native_replies_++;
    if (d.reply == kAuthOk || d.reply == kChooseAndOk) t_native_creds_++;
    Answer(t, std::string(d.reply, d.reply_len));
    return true;
  }

  static std::string CredsKey(const FrontRoute& fr, const char* creds, size_t n) {
    std::string k(reinterpret_cast<const char*>(&fr.dev_addr), sizeof fr.dev_addr);
    k.append(reinterpret_cast<const char*>(&fr.dev_port), sizeof fr.dev_port);
    k.append(fr.tag);
    k.push_back('\0');
    k.append(creds, n);
    return k;
  }

  // The credentials JS just accepted for this connection's port (the peek's bytes after the greeting),
  // under the port's current tag: a changed username or verifier is a new tag, so they no longer match.
  void RememberCreds(Tconn* t) {
    const FrontRoute* fr = FrontRouteOf(t->dst_port);
    if (fr == nullptr || fr->tag.empty() || fr->dev_addr != t->dev_addr || fr->dev_port != t->dev_port) return;
    const size_t g = GreetingWithUserPass(t->buf);
    const size_t c = g == 0 ? 0 : UserPassAt(t->buf, g);
    if (c == 0 || t->buf.size() != g + c) return;
    if (creds_memo_.size() >= kCredsMemoMax) creds_memo_.clear();
    creds_memo_.insert(CredsKey(*fr, t->buf.data() + g, c));
  }

  // The Proxy-Authorization value of the CONNECT JS just answered here (httpEarlyReply), under the port's
  // current tag, as RememberCreds does for SOCKS5: the next CONNECT with the same value is answered without JS.
  void RememberHttpAuth(Tconn* t) {
    const FrontRoute* fr = FrontRouteOf(t->dst_port);
    if (fr == nullptr || fr->tag.empty() || fr->socks || fr->dev_addr != t->dev_addr || fr->dev_port != t->dev_port)
      return;
    std::string auth;
    if (!HttpConnectAuth(t->buf, auth)) return;
    if (creds_memo_.size() >= kCredsMemoMax) creds_memo_.clear();
    creds_memo_.insert(CredsKey(*fr, auth.data(), auth.size()));
  }

  const FrontRoute* FrontRouteOf(uint16_t port) const {
    if (front_routes_.empty()) return nullptr;
    auto it = front_routes_.find(port);
    return it == front_routes_.end() ? nullptr : &it->second;
  }

  // The handshake for the device (with the peeked bytes): it goes as soon as the device socket is connected.
  void Handshake(Tconn* t, std::string out) {
    t->out = std::move(out);
    t->out_off = 0;
    t->buf.clear();
    t->dialling = true;
    LeaveEarly(t);
    t->deadline = uv_now(loop_) + connect_ms_;
    dialq_.emplace_back(t->deadline, t->id);
    ArmDeadline(t->deadline);
    if (t->dfd < 0 && !OpenDevice(t)) return;
    if (t->early_reply) {
      // What is not written yet (no TFO cookie: the socket is still connecting) goes first from the pair.
      if (t->connected && !Flush(t)) return;
      Join(t, 0);
      return;
    }
    if (t->connected && Flush(t)) JoinIfPassed(t);
  }

  // passUnreplied: nothing was answered here, so whatever the device says (or a close) is the customer's:
  // the pair forms as soon as the bytes are written, as a DNAT would have passed them.
  bool JoinIfPassed(Tconn* t) {
    if (!pass_unreplied_ || !t->replied.empty() || t->out_off < t->out.size()) return false;
    Join(t, 0);
    return true;
  }

  // Writes what is left of the handshake. False: the connection failed and is gone.
  bool Flush(Tconn* t) {
    if (SendRest(t->dfd, t->out, t->out_off) < 0) return Fail(t, ErrText(errno));
    return true;
  }

  // Writes `buf` from `off` on (advanced) until done (1), the socket is full (0) or fails (-1, errno).
  static int SendRest(int fd, const std::string& buf, size_t& off) {
    while (off < buf.size()) {
      ssize_t n = ::send(fd, buf.data() + off, buf.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      // EINPROGRESS: a fastOpen socket without a cookie sent a plain SYN; the rest goes once connected.
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINPROGRESS)) return 0;
      return -1;
    }
    return 1;
  }

  // Reads the device's answer a chunk at a time, asking answered() after each, and stops at its end:
  // whatever follows it (a fast target's first bytes) stays in the socket for the pair, so only the
  // answer itself is bounded (kAnswerMax).
  void ReadAnswer(Tconn* t) {
    char tmp[16 * 1024];
    for (;;) {
      ssize_t n = ::recv(t->dfd, tmp, sizeof tmp, 0);
      if (n == 0) return (void)Fail(t, "the device closed before answering");
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) Fail(t, ErrText(errno));
        return;
      }
      t->buf.append(tmp, static_cast<size_t>(n));
      // The SOCKS5 front: the device's first answers are what was answered here (dropped), as frontAnswered
      // says; anything else is JS's to judge.
      if (socks5_front_) {
        const size_t r = t->replied.size(), k = std::min(r, t->buf.size());
        if (memcmp(t->buf.data(), t->replied.data(), k) == 0) {
          if (t->buf.size() >= r) return Join(t, r);
          continue;
        }
      }
      Napi::Env env = Env();
      Napi::Value v = Ask(on_answered_, {Napi::Boolean::New(env, t->socks),
                                         Napi::Buffer<char>::Copy(env, t->buf.data(), t->buf.size()),
                                         Napi::Buffer<char>::Copy(env, t->replied.data(), t->replied.size())});
      if (v.IsArray()) return Refuse(t, v.As<Napi::Array>().Get(0u));
      const double len = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -2;
      if (len >= 0 && len <= static_cast<double>(t->buf.size())) return Join(t, static_cast<size_t>(len));
      if (len != -1) return (void)Fail(t, "the device refused the connection");
      if (t->buf.size() > kAnswerMax) return (void)Fail(t, "the device's answer is too long");
    }
  }

  // The answer is complete: both sockets become a quiet pair (reset on error), the answer's rest
  // and any handshake bytes still unwritten going first.
  void Join(Tconn* t, size_t answer_len) {
    Relay* r = NewRelay();
    t_joined_++;
    r->quiet = true;
    r->reset_on_error = true;
    r->dev_addr = t->dev_addr;
    r->dev_port = t->dev_port;
    r->fd[0] = t->cfd;
    r->fd[1] = t->dfd;
    if (t->out_off < t->out.size()) r->dir[0].pending = t->out.substr(t->out_off);
    r->dir[0].eof = t->client_eof;
    r->dir[1].pending = t->buf.substr(answer_len);
    if (t->early_reply) {
      r->dir[1].early_answer = true;
      r->dir[1].early_http = !t->socks;
      r->answer_by = uv_now(loop_) + connect_ms_;
    }
    t->cfd = t->dfd = -1;
    Remove(t, true, false, false);
    relays_[r->id] = r;
    r->last = uv_now(loop_);
    if (Watch(EPOLL_CTL_MOD, r, 0) != 0 || Watch(EPOLL_CTL_MOD, r, 1) != 0) return Finish(r, kError);
    if (relays_.size() == 1) Arm();
    // What was handed over goes now; what the sockets hold (the customer's bytes waiting since the peek)
    // the re-arming above reports.
    if (!Pump(r, r->dir[0], false) || !Pump(r, r->dir[1], false)) Finish(r, kError);
    else if (r->dir[0].done && r->dir[1].done) Finish(r, kClean);
  }

  // One timer for both deadlines: peeks expire in the order they started (same length), dials too.
  void ArmDeadline(uint64_t at) {
    if (deadline_timer_ == nullptr) return;
    const uint64_t now = uv_now(loop_);
    const uint64_t in = at > now ? at - now : 0;
    if (uv_is_active(reinterpret_cast<uv_handle_t*>(deadline_timer_)) && uv_timer_get_due_in(deadline_timer_) <= in)
      return;
    uv_timer_start(deadline_timer_, DeadlineCb, in, 0);
    uv_unref(reinterpret_cast<uv_handle_t*>(deadline_timer_));
  }

  static void DeadlineCb(uv_timer_t* h) {
    auto* self = static_cast<SpliceRelay*>(h->data);
    if (self != nullptr) self->Deadlines();
  }

  void Deadlines() {
    Napi::HandleScope scope(Env());
    const uint64_t now = uv_now(loop_);
    if (accept_paused_until_ != 0 && accept_paused_until_ <= now) {
      accept_paused_until_ = 0;
      epoll_event ev{};
      ev.events = EPOLLIN;
      if (lfd_ >= 0) {
        ev.data.u64 = kTagListener;
        epoll_ctl(epfd_, EPOLL_CTL_MOD, lfd_, &ev);
      }
      for (auto& [tag, fr] : fronts_) {
        if (!fr.paused) continue;
        fr.paused = false;
        ev.data.u64 = kTagFront | tag;
        epoll_ctl(epfd_, EPOLL_CTL_MOD, fr.lfd, &ev);
      }
    }
    while (!fdl_.empty() && fdl_.top().first <= now) {
      const auto [at, id] = fdl_.top();
      fdl_.pop();
      auto it = fconns_.find(id);
      if (it == fconns_.end() || it->second->deadline != at) continue;
      Napi::HandleScope conn_scope(Env());
      FExpired(it->second);
    }
    while (!peekq_.empty() && peekq_.front().first <= now) {
      const uint32_t id = peekq_.front().second;
      const uint64_t at = peekq_.front().first;
      peekq_.pop_front();
      auto it = tconns_.find(id);
      if (it == tconns_.end() || it->second->dialling || it->second->deadline != at) continue;
      Napi::HandleScope conn_scope(Env());
      Dial(it->second, true);
    }
    while (!dialq_.empty() && dialq_.front().first <= now) {
      const uint32_t id = dialq_.front().second;
      const uint64_t at = dialq_.front().first;
      dialq_.pop_front();
      auto it = tconns_.find(id);
      if (it == tconns_.end() || !it->second->dialling || it->second->deadline != at) continue;
      Napi::HandleScope conn_scope(Env());
      Fail(it->second, "no answer from the device in " + std::to_string(connect_ms_) + " ms");
    }
    uint64_t next = UINT64_MAX;
    if (!peekq_.empty()) next = peekq_.front().first;
    if (!dialq_.empty()) next = std::min(next, dialq_.front().first);
    if (accept_paused_until_ != 0) next = std::min(next, accept_paused_until_);
    if (!fdl_.empty()) next = std::min(next, fdl_.top().first);
    if (next != UINT64_MAX) ArmDeadline(next);
  }

  // ---- HTTP front ---------------------------------------------------------------------------------
  // The agent's HTTP proxy listeners with their per-connection socket work here instead of in JS
  // (packages/proxy http/front.ts, docs/design.md): accept (the customer's address from accept4),
  // the request head read under the head deadline, then ONE call into JS, head(id, tag, ip, port,
  // bytes, why), where the fuzzed TypeScript parser, the credentials, the connection's state, limits
  // and destination policy decide, and answer with one of:
  //   frontConnect(id, fd, ip, port, ms, toTarget, toClient, idleMs, request): connect the egress
  //     socket JS opened (bound and pinned there, so egress binding stays in one place); once
  //     connected, toClient (the 200) goes to the customer and toTarget (bytes behind the head) to the
  //     target, and the two sockets become a pair under the same id: the engine's progress / done
  //     callbacks carry its usage as for any pair. A failed or timed-out connect asks
  //     failed(id, errno, false), which answers with the next address's frontConnect or a frontAnswer.
  //     With `request` (a customer's last GET), toTarget is the upstream request: it is written, the
  //     origin's answer heads are read (kRequest) and answered(id, bytes) rewrites them once, then the
  //     pair forms and ends once the body is delivered (its length, or the origin's close); an origin
  //     that fails first asks failed(id, errno, true), answered with a frontAnswer;
  //   frontAnswer(id, bytes): an error answer (407, 403, 502...), written, then a half-close; the
  //     connection closes at the customer's FIN or after kAnswerMs;
  //   frontAdopt(id) -> fd: JS takes the socket as it is (the bytes read so far are in its hands) and
  //     serves it on its own path: keep-alive, bodies, other methods, limited meters.
  // SOCKS5: a listener made with `socks` asks head() at every read, with the bytes read since the
  // last ask (its handshake is several messages, framed and parsed in JS), and JS answers each with
  //   frontReply(id, bytes): written (a few bytes), then the connection reads on (kHead) under the
  //     deadline from accept; its FIN or that deadline ask head() again (eof / timeout);
  // until the request, decided as above; at the join the engine appends the success reply, whose
  // BND.ADDR / BND.PORT is the target socket's own address (getsockname).
  // JS may answer later (a DNS look-up): the connection waits in kDecide, its bytes in its socket,
  // until decideMs. A connection JS was asked about ends with a done(id, 0, 0, reason) when it ends
  // here without becoming a pair (customer reset, deadlines, an answer delivered); kill(id) ends it
  // from JS at any stage. Unauthenticated connections (before head()) are capped per address and in
  // total, per listen address (a device), as the handshake guard caps them on the JS path.

  // frontInit({decideMs, maxPerAddress, maxTotal}, head, failed, answered)
  Napi::Value FrontInit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 4 || !info[0].IsObject() || !info[1].IsFunction() || !info[2].IsFunction() ||
        !info[3].IsFunction())
      throw Napi::TypeError::New(env, "frontInit(options, head, failed, answered)");
    auto o = info[0].As<Napi::Object>();
    auto num = [&](const char* k, double dflt) { return OptNumber(o, k, dflt); };
    decide_ms_ = static_cast<uint64_t>(std::max(1.0, num("decideMs", 15000)));
    head_per_addr_max_ = static_cast<uint32_t>(std::max(1.0, num("maxPerAddress", 64)));
    head_total_max_ = static_cast<uint32_t>(std::max(1.0, num("maxTotal", 2048)));
    on_fhead_ = Napi::Persistent(info[1].As<Napi::Function>());
    on_ffailed_ = Napi::Persistent(info[2].As<Napi::Function>());
    on_fanswered_ = Napi::Persistent(info[3].As<Napi::Function>());
    return env.Undefined();
  }

  // frontListen(host, port, headMs, exempt, socks, stamps?, fd?, lanes?) -> [port, tag, ...fds]: an IPv4
  // listener (Nagle off, delayed-ACK mode and TCP_DEFER_ACCEPT, all inherited by its connections, as the JS
  // listeners have them); `exempt` ('' for none) is an address its per-address cap does not apply to. `socks`: a
  // SOCKS5 front (see "SOCKS5" below). `fd` (>= 0; -1: none): no new socket, this engine also accepts from a
  // listener another thread's engine opened (frontDup, or a lane's socket there): the fd is this engine's from
  // the call on (closed at frontClose, or at once when refused); it must be a listening IPv4 TCP socket bound to
  // host:port. `lanes` > 1 (no fd): a group of that many sockets picking by TUN queue (OpenListener, lanes.cc),
  // this engine accepting from the first, the others' fds returned in lane order.
  Napi::Value FrontListen(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 5 || info.Length() > 8 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber() ||
        !info[3].IsString() || !info[4].IsBoolean() || (info.Length() >= 6 && !info[5].IsBoolean()) ||
        (info.Length() >= 7 && !info[6].IsNumber()) || (info.Length() == 8 && !info[7].IsNumber()))
      throw Napi::TypeError::New(env, "frontListen(host, port, headMs, exempt, socks, stamps?, fd?, lanes?)");
    const int shared = info.Length() >= 7 ? info[6].As<Napi::Number>().Int32Value() : -1;
    const uint32_t lanes = info.Length() == 8 ? info[7].As<Napi::Number>().Uint32Value() : 1;
    if (lanes < 1 || lanes > 16 || (lanes > 1 && shared >= 0)) {
      if (shared >= 0) ::close(shared);
      throw Napi::TypeError::New(env, "frontListen: lanes must be 1..16, and 1 with an fd");
    }
    if (epfd_ < 0 || on_fhead_.IsEmpty()) {
      if (shared >= 0) ::close(shared);
      if (epfd_ < 0) throw Napi::Error::New(env, "SpliceRelay is closed");
      throw Napi::Error::New(env, "frontListen: frontInit first");
    }
    std::string host = info[0].As<Napi::String>().Utf8Value();
    while (next_front_ == 0 || fronts_.count(next_front_) != 0) next_front_++;
    const uint32_t tag = next_front_;
    uint16_t bound = 0;
    std::vector<int> extra;
    const int fd = shared >= 0 ? JoinListener(env, shared, host, info[1], kTagFront | tag, &bound)
                               : OpenListener(env, "frontListen", host, info[1], true, kFrontNotSent, kTagFront | tag,
                                              &bound, lanes, &extra);
    next_front_++;
    Front fr;
    fr.lfd = fd;
    fr.head_ms = static_cast<uint64_t>(std::max(1.0, info[2].As<Napi::Number>().DoubleValue()));
    fr.exempt = info[3].As<Napi::String>().Utf8Value();
    fr.socks = info[4].As<Napi::Boolean>().Value();
    fr.stamps = info.Length() >= 6 && info[5].As<Napi::Boolean>().Value();
    // The kernel keeps each connection's SYN (its IP and TCP headers) until it is read at accept.
    int on = 1;
    if (fr.stamps && setsockopt(fd, IPPROTO_TCP, TCP_SAVE_SYN, &on, sizeof on) != 0) {
      const int e = errno;
      ::close(fd);
      for (int f : extra) ::close(f);
      throw ErrnoError(env, "setsockopt(TCP_SAVE_SYN)", e);
    }
    fr.group = host;
    fronts_[tag] = fr;
    Arm();
    auto out = Napi::Array::New(env, 2 + extra.size());
    out.Set(0u, Napi::Number::New(env, bound));
    out.Set(1u, Napi::Number::New(env, tag));
    for (size_t k = 0; k < extra.size(); k++) out.Set(static_cast<uint32_t>(2 + k), Napi::Number::New(env, extra[k]));
    return out;
  }

  // frontDup(tag) -> fd: a new descriptor of the front listener `tag` (close-on-exec), for another thread's
  // engine to accept from too (its frontListen's `fd`). Throws for an unknown tag.
  Napi::Value FrontDup(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "frontDup(tag)");
    auto it = fronts_.find(info[0].As<Napi::Number>().Uint32Value());
    if (it == fronts_.end()) throw Napi::Error::New(env, "frontDup: no such listener");
    const int fd = fcntl(it->second.lfd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) throw ErrnoError(env, "frontDup", errno);
    return Napi::Number::New(env, fd);
  }

  // The listener of another engine (frontDup) joined to this one's epoll, after checking that it is one: a
  // listening IPv4 TCP socket on host:port (port 0: any). The fd is closed when it is refused.
  int JoinListener(Napi::Env env, int fd, const std::string& host, const Napi::Value& port, uint64_t tag,
                   uint16_t* bound) {
    in_addr want{};
    const uint32_t want_port = port.As<Napi::Number>().Uint32Value();
    int accepting = 0, domain = 0, type = 0;
    socklen_t il = sizeof accepting;
    sockaddr_in sa{};
    socklen_t sl = sizeof sa;
    const bool ok = inet_pton(AF_INET, host.c_str(), &want) == 1 &&
                    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &il) == 0 && accepting == 1 &&
                    (il = sizeof domain, getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &il) == 0) &&
                    domain == AF_INET && (il = sizeof type, getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &il) == 0) &&
                    type == SOCK_STREAM && getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &sl) == 0 &&
                    sa.sin_addr.s_addr == want.s_addr && (want_port == 0 || ntohs(sa.sin_port) == want_port);
    if (!ok) {
      ::close(fd);
      throw Napi::Error::New(env, "frontListen: fd is not a listening IPv4 TCP socket on that address");
    }
    return WatchListener(env, fd, tag, ntohs(sa.sin_port), bound);
  }

  // frontStamps(tag, on) -> bool: whether the listener's connections' SYNs are kept and read for a stamp from now
  // on (TCP_SAVE_SYN on the listener; a SYN that came before is read only if it was kept then). False: no such
  // listener. A device whose relay carries no OpenVPN customers reads none: no copy per SYN in the kernel and
  // no getsockopt per accept.
  Napi::Value FrontStamps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 2 || !info[0].IsNumber() || !info[1].IsBoolean())
      throw Napi::TypeError::New(env, "frontStamps(tag, on)");
    auto it = fronts_.find(info[0].As<Napi::Number>().Uint32Value());
    if (it == fronts_.end()) return Napi::Boolean::New(env, false);
    const int on = info[1].As<Napi::Boolean>().Value() ? 1 : 0;
    if (setsockopt(it->second.lfd, IPPROTO_TCP, TCP_SAVE_SYN, &on, sizeof on) != 0)
      throw ErrnoError(env, "setsockopt(TCP_SAVE_SYN)", errno);
    it->second.stamps = on != 0;
    return Napi::Boolean::New(env, true);
  }

  // frontClose(tag): the listener closes; its connections JS has not heard of yet close with it.
  Napi::Value FrontClose(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "frontClose(tag)");
    const uint32_t tag = info[0].As<Napi::Number>().Uint32Value();
    auto it = fronts_.find(tag);
    if (it == fronts_.end()) return env.Undefined();
    // Out of the epoll before the close: a listener another thread's engine also holds (frontDup) stays
    // open after this close, and so would its registration here, waking this engine for a tag it no
    // longer knows (and refusing the next ADD of a descriptor with the same number: EEXIST).
    epoll_ctl(epfd_, EPOLL_CTL_DEL, it->second.lfd, nullptr);
    ::close(it->second.lfd);
    fronts_.erase(it);
    std::vector<Fconn*> quiet;
    for (auto& [id, f] : fconns_)
      if (f->tag == tag && !f->asked) quiet.push_back(f);
    for (Fconn* f : quiet) FClose(f, false, false);
    return env.Undefined();
  }

  // frontConnect(id, fd, ip, port, timeoutMs, toTarget|null, toClient|null, idleMs, request) -> 0, or an
  // errno when connect() failed at once (the fd is closed; JS picks the next address or answers), or -1
  // when the connection is gone (the fd is closed too). The fd is ours from this call on, whatever
  // happens. `request`: toTarget is a request whose answer head JS rewrites (answered) before the join.
  Napi::Value FrontConnect(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 9 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsString() ||
        !info[3].IsNumber() || !info[4].IsNumber() || !info[7].IsNumber() || !info[8].IsBoolean())
      throw Napi::TypeError::New(env,
                                 "frontConnect(id, fd, ip, port, timeoutMs, toTarget, toClient, idleMs, request)");
    const int fd = info[1].As<Napi::Number>().Int32Value();
    auto it = fconns_.find(info[0].As<Napi::Number>().Uint32Value());
    if (it == fconns_.end() || it->second->st != Fconn::kDecide) {
      if (fd >= 0) ::close(fd);
      return Napi::Number::New(env, -1);
    }
    Fconn* f = it->second;
    auto bytes = [&](const Napi::Value& v, std::string& out) {
      out.clear();
      if (v.IsBuffer()) out.assign(v.As<Napi::Buffer<char>>().Data(), v.As<Napi::Buffer<char>>().Length());
    };
    bytes(info[5], f->buf);
    bytes(info[6], f->to_client);
    double idle = info[7].As<Napi::Number>().DoubleValue();
    f->idle_ms = idle > 0 ? static_cast<uint64_t>(idle) : 0;
    f->request = info[8].As<Napi::Boolean>().Value();
    f->off = 0;
    f->ans.clear();
    std::string ip = info[2].As<Napi::String>().Utf8Value();
    const uint16_t port = static_cast<uint16_t>(info[3].As<Napi::Number>().Uint32Value());
    sockaddr_storage sa{};
    socklen_t sl = 0;
    const bool v6 = ip.find(':') != std::string::npos;
    if (!ParseSockaddr(v6 ? AF_INET6 : AF_INET, ip.c_str(), port, &sa, &sl)) {
      ::close(fd);
      return Napi::Number::New(env, EINVAL);
    }
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sl) != 0 && errno != EINPROGRESS) {
      int e = errno;
      ::close(fd);
      return Napi::Number::New(env, e);
    }
    f->tfd = fd;
    f->st = Fconn::kConnect;
    // Connected or not, the next epoll_wait reports the socket writable (or failed): the join happens
    // there, never inside this call (its callbacks would run in the middle of JS's decision).
    if (FWatch(EPOLL_CTL_ADD, f, 1, kWatch) != 0) {
      int e = errno;
      ::close(fd);
      f->tfd = -1;
      f->st = Fconn::kDecide;
      return Napi::Number::New(env, e);
    }
    double ms = info[4].As<Napi::Number>().DoubleValue();
    FDeadline(f, static_cast<uint64_t>(std::max(1.0, ms)));
    return Napi::Number::New(env, 0);
  }

  // frontAnswer(id, bytes) -> bool: writes the answer, then half-closes (see above).
  Napi::Value FrontAnswer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 2 || !info[0].IsNumber() || !info[1].IsBuffer())
      throw Napi::TypeError::New(env, "frontAnswer(id, bytes)");
    auto it = fconns_.find(info[0].As<Napi::Number>().Uint32Value());
    if (it == fconns_.end() || it->second->st == Fconn::kAnswer || it->second->st == Fconn::kConnect)
      return Napi::Boolean::New(env, false);
    Fconn* f = it->second;
    LeaveHeadSlot(f);
    if (f->tfd >= 0) {
      ::close(f->tfd);
      f->tfd = -1;
    }
    auto b = info[1].As<Napi::Buffer<char>>();
    f->buf.assign(b.Data(), b.Length());
    f->off = 0;
    f->st = Fconn::kAnswer;
    f_answered_++;
    // Re-armed with EPOLLOUT: the next epoll_wait reports the socket writable and the answer goes then.
    if (FWatch(EPOLL_CTL_MOD, f, 0, kWatch) != 0) {
      FClose(f, true, false);
      return Napi::Boolean::New(env, false);
    }
    FDeadline(f, kAnswerMs);
    return Napi::Boolean::New(env, true);
  }

  // frontReply(id, bytes) -> bool (a SOCKS5 front's connection JS was asked about, kDecide): writes
  // `bytes` (a handshake answer: a few bytes, which a fresh socket always takes whole) and reads on;
  // the next bytes (or the customer's FIN, or the handshake deadline from accept) ask JS again. False:
  // the connection is gone or not in that state, or the bytes did not go whole (JS then ends it).
  Napi::Value FrontReply(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 2 || !info[0].IsNumber() || !info[1].IsBuffer())
      throw Napi::TypeError::New(env, "frontReply(id, bytes)");
    auto it = fconns_.find(info[0].As<Napi::Number>().Uint32Value());
    if (it == fconns_.end() || it->second->st != Fconn::kDecide || !it->second->socks)
      return Napi::Boolean::New(env, false);
    Fconn* f = it->second;
    auto b = info[1].As<Napi::Buffer<char>>();
    std::string out(b.Data(), b.Length());
    size_t off = 0;
    if (!out.empty() && SendRest(f->cfd, out, off) != 1) return Napi::Boolean::New(env, false);
    f->st = Fconn::kHead;
    // MOD reports bytes (or a FIN) that came while JS decided at the next epoll_wait: their edge passed.
    if (FWatch(EPOLL_CTL_MOD, f, 0, EPOLLIN | EPOLLRDHUP | EPOLLET) != 0) return Napi::Boolean::New(env, false);
    f->deadline = f->head_at;
    fdl_.emplace(f->deadline, f->id);
    ArmDeadline(f->deadline);
    return Napi::Boolean::New(env, true);
  }

  // frontAdopt(id) -> fd, or -1 when the connection is gone. The socket leaves the engine as it is.
  Napi::Value FrontAdopt(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "frontAdopt(id)");
    auto it = fconns_.find(info[0].As<Napi::Number>().Uint32Value());
    if (it == fconns_.end() || (it->second->st != Fconn::kDecide && it->second->st != Fconn::kHead))
      return Napi::Number::New(env, -1);
    Fconn* f = it->second;
    const int fd = f->cfd;
    epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    f->cfd = -1;
    f_adopted_++;
    FClose(f, false, false);
    return Napi::Number::New(env, fd);
  }

  // frontHeadLeft(id) -> the ms left of the connection's handshake deadline, counted from accept (0
  // once past), or -1 when it is gone. Asked before an adoption, so the JS path keeps that deadline
  // (a SOCKS5 handshake adopted at its greeting must not get a second full one).
  Napi::Value FrontHeadLeft(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "frontHeadLeft(id)");
    auto it = fconns_.find(info[0].As<Napi::Number>().Uint32Value());
    if (it == fconns_.end()) return Napi::Number::New(env, -1);
    const uint64_t now = uv_now(loop_);
    const uint64_t at = it->second->head_at;
    return Napi::Number::New(env, static_cast<double>(at > now ? at - now : 0));
  }

  Napi::Value FrontStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto o = Napi::Object::New(env);
    o.Set("listeners", Napi::Number::New(env, static_cast<double>(fronts_.size())));
    o.Set("accepted", Napi::Number::New(env, static_cast<double>(f_accepted_)));
    o.Set("refusedPerAddress", Napi::Number::New(env, static_cast<double>(f_refused_addr_)));
    o.Set("refusedTotal", Napi::Number::New(env, static_cast<double>(f_refused_total_)));
    o.Set("headTimeouts", Napi::Number::New(env, static_cast<double>(f_head_timeouts_)));
    o.Set("joined", Napi::Number::New(env, static_cast<double>(f_joined_)));
    o.Set("answered", Napi::Number::New(env, static_cast<double>(f_answered_)));
    o.Set("adopted", Napi::Number::New(env, static_cast<double>(f_adopted_)));
    o.Set("waiting", Napi::Number::New(env, static_cast<double>(fconns_.size())));
    o.Set("unauthenticated", Napi::Number::New(env, static_cast<double>(head_total_)));
    return o;
  }

  int FWatch(int op, Fconn* f, int side, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = kTagFconn | (static_cast<uint64_t>(f->id) << 1) | static_cast<uint64_t>(side);
    return epoll_ctl(epfd_, op, side == 0 ? f->cfd : f->tfd, &ev);
  }

  void FDeadline(Fconn* f, uint64_t ms) {
    f->deadline = uv_now(loop_) + ms;
    fdl_.emplace(f->deadline, f->id);
    ArmDeadline(f->deadline);
  }

  void LeaveHeadSlot(Fconn* f) {
    if (!f->slot) return;
    f->slot = false;
    head_total_--;
    auto it = head_per_addr_.find(f->slot_key);
    if (it != head_per_addr_.end() && --it->second == 0) head_per_addr_.erase(it);
    auto g = head_per_group_.find(f->group);
    if (g != head_per_group_.end() && --g->second == 0) head_per_group_.erase(g);
  }

  // The connection ends here: its sockets close (with a reset when asked), and JS, when it was asked
  // about it, hears of it through done(id, 0, 0, reason).
  void FEnd(Fconn* f, int reason, bool reset_client, bool reset_target) {
    const bool tell = f->asked;
    const uint32_t id = f->id;
    FClose(f, reset_client, reset_target);
    if (!tell) return;
    Napi::Env env = Env();
    CallJs(env, on_done_, Value(),
           {Napi::Number::New(env, id), Napi::Number::New(env, 0), Napi::Number::New(env, 0),
            Napi::Number::New(env, reason)},
           *ctx_);
  }

  // Closes what the connection holds and forgets it, without telling JS.
  void FClose(Fconn* f, bool reset_client, bool reset_target) {
    LeaveHeadSlot(f);
    fconns_.erase(f->id);
    CloseFd(f->cfd, reset_client);
    CloseFd(f->tfd, reset_target);
    delete f;
  }

  void AcceptFront(uint32_t tag) {
    Napi::HandleScope scope(Env());
    for (int k = 0; k < kAcceptBurst; k++) {
      auto fr = fronts_.find(tag);  // a callback may have closed it
      if (fr == fronts_.end() || fr->second.paused) return;
      sockaddr_storage peer{};
      socklen_t pl = sizeof peer;
      int fd = accept4(fr->second.lfd, reinterpret_cast<sockaddr*>(&peer), &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          epoll_event ev{};
          ev.data.u64 = kTagFront | tag;
          epoll_ctl(epfd_, EPOLL_CTL_MOD, fr->second.lfd, &ev);
          fr->second.paused = true;
          accept_paused_until_ = uv_now(loop_) + 100;
          ArmDeadline(accept_paused_until_);
        }
        return;
      }
      char ip[INET6_ADDRSTRLEN];
      const uint16_t port = static_cast<uint16_t>(FormatSockaddr(&peer, ip, sizeof ip));
      const bool exempt = !fr->second.exempt.empty() && fr->second.exempt == ip;
      // Caps per listen address (one device; a farm host's devices share this engine), as the JS
      // path's handshake guard is per device: per customer address, and in all.
      const std::string& group = fr->second.group;
      std::string key;
      if (!exempt) {
        key = group + ' ' + ip;
        auto per = head_per_addr_.find(key);
        auto all = head_per_group_.find(group);
        const uint32_t n_addr = per == head_per_addr_.end() ? 0 : per->second;
        const uint32_t n_all = all == head_per_group_.end() ? 0 : all->second;
        if (n_addr >= head_per_addr_max_ || n_all >= head_total_max_) {
          if (n_addr >= head_per_addr_max_) f_refused_addr_++;
          else f_refused_total_++;
          ::close(fd);
          continue;
        }
      }
      f_accepted_++;
      auto* f = new Fconn;
      f->id = NextId();
      f->tag = tag;
      f->cfd = fd;
      f->peer_ip = ip;
      f->peer_port = port;
      f->socks = fr->second.socks;
      if (fr->second.stamps) ReadSavedSyn(f);
      if (!exempt) {
        head_per_addr_[key]++;
        head_per_group_[group]++;
        head_total_++;
        f->slot_key = std::move(key);
        f->group = group;
        f->slot = true;
      }
      fconns_[f->id] = f;
      if (FWatch(EPOLL_CTL_ADD, f, 0, EPOLLIN | EPOLLRDHUP | EPOLLET) != 0) {
        FClose(f, false, false);
        continue;
      }
      FDeadline(f, fr->second.head_ms);
      f->head_at = f->deadline;
      // TCP_DEFER_ACCEPT: the first bytes are usually here already. A FIN behind them is reported by
      // the EPOLL_CTL_ADD above (it queues the socket when it holds something), so no drain.
      ReadHead(f, false);
    }
  }

  void OnFconn(Fconn* f, int side, uint32_t events) {
    switch (f->st) {
      case Fconn::kHead:
        if (events & (EPOLLERR | EPOLLHUP)) return FEnd(f, kError, true, false);
        if (events & (EPOLLIN | EPOLLRDHUP)) ReadHead(f, FinReported(events));
        return;
      case Fconn::kDecide:
        // Not read while JS decides: its bytes wait in its socket. Only a failure ends it.
        if (events & (EPOLLERR | EPOLLHUP)) FEnd(f, kError, true, false);
        return;
      case Fconn::kConnect:
        if (side == 0) {
          if (events & (EPOLLERR | EPOLLHUP)) FEnd(f, kError, true, true);
          return;
        }
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
          // Writable without an error or hang-up is a completed connect (a failed one reports EPOLLERR,
          // exactly when the socket holds an error, with EPOLLHUP: tcp_poll), so SO_ERROR is read only then.
          int e = (events & (EPOLLERR | EPOLLHUP)) ? SocketError(f->tfd) : 0;
          if (e == 0 && (events & (EPOLLERR | EPOLLHUP))) e = ECONNRESET;
          if (e != 0) return FConnectFailed(f, e);
          if (!f->request) return FJoin(f);
          f->st = Fconn::kRequest;
          // The origin has the idle timeout to answer, as on the JS path.
          if (f->idle_ms > 0) FDeadline(f, f->idle_ms);
          if (!FlushRequest(f)) return;
          if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) ReadAnswerHead(f, FinReported(events));
        }
        return;
      case Fconn::kRequest:
        if (side == 0) {
          if (events & (EPOLLERR | EPOLLHUP)) FEnd(f, kError, true, true);
          return;
        }
        if (events & EPOLLERR) return FAnswerFailed(f, SocketError(f->tfd));
        if ((events & EPOLLOUT) && !FlushRequest(f)) return;
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) ReadAnswerHead(f, FinReported(events));
        return;
      case Fconn::kAnswer:
        if (events & EPOLLERR) return FEnd(f, kError, false, false);
        if (!f->shut && !FlushAnswer(f)) return;
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) DrainAnswered(f);
        return;
    }
  }

  // The customer's bytes until the head's blank line, kPeekMax, its FIN or the deadline; then head().
  // A SOCKS5 front asks at every read with the bytes read since the last ask (JS frames the messages
  // and answers each with frontReply until the request is complete).
  // TCP_SAVED_SYN: the connection's SYN as it came (its IP and TCP headers), read once; its stamp, if any.
  void ReadSavedSyn(Fconn* f) {
    uint8_t syn[512];
    socklen_t len = sizeof syn;
    if (getsockopt(f->cfd, IPPROTO_TCP, TCP_SAVED_SYN, syn, &len) != 0) return;  // a SYN cookie: none kept
    uint32_t addr = 0;
    uint16_t port = 0;
    if (!ReadStamp(syn, len, &addr, &port)) return;
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &addr, ip, sizeof ip);
    f->stamped = true;
    f->stamp_ip = ip;
    f->stamp_port = ntohs(port);
  }

  void ReadHead(Fconn* f, bool drain) {
    const size_t before = f->buf.size();
    const int got = RecvUpTo(f->cfd, f->buf, kPeekMax, drain);
    if (got < 0) return FEnd(f, kError, true, false);
    const bool eof = got == 0;
    // A stamped connection: JS decides now, with what came so far (none for a protocol whose server
    // speaks first, once TCP_DEFER_ACCEPT gave up waiting).
    if (f->stamped && !(eof && f->buf.empty())) return AskHead(f, eof ? 1 : 0);
    if (f->buf.empty()) {
      // Gone before a byte: nothing to answer (an answer would only help a port scanner). Once JS was
      // asked, it hears of the FIN (the handshake cut short).
      if (eof && f->asked) return AskHead(f, 1);
      if (eof) FClose(f, false, false);
      return;
    }
    if (f->socks) return AskHead(f, eof ? 1 : f->buf.size() >= kPeekMax ? 2 : 0);
    const bool complete = f->buf.find("\r\n\r\n", before >= 3 ? before - 3 : 0) != std::string::npos;
    if (complete) return AskHead(f, 0);
    if (eof) return AskHead(f, 1);
    if (f->buf.size() >= kPeekMax) return AskHead(f, 2);
  }

  // why: 0 the head is complete, 1 the customer's FIN came first, 2 kPeekMax bytes without one, 3 the
  // head deadline passed.
  void AskHead(Fconn* f, int why) {
    LeaveHeadSlot(f);
    f->st = Fconn::kDecide;
    f->asked = true;
    FDeadline(f, decide_ms_);
    Napi::Env env = Env();
    std::string bytes;
    bytes.swap(f->buf);
    Napi::Value stamp = env.Undefined();
    if (f->stamped) {
      Napi::Array a = Napi::Array::New(env, 2);
      a.Set(0u, Napi::String::New(env, f->stamp_ip));
      a.Set(1u, Napi::Number::New(env, f->stamp_port));
      stamp = a;
    }
    CallJs(env, on_fhead_, Value(),
           {Napi::Number::New(env, f->id), Napi::Number::New(env, f->tag), Napi::String::New(env, f->peer_ip),
            Napi::Number::New(env, f->peer_port), Napi::Buffer<char>::Copy(env, bytes.data(), bytes.size()),
            Napi::Number::New(env, why), stamp},
           *ctx_);
    // `f` may be gone now (adopted, killed): nothing more here.
  }

  void FConnectFailed(Fconn* f, int err) { FTargetFailed(f, err, false); }

  // The origin failed after the connect, before its answer head was complete (reset, closed, timed out):
  // JS answers (no next address: the request went to this one).
  void FAnswerFailed(Fconn* f, int err) { FTargetFailed(f, err != 0 ? err : ECONNRESET, true); }

  // The target socket goes; the connection waits for JS's next decision, which failed() asks for.
  void FTargetFailed(Fconn* f, int err, bool answering) {
    epoll_ctl(epfd_, EPOLL_CTL_DEL, f->tfd, nullptr);
    ::close(f->tfd);
    f->tfd = -1;
    f->st = Fconn::kDecide;
    FDeadline(f, decide_ms_);
    Napi::Env env = Env();
    CallJs(env, on_ffailed_, Value(),
           {Napi::Number::New(env, f->id), Napi::Number::New(env, err), Napi::Boolean::New(env, answering)}, *ctx_);
  }

  // Writes what is left of the request. False: the connection failed (JS was told).
  bool FlushRequest(Fconn* f) {
    if (SendRest(f->tfd, f->buf, f->off) >= 0) return true;
    FAnswerFailed(f, errno);
    return false;
  }

  // Reads what the origin has answered so far, then asks answered(id, bytes) -> -1 (more), or
  // [consumed, toClient, bodyLength (-1: to the origin's close)] to join, or anything else when JS
  // answered or ended the connection itself. Bytes past `consumed` are the body's first bytes. `fin`: the
  // event reported the origin's FIN, which is read to (no edge comes after it); otherwise a short read ends.
  void ReadAnswerHead(Fconn* f, bool fin) {
    const uint32_t id = f->id;
    const int got = RecvUpTo(f->tfd, f->ans, kAnswerMax + 1, fin);
    if (got < 0) return FAnswerFailed(f, errno);
    const bool eof = got == 0;
    if (f->ans.empty()) return eof ? FAnswerFailed(f, ECONNRESET) : void();
    Napi::Env env = Env();
    Napi::Value v;
    try {
      v = on_fanswered_.MakeCallback(Value(), {Napi::Number::New(env, id),
                                               Napi::Buffer<char>::Copy(env, f->ans.data(), f->ans.size())},
                                     *ctx_);
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
      v = env.Undefined();
    }
    auto it = fconns_.find(id);
    if (it == fconns_.end() || it->second->st != Fconn::kRequest) return;  // JS decided otherwise
    f = it->second;
    if (v.IsArray()) {
      auto a = v.As<Napi::Array>();
      Napi::Value c = a.Get(0u), b = a.Get(1u), l = a.Get(2u);
      const double consumed = c.IsNumber() ? c.As<Napi::Number>().DoubleValue() : -1;
      const double limit = l.IsNumber() ? l.As<Napi::Number>().DoubleValue() : -1;
      if (consumed >= 0 && consumed <= static_cast<double>(f->ans.size()) && b.IsBuffer()) {
        auto head = b.As<Napi::Buffer<char>>();
        return FJoinAnswer(f, static_cast<size_t>(consumed), std::string(head.Data(), head.Length()), limit);
      }
    } else if (v.IsNumber() && v.As<Napi::Number>().DoubleValue() == -1) {
      if (eof) return FAnswerFailed(f, ECONNRESET);
      if (f->ans.size() <= kAnswerMax) return;  // more to come
    }
    // A value JS would not give: no answer can be made of this one.
    FAnswerFailed(f, EPROTO);
  }

  // The answer's head is rewritten: the customer and the origin become a pair that ends once the body
  // (`limit` bytes, or up to the origin's close when negative) is delivered, a reset on either side
  // failing (a truncated body resets the customer, as the JS path cuts it).
  void FJoinAnswer(Fconn* f, size_t consumed, std::string head, double limit) {
    std::string body = f->ans.substr(consumed);
    uint64_t left = UINT64_MAX;
    if (limit >= 0) {
      const uint64_t want = static_cast<uint64_t>(limit);
      if (body.size() >= want) {
        body.resize(static_cast<size_t>(want));  // what follows the answer is not the customer's
        left = 0;
      } else {
        left = want - body.size();
      }
    }
    Relay* r = FPair(f);
    r->dir[1].pending = std::move(head);
    r->dir[1].pending += body;
    r->dir[1].left = left;
    // The whole answer in hand: it goes with MSG_MORE and the FIN with it, in one segment (one tunnel
    // frame on the agent, as the JS path's TCP_CORK before its end).
    if (left == 0) r->dir[1].eof = true;
    r->end_with_down = true;
    r->reset_on_error = true;
    FStart(f, r);
  }

  // The pair a connection becomes, under its id: its sockets (the connection lets go of them).
  Relay* FPair(Fconn* f) {
    Relay* r = new Relay;
    r->id = f->id;
    started_++;
    r->dir[1].src = 1;
    r->dir[1].dst = 0;
    r->fd[0] = f->cfd;
    r->fd[1] = f->tfd;
    r->idle_ms = f->idle_ms;
    f->cfd = f->tfd = -1;
    return r;
  }

  // The connection is gone, its pair runs: the bytes handed over go first, and a pair that is over with
  // them (a last GET whose whole answer was in hand) ends here. Otherwise its sockets are re-armed under
  // the pair's tag, and EPOLL_CTL_MOD reports what they hold already (a splice of each now found nothing,
  // EAGAIN, nearly always).
  void FStart(Fconn* f, Relay* r) {
    FClose(f, false, false);
    f_joined_++;
    relays_[r->id] = r;
    r->last = uv_now(loop_);
    if (!Pump(r, r->dir[0], false) || !Pump(r, r->dir[1], false)) return Finish(r, kError);
    if (Over(r)) return Finish(r, kClean);
    if (Watch(EPOLL_CTL_MOD, r, 0) != 0 || Watch(EPOLL_CTL_MOD, r, 1) != 0) return Finish(r, kError);
    Arm();
  }

  // Connected: the two sockets become a pair under the connection's id; the 200 (and what the customer
  // sent behind its head) go first.
  void FJoin(Fconn* f) {
    if (f->socks && !f->stamped) f->to_client += SocksReply(f->tfd);
    Relay* r = FPair(f);
    r->dir[0].pending.swap(f->buf);
    r->dir[1].pending.swap(f->to_client);
    FStart(f, r);
  }

  // RFC 1928 §6 success reply to a CONNECT: BND.ADDR and BND.PORT are the address the target was
  // connected from (an IPv4-mapped one as IPv4, as the JS path answers).
  static std::string SocksReply(int fd) {
    sockaddr_storage ss{};
    socklen_t sl = sizeof ss;
    std::string out("\x05\x00\x00", 3);
    const unsigned char* addr = nullptr;
    size_t len = 0;
    uint16_t port = 0;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl) == 0 && ss.ss_family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      addr = reinterpret_cast<const unsigned char*>(&a->sin_addr);
      len = 4;
      port = a->sin_port;
    } else if (ss.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      addr = a->sin6_addr.s6_addr;
      len = 16;
      port = a->sin6_port;
      if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
        addr += 12;
        len = 4;
      }
    }
    static const unsigned char kZero[4] = {0, 0, 0, 0};
    if (addr == nullptr) {
      addr = kZero;
      len = 4;
    }
    out.push_back(len == 4 ? 0x01 : 0x04);
    out.append(reinterpret_cast<const char*>(addr), len);
    out.append(reinterpret_cast<const char*>(&port), 2);  // network order already
    return out;
  }

  // Writes what is left of the answer; once it is all out, a half-close. False: the connection is gone.
  bool FlushAnswer(Fconn* f) {
    const int r = SendRest(f->cfd, f->buf, f->off);
    if (r == 0) return true;
    if (r < 0) {
      FEnd(f, kError, false, false);
      return false;
    }
    f->shut = true;
    std::string().swap(f->buf);
    ::shutdown(f->cfd, SHUT_WR);
    return true;
  }

  // After the answer: what the customer still sends is read and dropped (a close with unread bytes
  // would reset the answer away) until its FIN.
  void DrainAnswered(Fconn* f) {
    char tmp[16 * 1024];
    for (int k = 0; k < 16; k++) {
      ssize_t n = ::recv(f->cfd, tmp, sizeof tmp, 0);
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (f->shut || n < 0) return FEnd(f, n == 0 ? kClean : kError, false, false);
      return;  // its FIN before our answer is out: the answer goes on, the deadline ends it
    }
  }

  void FExpired(Fconn* f) {
    switch (f->st) {
      case Fconn::kHead:
        if (f->buf.empty() && !f->asked) {
          f_head_timeouts_++;  // with bytes, or once asked, JS answers the timeout and counts it
          return FClose(f, false, false);
        }
        return AskHead(f, 3);
      case Fconn::kDecide:
        return FEnd(f, kError, true, false);
      case Fconn::kConnect:
        return FConnectFailed(f, ETIMEDOUT);
      case Fconn::kRequest:
        return FAnswerFailed(f, ETIMEDOUT);
      case Fconn::kAnswer:
        return FEnd(f, f->shut ? kClean : kError, false, false);
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
  // The transparent listener.
  uv_timer_t* deadline_timer_ = nullptr;
  Napi::FunctionReference on_route_;
  Napi::FunctionReference on_hello_;
  Napi::FunctionReference on_answered_;
  Napi::FunctionReference on_event_;
  int lfd_ = -1;
  bool kernel_dst_ = true;
  bool transparent_src_ = false;
  bool fast_open_ = false;
  bool pass_unreplied_ = false;  // a connection hello() did not answer joins once its bytes are written
  bool socks5_front_ = false;    // the relay's SOCKS5 front: its routes and happy paths here (NativeHello)
  bool early_reply_ = false;     // socks5Front's earlyReply: a CONNECT answered success here, the pair formed at once
  bool http_early_ = false;      // socks5Front's httpEarlyReply: JS may answer an HTTP port's CONNECT so too
  std::unordered_map<uint16_t, FrontRoute> front_routes_;  // public port -> device listener (setFrontRoutes)
  std::unordered_set<std::string> creds_memo_;              // CredsKey of credentials JS accepted
  uint64_t t_native_replies_ = 0, t_native_creds_ = 0, t_native_passed_ = 0;
  uint64_t t_early_replies_ = 0, t_early_failed_ = 0;
  bool defer_accept_ = false;    // TCP_DEFER_ACCEPT: a customer is accepted with its first bytes
  uint32_t per_addr_cap_ = 0;    // maxWaitingPerAddress; 0: no cap
  std::unordered_map<uint32_t, uint32_t> waiting_per_addr_;  // customer address -> connections not joined yet
  uint64_t t_refused_addr_ = 0;
  uint64_t peek_ms_ = 300;
  uint64_t connect_ms_ = 10000;
  uint32_t early_cap_ = 256;
  uint64_t max_conns_ = 20000;
  uint64_t accept_paused_until_ = 0;
  uint32_t next_tconn_ = 1;
  std::unordered_map<uint32_t, Tconn*> tconns_;
  std::unordered_map<uint32_t, uint32_t> early_;  // device address -> connections dialled before their peek ended
  std::deque<std::pair<uint64_t, uint32_t>> peekq_;
  std::deque<std::pair<uint64_t, uint32_t>> dialq_;
  uint64_t t_accepted_ = 0, t_refused_ = 0, t_failed_ = 0, t_active_ = 0, t_joined_ = 0;
  // The HTTP front.
  Napi::FunctionReference on_fhead_;
  Napi::FunctionReference on_ffailed_;
  Napi::FunctionReference on_fanswered_;
  uint64_t decide_ms_ = 15000;
  uint32_t head_per_addr_max_ = 64;
  uint32_t head_total_max_ = 2048;
  uint32_t head_total_ = 0;
  std::unordered_map<std::string, uint32_t> head_per_addr_;   // group + ' ' + address -> head slots
  std::unordered_map<std::string, uint32_t> head_per_group_;  // group -> head slots
  uint32_t next_front_ = 1;
  std::unordered_map<uint32_t, Front> fronts_;
  std::unordered_map<uint32_t, Fconn*> fconns_;
  std::priority_queue<std::pair<uint64_t, uint32_t>, std::vector<std::pair<uint64_t, uint32_t>>,
                      std::greater<std::pair<uint64_t, uint32_t>>>
      fdl_;
  uint64_t f_accepted_ = 0, f_refused_addr_ = 0, f_refused_total_ = 0, f_head_timeouts_ = 0, f_joined_ = 0, f_answered_ = 0, f_adopted_ = 0;
};

Napi::Function InitSpliceRelay(Napi::Env env) { return SpliceRelay::Init(env); }

}  // namespace pp
