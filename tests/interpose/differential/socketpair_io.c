/* Unix socketpairs: stream and datagram send/recv, MSG_PEEK, MSG_DONTWAIT, MSG_WAITALL across a
   forked sender's pauses, shutdown, SO_RCVTIMEO expiry, reset, errors on non-sockets. */
#include "common.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>

static int peer_fd;

static int slow_sender(void* arg) {
  (void)arg;
  msleep(20);
  if (send(peer_fd, "abc", 3, 0) != 3) return 1;
  msleep(20);
  if (send(peer_fd, "defg", 4, 0) != 4) return 1;
  msleep(20);
  return send(peer_fd, "h", 1, 0) == 1 ? 0 : 1;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  int sv[2];
  char buf[64];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) fail("socketpair");
  SHOW(send(sv[0], "hello", 5, 0));
  ssize_t n = recv(sv[1], buf, sizeof buf, MSG_PEEK);
  printf("peek: %zd '%.*s'\n", n, (int)(n > 0 ? n : 0), buf);
  n = recv(sv[1], buf, sizeof buf, 0);
  printf("recv: %zd '%.*s'\n", n, (int)(n > 0 ? n : 0), buf);
  SHOW(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT));

  peer_fd = sv[0];
  pid_t pid = fork_peer(slow_sender, NULL);
  n = recv(sv[1], buf, 8, MSG_WAITALL);
  printf("waitall: %zd '%.*s'\n", n, (int)(n > 0 ? n : 0), buf);
  reap(pid);

  struct timeval tv = {0, 50000}, got = {0, 0};
  socklen_t len = sizeof got;
  SHOW(setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
  SHOW(getsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &got, &len));
  printf("rcvtimeo: %ld.%06ld\n", (long)got.tv_sec, (long)got.tv_usec);
  SHOW(recv(sv[1], buf, sizeof buf, 0));
  SHOW(read(sv[1], buf, sizeof buf));
  tv.tv_usec = 0;
  SHOW(setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
  SHOW(setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, 3));

  struct iovec out[2] = {{"12", 2}, {"345", 3}};
  struct msghdr mh = {0};
  mh.msg_iov = out;
  mh.msg_iovlen = 2;
  SHOW(sendmsg(sv[0], &mh, 0));
  char a[3] = {0}, b[8] = {0};
  struct iovec in[2] = {{a, 3}, {b, 8}};
  struct msghdr rh = {0};
  rh.msg_iov = in;
  rh.msg_iovlen = 2;
  n = recvmsg(sv[1], &rh, 0);
  printf("recvmsg: %zd '%.3s' '%s' flags %d\n", n, a, b, rh.msg_flags);

  SHOW(shutdown(sv[0], SHUT_WR));
  SHOW(recv(sv[1], buf, sizeof buf, 0));
  SHOW(send(sv[0], "x", 1, 0));
  SHOW(shutdown(sv[0], 99));
  SHOW(close(sv[0]));
  SHOW(close(sv[1]));

  /* Closing with unread data resets the peer. */
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) fail("socketpair");
  SHOW(send(sv[1], "unread", 6, 0));
  SHOW(send(sv[0], "x", 1, 0));
  SHOW(close(sv[1]));
  SHOW(recv(sv[0], buf, sizeof buf, 0));
  SHOW(send(sv[0], "x", 1, MSG_NOSIGNAL));
  SHOW(close(sv[0]));

  int dg[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) != 0) fail("socketpair dgram");
  SHOW(send(dg[0], "a", 1, 0));
  SHOW(send(dg[0], "bcdef", 5, 0));
  SHOW(recv(dg[1], buf, sizeof buf, 0));
  char small[2];
  struct iovec siov = {small, 2};
  struct msghdr sh = {0};
  sh.msg_iov = &siov;
  sh.msg_iovlen = 1;
  n = recvmsg(dg[1], &sh, 0);
  printf("truncated: %zd '%.2s' MSG_TRUNC %d\n", n, small, (sh.msg_flags & MSG_TRUNC) != 0);
  SHOW(recv(dg[1], buf, sizeof buf, MSG_DONTWAIT));
  SHOW(recvfrom(dg[1], buf, sizeof buf, MSG_DONTWAIT, NULL, NULL));

  int p[2];
  if (pipe(p) != 0) fail("pipe");
  SHOW(recv(p[0], buf, 1, MSG_DONTWAIT));
  SHOW(send(p[1], "x", 1, 0));
  SHOW(setsockopt(p[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
  SHOW(recv(-1, buf, 1, 0));
  SHOW(socketpair(AF_INET, SOCK_STREAM, 0, sv));
  return 0;
}
