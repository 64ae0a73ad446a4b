// The hub's fd table and epoll registrations: which fibers wait on which fd, in which direction.
// Each fd is registered once, edge-triggered, for both directions (EPOLLIN|EPOLLOUT|EPOLLRDHUP),
// tagged with a generation so events for a closed-and-reused fd number are dropped. Readiness
// that arrives with nobody waiting is remembered in a per-direction bit, consumed by the next
// wait (as Go's netpoller does): a waiter always tries its system call first and waits only on
// EAGAIN, so a stale bit costs one extra try, never a lost wake-up. Hub thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "fern/detail/core.hpp"
#include "fern/io.hpp"

namespace fern::detail {

struct fd_state {
  std::uint32_t gen = 1;           // bumped on close; the high half of the epoll tag
  bool registered = false;         // added to this hub's epoll under `gen`
  bool ready[2] = {false, false};  // an edge arrived while nobody waited (read, write)
  hook_list waiters[2];            // io_waiters parked on this fd (read, write)
};

// A fiber parked on an fd. `closed` is set when fern::close()/the shim's close() ends the wait.
struct io_waiter {
  waiter w;  // first member
  bool closed = false;
};

class fd_table {
 public:
  fd_state* find(int fd) noexcept {
    return fd >= 0 && static_cast<std::size_t>(fd) < fds_.size() ? fds_[fd].get() : nullptr;
  }
  fd_state* get(int fd);  // creates the entry; throws std::bad_alloc
  // Calls f(fd, state) for every entry.
  template <class F>
  void for_each(F f) {
    for (std::size_t i = 0; i < fds_.size(); ++i)
      if (fds_[i]) f(static_cast<int>(i), *fds_[i]);
  }

 private:
  std::vector<std::unique_ptr<fd_state>> fds_;
};

inline std::uint64_t epoll_tag(int fd, std::uint32_t gen) noexcept {
  return (static_cast<std::uint64_t>(gen) << 32) | static_cast<std::uint32_t>(fd);
}

}  // namespace fern::detail
