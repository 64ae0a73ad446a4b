// The program's view of each file descriptor, process-wide (fds are shared by all threads, hubs
// are not): what kind of file it is, whether the shim created the open file description (and so
// set O_NONBLOCK on it underneath), the O_NONBLOCK the program itself asked for (what
// fcntl(F_GETFL) shows) and its SO_RCVTIMEO / SO_SNDTIMEO. Hooks read it on every call, so a
// lookup is two loads and no lock; it never allocates except when a new block of fds is first
// written. It must not call any hooked function (it uses raw system calls).
#pragma once

#include <atomic>
#include <cstdint>

#include "fern/detail/core.hpp"
#include "fern/io.hpp"

namespace fern::shim {

// What the shim does with an fd depends on its kind, decided once with fstat and cached.
enum class fd_kind : std::uint8_t {
  unknown = 0,  // not seen yet, or closed: the next lookup classifies it
  stream,       // SOCK_STREAM socket: a blocking send writes everything, MSG_WAITALL waits
  dgram,        // datagram or raw socket: one call moves one message
  seqpacket,    // SOCK_SEQPACKET socket: like dgram; write() adds MSG_EOR, as the kernel does
  fifo,         // pipe or FIFO: stream semantics; per-call RWF_NOWAIT (Linux >= 6.x pipes)
  other,        // tty, character device, eventfd, timerfd...: epoll accepts it
  file,         // regular file, directory, block device, or an fd epoll refuses: the real call
};

// A snapshot of one fd's view: the packed bits of its slot, tested in place (a hook reads it on
// every call; decoding it into separate flags would cost more than the lookup). Fields may be
// stale the moment they are read if another thread changes the fd concurrently, exactly as with
// the kernel's own flags. Passed by value.
struct fd_view {
  static constexpr std::uint32_t kind_mask = 0x7;  // the fd_kind
  // The shim created the description and set O_NONBLOCK on it.
  static constexpr std::uint32_t owned_bit = 1u << 3;
  // The program's O_NONBLOCK (or SOCK_NONBLOCK, FIONBIO).
  static constexpr std::uint32_t nonblock_bit = 1u << 4;
  // RWF_NOWAIT was refused (EOPNOTSUPP): wait for readiness first.
  static constexpr std::uint32_t no_nowait_bit = 1u << 5;
  // SO_RCVTIMEO / SO_SNDTIMEO is set (the slot's rcvtimeo / sndtimeo is non-zero).
  static constexpr std::uint32_t rcvtimeo_bit = 1u << 6;
  static constexpr std::uint32_t sndtimeo_bit = 1u << 7;

  std::uint32_t bits = 0;  // kind_mask | the *_bit flags; 0: unknown

  fd_kind kind() const noexcept { return static_cast<fd_kind>(bits & kind_mask); }
  bool known() const noexcept { return bits & kind_mask; }  // not `unknown`: classified
  bool owned() const noexcept { return bits & owned_bit; }
  bool user_nonblock() const noexcept { return bits & nonblock_bit; }
  bool no_nowait() const noexcept { return bits & no_nowait_bit; }
  bool has_rcvtimeo() const noexcept { return bits & rcvtimeo_bit; }
  bool has_sndtimeo() const noexcept { return bits & sndtimeo_bit; }
  bool has_timeout(detail::io_dir d) const noexcept {
    return bits & (d == detail::io_dir::read ? rcvtimeo_bit : sndtimeo_bit);
  }
  // stream, dgram or seqpacket (1 to 3): one compare.
  bool socket() const noexcept { return (bits & kind_mask) - 1u < 3u; }
  // Steps 2 and 3 of DESIGN.md §5: a file, or the program's own O_NONBLOCK, gets the real call.
  bool passes_through() const noexcept {
    return (bits & kind_mask) == static_cast<std::uint32_t>(fd_kind::file) || user_nonblock();
  }
  // Shim-owned and blocking for the program: an EAGAIN (or a short write) of a real call off a
  // hub must be completed by blocking.
  bool owned_blocking() const noexcept { return (bits & (owned_bit | nonblock_bit)) == owned_bit; }
};

namespace view_detail {

// One fd's slot. `bits` packs the fd_view; `group` links fds that share one open file
// description through dup (0: none known), so flags the kernel keeps per description
// (O_NONBLOCK, SO_*TIMEO) change for all of them at once. Timeouts are nanoseconds, 0 = none.
// All fields are relaxed atomics: each is consistent on its own, and the hooks need no more.
struct slot {
  std::atomic<std::uint32_t> bits{0};
  std::atomic<std::uint32_t> group{0};
  std::atomic<std::int64_t> rcvtimeo{0};
  std::atomic<std::int64_t> sndtimeo{0};
};

inline constexpr int chunk_shift = 10;  // 1024 slots (24 KiB) per chunk
inline constexpr int chunk_size = 1 << chunk_shift;
inline constexpr int max_fds = 1 << 21;  // above fs.nr_open's default (2^20); beyond: no view
struct chunk {
  slot s[chunk_size];
};
// Chunks are allocated on first write (mmap, never freed) and published with release stores.
extern std::atomic<chunk*> table[max_fds / chunk_size];

inline constexpr std::uint32_t kind_mask = fd_view::kind_mask;
inline constexpr std::uint32_t owned_bit = fd_view::owned_bit;
inline constexpr std::uint32_t nonblock_bit = fd_view::nonblock_bit;
inline constexpr std::uint32_t no_nowait_bit = fd_view::no_nowait_bit;
inline constexpr std::uint32_t rcvtimeo_bit = fd_view::rcvtimeo_bit;
inline constexpr std::uint32_t sndtimeo_bit = fd_view::sndtimeo_bit;

inline slot* find(int fd) noexcept {
  const unsigned i = static_cast<unsigned>(fd);  // a negative fd is out of range too
  if (i >= static_cast<unsigned>(max_fds)) return nullptr;
  chunk* c = table[i >> chunk_shift].load(std::memory_order_acquire);
  return c ? &c->s[i & (chunk_size - 1)] : nullptr;
}

// Out of line and cold: a hook pays for it once per fd.
[[gnu::cold]] fd_view classify(int fd) noexcept;

// The deadline of a call with a timeout in direction d, read from fd's slot (view_deadline).
detail::deadline_t timeout_deadline(int fd, detail::io_dir d) noexcept;

}  // namespace view_detail

// The view of fd, classifying it (fstat, F_GETFL, and for sockets SO_TYPE and SO_*TIMEO) on first
// sight. An fd that is not open, or above the table, gets kind `file` without being cached, so
// the hook makes the real call and reports the kernel's error. Never blocks; any thread.
inline fd_view view_of(int fd) noexcept {
  if (view_detail::slot* s = view_detail::find(fd)) {
    std::uint32_t b = s->bits.load(std::memory_order_relaxed);
    if (__builtin_expect((b & view_detail::kind_mask) != 0, 1)) return fd_view{b};
  }
  return view_detail::classify(fd);
}

// The view of fd as recorded, without classifying an fd never seen (kind `unknown`). Only
// atomic loads: safe in a forked child and in a signal handler.
inline fd_view view_peek(int fd) noexcept {
  view_detail::slot* s = view_detail::find(fd);
  return s ? fd_view{s->bits.load(std::memory_order_relaxed)} : fd_view{};
}

// Records an fd the shim just created (socket, socketpair, pipe, accept): its kind, whether the
// shim set O_NONBLOCK underneath, and the program's own O_NONBLOCK. Timeouts are reset.
void view_created(int fd, fd_kind kind, bool owned, bool user_nonblock) noexcept;
// The same for an accepted socket, which inherits SO_RCVTIMEO/SO_SNDTIMEO from its listener.
void view_accepted(int fd, int listener, bool owned, bool user_nonblock) noexcept;
// Forgets fd (closed): the next lookup of the number classifies whatever it then is.
void view_forget(int fd) noexcept;
// fd `to` is now a duplicate of `from` (dup, dup2, dup3, F_DUPFD): same view, same group.
void view_dup(int from, int to) noexcept;
// The program set or cleared O_NONBLOCK on fd's description (F_SETFL, FIONBIO).
void view_set_nonblock(int fd, bool on) noexcept;
// The program set SO_RCVTIMEO (d == read) or SO_SNDTIMEO (write); ns == 0 clears it.
void view_set_timeout(int fd, detail::io_dir d, std::int64_t ns) noexcept;
// fd's description is no longer non-blocking underneath (made blocking for an exec'd program):
// it and its duplicates are no longer shim-owned. Async-signal-safe.
void view_disown(int fd) noexcept;
// RWF_NOWAIT is not supported on fd's file: wait for readiness before the real call instead.
void view_set_no_nowait(int fd) noexcept;
// epoll refuses fd: treat it like a regular file from now on.
void view_set_file(int fd) noexcept;
// The deadline SO_RCVTIMEO (read) or SO_SNDTIMEO (write) gives a call that starts now, or
// no_deadline. Inline for the common case of no timeout: the view's bit says so.
inline detail::deadline_t view_deadline(int fd, fd_view v, detail::io_dir d) noexcept {
  if (__builtin_expect(!v.has_timeout(d), 1)) return detail::no_deadline;
  return view_detail::timeout_deadline(fd, d);
}
// The highest fd that ever had a slot written, or -1 (bounds close_range and exec's sweep).
int view_high_water() noexcept;

}  // namespace fern::shim
