// fern::mutex: mutual exclusion across blocking points, the no-switch fast path, FIFO hand-off
// of ownership, timeouts, the enclosing fern::timeout scope and kill() leaving ownership with the
// next waiter, loop_exit in the root, and the EDEADLK / EPERM misuse errors.
#include <gtest/gtest.h>
#include <fern/fern.hpp>

#include <cerrno>
#include <chrono>
#include <exception>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include "test_util.hpp"

using namespace std::chrono_literals;

using fern_test::ended_by_kill;
using fern_test::log_t;
using fern_test::system_error_of;

namespace {

// True if the calling fiber owns m: fern::mutex reports a second lock by its owner as EDEADLK.
bool owned_by_me(fern::mutex& m) {
  return system_error_of([&] { m.acquire(); }) == EDEADLK;
}

TEST(MutexTest, LockAndUnlockWithoutContentionDoNotSwitch) {
  fern::mutex m;
  log_t log;
  auto other = fern::spawn([&] { log.push_back("other"); });
  EXPECT_FALSE(m.locked());
  EXPECT_TRUE(m.acquire());
  EXPECT_TRUE(m.locked());
  log.push_back("locked");
  m.release();
  EXPECT_FALSE(m.locked());
  log.push_back("unlocked");
  other.join();
  EXPECT_EQ(log, (log_t{"locked", "unlocked", "other"}));
}

TEST(MutexTest, TryLockFailsWhileHeld) {
  fern::mutex m;
  EXPECT_TRUE(m.try_lock());
  EXPECT_FALSE(m.try_lock());  // not even the owner may take it twice
  auto f = fern::spawn([&] { return m.try_lock(); });
  EXPECT_FALSE(f.get());
  m.unlock();
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST(MutexTest, ExcludesOtherFibersAcrossBlockingPoints) {
  fern::mutex m;
  log_t log;
  int inside = 0, max_inside = 0;
  std::vector<fern::fiber<void>> fs;
  for (int i = 0; i < 3; ++i)
    fs.push_back(fern::spawn([&, i] {
      std::lock_guard<fern::mutex> g(m);
      max_inside = std::max(max_inside, ++inside);
      log.push_back("in " + std::to_string(i));
      fern::sleep(1ms);
      fern::yield();
      log.push_back("out " + std::to_string(i));
      --inside;
    }));
  EXPECT_TRUE(fern::joinall(fs));
  EXPECT_EQ(max_inside, 1);
  EXPECT_EQ(log, (log_t{"in 0", "out 0", "in 1", "out 1", "in 2", "out 2"}));
  EXPECT_FALSE(m.locked());
}

TEST(MutexTest, UnlockHandsOwnershipToTheLongestWaiter) {
  fern::mutex m;
  log_t log;
  m.lock();
  std::vector<fern::fiber<void>> ws;
  for (int i = 0; i < 3; ++i)
    ws.push_back(fern::spawn([&, i] {
      std::lock_guard<fern::mutex> g(m);
      log.push_back("owner " + std::to_string(i));
      fern::yield();
    }));
  fern::yield();
  m.unlock();  // straight to waiter 0, which has not run yet
  EXPECT_TRUE(m.locked());
  EXPECT_FALSE(m.try_lock());  // the root, arriving later, cannot overtake
  auto late = fern::spawn([&] {
    std::lock_guard<fern::mutex> g(m);
    log.push_back("late owner");
  });
  EXPECT_TRUE(fern::joinall(ws));
  EXPECT_TRUE(late.join());
  EXPECT_EQ(log, (log_t{"owner 0", "owner 1", "owner 2", "late owner"}));
  EXPECT_FALSE(m.locked());
}

TEST(MutexTest, LockingTwiceFromTheSameFiberThrowsEdeadlk) {
  fern::mutex m;
  m.lock();
  EXPECT_EQ(system_error_of([&] { m.lock(); }), EDEADLK);
  EXPECT_EQ(system_error_of([&] { m.acquire(10ms); }), EDEADLK);
  EXPECT_TRUE(m.locked());
  m.unlock();
  auto f = fern::spawn([&] {
    std::lock_guard<fern::mutex> g(m);
    EXPECT_EQ(system_error_of([&] { m.lock(); }), EDEADLK);
  });
  f.get();
  EXPECT_FALSE(m.locked());
}

TEST(MutexTest, UnlockingAnUnlockedMutexThrowsEperm) {
  fern::mutex m;
  EXPECT_EQ(system_error_of([&] { m.unlock(); }), EPERM);
  m.lock();
  m.unlock();
  EXPECT_EQ(system_error_of([&] { m.release(); }), EPERM);
  EXPECT_FALSE(m.locked());
}

TEST(MutexTest, AnyFiberMayUnlock) {
  fern::mutex m;
  log_t log;
  auto locker = fern::spawn([&] { m.lock(); });
  locker.join();
  EXPECT_TRUE(m.locked());
  auto waiter = fern::spawn([&] {
    m.lock();
    log.push_back("waiter owns");
    m.unlock();
  });
  fern::yield();
  log.push_back("root unlocks");
  m.unlock();  // the root did not lock it, as with Go's sync.Mutex
  waiter.join();
  EXPECT_EQ(log, (log_t{"root unlocks", "waiter owns"}));
  EXPECT_FALSE(m.locked());
}

TEST(MutexTest, AcquireTimeoutReturnsFalseAndDoesNotLaterReceiveOwnership) {
  fern::mutex m;
  log_t log;
  m.lock();
  auto w = fern::spawn([&] { log.push_back(m.acquire(10ms) ? "acquired" : "timed out"); });
  w.join();  // it gives up first
  EXPECT_TRUE(w.ready());
  m.unlock();
  EXPECT_FALSE(m.locked());  // not handed to the waiter that left
  EXPECT_EQ(log, (log_t{"timed out"}));
}

TEST(MutexTest, EnclosingTimeoutScopeThrowsAndTheNextWaiterGetsOwnership) {
  fern::mutex m;
  log_t log;
  m.lock();
  auto scoped = fern::spawn([&] {
    fern::timeout t(10ms);
    try {
      m.lock();
      log.push_back("scoped owns");
      m.unlock();
    } catch (const fern::timeout_error& e) {
      EXPECT_TRUE(e.is(t));
      log.push_back("scoped timeout_error");
    }
  });
  auto patient = fern::spawn([&] {
    EXPECT_TRUE(m.acquire());
    log.push_back("patient owns");
    EXPECT_TRUE(owned_by_me(m));
    m.release();
  });
  scoped.join();  // it gives up first
  log.push_back("unlock");
  m.unlock();
  EXPECT_TRUE(fern::joinall({scoped, patient}));
  EXPECT_EQ(log, (log_t{"scoped timeout_error", "unlock", "patient owns"}));
  EXPECT_FALSE(m.locked());
}

TEST(MutexTest, KilledWaiterLeavesAndUnlockGoesToTheNextWaiter) {
  fern::mutex m;
  log_t log;
  m.lock();
  auto victim = fern::spawn([&] {
    try {
      m.lock();
      log.push_back("victim owns");
      m.unlock();
    } catch (const fern::fiber_exit&) {
      log.push_back("victim fiber_exit at lock");
      throw;
    }
  });
  auto next = fern::spawn([&] {
    m.lock();
    log.push_back("next owns");
    EXPECT_TRUE(owned_by_me(m));
    m.unlock();
  });
  fern::yield();
  EXPECT_TRUE(victim.kill());
  EXPECT_TRUE(ended_by_kill(victim));
  log.push_back("unlock");
  m.unlock();
  EXPECT_TRUE(next.join());
  EXPECT_EQ(log, (log_t{"victim fiber_exit at lock", "unlock", "next owns"}));
  EXPECT_FALSE(m.locked());
}

TEST(MutexTest, KillAfterHandOffKeepsOwnershipUntilTheGuardReleasesIt) {
  fern::mutex m;
  log_t log;
  m.lock();
  auto w = fern::spawn([&] {
    std::lock_guard<fern::mutex> g(m);
    log.push_back("owns");
    try {
      fern::sleep(1h);
    } catch (const fern::fiber_exit&) {
      log.push_back("fiber_exit at sleep");
      throw;
    }
  });
  fern::yield();
  m.unlock();  // ownership passes to w before it runs; the kill cannot take it back
  EXPECT_TRUE(w.kill());
  EXPECT_TRUE(ended_by_kill(w));
  EXPECT_EQ(log, (log_t{"owns", "fiber_exit at sleep"}));
  EXPECT_FALSE(m.locked());
}

TEST(MutexTest, RootLockingAMutexNoFiberWillReleaseThrowsLoopExit) {
  fern::mutex m;
  auto holder = fern::spawn([&] { m.lock(); });  // ends without unlocking
  holder.join();
  EXPECT_THROW(m.lock(), fern::loop_exit);
  EXPECT_TRUE(m.locked());
  m.unlock();  // the waiter left: nothing was handed to it
  EXPECT_FALSE(m.locked());
}

}  // namespace
