// The hub: one event loop per OS thread, created on first use, that runs the thread's fibers,
// fires timers and polls I/O. The thread's own stack is its root fiber: a blocking point called
// from main() simply switches to the hub, as in gevent. Only post() crosses threads.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

namespace fern {

namespace detail {
class hub_impl;
struct remote_queue;
}  // namespace detail

// A thread-safe reference to a hub, for other threads: post work onto it. While any hub_handle
// exists, the hub counts as possibly woken from outside, so its root fiber waiting on something
// only another thread will set does not fail with fern::loop_exit. Copyable; any thread.
class hub_handle {
 public:
  hub_handle() = default;
  hub_handle(const hub_handle& o);
  hub_handle(hub_handle&& o) noexcept = default;
  hub_handle& operator=(const hub_handle& o);
  hub_handle& operator=(hub_handle&& o) noexcept;
  ~hub_handle();

  // Runs fn in a new fiber on the hub's thread, soon. Returns false (and drops fn) if the hub's
  // thread has exited. Never blocks (takes a short lock). Any thread.
  bool post(std::function<void()> fn) const;

 private:
  friend class hub;
  explicit hub_handle(std::shared_ptr<detail::remote_queue> q);
  void drop() noexcept;
  std::shared_ptr<detail::remote_queue> q_;
};

class hub {
 public:
  // This thread's hub, created on first use. Hub thread only.
  static hub& current();

  // Runs fn in a new fiber on this hub's thread. Thread-safe while the hub exists; from another
  // thread, prefer a hub_handle, which also outlives the hub safely. Never blocks.
  bool post(std::function<void()> fn);
  // A handle other threads can keep. Hub thread only.
  hub_handle handle();

  // Fibers spawned on this hub that have not finished. Hub thread only.
  std::size_t fiber_count() const noexcept;

  // Usable stack bytes of fibers spawned without spawn_options::stack_size (default 256 KiB, or
  // FERN_STACK_SIZE, which accepts K/M suffixes). Rounded up to a page; at least 16 KiB.
  std::size_t default_stack_size() const noexcept;
  void set_default_stack_size(std::size_t bytes) noexcept;

  // How many ready fibers run per loop turn before timers and I/O are polled again (default 256).
  void set_run_budget(unsigned n) noexcept;

  detail::hub_impl* impl() const noexcept { return impl_; }

 private:
  friend class detail::hub_impl;
  explicit hub(detail::hub_impl* impl) noexcept : impl_(impl) {}
  detail::hub_impl* impl_;
};

}  // namespace fern
