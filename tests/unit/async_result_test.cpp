// fern::async_result<T>: set/get with and without waiting, every waiter woken, exceptions
// carried through set_exception, get(timeout) -> timeout_error, the enclosing fern::timeout scope
// and kill() of a waiter, copies sharing one state, the void specialisation, set-twice misuse,
// and loop_exit in the root.
#include <gtest/gtest.h>
#include <fern/fern.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace std::chrono_literals;

using fern_test::ended_by_kill;
using fern_test::log_t;

namespace {

TEST(AsyncResultTest, GetAfterSetReturnsTheValueWithoutSwitching) {
  fern::async_result<int> r;
  EXPECT_FALSE(r.ready());
  r.set(42);
  EXPECT_TRUE(r.ready());
  EXPECT_TRUE(r.successful());
  EXPECT_EQ(r.exception(), nullptr);
  log_t log;
  auto other = fern::spawn([&] { log.push_back("other"); });
  EXPECT_EQ(r.get(), 42);
  EXPECT_TRUE(r.wait(0ns));
  log.push_back("got");
  other.join();
  EXPECT_EQ(log, (log_t{"got", "other"}));
}

TEST(AsyncResultTest, GetWaitsUntilAnotherFiberSets) {
  fern::async_result<std::string> r;
  log_t log;
  auto setter = fern::spawn([&] {
    log.push_back("setter");
    r.set("value");
  });
  log.push_back("get");
  log.push_back("got " + r.get());
  setter.join();
  EXPECT_EQ(log, (log_t{"get", "setter", "got value"}));
}

TEST(AsyncResultTest, SetWakesEveryWaiter) {
  fern::async_result<int> r;
  log_t log;
  std::vector<fern::fiber<void>> ws;
  for (int i = 0; i < 3; ++i)
    ws.push_back(fern::spawn([&, i] {
      int v = r.get();
      log.push_back(std::to_string(i) + " got " + std::to_string(v));
    }));
  fern::yield();
  log.push_back("set");
  r.set(7);
  EXPECT_TRUE(fern::joinall(ws));
  EXPECT_EQ(log, (log_t{"set", "0 got 7", "1 got 7", "2 got 7"}));
}

TEST(AsyncResultTest, SetExceptionIsRethrownByEveryGet) {
  fern::async_result<int> r;
  log_t log;
  auto waiter = fern::spawn([&] {
    try {
      r.get();
      log.push_back("waiter got a value");
    } catch (const std::runtime_error& e) {
      log.push_back(std::string("waiter caught ") + e.what());
    }
  });
  fern::yield();
  r.set_exception(std::make_exception_ptr(std::runtime_error("boom")));
  waiter.join();
  EXPECT_TRUE(r.ready());
  EXPECT_FALSE(r.successful());
  EXPECT_NE(r.exception(), nullptr);
  EXPECT_THROW(r.get(), std::runtime_error);
  EXPECT_EQ(log, (log_t{"waiter caught boom"}));
}

TEST(AsyncResultTest, SettingTwiceThrowsLogicErrorAndKeepsTheFirstOutcome) {
  fern::async_result<int> r;
  r.set(1);
  EXPECT_THROW(r.set(2), std::logic_error);
  EXPECT_THROW(r.set_exception(std::make_exception_ptr(std::runtime_error("late"))),
               std::logic_error);
  EXPECT_EQ(r.get(), 1);
  EXPECT_TRUE(r.successful());

  fern::async_result<int> e;
  e.set_exception(std::make_exception_ptr(std::runtime_error("first")));
  EXPECT_THROW(e.set(3), std::logic_error);
  EXPECT_THROW(e.get(), std::runtime_error);
}

TEST(AsyncResultTest, SetExceptionWithNullThrowsInvalidArgument) {
  fern::async_result<int> r;
  EXPECT_THROW(r.set_exception(nullptr), std::invalid_argument);
  EXPECT_FALSE(r.ready());
  r.set(5);
  EXPECT_EQ(r.get(), 5);
}

TEST(AsyncResultTest, GetWithTimeoutThrowsTimeoutErrorAndStaysUsable) {
  fern::async_result<int> r;
  try {
    r.get(10ms);
    FAIL() << "get(10ms) returned";
  } catch (const fern::timeout_error& e) {
    EXPECT_EQ(e.source(), nullptr);  // the call's own timeout, not a scope
  }
  EXPECT_FALSE(r.wait(1ms));
  EXPECT_FALSE(r.ready());
  r.set(3);
  EXPECT_EQ(r.get(10ms), 3);
}

TEST(AsyncResultTest, EnclosingTimeoutScopeThrowsAndOtherWaitersStillGetTheValue) {
  fern::async_result<int> r;
  log_t log;
  auto scoped = fern::spawn([&] {
    fern::timeout t(10ms);
    try {
      r.get();
      log.push_back("scoped got");
    } catch (const fern::timeout_error& e) {
      EXPECT_TRUE(e.is(t));
      log.push_back("scoped timeout_error");
    }
  });
  auto patient = fern::spawn([&] { log.push_back("patient got " + std::to_string(r.get())); });
  scoped.join();  // it gives up first
  log.push_back("set");
  r.set(9);
  EXPECT_TRUE(fern::joinall({scoped, patient}));
  EXPECT_EQ(log, (log_t{"scoped timeout_error", "set", "patient got 9"}));
}

TEST(AsyncResultTest, KilledWaiterGetsFiberExitAtGet) {
  fern::async_result<int> r;
  log_t log;
  auto victim = fern::spawn([&] {
    try {
      r.get();
      log.push_back("victim got");
    } catch (const fern::fiber_exit&) {
      log.push_back("victim fiber_exit at get");
      throw;
    }
  });
  auto patient = fern::spawn([&] { log.push_back("patient got " + std::to_string(r.get())); });
  fern::yield();
  EXPECT_TRUE(victim.kill());
  EXPECT_TRUE(ended_by_kill(victim));
  r.set(4);
  patient.join();
  EXPECT_EQ(log, (log_t{"victim fiber_exit at get", "patient got 4"}));
}

TEST(AsyncResultTest, CopiesShareOneState) {
  fern::async_result<std::unique_ptr<int>> r;
  auto copy = r;
  auto setter = fern::spawn([copy]() mutable { copy.set(std::make_unique<int>(11)); });
  const std::unique_ptr<int>& v = r.get();
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(*v, 11);
  EXPECT_EQ(&copy.get(), &v);  // the same stored value, not a copy
  EXPECT_TRUE(copy.ready());
  setter.join();
  EXPECT_THROW(r.set(nullptr), std::logic_error);
}

TEST(AsyncResultTest, VoidResultSignalsCompletionAndErrors) {
  fern::async_result<void> r;
  log_t log;
  auto waiter = fern::spawn([&] {
    r.get();
    log.push_back("waiter done");
  });
  fern::yield();
  log.push_back("set");
  r.set();
  waiter.join();
  EXPECT_TRUE(r.successful());
  EXPECT_NO_THROW(r.get());
  EXPECT_THROW(r.set(), std::logic_error);
  EXPECT_EQ(log, (log_t{"set", "waiter done"}));

  fern::async_result<void> e;
  EXPECT_THROW(e.get(1ms), fern::timeout_error);
  e.set_exception(std::make_exception_ptr(std::out_of_range("oops")));
  EXPECT_THROW(e.get(), std::out_of_range);
  EXPECT_FALSE(e.successful());
  EXPECT_THROW(e.set(), std::logic_error);
}

TEST(AsyncResultTest, RootWaitingForAResultNobodyCanSetThrowsLoopExit) {
  fern::async_result<int> r;
  EXPECT_THROW(r.get(), fern::loop_exit);
  EXPECT_THROW(r.wait(), fern::loop_exit);
  r.set(1);
  EXPECT_EQ(r.get(), 1);
}

}  // namespace
