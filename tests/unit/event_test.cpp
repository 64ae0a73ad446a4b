// fern::event: set() wakes every waiter, clear() re-arms it, wait() honours its own timeout, the
// enclosing fern::timeout scope and kill(), and the root fiber gets fern::loop_exit when nothing
// can ever set it. Each test records what happened in a log and compares the whole sequence.
#include <gtest/gtest.h>
#include <fern/fern.hpp>

#include <chrono>
#include <exception>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace std::chrono_literals;

using fern_test::ended_by_kill;
using fern_test::log_t;

namespace {

TEST(EventTest, SetWakesEveryWaiterInWaitOrder) {
  fern::event ev;
  log_t log;
  std::vector<fern::fiber<void>> ws;
  for (int i = 0; i < 3; ++i)
    ws.push_back(fern::spawn([&, i] {
      log.push_back("wait " + std::to_string(i));
      EXPECT_TRUE(ev.wait());
      log.push_back("woke " + std::to_string(i));
    }));
  fern::yield();  // every waiter runs up to its wait
  EXPECT_FALSE(ev.is_set());
  log.push_back("set");
  ev.set();
  EXPECT_TRUE(ev.is_set());
  EXPECT_TRUE(fern::joinall(ws));
  EXPECT_EQ(log, (log_t{"wait 0", "wait 1", "wait 2", "set", "woke 0", "woke 1", "woke 2"}));
}

TEST(EventTest, WaitAfterSetReturnsAtOnceWithoutSwitching) {
  fern::event ev;
  ev.set();
  log_t log;
  auto other = fern::spawn([&] { log.push_back("other"); });
  EXPECT_TRUE(ev.wait());
  EXPECT_TRUE(ev.wait(0ns));
  log.push_back("waited");
  other.join();
  EXPECT_EQ(log, (log_t{"waited", "other"}));
}

TEST(EventTest, ClearMakesLaterWaitsBlockAgain) {
  fern::event ev;
  ev.set();
  ev.clear();
  EXPECT_FALSE(ev.is_set());
  EXPECT_FALSE(ev.wait(10ms));
  log_t log;
  auto w = fern::spawn([&] {
    EXPECT_TRUE(ev.wait());
    log.push_back("woke");
  });
  fern::yield();
  log.push_back("set");
  ev.set();
  w.join();
  EXPECT_EQ(log, (log_t{"set", "woke"}));
}

TEST(EventTest, WaiterWokenBySetStillReturnsTrueAfterImmediateClear) {
  // The first wake-up wins: a waiter made ready by set() returns true even if the flag is
  // cleared again before it runs (gevent's Event behaves the same).
  fern::event ev;
  bool result = false;
  auto w = fern::spawn([&] { result = ev.wait(1s); });
  fern::yield();
  ev.set();
  ev.clear();
  w.join();
  EXPECT_TRUE(result);
  EXPECT_FALSE(ev.is_set());
}

TEST(EventTest, WaitTimeoutReturnsFalseAndLeavesTheWaitList) {
  log_t log;
  {
    fern::event ev;
    auto late = fern::spawn([&] { log.push_back(ev.wait(10ms) ? "late woke" : "late timed out"); });
    auto patient = fern::spawn([&] {
      EXPECT_TRUE(ev.wait());
      log.push_back("patient woke");
    });
    late.join();  // it gives up first
    log.push_back("set");
    ev.set();
    EXPECT_TRUE(fern::joinall({late, patient}));
    EXPECT_TRUE(ev.is_set());
  }  // the destructor aborts if a departed waiter were still linked
  EXPECT_EQ(log, (log_t{"late timed out", "set", "patient woke"}));
}

TEST(EventTest, EnclosingTimeoutScopeThrowsTimeoutErrorAndRemovesWaiter) {
  fern::event ev;
  log_t log;
  auto scoped = fern::spawn([&] {
    fern::timeout t(10ms);
    try {
      ev.wait();
      log.push_back("scoped returned");
    } catch (const fern::timeout_error& e) {
      EXPECT_TRUE(e.is(t));
      log.push_back("scoped timeout_error");
    }
  });
  auto patient = fern::spawn([&] {
    EXPECT_TRUE(ev.wait());
    log.push_back("patient woke");
  });
  scoped.join();  // it gives up first
  log.push_back("set");
  ev.set();
  EXPECT_TRUE(fern::joinall({scoped, patient}));
  EXPECT_EQ(log, (log_t{"scoped timeout_error", "set", "patient woke"}));
}

TEST(EventTest, KillWhileWaitingRaisesFiberExitAtTheWait) {
  fern::event ev;
  log_t log;
  auto victim = fern::spawn([&] {
    try {
      ev.wait();
      log.push_back("victim returned");
    } catch (const fern::fiber_exit&) {
      log.push_back("victim fiber_exit at wait");
      throw;
    }
  });
  auto other = fern::spawn([&] {
    EXPECT_TRUE(ev.wait());
    log.push_back("other woke");
  });
  fern::yield();
  EXPECT_TRUE(victim.kill());
  EXPECT_TRUE(ended_by_kill(victim));
  log.push_back("set");
  ev.set();
  other.join();
  EXPECT_EQ(log, (log_t{"victim fiber_exit at wait", "set", "other woke"}));
}

TEST(EventTest, RootWaitingForAnEventNobodyCanSetThrowsLoopExit) {
  fern::event ev;
  EXPECT_THROW(ev.wait(), fern::loop_exit);
  // A fiber that is itself stuck on the event does not count as someone who could set it.
  auto stuck = fern::spawn([&] { ev.wait(); });
  EXPECT_THROW(ev.wait(), fern::loop_exit);
  EXPECT_FALSE(stuck.ready());
  EXPECT_TRUE(stuck.kill());
}

TEST(EventTest, RootWaitIsWokenBySetFromAFiber) {
  fern::event ev;
  log_t log;
  auto setter = fern::spawn([&] {
    log.push_back("setter");
    ev.set();
  });
  EXPECT_TRUE(ev.wait());
  log.push_back("root woke");
  setter.join();
  EXPECT_EQ(log, (log_t{"setter", "root woke"}));
}

}  // namespace

namespace {

TEST(EventDeathTest, DestroyingAnEventWhileAFiberWaitsOnItAborts) {
  EXPECT_DEATH(
      {
        auto* ev = new fern::event;
        auto w = fern::spawn([ev] { ev->wait(); });
        fern::yield();
        delete ev;
      },
      "fern::event destroyed while fibers wait on it");
}

}  // namespace
