// newconn-load: a new TCP connection per HTTP GET, N at a time, through an HTTP proxy (CONNECT or
// absolute-form GET), a SOCKS5 proxy (username/password, domain-name CONNECT) or directly. The
// data-plane bench compiles it (`cc -O2`) and runs it from the customer namespace against both
// chains, ours and the standard-parts one, so the two are loaded by the same client. wrk cannot
// speak SOCKS5 or CONNECT, hence this.
//
//   newconn-load MODE PROXY_IP PROXY_PORT USER PASS HOST PORT PATH CONCURRENCY DURATION_MS [COUNT]
//     MODE: direct (PROXY_* = the target's address), connect, absolute, socks5
//     COUNT: stop after COUNT requests (with CONCURRENCY 1: sequential, for time to first byte)
//
// Each connection: connect → (proxy handshake, one step at a time like curl: CONNECT and wait for
// 200; or SOCKS5 greeting → username/password → CONNECT to HOST:PORT) → `GET PATH` with
// `Connection: close` → read to EOF; counted when the status is 200 and the body length matches
// Content-Length. Time to first byte: from connect() to the first byte of the HTTP answer.
// Prints one JSON line. Every connection has a 5 s limit, the whole run DURATION_MS + 5 s.
// `turns_p50_ms`: the median of each of the client's turns, a write to its answer (connect() to writable;
// then, by mode, the greeting to 05 02, the credentials to 01 00, the SOCKS5 request to its reply, or the
// CONNECT to its 200; and last the GET to its first byte), over the requests that succeeded: where a
// request's time goes without a capture's cost.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { DIRECT, CONNECT, ABSOLUTE, SOCKS5 };
enum step { S_CONNECTING, S_GREETING, S_AUTH, S_SOCKS_REQ, S_CONNECT_REPLY, S_HTTP };
#define MAX_TURNS 5

struct conn {
  int fd;
  enum step step;
  double started;
  double first_byte;
  double mark;  // when the current turn's bytes were written (connect(): started)
  double turn[MAX_TURNS];
  int turns;
  char buf[8192];
  size_t have;
  size_t body;
  long content_length;
  int status;
  int header_done;
};

static enum mode mode;
static struct sockaddr_in dst;
static const char *user, *pass, *host, *path;
static int tport;
static char request[2048], connect_req[1024], auth_req[600], socks_req[300];
static size_t request_len, connect_len, auth_len, socks_len;
static long ok, errors, started_n, max_count = -1;
static double *ttfb;
static long ttfb_n, ttfb_cap;
static double *turn_ms[MAX_TURNS];
static int turns_n = -1;  // the turns every counted request had (the mode's), -1 before the first
static int ep;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void b64(const char *in, char *out) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n = strlen(in), i, o = 0;
  for (i = 0; i + 2 < n; i += 3) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
    out[o++] = tbl[v >> 18 & 63], out[o++] = tbl[v >> 12 & 63], out[o++] = tbl[v >> 6 & 63], out[o++] = tbl[v & 63];
  }
  if (n - i == 1) {
    unsigned v = (unsigned char)in[i] << 16;
    out[o++] = tbl[v >> 18 & 63], out[o++] = tbl[v >> 12 & 63], out[o++] = '=', out[o++] = '=';
  } else if (n - i == 2) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
    out[o++] = tbl[v >> 18 & 63], out[o++] = tbl[v >> 12 & 63], out[o++] = tbl[v >> 6 & 63], out[o++] = '=';
  }
  out[o] = 0;
}

static int send_all(int fd, const char *p, size_t n) {
  // Small requests on a fresh connection: the socket buffer takes them whole.
  ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
  return w == (ssize_t)n ? 0 : -1;
}

static void start(struct conn *c) {
  memset(c, 0, sizeof *c);
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  c->started = c->mark = now();
  started_n++;
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int r = connect(c->fd, (struct sockaddr *)&dst, sizeof dst);
  if (r < 0 && errno != EINPROGRESS) {
    close(c->fd);
    c->fd = -1;
    errors++;
    return;
  }
  c->step = S_CONNECTING;
  struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void finish(struct conn *c, int good) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
  if (good) {
    ok++;
    if (ttfb_n == ttfb_cap) {
      ttfb_cap = ttfb_cap ? ttfb_cap * 2 : 4096;
      ttfb = realloc(ttfb, ttfb_cap * sizeof *ttfb);
      for (int k = 0; k < MAX_TURNS; k++) turn_ms[k] = realloc(turn_ms[k], ttfb_cap * sizeof(double));
    }
    if (turns_n < 0) turns_n = c->turns;
    for (int k = 0; k < MAX_TURNS; k++) turn_ms[k][ttfb_n] = k < c->turns ? c->turn[k] * 1e3 : 0;
    ttfb[ttfb_n++] = (c->first_byte - c->started) * 1e3;
  } else {
    errors++;
  }
}

// The current turn's answer is complete: its time is kept, and the next turn starts now (its write follows).
static void turn_done(struct conn *c) {
  double t = now();
  if (c->turns < MAX_TURNS) c->turn[c->turns++] = t - c->mark;
  c->mark = t;
}

static void want_read(struct conn *c) {
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void send_request(struct conn *c) {
  c->have = 0;
  c->step = S_HTTP;
  if (send_all(c->fd, request, request_len) < 0) finish(c, 0);
}

// Parse the HTTP answer in c->buf as far as it goes; returns 1 when the header is complete.
static int http_header(struct conn *c) {
  char *e = memmem(c->buf, c->have, "\r\n\r\n", 4);
  if (!e) return 0;
  c->header_done = 1;
  c->status = c->have > 12 ? atoi(c->buf + 9) : 0;
  c->content_length = -1;
  for (char *p = c->buf; p < e; p++) {
    if ((*p == '\n') && strncasecmp(p + 1, "content-length:", 15) == 0) c->content_length = atol(p + 16);
  }
  c->body = c->have - (size_t)(e + 4 - c->buf);
  c->have = 0;
  return 1;
}

static void on_event(struct conn *c, unsigned events) {
  if (c->step == S_CONNECTING) {
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err || (events & (EPOLLERR | EPOLLHUP))) return finish(c, 0);
    turn_done(c);
    want_read(c);
    if (mode == DIRECT || mode == ABSOLUTE) return send_request(c);
    if (mode == CONNECT) {
      c->step = S_CONNECT_REPLY;
      if (send_all(c->fd, connect_req, connect_len) < 0) finish(c, 0);
      return;
    }
    c->step = S_GREETING;
    if (send_all(c->fd, "\x05\x01\x02", 3) < 0) finish(c, 0);
    return;
  }
  for (;;) {
    ssize_t n = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
    if (n < 0) {
      if (errno == EAGAIN) return;
      return finish(c, 0);
    }
    if (n == 0) {
      // EOF: the answer is complete if the body length matches.
      int good = c->step == S_HTTP && c->header_done && c->status == 200 &&
                 (c->content_length < 0 || (long)c->body == c->content_length);
      return finish(c, good);
    }
    if (c->step == S_HTTP) {
      if (c->first_byte == 0) {
        c->first_byte = now();
        if (c->turns < MAX_TURNS) c->turn[c->turns++] = c->first_byte - c->mark;
      }
      if (c->header_done) {
        c->body += n;
        continue;
      }
      c->have += n;
      if (!http_header(c) && c->have == sizeof c->buf) return finish(c, 0);
      continue;
    }
    c->have += n;
    switch (c->step) {
      case S_CONNECT_REPLY: {
        char *e = memmem(c->buf, c->have, "\r\n\r\n", 4);
        if (!e) {
          if (c->have == sizeof c->buf) return finish(c, 0);
          continue;
        }
        if (c->have < 12 || atoi(c->buf + 9) != 200 || (size_t)(e + 4 - c->buf) != c->have) return finish(c, 0);
        turn_done(c);
        send_request(c);
        if (c->fd < 0) return;
        continue;
      }
      case S_GREETING:
        if (c->have < 2) continue;
        if (c->buf[0] != 5 || c->buf[1] != 2) return finish(c, 0);
        turn_done(c);
        c->have = 0;
        c->step = S_AUTH;
        if (send_all(c->fd, auth_req, auth_len) < 0) return finish(c, 0);
        continue;
      case S_AUTH:
        if (c->have < 2) continue;
        if (c->buf[1] != 0) return finish(c, 0);
        turn_done(c);
        c->have = 0;
        c->step = S_SOCKS_REQ;
        if (send_all(c->fd, socks_req, socks_len) < 0) return finish(c, 0);
        continue;
      case S_SOCKS_REQ: {
        if (c->have < 5) continue;
        if (c->buf[1] != 0) return finish(c, 0);
        size_t need = c->buf[3] == 1 ? 10 : c->buf[3] == 4 ? 22 : 7 + (unsigned char)c->buf[4];
        if (c->have < need) continue;
        if (c->have > need) return finish(c, 0);
        turn_done(c);
        send_request(c);
        if (c->fd < 0) return;
        continue;
      }
      default:
        return finish(c, 0);
    }
  }
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 11) {
    fprintf(stderr, "usage: %s MODE PROXY_IP PROXY_PORT USER PASS HOST PORT PATH CONCURRENCY DURATION_MS [COUNT]\n",
            argv[0]);
    return 2;
  }
  const char *m = argv[1];
  mode = !strcmp(m, "direct") ? DIRECT : !strcmp(m, "connect") ? CONNECT : !strcmp(m, "absolute") ? ABSOLUTE
       : !strcmp(m, "socks5") ? SOCKS5 : -1;
  if ((int)mode < 0) return 2;
  dst.sin_family = AF_INET;
  if (inet_pton(AF_INET, argv[2], &dst.sin_addr) != 1) return 2;
  dst.sin_port = htons(atoi(argv[3]));
  user = argv[4], pass = argv[5], host = argv[6], tport = atoi(argv[7]), path = argv[8];
  int conc = atoi(argv[9]);
  double duration = atol(argv[10]) / 1e3;
  if (argc > 11) max_count = atol(argv[11]);
  if (strlen(user) > 255 || strlen(pass) > 255 || strlen(host) > 255 || conc < 1 || conc > 4096) return 2;

  char cred[600], auth[800];
  snprintf(cred, sizeof cred, "%s:%s", user, pass);
  b64(cred, auth);
  char hostport[300];
  snprintf(hostport, sizeof hostport, tport == 80 ? "%s" : "%s:%d", host, tport);
  if (mode == ABSOLUTE)
    request_len = snprintf(request, sizeof request,
                           "GET http://%s%s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\n"
                           "Connection: close\r\n\r\n",
                           hostport, path, hostport, auth);
  else
    request_len =
        snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, hostport);
  connect_len = snprintf(connect_req, sizeof connect_req,
                         "CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\nProxy-Authorization: Basic %s\r\n\r\n", host,
                         tport, host, tport, auth);
  size_t ul = strlen(user), pl = strlen(pass), hl = strlen(host);
  auth_req[0] = 1, auth_req[1] = (char)ul;
  memcpy(auth_req + 2, user, ul);
  auth_req[2 + ul] = (char)pl;
  memcpy(auth_req + 3 + ul, pass, pl);
  auth_len = 3 + ul + pl;
  socks_req[0] = 5, socks_req[1] = 1, socks_req[2] = 0, socks_req[3] = 3, socks_req[4] = (char)hl;
  memcpy(socks_req + 5, host, hl);
  socks_req[5 + hl] = (char)(tport >> 8), socks_req[6 + hl] = (char)(tport & 255);
  socks_len = 7 + hl;

  ep = epoll_create1(0);
  struct conn *cs = calloc(conc, sizeof *cs);
  // A counted run ends with its last request (DURATION_MS is then only its bound).
  double t0 = now(), end = max_count < 0 ? t0 + duration : t0 + 1e9, hard = t0 + duration + 5;
  for (int i = 0; i < conc; i++) cs[i].fd = -1;
  struct epoll_event evs[256];
  double ended = 0;
  for (;;) {
    double t = now();
    int more = t < end && (max_count < 0 || started_n < max_count);
    int active = 0;
    for (int i = 0; i < conc; i++) {
      if (cs[i].fd >= 0 && t - cs[i].started > 5) finish(&cs[i], 0);
      if (cs[i].fd < 0 && more && (max_count < 0 || started_n < max_count)) start(&cs[i]);
      if (cs[i].fd >= 0) active++;
    }
    if (!more && ended == 0) ended = t;
    // A timed run stops at its duration (what is in flight then is dropped, like wrk); a counted
    // run waits for its last requests.
    if (!more && (max_count < 0 || active == 0)) break;
    if (t > hard) break;
    int n = epoll_wait(ep, evs, 256, 50);
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (c->fd >= 0) on_event(c, evs[i].events);
    }
  }
  double elapsed = (ended ? ended : now()) - t0;
  if (max_count >= 0) elapsed = now() - t0;
  qsort(ttfb, ttfb_n, sizeof *ttfb, cmp);
  double p50 = ttfb_n ? ttfb[ttfb_n / 2] : 0, p90 = ttfb_n ? ttfb[ttfb_n * 9 / 10] : 0;
  printf("{\"mode\":\"%s\",\"requests\":%ld,\"errors\":%ld,\"seconds\":%.3f,\"per_sec\":%.1f,"
         "\"ttfb_p50_ms\":%.3f,\"ttfb_p90_ms\":%.3f,\"turns_p50_ms\":[",
         m, ok, errors, elapsed, ok / elapsed, p50, p90);
  for (int k = 0; k < turns_n && k < MAX_TURNS; k++) {
    qsort(turn_ms[k], ttfb_n, sizeof(double), cmp);
    printf("%s%.3f", k ? "," : "", turn_ms[k][ttfb_n / 2]);
  }
  printf("]}\n");
  return 0;
}
