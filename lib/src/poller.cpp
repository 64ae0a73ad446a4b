// The hub's side of fd waits: registration (once per fd, edge-triggered, both directions),
// dispatch of epoll events to waiters by generation tag, close handling, and the public
// wait_readable / wait_writable / close. See poller.hpp for the readiness protocol.
#include "poller.hpp"

#include <errno.h>
#include <sys/epoll.h>

#include <new>
#include <system_error>

#include "fern/errors.hpp"
#include "fern/io.hpp"
#include "hub_impl.hpp"
#include "sys.hpp"

namespace fern::detail {

fd_state* fd_table::get(int fd) {
  if (fd < 0) return nullptr;
  std::size_t i = static_cast<std::size_t>(fd);
  if (i >= fds_.size()) fds_.resize(std::max<std::size_t>(i + 1, fds_.size() * 2));
  if (!fds_[i]) fds_[i] = std::make_unique<fd_state>();
  return fds_[i].get();
}

int hub_impl::fd_prepare(int fd, io_dir d, bool exclusive, fd_state** out) noexcept {
  fd_state* st;
  try {
    st = fds_.get(fd);
  } catch (...) {
    return ENOMEM;
  }
  if (!st) return EBADF;
  int di = static_cast<int>(d);
  if (st->ready[di]) {  // an edge arrived while nobody waited: report it once
    st->ready[di] = false;
    return fd_ready;
  }
  if (!st->registered) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = epoll_tag(fd, st->gen);
    if (sys::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0) {
      // EEXIST: the same open file is still registered under an older tag (it was closed
      // behind our back and the number reused by a dup of it): retag it.
      if (errno != EEXIST || sys::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) < 0) return errno;
    }
    st->registered = true;
  }
  if (exclusive && !st->waiters[di].empty()) return EBUSY;
  *out = st;
  return 0;
}

void hub_impl::fd_closing(int fd) noexcept {
  fd_state* st = fds_.find(fd);
  if (!st) return;
  if (st->registered) {
    sys::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    st->registered = false;
  }
  ++st->gen;
  for (int di = 0; di < 2; ++di) {
    st->ready[di] = false;
    while (list_hook* h = st->waiters[di].front()) {
      auto* iw = reinterpret_cast<io_waiter*>(waiter::from_hook(h));
      iw->closed = true;
      if (!unpark(iw->w, wake_reason::notified)) h->unlink();
    }
  }
}

void hub_impl::dispatch_io(std::uint64_t tag, std::uint32_t events) noexcept {
  int fd = static_cast<int>(static_cast<std::uint32_t>(tag));
  fd_state* st = fds_.find(fd);
  if (!st || !st->registered || st->gen != static_cast<std::uint32_t>(tag >> 32)) return;
  auto ready = [&](int di) {
    if (st->waiters[di].empty())
      st->ready[di] = true;
    else
      notify_all(st->waiters[di]);  // all: with edge triggering a woken fiber that leaves data
                                    // behind would otherwise strand the others
  };
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) ready(0);
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) ready(1);
}

namespace {

// Parks on fd and returns 0 if it may be ready, or an errno value from fd_prepare. `closed` is
// set if fern::close() ended the wait. Throws like block().
int wait_fd_throwing(int fd, io_dir d, deadline_t deadline, bool* timed_out) {
  hub_impl* h = hub_impl::current();
  fd_state* st = nullptr;
  int r = h->fd_prepare(fd, d, true, &st);
  if (r == hub_impl::fd_ready) return 0;
  if (r != 0) return r;
  io_waiter iw;
  st->waiters[static_cast<int>(d)].push_back(&iw.w.hook);
  struct count {
    hub_impl* h;
    count(hub_impl* hh) : h(hh) { ++h->io_waiters_; }
    ~count() { --h->io_waiters_; }
  } c(h);
  *timed_out = !block(iw.w, deadline);
  return iw.closed ? EBADF : 0;
}

bool wait_public(int fd, io_dir d, std::optional<std::chrono::nanoseconds> timeout) {
  bool timed_out = false;
  int r = wait_fd_throwing(fd, d, deadline_after(timeout), &timed_out);
  if (r == EBUSY)
    throw concurrent_use_error(d == io_dir::read
                                   ? "fern: another fiber already waits to read this fd"
                                   : "fern: another fiber already waits to write this fd");
  if (r != 0)
    throw std::system_error(r, std::generic_category(),
                            d == io_dir::read ? "fern::wait_readable" : "fern::wait_writable");
  return !timed_out;
}

}  // namespace

// The shim's errno for how a wait ended (io.hpp's wait_fd contract).
static int errno_of(wake_reason why) noexcept {
  switch (why) {
    case wake_reason::notified:
      return 0;
    case wake_reason::timed_out:
      return ETIMEDOUT;
    case wake_reason::killed:
      return ECANCELED;
    case wake_reason::loop_exit:
      return EDEADLK;
    case wake_reason::interrupted:
      return EINTR;
  }
  return 0;
}

int wait_fd(int fd, io_dir d, deadline_t deadline, bool* scope_expired) noexcept {
  hub_impl* h = hub_impl::current();
  fd_state* st = nullptr;
  int r = h->fd_prepare(fd, d, false, &st);
  if (r == hub_impl::fd_ready) return 0;
  if (r != 0) return r;
  io_waiter iw;
  st->waiters[static_cast<int>(d)].push_back(&iw.w.hook);
  ++h->io_waiters_;
  wake_reason why = block_nothrow(iw.w, deadline, scope_expired);
  --h->io_waiters_;
  if (iw.closed) return EBADF;
  return errno_of(why);
}

int wait_fds(const fd_interest* v, std::size_t n, deadline_t deadline,
             bool* scope_expired) noexcept {
  hub_impl* h = hub_impl::current();
  // One member waiter per (fd, direction), on the fd's list; the fiber parks on `group`.
  constexpr std::size_t inline_members = 8;
  io_waiter inline_buf[inline_members];
  std::unique_ptr<io_waiter[]> heap_buf;
  io_waiter* members = inline_buf;
  if (n > inline_members) {
    heap_buf.reset(new (std::nothrow) io_waiter[n]);
    if (!heap_buf) return ENOMEM;
    members = heap_buf.get();
  }
  waiter group;
  fiber_base* self = h->running();
  std::size_t linked = 0;
  int r = 0;
  for (std::size_t i = 0; i < n && r == 0; ++i) {
    fd_state* st = nullptr;
    int p = h->fd_prepare(v[i].fd, v[i].dir, false, &st);
    if (p == 0) {
      io_waiter& m = members[linked++];
      m.w.fiber = self;
      m.w.group = &group;
      st->waiters[static_cast<int>(v[i].dir)].push_back(&m.w.hook);
    } else if (p == hub_impl::fd_ready || p == EBADF) {
      r = hub_impl::fd_ready;  // EBADF: closed since the caller's poll; its next one says so
    } else if (p != EPERM) {   // EPERM: a regular file, always ready, never waited for
      r = p;
    }
  }
  wake_reason why = wake_reason::notified;
  if (r == 0) {
    if (linked) ++h->io_waiters_;
    why = block_nothrow(group, deadline, scope_expired);
    if (linked) --h->io_waiters_;
  }
  for (std::size_t i = 0; i < linked; ++i) members[i].w.hook.unlink();
  if (r == hub_impl::fd_ready) return 0;
  if (r != 0) return r;
  return errno_of(why);
}

void fd_closing(int fd) noexcept {
  if (hub_impl* h = hub_impl::peek()) h->fd_closing(fd);
}

}  // namespace fern::detail

namespace fern {

bool wait_readable(int fd, std::optional<std::chrono::nanoseconds> timeout) {
  return detail::wait_public(fd, detail::io_dir::read, timeout);
}

bool wait_writable(int fd, std::optional<std::chrono::nanoseconds> timeout) {
  return detail::wait_public(fd, detail::io_dir::write, timeout);
}

void close(int fd) {
  detail::fd_closing(fd);
  if (sys::close(fd) < 0 && errno != EINTR)
    throw std::system_error(errno, std::generic_category(), "fern::close");
}

}  // namespace fern
