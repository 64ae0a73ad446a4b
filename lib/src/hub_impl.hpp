// The per-thread hub: scheduler state and the loop, in named phases. Private to lib/.
//
// Scheduling: a fiber that parks or yields switches directly to the next ready fiber; only when
// the ready queue is empty, or `run_budget_` fibers ran in this turn, does it switch to the hub
// fiber, which runs the other phases: timers -> poll (epoll, with the next timer as timeout, or
// zero if fibers are ready) -> wake-ups (remote posts) -> deadlock check -> back to running.
// Everything here belongs to the hub's thread, except remote_queue.
#pragma once

#include <signal.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "fern/detail/core.hpp"
#include "fern/hub.hpp"
#include "poller.hpp"
#include "stack_pool.hpp"
#include "timer_heap.hpp"

namespace fern {
class threadpool;
}

namespace fern::detail {

class hub_impl;
// The context switch (context.cpp: the only user of Boost.Context). Saves `from`, resumes `to`;
// returns when something switches back to `from`.
void switch_to(hub_impl* h, fiber_base* from, fiber_base* to) noexcept;

// Work posted from any thread. Shared (shared_ptr) between the hub and hub_handles so a handle
// can outlive the hub: once `closed`, post() fails. `mu` guards items and closed; the eventfd is
// written only on the empty -> non-empty edge (`wake_pending`, acq_rel), so a burst of posts
// costs one wake-up.
struct remote_queue {
  struct item {
    std::function<void()> fn;
    bool in_fiber;  // public post(): run in a new fiber; internal completions run in the hub
  };
  std::mutex mu;
  std::vector<item> items;  // guarded by mu
  bool closed = false;      // guarded by mu
  int evfd = -1;            // valid until closed
  std::atomic<bool> wake_pending{false};
  std::atomic<long> handles{0};  // live hub_handles: the loop may be woken from outside

  bool push(std::function<void()> fn, bool in_fiber);
};

class hub_impl {
 public:
  hub_impl();
  ~hub_impl();
  hub_impl(const hub_impl&) = delete;
  hub_impl& operator=(const hub_impl&) = delete;

  static hub_impl* current() noexcept {  // this thread's hub, created on first use
    hub_impl* h = t_hub;
    return h ? h : create();
  }
  static hub_impl* peek() noexcept { return t_hub; }  // this thread's hub or null
  static hub_impl* create() noexcept;

  // The hot pointer is initial-exec TLS: one %fs-relative load, no __tls_get_addr call. libfern
  // is always loaded at program start (linked, or pulled in by the preloaded shim), so the static
  // TLS block has room for it.
  static constinit thread_local hub_impl* t_hub __attribute__((tls_model("initial-exec")));

  std::uint64_t new_id() noexcept;  // a process-unique fiber id

  fiber_base* running() const noexcept { return current_; }
  bool on_root() const noexcept { return current_ == root_; }
  // True while the hub fiber itself runs (timers, poll, posted callbacks): nothing may park.
  bool in_hub_context() const noexcept { return current_ == hub_fiber_; }

  // --- scheduling (hub thread) ----------------------------------------------------------
  void push_ready(fiber_base* f) noexcept {
    f->next_ready_ = nullptr;
    if (ready_tail_)
      ready_tail_->next_ready_ = f;
    else
      ready_head_ = f;
    ready_tail_ = f;
  }
  fiber_base* pop_ready() noexcept {
    fiber_base* f = ready_head_;
    if (f) {
      ready_head_ = f->next_ready_;
      if (!ready_head_) ready_tail_ = nullptr;
    }
    return f;
  }

  void spawn(fiber_base* f) noexcept;  // a new fiber, ready to run
  void spawn_later(fiber_base* f, deadline_t when) noexcept;
  // Parks the running fiber on `w` until unpark or `deadline`; returns the wake reason.
  wake_reason park(waiter& w, deadline_t deadline) noexcept;
  bool unpark(waiter& w, wake_reason reason) noexcept;
  // The running fiber gives way to every ready fiber, then continues.
  void yield_now() noexcept {
    current_->state_ = fiber_state::ready;
    push_ready(current_);
    leave();
  }
  // Ends a fiber that never ran (killed before its start).
  void cancel_unstarted(fiber_base* f) noexcept;

  // --- called by the context switch (context.cpp) ----------------------------------------
  // Switches from the running fiber to the next one. The running fiber must already be in its
  // new state (parked, ready or done). The common case (a started fiber at the head of the
  // ready queue, budget left) is inline; everything else is in leave_slow().
  void leave() noexcept {
    fiber_base* self = current_;
    fiber_base* next = ready_head_;
    if (next && next->ctx_ && next->state_ == fiber_state::ready && turn_runs_ < run_budget_ &&
        next != self) {
      ready_head_ = next->next_ready_;
      if (!ready_head_) ready_tail_ = nullptr;
      ++turn_runs_;
      switch_to(this, self, next);
      return;
    }
    leave_slow();
  }
  void leave_slow() noexcept;
  // Runs on the fiber that was just resumed: records `prev`'s context and retires it if done.
  void arrived(fiber_base* prev, void* prev_ctx) noexcept;
  // First code run on a new fiber's stack.
  [[noreturn]] void fiber_main(fiber_base* self) noexcept;
  [[noreturn]] void hub_main() noexcept;

  // --- timers -----------------------------------------------------------------------------
  void add_timer(timer_node* t) { timers_.push(t); }
  void cancel_timer(timer_node* t) noexcept {
    if (t->armed()) timers_.remove(t);
  }

  // --- cross-thread -----------------------------------------------------------------------
  std::shared_ptr<remote_queue> remote() const noexcept { return remote_; }
  // Jobs of thread pools that will report back through remote(): they keep the loop alive.
  void job_started() noexcept { ++pending_jobs_; }
  void job_finished() noexcept { --pending_jobs_; }
  threadpool& default_pool();

  // Fibers parked on fds (the poller): while non-zero, every turn polls epoll.
  std::size_t io_waiters_ = 0;

  // --- fds (poller.cpp) -------------------------------------------------------------------
  static constexpr int fd_ready = -1;
  // Readies a wait on fd: returns fd_ready (a remembered edge: do not park), 0 with *out set
  // (park on (*out)->waiters[d]), or an errno value (EBADF, EPERM, ENOMEM; EBUSY if
  // `exclusive` and someone already waits in that direction).
  int fd_prepare(int fd, io_dir d, bool exclusive, fd_state** out) noexcept;
  void fd_closing(int fd) noexcept;
  void dispatch_io(std::uint64_t tag, std::uint32_t events) noexcept;
  // In the child of fork(): the hub's epoll instance and eventfd are shared with the parent's
  // (the child's waits would steal the parent's edge-triggered events, and its registrations
  // would land in the parent's set); give the child its own, with the same registrations.
  void after_fork_child() noexcept;

  // --- signals (the shim's EINTR emulation; lib itself never uses them) -------------------
  // A signal handler that ran on this thread calls note_signal(): async-signal-safe (an atomic
  // store and a write(2) to the wake-up eventfd, so a loop about to sleep wakes at once). The
  // loop's next turn then calls signal_hook, in hub context, where the shim may unpark the waits
  // the signal interrupts with wake_reason::interrupted. Set once per process, by the shim.
  void note_signal() noexcept;
  static void (*signal_hook)(hub_impl*) noexcept;
  // The signal mask in force while the loop waits in epoll (the masks of ppoll/pselect/
  // epoll_pwait callers parked on this hub, combined by the shim); null keeps the thread's.
  const sigset_t* sleep_sigmask_ = nullptr;
  // Fibers parked with neither an fd nor a deadline, in a wait only a signal can end (the
  // shim's poll with no fds and no timeout, pause): like io_waiters_, they keep the loop alive.
  std::size_t signal_waits_ = 0;

  // --- misc -------------------------------------------------------------------------------
  std::size_t fiber_count() const noexcept { return live_fibers_; }
  std::size_t default_stack_size() const noexcept { return default_stack_; }
  void set_default_stack_size(std::size_t b) noexcept {
    default_stack_ = stack_pool::round_size(b);
  }
  void set_run_budget(unsigned n) noexcept { run_budget_ = n ? n : 1; }
  fern::hub& facade() noexcept { return facade_; }
  fiber_base* root() const noexcept { return root_; }

  // The bounds of the running fiber's stack guard (for the SIGSEGV handler); false on the root.
  bool current_guard(const char** lo, const char** hi) const noexcept;

 private:
  fiber_base* next_runnable() noexcept;
  void report(fiber_base* f) noexcept;
  void finish(fiber_base* f) noexcept;  // the fiber's callable is over: notify, stay for retire
  void retire(fiber_base* f) noexcept;  // after the last switch away from a done fiber
  void run_timers() noexcept;
  void poll(bool block) noexcept;
  void drain_remote() noexcept;
  bool nothing_can_wake() const noexcept;
  void shutdown() noexcept;
  static void spawn_timer_fired(timer_node* t) noexcept;

  fern::hub facade_;
  std::uint64_t next_id_ = 0;  // this hub's block of fiber ids: [next_id_, id_end_)
  std::uint64_t id_end_ = 0;
  fiber_base* current_ = nullptr;
  fiber_base* root_ = nullptr;       // the thread's own stack
  fiber_base* hub_fiber_ = nullptr;  // runs hub_main()
  fiber_base* ready_head_ = nullptr;
  fiber_base* ready_tail_ = nullptr;
  unsigned turn_runs_ = 0;  // fibers resumed since the hub fiber last ran
  unsigned run_budget_ = 256;
  std::size_t live_fibers_ = 0;  // spawned and not finished
  std::size_t pending_jobs_ = 0;
  hook_list all_fibers_;  // fiber_hooks of every spawned fiber not yet done
  std::size_t default_stack_;
  bool shutting_down_ = false;
  std::atomic<bool> signal_noted_{false};  // note_signal() since the last signal_hook call
  waiter* shutdown_waiter_ = nullptr;      // the root's wait in shutdown()
  timer_heap timers_;
  stack_pool stacks_;
  fd_table fds_;
  int epfd_ = -1;
  std::shared_ptr<remote_queue> remote_;
  std::unique_ptr<threadpool> default_pool_;
  void* eh_globals_;  // this thread's __cxa_eh_globals, swapped per fiber on every switch
  friend void switch_to(hub_impl* h, fiber_base* from, fiber_base* to) noexcept;
  friend class fiber_base;

 public:
  // Stack of the root fiber (the thread's stack), for the sanitizer annotations.
  const void* root_stack_lo_ = nullptr;
  std::size_t root_stack_size_ = 0;
  void* root_tsan_fiber_ = nullptr;
};

// Prepares a fresh context on [top - size, top) that will start in hub_impl::fiber_main (or
// hub_main for the hub fiber).
void* make_context(void* top, std::size_t size, bool hub_fiber) noexcept;
// Sanitizer bookkeeping for a fiber that will never run again.
void context_destroyed(fiber_base* f) noexcept;
void context_created(fiber_base* f) noexcept;

// Writes "fern: <msg>" to stderr and aborts: a broken runtime invariant.
[[noreturn]] void fatal(const char* msg) noexcept;

// Installs the SIGSEGV handler (once per process) and this thread's alternate signal stack.
void install_overflow_handler() noexcept;
// Removes the alternate signal stack install_overflow_handler() set up for this thread.
void remove_overflow_altstack() noexcept;

}  // namespace fern::detail
