// dns_mass_resolve: resolve a long list of names at once with fern::resolve (c-ares under the
// hub, no threads). A fern::pool of -c fibers takes the names in turn, so at most that many
// lookups are in flight; each lookup has its own -t timeout. Results are printed in input order
// as soon as each one's predecessors are done, so the output streams even for a huge list.
//
//   usage: dns_mass_resolve [-c N] [-t SECONDS] [--server HOST:PORT]... [--family 4|6]
//                           [-f FILE | NAME...]           (no names and no file: read stdin)
// One line per name on stdout: "NAME -> ADDR ADDR...", "NAME -> error EAI_X: text" or
// "NAME -> timeout after S s"; a summary on stderr. Exit status 0 if every name resolved.
#include <netdb.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <istream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fern/fern.hpp>

namespace {

using clk = std::chrono::steady_clock;

struct options {
  std::size_t concurrency = 100;
  double timeout = 5;  // seconds, per lookup
  std::vector<std::string> servers;
  int family = AF_UNSPEC;
  std::string file;  // "-": stdin
  std::vector<std::string> names;
};

enum class kind { resolved, failed, timed_out };

struct outcome {
  kind k = kind::failed;
  std::string text;  // the addresses, or what went wrong
};

const char* eai_name(int code) {
  switch (code) {
    case EAI_NONAME:
      return "EAI_NONAME";
    case EAI_AGAIN:
      return "EAI_AGAIN";
    case EAI_FAIL:
      return "EAI_FAIL";
    case EAI_NODATA:
      return "EAI_NODATA";
    case EAI_ADDRFAMILY:
      return "EAI_ADDRFAMILY";
    case EAI_FAMILY:
      return "EAI_FAMILY";
    case EAI_SERVICE:
      return "EAI_SERVICE";
    case EAI_MEMORY:
      return "EAI_MEMORY";
    case EAI_SYSTEM:
      return "EAI_SYSTEM";
    default:
      return "EAI_?";
  }
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

// One lookup, every outcome turned into text. Blocking point (the calling fiber parks).
outcome lookup(const std::string& name, const options& opts) {
  // One entry per address (getaddrinfo gives one per socket type without a socktype).
  fern::resolve_hints hints{.family = opts.family, .socktype = SOCK_STREAM};
  try {
    fern::resolve_result r = fern::resolve(name, {}, hints,
                                           std::chrono::duration_cast<std::chrono::nanoseconds>(
                                               std::chrono::duration<double>(opts.timeout)));
    outcome o{kind::resolved, {}};
    std::vector<std::string> seen;
    for (const fern::endpoint& e : r) {
      std::string host = e.addr.host();
      if (std::find(seen.begin(), seen.end(), host) != seen.end()) continue;
      o.text += (seen.empty() ? "" : " ") + host;
      seen.push_back(std::move(host));
    }
    return o;
  } catch (const fern::dns_error& e) {
    return {kind::failed,
            std::string("error ") + eai_name(e.code()) + ": " + ::gai_strerror(e.code())};
  } catch (const fern::timeout_error&) {
    return {kind::timed_out, "timeout after " + seconds_text(opts.timeout) + " s"};
  } catch (const std::exception& e) {  // a name c-ares refuses outright, say
    return {kind::failed, std::string("error: ") + e.what()};
  }
}

// Names, one per line (the first word; blank lines and '#' comments skipped).
void read_names(std::istream& in, std::vector<std::string>& out) {
  std::string line;
  while (std::getline(in, line)) {
    line = line.substr(0, line.find('#'));
    std::size_t b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos) continue;
    std::size_t e = line.find_first_of(" \t\r", b);
    out.push_back(line.substr(b, e == std::string::npos ? std::string::npos : e - b));
  }
}

int usage(const char* argv0, int rc) {
  std::fprintf(rc ? stderr : stdout,
               "usage: %s [options] [NAME...]\n"
               "  -c N                 lookups in flight at once (default 100)\n"
               "  -t SECONDS           timeout of each lookup (default 5)\n"
               "  --server HOST:PORT   ask this DNS server (repeatable; default: resolv.conf's)\n"
               "  --family 4|6         IPv4 or IPv6 addresses only (default: both)\n"
               "  -f FILE              read names from FILE, one per line (\"-\": stdin)\n"
               "Without names or -f, names are read from stdin. Prints \"NAME -> addresses\"\n"
               "(or the error, or the timeout) in input order, then a summary on stderr.\n"
               "Exit status: 0 if every name resolved, 1 otherwise, 2 for bad usage.\n",
               argv0);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  options opts;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return usage(argv[0], 0);
    if (arg == "-c" || arg == "-t" || arg == "--server" || arg == "--family" || arg == "-f") {
      if (i + 1 == argc) return usage(argv[0], 2);
      std::string val = argv[++i];
      char* end = nullptr;
      if (arg == "-c") {
        long n = std::strtol(val.c_str(), &end, 10);
        if (*end || n < 1) return usage(argv[0], 2);
        opts.concurrency = static_cast<std::size_t>(n);
      } else if (arg == "-t") {
        opts.timeout = std::strtod(val.c_str(), &end);
        if (*end || !(opts.timeout > 0)) return usage(argv[0], 2);
      } else if (arg == "--server") {
        opts.servers.push_back(val);
      } else if (arg == "--family") {
        if (val != "4" && val != "6") return usage(argv[0], 2);
        opts.family = val == "4" ? AF_INET : AF_INET6;
      } else {
        opts.file = val;
      }
    } else if (arg.size() > 1 && arg[0] == '-') {
      return usage(argv[0], 2);
    } else {
      opts.names.push_back(arg);
    }
  }
  if (!opts.file.empty() || opts.names.empty()) {
    if (opts.file.empty() || opts.file == "-") {
      read_names(std::cin, opts.names);
    } else {
      std::ifstream in(opts.file);
      if (!in) {
        std::fprintf(stderr, "dns_mass_resolve: cannot read %s\n", opts.file.c_str());
        return 2;
      }
      read_names(in, opts.names);
    }
  }
  if (!opts.servers.empty()) {
    try {
      fern::set_dns_options({.servers = opts.servers});
    } catch (const std::invalid_argument& e) {
      std::fprintf(stderr, "dns_mass_resolve: %s\n", e.what());
      return 2;
    }
  }

  const std::size_t n = opts.names.size();
  std::vector<outcome> results(n);
  std::vector<bool> done(n);
  std::size_t next = 0;  // the first name not printed yet
  // Prints every finished result from `next` on: output in input order, as early as possible.
  auto print_ready = [&] {
    for (; next < n && done[next]; ++next)
      std::printf("%s -> %s\n", opts.names[next].c_str(), results[next].text.c_str());
  };

  const auto t0 = clk::now();
  fern::pool workers(opts.concurrency);
  for (std::size_t i = 0; i < n; ++i)
    workers.spawn([&, i] {  // waits here while the pool is full
      results[i] = lookup(opts.names[i], opts);
      done[i] = true;
      print_ready();
    });
  workers.join();
  const double took = std::chrono::duration<double>(clk::now() - t0).count();
  std::fflush(stdout);

  std::size_t resolved = 0, failed = 0, timed_out = 0;
  for (const outcome& o : results) {
    resolved += o.k == kind::resolved;
    failed += o.k == kind::failed;
    timed_out += o.k == kind::timed_out;
  }
  std::fprintf(stderr,
               "%zu names: %zu resolved, %zu failed, %zu timed out in %.3f s (%zu at once)\n", n,
               resolved, failed, timed_out, took, std::min(opts.concurrency, n));
  return resolved == n ? 0 : 1;
}
