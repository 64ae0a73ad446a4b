// The sleep family under the shim (sleep.cpp): sleep, usleep, nanosleep, clock_nanosleep,
// thrd_sleep park the calling fiber while the others run; results and errno are the kernel's
// (compared with direct system calls); kill and fern::timeout surface as ECANCELED / ETIMEDOUT.
// Linked against libfern_interpose: every ::nanosleep here is the hook.
#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fern/fern.hpp"
#include "hub_impl.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// libc's own definition, behind the shim (for cases the kernel alone does not decide).
template <class Fn>
Fn* libc_fn(const char* name) {
  void* libc = ::dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  return libc ? reinterpret_cast<Fn*>(::dlsym(libc, name)) : nullptr;
}

// The kernel's answer: result and errno of a direct system call.
struct outcome {
  long r;
  int e;
  bool operator==(const outcome&) const = default;
};
template <class... A>
outcome sys(long nr, A... a) {
  errno = 0;
  long r = ::syscall(nr, a...);
  return {r, r < 0 ? errno : 0};
}
template <class F>
outcome call(F f) {
  errno = 0;
  long r = f();
  return {r, r < 0 ? errno : 0};
}

std::int64_t ms_since(steady::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
}

TEST(SleepTest, NanosleepParksTheFiberWhileOthersRun) {
  std::vector<std::string> log;
  auto sleeper = fern::spawn([&] {
    log.push_back("sleep");
    timespec req{0, 30 * 1000 * 1000};
    EXPECT_EQ(::nanosleep(&req, nullptr), 0);
    log.push_back("woke");
  });
  auto other = fern::spawn([&] {
    log.push_back("other");
    fern::sleep(5ms);
    log.push_back("other again");
  });
  fern::joinall({sleeper, other});
  EXPECT_EQ(log, (std::vector<std::string>{"sleep", "other", "other again", "woke"}));
}

TEST(SleepTest, AThousandFibersSleepingOneSecondTakeAboutOneSecond) {
  std::vector<fern::fiber<unsigned>> fibers;
  auto t0 = steady::now();
  for (int i = 0; i < 1000; ++i) fibers.push_back(fern::spawn([] { return ::sleep(1); }));
  fern::joinall(fibers);
  auto ms = ms_since(t0);
  for (auto& f : fibers) EXPECT_EQ(f.get(), 0u);
  EXPECT_GE(ms, 1000);
  EXPECT_LT(ms, 2500);
}

TEST(SleepTest, EachCallReturnsZeroAndParks) {
  int order = 0, sleeps_done = 0;
  auto ticker = fern::spawn([&] {
    for (int i = 0; i < 4; ++i) {
      ++order;
      fern::sleep(1ms);
    }
  });
  auto t0 = steady::now();
  EXPECT_EQ(::usleep(20000), 0);
  ++sleeps_done;
  timespec req{0, 20 * 1000 * 1000}, rem{7, 7};
  EXPECT_EQ(::clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem), 0);
  EXPECT_EQ(rem.tv_sec, 7);  // untouched on success
  EXPECT_EQ(::thrd_sleep(&req, nullptr), 0);
  EXPECT_EQ(::sleep(0), 0u);
  ++sleeps_done;
  EXPECT_GE(ms_since(t0), 60);
  EXPECT_EQ(order, 4);  // the ticker ran while main slept
  ticker.join();
  EXPECT_EQ(sleeps_done, 2);
}

TEST(SleepTest, UsleepOfMoreThanASecondIsAccepted) {
  // glibc's usleep takes any count (no EINVAL at a million); so does the hook.
  auto f = fern::spawn([] { return ::usleep(1000000) < 0 ? errno : 0; });
  fern::sleep(10ms);
  EXPECT_FALSE(f.ready());  // still sleeping: not refused with EINVAL
  f.kill();
  EXPECT_EQ(f.get(), ECANCELED);
}

TEST(SleepTest, ZeroSleepYieldsToReadyFibers) {
  std::vector<int> log;
  auto other = fern::spawn([&] { log.push_back(2); });
  log.push_back(1);
  timespec zero{0, 0};
  EXPECT_EQ(::nanosleep(&zero, nullptr), 0);
  log.push_back(3);
  other.join();
  EXPECT_EQ(log, (std::vector<int>{1, 2, 3}));
}

TEST(SleepTest, InvalidArgumentsGiveTheKernelsErrors) {
  const timespec bad[] = {{0, -1}, {0, 1000000000}, {-1, 0}, {0, 2000000000}};
  for (const timespec& ts : bad) {
    timespec rem{};
    EXPECT_EQ(call([&] { return ::nanosleep(&ts, &rem); }), sys(SYS_nanosleep, &ts, &rem));
    EXPECT_EQ(::clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr), EINVAL);
    EXPECT_EQ(::clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, nullptr), EINVAL);
    EXPECT_EQ(::thrd_sleep(&ts, nullptr), -2);
  }
  EXPECT_EQ(call([] { return ::nanosleep(nullptr, nullptr); }),
            sys(SYS_nanosleep, nullptr, nullptr));
  EXPECT_EQ(::clock_nanosleep(CLOCK_MONOTONIC, 0, nullptr, nullptr), EFAULT);
}

TEST(SleepTest, ClocksItCannotSleepOnBehaveAsGlibc) {
  auto libc_cns = libc_fn<decltype(::clock_nanosleep)>("clock_nanosleep");
  ASSERT_NE(libc_cns, nullptr);
  ASSERT_NE(libc_cns, &::clock_nanosleep);
  timespec req{0, 1000};
  for (clockid_t c : {CLOCK_THREAD_CPUTIME_ID, CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE,
                      clockid_t{12345}, clockid_t{-1}}) {
    SCOPED_TRACE(c);
    int saved = errno = 4242;
    EXPECT_EQ(::clock_nanosleep(c, 0, &req, nullptr), libc_cns(c, 0, &req, nullptr));
    EXPECT_EQ(errno, saved);  // clock_nanosleep reports through its result only
  }
}

TEST(SleepTest, AbsoluteSleepsWakeAtTheDeadlineOnEachClock) {
  for (clockid_t c : {CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME, CLOCK_TAI}) {
    SCOPED_TRACE(c);
    timespec now;
    ASSERT_EQ(::clock_gettime(c, &now), 0);
    timespec until = now;
    until.tv_nsec += 25 * 1000 * 1000;
    if (until.tv_nsec >= 1000000000) {
      until.tv_nsec -= 1000000000;
      ++until.tv_sec;
    }
    bool other_ran = false;
    auto other = fern::spawn([&] { other_ran = true; });
    EXPECT_EQ(::clock_nanosleep(c, TIMER_ABSTIME, &until, nullptr), 0);
    timespec after;
    ::clock_gettime(c, &after);
    EXPECT_TRUE(after.tv_sec > until.tv_sec ||
                (after.tv_sec == until.tv_sec && after.tv_nsec >= until.tv_nsec));
    EXPECT_TRUE(other_ran);
    other.join();
  }
}

TEST(SleepTest, AbsoluteDeadlineInThePastReturnsAtOnce) {
  timespec past{1, 0};
  auto t0 = steady::now();
  EXPECT_EQ(::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &past, nullptr), 0);
  EXPECT_EQ(::clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &past, nullptr), 0);
  EXPECT_LT(ms_since(t0), 100);
}

TEST(SleepTest, KilledSleeperGetsEcanceledAndTheTimeLeft) {
  timespec rem{0, 0};
  int r = 0, e = 0;
  auto f = fern::spawn([&] {
    timespec req{10, 0};
    r = ::nanosleep(&req, &rem);
    e = errno;
  });
  fern::sleep(10ms);
  f.kill();
  EXPECT_TRUE(f.successful());  // the C call returned; nothing was thrown through it
  EXPECT_EQ(r, -1);
  EXPECT_EQ(e, ECANCELED);
  EXPECT_GE(rem.tv_sec, 9);
}

TEST(SleepTest, KilledSleepReportsThroughEachEntryPoint) {
  std::vector<int> results;
  auto f = fern::spawn([&] {
    unsigned left = ::sleep(5);  // a kill ends only the call it hits: the next ones run
    results.push_back(static_cast<int>(left));
    results.push_back(errno);
  });
  fern::sleep(5ms);
  f.kill({.block = false});
  f.join();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_GE(results[0], 4);
  EXPECT_EQ(results[1], ECANCELED);
}

TEST(SleepTest, ExpiredTimeoutScopeGivesEtimedout) {
  {
    fern::timeout scope(20ms);
    timespec req{10, 0}, rem{0, 0};
    auto t0 = steady::now();
    EXPECT_EQ(::nanosleep(&req, &rem), -1);
    EXPECT_EQ(errno, ETIMEDOUT);
    EXPECT_GE(ms_since(t0), 19);
    EXPECT_GE(rem.tv_sec, 9);
    // Still expired: later blocking calls in the scope fail at once.
    EXPECT_EQ(::clock_nanosleep(CLOCK_MONOTONIC, 0, &req, nullptr), ETIMEDOUT);
    EXPECT_EQ(::usleep(1000), -1);
    EXPECT_EQ(errno, ETIMEDOUT);
  }
  // A scope longer than the sleep changes nothing.
  fern::timeout scope(10s);
  EXPECT_EQ(::usleep(1000), 0);
}

TEST(SleepTest, ErrnoIsPreservedAcrossASuccessfulSleep) {
  auto noisy = fern::spawn([] {
    for (int i = 0; i < 5; ++i) {
      errno = EPIPE;  // another fiber's errno on the same thread
      fern::sleep(1ms);
    }
  });
  errno = 4242;
  timespec req{0, 20 * 1000 * 1000};
  EXPECT_EQ(::nanosleep(&req, nullptr), 0);
  EXPECT_EQ(errno, 4242);
  errno = 4343;
  EXPECT_EQ(::sleep(0), 0u);
  EXPECT_EQ(::usleep(2000), 0);
  EXPECT_EQ(errno, 4343);
  noisy.join();
}

TEST(SleepTest, AThreadWithoutAHubGetsTheRealCall) {
  std::atomic<bool> had_hub{true};
  std::atomic<int> r{-2};
  std::thread t([&] {
    timespec req{0, 1000 * 1000};
    r = ::nanosleep(&req, nullptr);
    had_hub = fern::detail::hub_impl::peek() != nullptr;
  });
  t.join();
  EXPECT_EQ(r, 0);
  EXPECT_FALSE(had_hub);
}

}  // namespace
