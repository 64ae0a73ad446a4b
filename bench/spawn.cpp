// Spawn + join throughput: N trivial fibers, each storing its index in a result slot, with
// fern::spawn + fern::joinall, beside raw boost::context::fiber with a free-list stack pool (the
// anchors' bc_spawn "pool" variant, the physical limit) measured in the same run. Prints
// `RESULT <name> <value> <unit> [note]` lines (run_all.sh EXTRA_SPAWN format). Never a test.
//
// usage: bench_spawn [N] [variant...]     N default 1,000,000
//   variants: raw_b1000 raw_b1M fern_b1000 fern_b1M raw_b1 (default: all, then the ratios)
// "b1000": spawn 1000, join them, repeat; "b1M": all N spawned before a single join; "raw_b1":
// one raw fiber at a time, so a single hot stack is reused: the floor that fern's binding of a
// stack at first run (and its return at the end) lets fern_b1000 approach, where the raw b1000
// creates 1000 fibers on 1000 distinct stacks first.
// Each variant runs in a child process of its own (a fresh heap, hub and stack pool, as a new
// program has) and does two rounds: the first is reported as the figure ("cold", like Go's
// first round in the anchors), the second as "_warm".
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <boost/context/fiber.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fern/fern.hpp"

namespace {

namespace ctx = boost::context;

std::int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// --- raw baseline: bc_spawn.cpp's pool variant ---

// Free list of 16 KiB stacks carved from MAP_NORESERVE chunks of 256; never returned.
struct stack_pool {
  std::size_t stack_size;
  std::vector<void*> free_list;
  void grow() {
    constexpr std::size_t chunk = 256;
    void* p = mmap(nullptr, stack_size * chunk, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      std::perror("mmap");
      std::exit(1);
    }
    for (std::size_t i = 0; i < chunk; ++i)
      free_list.push_back(static_cast<char*>(p) + i * stack_size);
  }
};

struct pool_alloc {
  stack_pool* pool;
  ctx::stack_context allocate() {
    if (pool->free_list.empty()) pool->grow();
    void* base = pool->free_list.back();
    pool->free_list.pop_back();
    ctx::stack_context sc;
    sc.size = pool->stack_size;
    sc.sp = static_cast<char*>(base) + pool->stack_size;
    return sc;
  }
  void deallocate(ctx::stack_context& sc) noexcept {
    pool->free_list.push_back(static_cast<char*>(sc.sp) - sc.size);
  }
};

long g_remaining;

// ns for n tasks in batches of `batch`.
double raw_round(stack_pool& pool, long* res, long n, long batch) {
  std::vector<ctx::fiber> runq;  // FIFO of one batch
  runq.reserve(static_cast<std::size_t>(batch));
  std::int64_t t0 = now_ns();
  for (long done = 0; done < n; done += batch) {
    long b = std::min(batch, n - done);
    g_remaining += b;
    for (long i = 0; i < b; ++i) {
      long idx = done + i;
      runq.emplace_back(std::allocator_arg, pool_alloc{&pool}, [res, idx](ctx::fiber&& sched) {
        res[idx] = idx;
        --g_remaining;
        return std::move(sched);
      });
    }
    for (auto& f : runq) f = std::move(f).resume();
    runq.clear();
    if (g_remaining != 0) {
      std::fprintf(stderr, "raw join failed\n");
      std::exit(1);
    }
  }
  return static_cast<double>(now_ns() - t0);
}

// --- fern ---

double fern_round(long* res, long n, long batch) {
  std::vector<fern::fiber<void>> fibers;
  fibers.reserve(static_cast<std::size_t>(batch));
  std::int64_t t0 = now_ns();
  for (long done = 0; done < n; done += batch) {
    long b = std::min(batch, n - done);
    for (long i = 0; i < b; ++i) {
      long idx = done + i;
      fibers.push_back(fern::spawn([res, idx] { res[idx] = idx; }));
    }
    if (!fern::joinall(fibers)) {
      std::fprintf(stderr, "fern joinall failed\n");
      std::exit(1);
    }
    fibers.clear();
  }
  return static_cast<double>(now_ns() - t0);
}

// --- driver ---

struct variant {
  const char* name;  // RESULT name prefix
  bool fern;
  long batch;  // 0: all N at once
};
constexpr variant k_variants[] = {
    {"raw_b1000", false, 1000}, {"raw_b1M", false, 0}, {"fern_b1000", true, 1000},
    {"fern_b1M", true, 0},      {"raw_b1", false, 1},
};

void check(std::vector<long>& res, const char* what) {
  for (std::size_t i = 0; i < res.size(); ++i) {
    if (res[i] != static_cast<long>(i)) {
      std::fprintf(stderr, "%s: bad result at %zu\n", what, i);
      std::exit(1);
    }
    res[i] = -1;
  }
}

// Runs in the child. Writes ns/task of the cold round to *out.
void run_variant(const variant& v, long n, double* out) {
  long batch = v.batch ? v.batch : n;
  std::vector<long> res(static_cast<std::size_t>(n), -1);
  stack_pool pool{16 * 1024, {}};
  double ns[2];
  for (int round = 0; round < 2; ++round) {
    ns[round] = v.fern ? fern_round(res.data(), n, batch) : raw_round(pool, res.data(), n, batch);
    check(res, v.name);
  }
  std::string label = v.fern ? "fern::spawn + fern::joinall" : "raw fiber, free-list pool 16KiB";
  std::printf("RESULT spawn_%s %.0f tasks/s  (%.1f ns/task, N=%ld, batch=%ld, %s, first round)\n",
              v.name, n / (ns[0] / 1e9), ns[0] / n, n, batch, label.c_str());
  std::printf("RESULT spawn_%s_warm %.0f tasks/s  (%.1f ns/task, second round, same process)\n",
              v.name, n / (ns[1] / 1e9), ns[1] / n);
  std::fflush(stdout);
  *out = ns[0] / n;
}

}  // namespace

int main(int argc, char** argv) {
  long n = argc > 1 ? std::atol(argv[1]) : 1000000;
  if (n < 1000) {
    std::fprintf(stderr,
                 "usage: %s [N >= 1000] [raw_b1000|raw_b1M|fern_b1000|fern_b1M|raw_b1 ...]\n",
                 argv[0]);
    return 2;
  }
  std::vector<const variant*> chosen;
  for (int i = 2; i < argc; ++i) {
    const variant* found = nullptr;
    for (const variant& v : k_variants)
      if (std::strcmp(v.name, argv[i]) == 0) found = &v;
    if (!found) {
      std::fprintf(stderr, "unknown variant %s\n", argv[i]);
      return 2;
    }
    chosen.push_back(found);
  }
  if (chosen.empty())
    for (const variant& v : k_variants) chosen.push_back(&v);

  // One result slot per variant, shared with the children.
  void* shm = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shm == MAP_FAILED) return 1;
  auto* slot = static_cast<double*>(shm);
  std::fflush(stdout);
  int failures = 0;
  for (const variant* v : chosen) {
    std::size_t k = static_cast<std::size_t>(v - k_variants);
    slot[k] = 0;
    pid_t pid = fork();
    if (pid == 0) {
      run_variant(*v, n, &slot[k]);
      _exit(0);  // skip freeing a million pooled stacks and control blocks
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      std::fprintf(stderr, "variant %s failed (status %d)\n", v->name, st);
      ++failures;
    }
  }
  // Ratios of this run: fern's ns/task over the raw pool's (slots follow k_variants).
  const struct {
    const char* name;
    std::size_t fern, raw;
  } ratios[] = {{"ratio_spawn_b1000_fern_vs_raw", 2, 0},
                {"ratio_spawn_b1M_fern_vs_raw", 3, 1},
                {"ratio_spawn_fern_b1000_vs_raw_b1", 2, 4}};
  for (const auto& r : ratios)
    if (slot[r.fern] > 0 && slot[r.raw] > 0)
      std::printf(
          "RESULT %s %.2f x  (fern ns/task / raw ns/task; <1 = "
          "fern faster)\n",
          r.name, slot[r.fern] / slot[r.raw]);
  return failures ? 1 : 0;
}
