// fern::fiber_local<T>: a value per fiber, like thread_local for green threads (gevent.local).
// Each fiber (including a thread's root fiber) sees its own T, created on first access from the
// initializer (default: T()) and destroyed when that fiber ends.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include "fern/detail/core.hpp"

namespace fern {

namespace detail {
std::uint64_t new_local_key() noexcept;
void* find_local(fiber_base* f, std::uint64_t key) noexcept;
// Stores p for (f, key); on failure deletes p with del and throws std::bad_alloc.
void add_local(fiber_base* f, std::uint64_t key, void* p, void (*del)(void*));
}  // namespace detail

template <class T>
class fiber_local {
 public:
  fiber_local() = default;
  explicit fiber_local(std::function<T()> init) : init_(std::move(init)) {}
  fiber_local(const fiber_local&) = delete;
  fiber_local& operator=(const fiber_local&) = delete;

  // The current fiber's value, created on first access. Never blocks (the initializer may).
  T& get() {
    detail::fiber_base* f = detail::current_fiber();
    if (void* p = detail::find_local(f, key_)) return *static_cast<T*>(p);
    T* v;
    if (init_) {
      v = new T(init_());
    } else if constexpr (std::is_default_constructible_v<T>) {
      v = new T();
    } else {
      throw std::logic_error("fern: fiber_local without an initializer needs a default T");
    }
    detail::add_local(f, key_, v, [](void* p) { delete static_cast<T*>(p); });
    return *v;
  }
  T& operator*() { return get(); }
  T* operator->() { return &get(); }

 private:
  std::uint64_t key_ = detail::new_local_key();  // unique per object, never reused
  std::function<T()> init_;
};

}  // namespace fern
