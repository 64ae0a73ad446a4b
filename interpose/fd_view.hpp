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

// A snapshot of one fd's view. Fields may be stale the moment they are read if another thread
// changes the fd concurrently, exactly as with the kernel's own flags.
struct fd_view {
  fd_kind kind = fd_kind::unknown;
  bool owned = false;          // the shim created the description and set O_NONBLOCK on it
  bool user_nonblock = false;  // the program's O_NONBLOCK (or SOCK_NONBLOCK, FIONBIO)
  bool no_nowait = false;      // RWF_NOWAIT was refused (EOPNOTSUPP): wait for readiness first
  bool has_rcvtimeo = false;   // SO_RCVTIMEO is set (rcvtimeo() is non-zero)
  bool has_sndtimeo = false;   // SO_SNDTIMEO is set
  bool socket() const noexcept {
    return kind == fd_kind::stream || kind == fd_kind::dgram || kind == fd_kind::seqpacket;
  }
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

inline constexpr std::uint32_t kind_mask = 0x7;
inline constexpr std::uint32_t owned_bit = 1u << 3;
inline constexpr std::uint32_t nonblock_bit = 1u << 4;
inline constexpr std::uint32_t no_nowait_bit = 1u << 5;
inline constexpr std::uint32_t rcvtimeo_bit = 1u << 6;
inline constexpr std::uint32_t sndtimeo_bit = 1u << 7;

inline slot* find(int fd) noexcept {
  if (static_cast<unsigned>(fd) >= static_cast<unsigned>(max_fds)) return nullptr;
  chunk* c = table[fd >> chunk_shift].load(std::memory_order_acquire);
  return c ? &c->s[fd & (chunk_size - 1)] : nullptr;
}

inline fd_view decode(std::uint32_t b) noexcept {
  fd_view v;
  v.kind = static_cast<fd_kind>(b & kind_mask);
  v.owned = b & owned_bit;
  v.user_nonblock = b & nonblock_bit;
  v.no_nowait = b & no_nowait_bit;
  v.has_rcvtimeo = b & rcvtimeo_bit;
  v.has_sndtimeo = b & sndtimeo_bit;
  return v;
}

fd_view classify(int fd) noexcept;

}  // namespace view_detail

// The view of fd, classifying it (fstat, F_GETFL, and for sockets SO_TYPE and SO_*TIMEO) on first
// sight. An fd that is not open, or above the table, gets kind `file` without being cached, so
// the hook makes the real call and reports the kernel's error. Never blocks; any thread.
inline fd_view view_of(int fd) noexcept {
  if (view_detail::slot* s = view_detail::find(fd)) {
    std::uint32_t b = s->bits.load(std::memory_order_relaxed);
    if (__builtin_expect((b & view_detail::kind_mask) != 0, 1)) return view_detail::decode(b);
  }
  return view_detail::classify(fd);
}

// The view of fd as recorded, without classifying an fd never seen (kind `unknown`). Only
// atomic loads: safe in a forked child and in a signal handler.
inline fd_view view_peek(int fd) noexcept {
  view_detail::slot* s = view_detail::find(fd);
  return s ? view_detail::decode(s->bits.load(std::memory_order_relaxed)) : fd_view{};
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
// no_deadline.
detail::deadline_t view_deadline(int fd, const fd_view& v, detail::io_dir d) noexcept;
// The highest fd that ever had a slot written, or -1 (bounds close_range and exec's sweep).
int view_high_water() noexcept;

}  // namespace fern::shim
