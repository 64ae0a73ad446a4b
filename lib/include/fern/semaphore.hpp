// fern::semaphore and fern::bounded_semaphore (gevent.lock.Semaphore / BoundedSemaphore).
// Waiters are served in FIFO order: release() hands the unit straight to the longest waiter, so
// a fiber that arrives later cannot overtake it. One hub only (see event.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>

#include "fern/detail/core.hpp"

namespace fern {

class semaphore {
 public:
  explicit semaphore(std::size_t value = 1) noexcept : value_(value) {}
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;
  virtual ~semaphore();

  // Takes one unit, waiting while none is free; false if the timeout passed first.
  // Blocking point: honours the enclosing fern::timeout and kill().
  bool acquire(std::optional<std::chrono::nanoseconds> timeout = {});
  // Takes one unit if one is free. Never blocks.
  bool try_acquire() noexcept;
  // Returns one unit, waking the first waiter. Never blocks. bounded_semaphore throws
  // std::logic_error when released more often than acquired.
  virtual void release();

  // For std::lock_guard / std::unique_lock.
  void lock() { acquire(); }
  bool try_lock() noexcept { return try_acquire(); }
  void unlock() { release(); }

  std::size_t value() const noexcept { return value_; }
  bool locked() const noexcept { return value_ == 0; }
  // Fibers waiting in acquire().
  bool has_waiters() const noexcept { return !waiters_.empty(); }

 protected:
  void release_unchecked() noexcept;
  std::size_t value_;
  detail::hook_list waiters_;
};

class bounded_semaphore : public semaphore {
 public:
  explicit bounded_semaphore(std::size_t value = 1) noexcept : semaphore(value), initial_(value) {}
  void release() override;

 private:
  std::size_t initial_;
};

}  // namespace fern
