// fern::group and fern::pool: membership (spawn/add/discard/contains/size), join including
// members added while joining, join(raise_error), kill, map keeping input order; for pool the
// capacity limit (max concurrency), spawn blocking while full, try_spawn's empty handle, a member
// killed before it ran freeing its slot, wait_available, free_count, and pool(0) misuse.
#include <gtest/gtest.h>
#include <fern/fern.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace std::chrono_literals;

using fern_test::ended_by_kill;
using fern_test::log_t;

namespace {

// --- group --------------------------------------------------------------------------------------

TEST(GroupTest, SpawnAddDiscardContainsAndSize) {
  fern::group g;
  fern::event go;
  auto a = g.spawn([&] { go.wait(); });
  auto b = fern::spawn([&] { go.wait(); });
  EXPECT_TRUE(g.contains(a));
  EXPECT_FALSE(g.contains(b));
  EXPECT_EQ(g.size(), 1u);
  g.add(b);
  EXPECT_TRUE(g.contains(b));
  EXPECT_EQ(g.size(), 2u);
  EXPECT_EQ(g.fibers().size(), 2u);
  g.discard(b);
  EXPECT_FALSE(g.contains(b));
  EXPECT_EQ(g.size(), 1u);
  g.discard(b);  // not a member: nothing happens
  EXPECT_EQ(g.size(), 1u);
  go.set();
  EXPECT_TRUE(g.join());
  EXPECT_EQ(g.size(), 0u);  // finished members do not count
  EXPECT_TRUE(b.join());
}

TEST(GroupTest, JoinWaitsForMembersAddedWhileJoining) {
  fern::group g;
  log_t log;
  g.spawn([&] {
    fern::sleep(2ms);
    g.spawn([&] {
      fern::sleep(10ms);
      log.push_back("late member done");
    });
    log.push_back("first member done");
  });
  EXPECT_TRUE(g.join());
  log.push_back("joined");
  EXPECT_EQ(log, (log_t{"first member done", "late member done", "joined"}));
  EXPECT_EQ(g.size(), 0u);
}

TEST(GroupTest, JoinTimeoutReturnsFalseWhileMembersRun) {
  fern::group g;
  fern::event go;
  auto f = g.spawn([&] { go.wait(); });
  EXPECT_FALSE(g.join(10ms));
  EXPECT_FALSE(f.ready());
  go.set();
  EXPECT_TRUE(g.join(1s));
}

TEST(GroupTest, EnclosingTimeoutScopeAroundJoinThrowsTimeoutError) {
  fern::group g;
  fern::event go;
  auto member = g.spawn([&] { go.wait(); });
  {
    fern::timeout t(10ms);
    try {
      g.join();
      ADD_FAILURE() << "join returned";
    } catch (const fern::timeout_error& e) {
      EXPECT_TRUE(e.is(t));
    }
  }
  EXPECT_FALSE(member.ready());  // the member is not affected
  go.set();
  EXPECT_TRUE(g.join());
}

TEST(GroupTest, KillOfAFiberWaitingInJoinLeavesTheMembersRunning) {
  fern::group g;
  fern::event go;
  log_t log;
  auto member = g.spawn([&] {
    go.wait();
    log.push_back("member done");
  });
  auto joiner = fern::spawn([&] {
    try {
      g.join();
      log.push_back("joiner returned");
    } catch (const fern::fiber_exit&) {
      log.push_back("joiner fiber_exit at join");
      throw;
    }
  });
  fern::yield();
  EXPECT_TRUE(joiner.kill());
  EXPECT_TRUE(ended_by_kill(joiner));
  EXPECT_FALSE(member.ready());
  go.set();
  EXPECT_TRUE(g.join());
  EXPECT_EQ(log, (log_t{"joiner fiber_exit at join", "member done"}));
}

TEST(GroupTest, JoinOfFinishedMembersDoesNotSwitch) {
  fern::group g;
  auto a = g.spawn([] {});
  a.join();
  log_t log;
  auto other = fern::spawn([&] { log.push_back("other"); });
  EXPECT_TRUE(g.join());
  log.push_back("joined");
  other.join();
  EXPECT_EQ(log, (log_t{"joined", "other"}));
}

TEST(GroupTest, JoinWithRaiseErrorRethrowsTheFirstFailure) {
  fern::group g;
  fern::event go;
  g.spawn([] {
    fern::sleep(1ms);
    throw std::runtime_error("member failed");
  });
  auto slow = g.spawn([&] { go.wait(); });
  EXPECT_THROW(g.join(std::nullopt, true), std::runtime_error);
  EXPECT_FALSE(slow.ready());  // raise_error does not wait for the rest
  go.set();
  EXPECT_TRUE(g.join());  // without raise_error a failure is just a finished member
  EXPECT_THROW(g.join(std::nullopt, true), std::runtime_error);
}

TEST(GroupTest, KilledMembersAreNotFailuresForRaiseError) {
  fern::group g;
  fern::event never;
  auto f = g.spawn([&] { never.wait(); });
  fern::yield();
  EXPECT_TRUE(f.kill());
  EXPECT_NO_THROW(EXPECT_TRUE(g.join(std::nullopt, true)));
}

TEST(GroupTest, KillEndsEveryMemberWithFiberExit) {
  fern::group g;
  fern::event never;
  log_t log;
  std::vector<fern::fiber<void>> fs;
  for (int i = 0; i < 3; ++i)
    fs.push_back(g.spawn([&, i] {
      try {
        never.wait();
      } catch (const fern::fiber_exit&) {
        log.push_back("member " + std::to_string(i) + " fiber_exit");
        throw;
      }
    }));
  fern::yield();                                                      // the three wait
  auto unstarted = g.spawn([&] { log.push_back("unstarted ran"); });  // queued, never run
  EXPECT_TRUE(g.kill());
  EXPECT_EQ(g.size(), 0u);
  for (auto& f : fs) EXPECT_TRUE(ended_by_kill(f));
  EXPECT_TRUE(ended_by_kill(unstarted));
  EXPECT_EQ(log, (log_t{"member 0 fiber_exit", "member 1 fiber_exit", "member 2 fiber_exit"}));
}

TEST(GroupTest, MapReturnsResultsInInputOrderWhateverTheCompletionOrder) {
  fern::group g;
  std::vector<int> finished;
  std::vector<int> in{0, 1, 2, 3, 4, 5};
  auto out = g.map(
      [&](int i) {
        for (int k = 0; k < 6 - i; ++k) fern::yield();  // later items finish first
        finished.push_back(i);
        return i * i;
      },
      in);
  EXPECT_EQ(out, (std::vector<int>{0, 1, 4, 9, 16, 25}));
  EXPECT_EQ(finished, (std::vector<int>{5, 4, 3, 2, 1, 0}));
}

TEST(GroupTest, MapRethrowsTheFirstExceptionInInputOrder) {
  fern::group g;
  std::vector<int> in{0, 1, 2, 3};
  try {
    g.map(
        [](int i) {
          for (int k = 0; k < 4 - i; ++k) fern::yield();  // item 3 fails first in time
          if (i == 1) throw std::runtime_error("item 1");
          if (i == 3) throw std::runtime_error("item 3");
          return i;
        },
        in);
    FAIL() << "map did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "item 1");
  }
  EXPECT_TRUE(g.join());
}

TEST(GroupTest, MapOfVoidRunsEveryItem) {
  fern::group g;
  std::vector<std::string> seen;
  std::vector<std::string> in{"a", "b", "c"};
  g.map([&](const std::string& s) { seen.push_back(s); }, in);
  EXPECT_EQ(seen, in);
}

// --- pool ---------------------------------------------------------------------------------------

TEST(PoolTest, ZeroCapacityThrowsInvalidArgument) {
  EXPECT_THROW(fern::pool(0), std::invalid_argument);
}

TEST(PoolTest, NeverRunsMoreThanCapacityAtOnce) {
  fern::pool p(3);
  EXPECT_EQ(p.capacity(), 3u);
  int running = 0, max_running = 0, done = 0;
  for (int i = 0; i < 10; ++i)
    p.spawn([&, i] {
      max_running = std::max(max_running, ++running);
      for (int k = 0; k < 1 + i % 3; ++k) fern::sleep(1ms);
      --running;
      ++done;
    });
  EXPECT_TRUE(p.join());
  EXPECT_EQ(done, 10);
  EXPECT_EQ(max_running, 3);
  EXPECT_EQ(p.free_count(), 3u);
}

TEST(PoolTest, SpawnBlocksWhileFullUntilAMemberFinishes) {
  fern::pool p(2);
  fern::event e0, e1;
  log_t log;
  auto spawner = fern::spawn([&] {
    p.spawn([&] {
      e0.wait();
      log.push_back("m0 done");
    });
    p.spawn([&] {
      e1.wait();
      log.push_back("m1 done");
    });
    EXPECT_TRUE(p.full());
    log.push_back("spawning m2");
    p.spawn([&] { log.push_back("m2 ran"); });
    log.push_back("spawned m2");
  });
  fern::sleep(1ms);  // spawner blocks in its third spawn; m0 and m1 wait on their events
  EXPECT_FALSE(spawner.ready());
  EXPECT_EQ(p.free_count(), 0u);
  log.push_back("finish m0");
  e0.set();
  spawner.join();
  e1.set();
  EXPECT_TRUE(p.join());
  EXPECT_EQ(log, (log_t{"spawning m2", "finish m0", "m0 done", "spawned m2", "m2 ran", "m1 done"}));
  EXPECT_EQ(p.free_count(), 2u);
}

TEST(PoolTest, TrySpawnReturnsAnEmptyHandleWhenNoSlotFrees) {
  fern::pool p(1);
  fern::event go;
  bool ran = false;
  auto member = p.spawn([&] { go.wait(); });
  auto f = p.try_spawn(10ms, [&] {
    ran = true;
    return 1;
  });
  EXPECT_FALSE(f.valid());
  EXPECT_EQ(p.free_count(), 0u);
  go.set();
  member.join();
  EXPECT_EQ(p.free_count(), 1u);
  auto g = p.try_spawn(10ms, [&] {
    ran = true;
    return 2;
  });
  ASSERT_TRUE(g.valid());
  EXPECT_EQ(g.get(), 2);
  EXPECT_TRUE(ran);
}

TEST(PoolTest, MemberKilledBeforeItRanFreesItsSlot) {
  fern::pool p(1);
  bool ran = false;
  auto f = p.spawn([&] { ran = true; });
  EXPECT_EQ(p.free_count(), 0u);
  EXPECT_TRUE(f.kill());
  EXPECT_TRUE(ended_by_kill(f));
  EXPECT_EQ(p.free_count(), 1u);
  log_t log;
  auto other = fern::spawn([&] { log.push_back("other"); });
  auto g = p.spawn([&] { log.push_back("second member"); });  // a free slot: no switch
  log.push_back("spawned");
  EXPECT_TRUE(fern::joinall({other, g}));
  EXPECT_FALSE(ran);
  EXPECT_EQ(log, (log_t{"spawned", "other", "second member"}));
  EXPECT_EQ(p.free_count(), 1u);
}

TEST(PoolTest, MapKeepsInputOrderWithCapacityThreeOverTwentyItems) {
  fern::pool p(3);
  std::vector<int> in;
  for (int i = 0; i < 20; ++i) in.push_back(i);
  int running = 0, max_running = 0;
  std::vector<int> finished;
  auto out = p.map(
      [&](int i) {
        max_running = std::max(max_running, ++running);
        for (int k = 0; k < (i * 7) % 5; ++k) fern::yield();
        --running;
        finished.push_back(i);
        return std::to_string(i);
      },
      in);
  ASSERT_EQ(out.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(out[i], std::to_string(i));
  EXPECT_EQ(max_running, 3);
  EXPECT_NE(finished, in);  // they really completed out of order
  EXPECT_EQ(p.free_count(), 3u);
}

TEST(PoolTest, WaitAvailableWaitsForASlotWithoutTakingIt) {
  fern::pool p(1);
  fern::event go;
  log_t log;
  auto member = p.spawn([&] {
    go.wait();
    log.push_back("member done");
  });
  EXPECT_FALSE(p.wait_available(10ms));
  auto watcher = fern::spawn([&] {
    EXPECT_TRUE(p.wait_available());
    log.push_back("available");
  });
  fern::yield();
  log.push_back("set");
  go.set();
  EXPECT_TRUE(fern::joinall({member, watcher}));
  EXPECT_EQ(log, (log_t{"set", "member done", "available"}));
  EXPECT_EQ(p.free_count(), 1u);
  EXPECT_TRUE(p.wait_available(0ns));
}

TEST(PoolTest, FreeCountTracksRunningMembers) {
  fern::pool p(3);
  fern::event go;
  EXPECT_EQ(p.free_count(), 3u);
  p.spawn([&] { go.wait(); });
  EXPECT_EQ(p.free_count(), 2u);
  p.spawn([&] { go.wait(); });
  p.spawn([&] { throw std::runtime_error("a failing member frees its slot too"); });
  EXPECT_EQ(p.free_count(), 0u);
  EXPECT_TRUE(p.full());
  fern::yield();
  EXPECT_EQ(p.free_count(), 1u);
  go.set();
  EXPECT_TRUE(p.join());
  EXPECT_EQ(p.free_count(), 3u);
  EXPECT_FALSE(p.full());
}

TEST(PoolTest, KillOfAFiberBlockedInSpawnLosesNoSlot) {
  fern::pool p(1);
  fern::event go;
  log_t log;
  auto member = p.spawn([&] { go.wait(); });
  auto spawner = fern::spawn([&] {
    try {
      p.spawn([&] { log.push_back("never spawned"); });
      log.push_back("spawn returned");
    } catch (const fern::fiber_exit&) {
      log.push_back("spawner fiber_exit at spawn");
      throw;
    }
  });
  fern::yield();
  EXPECT_TRUE(spawner.kill());
  EXPECT_TRUE(ended_by_kill(spawner));
  go.set();
  member.join();
  EXPECT_EQ(p.free_count(), 1u);
  EXPECT_EQ(log, (log_t{"spawner fiber_exit at spawn"}));
}

TEST(PoolTest, EnclosingTimeoutScopeOnAFullPoolThrowsTimeoutError) {
  fern::pool p(1);
  fern::event go;
  auto member = p.spawn([&] { go.wait(); });
  bool ran = false;
  {
    fern::timeout t(10ms);
    try {
      p.spawn([&] { ran = true; });
      ADD_FAILURE() << "spawn returned on a full pool";
    } catch (const fern::timeout_error& e) {
      EXPECT_TRUE(e.is(t));
    }
  }
  go.set();
  EXPECT_TRUE(p.join());
  EXPECT_FALSE(ran);
  EXPECT_EQ(p.free_count(), 1u);
}

TEST(PoolTest, RootSpawningIntoAPoolNoMemberWillLeaveThrowsLoopExit) {
  fern::pool p(1);
  fern::event never;
  auto member = p.spawn([&] { never.wait(); });
  EXPECT_THROW(p.spawn([] {}), fern::loop_exit);
  EXPECT_TRUE(p.kill());
  EXPECT_TRUE(ended_by_kill(member));
  EXPECT_EQ(p.free_count(), 1u);
}

}  // namespace
