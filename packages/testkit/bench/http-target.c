// http-target: the lab's web server for the load measures of bench:dataplane (new connections per second,
// time to first byte), in C. The lab's own server (src/services/http-echo.ts, node:http) spends ~80 µs of
// CPU per connection on this 2-core VM, about a third of a core at the rates measured, and that CPU comes
// out of the same two cores the chains under test run on; a website's CPU does not come out of a proxy's.
// With BENCH_TARGET=c the loads ask this one instead (newconn.ts startLoadTarget), which answers from a
// buffer with one read and one write per connection (~20 µs of the lab's CPU), as newconn-load.c loads
// them with a compiled client. docs/benchmarks.md, "the lab's web server", has what that changes.
//
//   http-target IP PORT (0: any free port; the ready line names it)
//     GET /bytes?n=N   N bytes (N <= 1 MiB), Content-Length, then closes (every answer: Connection: close)
//     GET /ip          the caller's address, as the lab's server answers it
//     anything else    404; a head over 8 KiB 431; a request line it cannot read 400
// Origin-form or absolute-form targets. Prints "ready http-target" once listening; exits when its stdin
// closes (the bench's end) or after 3 hours whatever happens.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_BODY (1 << 20)
#define HEAD_MAX 8192

struct conn {
  int fd;
  size_t have;           // bytes of the request head read so far
  char head[HEAD_MAX];
  char answer_head[256];  // the answer's head (and, for /ip and errors, its body)
  size_t answer_head_len;
  size_t body_len;        // bytes of the static body behind it
  size_t sent;            // bytes of head + body written so far
  struct sockaddr_in peer;
};

static char body[MAX_BODY];
static int ep;

static void finish(struct conn *c) {
  close(c->fd);  // also takes it out of the epoll set
  free(c);
}

static void answer(struct conn *c, int status, const char *reason, const char *text, size_t n) {
  c->answer_head_len = (size_t)snprintf(c->answer_head, sizeof c->answer_head,
                                        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                                        "Connection: close\r\n\r\n%s",
                                        status, reason, text ? "text/plain" : "application/octet-stream",
                                        text ? strlen(text) : n, text ? text : "");
  c->body_len = text ? 0 : n;
}

// The request in c->head (complete): chooses the answer.
static void decide(struct conn *c) {
  char *sp = memchr(c->head, ' ', c->have);
  if (!sp || sp - c->head != 3 || memcmp(c->head, "GET", 3) != 0) return answer(c, 400, "Bad Request", "bad request\n", 0);
  char *target = sp + 1;
  char *end = memchr(target, ' ', c->have - (size_t)(target - c->head));
  if (!end) return answer(c, 400, "Bad Request", "bad request\n", 0);
  *end = 0;
  if (strncmp(target, "http://", 7) == 0) {  // absolute-form: the path behind the authority
    target = strchr(target + 7, '/');
    if (!target) return answer(c, 400, "Bad Request", "bad request\n", 0);
  }
  if (strcmp(target, "/ip") == 0) {
    char ip[INET_ADDRSTRLEN + 2];
    inet_ntop(AF_INET, &c->peer.sin_addr, ip, INET_ADDRSTRLEN);
    strcat(ip, "\n");
    return answer(c, 200, "OK", ip, 0);
  }
  if (strncmp(target, "/bytes?n=", 9) == 0) {
    char *e;
    errno = 0;
    unsigned long n = strtoul(target + 9, &e, 10);
    if (errno || e == target + 9 || *e || n > MAX_BODY) return answer(c, 400, "Bad Request", "bad n\n", 0);
    return answer(c, 200, "OK", NULL, n);
  }
  answer(c, 404, "Not Found", "not found\n", 0);
}

// Writes what is left of the answer; true when the connection is done with.
static int pump(struct conn *c) {
  while (c->sent < c->answer_head_len + c->body_len) {
    struct iovec iov[2];
    int k = 0;
    if (c->sent < c->answer_head_len)
      iov[k++] = (struct iovec){c->answer_head + c->sent, c->answer_head_len - c->sent};
    size_t from = c->sent > c->answer_head_len ? c->sent - c->answer_head_len : 0;
    if (c->body_len > from) iov[k++] = (struct iovec){body + from, c->body_len - from};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)k};
    ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
    if (w < 0) return errno != EAGAIN && errno != EINTR;
    c->sent += (size_t)w;
  }
  return 1;
}

static void readable(struct conn *c) {
  if (c->answer_head_len) {  // answering: only the rest of the answer is of interest
    if (pump(c)) finish(c);
    return;
  }
  for (;;) {
    ssize_t r = read(c->fd, c->head + c->have, HEAD_MAX - 1 - c->have);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (r <= 0) return finish(c);
    c->have += (size_t)r;
    c->head[c->have] = 0;
    if (memmem(c->head, c->have, "\r\n\r\n", 4)) break;
    if (c->have >= HEAD_MAX - 1) {
      answer(c, 431, "Request Header Fields Too Large", "head too large\n", 0);
      break;
    }
  }
  if (!c->answer_head_len) decide(c);
  if (pump(c)) finish(c);
  else {  // the rest when the socket takes it
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) finish(c);
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: http-target IP PORT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  alarm(3 * 3600);
  memset(body, 'a', sizeof body);
  int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2]))};
  if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(l, 4096) != 0) {
    perror("http-target: listen");
    return 1;
  }
  ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
  static int stdin_tag;
  ev = (struct epoll_event){.events = EPOLLIN | EPOLLHUP, .data.ptr = &stdin_tag};
  int watch_stdin = epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) == 0;
  socklen_t alen = sizeof a;
  getsockname(l, (struct sockaddr *)&a, &alen);  // port 0: the one the kernel chose
  printf("ready http-target %s:%u%s\n", argv[1], ntohs(a.sin_port), watch_stdin ? "" : " (stdin not watched)");
  fflush(stdout);
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0 && errno != EINTR) return 1;
    for (int i = 0; i < n; i++) {
      void *p = evs[i].data.ptr;
      if (p == &stdin_tag) {
        char b[256];
        if (read(0, b, sizeof b) <= 0) return 0;  // the bench is gone
      } else if (p == NULL) {
        for (;;) {
          struct sockaddr_in peer;
          socklen_t len = sizeof peer;
          int fd = accept4(l, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          struct conn *c = calloc(1, sizeof *c);
          if (!c) {
            close(fd);
            continue;
          }
          c->fd = fd;
          c->peer = peer;
          struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
          if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) != 0) finish(c);
        }
      } else {
        readable(p);
      }
    }
  }
}
