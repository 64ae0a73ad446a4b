// fern::run_in_thread: hand a CPU-bound job to a worker thread while the hub keeps running the
// other fibers (gevent's threadpool). Here a ticker fiber keeps ticking while two primes counts
// run on worker threads.
#include <fern/fern.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

static long count_primes(long limit) {
  long n = 0;
  for (long i = 2; i < limit; ++i) {
    bool prime = true;
    for (long d = 2; d * d <= i; ++d)
      if (i % d == 0) {
        prime = false;
        break;
      }
    n += prime;
  }
  return n;
}

int main() {
  bool done = false;
  int ticks = 0;
  auto ticker = fern::spawn([&] {
    while (!done) {
      fern::sleep(10ms);
      ++ticks;
    }
  });
  auto a = fern::spawn([] { return fern::run_in_thread([] { return count_primes(2000000); }); });
  auto b = fern::spawn([] { return fern::run_in_thread([] { return count_primes(1000000); }); });
  long pa = a.get(), pb = b.get();
  done = true;
  ticker.join();
  std::printf("primes below 2M: %ld, below 1M: %ld\n", pa, pb);
  std::printf("the ticker fiber ticked %d times meanwhile: the hub never blocked\n", ticks);
  // Exceptions thrown on the worker come back to the waiting fiber.
  try {
    fern::run_in_thread([]() -> int { throw std::runtime_error("bad input"); });
  } catch (const std::runtime_error& e) {
    std::printf("worker failed: %s\n", e.what());
  }
}
