// A fixed one-way delay for IP packets, for benches that need a far target (this kernel has no
// sch_netem): it opens a TUN interface, and every packet the namespace routes into it comes back out of
// the same interface DELAY_MS later, as if received there, to be routed on (link-delay.ts targetDelay
// routes the lab's web servers' packets towards the carriers through it, and what comes back out by the
// main table). One queue in arrival order is also in order of departure (one delay for all); it holds
// at most QUEUE_MAX packets (more are dropped, as a full queue would). Single-threaded; ends at SIGTERM,
// printing how many packets it dropped (link-delay.ts warns when any were).
// usage: tun-delay IFNAME DELAY_MS
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_MAX 16384
#define PACKET_MAX 65536

struct item {
  uint64_t due_us;
  size_t len;
  unsigned char *data;
};

static struct item queue[QUEUE_MAX];
static size_t head, count;
static volatile sig_atomic_t stopping;

static void on_term(int sig) {
  (void)sig;
  stopping = 1;
}

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: tun-delay IFNAME DELAY_MS\n");
    return 2;
  }
  const uint64_t delay_us = (uint64_t)(atof(argv[2]) * 1000.0);
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    perror("open /dev/net/tun");
    return 1;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", argv[1]);
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
    perror("TUNSETIFF");
    return 1;
  }
  for (size_t i = 0; i < QUEUE_MAX; i++) {
    queue[i].data = malloc(PACKET_MAX);
    if (queue[i].data == NULL) return 1;
  }
  // Without SA_RESTART: poll returns EINTR at SIGTERM and the loop ends.
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  printf("tun-delay %s: %s ms, listening\n", ifr.ifr_name, argv[2]);
  fflush(stdout);
  uint64_t dropped = 0;
  while (!stopping) {
    int timeout = -1;
    if (count > 0) {
      const uint64_t t = now_us();
      const uint64_t due = queue[head].due_us;
      timeout = due <= t ? 0 : (int)((due - t + 999) / 1000);
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout) < 0 && errno != EINTR) {
      perror("poll");
      return 1;
    }
    // Everything readable now joins the queue.
    for (;;) {
      if (count == QUEUE_MAX) {
        unsigned char sink[PACKET_MAX];
        if (read(fd, sink, sizeof sink) <= 0) break;
        dropped++;
        continue;
      }
      struct item *it = &queue[(head + count) % QUEUE_MAX];
      ssize_t n = read(fd, it->data, PACKET_MAX);
      if (n <= 0) break;
      it->len = (size_t)n;
      it->due_us = now_us() + delay_us;
      count++;
    }
    // Everything due goes back out of the interface (received there, routed on).
    const uint64_t t = now_us();
    while (count > 0 && queue[head].due_us <= t) {
      struct item *it = &queue[head];
      if (write(fd, it->data, it->len) < 0 && errno != EAGAIN) dropped++;
      head = (head + 1) % QUEUE_MAX;
      count--;
    }
  }
  printf("tun-delay: dropped %llu\n", (unsigned long long)dropped);
  fflush(stdout);
  return 0;
}
