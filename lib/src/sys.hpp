// fern::sys: the only way the runtime reaches the kernel for calls the shim interposes (read,
// write, close, epoll_*, ...). Each wrapper issues the system call directly, so the runtime never
// recurses into libfern_interpose when both are loaded. Returns -1 and sets errno like libc;
// never throws, never blocks unless the call itself does.
#pragma once

#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

struct epoll_event;

namespace fern::sys {

// The kernel's sigset_t is 64 bits; glibc's is 1024 (the system calls take the size).
inline constexpr std::size_t kernel_sigset_size = 8;

inline ssize_t read(int fd, void* buf, std::size_t n) noexcept {
  return ::syscall(SYS_read, fd, buf, n);
}
inline ssize_t write(int fd, const void* buf, std::size_t n) noexcept {
  return ::syscall(SYS_write, fd, buf, n);
}
inline int close(int fd) noexcept {
  return static_cast<int>(::syscall(SYS_close, fd));
}
inline int eventfd(unsigned initval, int flags) noexcept {
  return static_cast<int>(::syscall(SYS_eventfd2, initval, flags));
}
inline int epoll_create1(int flags) noexcept {
  return static_cast<int>(::syscall(SYS_epoll_create1, flags));
}
inline int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) noexcept {
  return static_cast<int>(::syscall(SYS_epoll_ctl, epfd, op, fd, ev));
}
// epoll_pwait2 (Linux >= 5.11) takes a timespec timeout, so timers keep sub-millisecond
// precision; null waits forever. A non-null `mask` is the signal mask for the wait.
inline int epoll_pwait2(int epfd, epoll_event* evs, int max, const timespec* ts,
                        const sigset_t* mask = nullptr) noexcept {
  return static_cast<int>(
      ::syscall(SYS_epoll_pwait2, epfd, evs, max, ts, mask, mask ? kernel_sigset_size : 0));
}
inline int epoll_wait(int epfd, epoll_event* evs, int max, int timeout_ms,
                      const sigset_t* mask = nullptr) noexcept {
  return static_cast<int>(
      ::syscall(SYS_epoll_pwait, epfd, evs, max, timeout_ms, mask, mask ? kernel_sigset_size : 0));
}

}  // namespace fern::sys
