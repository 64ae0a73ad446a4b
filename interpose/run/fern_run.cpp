// fern-run: the launcher, as `python -m gevent.monkey script` is for gevent. It puts
// libfern_interpose.so in front of LD_PRELOAD, turns its options into FERN_* variables and execs
// the program, whose blocking libc calls then yield to a hub. It finds the shim next to itself
// (the build tree) or at the install layout's relative place (bin/ -> lib/). It never links fern:
// it must start nothing and leave nothing behind but the environment.
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#ifndef FERN_RUN_LIB_NAME
#define FERN_RUN_LIB_NAME "libfern_interpose.so"
#endif
#ifndef FERN_RUN_LIB_REL  // from the installed bin directory to the installed lib directory
#define FERN_RUN_LIB_REL "../lib"
#endif
#ifndef FERN_RUN_PRELOAD_FIRST  // a sanitizer runtime the shim was built with, or empty
#define FERN_RUN_PRELOAD_FIRST ""
#endif
#ifndef FERN_VERSION
#define FERN_VERSION "unknown"
#endif

namespace {

// Exit statuses of fern-run's own failures, as env(1) and nice(1) use them.
constexpr int exit_usage = 125;
constexpr int exit_cannot_run = 126;
constexpr int exit_not_found = 127;

const char usage[] =
    "usage: fern-run [options] [--] program [args...]\n"
    "\n"
    "Runs an unmodified program with fern's LD_PRELOAD shim (libfern_interpose.so): its blocking\n"
    "libc calls (read, write, connect, accept, recv, send, poll, select, epoll_wait, sleep, ...)\n"
    "park the calling fiber instead of blocking the thread. The program's main thread gets a hub\n"
    "before main() runs; other threads behave exactly as without fern unless they use fern.\n"
    "\n"
    "options:\n"
    "  --stack-size SIZE       usable stack bytes per fiber: a number with an optional K, M or G\n"
    "                          suffix, 16K to 1G (sets FERN_STACK_SIZE; default 256K)\n"
    "  --threadpool-size N     threads of each hub's default thread pool, 1 to 1024 (sets\n"
    "                          FERN_THREADPOOL_SIZE; default 10)\n"
    "  -v, --debug             the shim reports on stderr, once each, where it cannot cooperate\n"
    "                          (a call that blocks the whole thread) or corrects its own state\n"
    "                          (sets FERN_DEBUG=1)\n"
    "  --library PATH          use this libfern_interpose.so instead of the one found next to\n"
    "                          fern-run (build tree) or in its lib directory (install)\n"
    "  -h, --help              this text\n"
    "  --version               fern's version\n"
    "\n"
    "environment (options override what is already set; variables set by hand pass through):\n"
    "  LD_PRELOAD              the shim is put first (after a sanitizer runtime, which must\n"
    "                          stay first); entries already there are kept after it\n"
    "  FERN_STACK_SIZE         as --stack-size\n"
    "  FERN_THREADPOOL_SIZE    as --threadpool-size\n"
    "  FERN_DEBUG              1: as --debug\n"
    "\n"
    "The environment passes on to child processes, so programs the program execs run under the\n"
    "shim too. fern-run exits with the program's status, or 125 (bad usage, shim not found),\n"
    "126 (program not executable) or 127 (program not found).\n";

[[noreturn]] void fail(int status, const std::string& msg) {
  std::fprintf(stderr, "fern-run: %s\n", msg.c_str());
  if (status == exit_usage) std::fprintf(stderr, "Try 'fern-run --help' for more information.\n");
  std::exit(status);
}

// "65536", "64K", "1M", "1G" within [lo, hi]: the syntax lib/src/config.cpp reads.
bool valid_size(std::string_view s, unsigned long long lo, unsigned long long hi) {
  if (s.empty()) return false;
  unsigned long long mult = 1;
  switch (s.back()) {
    case 'k':
    case 'K':
      mult = 1ull << 10;
      break;
    case 'm':
    case 'M':
      mult = 1ull << 20;
      break;
    case 'g':
    case 'G':
      mult = 1ull << 30;
      break;
    default:
      break;
  }
  if (mult != 1) s.remove_suffix(1);
  if (s.empty() || s.size() > 12) return false;
  unsigned long long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned long long>(c - '0');
  }
  v *= mult;
  return v >= lo && v <= hi;
}

bool readable(const std::string& path) {
  return ::access(path.c_str(), R_OK) == 0;
}

// The directory of fern-run's own executable, symlinks resolved.
std::string self_dir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  std::string p(buf, static_cast<std::size_t>(n));
  std::size_t slash = p.rfind('/');
  return slash == std::string::npos ? std::string(".") : p.substr(0, slash);
}

std::string find_library() {
  std::string dir = self_dir();
  if (dir.empty()) return {};
  for (const std::string& candidate :
       {dir + "/" FERN_RUN_LIB_NAME, dir + "/" FERN_RUN_LIB_REL "/" FERN_RUN_LIB_NAME}) {
    if (readable(candidate)) {
      char real[PATH_MAX];
      return ::realpath(candidate.c_str(), real) ? std::string(real) : candidate;
    }
  }
  return {};
}

std::string_view basename_of(std::string_view p) {
  std::size_t slash = p.rfind('/');
  return slash == std::string_view::npos ? p : p.substr(slash + 1);
}

bool is_sanitizer_runtime(std::string_view entry) {
  std::string_view b = basename_of(entry);
  return b.starts_with("libasan") || b.starts_with("libclang_rt.asan") ||
         b.starts_with("libubsan") || b.starts_with("libhwasan");
}

// LD_PRELOAD with the shim first, except that sanitizer runtimes (which refuse not to be first)
// stay in front; entries may be separated by spaces or colons, as ld.so accepts.
std::string preload_with(const std::string& shim, const char* existing) {
  std::vector<std::string> first, rest;
  if (*FERN_RUN_PRELOAD_FIRST) first.emplace_back(FERN_RUN_PRELOAD_FIRST);
  std::string cur;
  auto flush = [&] {
    if (cur.empty()) return;
    if (basename_of(cur) == basename_of(shim)) {
      // already there: it moves to the front below
    } else if (is_sanitizer_runtime(cur)) {
      if (basename_of(cur) != basename_of(FERN_RUN_PRELOAD_FIRST)) first.push_back(cur);
    } else {
      rest.push_back(cur);
    }
    cur.clear();
  };
  for (const char* p = existing ? existing : ""; *p; ++p) {
    if (*p == ':' || *p == ' ')
      flush();
    else
      cur.push_back(*p);
  }
  flush();
  std::string out;
  for (const auto& e : first) out += e + ":";
  out += shim;
  for (const auto& e : rest) out += ":" + e;
  return out;
}

// The value of `--name VALUE` or `--name=VALUE` at argv[i]; advances i past it.
bool option_value(int argc, char** argv, int& i, std::string_view name, std::string& value) {
  std::string_view a = argv[i];
  if (a == name) {
    if (i + 1 >= argc) fail(exit_usage, "option " + std::string(name) + " needs a value");
    value = argv[++i];
    return true;
  }
  if (a.size() > name.size() && a.starts_with(name) && a[name.size()] == '=') {
    value = std::string(a.substr(name.size() + 1));
    return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::string library, value;
  int i = 1;
  for (; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a == "-h" || a == "--help") {
      std::fputs(usage, stdout);
      return 0;
    }
    if (a == "--version") {
      std::printf("fern-run (fern) %s\n", FERN_VERSION);
      return 0;
    }
    if (a == "-v" || a == "--debug") {
      ::setenv("FERN_DEBUG", "1", 1);
    } else if (option_value(argc, argv, i, "--stack-size", value)) {
      if (!valid_size(value, 16ull << 10, 1ull << 30))
        fail(exit_usage, "--stack-size: expected a size from 16K to 1G, got '" + value + "'");
      ::setenv("FERN_STACK_SIZE", value.c_str(), 1);
    } else if (option_value(argc, argv, i, "--threadpool-size", value)) {
      if (!valid_size(value, 1, 1024) || value.find_first_not_of("0123456789") != value.npos)
        fail(exit_usage,
             "--threadpool-size: expected a number from 1 to 1024, got '" + value + "'");
      ::setenv("FERN_THREADPOOL_SIZE", value.c_str(), 1);
    } else if (option_value(argc, argv, i, "--library", value)) {
      library = value;
    } else if (a.starts_with("-") && a.size() > 1) {
      fail(exit_usage, "unknown option '" + std::string(a) + "'");
    } else {
      break;  // the program
    }
  }
  if (i >= argc) fail(exit_usage, "no program to run");

  if (library.empty()) {
    library = find_library();
    if (library.empty())
      fail(exit_usage, "cannot find " FERN_RUN_LIB_NAME " next to fern-run or in " + self_dir() +
                           "/" FERN_RUN_LIB_REL "; use --library PATH");
  } else if (!readable(library)) {
    fail(exit_usage, "--library: cannot read '" + library + "': " + std::strerror(errno));
  } else if (library.find('/') == std::string::npos) {
    library = "./" + library;  // ld.so would search for a bare name in its library path
  }
  std::string preload = preload_with(library, ::getenv("LD_PRELOAD"));
  ::setenv("LD_PRELOAD", preload.c_str(), 1);

  ::execvp(argv[i], argv + i);
  int e = errno;
  fail(e == ENOENT ? exit_not_found : exit_cannot_run,
       std::string("cannot run '") + argv[i] + "': " + std::strerror(e));
}
