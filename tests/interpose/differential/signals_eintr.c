/* Signal handlers and EINTR for the calls the kernel never restarts (sleeps, poll, select, epoll,
   pause, sigsuspend), with and without SA_RESTART, masks of ppoll/pselect/epoll_pwait, and what
   sigaction/signal/sysv_signal/siginterrupt report. SIGALRM comes from setitimer. */
#include "common.h"

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/time.h>
#include <time.h>

static volatile sig_atomic_t hits;
static void on_alarm(int sig) {
  (void)sig;
  ++hits;
}
static void on_usr1(int sig) {
  (void)sig;
  ++hits;
}

static void arm(int ms) {
  struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
  if (setitimer(ITIMER_REAL, &it, NULL) != 0) fail("setitimer");
}

static void install(int sig, void (*fn)(int), int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, NULL) != 0) fail("sigaction");
}

static void report(const char* what) {
  struct sigaction q;
  sigaction(SIGALRM, NULL, &q);
  printf("%s: handler ours %d, SIG_DFL %d, SA_RESTART %d, SA_SIGINFO %d, SA_RESETHAND %d\n", what,
         q.sa_handler == on_alarm, q.sa_handler == SIG_DFL, (q.sa_flags & SA_RESTART) != 0,
         (q.sa_flags & SA_SIGINFO) != 0, (q.sa_flags & SA_RESETHAND) != 0);
}

static pid_t parent;
static int send_usr1(void* arg) {
  (void)arg;
  msleep(30);
  return kill(parent, SIGUSR1) == 0 ? 0 : 1;
}

static void calls(const char* round) {
  printf("-- %s\n", round);
  int p[2];
  if (pipe(p) != 0) fail("pipe");
  struct timespec req = {5, 0}, rem = {0, 0};
  arm(30);
  SHOW(nanosleep(&req, &rem));
  printf("rem >= 4: %d\n", rem.tv_sec >= 4);
  arm(30);
  unsigned left = sleep(5);
  printf("sleep left: %u errno %s\n", left, strerrorname_np(errno));
  arm(30);
  SHOW(usleep(5000000));
  arm(30);
  SHOW_ERR(clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem));
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 5;
  arm(30);
  SHOW_ERR(clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &until, NULL));
  struct pollfd pfd = {p[0], POLLIN, 0};
  arm(30);
  SHOW(poll(&pfd, 1, 5000));
  arm(30);
  SHOW(poll(NULL, 0, 5000));
  arm(30);
  SHOW(poll(NULL, 0, -1));
  fd_set r;
  FD_ZERO(&r);
  FD_SET(p[0], &r);
  struct timeval tv = {5, 0};
  arm(30);
  SHOW(select(p[0] + 1, &r, NULL, NULL, &tv));
  printf("set untouched: %d\n", FD_ISSET(p[0], &r) != 0);
  int ep = epoll_create1(0);
  struct epoll_event ev = {EPOLLIN, {.u64 = 1}};
  epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
  arm(30);
  SHOW(epoll_wait(ep, &ev, 1, 5000));
  arm(30);
  SHOW(pause());
  parent = getpid();
  pid_t pid = fork_peer(send_usr1, NULL);
  SHOW(poll(&pfd, 1, 5000));
  reap(pid);
  close(ep);
  close(p[0]);
  close(p[1]);
}

int main(void) {
  install(SIGALRM, on_alarm, SA_RESTART);
  install(SIGUSR1, on_usr1, SA_RESTART);
  report("sigaction SA_RESTART");
  calls("SA_RESTART");
  install(SIGALRM, on_alarm, 0);
  install(SIGUSR1, on_usr1, 0);
  calls("no SA_RESTART");
  printf("handler runs: %d\n", (int)hits);

  /* Masks: SIGALRM blocked in the thread, let in only by the call's own mask. */
  int p[2];
  if (pipe(p) != 0) fail("pipe");
  sigset_t alrm, none;
  sigemptyset(&alrm);
  sigaddset(&alrm, SIGALRM);
  sigemptyset(&none);
  sigprocmask(SIG_BLOCK, &alrm, NULL);
  hits = 0;
  struct pollfd pfd = {p[0], POLLIN, 0};
  struct timespec five = {5, 0}, short_wait = {0, 80000000};
  arm(30);
  SHOW(ppoll(&pfd, 1, &short_wait, NULL));
  printf("blocked, hits: %d\n", (int)hits);
  SHOW(ppoll(&pfd, 1, &five, &none));
  printf("pending delivered, hits: %d\n", (int)hits);
  arm(30);
  SHOW(ppoll(&pfd, 1, &five, &none));
  fd_set r;
  FD_ZERO(&r);
  FD_SET(p[0], &r);
  arm(30);
  SHOW(pselect(p[0] + 1, &r, NULL, NULL, &five, &none));
  int ep = epoll_create1(0);
  struct epoll_event ev;
  arm(30);
  SHOW(epoll_pwait(ep, &ev, 1, 5000, &none));
  arm(30);
  SHOW(epoll_pwait2(ep, &ev, 1, &five, &none));
  arm(30);
  SHOW(sigsuspend(&none));
  printf("hits: %d\n", (int)hits);
  raise(SIGALRM);
  printf("raised while blocked, hits: %d\n", (int)hits);
  SHOW(sigsuspend(&none));
  printf("hits: %d\n", (int)hits);
  sigprocmask(SIG_UNBLOCK, &alrm, NULL);
  /* The call's mask blocks what the thread lets in: delivered when the call returns. */
  arm(20);
  SHOW(ppoll(&pfd, 1, &short_wait, &alrm));
  printf("after a blocking mask, hits: %d\n", (int)hits);
  sigset_t cur;
  sigprocmask(SIG_SETMASK, NULL, &cur);
  printf("SIGALRM blocked now: %d\n", sigismember(&cur, SIGALRM));

  /* A signal handled before the call does not interrupt it; an ignored one never does. */
  raise(SIGALRM);
  struct timespec req = {0, 30000000};
  SHOW(nanosleep(&req, NULL));
  signal(SIGALRM, SIG_IGN);
  arm(10);
  SHOW(nanosleep(&req, NULL));
  arm(10);
  SHOW(poll(&pfd, 1, 40));

  /* What the program is told about its handlers. */
  printf("signal old is SIG_IGN: %d\n", signal(SIGALRM, on_alarm) == SIG_IGN);
  report("signal()");
  SHOW(siginterrupt(SIGALRM, 1));
  report("siginterrupt 1");
  printf("signal old ours: %d\n", signal(SIGALRM, on_alarm) == on_alarm);
  report("signal() after siginterrupt");
  SHOW(siginterrupt(SIGALRM, 0));
  report("siginterrupt 0");
  printf("sysv_signal old ours: %d\n", sysv_signal(SIGALRM, on_alarm) == on_alarm);
  report("sysv_signal");
  arm(20);
  SHOW(pause());
  report("after a one-shot delivery");
  install(SIGALRM, on_alarm, SA_RESETHAND | SA_NODEFER);
  report("SA_RESETHAND");
  struct sigaction q;
  SHOW(sigaction(SIGALRM, NULL, &q));
  printf("SA_NODEFER %d\n", (q.sa_flags & SA_NODEFER) != 0);
  install(SIGALRM, on_alarm, SA_RESTART);
  SHOW(sigaction(0, NULL, &q));
  SHOW(sigaction(SIGKILL, &q, NULL));
  printf("signal(33): %d %s\n", signal(33, on_alarm) == SIG_ERR, strerrorname_np(errno));
  printf("total hits: %d\n", (int)hits);
  return 0;
}
