// A fixed delay for a UDP flow, for benches that need a carrier's round trip (this kernel has no
// sch_netem): runs in a device's carrier-NAT namespace, where an nftables redirect sends the device's
// tunnel datagrams to it. Each datagram waits DELAY_MS, then goes on: from a client (the device) to
// UPSTREAM (the relay) from one socket per client, and the upstream's answers back to that client
// from the listening socket (so conntrack gives them the relay's address). Both directions share the
// delay, so one queue in arrival order is also in order of departure. Single-threaded, epoll; the
// queue holds at most QUEUE_MAX datagrams (more are dropped, as a full carrier queue would).
// usage: udp-delay LISTEN_PORT UPSTREAM_IP UPSTREAM_PORT DELAY_MS
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_MAX 65536
#define CLIENTS_MAX 64

struct item {
  uint64_t due_us;
  int fd;                  // socket to send from
  struct sockaddr_in to;   // unused (0 family) for a connected upstream socket
  size_t len;
  unsigned char *data;
};

struct client {
  struct sockaddr_in addr;
  int up;  // connected to the upstream
};

static struct item queue[QUEUE_MAX];
static size_t head, count;
static struct client clients[CLIENTS_MAX];
static int nclients;

static uint64_t now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

static void push(uint64_t due, int fd, const struct sockaddr_in *to, const unsigned char *b, size_t n) {
  if (count == QUEUE_MAX) return;
  struct item *it = &queue[(head + count) % QUEUE_MAX];
  it->data = malloc(n);
  if (!it->data) return;
  memcpy(it->data, b, n);
  it->due_us = due, it->fd = fd, it->len = n;
  if (to) it->to = *to;
  else memset(&it->to, 0, sizeof it->to);
  count++;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: udp-delay LISTEN_PORT UPSTREAM_IP UPSTREAM_PORT DELAY_MS\n");
    return 2;
  }
  const uint64_t delay = (uint64_t)atoi(argv[4]) * 1000u;
  struct sockaddr_in up = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3]))};
  if (inet_pton(AF_INET, argv[2], &up.sin_addr) != 1) return 2;
  int lfd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), big = 4 << 20;
  struct sockaddr_in la = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  if (bind(lfd, (struct sockaddr *)&la, sizeof la) != 0) {
    perror("bind");
    return 1;
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  printf("listening\n");
  fflush(stdout);
  static unsigned char buf[65536];
  for (;;) {
    int timeout = -1;
    if (count > 0) {
      const uint64_t now = now_us(), due = queue[head].due_us;
      timeout = due <= now ? 0 : (int)((due - now + 999) / 1000);
    }
    struct epoll_event evs[16];
    int n = epoll_wait(ep, evs, 16, timeout);
    if (n < 0 && errno != EINTR) return 1;
    for (int k = 0; k < n; k++) {
      const int fd = evs[k].data.fd;
      for (;;) {
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t got = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (got < 0) break;
        const uint64_t due = now_us() + delay;
        if (fd == lfd) {
          // From a client: to the upstream, from its own socket.
          int c = 0;
          while (c < nclients && (clients[c].addr.sin_addr.s_addr != from.sin_addr.s_addr ||
                                  clients[c].addr.sin_port != from.sin_port))
            c++;
          if (c == nclients) {
            if (nclients == CLIENTS_MAX) continue;
            int u = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (u < 0) continue;
            setsockopt(u, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
            if (connect(u, (struct sockaddr *)&up, sizeof up) != 0) {
              close(u);
              continue;
            }
            struct epoll_event uev = {.events = EPOLLIN, .data.fd = u};
            epoll_ctl(ep, EPOLL_CTL_ADD, u, &uev);
            clients[c].addr = from, clients[c].up = u, nclients++;
          }
          push(due, clients[c].up, NULL, buf, (size_t)got);
        } else {
          // From the upstream: back to the client of that socket, from the listening socket.
          for (int c = 0; c < nclients; c++)
            if (clients[c].up == fd) push(due, lfd, &clients[c].addr, buf, (size_t)got);
        }
      }
    }
    const uint64_t now = now_us();
    while (count > 0 && queue[head].due_us <= now) {
      struct item *it = &queue[head];
      if (it->to.sin_family) sendto(it->fd, it->data, it->len, 0, (struct sockaddr *)&it->to, sizeof it->to);
      else send(it->fd, it->data, it->len, 0);
      free(it->data);
      head = (head + 1) % QUEUE_MAX, count--;
    }
  }
}
