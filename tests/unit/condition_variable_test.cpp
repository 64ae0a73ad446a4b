// fern::condition_variable with fern::mutex: producer/consumer with a predicate, notify_one
// waking exactly one waiter, timeouts, and the rule that a timeout or kill during the wait is
// raised only once the mutex is held again (so std::unique_lock stays correct). Misuse (waiting
// without the lock) is EPERM; the root waiting with no notifier gets fern::loop_exit.
#include <gtest/gtest.h>
#include <fern/fern.hpp>

#include <cerrno>
#include <chrono>
#include <deque>
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

TEST(ConditionVariableTest, ProducerConsumerWithPredicate) {
  fern::mutex m;
  fern::condition_variable cv;
  std::deque<int> items;
  bool done = false;
  log_t log;
  auto consumer = fern::spawn([&] {
    std::unique_lock<fern::mutex> lk(m);
    for (;;) {
      EXPECT_TRUE(cv.wait(lk, [&] { return !items.empty() || done; }));
      EXPECT_TRUE(lk.owns_lock());
      if (items.empty()) break;
      log.push_back("got " + std::to_string(items.front()));
      items.pop_front();
    }
    log.push_back("consumer done");
  });
  for (int i = 0; i < 4; ++i) {
    {
      std::lock_guard<fern::mutex> g(m);
      items.push_back(i);
      log.push_back("put " + std::to_string(i));
    }
    cv.notify_one();
    fern::yield();
  }
  {
    std::lock_guard<fern::mutex> g(m);
    done = true;
  }
  cv.notify_one();
  consumer.join();
  EXPECT_EQ(log, (log_t{"put 0", "got 0", "put 1", "got 1", "put 2", "got 2", "put 3", "got 3",
                        "consumer done"}));
  EXPECT_FALSE(m.locked());
}

TEST(ConditionVariableTest, NotifyOneWakesExactlyOneWaiterInWaitOrder) {
  fern::mutex m;
  fern::condition_variable cv;
  log_t log;
  std::vector<fern::fiber<void>> ws;
  for (int i = 0; i < 3; ++i)
    ws.push_back(fern::spawn([&, i] {
      std::unique_lock<fern::mutex> lk(m);
      EXPECT_TRUE(cv.wait(lk));
      log.push_back("woke " + std::to_string(i));
    }));
  fern::yield();
  log.push_back("notify_one");
  cv.notify_one();
  fern::sleep(5ms);
  log.push_back("notify_one");
  cv.notify_one();
  fern::sleep(5ms);
  log.push_back("notify_all");
  cv.notify_all();
  EXPECT_TRUE(fern::joinall(ws));
  EXPECT_EQ(log, (log_t{"notify_one", "woke 0", "notify_one", "woke 1", "notify_all", "woke 2"}));
  EXPECT_FALSE(m.locked());
}

TEST(ConditionVariableTest, NotifyWithNoWaiterIsNotRemembered) {
  fern::mutex m;
  fern::condition_variable cv;
  cv.notify_one();
  cv.notify_all();
  std::unique_lock<fern::mutex> lk(m);
  EXPECT_FALSE(cv.wait(lk, 10ms));
  EXPECT_TRUE(lk.owns_lock());
}

TEST(ConditionVariableTest, WaitTimeoutReturnsFalseHoldingTheLock) {
  fern::mutex m;
  fern::condition_variable cv;
  auto f = fern::spawn([&] {
    std::unique_lock<fern::mutex> lk(m);
    EXPECT_FALSE(cv.wait(lk, 10ms));
    EXPECT_TRUE(lk.owns_lock());
    EXPECT_TRUE(owned_by_me(m));
    int checks = 0;
    EXPECT_FALSE(cv.wait(
        lk, [&] { return ++checks < 0; }, 10ms));
    EXPECT_GE(checks, 2);
    EXPECT_TRUE(owned_by_me(m));
  });
  f.get();
  EXPECT_FALSE(m.locked());
}

TEST(ConditionVariableTest, TimedOutWaiterReturnsOnlyAfterItRelocks) {
  fern::mutex m;
  fern::condition_variable cv;
  log_t log;
  auto w = fern::spawn([&] {
    std::unique_lock<fern::mutex> lk(m);
    bool ok = cv.wait(lk, 10ms);
    log.push_back(ok ? "notified" : "timed out, relocked");
    EXPECT_TRUE(owned_by_me(m));
  });
  fern::yield();  // w waits, the mutex is free
  m.lock();       // the root holds it across w's deadline
  fern::sleep(30ms);
  log.push_back("root unlocks");
  m.unlock();
  w.join();
  EXPECT_EQ(log, (log_t{"root unlocks", "timed out, relocked"}));
  EXPECT_FALSE(m.locked());
}

TEST(ConditionVariableTest, EnclosingTimeoutScopeRaisesAfterRelockAndRemovesTheWaiter) {
  fern::mutex m;
  fern::condition_variable cv;
  log_t log;
  auto scoped = fern::spawn([&] {
    fern::timeout t(10ms);
    std::unique_lock<fern::mutex> lk(m);
    try {
      cv.wait(lk);
      log.push_back("scoped notified");
    } catch (const fern::timeout_error& e) {
      EXPECT_TRUE(e.is(t));
      EXPECT_TRUE(lk.owns_lock());
      EXPECT_TRUE(owned_by_me(m));
      log.push_back("scoped timeout_error holding the lock");
    }
  });
  auto patient = fern::spawn([&] {
    std::unique_lock<fern::mutex> lk(m);
    EXPECT_TRUE(cv.wait(lk));
    log.push_back("patient notified");
  });
  fern::yield();
  m.lock();
  fern::sleep(30ms);
  log.push_back("root unlocks");
  m.unlock();
  scoped.join();
  log.push_back("notify_one");
  cv.notify_one();  // must reach `patient`: the timed-out fiber left the wait list
  patient.join();
  EXPECT_EQ(log, (log_t{"root unlocks", "scoped timeout_error holding the lock", "notify_one",
                        "patient notified"}));
  EXPECT_FALSE(m.locked());
}

TEST(ConditionVariableTest, KillDuringWaitRaisesFiberExitOnlyAfterTheMutexIsHeldAgain) {
  fern::mutex m;
  fern::condition_variable cv;
  log_t log;
  auto victim = fern::spawn([&] {
    std::unique_lock<fern::mutex> lk(m);
    try {
      cv.wait(lk);
      log.push_back("victim returned");
    } catch (const fern::fiber_exit&) {
      EXPECT_TRUE(lk.owns_lock());
      EXPECT_TRUE(m.locked());
      EXPECT_TRUE(owned_by_me(m));
      log.push_back("victim fiber_exit holding the lock");
      throw;  // unique_lock's destructor must release the mutex
    }
  });
  auto other = fern::spawn([&] {
    std::unique_lock<fern::mutex> lk(m);
    EXPECT_TRUE(cv.wait(lk));
    log.push_back("other notified");
  });
  fern::yield();
  m.lock();
  victim.kill({.block = false});
  fern::sleep(5ms);
  EXPECT_FALSE(victim.ready());  // cannot leave before it holds the mutex
  log.push_back("root unlocks");
  m.unlock();
  EXPECT_TRUE(victim.join());
  EXPECT_TRUE(ended_by_kill(victim));
  EXPECT_FALSE(m.locked());
  log.push_back("notify_one");
  cv.notify_one();
  other.join();
  EXPECT_EQ(log, (log_t{"root unlocks", "victim fiber_exit holding the lock", "notify_one",
                        "other notified"}));
  EXPECT_FALSE(m.locked());
}

TEST(ConditionVariableTest, KillAfterNotifyWinsNothingBackAndSurfacesAtTheNextBlockingPoint) {
  // The notification woke the waiter first; it now waits to relock, where kill() cannot end the
  // wait (the first wake-up wins, as for semaphore and mutex hand-offs). The wait returns true
  // holding the lock, and the kill is raised at the fiber's next blocking point.
  fern::mutex m;
  fern::condition_variable cv;
  log_t log;
  auto victim = fern::spawn([&] {
    std::unique_lock<fern::mutex> lk(m);
    EXPECT_TRUE(cv.wait(lk));
    EXPECT_TRUE(owned_by_me(m));
    log.push_back("victim returned from wait holding the lock");
    try {
      fern::yield();
      log.push_back("victim yielded");
    } catch (const fern::fiber_exit&) {
      log.push_back("victim fiber_exit at the next blocking point");
      throw;
    }
  });
  fern::yield();
  m.lock();
  cv.notify_one();
  fern::yield();  // victim is now parked relocking
  victim.kill({.block = false});
  EXPECT_FALSE(victim.ready());
  log.push_back("root unlocks");
  m.unlock();
  EXPECT_TRUE(victim.join());
  EXPECT_TRUE(ended_by_kill(victim));
  EXPECT_EQ(log, (log_t{"root unlocks", "victim returned from wait holding the lock",
                        "victim fiber_exit at the next blocking point"}));
  EXPECT_FALSE(m.locked());
}

TEST(ConditionVariableTest, WaitWithoutTheLockThrowsEperm) {
  fern::mutex m;
  fern::condition_variable cv;
  std::unique_lock<fern::mutex> lk(m, std::defer_lock);
  EXPECT_EQ(system_error_of([&] { cv.wait(lk); }), EPERM);
  EXPECT_EQ(system_error_of([&] { cv.wait(lk, 10ms); }), EPERM);
  EXPECT_FALSE(m.locked());
}

TEST(ConditionVariableTest,
     WaitWithALockWhoseMutexWasUnlockedElsewhereThrowsEpermAndLeavesNoWaiter) {
  // Any fiber may unlock a fern::mutex, so a unique_lock can claim a mutex that is no longer
  // locked. wait() then fails with EPERM and must not leave its waiter on the wait list (the
  // notify below and the destructor would otherwise touch a dead stack frame).
  fern::mutex m;
  fern::condition_variable cv;
  std::unique_lock<fern::mutex> lk(m);
  m.unlock();  // behind the lock's back
  EXPECT_EQ(system_error_of([&] { cv.wait(lk); }), EPERM);
  lk.release();  // lk must not unlock again
  log_t log;
  auto w = fern::spawn([&] {
    std::unique_lock<fern::mutex> l2(m);
    EXPECT_TRUE(cv.wait(l2));
    log.push_back("waiter notified");
  });
  fern::yield();
  cv.notify_one();  // must reach the real waiter
  w.join();
  EXPECT_EQ(log, (log_t{"waiter notified"}));
  EXPECT_FALSE(m.locked());
}

TEST(ConditionVariableTest, RootWaitingWithNoPossibleNotifierThrowsLoopExitHoldingTheLock) {
  fern::mutex m;
  fern::condition_variable cv;
  std::unique_lock<fern::mutex> lk(m);
  EXPECT_THROW(cv.wait(lk), fern::loop_exit);
  EXPECT_TRUE(lk.owns_lock());
  EXPECT_TRUE(owned_by_me(m));
}

TEST(ConditionVariableTest, PredicateWaitWithTimeoutReturnsTrueOnceSatisfied) {
  fern::mutex m;
  fern::condition_variable cv;
  bool ready = false;
  auto setter = fern::spawn([&] {
    fern::sleep(5ms);
    std::lock_guard<fern::mutex> g(m);
    ready = true;
    cv.notify_all();
  });
  std::unique_lock<fern::mutex> lk(m);
  EXPECT_TRUE(cv.wait(
      lk, [&] { return ready; }, 10s));
  EXPECT_TRUE(lk.owns_lock());
  lk.unlock();
  setter.join();
}

}  // namespace
