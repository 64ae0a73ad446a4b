// Helpers for the shim's conformance tests (io_test, socket_test, fd_test). The test executables
// link libfern_interpose directly, so every ::read/::connect here IS the hook; the helpers below
// that must not be (the "what does the kernel say" side of each comparison) use syscall(2).
#pragma once

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace shim_test {

using namespace std::chrono_literals;

// The kernel's flags of fd, bypassing the shim's view.
inline long real_flags(int fd) {
  return ::syscall(SYS_fcntl, fd, F_GETFL);
}
inline bool real_nonblock(int fd) {
  return real_flags(fd) & O_NONBLOCK;
}

// Moves a raw fd to a number no hooked call ever used in this process (from 700 up), so it is
// as fresh as an fd inherited at exec. (Low numbers may carry views of fds that a library closed
// behind the shim's back: UBSan's IsAccessibleMemoryRange makes pipes with the hooked pipe() and
// closes them with a raw syscall.)
inline int raw_fresh(int fd) {
  static int next = 700;
  int to = next++;
  if (::syscall(SYS_dup3, fd, to, 0) != to) return -1;
  ::syscall(SYS_close, fd);
  return to;
}

// An fd pair the shim never saw being created, as if inherited from a parent process.
inline void raw_pipe(int fds[2], int flags = 0) {
  ASSERT_EQ(::syscall(SYS_pipe2, fds, flags), 0);
  fds[0] = raw_fresh(fds[0]);
  fds[1] = raw_fresh(fds[1]);
  ASSERT_GE(fds[0], 0);
  ASSERT_GE(fds[1], 0);
}
inline void raw_socketpair(int type, int sv[2]) {
  ASSERT_EQ(::syscall(SYS_socketpair, AF_UNIX, type, 0, sv), 0);
  sv[0] = raw_fresh(sv[0]);
  sv[1] = raw_fresh(sv[1]);
  ASSERT_GE(sv[0], 0);
  ASSERT_GE(sv[1], 0);
}

// The errno of a call: -1 and errno, or 0 if it succeeded.
template <class F>
int errno_of(F f) {
  errno = 0;
  long r = static_cast<long>(f());
  return r < 0 ? errno : 0;
}

// An ordered log of what the fibers did, to assert who ran while whom was parked.
struct event_log {
  std::vector<std::string> events;
  void operator()(std::string e) { events.push_back(std::move(e)); }
};

inline double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// A TCP listener on 127.0.0.1 with a kernel-chosen port.
struct listener {
  int fd = -1;
  sockaddr_in addr{};
  explicit listener(int type_flags = 0, int backlog = 128) {
    fd = ::socket(AF_INET, SOCK_STREAM | type_flags, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd, backlog) != 0)
      ADD_FAILURE() << "listen: " << errno;
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  }
  ~listener() {
    if (fd >= 0) ::close(fd);
  }
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&addr); }
};

// A loopback address nobody listens on (a port that was bound, then released).
inline sockaddr_in refused_addr() {
  listener l;
  sockaddr_in a = l.addr;
  return a;  // l closes here without ever accepting
}

// A connected TCP pair over loopback: client (created by the shim, blocking view) and the
// accepted server side.
struct tcp_pair {
  int client = -1, server = -1;
  tcp_pair() {
    listener l;
    client = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(client, l.sa(), sizeof l.addr) != 0) ADD_FAILURE() << "connect: " << errno;
    server = ::accept(l.fd, nullptr, nullptr);
    if (server < 0) ADD_FAILURE() << "accept: " << errno;
  }
  ~tcp_pair() {
    if (client >= 0) ::close(client);
    if (server >= 0) ::close(server);
  }
};

// Tests write to closed peers: EPIPE must come back as errno, not kill the process.
struct ignore_sigpipe : ::testing::Environment {
  void SetUp() override { ::signal(SIGPIPE, SIG_IGN); }
};

}  // namespace shim_test
