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
// dlsym(RTLD_NEXT) in the constructor and lazily if a hook runs before it (another library's
// constructor calling read, say). REAL(read)(fd, buf, n) calls libc's read.
void* resolve(const char* name) noexcept;  // aborts with a fern: message if missing

template <class Fn>
struct real_fn {
  const char* name;
  Fn* fn = nullptr;
  Fn* get() noexcept {
    Fn* f = __atomic_load_n(&fn, __ATOMIC_RELAXED);
    if (__builtin_expect(f == nullptr, 0)) {
      f = reinterpret_cast<Fn*>(resolve(name));
      __atomic_store_n(&fn, f, __ATOMIC_RELAXED);
    }
    return f;
  }
};
// glibc declares its functions with attributes (nonnull, warn_unused_result) that a template
// argument cannot carry; dropping them here is what we want.
#pragma GCC diagnostic ignored "-Wignored-attributes"
// At file scope: FERN_REAL_DEF(read); defines fern::shim::real_read.
#define FERN_REAL_DEF(name)                     \
  namespace fern::shim {                        \
  real_fn<decltype(::name)> real_##name{#name}; \
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
