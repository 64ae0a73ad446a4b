// fern::channel<T>: a rendezvous channel (Go's unbuffered chan, gevent's Channel). put waits
// until a getter takes the value; get waits until a putter offers one. The value passes straight
// from one fiber to the other. One hub only.
#pragma once

#include <chrono>
#include <optional>
#include <utility>

#include "fern/detail/core.hpp"
#include "fern/errors.hpp"

namespace fern {

template <class T>
class channel {
 public:
  channel() = default;
  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;
  ~channel() {
    if (!getters_.empty() || !putters_.empty())
      detail::fatal("fern::channel destroyed while fibers wait on it");
  }

  // Hands v to a getter, waiting until one takes it. Blocking point: honours the enclosing
  // fern::timeout and kill(). Throws fern::closed_error after close() (also when close() comes
  // while it waits; then v was not taken).
  void put(const T& v) { put_impl(v, detail::no_deadline, false); }
  void put(T&& v) { put_impl(std::move(v), detail::no_deadline, false); }
  // As put, but false if no getter took v within `timeout`; v is then left as it was.
  bool put(const T& v, std::chrono::nanoseconds timeout) {
    return put_impl(v, detail::deadline_after(timeout), false);
  }
  bool put(T&& v, std::chrono::nanoseconds timeout) {
    return put_impl(std::move(v), detail::deadline_after(timeout), false);
  }
  // Hands v over only if a getter is waiting now. Never blocks.
  bool try_put(const T& v) { return put_impl(v, detail::no_deadline, true); }
  bool try_put(T&& v) { return put_impl(std::move(v), detail::no_deadline, true); }

  // Takes a value from a putter, waiting for one. Blocking point. Throws fern::closed_error
  // after close().
  T get() {
    std::optional<T> out;
    get_impl(out, detail::no_deadline, false);
    return std::move(*out);
  }
  std::optional<T> get(std::chrono::nanoseconds timeout) {
    std::optional<T> out;
    get_impl(out, detail::deadline_after(timeout), false);
    return out;
  }
  // Takes a value only if a putter is waiting now. Never blocks.
  std::optional<T> try_get() {
    std::optional<T> out;
    get_impl(out, detail::no_deadline, true);
    return out;
  }

  // Wakes every waiter with fern::closed_error; later puts and gets throw it too.
  void close() noexcept {
    closed_ = true;
    detail::notify_all(getters_);
    detail::notify_all(putters_);
  }
  bool closed() const noexcept { return closed_; }
  bool has_getters() const noexcept { return !getters_.empty(); }
  bool has_putters() const noexcept { return !putters_.empty(); }

 private:
  // What a waiting putter offers: the getter moves or copies the value out.
  struct offer {
    void (*take)(void* src, std::optional<T>& dst);
    void* src;
    bool taken;
  };

  template <class U>
  bool put_impl(U&& v, detail::deadline_t dl, bool nowait) {
    if (closed_) throw closed_error();
    if (detail::list_hook* h = getters_.front()) {
      detail::waiter* w = detail::waiter::from_hook(h);
      static_cast<std::optional<T>*>(w->data)->emplace(std::forward<U>(v));
      detail::unpark(*w);
      return true;
    }
    if (nowait) return false;
    using src_t = std::remove_reference_t<U>;
    offer o{[](void* src, std::optional<T>& dst) {
              if constexpr (std::is_const_v<src_t> || std::is_lvalue_reference_v<U>)
                dst.emplace(*static_cast<src_t*>(src));
              else
                dst.emplace(std::move(*static_cast<src_t*>(src)));
            },
            const_cast<std::remove_const_t<src_t>*>(&v), false};
    detail::waiter w;
    w.data = &o;
    putters_.push_back(&w.hook);
    bool notified = detail::block(w, dl);
    if (o.taken) return true;
    if (notified && closed_) throw closed_error();
    return false;
  }

  void get_impl(std::optional<T>& out, detail::deadline_t dl, bool nowait) {
    if (closed_) throw closed_error();
    if (detail::list_hook* h = putters_.front()) {
      detail::waiter* w = detail::waiter::from_hook(h);
      auto* o = static_cast<offer*>(w->data);
      o->take(o->src, out);
      o->taken = true;
      detail::unpark(*w);
      return;
    }
    if (nowait) return;
    detail::waiter w;
    w.data = &out;
    getters_.push_back(&w.hook);
    bool notified = detail::block(w, dl);
    if (!out && notified && closed_) throw closed_error();
  }

  detail::hook_list getters_;
  detail::hook_list putters_;
  bool closed_ = false;
};

}  // namespace fern
