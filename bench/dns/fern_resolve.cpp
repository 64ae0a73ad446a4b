// fern's side of the DNS benchmark (bench/dns.sh): resolve every name of a file once, with a
// fern::pool of C fibers on one thread.
//
//   usage: bench_dns_fern api  NAMES-FILE C    fern::resolve (the C++ API)
//          bench_dns_shim shim NAMES-FILE C    plain getaddrinfo(), made cooperative by the shim
//                                              (bench_dns_shim links libfern_interpose)
// Prints "RESULT fern_<mode>_c<C> <lookups/s> 1/s failures=<n> cpu_us_per_lookup=<µs>".
#include <netdb.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "fern/fern.hpp"

int main(int argc, char** argv) {
  if (argc != 4 || (std::strcmp(argv[1], "api") != 0 && std::strcmp(argv[1], "shim") != 0)) {
    std::fprintf(stderr, "usage: %s api|shim NAMES-FILE CONCURRENCY\n", argv[0]);
    return 2;
  }
  const bool api = std::strcmp(argv[1], "api") == 0;
  std::vector<std::string> names;
  std::ifstream in(argv[2]);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) names.push_back(line);
  const int conc = std::atoi(argv[3]);
  if (names.empty() || conc < 1) return 2;

  long failures = 0;
  const fern::resolve_hints hints{.family = AF_INET, .socktype = SOCK_STREAM};
  auto t0 = std::chrono::steady_clock::now();
  {
    fern::pool workers(static_cast<std::size_t>(conc));
    for (const std::string& name : names) {
      workers.spawn([&, name] {
        if (api) {
          try {
            if (fern::resolve(name, {}, hints).empty()) ++failures;
          } catch (const fern::dns_error&) {
            ++failures;
          }
        } else {
          addrinfo h{};
          h.ai_family = AF_INET;
          h.ai_socktype = SOCK_STREAM;
          addrinfo* res = nullptr;
          if (::getaddrinfo(name.c_str(), nullptr, &h, &res) != 0 || res == nullptr)
            ++failures;
          else
            ::freeaddrinfo(res);
        }
      });
    }
    workers.join();
  }
  double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  std::printf("RESULT fern_%s_c%d %.0f 1/s failures=%ld cpu_us_per_lookup=%.1f\n",
              api ? "api" : "shim", conc, static_cast<double>(names.size()) / dt, failures,
              cpu / static_cast<double>(names.size()) * 1e6);
  return 0;
}
