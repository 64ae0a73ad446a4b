// read/write family. The pattern every hook follows: real call when not cooperative (§5 step 1)
// or when the fd cannot wait in epoll (step 2), one real call when the program asked for
// O_NONBLOCK (step 3), else the shared retry loop (step 4).
#include <unistd.h>

#include "shim.hpp"

FERN_REAL_DEF(read)

extern "C" ssize_t read(int fd, void* buf, size_t n) {
  if (!fern::shim::cooperative_hub()) return REAL(read)(fd, buf, n);
  // Placeholder until the per-fd view lands: the fd's own blocking mode decides.
  return REAL(read)(fd, buf, n);
}
