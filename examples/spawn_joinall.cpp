// The first fern program: two tasks that each print, sleep 3 s and print again, started
// concurrently. fern::sleep parks only the calling fiber, so the whole run takes about 3 s, not 6.
#include <fern/fern.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

static void task(const char* name) {
  std::printf("%s: start\n", name);
  fern::sleep(3s);
  std::printf("%s: done\n", name);
}

int main() {
  auto t0 = std::chrono::steady_clock::now();
  auto a = fern::spawn(task, "task A");
  auto b = fern::spawn(task, "task B");
  fern::joinall({a, b});
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - t0;
  std::printf("both finished in %.2f s\n", took.count());
  return 0;
}
