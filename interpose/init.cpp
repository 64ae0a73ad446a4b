// Shim start-up: resolving the real libc symbols, and giving the program's main thread a hub
// before main() runs (DESIGN.md §5; other threads cooperate once they have a hub of their own).
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

#include "fern/hub.hpp"
#include "shim.hpp"

namespace fern::shim {

void* resolve(const char* name) noexcept {
  void* p = ::dlsym(RTLD_NEXT, name);
  if (!p) {
    std::fprintf(stderr, "fern: the shim cannot find libc's %s: %s\n", name, ::dlerror());
    std::abort();
  }
  return p;
}

namespace {
// Runs in the main thread, before main() (and before constructors of libraries loaded after
// the shim).
__attribute__((constructor)) void shim_init() {
  fern::hub::current();
}
}  // namespace

}  // namespace fern::shim
