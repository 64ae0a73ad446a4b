// Built against an installed fern (CMake package and pkg-config): spawns fibers that hand
// values through a queue and checks the sum, so a broken install fails loudly.
#include <fern/fern.hpp>

#include <cstdio>

int main() {
  fern::queue<int> q(4);
  auto producer = fern::spawn([&] {
    for (int i = 1; i <= 100; ++i) q.put(i);
    q.close();
  });
  auto consumer = fern::spawn([&] {
    int sum = 0;
    try {
      for (;;) sum += q.get();
    } catch (const fern::closed_error&) {
    }
    return sum;
  });
  fern::joinall({producer, consumer});
  int sum = consumer.get();
  std::printf("consumer sum %d\n", sum);
  return sum == 5050 ? 0 : 1;
}
