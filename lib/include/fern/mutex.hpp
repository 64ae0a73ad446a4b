// fern::mutex and fern::condition_variable for fibers. The mutex is FIFO-fair (unlock hands it
// to the longest waiter), non-recursive, and works with std::lock_guard / std::unique_lock.
// One hub only (see event.hpp).
#pragma once

#include <chrono>
#include <concepts>
#include <mutex>
#include <optional>

#include "fern/detail/core.hpp"

namespace fern {

class mutex {
 public:
  mutex() = default;
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;
  ~mutex();

  // Locks, waiting while another fiber holds it; false if the timeout passed first. Locking a
  // mutex the calling fiber already holds throws std::system_error(EDEADLK).
  // Blocking point: honours the enclosing fern::timeout and kill().
  bool acquire(std::optional<std::chrono::nanoseconds> timeout = {});
  // Unlocks. Any fiber may unlock (as with Go's sync.Mutex); unlocking an unlocked mutex
  // throws std::system_error(EPERM). Never blocks.
  void release();

  void lock() { acquire(); }
  bool try_lock() noexcept;
  void unlock() { release(); }
  bool locked() const noexcept { return owner_ != nullptr; }

  // Internal (condition_variable): locks ignoring kill() and timeouts, which the caller
  // delivers after it holds the lock again.
  void lock_uninterruptible();

 private:
  detail::fiber_base* owner_ = nullptr;
  detail::hook_list waiters_;
};

// Waits for a notification while releasing a fern::mutex, like std::condition_variable. A kill
// or timeout during the wait is raised only after the mutex is held again, so the lock's RAII
// owner stays correct.
class condition_variable {
 public:
  condition_variable() = default;
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;
  ~condition_variable();

  // Blocking points: honour the enclosing fern::timeout and kill(). wait() with a timeout
  // returns false if it passed first (spurious wake-ups do not happen, but use a predicate).
  bool wait(std::unique_lock<mutex>& lock, std::optional<std::chrono::nanoseconds> timeout = {});
  // (Constrained, so that wait(lock, 10ms) picks the timeout overload above.)
  template <class Pred>
  requires std::predicate<Pred&>
  bool wait(std::unique_lock<mutex>& lock, Pred pred,
            std::optional<std::chrono::nanoseconds> timeout = {}) {
    detail::deadline_t dl = detail::deadline_after(timeout);
    while (!pred()) {
      detail::deadline_t now = detail::now_ns();
      if (dl != detail::no_deadline && now >= dl) return pred();
      std::optional<std::chrono::nanoseconds> left;
      if (dl != detail::no_deadline) left = std::chrono::nanoseconds(dl - now);
      wait(lock, left);
    }
    return true;
  }

  void notify_one() noexcept;
  void notify_all() noexcept;

 private:
  detail::hook_list waiters_;
};

}  // namespace fern
