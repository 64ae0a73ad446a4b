// Shared machinery of libfern_interpose.so, the LD_PRELOAD shim: the real libc entry points and
// step 1 of the per-call decision of DESIGN.md §5. The waits and retry loops every cooperative
// call uses are in coop.hpp; the per-fd view (steps 2 and 3) in fd_view.hpp.
// Hooks live one family per file (io.cpp, socket.cpp, fd.cpp, poll.cpp, sleep.cpp, ...); each
// keeps its exact POSIX contract: -1 and errno like glibc, errno preserved on success, never an
// exception through C frames.
#pragma once

#include <errno.h>
#include <sys/types.h>

#include <cstdint>

#include "fern/io.hpp"
#include "hub_impl.hpp"

namespace fern::shim {

// --- real libc ------------------------------------------------------------------------------
// Each hooked name has a pointer to the next definition (libc's), resolved with
// dlsym(RTLD_NEXT) on first use. REAL(read)(fd, buf, n) calls libc's read.
void* resolve(const char* name) noexcept;  // aborts with a fern: message if missing

// The first call of a fixed-arity real function goes through this stub, which resolves the
// pointer and makes the call. The pointer is then never null, so REAL(name) is one load and a
// hook's fast path can end in a tail call with no frame. Variadic functions (open, fcntl,
// ioctl...) cannot forward their arguments: their pointer starts null and is checked on each use.
template <class Fn, auto Self>
struct first_call {
  static constexpr bool fixed_arity = false;
  static constexpr Fn* entry = nullptr;
};
template <class R, class... A, auto Self>
struct first_call<R(A...), Self> {
  static constexpr bool fixed_arity = true;
  static R call(A... a) { return Self->resolve_now()(a...); }
  static constexpr R (*entry)(A...) = &call;
};
template <class R, class... A, auto Self>
struct first_call<R(A...) noexcept, Self> {
  static constexpr bool fixed_arity = true;
  static R call(A... a) noexcept { return Self->resolve_now()(a...); }
  static constexpr R (*entry)(A...) noexcept = &call;
};

template <class Fn>
struct real_fn {
  const char* name;
  Fn* fn;  // libc's function, its first_call stub until resolved, or null (variadic, unresolved)
  Fn* get() noexcept {
    Fn* f = __atomic_load_n(&fn, __ATOMIC_RELAXED);
    if constexpr (!first_call<Fn, nullptr>::fixed_arity)
      if (__builtin_expect(f == nullptr, 0)) f = resolve_now();
    return f;
  }
  Fn* resolve_now() noexcept {
    Fn* f = reinterpret_cast<Fn*>(resolve(name));
    __atomic_store_n(&fn, f, __ATOMIC_RELAXED);
    return f;
  }
};
// glibc declares its functions with attributes (nonnull, warn_unused_result) that a template
// argument cannot carry; dropping them here is what we want.
#pragma GCC diagnostic ignored "-Wignored-attributes"
// At file scope: FERN_REAL_DEF(read); defines fern::shim::real_read.
#define FERN_REAL_DEF(name)                                                                        \
  namespace fern::shim {                                                                           \
  extern real_fn<decltype(::name)> real_##name;                                                    \
  real_fn<decltype(::name)> real_##name{#name, first_call<decltype(::name), &real_##name>::entry}; \
  }
#define REAL(name) (::fern::shim::real_##name.get())

// --- the decision ---------------------------------------------------------------------------
// Step 1 of DESIGN.md §5: cooperate only on a thread that has a hub, from a fiber (the root
// included), never from the hub's own context (timers, poll, posted callbacks). Everything
// else takes the real call. One TLS load and two compares: no measurable cost.
inline detail::hub_impl* cooperative_hub() noexcept {
  detail::hub_impl* h = detail::hub_impl::peek();
  return h && !h->in_hub_context() ? h : nullptr;
}

}  // namespace fern::shim
