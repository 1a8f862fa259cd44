// A bench-only stand-in for "the customer's TCP ends on the device" (BENCH_OVPN_E2E=1 in openvpn-path.ts):
// accepts on PORT, connects each accepted socket to TARGET:TPORT and splice()s both ways on one epoll
// thread. No handshake, no policy: it measures the data path of that design (the relay forwarding the
// customer's packets into the device tunnel, the device's kernel terminating them), not a product.
// usage: e2e-fwd PORT TARGET_IP TARGET_PORT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct dir {
  int pipe[2];
  size_t inpipe;
  int eof, shut;
};
struct conn {
  int a, b;  // customer, target
  int connected, dead;
  struct dir ab, ba;  // a -> b, b -> a
  struct conn *next_dead;
};

static int ep;
// Closed connections are freed after the epoll batch: both of a connection's sockets may be in one batch.
static struct conn *dead_list;
static struct sockaddr_in target;

static void conn_close(struct conn *c) {
  close(c->a);
  close(c->b);
  close(c->ab.pipe[0]);
  close(c->ab.pipe[1]);
  close(c->ba.pipe[0]);
  close(c->ba.pipe[1]);
  c->dead = 1;
  c->next_dead = dead_list;
  dead_list = c;
}

// Moves what it can from src to dst through d's pipe; -1 on a hard error.
static int pump(int src, int dst, struct dir *d) {
  for (;;) {
    int moved = 0;
    while (d->inpipe > 0) {
      ssize_t n = splice(d->pipe[0], NULL, dst, NULL, d->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d->inpipe -= (size_t)n;
        moved = 1;
        continue;
      }
      if (n < 0 && errno == EAGAIN) return 0;
      return -1;
    }
    if (d->eof) {
      if (!d->shut) shutdown(dst, SHUT_WR), d->shut = 1;
      return 0;
    }
    ssize_t n = splice(src, NULL, d->pipe[1], NULL, 1 << 20, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      d->inpipe += (size_t)n;
      moved = 1;
    } else if (n == 0) {
      d->eof = 1;
      moved = 1;
    } else if (errno != EAGAIN) {
      return -1;
    }
    if (!moved) return 0;
  }
}

static void serve(struct conn *c) {
  if (c->dead) return;
  if (!c->connected) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->b, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err == EINPROGRESS || err == EALREADY) return;
    if (err != 0) return conn_close(c);
    // Still in progress if getpeername fails.
    struct sockaddr_in peer;
    len = sizeof peer;
    if (getpeername(c->b, (struct sockaddr *)&peer, &len) != 0) return;
    c->connected = 1;
  }
  if (pump(c->a, c->b, &c->ab) < 0 || pump(c->b, c->a, &c->ba) < 0) return conn_close(c);
  if (c->ab.shut && c->ba.shut) conn_close(c);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: e2e-fwd PORT TARGET_IP TARGET_PORT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);  // a customer's reset mid-splice is an EPIPE, not the end of the process
  target.sin_family = AF_INET;
  target.sin_port = htons((uint16_t)atoi(argv[3]));
  if (inet_pton(AF_INET, argv[2], &target.sin_addr) != 1) return 2;
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  if (bind(ls, (struct sockaddr *)&any, sizeof any) != 0 || listen(ls, 1024) != 0) {
    perror("listen");
    return 1;
  }
  ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  printf("e2e-fwd listening on %s\n", argv[1]);
  fflush(stdout);
  struct epoll_event evs[64];
  for (;;) {
    int n = epoll_wait(ep, evs, 64, -1);
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == NULL) {
        for (;;) {
          int a = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
          if (a < 0) break;
          setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          int b = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
          setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct conn *c = calloc(1, sizeof *c);
          c->a = a;
          c->b = b;
          c->ab.pipe[0] = c->ab.pipe[1] = c->ba.pipe[0] = c->ba.pipe[1] = -1;
          if (pipe2(c->ab.pipe, O_NONBLOCK) != 0 || pipe2(c->ba.pipe, O_NONBLOCK) != 0 ||
              (connect(b, (struct sockaddr *)&target, sizeof target) != 0 && errno != EINPROGRESS)) {
            conn_close(c);
            continue;
          }
          struct epoll_event ce = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, a, &ce);
          epoll_ctl(ep, EPOLL_CTL_ADD, b, &ce);
        }
      } else {
        serve((struct conn *)evs[i].data.ptr);
      }
    }
    while (dead_list) {
      struct conn *c = dead_list;
      dead_list = c->next_dead;
      free(c);
    }
  }
}
