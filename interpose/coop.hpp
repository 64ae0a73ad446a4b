// The cooperative core of the io, socket and fd hooks (io.cpp, socket.cpp, fd.cpp): waiting for an
// fd, and the loops that give a blocking call its full meaning on top of attempts that never
// block (a blocking stream write moves every byte; MSG_WAITALL fills the buffer). Attempts are
// real calls on a non-blocking description (shim-owned), with a per-call flag (MSG_DONTWAIT,
// RWF_NOWAIT), or a blocking real call made only once ppoll says the fd is ready. Nothing here
// throws; results are -1 and errno like libc's.
//
// The hot hooks (read, write, readv, writev, recv, recvfrom, recvmsg, send, sendto, sendmsg) are
// split so that no path pays for more than it does (io.cpp describes it): a decision with no
// frame, an out-of-line first attempt, and an out-of-line retry path that goes on from that
// attempt's result when it did not complete the call (the *_after loops and `untried` below).
#pragma once

#include <errno.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "fd_view.hpp"
#include "shim.hpp"

namespace fern::shim {

// Real socket calls that the io hooks use too (defined in socket.cpp): read and write on a
// socket become recvfrom/sendto/recvmsg/sendmsg with MSG_DONTWAIT.
extern real_fn<decltype(::recvfrom)> real_recvfrom;
extern real_fn<decltype(::sendto)> real_sendto;
extern real_fn<decltype(::recvmsg)> real_recvmsg;
extern real_fn<decltype(::sendmsg)> real_sendmsg;

// Waits until fd may be ready in direction d, for a call whose attempt got EAGAIN. On a hub
// (h != null) the calling fiber parks; elsewhere (a thread without a hub, or the hub's own
// context, using a shim-owned fd that is non-blocking underneath) the thread blocks in ppoll, as
// the real call would have. Returns 0, or the errno the call must report: `timeout_errno` once
// `deadline` (SO_RCVTIMEO / SO_SNDTIMEO) passes, ETIMEDOUT for an expired fern::timeout scope,
// ECANCELED if the fiber was killed, EBADF if fd was closed meanwhile, EINTR if a handled signal
// interrupted it as the kernel would have interrupted the blocking call (signals.hpp: restarted
// under SA_RESTART unless `never_restart` or the fd is a socket with a timeout in direction d;
// off a hub ppoll gives EINTR whatever SA_RESTART says). Blocking point.
int await_fd(detail::hub_impl* h, int fd, detail::io_dir d, detail::deadline_t deadline,
             int timeout_errno = EAGAIN, bool never_restart = false) noexcept;

// Parks (or, without a hub, sleeps) for `ns` but not past `deadline`: the back-off of a call on
// fd that cannot wait on readiness (connect on a Unix socket whose listener's backlog is full).
// Returns like await_fd, 0 when the nap simply ended. Blocking point.
int nap(detail::hub_impl* h, int fd, long ns, detail::deadline_t deadline,
        int timeout_errno) noexcept;

// True if fd is ready in direction d now, or in error, hung up or not open (then the real call
// reports it at once). A zero-timeout ppoll. Never blocks.
bool ready_now(int fd, detail::io_dir d) noexcept;

// After an attempt moved part of the data and the wait for the rest ended (kill, fern::timeout,
// close), the call returns the partial count: a kill is re-armed so the fiber's next blocking
// point sees it (an expired scope and a closed fd stay visible on their own).
void keep_interrupt(detail::hub_impl* h, int wait_errno) noexcept;

// A new fd was just created with this number (socket, pipe, accept, dup, open...): if the
// number's previous fd was closed behind the shim's back, this thread's hub forgets its stale
// epoll registration (and wakes whoever still waited on it with EBADF). Preserves errno.
void fd_born(int fd) noexcept;

// True if fd is shim-owned and the program did not ask for O_NONBLOCK: a real call that returned
// EAGAIN (or a short write) on a thread that cannot park must be completed by blocking. Only
// creation marks an fd shim-owned, so an fd the view never classified is not: the view is
// peeked, and a failed real call off a hub costs one lookup and never an fstat.
inline bool owned_blocking(int fd) noexcept {
  return view_peek(fd).owned_blocking();
}

// What a hook's fast path hands its retry path as the first attempt's result when it made none
// (no real call returns it).
inline constexpr int untried = -2;

// The loop of until_done once its first attempt returned `r`.
template <class R, class Attempt>
R until_done_after(detail::hub_impl* h, int fd, detail::io_dir d, detail::deadline_t deadline, R r,
                   Attempt attempt, int timeout_errno = EAGAIN) {
  for (;;) {
    if (r >= 0 || errno != EAGAIN) return r;
    if (int e = await_fd(h, fd, d, deadline, timeout_errno)) {
      errno = e;
      return -1;
    }
    r = attempt();
  }
}

// Repeats `attempt` (one real call that cannot block) while it fails with EAGAIN, waiting for fd
// in between. Returns the first other result, or -1 with await_fd's errno.
template <class Attempt>
auto until_done(detail::hub_impl* h, int fd, detail::io_dir d, detail::deadline_t deadline,
                Attempt attempt, int timeout_errno = EAGAIN) -> decltype(attempt()) {
  return until_done_after(h, fd, d, deadline, attempt(), attempt, timeout_errno);
}

// The loop of until_all once an attempt at offset `done` (done < total) returned `r`.
template <class Attempt>
ssize_t until_all_after(detail::hub_impl* h, int fd, detail::io_dir d, detail::deadline_t deadline,
                        std::size_t total, std::size_t done, ssize_t r, Attempt attempt) {
  for (;;) {
    if (r > 0) {
      done += static_cast<std::size_t>(r);
      if (done >= total) break;
    } else if (r == 0) {
      break;
    } else if (errno != EAGAIN) {
      if (!done) return -1;
      break;
    } else if (int e = await_fd(h, fd, d, deadline)) {
      if (!done) {
        errno = e;
        return -1;
      }
      keep_interrupt(h, e);
      break;
    }
    r = attempt(done);
  }
  return static_cast<ssize_t>(done);
}

// Stream semantics of a blocking transfer: calls attempt(offset) (moving bytes from `offset` of
// the program's buffers) until `total` bytes moved, starting with `done` already moved, until an
// attempt moves nothing (end of file) or fails. Once some bytes moved, a later failure or an
// ended wait returns the count, as the kernel does for a blocking call interrupted half way;
// with nothing moved it is -1 and errno.
template <class Attempt>
ssize_t until_all(detail::hub_impl* h, int fd, detail::io_dir d, detail::deadline_t deadline,
                  std::size_t total, std::size_t done, Attempt attempt) {
  if (done >= total) return static_cast<ssize_t>(done);
  return until_all_after(h, fd, d, deadline, total, done, attempt(done), attempt);
}

// One attempt on a pipe, FIFO or character device that the program sees as blocking. `nowait`
// (the program's call through preadv2/pwritev2 with RWF_NOWAIT) fails with EAGAIN instead of
// blocking, whatever the description's flags: it is tried first even on a shim-owned
// description, so a stale view (an fd closed behind the shim's back and its number reused) can
// never make the real call block the thread. Files that refuse RWF_NOWAIT (ttys, timerfds, pipes
// before Linux 5.x's FMODE_NOWAIT) get `real` (the program's own call): at once on a shim-owned
// description, which is non-blocking; otherwise only once ppoll says the fd is ready (another
// process may still drain it first; then the real call blocks the thread, as it would without
// fern), since O_NONBLOCK on a description the shim did not create is not its to set.
// `nowait_result` is what nowait() returned when a fast path already made it (then the view said
// RWF_NOWAIT is worth trying), or untried.
template <class Real, class NoWait>
[[gnu::always_inline]] inline ssize_t pollable_attempt(int fd, fd_view& v, detail::io_dir d,
                                                       Real real, NoWait nowait,
                                                       ssize_t nowait_result = untried) {
  if (!v.no_nowait()) {
    ssize_t r = nowait_result != untried ? nowait_result : nowait();
    if (r >= 0 || errno != EOPNOTSUPP) return r;
    view_set_no_nowait(fd);
    v.bits |= fd_view::no_nowait_bit;
  }
  if (v.owned()) return real();
  if (!ready_now(fd, d)) {
    errno = EAGAIN;
    return -1;
  }
  return real();
}

// A read-only view of an iovec array that can drop bytes from its front (for the rest of a
// partial transfer) without touching the caller's array: the first advance copies it.
class iov_cursor {
 public:
  iov_cursor(const iovec* iov, int count) noexcept : cur_(iov), count_(count) {}
  const iovec* data() const noexcept { return cur_; }
  int count() const noexcept { return count_; }
  // Moves the front to byte `offset` of the original array (offsets only grow). False if the
  // copy could not be allocated.
  bool seek(std::size_t offset) noexcept;
  // Sum of the lengths, saturating (the kernel rejects a sum above SSIZE_MAX itself).
  static std::size_t total(const iovec* iov, int count) noexcept {
    std::size_t sum = 0;
    for (int i = 0; i < count; ++i) {
      if (iov[i].iov_len > SIZE_MAX - sum) return SIZE_MAX;
      sum += iov[i].iov_len;
    }
    return sum;
  }

 private:
  const iovec* cur_;
  int count_;
  std::size_t consumed_ = 0;
  iovec* own_ = nullptr;
  std::unique_ptr<iovec[]> heap_;
  iovec small_[8];
};

}  // namespace fern::shim
