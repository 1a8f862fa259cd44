// Experiment, not product code (issue 13; docs/benchmarks.md, "SOCKS5's greeting answered by the relay,
// measured first"): what a SOCKS5 customer's time to first byte would be if the relay answered the
// greeting itself instead of forwarding every byte of the handshake to the device.
//
// Runs in the relay's namespace; an nftables redirect sends one SOCKS5 connection's public port to it.
// Per customer (a thread each; this measures latency, not load):
//   1. accept; a socket to the device's listener of that connection is opened at once, with
//      IP_TRANSPARENT and bound to the customer's own address and port, so the device sees the
//      customer exactly as through the DNAT (its allow-list, caps and UDP association unchanged); the
//      device's answers reach this socket by a mark on `socket transparent` and a local route (set up
//      by relay-socks5-proto.ts);
//   2. the customer's greeting: if it offers username/password, `05 02` is answered here (the device's
//      TCP handshake runs meanwhile); else the greeting is passed on as it came, and the rest too;
//   3. the customer's credentials go to the device behind a greeting of our own (`05 01 02`), in one
//      segment; the device answers `05 02` (dropped here) and its verdict `01 XX`, which goes to the
//      customer: the device still decides, the relay only saved the greeting's round trip and the
//      TCP handshake's;
//   4. then the bytes are relayed both ways (read/write, half-closes passed on).
// usage: relay-socks5-proto LISTEN_PORT DEVICE_IP DEVICE_PORT [pass]
//   pass: every greeting is passed on as it came (the termination and the transparent socket alone).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in device;
// `pass`: terminate and relay only (the greeting is not answered here): what the termination alone costs.
static int pass_only;

struct conn {
  int cfd;
  struct sockaddr_in peer;
};

static int read_some(int fd, unsigned char *buf, size_t *have, size_t cap) {
  ssize_t n = read(fd, buf + *have, cap - *have);
  if (n <= 0) return -1;
  *have += (size_t)n;
  return 0;
}

static int write_all(int fd, const unsigned char *b, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, b, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    b += w, n -= (size_t)w;
  }
  return 0;
}

// Both ways until both FINs passed or a socket failed.
static void relay(int a, int b) {
  unsigned char buf[65536];
  int open_ab = 1, open_ba = 1;
  while (open_ab || open_ba) {
    struct pollfd p[2] = {{a, open_ab ? POLLIN : 0, 0}, {b, open_ba ? POLLIN : 0, 0}};
    if (poll(p, 2, 30000) <= 0) return;
    for (int k = 0; k < 2; k++) {
      int *open = k == 0 ? &open_ab : &open_ba;
      int src = k == 0 ? a : b, dst = k == 0 ? b : a;
      if (!*open || !(p[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(src, buf, sizeof buf);
      if (n < 0) return;
      if (n == 0) {
        shutdown(dst, SHUT_WR);
        *open = 0;
        continue;
      }
      if (write_all(dst, buf, (size_t)n) < 0) return;
    }
  }
}

// The device socket's connect, started before the greeting was read: finished (or failed) here.
static int connect_wait(int fd) {
  struct pollfd p = {fd, POLLOUT, 0};
  int err = 0;
  socklen_t el = sizeof err;
  if (poll(&p, 1, 10000) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) return -1;
  return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
}

static void *serve(void *arg) {
  struct conn *c = arg;
  int cfd = c->cfd, dfd = -1, one = 1;
  unsigned char in[1024], out[1030], ans[4];
  size_t have = 0, got = 0, glen;
  int userpass = 0;
  struct timeval tv = {10, 0};
  setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  // 1. The device socket, as the customer, connecting now: its TCP handshake runs during the greeting.
  dfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (dfd < 0 || setsockopt(dfd, SOL_IP, IP_TRANSPARENT, &one, sizeof one) != 0 ||
      setsockopt(dfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(dfd, (struct sockaddr *)&c->peer, sizeof c->peer) != 0) {
    perror("device socket");
    goto done;
  }
  setsockopt(dfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(dfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(dfd, (struct sockaddr *)&device, sizeof device) != 0 && errno != EINPROGRESS) goto done;
  // 2. The greeting.
  while (have < 2 || have < (size_t)2 + in[1])
    if (read_some(cfd, in, &have, sizeof in) < 0) goto done;
  glen = (size_t)2 + in[1];
  for (size_t k = 2; k < glen; k++) userpass |= in[k] == 2;
  if (pass_only || in[0] != 5 || !userpass) {
    // Not ours to answer: the device gets the bytes as they came.
    if (connect_wait(dfd) < 0 || write_all(dfd, in, have) < 0) goto done;
    relay(cfd, dfd);
    goto done;
  }
  if (write_all(cfd, (const unsigned char *)"\x05\x02", 2) < 0) goto done;
  // 3. The credentials: 01 ULEN UNAME PLEN PASSWD (whatever follows them rides along).
  memmove(in, in + glen, have - glen);
  have -= glen;
  while (have < 2 || have < (size_t)3 + in[1] || have < (size_t)3 + in[1] + in[2 + in[1]])
    if (read_some(cfd, in, &have, sizeof in) < 0) goto done;
  out[0] = 5, out[1] = 1, out[2] = 2;
  memcpy(out + 3, in, have);
  if (connect_wait(dfd) < 0 || write_all(dfd, out, 3 + have) < 0) goto done;
  // The device's `05 02`, then its verdict `01 XX` for the customer.
  while (got < 4)
    if (read_some(dfd, ans, &got, 4) < 0) goto done;
  if (ans[0] != 5 || ans[1] != 2) goto done;
  if (write_all(cfd, ans + 2, 2) < 0 || ans[2] != 1 || ans[3] != 0) goto done;
  // 4. The request and everything after: relayed.
  relay(cfd, dfd);
done:
  if (dfd >= 0) close(dfd);
  close(cfd);
  free(c);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4 && !(argc == 5 && !strcmp(argv[4], "pass"))) {
    fprintf(stderr, "usage: relay-socks5-proto LISTEN_PORT DEVICE_IP DEVICE_PORT [pass]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  pass_only = argc == 5;
  device.sin_family = AF_INET;
  device.sin_port = htons((uint16_t)atoi(argv[3]));
  if (inet_pton(AF_INET, argv[2], &device.sin_addr) != 1) return 2;
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 511) != 0) {
    perror("listen");
    return 1;
  }
  printf("listening\n");
  fflush(stdout);
  for (;;) {
    struct conn *c = calloc(1, sizeof *c);
    socklen_t pl = sizeof c->peer;
    c->cfd = accept4(lfd, (struct sockaddr *)&c->peer, &pl, SOCK_CLOEXEC);
    if (c->cfd < 0) {
      free(c);
      continue;
    }
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, serve, c) != 0) {
      close(c->cfd);
      free(c);
    }
  }
}
