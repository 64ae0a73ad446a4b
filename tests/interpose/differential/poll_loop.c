/* poll and ppoll: a loop over pipes fed by a forked writer, hang-up, timeouts, POLLNVAL, and the
   kernel's argument errors. */
#include "common.h"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>

static int wa, wb;

static int writer(void* arg) {
  (void)arg;
  msleep(50);
  if (write(wb, "b1", 2) != 2) return 1;
  msleep(50);
  if (write(wa, "a1", 2) != 2) return 1;
  msleep(50);
  close(wa);
  msleep(50);
  close(wb);
  return 0;
}

int main(void) {
  int a[2], b[2];
  char buf[16];
  if (pipe(a) != 0 || pipe(b) != 0) fail("pipe");
  wa = a[1];
  wb = b[1];
  pid_t pid = fork_peer(writer, NULL);
  close(a[1]);
  close(b[1]);
  struct pollfd fds[3] = {{a[0], POLLIN, 0}, {-1, POLLIN, 0}, {b[0], POLLIN, 0}};
  int live = 2;
  for (int round = 0; live > 0 && round < 10; ++round) {
    int n = poll(fds, 3, 5000);
    printf("poll: %d revents %#x %#x %#x\n", n, fds[0].revents, fds[1].revents, fds[2].revents);
    for (int i = 0; i < 3; ++i) {
      if (!fds[i].revents) continue;
      ssize_t r = read(fds[i].fd, buf, sizeof buf);
      printf("  fd%d read: %zd '%.*s'\n", i, r, (int)(r > 0 ? r : 0), buf);
      if (r == 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --live;
      }
    }
  }
  reap(pid);

  int p[2];
  if (pipe(p) != 0) fail("pipe");
  struct pollfd one = {p[0], POLLIN, 0x7f};
  SHOW(poll(&one, 1, 30));
  printf("revents after timeout: %#x\n", one.revents);
  struct pollfd w = {p[1], POLLOUT | POLLIN, 0};
  SHOW(poll(&w, 1, 1000));
  printf("write end revents: %#x\n", w.revents);
  struct pollfd none = {p[0], 0, 0};
  SHOW(close(p[1]));
  SHOW(poll(&none, 1, 1000));
  printf("events 0 after hangup: %#x\n", none.revents);
  SHOW(close(p[0]));
  struct pollfd bad[2] = {{p[0], POLLIN, 0}, {12345, POLLOUT, 0}};
  SHOW(poll(bad, 2, 1000));
  printf("nval: %#x %#x\n", bad[0].revents, bad[1].revents);

  volatile struct pollfd* nul = NULL;
  SHOW(poll((struct pollfd*)nul, 1, 1000));
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  SHOW(poll(&one, (nfds_t)rl.rlim_cur + 1, 1000));
  SHOW(poll(NULL, 0, 20));

  if (pipe(p) != 0) fail("pipe");
  struct timespec ts = {0, 20000000};
  struct pollfd pp = {p[0], POLLIN, 0};
  SHOW(ppoll(&pp, 1, &ts, NULL));
  printf("timespec kept: %ld.%09ld\n", (long)ts.tv_sec, ts.tv_nsec);
  struct timespec badts = {0, 1000000000};
  SHOW(ppoll(&pp, 1, &badts, NULL));
  badts.tv_sec = -1;
  badts.tv_nsec = 0;
  SHOW(ppoll(&pp, 1, &badts, NULL));
  sigset_t mask;
  sigemptyset(&mask);
  SHOW(write(p[1], "m", 1));
  SHOW(ppoll(&pp, 1, NULL, &mask));
  printf("ppoll revents: %#x\n", pp.revents);
  return 0;
}
