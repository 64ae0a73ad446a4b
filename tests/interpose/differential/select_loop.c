/* select and pselect: readiness over pipes fed by a forked writer, the sets and timeval the
   kernel leaves behind, and its argument errors. */
#include "common.h"

#include <signal.h>
#include <sys/select.h>

static int wfd;

static int writer(void* arg) {
  (void)arg;
  msleep(50);
  if (write(wfd, "s1", 2) != 2) return 1;
  msleep(50);
  close(wfd);
  return 0;
}

static void show_set(const char* name, fd_set* s, int a, int b) {
  printf("%s: %d %d\n", name, FD_ISSET(a, s) != 0, FD_ISSET(b, s) != 0);
}

int main(void) {
  int p[2], q[2];
  char buf[16];
  if (pipe(p) != 0 || pipe(q) != 0) fail("pipe");
  wfd = p[1];
  pid_t pid = fork_peer(writer, NULL);
  close(p[1]);
  int nfds = (p[0] > q[0] ? p[0] : q[0]) + 1;
  for (int round = 0; round < 5; ++round) {
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    FD_SET(q[0], &r);
    struct timeval tv = {5, 0};
    int n = select(nfds, &r, NULL, NULL, &tv);
    printf("select: %d\n", n);
    show_set("  read", &r, p[0], q[0]);
    if (n <= 0) break;
    ssize_t got = read(p[0], buf, sizeof buf);
    printf("  read: %zd '%.*s'\n", got, (int)(got > 0 ? got : 0), buf);
    if (got == 0) break;
  }
  reap(pid);

  fd_set r, w, e;
  FD_ZERO(&r);
  FD_ZERO(&w);
  FD_ZERO(&e);
  FD_SET(q[0], &r);
  FD_SET(q[1], &w);
  FD_SET(q[0], &e);
  int qn = q[1] + 1;
  struct timeval tv = {1, 0};
  SHOW(select(qn, &r, &w, &e, &tv));
  show_set("r", &r, q[0], q[1]);
  show_set("w", &w, q[0], q[1]);
  show_set("e", &e, q[0], q[1]);

  FD_ZERO(&r);
  FD_SET(q[0], &r);
  tv.tv_sec = 0;
  tv.tv_usec = 30000;
  SHOW(select(q[0] + 1, &r, NULL, NULL, &tv));
  show_set("after timeout", &r, q[0], q[1]);
  printf("timeval left: %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);

  SHOW(select(0, NULL, NULL, NULL, &tv));
  tv.tv_sec = 0;
  tv.tv_usec = 20000;
  SHOW(select(0, NULL, NULL, NULL, &tv));
  tv.tv_sec = -1;
  SHOW(select(1, NULL, NULL, NULL, &tv));
  tv.tv_sec = 1;
  SHOW(select(-1, NULL, NULL, NULL, &tv));
  int dead = dup(q[0]);
  close(dead);
  FD_ZERO(&r);
  FD_SET(dead, &r);
  FD_SET(q[0], &r);
  tv.tv_sec = 1;
  tv.tv_usec = 0;
  SHOW(select((dead > q[0] ? dead : q[0]) + 1, &r, NULL, NULL, &tv));
  show_set("untouched on EBADF", &r, dead, q[0]);
  SHOW(select(q[0] + 1, (fd_set*)8, NULL, NULL, &tv));

  FD_ZERO(&r);
  FD_SET(q[0], &r);
  struct timespec ts = {0, 20000000};
  sigset_t mask;
  sigemptyset(&mask);
  SHOW(pselect(q[0] + 1, &r, NULL, NULL, &ts, &mask));
  printf("timespec kept: %ld.%09ld\n", (long)ts.tv_sec, ts.tv_nsec);
  SHOW(write(q[1], "x", 1));
  FD_SET(q[0], &r);
  SHOW(pselect(q[0] + 1, &r, NULL, NULL, NULL, NULL));
  show_set("pselect", &r, q[0], q[1]);
  ts.tv_nsec = -1;
  SHOW(pselect(q[0] + 1, &r, NULL, NULL, &ts, NULL));
  return 0;
}
