// Header-visible internals shared by the templates in fern's public headers: the fiber control
// block, intrusive wait lists and the park/unpark protocol. Nothing here is public API; it is
// exposed only because templates (spawn, queue<T>, ...) must see it. It must not include
// Boost.Context or any system header beyond the standard library.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>

namespace fern::detail {

class hub_impl;
class fiber_base;
struct timeout_scope;

// Deadlines are absolute CLOCK_MONOTONIC nanoseconds; no_deadline means "wait forever".
using deadline_t = std::int64_t;
inline constexpr deadline_t no_deadline = INT64_MAX;

deadline_t now_ns() noexcept;
// now + d, saturating; a negative duration gives a deadline in the past.
deadline_t deadline_after(std::chrono::nanoseconds d) noexcept;
// An optional timeout: nullopt waits forever. (A template, so a plain std::chrono::seconds
// argument picks the overload above instead of being ambiguous.)
template <class Opt>
requires std::is_same_v<Opt, std::optional<std::chrono::nanoseconds>> deadline_t
deadline_after(const Opt& d)
noexcept {
  return d ? deadline_after(*d) : no_deadline;
}

// Doubly linked intrusive list node; unlinks itself in O(1) without knowing its list.
struct list_hook {
  list_hook* prev = nullptr;
  list_hook* next = nullptr;
  bool linked() const noexcept { return next != nullptr; }
  void unlink() noexcept {
    if (!next) return;
    prev->next = next;
    next->prev = prev;
    prev = next = nullptr;
  }
};

// Circular list with a sentinel. Elements are list_hooks embedded in waiters/hooks.
class hook_list {
 public:
  hook_list() noexcept { head_.prev = head_.next = &head_; }
  hook_list(const hook_list&) = delete;
  hook_list& operator=(const hook_list&) = delete;
  bool empty() const noexcept { return head_.next == &head_; }
  void push_back(list_hook* h) noexcept {
    h->prev = head_.prev;
    h->next = &head_;
    head_.prev->next = h;
    head_.prev = h;
  }
  void push_front(list_hook* h) noexcept {
    h->next = head_.next;
    h->prev = &head_;
    head_.next->prev = h;
    head_.next = h;
  }
  list_hook* front() noexcept { return empty() ? nullptr : head_.next; }
  // The element after h, or null at the end.
  list_hook* next(list_hook* h) noexcept { return h->next == &head_ ? nullptr : h->next; }
  list_hook* pop_front() noexcept {
    list_hook* h = front();
    if (h) h->unlink();
    return h;
  }

 private:
  list_hook head_;
};

// Why a parked fiber was resumed. The first unpark wins; later ones are ignored.
enum class wake_reason : std::uint8_t {
  notified,   // the primitive it waited on woke it
  timed_out,  // its deadline passed
  killed,     // kill() was called on it
  loop_exit,  // root fiber: nothing can ever wake it
  // A signal handler ran on the hub's thread while the fiber waited in a call the shim made
  // interruptible (its EINTR emulation, interpose/signals.hpp). Never reaches block().
  interrupted,
};

// One parked fiber's entry on a primitive's wait list. Lives on the parked fiber's stack for the
// duration of the wait. `hook` is on the primitive's list while the fiber waits; whoever wakes
// the fiber (primitive, timer, kill, deadlock check) unlinks it first, so a primitive never sees
// a waiter that already left. `data` is free for the primitive (e.g. a hand-off slot).
// A wait on several lists at once (poll on many fds) links one member waiter per list, each
// with `group` pointing at the waiter the fiber parks on: unparking a member unlinks it and
// unparks the group instead (the first wins; the others' unparks then return false).
struct waiter {
  list_hook hook;
  fiber_base* fiber = nullptr;
  void* data = nullptr;
  waiter* group = nullptr;  // set on members of a multi-list wait only
  wake_reason reason = wake_reason::notified;
  bool interruptible = true;  // false: kill() and timeouts do not end this wait (mutex relock)
  static waiter* from_hook(list_hook* h) noexcept {
    return reinterpret_cast<waiter*>(reinterpret_cast<char*>(h) - offsetof(waiter, hook));
  }
};

// Called with a fiber when it finishes (joiners, iwait, links). Embedded in its owner; the
// owner unlinks it if it goes away first.
struct completion_hook {
  list_hook hook;
  void (*fn)(completion_hook*, fiber_base*) noexcept = nullptr;
  static completion_hook* from_hook(list_hook* h) noexcept {
    return reinterpret_cast<completion_hook*>(reinterpret_cast<char*>(h) -
                                              offsetof(completion_hook, hook));
  }
};

// Fiber life cycle. Transitions (owner: the hub's thread only):
//   state      | event                          | next
//   -----------+--------------------------------+---------------------------------
//   scheduled  | spawn_later timer fires        | ready
//   ready      | picked by the scheduler        | running (a stack is bound on first run)
//   running    | park()                         | parked
//   running    | yield()                        | ready
//   running    | entry function returns/throws  | done  (stack returned to the pool)
//   parked     | unpark(reason)                 | ready
//   scheduled, | kill() before the first run    | done  (never runs; fiber_exit stored)
//   ready*     |                                |
// (*) only while it has never run.
enum class fiber_state : std::uint8_t { scheduled, ready, running, parked, done };

// Timer node. Embedded in whatever waits (a parked fiber's stack frame, a spawn_later fiber).
// heap_index is its slot in the hub's timer heap, or npos when not armed.
struct timer_node {
  static constexpr std::size_t npos = SIZE_MAX;
  deadline_t deadline = no_deadline;
  std::size_t heap_index = npos;
  void (*fire)(timer_node*) noexcept = nullptr;
  bool armed() const noexcept { return heap_index != npos; }
};

// A timer or list hook that knows its fiber (the fiber control block is not standard-layout,
// so hooks inside it cannot be mapped back with offsetof).
struct fiber_timer {
  timer_node node;  // first member
  fiber_base* fiber = nullptr;
};
struct fiber_hook {
  list_hook hook;  // first member
  fiber_base* fiber = nullptr;
};

// The fiber control block. Allocated once per spawn (together with the callable and result, in
// fiber_impl<T, F>); reference counted by handles plus one reference held while not done.
// Every field belongs to the hub's thread.
class fiber_base {
 public:
  fiber_base(hub_impl* h, std::size_t stack_size) noexcept;
  fiber_base(const fiber_base&) = delete;
  fiber_base& operator=(const fiber_base&) = delete;

  void add_ref() noexcept { ++refs_; }
  void release() noexcept {
    if (--refs_ == 0) delete this;
  }

  bool done() const noexcept { return state_ == fiber_state::done; }
  std::uint64_t id() const noexcept { return id_; }
  std::string name() const;
  bool is_root() const noexcept { return root_; }

  // Runs the user's callable and stores its result or exception. Called once, on the fiber.
  virtual void invoke() = 0;
  // Destroys the callable (and what it captured) early, right after it ran.
  virtual void drop_callable() noexcept = 0;

  // --- scheduler fields (hub thread only) -------------------------------------------------
  void* ctx_ = nullptr;               // saved fcontext while not running; null before first run
  fiber_base* next_ready_ = nullptr;  // link on hub_impl::ready_ (singly linked FIFO)
  hub_impl* hub_;
  void* stack_top_ = nullptr;        // bound at first run, returned to the pool when done
  std::size_t stack_size_;           // usable bytes requested (0 = hub default)
  waiter* parked_on_ = nullptr;      // valid while state_ == parked
  timeout_scope* scopes_ = nullptr;  // innermost fern::timeout of this fiber (stack-ordered)
  fiber_state state_ = fiber_state::ready;
  bool root_ = false;
  bool kill_pending_ = false;  // set by kill(); consumed by the next blocking point
  bool reported_ = false;      // the unhandled exception was written to stderr
  std::uint32_t refs_ = 1;     // handles + 1 while not done
  std::uint64_t id_;
  std::exception_ptr exception_;       // set when the callable threw (or was killed)
  std::string* name_ = nullptr;        // null: the default "fiber-<id>"
  bool killed_ = false;                // ended by fiber_exit (not an error)
  hook_list joiners_;                  // waiters in join(); notified when done
  hook_list on_done_;                  // completion_hooks run when done
  fiber_hook all_hook_;                // on hub_impl::all_fibers_ while not done
  fiber_timer start_timer_;            // spawn_later's delay, armed while scheduled
  void* locals_ = nullptr;             // fiber_local storage (lazily created)
  unsigned char eh_globals_[16] = {};  // saved __cxa_eh_globals while switched out
  void* san_fake_stack_ = nullptr;     // ASan fake-stack save slot across switches
  void* tsan_fiber_ = nullptr;         // TSan fiber handle

 protected:
  virtual ~fiber_base();
  friend class hub_impl;
};

// The fiber that is running on this thread, creating the thread's hub on first use.
fiber_base* current_fiber() noexcept;

// Schedules a new (not yet run) fiber on the current hub. Takes over the initial reference.
void schedule_new(fiber_base* f) noexcept;
void schedule_later(fiber_base* f, std::chrono::nanoseconds delay) noexcept;

// Core blocking protocol. The caller links `w` onto a primitive's list (or not), then calls
// block(). block() applies the fiber's enclosing fern::timeout scopes, its pending kill and the
// root's deadlock check, and returns true if notified, false if `op_deadline` passed. It throws
// fern::fiber_exit, fern::timeout_error or fern::loop_exit; in every outcome `w` is unlinked.
// Blocking point.
bool block(waiter& w, deadline_t op_deadline);

// Same protocol, but never throws: returns the wake reason, mapping an expired enclosing
// fern::timeout scope to wake_reason::timed_out with *scope_expired set. For the shim's C paths.
wake_reason block_nothrow(waiter& w, deadline_t op_deadline, bool* scope_expired) noexcept;

// Wakes the fiber waiting in `w` with `reason` (unlinking w). Returns false if it was already
// woken. Never blocks.
bool unpark(waiter& w, wake_reason reason = wake_reason::notified) noexcept;

// Wakes the first waiter of `list`; returns false if the list was empty.
bool notify_one(hook_list& list) noexcept;
// Wakes every waiter of `list`; returns how many.
std::size_t notify_all(hook_list& list) noexcept;

// Throws fern::fiber_exit / fern::timeout_error if the current fiber has a pending kill or an
// expired timeout scope, without switching. Used by blocking points that complete at once.
void check_interrupts();

// Writes "fern: <msg>" to stderr and aborts: a broken invariant or a misuse that would
// otherwise corrupt memory (a primitive destroyed while fibers wait on it).
[[noreturn]] void fatal(const char* msg) noexcept;

// Run `fn` once the fiber finishes (immediately if it already has). Never blocks.
void on_fiber_done(fiber_base* f, completion_hook* h) noexcept;

}  // namespace fern::detail
