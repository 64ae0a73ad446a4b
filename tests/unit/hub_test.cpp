// Unit tests for the hub (hub.hpp, hub.cpp): the deadlock check (fern::loop_exit) and what keeps
// a root wait alive, cross-thread post() and hub_handle, fiber_count(), default stack sizes, the
// run budget (a yielding fiber never starves timers or posted work), one independent hub per
// thread, and the orderly killing of fibers still alive at thread exit.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fern/event.hpp"
#include "fern/fiber.hpp"
#include "fern/hub.hpp"

using namespace std::chrono_literals;
using std::chrono::steady_clock;

// --- loop_exit --------------------------------------------------------------------------------

TEST(HubTest, RootWaitingOnEventNobodyCanSetThrowsLoopExit) {
  fern::event ev;
  auto t0 = steady_clock::now();
  EXPECT_THROW(ev.wait(), fern::loop_exit);
  EXPECT_LT(steady_clock::now() - t0, 5s);
  auto f = fern::spawn([] { return 1; });  // the hub still works afterwards
  EXPECT_EQ(f.get(), 1);
}

TEST(HubTest, JoiningAFiberThatWaitsForeverThrowsLoopExit) {
  fern::event ev;
  auto f = fern::spawn([&] { ev.wait(); });
  EXPECT_THROW(f.join(), fern::loop_exit);
  EXPECT_FALSE(f.ready());  // the fiber itself is not failed
  ev.set();
  EXPECT_TRUE(f.join());
  EXPECT_TRUE(f.successful());
}

TEST(HubTest, PendingTimersKeepTheRootWaitAlive) {
  fern::event ev;
  EXPECT_FALSE(ev.wait(20ms));  // its own timer: times out, no loop_exit
  auto setter = fern::spawn([&] {
    fern::sleep(20ms);
    ev.set();
  });
  EXPECT_TRUE(ev.wait());  // a sleeping fiber might still set it
  setter.join();
}

TEST(HubTest, LiveHandleInAnotherThreadKeepsTheRootWaitingAndItsPostWakesIt) {
  fern::event ev;
  std::atomic<bool> posted{false};
  std::thread::id ran_on;
  std::thread other([h = fern::hub::current().handle(), &ev, &posted, &ran_on] {
    std::this_thread::sleep_for(50ms);
    posted = h.post([&] {
      ran_on = std::this_thread::get_id();
      ev.set();
    });
  });
  bool woke = false;
  EXPECT_NO_THROW(woke = ev.wait());  // no loop_exit: the handle may still post
  other.join();
  EXPECT_TRUE(woke);
  EXPECT_TRUE(posted);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(HubTest, RootWaitFailsWithLoopExitOnceTheLastHandleIsDropped) {
  fern::event ev;
  std::thread other([h = fern::hub::current().handle()]() mutable {
    std::this_thread::sleep_for(30ms);
    h = fern::hub_handle();  // dropped without posting anything
  });
  auto t0 = steady_clock::now();
  EXPECT_THROW(ev.wait(), fern::loop_exit);
  EXPECT_GE(steady_clock::now() - t0, 20ms);  // not before the handle went away
  other.join();
}

// --- post and hub_handle ----------------------------------------------------------------------

TEST(HubTest, PostFromAnotherThreadRunsTheFunctionInAFiberOnTheHubThread) {
  fern::hub& hub = fern::hub::current();
  auto root = fern::current();
  fern::event ev;
  std::thread::id ran_on;
  bool in_new_fiber = false;
  std::atomic<bool> accepted{false};
  std::thread other([&] {
    accepted = hub.post([&] {
      ran_on = std::this_thread::get_id();
      in_new_fiber = !(fern::current() == root);
      ev.set();
    });
  });
  EXPECT_TRUE(ev.wait(5s));
  other.join();
  EXPECT_TRUE(accepted);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_TRUE(in_new_fiber);
}

TEST(HubTest, PostFromTheHubThreadRunsLaterInANewFiber) {
  bool ran = false;
  fern::event ev;
  EXPECT_TRUE(fern::hub::current().post([&] {
    ran = true;
    ev.set();
  }));
  EXPECT_FALSE(ran);  // never runs inline
  EXPECT_TRUE(ev.wait(5s));
  EXPECT_TRUE(ran);
}

TEST(HubTest, ManyPostsFromManyThreadsAllRun) {
  constexpr int threads = 4;
  constexpr int per_thread = 1000;
  int ran = 0;
  fern::event all_done;
  std::vector<std::thread> posters;
  for (int t = 0; t < threads; ++t)
    posters.emplace_back([h = fern::hub::current().handle(), &ran, &all_done] {
      for (int i = 0; i < per_thread; ++i)
        EXPECT_TRUE(h.post([&] {
          if (++ran == threads * per_thread) all_done.set();
        }));
    });
  EXPECT_TRUE(all_done.wait(10s));
  for (auto& t : posters) t.join();
  EXPECT_EQ(ran, threads * per_thread);
}

TEST(HubTest, HandlePostAfterTheHubThreadExitedReturnsFalseAndDropsTheFunction) {
  fern::hub_handle h;
  std::thread other([&h] { h = fern::hub::current().handle(); });
  other.join();
  auto token = std::make_shared<int>(0);
  EXPECT_FALSE(h.post([token] {}));
  EXPECT_EQ(token.use_count(), 1);
  EXPECT_FALSE(fern::hub_handle().post([] {}));  // an empty handle
}

TEST(HubTest, CopiedHandlesPostToTheSameHub) {
  fern::hub_handle a = fern::hub::current().handle();
  fern::hub_handle b = a;
  fern::hub_handle c;
  c = b;
  int ran = 0;
  fern::event ev;
  for (const fern::hub_handle* h : {&a, &b, &c})
    EXPECT_TRUE(h->post([&] {
      if (++ran == 3) ev.set();
    }));
  EXPECT_TRUE(ev.wait(5s));
  EXPECT_EQ(ran, 3);
}

// --- counters and settings ------------------------------------------------------------------

TEST(HubTest, FiberCountCountsSpawnedFibersUntilTheyFinish) {
  std::size_t fresh = 0;
  std::thread([&] { fresh = fern::hub::current().fiber_count(); }).join();
  EXPECT_EQ(fresh, 0u);  // the root is not counted

  fern::hub& hub = fern::hub::current();
  std::size_t base = hub.fiber_count();
  fern::event ev;
  auto a = fern::spawn([&] { ev.wait(); });
  auto b = fern::spawn_later(5ms, [] {});
  auto c = fern::spawn([] {});
  EXPECT_EQ(hub.fiber_count(), base + 3);
  fern::yield();
  EXPECT_EQ(hub.fiber_count(), base + 2);  // c finished
  EXPECT_TRUE(b.join());
  EXPECT_EQ(hub.fiber_count(), base + 1);
  ev.set();
  EXPECT_TRUE(a.join());
  EXPECT_EQ(hub.fiber_count(), base);
}

TEST(HubTest, CurrentIsOneHubPerThread) {
  fern::hub* mine = &fern::hub::current();
  EXPECT_EQ(&fern::hub::current(), mine);
  fern::hub* theirs = nullptr;
  std::string their_root_name;
  std::thread([&] {
    theirs = &fern::hub::current();
    their_root_name = fern::current().name();
  }).join();
  EXPECT_NE(theirs, mine);
  EXPECT_EQ(their_root_name, "root");
  EXPECT_EQ(fern::current().name(), "main");
}

TEST(HubTest, DefaultStackSizeIsRoundedToAPageAndAtLeast16KiB) {
  fern::hub& hub = fern::hub::current();
  if (!std::getenv("FERN_STACK_SIZE")) {
    EXPECT_EQ(hub.default_stack_size(), 256u * 1024);
  }
  std::size_t before = hub.default_stack_size();
  hub.set_default_stack_size(1);
  EXPECT_EQ(hub.default_stack_size(), 16u * 1024);
  hub.set_default_stack_size(20000);
  EXPECT_EQ(hub.default_stack_size(), 20480u);
  hub.set_default_stack_size(64 * 1024);
  auto f = fern::spawn([] {
    volatile char buf[48 * 1024];
    buf[0] = 1;
    buf[sizeof buf - 1] = 2;
    return buf[0] + buf[sizeof buf - 1];
  });
  EXPECT_EQ(f.get(), 3);
  hub.set_default_stack_size(before);
}

TEST(HubTest, YieldingFiberDoesNotStarveASleepingTimer) {
  constexpr long bound = 20'000'000;  // far more yields than a 5 ms sleep takes
  bool woke = false;
  long spins = 0;
  long spins_at_wake = -1;
  auto sleeper = fern::spawn([&] {
    fern::sleep(5ms);
    woke = true;
    spins_at_wake = spins;
  });
  auto spinner = fern::spawn([&] {
    while (!woke && spins < bound) {
      ++spins;
      fern::yield();
    }
  });
  EXPECT_TRUE(fern::joinall({sleeper, spinner}));
  EXPECT_TRUE(woke);
  EXPECT_LT(spins_at_wake, bound);
  EXPECT_GT(spins_at_wake, 0);
}

TEST(HubTest, YieldingFibersDoNotStarveASleepingTimerWithAnyRunBudget) {
  for (unsigned budget : {1u, 4u, 1000u}) {
    fern::hub::current().set_run_budget(budget);
    constexpr long bound = 20'000'000;
    bool woke = false;
    long spins = 0;
    auto sleeper = fern::spawn([&] {
      fern::sleep(5ms);
      woke = true;
    });
    auto spin = [&] {
      while (!woke && spins < bound) {
        ++spins;
        fern::yield();
      }
    };
    auto s1 = fern::spawn(spin);
    auto s2 = fern::spawn(spin);
    EXPECT_TRUE(fern::joinall({sleeper, s1, s2}));
    EXPECT_LT(spins, bound) << "budget " << budget;
  }
  fern::hub::current().set_run_budget(256);
}

TEST(HubTest, RunBudgetOfOneFiresDueTimersAtEveryYield) {
  fern::hub::current().set_run_budget(1);
  bool woke = false;
  auto sleeper = fern::spawn([&] {
    fern::sleep(1ms);
    woke = true;
  });
  fern::yield();  // the sleeper parks
  auto end = steady_clock::now() + 5ms;
  while (steady_clock::now() < end) {
  }
  fern::yield();  // the hub fires its timer
  fern::yield();  // and it runs
  EXPECT_TRUE(woke);
  fern::hub::current().set_run_budget(256);
  sleeper.join();
}

TEST(HubTest, YieldingFiberDoesNotStarvePostedWork) {
  std::atomic<bool> ran{false};
  long spins = 0;
  constexpr long bound = 20'000'000;
  auto spinner = fern::spawn([&] {
    while (!ran.load() && spins < bound) {
      ++spins;
      fern::yield();
    }
  });
  std::thread other([h = fern::hub::current().handle(), &ran] {
    std::this_thread::sleep_for(5ms);
    h.post([&] { ran = true; });
  });
  spinner.join();
  other.join();
  EXPECT_TRUE(ran.load());
  EXPECT_LT(spins, bound);
}

// --- threads --------------------------------------------------------------------------------

TEST(HubTest, FibersOnTwoThreadsRunIndependentlyOnTheirOwnHubs) {
  struct result {
    fern::hub* hub = nullptr;
    std::vector<std::string> events;
    std::vector<std::thread::id> fiber_threads;
    std::uint64_t first_id = 0;
  };
  auto body = [](result* r, std::string tag) {
    r->hub = &fern::hub::current();
    auto sleeper = fern::spawn([r, tag] {
      r->fiber_threads.push_back(std::this_thread::get_id());
      fern::sleep(200ms);
      r->events.push_back(tag + "-slept");
    });
    auto stepper = fern::spawn([r, tag] {
      r->fiber_threads.push_back(std::this_thread::get_id());
      for (int i = 0; i < 3; ++i) {
        r->events.push_back(tag + "-step");
        fern::yield();
      }
    });
    r->first_id = sleeper.id();
    fern::joinall({sleeper, stepper});
  };
  result a, b;
  auto t0 = steady_clock::now();
  std::thread ta(body, &a, std::string("a"));
  std::thread tb(body, &b, std::string("b"));
  std::thread::id ida = ta.get_id();
  std::thread::id idb = tb.get_id();
  ta.join();
  tb.join();
  auto elapsed = steady_clock::now() - t0;
  EXPECT_LT(elapsed, 380ms);  // the two 200 ms sleeps overlapped
  EXPECT_NE(a.hub, b.hub);
  EXPECT_NE(a.hub, &fern::hub::current());
  EXPECT_EQ(a.events, (std::vector<std::string>{"a-step", "a-step", "a-step", "a-slept"}));
  EXPECT_EQ(b.events, (std::vector<std::string>{"b-step", "b-step", "b-step", "b-slept"}));
  EXPECT_EQ(a.fiber_threads, (std::vector<std::thread::id>{ida, ida}));
  EXPECT_EQ(b.fiber_threads, (std::vector<std::thread::id>{idb, idb}));
  EXPECT_NE(a.first_id, b.first_id);  // ids are unique across the process
}

namespace {
struct count_on_destroy {
  std::atomic<int>* n;
  ~count_on_destroy() { ++*n; }
};
}  // namespace

TEST(HubTest, ThreadExitKillsItsLiveFibersAndRunsTheirDestructors) {
  std::atomic<int> destroyed{0};
  std::atomic<bool> cleanup_blocked_ok{false};
  std::atomic<bool> never_started_ran{false};
  fern::event never;  // outlives the thread's fibers
  auto token = std::make_shared<int>(0);
  testing::internal::CaptureStderr();
  std::thread t([&] {
    fern::spawn([&] {
      count_on_destroy g{&destroyed};
      fern::sleep(1h);
    });
    fern::spawn([&] {
      count_on_destroy g{&destroyed};
      never.wait();
    });
    fern::spawn([&] {
      count_on_destroy g{&destroyed};
      for (;;) fern::yield();
    });
    fern::spawn([&] {
      try {
        never.wait();
      } catch (const fern::fiber_exit&) {
        fern::sleep(5ms);  // cleanup may still block during shutdown
        cleanup_blocked_ok = true;
        throw;
      }
    });
    fern::yield();  // all of them start and park (or spin)
    fern::spawn([&, token] { never_started_ran = true; });
    fern::spawn_later(1h, [&, token] { never_started_ran = true; });
  });
  t.join();  // the thread ends although its fibers never would
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(destroyed.load(), 3);
  EXPECT_TRUE(cleanup_blocked_ok.load());
  EXPECT_FALSE(never_started_ran.load());
  EXPECT_EQ(token.use_count(), 1);  // the unstarted fibers' callables were destroyed
  EXPECT_EQ(err.find("abandoned"), std::string::npos) << err;
  EXPECT_EQ(err.find("failed"), std::string::npos) << err;  // kills are not reported
}

// Fibers that never ran are killed at thread (and process) exit without running, and their
// control blocks are freed: in the ASan build LeakSanitizer checks that when the child exits.
TEST(HubTest, ThreadExitRetiresFibersThatNeverRan) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        fern::fiber<void> kept;
        std::thread t([&kept] {
          kept = fern::spawn([] { std::abort(); });
          fern::spawn([] { std::abort(); });
          fern::spawn_later(1ms, [] { std::abort(); });
        });
        t.join();
        bool ok = kept.ready() && !kept.successful();
        kept = fern::fiber<void>();
        std::exit(ok ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
}

namespace {
// Spawns in its own frame, so no stale copy of the fibers' addresses stays in the caller's live
// frame for LeakSanitizer's conservative scan to find.
[[gnu::noinline]] void spawn_fibers_that_must_not_run() {
  fern::spawn([] { std::abort(); });
  fern::spawn([] { std::abort(); });
}
}  // namespace

TEST(HubTest, ProcessExitRetiresFibersThatNeverRan) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        spawn_fibers_that_must_not_run();
        std::exit(0);
      },
      testing::ExitedWithCode(0), "");
}
