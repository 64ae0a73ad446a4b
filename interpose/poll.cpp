// Poll family: poll, ppoll, select, pselect, epoll_wait, epoll_pwait, epoll_pwait2 (and the
// _FORTIFY_SOURCE entry points __poll_chk, __ppoll_chk). Each result is the kernel's own: the
// call is made for real with a zero timeout, and only when that finds nothing ready (returns 0)
// and the caller's timeout allows does the fiber park, on every fd of the set at once
// (detail::wait_fds: no extra system call), and then ask the kernel again. A program's own epoll
// loop parks on its epoll fd, which is itself pollable. When the wait ends:
//   the call's own timeout          -> one last zero-timeout call: its result (usually 0)
//   an enclosing fern::timeout      -> -1, ETIMEDOUT (DESIGN.md §5; poll itself has no ETIMEDOUT)
//   kill()                          -> -1, ECANCELED
//   a handled signal (signals.hpp)  -> -1, EINTR, whatever SA_RESTART says, as the kernel does
//   epoll cannot watch an fd        -> the real blocking call for the time left
// The sigmask of ppoll/pselect/epoll_pwait is applied to each real call, and to the hub's epoll
// while the fiber is parked (eintr_scope). errno is preserved on success.

// The shim defines libc's own names: a fortified build's inline wrappers would clash with them.
#undef _FORTIFY_SOURCE

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstring>
#include <memory>
#include <new>

#include "deadline.hpp"
#include "shim.hpp"
#include "signals.hpp"

FERN_REAL_DEF(poll)
FERN_REAL_DEF(ppoll)
FERN_REAL_DEF(select)
FERN_REAL_DEF(pselect)
FERN_REAL_DEF(epoll_wait)
FERN_REAL_DEF(epoll_pwait)
FERN_REAL_DEF(epoll_pwait2)

extern "C" [[noreturn]] void __chk_fail(void);

namespace fern::shim {

namespace {

using detail::deadline_t;
using detail::fd_interest;
using detail::io_dir;

// The (fd, direction) pairs a call waits on: inline for the usual few, else on the heap.
class interests {
 public:
  bool reserve(std::size_t n) noexcept {
    if (n <= inline_cap) return true;
    heap_.reset(new (std::nothrow) fd_interest[n]);
    data_ = heap_.get();
    return data_ != nullptr;
  }
  void push(int fd, io_dir d) noexcept { data_[n_++] = {fd, d}; }
  const fd_interest* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return n_; }

 private:
  static constexpr std::size_t inline_cap = 16;
  fd_interest inline_[inline_cap];
  std::unique_ptr<fd_interest[]> heap_;
  fd_interest* data_ = inline_;
  std::size_t n_ = 0;
};

// Milliseconds for poll/epoll_wait's fallback, rounded up like the kernel's own conversions.
int timeout_ms(const timespec* t) noexcept {
  if (!t) return -1;
  std::int64_t ms = t->tv_sec * 1000 + (t->tv_nsec + 999999) / 1000000;
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

// The wait under every call of this file, once a zero-timeout real call found nothing ready.
// attempt(t) is the real call with timeout t (null: forever; zero: a poll). Returns the result of
// the attempt that ends the wait, or -1 and errno; restores errno on success.
template <class Attempt>
int park_and_retry(detail::hub_impl* h, const interests& in, deadline_t dl, const sigset_t* mask,
                   int saved_errno, Attempt attempt) {
  static constexpr timespec zero{0, 0};
  eintr_scope scope(h, eintr::always, mask, in.size() == 0 && dl == detail::no_deadline);
  int r;
  for (;;) {
    bool expired = false;
    int w = detail::wait_fds(in.data(), in.size(), dl, &expired);
    if (w == 0) {  // may be ready
      r = attempt(&zero);
      if (r == 0) continue;
    } else if (w == ETIMEDOUT) {
      if (expired) {
        errno = ETIMEDOUT;
        return -1;
      }
      r = attempt(&zero);  // the kernel's last scan at the timeout
    } else if (w == ECANCELED || w == EINTR) {
      errno = w;
      return -1;
    } else {
      // epoll cannot watch one of the fds (ENOMEM, ENOSPC, ELOOP...), or nothing but this call
      // itself could end the wait (EDEADLK): the thread blocks in the real call, as without fern.
      timespec left;
      if (dl != detail::no_deadline) left = to_timespec(left_ns(dl));
      r = attempt(dl == detail::no_deadline ? nullptr : &left);
    }
    break;
  }
  if (r >= 0) errno = saved_errno;
  return r;
}

// --- poll, ppoll --------------------------------------------------------------------------------

// poll events each hub direction can report (errors and hang-ups wake both).
constexpr short read_events = POLLIN | POLLPRI | POLLRDNORM | POLLRDBAND | POLLRDHUP;
constexpr short write_events = POLLOUT | POLLWRNORM | POLLWRBAND;

template <class Attempt>
int poll_wait(detail::hub_impl* h, pollfd* fds, nfds_t n, deadline_t dl, const sigset_t* mask,
              int saved_errno, Attempt attempt) {
  interests in;
  if (!in.reserve(2 * n)) {
    errno = ENOMEM;
    return -1;
  }
  for (nfds_t i = 0; i < n; ++i) {
    if (fds[i].fd < 0) continue;
    short ev = fds[i].events;
    if ((ev & read_events) || !(ev & write_events)) in.push(fds[i].fd, io_dir::read);
    if (ev & write_events) in.push(fds[i].fd, io_dir::write);
  }
  return park_and_retry(h, in, dl, mask, saved_errno, attempt);
}

int hooked_poll(pollfd* fds, nfds_t n, int timeout) {
  detail::hub_impl* h = cooperative_hub();
  if (!h || timeout == 0) return REAL(poll)(fds, n, timeout);
  const int saved = errno;
  const deadline_t dl =
      timeout < 0 ? detail::no_deadline : deadline_in(std::int64_t{timeout} * 1000000);
  int r = REAL(poll)(fds, n, 0);
  if (r != 0) return r;
  return poll_wait(h, fds, n, dl, nullptr, saved,
                   [&](const timespec* t) { return REAL(poll)(fds, n, timeout_ms(t)); });
}

int hooked_ppoll(pollfd* fds, nfds_t n, const timespec* tmo, const sigset_t* mask) {
  detail::hub_impl* h = cooperative_hub();
  // An invalid timeout is refused before anything else; a zero one never waits.
  if (!h || (tmo && (!valid_timespec(*tmo) || (tmo->tv_sec == 0 && tmo->tv_nsec == 0))))
    return REAL(ppoll)(fds, n, tmo, mask);
  const int saved = errno;
  const deadline_t dl =
      tmo ? deadline_in(duration_ns(tmo->tv_sec, tmo->tv_nsec)) : detail::no_deadline;
  const timespec zero{0, 0};
  int r = REAL(ppoll)(fds, n, &zero, mask);
  if (r != 0) return r;
  return poll_wait(h, fds, n, dl, mask, saved,
                   [&](const timespec* t) { return REAL(ppoll)(fds, n, t, mask); });
}

// --- select, pselect ----------------------------------------------------------------------------

// The calling thread's pid, for process_vm_readv (getpid is a system call); refreshed in the
// child of fork().
std::atomic<pid_t> g_pid{0};
pid_t self_pid() noexcept {
  pid_t p = g_pid.load(std::memory_order_relaxed);
  if (!p) {
    p = static_cast<pid_t>(::syscall(SYS_getpid));
    g_pid.store(p, std::memory_order_relaxed);
  }
  return p;
}
__attribute__((constructor)) void watch_fork() {
  ::pthread_atfork(nullptr, nullptr, [] { g_pid.store(0, std::memory_order_relaxed); });
}

// True if [p, p + n) lies in the used part of the calling fiber's stack (from the current frame
// to its top): memory that is certainly readable. fd_sets are usually locals there.
bool on_own_stack(detail::hub_impl* h, const void* p, std::size_t n) noexcept {
  const char* sp = static_cast<const char*>(__builtin_frame_address(0));
  const detail::fiber_base* f = h->running();
  const char* top = f->is_root() ? static_cast<const char*>(h->root_stack_lo_) + h->root_stack_size_
                                 : static_cast<const char*>(f->stack_top_);
  const char* b = static_cast<const char*>(p);
  return top && b >= sp && b + n <= top;
}

// The caller's fd sets as they were on entry: each real call overwrites them with its result,
// and a call that found nothing must be repeated on the originals. Sets on the fiber's own stack
// are copied directly; others through process_vm_readv (a system call, ~0.3 us), so that an
// unreadable set gives the kernel's EFAULT instead of a crash.
class fd_snapshot {
 public:
  // 0, EFAULT (some set is unreadable) or ENOMEM.
  int take(detail::hub_impl* h, int nfds, fd_set* r, fd_set* w, fd_set* e) noexcept {
    n_ = bound(nfds);
    bytes_ = ((static_cast<std::size_t>(n_) + 63) / 64) * 8;
    if (bytes_ * 3 > sizeof inline_) {
      heap_.reset(new (std::nothrow) unsigned char[bytes_ * 3]);
      if (!heap_) return ENOMEM;
      buf_ = heap_.get();
    }
    fd_set* user[3] = {r, w, e};
    iovec local[3], remote[3];
    int k = 0;
    for (int i = 0; i < 3; ++i) {
      user_[i] = user[i];
      if (!user[i] || bytes_ == 0) continue;
      if (on_own_stack(h, user[i], bytes_)) {
        std::memcpy(buf_ + i * bytes_, user[i], bytes_);
        continue;
      }
      local[k] = {buf_ + i * bytes_, bytes_};
      remote[k] = {user[i], bytes_};
      ++k;
    }
    if (k == 0) return 0;
    const int saved = errno;
    // Variadic syscall(): every argument must be passed at the kernel's width (unsigned long
    // counts), or the upper half of the register is garbage (clang leaves it so: EINVAL).
    ssize_t got =
        ::syscall(SYS_process_vm_readv, static_cast<long>(self_pid()), local,
                  static_cast<unsigned long>(k), remote, static_cast<unsigned long>(k), 0UL);
    if (got == static_cast<ssize_t>(bytes_) * k) return 0;
    if (got >= 0 || (errno != ENOSYS && errno != EPERM)) return EFAULT;
    // process_vm_readv refused (seccomp, ENOSYS): trust the pointers, as glibc's wrappers do.
    errno = saved;
    for (int i = 0; i < k; ++i) std::memcpy(local[i].iov_base, remote[i].iov_base, bytes_);
    return 0;
  }
  void restore() const noexcept {
    for (int i = 0; i < 3; ++i)
      if (user_[i] && bytes_) std::memcpy(user_[i], buf_ + i * bytes_, bytes_);
  }
  bool isset(int set, int fd) const noexcept {
    const unsigned char* b = buf_ + set * bytes_;
    return user_[set] && (b[fd / 8] >> (fd % 8)) & 1;
  }
  int nfds() const noexcept { return n_; }

 private:
  // The kernel reads nfds bits, clamped to the size of the fd table; the table cannot be larger
  // than RLIMIT_NOFILE allows, so clamp to that (only asked beyond FD_SETSIZE).
  static int bound(int nfds) noexcept {
    if (nfds <= FD_SETSIZE) return nfds;
    rlimit rl;
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < static_cast<rlim_t>(nfds))
      return static_cast<int>(((rl.rlim_cur + 63) / 64) * 64);
    return nfds;
  }
  unsigned char inline_[3 * FD_SETSIZE / 8];
  std::unique_ptr<unsigned char[]> heap_;
  unsigned char* buf_ = inline_;
  fd_set* user_[3] = {};
  std::size_t bytes_ = 0;
  int n_ = 0;
};

// Readable and exceptional conditions (urgent data) arrive as read readiness.
template <class Attempt>
int select_wait(detail::hub_impl* h, const fd_snapshot& snap, deadline_t dl, const sigset_t* mask,
                int saved_errno, Attempt attempt) {
  interests in;
  int count = 0;
  for (int fd = 0; fd < snap.nfds(); ++fd)
    count += (snap.isset(0, fd) || snap.isset(2, fd)) + snap.isset(1, fd);
  if (!in.reserve(static_cast<std::size_t>(count))) {
    errno = ENOMEM;
    return -1;
  }
  for (int fd = 0; fd < snap.nfds(); ++fd) {
    if (snap.isset(0, fd) || snap.isset(2, fd)) in.push(fd, io_dir::read);
    if (snap.isset(1, fd)) in.push(fd, io_dir::write);
  }
  int r = park_and_retry(h, in, dl, mask, saved_errno, attempt);
  if (r < 0) {  // the kernel leaves the sets alone on error; the first attempt cleared them
    const int e = errno;
    snap.restore();
    errno = e;
  }
  return r;
}

int hooked_select(int nfds, fd_set* r, fd_set* w, fd_set* e, timeval* tv) {
  detail::hub_impl* h = cooperative_hub();
  // Refused at once (negative timeout or nfds), or never waits (zero timeout): the real call.
  if (!h || nfds < 0 || (tv && (tv->tv_sec < 0 || tv->tv_usec < 0)) ||
      (tv && tv->tv_sec == 0 && tv->tv_usec == 0))
    return REAL(select)(nfds, r, w, e, tv);
  const int saved = errno;
  deadline_t dl = detail::no_deadline;
  if (tv) {
    // Normalized as the kernel does (tv_usec may exceed a second).
    std::int64_t sec = tv->tv_sec, usec = tv->tv_usec;
    sec = sec > INT64_MAX - usec / 1000000 ? INT64_MAX : sec + usec / 1000000;
    dl = deadline_in(duration_ns(sec, (usec % 1000000) * 1000));
  }
  // Linux writes the time left back into *tv on every return.
  auto finish = [&](int res) {
    if (tv) {
      std::int64_t left = left_ns(dl);
      tv->tv_sec = static_cast<time_t>(left / ns_per_s);
      tv->tv_usec = static_cast<suseconds_t>((left % ns_per_s) / 1000);
    }
    return res;
  };
  fd_snapshot snap;
  if (int err = snap.take(h, nfds, r, w, e)) {
    if (err == EFAULT) return REAL(select)(nfds, r, w, e, tv);  // fails at once, as it should
    errno = err;
    return finish(-1);
  }
  timeval zero{0, 0};
  int res = REAL(select)(nfds, r, w, e, &zero);
  if (res != 0) return finish(res);
  res = select_wait(h, snap, dl, nullptr, saved, [&](const timespec* t) {
    snap.restore();
    timeval tvl{0, 0};
    if (t) tvl = {t->tv_sec, static_cast<suseconds_t>((t->tv_nsec + 999) / 1000)};
    return REAL(select)(nfds, r, w, e, t ? &tvl : nullptr);
  });
  const int keep = errno;
  finish(res);
  errno = keep;
  return res;
}

int hooked_pselect(int nfds, fd_set* r, fd_set* w, fd_set* e, const timespec* tmo,
                   const sigset_t* mask) {
  detail::hub_impl* h = cooperative_hub();
  if (!h || nfds < 0 || (tmo && (!valid_timespec(*tmo) || (tmo->tv_sec == 0 && tmo->tv_nsec == 0))))
    return REAL(pselect)(nfds, r, w, e, tmo, mask);
  const int saved = errno;
  const deadline_t dl =
      tmo ? deadline_in(duration_ns(tmo->tv_sec, tmo->tv_nsec)) : detail::no_deadline;
  fd_snapshot snap;
  if (int err = snap.take(h, nfds, r, w, e)) {
    if (err == EFAULT) return REAL(pselect)(nfds, r, w, e, tmo, mask);
    errno = err;
    return -1;
  }
  const timespec zero{0, 0};
  int res = REAL(pselect)(nfds, r, w, e, &zero, mask);
  if (res != 0) return res;
  return select_wait(h, snap, dl, mask, saved, [&](const timespec* t) {
    snap.restore();
    return REAL(pselect)(nfds, r, w, e, t, mask);
  });
}

// --- epoll
// ----------------------------------------------------------------------------------------

// A program's epoll fd is readable while its ready list is not empty: park on that.
template <class Attempt>
int epoll_park(detail::hub_impl* h, int epfd, deadline_t dl, const sigset_t* mask, int saved_errno,
               Attempt attempt) {
  interests in;
  in.push(epfd, io_dir::read);
  return park_and_retry(h, in, dl, mask, saved_errno, attempt);
}

int hooked_epoll_pwait(int epfd, epoll_event* evs, int max, int timeout, const sigset_t* mask) {
  detail::hub_impl* h = cooperative_hub();
  if (!h || timeout == 0) return REAL(epoll_pwait)(epfd, evs, max, timeout, mask);
  const int saved = errno;
  const deadline_t dl =
      timeout < 0 ? detail::no_deadline : deadline_in(std::int64_t{timeout} * 1000000);
  int r = REAL(epoll_pwait)(epfd, evs, max, 0, mask);
  if (r != 0) return r;
  return epoll_park(h, epfd, dl, mask, saved, [&](const timespec* t) {
    return REAL(epoll_pwait)(epfd, evs, max, timeout_ms(t), mask);
  });
}

}  // namespace

}  // namespace fern::shim

using namespace fern::shim;

extern "C" {

int poll(pollfd* fds, nfds_t n, int timeout) {
  return hooked_poll(fds, n, timeout);
}
int __poll(pollfd* fds, nfds_t n, int timeout) __attribute__((alias("poll")));

int ppoll(pollfd* fds, nfds_t n, const timespec* tmo, const sigset_t* mask) {
  return hooked_ppoll(fds, n, tmo, mask);
}

// _FORTIFY_SOURCE turns poll/ppoll into these when the array's size is known (glibc's check).
int __poll_chk(pollfd* fds, nfds_t n, int timeout, size_t fdslen) {
  if (fdslen / sizeof(*fds) < n) __chk_fail();
  return hooked_poll(fds, n, timeout);
}
int __ppoll_chk(pollfd* fds, nfds_t n, const timespec* tmo, const sigset_t* mask, size_t fdslen) {
  if (fdslen / sizeof(*fds) < n) __chk_fail();
  return hooked_ppoll(fds, n, tmo, mask);
}

int select(int nfds, fd_set* r, fd_set* w, fd_set* e, timeval* tv) {
  return hooked_select(nfds, r, w, e, tv);
}
int __select(int nfds, fd_set* r, fd_set* w, fd_set* e, timeval* tv)
    __attribute__((alias("select")));

int pselect(int nfds, fd_set* r, fd_set* w, fd_set* e, const timespec* tmo, const sigset_t* mask) {
  return hooked_pselect(nfds, r, w, e, tmo, mask);
}

int epoll_wait(int epfd, epoll_event* evs, int max, int timeout) {
  fern::detail::hub_impl* h = cooperative_hub();
  if (!h || timeout == 0) return REAL(epoll_wait)(epfd, evs, max, timeout);
  return hooked_epoll_pwait(epfd, evs, max, timeout, nullptr);
}

int epoll_pwait(int epfd, epoll_event* evs, int max, int timeout, const sigset_t* mask) {
  return hooked_epoll_pwait(epfd, evs, max, timeout, mask);
}

// glibc >= 2.35. A null timeout waits forever; an invalid one is refused before anything else.
int epoll_pwait2(int epfd, epoll_event* evs, int max, const timespec* tmo, const sigset_t* mask) {
  fern::detail::hub_impl* h = cooperative_hub();
  if (!h || (tmo && (!valid_timespec(*tmo) || (tmo->tv_sec == 0 && tmo->tv_nsec == 0))))
    return REAL(epoll_pwait2)(epfd, evs, max, tmo, mask);
  const int saved = errno;
  const fern::detail::deadline_t dl =
      tmo ? deadline_in(duration_ns(tmo->tv_sec, tmo->tv_nsec)) : fern::detail::no_deadline;
  const timespec zero{0, 0};
  int r = REAL(epoll_pwait2)(epfd, evs, max, &zero, mask);
  if (r != 0) return r;
  return epoll_park(h, epfd, dl, mask, saved,
                    [&](const timespec* t) { return REAL(epoll_pwait2)(epfd, evs, max, t, mask); });
}

}  // extern "C"
