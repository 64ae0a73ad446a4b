// fern::queue / lifo_queue / priority_queue: ordering, bounded put blocking and resuming, the
// no-switch fast paths, try_put/try_get, timeouts that leave the argument and the queue as they
// were, the enclosing fern::timeout scope and kill() removing the waiter, close() waking both
// sides, task_done/join, loop_exit in the root, and many producers/consumers.
#include <gtest/gtest.h>
#include <fern/fern.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace std::chrono_literals;

using fern_test::ended_by_kill;
using fern_test::log_t;

namespace {

TEST(QueueTest, FifoQueueReturnsItemsInPutOrder) {
  fern::queue<int> q;
  for (int v : {3, 1, 2}) q.put(v);
  EXPECT_EQ(q.size(), 3u);
  std::vector<int> out;
  while (!q.empty()) out.push_back(q.get());
  EXPECT_EQ(out, (std::vector<int>{3, 1, 2}));
}

TEST(QueueTest, LifoQueueReturnsNewestFirst) {
  fern::lifo_queue<int> q;
  for (int v : {3, 1, 2}) q.put(v);
  std::vector<int> out;
  while (!q.empty()) out.push_back(q.get());
  EXPECT_EQ(out, (std::vector<int>{2, 1, 3}));
}

TEST(QueueTest, PriorityQueueReturnsSmallestFirst) {
  fern::priority_queue<int> q;
  for (int v : {5, 1, 4, 1, 3, 9, 2}) q.put(v);
  std::vector<int> out;
  while (!q.empty()) out.push_back(q.get());
  EXPECT_EQ(out, (std::vector<int>{1, 1, 2, 3, 4, 5, 9}));

  fern::priority_queue<int, std::greater<int>> rq;  // "smallest" under greater<> is the largest
  for (int v : {5, 1, 4}) rq.put(v);
  EXPECT_EQ(rq.get(), 5);
  EXPECT_EQ(rq.get(), 4);
  EXPECT_EQ(rq.get(), 1);
}

TEST(QueueTest, BoundedLifoAndPriorityQueuesBlockAndCloseLikeTheFifoQueue) {
  fern::lifo_queue<int> lq(2);
  fern::priority_queue<int> pq(2);
  log_t log;
  auto lifo_putter = fern::spawn([&] {
    for (int v : {1, 2, 3}) lq.put(v);
    log.push_back("lifo put 3");
    try {
      lq.put(4);
    } catch (const fern::closed_error&) {
      log.push_back("lifo put 4 closed_error");
    }
  });
  auto prio_putter = fern::spawn([&] {
    for (int v : {5, 4, 3}) pq.put(v);
    log.push_back("prio put 3");
  });
  fern::yield();  // both block on their third put
  EXPECT_TRUE(lq.full());
  EXPECT_TRUE(pq.full());
  log.push_back("lifo got " + std::to_string(lq.get()));  // 2: newest first
  log.push_back("prio got " + std::to_string(pq.get()));  // 4: smallest of {5, 4}
  fern::yield();
  log.push_back("close");
  lq.close();
  EXPECT_TRUE(fern::joinall({lifo_putter, prio_putter}));
  EXPECT_EQ(lq.get(), 3);
  EXPECT_EQ(lq.get(), 1);
  EXPECT_THROW(lq.get(), fern::closed_error);
  EXPECT_EQ(pq.get(), 3);
  EXPECT_EQ(pq.get(), 5);
  EXPECT_EQ(log, (log_t{"lifo got 2", "prio got 4", "lifo put 3", "prio put 3", "close",
                        "lifo put 4 closed_error"}));
}

TEST(QueueTest, UnboundedPutAndAvailableGetDoNotSwitch) {
  fern::queue<int> q;
  log_t log;
  auto other = fern::spawn([&] { log.push_back("other"); });
  for (int i = 0; i < 1000; ++i) q.put(i);
  EXPECT_FALSE(q.full());
  EXPECT_EQ(q.get(), 0);
  EXPECT_EQ(q.get(1ms), std::optional<int>(1));
  log.push_back("root done");
  other.join();
  EXPECT_EQ(log, (log_t{"root done", "other"}));
  EXPECT_EQ(q.size(), 998u);
}

TEST(QueueTest, BoundedPutBlocksWhenFullAndResumesWhenAGetMakesRoom) {
  fern::queue<int> q(2);
  log_t log;
  auto producer = fern::spawn([&] {
    for (int i = 0; i < 4; ++i) {
      q.put(i);
      log.push_back("put " + std::to_string(i));
    }
  });
  fern::yield();  // the producer fills the queue and blocks on its third put
  EXPECT_TRUE(q.full());
  for (int i = 0; i < 4; ++i) {
    int v = q.get();
    log.push_back("got " + std::to_string(v));
    fern::yield();
  }
  producer.join();
  EXPECT_EQ(log, (log_t{"put 0", "put 1", "got 0", "put 2", "got 1", "put 3", "got 2", "got 3"}));
  EXPECT_TRUE(q.empty());
}

TEST(QueueTest, GetBlocksUntilAPut) {
  fern::queue<std::string> q;
  log_t log;
  auto consumer = fern::spawn([&] {
    log.push_back("get");
    log.push_back("got " + q.get());
  });
  fern::yield();
  log.push_back("put");
  q.put("x");
  consumer.join();
  EXPECT_EQ(log, (log_t{"get", "put", "got x"}));
}

TEST(QueueTest, TryPutAndTryGetNeverBlock) {
  fern::queue<int> q(1);
  EXPECT_EQ(q.try_get(), std::nullopt);
  EXPECT_TRUE(q.try_put(1));
  EXPECT_FALSE(q.try_put(2));
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.try_get(), std::optional<int>(1));
  EXPECT_EQ(q.try_get(), std::nullopt);
  EXPECT_EQ(q.unfinished_tasks(), 1u);  // only the successful put counts
}

TEST(QueueTest, PutTimeoutOnFullQueueLeavesTheArgumentAndTheQueueUnchanged) {
  fern::queue<std::string> q(1);
  q.put("first");
  std::string s = "a string long enough to live on the heap, not in the SSO buffer";
  const std::string copy = s;
  EXPECT_FALSE(q.put(std::move(s), 10ms));
  EXPECT_EQ(s, copy);
  EXPECT_FALSE(q.try_put(std::move(s)));
  EXPECT_EQ(s, copy);
  EXPECT_FALSE(q.put(s, 1ms));
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.unfinished_tasks(), 1u);
  EXPECT_EQ(q.get(), "first");

  fern::queue<std::unique_ptr<int>> uq(1);
  uq.put(std::make_unique<int>(1));
  auto p = std::make_unique<int>(7);
  EXPECT_FALSE(uq.put(std::move(p), 10ms));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 7);
  EXPECT_FALSE(uq.try_put(std::move(p)));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(uq.size(), 1u);
  EXPECT_EQ(*uq.get(), 1);
  EXPECT_TRUE(uq.put(std::move(p), 10ms));
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(*uq.get(), 7);
}

TEST(QueueTest, GetTimeoutReturnsNulloptAndLeavesTheWaitList) {
  fern::queue<int> q;
  log_t log;
  auto early = fern::spawn([&] {
    auto v = q.get(10ms);
    log.push_back(v ? "early got" : "early timed out");
  });
  auto patient = fern::spawn([&] { log.push_back("patient got " + std::to_string(q.get())); });
  early.join();  // it gives up first
  log.push_back("put");
  q.put(5);
  EXPECT_TRUE(fern::joinall({early, patient}));
  EXPECT_EQ(log, (log_t{"early timed out", "put", "patient got 5"}));
  EXPECT_TRUE(q.empty());
}

TEST(QueueTest, EnclosingTimeoutScopeOnGetThrowsAndTheNextGetterReceivesTheItem) {
  fern::queue<int> q;
  log_t log;
  auto scoped = fern::spawn([&] {
    fern::timeout t(10ms);
    try {
      log.push_back("scoped got " + std::to_string(q.get()));
    } catch (const fern::timeout_error& e) {
      EXPECT_TRUE(e.is(t));
      log.push_back("scoped timeout_error");
    }
  });
  auto patient = fern::spawn([&] { log.push_back("patient got " + std::to_string(q.get())); });
  scoped.join();  // it gives up first
  log.push_back("put");
  q.put(5);
  EXPECT_TRUE(fern::joinall({scoped, patient}));
  EXPECT_EQ(log, (log_t{"scoped timeout_error", "put", "patient got 5"}));
  EXPECT_TRUE(q.empty());
}

TEST(QueueTest, EnclosingTimeoutScopeOnPutThrowsAndQueuesNothing) {
  fern::queue<std::string> q(1);
  q.put("first");
  log_t log;
  std::string arg = "scoped item";
  auto scoped = fern::spawn([&] {
    fern::timeout t(10ms);
    try {
      q.put(std::move(arg));
      log.push_back("scoped put");
    } catch (const fern::timeout_error& e) {
      EXPECT_TRUE(e.is(t));
      log.push_back("scoped timeout_error");
    }
  });
  auto patient = fern::spawn([&] {
    q.put("patient item");
    log.push_back("patient put");
  });
  scoped.join();  // it gives up first
  EXPECT_EQ(arg, "scoped item");
  log.push_back("got " + q.get());
  log.push_back("got " + q.get());
  EXPECT_TRUE(fern::joinall({scoped, patient}));
  EXPECT_EQ(log, (log_t{"scoped timeout_error", "got first", "patient put", "got patient item"}));
  EXPECT_TRUE(q.empty());
}

TEST(QueueTest, KilledGetterLeavesAndThePutGoesToTheNextGetter) {
  fern::queue<int> q;
  log_t log;
  auto victim = fern::spawn([&] {
    try {
      log.push_back("victim got " + std::to_string(q.get()));
    } catch (const fern::fiber_exit&) {
      log.push_back("victim fiber_exit at get");
      throw;
    }
  });
  auto next = fern::spawn([&] { log.push_back("next got " + std::to_string(q.get())); });
  fern::yield();
  EXPECT_TRUE(victim.kill());
  EXPECT_TRUE(ended_by_kill(victim));
  log.push_back("put");
  q.put(9);
  next.join();
  EXPECT_EQ(log, (log_t{"victim fiber_exit at get", "put", "next got 9"}));
  EXPECT_TRUE(q.empty());
}

TEST(QueueTest, KilledPutterOnAFullQueueQueuesNothing) {
  fern::queue<int> q(1);
  q.put(1);
  log_t log;
  auto victim = fern::spawn([&] {
    try {
      q.put(2);
      log.push_back("victim put");
    } catch (const fern::fiber_exit&) {
      log.push_back("victim fiber_exit at put");
      throw;
    }
  });
  auto next = fern::spawn([&] {
    q.put(3);
    log.push_back("next put");
  });
  fern::yield();
  EXPECT_TRUE(victim.kill());
  EXPECT_TRUE(ended_by_kill(victim));
  log.push_back("got " + std::to_string(q.get()));
  next.join();
  log.push_back("got " + std::to_string(q.get()));
  EXPECT_EQ(log, (log_t{"victim fiber_exit at put", "got 1", "next put", "got 3"}));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.unfinished_tasks(), 2u);
}

TEST(QueueTest, CloseWakesWaitingGettersWithClosedError) {
  fern::queue<int> q;
  log_t log;
  std::vector<fern::fiber<void>> gs;
  for (int i = 0; i < 2; ++i)
    gs.push_back(fern::spawn([&, i] {
      try {
        q.get();
        log.push_back("getter " + std::to_string(i) + " got");
      } catch (const fern::closed_error&) {
        log.push_back("getter " + std::to_string(i) + " closed_error");
      }
    }));
  fern::yield();
  log.push_back("close");
  q.close();
  EXPECT_TRUE(q.closed());
  EXPECT_TRUE(fern::joinall(gs));
  EXPECT_EQ(log, (log_t{"close", "getter 0 closed_error", "getter 1 closed_error"}));
}

TEST(QueueTest, CloseWakesWaitingPuttersAndLaterPutsThrowClosedError) {
  fern::queue<int> q(1);
  q.put(1);
  log_t log;
  auto putter = fern::spawn([&] {
    try {
      q.put(2);
      log.push_back("putter put");
    } catch (const fern::closed_error&) {
      log.push_back("putter closed_error");
    }
  });
  fern::yield();
  log.push_back("close");
  q.close();
  putter.join();
  EXPECT_EQ(log, (log_t{"close", "putter closed_error"}));
  EXPECT_THROW(q.put(3), fern::closed_error);
  EXPECT_THROW(q.try_put(3), fern::closed_error);
  EXPECT_THROW(q.put(3, 10ms), fern::closed_error);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.get(), 1);
}

TEST(QueueTest, GetDrainsRemainingItemsAfterCloseThenThrowsClosedError) {
  fern::queue<int> q;
  q.put(1);
  q.put(2);
  q.close();
  EXPECT_EQ(q.get(), 1);
  EXPECT_EQ(q.try_get(), std::optional<int>(2));
  EXPECT_THROW(q.get(), fern::closed_error);
  EXPECT_THROW(q.try_get(), fern::closed_error);
  EXPECT_THROW(q.get(10ms), fern::closed_error);
}

TEST(QueueTest, TaskDoneAndJoin) {
  fern::queue<int> q;
  log_t log;
  for (int i = 0; i < 3; ++i) q.put(i);
  EXPECT_EQ(q.unfinished_tasks(), 3u);
  auto joiner = fern::spawn([&] {
    EXPECT_TRUE(q.join());
    log.push_back("joined");
  });
  auto worker = fern::spawn([&] {
    for (int i = 0; i < 3; ++i) {
      int v = q.get();
      fern::yield();
      log.push_back("done " + std::to_string(v));
      q.task_done();
    }
  });
  EXPECT_TRUE(fern::joinall({joiner, worker}));
  EXPECT_EQ(log, (log_t{"done 0", "done 1", "done 2", "joined"}));
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  EXPECT_TRUE(q.join(0ns));
}

TEST(QueueTest, JoinTimeoutReturnsFalseWhileTasksAreUnfinished) {
  fern::queue<int> q;
  q.put(1);
  EXPECT_EQ(q.get(), 1);
  EXPECT_FALSE(q.join(10ms));
  q.task_done();
  EXPECT_TRUE(q.join(10ms));
}

TEST(QueueTest, TaskDoneCalledTooOftenThrowsLogicError) {
  fern::queue<int> q;
  EXPECT_THROW(q.task_done(), std::logic_error);
  q.put(1);
  q.get();
  q.task_done();
  EXPECT_THROW(q.task_done(), std::logic_error);
  EXPECT_EQ(q.unfinished_tasks(), 0u);
}

TEST(QueueTest, RootWaitingOnAQueueNoFiberServesThrowsLoopExit) {
  fern::queue<int> q(1);
  EXPECT_THROW(q.get(), fern::loop_exit);
  q.put(1);
  EXPECT_THROW(q.put(2), fern::loop_exit);
  EXPECT_THROW(q.join(), fern::loop_exit);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.get(), 1);
}

TEST(QueueTest, ManyProducersAndConsumersDeliverEveryItemExactlyOnce) {
  constexpr int producers = 4, per_producer = 1000, consumers = 3;
  fern::queue<int> q(8);
  std::vector<std::vector<int>> got(consumers);
  std::size_t max_size = 0;
  std::vector<fern::fiber<void>> ps, cs;
  for (int c = 0; c < consumers; ++c)
    cs.push_back(fern::spawn([&, c] {
      try {
        for (;;) {
          got[c].push_back(q.get());
          if (got[c].size() % 7 == 0) fern::yield();
        }
      } catch (const fern::closed_error&) {
      }
    }));
  for (int p = 0; p < producers; ++p)
    ps.push_back(fern::spawn([&, p] {
      for (int i = 0; i < per_producer; ++i) {
        q.put(p * per_producer + i);
        max_size = std::max(max_size, q.size());
        if (i % 5 == 0) fern::yield();
      }
    }));
  EXPECT_TRUE(fern::joinall(ps));
  q.close();
  EXPECT_TRUE(fern::joinall(cs));
  EXPECT_LE(max_size, 8u);
  std::vector<int> all;
  for (int c = 0; c < consumers; ++c) {
    EXPECT_FALSE(got[c].empty()) << "consumer " << c << " got nothing";
    // FIFO: each consumer sees any one producer's items in increasing order.
    std::vector<int> last(producers, -1);
    for (int v : got[c]) {
      EXPECT_GT(v, last[v / per_producer]);
      last[v / per_producer] = v;
    }
    all.insert(all.end(), got[c].begin(), got[c].end());
  }
  std::sort(all.begin(), all.end());
  std::vector<int> expected(producers * per_producer);
  for (int i = 0; i < producers * per_producer; ++i) expected[i] = i;
  EXPECT_EQ(all, expected);
}

}  // namespace

namespace {

TEST(QueueDeathTest, DestroyingAQueueWhileAFiberWaitsOnItAborts) {
  EXPECT_DEATH(
      {
        auto* q = new fern::queue<int>;
        auto w = fern::spawn([q] { q->get(); });
        fern::yield();
        delete q;
      },
      "fern::queue destroyed while fibers wait on it");
}

}  // namespace
