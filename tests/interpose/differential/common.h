/* Shared by the differential programs: each prints what its calls returned (values, errno
   names, bytes, revents; never fds, pids, ports, addresses or times), so that a run with
   LD_PRELOAD=libfern_interpose.so must print exactly what a run without it prints. Plain C,
   no fern. Only the main process and thread print. */
#ifndef FERN_DIFF_COMMON_H
#define FERN_DIFF_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* "label: 3" or "label: -1 EAGAIN". */
static inline void show(const char* label, long r) {
  int e = errno;
  if (r < 0)
    printf("%s: %ld %s\n", label, r, strerrorname_np(e));
  else
    printf("%s: %ld\n", label, r);
  errno = e;
}
#define SHOW(call) show(#call, (long)(call))

/* For calls that return an error number (clock_nanosleep). */
static inline void show_err(const char* label, int r) {
  printf("%s: %s\n", label, r ? strerrorname_np(r) : "0");
}
#define SHOW_ERR(call) show_err(#call, (call))

static inline void fail(const char* what) {
  printf("FATAL %s: %s\n", what, strerrorname_np(errno));
  fflush(stdout);
  exit(2);
}

/* Forks a child that runs fn(arg) and exits with its result; stdout is flushed first so the
   child cannot repeat buffered output. */
static inline pid_t fork_peer(int (*fn)(void*), void* arg) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) fail("fork");
  if (pid == 0) _exit(fn(arg));
  return pid;
}

static inline void reap(pid_t pid) {
  int st = 0;
  if (waitpid(pid, &st, 0) != pid) fail("waitpid");
  printf("peer exit: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

static inline void msleep(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

#endif
