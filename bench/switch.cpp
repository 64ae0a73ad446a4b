// Switch cost: fern::yield between fibers through the hub, beside a raw Boost.Context
// jump_fcontext ping-pong measured in the same process (the physical limit, as in the anchors'
// bc_switch). Prints `RESULT <name> <value> <unit> [note]` lines (run_all.sh EXTRA_SWITCH format),
// including the ratio fern/raw of this very run. Never part of the tests.
//
// usage: bench_switch [round_trips]            (default 5,000,000)
// Every figure is the best of 5 interleaved repetitions of round_trips/5 each (see main).
//
// A yield is one context switch: the yielding fiber goes to the back of the ready queue and jumps
// straight to the next ready fiber; every 256 runs the hub fiber takes a turn (timers, I/O), and
// that detour is included. Two fibers yielding in turn make one round trip per two yields.
// fern enters jump_fcontext with push+jmp so the CPU's return-stack buffer stays balanced: when
// both fibers run the same function, a resumed fiber returns along the very chain of return
// addresses the other one came down, which the buffer predicts ("same_fn": N workers running the
// same code, the common case). When they run different functions the last return, into the
// caller of fern::yield, is mispredicted on every switch ("diff_fn"). The raw_yieldfn_* rows
// measure the same effect without fern (two raw fibers calling a yield function), so the cost
// of a mispredicted return on this CPU is known, and fern's own overhead is the remainder.
#include <time.h>
#include <boost/context/detail/fcontext.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "fern/fern.hpp"

namespace {

constexpr int k_reps = 5;  // interleaved repetitions of every measurement; the best one counts

std::int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// --- raw fcontext: main <-> one fiber, a plain `call jump_fcontext` on both sides ---

namespace bcd = boost::context::detail;

// Sinks that give the "different function" workers different code (so no identical-code folding
// can merge them back into one function).
volatile long g_sink_a;
volatile long g_sink_b;

void pong(bcd::transfer_t t) {
  for (;;) t = bcd::jump_fcontext(t.fctx, nullptr);
}

// ns per switch.
double raw_fcontext(long iters) {
  alignas(64) static char stack[64 * 1024];
  bcd::fcontext_t fc = bcd::make_fcontext(stack + sizeof stack, sizeof stack, pong);
  bcd::transfer_t t = bcd::jump_fcontext(fc, nullptr);
  for (long i = 0; i < 10000; ++i) t = bcd::jump_fcontext(t.fctx, nullptr);
  std::int64_t t0 = now_ns();
  for (long i = 0; i < iters; ++i) t = bcd::jump_fcontext(t.fctx, nullptr);
  return static_cast<double>(now_ns() - t0) / (2.0 * static_cast<double>(iters));
}

// --- raw fcontext, two fibers each calling a yield function (no scheduler) ---
// Isolates what the hardware charges for the return after a switch, apart from fern's own work:
// each fiber loops over a call to a non-inlined raw_yield(), which jumps to the other fiber,
// entered either with push+jmp (fern's way) or with a plain call (Boost's way).

struct ping_pong {
  bcd::fcontext_t main = nullptr;   // where the first fiber to finish returns
  bcd::fcontext_t other = nullptr;  // the suspended peer
  long n = 0;
};
ping_pong g_pp;

// jump_fcontext entered with push+jmp, as lib/src/context.cpp does (see its comment).
inline bcd::transfer_t jump_pushjmp(bcd::fcontext_t to, void* data) noexcept {
#if defined(__x86_64__)
  register void* rdi asm("rdi") = to;
  register void* rsi asm("rsi") = data;
  void* fctx;
  void* out;
  asm volatile(
      "leaq -128(%%rsp), %%rsp\n\t"
      "leaq 1f(%%rip), %%rax\n\t"
      "pushq %%rax\n\t"
      "jmp jump_fcontext@PLT\n\t"
      "1:\n\t"
      "leaq 128(%%rsp), %%rsp\n\t"
      : "=a"(fctx), "=d"(out), "+D"(rdi), "+S"(rsi)
      :
      : "rcx", "r8", "r9", "r10", "r11", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
        "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
        "xmm15", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)");
  return {fctx, out};
#else
  return bcd::jump_fcontext(to, data);  // push+jmp is written for x86-64 only
#endif
}

template <bool PushJmp>
__attribute__((noinline)) void raw_yield() {
  bcd::transfer_t t =
      PushJmp ? jump_pushjmp(g_pp.other, nullptr) : bcd::jump_fcontext(g_pp.other, nullptr);
  g_pp.other = t.fctx;
}

template <bool PushJmp, int Tag>
__attribute__((noinline)) void raw_worker(long n) {
  for (long i = 0; i < n; ++i) {
    raw_yield<PushJmp>();
    if (Tag) g_sink_a = i;  // different code for the "different function" worker
  }
}

template <bool PushJmp, int Tag>
void raw_entry(bcd::transfer_t t) {
  if (!g_pp.main)
    g_pp.main = t.fctx;  // the first fiber, started by main
  else
    g_pp.other = t.fctx;  // the second, started by the first
  raw_worker<PushJmp, Tag>(g_pp.n);
  bcd::jump_fcontext(g_pp.main, nullptr);  // the first to finish ends the run; never resumed
}

// ns per switch.
template <bool PushJmp, bool SameFn>
double raw_two_fibers(long yields) {
  alignas(64) static char stack_a[64 * 1024];
  alignas(64) static char stack_b[64 * 1024];
  auto run = [](long n) {
    g_pp = {nullptr, nullptr, n};
    bcd::fcontext_t a =
        bcd::make_fcontext(stack_a + sizeof stack_a, sizeof stack_a, raw_entry<PushJmp, 0>);
    g_pp.other = bcd::make_fcontext(stack_b + sizeof stack_b, sizeof stack_b, raw_entry < PushJmp,
                                    SameFn ? 0 : 1 >);
    std::int64_t t0 = now_ns();
    bcd::jump_fcontext(a, nullptr);
    return static_cast<double>(now_ns() - t0) / (2.0 * static_cast<double>(n));
  };
  run(yields / 10 + 1000);
  return run(yields);
}

// --- fern ---

// Spawns the fibers made by `spawn_all`, joins them, and returns the elapsed ns.
template <class SpawnAll>
double timed(SpawnAll spawn_all) {
  std::int64_t t0 = now_ns();
  std::vector<fern::fiber<void>> fibers = spawn_all();
  fern::joinall(fibers);
  return static_cast<double>(now_ns() - t0);
}

// ns per yield: two fibers running the same function, `yields` yields each.
double fern_same_fn(long yields) {
  auto worker = [](long n) {
    for (long i = 0; i < n; ++i) fern::yield();
  };
  auto run = [&](long n) {
    return timed([&] { return std::vector{fern::spawn(worker, n), fern::spawn(worker, n)}; });
  };
  run(yields / 10 + 1000);  // warm-up: caches, branch predictors, the stack pool
  return run(yields) / (2.0 * static_cast<double>(yields));
}

// ns per yield: two fibers running different functions.
double fern_diff_fn(long yields) {
  auto worker_a = [](long n) {
    for (long i = 0; i < n; ++i) {
      fern::yield();
      g_sink_a = i;
    }
  };
  auto worker_b = [](long n) {
    for (long i = 0; i < n; ++i) {
      g_sink_b = i;
      fern::yield();
    }
  };
  auto run = [&](long n) {
    return timed([&] { return std::vector{fern::spawn(worker_a, n), fern::spawn(worker_b, n)}; });
  };
  run(yields / 10 + 1000);
  return run(yields) / (2.0 * static_cast<double>(yields));
}

// ns per yield: `k` fibers running the same function in a ring, `total` yields in all.
double fern_ring(int k, long total) {
  auto worker = [](long n) {
    for (long i = 0; i < n; ++i) fern::yield();
  };
  long each = total / k;
  auto run = [&](long n) {
    return timed([&] {
      std::vector<fern::fiber<void>> v;
      for (int i = 0; i < k; ++i) v.push_back(fern::spawn(worker, n));
      return v;
    });
  };
  run(each / 10 + 100);
  return run(each) / (static_cast<double>(each) * k);
}

}  // namespace

int main(int argc, char** argv) {
  long rt = argc > 1 ? std::atol(argv[1]) : 5000000;
  if (rt < 1000 * k_reps) {
    std::fprintf(stderr, "usage: %s [round_trips >= %d]\n", argv[0], 1000 * k_reps);
    return 2;
  }
  // Interleaved repetitions, best of each: load on the other CPU (this VM's two vCPUs may share a
  // physical core) slows whole stretches of a run down by up to 1.5x; it only ever adds time.
  double raw = 1e9, same = 1e9, diff = 1e9, ring = 1e9, pj_same = 1e9, pj_diff = 1e9,
         call_same = 1e9;
  long part = rt / k_reps;
  for (int rep = 0; rep < k_reps; ++rep) {
    raw = std::min(raw, raw_fcontext(part));
    same = std::min(same, fern_same_fn(part));
    diff = std::min(diff, fern_diff_fn(part));
    ring = std::min(ring, fern_ring(100, 2 * part));
    pj_same = std::min(pj_same, raw_two_fibers<true, true>(part));
    pj_diff = std::min(pj_diff, raw_two_fibers<true, false>(part));
    call_same = std::min(call_same, raw_two_fibers<false, true>(part));
  }

  // Names and notes; each value is ns per switch (a yield), ratios are over raw_fcontext_switch.
  const struct {
    const char* name;
    double ns;
    const char* note;
  } rows[] = {
      {"raw_fcontext_switch", raw, "main<->fiber, jump_fcontext in a tight loop (the floor)"},
      {"raw_yieldfn_pushjmp_same_fn", pj_same,
       "2 raw fibers calling a yield function, push+jmp, same function"},
      {"raw_yieldfn_pushjmp_diff_fn", pj_diff,
       "same, different functions: 1 mispredicted return per switch"},
      {"raw_yieldfn_call_same_fn", call_same,
       "same function, plain call: return-stack buffer off by one"},
      {"fern_yield_same_fn", same, "2 fibers, same function (headline)"},
      {"fern_yield_diff_fn", diff, "2 fibers, different functions"},
      {"fern_yield_ring100", ring, "100 fibers, same function, round robin"},
  };
  for (const auto& r : rows)
    std::printf("RESULT %s %.2f ns/switch  (%s; %.2f ns/roundtrip)\n", r.name, r.ns, r.note,
                2 * r.ns);
  std::printf("RESULT fern_roundtrip_same_fn %.2f ns/roundtrip  (two yields)\n", 2 * same);
  std::printf("RESULT fern_roundtrip_diff_fn %.2f ns/roundtrip  (two yields)\n", 2 * diff);
  std::printf("RESULT ratio_yield_same_fn_vs_raw %.2f x  (fern yield / raw switch, same run)\n",
              same / raw);
  std::printf("RESULT ratio_yield_diff_fn_vs_raw %.2f x\n", diff / raw);
  std::printf("RESULT ratio_yield_ring100_vs_raw %.2f x\n", ring / raw);
  std::printf(
      "RESULT ratio_yield_same_fn_vs_raw_yieldfn %.2f x  (fern / raw push+jmp yield "
      "function, same function)\n",
      same / pj_same);
  std::printf(
      "RESULT ratio_yield_diff_fn_vs_raw_yieldfn %.2f x  (fern / raw push+jmp yield "
      "function, different functions)\n",
      diff / pj_diff);
  return 0;
}
