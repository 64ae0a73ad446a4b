/* A program's own epoll loop: level, edge and one-shot registrations over pipes fed by a forked
   writer, hang-ups, a nested epoll fd, epoll_pwait/epoll_pwait2, and the kernel's errors. */
#include "common.h"

#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>

static int wa, wb;

static int writer(void* arg) {
  (void)arg;
  msleep(50);
  if (write(wa, "a1", 2) != 2) return 1;
  msleep(50);
  if (write(wb, "b1", 2) != 2) return 1;
  msleep(50);
  if (write(wb, "b2", 2) != 2) return 1;
  msleep(50);
  close(wa);
  msleep(50); /* apart, so both runs see the two hang-ups in separate epoll_waits */
  close(wb);
  return 0;
}

static int writer_once(void* arg) {
  (void)arg;
  msleep(30);
  return write(wb, "n", 1) == 1 ? 0 : 1;
}

int main(void) {
  int a[2], b[2];
  char buf[16];
  if (pipe(a) != 0 || pipe(b) != 0) fail("pipe");
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) fail("epoll_create1");
  struct epoll_event ev = {0};
  ev.events = EPOLLIN;
  ev.data.u64 = 0xa;
  SHOW(epoll_ctl(ep, EPOLL_CTL_ADD, a[0], &ev));
  SHOW(epoll_ctl(ep, EPOLL_CTL_ADD, a[0], &ev));
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = 0xb;
  SHOW(epoll_ctl(ep, EPOLL_CTL_ADD, b[0], &ev));
  SHOW(epoll_ctl(ep, EPOLL_CTL_MOD, a[1], &ev));
  wa = a[1];
  wb = b[1];
  pid_t pid = fork_peer(writer, NULL);
  close(a[1]);
  close(b[1]);
  int hups = 0;
  for (int round = 0; hups < 2 && round < 10; ++round) {
    struct epoll_event evs[4];
    int n = epoll_wait(ep, evs, 4, 5000);
    printf("epoll_wait: %d\n", n);
    if (n <= 0) break;
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.u64 == 0xa ? a[0] : b[0];
      printf("  tag %#llx events %#x\n", (unsigned long long)evs[i].data.u64, evs[i].events);
      ssize_t r = read(fd, buf, sizeof buf);
      printf("  read: %zd '%.*s'\n", r, (int)(r > 0 ? r : 0), buf);
      if (r == 0) {
        SHOW(epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL));
        ++hups;
      }
    }
  }
  reap(pid);

  /* One-shot: reported once until re-armed. */
  int p[2];
  if (pipe(p) != 0) fail("pipe");
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.u64 = 7;
  SHOW(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
  SHOW(write(p[1], "x", 1));
  struct epoll_event out;
  SHOW(epoll_wait(ep, &out, 1, 1000));
  SHOW(epoll_wait(ep, &out, 1, 30));
  SHOW(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
  SHOW(epoll_wait(ep, &out, 1, 1000));

  SHOW(read(p[0], buf, 1));
  SHOW(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));

  /* An epoll fd inside another: readable while its own ready list is not empty. */
  int outer = epoll_create1(0);
  ev.events = EPOLLIN;
  ev.data.u64 = 99;
  SHOW(epoll_ctl(outer, EPOLL_CTL_ADD, ep, &ev));
  ev.data.u64 = 8;
  SHOW(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
  SHOW(epoll_wait(outer, &out, 1, 30));
  wb = p[1];
  pid = fork_peer(writer_once, NULL);
  SHOW(epoll_wait(outer, &out, 1, 5000));
  printf("nested tag: %llu\n", (unsigned long long)out.data.u64);
  SHOW(epoll_wait(ep, &out, 1, 1000));
  printf("inner tag: %llu\n", (unsigned long long)out.data.u64);
  SHOW(read(p[0], buf, sizeof buf));
  SHOW(epoll_wait(outer, &out, 1, 30));
  reap(pid);

  sigset_t mask;
  sigemptyset(&mask);
  SHOW(epoll_pwait(ep, &out, 1, 20, &mask));
  struct timespec ts = {0, 20000000};
  SHOW(epoll_pwait2(ep, &out, 1, &ts, NULL));
  ts.tv_nsec = 1000000000;
  SHOW(epoll_pwait2(ep, &out, 1, &ts, NULL));

  SHOW(epoll_wait(ep, &out, 0, 100));
  SHOW(epoll_wait(ep, &out, -1, 100));
  SHOW(epoll_wait(p[0], &out, 1, 100));
  SHOW(epoll_wait(-1, &out, 1, 100));
  SHOW(epoll_wait(ep, (struct epoll_event*)8, 1, 100));
  FILE* f = tmpfile();
  ev.events = EPOLLIN;
  SHOW(epoll_ctl(ep, EPOLL_CTL_ADD, fileno(f), &ev));
  SHOW(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev));
  SHOW(epoll_create1(12345));
  SHOW(close(outer));
  SHOW(close(ep));
  SHOW(epoll_wait(ep, &out, 1, 100));
  return 0;
}
