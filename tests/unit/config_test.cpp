// Unit tests for the FERN_* configuration (lib/src/config.*): parse_size's accepted forms, its
// rejections (garbage, signs, spaces, overflow), and the environment variables read once per
// process — checked in a re-executed child, since config() caches its first result.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <optional>

#include "config.hpp"
#include "fern/hub.hpp"

using fern::detail::parse_size;

TEST(ConfigTest, ParseSizeAcceptsPlainNumbers) {
  EXPECT_EQ(parse_size("0"), std::optional<std::size_t>(0));
  EXPECT_EQ(parse_size("65536"), std::optional<std::size_t>(65536));
  EXPECT_EQ(parse_size("007"), std::optional<std::size_t>(7));
}

TEST(ConfigTest, ParseSizeAcceptsBinarySuffixesInEitherCase) {
  EXPECT_EQ(parse_size("64K"), std::optional<std::size_t>(64 * 1024));
  EXPECT_EQ(parse_size("64k"), std::optional<std::size_t>(64 * 1024));
  EXPECT_EQ(parse_size("1M"), std::optional<std::size_t>(1024 * 1024));
  EXPECT_EQ(parse_size("3m"), std::optional<std::size_t>(3 * 1024 * 1024));
  EXPECT_EQ(parse_size("1G"), std::optional<std::size_t>(std::size_t{1} << 30));
  EXPECT_EQ(parse_size("2g"), std::optional<std::size_t>(std::size_t{2} << 30));
  EXPECT_EQ(parse_size("0K"), std::optional<std::size_t>(0));
}

TEST(ConfigTest, ParseSizeRejectsAnythingElse) {
  for (const char* bad : {"", "abc", "K", "M", "12X", "-1", "+1", " 1", "1 ", "1.5M", "1KB", "0x10",
                          "1KK", "k1", "1e6"})
    EXPECT_EQ(parse_size(bad), std::nullopt) << '"' << bad << '"';
}

TEST(ConfigTest, ParseSizeRejectsOverflow) {
  EXPECT_EQ(parse_size("18446744073709551616"), std::nullopt);  // SIZE_MAX + 1
  EXPECT_EQ(parse_size("99999999999999999999"), std::nullopt);
  EXPECT_EQ(parse_size("184467440737095516150"), std::nullopt);
  EXPECT_EQ(parse_size("17179869184G"), std::nullopt);        // 2^34 GiB = 2^64
  EXPECT_EQ(parse_size("18014398509481984K"), std::nullopt);  // 2^54 KiB = 2^64
}

TEST(ConfigTest, ParseSizeAcceptsTheLargestValues) {
  static_assert(SIZE_MAX == 18446744073709551615u);
  EXPECT_EQ(parse_size("18446744073709551615"), std::optional<std::size_t>(SIZE_MAX));
  EXPECT_EQ(parse_size("18446744073709551610"), std::optional<std::size_t>(SIZE_MAX - 5));
  EXPECT_EQ(parse_size("17179869183G"), std::optional<std::size_t>(17179869183ull << 30));
  EXPECT_EQ(parse_size("18014398509481983K"),
            std::optional<std::size_t>(18014398509481983ull << 10));
}

// The environment is read once, at the first config() call: each case runs in a fresh child.
class ConfigEnvTest : public testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(ConfigEnvTest, StackSizeFromTheEnvironmentBecomesTheHubDefault) {
  EXPECT_EXIT(
      {
        ::setenv("FERN_STACK_SIZE", "64K", 1);
        std::_Exit(fern::hub::current().default_stack_size() == 64 * 1024 ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
}

TEST_F(ConfigEnvTest, StackSizeFromTheEnvironmentIsRoundedToAPage) {
  EXPECT_EXIT(
      {
        ::setenv("FERN_STACK_SIZE", "100000", 1);
        std::size_t p = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
        std::size_t want = (100000 + p - 1) / p * p;
        std::_Exit(fern::detail::config().stack_size == want ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
}

TEST_F(ConfigEnvTest, MalformedStackSizeIsReportedAndIgnored) {
  EXPECT_EXIT(
      {
        ::setenv("FERN_STACK_SIZE", "abc", 1);
        std::_Exit(fern::detail::config().stack_size == 256 * 1024 ? 0 : 1);
      },
      testing::ExitedWithCode(0), "fern: ignoring FERN_STACK_SIZE=abc");
}

TEST_F(ConfigEnvTest, OutOfRangeStackSizeIsReportedAndIgnored) {
  EXPECT_EXIT(
      {
        ::setenv("FERN_STACK_SIZE", "1K", 1);  // below the 16 KiB minimum
        std::_Exit(fern::detail::config().stack_size == 256 * 1024 ? 0 : 1);
      },
      testing::ExitedWithCode(0), "fern: ignoring FERN_STACK_SIZE=1K");
}

TEST_F(ConfigEnvTest, ThreadpoolSizeFromTheEnvironment) {
  EXPECT_EXIT(
      {
        ::setenv("FERN_THREADPOOL_SIZE", "3", 1);
        std::_Exit(fern::detail::config().threadpool_size == 3 ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
  EXPECT_EXIT(
      {
        ::setenv("FERN_THREADPOOL_SIZE", "0", 1);  // below the minimum of 1
        std::_Exit(fern::detail::config().threadpool_size == 10 ? 0 : 1);
      },
      testing::ExitedWithCode(0), "fern: ignoring FERN_THREADPOOL_SIZE=0");
}

TEST_F(ConfigEnvTest, DefaultsWithoutTheEnvironment) {
  EXPECT_EXIT(
      {
        ::unsetenv("FERN_STACK_SIZE");
        ::unsetenv("FERN_THREADPOOL_SIZE");
        const auto& c = fern::detail::config();
        std::_Exit(c.stack_size == 256 * 1024 && c.threadpool_size == 10 ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
}
