// The shim's EINTR emulation. A signal handler that runs on a hub's thread cannot interrupt the
// fibers parked in hooked calls (only the hub's own epoll_wait is in the kernel), so signals.cpp
// wraps the program's handlers (sigaction, signal, sigset, siginterrupt...) in a trampoline that
// logs each delivery, per thread, with its SA_RESTART flag, and wakes the hub; the hub then ends
// the parked calls the kernel would have interrupted, whose waits return EINTR (wake_reason::
// interrupted). Hooks mark such waits with an eintr_scope. Not for the runtime's own waits.
#pragma once

#include <signal.h>

#include <cstdint>

#include "fern/io.hpp"
#include "hub_impl.hpp"

namespace fern::shim {

// The kernel's sigset_t is 64 bits (glibc's is 1024): the size raw system calls take.
inline constexpr unsigned sys_sigset_size = 8;

// How a call reacts to a handled signal (signal(7), "Interruption of system calls and library
// functions by signal handlers").
enum class eintr : std::uint8_t {
  // EINTR whatever SA_RESTART says: poll, ppoll, select, pselect, epoll_wait, epoll_pwait,
  // nanosleep, clock_nanosleep, pause, sigsuspend; and recv*/accept (send*/connect) on a socket
  // with SO_RCVTIMEO (SO_SNDTIMEO) set.
  always,
  // Restarted (the wait simply goes on) when the handler has SA_RESTART, EINTR otherwise: read,
  // readv, write, writev, recv*, send*, accept, connect on slow devices (pipes, sockets, ttys).
  unless_restart,
};

// While alive, the calling fiber's waits (detail::wait_fd, detail::wait_fds, block_nothrow) end
// with EINTR / wake_reason::interrupted when a handled signal that interrupts `kind` is
// delivered on this thread. Only signals delivered after construction count: build it after the
// call's first non-blocking attempt, around the retry loop. `mask` is the call's own signal mask
// (ppoll, pselect, epoll_pwait): signals it blocks do not interrupt the call, and while the hub
// sleeps in epoll it sleeps with the intersection of the parked calls' masks, so a signal the
// call unblocks is delivered then (null: the thread's mask). `only_signal` marks a wait with no
// fd and no deadline (poll with nothing to poll, pause): it keeps the loop alive instead of
// failing as a deadlock. On the stack of the fiber it marks; never blocks.
class eintr_scope {
 public:
  eintr_scope(detail::hub_impl* h, eintr kind, const sigset_t* mask = nullptr,
              bool only_signal = false) noexcept;
  ~eintr_scope();
  eintr_scope(const eintr_scope&) = delete;
  eintr_scope& operator=(const eintr_scope&) = delete;

  // --- for signals.cpp: fields of the thread's list of scopes (hub thread only) --------------
  eintr_scope* prev_ = nullptr;
  eintr_scope* next_ = nullptr;
  detail::hub_impl* hub_;
  detail::fiber_base* fiber_;
  const sigset_t* mask_;
  std::uint64_t since_;  // the thread's delivery count when the scope began
  eintr kind_;
  bool only_signal_;
};

// detail::wait_fd inside an eintr_scope: the wait of the io hooks (read, recv, accept, connect,
// write, send...). A call with a socket timeout (SO_RCVTIMEO/SO_SNDTIMEO: a finite `deadline`)
// is never restarted, one without is restarted when the handler has SA_RESTART (signal(7)).
// Returns like wait_fd, EINTR included. Blocking point.
inline int wait_fd_eintr(detail::hub_impl* h, int fd, detail::io_dir d, detail::deadline_t deadline,
                         bool* scope_expired) noexcept {
  eintr_scope scope(h, deadline == detail::no_deadline ? eintr::unless_restart : eintr::always);
  return detail::wait_fd(fd, d, deadline, scope_expired);
}

// The errno a wait's wake-up maps to: 0 (the deadline passed, or notified), ETIMEDOUT (an
// enclosing fern::timeout), ECANCELED (killed), EINTR (a signal), EDEADLK (nothing can wake it).
int wake_errno(detail::wake_reason r, bool scope_expired) noexcept;

}  // namespace fern::shim
