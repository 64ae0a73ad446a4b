// The public fiber API over the hub: the blocking protocol (block/unpark with timeout scopes,
// kills and the deadlock check), join/kill/joinall/iwait/link, sleep and yield, and the
// fiber control block's own members.
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <stdexcept>

#include "fern/fiber.hpp"
#include "fern/hub.hpp"
#include "fern/timeout.hpp"
#include "hub_impl.hpp"

namespace fern::detail {

// --- time -----------------------------------------------------------------------------------

deadline_t now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<deadline_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

deadline_t deadline_after(std::chrono::nanoseconds d) noexcept {
  deadline_t now = now_ns();
  std::int64_t n = d.count();
  if (n > 0 && now > no_deadline - n) return no_deadline - 1;  // saturate, still finite
  // Clamp far-past deadlines to the clock's epoch, so that `deadline - now` (remaining(), the
  // poll timeout) cannot overflow for a duration like nanoseconds::min().
  if (n < 0 && n < -now) return 0;
  return now + n;
}

// --- the control block ------------------------------------------------------------------------

namespace {
std::atomic<std::uint64_t> g_next_id_block{0};
}  // namespace

// Ids come from a process-wide counter in blocks of 1024 per hub: unique, and neither an atomic
// operation nor a TLS lookup on the spawn path.
std::uint64_t hub_impl::new_id() noexcept {
  if (next_id_ == id_end_) {
    next_id_ = g_next_id_block.fetch_add(1024, std::memory_order_relaxed) + 1;
    id_end_ = next_id_ + 1024;
  }
  return next_id_++;
}

fiber_base::fiber_base(hub_impl* h, std::size_t stack_size) noexcept
    : hub_(h), stack_size_(stack_size ? stack_pool::round_size(stack_size) : 0), id_(h->new_id()) {}

fiber_base::~fiber_base() {
  delete name_;
}

std::string fiber_base::name() const {
  if (name_) return *name_;
  if (root_) return ::getpid() == static_cast<pid_t>(::syscall(SYS_gettid)) ? "main" : "root";
  return "fiber-" + std::to_string(id_);
}

void set_fiber_name(fiber_base* f, std::string name) {
  if (f->name_)
    *f->name_ = std::move(name);
  else
    f->name_ = new std::string(std::move(name));
}

hub_impl* current_hub() {
  return hub_impl::current();
}

fiber_base* current_fiber() noexcept {
  return hub_impl::current()->running();
}

fiber_base* current_fiber_ref() noexcept {
  fiber_base* f = current_fiber();
  f->add_ref();
  return f;
}

void schedule_new(fiber_base* f) noexcept {
  f->hub_->spawn(f);
}

void schedule_later(fiber_base* f, std::chrono::nanoseconds delay) noexcept {
  f->hub_->spawn_later(f, deadline_after(delay));
}

// --- the blocking protocol ----------------------------------------------------------------------

namespace {

// The earliest live fern::timeout scope of `f` (the innermost on a tie), or null.
const timeout_scope* earliest_scope(const fiber_base* f) noexcept {
  const timeout_scope* best = nullptr;
  for (const timeout_scope* s = f->scopes_; s; s = s->outer)
    if (!s->cancelled && (!best || s->deadline < best->deadline)) best = s;
  return best;
}

struct block_outcome {
  wake_reason reason;
  const timeout_scope* scope;  // the scope whose deadline ended the wait, if any
};

block_outcome block_common(waiter& w, deadline_t op_deadline) noexcept {
  hub_impl* h = hub_impl::current();
  fiber_base* self = h->running();
  w.fiber = self;
  if (self->kill_pending_ && w.interruptible) {
    w.hook.unlink();
    return {wake_reason::killed, nullptr};
  }
  const timeout_scope* s = w.interruptible ? earliest_scope(self) : nullptr;
  deadline_t dl = op_deadline;
  if (s && s->deadline <= dl)
    dl = s->deadline;
  else
    s = nullptr;
  if (dl != no_deadline && dl <= now_ns()) {  // already due: do not switch
    w.hook.unlink();
    return {wake_reason::timed_out, s};
  }
  wake_reason r = h->park(w, dl);
  return {r, r == wake_reason::timed_out ? s : nullptr};
}

}  // namespace

bool block(waiter& w, deadline_t op_deadline) {
  block_outcome o = block_common(w, op_deadline);
  switch (o.reason) {
    case wake_reason::notified:
      return true;
    case wake_reason::timed_out:
      if (o.scope) throw timeout_error(o.scope->self);
      return false;
    case wake_reason::killed:
      w.fiber->kill_pending_ = false;
      throw fiber_exit();
    case wake_reason::loop_exit:
      throw loop_exit();
    case wake_reason::interrupted:  // only the shim's nothrow waits are ever interrupted
      fatal("a throwing wait was interrupted by a signal");
  }
  return false;
}

wake_reason block_nothrow(waiter& w, deadline_t op_deadline, bool* scope_expired) noexcept {
  block_outcome o = block_common(w, op_deadline);
  if (scope_expired) *scope_expired = o.scope != nullptr;
  if (o.reason == wake_reason::killed) w.fiber->kill_pending_ = false;
  return o.reason;
}

bool unpark(waiter& w, wake_reason reason) noexcept {
  return w.fiber && w.fiber->hub_->unpark(w, reason);
}

bool notify_one(hook_list& list) noexcept {
  while (list_hook* h = list.front()) {
    if (unpark(*waiter::from_hook(h), wake_reason::notified)) return true;
    h->unlink();  // defensive: a waiter that is not parked must not stay on a list
  }
  return false;
}

std::size_t notify_all(hook_list& list) noexcept {
  std::size_t n = 0;
  while (notify_one(list)) ++n;
  return n;
}

void check_interrupts() {
  fiber_base* self = current_fiber();
  if (self->kill_pending_) {
    self->kill_pending_ = false;
    throw fiber_exit();
  }
  if (const timeout_scope* s = earliest_scope(self); s && s->deadline <= now_ns())
    throw timeout_error(s->self);
}

void on_fiber_done(fiber_base* f, completion_hook* h) noexcept {
  if (f->done())
    h->fn(h, f);
  else
    f->on_done_.push_back(&h->hook);
}

// --- join, kill, link ---------------------------------------------------------------------------

namespace {
void check_same_thread(const fiber_base* f) {
  if (f->hub_ != hub_impl::peek())
    throw std::logic_error("fern: a fiber handle was used on a thread other than its hub's");
}
}  // namespace

bool join_fiber(fiber_base* f, deadline_t deadline) {
  if (f->done()) return true;
  check_same_thread(f);
  if (f == current_fiber()) throw std::logic_error("fern: a fiber cannot join itself");
  waiter w;
  f->joiners_.push_back(&w.hook);
  block(w, deadline);
  return f->done();
}

bool kill_fiber(fiber_base* f, const kill_options& opts) {
  if (f->done()) return true;
  if (f->root_) throw std::logic_error("fern: the root fiber cannot be killed");
  check_same_thread(f);
  hub_impl* h = f->hub_;
  if (f == h->running()) throw fiber_exit();
  if (!f->ctx_ && (f->state_ == fiber_state::ready || f->state_ == fiber_state::scheduled)) {
    h->cancel_unstarted(f);  // it never runs
    return true;
  }
  f->kill_pending_ = true;
  if (f->state_ == fiber_state::parked && f->parked_on_->interruptible)
    h->unpark(*f->parked_on_, wake_reason::killed);
  if (!opts.block) return f->done();
  return join_fiber(f, deadline_after(opts.timeout));
}

namespace {
struct link_hook {
  completion_hook c;
  std::function<void()> cb;
};
}  // namespace

void link_fiber(fiber_base* f, std::function<void()> cb) {
  auto* l = new link_hook{{}, std::move(cb)};
  l->c.fn = [](completion_hook* c, fiber_base*) noexcept {
    auto* self = reinterpret_cast<link_hook*>(c);
    try {
      fern::spawn(std::move(self->cb));
    } catch (...) {
      std::fprintf(stderr, "fern: out of memory starting a link callback\n");
    }
    delete self;
  };
  on_fiber_done(f, &l->c);
}

// --- joinall ------------------------------------------------------------------------------------

namespace {
struct joinall_state {
  std::size_t remaining;
  bool raise_error;
  fiber_base* failed = nullptr;  // first fiber (in completion order) that failed
  waiter w;
};
struct joinall_hook {
  completion_hook c;  // first member
  joinall_state* st;
};
bool failed(const fiber_base* f) noexcept {
  return f->exception_ && !f->killed_;
}
}  // namespace

bool joinall_impl(fiber_base* const* fibers, std::size_t n, deadline_t deadline, bool raise_error) {
  // One pass over the control blocks (with a million fibers each pass is a cache miss per
  // fiber): finished ones are checked for failure, the others get a completion hook.
  joinall_state st{0, raise_error};
  fiber_base* self = current_fiber();
  std::unique_ptr<joinall_hook[]> hooks;
  std::size_t k = 0;
  for (std::size_t i = 0; i < n; ++i) {
    fiber_base* f = fibers[i];
    if (f->done()) {
      if (raise_error && !st.failed && failed(f)) st.failed = f;
      continue;
    }
    if (f == self) {
      for (std::size_t j = 0; j < k; ++j) hooks[j].c.hook.unlink();
      throw std::logic_error("fern: a fiber cannot join itself");
    }
    if (!hooks) hooks.reset(new joinall_hook[n - i]);
    joinall_hook& jh = hooks[k++];
    jh.st = &st;
    jh.c.fn = [](completion_hook* c, fiber_base* f) noexcept {
      joinall_state* s = reinterpret_cast<joinall_hook*>(c)->st;
      --s->remaining;
      if (s->raise_error && !s->failed && failed(f)) s->failed = f;
      if (s->remaining == 0 || s->failed) unpark(s->w);
    };
    f->on_done_.push_back(&jh.c.hook);
  }
  st.remaining = k;
  struct unhook {
    joinall_hook* h;
    std::size_t n;
    ~unhook() {
      for (std::size_t i = 0; i < n; ++i) h[i].c.hook.unlink();
    }
  } guard{hooks.get(), k};
  while (st.remaining > 0 && !st.failed)
    if (!block(st.w, deadline)) break;
  if (st.failed) std::rethrow_exception(st.failed->exception_);
  return st.remaining == 0;
}

// --- sleep, yield
// ---------------------------------------------------------------------------------

}  // namespace fern::detail

namespace fern {

void yield() {
  detail::hub_impl* h = detail::hub_impl::current();
  detail::fiber_base* self = h->running();
  if (self->kill_pending_ || self->scopes_) detail::check_interrupts();
  h->yield_now();
  if (self->kill_pending_) {
    self->kill_pending_ = false;
    throw fiber_exit();
  }
}

void sleep(std::chrono::nanoseconds d) {
  if (d.count() <= 0) return yield();
  detail::waiter w;
  detail::block(w, detail::deadline_after(d));
}

// --- iwait
// ----------------------------------------------------------------------------------------

iwait::iwait(std::vector<detail::fiber_base*> fibers,
             std::optional<std::chrono::nanoseconds> timeout)
    : deadline_(detail::deadline_after(timeout)) {
  fibers_.reserve(fibers.size());
  slots_.reset(new slot[fibers.size()]);
  for (std::size_t i = 0; i < fibers.size(); ++i) {
    fibers[i]->add_ref();
    fibers_.emplace_back(fibers[i]);
    slots_[i].owner = this;
    slots_[i].index = i;
    slots_[i].hook.fn = &iwait::on_done;
  }
  finished_.reserve(fibers.size());
  for (std::size_t i = 0; i < fibers.size(); ++i) detail::on_fiber_done(fibers[i], &slots_[i].hook);
}

iwait::~iwait() {
  for (std::size_t i = 0; i < fibers_.size(); ++i) slots_[i].hook.hook.unlink();
}

void iwait::on_done(detail::completion_hook* h, detail::fiber_base*) noexcept {
  slot* s = reinterpret_cast<slot*>(h);
  s->owner->finished_.push_back(s->index);  // reserved: cannot throw
  if (s->owner->waiting_) detail::unpark(*s->owner->waiting_);
}

std::optional<std::size_t> iwait::next_index() {
  while (returned_ == finished_.size()) {
    if (returned_ == fibers_.size()) return std::nullopt;
    detail::waiter w;
    waiting_ = &w;
    bool ok;
    try {
      ok = detail::block(w, deadline_);
    } catch (...) {
      waiting_ = nullptr;
      throw;
    }
    waiting_ = nullptr;
    if (!ok) return std::nullopt;
  }
  return finished_[returned_++];
}

any_fiber iwait::next() {
  auto i = next_index();
  return i ? fibers_[*i] : any_fiber();
}

// --- timeout
// ---------------------------------------------------------------------------------------

timeout::timeout(std::chrono::nanoseconds d) {
  detail::fiber_base* self = detail::current_fiber();
  scope_ = {detail::deadline_after(d), self->scopes_, self, this, false};
  self->scopes_ = &scope_;
}

timeout::~timeout() {
  if (scope_.owner->scopes_ != &scope_)
    detail::fatal("fern::timeout scopes destroyed out of order (or on another fiber)");
  scope_.owner->scopes_ = scope_.outer;
}

bool timeout::expired() const noexcept {
  return !scope_.cancelled && scope_.deadline <= detail::now_ns();
}

std::chrono::nanoseconds timeout::remaining() const noexcept {
  detail::deadline_t left = scope_.deadline - detail::now_ns();
  return std::chrono::nanoseconds(left > 0 ? left : 0);
}

// --- hub facade
// -------------------------------------------------------------------------------------

hub& hub::current() {
  return detail::hub_impl::current()->facade();
}

bool hub::post(std::function<void()> fn) {
  return impl_->remote()->push(std::move(fn), true);
}

hub_handle hub::handle() {
  return hub_handle(impl_->remote());
}

std::size_t hub::fiber_count() const noexcept {
  return impl_->fiber_count();
}
std::size_t hub::default_stack_size() const noexcept {
  return impl_->default_stack_size();
}
void hub::set_default_stack_size(std::size_t bytes) noexcept {
  impl_->set_default_stack_size(bytes);
}
void hub::set_run_budget(unsigned n) noexcept {
  impl_->set_run_budget(n);
}

hub_handle::hub_handle(std::shared_ptr<detail::remote_queue> q) : q_(std::move(q)) {
  if (q_) q_->handles.fetch_add(1, std::memory_order_acq_rel);
}
hub_handle::hub_handle(const hub_handle& o) : hub_handle(o.q_) {}
hub_handle& hub_handle::operator=(const hub_handle& o) {
  if (this != &o) {
    drop();
    q_ = o.q_;
    if (q_) q_->handles.fetch_add(1, std::memory_order_acq_rel);
  }
  return *this;
}
hub_handle& hub_handle::operator=(hub_handle&& o) noexcept {
  if (this != &o) {
    drop();
    q_ = std::move(o.q_);
  }
  return *this;
}
hub_handle::~hub_handle() {
  drop();
}

// The last handle going away may be what the hub's deadlock check waits for: wake it so it
// looks again.
void hub_handle::drop() noexcept {
  if (!q_) return;
  if (q_->handles.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    try {
      q_->push([] {}, false);
    } catch (...) {
    }
  }
  q_.reset();
}

bool hub_handle::post(std::function<void()> fn) const {
  return q_ && q_->push(std::move(fn), true);
}

}  // namespace fern
