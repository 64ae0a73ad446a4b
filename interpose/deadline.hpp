// Time arithmetic shared by the shim's timed calls (sleep.cpp, poll.cpp): the caller's timespec
// or timeval turned into a hub deadline (absolute CLOCK_MONOTONIC ns, saturating, never
// overflowing), and the time left back into the caller's struct. Pure functions; never block.
#pragma once

#include <sys/time.h>
#include <time.h>

#include <cstdint>

#include "fern/detail/core.hpp"

namespace fern::shim {

inline constexpr std::int64_t ns_per_s = 1000000000;

// A valid (tv_sec >= 0, 0 <= tv_nsec < 1e9) duration in ns, saturating at INT64_MAX.
inline std::int64_t duration_ns(std::int64_t sec, std::int64_t nsec) noexcept {
  if (sec >= (INT64_MAX - nsec) / ns_per_s) return INT64_MAX;
  return sec * ns_per_s + nsec;
}

// now + d on the monotonic clock, saturating below no_deadline (a finite deadline stays finite).
inline detail::deadline_t deadline_in(std::int64_t d_ns) noexcept {
  detail::deadline_t now = detail::now_ns();
  if (d_ns >= detail::no_deadline - 1 - now) return detail::no_deadline - 1;
  return now + d_ns;
}

// The time left until `deadline`, zero once it passed.
inline std::int64_t left_ns(detail::deadline_t deadline) noexcept {
  std::int64_t d = deadline - detail::now_ns();
  return d > 0 ? d : 0;
}

inline timespec to_timespec(std::int64_t ns) noexcept {
  return {static_cast<time_t>(ns / ns_per_s), static_cast<long>(ns % ns_per_s)};
}

inline bool valid_timespec(const timespec& ts) noexcept {
  return ts.tv_sec >= 0 && ts.tv_nsec >= 0 && ts.tv_nsec < ns_per_s;
}

}  // namespace fern::shim
