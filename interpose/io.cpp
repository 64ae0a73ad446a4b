// read/write family: read, write, readv, writev, pread, pwrite (and their 64-bit and
// _FORTIFY_SOURCE names). Every hook follows DESIGN.md §5: the real call off a hub (completing a
// shim-owned fd's EAGAIN or short write by blocking, since the program asked for blocking) and
// for files (step 2) or a program-set O_NONBLOCK (step 3); otherwise attempts that cannot block,
// parking between them (step 4). On sockets the attempts are recv/send with MSG_DONTWAIT (the
// same kernel path as read/write on a socket), so they never depend on the description's flags.
#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "coop.hpp"

FERN_REAL_DEF(read)
FERN_REAL_DEF(write)
FERN_REAL_DEF(readv)
FERN_REAL_DEF(writev)
FERN_REAL_DEF(pread)
FERN_REAL_DEF(pwrite)
FERN_REAL_DEF(pread64)
FERN_REAL_DEF(pwrite64)

extern "C" [[noreturn]] void __chk_fail(void);

namespace fern::shim {
namespace {

using detail::hub_impl;
using detail::io_dir;

// What write() adds on a socket of this kind: the kernel's sock_write_iter marks each write on a
// SOCK_SEQPACKET socket as a record end.
int write_flags(fd_kind k) noexcept {
  return k == fd_kind::seqpacket ? MSG_EOR : 0;
}

// --- read, readv ------------------------------------------------------------------------------
// Each hook is split so that no path pays for more than it does. The exported function only
// decides, with no frame: step 1 (cooperative_hub), then steps 2 and 3 on the peeked view, and
// tail-calls the real function (a file, the program's O_NONBLOCK), the off-hub path (the real
// call, then, out of line, the rare completion of a shim-owned fd's EAGAIN) or the cooperative
// path. That one makes the first attempt (recv/send with MSG_DONTWAIT, RWF_NOWAIT) and returns
// its result if it completed the call; otherwise *_retry goes on from that result (coop.hpp).
// `saved` is the program's errno at the call, restored when the call succeeds after a failed
// attempt (a first attempt that succeeds never touched it). The SO_RCVTIMEO/SO_SNDTIMEO
// deadline is taken when the retry path starts, as the kernel's own timer starts once the call
// first finds nothing to do (sk_wait_data, sk_stream_wait_memory). The retry paths ask
// cooperative_hub() again: the answer is the call's (this thread, no switch since), null off a
// hub, where their waits block the thread.

[[gnu::noinline]] ssize_t read_retry(int fd, void* buf, size_t n, fd_view v, int saved,
                                     ssize_t first) {
  hub_impl* h = cooperative_hub();
  detail::deadline_t dl = view_deadline(fd, v, io_dir::read);
  ssize_t r;
  if (v.socket()) {
    auto attempt = [&] { return REAL(recvfrom)(fd, buf, n, MSG_DONTWAIT, nullptr, nullptr); };
    r = until_done_after(h, fd, io_dir::read, dl, first != untried ? first : attempt(), attempt);
  } else {
    iovec iov{buf, n};
    auto real = [&] { return REAL(read)(fd, buf, n); };
    auto nowait = [&] { return ::preadv2(fd, &iov, 1, -1, RWF_NOWAIT); };
    r = until_done_after(h, fd, io_dir::read, dl,
                         pollable_attempt(fd, v, io_dir::read, real, nowait, first),
                         [&] { return pollable_attempt(fd, v, io_dir::read, real, nowait); });
  }
  if (r >= 0) errno = saved;
  return r;
}

// Step 4. `v` is fd's peeked view, which did not pass the call through; if the fd was never
// seen, it is classified now (and may pass it through after all).
[[gnu::noinline]] ssize_t coop_read(int fd, void* buf, size_t n, fd_view v) {
  if (__builtin_expect(!v.known(), 0)) {
    v = view_detail::classify(fd);
    if (v.passes_through()) return REAL(read)(fd, buf, n);
  }
  if (n == 0) return REAL(read)(fd, buf, n);
  const int saved = errno;
  ssize_t r = untried;
  if (v.socket()) {
    r = REAL(recvfrom)(fd, buf, n, MSG_DONTWAIT, nullptr, nullptr);
  } else if (!v.no_nowait()) {
    iovec iov{buf, n};
    r = ::preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
  }
  if (__builtin_expect(r >= 0, 1)) return r;
  return read_retry(fd, buf, n, v, saved, r);
}

// Off a hub, the real read on a shim-owned fd the program sees as blocking failed: an EAGAIN is
// completed by blocking the thread (coop_read, whose waits block without a hub).
[[gnu::noinline]] ssize_t read_failed_owned(int fd, void* buf, size_t n, ssize_t r) {
  if (errno != EAGAIN) return r;
  fd_view v = view_of(fd);
  if (v.passes_through()) return REAL(read)(fd, buf, n);
  return coop_read(fd, buf, n, v);
}

[[gnu::noinline]] ssize_t read_off_hub(int fd, void* buf, size_t n) {
  ssize_t r = REAL(read)(fd, buf, n);
  if (__builtin_expect(r >= 0, 1) || !owned_blocking(fd)) return r;
  return read_failed_owned(fd, buf, n, r);
}

[[gnu::always_inline]] inline ssize_t hooked_read(int fd, void* buf, size_t n) {
  if (!cooperative_hub()) return read_off_hub(fd, buf, n);
  fd_view v = view_peek(fd);
  if (v.passes_through()) return REAL(read)(fd, buf, n);
  return coop_read(fd, buf, n, v);
}

[[gnu::noinline]] ssize_t readv_retry(int fd, const iovec* iov, int count, fd_view v, int saved,
                                      ssize_t first) {
  hub_impl* h = cooperative_hub();
  detail::deadline_t dl = view_deadline(fd, v, io_dir::read);
  ssize_t r;
  if (v.socket()) {
    msghdr m{};
    m.msg_iov = const_cast<iovec*>(iov);
    m.msg_iovlen = static_cast<size_t>(count);
    auto attempt = [&] { return REAL(recvmsg)(fd, &m, MSG_DONTWAIT); };
    r = until_done_after(h, fd, io_dir::read, dl, first != untried ? first : attempt(), attempt);
  } else {
    auto real = [&] { return REAL(readv)(fd, iov, count); };
    auto nowait = [&] { return ::preadv2(fd, iov, count, -1, RWF_NOWAIT); };
    r = until_done_after(h, fd, io_dir::read, dl,
                         pollable_attempt(fd, v, io_dir::read, real, nowait, first),
                         [&] { return pollable_attempt(fd, v, io_dir::read, real, nowait); });
  }
  if (r >= 0) errno = saved;
  return r;
}

[[gnu::noinline]] ssize_t coop_readv(int fd, const iovec* iov, int count, fd_view v) {
  if (__builtin_expect(!v.known(), 0)) {
    v = view_detail::classify(fd);
    if (v.passes_through()) return REAL(readv)(fd, iov, count);
  }
  if (count < 0 || count > IOV_MAX) return REAL(readv)(fd, iov, count);
  const int saved = errno;
  ssize_t r = untried;
  if (v.socket()) {
    msghdr m{};
    m.msg_iov = const_cast<iovec*>(iov);
    m.msg_iovlen = static_cast<size_t>(count);
    r = REAL(recvmsg)(fd, &m, MSG_DONTWAIT);
  } else if (!v.no_nowait()) {
    r = ::preadv2(fd, iov, count, -1, RWF_NOWAIT);
  }
  if (__builtin_expect(r >= 0, 1)) return r;
  return readv_retry(fd, iov, count, v, saved, r);
}

[[gnu::noinline]] ssize_t readv_failed_owned(int fd, const iovec* iov, int count, ssize_t r) {
  if (errno != EAGAIN) return r;
  fd_view v = view_of(fd);
  if (v.passes_through()) return REAL(readv)(fd, iov, count);
  return coop_readv(fd, iov, count, v);
}

[[gnu::noinline]] ssize_t readv_off_hub(int fd, const iovec* iov, int count) {
  ssize_t r = REAL(readv)(fd, iov, count);
  if (__builtin_expect(r >= 0, 1) || !owned_blocking(fd)) return r;
  return readv_failed_owned(fd, iov, count, r);
}

// --- write, writev ----------------------------------------------------------------------------
// Stream kinds (TCP-like sockets, pipes) go on until every byte is written, as a blocking write
// does; once bytes went out a later EPIPE returns the count without SIGPIPE on a socket (as
// tcp_sendmsg does), while a pipe raises SIGPIPE again, as pipe_write does. `done` bytes were
// already written (by a real call off a hub that was cut short; `first` is then untried).

[[gnu::noinline]] ssize_t write_retry(int fd, const void* buf, size_t n, size_t done, fd_view v,
                                      int saved, ssize_t first) {
  hub_impl* h = cooperative_hub();
  const char* p = static_cast<const char*>(buf);
  detail::deadline_t dl = view_deadline(fd, v, io_dir::write);
  ssize_t r;
  if (v.socket()) {
    size_t total = v.kind() == fd_kind::stream ? n : 1;  // a message goes whole or not at all
    auto attempt = [&](size_t off) {
      int f = MSG_DONTWAIT | write_flags(v.kind()) | (off ? MSG_NOSIGNAL : 0);
      return REAL(sendto)(fd, p + off, n - off, f, nullptr, 0);
    };
    r = first != untried ? until_all_after(h, fd, io_dir::write, dl, total, done, first, attempt)
                         : until_all(h, fd, io_dir::write, dl, total, done, attempt);
  } else {
    auto attempt = [&](size_t off, ssize_t nowait_result = untried) {
      iovec iov{const_cast<char*>(p) + off, n - off};
      return pollable_attempt(
          fd, v, io_dir::write, [&] { return REAL(write)(fd, p + off, n - off); },
          [&] { return ::pwritev2(fd, &iov, 1, -1, RWF_NOWAIT); }, nowait_result);
    };
    r = first != untried
            ? until_all_after(h, fd, io_dir::write, dl, n, done, attempt(done, first), attempt)
            : until_all(h, fd, io_dir::write, dl, n, done, attempt);
  }
  if (r >= 0) errno = saved;
  return r;
}

[[gnu::noinline]] ssize_t coop_write(int fd, const void* buf, size_t n, fd_view v) {
  if (__builtin_expect(!v.known(), 0)) {
    v = view_detail::classify(fd);
    if (v.passes_through()) return REAL(write)(fd, buf, n);
  }
  if (n == 0) return REAL(write)(fd, buf, n);
  const int saved = errno;
  ssize_t r = untried;
  if (v.socket()) {
    r = REAL(sendto)(fd, buf, n, MSG_DONTWAIT | write_flags(v.kind()), nullptr, 0);
  } else if (!v.no_nowait()) {
    iovec iov{const_cast<void*>(buf), n};
    r = ::pwritev2(fd, &iov, 1, -1, RWF_NOWAIT);
  }
  // All of it: the whole message, or every byte of a stream.
  if (__builtin_expect(r >= 0 && static_cast<size_t>(r) == n, 1)) return r;
  return write_retry(fd, buf, n, 0, v, saved, r);
}

// Off a hub, the real write on a shim-owned fd the program sees as blocking failed or was short:
// the rest is written by blocking the thread.
[[gnu::noinline]] ssize_t write_short_owned(int fd, const void* buf, size_t n, ssize_t r) {
  if (r < 0 && errno != EAGAIN) return r;
  fd_view v = view_of(fd);
  if (r <= 0) {
    if (v.passes_through()) return REAL(write)(fd, buf, n);
    return coop_write(fd, buf, n, v);
  }
  if (v.passes_through()) return r;
  const int saved = errno;
  return write_retry(fd, buf, n, static_cast<size_t>(r), v, saved, untried);
}

[[gnu::noinline]] ssize_t write_off_hub(int fd, const void* buf, size_t n) {
  ssize_t r = REAL(write)(fd, buf, n);
  if (__builtin_expect(r >= 0 && static_cast<size_t>(r) == n, 1) || !owned_blocking(fd)) return r;
  return write_short_owned(fd, buf, n, r);
}

// The iovec array is summed only after the kernel accepted it (a bad pointer is its EFAULT).
[[gnu::noinline]] ssize_t writev_retry(int fd, const iovec* iov, int count, size_t done, fd_view v,
                                       int saved, ssize_t first) {
  hub_impl* h = cooperative_hub();
  detail::deadline_t dl = view_deadline(fd, v, io_dir::write);
  iov_cursor cur(iov, count);
  auto attempt = [&](size_t off, ssize_t nowait_result = untried) -> ssize_t {
    if (!cur.seek(off)) return 0;  // no memory for the rest: report what went out
    if (v.socket()) {
      msghdr m{};
      m.msg_iov = const_cast<iovec*>(cur.data());
      m.msg_iovlen = static_cast<size_t>(cur.count());
      return REAL(sendmsg)(fd, &m, MSG_DONTWAIT | write_flags(v.kind()) | (off ? MSG_NOSIGNAL : 0));
    }
    return pollable_attempt(
        fd, v, io_dir::write, [&] { return REAL(writev)(fd, cur.data(), cur.count()); },
        [&] { return ::pwritev2(fd, cur.data(), cur.count(), -1, RWF_NOWAIT); }, nowait_result);
  };
  ssize_t r = static_cast<ssize_t>(done);
  if (!done) {
    // The first attempt's result: all of a socket's, the RWF_NOWAIT part of a pipe's.
    ssize_t r0 = first == untried ? attempt(0) : v.socket() ? first : attempt(0, first);
    r = until_done_after(h, fd, io_dir::write, dl, r0, [&] { return attempt(0); });
  }
  if (r > 0 && (v.kind() == fd_kind::stream || !v.socket())) {
    size_t total = iov_cursor::total(iov, count);
    r = until_all(h, fd, io_dir::write, dl, total, static_cast<size_t>(r), attempt);
  }
  if (r >= 0) errno = saved;
  return r;
}

[[gnu::noinline]] ssize_t coop_writev(int fd, const iovec* iov, int count, fd_view v) {
  if (__builtin_expect(!v.known(), 0)) {
    v = view_detail::classify(fd);
    if (v.passes_through()) return REAL(writev)(fd, iov, count);
  }
  if (count < 0 || count > IOV_MAX) return REAL(writev)(fd, iov, count);
  const int saved = errno;
  ssize_t r = untried;
  if (v.socket()) {
    msghdr m{};
    m.msg_iov = const_cast<iovec*>(iov);
    m.msg_iovlen = static_cast<size_t>(count);
    r = REAL(sendmsg)(fd, &m, MSG_DONTWAIT | write_flags(v.kind()));
  } else if (!v.no_nowait()) {
    r = ::pwritev2(fd, iov, count, -1, RWF_NOWAIT);
  }
  // Complete: nothing moved, a message, or every byte of a stream.
  if (__builtin_expect(r >= 0, 1) && (r == 0 || (v.socket() && v.kind() != fd_kind::stream) ||
                                      static_cast<size_t>(r) == iov_cursor::total(iov, count)))
    return r;
  return writev_retry(fd, iov, count, 0, v, saved, r);
}

[[gnu::noinline]] ssize_t writev_short_owned(int fd, const iovec* iov, int count, ssize_t r) {
  if (r < 0 && errno != EAGAIN) return r;
  fd_view v = view_of(fd);
  if (r <= 0) {
    if (v.passes_through()) return REAL(writev)(fd, iov, count);
    return coop_writev(fd, iov, count, v);
  }
  if (v.passes_through() || count < 0 || count > IOV_MAX) return r;
  const int saved = errno;
  return writev_retry(fd, iov, count, static_cast<size_t>(r), v, saved, untried);
}

[[gnu::noinline]] ssize_t writev_off_hub(int fd, const iovec* iov, int count) {
  ssize_t r = REAL(writev)(fd, iov, count);
  if (__builtin_expect(r >= 0 && static_cast<size_t>(r) == iov_cursor::total(iov, count), 1) ||
      !owned_blocking(fd))
    return r;
  return writev_short_owned(fd, iov, count, r);
}

// --- pread, pwrite ----------------------------------------------------------------------------
// Sockets and pipes fail with ESPIPE and files never wait, so only a seekable character device
// the program sees as blocking can park.
// Steps 2-4 once the peeked view `v` did not pass the call through (an fd never seen is
// classified now).
template <class Real, class NoWait>
ssize_t coop_positional(int fd, io_dir d, off_t off, fd_view v, Real real, NoWait nowait) {
  if (__builtin_expect(!v.known(), 0)) v = view_detail::classify(fd);
  if (v.kind() != fd_kind::other || v.user_nonblock() || off < 0) return real();
  const int saved = errno;
  ssize_t r = until_done(cooperative_hub(), fd, d, detail::no_deadline,
                         [&] { return pollable_attempt(fd, v, d, real, nowait); });
  if (r >= 0) errno = saved;
  return r;
}

[[gnu::noinline]] ssize_t coop_pread(int fd, void* buf, size_t n, off_t off, fd_view v) {
  iovec iov{buf, n};
  return coop_positional(
      fd, io_dir::read, off, v, [&] { return REAL(pread)(fd, buf, n, off); },
      [&] { return ::preadv2(fd, &iov, 1, off, RWF_NOWAIT); });
}

[[gnu::noinline]] ssize_t coop_pwrite(int fd, const void* buf, size_t n, off_t off, fd_view v) {
  iovec iov{const_cast<void*>(buf), n};
  return coop_positional(
      fd, io_dir::write, off, v, [&] { return REAL(pwrite)(fd, buf, n, off); },
      [&] { return ::pwritev2(fd, &iov, 1, off, RWF_NOWAIT); });
}

// Only a known view that is not a character device (or is the program's O_NONBLOCK) passes the
// call through here; an unknown one is classified by coop_positional.
inline bool positional_passes_through(fd_view v) noexcept {
  return v.known() && (v.kind() != fd_kind::other || v.user_nonblock());
}

[[gnu::always_inline]] inline ssize_t hooked_pread(int fd, void* buf, size_t n, off_t off) {
  if (!cooperative_hub()) return REAL(pread)(fd, buf, n, off);
  fd_view v = view_peek(fd);
  if (positional_passes_through(v)) return REAL(pread)(fd, buf, n, off);
  return coop_pread(fd, buf, n, off, v);
}

[[gnu::always_inline]] inline ssize_t hooked_pwrite(int fd, const void* buf, size_t n, off_t off) {
  if (!cooperative_hub()) return REAL(pwrite)(fd, buf, n, off);
  fd_view v = view_peek(fd);
  if (positional_passes_through(v)) return REAL(pwrite)(fd, buf, n, off);
  return coop_pwrite(fd, buf, n, off, v);
}

}  // namespace
}  // namespace fern::shim

using namespace fern::shim;

extern "C" ssize_t read(int fd, void* buf, size_t n) {
  return hooked_read(fd, buf, n);
}

extern "C" ssize_t write(int fd, const void* buf, size_t n) {
  if (!cooperative_hub()) return write_off_hub(fd, buf, n);
  fd_view v = view_peek(fd);
  if (v.passes_through()) return REAL(write)(fd, buf, n);
  return coop_write(fd, buf, n, v);
}

extern "C" ssize_t readv(int fd, const struct iovec* iov, int count) {
  if (!cooperative_hub()) return readv_off_hub(fd, iov, count);
  fd_view v = view_peek(fd);
  if (v.passes_through()) return REAL(readv)(fd, iov, count);
  return coop_readv(fd, iov, count, v);
}

extern "C" ssize_t writev(int fd, const struct iovec* iov, int count) {
  if (!cooperative_hub()) return writev_off_hub(fd, iov, count);
  fd_view v = view_peek(fd);
  if (v.passes_through()) return REAL(writev)(fd, iov, count);
  return coop_writev(fd, iov, count, v);
}

extern "C" ssize_t pread(int fd, void* buf, size_t n, off_t off) {
  return hooked_pread(fd, buf, n, off);
}

extern "C" ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  return hooked_pwrite(fd, buf, n, off);
}

// With _FILE_OFFSET_BITS=64 the program's pread/pwrite are these names; on LP64 off64_t is off_t.
extern "C" ssize_t pread64(int fd, void* buf, size_t n, off64_t off) {
  return hooked_pread(fd, buf, n, off);
}

extern "C" ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t off) {
  return hooked_pwrite(fd, buf, n, off);
}

// _FORTIFY_SOURCE turns read/pread with a buffer of known size into these; glibc's own versions
// call its internal read, which would bypass the hooks above.
extern "C" ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
  if (n > buflen) __chk_fail();
  return hooked_read(fd, buf, n);
}

extern "C" ssize_t __pread_chk(int fd, void* buf, size_t n, off_t off, size_t buflen) {
  if (n > buflen) __chk_fail();
  return hooked_pread(fd, buf, n, off);
}

extern "C" ssize_t __pread64_chk(int fd, void* buf, size_t n, off64_t off, size_t buflen) {
  if (n > buflen) __chk_fail();
  return hooked_pread(fd, buf, n, off);
}
