// The waits under the cooperative hooks (coop.hpp): parking on the hub through detail::wait_fd,
// or, where no fiber may park, blocking the thread in a raw ppoll (never the poll hook).
#include "coop.hpp"

#include "debug.hpp"
#include "signals.hpp"

#include <poll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <new>

namespace fern::shim {

namespace {

short events_of(detail::io_dir d) noexcept {
  return d == detail::io_dir::read ? POLLIN : POLLOUT;
}

// The thread's wait: what a blocking real call would do. 0, ETIMEDOUT, EINTR, EBADF.
int block_thread(int fd, detail::io_dir d, detail::deadline_t deadline) noexcept {
  pollfd p{fd, events_of(d), 0};
  for (;;) {
    timespec ts{}, *tp = nullptr;
    if (deadline != detail::no_deadline) {
      detail::deadline_t left = deadline - detail::now_ns();
      if (left <= 0) return ETIMEDOUT;
      ts.tv_sec = left / 1000000000;
      ts.tv_nsec = left % 1000000000;
      tp = &ts;
    }
    long r = ::syscall(SYS_ppoll, &p, 1, tp, nullptr, 0);
    if (r > 0) return p.revents & POLLNVAL ? EBADF : 0;
    if (r < 0) return errno;
  }
}

// How a handled signal ends this wait (signal(7)): socket calls with SO_RCVTIMEO (input) or
// SO_SNDTIMEO (output) set always fail with EINTR; others are restarted under SA_RESTART.
eintr eintr_kind(int fd, detail::io_dir d, bool never_restart) noexcept {
  if (never_restart) return eintr::always;
  fd_view v = view_of(fd);
  return v.socket() && v.has_timeout(d) ? eintr::always : eintr::unless_restart;
}

}  // namespace

int await_fd(detail::hub_impl* h, int fd, detail::io_dir d, detail::deadline_t deadline,
             int timeout_errno, bool never_restart) noexcept {
  int w;
  bool scope = false;
  if (h) {
    // The scope spans the park only: a signal handled while the fiber ran is, for the kernel,
    // one that arrived before the blocking call went to sleep, and does not interrupt it.
    eintr_scope interruptible(h, eintr_kind(fd, d, never_restart));
    w = detail::wait_fd(fd, d, deadline, &scope);
    if (w == EPERM) {
      // epoll refuses this file although its call said EAGAIN: wait the way the kernel would,
      // and take the real call for it from now on.
      view_set_file(fd);
      debug_once(debug_note::epoll_refused, fd);
      w = block_thread(fd, d, deadline);
    }
  } else {
    w = block_thread(fd, d, deadline);
  }
  if (w == ETIMEDOUT) return scope ? ETIMEDOUT : timeout_errno;
  return w;
}

int nap(detail::hub_impl* h, int fd, long ns, detail::deadline_t deadline,
        int timeout_errno) noexcept {
  detail::deadline_t until = detail::deadline_after(std::chrono::nanoseconds(ns));
  bool last = deadline <= until;
  if (last) until = deadline;
  if (h) {
    detail::waiter w;
    bool scope = false;
    eintr_scope interruptible(h, eintr_kind(fd, detail::io_dir::write, false));
    switch (detail::block_nothrow(w, until, &scope)) {
      case detail::wake_reason::killed:
        return ECANCELED;
      case detail::wake_reason::loop_exit:
        return EDEADLK;
      case detail::wake_reason::interrupted:
        return EINTR;
      default:
        if (scope) return ETIMEDOUT;
        return last ? timeout_errno : 0;
    }
  }
  detail::deadline_t left = until - detail::now_ns();
  if (left > 0) {
    timespec ts{left / 1000000000, left % 1000000000};
    if (::syscall(SYS_nanosleep, &ts, nullptr) < 0 && errno == EINTR) return EINTR;
  }
  return last ? timeout_errno : 0;
}

bool ready_now(int fd, detail::io_dir d) noexcept {
  const int saved = errno;
  pollfd p{fd, events_of(d), 0};
  timespec zero{};
  long r = ::syscall(SYS_ppoll, &p, 1, &zero, nullptr, 0);
  errno = saved;
  return r != 0;  // ready, in error or hung up, not open (POLLNVAL), or ppoll itself failed
}

void fd_born(int fd) noexcept {
  const int saved = errno;
  detail::fd_closing(fd);
  errno = saved;
}

void keep_interrupt(detail::hub_impl* h, int wait_errno) noexcept {
  if (h && wait_errno == ECANCELED) h->running()->kill_pending_ = true;
}

bool iov_cursor::seek(std::size_t offset) noexcept {
  if (offset <= consumed_) return true;
  if (!own_) {
    if (count_ <= static_cast<int>(sizeof small_ / sizeof small_[0])) {
      own_ = small_;
    } else {
      heap_.reset(new (std::nothrow) iovec[static_cast<std::size_t>(count_)]);
      if (!heap_) return false;
      own_ = heap_.get();
    }
    std::memcpy(own_, cur_, sizeof(iovec) * static_cast<std::size_t>(count_));
    cur_ = own_;
  }
  std::size_t skip = offset - consumed_;
  consumed_ = offset;
  while (count_ > 0 && skip >= own_->iov_len) {
    skip -= own_->iov_len;
    ++own_;
    --count_;
  }
  if (count_ > 0) {
    own_->iov_base = static_cast<char*>(own_->iov_base) + skip;
    own_->iov_len -= skip;
  }
  cur_ = own_;
  return true;
}

}  // namespace fern::shim
