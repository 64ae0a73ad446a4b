// Waiting for file descriptors: the building block under fern's sockets and the shim. A fiber
// parks until its fd is ready while the hub runs the others. Works for anything epoll accepts
// (sockets, pipes, ttys, eventfds...); regular files and directories are always "ready" in Unix
// and epoll refuses them (EPERM).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "fern/detail/core.hpp"

namespace fern {

// Waits until `fd` may be read without blocking (data, EOF, a pending connection, or an error),
// or the timeout passes (false). Readiness can be spurious: do the read with the fd in
// O_NONBLOCK mode and wait again on EAGAIN. Blocking point: honours the enclosing fern::timeout
// and kill(). Throws std::system_error: EBADF if fern::close(fd) is called while it waits (or fd
// is not open), EPERM for an fd epoll cannot watch (a regular file); fern::concurrent_use_error
// if another fiber already waits to read the same fd.
bool wait_readable(int fd, std::optional<std::chrono::nanoseconds> timeout = {});
// The same for writing (buffer space, a finished connect, or an error).
bool wait_writable(int fd, std::optional<std::chrono::nanoseconds> timeout = {});

// Closes fd, first waking every fiber waiting on it (they see EBADF) and forgetting its epoll
// registration, so a new fd that reuses the number is never confused with it. Fds that fibers
// have waited on must be closed with it (or the shim's close): after a plain ::close the hub
// still believes the number is registered, and waits on a new fd that reuses it never wake. Throws
// std::system_error if close(2) fails with anything but EINTR (after which the fd is closed anyway,
// on Linux). Never blocks.
void close(int fd);

namespace detail {
enum class io_dir : std::uint8_t { read = 0, write = 1 };
// The shim's wait: like wait_readable/wait_writable, but several fibers may wait in the same
// direction (unmodified programs do that), and the outcome is an errno value, never an
// exception: 0 (may be ready), ETIMEDOUT (deadline or, with *scope_expired, an enclosing
// fern::timeout), ECANCELED (killed), EBADF (closed while waiting), EPERM (epoll refuses the fd),
// ENOMEM; EINTR when the shim's signal emulation interrupts it. Blocking point.
int wait_fd(int fd, io_dir d, deadline_t deadline, bool* scope_expired) noexcept;
// The shim's wait on several fds (poll, select): parks until any of the n (fd, direction)
// pairs may be ready (0: wake-ups can be spurious, re-poll), one of them is not open or is
// closed while it waits (0 at once: the re-poll reports it), or as wait_fd: ETIMEDOUT,
// ECANCELED, EDEADLK, and EINTR when the shim's signal emulation interrupts it. Fds epoll refuses
// with EPERM (regular files: always ready) are skipped; with none left it is a plain sleep to
// `deadline`. Any other epoll_ctl error (ENOMEM, ENOSPC, ELOOP...) is returned without waiting.
// Costs no system call beyond a first-time registration per fd. Blocking point.
struct fd_interest {
  int fd;
  io_dir dir;
};
int wait_fds(const fd_interest* v, std::size_t n, deadline_t deadline,
             bool* scope_expired) noexcept;
// Wakes every fiber waiting on fd with EBADF and forgets its registration; call it before
// close(2). Never blocks.
void fd_closing(int fd) noexcept;
}  // namespace detail

}  // namespace fern
