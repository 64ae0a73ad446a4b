// A bounded fern::queue between one producer and three consumers. put() waits while the queue
// is full (back-pressure), get() while it is empty; close() ends the consumers once drained.
#include <fern/fern.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

using namespace std::chrono_literals;

int main() {
  fern::queue<std::string> jobs(2);  // at most 2 waiting items
  auto producer = fern::spawn([&] {
    for (int i = 1; i <= 9; ++i) {
      jobs.put("job " + std::to_string(i));
      std::printf("produced job %d (queue holds %zu)\n", i, jobs.size());
    }
    jobs.close();
  });
  std::vector<fern::fiber<int>> consumers;
  for (int c = 1; c <= 3; ++c)
    consumers.push_back(fern::spawn([&jobs, c] {
      int handled = 0;
      try {
        for (;;) {
          std::string job = jobs.get();
          fern::sleep(5ms);  // pretend to work
          std::printf("  consumer %d finished %s\n", c, job.c_str());
          ++handled;
        }
      } catch (const fern::closed_error&) {
      }
      return handled;
    }));
  fern::joinall(consumers);
  producer.join();
  int total = 0;
  for (auto& c : consumers) total += c.get();
  std::printf("%d jobs handled\n", total);
}
