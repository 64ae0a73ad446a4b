// An echo server written with nothing but plain blocking POSIX calls — socket, bind, listen,
// accept, read, write — and one fern::spawn per connection. It is linked with
// libfern_interpose (the shim, as if LD_PRELOADed), so each blocking call parks only its own
// fiber and one OS thread serves every connection. Without the shim, the first client's read()
// would block the whole server.
//
//   blocking_echo_server [PORT]     (default 0: any free port; prints the one it got)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fern/fern.hpp>

static void serve(int client) {
  char buf[16 * 1024];
  for (;;) {
    ssize_t n = ::read(client, buf, sizeof buf);  // blocks this fiber only
    if (n <= 0) break;                            // EOF or error (ECONNRESET...)
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(client, buf + off, static_cast<size_t>(n - off));
      if (w < 0) {
        ::close(client);
        return;
      }
      off += w;
    }
  }
  ::close(client);
}

int main(int argc, char** argv) {
  int port = argc > 1 ? std::atoi(argv[1]) : 0;
  int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(lfd, 1024) != 0) {
    std::perror("bind/listen");
    return 1;
  }
  socklen_t len = sizeof addr;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
  std::fflush(stdout);
  for (;;) {
    int client = ::accept(lfd, nullptr, nullptr);  // blocks the accepting fiber only
    if (client < 0) {
      if (errno == EMFILE || errno == ENFILE) fern::sleep(std::chrono::milliseconds(10));
      continue;
    }
    fern::spawn(serve, client);
  }
}
