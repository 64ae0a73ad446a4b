// The hub loop and the scheduler: per-thread creation, run/park/unpark, the loop phases, the
// deadlock check, fiber start and end, and the orderly unwinding of fibers at thread exit.
// noexcept throughout (DESIGN.md §6): failures inside the runtime abort with a fern: message.
#include <errno.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cxxabi.h>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <typeinfo>

#include "config.hpp"
#include "fern/fiber.hpp"
#include "fern/threadpool.hpp"
#include "hub_impl.hpp"
#include "locals.hpp"
#include "sys.hpp"

namespace fern::detail {

void* current_eh_globals() noexcept;

namespace {

// Destroys the thread's hub at thread exit (a separate object: t_hub must stay trivially
// destructible to keep its cheap TLS model).
struct hub_owner {
  bool armed = false;
  ~hub_owner() {
    hub_impl*& t_hub = hub_impl::t_hub;
    hub_impl* h = t_hub;
    if (!h) return;
    t_hub = nullptr;
    // exit() called from inside a spawned fiber runs this on that fiber's stack, which the hub
    // owns: tearing the hub down would free the stack under our feet. Leak it instead.
    if (h->on_root()) {
      t_hub = h;  // fibers unwinding during shutdown still need their hub
      delete h;
      t_hub = nullptr;
    }
  }
};
thread_local hub_owner t_owner;

// Runtime-internal fibers (the root and the hub fiber): no callable.
class system_fiber final : public fiber_base {
 public:
  using fiber_base::fiber_base;
  void invoke() override {}
  void drop_callable() noexcept override {}
};

struct park_timer {
  timer_node node;  // first member: the node's address is the park_timer's
  waiter* w;
  hub_impl* h;
};

}  // namespace

[[noreturn]] void fatal(const char* msg) noexcept {
  std::fprintf(stderr, "fern: %s\n", msg);
  std::fflush(stderr);
  std::abort();
}

constinit thread_local hub_impl* hub_impl::t_hub = nullptr;

namespace {
void fork_child() noexcept {
  if (hub_impl* h = hub_impl::peek()) h->after_fork_child();
}
}  // namespace

hub_impl* hub_impl::create() noexcept {
  static const bool at_fork = ::pthread_atfork(nullptr, nullptr, &fork_child) == 0;
  (void)at_fork;
  hub_impl* h = new (std::nothrow) hub_impl();
  if (!h) fatal("out of memory creating the hub");
  t_hub = h;
  t_owner.armed = true;  // odr-use registers its destructor for this thread
  return h;
}

bool remote_queue::push(std::function<void()> fn, bool in_fiber) {
  {
    std::lock_guard<std::mutex> lk(mu);
    if (closed) return false;
    items.push_back({std::move(fn), in_fiber});
    if (wake_pending.exchange(true, std::memory_order_acq_rel)) return true;
    // Written under the lock so the hub cannot close evfd in between.
    std::uint64_t one = 1;
    sys::write(evfd, &one, sizeof one);
  }
  return true;
}

hub_impl::hub_impl() : facade_(this), default_stack_(config().stack_size) {
  eh_globals_ = current_eh_globals();
  epfd_ = sys::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) fatal("epoll_create1 failed");
  remote_ = std::make_shared<remote_queue>();
  remote_->evfd = sys::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (remote_->evfd < 0) fatal("eventfd failed");
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = 0;  // 0 tags the remote queue's eventfd (fd tags have a generation >= 1)
  if (sys::epoll_ctl(epfd_, EPOLL_CTL_ADD, remote_->evfd, &ev) < 0) fatal("epoll_ctl failed");

  root_ = new system_fiber(this, 0);
  root_->root_ = true;
  root_->state_ = fiber_state::running;
  current_ = root_;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* lo;
    std::size_t size;
    if (pthread_attr_getstack(&attr, &lo, &size) == 0) {
      root_stack_lo_ = lo;
      root_stack_size_ = size;
    }
    pthread_attr_destroy(&attr);
  }
  context_created(root_);

  constexpr std::size_t hub_stack = 64 * 1024;
  hub_fiber_ = new system_fiber(this, hub_stack);
  hub_fiber_->stack_top_ = stacks_.acquire(hub_stack);
  if (!hub_fiber_->stack_top_) fatal("cannot allocate the hub's stack");
  hub_fiber_->ctx_ = make_context(hub_fiber_->stack_top_, hub_stack, true);
  context_created(hub_fiber_);
  install_overflow_handler();
}

void hub_impl::after_fork_child() noexcept {
  // Only the forking thread exists here; other threads' hubs are unreachable memory.
  int ep = sys::epoll_create1(EPOLL_CLOEXEC);
  int ev = sys::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (ep < 0 || ev < 0) fatal("cannot recreate the hub's epoll instance after fork");
  sys::close(epfd_);
  epfd_ = ep;
  // A thread that was posting at the fork left the queue's mutex locked in this copy, for ever.
  new (&remote_->mu) std::mutex;
  sys::close(remote_->evfd);
  remote_->evfd = ev;
  remote_->wake_pending.store(!remote_->items.empty(), std::memory_order_relaxed);
  if (!remote_->items.empty()) {
    std::uint64_t one = 1;
    sys::write(ev, &one, sizeof one);
  }
  epoll_event e{};
  e.events = EPOLLIN | EPOLLET;
  e.data.u64 = 0;
  if (sys::epoll_ctl(epfd_, EPOLL_CTL_ADD, ev, &e) < 0) fatal("epoll_ctl failed after fork");
  fds_.for_each([&](int fd, fd_state& st) {
    if (!st.registered) return;
    epoll_event r{};
    r.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    r.data.u64 = epoll_tag(fd, st.gen);
    if (sys::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &r) < 0) st.registered = false;
  });
}

hub_impl::~hub_impl() {
  shutdown();
  {
    std::lock_guard<std::mutex> lk(remote_->mu);
    remote_->closed = true;
    remote_->items.clear();
    sys::close(remote_->evfd);
    remote_->evfd = -1;
  }
  default_pool_.reset();  // joins its threads; their completions are refused from now on
  destroy_locals(root_);
  sys::close(epfd_);
  context_destroyed(hub_fiber_);
  context_destroyed(root_);
  hub_fiber_->release();
  root_->release();
  remove_overflow_altstack();
}

// Thread exit with fibers still alive: kill them and let them unwind (destructors run, as they
// would for a thread's objects), running the loop until they are gone or nothing can progress.
// A fiber that survives three kills (it swallowed fiber_exit) is abandoned.
void hub_impl::shutdown() noexcept {
  if (current_ != root_) return;
  shutting_down_ = true;
  for (int round = 0; round < 3 && live_fibers_ > 0; ++round) {
    for (list_hook* h = all_fibers_.front(); h;) {
      list_hook* nh = all_fibers_.next(h);
      fiber_base* f = reinterpret_cast<fiber_hook*>(h)->fiber;
      if (!f->done()) {
        f->add_ref();
        kill_fiber(f, {.block = false});
        f->release();
      }
      h = nh;
    }
    waiter w;
    shutdown_waiter_ = &w;
    if (live_fibers_ > 0) {
      bool scope_expired = false;
      block_nothrow(w, deadline_after(std::chrono::seconds(1)), &scope_expired);
    }
    shutdown_waiter_ = nullptr;
  }
  // A fiber killed before it ever ran stays on the ready queue until next_runnable() retires
  // it; nothing pops the queue after this point, so retire those here (else they leak).
  while (fiber_base* f = pop_ready())
    if (f->done()) retire(f);
  if (live_fibers_ > 0)
    std::fprintf(stderr, "fern: %zu fiber(s) still alive at thread exit were abandoned\n",
                 live_fibers_);
}

void hub_impl::spawn(fiber_base* f) noexcept {
  ++live_fibers_;
  f->all_hook_.fiber = f;
  all_fibers_.push_back(&f->all_hook_.hook);
  f->state_ = fiber_state::ready;
  push_ready(f);
}

void hub_impl::spawn_timer_fired(timer_node* t) noexcept {
  fiber_base* f = reinterpret_cast<fiber_timer*>(t)->fiber;
  f->state_ = fiber_state::ready;
  f->hub_->push_ready(f);
}

void hub_impl::spawn_later(fiber_base* f, deadline_t when) noexcept {
  ++live_fibers_;
  f->all_hook_.fiber = f;
  all_fibers_.push_back(&f->all_hook_.hook);
  f->state_ = fiber_state::scheduled;
  f->start_timer_.node.deadline = when;
  f->start_timer_.node.fire = &spawn_timer_fired;
  f->start_timer_.fiber = f;
  add_timer(&f->start_timer_.node);
}

void hub_impl::cancel_unstarted(fiber_base* f) noexcept {
  bool in_ready_queue = f->state_ == fiber_state::ready;
  cancel_timer(&f->start_timer_.node);
  try {
    f->exception_ = std::make_exception_ptr(fiber_exit{});
  } catch (...) {
  }
  f->killed_ = true;
  f->drop_callable();
  finish(f);
  // Still linked on the ready queue: next_runnable() retires it when it comes up.
  if (!in_ready_queue) retire(f);
}

wake_reason hub_impl::park(waiter& w, deadline_t deadline) noexcept {
  fiber_base* self = current_;
  w.fiber = self;
  self->state_ = fiber_state::parked;
  self->parked_on_ = &w;
  park_timer pt{{}, &w, this};
  if (deadline != no_deadline) {
    pt.node.deadline = deadline;
    pt.node.fire = [](timer_node* t) noexcept {
      auto* p = reinterpret_cast<park_timer*>(t);
      p->h->unpark(*p->w, wake_reason::timed_out);
    };
    timers_.push(&pt.node);
  }
  leave();
  cancel_timer(&pt.node);
  return w.reason;
}

bool hub_impl::unpark(waiter& w, wake_reason reason) noexcept {
  if (w.group) {  // a member of a multi-list wait: leave its list, wake the fiber's own waiter
    w.hook.unlink();
    return unpark(*w.group, reason);
  }
  fiber_base* f = w.fiber;
  if (!f || f->state_ != fiber_state::parked || f->parked_on_ != &w) return false;
  w.hook.unlink();
  w.reason = reason;
  f->parked_on_ = nullptr;
  f->state_ = fiber_state::ready;
  push_ready(f);
  return true;
}

fiber_base* hub_impl::next_runnable() noexcept {
  while (fiber_base* f = pop_ready()) {
    if (f->state_ == fiber_state::done) {  // killed before it ever ran
      retire(f);
      continue;
    }
    if (!f->ctx_) {  // first run: bind a stack now, so fibers that never park share hot stacks
      std::size_t size = f->stack_size_ ? f->stack_size_ : default_stack_;
      void* top = stacks_.acquire(size);
      if (!top) {
        try {
          f->exception_ = std::make_exception_ptr(
              std::system_error(errno ? errno : ENOMEM, std::generic_category(),
                                "fern: cannot allocate a fiber stack"));
        } catch (...) {
        }
        report(f);
        f->drop_callable();
        finish(f);
        retire(f);
        continue;
      }
      f->stack_top_ = top;
      f->stack_size_ = size;
      f->ctx_ = make_context(top, size, false);
      context_created(f);
    }
    return f;
  }
  return nullptr;
}

void hub_impl::leave_slow() noexcept {
  fiber_base* self = current_;
  fiber_base* next = nullptr;
  if (turn_runs_ < run_budget_ && (next = next_runnable())) ++turn_runs_;
  if (!next) next = hub_fiber_;
  if (next == self) {  // yielded with nobody else ready
    self->state_ = fiber_state::running;
    return;
  }
  switch_to(this, self, next);
}

void hub_impl::arrived(fiber_base* prev, void* prev_ctx) noexcept {
  prev->ctx_ = prev_ctx;
  if (prev->state_ == fiber_state::done) retire(prev);
}

void hub_impl::finish(fiber_base* f) noexcept {
  f->state_ = fiber_state::done;
  --live_fibers_;
  f->all_hook_.hook.unlink();
  notify_all(f->joiners_);
  while (list_hook* h = f->on_done_.pop_front()) {
    completion_hook* c = completion_hook::from_hook(h);
    c->fn(c, f);
  }
  if (shutting_down_ && live_fibers_ == 0 && shutdown_waiter_)
    unpark(*shutdown_waiter_, wake_reason::notified);
}

void hub_impl::retire(fiber_base* f) noexcept {
  if (f->stack_top_) {
    stacks_.release(f->stack_top_, f->stack_size_);
    f->stack_top_ = nullptr;
  }
  f->ctx_ = nullptr;
  context_destroyed(f);
  f->release();  // the reference held while not done
}

void hub_impl::report(fiber_base* f) noexcept {
  if (f->reported_ || !f->exception_) return;
  f->reported_ = true;
  std::string name = f->name();
  const char* type = "unknown exception";
  const char* what = "";
  char* demangled = nullptr;
  try {
    std::rethrow_exception(f->exception_);
  } catch (const std::exception& e) {
    int status = 0;
    demangled = abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status);
    type = demangled ? demangled : typeid(e).name();
    what = e.what();
  } catch (...) {
    if (const std::type_info* t = abi::__cxa_current_exception_type()) {
      int status = 0;
      demangled = abi::__cxa_demangle(t->name(), nullptr, nullptr, &status);
      type = demangled ? demangled : t->name();
    }
  }
  std::fprintf(stderr, "fern: fiber \"%s\" (id %" PRIu64 ") failed with %s: %s\n", name.c_str(),
               f->id_, type, what);
  std::free(demangled);
}

void hub_impl::fiber_main(fiber_base* self) noexcept {
  try {
    self->invoke();
  } catch (const fiber_exit&) {
    self->exception_ = std::current_exception();
    self->killed_ = true;
  } catch (...) {
    self->exception_ = std::current_exception();
    report(self);
  }
  self->drop_callable();
  destroy_locals(self);
  finish(self);
  leave();
  fatal("a finished fiber was resumed");
}

// --- the loop -------------------------------------------------------------------------------

void hub_impl::run_timers() noexcept {
  if (timers_.empty()) return;
  deadline_t now = now_ns();
  while (timer_node* t = timers_.pop_expired(now)) t->fire(t);
}

bool hub_impl::nothing_can_wake() const noexcept {
  return ready_head_ == nullptr && timers_.empty() && io_waiters_ == 0 && signal_waits_ == 0 &&
         pending_jobs_ == 0 && remote_->handles.load(std::memory_order_acquire) == 0 &&
         !remote_->wake_pending.load(std::memory_order_acquire);
}

void hub_impl::drain_remote() noexcept {
  std::uint64_t v;
  sys::read(remote_->evfd, &v, sizeof v);
  remote_->wake_pending.store(false, std::memory_order_release);
  std::vector<remote_queue::item> items;
  {
    std::lock_guard<std::mutex> lk(remote_->mu);
    items.swap(remote_->items);
  }
  for (remote_queue::item& it : items) {
    if (!it.in_fiber) {
      it.fn();
      continue;
    }
    try {
      fern::spawn(std::move(it.fn));
    } catch (...) {
      std::fprintf(stderr, "fern: out of memory running a posted function\n");
    }
  }
}

void hub_impl::poll(bool block) noexcept {
  timespec ts{0, 0};
  const timespec* tsp = &ts;
  if (block) {
    deadline_t next = timers_.next_deadline();
    if (next == no_deadline) {
      tsp = nullptr;
    } else {
      deadline_t d = next - now_ns();
      if (d > 0) ts = {static_cast<time_t>(d / 1000000000), static_cast<long>(d % 1000000000)};
    }
  } else if (io_waiters_ == 0) {
    // Nothing but the remote queue can have events: skip the system call unless it was written.
    if (remote_->wake_pending.load(std::memory_order_acquire)) drain_remote();
    return;
  }
  epoll_event evs[128];
  int n = sys::epoll_pwait2(epfd_, evs, 128, tsp, sleep_sigmask_);
  if (n < 0 && errno == ENOSYS) {  // kernel < 5.11: millisecond resolution, rounded up
    int ms = tsp ? static_cast<int>((ts.tv_sec * 1000) + (ts.tv_nsec + 999999) / 1000000) : -1;
    n = sys::epoll_wait(epfd_, evs, 128, ms, sleep_sigmask_);
  }
  bool remote = false;
  for (int i = 0; i < n; ++i) {
    if (evs[i].data.u64 == 0)
      remote = true;
    else
      dispatch_io(evs[i].data.u64, evs[i].events);
  }
  if (remote || remote_->wake_pending.load(std::memory_order_acquire)) drain_remote();
}

void (*hub_impl::signal_hook)(hub_impl*) noexcept = nullptr;

void hub_impl::note_signal() noexcept {
  signal_noted_.store(true, std::memory_order_relaxed);
  std::uint64_t one = 1;
  int saved = errno;
  sys::write(remote_->evfd, &one, sizeof one);  // drain_remote() reads it like a post's
  errno = saved;
}

void hub_impl::hub_main() noexcept {
  for (;;) {
    turn_runs_ = 0;
    run_timers();
    if (signal_noted_.load(std::memory_order_relaxed)) {
      // Cleared before the hook looks, so a signal during the hook is seen next turn.
      signal_noted_.store(false, std::memory_order_relaxed);
      std::atomic_signal_fence(std::memory_order_seq_cst);
      if (signal_hook) signal_hook(this);
    }
    if (ready_head_) {
      poll(false);
    } else if (nothing_can_wake()) {
      // Every fiber waits for something only another fiber could do. The root fiber is parked
      // (the hub runs only when it is); fail its wait instead of sleeping forever.
      if (root_->state_ != fiber_state::parked ||
          !unpark(*root_->parked_on_, wake_reason::loop_exit))
        fatal("deadlock check found the root fiber not parked");
    } else {
      poll(true);
      run_timers();
      if (signal_noted_.load(std::memory_order_relaxed)) continue;  // the hook first
    }
    if (fiber_base* next = next_runnable()) {
      ++turn_runs_;
      switch_to(this, hub_fiber_, next);
    }
  }
}

bool hub_impl::current_guard(const char** lo, const char** hi) const noexcept {
  fiber_base* f = current_;
  if (!f || f == root_ || !f->stack_top_) return false;
  *hi = static_cast<const char*>(f->stack_top_) - f->stack_size_;
  *lo = *hi - stack_guard_size;
  return true;
}

threadpool& hub_impl::default_pool() {
  if (!default_pool_) default_pool_ = std::make_unique<threadpool>(config().threadpool_size);
  return *default_pool_;
}

}  // namespace fern::detail
