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

ssize_t coop_read(hub_impl* h, int fd, void* buf, size_t n) {
  fd_view v = view_of(fd);
  if (v.kind == fd_kind::file || v.user_nonblock || n == 0) return REAL(read)(fd, buf, n);
  const int saved = errno;
  detail::deadline_t dl = view_deadline(fd, v, io_dir::read);
  ssize_t r;
  if (v.socket()) {
    r = until_done(h, fd, io_dir::read, dl,
                   [&] { return REAL(recvfrom)(fd, buf, n, MSG_DONTWAIT, nullptr, nullptr); });
  } else {
    iovec iov{buf, n};
    r = until_done(h, fd, io_dir::read, dl, [&] {
      return pollable_attempt(
          fd, v, io_dir::read, [&] { return REAL(read)(fd, buf, n); },
          [&] { return ::preadv2(fd, &iov, 1, -1, RWF_NOWAIT); });
    });
  }
  if (r >= 0) errno = saved;
  return r;
}

ssize_t coop_readv(hub_impl* h, int fd, const iovec* iov, int count) {
  fd_view v = view_of(fd);
  if (v.kind == fd_kind::file || v.user_nonblock || count < 0 || count > IOV_MAX)
    return REAL(readv)(fd, iov, count);
  const int saved = errno;
  detail::deadline_t dl = view_deadline(fd, v, io_dir::read);
  ssize_t r;
  if (v.socket()) {
    msghdr m{};
    m.msg_iov = const_cast<iovec*>(iov);
    m.msg_iovlen = static_cast<size_t>(count);
    r = until_done(h, fd, io_dir::read, dl, [&] { return REAL(recvmsg)(fd, &m, MSG_DONTWAIT); });
  } else {
    r = until_done(h, fd, io_dir::read, dl, [&] {
      return pollable_attempt(
          fd, v, io_dir::read, [&] { return REAL(readv)(fd, iov, count); },
          [&] { return ::preadv2(fd, iov, count, -1, RWF_NOWAIT); });
    });
  }
  if (r >= 0) errno = saved;
  return r;
}

// `done` bytes were already written by the caller (a short write off a hub); returns the total.
// Stream kinds (TCP-like sockets, pipes) go on until every byte is written, as a blocking write
// does; once bytes went out a later EPIPE returns the count without SIGPIPE on a socket (as
// tcp_sendmsg does), while a pipe raises SIGPIPE again, as pipe_write does.
ssize_t coop_write(hub_impl* h, int fd, const void* buf, size_t n, size_t done = 0) {
  fd_view v = view_of(fd);
  if (v.kind == fd_kind::file || v.user_nonblock || n == 0)
    return done ? static_cast<ssize_t>(done) : REAL(write)(fd, buf, n);
  const int saved = errno;
  const char* p = static_cast<const char*>(buf);
  detail::deadline_t dl = view_deadline(fd, v, io_dir::write);
  ssize_t r;
  if (v.socket()) {
    size_t total = v.kind == fd_kind::stream ? n : 1;  // a message goes whole or not at all
    r = until_all(h, fd, io_dir::write, dl, total, done, [&](size_t off) {
      int f = MSG_DONTWAIT | write_flags(v.kind) | (off ? MSG_NOSIGNAL : 0);
      return REAL(sendto)(fd, p + off, n - off, f, nullptr, 0);
    });
  } else {
    r = until_all(h, fd, io_dir::write, dl, n, done, [&](size_t off) {
      iovec iov{const_cast<char*>(p) + off, n - off};
      return pollable_attempt(
          fd, v, io_dir::write, [&] { return REAL(write)(fd, p + off, n - off); },
          [&] { return ::pwritev2(fd, &iov, 1, -1, RWF_NOWAIT); });
    });
  }
  if (r >= 0) errno = saved;
  return r;
}

// The iovec array is summed only after the kernel accepted it (a bad pointer is its EFAULT).
ssize_t coop_writev(hub_impl* h, int fd, const iovec* iov, int count, size_t done = 0) {
  fd_view v = view_of(fd);
  if (v.kind == fd_kind::file || v.user_nonblock || count < 0 || count > IOV_MAX)
    return done ? static_cast<ssize_t>(done) : REAL(writev)(fd, iov, count);
  const int saved = errno;
  detail::deadline_t dl = view_deadline(fd, v, io_dir::write);
  iov_cursor cur(iov, count);
  auto attempt = [&](size_t off) -> ssize_t {
    if (!cur.seek(off)) return 0;  // no memory for the rest: report what went out
    if (v.socket()) {
      msghdr m{};
      m.msg_iov = const_cast<iovec*>(cur.data());
      m.msg_iovlen = static_cast<size_t>(cur.count());
      return REAL(sendmsg)(fd, &m, MSG_DONTWAIT | write_flags(v.kind) | (off ? MSG_NOSIGNAL : 0));
    }
    return pollable_attempt(
        fd, v, io_dir::write, [&] { return REAL(writev)(fd, cur.data(), cur.count()); },
        [&] { return ::pwritev2(fd, cur.data(), cur.count(), -1, RWF_NOWAIT); });
  };
  ssize_t r = static_cast<ssize_t>(done);
  if (!done) r = until_done(h, fd, io_dir::write, dl, [&] { return attempt(0); });
  if (r > 0 && (v.kind == fd_kind::stream || !v.socket())) {
    size_t total = iov_cursor::total(iov, count);
    r = until_all(h, fd, io_dir::write, dl, total, static_cast<size_t>(r), attempt);
  }
  if (r >= 0) errno = saved;
  return r;
}

// pread/pwrite: sockets and pipes fail with ESPIPE and files never wait, so only a seekable
// character device the program sees as blocking can park.
template <class Real, class NoWait>
ssize_t coop_positional(hub_impl* h, int fd, io_dir d, off_t off, Real real, NoWait nowait) {
  fd_view v = view_of(fd);
  if (!h || v.kind != fd_kind::other || v.user_nonblock || off < 0) return real();
  const int saved = errno;
  ssize_t r = until_done(h, fd, d, detail::no_deadline,
                         [&] { return pollable_attempt(fd, v, d, real, nowait); });
  if (r >= 0) errno = saved;
  return r;
}

ssize_t hooked_read(int fd, void* buf, size_t n) {
  hub_impl* h = cooperative_hub();
  if (!h) {
    ssize_t r = REAL(read)(fd, buf, n);
    if (__builtin_expect(r >= 0 || errno != EAGAIN, 1) || !owned_blocking(fd)) return r;
  }
  return coop_read(h, fd, buf, n);
}

ssize_t hooked_pread(int fd, void* buf, size_t n, off_t off) {
  iovec iov{buf, n};
  return coop_positional(
      cooperative_hub(), fd, io_dir::read, off, [&] { return REAL(pread)(fd, buf, n, off); },
      [&] { return ::preadv2(fd, &iov, 1, off, RWF_NOWAIT); });
}

ssize_t hooked_pwrite(int fd, const void* buf, size_t n, off_t off) {
  iovec iov{const_cast<void*>(buf), n};
  return coop_positional(
      cooperative_hub(), fd, io_dir::write, off, [&] { return REAL(pwrite)(fd, buf, n, off); },
      [&] { return ::pwritev2(fd, &iov, 1, off, RWF_NOWAIT); });
}

}  // namespace
}  // namespace fern::shim

using namespace fern::shim;

extern "C" ssize_t read(int fd, void* buf, size_t n) {
  return hooked_read(fd, buf, n);
}

extern "C" ssize_t write(int fd, const void* buf, size_t n) {
  fern::detail::hub_impl* h = cooperative_hub();
  if (!h) {
    ssize_t r = REAL(write)(fd, buf, n);
    if (__builtin_expect(r >= 0 ? static_cast<size_t>(r) == n : errno != EAGAIN, 1) ||
        !owned_blocking(fd))
      return r;
    // A shim-owned description is non-blocking underneath: finish the blocking write here.
    return coop_write(nullptr, fd, buf, n, r > 0 ? static_cast<size_t>(r) : 0);
  }
  return coop_write(h, fd, buf, n);
}

extern "C" ssize_t readv(int fd, const struct iovec* iov, int count) {
  fern::detail::hub_impl* h = cooperative_hub();
  if (!h) {
    ssize_t r = REAL(readv)(fd, iov, count);
    if (__builtin_expect(r >= 0 || errno != EAGAIN, 1) || !owned_blocking(fd)) return r;
  }
  return coop_readv(h, fd, iov, count);
}

extern "C" ssize_t writev(int fd, const struct iovec* iov, int count) {
  fern::detail::hub_impl* h = cooperative_hub();
  if (!h) {
    ssize_t r = REAL(writev)(fd, iov, count);
    if (__builtin_expect(
            r >= 0 ? static_cast<size_t>(r) == iov_cursor::total(iov, count) : errno != EAGAIN,
            1) ||
        !owned_blocking(fd))
      return r;
    return coop_writev(nullptr, fd, iov, count, r > 0 ? static_cast<size_t>(r) : 0);
  }
  return coop_writev(h, fd, iov, count);
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
