// Memory per parked fiber: N fibers parked at once, half in fern::sleep (an hour), half waiting on
// one fern::event, every stack guard-protected (fern's default), beside raw boost::context fibers
// parked on stacks carved from one unguarded MAP_NORESERVE region (the anchors' bc_mem "region"
// mode, the physical limit) in the same run. Reports VmRSS delta / N, VmPTE / N, the VMAs and
// guard pages the fibers added, then sets the event, kills the sleepers and joins all N to prove
// every one completes. Prints `RESULT` lines (run_all.sh EXTRA_MEM format). Never a test.
//
// usage: bench_mem [N] [stack_kib] [fern|raw ...]
//   N default 1,000,000; stack_kib 0 (default) = fern's default stack (256 KiB), also used for
//   the raw stacks; each variant runs in a child process of its own (default: raw, then fern).
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <boost/context/fiber.hpp>

#include <chrono>
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

long status_kib(const char* key) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long v = -1;
  std::size_t kl = std::strlen(key);
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, key, kl) == 0 && line[kl] == ':') {
      v = std::atol(line + kl + 1);
      break;
    }
  std::fclose(f);
  return v;
}

long count_vmas() {
  FILE* f = std::fopen("/proc/self/maps", "r");
  if (!f) return -1;
  long n = 0;
  for (int c; (c = std::fgetc(f)) != EOF;)
    if (c == '\n') ++n;
  std::fclose(f);
  return n;
}

// Guard pages (MADV_GUARD_INSTALL markers) in the whole address space, counted with the
// PAGEMAP_SCAN ioctl (Linux 6.7) and its PAGE_IS_GUARD category (Linux 6.14); -1 if the kernel
// cannot tell. Declared here because Debian 12's headers predate both.
struct page_region {
  std::uint64_t start, end, categories;
};
struct pm_scan_arg {
  std::uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted,
      category_mask, category_anyof_mask, return_mask;
};
constexpr unsigned long k_pagemap_scan = _IOWR('f', 16, pm_scan_arg);
constexpr std::uint64_t k_page_is_guard = 1 << 8;

long count_guard_pages() {
  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  static page_region vec[4096];
  long pages = 0;
  std::uint64_t start = 0;
  const std::uint64_t end = 0x7ffffffff000ull;
  for (int guard = 0; guard < 100000 && start < end; ++guard) {
    pm_scan_arg a{};
    a.size = sizeof a;
    a.start = start;
    a.end = end;
    a.vec = reinterpret_cast<std::uint64_t>(vec);
    a.vec_len = sizeof vec / sizeof vec[0];
    a.category_mask = k_page_is_guard;
    a.return_mask = k_page_is_guard;
    long r = ioctl(fd, k_pagemap_scan, &a);
    if (r < 0) {
      pages = -1;
      break;
    }
    for (long i = 0; i < r; ++i) pages += static_cast<long>((vec[i].end - vec[i].start) / 4096);
    if (a.walk_end <= start) break;
    start = a.walk_end;
  }
  close(fd);
  return pages;
}

struct snapshot {
  long rss_kib, pte_kib, vmas, guard_pages;
  static snapshot take() {
    return {status_kib("VmRSS"), status_kib("VmPTE"), count_vmas(), count_guard_pages()};
  }
};

// --- raw baseline: bc_mem.cpp's region mode ---

struct one_shot_alloc {
  void* base;
  std::size_t size;
  ctx::stack_context allocate() {
    ctx::stack_context sc;
    sc.size = size;
    sc.sp = static_cast<char*>(base) + size;
    return sc;
  }
  void deallocate(ctx::stack_context&) noexcept {}
};

long g_parked;

double run_raw(long n, std::size_t stack) {
  std::vector<ctx::fiber> parked;
  parked.reserve(static_cast<std::size_t>(n));
  std::memset(static_cast<void*>(parked.data()), 0,
              static_cast<std::size_t>(n) * sizeof(ctx::fiber));
  snapshot s0 = snapshot::take();
  void* p = mmap(nullptr, static_cast<std::size_t>(n) * stack, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    std::perror("mmap region");
    std::exit(1);
  }
  char* region = static_cast<char*>(p);
  std::int64_t t0 = now_ns();
  for (long i = 0; i < n; ++i) {
    ctx::fiber f{std::allocator_arg, one_shot_alloc{region + i * stack, stack}, [](ctx::fiber&& c) {
                   [[maybe_unused]] volatile char frame[256];  // a small, touched frame
                   for (int k = 0; k < 256; k += 64) frame[k] = static_cast<char>(k);
                   ++g_parked;
                   c = std::move(c).resume();  // parked until the process exits
                   return std::move(c);
                 }};
    f = std::move(f).resume();
    parked.push_back(std::move(f));
  }
  std::int64_t t1 = now_ns();
  snapshot s1 = snapshot::take();
  double per = (s1.rss_kib - s0.rss_kib) * 1024.0 / n;
  std::printf(
      "RESULT mem_raw_%ldk %.0f bytes/fiber  (raw fiber, %zu KiB stack from one region, no "
      "guard; parked=%ld VmPTE=%.0f B/fiber vma_delta=%ld create+park=%.0f ns/fiber)\n",
      n / 1000, per, stack / 1024, g_parked, (s1.pte_kib - s0.pte_kib) * 1024.0 / n,
      s1.vmas - s0.vmas, static_cast<double>(t1 - t0) / n);
  std::printf("RESULT mem_raw_%ldk_pte %.0f bytes/fiber\n", n / 1000,
              (s1.pte_kib - s0.pte_kib) * 1024.0 / n);
  return per;
}

// --- fern ---

double run_fern(long n, std::size_t stack_kib) {
  fern::hub& hub = fern::hub::current();
  if (stack_kib) hub.set_default_stack_size(stack_kib * 1024);
  fern::yield();  // the hub and its own fiber exist before the baseline snapshot
  const std::size_t stack = hub.default_stack_size();
  long half = n / 2;

  // Counted in the delta: everything the program keeps per fiber, handles included.
  snapshot s0 = snapshot::take();
  std::vector<fern::fiber<void>> sleepers, waiters;
  sleepers.reserve(static_cast<std::size_t>(half));
  waiters.reserve(static_cast<std::size_t>(n - half));
  fern::event ev;
  long parked = 0;
  std::int64_t t0 = now_ns();
  for (long i = 0; i < n; ++i) {
    if (i % 2 == 0 && static_cast<long>(sleepers.size()) < half) {
      sleepers.push_back(fern::spawn([&parked] {
        ++parked;
        fern::sleep(std::chrono::hours(1));
      }));
    } else {
      waiters.push_back(fern::spawn([&parked, &ev] {
        ++parked;
        ev.wait();
      }));
    }
  }
  fern::yield();  // every ready fiber runs once: each parks
  std::int64_t t1 = now_ns();
  snapshot s1 = snapshot::take();

  // Wake everyone: kill the sleepers (each unwinds with fern::fiber_exit), set the event.
  std::int64_t t2 = now_ns();
  bool killed = fern::killall(sleepers);
  ev.set();
  bool joined = fern::joinall(waiters);
  std::int64_t t3 = now_ns();
  long done = 0, bad = 0;
  for (const auto& f : sleepers) {
    done += f.ready();
    bad += f.successful();  // a killed fiber is not successful
  }
  for (const auto& f : waiters) {
    done += f.ready();
    bad += !f.successful();
  }
  if (!killed || !joined || done != n || bad != 0 || parked != n)
    std::fprintf(stderr, "fern mem: parked=%ld done=%ld bad=%ld killed=%d joined=%d\n", parked,
                 done, bad, killed, joined);

  double per = (s1.rss_kib - s0.rss_kib) * 1024.0 / n;
  double pte = (s1.pte_kib - s0.pte_kib) * 1024.0 / n;
  long guards = s1.guard_pages >= 0 && s0.guard_pages >= 0 ? s1.guard_pages - s0.guard_pages : -1;
  std::printf(
      "RESULT mem_fern_%ldk %.0f bytes/fiber  (%zu KiB stacks, guarded; %ld sleep + %ld "
      "event.wait; parked=%ld VmPTE=%.0f B/fiber vma_delta=%ld guard_pages_added=%ld "
      "spawn+park=%.0f ns/fiber)\n",
      n / 1000, per, stack / 1024, half, n - half, parked, pte, s1.vmas - s0.vmas, guards,
      static_cast<double>(t1 - t0) / n);
  std::printf("RESULT mem_fern_%ldk_pte %.0f bytes/fiber\n", n / 1000, pte);
  std::printf("RESULT mem_fern_%ldk_vma_delta %ld vmas  (VMAs added by %ld guarded stacks)\n",
              n / 1000, s1.vmas - s0.vmas, n);
  std::printf(
      "RESULT mem_fern_%ldk_guard_pages_per_fiber %.2f pages  (%ld guard pages added; "
      "-1 = the kernel cannot count them)\n",
      n / 1000, guards >= 0 ? static_cast<double>(guards) / n : -1.0, guards);
  std::printf(
      "RESULT mem_fern_%ldk_completed %ld fibers  (after kill of the sleepers + event.set; "
      "wake+join %.0f ms)\n",
      n / 1000, done - bad, static_cast<double>(t3 - t2) / 1e6);
  std::printf("RESULT mem_fern_%ldk_spawn_park %.0f ns/fiber\n", n / 1000,
              static_cast<double>(t1 - t0) / n);
  return done == n && bad == 0 ? per : -1;
}

}  // namespace

int main(int argc, char** argv) {
  long n = argc > 1 ? std::atol(argv[1]) : 1000000;
  long kib = argc > 2 ? std::atol(argv[2]) : 0;
  if (n < 1000 || kib < 0) {
    std::fprintf(stderr, "usage: %s [N >= 1000] [stack_kib, 0 = fern's default] [fern|raw ...]\n",
                 argv[0]);
    return 2;
  }
  bool want_raw = argc <= 3, want_fern = argc <= 3;
  for (int i = 3; i < argc; ++i) {
    if (std::strcmp(argv[i], "raw") == 0)
      want_raw = true;
    else if (std::strcmp(argv[i], "fern") == 0)
      want_fern = true;
    else
      return 2;
  }
  // The raw stacks get the size fern's fibers get.
  std::size_t stack = kib ? static_cast<std::size_t>(kib) * 1024 : 256 * 1024;
  if (const char* env = std::getenv("FERN_STACK_SIZE"); env && !kib) {
    std::fprintf(stderr, "note: FERN_STACK_SIZE is set; raw stacks stay at 256 KiB\n");
  }

  void* shm = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shm == MAP_FAILED) return 1;
  auto* slot = static_cast<double*>(shm);
  slot[0] = slot[1] = 0;
  int failures = 0;
  std::fflush(stdout);
  for (int v = 0; v < 2; ++v) {
    if ((v == 0 && !want_raw) || (v == 1 && !want_fern)) continue;
    pid_t pid = fork();
    if (pid == 0) {
      double r = v == 0 ? run_raw(n, stack) : run_fern(n, static_cast<std::size_t>(kib));
      slot[v] = r;
      std::fflush(stdout);
      _exit(r < 0 ? 1 : 0);  // skip unwinding a million parked raw fibers
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      std::fprintf(stderr, "variant %s failed (status %d)\n", v == 0 ? "raw" : "fern", st);
      ++failures;
    }
  }
  if (slot[0] > 0 && slot[1] > 0)
    std::printf("RESULT ratio_mem_%ldk_fern_vs_raw %.3f x  (fern bytes/fiber / raw bytes/fiber)\n",
                n / 1000, slot[1] / slot[0]);
  return failures ? 1 : 0;
}
