/* TCP over 127.0.0.1 with a forked peer: accept/connect/read/write, a non-blocking connect
   completed through poll, connection refused, accept errors, SO_RCVTIMEO, shutdown, reset. */
#include "common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

static struct sockaddr_in server_addr;

static int client(void* arg) {
  (void)arg;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 10;
  if (connect(fd, (struct sockaddr*)&server_addr, sizeof server_addr) != 0) return 11;
  if (write(fd, "ping", 4) != 4) return 12;
  char buf[16];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n != 4 || memcmp(buf, "pong", 4) != 0) return 13;
  msleep(30);
  if (write(fd, "slow", 4) != 4) return 14;
  if (shutdown(fd, SHUT_WR) != 0) return 15;
  n = read(fd, buf, sizeof buf);
  if (n != 0) return 16;
  close(fd);
  return 0;
}

static int resetter(void* arg) {
  (void)arg;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr*)&server_addr, sizeof server_addr) != 0) return 11;
  msleep(30);
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
  return 0;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  char buf[64];
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  if (ls < 0) fail("socket");
  int one = 1;
  SHOW(setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
  server_addr.sin_family = AF_INET;
  server_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  server_addr.sin_port = 0;
  SHOW(bind(ls, (struct sockaddr*)&server_addr, sizeof server_addr));
  socklen_t alen = sizeof server_addr;
  SHOW(getsockname(ls, (struct sockaddr*)&server_addr, &alen));
  SHOW(accept(ls, NULL, NULL));
  SHOW(listen(ls, 16));

  pid_t pid = fork_peer(client, NULL);
  int c = accept(ls, NULL, NULL);
  printf("accepted: %d\n", c >= 0);
  ssize_t n = read(c, buf, sizeof buf);
  printf("server read: %zd '%.*s'\n", n, (int)(n > 0 ? n : 0), buf);
  SHOW(write(c, "pong", 4));
  struct timeval tv = {0, 10000};
  SHOW(setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
  SHOW(recv(c, buf, sizeof buf, 0));
  tv.tv_usec = 0;
  SHOW(setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
  n = read(c, buf, sizeof buf);
  printf("server read: %zd '%.*s'\n", n, (int)(n > 0 ? n : 0), buf);
  SHOW(read(c, buf, sizeof buf));
  SHOW(close(c));
  reap(pid);

  /* Non-blocking connect, completed with poll; accept4 flags. */
  int nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int r = connect(nb, (struct sockaddr*)&server_addr, sizeof server_addr);
  printf("nb connect: %s\n", r == 0 ? "0" : strerrorname_np(errno));
  struct pollfd pfd = {nb, POLLOUT, 0};
  SHOW(poll(&pfd, 1, 5000));
  printf("revents: %#x\n", pfd.revents);
  int err = -1;
  socklen_t elen = sizeof err;
  SHOW(getsockopt(nb, SOL_SOCKET, SO_ERROR, &err, &elen));
  printf("SO_ERROR: %d\n", err);
  SHOW(connect(nb, (struct sockaddr*)&server_addr, sizeof server_addr));
  c = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  printf("accept4 O_NONBLOCK: %d FD_CLOEXEC: %d\n", (fcntl(c, F_GETFL) & O_NONBLOCK) != 0,
         (fcntl(c, F_GETFD) & FD_CLOEXEC) != 0);
  SHOW(read(c, buf, sizeof buf));
  SHOW(close(c));
  SHOW(close(nb));

  /* Reset by the peer. */
  pid = fork_peer(resetter, NULL);
  c = accept(ls, NULL, NULL);
  SHOW(read(c, buf, sizeof buf));
  SHOW(write(c, "x", 1) >= 0 ? 0 : -1);
  SHOW(close(c));
  reap(pid);

  /* Refused: a port nobody listens on (bound, then closed). */
  int tmp = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in dead = server_addr;
  dead.sin_port = 0;
  SHOW(bind(tmp, (struct sockaddr*)&dead, sizeof dead));
  alen = sizeof dead;
  SHOW(getsockname(tmp, (struct sockaddr*)&dead, &alen));
  SHOW(close(tmp));
  int cs = socket(AF_INET, SOCK_STREAM, 0);
  SHOW(connect(cs, (struct sockaddr*)&dead, sizeof dead));
  SHOW(close(cs));
  cs = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  r = connect(cs, (struct sockaddr*)&dead, sizeof dead);
  printf("nb connect refused: %s\n", r == 0 ? "0" : strerrorname_np(errno));
  pfd.fd = cs;
  pfd.events = POLLOUT;
  SHOW(poll(&pfd, 1, 5000));
  printf("revents: %#x\n", pfd.revents);
  SHOW(getsockopt(cs, SOL_SOCKET, SO_ERROR, &err, &elen));
  printf("SO_ERROR: %s\n", strerrorname_np(err));
  SHOW(close(cs));

  SHOW(accept(-1, NULL, NULL));
  int p[2];
  if (pipe(p) != 0) fail("pipe");
  SHOW(accept(p[0], NULL, NULL));
  SHOW(connect(p[0], (struct sockaddr*)&server_addr, sizeof server_addr));
  SHOW(connect(ls, (struct sockaddr*)&server_addr, 3));
  SHOW(socket(AF_INET, 12345, 0));
  SHOW(close(ls));
  return 0;
}
