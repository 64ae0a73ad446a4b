// fern::pool::map: run a function over inputs with at most N calls in flight, results in input
// order — gevent's Pool(3).map(fn, items). Each "job" sleeps a little to stand for I/O.
#include <fern/fern.hpp>

#include <chrono>
#include <cstdio>
#include <vector>

using namespace std::chrono_literals;

int main() {
  fern::pool workers(3);
  int running = 0, peak = 0;
  std::vector<int> inputs{5, 1, 4, 2, 3, 9, 7, 8, 6};
  auto squares = workers.map(
      [&](int x) {
        peak = std::max(peak, ++running);
        fern::sleep(std::chrono::milliseconds(10 * x));  // the slow part: overlaps with others
        --running;
        return x * x;
      },
      inputs);
  for (std::size_t i = 0; i < inputs.size(); ++i) std::printf("%d^2 = %d\n", inputs[i], squares[i]);
  std::printf("at most %d ran at once (pool capacity %zu)\n", peak, workers.capacity());
}
