// event, semaphore, bounded_semaphore, mutex and condition_variable over the blocking protocol
// in core.hpp. Hand-off semantics: a release()/unlock() with waiters gives the unit straight to
// the first waiter, which a later kill or timeout can no longer take back (the first wake-up
// wins), so nothing is lost or granted twice.
#include <cerrno>
#include <stdexcept>
#include <system_error>

#include "fern/event.hpp"
#include "fern/mutex.hpp"
#include "fern/semaphore.hpp"
#include "hub_impl.hpp"

namespace fern {

using detail::block;
using detail::deadline_after;
using detail::waiter;

// --- event --------------------------------------------------------------------------------------

event::~event() {
  if (!waiters_.empty()) detail::fatal("fern::event destroyed while fibers wait on it");
}

void event::set() noexcept {
  flag_ = true;
  detail::notify_all(waiters_);
}

bool event::wait(std::optional<std::chrono::nanoseconds> timeout) {
  if (flag_) return true;
  waiter w;
  waiters_.push_back(&w.hook);
  return block(w, deadline_after(timeout));
}

// --- semaphore ----------------------------------------------------------------------------------

semaphore::~semaphore() {
  if (!waiters_.empty()) detail::fatal("fern::semaphore destroyed while fibers wait on it");
}

bool semaphore::try_acquire() noexcept {
  if (value_ == 0) return false;
  --value_;
  return true;
}

bool semaphore::acquire(std::optional<std::chrono::nanoseconds> timeout) {
  if (try_acquire()) return true;
  waiter w;
  waiters_.push_back(&w.hook);
  return block(w, deadline_after(timeout));  // notified == the unit was handed to us
}

void semaphore::release_unchecked() noexcept {
  if (!detail::notify_one(waiters_)) ++value_;
}

void semaphore::release() {
  release_unchecked();
}

void bounded_semaphore::release() {
  if (value_ >= initial_)
    throw std::logic_error("fern: bounded_semaphore released more times than acquired");
  release_unchecked();
}

// --- mutex --------------------------------------------------------------------------------------

mutex::~mutex() {
  if (!waiters_.empty()) detail::fatal("fern::mutex destroyed while fibers wait on it");
}

bool mutex::try_lock() noexcept {
  if (owner_) return false;
  owner_ = detail::current_fiber();
  return true;
}

bool mutex::acquire(std::optional<std::chrono::nanoseconds> timeout) {
  detail::fiber_base* self = detail::current_fiber();
  if (!owner_) {
    owner_ = self;
    return true;
  }
  if (owner_ == self)
    throw std::system_error(EDEADLK, std::generic_category(), "fern::mutex locked twice");
  waiter w;
  waiters_.push_back(&w.hook);
  return block(w, deadline_after(timeout));  // notified == ownership was handed to us
}

void mutex::lock_uninterruptible() {
  detail::fiber_base* self = detail::current_fiber();
  if (!owner_) {
    owner_ = self;
    return;
  }
  waiter w;
  w.interruptible = false;
  waiters_.push_back(&w.hook);
  if (detail::block_nothrow(w, detail::no_deadline, nullptr) != detail::wake_reason::notified)
    detail::fatal("deadlock: the root fiber waits for a fern::mutex no fiber can release");
}

void mutex::release() {
  if (!owner_) throw std::system_error(EPERM, std::generic_category(), "fern::mutex not locked");
  detail::list_hook* h = waiters_.front();
  if (!h) {
    owner_ = nullptr;
    return;
  }
  waiter* w = waiter::from_hook(h);
  owner_ = w->fiber;
  detail::unpark(*w);
}

// --- condition_variable -------------------------------------------------------------------------

condition_variable::~condition_variable() {
  if (!waiters_.empty())
    detail::fatal("fern::condition_variable destroyed while fibers wait on it");
}

bool condition_variable::wait(std::unique_lock<mutex>& lock,
                              std::optional<std::chrono::nanoseconds> timeout) {
  if (!lock.owns_lock())
    throw std::system_error(EPERM, std::generic_category(),
                            "fern::condition_variable::wait without the lock");
  mutex& m = *lock.mutex();
  // Release first: it throws EPERM if another fiber already unlocked the mutex, and must not
  // leave `w` linked when it does. Nothing can run in between (release never switches).
  m.release();
  waiter w;
  waiters_.push_back(&w.hook);
  bool ok = false;
  std::exception_ptr err;
  try {
    ok = block(w, deadline_after(timeout));
  } catch (...) {
    err = std::current_exception();
  }
  m.lock_uninterruptible();
  if (err) std::rethrow_exception(err);
  return ok;
}

void condition_variable::notify_one() noexcept {
  detail::notify_one(waiters_);
}
void condition_variable::notify_all() noexcept {
  detail::notify_all(waiters_);
}

}  // namespace fern
