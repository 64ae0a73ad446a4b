// Stack-overflow reporting. A fiber that runs into the guard region below its stack faults with
// SIGSEGV; the handler runs on an alternate signal stack (the faulting stack is unusable), finds
// that the address lies in the running fiber's guard, writes
//   fern: stack overflow in fiber "<name>"
// and aborts. Any other SIGSEGV goes to the handler that was installed before ours (ASan's, or
// the default action). Only async-signal-safe calls here: no malloc, no stdio.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <mutex>

#include "hub_impl.hpp"
#include "sys.hpp"

namespace fern::detail {
namespace {

constexpr std::size_t altstack_size = 64 * 1024;
struct sigaction g_prev_segv;
std::once_flag g_installed;
thread_local void* t_altstack = nullptr;  // the alternate stack we installed, if any

void put(const char* s, std::size_t n) noexcept {
  while (n > 0) {
    ssize_t w = sys::write(2, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}
void put(const char* s) noexcept {
  put(s, std::strlen(s));
}

void on_segv(int sig, siginfo_t* si, void* uc) {
  hub_impl* h = hub_impl::peek();
  const char *lo, *hi;
  const char* addr = static_cast<const char*>(si->si_addr);
  if (h && h->current_guard(&lo, &hi) && addr >= lo && addr < hi) {
    fiber_base* f = h->running();
    put("fern: stack overflow in fiber \"");
    if (f->name_) {
      put(f->name_->data(), f->name_->size());
    } else {
      char buf[32];
      char* p = buf + sizeof buf;
      std::uint64_t id = f->id();
      do {
        *--p = static_cast<char>('0' + id % 10);
        id /= 10;
      } while (id);
      put("fiber-");
      put(p, static_cast<std::size_t>(buf + sizeof buf - p));
    }
    put("\" (stack of ");
    {
      char buf[32];
      char* p = buf + sizeof buf;
      std::size_t kib = f->stack_size_ / 1024;
      do {
        *--p = static_cast<char>('0' + kib % 10);
        kib /= 10;
      } while (kib);
      put(p, static_cast<std::size_t>(buf + sizeof buf - p));
    }
    put(" KiB; raise it with spawn_options::stack_size or FERN_STACK_SIZE)\n");
    signal(SIGABRT, SIG_DFL);
    abort();
  }
  if (g_prev_segv.sa_flags & SA_SIGINFO) {
    if (g_prev_segv.sa_sigaction) {
      g_prev_segv.sa_sigaction(sig, si, uc);
      return;
    }
  } else if (g_prev_segv.sa_handler != SIG_DFL && g_prev_segv.sa_handler != SIG_IGN) {
    g_prev_segv.sa_handler(sig);
    return;
  }
  // Default action: restore it and return; the faulting instruction runs again and the kernel
  // kills the process with SIGSEGV as it would have without us.
  signal(SIGSEGV, SIG_DFL);
}

}  // namespace

void install_overflow_handler() noexcept {
  stack_t cur;
  if (!t_altstack && sigaltstack(nullptr, &cur) == 0 && (cur.ss_flags & SS_DISABLE)) {
    void* m =
        mmap(nullptr, altstack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) {
      stack_t ss{};
      ss.ss_sp = m;
      ss.ss_size = altstack_size;
      if (sigaltstack(&ss, nullptr) == 0)
        t_altstack = m;
      else
        munmap(m, altstack_size);
    }
  }
  std::call_once(g_installed, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_prev_segv);
  });
}

void remove_overflow_altstack() noexcept {
  if (!t_altstack) return;
  stack_t ss{};
  ss.ss_flags = SS_DISABLE;
  if (sigaltstack(&ss, nullptr) == 0) munmap(t_altstack, altstack_size);
  t_altstack = nullptr;
}

}  // namespace fern::detail
