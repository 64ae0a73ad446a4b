// Sleep family: sleep, usleep, nanosleep, clock_nanosleep (relative and TIMER_ABSTIME on
// CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_TAI) and thrd_sleep park the calling
// fiber on the hub's timers. Arguments the kernel rejects (a null or malformed timespec) take
// the real call, which fails at once with the kernel's own error; so do other clocks (unknown
// ids: EINVAL; CPU clocks: a CPU-time sleep that blocks the thread, as it would without fern).
// A handled signal ends the sleep with EINTR and the time left
// (signals.hpp); a kill with ECANCELED, an expired fern::timeout scope with ETIMEDOUT, the time
// left in *rem for all three. errno is preserved on success.

// The shim defines libc's own names: a fortified build's inline wrappers would clash with them.
#undef _FORTIFY_SOURCE

#include <errno.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

#include "deadline.hpp"
#include "shim.hpp"
#include "signals.hpp"

FERN_REAL_DEF(nanosleep)
FERN_REAL_DEF(clock_nanosleep)
FERN_REAL_DEF(sleep)
FERN_REAL_DEF(usleep)
FERN_REAL_DEF(thrd_sleep)

namespace fern::shim {

namespace {

// Parks the calling fiber until `deadline`: 0 once it passed, or EINTR, ECANCELED, ETIMEDOUT.
// A deadline already due still gives way to the other ready fibers, as gevent's sleep(0) does.
int park_until(detail::hub_impl* h, detail::deadline_t deadline) noexcept {
  detail::waiter w;
  bool expired = false;
  detail::wake_reason why;
  if (deadline <= detail::now_ns()) {
    h->yield_now();
    why = detail::block_nothrow(w, detail::now_ns(), &expired);
  } else {
    eintr_scope scope(h, eintr::always);
    why = detail::block_nothrow(w, deadline, &expired);
  }
  return wake_errno(why, expired);
}

// A relative sleep of `req`: 0 or an errno value, with the time left in *rem if not 0.
int sleep_for(detail::hub_impl* h, const timespec& req, timespec* rem) noexcept {
  const int saved = errno;
  const detail::deadline_t dl = deadline_in(duration_ns(req.tv_sec, req.tv_nsec));
  const int e = park_until(h, dl);
  errno = saved;
  if (e && rem) *rem = to_timespec(left_ns(dl));
  return e;
}

// An absolute sleep until `req` on `clk`. The wait runs on the monotonic clock; when it ends the
// target clock is read again and the wait resumed if it is still early (the clock was set
// back, or the machine was suspended, for CLOCK_BOOTTIME), as the kernel's timer would.
int sleep_until(detail::hub_impl* h, clockid_t clk, const timespec& req) noexcept {
  const int saved = errno;
  const std::int64_t target = duration_ns(req.tv_sec, req.tv_nsec);
  int e = 0;
  for (bool first = true;; first = false) {
    timespec now;
    if (::clock_gettime(clk, &now) != 0) break;
    const std::int64_t cur = duration_ns(now.tv_sec, now.tv_nsec);
    if (cur >= target) {
      if (first) e = park_until(h, 0);  // due already: only give way
      break;
    }
    e = park_until(h, deadline_in(target - cur));
    if (e) break;
  }
  errno = saved;
  return e;
}

bool sleepable_clock(clockid_t clk) noexcept {
  return clk == CLOCK_REALTIME || clk == CLOCK_MONOTONIC || clk == CLOCK_BOOTTIME ||
         clk == CLOCK_TAI;
}

}  // namespace

}  // namespace fern::shim

using fern::shim::cooperative_hub;

extern "C" {

int nanosleep(const timespec* req, timespec* rem) {
  fern::detail::hub_impl* h = cooperative_hub();
  if (!h || !req || !fern::shim::valid_timespec(*req)) return REAL(nanosleep)(req, rem);
  int e = fern::shim::sleep_for(h, *req, rem);
  if (e == 0) return 0;
  errno = e;
  return -1;
}
int __nanosleep(const timespec* req, timespec* rem) __attribute__((alias("nanosleep")));

// Returns the error number (not -1 and errno), and leaves errno alone, as POSIX says.
int clock_nanosleep(clockid_t clk, int flags, const timespec* req, timespec* rem) {
  fern::detail::hub_impl* h = cooperative_hub();
  if (!h || !req || !fern::shim::valid_timespec(*req) || !fern::shim::sleepable_clock(clk))
    return REAL(clock_nanosleep)(clk, flags, req, rem);
  if (flags & TIMER_ABSTIME) return fern::shim::sleep_until(h, clk, *req);
  return fern::shim::sleep_for(h, *req, rem);
}

// glibc: the whole seconds left (the fraction dropped) when interrupted, errno set; else 0 with
// errno preserved.
unsigned int sleep(unsigned int seconds) {
  fern::detail::hub_impl* h = cooperative_hub();
  if (!h) return REAL(sleep)(seconds);
  timespec req{static_cast<time_t>(seconds), 0}, rem{0, 0};
  int e = fern::shim::sleep_for(h, req, &rem);
  if (e == 0) return 0;
  errno = e;
  return static_cast<unsigned int>(rem.tv_sec);
}

// glibc accepts any count (a million or more microseconds included).
int usleep(useconds_t usec) {
  fern::detail::hub_impl* h = cooperative_hub();
  if (!h) return REAL(usleep)(usec);
  timespec req{static_cast<time_t>(usec / 1000000), static_cast<long>(usec % 1000000) * 1000};
  int e = fern::shim::sleep_for(h, req, nullptr);
  if (e == 0) return 0;
  errno = e;
  return -1;
}

// C11: 0, -1 when interrupted by a signal, another negative value on failure (glibc: -2).
int thrd_sleep(const timespec* duration, timespec* remaining) {
  fern::detail::hub_impl* h = cooperative_hub();
  if (!h || !duration || !fern::shim::valid_timespec(*duration))
    return REAL(thrd_sleep)(duration, remaining);
  int e = fern::shim::sleep_for(h, *duration, remaining);
  return e == 0 ? 0 : e == EINTR ? -1 : -2;
}

}  // extern "C"
