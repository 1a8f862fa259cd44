// A probe, run by hand (as root: it loads a BPF program), not part of `npm run bench:dataplane`: how much of a
// userspace relay's cost per round trip a sockmap redirect would take off. Issue 13, SOCKS5's added time to
// first byte: after the relay's SOCKS5 front has answered the handshake, each customer turn crosses the
// relay's main thread (a wake-up and two splice() calls each way), where the DNAT'ed paths cross in the
// kernel. A BPF_PROG_TYPE_SK_SKB verdict program on a SOCKHASH can move each socket's bytes to its peer's
// send side without waking anyone in userspace; this measures whether that is worth building.
//
// One process on 127.0.0.1 only: an echo server thread; a client that writes MSG bytes and reads them back,
// n times (20,000 by default), one at a time; and between them, by the mode:
//   direct   nothing (client -> echo);
//   splice   an accepted socket and a dialled one relayed by a thread: epoll, splice() through a pipe;
//   sockmap  the same two sockets in a SOCKHASH keyed by socket cookie, with a HASH of cookie -> peer
//            cookie, and the verdict program below redirecting every segment to the peer's egress.
// Prints the round trip's p10 / p50 / p90 in µs. Build and run:
//   gcc -O2 -pthread -o /tmp/sockmap-probe packages/testkit/bench/sockmap-probe.c
//   for m in direct splice sockmap; do /tmp/sockmap-probe $m; done
// Figures and what they decided: docs/benchmarks.md, "SOCKS5's time to first byte, turn by turn".
#define _GNU_SOURCE
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <errno.h>
#include <time.h>
static long bpf(int cmd, union bpf_attr *a) { return syscall(SYS_bpf, cmd, a, sizeof *a); }
static double now_us(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static int listen_on(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
  if (bind(s, (void *)&a, sizeof a) || listen(s, 16)) { perror("listen"); exit(1); }
  return s;
}
static int dial(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
  if (connect(s, (void *)&a, sizeof a)) { perror("connect"); exit(1); }
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}
static int MSG = 64;
static void *echo(void *arg) {
  int l = *(int *)arg, c = accept(l, 0, 0), one = 1; char b[4096];
  setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  for (;;) { ssize_t n = read(c, b, sizeof b); if (n <= 0) break; if (write(c, b, n) != n) break; }
  close(c); return 0;
}
static int A, B;
static void *splicer(void *arg) {
  (void)arg;
  int ep = epoll_create1(0), p1[2], p2[2];
  if (pipe(p1) || pipe(p2)) { perror("pipe"); exit(1); }
  struct epoll_event e = {.events = EPOLLIN, .data.fd = A}; epoll_ctl(ep, EPOLL_CTL_ADD, A, &e);
  e.data.fd = B; epoll_ctl(ep, EPOLL_CTL_ADD, B, &e);
  for (;;) {
    struct epoll_event ev[2]; int n = epoll_wait(ep, ev, 2, -1);
    for (int i = 0; i < n; i++) {
      int s = ev[i].data.fd, d = s == A ? B : A, *p = s == A ? p1 : p2;
      ssize_t k = splice(s, 0, p[1], 0, 65536, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
      if (k <= 0) return 0;
      while (k > 0) { ssize_t w = splice(p[0], 0, d, 0, k, SPLICE_F_MOVE); if (w <= 0) return 0; k -= w; }
    }
  }
}
#define INS(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
// The verdict program: peer = peers[cookie(this socket)]; none (not set up yet) -> SK_PASS (the bytes stay
// here for a reader), else bpf_sk_redirect_hash(skb, sockets, &peer, 0): to the peer's egress.
static int sockmap_setup(void) {
  union bpf_attr a; memset(&a, 0, sizeof a);
  a.map_type = BPF_MAP_TYPE_SOCKHASH; a.key_size = 8; a.value_size = 8; a.max_entries = 64;
  int sh = bpf(BPF_MAP_CREATE, &a); if (sh < 0) { perror("sockhash"); exit(1); }
  memset(&a, 0, sizeof a); a.map_type = BPF_MAP_TYPE_HASH; a.key_size = 8; a.value_size = 8; a.max_entries = 64;
  int pm = bpf(BPF_MAP_CREATE, &a); if (pm < 0) { perror("hash"); exit(1); }
  struct bpf_insn p[] = {
    INS(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),
    INS(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_socket_cookie),
    INS(BPF_STX | BPF_MEM | BPF_DW, 10, 0, -8, 0),
    INS(BPF_LD | BPF_IMM | BPF_DW, 1, BPF_PSEUDO_MAP_FD, 0, pm), INS(0, 0, 0, 0, 0),
    INS(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
    INS(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -8),
    INS(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
    INS(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 10, 0),
    INS(BPF_LDX | BPF_MEM | BPF_DW, 1, 0, 0, 0),
    INS(BPF_STX | BPF_MEM | BPF_DW, 10, 1, -16, 0),
    INS(BPF_ALU64 | BPF_MOV | BPF_X, 1, 6, 0, 0),
    INS(BPF_LD | BPF_IMM | BPF_DW, 2, BPF_PSEUDO_MAP_FD, 0, sh), INS(0, 0, 0, 0, 0),
    INS(BPF_ALU64 | BPF_MOV | BPF_X, 3, 10, 0, 0),
    INS(BPF_ALU64 | BPF_ADD | BPF_K, 3, 0, 0, -16),
    INS(BPF_ALU64 | BPF_MOV | BPF_K, 4, 0, 0, 0),
    INS(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_sk_redirect_hash),
    INS(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    INS(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, SK_PASS),
    INS(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  };
  static char log[65536];
  memset(&a, 0, sizeof a); a.prog_type = BPF_PROG_TYPE_SK_SKB; a.insns = (unsigned long)p; a.insn_cnt = sizeof p / sizeof p[0];
  a.license = (unsigned long)"GPL"; a.log_buf = (unsigned long)log; a.log_size = sizeof log; a.log_level = 1;
  int pf = bpf(BPF_PROG_LOAD, &a); if (pf < 0) { perror("prog load"); fprintf(stderr, "%s\n", log); exit(1); }
  memset(&a, 0, sizeof a); a.target_fd = sh; a.attach_bpf_fd = pf; a.attach_type = BPF_SK_SKB_VERDICT;
  if (bpf(BPF_PROG_ATTACH, &a)) { perror("attach"); exit(1); }
  unsigned long long ca, cb; socklen_t l = 8;
  getsockopt(A, SOL_SOCKET, SO_COOKIE, &ca, &l); getsockopt(B, SOL_SOCKET, SO_COOKIE, &cb, &l);
  unsigned long long fa = A, fb = B;
  memset(&a, 0, sizeof a); a.map_fd = sh; a.key = (unsigned long)&ca; a.value = (unsigned long)&fa;
  if (bpf(BPF_MAP_UPDATE_ELEM, &a)) { perror("sh A"); exit(1); }
  a.key = (unsigned long)&cb; a.value = (unsigned long)&fb; if (bpf(BPF_MAP_UPDATE_ELEM, &a)) { perror("sh B"); exit(1); }
  a.map_fd = pm; a.key = (unsigned long)&ca; a.value = (unsigned long)&cb; if (bpf(BPF_MAP_UPDATE_ELEM, &a)) { perror("pm A"); exit(1); }
  a.key = (unsigned long)&cb; a.value = (unsigned long)&ca; if (bpf(BPF_MAP_UPDATE_ELEM, &a)) { perror("pm B"); exit(1); }
  // SO_RCVLOWAT calls the socket's data_ready (tcp_set_rcvlowat): bytes that came before the program was on
  // the socket go to the peer now instead of waiting for the next segment.
  int one = 1; setsockopt(A, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one); setsockopt(B, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
  return 0;
}
static int cmpd(const void *x, const void *y) { double a = *(double *)x, b = *(double *)y; return a < b ? -1 : a > b; }
int main(int argc, char **argv) {
  const char *mode = argv[1]; int n = argc > 2 ? atoi(argv[2]) : 20000; int base = 40000 + (getpid() % 1000) * 2;
  int ls = listen_on(base); pthread_t t; pthread_create(&t, 0, echo, &ls);
  int c;
  if (!strcmp(mode, "direct")) c = dial(base);
  else {
    int lp = listen_on(base + 1); c = dial(base + 1); A = accept(lp, 0, 0); B = dial(base);
    int one = 1; setsockopt(A, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!strcmp(mode, "splice")) { pthread_t s; pthread_create(&s, 0, splicer, 0); }
    else sockmap_setup();
  }
  char b[4096]; memset(b, 'x', sizeof b);
  if (n < 10) n = 10;
  double *rt = malloc(n * sizeof(double));
  for (int i = 0; i < n; i++) {
    double t0 = now_us();
    if (write(c, b, MSG) != MSG) { perror("w"); return 1; }
    int got = 0; while (got < MSG) { ssize_t k = read(c, b, MSG - got); if (k <= 0) { perror("r"); return 1; } got += k; }
    rt[i] = now_us() - t0;
  }
  qsort(rt, n, sizeof *rt, cmpd);
  printf("%-7s n=%d p10 %.1f p50 %.1f p90 %.1f us\n", mode, n, rt[n / 10], rt[n / 2], rt[9 * n / 10]);
  return 0;
}
