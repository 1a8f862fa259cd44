// host-probe: what one system call and one wake-up of a sleeping process cost on this host right now.
// The data-plane bench prints both beside its CPU probe. A request through a userspace tunnel is a
// chain of them (on this project's lab ~40 system calls in the agent and ~10 wake-ups across the
// customer, the relay, the device and the target per short request), so these two figures, more than
// the CPU probe, tell why one machine's added time to first byte reads 0.6 ms and another's 1.1 ms:
// on a VM with page-table isolation a system call costs ~1 µs (~0.1 µs on recent bare metal), and
// waking a process on the other vCPU goes through the hypervisor.
//
//   host-probe [ROUNDS]
//     syscall_ns      mean of 1,000,000 getppid() system calls
//     wake_rtt_us_*   a byte sent to a second process and back over a socketpair, both blocked in read()
//                     between rounds (one round every millisecond, so the cores go idle in between):
//                     p50 and p90 of ROUNDS (default 1000) round trips, i.e. two wake-ups each
//
// Prints one JSON line. Bounded: ROUNDS at most 100,000; the child ends when the parent closes its end.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char** argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 1000;
  if (rounds < 10 || rounds > 100000) {
    fprintf(stderr, "host-probe: ROUNDS must be 10..100000\n");
    return 2;
  }

  const int calls = 1000000;
  const double s0 = now_ns();
  for (int i = 0; i < calls; i++) syscall(SYS_getppid);
  const double syscall_ns = (now_ns() - s0) / calls;

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
    perror("host-probe: socketpair");
    return 1;
  }
  const pid_t child = fork();
  if (child < 0) {
    perror("host-probe: fork");
    return 1;
  }
  if (child == 0) {
    close(sv[0]);
    char c;
    while (read(sv[1], &c, 1) == 1)
      if (write(sv[1], &c, 1) != 1) break;
    _exit(0);
  }
  close(sv[1]);
  double* rtt = malloc(sizeof(double) * (size_t)rounds);
  if (rtt == NULL) return 1;
  char c = 'x';
  int done = 0;
  for (; done < rounds; done++) {
    usleep(1000);
    const double t0 = now_ns();
    if (write(sv[0], &c, 1) != 1 || read(sv[0], &c, 1) != 1) break;
    rtt[done] = (now_ns() - t0) / 1e3;
  }
  close(sv[0]);
  waitpid(child, NULL, 0);
  if (done < 10) {
    fprintf(stderr, "host-probe: the second process stopped answering\n");
    return 1;
  }
  qsort(rtt, (size_t)done, sizeof(double), cmp);
  printf("{\"syscall_ns\":%.0f,\"wake_rtt_us_p50\":%.1f,\"wake_rtt_us_p90\":%.1f,\"rounds\":%d}\n", syscall_ns,
         rtt[done / 2], rtt[done * 9 / 10], done);
  free(rtt);
  return 0;
}
