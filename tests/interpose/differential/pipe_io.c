/* Pipes: blocking and non-blocking reads and writes, a reader that waits for a forked writer,
   EOF, EPIPE, bad fds and buffers, readv/writev, pipe2 flags, dup. */
#include "common.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/uio.h>

static int rfd, wfd;

static int late_writer(void* arg) {
  (void)arg;
  msleep(30);
  if (write(wfd, "late", 4) != 4) return 1;
  msleep(30);
  return write(wfd, "later", 5) == 5 ? 0 : 1;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  int p[2];
  char buf[64];
  if (pipe(p) != 0) fail("pipe");
  rfd = p[0];
  wfd = p[1];
  SHOW(write(wfd, "hello", 5));
  ssize_t n = read(rfd, buf, sizeof buf);
  printf("read: %zd '%.*s'\n", n, (int)(n > 0 ? n : 0), buf);

  printf("O_NONBLOCK: %d\n", (fcntl(rfd, F_GETFL) & O_NONBLOCK) != 0);
  SHOW(fcntl(rfd, F_SETFL, O_NONBLOCK));
  printf("O_NONBLOCK: %d\n", (fcntl(rfd, F_GETFL) & O_NONBLOCK) != 0);
  SHOW(read(rfd, buf, sizeof buf));
  SHOW(fcntl(rfd, F_SETFL, 0));
  printf("O_NONBLOCK: %d\n", (fcntl(rfd, F_GETFL) & O_NONBLOCK) != 0);

  pid_t pid = fork_peer(late_writer, NULL);
  n = read(rfd, buf, sizeof buf);
  printf("blocking read: %zd '%.*s'\n", n, (int)(n > 0 ? n : 0), buf);
  n = read(rfd, buf, 2);
  printf("short read: %zd '%.*s'\n", n, (int)(n > 0 ? n : 0), buf);
  n = read(rfd, buf, sizeof buf);
  printf("rest: %zd '%.*s'\n", n, (int)(n > 0 ? n : 0), buf);
  reap(pid);

  SHOW(close(wfd));
  SHOW(read(rfd, buf, sizeof buf));
  SHOW(close(rfd));
  SHOW(read(rfd, buf, 1));
  SHOW(close(rfd));
  SHOW(read(-1, buf, 1));
  SHOW(write(9999, "x", 1));

  int q[2];
  if (pipe(q) != 0) fail("pipe");
  SHOW(write(q[1], "abc", 3));
  SHOW(read(q[0], (void*)8, 3));
  SHOW(read(q[0], buf, 0));
  struct iovec out[2] = {{"ab", 2}, {"cde", 3}};
  SHOW(writev(q[1], out, 2));
  char a[4] = {0}, b[8] = {0};
  struct iovec in[2] = {{a, 4}, {b, 8}};
  n = readv(q[0], in, 2);
  printf("readv: %zd '%.4s' '%s'\n", n, a, b);
  SHOW(readv(q[0], in, -1));
  SHOW(close(q[0]));
  SHOW(write(q[1], "x", 1));
  SHOW(close(q[1]));

  int s[2];
  SHOW(pipe2(s, O_NONBLOCK | O_CLOEXEC));
  printf("pipe2 O_NONBLOCK: %d FD_CLOEXEC: %d\n", (fcntl(s[0], F_GETFL) & O_NONBLOCK) != 0,
         (fcntl(s[0], F_GETFD) & FD_CLOEXEC) != 0);
  SHOW(read(s[0], buf, 1));
  SHOW(pipe2(s, 12345678));
  int d = dup(s[1]);
  printf("dup ok: %d\n", d >= 0);
  SHOW(write(d, "z", 1));
  SHOW(close(d));
  n = read(s[0], buf, sizeof buf);
  printf("via dup: %zd '%.*s'\n", n, (int)(n > 0 ? n : 0), buf);
  SHOW(dup(-5));
  return 0;
}
