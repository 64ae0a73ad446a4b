// Unit tests for the private fiber stack pool (lib/src/stack_pool.*): size rounding, LIFO reuse,
// distinct non-overlapping stacks, a fully usable range, and the no-access guard region below
// every stack (MADV_GUARD_INSTALL on Linux >= 6.13).
#include <gtest/gtest.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "stack_pool.hpp"

using fern::detail::stack_guard_size;
using fern::detail::stack_pool;

namespace {

std::size_t page() {
  return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

// Whether the kernel lets us read `len` bytes at p: write() from a no-access page fails with
// EFAULT instead of raising SIGSEGV.
class probe_pipe {
 public:
  probe_pipe() { EXPECT_EQ(::pipe(fds_), 0); }
  ~probe_pipe() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  bool readable(const void* p) {
    ssize_t n = ::write(fds_[1], p, 1);
    if (n == 1) {
      char c;
      EXPECT_EQ(::read(fds_[0], &c, 1), 1);
      return true;
    }
    EXPECT_EQ(errno, EFAULT);
    return false;
  }

 private:
  int fds_[2] = {-1, -1};
};

bool kernel_at_least(int major, int minor) {
  utsname u{};
  if (::uname(&u) != 0) return false;
  int ma = 0, mi = 0;
  if (std::sscanf(u.release, "%d.%d", &ma, &mi) != 2) return false;
  return ma > major || (ma == major && mi >= minor);
}

}  // namespace

TEST(StackPoolTest, RoundSizeIsAPageMultipleOfAtLeast16KiB) {
  std::size_t p = page();
  EXPECT_EQ(stack_pool::round_size(0), 16u * 1024);
  EXPECT_EQ(stack_pool::round_size(1), 16u * 1024);
  EXPECT_EQ(stack_pool::round_size(16 * 1024), 16u * 1024);
  EXPECT_EQ(stack_pool::round_size(16 * 1024 + 1), 16 * 1024 + p);
  EXPECT_EQ(stack_pool::round_size(256 * 1024), 256u * 1024);
  EXPECT_EQ(stack_pool::round_size(100000) % p, 0u);
  EXPECT_GE(stack_pool::round_size(100000), 100000u);
  EXPECT_LT(stack_pool::round_size(100000), 100000 + p);
}

TEST(StackPoolTest, AcquireReturnsPageAlignedTops) {
  stack_pool pool;
  void* top = pool.acquire(64 * 1024);
  ASSERT_NE(top, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(top) % page(), 0u);
  pool.release(top, 64 * 1024);
}

TEST(StackPoolTest, ReleasedStacksAreReusedLastInFirstOut) {
  stack_pool pool;
  constexpr std::size_t size = 32 * 1024;
  void* a = pool.acquire(size);
  void* b = pool.acquire(size);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a, b);
  pool.release(a, size);
  pool.release(b, size);
  EXPECT_EQ(pool.acquire(size), b);  // the hottest first
  EXPECT_EQ(pool.acquire(size), a);
  pool.release(a, size);
  EXPECT_EQ(pool.acquire(size), a);
}

TEST(StackPoolTest, SizeClassesDoNotShareStacks) {
  stack_pool pool;
  void* small = pool.acquire(16 * 1024);
  ASSERT_NE(small, nullptr);
  pool.release(small, 16 * 1024);
  void* big = pool.acquire(128 * 1024);
  ASSERT_NE(big, nullptr);
  EXPECT_NE(big, small);
  // A 128 KiB stack really has 128 KiB below its top.
  std::memset(static_cast<char*>(big) - 128 * 1024, 0x5a, 128 * 1024);
  EXPECT_EQ(pool.acquire(16 * 1024), small);
  pool.release(small, 16 * 1024);
  pool.release(big, 128 * 1024);
}

TEST(StackPoolTest, StacksAndTheirGuardsNeverOverlap) {
  stack_pool pool;
  constexpr std::size_t size = 16 * 1024;
  constexpr int n = 100;  // spans several chunks (16, 32, 64, ...)
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> ranges;  // [guard lo, top)
  std::vector<void*> tops;
  for (int i = 0; i < n; ++i) {
    void* top = pool.acquire(size);
    ASSERT_NE(top, nullptr);
    tops.push_back(top);
    auto hi = reinterpret_cast<std::uintptr_t>(top);
    ranges.emplace_back(hi - size - stack_guard_size, hi);
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i)
    EXPECT_LE(ranges[i - 1].second, ranges[i].first) << "stacks " << i - 1 << " and " << i;
  for (void* t : tops) pool.release(t, size);
}

TEST(StackPoolTest, TheWholeUsableRangeIsWritable) {
  stack_pool pool;
  constexpr std::size_t size = 64 * 1024;
  for (int i = 0; i < 3; ++i) {
    char* top = static_cast<char*>(pool.acquire(size));
    ASSERT_NE(top, nullptr);
    char* lo = top - size;
    std::memset(lo, i + 1, size);
    EXPECT_EQ(lo[0], i + 1);
    EXPECT_EQ(top[-1], i + 1);
    EXPECT_EQ(lo[size / 2], i + 1);
  }
}

TEST(StackPoolTest, GuardRegionBelowEveryStackIsInaccessible) {
  stack_pool pool;
  constexpr std::size_t size = 16 * 1024;
  probe_pipe probe;
  for (int i = 0; i < 20; ++i) {
    char* top = static_cast<char*>(pool.acquire(size));
    ASSERT_NE(top, nullptr);
    char* lo = top - size;
    EXPECT_TRUE(probe.readable(lo));
    EXPECT_TRUE(probe.readable(top - 1));
    EXPECT_FALSE(probe.readable(lo - 1)) << "stack " << i;
    EXPECT_FALSE(probe.readable(lo - stack_guard_size / 2)) << "stack " << i;
    EXPECT_FALSE(probe.readable(lo - stack_guard_size)) << "stack " << i;
  }
}

TEST(StackPoolTest, WritingIntoTheGuardKillsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  stack_pool pool;
  char* top = static_cast<char*>(pool.acquire(16 * 1024));
  ASSERT_NE(top, nullptr);
  volatile char* below = top - 16 * 1024 - 1;
  EXPECT_DEATH(*below = 1, "");
}

TEST(StackPoolTest, GuardInstallIsSupportedOnThisKernel) {
  if (!kernel_at_least(6, 13)) GTEST_SKIP() << "MADV_GUARD_INSTALL needs Linux 6.13";
  EXPECT_TRUE(stack_pool::guard_install_supported());
  EXPECT_TRUE(stack_pool::guard_install_supported());  // probed once, stable
}

TEST(StackPoolTest, ThousandsOfStacksFitUnderTheMapCount) {
  // MADV_GUARD_INSTALL guards add no VMA: 40k stacks would exceed vm.max_map_count (65530) with
  // mprotect guards (two VMAs each) but not with guard markers.
  if (!stack_pool::guard_install_supported()) GTEST_SKIP() << "mprotect fallback";
  stack_pool pool;
  constexpr int n = 40000;
  std::vector<void*> tops;
  tops.reserve(n);
  for (int i = 0; i < n; ++i) {
    void* t = pool.acquire(16 * 1024);
    ASSERT_NE(t, nullptr) << "stack " << i << " errno " << errno;
    tops.push_back(t);
  }
  for (void* t : tops) pool.release(t, 16 * 1024);
}
