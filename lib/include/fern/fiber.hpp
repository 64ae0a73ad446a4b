// Fibers: spawning, handles, joining and killing, and the scheduling primitives sleep/yield.
// A fiber is a green thread with its own stack, run by the hub of the OS thread that spawned it;
// it never moves to another thread. Handles (fern::fiber<T>, fern::any_fiber) are copyable,
// reference counted and belong to that thread: do not copy or use them from another thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "fern/detail/core.hpp"
#include "fern/errors.hpp"

namespace fern {

// Options for spawn. Fields may be given with designated initializers:
//   fern::spawn({.name = "worker", .stack_size = 64 * 1024}, fn);
struct spawn_options {
  std::string name;            // shown by name() and in error and stack-overflow reports
  std::size_t stack_size = 0;  // usable bytes; 0 = the hub default (FERN_STACK_SIZE, 256 KiB)
};

// Options for kill().
struct kill_options {
  bool block = true;                                // wait until the fiber is dead
  std::optional<std::chrono::nanoseconds> timeout;  // bound on that wait
};

namespace detail {
template <class T>
struct result_slot {
  std::optional<T> value;
};
template <>
struct result_slot<void> {};

template <class T>
class typed_fiber : public fiber_base {
 public:
  using fiber_base::fiber_base;
  result_slot<T> result_;
};

template <class T, class Fn>
class fiber_impl final : public typed_fiber<T> {
 public:
  fiber_impl(hub_impl* h, std::size_t stack_size, Fn&& fn)
      : typed_fiber<T>(h, stack_size), fn_(std::move(fn)) {}
  void invoke() override {
    if constexpr (std::is_void_v<T>) {
      (*fn_)();
    } else {
      this->result_.value.emplace((*fn_)());
    }
  }
  void drop_callable() noexcept override { fn_.reset(); }

 private:
  std::optional<Fn> fn_;
};

hub_impl* current_hub();
// Joins with a deadline; true if the fiber is done. Blocking point.
bool join_fiber(fiber_base* f, deadline_t deadline);
// Kills; see any_fiber::kill.
bool kill_fiber(fiber_base* f, const kill_options& opts);
void set_fiber_name(fiber_base* f, std::string name);
void link_fiber(fiber_base* f, std::function<void()> cb);
bool joinall_impl(fiber_base* const* fibers, std::size_t n, deadline_t deadline, bool raise_error);
fiber_base* current_fiber_ref() noexcept;  // current fiber with a reference added
}  // namespace detail

template <class T>
class fiber;

// An untyped handle to a fiber: everything but get(). Every fiber<T> converts to it, so fibers
// of different result types can be joined together: fern::joinall({a, b, c}).
class any_fiber {
 public:
  any_fiber() noexcept = default;
  any_fiber(const any_fiber& o) noexcept : f_(o.f_) {
    if (f_) f_->add_ref();
  }
  any_fiber(any_fiber&& o) noexcept : f_(std::exchange(o.f_, nullptr)) {}
  any_fiber& operator=(any_fiber o) noexcept {
    std::swap(f_, o.f_);
    return *this;
  }
  ~any_fiber() {
    if (f_) f_->release();
  }

  // True if this handle refers to a fiber.
  bool valid() const noexcept { return f_ != nullptr; }
  explicit operator bool() const noexcept { return valid(); }

  // Waits until the fiber has finished (returned, thrown or been killed). Returns false if the
  // timeout passed first. Never rethrows the fiber's exception (get() does). Blocking point:
  // honours the enclosing fern::timeout and kill() of the caller. Joining oneself throws
  // std::logic_error.
  bool join(std::optional<std::chrono::nanoseconds> timeout = {}) const {
    return detail::join_fiber(check(), detail::deadline_after(timeout));
  }

  // Raises fern::fiber_exit in the fiber at its current or next blocking point (a fiber that has
  // not started yet never runs). With opts.block (the default) waits, up to opts.timeout, until
  // it is dead, and returns whether it is. Killing the current fiber throws fiber_exit at once;
  // killing a finished fiber does nothing. The root fiber cannot be killed (std::logic_error).
  // Blocking point when opts.block.
  bool kill(kill_options opts = {}) const { return detail::kill_fiber(check(), opts); }

  // True once the fiber has finished, however it ended. Never blocks.
  bool ready() const noexcept { return f_ && f_->done(); }
  // True if it finished by returning. A killed fiber is not successful (it has no value), but it
  // is not an error either: it is not reported and joinall(raise_error) does not raise for it.
  bool successful() const noexcept { return ready() && !f_->exception_; }
  // The exception it ended with (fern::fiber_exit if killed), or null.
  std::exception_ptr exception() const noexcept { return f_ ? f_->exception_ : nullptr; }
  // Its name: spawn_options::name, or "fiber-<id>" ("main" for a thread's root fiber).
  std::string name() const { return check()->name(); }
  // A number unique among the fibers of the process.
  std::uint64_t id() const { return check()->id(); }

  // Calls cb(handle) in a new fiber once this one has finished (at once if it already has), as
  // gevent's link() does. The callback may block. Never blocks.
  template <class F>
  void link(F cb) const {
    static_assert(std::is_invocable_v<F&, any_fiber>, "link callback takes a fern::any_fiber");
    detail::link_fiber(check(), [cb = std::move(cb), self = *this]() mutable { cb(self); });
  }

  friend bool operator==(const any_fiber& a, const any_fiber& b) noexcept { return a.f_ == b.f_; }

  // Internal: the control block.
  detail::fiber_base* base() const noexcept { return f_; }
  // Internal: adopts one reference.
  explicit any_fiber(detail::fiber_base* adopt) noexcept : f_(adopt) {}

 protected:
  detail::fiber_base* check() const {
    if (!f_) throw std::logic_error("fern: empty fiber handle");
    return f_;
  }
  detail::fiber_base* f_ = nullptr;
};

// A typed handle to a fiber whose function returns T (T may be void).
template <class T>
class fiber : public any_fiber {
 public:
  fiber() noexcept = default;
  explicit fiber(detail::typed_fiber<T>* adopt) noexcept : any_fiber(adopt) {}

  // Waits for the fiber to finish and returns its value (a reference that lives as long as a
  // handle does), or rethrows its exception (fern::fiber_exit if it was killed). With a
  // timeout, throws fern::timeout_error (source() == nullptr) if it passes first. Blocking point.
  decltype(auto) get(std::optional<std::chrono::nanoseconds> timeout = {}) const {
    if (!join(timeout)) throw timeout_error();
    if (f_->exception_) std::rethrow_exception(f_->exception_);
    if constexpr (!std::is_void_v<T>) return static_cast<T&>(*typed()->result_.value);
  }

  // Like any_fiber::link, but the callback receives this typed handle.
  template <class F>
  void link(F cb) const {
    static_assert(std::is_invocable_v<F&, fiber<T>>, "link callback takes a fern::fiber<T>");
    detail::link_fiber(check(), [cb = std::move(cb), self = *this]() mutable { cb(self); });
  }

 private:
  detail::typed_fiber<T>* typed() const noexcept {
    return static_cast<detail::typed_fiber<T>*>(f_);
  }
};

namespace detail {
template <class F, class... Args>
using spawn_result_t =
    std::remove_cvref_t<std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>>;

template <class F, class... Args>
auto make_fiber(std::size_t stack_size, F&& f, Args&&... args) {
  using T = spawn_result_t<F, Args...>;
  auto bound = [fn = std::forward<F>(f), ... as = std::forward<Args>(args)]() mutable -> T {
    return std::invoke(std::move(fn), std::move(as)...);
  };
  return new fiber_impl<T, decltype(bound)>(current_hub(), stack_size, std::move(bound));
}
}  // namespace detail

// Starts f(args...) in a new fiber on this thread's hub and returns its handle. The arguments are
// copied or moved into the fiber. The new fiber first runs when the current one reaches a
// blocking point (as in gevent). Never blocks. Throws std::bad_alloc.
template <class F, class... Args>
requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
auto spawn(F&& f, Args&&... args) {
  auto* impl = detail::make_fiber(0, std::forward<F>(f), std::forward<Args>(args)...);
  impl->add_ref();  // the handle's reference
  detail::schedule_new(impl);
  return fiber<detail::spawn_result_t<F, Args...>>(impl);
}

// spawn with a name and/or stack size.
template <class F, class... Args>
auto spawn(spawn_options opts, F&& f, Args&&... args) {
  auto* impl = detail::make_fiber(opts.stack_size, std::forward<F>(f), std::forward<Args>(args)...);
  if (!opts.name.empty()) detail::set_fiber_name(impl, std::move(opts.name));
  impl->add_ref();
  detail::schedule_new(impl);
  return fiber<detail::spawn_result_t<F, Args...>>(impl);
}

// Like spawn, but the fiber starts only after `delay`. Killing it before then cancels it.
template <class F, class... Args>
auto spawn_later(std::chrono::nanoseconds delay, F&& f, Args&&... args) {
  auto* impl = detail::make_fiber(0, std::forward<F>(f), std::forward<Args>(args)...);
  impl->add_ref();
  detail::schedule_later(impl, delay);
  return fiber<detail::spawn_result_t<F, Args...>>(impl);
}

// A handle to the running fiber (the thread's root fiber when called outside any spawned one).
inline any_fiber current() {
  return any_fiber(detail::current_fiber_ref());
}

// Suspends the current fiber for `d` and lets others run. sleep(0) is yield(). Blocking point:
// honours the enclosing fern::timeout and kill().
void sleep(std::chrono::nanoseconds d);

// Moves the current fiber to the back of the ready queue, so every other ready fiber runs
// before it continues. Timers and I/O are polled whenever the queue empties and at least once
// per hub::set_run_budget() fibers, so a yielding loop never starves them. Blocking point:
// delivers a pending kill() and an expired fern::timeout.
void yield();

namespace detail {
template <class Range>
std::vector<fiber_base*> bases_of(const Range& fibers) {
  std::vector<fiber_base*> v;
  if constexpr (requires { std::size(fibers); }) v.reserve(std::size(fibers));
  for (const any_fiber& f : fibers)
    if (f.base()) v.push_back(f.base());
  return v;
}
}  // namespace detail

// Waits until every fiber has finished, or the timeout passed; returns true if all finished.
// With raise_error, rethrows the first exception (in completion order) of a fiber that failed,
// without waiting for the rest (a killed fiber is not a failure). Blocking point.
template <class Range>
bool joinall(const Range& fibers, std::optional<std::chrono::nanoseconds> timeout = {},
             bool raise_error = false) {
  auto v = detail::bases_of(fibers);
  return detail::joinall_impl(v.data(), v.size(), detail::deadline_after(timeout), raise_error);
}
inline bool joinall(std::initializer_list<any_fiber> fibers,
                    std::optional<std::chrono::nanoseconds> timeout = {},
                    bool raise_error = false) {
  return joinall<std::initializer_list<any_fiber>>(fibers, timeout, raise_error);
}

// Kills every fiber (all at once, then waits for all when opts.block). Returns true if all are
// dead. Blocking point when opts.block.
template <class Range>
bool killall(const Range& fibers, kill_options opts = {}) {
  for (const any_fiber& f : fibers)
    if (f.valid()) f.kill({.block = false, .timeout = {}});
  if (!opts.block) return false;
  return joinall(fibers, opts.timeout);
}
inline bool killall(std::initializer_list<any_fiber> fibers, kill_options opts = {}) {
  return killall<std::initializer_list<any_fiber>>(fibers, opts);
}

// Yields the fibers in the order they finish, as gevent.iwait does:
//   for (fern::any_fiber f : fern::iwait(fibers)) { ... }
// With a timeout, iteration stops early when it passes. Each step is a blocking point.
class iwait {
 public:
  template <class Range>
  explicit iwait(const Range& fibers, std::optional<std::chrono::nanoseconds> timeout = {})
      : iwait(detail::bases_of(fibers), timeout) {}
  iwait(std::initializer_list<any_fiber> fibers,
        std::optional<std::chrono::nanoseconds> timeout = {})
      : iwait(detail::bases_of(fibers), timeout) {}
  iwait(const iwait&) = delete;
  iwait& operator=(const iwait&) = delete;
  ~iwait();

  // The index (in the input) of the next fiber to finish, or nullopt when all were returned or
  // the timeout passed. Blocking point.
  std::optional<std::size_t> next_index();
  // The next fiber to finish, or an empty handle when done. Blocking point.
  any_fiber next();

  class iterator {
   public:
    using value_type = any_fiber;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(iwait* w) : w_(w) { ++*this; }
    const any_fiber& operator*() const { return cur_; }
    iterator& operator++() {
      cur_ = w_->next();
      if (!cur_.valid()) w_ = nullptr;
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(const iterator& o) const { return w_ == o.w_; }

   private:
    iwait* w_ = nullptr;
    any_fiber cur_;
  };
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

 private:
  iwait(std::vector<detail::fiber_base*> fibers, std::optional<std::chrono::nanoseconds> timeout);
  struct slot {
    detail::completion_hook hook;
    iwait* owner;
    std::size_t index;
  };
  static void on_done(detail::completion_hook* h, detail::fiber_base*) noexcept;
  std::vector<any_fiber> fibers_;
  std::unique_ptr<slot[]> slots_;
  std::vector<std::size_t> finished_;  // indices in completion order
  std::size_t returned_ = 0;
  detail::deadline_t deadline_;
  detail::waiter* waiting_ = nullptr;  // set while next() is parked
};

// The index of the first of `fibers` to finish (one already finished counts at once), or nullopt
// if the timeout passed first. Blocking point.
template <class Range>
std::optional<std::size_t> wait_any(const Range& fibers,
                                    std::optional<std::chrono::nanoseconds> timeout = {}) {
  iwait w(fibers, timeout);
  return w.next_index();
}
inline std::optional<std::size_t> wait_any(std::initializer_list<any_fiber> fibers,
                                           std::optional<std::chrono::nanoseconds> timeout = {}) {
  iwait w(fibers, timeout);
  return w.next_index();
}

}  // namespace fern
