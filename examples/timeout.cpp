// Deadlines with fern::timeout (gevent.Timeout / Go's context.WithTimeout): every blocking point
// inside the scope throws fern::timeout_error once it expires. Scopes nest; the earliest wins.
#include <fern/fern.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

int main() {
  fern::event never;  // nobody sets it
  auto setter = fern::spawn_later(300ms, [&] { never.set(); });

  try {
    fern::timeout deadline(100ms);
    never.wait();  // a blocking point: gives up when the scope expires
  } catch (const fern::timeout_error&) {
    std::printf("gave up waiting after 100 ms\n");
  }

  // A call's own timeout returns false instead of throwing.
  bool ok = never.wait(50ms);
  std::printf("wait(50ms) returned %s\n", ok ? "true" : "false");

  // Nested scopes: the inner, shorter one fires first, and the error says which scope it was.
  fern::timeout outer(1s);
  try {
    fern::timeout inner(20ms);
    fern::sleep(500ms);
  } catch (const fern::timeout_error& e) {
    std::printf("the %s scope fired\n", e.is(outer) ? "outer" : "inner");
  }

  // with_timeout: the same as a scope around a function call.
  int v = fern::with_timeout(1s, [&] {
    never.wait();  // set at 300 ms, well inside the 1 s
    return 42;
  });
  std::printf("with_timeout returned %d\n", v);
  setter.join();
}
