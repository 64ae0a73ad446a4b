// fd family: pipe, pipe2, close, close_range, closefrom, fclose, dup, dup2, dup3, fcntl (and
// fcntl64), ioctl, and the other fd creators (open, openat, creat, eventfd, timerfd_create,
// signalfd, epoll_create, inotify_init, memfd_create and their variants). They keep the per-fd
// view (fd_view.hpp) true: creation records it (or forgets a stale one), duplication copies it,
// closing forgets it after waking the fibers parked on the fd (EBADF), and F_GETFL/F_SETFL/FIONBIO
// show and track the program's O_NONBLOCK while a shim-owned description stays non-blocking
// underneath. Everything else passes through untouched; none of these calls ever parks.
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "coop.hpp"
#include "debug.hpp"

FERN_REAL_DEF(pipe)
FERN_REAL_DEF(pipe2)
FERN_REAL_DEF(close)
FERN_REAL_DEF(close_range)
FERN_REAL_DEF(closefrom)
FERN_REAL_DEF(fclose)
FERN_REAL_DEF(dup)
FERN_REAL_DEF(dup2)
FERN_REAL_DEF(dup3)
FERN_REAL_DEF(fcntl)
FERN_REAL_DEF(fcntl64)
FERN_REAL_DEF(ioctl)
FERN_REAL_DEF(open)
FERN_REAL_DEF(open64)
FERN_REAL_DEF(openat)
FERN_REAL_DEF(openat64)
FERN_REAL_DEF(creat)
FERN_REAL_DEF(creat64)
FERN_REAL_DEF(eventfd)
FERN_REAL_DEF(timerfd_create)
FERN_REAL_DEF(signalfd)
FERN_REAL_DEF(epoll_create)
FERN_REAL_DEF(epoll_create1)
FERN_REAL_DEF(inotify_init)
FERN_REAL_DEF(inotify_init1)
FERN_REAL_DEF(memfd_create)

namespace fern::shim {
namespace {

// fd is about to stop meaning what it meant: fibers of this thread's hub parked on it wake with
// EBADF and its epoll registration goes (detail::fd_closing), and the view is forgotten.
// Preserves errno.
void closing(int fd) noexcept {
  const int saved = errno;
  detail::fd_closing(fd);
  view_forget(fd);
  errno = saved;
}

void closing_range(unsigned first, unsigned last) noexcept {
  rlimit rl{};
  long hi = view_high_water();
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    hi = std::max<long>(hi, static_cast<long>(rl.rlim_cur) - 1);
  hi = std::min<long>(hi, static_cast<long>(last));
  for (long fd = first; fd <= hi; ++fd) closing(static_cast<int>(fd));
}

bool fd_open(int fd) noexcept {
  const int saved = errno;
  bool open = ::syscall(SYS_fcntl, fd, F_GETFD) >= 0;
  errno = saved;
  return open;
}

// An fd made by a call the shim does not otherwise change (open, eventfd...): its number may
// carry a stale view or registration if its previous fd was closed behind the shim's back.
int born(int fd) noexcept {
  if (fd >= 0) {
    fd_born(fd);
    view_forget(fd);
  }
  return fd;
}

// glibc's __fortify_fail is private: the same message, then abort.
[[noreturn]] void fortify_fail(const char* what) noexcept {
  char msg[128];
  int n = std::snprintf(msg, sizeof msg,
                        "*** invalid %s call: O_CREAT or O_TMPFILE without mode ***: terminated\n",
                        what);
  if (n > 0) ::syscall(SYS_write, 2, msg, static_cast<size_t>(std::min<int>(n, sizeof msg - 1)));
  std::abort();
}

// open's mode argument exists only with O_CREAT or O_TMPFILE (glibc's __OPEN_NEEDS_MODE).
bool needs_mode(int flags) noexcept {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

int hooked_pipe2(int fds[2], int flags) {
  fern::detail::hub_impl* h = cooperative_hub();
  int r = h || flags ? REAL(pipe2)(fds, flags | (h ? O_NONBLOCK : 0)) : REAL(pipe)(fds);
  if (r == 0) {
    for (int i = 0; i < 2; ++i) {
      fd_born(fds[i]);
      view_created(fds[i], fd_kind::fifo, h != nullptr, flags & O_NONBLOCK);
    }
  }
  return r;
}

// dup2/dup3 close `to` silently when it is open and differs from `from`; wake its waiters first,
// but only if the call can succeed (an invalid `from` leaves `to` alone).
int hooked_dup23(int from, int to, int flags, bool three) {
  if (from != to && fd_open(from)) closing(to);
  const int saved = errno;
  int r = three ? REAL(dup3)(from, to, flags) : REAL(dup2)(from, to);
  if (r >= 0 && from != to) {
    fd_born(r);
    view_dup(from, r);
    errno = saved;
  }
  return r;
}

// The view of fd, checked against the kernel's flags `kernel_fl` (F_GETFL): a shim-owned
// description always has O_NONBLOCK underneath, so one without it means the view is stale (the fd
// was closed behind the shim's back, by a raw syscall or a library's internal close, and the
// number reused). The check keeps fcntl/ioctl from ever setting O_NONBLOCK on a description the
// shim did not create.
fd_view checked_view(int fd, int kernel_fl) noexcept {
  fd_view v = view_of(fd);
  if (v.owned() && kernel_fl >= 0 && !(kernel_fl & O_NONBLOCK)) {
    debug_once(debug_note::stale_view, fd);
    view_forget(fd);
    v = view_of(fd);
  }
  return v;
}

// F_GETFL shows the program's O_NONBLOCK on a shim-owned description; F_SETFL keeps O_NONBLOCK
// set underneath on one and records what the program asked. On other descriptions the kernel's
// flag is the program's, and the view follows it. The third argument is forwarded as glibc's
// fcntl does (read as a pointer-sized value: ints, longs and pointers alike).
int hooked_fcntl(int fd, int cmd, void* arg) {
  switch (cmd) {
    case F_GETFL: {
      int r = REAL(fcntl)(fd, cmd);
      if (r < 0) return r;
      fd_view v = checked_view(fd, r);
      if (v.owned()) return (r & ~O_NONBLOCK) | (v.user_nonblock() ? O_NONBLOCK : 0);
      if (v.kind() != fd_kind::file && v.user_nonblock() != ((r & O_NONBLOCK) != 0))
        view_set_nonblock(fd, r & O_NONBLOCK);  // changed behind the shim (another process)
      return r;
    }
    case F_SETFL: {
      int fl = static_cast<int>(reinterpret_cast<std::intptr_t>(arg));
      const int saved = errno;
      fd_view v = view_of(fd);
      if (v.owned()) v = checked_view(fd, REAL(fcntl)(fd, F_GETFL));
      errno = saved;
      int r = REAL(fcntl)(fd, cmd, v.owned() ? fl | O_NONBLOCK : fl);
      if (r == 0) view_set_nonblock(fd, fl & O_NONBLOCK);
      return r;
    }
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
      const int saved = errno;
      int r = REAL(fcntl)(fd, cmd, arg);
      if (r >= 0) {
        fd_born(r);
        view_dup(fd, r);
        errno = saved;
      }
      return r;
    }
    default:
      return REAL(fcntl)(fd, cmd, arg);
  }
}

}  // namespace
}  // namespace fern::shim

using namespace fern::shim;

extern "C" int pipe(int fds[2]) {
  return hooked_pipe2(fds, 0);
}

extern "C" int pipe2(int fds[2], int flags) {
  return hooked_pipe2(fds, flags);
}

// Waiters are woken before the real close, so none of them can touch a number that a new fd
// reuses the moment close returns.
extern "C" int close(int fd) {
  closing(fd);
  return REAL(close)(fd);
}

extern "C" int close_range(unsigned first, unsigned last, int flags) {
  if (!(flags & CLOSE_RANGE_CLOEXEC) && first <= last) closing_range(first, last);
  return REAL(close_range)(first, last, flags);
}

// glibc's closefrom closes through its internal close_range, which the hook above cannot see.
extern "C" void closefrom(int low) {
  if (low >= 0) closing_range(static_cast<unsigned>(low), ~0u);
  REAL(closefrom)(low);
}

// fclose closes its fd inside glibc, without going through close.
extern "C" int fclose(FILE* f) {
  if (f) {
    const int saved = errno;
    int fd = ::fileno(f);
    errno = saved;
    if (fd >= 0) closing(fd);
  }
  return REAL(fclose)(f);
}

extern "C" int dup(int fd) {
  const int saved = errno;
  int r = REAL(dup)(fd);
  if (r >= 0) {
    fd_born(r);
    view_dup(fd, r);
    errno = saved;
  }
  return r;
}

extern "C" int dup2(int from, int to) {
  return hooked_dup23(from, to, 0, false);
}

extern "C" int dup3(int from, int to, int flags) {
  return hooked_dup23(from, to, flags, true);
}

extern "C" int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return hooked_fcntl(fd, cmd, arg);
}

// With _FILE_OFFSET_BITS=64 (autoconf's AC_SYS_LARGEFILE) glibc >= 2.28 redirects fcntl here.
extern "C" int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return hooked_fcntl(fd, cmd, arg);
}

// FIONBIO sets the program's O_NONBLOCK: tracked like F_SETFL, and on a shim-owned description
// the kernel's flag stays set (the real call validates the fd and the pointer first).
extern "C" int ioctl(int fd, unsigned long request, ...) {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (request != FIONBIO) return REAL(ioctl)(fd, request, arg);
  const int saved = errno;
  fd_view v = view_of(fd);
  if (v.owned()) v = checked_view(fd, REAL(fcntl)(fd, F_GETFL));
  errno = saved;
  int r = REAL(ioctl)(fd, request, arg);
  if (r != 0) return r;
  bool on = *static_cast<const int*>(arg) != 0;
  if (v.owned() && !on) {
    int one = 1;
    REAL(ioctl)(fd, FIONBIO, &one);
  }
  view_set_nonblock(fd, on);
  errno = saved;
  return r;
}

// --- fds created elsewhere: only their number's stale state is dropped ----------------------

extern "C" int open(const char* path, int flags, ...) {
  mode_t mode = 0;
  if (needs_mode(flags)) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  return born(REAL(open)(path, flags, mode));
}

extern "C" int open64(const char* path, int flags, ...) {
  mode_t mode = 0;
  if (needs_mode(flags)) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  return born(REAL(open64)(path, flags, mode));
}

extern "C" int openat(int dir, const char* path, int flags, ...) {
  mode_t mode = 0;
  if (needs_mode(flags)) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  return born(REAL(openat)(dir, path, flags, mode));
}

extern "C" int openat64(int dir, const char* path, int flags, ...) {
  mode_t mode = 0;
  if (needs_mode(flags)) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  return born(REAL(openat64)(dir, path, flags, mode));
}

// _FORTIFY_SOURCE's checked opens (called when no mode is passed); glibc's own versions open
// through its internal entry point.
extern "C" int __open_2(const char* path, int flags) {
  if (needs_mode(flags)) fortify_fail("open");
  return born(REAL(open)(path, flags));
}

extern "C" int __open64_2(const char* path, int flags) {
  if (needs_mode(flags)) fortify_fail("open64");
  return born(REAL(open64)(path, flags));
}

extern "C" int __openat_2(int dir, const char* path, int flags) {
  if (needs_mode(flags)) fortify_fail("openat");
  return born(REAL(openat)(dir, path, flags));
}

extern "C" int __openat64_2(int dir, const char* path, int flags) {
  if (needs_mode(flags)) fortify_fail("openat64");
  return born(REAL(openat64)(dir, path, flags));
}

extern "C" int creat(const char* path, mode_t mode) {
  return born(REAL(creat)(path, mode));
}

extern "C" int creat64(const char* path, mode_t mode) {
  return born(REAL(creat64)(path, mode));
}

extern "C" int eventfd(unsigned int initval, int flags) {
  return born(REAL(eventfd)(initval, flags));
}

extern "C" int timerfd_create(int clock, int flags) {
  return born(REAL(timerfd_create)(clock, flags));
}

// With fd == -1 a new signalfd; otherwise fd's mask changes and the number keeps its meaning.
extern "C" int signalfd(int fd, const sigset_t* mask, int flags) {
  int r = REAL(signalfd)(fd, mask, flags);
  return fd == -1 ? born(r) : r;
}

extern "C" int epoll_create(int size) {
  return born(REAL(epoll_create)(size));
}

extern "C" int epoll_create1(int flags) {
  return born(REAL(epoll_create1)(flags));
}

extern "C" int inotify_init(void) {
  return born(REAL(inotify_init)());
}

extern "C" int inotify_init1(int flags) {
  return born(REAL(inotify_init1)(flags));
}

extern "C" int memfd_create(const char* name, unsigned int flags) {
  return born(REAL(memfd_create)(name, flags));
}
