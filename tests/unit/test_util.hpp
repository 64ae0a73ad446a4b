// Helpers shared by the unit tests: how a fiber ended, and which errno an action throws.
#pragma once

#include <dirent.h>

#include <exception>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "fern/fiber.hpp"

namespace fern_test {

// An ordered event log; tests compare the whole sequence.
using log_t = std::vector<std::string>;

// True if f has finished because it was killed (it ended with fern::fiber_exit). Checks the
// stored exception itself rather than trusting any flag.
inline bool ended_by_kill(const fern::any_fiber& f) {
  if (!f.ready() || !f.exception()) return false;
  try {
    std::rethrow_exception(f.exception());
  } catch (const fern::fiber_exit&) {
    return true;
  } catch (...) {
  }
  return false;
}

// The errno of the std::system_error fn throws (checking it is in generic_category), or 0 if
// it throws none.
template <class F>
int system_error_of(F&& fn) {
  try {
    fn();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().category(), std::generic_category());
    return e.code().value();
  }
  return 0;
}

// The number of fds open in this process (-1 if /proc is unreadable).
inline int open_fd_count() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return -1;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n - 1;  // the directory stream's own fd
}

}  // namespace fern_test
