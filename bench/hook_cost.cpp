// Hook cost: what libfern_interpose.so adds to a call it intercepts, against libc's own function
// called through a pointer (the direct call), in the same process, interleaved in small chunks so
// that load on the machine hits both alike. Prints `RESULT <name> <value> <unit>` lines (the
// run_all.sh EXTRA_* format). bench/hook_cost.sh runs it plain and under the shim. Never part of
// the tests.
//
// usage: bench_hook_cost [calls=400000] [reps=9]
//        bench_hook_cost --count CASE hooked|direct|same N    (one variant only, prints nothing)
//   (a) nohub_*: on a thread without a hub (a std::thread: the shim gives only the main thread
//       one), where a hook must be a passthrough: read() on an empty O_NONBLOCK pipe (EAGAIN, the
//       anchors' syscall_cost case) and a 1-byte write() to /dev/null.
//   hub_nonblock_read_eagain: (a)'s read() in a fiber on a hub, on a pipe the program made
//       O_NONBLOCK itself, which the hook must also pass through (an event loop under the shim).
//   (b) hub_*: in a fiber on the main thread's hub, 1-byte read()s and write()s that complete at
//       once, on a pipe and on a Unix socketpair kept fed or drained (by direct calls, alike in
//       every variant). Under the shim this is the cooperative path: the fd view lookup, then
//       preadv2/pwritev2(RWF_NOWAIT) on the pipe, recvfrom/sendto(MSG_DONTWAIT) on the socket.
//       The third variant, "same", makes that system call directly: hooked - same is the shim's
//       own work, same - direct what the other system call costs in the kernel.
// Names start with shim_ when read() is interposed, plain_ otherwise; in a plain run the hooked
// and direct calls are the same function, so its ratios show the measurement's own noise.
// A rep times k_chunks chunks of calls/k_chunks calls of each variant, alternated. Per case:
// <case>_hooked, _direct, _samecall (ns/call: per rep the median chunk, then the median over
// reps), _added (hooked - direct), _shim_only (hooked - same) and _ratio (hooked / direct): per
// rep the median over chunk pairs, then the median over reps.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "fern/fern.hpp"

namespace {

// libc's own functions, found in libc itself: not the first definition in the search order,
// which is the shim's when it is preloaded or linked.
struct libc_fns {
  decltype(&::read) read;
  decltype(&::write) write;
  decltype(&::recvfrom) recvfrom;
  decltype(&::sendto) sendto;
  decltype(&::preadv2) preadv2;
  decltype(&::pwritev2) pwritev2;
};
libc_fns g_libc;

// "shim_" when read() is interposed, "plain_" otherwise: the prefix of every RESULT name.
std::string g_tag;

// --count CASE VARIANT N: only run VARIANT (0 hooked, 1 direct, 2 same) of CASE, N times, and
// print nothing (for instruction counts under callgrind: bench/hook_cost.sh --callgrind).
struct {
  std::string only;
  int variant = 0;
  long n = 0;
} g_count;

constexpr int k_chunks = 200;  // each rep alternates this many chunks of each variant

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

std::int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Times `hooked`, `direct` and, unless null, `same` (each a function doing one call, taking the
// iteration number), `calls` each per rep, alternating chunks of calls/k_chunks in an order that
// rotates from rep to rep. Prints the RESULT lines of case `name`.
template <class Hooked, class Direct, class Same>
void compare(const std::string& name, long calls, int reps, Hooked hooked, Direct direct,
             Same same) {
  constexpr bool has_same = !std::is_same_v<Same, std::nullptr_t>;
  constexpr int n_var = has_same ? 3 : 2;
  if (!g_count.only.empty()) {
    if (name != g_count.only) return;
    for (long i = 0; i < g_count.n; ++i) {
      if (g_count.variant == 0) {
        hooked(i);
      } else if (g_count.variant == 1) {
        direct(i);
      } else if constexpr (has_same) {
        same(i);
      }
    }
    return;
  }
  const long chunk = std::max(1L, calls / k_chunks);
  auto run = [&](int v) {
    std::int64_t t0 = now_ns();
    if (v == 0) {
      for (long i = 0; i < chunk; ++i) hooked(i);
    } else if (v == 1) {
      for (long i = 0; i < chunk; ++i) direct(i);
    } else if constexpr (has_same) {
      for (long i = 0; i < chunk; ++i) same(i);
    }
    return now_ns() - t0;
  };
  for (int v = 0; v < n_var; ++v) run(v);  // warm-up
  // Per rep: each variant's median chunk (a chunk hit by preemption is an outlier, not a shift)
  // and the median of the paired per-chunk differences and ratios (chunks next to each other in
  // time see the same load).
  std::vector<double> ns[3], added, ratio, shim_only;
  for (int rep = 0; rep < reps; ++rep) {
    std::vector<double> t[3], d_added, d_ratio, d_shim;
    for (int c = 0; c < k_chunks; ++c) {
      double x[3] = {0, 0, 0};
      for (int k = 0; k < n_var; ++k) {
        int v = (k + rep) % n_var;
        x[v] = static_cast<double>(run(v)) / static_cast<double>(chunk);
        t[v].push_back(x[v]);
      }
      d_added.push_back(x[0] - x[1]);
      d_ratio.push_back(x[0] / x[1]);
      if (has_same) d_shim.push_back(x[0] - x[2]);
    }
    for (int v = 0; v < n_var; ++v) ns[v].push_back(median(t[v]));
    added.push_back(median(d_added));
    ratio.push_back(median(d_ratio));
    if (has_same) shim_only.push_back(median(d_shim));
  }
  const std::string full = g_tag + name;
  const char* c = full.c_str();
  std::printf("RESULT %s_hooked %.2f ns/call\n", c, median(ns[0]));
  std::printf("RESULT %s_direct %.2f ns/call\n", c, median(ns[1]));
  std::printf("RESULT %s_added %.2f ns/call\n", c, median(added));
  std::printf("RESULT %s_ratio %.4f x\n", c, median(ratio));
  if (has_same) {
    std::printf("RESULT %s_samecall %.2f ns/call\n", c, median(ns[2]));
    std::printf("RESULT %s_shim_only %.2f ns/call\n", c, median(shim_only));
  }
  std::fflush(stdout);
}

// (a): a thread without a hub. The hooked call ends in the same system call as the direct one.
void no_hub_cases(long calls, int reps) {
  // Nothing here calls into fern on this thread, so it never gets a hub.
  std::thread t([&] {
    int p[2];
    if (::pipe2(p, O_NONBLOCK) != 0) die("pipe2");
    char b = 0;
    compare(
        "nohub_read_eagain", calls, reps,
        [&](long) {
          if (::read(p[0], &b, 1) != -1 || errno != EAGAIN) die("read (hooked): expected EAGAIN");
        },
        [&](long) {
          if (g_libc.read(p[0], &b, 1) != -1 || errno != EAGAIN) die("read: expected EAGAIN");
        },
        nullptr);
    int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null < 0) die("open /dev/null");
    compare(
        "nohub_write_devnull", calls, reps,
        [&](long) {
          if (::write(null, &b, 1) != 1) die("write (hooked)");
        },
        [&](long) {
          if (g_libc.write(null, &b, 1) != 1) die("write");
        },
        nullptr);
    ::close(null);
    ::close(p[0]);
    ::close(p[1]);
  });
  t.join();
}

// (b): one-byte reads and writes that complete at once, in a fiber on this thread's hub. Reads
// of `rfd` are fed by a direct write of `batch` bytes to `wfd` every `batch` calls; writes to
// `wfd` are drained by direct reads of `rfd` as often (alike in every variant). `same` is the
// system call the shim's cooperative path makes, called directly: hooked - same is the shim's
// own work.
void hub_io_case(const std::string& name, bool reading, bool socket, int rfd, int wfd, long calls,
                 int reps) {
  // A Unix stream socket charges each 1-byte write a whole skb against the sender's buffer:
  // drain it often. A pipe merges small writes into one page.
  const long batch = socket && !reading ? 64 : 4096;
  static char bulk[4096];
  long left = reading ? 0 : batch;  // reads: fed bytes not yet read; writes: room before a drain
  auto prepare = [&] {
    if (left == 0) {
      if (reading) {
        if (g_libc.write(wfd, bulk, batch) != batch) die("feed");
      } else {
        for (long got = 0; got < batch;) {
          ssize_t r = g_libc.read(rfd, bulk, static_cast<size_t>(batch - got));
          if (r <= 0) die("drain");
          got += r;
        }
      }
      left = batch;
    }
    --left;
  };
  auto check = [](ssize_t r) {
    if (r != 1) die("1-byte transfer");
  };
  char b = 'x';
  iovec iov{&b, 1};
  auto hooked = [&](long) {
    prepare();
    check(reading ? ::read(rfd, &b, 1) : ::write(wfd, &b, 1));
  };
  auto direct = [&](long) {
    prepare();
    check(reading ? g_libc.read(rfd, &b, 1) : g_libc.write(wfd, &b, 1));
  };
  if (socket && reading) {
    compare(name, calls, reps, hooked, direct, [&](long) {
      prepare();
      check(g_libc.recvfrom(rfd, &b, 1, MSG_DONTWAIT, nullptr, nullptr));
    });
  } else if (socket) {
    compare(name, calls, reps, hooked, direct, [&](long) {
      prepare();
      check(g_libc.sendto(wfd, &b, 1, MSG_DONTWAIT, nullptr, 0));
    });
  } else if (reading) {
    compare(name, calls, reps, hooked, direct, [&](long) {
      prepare();
      check(g_libc.preadv2(rfd, &iov, 1, -1, RWF_NOWAIT));
    });
  } else {
    compare(name, calls, reps, hooked, direct, [&](long) {
      prepare();
      check(g_libc.pwritev2(wfd, &iov, 1, -1, RWF_NOWAIT));
    });
  }
}

void hub_cases(long calls, int reps) {
  fern::spawn([&] {
    // The program's own O_NONBLOCK: the hook must pass the call through, as off a hub.
    int p[2];
    if (::pipe2(p, O_NONBLOCK) != 0) die("pipe2");
    char b = 0;
    compare(
        "hub_nonblock_read_eagain", calls, reps,
        [&](long) {
          if (::read(p[0], &b, 1) != -1 || errno != EAGAIN) die("read (hooked): expected EAGAIN");
        },
        [&](long) {
          if (g_libc.read(p[0], &b, 1) != -1 || errno != EAGAIN) die("read: expected EAGAIN");
        },
        nullptr);
    ::close(p[0]);
    ::close(p[1]);
    // A fresh pipe or socketpair per case: bytes left over by one case would skew the next.
    for (bool socket : {false, true}) {
      for (bool reading : {true, false}) {
        int fds[2];
        if ((socket ? ::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) : ::pipe(fds)) != 0) die("pipe");
        std::string name =
            std::string(socket ? "hub_sock_" : "hub_pipe_") + (reading ? "read1" : "write1");
        hub_io_case(name, reading, socket, fds[0], fds[1], calls, reps);
        ::close(fds[0]);
        ::close(fds[1]);
      }
    }
  }).join();
}

}  // namespace

int main(int argc, char** argv) {
  long calls = 400000;
  int reps = 9;
  if (argc == 5 && std::string(argv[1]) == "--count") {
    g_count.only = argv[2];
    std::string v = argv[3];
    g_count.variant = v == "hooked" ? 0 : v == "direct" ? 1 : v == "same" ? 2 : -1;
    g_count.n = std::atol(argv[4]);
  } else if (argc <= 3) {
    calls = argc > 1 ? std::atol(argv[1]) : calls;
    reps = argc > 2 ? std::atoi(argv[2]) : reps;
  } else {
    calls = 0;
  }
  if (calls <= 0 || reps <= 0 || g_count.variant < 0 || g_count.n < 0) {
    std::fprintf(stderr,
                 "usage: %s [calls=400000] [reps=9]\n"
                 "       %s --count CASE hooked|direct|same N\n",
                 argv[0], argv[0]);
    return 2;
  }
  void* libc = ::dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  if (!libc) {
    std::fprintf(stderr, "bench_hook_cost: %s\n", ::dlerror());
    return 1;
  }
  auto get = [libc](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(libc, name));
    if (!fn) std::fprintf(stderr, "bench_hook_cost: libc has no %s\n", name), std::exit(1);
  };
  get(g_libc.read, "read");
  get(g_libc.write, "write");
  get(g_libc.recvfrom, "recvfrom");
  get(g_libc.sendto, "sendto");
  get(g_libc.preadv2, "preadv2");
  get(g_libc.pwritev2, "pwritev2");
  // The shim's read (preloaded or linked) comes before libc's in the global search order.
  bool shim = ::dlsym(RTLD_DEFAULT, "read") != reinterpret_cast<void*>(g_libc.read);
  g_tag = shim ? "shim_" : "plain_";
  no_hub_cases(calls, reps);
  hub_cases(calls, reps);
}
