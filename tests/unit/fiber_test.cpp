// Unit tests for fern fibers (fiber.hpp): scheduling order, fiber<T> handles, unhandled
// exceptions, kill/killall, joinall, wait_any/iwait, exceptions across context switches and
// large numbers of live fibers. Every test leaves no fiber waiting behind, so the binary can also
// run all tests in one process; ctest runs each in its own (a fresh hub per test).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "fern/event.hpp"
#include "fern/fiber.hpp"
#include "fern/hub.hpp"
#include "fern/timeout.hpp"

using namespace std::chrono_literals;
using std::chrono::steady_clock;

namespace {

// Sets *flag when destroyed: shows that a fiber's stack was unwound.
struct set_on_destroy {
  bool* flag;
  ~set_on_destroy() { *flag = true; }
};

bool is_fiber_exit(const std::exception_ptr& p) {
  if (!p) return false;
  try {
    std::rethrow_exception(p);
  } catch (const fern::fiber_exit&) {
    return true;
  } catch (...) {
    return false;
  }
}

std::size_t count_of(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + needle.size()))
    ++n;
  return n;
}

std::size_t live_fibers() {
  return fern::hub::current().fiber_count();
}

}  // namespace

// --- ordering -------------------------------------------------------------------------------

TEST(FiberTest, SpawnDoesNotRunTheFiberUntilTheCallerBlocks) {
  bool ran = false;
  auto f = fern::spawn([&] { ran = true; });
  EXPECT_FALSE(ran);
  EXPECT_FALSE(f.ready());
  fern::yield();
  EXPECT_TRUE(ran);
  EXPECT_TRUE(f.ready());
}

TEST(FiberTest, SpawnedFibersStartInFifoOrder) {
  std::vector<int> order;
  std::vector<fern::fiber<void>> fs;
  for (int i = 0; i < 6; ++i) fs.push_back(fern::spawn([&order, i] { order.push_back(i); }));
  EXPECT_TRUE(order.empty());
  EXPECT_TRUE(fern::joinall(fs));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5}));
}

TEST(FiberTest, SpawnCopiesArgumentsIntoTheFiber) {
  std::string s = "before";
  auto f = fern::spawn([](std::string x, int n) { return x + std::to_string(n); }, s, 7);
  s = "after";
  EXPECT_EQ(f.get(), "before7");
  auto g = fern::spawn([](std::unique_ptr<int> p) { return *p; }, std::make_unique<int>(9));
  EXPECT_EQ(g.get(), 9);  // move-only arguments are moved in
}

TEST(FiberTest, YieldInterleavesThreeFibersRoundRobin) {
  std::vector<std::string> events;
  auto worker = [&events](std::string name) {
    for (int i = 1; i <= 3; ++i) {
      events.push_back(name + std::to_string(i));
      fern::yield();
    }
  };
  auto a = fern::spawn(worker, std::string("a"));
  auto b = fern::spawn(worker, std::string("b"));
  auto c = fern::spawn(worker, std::string("c"));
  EXPECT_TRUE(fern::joinall({a, b, c}));
  EXPECT_EQ(events,
            (std::vector<std::string>{"a1", "b1", "c1", "a2", "b2", "c2", "a3", "b3", "c3"}));
}

TEST(FiberTest, RootYieldTakesItsTurnBehindReadyFibers) {
  std::vector<std::string> events;
  auto worker = [&events](std::string name) {
    for (int i = 1; i <= 3; ++i) {
      events.push_back(name + std::to_string(i));
      fern::yield();
    }
  };
  auto a = fern::spawn(worker, std::string("a"));
  auto b = fern::spawn(worker, std::string("b"));
  for (const char* step : {"r1", "r2", "r3"}) {
    events.push_back(step);
    fern::yield();
  }
  EXPECT_TRUE(fern::joinall({a, b}));
  EXPECT_EQ(events,
            (std::vector<std::string>{"r1", "a1", "b1", "r2", "a2", "b2", "r3", "a3", "b3"}));
}

TEST(FiberTest, SleepZeroYieldsLikeYield) {
  std::vector<std::string> events;
  auto worker = [&events](std::string name) {
    for (int i = 1; i <= 2; ++i) {
      events.push_back(name + std::to_string(i));
      fern::sleep(0ns);
    }
  };
  auto a = fern::spawn(worker, std::string("a"));
  auto b = fern::spawn(worker, std::string("b"));
  EXPECT_TRUE(fern::joinall({a, b}));
  EXPECT_EQ(events, (std::vector<std::string>{"a1", "b1", "a2", "b2"}));
}

TEST(FiberTest, SleepersWakeInDeadlineOrder) {
  std::vector<int> woke;
  auto sleeper = [&woke](int ms) {
    fern::sleep(std::chrono::milliseconds(ms));
    woke.push_back(ms);
  };
  auto a = fern::spawn(sleeper, 30);
  auto b = fern::spawn(sleeper, 10);
  auto c = fern::spawn(sleeper, 20);
  EXPECT_TRUE(fern::joinall({a, b, c}));
  EXPECT_EQ(woke, (std::vector<int>{10, 20, 30}));
}

TEST(FiberTest, SleepsInDifferentFibersOverlap) {
  auto t0 = steady_clock::now();
  auto a = fern::spawn([] { fern::sleep(200ms); });
  auto b = fern::spawn([] { fern::sleep(200ms); });
  EXPECT_TRUE(fern::joinall({a, b}));
  auto elapsed = steady_clock::now() - t0;
  EXPECT_GE(elapsed, 200ms);
  EXPECT_LT(elapsed, 380ms);  // concurrent, not one after the other
}

TEST(FiberTest, SpawnLaterStartsOnlyAfterItsDelay) {
  auto t0 = steady_clock::now();
  bool ran = false;
  steady_clock::time_point started;
  auto f = fern::spawn_later(50ms, [&] {
    ran = true;
    started = steady_clock::now();
    return 7;
  });
  fern::sleep(10ms);
  EXPECT_FALSE(ran);
  EXPECT_FALSE(f.ready());
  EXPECT_EQ(f.get(), 7);
  EXPECT_GE(started - t0, 50ms);
}

TEST(FiberTest, SpawnLaterFibersStartInDelayOrder) {
  std::vector<int> order;
  auto a = fern::spawn_later(30ms, [&] { order.push_back(30); });
  auto b = fern::spawn_later(10ms, [&] { order.push_back(10); });
  auto c = fern::spawn_later(20ms, [&] { order.push_back(20); });
  EXPECT_TRUE(fern::joinall({a, b, c}));
  EXPECT_EQ(order, (std::vector<int>{10, 20, 30}));
}

TEST(FiberTest, KillBeforeSpawnLaterDelayCancelsIt) {
  std::size_t base = live_fibers();
  bool ran = false;
  auto f = fern::spawn_later(20ms, [&] { ran = true; });
  EXPECT_EQ(live_fibers(), base + 1);
  EXPECT_TRUE(f.kill());
  EXPECT_TRUE(f.ready());
  EXPECT_FALSE(f.successful());
  EXPECT_TRUE(is_fiber_exit(f.exception()));
  EXPECT_EQ(live_fibers(), base);
  fern::sleep(50ms);
  EXPECT_FALSE(ran);
}

// The spawn_later timer has fired (the fiber is on the ready queue) but it has not run yet when
// another fiber kills it: it must still never run, and be retired exactly once.
TEST(FiberTest, KillOfSpawnLaterFiberQueuedButNotStartedCancelsIt) {
  std::size_t base = live_fibers();
  bool ran = false;
  bool kill_result = false;
  fern::fiber<void> late;
  auto killer = fern::spawn([&] {
    fern::sleep(5ms);  // its timer fires in the same turn as late's, just before it
    kill_result = late.kill();
  });
  fern::yield();  // killer is now asleep
  late = fern::spawn_later(20ms, [&] { ran = true; });
  auto t0 = steady_clock::now();
  while (steady_clock::now() - t0 < 30ms) {
  }  // both deadlines pass while nothing can run
  EXPECT_TRUE(killer.join(1s));
  EXPECT_TRUE(kill_result);
  EXPECT_TRUE(late.ready());
  EXPECT_TRUE(is_fiber_exit(late.exception()));
  fern::sleep(1ms);
  EXPECT_FALSE(ran);
  EXPECT_EQ(live_fibers(), base);
}

// --- fiber<T> -------------------------------------------------------------------------------

TEST(FiberTest, GetReturnsTheValueEveryTime) {
  auto f = fern::spawn([] {
    fern::yield();
    return 42;
  });
  static_assert(std::is_same_v<decltype(f), fern::fiber<int>>);
  EXPECT_EQ(f.get(), 42);
  EXPECT_EQ(f.get(), 42);
  auto v = fern::spawn([] { fern::yield(); });
  static_assert(std::is_same_v<decltype(v.get()), void>);
  v.get();
  EXPECT_TRUE(v.successful());
}

TEST(FiberTest, GetReturnsReferenceToMoveOnlyValueThatLivesWithAnyHandle) {
  auto f = fern::spawn([] { return std::make_unique<int>(5); });
  static_assert(std::is_same_v<decltype(f.get()), std::unique_ptr<int>&>);
  std::unique_ptr<int>& p = f.get();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 5);
  auto copy = f;
  f = fern::fiber<std::unique_ptr<int>>();  // the copy keeps the value alive
  std::unique_ptr<int> taken = std::move(copy.get());
  ASSERT_NE(taken, nullptr);
  EXPECT_EQ(*taken, 5);
  EXPECT_EQ(copy.get(), nullptr);  // moved out through the reference
}

namespace {
struct custom_error : std::runtime_error {
  explicit custom_error(int c) : std::runtime_error("custom"), code(c) {}
  int code;
};
}  // namespace

TEST(FiberTest, GetRethrowsTheFibersExceptionWithItsType) {
  testing::internal::CaptureStderr();
  auto f = fern::spawn([]() -> int {
    fern::yield();
    throw custom_error(17);
  });
  EXPECT_THROW(f.get(), custom_error);
  try {
    f.get();
    ADD_FAILURE() << "get() did not throw";
  } catch (const custom_error& e) {
    EXPECT_EQ(e.code, 17);
    EXPECT_STREQ(e.what(), "custom");
  }
  auto g = fern::spawn([] { throw 42; });
  EXPECT_THROW(g.get(), int);
  testing::internal::GetCapturedStderr();
  EXPECT_FALSE(f.successful());
  EXPECT_TRUE(f.ready());
}

TEST(FiberTest, GetWithTimeoutThrowsTimeoutErrorWhileNotDone) {
  fern::event ev;
  auto f = fern::spawn([&] {
    ev.wait();
    return 3;
  });
  try {
    f.get(10ms);
    ADD_FAILURE() << "get(10ms) returned";
  } catch (const fern::timeout_error& e) {
    EXPECT_EQ(e.source(), nullptr);  // the call's own timeout, not a fern::timeout scope
  }
  EXPECT_FALSE(f.ready());
  ev.set();
  EXPECT_EQ(f.get(1s), 3);
}

TEST(FiberTest, JoinWithTimeoutReportsWhetherTheFiberFinished) {
  fern::event ev;
  auto f = fern::spawn([&] { ev.wait(); });
  EXPECT_FALSE(f.join(10ms));
  EXPECT_FALSE(f.ready());
  ev.set();
  EXPECT_TRUE(f.join(1s));
  EXPECT_TRUE(f.join(0ns));  // already done: true at once
  EXPECT_TRUE(f.join());
}

TEST(FiberTest, StatusAccessorsFollowTheFibersLife) {
  auto f = fern::spawn([] {
    fern::yield();
    return 1;
  });
  EXPECT_FALSE(f.ready());
  EXPECT_FALSE(f.successful());
  EXPECT_EQ(f.exception(), nullptr);
  EXPECT_EQ(f.name(), "fiber-" + std::to_string(f.id()));
  EXPECT_TRUE(f.join());
  EXPECT_TRUE(f.ready());
  EXPECT_TRUE(f.successful());
  EXPECT_EQ(f.exception(), nullptr);

  testing::internal::CaptureStderr();
  auto bad = fern::spawn([] { throw std::runtime_error("x"); });
  bad.join();
  testing::internal::GetCapturedStderr();
  EXPECT_TRUE(bad.ready());
  EXPECT_FALSE(bad.successful());
  EXPECT_NE(bad.exception(), nullptr);
  EXPECT_NE(bad.id(), f.id());
}

TEST(FiberTest, SpawnOptionsNameIsReturnedByName) {
  auto f = fern::spawn(
      fern::spawn_options{.name = "worker-7"}, [](int x) { return x; }, 4);
  EXPECT_EQ(f.name(), "worker-7");
  EXPECT_EQ(f.get(), 4);
  EXPECT_EQ(f.name(), "worker-7");  // still there once finished
  auto g = fern::spawn(fern::spawn_options{}, [] {});
  EXPECT_EQ(g.name(), "fiber-" + std::to_string(g.id()));
  g.join();
}

TEST(FiberTest, SpawnOptionsStackSizeGivesAUsableStack) {
  // 64 KiB requested: a 40 KiB frame fits.
  auto f = fern::spawn(fern::spawn_options{.stack_size = 64 * 1024}, [] {
    volatile char buf[40 * 1024];
    for (std::size_t i = 0; i < sizeof buf; i += 512) buf[i] = static_cast<char>(1 + i / 512);
    fern::yield();
    int sum = 0;
    for (std::size_t i = 0; i < sizeof buf; i += 512)
      sum += buf[i] == static_cast<char>(1 + i / 512);
    return sum;
  });
  EXPECT_EQ(f.get(), 80);
}

TEST(FiberTest, LinkRunsCallbackInANewFiberAfterCompletion) {
  std::vector<std::string> log;
  fern::event linked_done;
  fern::any_fiber cb_fiber;
  bool was_ready = false;
  int value = 0;
  auto f = fern::spawn([&] {
    fern::yield();
    log.push_back("body");
    return 5;
  });
  f.link([&](fern::fiber<int> h) {
    log.push_back("link");
    was_ready = h.ready();
    value = h.get();
    cb_fiber = fern::current();
    fern::sleep(1ms);  // the callback may block
    linked_done.set();
  });
  EXPECT_TRUE(log.empty());
  EXPECT_TRUE(linked_done.wait(1s));
  EXPECT_EQ(log, (std::vector<std::string>{"body", "link"}));
  EXPECT_TRUE(was_ready);
  EXPECT_EQ(value, 5);
  ASSERT_TRUE(cb_fiber.valid());
  EXPECT_FALSE(cb_fiber == f);
  EXPECT_FALSE(cb_fiber == fern::current());
}

TEST(FiberTest, LinkOnFinishedFiberSchedulesCallbackAtOnce) {
  auto f = fern::spawn([] {});
  f.join();
  bool ran = false;
  fern::any_fiber seen;
  fern::any_fiber(f).link([&](fern::any_fiber h) {
    ran = true;
    seen = h;
  });
  EXPECT_FALSE(ran);  // in a new fiber: runs when we block
  fern::yield();
  EXPECT_TRUE(ran);
  EXPECT_TRUE(seen == f);
}

TEST(FiberTest, FiberWhoseLastHandleIsDroppedRunsToCompletion) {
  std::size_t base = live_fibers();
  fern::event done;
  int steps = 0;
  auto token = std::make_shared<int>(0);
  {
    auto f = fern::spawn([&, token] {
      for (int i = 0; i < 3; ++i) {
        ++steps;
        fern::yield();
      }
      done.set();
    });
  }
  EXPECT_EQ(live_fibers(), base + 1);
  EXPECT_TRUE(done.wait(1s));
  EXPECT_EQ(steps, 3);
  EXPECT_EQ(live_fibers(), base);
  EXPECT_EQ(token.use_count(), 1);  // the fiber and its callable are gone
}

TEST(FiberTest, JoiningItselfThrowsLogicError) {
  fern::event ev;
  auto helper = fern::spawn([&] { ev.wait(); });
  auto f = fern::spawn([&] {
    int thrown = 0;
    try {
      fern::current().join();
    } catch (const std::logic_error&) {
      ++thrown;
    }
    try {
      fern::joinall({fern::current(), fern::any_fiber(helper)});
    } catch (const std::logic_error&) {
      ++thrown;
    }
    return thrown;
  });
  EXPECT_EQ(f.get(), 2);
  EXPECT_THROW(fern::current().join(), std::logic_error);  // the root too
  ev.set();
  helper.join();
}

TEST(FiberTest, AnyFiberConvertsFromEveryTypedFiber) {
  fern::fiber<int> fi = fern::spawn([] { return 1; });
  fern::fiber<void> fv = fern::spawn([] {});
  fern::fiber<std::string> fs = fern::spawn([] { return std::string("s"); });
  fern::any_fiber a = fi;
  EXPECT_TRUE(a.valid());
  EXPECT_TRUE(static_cast<bool>(a));
  EXPECT_TRUE(a == fi);
  EXPECT_FALSE(a == fv);
  EXPECT_EQ(a.id(), fi.id());
  std::vector<fern::any_fiber> all{fi, fv, fs};
  EXPECT_TRUE(fern::joinall(all));
  for (const auto& f : all) EXPECT_TRUE(f.successful());

  fern::any_fiber empty;
  EXPECT_FALSE(empty.valid());
  EXPECT_FALSE(empty.ready());
  EXPECT_EQ(empty.exception(), nullptr);
  EXPECT_THROW(empty.name(), std::logic_error);
  EXPECT_THROW(empty.join(), std::logic_error);
  EXPECT_THROW(empty.kill(), std::logic_error);
}

TEST(FiberTest, CurrentNamesTheRunningFiber) {
  auto root = fern::current();
  ASSERT_TRUE(root.valid());
  EXPECT_EQ(root.name(), "main");
  EXPECT_FALSE(root.ready());
  fern::any_fiber inside;
  auto f = fern::spawn([&] { inside = fern::current(); });
  f.join();
  EXPECT_TRUE(inside == f);
  EXPECT_FALSE(inside == root);
  EXPECT_TRUE(fern::current() == root);
}

// --- unhandled exceptions ---------------------------------------------------------------------

TEST(FiberTest, UnhandledExceptionEndsOnlyItsFiberAndIsReportedOnceWithItsName) {
  testing::internal::CaptureStderr();
  int ticks = 0;
  auto other = fern::spawn([&] {
    for (int i = 0; i < 5; ++i) {
      ++ticks;
      fern::yield();
    }
    return 1;
  });
  auto bad = fern::spawn(fern::spawn_options{.name = "exploder"}, [] {
    fern::yield();
    throw std::runtime_error("kaboom-123");
  });
  EXPECT_TRUE(fern::joinall({other, bad}));
  auto later = fern::spawn([] {
    fern::yield();
    return 2;
  });
  EXPECT_EQ(later.get(), 2);  // the hub keeps running fibers
  EXPECT_THROW(bad.get(), std::runtime_error);
  EXPECT_THROW(bad.get(), std::runtime_error);
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(other.get(), 1);
  EXPECT_EQ(ticks, 5);
  EXPECT_NE(err.find("\"exploder\""), std::string::npos) << err;
  EXPECT_NE(err.find("kaboom-123"), std::string::npos) << err;
  EXPECT_NE(err.find("std::runtime_error"), std::string::npos) << err;
  EXPECT_EQ(count_of(err, "kaboom-123"), 1u) << err;
}

TEST(FiberTest, UnhandledNonStdExceptionIsReportedWithItsType) {
  testing::internal::CaptureStderr();
  auto bad = fern::spawn(fern::spawn_options{.name = "int-thrower"}, [] { throw 7; });
  bad.join();
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("\"int-thrower\""), std::string::npos) << err;
  EXPECT_NE(err.find("failed with int"), std::string::npos) << err;
  EXPECT_THROW(bad.get(), int);
}

TEST(FiberTest, KilledFiberIsNotReported) {
  fern::event ev;
  testing::internal::CaptureStderr();
  auto victim = fern::spawn(fern::spawn_options{.name = "victim"}, [&] { ev.wait(); });
  fern::yield();
  EXPECT_TRUE(victim.kill());
  auto self_killer =
      fern::spawn(fern::spawn_options{.name = "self-killer"}, [] { fern::current().kill(); });
  self_killer.join();
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.find("victim"), std::string::npos) << err;
  EXPECT_EQ(err.find("self-killer"), std::string::npos) << err;
  EXPECT_TRUE(is_fiber_exit(victim.exception()));
  EXPECT_TRUE(is_fiber_exit(self_killer.exception()));
}

// --- kill -------------------------------------------------------------------------------------

TEST(FiberTest, KillWakesSleepingFiberWithFiberExit) {
  bool saw_exit = false;
  bool after = false;
  auto f = fern::spawn([&] {
    try {
      fern::sleep(10s);
    } catch (const fern::fiber_exit&) {
      saw_exit = true;
      throw;
    }
    after = true;
  });
  fern::yield();
  auto t0 = steady_clock::now();
  EXPECT_TRUE(f.kill());
  EXPECT_LT(steady_clock::now() - t0, 5s);
  EXPECT_TRUE(saw_exit);
  EXPECT_FALSE(after);
  EXPECT_TRUE(f.ready());
  EXPECT_FALSE(f.successful());
  EXPECT_TRUE(is_fiber_exit(f.exception()));
  EXPECT_THROW(f.get(), fern::fiber_exit);
}

TEST(FiberTest, KillWakesEventWaiterAndRunsDestructorsOnItsStack) {
  fern::event ev;
  bool destroyed = false;
  bool saw_exit = false;
  bool after = false;
  auto f = fern::spawn([&] {
    set_on_destroy guard{&destroyed};
    try {
      ev.wait();
    } catch (const fern::fiber_exit&) {
      saw_exit = true;
      throw;
    }
    after = true;
  });
  fern::yield();
  EXPECT_FALSE(destroyed);
  EXPECT_TRUE(f.kill());
  EXPECT_TRUE(saw_exit);
  EXPECT_TRUE(destroyed);
  EXPECT_FALSE(after);
  EXPECT_TRUE(is_fiber_exit(f.exception()));
  ev.set();  // nobody waits any more
}

TEST(FiberTest, FiberExitIsNotCaughtByStdExceptionHandlers) {
  fern::event ev;
  bool swallowed = false;
  auto f = fern::spawn([&] {
    try {
      ev.wait();
    } catch (const std::exception&) {
      swallowed = true;
    }
  });
  fern::yield();
  EXPECT_TRUE(f.kill());
  EXPECT_FALSE(swallowed);
  EXPECT_TRUE(is_fiber_exit(f.exception()));
}

TEST(FiberTest, KillOfNeverStartedFiberMeansItNeverRuns) {
  std::size_t base = live_fibers();
  bool ran = false;
  auto token = std::make_shared<int>(0);
  auto f = fern::spawn([&ran, token] { ran = true; });
  EXPECT_EQ(token.use_count(), 2);
  EXPECT_TRUE(f.kill());
  EXPECT_TRUE(f.ready());
  EXPECT_FALSE(f.successful());
  EXPECT_TRUE(is_fiber_exit(f.exception()));
  EXPECT_EQ(token.use_count(), 1);  // its callable was destroyed
  EXPECT_EQ(live_fibers(), base);
  fern::yield();
  fern::sleep(1ms);
  EXPECT_FALSE(ran);
  EXPECT_THROW(f.get(), fern::fiber_exit);
}

TEST(FiberTest, NonBlockingKillReturnsAtOnceAndTheFiberDiesAtItsNextTurn) {
  int iterations = 0;
  auto spinner = fern::spawn([&] {
    for (;;) {
      ++iterations;
      fern::yield();
    }
  });
  fern::yield();
  fern::yield();
  int seen = iterations;
  EXPECT_GT(seen, 0);
  EXPECT_FALSE(spinner.kill({.block = false}));
  EXPECT_FALSE(spinner.ready());
  EXPECT_TRUE(spinner.join(1s));
  EXPECT_EQ(iterations, seen);  // it never ran another iteration
  EXPECT_TRUE(is_fiber_exit(spinner.exception()));

  fern::event ev;
  auto waiter = fern::spawn([&] { ev.wait(); });
  fern::yield();
  EXPECT_FALSE(waiter.kill({.block = false}));
  EXPECT_FALSE(waiter.ready());
  fern::yield();
  EXPECT_TRUE(waiter.ready());
  EXPECT_TRUE(is_fiber_exit(waiter.exception()));
}

TEST(FiberTest, KillWithTimeoutReturnsFalseWhileTheFiberIsStillCleaningUp) {
  fern::event ev;
  bool cleaned = false;
  auto f = fern::spawn([&] {
    try {
      ev.wait();
    } catch (const fern::fiber_exit&) {
      fern::sleep(100ms);  // slow cleanup, blocking inside the handler
      cleaned = true;
      throw;
    }
  });
  fern::yield();
  EXPECT_FALSE(f.kill({.timeout = 10ms}));
  EXPECT_FALSE(f.ready());
  EXPECT_FALSE(cleaned);
  EXPECT_TRUE(f.join(5s));
  EXPECT_TRUE(cleaned);
  EXPECT_TRUE(is_fiber_exit(f.exception()));
}

TEST(FiberTest, KillingAFinishedFiberIsANoOpReturningTrue) {
  auto f = fern::spawn([] { return 3; });
  EXPECT_EQ(f.get(), 3);
  EXPECT_TRUE(f.kill());
  EXPECT_TRUE(f.kill({.block = false}));
  EXPECT_TRUE(f.successful());
  EXPECT_EQ(f.exception(), nullptr);
  EXPECT_EQ(f.get(), 3);
}

TEST(FiberTest, KillingTheCurrentFiberThrowsFiberExitAtOnce) {
  bool destroyed = false;
  bool after = false;
  bool caught_here = false;
  auto f = fern::spawn([&] {
    set_on_destroy guard{&destroyed};
    try {
      fern::current().kill();
    } catch (const fern::fiber_exit&) {
      caught_here = true;
      throw;
    }
    after = true;
  });
  EXPECT_TRUE(f.join());
  EXPECT_TRUE(caught_here);
  EXPECT_FALSE(after);
  EXPECT_TRUE(destroyed);
  EXPECT_TRUE(is_fiber_exit(f.exception()));
}

TEST(FiberTest, KillingTheRootThrowsLogicError) {
  auto root = fern::current();
  EXPECT_THROW(root.kill(), std::logic_error);
  auto f = fern::spawn([root] {
    try {
      root.kill();
    } catch (const std::logic_error&) {
      return true;
    }
    return false;
  });
  EXPECT_TRUE(f.get());
}

TEST(FiberTest, FiberThatCatchesFiberExitCanContinue) {
  fern::event ev;
  auto f = fern::spawn([&] {
    int caught = 0;
    try {
      ev.wait();
    } catch (const fern::fiber_exit&) {
      ++caught;
    }
    fern::sleep(1ms);  // blocking points work again
    fern::yield();
    return caught;
  });
  fern::yield();
  EXPECT_TRUE(f.kill());
  EXPECT_TRUE(f.successful());  // it returned: not killed after all
  EXPECT_EQ(f.get(), 1);
}

TEST(FiberTest, SecondKillEndsAFiberThatSwallowedTheFirst) {
  fern::event ev;
  int caught = 0;
  auto f = fern::spawn([&] {
    try {
      ev.wait();
    } catch (const fern::fiber_exit&) {
      ++caught;
    }
    ev.wait();
  });
  fern::yield();
  EXPECT_FALSE(f.kill({.timeout = 20ms}));  // swallowed: waits again
  EXPECT_EQ(caught, 1);
  EXPECT_FALSE(f.ready());
  EXPECT_TRUE(f.kill());
  EXPECT_EQ(caught, 1);
  EXPECT_TRUE(is_fiber_exit(f.exception()));
}

TEST(FiberTest, KillAfterWakeUpTakesEffectAtTheNextBlockingPoint) {
  fern::event ev;
  bool woke = false;
  bool after = false;
  auto f = fern::spawn([&] {
    woke = ev.wait();
    fern::sleep(10s);
    after = true;
  });
  fern::yield();
  ev.set();  // f is ready (notified) but has not run yet
  EXPECT_TRUE(f.kill());
  EXPECT_TRUE(woke);  // the first wake-up won
  EXPECT_FALSE(after);
  EXPECT_TRUE(is_fiber_exit(f.exception()));
}

TEST(FiberTest, KillallKillsEveryFiberAndSkipsFinishedOnes) {
  fern::event ev;
  bool destroyed[3] = {false, false, false};
  std::vector<fern::fiber<void>> fs;
  for (int i = 0; i < 3; ++i)
    fs.push_back(fern::spawn([&ev, &destroyed, i] {
      set_on_destroy guard{&destroyed[i]};
      ev.wait();
    }));
  fs.push_back(fern::spawn([] {}));
  fern::yield();
  EXPECT_TRUE(fs[3].successful());
  EXPECT_TRUE(fern::killall(fs));
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(fs[i].ready());
    EXPECT_TRUE(is_fiber_exit(fs[i].exception()));
    EXPECT_TRUE(destroyed[i]);
  }
  EXPECT_TRUE(fs[3].successful());
}

TEST(FiberTest, NonBlockingKillallReturnsBeforeTheFibersDie) {
  fern::event ev;
  auto a = fern::spawn([&] { ev.wait(); });
  auto b = fern::spawn([&] { fern::sleep(10s); });
  fern::yield();
  EXPECT_FALSE(fern::killall({a, b}, {.block = false}));
  EXPECT_FALSE(a.ready());
  EXPECT_TRUE(fern::joinall({a, b}, 1s));
  EXPECT_TRUE(is_fiber_exit(a.exception()));
  EXPECT_TRUE(is_fiber_exit(b.exception()));
}

// --- joinall ----------------------------------------------------------------------------------

TEST(FiberTest, JoinallReturnsTrueOnceAllFinished) {
  std::vector<fern::fiber<int>> fs;
  for (int i = 0; i < 4; ++i)
    fs.push_back(fern::spawn([i] {
      fern::sleep(std::chrono::milliseconds(i));
      return i;
    }));
  EXPECT_TRUE(fern::joinall(fs));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(fs[i].get(), i);
  EXPECT_TRUE(fern::joinall(fs));  // all done: at once
  EXPECT_TRUE(fern::joinall(std::vector<fern::any_fiber>{}));
}

TEST(FiberTest, JoinallReturnsFalseWhenTheTimeoutPasses) {
  fern::event ev;
  auto quick = fern::spawn([] { fern::yield(); });
  auto stuck = fern::spawn([&] { ev.wait(); });
  EXPECT_FALSE(fern::joinall({quick, stuck}, 20ms));
  EXPECT_TRUE(quick.ready());
  EXPECT_FALSE(stuck.ready());
  ev.set();
  EXPECT_TRUE(fern::joinall({quick, stuck}, 1s));
}

TEST(FiberTest, JoinallRaiseErrorRethrowsFirstFailureWithoutWaitingForTheRest) {
  testing::internal::CaptureStderr();
  fern::event ev;
  auto slow_fail = fern::spawn([] {
    fern::sleep(30ms);
    throw std::runtime_error("slow");
  });
  auto fast_fail = fern::spawn([] {
    fern::sleep(5ms);
    throw std::logic_error("fast");
  });
  auto never = fern::spawn([&] { ev.wait(); });
  try {
    fern::joinall({slow_fail, fast_fail, never}, std::nullopt, true);
    ADD_FAILURE() << "joinall did not throw";
  } catch (const std::logic_error& e) {
    EXPECT_STREQ(e.what(), "fast");
  }
  EXPECT_TRUE(fast_fail.ready());
  EXPECT_FALSE(never.ready());  // it did not wait for the rest
  ev.set();
  EXPECT_TRUE(fern::joinall({slow_fail, fast_fail, never}));
  testing::internal::GetCapturedStderr();
}

TEST(FiberTest, JoinallRaiseErrorRethrowsAnAlreadyFinishedFailureAtOnce) {
  testing::internal::CaptureStderr();
  auto bad = fern::spawn([] { throw std::runtime_error("early"); });
  bad.join();
  testing::internal::GetCapturedStderr();
  fern::event ev;
  auto stuck = fern::spawn([&] { ev.wait(); });
  EXPECT_THROW(fern::joinall({stuck, bad}, std::nullopt, true), std::runtime_error);
  EXPECT_FALSE(stuck.ready());
  EXPECT_FALSE(fern::joinall({stuck, bad}, 0ns));
  ev.set();
  stuck.join();
}

TEST(FiberTest, JoinallRaiseErrorDoesNotTreatKilledFibersAsFailures) {
  fern::event ev;
  auto killed_early = fern::spawn([&] { ev.wait(); });
  auto killed_later = fern::spawn([&] { ev.wait(); });
  auto ok = fern::spawn([] {
    fern::sleep(5ms);
    return 1;
  });
  fern::yield();
  killed_early.kill();
  auto killer = fern::spawn([&] {
    fern::yield();
    killed_later.kill();
  });
  EXPECT_TRUE(fern::joinall({killed_early, killed_later, ok, killer}, std::nullopt, true));
  EXPECT_TRUE(is_fiber_exit(killed_later.exception()));
  EXPECT_EQ(ok.get(), 1);
}

TEST(FiberTest, JoinallAcceptsAnInitializerListOfMixedFiberTypes) {
  fern::fiber<int> fi = fern::spawn([] {
    fern::sleep(2ms);
    return 1;
  });
  fern::fiber<void> fv = fern::spawn([] { fern::yield(); });
  fern::fiber<std::string> fs = fern::spawn([] { return std::string("x"); });
  EXPECT_TRUE(fern::joinall({fi, fv, fs}, 1s));
  EXPECT_EQ(fi.get(), 1);
  EXPECT_EQ(fs.get(), "x");
}

// --- wait_any / iwait ---------------------------------------------------------------------

TEST(FiberTest, IwaitYieldsFibersInCompletionOrder) {
  auto sleeper = [](int ms) {
    fern::sleep(std::chrono::milliseconds(ms));
    return ms;
  };
  std::vector<fern::fiber<int>> fs{fern::spawn(sleeper, 30), fern::spawn(sleeper, 10),
                                   fern::spawn(sleeper, 20)};
  std::vector<fern::any_fiber> order;
  for (fern::any_fiber f : fern::iwait(fs)) {
    EXPECT_TRUE(f.ready());
    order.push_back(f);
  }
  ASSERT_EQ(order.size(), 3u);
  EXPECT_TRUE(order[0] == fs[1]);
  EXPECT_TRUE(order[1] == fs[2]);
  EXPECT_TRUE(order[2] == fs[0]);
}

TEST(FiberTest, IwaitNextIndexGivesInputIndicesInCompletionOrder) {
  auto sleeper = [](int ms) { fern::sleep(std::chrono::milliseconds(ms)); };
  auto a = fern::spawn(sleeper, 25);
  auto b = fern::spawn(sleeper, 5);
  auto c = fern::spawn(sleeper, 15);
  fern::iwait w({a, b, c});
  EXPECT_EQ(w.next_index(), std::optional<std::size_t>(1));
  EXPECT_EQ(w.next_index(), std::optional<std::size_t>(2));
  EXPECT_EQ(w.next_index(), std::optional<std::size_t>(0));
  EXPECT_EQ(w.next_index(), std::nullopt);
  EXPECT_FALSE(w.next().valid());
}

TEST(FiberTest, WaitAnyReturnsTheFirstToFinish) {
  auto sleeper = [](int ms) { fern::sleep(std::chrono::milliseconds(ms)); };
  auto a = fern::spawn(sleeper, 30);
  auto b = fern::spawn(sleeper, 5);
  EXPECT_EQ(fern::wait_any({a, b}), std::optional<std::size_t>(1));
  EXPECT_TRUE(b.ready());
  EXPECT_FALSE(a.ready());
  EXPECT_TRUE(a.join());
}

TEST(FiberTest, IwaitTimeoutStopsIteration) {
  fern::event ev;
  auto stuck = fern::spawn([&] { ev.wait(); });
  auto quick = fern::spawn([] { fern::sleep(5ms); });
  {
    fern::iwait w({stuck, quick}, 200ms);
    EXPECT_EQ(w.next_index(), std::optional<std::size_t>(1));
    EXPECT_EQ(w.next_index(), std::nullopt);  // the timeout passed
    EXPECT_EQ(w.next_index(), std::nullopt);
  }  // destroyed while stuck is still running: unhooks itself
  EXPECT_EQ(fern::wait_any({stuck}, 10ms), std::nullopt);
  EXPECT_FALSE(stuck.ready());
  ev.set();
  EXPECT_TRUE(stuck.join());
}

TEST(FiberTest, IwaitReturnsAlreadyFinishedFibersAtOnce) {
  auto a = fern::spawn([] {});
  auto b = fern::spawn([] { return 1; });
  EXPECT_TRUE(fern::joinall({a, b}));
  fern::event ev;
  auto stuck = fern::spawn([&] { ev.wait(); });
  bool probe_ran = false;
  auto probe = fern::spawn([&] { probe_ran = true; });
  fern::iwait w({stuck, b, a}, 20ms);
  EXPECT_EQ(w.next_index(), std::optional<std::size_t>(1));
  EXPECT_EQ(w.next_index(), std::optional<std::size_t>(2));
  EXPECT_FALSE(probe_ran);  // no switch happened for those
  EXPECT_EQ(fern::wait_any({stuck, a}), std::optional<std::size_t>(1));
  EXPECT_FALSE(probe_ran);
  EXPECT_EQ(w.next_index(), std::nullopt);  // stuck never finishes within 20 ms
  EXPECT_TRUE(probe_ran);
  ev.set();
  EXPECT_TRUE(fern::joinall({stuck, probe}));
}

// --- exceptions across switches ----------------------------------------------------------------

TEST(FiberTest, CaughtExceptionSurvivesSwitchesToFibersHandlingTheirOwn) {
  std::vector<std::string> log;
  auto a = fern::spawn([&] {
    try {
      throw std::runtime_error("A");
    } catch (...) {
      fern::yield();  // b throws and catches its own, and yields inside its handler
      EXPECT_EQ(std::uncaught_exceptions(), 0);
      try {
        std::rethrow_exception(std::current_exception());
      } catch (const std::runtime_error& e) {
        log.push_back(std::string("A current ") + e.what());
      }
      fern::yield();
      try {
        throw;
      } catch (const std::runtime_error& e) {
        log.push_back(std::string("A rethrow ") + e.what());
      }
    }
    if (std::current_exception() != nullptr) log.push_back("A leftover exception");
  });
  auto b = fern::spawn([&] {
    try {
      throw std::logic_error("B");
    } catch (...) {
      fern::yield();
      try {
        throw;
      } catch (const std::logic_error& e) {
        log.push_back(std::string("B rethrow ") + e.what());
      }
      fern::yield();
      try {
        std::rethrow_exception(std::current_exception());
      } catch (const std::logic_error& e) {
        log.push_back(std::string("B current ") + e.what());
      }
    }
    if (std::current_exception() != nullptr) log.push_back("B leftover exception");
  });
  // The root joins from inside its own handler: its exception must survive too.
  try {
    throw std::out_of_range("root");
  } catch (...) {
    EXPECT_TRUE(fern::joinall({a, b}));
    try {
      throw;
    } catch (const std::out_of_range& e) {
      log.push_back(std::string("root rethrow ") + e.what());
    }
  }
  EXPECT_EQ(std::current_exception(), nullptr);
  EXPECT_EQ(log, (std::vector<std::string>{"A current A", "B rethrow B", "A rethrow A",
                                           "B current B", "root rethrow root"}));
}

namespace {
struct yields_in_destructor {
  int* before;
  int* after;
  ~yields_in_destructor() {
    *before = std::uncaught_exceptions();
    fern::yield();
    *after = std::uncaught_exceptions();
  }
};
}  // namespace

TEST(FiberTest, UncaughtExceptionsCountIsPerFiber) {
  int before = -1;
  int after = -1;
  std::vector<int> seen_by_other;
  auto unwinder = fern::spawn([&] {
    try {
      yields_in_destructor d{&before, &after};
      throw 1;
    } catch (int) {
    }
  });
  auto other = fern::spawn([&] {
    for (int i = 0; i < 3; ++i) {
      seen_by_other.push_back(std::uncaught_exceptions());
      fern::yield();
    }
  });
  EXPECT_TRUE(fern::joinall({unwinder, other}));
  EXPECT_EQ(before, 1);
  EXPECT_EQ(after, 1);
  EXPECT_EQ(seen_by_other, (std::vector<int>{0, 0, 0}));
  EXPECT_EQ(std::uncaught_exceptions(), 0);
  EXPECT_TRUE(unwinder.successful());
}

namespace {
struct count_on_destroy {
  int* n;
  ~count_on_destroy() { ++*n; }
};

// A few hundred bytes per frame, touched so ASan checks them; yields now and then so the switch
// happens with a deep stack.
[[gnu::noinline]] int deep(int n, int* destroyed, bool do_throw) {
  volatile char buf[300];
  for (std::size_t i = 0; i < sizeof buf; ++i) buf[i] = static_cast<char>(n + i);
  count_on_destroy guard{destroyed};
  if (n == 0) {
    fern::yield();
    if (do_throw) throw std::runtime_error("bottom");
    return buf[7];
  }
  if (n % 500 == 0) fern::yield();
  return deep(n - 1, destroyed, do_throw) + buf[n % sizeof buf];
}
}  // namespace

TEST(FiberTest, DeepRecursionUnwindsCleanlyAcrossSwitches) {
  constexpr int depth = 2000;
  const fern::spawn_options big{.stack_size = 16 * 1024 * 1024};
  testing::internal::CaptureStderr();
  for (int round = 0; round < 2; ++round) {
    int destroyed_a = 0;
    int destroyed_b = 0;
    auto a = fern::spawn(big, [&] {
      try {
        deep(depth, &destroyed_a, true);
      } catch (const std::runtime_error& e) {
        return std::string(e.what());
      }
      return std::string("no throw");
    });
    auto b = fern::spawn(big, [&] {
      try {
        deep(depth, &destroyed_b, true);
      } catch (const std::runtime_error& e) {
        return std::string(e.what());
      }
      return std::string("no throw");
    });
    EXPECT_EQ(a.get(), "bottom");
    EXPECT_EQ(b.get(), "bottom");
    EXPECT_EQ(destroyed_a, depth + 1);
    EXPECT_EQ(destroyed_b, depth + 1);
    // The same (pooled) stacks again, without throwing: no stale poisoning from the unwinding.
    int destroyed_c = 0;
    auto c = fern::spawn(big, [&] { return deep(depth, &destroyed_c, false); });
    c.join();
    EXPECT_TRUE(c.successful());
    EXPECT_EQ(destroyed_c, depth + 1);
  }
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.find("AddressSanitizer"), std::string::npos) << err;
  EXPECT_EQ(err.find("WARNING"), std::string::npos) << err;
}

// --- many fibers ----------------------------------------------------------------------------

TEST(FiberTest, HundredThousandFibersWaitOnOneEvent) {
  constexpr int n = 100000;
  std::size_t base = live_fibers();
  fern::event go;
  int waiting = 0;
  int finished = 0;
  std::vector<fern::fiber<void>> fs;
  fs.reserve(n);
  for (int i = 0; i < n; ++i)
    fs.push_back(fern::spawn([&] {
      ++waiting;
      go.wait();
      ++finished;
    }));
  EXPECT_EQ(live_fibers(), base + n);
  fern::yield();  // every fiber runs once and parks on the event
  EXPECT_EQ(waiting, n);
  EXPECT_EQ(finished, 0);
  go.set();
  EXPECT_TRUE(fern::joinall(fs));
  EXPECT_EQ(finished, n);
  EXPECT_EQ(live_fibers(), base);
}

TEST(FiberTest, HundredThousandFibersSleepAtOnce) {
  constexpr int n = 100000;
  int asleep = 0;
  int woke = 0;
  for (int i = 0; i < n; ++i)
    fern::spawn(fern::spawn_options{.stack_size = 64 * 1024}, [&, i] {
      ++asleep;
      fern::sleep(std::chrono::milliseconds(20 + i % 30));
      --asleep;
      ++woke;
    });
  std::size_t base = live_fibers();
  EXPECT_GE(base, static_cast<std::size_t>(n));
  // The root queues behind all of them: each has run once and gone to sleep before it resumes
  // (a sleeper whose timer already fired is queued behind the root, not yet running).
  fern::yield();
  EXPECT_EQ(asleep, n);
  EXPECT_EQ(woke, 0);
  while (woke < n) fern::sleep(5ms);
  EXPECT_EQ(woke, n);
  EXPECT_EQ(asleep, 0);
  EXPECT_EQ(live_fibers(), base - n);
}
