// fern::timeout: a deadline for everything that blocks inside a scope, like gevent's Timeout and
// Go's context.WithTimeout. Scopes nest per fiber; the earliest deadline wins. A scope does not
// preempt running code: it throws fern::timeout_error at the first blocking point reached after
// it expired (and at every later one inside it, until cancel()), from that point's own stack.
#pragma once

#include <chrono>
#include <type_traits>
#include <utility>

#include "fern/detail/core.hpp"
#include "fern/errors.hpp"

namespace fern {

namespace detail {
// One fern::timeout scope on a fiber's scope list (innermost first).
struct timeout_scope {
  deadline_t deadline;
  timeout_scope* outer;
  fiber_base* owner;
  const timeout* self;
  bool cancelled;
};
}  // namespace detail

// RAII deadline scope for the current fiber. Must be created and destroyed on the same fiber
// and in LIFO order (which a local variable guarantees). Never blocks.
class timeout {
 public:
  explicit timeout(std::chrono::nanoseconds d);
  ~timeout();
  timeout(const timeout&) = delete;
  timeout& operator=(const timeout&) = delete;

  // Disarms the scope: blocking points inside it no longer see its deadline.
  void cancel() noexcept { scope_.cancelled = true; }
  // True once the deadline has passed (and the scope is not cancelled).
  bool expired() const noexcept;
  // The time left, zero once expired.
  std::chrono::nanoseconds remaining() const noexcept;

 private:
  detail::timeout_scope scope_;
};

// Calls f() inside a fern::timeout(d) scope and returns its result; throws fern::timeout_error
// if a blocking point in f reaches the deadline.
template <class F>
decltype(auto) with_timeout(std::chrono::nanoseconds d, F&& f) {
  timeout scope(d);
  return std::forward<F>(f)();
}

}  // namespace fern
