// The per-fd view table (fd_view.hpp): a two-level array of relaxed atomics, chunks mmap'ed on
// first write and never freed, so a lookup from any thread needs no lock and never sees freed
// memory. Classification uses raw system calls only: the hooks call it, and it must not recurse
// into them.
#include "fd_view.hpp"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <new>

namespace fern::shim {

namespace view_detail {

std::atomic<chunk*> table[max_fds / chunk_size];

namespace {

std::atomic<int> high_water{-1};
std::atomic<std::uint32_t> next_group{0};

slot* ensure(int fd) noexcept {
  if (static_cast<unsigned>(fd) >= static_cast<unsigned>(max_fds)) return nullptr;
  std::atomic<chunk*>& p = table[fd >> chunk_shift];
  chunk* c = p.load(std::memory_order_acquire);
  if (!c) {
    void* m =
        ::mmap(nullptr, sizeof(chunk), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return nullptr;
    chunk* fresh = new (m) chunk;
    if (p.compare_exchange_strong(c, fresh, std::memory_order_acq_rel))
      c = fresh;
    else
      ::munmap(m, sizeof(chunk));  // another thread won; c is its chunk
  }
  int hw = high_water.load(std::memory_order_relaxed);
  while (fd > hw && !high_water.compare_exchange_weak(hw, fd, std::memory_order_relaxed)) {
  }
  return &c->s[fd & (chunk_size - 1)];
}

std::int64_t timeval_ns(const timeval& tv) noexcept {
  // The kernel's rule (sock_set_timeout): a negative time means none, and so does zero.
  if (tv.tv_sec < 0 || (tv.tv_sec == 0 && tv.tv_usec == 0)) return 0;
  return static_cast<std::int64_t>(tv.tv_sec) * 1000000000 +
         static_cast<std::int64_t>(tv.tv_usec) * 1000;
}

std::int64_t kernel_timeout(int fd, int opt) noexcept {
  timeval tv{};
  socklen_t len = sizeof tv;
  if (::syscall(SYS_getsockopt, fd, SOL_SOCKET, opt, &tv, &len) < 0) return 0;
  return timeval_ns(tv);
}

// Applies fn to fd's slot and to every slot in its dup group.
template <class Fn>
void for_group(int fd, Fn fn) noexcept {
  slot* s = find(fd);
  // An unclassified slot is left alone: the next lookup classifies it from the kernel's state.
  if (!s || (s->bits.load(std::memory_order_relaxed) & kind_mask) == 0) return;
  std::uint32_t g = s->group.load(std::memory_order_relaxed);
  if (g == 0) {
    fn(*s);
    return;
  }
  int hw = high_water.load(std::memory_order_relaxed);
  for (int i = 0; i <= hw; ++i) {
    slot* o = find(i);
    if (o && o->group.load(std::memory_order_relaxed) == g &&
        (o->bits.load(std::memory_order_relaxed) & kind_mask) != 0)
      fn(*o);
  }
}

void set_bit(slot& s, std::uint32_t bit, bool on) noexcept {
  if (on)
    s.bits.fetch_or(bit, std::memory_order_relaxed);
  else
    s.bits.fetch_and(~bit, std::memory_order_relaxed);
}

}  // namespace

fd_view classify(int fd) noexcept {
  const int saved = errno;
  // Not open (or beyond the table): `file`, so the real call reports the error.
  fd_view v{static_cast<std::uint32_t>(fd_kind::file)};
  struct stat st;
  if (::fstat(fd, &st) < 0) {
    errno = saved;
    return v;
  }
  fd_kind kind;
  std::int64_t rcv = 0, snd = 0;
  if (S_ISSOCK(st.st_mode)) {
    int type = 0;
    socklen_t len = sizeof type;
    if (::syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0)
      kind = type == SOCK_STREAM      ? fd_kind::stream
             : type == SOCK_SEQPACKET ? fd_kind::seqpacket
                                      : fd_kind::dgram;
    else
      kind = fd_kind::dgram;
    rcv = kernel_timeout(fd, SO_RCVTIMEO);
    snd = kernel_timeout(fd, SO_SNDTIMEO);
  } else if (S_ISFIFO(st.st_mode)) {
    kind = fd_kind::fifo;
  } else if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISBLK(st.st_mode)) {
    kind = fd_kind::file;
  } else {
    kind = fd_kind::other;  // ttys, character devices, anonymous inodes (eventfd, ...)
  }
  long fl = ::syscall(SYS_fcntl, fd, F_GETFL);
  // Not created by the shim: the kernel's flag is the program's own.
  bool nonblock = fl >= 0 && (fl & O_NONBLOCK);
  v.bits = static_cast<std::uint32_t>(kind) | (nonblock ? nonblock_bit : 0) |
           (rcv ? rcvtimeo_bit : 0) | (snd ? sndtimeo_bit : 0);
  if (slot* s = ensure(fd)) {
    std::uint32_t expected = 0;
    if (s->bits.compare_exchange_strong(expected, v.bits, std::memory_order_relaxed)) {
      // A reader between the two stores sees the timeout bit with 0 ns: no deadline, once.
      s->rcvtimeo.store(rcv, std::memory_order_relaxed);
      s->sndtimeo.store(snd, std::memory_order_relaxed);
    } else if ((expected & kind_mask) != 0) {
      v.bits = expected;  // another thread classified or created it first
    }
  }
  errno = saved;
  return v;
}

detail::deadline_t timeout_deadline(int fd, detail::io_dir d) noexcept {
  slot* s = find(fd);
  std::int64_t ns =
      s ? (d == detail::io_dir::read ? s->rcvtimeo : s->sndtimeo).load(std::memory_order_relaxed)
        : 0;
  return ns ? detail::deadline_after(std::chrono::nanoseconds(ns)) : detail::no_deadline;
}

}  // namespace view_detail

using namespace view_detail;

void view_created(int fd, fd_kind kind, bool owned, bool user_nonblock) noexcept {
  slot* s = ensure(fd);
  if (!s) return;
  s->group.store(0, std::memory_order_relaxed);
  s->rcvtimeo.store(0, std::memory_order_relaxed);
  s->sndtimeo.store(0, std::memory_order_relaxed);
  s->bits.store(static_cast<std::uint32_t>(kind) | (owned ? owned_bit : 0) |
                    (user_nonblock ? nonblock_bit : 0),
                std::memory_order_relaxed);
}

void view_accepted(int fd, int listener, bool owned, bool user_nonblock) noexcept {
  fd_view lv = view_of(listener);
  slot* ls = find(listener);
  slot* s = ensure(fd);
  if (!s) return;
  fd_kind k = lv.kind() == fd_kind::stream || lv.kind() == fd_kind::seqpacket ? lv.kind()
                                                                              : fd_kind::unknown;
  if (k == fd_kind::unknown) {  // let the next lookup look at it
    view_forget(fd);
    return;
  }
  // Linux copies the listener's socket options, SO_RCVTIMEO/SO_SNDTIMEO included, into each
  // accepted socket (sk_clone_lock); O_NONBLOCK comes from accept4's flags alone.
  std::int64_t rcv = ls && lv.has_rcvtimeo() ? ls->rcvtimeo.load(std::memory_order_relaxed) : 0;
  std::int64_t snd = ls && lv.has_sndtimeo() ? ls->sndtimeo.load(std::memory_order_relaxed) : 0;
  s->group.store(0, std::memory_order_relaxed);
  s->rcvtimeo.store(rcv, std::memory_order_relaxed);
  s->sndtimeo.store(snd, std::memory_order_relaxed);
  s->bits.store(static_cast<std::uint32_t>(k) | (owned ? owned_bit : 0) |
                    (user_nonblock ? nonblock_bit : 0) | (rcv ? rcvtimeo_bit : 0) |
                    (snd ? sndtimeo_bit : 0),
                std::memory_order_relaxed);
}

void view_forget(int fd) noexcept {
  slot* s = find(fd);
  if (!s) return;
  s->bits.store(0, std::memory_order_relaxed);
  s->group.store(0, std::memory_order_relaxed);
  s->rcvtimeo.store(0, std::memory_order_relaxed);
  s->sndtimeo.store(0, std::memory_order_relaxed);
}

void view_dup(int from, int to) noexcept {
  if (from == to) return;
  view_of(from);  // classify it first, so the copy carries its kind and flags
  slot* f = find(from);
  slot* t = ensure(to);
  if (!t) return;
  if (!f) {
    view_forget(to);
    return;
  }
  std::uint32_t g = f->group.load(std::memory_order_relaxed);
  if (g == 0) {
    do g = next_group.fetch_add(1, std::memory_order_relaxed) + 1;
    while (g == 0);
    std::uint32_t none = 0;
    if (!f->group.compare_exchange_strong(none, g, std::memory_order_relaxed)) g = none;
  }
  t->group.store(g, std::memory_order_relaxed);
  t->rcvtimeo.store(f->rcvtimeo.load(std::memory_order_relaxed), std::memory_order_relaxed);
  t->sndtimeo.store(f->sndtimeo.load(std::memory_order_relaxed), std::memory_order_relaxed);
  t->bits.store(f->bits.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

void view_set_nonblock(int fd, bool on) noexcept {
  view_of(fd);
  for_group(fd, [on](slot& s) { set_bit(s, nonblock_bit, on); });
}

void view_set_timeout(int fd, detail::io_dir d, std::int64_t ns) noexcept {
  view_of(fd);
  bool rd = d == detail::io_dir::read;
  for_group(fd, [&](slot& s) {
    (rd ? s.rcvtimeo : s.sndtimeo).store(ns, std::memory_order_relaxed);
    set_bit(s, rd ? rcvtimeo_bit : sndtimeo_bit, ns != 0);
  });
}

void view_disown(int fd) noexcept {
  for_group(fd, [](slot& s) { set_bit(s, owned_bit, false); });
}

void view_set_no_nowait(int fd) noexcept {
  for_group(fd, [](slot& s) { set_bit(s, no_nowait_bit, true); });
}

void view_set_file(int fd) noexcept {
  for_group(fd, [](slot& s) {
    std::uint32_t b = s.bits.load(std::memory_order_relaxed);
    while (!s.bits.compare_exchange_weak(
        b, (b & ~kind_mask) | static_cast<std::uint32_t>(fd_kind::file),
        std::memory_order_relaxed)) {
    }
  });
}

int view_high_water() noexcept {
  return high_water.load(std::memory_order_relaxed);
}

}  // namespace fern::shim
