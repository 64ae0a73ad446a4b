// FERN_DEBUG=1 (fern-run -v): the shim reports on stderr, once per kind, the places where it
// cannot cooperate (the call blocks the whole thread, as it would without fern) or had to correct
// its own state. Off by default; the check is one relaxed load. Never blocks beyond a write(2)
// to stderr; async-signal-safe (no stdio, no allocation).
#pragma once

#include <atomic>
#include <cstdint>

namespace fern::shim {

enum class debug_note : std::uint8_t {
  connect_blocks,  // connect() on a socket the shim did not create: no way to make it cooperate
  epoll_refused,   // a file said EAGAIN but epoll refuses it: the thread waits in ppoll
  stale_view,      // an fd changed behind the shim's back (raw close and reuse, exec'd child)
  count_
};

namespace debug_detail {
extern std::atomic<int> enabled;  // -1: not read yet; 0/1: FERN_DEBUG
int read_env() noexcept;
void emit(debug_note n, int fd) noexcept;
}  // namespace debug_detail

inline bool debug_enabled() noexcept {
  int e = debug_detail::enabled.load(std::memory_order_relaxed);
  return e < 0 ? debug_detail::read_env() : e;
}

// Reports `n` about fd once per process (per kind) when FERN_DEBUG is set.
inline void debug_once(debug_note n, int fd) noexcept {
  if (debug_enabled()) debug_detail::emit(n, fd);
}

}  // namespace fern::shim
