// fern::queue<T> (FIFO), fern::lifo_queue<T> and fern::priority_queue<T, Compare>: queues for
// passing values between fibers, unbounded or bounded, as gevent.queue.Queue / LifoQueue /
// PriorityQueue, plus close() (Go's close(ch)) and task_done()/join(). One hub only.
//
// put on a full bounded queue and get on an empty one wait; both take timeouts. A put that
// times out leaves its argument untouched (an rvalue is moved from only on success). close()
// wakes every waiter: put then throws fern::closed_error at once, get drains what is left and
// then throws it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "fern/detail/core.hpp"
#include "fern/errors.hpp"

namespace fern {

namespace detail {
template <class T>
struct fifo_store {
  std::deque<T> items;
  template <class U>
  void push(U&& v) {
    items.push_back(std::forward<U>(v));
  }
  T pop() {
    T v = std::move(items.front());
    items.pop_front();
    return v;
  }
  const T& peek() const { return items.front(); }
  std::size_t size() const noexcept { return items.size(); }
};

template <class T>
struct lifo_store {
  std::vector<T> items;
  template <class U>
  void push(U&& v) {
    items.push_back(std::forward<U>(v));
  }
  T pop() {
    T v = std::move(items.back());
    items.pop_back();
    return v;
  }
  const T& peek() const { return items.back(); }
  std::size_t size() const noexcept { return items.size(); }
};

// Smallest first according to Compare (as Python's heapq); equal elements in no fixed order.
template <class T, class Compare>
struct priority_store {
  std::vector<T> items;
  Compare less;
  struct greater {
    Compare* c;
    bool operator()(const T& a, const T& b) const { return (*c)(b, a); }
  };
  template <class U>
  void push(U&& v) {
    items.push_back(std::forward<U>(v));
    std::push_heap(items.begin(), items.end(), greater{&less});
  }
  T pop() {
    std::pop_heap(items.begin(), items.end(), greater{&less});
    T v = std::move(items.back());
    items.pop_back();
    return v;
  }
  const T& peek() const { return items.front(); }
  std::size_t size() const noexcept { return items.size(); }
};
}  // namespace detail

template <class T, class Store>
class basic_queue {
 public:
  // maxsize 0 means unbounded.
  explicit basic_queue(std::size_t maxsize = 0) noexcept : maxsize_(maxsize) {}
  basic_queue(const basic_queue&) = delete;
  basic_queue& operator=(const basic_queue&) = delete;
  ~basic_queue() {
    if (!getters_.empty() || !putters_.empty() || !joiners_.empty())
      detail::fatal("fern::queue destroyed while fibers wait on it");
  }

  // Appends v, waiting while the queue is full. Blocking point (only when bounded): honours the
  // enclosing fern::timeout and kill(). Throws fern::closed_error after close().
  void put(const T& v) { put_impl(v, detail::no_deadline); }
  void put(T&& v) { put_impl(std::move(v), detail::no_deadline); }
  // As put, but gives up after `timeout`: false, and v is left as it was.
  bool put(const T& v, std::chrono::nanoseconds timeout) {
    return put_impl(v, detail::deadline_after(timeout));
  }
  bool put(T&& v, std::chrono::nanoseconds timeout) {
    return put_impl(std::move(v), detail::deadline_after(timeout));
  }
  // Appends v only if there is room now. Never blocks. Throws fern::closed_error after close().
  bool try_put(const T& v) { return put_impl(v, detail::no_deadline, true); }
  bool try_put(T&& v) { return put_impl(std::move(v), detail::no_deadline, true); }

  // Removes and returns the next item, waiting while the queue is empty. Blocking point:
  // honours the enclosing fern::timeout and kill(). Throws fern::closed_error once the queue
  // is closed and drained.
  T get() {
    std::optional<T> out;
    get_impl(out, detail::no_deadline, false);
    return std::move(*out);
  }
  // As get, but gives up after `timeout` and returns nullopt.
  std::optional<T> get(std::chrono::nanoseconds timeout) {
    std::optional<T> out;
    get_impl(out, detail::deadline_after(timeout), false);
    return out;
  }
  // The next item if there is one now. Never blocks. Throws fern::closed_error once closed and
  // drained.
  std::optional<T> try_get() {
    std::optional<T> out;
    get_impl(out, detail::no_deadline, true);
    return out;
  }

  // Refuses further puts and wakes every waiter. Items already queued can still be got.
  void close() noexcept {
    closed_ = true;
    detail::notify_all(getters_);
    detail::notify_all(putters_);
  }
  bool closed() const noexcept { return closed_; }

  // Marks one item got earlier as processed (gevent's JoinableQueue). Throws std::logic_error
  // if called more often than items were put.
  void task_done() {
    if (unfinished_ == 0) throw std::logic_error("fern: task_done() called too many times");
    if (--unfinished_ == 0) detail::notify_all(joiners_);
  }
  // Waits until every item put has been marked task_done(); false if the timeout passed.
  // Blocking point.
  bool join(std::optional<std::chrono::nanoseconds> timeout = {}) {
    detail::deadline_t dl = detail::deadline_after(timeout);
    while (unfinished_ > 0) {
      detail::waiter w;
      joiners_.push_back(&w.hook);
      if (!detail::block(w, dl)) return unfinished_ == 0;
    }
    return true;
  }

  std::size_t size() const noexcept { return store_.size(); }
  bool empty() const noexcept { return store_.size() == 0; }
  bool full() const noexcept { return maxsize_ != 0 && store_.size() >= maxsize_; }
  std::size_t maxsize() const noexcept { return maxsize_; }
  std::size_t unfinished_tasks() const noexcept { return unfinished_; }

 private:
  template <class U>
  bool put_impl(U&& v, detail::deadline_t dl, bool nowait = false) {
    for (;;) {
      if (closed_) throw closed_error();
      if (!full()) {
        store_.push(std::forward<U>(v));
        ++unfinished_;
        detail::notify_one(getters_);
        return true;
      }
      if (nowait) return false;
      detail::waiter w;
      putters_.push_back(&w.hook);
      if (!detail::block(w, dl)) return false;
    }
  }

  void get_impl(std::optional<T>& out, detail::deadline_t dl, bool nowait) {
    for (;;) {
      if (store_.size() > 0) {
        out.emplace(store_.pop());
        detail::notify_one(putters_);
        // A woken getter that lost the item to a faster one waits again; pass the wake-up on
        // while items remain, so none is left behind with a getter still asleep.
        if (store_.size() > 0) detail::notify_one(getters_);
        return;
      }
      if (closed_) throw closed_error();
      if (nowait) return;
      detail::waiter w;
      getters_.push_back(&w.hook);
      if (!detail::block(w, dl)) return;
    }
  }

  Store store_;
  std::size_t maxsize_;
  std::size_t unfinished_ = 0;
  bool closed_ = false;
  detail::hook_list getters_;
  detail::hook_list putters_;
  detail::hook_list joiners_;
};

template <class T>
using queue = basic_queue<T, detail::fifo_store<T>>;
template <class T>
using lifo_queue = basic_queue<T, detail::lifo_store<T>>;
template <class T, class Compare = std::less<T>>
using priority_queue = basic_queue<T, detail::priority_store<T, Compare>>;

}  // namespace fern
