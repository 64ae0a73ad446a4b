/* A poll-driven TCP server in the main thread, three client threads (threads have no hub under
   the shim: their calls are the real ones). Results are printed per client, in client order. */
#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#define CLIENTS 3

static struct sockaddr_in addr;
static char replies[CLIENTS][32];
static int client_status[CLIENTS];

static void* client(void* arg) {
  int id = (int)(long)arg;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
    client_status[id] = 1;
    return NULL;
  }
  msleep(10 * (CLIENTS - id)); /* the last to connect speaks first */
  char msg[8];
  int len = snprintf(msg, sizeof msg, "c%d", id);
  if (write(fd, msg, (size_t)len) != len) client_status[id] = 2;
  ssize_t n = read(fd, replies[id], sizeof replies[id] - 1);
  if (n <= 0) client_status[id] = 3;
  close(fd);
  return NULL;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  SHOW(bind(ls, (struct sockaddr*)&addr, sizeof addr));
  socklen_t alen = sizeof addr;
  SHOW(getsockname(ls, (struct sockaddr*)&addr, &alen));
  SHOW(listen(ls, 16));
  pthread_t th[CLIENTS];
  for (long i = 0; i < CLIENTS; ++i) pthread_create(&th[i], NULL, client, (void*)i);

  struct pollfd fds[1 + CLIENTS];
  int nfds = 1, served = 0, rounds = 0;
  fds[0].fd = ls;
  fds[0].events = POLLIN;
  while (served < CLIENTS && rounds++ < 100) {
    int n = poll(fds, (nfds_t)nfds, 5000);
    if (n <= 0) {
      SHOW(n);
      break;
    }
    for (int i = nfds - 1; i >= 1; --i) {
      if (!fds[i].revents) continue;
      char buf[16];
      ssize_t r = read(fds[i].fd, buf, sizeof buf);
      if (r > 0) {
        char out[32];
        int len = snprintf(out, sizeof out, "echo %.*s", (int)r, buf);
        if (write(fds[i].fd, out, (size_t)len) != len) printf("short write\n");
        ++served;
      }
      close(fds[i].fd);
      fds[i] = fds[--nfds];
    }
    if (fds[0].revents & POLLIN) {
      int c = accept(ls, NULL, NULL);
      if (c >= 0) {
        fds[nfds].fd = c;
        fds[nfds].events = POLLIN;
        ++nfds;
      }
    }
  }
  for (int i = 0; i < CLIENTS; ++i) pthread_join(th[i], NULL);
  printf("served: %d\n", served);
  for (int i = 0; i < CLIENTS; ++i)
    printf("client %d: status %d reply '%s'\n", i, client_status[i], replies[i]);
  SHOW(close(ls));
  return 0;
}
