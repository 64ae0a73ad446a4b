// fern::event: a flag fibers can wait for (gevent.event.Event). set() wakes every waiter.
// Sync primitives belong to one hub: use them from the fibers of one thread (cross threads with
// hub_handle::post). Destroying one while fibers wait on it is a bug and aborts with a message.
#pragma once

#include <chrono>
#include <optional>

#include "fern/detail/core.hpp"

namespace fern {

class event {
 public:
  event() = default;
  event(const event&) = delete;
  event& operator=(const event&) = delete;
  ~event();

  // Sets the flag and wakes every waiting fiber. Never blocks.
  void set() noexcept;
  // Resets the flag; later wait()s block again. Never blocks.
  void clear() noexcept { flag_ = false; }
  bool is_set() const noexcept { return flag_; }
  // Waits until the flag is set (returns at once if it is); false if the timeout passed first.
  // Blocking point: honours the enclosing fern::timeout and kill().
  bool wait(std::optional<std::chrono::nanoseconds> timeout = {});

 private:
  detail::hook_list waiters_;
  bool flag_ = false;
};

}  // namespace fern
