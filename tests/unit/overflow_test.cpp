// Unit tests for stack-overflow reporting (lib/src/overflow.cpp): a fiber that runs into the
// guard below its stack dies with `fern: stack overflow in fiber "<name>"` on stderr, on any
// thread; a SIGSEGV that is not an overflow is left to the previous handler. Death tests use the
// threadsafe style (the child re-executes the binary).
//
// Under ASan: with libasan's default allow_user_segv_handler=1, fern's handler (installed after
// ASan's) sees the fault first and reports the overflow itself, forwarding other faults to ASan.
// With allow_user_segv_handler=0, ASan ignores fern's sigaction and reports a generic
// "stack-overflow" instead. The children therefore run with handle_segv=0, which makes both
// cases behave as a production build does.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <ostream>
#include <string>
#include <thread>
#include <utility>

#include "fern/fiber.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define FERN_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FERN_TEST_ASAN 1
#endif
#endif

namespace {

volatile bool g_stop = false;  // never set: keeps the recursion from being provably infinite

[[gnu::noinline]] int recurse(int n) {
  volatile char buf[512];
  buf[0] = static_cast<char>(n);
  buf[sizeof buf - 1] = buf[0];
  if (g_stop) return buf[0];
  int r = recurse(n + 1);
  asm volatile("" : : "r"(buf) : "memory");  // the frame stays live across the call: no TCO
  return r + buf[sizeof buf - 1];
}

// Matches output that does not contain `needle`.
class lacks : public testing::MatcherInterface<const std::string&> {
 public:
  explicit lacks(std::string needle) : needle_(std::move(needle)) {}
  bool MatchAndExplain(const std::string& s, testing::MatchResultListener*) const override {
    return s.find(needle_) == std::string::npos;
  }
  void DescribeTo(std::ostream* os) const override { *os << "lacks \"" << needle_ << '"'; }
  void DescribeNegationTo(std::ostream* os) const override {
    *os << "contains \"" << needle_ << '"';
  }

 private:
  std::string needle_;
};

void overflow_in_fiber(fern::spawn_options opts) {
  auto f = fern::spawn(std::move(opts), [] { return recurse(0); });
  f.join();
}

class OverflowTest : public testing::Test {
 protected:
  void SetUp() override {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
#ifdef FERN_TEST_ASAN
    // Re-read by the child when it is re-executed (see the top of the file).
    std::string opts = "handle_segv=0";
    if (const char* old = std::getenv("ASAN_OPTIONS")) opts = std::string(old) + ":" + opts;
    ::setenv("ASAN_OPTIONS", opts.c_str(), 1);
#endif
  }
};

}  // namespace

TEST_F(OverflowTest, NamedFiberOverflowIsReportedWithItsName) {
  EXPECT_DEATH(overflow_in_fiber({.name = "deep", .stack_size = 64 * 1024}),
               "fern: stack overflow in fiber \"deep\" \\(stack of 64 KiB");
}

TEST_F(OverflowTest, DefaultStackOverflowIsReported) {
  EXPECT_DEATH(overflow_in_fiber({.name = "deep"}),
               "fern: stack overflow in fiber \"deep\" \\(stack of 256 KiB");
}

TEST_F(OverflowTest, UnnamedFiberIsReportedByItsId) {
  EXPECT_DEATH(overflow_in_fiber({.stack_size = 32 * 1024}),
               "fern: stack overflow in fiber \"fiber-[0-9]+\"");
}

TEST_F(OverflowTest, OverflowOnAnotherThreadIsReported) {
  EXPECT_DEATH(
      {
        std::thread t(
            [] { overflow_in_fiber({.name = "deep-on-thread", .stack_size = 64 * 1024}); });
        t.join();
      },
      "fern: stack overflow in fiber \"deep-on-thread\"");
}

TEST_F(OverflowTest, OtherSegfaultsAreNotReportedAsOverflow) {
  // A wild write far from any guard: the default action (or ASan's handler) ends the process
  // with SIGSEGV, and fern does not claim it.
  EXPECT_EXIT(
      {
        auto f = fern::spawn(fern::spawn_options{.name = "wild"}, [] {
          volatile std::uintptr_t wild = 16;  // opaque to the compiler
          *reinterpret_cast<volatile char*>(wild) = 1;
        });
        f.join();
      },
      testing::KilledBySignal(SIGSEGV),
      testing::Matcher<const std::string&>(new lacks("stack overflow")));
}

TEST_F(OverflowTest, FiberThatStaysWithinItsStackRunsNormally) {
  // The same recursion, bounded: 40 frames of ~0.5 KiB fit in 64 KiB.
  auto f = fern::spawn(fern::spawn_options{.name = "shallow", .stack_size = 64 * 1024}, [] {
    struct bounded {
      static int go(int n) {
        volatile char buf[512];
        buf[0] = static_cast<char>(n);
        return n == 0 ? buf[0] : go(n - 1) + buf[0];
      }
    };
    return bounded::go(40);
  });
  EXPECT_EQ(f.get(), 40 * 41 / 2);
}
