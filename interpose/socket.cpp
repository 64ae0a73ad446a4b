// Socket family: socket, socketpair, connect, accept, accept4, recv, recvfrom, recvmsg, recvmmsg,
// send, sendto, sendmsg, sendmmsg, setsockopt, getsockopt, shutdown. Sockets created on a
// cooperative thread are shim-owned (SOCK_NONBLOCK underneath, the program's own flag kept in
// the view); transfers use MSG_DONTWAIT per call, so they cooperate on any socket, owned or not.
// connect and accept have no per-call flag: on a socket the shim did not create, connect is the
// real (thread-blocking) call and accept waits for readiness before the real call.
#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "coop.hpp"
#include "debug.hpp"

FERN_REAL_DEF(socket)
FERN_REAL_DEF(socketpair)
FERN_REAL_DEF(connect)
FERN_REAL_DEF(accept)
FERN_REAL_DEF(accept4)
FERN_REAL_DEF(recvfrom)
FERN_REAL_DEF(recvmsg)
FERN_REAL_DEF(recvmmsg)
FERN_REAL_DEF(sendto)
FERN_REAL_DEF(sendmsg)
FERN_REAL_DEF(sendmmsg)
FERN_REAL_DEF(setsockopt)
FERN_REAL_DEF(getsockopt)
FERN_REAL_DEF(shutdown)

extern "C" [[noreturn]] void __chk_fail(void);

namespace fern::shim {
namespace {

using detail::hub_impl;
using detail::io_dir;

fd_kind kind_of_type(int type) noexcept {
  switch (type & 0xf) {  // SOCK_TYPE_MASK: the flags live above it
    case SOCK_STREAM:
      return fd_kind::stream;
    case SOCK_SEQPACKET:
      return fd_kind::seqpacket;
    default:
      return fd_kind::dgram;
  }
}

// Flags of a receive that never blocks, even on a blocking socket: MSG_ERRQUEUE and MSG_OOB
// fail with EAGAIN at once when there is nothing to read.
constexpr int never_blocks = MSG_DONTWAIT | MSG_ERRQUEUE | MSG_OOB;

// The program's call returns at once: not a socket (the kernel's ENOTSOCK or EBADF), its own
// O_NONBLOCK, or MSG_DONTWAIT on this call (for a receive: any of never_blocks).
bool passes_through(fd_view v, int flags) noexcept {
  return !v.socket() || v.user_nonblock() || (flags & MSG_DONTWAIT);
}
bool recv_passes_through(fd_view v, int flags) noexcept {
  return !v.socket() || v.user_nonblock() || (flags & never_blocks);
}

// --- receiving ------------------------------------------------------------------------------

// recv and recvfrom. MSG_WAITALL on a stream socket fills the buffer (or stops at end of file, an
// error or the deadline with what it has), as a blocking call does; with MSG_PEEK it waits until
// that much can be peeked. The hook is split as read is in io.cpp: the fast path
// (recvfrom_first) makes the first attempt of a call that one attempt can complete, and
// recvfrom_retry goes on from its result `first` (untried: none).
[[gnu::noinline]] ssize_t recvfrom_retry(int fd, void* buf, size_t n, int flags, sockaddr* addr,
                                         socklen_t* alen, fd_view v, int saved, ssize_t first) {
  hub_impl* h = cooperative_hub();
  detail::deadline_t dl = view_deadline(fd, v, io_dir::read);
  const int f = flags | MSG_DONTWAIT;
  auto attempt = [&] { return REAL(recvfrom)(fd, buf, n, f, addr, alen); };
  ssize_t r;
  if (!(flags & MSG_WAITALL) || v.kind() != fd_kind::stream || n == 0) {
    r = until_done_after(h, fd, io_dir::read, dl, first != untried ? first : attempt(), attempt);
  } else if (flags & MSG_PEEK) {
    for (;;) {
      r = until_done(h, fd, io_dir::read, dl, attempt);
      if (r <= 0 || static_cast<size_t>(r) >= n) break;
      if (int e = await_fd(h, fd, io_dir::read, dl)) {
        keep_interrupt(h, e);
        break;
      }
    }
  } else {
    char* p = static_cast<char*>(buf);
    r = until_all(h, fd, io_dir::read, dl, n, 0,
                  [&](size_t off) { return REAL(recvfrom)(fd, p + off, n - off, f, addr, alen); });
  }
  if (r >= 0) errno = saved;
  return r;
}

// The fast path of a cooperative recv/recvfrom whose view `v` did not pass it through.
[[gnu::always_inline]] inline ssize_t recvfrom_first(int fd, void* buf, size_t n, int flags,
                                                     sockaddr* addr, socklen_t* alen, fd_view v) {
  const int saved = errno;
  ssize_t r = untried;
  if (!(flags & MSG_WAITALL) || v.kind() != fd_kind::stream || n == 0) {
    r = REAL(recvfrom)(fd, buf, n, flags | MSG_DONTWAIT, addr, alen);
    if (__builtin_expect(r >= 0, 1)) return r;
  }
  return recvfrom_retry(fd, buf, n, flags, addr, alen, v, saved, r);
}

// Steps 2-4 of recvfrom with an address, and of a completion off a hub.
[[gnu::noinline]] ssize_t coop_recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* addr,
                                        socklen_t* alen) {
  fd_view v = view_of(fd);
  if (recv_passes_through(v, flags)) return REAL(recvfrom)(fd, buf, n, flags, addr, alen);
  return recvfrom_first(fd, buf, n, flags, addr, alen, v);
}

// recv (or recvfrom without an address) once the peeked view `v` did not pass it through; an fd
// never seen is classified now. Five arguments, so the hook reaches it with a jump.
[[gnu::noinline]] ssize_t coop_recv(int fd, void* buf, size_t n, int flags, fd_view v) {
  if (__builtin_expect(!v.known(), 0)) {
    v = view_detail::classify(fd);
    if (recv_passes_through(v, flags)) return REAL(recvfrom)(fd, buf, n, flags, nullptr, nullptr);
  }
  return recvfrom_first(fd, buf, n, flags, nullptr, nullptr, v);
}

[[gnu::noinline]] ssize_t recvmsg_retry(int fd, msghdr* msg, int flags, fd_view v, int saved,
                                        ssize_t first) {
  hub_impl* h = cooperative_hub();
  detail::deadline_t dl = view_deadline(fd, v, io_dir::read);
  const int f = flags | MSG_DONTWAIT;
  ssize_t r =
      until_done_after(h, fd, io_dir::read, dl, first, [&] { return REAL(recvmsg)(fd, msg, f); });
  if (r > 0 && (flags & MSG_WAITALL) && !(flags & MSG_PEEK) && v.kind() == fd_kind::stream &&
      msg->msg_iovlen <= IOV_MAX) {
    // The rest goes into the remaining buffers; name and control data came with the first part.
    int count = static_cast<int>(msg->msg_iovlen);
    iov_cursor cur(msg->msg_iov, count);
    r = until_all(h, fd, io_dir::read, dl, iov_cursor::total(msg->msg_iov, count),
                  static_cast<size_t>(r), [&](size_t off) -> ssize_t {
                    if (!cur.seek(off)) return 0;
                    msghdr m{};
                    m.msg_iov = const_cast<iovec*>(cur.data());
                    m.msg_iovlen = static_cast<size_t>(cur.count());
                    return REAL(recvmsg)(fd, &m, f);
                  });
  }
  if (r >= 0) errno = saved;
  return r;
}

// recvmsg once the peeked view `v` did not pass it through (an fd never seen: classified now).
[[gnu::noinline]] ssize_t coop_recvmsg(int fd, msghdr* msg, int flags, fd_view v) {
  if (__builtin_expect(!v.known(), 0)) {
    v = view_detail::classify(fd);
    if (recv_passes_through(v, flags)) return REAL(recvmsg)(fd, msg, flags);
  }
  const int saved = errno;
  ssize_t r = REAL(recvmsg)(fd, msg, flags | MSG_DONTWAIT);
  if (__builtin_expect(r >= 0 && !(flags & MSG_WAITALL), 1)) return r;
  return recvmsg_retry(fd, msg, flags, v, saved, r);
}

// Blocking recvmmsg waits for all vlen messages unless MSG_WAITFORONE; `timeout` is checked, as
// by the kernel, only once a message arrived (here it also bounds the wait for the next one,
// which the kernel's does not: see recvmmsg(2) BUGS), and is updated with the time left.
int coop_recvmmsg(hub_impl* h, int fd, mmsghdr* vec, unsigned vlen, int flags, timespec* timeout) {
  fd_view v = view_of(fd);
  if (recv_passes_through(v, flags) || vlen == 0)
    return REAL(recvmmsg)(fd, vec, vlen, flags, timeout);
  const int saved = errno;
  if (timeout && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000)) {
    errno = EINVAL;
    return -1;
  }
  detail::deadline_t dl = view_deadline(fd, v, io_dir::read);
  detail::deadline_t end = timeout
                               ? detail::deadline_after(std::chrono::seconds(timeout->tv_sec) +
                                                        std::chrono::nanoseconds(timeout->tv_nsec))
                               : detail::no_deadline;
  if (vlen > UIO_MAXIOV) vlen = UIO_MAXIOV;  // the kernel's own clamp
  unsigned got = 0;
  for (;;) {
    int r = REAL(recvmmsg)(fd, vec + got, vlen - got, flags | MSG_DONTWAIT, nullptr);
    if (r > 0) {
      got += static_cast<unsigned>(r);
      if (got == vlen || (flags & MSG_WAITFORONE) || detail::now_ns() >= end) break;
      continue;
    }
    if (r == 0) break;
    if (errno != EAGAIN) {
      if (got) break;
      return -1;
    }
    // recvmmsg with a timeout is never restarted after a signal (signal(7)).
    if (int e =
            await_fd(h, fd, io_dir::read, got && end < dl ? end : dl, EAGAIN, timeout != nullptr)) {
      if (got) {
        keep_interrupt(h, e);
        break;
      }
      errno = e;
      return -1;
    }
  }
  if (timeout) {
    detail::deadline_t left = end - detail::now_ns();
    if (left < 0) left = 0;
    timeout->tv_sec = left / 1000000000;
    timeout->tv_nsec = left % 1000000000;
  }
  errno = saved;
  return static_cast<int>(got);
}

// --- sending --------------------------------------------------------------------------------

// A blocking send on a stream socket returns once every byte is queued; after the first bytes,
// later attempts use MSG_NOSIGNAL because the kernel raises SIGPIPE only when nothing was sent.
// sendto_retry goes on from the fast path's attempt `first`, or, with `done` bytes already sent
// by a real call off a hub that was cut short, from there (`first` untried).
[[gnu::noinline]] ssize_t sendto_retry(int fd, const void* buf, size_t n, int flags,
                                       const sockaddr* addr, socklen_t alen, size_t done, fd_view v,
                                       int saved, ssize_t first) {
  hub_impl* h = cooperative_hub();
  const char* p = static_cast<const char*>(buf);
  size_t total = v.kind() == fd_kind::stream ? n : 1;  // a message goes whole or not at all
  detail::deadline_t dl = view_deadline(fd, v, io_dir::write);
  auto attempt = [&](size_t off) {
    int f = flags | MSG_DONTWAIT | (off ? MSG_NOSIGNAL : 0);
    return REAL(sendto)(fd, p + off, n - off, f, addr, alen);
  };
  ssize_t r = first != untried
                  ? until_all_after(h, fd, io_dir::write, dl, total, done, first, attempt)
                  : until_all(h, fd, io_dir::write, dl, total, done, attempt);
  if (r >= 0) errno = saved;
  return r;
}

// The fast path of a cooperative send/sendto whose view `v` did not pass it through.
[[gnu::always_inline]] inline ssize_t sendto_first(int fd, const void* buf, size_t n, int flags,
                                                   const sockaddr* addr, socklen_t alen,
                                                   fd_view v) {
  const int saved = errno;
  ssize_t r = REAL(sendto)(fd, buf, n, flags | MSG_DONTWAIT, addr, alen);
  // All of it: the whole message, or every byte of a stream.
  if (__builtin_expect(r >= 0 && static_cast<size_t>(r) == n, 1)) return r;
  return sendto_retry(fd, buf, n, flags, addr, alen, 0, v, saved, r);
}

// Steps 2-4 of sendto with an address.
[[gnu::noinline]] ssize_t coop_sendto(int fd, const void* buf, size_t n, int flags,
                                      const sockaddr* addr, socklen_t alen) {
  fd_view v = view_of(fd);
  if (passes_through(v, flags) || (n == 0 && v.kind() == fd_kind::stream))
    return REAL(sendto)(fd, buf, n, flags, addr, alen);
  return sendto_first(fd, buf, n, flags, addr, alen, v);
}

// send (or sendto without an address) once the peeked view `v` did not pass it through; an fd
// never seen is classified now.
[[gnu::noinline]] ssize_t coop_send(int fd, const void* buf, size_t n, int flags, fd_view v) {
  if (__builtin_expect(!v.known(), 0)) {
    v = view_detail::classify(fd);
    if (passes_through(v, flags)) return REAL(sendto)(fd, buf, n, flags, nullptr, 0);
  }
  if (n == 0 && v.kind() == fd_kind::stream) return REAL(sendto)(fd, buf, n, flags, nullptr, 0);
  return sendto_first(fd, buf, n, flags, nullptr, 0, v);
}

// The iovec array is summed only after the kernel accepted it (a bad pointer is its EFAULT).
[[gnu::noinline]] ssize_t sendmsg_retry(int fd, const msghdr* msg, int flags, size_t done,
                                        fd_view v, int saved, ssize_t first) {
  hub_impl* h = cooperative_hub();
  detail::deadline_t dl = view_deadline(fd, v, io_dir::write);
  ssize_t r = static_cast<ssize_t>(done);
  if (!done) {
    auto attempt = [&] { return REAL(sendmsg)(fd, msg, flags | MSG_DONTWAIT); };
    r = until_done_after(h, fd, io_dir::write, dl, first != untried ? first : attempt(), attempt);
  }
  if (r > 0 && v.kind() == fd_kind::stream && msg->msg_iovlen <= IOV_MAX) {
    int count = static_cast<int>(msg->msg_iovlen);
    iov_cursor cur(msg->msg_iov, count);
    r = until_all(h, fd, io_dir::write, dl, iov_cursor::total(msg->msg_iov, count),
                  static_cast<size_t>(r), [&](size_t off) -> ssize_t {
                    if (!cur.seek(off)) return 0;
                    // Control data (SCM_RIGHTS...) and the address went with the first bytes.
                    msghdr m{};
                    m.msg_iov = const_cast<iovec*>(cur.data());
                    m.msg_iovlen = static_cast<size_t>(cur.count());
                    return REAL(sendmsg)(fd, &m, flags | MSG_DONTWAIT | MSG_NOSIGNAL);
                  });
  }
  if (r >= 0) errno = saved;
  return r;
}

// sendmsg once the peeked view `v` did not pass it through (an fd never seen: classified now).
[[gnu::noinline]] ssize_t coop_sendmsg(int fd, const msghdr* msg, int flags, fd_view v) {
  if (__builtin_expect(!v.known(), 0)) {
    v = view_detail::classify(fd);
    if (passes_through(v, flags)) return REAL(sendmsg)(fd, msg, flags);
  }
  const int saved = errno;
  ssize_t r = REAL(sendmsg)(fd, msg, flags | MSG_DONTWAIT);
  // Complete: nothing moved, a message, or every byte of a stream.
  if (__builtin_expect(r >= 0, 1) &&
      (r == 0 || v.kind() != fd_kind::stream || msg->msg_iovlen > IOV_MAX ||
       static_cast<size_t>(r) ==
           iov_cursor::total(msg->msg_iov, static_cast<int>(msg->msg_iovlen))))
    return r;
  return sendmsg_retry(fd, msg, flags, 0, v, saved, r);
}

// Steps 2-4 of sendmsg with a fresh view, `done` bytes already sent: each message of sendmmsg,
// a completion off a hub.
ssize_t coop_sendmsg_viewed(int fd, const msghdr* msg, int flags, size_t done = 0) {
  fd_view v = view_of(fd);
  if (passes_through(v, flags))
    return done ? static_cast<ssize_t>(done) : REAL(sendmsg)(fd, msg, flags);
  if (!done) return coop_sendmsg(fd, msg, flags, v);
  const int saved = errno;
  return sendmsg_retry(fd, msg, flags, done, v, saved, untried);
}

// Blocking sendmmsg sends each message in full, in order, and returns how many went out (-1 only
// if none did). On a stream socket messages go one at a time, so a partly sent one is finished
// before the next starts; elsewhere each message is atomic and they go in batches.
int coop_sendmmsg(hub_impl* h, int fd, mmsghdr* vec, unsigned vlen, int flags) {
  fd_view v = view_of(fd);
  if (passes_through(v, flags) || vlen == 0) return REAL(sendmmsg)(fd, vec, vlen, flags);
  const int saved = errno;
  if (vlen > UIO_MAXIOV) vlen = UIO_MAXIOV;
  unsigned sent = 0;
  if (v.kind() == fd_kind::stream) {
    for (; sent < vlen; ++sent) {
      ssize_t r = coop_sendmsg_viewed(fd, &vec[sent].msg_hdr, flags);
      if (r < 0) {
        if (sent) break;
        return -1;
      }
      vec[sent].msg_len = static_cast<unsigned>(r);
      size_t total = vec[sent].msg_hdr.msg_iovlen <= IOV_MAX
                         ? iov_cursor::total(vec[sent].msg_hdr.msg_iov,
                                             static_cast<int>(vec[sent].msg_hdr.msg_iovlen))
                         : 0;
      if (static_cast<size_t>(r) < total) {  // interrupted half way: this one counts, then stop
        ++sent;
        break;
      }
    }
  } else {
    detail::deadline_t dl = view_deadline(fd, v, io_dir::write);
    while (sent < vlen) {
      int r = REAL(sendmmsg)(fd, vec + sent, vlen - sent, flags | MSG_DONTWAIT);
      if (r > 0) {
        sent += static_cast<unsigned>(r);
        continue;
      }
      if (r == 0) break;
      if (errno != EAGAIN) {
        if (sent) break;
        return -1;
      }
      if (int e = await_fd(h, fd, io_dir::write, dl)) {
        if (sent) {
          keep_interrupt(h, e);
          break;
        }
        errno = e;
        return -1;
      }
    }
  }
  errno = saved;
  return static_cast<int>(sent);
}

// --- connecting -----------------------------------------------------------------------------

// Blocking connect on a shim-owned socket: start it non-blocking, park until writable, then ask
// the kernel again with the same connect, which reports the outcome (0, ECONNREFUSED...) and
// leaves the socket exactly where a blocking connect would (unconnected after a failure, so it
// may be retried; still connecting after an interruption, so the next connect resumes the wait).
// (getsockopt(SO_ERROR) would consume the error but leave the socket "connecting", and the
// program's next connect would then fail with ECONNABORTED.) SO_SNDTIMEO expiry gives what the
// kernel's blocking connect gives: EINPROGRESS if this call started the connection, EALREADY if
// it was already under way. A Unix socket whose listener's backlog is full (EAGAIN, which epoll
// cannot wait for) backs off and retries.
int coop_connect(hub_impl* h, int fd, const sockaddr* addr, socklen_t len) {
  fd_view v = view_of(fd);
  if (!v.socket() || v.user_nonblock()) return REAL(connect)(fd, addr, len);
  if (!v.owned()) {
    if (h) debug_once(debug_note::connect_blocks, fd);
    return REAL(connect)(fd, addr, len);
  }
  const int saved = errno;
  detail::deadline_t dl = view_deadline(fd, v, io_dir::write);
  int pending = 0;         // EINPROGRESS or EALREADY: the first answer, once connecting
  long backoff = 1000000;  // 1 ms, doubling to 64 ms
  for (;;) {
    int r = REAL(connect)(fd, addr, len);
    if (r == 0 || (errno == EISCONN && pending)) {
      errno = saved;
      return 0;
    }
    int e;
    if (errno == EINPROGRESS || errno == EALREADY) {
      if (!pending) pending = errno;
      e = await_fd(h, fd, io_dir::write, dl, pending);
    } else if (errno == EAGAIN) {
      e = nap(h, fd, backoff, dl, EAGAIN);
      if (backoff < 64000000) backoff *= 2;
    } else {
      return -1;
    }
    if (e) {
      errno = e;
      return -1;
    }
  }
}

// --- accepting ------------------------------------------------------------------------------

int coop_accept4(hub_impl* h, int fd, sockaddr* addr, socklen_t* alen, int flags) {
  // On a cooperative thread every accepted socket is shim-owned, whatever the listener.
  const int real_flags = flags | (h ? SOCK_NONBLOCK : 0);
  fd_view v = view_of(fd);
  int r;
  const int saved = errno;
  if (!v.socket() || v.user_nonblock()) {
    r = REAL(accept4)(fd, addr, alen, real_flags);
  } else {
    // SO_RCVTIMEO bounds a blocking accept (EAGAIN), as in inet_csk_accept.
    r = until_done(h, fd, io_dir::read, view_deadline(fd, v, io_dir::read), [&] {
      if (!v.owned() && !ready_now(fd, io_dir::read)) {
        errno = EAGAIN;
        return -1;
      }
      return REAL(accept4)(fd, addr, alen, real_flags);
    });
  }
  if (r >= 0) {
    fd_born(r);
    view_accepted(r, fd, h != nullptr, flags & SOCK_NONBLOCK);
    errno = saved;
  }
  return r;
}

int hooked_accept4(int fd, sockaddr* addr, socklen_t* alen, int flags) {
  hub_impl* h = cooperative_hub();
  if (!h) {
    int r = REAL(accept4)(fd, addr, alen, flags);
    if (r >= 0) {
      fd_born(r);
      view_accepted(r, fd, false, flags & SOCK_NONBLOCK);
      return r;
    }
    if (__builtin_expect(errno != EAGAIN, 1) || !owned_blocking(fd)) return r;
  }
  return coop_accept4(h, fd, addr, alen, flags);
}

// Off a hub, a call on a shim-owned socket that the non-blocking description cut short
// (EAGAIN) goes through the cooperative path with no hub: it blocks the thread in ppoll. These
// run only once the real call failed (or moved part of the data) on an fd the view says is
// shim-owned and blocking for the program.

[[gnu::noinline]] ssize_t recvfrom_incomplete_owned(int fd, void* buf, size_t n, int flags,
                                                    sockaddr* addr, socklen_t* alen, ssize_t r) {
  // A partial MSG_WAITALL read on a non-blocking description: a blocking one would go on.
  if (r > 0 && static_cast<size_t>(r) < n && !(flags & (MSG_DONTWAIT | MSG_PEEK))) {
    ssize_t more = coop_recvfrom(fd, static_cast<char*>(buf) + r, n - static_cast<size_t>(r), flags,
                                 addr, alen);
    return r + (more > 0 ? more : 0);
  }
  if (r >= 0 || (flags & never_blocks) || errno != EAGAIN) return r;
  return coop_recvfrom(fd, buf, n, flags, addr, alen);
}

[[gnu::noinline]] ssize_t recvfrom_off_hub(int fd, void* buf, size_t n, int flags, sockaddr* addr,
                                           socklen_t* alen) {
  ssize_t r = REAL(recvfrom)(fd, buf, n, flags, addr, alen);
  if (__builtin_expect(r >= 0 && !(flags & MSG_WAITALL), 1) || !owned_blocking(fd)) return r;
  return recvfrom_incomplete_owned(fd, buf, n, flags, addr, alen, r);
}

[[gnu::always_inline]] inline ssize_t hooked_recvfrom(int fd, void* buf, size_t n, int flags,
                                                      sockaddr* addr, socklen_t* alen) {
  if (!cooperative_hub()) return recvfrom_off_hub(fd, buf, n, flags, addr, alen);
  fd_view v = view_peek(fd);
  if (v.known() && recv_passes_through(v, flags))
    return REAL(recvfrom)(fd, buf, n, flags, addr, alen);
  if (addr || alen) return coop_recvfrom(fd, buf, n, flags, addr, alen);
  return coop_recv(fd, buf, n, flags, v);
}

[[gnu::noinline]] ssize_t sendto_short_owned(int fd, const void* buf, size_t n, int flags,
                                             const sockaddr* addr, socklen_t alen, ssize_t r) {
  if ((flags & MSG_DONTWAIT) || (r < 0 && errno != EAGAIN)) return r;
  if (r <= 0) return coop_sendto(fd, buf, n, flags, addr, alen);
  fd_view v = view_of(fd);
  if (passes_through(v, flags)) return r;  // (n == 0 cannot have sent r > 0 bytes)
  const int saved = errno;
  return sendto_retry(fd, buf, n, flags, addr, alen, static_cast<size_t>(r), v, saved, untried);
}

[[gnu::noinline]] ssize_t sendto_off_hub(int fd, const void* buf, size_t n, int flags,
                                         const sockaddr* addr, socklen_t alen) {
  ssize_t r = REAL(sendto)(fd, buf, n, flags, addr, alen);
  if (__builtin_expect(r >= 0 && static_cast<size_t>(r) == n, 1) || !owned_blocking(fd)) return r;
  return sendto_short_owned(fd, buf, n, flags, addr, alen, r);
}

[[gnu::always_inline]] inline ssize_t hooked_sendto(int fd, const void* buf, size_t n, int flags,
                                                    const sockaddr* addr, socklen_t alen) {
  if (!cooperative_hub()) return sendto_off_hub(fd, buf, n, flags, addr, alen);
  fd_view v = view_peek(fd);
  if (v.known() && passes_through(v, flags)) return REAL(sendto)(fd, buf, n, flags, addr, alen);
  if (addr || alen) return coop_sendto(fd, buf, n, flags, addr, alen);
  return coop_send(fd, buf, n, flags, v);
}

[[gnu::noinline]] ssize_t recvmsg_failed_owned(int fd, msghdr* msg, int flags, ssize_t r) {
  if ((flags & never_blocks) || errno != EAGAIN) return r;
  fd_view v = view_of(fd);
  if (recv_passes_through(v, flags)) return REAL(recvmsg)(fd, msg, flags);
  return coop_recvmsg(fd, msg, flags, v);
}

[[gnu::noinline]] ssize_t recvmsg_off_hub(int fd, msghdr* msg, int flags) {
  ssize_t r = REAL(recvmsg)(fd, msg, flags);
  if (__builtin_expect(r >= 0, 1) || !owned_blocking(fd)) return r;
  return recvmsg_failed_owned(fd, msg, flags, r);
}

// Complete (fine), short on a stream socket (a blocking send would go on), or EAGAIN.
[[gnu::noinline]] ssize_t sendmsg_short_owned(int fd, const msghdr* msg, int flags, ssize_t r) {
  if (r < 0 && errno != EAGAIN) return r;
  if (r > 0 && (msg->msg_iovlen > IOV_MAX ||
                static_cast<size_t>(r) ==
                    iov_cursor::total(msg->msg_iov, static_cast<int>(msg->msg_iovlen))))
    return r;
  return coop_sendmsg_viewed(fd, msg, flags, r > 0 ? static_cast<size_t>(r) : 0);
}

[[gnu::noinline]] ssize_t sendmsg_off_hub(int fd, const msghdr* msg, int flags) {
  ssize_t r = REAL(sendmsg)(fd, msg, flags);
  if (__builtin_expect(r == 0 || (flags & MSG_DONTWAIT) || !owned_blocking(fd), 1)) return r;
  return sendmsg_short_owned(fd, msg, flags, r);
}

}  // namespace
}  // namespace fern::shim

using namespace fern::shim;
using fern::detail::hub_impl;

// --- creating -------------------------------------------------------------------------------

extern "C" int socket(int domain, int type, int protocol) {
  hub_impl* h = cooperative_hub();
  int r = REAL(socket)(domain, h ? type | SOCK_NONBLOCK : type, protocol);
  if (r >= 0) {
    fd_born(r);
    view_created(r, kind_of_type(type), h != nullptr, type & SOCK_NONBLOCK);
  }
  return r;
}

extern "C" int socketpair(int domain, int type, int protocol, int sv[2]) {
  hub_impl* h = cooperative_hub();
  int r = REAL(socketpair)(domain, h ? type | SOCK_NONBLOCK : type, protocol, sv);
  if (r == 0) {
    for (int i = 0; i < 2; ++i) {
      fd_born(sv[i]);
      view_created(sv[i], kind_of_type(type), h != nullptr, type & SOCK_NONBLOCK);
    }
  }
  return r;
}

extern "C" int connect(int fd, const struct sockaddr* addr, socklen_t len) {
  hub_impl* h = cooperative_hub();
  if (!h) {
    int r = REAL(connect)(fd, addr, len);
    if (__builtin_expect(r == 0 || (errno != EINPROGRESS && errno != EALREADY && errno != EAGAIN),
                         1) ||
        !owned_blocking(fd))
      return r;
    // A shim-owned socket off a hub: wait for the connection as the blocking call would.
  }
  return coop_connect(h, fd, addr, len);
}

extern "C" int accept(int fd, struct sockaddr* addr, socklen_t* alen) {
  return hooked_accept4(fd, addr, alen, 0);
}

extern "C" int accept4(int fd, struct sockaddr* addr, socklen_t* alen, int flags) {
  return hooked_accept4(fd, addr, alen, flags);
}

// --- receiving ------------------------------------------------------------------------------

extern "C" ssize_t recv(int fd, void* buf, size_t n, int flags) {
  return hooked_recvfrom(fd, buf, n, flags, nullptr, nullptr);
}

extern "C" ssize_t recvfrom(int fd, void* buf, size_t n, int flags, struct sockaddr* addr,
                            socklen_t* alen) {
  return hooked_recvfrom(fd, buf, n, flags, addr, alen);
}

extern "C" ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  if (n > buflen) __chk_fail();
  return hooked_recvfrom(fd, buf, n, flags, nullptr, nullptr);
}

extern "C" ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags,
                                  struct sockaddr* addr, socklen_t* alen) {
  if (n > buflen) __chk_fail();
  return hooked_recvfrom(fd, buf, n, flags, addr, alen);
}

extern "C" ssize_t recvmsg(int fd, struct msghdr* msg, int flags) {
  if (!cooperative_hub()) return recvmsg_off_hub(fd, msg, flags);
  fd_view v = view_peek(fd);
  if (v.known() && recv_passes_through(v, flags)) return REAL(recvmsg)(fd, msg, flags);
  return coop_recvmsg(fd, msg, flags, v);
}

extern "C" int recvmmsg(int fd, struct mmsghdr* vec, unsigned vlen, int flags,
                        struct timespec* timeout) {
  hub_impl* h = cooperative_hub();
  // Off a hub only a shim-owned socket needs help: its blocking recvmmsg waits for vlen messages.
  if (!h && ((flags & never_blocks) || !owned_blocking(fd)))
    return REAL(recvmmsg)(fd, vec, vlen, flags, timeout);
  return coop_recvmmsg(h, fd, vec, vlen, flags, timeout);
}

// --- sending --------------------------------------------------------------------------------

extern "C" ssize_t send(int fd, const void* buf, size_t n, int flags) {
  return hooked_sendto(fd, buf, n, flags, nullptr, 0);
}

extern "C" ssize_t sendto(int fd, const void* buf, size_t n, int flags, const struct sockaddr* addr,
                          socklen_t alen) {
  return hooked_sendto(fd, buf, n, flags, addr, alen);
}

extern "C" ssize_t sendmsg(int fd, const struct msghdr* msg, int flags) {
  if (!cooperative_hub()) return sendmsg_off_hub(fd, msg, flags);
  fd_view v = view_peek(fd);
  if (v.known() && passes_through(v, flags)) return REAL(sendmsg)(fd, msg, flags);
  return coop_sendmsg(fd, msg, flags, v);
}

extern "C" int sendmmsg(int fd, struct mmsghdr* vec, unsigned vlen, int flags) {
  hub_impl* h = cooperative_hub();
  if (!h && ((flags & MSG_DONTWAIT) || !owned_blocking(fd)))
    return REAL(sendmmsg)(fd, vec, vlen, flags);
  return coop_sendmmsg(h, fd, vec, vlen, flags);
}

// --- options --------------------------------------------------------------------------------

// SO_RCVTIMEO / SO_SNDTIMEO go to the kernel (so getsockopt shows them, and accepted sockets
// inherit them) and into the view, where they bound the cooperative waits. Both the old and the
// 64-bit-time (_NEW) option names carry two 64-bit fields on LP64.
extern "C" int setsockopt(int fd, int level, int name, const void* val, socklen_t len) {
  int r = REAL(setsockopt)(fd, level, name, val, len);
  if (r == 0 && level == SOL_SOCKET &&
      (name == SO_RCVTIMEO_OLD || name == SO_SNDTIMEO_OLD || name == SO_RCVTIMEO_NEW ||
       name == SO_SNDTIMEO_NEW) &&
      val && len >= static_cast<socklen_t>(2 * sizeof(std::int64_t))) {
    std::int64_t tv[2];
    std::memcpy(tv, val, sizeof tv);  // the kernel accepted it: it is readable and valid
    // The kernel's reading (sock_set_timeout): negative or zero means none; beyond what it can
    // count in jiffies means forever.
    std::int64_t ns = tv[0] < 0 || (tv[0] == 0 && tv[1] == 0) || tv[0] >= INT64_MAX / 1000000000 - 1
                          ? 0
                          : tv[0] * 1000000000 + tv[1] * 1000;
    bool rcv = name == SO_RCVTIMEO_OLD || name == SO_RCVTIMEO_NEW;
    view_set_timeout(fd, rcv ? fern::detail::io_dir::read : fern::detail::io_dir::write, ns);
  }
  return r;
}

// The kernel holds every option the shim tracks, so reading one needs no translation; the hook
// exists so the name is the shim's in every process it is loaded into.
extern "C" int getsockopt(int fd, int level, int name, void* val, socklen_t* len) {
  return REAL(getsockopt)(fd, level, name, val, len);
}

// Shutting a socket down makes it readable/writable (EPOLLRDHUP/EPOLLHUP): fibers parked on it
// wake, retry and see end of file or EPIPE, as blocked threads would.
extern "C" int shutdown(int fd, int how) {
  return REAL(shutdown)(fd, how);
}
