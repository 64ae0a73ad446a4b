// Signal handlers and EINTR (signals.hpp): the program's handlers are installed behind a
// trampoline that logs each delivery on the thread it ran on; the hub's signal_hook then wakes
// the eintr_scopes the delivery interrupts. Also pause and sigsuspend, which park the fiber
// until such a delivery. The program sees its own handlers and flags in every sigaction answer.
//
// Limits: handlers installed by a raw syscall(SYS_rt_sigaction) are never seen (their signals
// end the hub's epoll_wait and are otherwise ignored: no EINTR); the synchronous fault signals
// (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS) are passed through unwrapped; a handler runs
// on whatever stack is current (often the hub's 64 KiB one), so one that longjmps out of a
// hooked call is not supported; a process-directed signal interrupts every eligible call parked
// on the thread that takes it (the kernel would pick one thread), never those of other threads.

// The shim defines libc's own names: a fortified build's inline wrappers would clash with them.
#undef _FORTIFY_SOURCE

#include "signals.hpp"

#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "shim.hpp"

FERN_REAL_DEF(sigaction)
FERN_REAL_DEF(pause)
FERN_REAL_DEF(sigsuspend)

namespace fern::shim {

namespace {

// --- the program's handlers -------------------------------------------------------------------

// One signal's user handler and flags, as the program gave them. Written under g_lock (with
// every signal blocked) into the inactive slot, then published by flipping `active`; the
// trampoline reads the active slot lock-free. (A second change racing with one delivery could
// show it a torn slot: as racy as the program's own code.)
struct action_slot {
  std::atomic<std::uintptr_t> fn{0};
  std::atomic<int> flags{0};
};
struct user_action {
  action_slot slot[2];
  std::atomic<unsigned> active{0};
};
user_action g_actions[NSIG];
std::atomic_flag g_lock = ATOMIC_FLAG_INIT;
// siginterrupt(sig, 1) was called: signal() installs without SA_RESTART (glibc's _sigintr).
std::atomic<std::uint64_t> g_sigintr{0};

bool wrappable(int sig) noexcept {
  if (sig < 1 || sig >= NSIG) return false;
  switch (sig) {
    case SIGKILL:
    case SIGSTOP:
    // Synchronous faults: they cannot arrive during a park, and the runtime's stack-overflow
    // handler must run with nothing in between.
    case SIGSEGV:
    case SIGBUS:
    case SIGILL:
    case SIGFPE:
    case SIGTRAP:
    case SIGSYS:
      return false;
    default:
      return true;
  }
}

// --- the per-thread delivery log --------------------------------------------------------------

// Written by the trampoline (signal context) and read by the hub's signal_hook on the same
// thread: relaxed atomics, which are async-signal-safe. `count` numbers the deliveries on this
// thread; last[s] is the number of the latest delivery of s, last_norestart[s] that of the
// latest delivery of s whose handler had no SA_RESTART.
struct signal_log {
  std::atomic<std::uint64_t> count{0};
  std::atomic<std::uint64_t> last[NSIG] = {};
  std::atomic<std::uint64_t> last_norestart[NSIG] = {};
};

// Every thread_local of the shim is initial-exec, as libfern's t_hub is: a fixed offset from the
// thread pointer, no __tls_get_addr call (22 instructions per echoed message with the default
// global-dynamic model, bench/RESULTS.md). They live in the static TLS block, which the dynamic
// linker lays out at start-up for the objects loaded then: the shim preloaded (LD_PRELOAD,
// fern-run) or linked. A later dlopen of the shim is not supported: it works only while glibc's
// small static TLS surplus still has room for these ~1.2 KiB (it had, with glibc 2.36 and nothing
// else taking it), and it would be too late anyway, with the program's threads and fds already
// made without the hooks.
constinit thread_local signal_log t_log __attribute__((tls_model("initial-exec")));

// The thread's live eintr_scopes (a doubly linked list through prev_/next_), and how many carry
// a mask. Fiber and hub context of this thread only; never touched by the trampoline.
constinit thread_local eintr_scope* t_scopes __attribute__((tls_model("initial-exec"))) = nullptr;
constinit thread_local unsigned t_mask_scopes __attribute__((tls_model("initial-exec"))) = 0;
constinit thread_local sigset_t t_sleep_mask __attribute__((tls_model("initial-exec"))) = {};

void log_delivery(int sig, bool restart) noexcept {
  detail::hub_impl* h = detail::hub_impl::peek();
  if (!h) return;  // no hub on this thread: no fiber can be parked here
  std::uint64_t n = t_log.count.load(std::memory_order_relaxed) + 1;
  t_log.last[sig].store(n, std::memory_order_relaxed);
  if (!restart) t_log.last_norestart[sig].store(n, std::memory_order_relaxed);
  t_log.count.store(n, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);  // the log before the hub's flag
  h->note_signal();
}

void trampoline(int sig, siginfo_t* si, void* uc) {
  const int saved = errno;
  user_action& a = g_actions[sig];
  const action_slot& s = a.slot[a.active.load(std::memory_order_acquire)];
  const std::uintptr_t fn = s.fn.load(std::memory_order_relaxed);
  const int flags = s.flags.load(std::memory_order_relaxed);
  log_delivery(sig, (flags & SA_RESTART) != 0);
  errno = saved;
  if (fn == reinterpret_cast<std::uintptr_t>(SIG_DFL) ||
      fn == reinterpret_cast<std::uintptr_t>(SIG_IGN))
    return;  // the disposition changed while this delivery was on its way
  if (flags & SA_SIGINFO)
    reinterpret_cast<void (*)(int, siginfo_t*, void*)>(fn)(sig, si, uc);
  else
    reinterpret_cast<void (*)(int)>(fn)(sig);
}

const std::uintptr_t trampoline_addr = reinterpret_cast<std::uintptr_t>(&trampoline);

// Serializes table updates with the kernel's, with every signal blocked so a handler on this
// thread cannot call sigaction into the held lock.
class table_lock {
 public:
  table_lock() noexcept {
    sigset_t all;
    sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, &old_);
    while (g_lock.test_and_set(std::memory_order_acquire)) {
    }
  }
  ~table_lock() {
    g_lock.clear(std::memory_order_release);
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t old_;
};

int hooked_sigaction(int sig, const struct sigaction* act, struct sigaction* oact) noexcept {
  if (!wrappable(sig)) return REAL(sigaction)(sig, act, oact);
  struct sigaction kact;
  const struct sigaction* pass = act;
  const bool wrap = act && act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN;
  if (wrap) {
    kact = *act;
    kact.sa_sigaction = &trampoline;
    kact.sa_flags |= SA_SIGINFO;
    pass = &kact;
  }
  std::uintptr_t prev_fn;
  int prev_flags;
  {
    const int saved = errno;
    table_lock lock;
    user_action& a = g_actions[sig];
    unsigned cur = a.active.load(std::memory_order_relaxed);
    prev_fn = a.slot[cur].fn.load(std::memory_order_relaxed);
    prev_flags = a.slot[cur].flags.load(std::memory_order_relaxed);
    if (act) {
      action_slot& next = a.slot[cur ^ 1];
      next.fn.store(wrap ? reinterpret_cast<std::uintptr_t>(act->sa_sigaction) : 0,
                    std::memory_order_relaxed);
      next.flags.store(wrap ? act->sa_flags : 0, std::memory_order_relaxed);
      a.active.store(cur ^ 1, std::memory_order_release);
    }
    if (REAL(sigaction)(sig, pass, oact) < 0) {
      if (act) a.active.store(cur, std::memory_order_release);
      return -1;
    }
    errno = saved;
  }
  if (oact) {
    if (reinterpret_cast<std::uintptr_t>(oact->sa_sigaction) == trampoline_addr) {
      oact->sa_sigaction = reinterpret_cast<void (*)(int, siginfo_t*, void*)>(prev_fn);
      oact->sa_flags = (oact->sa_flags & ~SA_SIGINFO) | (prev_flags & SA_SIGINFO);
    } else if (prev_fn && (prev_flags & SA_RESETHAND) && oact->sa_handler == SIG_DFL) {
      // A one-shot delivery reset the handler but kept the flags: hide the SA_SIGINFO the
      // trampoline added.
      oact->sa_flags = (oact->sa_flags & ~SA_SIGINFO) | (prev_flags & SA_SIGINFO);
    }
  }
  return 0;
}

// glibc's check in signal(), sysv_signal(): its own signals (SIGCANCEL, SIGSETXID) are refused.
bool signal_arg_ok(int sig, sighandler_t h) noexcept {
  return h != SIG_ERR && sig >= 1 && sig < NSIG && sig != __SIGRTMIN && sig != __SIGRTMIN + 1;
}

// --- waking the parked calls (hub context) ----------------------------------------------------

bool interrupts(const eintr_scope& s, const sigset_t* thread_mask) noexcept {
  const std::atomic<std::uint64_t>* last =
      s.kind_ == eintr::always ? t_log.last : t_log.last_norestart;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (last[sig].load(std::memory_order_relaxed) <= s.since_) continue;
    const sigset_t* mask = s.mask_ ? s.mask_ : thread_mask;
    if (mask && sigismember(mask, sig) == 1) continue;  // blocked for this call
    return true;
  }
  return false;
}

void on_signals(detail::hub_impl* h) noexcept {
  const std::uint64_t count = t_log.count.load(std::memory_order_relaxed);
  // With calls' masks in play a delivery may have been unblocked by one of them only: the others
  // (the thread's mask) see it only if the thread's mask lets it through.
  sigset_t thread_mask;
  const sigset_t* tm = nullptr;
  if (t_mask_scopes > 0 &&
      ::syscall(SYS_rt_sigprocmask, SIG_BLOCK, nullptr, &thread_mask, sys_sigset_size) == 0)
    tm = &thread_mask;
  for (eintr_scope* s = t_scopes; s; s = s->next_) {
    if (s->hub_ != h || count <= s->since_ || !interrupts(*s, tm)) continue;
    detail::fiber_base* f = s->fiber_;
    if (f->state_ == detail::fiber_state::parked && f->parked_on_ && f->parked_on_->interruptible)
      h->unpark(*f->parked_on_, detail::wake_reason::interrupted);
  }
}

// The mask the hub sleeps with: a signal is deliverable if any parked call would take it, so
// the blocked set is the intersection of the calls' masks, and of the thread's own when some
// fiber waits with no mask of its own (every fiber but those in mask scopes; the thread's mask
// is read now: a later sigprocmask does not update it until the next mask scope comes or goes).
void update_sleep_mask(detail::hub_impl* h) noexcept {
  if (t_mask_scopes == 0) {
    h->sleep_sigmask_ = nullptr;
    return;
  }
  sigset_t m;
  sigfillset(&m);
  for (eintr_scope* s = t_scopes; s; s = s->next_)
    if (s->mask_) sigandset(&m, &m, s->mask_);
  if (t_mask_scopes != h->fiber_count() + 1) {
    sigset_t cur;
    if (::syscall(SYS_rt_sigprocmask, SIG_BLOCK, nullptr, &cur, sys_sigset_size) == 0)
      sigandset(&m, &m, &cur);
  }
  t_sleep_mask = m;
  h->sleep_sigmask_ = &t_sleep_mask;
}

__attribute__((constructor)) void install_signal_hook() {
  detail::hub_impl::signal_hook = &on_signals;
}

}  // namespace

// --- eintr_scope ------------------------------------------------------------------------------

eintr_scope::eintr_scope(detail::hub_impl* h, eintr kind, const sigset_t* mask,
                         bool only_signal) noexcept
    : hub_(h),
      fiber_(h->running()),
      mask_(mask),
      since_(t_log.count.load(std::memory_order_relaxed)),
      kind_(kind),
      only_signal_(only_signal) {
  next_ = t_scopes;
  if (next_) next_->prev_ = this;
  t_scopes = this;
  if (only_signal_) ++h->signal_waits_;
  if (mask_) {
    ++t_mask_scopes;
    update_sleep_mask(h);
  }
}

eintr_scope::~eintr_scope() {
  if (prev_)
    prev_->next_ = next_;
  else
    t_scopes = next_;
  if (next_) next_->prev_ = prev_;
  if (only_signal_) --hub_->signal_waits_;
  if (mask_) {
    --t_mask_scopes;
    update_sleep_mask(hub_);
  }
}

int wake_errno(detail::wake_reason r, bool scope_expired) noexcept {
  switch (r) {
    case detail::wake_reason::notified:
      return 0;
    case detail::wake_reason::timed_out:
      return scope_expired ? ETIMEDOUT : 0;
    case detail::wake_reason::killed:
      return ECANCELED;
    case detail::wake_reason::loop_exit:
      return EDEADLK;
    case detail::wake_reason::interrupted:
      return EINTR;
  }
  return 0;
}

}  // namespace fern::shim

// --- hooks ------------------------------------------------------------------------------------

using fern::shim::hooked_sigaction;

extern "C" {

int sigaction(int sig, const struct sigaction* act, struct sigaction* oact) noexcept {
  return hooked_sigaction(sig, act, oact);
}
int __sigaction(int sig, const struct sigaction* act, struct sigaction* oact) noexcept
    __attribute__((alias("sigaction")));

// glibc's signal() is BSD's: SA_RESTART unless siginterrupt() said otherwise, the signal itself
// blocked in its handler.
sighandler_t signal(int sig, sighandler_t handler) noexcept {
  if (!fern::shim::signal_arg_ok(sig, handler)) {
    errno = EINVAL;
    return SIG_ERR;
  }
  struct sigaction act {
  }, old{};
  act.sa_handler = handler;
  sigemptyset(&act.sa_mask);
  sigaddset(&act.sa_mask, sig);
  bool intr = (fern::shim::g_sigintr.load(std::memory_order_relaxed) >> (sig - 1)) & 1;
  act.sa_flags = intr ? 0 : SA_RESTART;
  if (hooked_sigaction(sig, &act, &old) < 0) return SIG_ERR;
  return old.sa_handler;
}
sighandler_t bsd_signal(int sig, sighandler_t handler) noexcept __attribute__((alias("signal")));
sighandler_t ssignal(int sig, sighandler_t handler) noexcept __attribute__((alias("signal")));

sighandler_t sysv_signal(int sig, sighandler_t handler) noexcept {
  if (!fern::shim::signal_arg_ok(sig, handler)) {
    errno = EINVAL;
    return SIG_ERR;
  }
  struct sigaction act {
  }, old{};
  act.sa_handler = handler;
  sigemptyset(&act.sa_mask);
  act.sa_flags = SA_RESETHAND | SA_NODEFER;
  if (hooked_sigaction(sig, &act, &old) < 0) return SIG_ERR;
  return old.sa_handler;
}
sighandler_t __sysv_signal(int sig, sighandler_t handler) noexcept
    __attribute__((alias("sysv_signal")));

int siginterrupt(int sig, int interrupt) noexcept {
  struct sigaction act;
  if (hooked_sigaction(sig, nullptr, &act) < 0) return -1;
  std::uint64_t bit = std::uint64_t{1} << (sig - 1);
  if (interrupt) {
    fern::shim::g_sigintr.fetch_or(bit, std::memory_order_relaxed);
    act.sa_flags &= ~SA_RESTART;
  } else {
    fern::shim::g_sigintr.fetch_and(~bit, std::memory_order_relaxed);
    act.sa_flags |= SA_RESTART;
  }
  return hooked_sigaction(sig, &act, nullptr) < 0 ? -1 : 0;
}

// System V's sigset, as glibc implements it (sysdeps/posix/sigset.c).
sighandler_t sigset(int sig, sighandler_t disp) noexcept {
  sigset_t set, oset;
  sigemptyset(&set);
  if (sigaddset(&set, sig) < 0) return SIG_ERR;
  struct sigaction act {
  }, oact{};
  if (disp == SIG_HOLD) {
    if (::sigprocmask(SIG_BLOCK, &set, &oset) < 0) return SIG_ERR;
    if (sigismember(&oset, sig)) return SIG_HOLD;
    if (hooked_sigaction(sig, nullptr, &oact) < 0) return SIG_ERR;
    return oact.sa_handler;
  }
  act.sa_handler = disp;
  sigemptyset(&act.sa_mask);
  act.sa_flags = 0;
  if (hooked_sigaction(sig, &act, &oact) < 0) return SIG_ERR;
  if (::sigprocmask(SIG_UNBLOCK, &set, &oset) < 0) return SIG_ERR;
  return sigismember(&oset, sig) ? SIG_HOLD : oact.sa_handler;
}

// pause: parks until a handled signal (EINTR), a kill (ECANCELED) or an expired fern::timeout
// scope (ETIMEDOUT). Always -1.
int pause() {
  fern::detail::hub_impl* h = fern::shim::cooperative_hub();
  if (!h) return REAL(pause)();
  fern::shim::eintr_scope scope(h, fern::shim::eintr::always, nullptr, true);
  fern::detail::waiter w;
  bool expired = false;
  auto why = fern::detail::block_nothrow(w, fern::detail::no_deadline, &expired);
  int e = fern::shim::wake_errno(why, expired);
  errno = e ? e : EINTR;
  return -1;
}

// sigsuspend: `mask` replaces the thread's while it waits, as for pause. A signal already pending
// that `mask` unblocks is delivered at once, by a zero-timeout ppoll with that mask.
int sigsuspend(const sigset_t* mask_arg) {
  // glibc declares the mask nonnull; the compiler must not drop the check (EFAULT at once).
  const sigset_t* mask = mask_arg;
  asm("" : "+r"(mask));
  fern::detail::hub_impl* h = fern::shim::cooperative_hub();
  if (!h || !mask) return REAL(sigsuspend)(mask);
  timespec zero{0, 0};
  if (::syscall(SYS_ppoll, nullptr, 0, &zero, mask, fern::shim::sys_sigset_size) < 0) return -1;
  fern::shim::eintr_scope scope(h, fern::shim::eintr::always, mask, true);
  fern::detail::waiter w;
  bool expired = false;
  auto why = fern::detail::block_nothrow(w, fern::detail::no_deadline, &expired);
  int e = fern::shim::wake_errno(why, expired);
  errno = e ? e : EINTR;
  return -1;
}
int __sigsuspend(const sigset_t* mask) {
  return sigsuspend(mask);
}

}  // extern "C"
