// fern::semaphore and fern::bounded_semaphore: counting, the no-switch fast path, FIFO hand-off
// to the longest waiter (a late arriver cannot overtake), timeouts, the enclosing fern::timeout
// scope and kill() leaving no unit lost or granted twice, loop_exit in the root, and
// bounded_semaphore's over-release check.
#include <gtest/gtest.h>
#include <fern/fern.hpp>

#include <chrono>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace std::chrono_literals;

using fern_test::ended_by_kill;
using fern_test::log_t;

namespace {

TEST(SemaphoreTest, CountsUnitsWithTryAcquireAndRelease) {
  fern::semaphore s(2);
  EXPECT_EQ(s.value(), 2u);
  EXPECT_FALSE(s.locked());
  EXPECT_TRUE(s.try_acquire());
  EXPECT_EQ(s.value(), 1u);
  EXPECT_TRUE(s.acquire());
  EXPECT_EQ(s.value(), 0u);
  EXPECT_TRUE(s.locked());
  EXPECT_FALSE(s.try_acquire());
  EXPECT_EQ(s.value(), 0u);
  s.release();
  s.release();
  s.release();  // a plain semaphore may grow past its initial value
  EXPECT_EQ(s.value(), 3u);
  EXPECT_FALSE(s.has_waiters());
}

TEST(SemaphoreTest, AcquireWithAFreeUnitDoesNotSwitch) {
  fern::semaphore s(1);
  log_t log;
  auto other = fern::spawn([&] { log.push_back("other"); });
  EXPECT_TRUE(s.acquire());
  log.push_back("acquired");
  other.join();
  EXPECT_EQ(log, (log_t{"acquired", "other"}));
  EXPECT_EQ(s.value(), 0u);
}

TEST(SemaphoreTest, ReleaseHandsUnitsToWaitersInFifoOrder) {
  fern::semaphore s(0);
  log_t log;
  std::vector<fern::fiber<void>> ws;
  for (int i = 0; i < 3; ++i)
    ws.push_back(fern::spawn([&, i] {
      EXPECT_TRUE(s.acquire());
      log.push_back("acquired " + std::to_string(i));
    }));
  fern::yield();
  EXPECT_TRUE(s.has_waiters());
  for (int i = 0; i < 3; ++i) {
    log.push_back("release");
    s.release();
    EXPECT_EQ(s.value(), 0u);  // handed over, not counted
    fern::yield();
  }
  EXPECT_TRUE(fern::joinall(ws));
  EXPECT_EQ(log,
            (log_t{"release", "acquired 0", "release", "acquired 1", "release", "acquired 2"}));
  EXPECT_FALSE(s.has_waiters());
}

TEST(SemaphoreTest, LateArriverCannotOvertakeAWokenWaiter) {
  fern::semaphore s(0);
  log_t log;
  auto first = fern::spawn([&] {
    EXPECT_TRUE(s.acquire());
    log.push_back("first acquired");
    fern::yield();
    log.push_back("first releases");
    s.release();
  });
  fern::yield();
  s.release();  // the unit now belongs to `first`, which has not run yet
  EXPECT_EQ(s.value(), 0u);
  EXPECT_FALSE(s.try_acquire());  // the root, arriving later, cannot take it
  auto late = fern::spawn([&] {
    EXPECT_TRUE(s.acquire());
    log.push_back("late acquired");
    s.release();
  });
  EXPECT_TRUE(fern::joinall({first, late}));
  EXPECT_EQ(log, (log_t{"first acquired", "first releases", "late acquired"}));
  EXPECT_EQ(s.value(), 1u);
}

TEST(SemaphoreTest, WorksWithLockGuardForMutualExclusion) {
  fern::semaphore s(1);
  log_t log;
  int inside = 0, max_inside = 0;
  std::vector<fern::fiber<void>> fs;
  for (int i = 0; i < 3; ++i)
    fs.push_back(fern::spawn([&, i] {
      std::lock_guard<fern::semaphore> g(s);
      max_inside = std::max(max_inside, ++inside);
      log.push_back("in " + std::to_string(i));
      fern::sleep(1ms);
      log.push_back("out " + std::to_string(i));
      --inside;
    }));
  EXPECT_TRUE(fern::joinall(fs));
  EXPECT_EQ(max_inside, 1);
  EXPECT_EQ(log, (log_t{"in 0", "out 0", "in 1", "out 1", "in 2", "out 2"}));
  EXPECT_EQ(s.value(), 1u);
}

TEST(SemaphoreTest, AcquireTimeoutReturnsFalseAndTakesNothing) {
  fern::semaphore s(0);
  log_t log;
  auto w = fern::spawn([&] { log.push_back(s.acquire(10ms) ? "acquired" : "timed out"); });
  w.join();  // it gives up first
  EXPECT_TRUE(w.ready());
  EXPECT_FALSE(s.has_waiters());
  s.release();  // nobody waits: the unit is counted, not handed to the departed waiter
  EXPECT_EQ(s.value(), 1u);
  EXPECT_EQ(log, (log_t{"timed out"}));
  EXPECT_TRUE(s.try_acquire());  // exactly one unit
  EXPECT_FALSE(s.acquire(0ns));
}

TEST(SemaphoreTest, EnclosingTimeoutScopeThrowsAndTheNextWaiterGetsTheUnit) {
  fern::semaphore s(0);
  log_t log;
  auto scoped = fern::spawn([&] {
    fern::timeout t(10ms);
    try {
      s.acquire();
      log.push_back("scoped acquired");
    } catch (const fern::timeout_error& e) {
      EXPECT_TRUE(e.is(t));
      log.push_back("scoped timeout_error");
    }
  });
  auto patient = fern::spawn([&] {
    EXPECT_TRUE(s.acquire());
    log.push_back("patient acquired");
  });
  scoped.join();  // it gives up first
  log.push_back("release");
  s.release();
  EXPECT_TRUE(fern::joinall({scoped, patient}));
  EXPECT_EQ(log, (log_t{"scoped timeout_error", "release", "patient acquired"}));
  EXPECT_EQ(s.value(), 0u);
  EXPECT_FALSE(s.has_waiters());
}

TEST(SemaphoreTest, KilledWaiterLeavesAndReleaseGoesToTheNextWaiter) {
  fern::semaphore s(0);
  log_t log;
  auto victim = fern::spawn([&] {
    try {
      s.acquire();
      log.push_back("victim acquired");
    } catch (const fern::fiber_exit&) {
      log.push_back("victim fiber_exit at acquire");
      throw;
    }
  });
  auto next = fern::spawn([&] {
    EXPECT_TRUE(s.acquire());
    log.push_back("next acquired");
  });
  fern::yield();
  EXPECT_TRUE(victim.kill());
  EXPECT_TRUE(ended_by_kill(victim));
  log.push_back("release");
  s.release();
  EXPECT_TRUE(next.join());
  EXPECT_EQ(log, (log_t{"victim fiber_exit at acquire", "release", "next acquired"}));
  EXPECT_EQ(s.value(), 0u);
}

TEST(SemaphoreTest, KillAfterHandOffKeepsTheUnitUntilTheGuardReturnsIt) {
  // release() gave the unit to the waiter; a kill arriving before it runs cannot take it back,
  // so acquire() returns, the kill surfaces at the next blocking point and the guard returns it.
  fern::semaphore s(0);
  log_t log;
  auto w = fern::spawn([&] {
    std::lock_guard<fern::semaphore> g(s);
    log.push_back("acquired");
    try {
      fern::sleep(1h);
    } catch (const fern::fiber_exit&) {
      log.push_back("fiber_exit at sleep");
      throw;
    }
  });
  fern::yield();
  s.release();
  EXPECT_TRUE(w.kill());
  EXPECT_TRUE(ended_by_kill(w));
  EXPECT_EQ(log, (log_t{"acquired", "fiber_exit at sleep"}));
  EXPECT_EQ(s.value(), 1u);
}

TEST(SemaphoreTest, RootAcquireThatNoFiberCanSatisfyThrowsLoopExit) {
  fern::semaphore s(0);
  EXPECT_THROW(s.acquire(), fern::loop_exit);
  EXPECT_FALSE(s.has_waiters());
  EXPECT_EQ(s.value(), 0u);
}

TEST(SemaphoreTest, BoundedSemaphoreReleasedTooOftenThrowsLogicError) {
  fern::bounded_semaphore b(2);
  EXPECT_THROW(b.release(), std::logic_error);
  EXPECT_EQ(b.value(), 2u);
  EXPECT_TRUE(b.acquire());
  EXPECT_TRUE(b.try_acquire());
  b.release();
  b.release();
  EXPECT_EQ(b.value(), 2u);
  EXPECT_THROW(b.release(), std::logic_error);
  EXPECT_EQ(b.value(), 2u);
}

TEST(SemaphoreTest, BoundedSemaphoreHandsOffToWaitersLikeASemaphore) {
  fern::bounded_semaphore b(1);
  log_t log;
  EXPECT_TRUE(b.acquire());
  auto w = fern::spawn([&] {
    EXPECT_TRUE(b.acquire());
    log.push_back("waiter acquired");
    b.release();
  });
  fern::yield();
  log.push_back("release");
  b.release();
  EXPECT_EQ(b.value(), 0u);
  w.join();
  EXPECT_EQ(log, (log_t{"release", "waiter acquired"}));
  EXPECT_EQ(b.value(), 1u);
  EXPECT_THROW(b.release(), std::logic_error);
}

}  // namespace
