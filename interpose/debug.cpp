// FERN_DEBUG reporting (debug.hpp): read once from the environment; each note is written once,
// with a raw write(2), so it is safe anywhere a hook runs.
#include "debug.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fern::shim {
namespace debug_detail {

std::atomic<int> enabled{-1};

namespace {

std::atomic<bool> said[static_cast<int>(debug_note::count_)];

void say(const char* msg) noexcept {
  ::syscall(SYS_write, 2, msg, std::strlen(msg));
}

// Announces the shim once FERN_DEBUG is known to be set, from the constructor below.
__attribute__((constructor)) void announce() {
  if (read_env()) {
    char msg[128];
    std::snprintf(msg, sizeof msg, "fern: libfern_interpose.so active in pid %d\n",
                  static_cast<int>(::getpid()));
    say(msg);
  }
}

}  // namespace

int read_env() noexcept {
  const char* v = std::getenv("FERN_DEBUG");
  int e = v && *v && std::strcmp(v, "0") != 0 ? 1 : 0;
  enabled.store(e, std::memory_order_relaxed);
  return e;
}

void emit(debug_note n, int fd) noexcept {
  if (said[static_cast<int>(n)].exchange(true, std::memory_order_relaxed)) return;
  char msg[320];
  switch (n) {
    case debug_note::connect_blocks:
      std::snprintf(msg, sizeof msg,
                    "fern: connect() on fd %d blocks the thread: the socket was not created "
                    "through the shim (inherited, or made off a hub), and its flags are not the "
                    "shim's to change\n",
                    fd);
      break;
    case debug_note::epoll_refused:
      std::snprintf(msg, sizeof msg,
                    "fern: epoll refuses fd %d although a call on it would block: its calls "
                    "block the thread\n",
                    fd);
      break;
    case debug_note::stale_view:
      std::snprintf(msg, sizeof msg,
                    "fern: fd %d changed behind the shim's back (closed by a raw system call "
                    "and its number reused, or made blocking by an exec'd child); its view was "
                    "corrected\n",
                    fd);
      break;
    case debug_note::count_:
      return;
  }
  say(msg);
}

}  // namespace debug_detail
}  // namespace fern::shim
