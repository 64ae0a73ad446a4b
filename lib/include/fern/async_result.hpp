// fern::async_result<T>: a value or exception that one fiber sets and others wait for
// (gevent.event.AsyncResult; a std::promise and shared_future in one). Copies share one state,
// so it can be handed to the fiber or thread-pool job that will set it. One hub only.
#pragma once

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "fern/errors.hpp"
#include "fern/event.hpp"

namespace fern {

template <class T>
class async_result {
  using stored_t = std::conditional_t<std::is_void_v<T>, bool, T>;

 public:
  async_result() : s_(std::make_shared<state>()) {}

  // Sets the value and wakes every waiter. Setting twice throws std::logic_error. Never blocks.
  template <class U = T>
  requires(!std::is_void_v<U>) void set(U&& v) {
    check_unset();
    s_->value.emplace(std::forward<U>(v));
    s_->ready.set();
  }
  template <class U = T>
  requires std::is_void_v<U>
  void set() {
    check_unset();
    s_->value.emplace(true);
    s_->ready.set();
  }
  void set_exception(std::exception_ptr e) {
    if (!e) throw std::invalid_argument("fern: async_result::set_exception(nullptr)");
    check_unset();
    s_->exception = std::move(e);
    s_->ready.set();
  }

  bool ready() const noexcept { return s_->ready.is_set(); }
  bool successful() const noexcept { return s_->value.has_value(); }
  std::exception_ptr exception() const noexcept { return s_->exception; }

  // Waits until set; false if the timeout passed first. Blocking point.
  bool wait(std::optional<std::chrono::nanoseconds> timeout = {}) const {
    return s_->ready.wait(timeout);
  }
  // Waits, then returns the value (a reference valid while a copy lives) or rethrows the
  // exception. Throws fern::timeout_error if the timeout passed first. Blocking point.
  decltype(auto) get(std::optional<std::chrono::nanoseconds> timeout = {}) const {
    if (!s_->ready.wait(timeout)) throw timeout_error();
    if (s_->exception) std::rethrow_exception(s_->exception);
    if constexpr (!std::is_void_v<T>) return static_cast<T&>(*s_->value);
  }

 private:
  struct state {
    event ready;
    std::optional<stored_t> value;
    std::exception_ptr exception;
  };
  void check_unset() const {
    if (s_->ready.is_set()) throw std::logic_error("fern: async_result set twice");
  }
  std::shared_ptr<state> s_;
};

}  // namespace fern
