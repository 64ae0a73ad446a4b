// Unit tests for fern::timeout and fern::with_timeout (timeout.hpp): expiry at blocking points,
// nesting (the earliest deadline wins, and timeout_error names its scope), cancel(), the sticky
// behaviour of an expired scope, expired()/remaining(), and the interplay with a blocking call's
// own timeout.
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>

#include "fern/event.hpp"
#include "fern/fiber.hpp"
#include "fern/timeout.hpp"

using namespace std::chrono_literals;
using std::chrono::steady_clock;

namespace {
// Spins without reaching a blocking point.
void busy_wait(std::chrono::nanoseconds d) {
  auto end = steady_clock::now() + d;
  while (steady_clock::now() < end) {
  }
}
}  // namespace

TEST(TimeoutTest, ExpiredScopeThrowsTimeoutErrorNamingItAtTheBlockingPoint) {
  fern::event ev;
  auto t0 = steady_clock::now();
  fern::timeout t(20ms);
  try {
    ev.wait();
    ADD_FAILURE() << "wait returned";
  } catch (const fern::timeout_error& e) {
    EXPECT_TRUE(e.is(t));
    EXPECT_EQ(e.source(), &t);
  }
  EXPECT_GE(steady_clock::now() - t0, 20ms);
  EXPECT_TRUE(t.expired());
}

TEST(TimeoutTest, ScopeInsideAFiberInterruptsItsSleep) {
  auto f = fern::spawn([] {
    fern::timeout t(10ms);
    try {
      fern::sleep(10s);
    } catch (const fern::timeout_error& e) {
      return e.is(t);
    }
    return false;
  });
  EXPECT_TRUE(f.get(5s));
}

TEST(TimeoutTest, WithTimeoutReturnsTheResultOrThrows) {
  EXPECT_EQ(fern::with_timeout(1s,
                               [] {
                                 fern::sleep(1ms);
                                 return 5;
                               }),
            5);
  try {
    fern::with_timeout(10ms, [] { fern::sleep(10s); });
    ADD_FAILURE() << "with_timeout returned";
  } catch (const fern::timeout_error& e) {
    EXPECT_NE(e.source(), nullptr);  // its own (internal) scope fired
  }
}

TEST(TimeoutTest, NestedInnerShorterScopeFiresTheInner) {
  fern::timeout outer(1s);
  fern::timeout inner(20ms);
  try {
    fern::sleep(5s);
    ADD_FAILURE() << "sleep returned";
  } catch (const fern::timeout_error& e) {
    EXPECT_TRUE(e.is(inner));
    EXPECT_FALSE(e.is(outer));
  }
  EXPECT_TRUE(inner.expired());
  EXPECT_FALSE(outer.expired());
}

TEST(TimeoutTest, NestedOuterShorterScopeFiresTheOuter) {
  fern::timeout outer(20ms);
  bool inner_handler_saw_foreign = false;
  try {
    fern::timeout inner(1s);
    try {
      fern::sleep(5s);
    } catch (const fern::timeout_error& e) {
      if (e.is(inner)) throw std::logic_error("inner fired");
      inner_handler_saw_foreign = true;
      throw;  // not ours: let the outer handle it
    }
  } catch (const fern::timeout_error& e) {
    EXPECT_TRUE(e.is(outer));
  }
  EXPECT_TRUE(inner_handler_saw_foreign);
  EXPECT_TRUE(outer.expired());
}

TEST(TimeoutTest, CancelledInnerScopeLeavesTheOuterInCharge) {
  auto t0 = steady_clock::now();
  fern::timeout outer(30ms);
  fern::timeout inner(5ms);
  inner.cancel();
  try {
    fern::sleep(5s);
    ADD_FAILURE() << "sleep returned";
  } catch (const fern::timeout_error& e) {
    EXPECT_TRUE(e.is(outer));
    EXPECT_FALSE(e.is(inner));
  }
  EXPECT_GE(steady_clock::now() - t0, 30ms);  // not the cancelled 5 ms one
}

TEST(TimeoutTest, CancelDisarmsTheScope) {
  fern::timeout t(10ms);
  t.cancel();
  fern::sleep(30ms);  // would have thrown
  EXPECT_FALSE(t.expired());
  fern::event ev;
  EXPECT_FALSE(ev.wait(5ms));
}

TEST(TimeoutTest, ExpiredScopeKeepsThrowingAtLaterBlockingPointsUntilCancelled) {
  fern::event ev;
  fern::timeout t(10ms);
  EXPECT_THROW(fern::sleep(1s), fern::timeout_error);
  bool probe_ran = false;
  auto probe = fern::spawn([&] { probe_ran = true; });
  auto t0 = steady_clock::now();
  EXPECT_THROW(fern::sleep(1s), fern::timeout_error);
  EXPECT_THROW(fern::yield(), fern::timeout_error);
  EXPECT_THROW(ev.wait(), fern::timeout_error);
  EXPECT_THROW(ev.wait(1s), fern::timeout_error);
  EXPECT_THROW(probe.join(), fern::timeout_error);
  try {
    fern::sleep(1s);
  } catch (const fern::timeout_error& e) {
    EXPECT_TRUE(e.is(t));
  }
  EXPECT_LT(steady_clock::now() - t0, 500ms);  // none of them waited
  EXPECT_FALSE(probe_ran);                     // none of them even switched
  t.cancel();
  fern::sleep(1ms);
  EXPECT_TRUE(probe_ran);
  EXPECT_TRUE(probe.join());
}

TEST(TimeoutTest, ScopeThatNeverExpiresChangesNothing) {
  fern::timeout t(10s);
  fern::event ev;
  auto setter = fern::spawn([&] {
    fern::sleep(5ms);
    ev.set();
    return 1;
  });
  EXPECT_TRUE(ev.wait());
  fern::sleep(1ms);
  fern::yield();
  EXPECT_EQ(setter.get(), 1);
  EXPECT_FALSE(t.expired());
  EXPECT_GT(t.remaining(), 5s);
}

TEST(TimeoutTest, ExpiredAndRemainingTrackTheDeadline) {
  fern::timeout t(30ms);
  EXPECT_FALSE(t.expired());
  auto r = t.remaining();
  EXPECT_GT(r, 0ns);
  EXPECT_LE(r, 30ms);
  busy_wait(40ms);
  EXPECT_TRUE(t.expired());
  EXPECT_EQ(t.remaining(), 0ns);
  t.cancel();
  EXPECT_FALSE(t.expired());
}

TEST(TimeoutTest, ScopeDoesNotPreemptRunningCode) {
  fern::timeout t(5ms);
  busy_wait(20ms);  // no blocking point: nothing is thrown here
  EXPECT_TRUE(t.expired());
  EXPECT_THROW(fern::yield(), fern::timeout_error);
}

TEST(TimeoutTest, ShorterCallTimeoutReturnsFalseInsteadOfThrowing) {
  fern::timeout t(1s);
  fern::event ev;
  auto stuck = fern::spawn([&] { ev.wait(); });
  EXPECT_FALSE(ev.wait(10ms));
  EXPECT_FALSE(stuck.join(10ms));
  EXPECT_FALSE(t.expired());
  ev.set();
  EXPECT_TRUE(stuck.join());
}

TEST(TimeoutTest, ShorterScopeWinsOverALongerCallTimeout) {
  fern::timeout t(10ms);
  fern::event ev;
  try {
    ev.wait(1s);
    ADD_FAILURE() << "wait returned";
  } catch (const fern::timeout_error& e) {
    EXPECT_TRUE(e.is(t));
  }
}

TEST(TimeoutTest, AlreadyDueTimeoutDoesNotSwitch) {
  bool probe_ran = false;
  auto probe = fern::spawn([&] { probe_ran = true; });
  fern::event ev;
  EXPECT_FALSE(ev.wait(0ns));  // the call's own timeout, already due
  EXPECT_FALSE(ev.wait(-1ms));
  EXPECT_FALSE(probe.join(0ns));
  EXPECT_FALSE(probe_ran);
  {
    fern::timeout t(-1ms);  // a deadline in the past
    EXPECT_TRUE(t.expired());
    EXPECT_THROW(ev.wait(), fern::timeout_error);
    EXPECT_THROW(fern::sleep(1s), fern::timeout_error);
    EXPECT_FALSE(probe_ran);
  }
  EXPECT_TRUE(probe.join());
  EXPECT_TRUE(probe_ran);
}

TEST(TimeoutTest, ScopesBelongToTheirFiber) {
  fern::timeout t(10ms);
  bool finished = false;
  auto worker = fern::spawn([&] {
    fern::sleep(40ms);  // the root's scope does not apply here
    finished = true;
  });
  EXPECT_THROW(worker.join(), fern::timeout_error);
  EXPECT_FALSE(finished);
  t.cancel();
  EXPECT_TRUE(worker.join());
  EXPECT_TRUE(finished);
  EXPECT_TRUE(worker.successful());
}

TEST(TimeoutTest, ScopeEndsWithItsBlock) {
  {
    fern::timeout t(-1ms);
    EXPECT_THROW(fern::yield(), fern::timeout_error);
  }
  fern::yield();  // the expired scope is gone
  fern::sleep(1ms);
}

TEST(TimeoutTest, PendingKillBeatsAnExpiredScope) {
  bool saw_timeout = false;
  auto f = fern::spawn([&] {
    fern::timeout t(10ms);
    try {
      fern::yield();  // killed while ready; the scope expires before it runs again
    } catch (const fern::timeout_error&) {
      saw_timeout = true;
    }
  });
  fern::yield();
  EXPECT_FALSE(f.kill({.block = false}));
  busy_wait(20ms);
  EXPECT_TRUE(f.join());
  EXPECT_FALSE(saw_timeout);
  EXPECT_THROW(f.get(), fern::fiber_exit);

  fern::event ev;
  auto g = fern::spawn([&] {
    fern::timeout t(1s);
    ev.wait();
  });
  fern::yield();
  EXPECT_TRUE(g.kill());
  EXPECT_THROW(g.get(), fern::fiber_exit);
}

TEST(TimeoutTest, ExtremeDurationsSaturate) {
  fern::timeout forever(std::chrono::nanoseconds::max());
  EXPECT_FALSE(forever.expired());
  EXPECT_GT(forever.remaining(), std::chrono::hours(24 * 365));
  fern::sleep(1ms);
  fern::event ev;
  auto setter = fern::spawn([&] { ev.set(); });
  EXPECT_TRUE(ev.wait(std::chrono::nanoseconds::max()));
  setter.join();
  fern::timeout past(std::chrono::nanoseconds::min());
  EXPECT_TRUE(past.expired());
  EXPECT_EQ(past.remaining(), 0ns);
  EXPECT_THROW(fern::yield(), fern::timeout_error);
  past.cancel();
}

TEST(TimeoutTest, ScopesDestroyedOutOfOrderAbort) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto* a = new fern::timeout(1s);
        auto* b = new fern::timeout(1s);
        delete a;  // b is still the innermost
        delete b;
      },
      "fern: fern::timeout scopes destroyed out of order");
}
