// The context switch: the only file that includes Boost.Context, and the one place that tells
// the sanitizers (ASan fake stacks, TSan fibers) and the C++ runtime about fiber switches.
// It must stay small and allocation-free: it runs on every park, yield and wake-up.
#include <cxxabi.h>
#include <boost/context/detail/fcontext.hpp>

#include <cstring>

#include "hub_impl.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define FERN_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FERN_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define FERN_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FERN_TSAN 1
#endif
#endif

#ifdef FERN_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef FERN_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace bcd = boost::context::detail;

namespace fern::detail {
namespace {

// The C++ runtime keeps the exceptions being handled (std::current_exception, `throw;`) and
// the uncaught count in one per-thread __cxa_eh_globals. A fiber that switches away inside a
// catch block would otherwise leave its exception on top of that per-thread stack for the next
// fiber to pop. We swap its two words (caughtExceptions, uncaughtExceptions: the layout shared
// by libstdc++ and libc++abi on x86-64) per fiber, as greenlet does for Python's exc_info.
constexpr std::size_t eh_globals_size = 16;
static_assert(sizeof(fiber_base::eh_globals_) == eh_globals_size);

#ifdef FERN_ASAN
void stack_bounds(hub_impl* h, fiber_base* f, const void** lo, std::size_t* size) noexcept {
  if (f == h->root()) {
    *lo = h->root_stack_lo_;
    *size = h->root_stack_size_;
  } else {
    *lo = static_cast<char*>(f->stack_top_) - f->stack_size_;
    *size = f->stack_size_;
  }
}
#endif

// jump_fcontext ends with `pop %r8; jmp *%r8`, not `ret`. Called with a plain `call`, every
// switch pushes a return-stack-buffer entry that is never popped, so each `ret` after a switch
// is mispredicted: measured 28 ns per yield instead of 8. Entering it with push+jmp keeps the
// RSB balanced; a fiber resuming then returns along the same call chain the previous fiber came
// down, which the RSB predicts. The red zone is skipped because the push lands in it.
inline bcd::transfer_t jump(bcd::fcontext_t to, void* data) noexcept {
#if defined(__x86_64__) && !defined(FERN_PLAIN_JUMP)
  register void* rdi asm("rdi") = to;
  register void* rsi asm("rsi") = data;
  void* fctx;
  void* out;
  asm volatile(
      "leaq -128(%%rsp), %%rsp\n\t"
      "leaq 1f(%%rip), %%rax\n\t"
      "pushq %%rax\n\t"
      "jmp jump_fcontext@PLT\n\t"
      "1:\n\t"
      "leaq 128(%%rsp), %%rsp\n\t"
      : "=a"(fctx), "=d"(out), "+D"(rdi), "+S"(rsi)
      :
      : "rcx", "r8", "r9", "r10", "r11", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
        "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
        "xmm15", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)");
  return {fctx, out};
#else
  return bcd::jump_fcontext(to, data);
#endif
}

inline void resumed(hub_impl* h, bcd::transfer_t t) noexcept {
#ifdef FERN_ASAN
  __sanitizer_finish_switch_fiber(h->running()->san_fake_stack_, nullptr, nullptr);
#endif
  h->arrived(static_cast<fiber_base*>(t.data), t.fctx);
}

void fiber_entry(bcd::transfer_t t) noexcept {
  hub_impl* h = hub_impl::peek();
  resumed(h, t);
  h->fiber_main(h->running());
}

void hub_entry(bcd::transfer_t t) noexcept {
  hub_impl* h = hub_impl::peek();
  resumed(h, t);
  h->hub_main();
}

}  // namespace

void switch_to(hub_impl* h, fiber_base* from, fiber_base* to) noexcept {
  void* eh = h->eh_globals_;
  std::memcpy(from->eh_globals_, eh, eh_globals_size);
  std::memcpy(eh, to->eh_globals_, eh_globals_size);
  h->current_ = to;
  to->state_ = fiber_state::running;
#ifdef FERN_ASAN
  const void* lo;
  std::size_t size;
  stack_bounds(h, to, &lo, &size);
  // A finished fiber never comes back: passing null lets ASan free its fake stack.
  __sanitizer_start_switch_fiber(from->done() ? nullptr : &from->san_fake_stack_, lo, size);
#endif
#ifdef FERN_TSAN
  __tsan_switch_to_fiber(to->tsan_fiber_, 0);
#endif
  bcd::transfer_t t = jump(to->ctx_, from);
  resumed(h, t);
}

void* make_context(void* top, std::size_t size, bool hub_fiber) noexcept {
  return bcd::make_fcontext(top, size, hub_fiber ? hub_entry : fiber_entry);
}

void context_created(fiber_base* f) noexcept {
#ifdef FERN_TSAN
  f->tsan_fiber_ = f->is_root() ? __tsan_get_current_fiber() : __tsan_create_fiber(0);
#else
  (void)f;
#endif
}

void context_destroyed(fiber_base* f) noexcept {
#ifdef FERN_TSAN
  if (f->tsan_fiber_ && !f->is_root()) __tsan_destroy_fiber(f->tsan_fiber_);
  f->tsan_fiber_ = nullptr;
#else
  (void)f;
#endif
}

void* current_eh_globals() noexcept {
  return abi::__cxa_get_globals();
}

}  // namespace fern::detail
