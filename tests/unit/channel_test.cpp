// fern::channel: rendezvous semantics (a put returns only once a getter has the value), hand-off
// with either side arriving first, try_put/try_get needing a waiting partner, timeouts that leave
// the value intact, the enclosing fern::timeout scope and kill() removing the waiter, close()
// waking both sides with closed_error, and loop_exit in the root.
#include <gtest/gtest.h>
#include <fern/fern.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace std::chrono_literals;

using fern_test::ended_by_kill;
using fern_test::log_t;

namespace {

TEST(ChannelTest, PutterFirstWaitsUntilAGetterTakesTheValue) {
  fern::channel<int> ch;
  log_t log;
  auto putter = fern::spawn([&] {
    log.push_back("put start");
    ch.put(1);
    log.push_back("put returned");
  });
  fern::yield();
  EXPECT_TRUE(ch.has_putters());
  EXPECT_FALSE(putter.ready());
  log.push_back("get");
  int v = ch.get();  // a putter waits: no switch
  log.push_back("got " + std::to_string(v));
  putter.join();
  EXPECT_EQ(log, (log_t{"put start", "get", "got 1", "put returned"}));
  EXPECT_FALSE(ch.has_putters());
}

TEST(ChannelTest, GetterFirstReceivesTheValueStraightFromPut) {
  fern::channel<std::string> ch;
  log_t log;
  auto getter = fern::spawn([&] {
    log.push_back("get start");
    std::string v = ch.get();
    log.push_back("got " + v);
  });
  fern::yield();
  EXPECT_TRUE(ch.has_getters());
  ch.put("hello");  // a getter waits: returns at once, the getter already holds the value
  log.push_back("put returned");
  EXPECT_FALSE(ch.has_getters());
  getter.join();
  EXPECT_EQ(log, (log_t{"get start", "put returned", "got hello"}));
}

TEST(ChannelTest, ValuesPassInOrderOneRendezvousAtATime) {
  fern::channel<int> ch;
  log_t log;
  auto producer = fern::spawn([&] {
    for (int i = 0; i < 3; ++i) {
      ch.put(i);
      log.push_back("put " + std::to_string(i));
    }
  });
  for (int i = 0; i < 3; ++i) {
    int v = ch.get();
    log.push_back("got " + std::to_string(v));
  }
  producer.join();
  // put 0 and put 2 find the root already waiting: the value lands in its slot and put returns
  // before the root runs again. put 1 finds no getter and returns only after the root took 1.
  EXPECT_EQ(log, (log_t{"put 0", "got 0", "got 1", "put 1", "put 2", "got 2"}));
}

TEST(ChannelTest, WaitingPuttersAreServedInFifoOrder) {
  fern::channel<int> ch;
  std::vector<fern::fiber<void>> ps;
  for (int i = 0; i < 3; ++i) ps.push_back(fern::spawn([&, i] { ch.put(i); }));
  fern::yield();
  std::vector<int> got;
  for (int i = 0; i < 3; ++i) got.push_back(ch.get());
  EXPECT_TRUE(fern::joinall(ps));
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));
}

TEST(ChannelTest, TryPutSucceedsOnlyWithAWaitingGetter) {
  fern::channel<int> ch;
  EXPECT_FALSE(ch.try_put(1));
  EXPECT_FALSE(ch.has_putters());
  int got = 0;
  auto getter = fern::spawn([&] { got = ch.get(); });
  fern::yield();
  EXPECT_TRUE(ch.try_put(3));
  getter.join();
  EXPECT_EQ(got, 3);
  EXPECT_FALSE(ch.try_put(4));
}

TEST(ChannelTest, TryGetSucceedsOnlyWithAWaitingPutter) {
  fern::channel<int> ch;
  EXPECT_EQ(ch.try_get(), std::nullopt);
  EXPECT_FALSE(ch.has_getters());
  auto putter = fern::spawn([&] { ch.put(5); });
  fern::yield();
  EXPECT_EQ(ch.try_get(), std::optional<int>(5));
  putter.join();
  EXPECT_TRUE(putter.successful());
  EXPECT_EQ(ch.try_get(), std::nullopt);
}

TEST(ChannelTest, PutTimeoutLeavesTheValueIntact) {
  fern::channel<std::string> ch;
  std::string s = "a string long enough to live on the heap, not in the SSO buffer";
  const std::string copy = s;
  EXPECT_FALSE(ch.put(std::move(s), 10ms));
  EXPECT_EQ(s, copy);
  EXPECT_FALSE(ch.try_put(std::move(s)));
  EXPECT_EQ(s, copy);
  EXPECT_FALSE(ch.has_putters());

  fern::channel<std::unique_ptr<int>> uch;
  auto p = std::make_unique<int>(7);
  EXPECT_FALSE(uch.put(std::move(p), 10ms));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 7);
  std::unique_ptr<int> got;
  auto getter = fern::spawn([&] { got = uch.get(); });
  fern::yield();
  EXPECT_TRUE(uch.put(std::move(p), 10ms));
  EXPECT_EQ(p, nullptr);
  getter.join();
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(*got, 7);
}

TEST(ChannelTest, RvaluePutIsMovedOnlyWhenTaken) {
  fern::channel<std::unique_ptr<int>> ch;
  auto p = std::make_unique<int>(1);
  auto putter = fern::spawn([&] { EXPECT_TRUE(ch.put(std::move(p), 1s)); });
  fern::yield();
  ASSERT_NE(p, nullptr);  // still waiting: not moved yet
  auto v = ch.get();
  EXPECT_EQ(p, nullptr);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(*v, 1);
  putter.join();
}

TEST(ChannelTest, GetTimeoutReturnsNullopt) {
  fern::channel<int> ch;
  EXPECT_EQ(ch.get(10ms), std::nullopt);
  EXPECT_FALSE(ch.has_getters());
  EXPECT_FALSE(ch.try_put(1));  // the departed getter is not a partner
}

TEST(ChannelTest, EnclosingTimeoutScopeOnPutThrowsAndTheNextPutterIsServed) {
  fern::channel<int> ch;
  log_t log;
  auto scoped = fern::spawn([&] {
    fern::timeout t(10ms);
    try {
      ch.put(1);
      log.push_back("scoped put");
    } catch (const fern::timeout_error& e) {
      EXPECT_TRUE(e.is(t));
      log.push_back("scoped timeout_error");
    }
  });
  auto patient = fern::spawn([&] {
    ch.put(2);
    log.push_back("patient put");
  });
  scoped.join();  // it gives up first
  log.push_back("got " + std::to_string(ch.get()));
  EXPECT_TRUE(fern::joinall({scoped, patient}));
  EXPECT_EQ(log, (log_t{"scoped timeout_error", "got 2", "patient put"}));
}

TEST(ChannelTest, EnclosingTimeoutScopeOnGetThrowsAndTheNextGetterReceives) {
  fern::channel<int> ch;
  log_t log;
  auto scoped = fern::spawn([&] {
    fern::timeout t(10ms);
    try {
      log.push_back("scoped got " + std::to_string(ch.get()));
    } catch (const fern::timeout_error& e) {
      EXPECT_TRUE(e.is(t));
      log.push_back("scoped timeout_error");
    }
  });
  auto patient = fern::spawn([&] { log.push_back("patient got " + std::to_string(ch.get())); });
  scoped.join();  // it gives up first
  ch.put(4);
  log.push_back("put returned");
  EXPECT_TRUE(fern::joinall({scoped, patient}));
  EXPECT_EQ(log, (log_t{"scoped timeout_error", "put returned", "patient got 4"}));
}

TEST(ChannelTest, KilledPutterLeavesAndItsValueIsNeverDelivered) {
  fern::channel<int> ch;
  log_t log;
  auto victim = fern::spawn([&] {
    try {
      ch.put(1);
      log.push_back("victim put");
    } catch (const fern::fiber_exit&) {
      log.push_back("victim fiber_exit at put");
      throw;
    }
  });
  auto next = fern::spawn([&] {
    ch.put(2);
    log.push_back("next put");
  });
  fern::yield();
  EXPECT_TRUE(victim.kill());
  EXPECT_TRUE(ended_by_kill(victim));
  log.push_back("got " + std::to_string(ch.get()));
  next.join();
  EXPECT_EQ(log, (log_t{"victim fiber_exit at put", "got 2", "next put"}));
  EXPECT_EQ(ch.try_get(), std::nullopt);
}

TEST(ChannelTest, KilledGetterLeavesAndThePutGoesToTheNextGetter) {
  fern::channel<int> ch;
  log_t log;
  auto victim = fern::spawn([&] {
    try {
      log.push_back("victim got " + std::to_string(ch.get()));
    } catch (const fern::fiber_exit&) {
      log.push_back("victim fiber_exit at get");
      throw;
    }
  });
  auto next = fern::spawn([&] { log.push_back("next got " + std::to_string(ch.get())); });
  fern::yield();
  EXPECT_TRUE(victim.kill());
  EXPECT_TRUE(ended_by_kill(victim));
  ch.put(8);
  log.push_back("put returned");
  next.join();
  EXPECT_EQ(log, (log_t{"victim fiber_exit at get", "put returned", "next got 8"}));
}

TEST(ChannelTest, CloseWakesWaitingGettersAndPuttersWithClosedError) {
  fern::channel<int> getters_ch, putters_ch;
  log_t log;
  auto getter = fern::spawn([&] {
    try {
      getters_ch.get();
      log.push_back("getter got");
    } catch (const fern::closed_error&) {
      log.push_back("getter closed_error");
    }
  });
  auto putter = fern::spawn([&] {
    try {
      putters_ch.put(1);
      log.push_back("putter put");
    } catch (const fern::closed_error&) {
      log.push_back("putter closed_error");
    }
  });
  fern::yield();
  log.push_back("close");
  getters_ch.close();
  putters_ch.close();
  EXPECT_TRUE(fern::joinall({getter, putter}));
  EXPECT_EQ(log, (log_t{"close", "getter closed_error", "putter closed_error"}));
  for (auto* ch : {&getters_ch, &putters_ch}) {
    EXPECT_TRUE(ch->closed());
    EXPECT_THROW(ch->put(1), fern::closed_error);
    EXPECT_THROW(ch->try_put(1), fern::closed_error);
    EXPECT_THROW(ch->get(), fern::closed_error);
    EXPECT_THROW(ch->try_get(), fern::closed_error);
    EXPECT_THROW(ch->get(1ms), fern::closed_error);
  }
}

TEST(ChannelTest, RootWaitingForAPartnerNoFiberCanBeThrowsLoopExit) {
  fern::channel<int> ch;
  EXPECT_THROW(ch.get(), fern::loop_exit);
  EXPECT_THROW(ch.put(1), fern::loop_exit);
  EXPECT_FALSE(ch.has_getters());
  EXPECT_FALSE(ch.has_putters());
}

}  // namespace
