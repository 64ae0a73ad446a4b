/* EINTR for the restartable calls: a blocking read, recv, accept and write on pipes and sockets
   is restarted when the handler has SA_RESTART and fails with EINTR otherwise; with SO_RCVTIMEO
   set, recv fails with EINTR either way (signal(7)). SIGALRM comes from setitimer; a forked peer
   supplies the data after it. */
#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>

static volatile sig_atomic_t hits;
static void on_alarm(int sig) {
  (void)sig;
  ++hits;
}

static void arm(int ms) {
  struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
  if (setitimer(ITIMER_REAL, &it, NULL) != 0) fail("setitimer");
}

static void install(int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGALRM, &sa, NULL) != 0) fail("sigaction");
}

static int out_fd;
static int late_writer(void* arg) {
  (void)arg;
  msleep(150);
  return write(out_fd, "data", 4) == 4 ? 0 : 1;
}

static struct sockaddr_in addr;
static int late_connect(void* arg) {
  (void)arg;
  msleep(150);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int r = connect(fd, (struct sockaddr*)&addr, sizeof addr);
  msleep(50);
  close(fd);
  return r == 0 ? 0 : 1;
}

static void round_trip(const char* name) {
  char buf[16];
  printf("-- %s\n", name);
  int p[2];
  if (pipe(p) != 0) fail("pipe");
  out_fd = p[1];
  pid_t pid = fork_peer(late_writer, NULL);
  arm(30);
  ssize_t n = read(p[0], buf, sizeof buf);
  printf("read: %zd %s\n", n, n < 0 ? strerrorname_np(errno) : "");
  reap(pid);
  close(p[0]);
  close(p[1]);

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) fail("socketpair");
  out_fd = sv[1];
  pid = fork_peer(late_writer, NULL);
  arm(30);
  n = recv(sv[0], buf, sizeof buf, 0);
  printf("recv: %zd %s\n", n, n < 0 ? strerrorname_np(errno) : "");
  reap(pid);
  struct timeval tv = {5, 0};
  setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  arm(30);
  n = recv(sv[0], buf, sizeof buf, 0);
  printf("recv with SO_RCVTIMEO: %zd %s\n", n, n < 0 ? strerrorname_np(errno) : "");
  close(sv[0]);
  close(sv[1]);

  int ls = socket(AF_INET, SOCK_STREAM, 0);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(ls, (struct sockaddr*)&addr, sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(ls, (struct sockaddr*)&addr, &len);
  listen(ls, 4);
  pid = fork_peer(late_connect, NULL);
  arm(30);
  int c = accept(ls, NULL, NULL);
  printf("accept: %s\n", c >= 0 ? "ok" : strerrorname_np(errno));
  if (c < 0) c = accept(ls, NULL, NULL);
  close(c);
  reap(pid);
  close(ls);
}

int main(void) {
  install(SA_RESTART);
  round_trip("SA_RESTART");
  install(0);
  round_trip("no SA_RESTART");
  printf("hits: %d\n", (int)hits);
  return 0;
}
