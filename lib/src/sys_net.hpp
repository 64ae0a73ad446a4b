// fern::sys, socket half: the system calls behind fern's sockets (net.cpp), issued directly like
// those in sys.hpp so the runtime never recurses into libfern_interpose when both are loaded
// (the shim hooks socket, connect, accept4, send*, recv*, setsockopt, fcntl...). Returns -1 and
// sets errno like libc; never throws, never blocks on the non-blocking fds fern creates.
#pragma once

#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstddef>

namespace fern::sys {

inline int socket(int family, int type, int protocol) noexcept {
  return static_cast<int>(::syscall(SYS_socket, family, type, protocol));
}
inline int socketpair(int family, int type, int protocol, int sv[2]) noexcept {
  return static_cast<int>(::syscall(SYS_socketpair, family, type, protocol, sv));
}
inline int bind(int fd, const sockaddr* sa, socklen_t len) noexcept {
  return static_cast<int>(::syscall(SYS_bind, fd, sa, len));
}
inline int listen(int fd, int backlog) noexcept {
  return static_cast<int>(::syscall(SYS_listen, fd, backlog));
}
inline int connect(int fd, const sockaddr* sa, socklen_t len) noexcept {
  return static_cast<int>(::syscall(SYS_connect, fd, sa, len));
}
inline int accept4(int fd, sockaddr* sa, socklen_t* len, int flags) noexcept {
  return static_cast<int>(::syscall(SYS_accept4, fd, sa, len, flags));
}
inline ssize_t recvfrom(int fd, void* buf, std::size_t n, int flags, sockaddr* sa,
                        socklen_t* len) noexcept {
  return ::syscall(SYS_recvfrom, fd, buf, n, flags, sa, len);
}
inline ssize_t sendto(int fd, const void* buf, std::size_t n, int flags, const sockaddr* sa,
                      socklen_t len) noexcept {
  return ::syscall(SYS_sendto, fd, buf, n, flags, sa, len);
}
inline ssize_t recvmsg(int fd, msghdr* msg, int flags) noexcept {
  return ::syscall(SYS_recvmsg, fd, msg, flags);
}
inline ssize_t sendmsg(int fd, const msghdr* msg, int flags) noexcept {
  return ::syscall(SYS_sendmsg, fd, msg, flags);
}
inline int shutdown(int fd, int how) noexcept {
  return static_cast<int>(::syscall(SYS_shutdown, fd, how));
}
inline int getsockopt(int fd, int level, int name, void* val, socklen_t* len) noexcept {
  return static_cast<int>(::syscall(SYS_getsockopt, fd, level, name, val, len));
}
inline int setsockopt(int fd, int level, int name, const void* val, socklen_t len) noexcept {
  return static_cast<int>(::syscall(SYS_setsockopt, fd, level, name, val, len));
}
inline int getsockname(int fd, sockaddr* sa, socklen_t* len) noexcept {
  return static_cast<int>(::syscall(SYS_getsockname, fd, sa, len));
}
inline int getpeername(int fd, sockaddr* sa, socklen_t* len) noexcept {
  return static_cast<int>(::syscall(SYS_getpeername, fd, sa, len));
}
inline int fcntl(int fd, int cmd, long arg) noexcept {
  return static_cast<int>(::syscall(SYS_fcntl, fd, cmd, arg));
}

}  // namespace fern::sys
