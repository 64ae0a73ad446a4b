// fern::threadpool and fern::run_in_thread: results and exceptions come back to the waiting
// fiber, which waits cooperatively while the job runs on another OS thread; run's timeout, the
// enclosing fern::timeout scope and kill() stop the wait but not a started job (a job not yet
// started is skipped); submit() gives an async_result; a pool of N threads runs at most N jobs
// at once and drains its queue before its destructor returns; and the root waiting only on a
// job does not get fern::loop_exit.
#include <gtest/gtest.h>
#include <fern/fern.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

using namespace std::chrono_literals;

using fern_test::ended_by_kill;
using fern_test::log_t;

namespace {

// Worker-thread side: blocks the OS thread until pred() holds, for at most `limit`.
template <class Pred>
bool thread_wait_until(Pred pred, std::chrono::milliseconds limit = 5s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Fiber side: sleeps cooperatively until pred() holds, for at most about five seconds.
template <class Pred>
bool fiber_wait_until(Pred pred) {
  for (int i = 0; i < 5000 && !pred(); ++i) fern::sleep(1ms);
  return pred();
}

TEST(ThreadpoolTest, RunInThreadReturnsTheResultComputedOnAnotherThread) {
  const auto hub_thread = std::this_thread::get_id();
  auto job_thread = fern::run_in_thread([] { return std::this_thread::get_id(); });
  EXPECT_NE(job_thread, hub_thread);
  EXPECT_EQ(fern::run_in_thread([] { return 6 * 7; }), 42);
  std::string s = fern::run_in_thread([] { return std::string(100, 'y'); });
  EXPECT_EQ(s, std::string(100, 'y'));
  int side_effect = 0;
  fern::run_in_thread([&] { side_effect = 1; });  // void job
  EXPECT_EQ(side_effect, 1);
}

TEST(ThreadpoolTest, RunRethrowsTheJobsException) {
  try {
    fern::run_in_thread([]() -> int { throw std::runtime_error("job failed"); });
    FAIL() << "run_in_thread returned";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "job failed");
  }
  EXPECT_THROW(fern::run_in_thread([] { throw std::out_of_range("void job failed"); }),
               std::out_of_range);
}

TEST(ThreadpoolTest, CallingFiberWaitsCooperativelyWhileTheJobBlocksItsThread) {
  std::atomic<bool> other_ran{false};
  log_t log;
  auto caller = fern::spawn([&] {
    log.push_back("caller calls run_in_thread");
    bool saw =
        fern::run_in_thread([&] { return thread_wait_until([&] { return other_ran.load(); }); });
    log.push_back(saw ? "caller resumes, the job saw the other fiber" : "job timed out");
  });
  auto other = fern::spawn([&] {
    log.push_back("other fiber runs while the job blocks");
    other_ran = true;
  });
  EXPECT_TRUE(fern::joinall({caller, other}));
  EXPECT_EQ(log, (log_t{"caller calls run_in_thread", "other fiber runs while the job blocks",
                        "caller resumes, the job saw the other fiber"}));
}

TEST(ThreadpoolTest, RunTimeoutThrowsWhileTheStartedJobRunsOnAndItsResultIsDropped) {
  fern::threadpool tp(1);
  std::atomic<bool> started{false}, release{false}, finished{false};
  log_t log;
  auto caller = fern::spawn([&] {
    try {
      tp.run(
          [&] {
            started = true;
            thread_wait_until([&] { return release.load(); });
            finished = true;
            return std::string(200, 'r');  // heap-allocated, dropped unread
          },
          100ms);
      log.push_back("run returned");
    } catch (const fern::timeout_error& e) {
      EXPECT_EQ(e.source(), nullptr);  // run's own timeout, not a scope
      log.push_back("run timeout_error");
    }
  });
  ASSERT_TRUE(fiber_wait_until([&] { return started.load(); }));
  ASSERT_FALSE(caller.ready());  // the job started before the deadline
  caller.join();
  EXPECT_FALSE(finished);  // the caller left while the job was still running
  release = true;
  // One thread, FIFO: this job runs only after the abandoned one completed.
  EXPECT_TRUE(tp.run([&] { return finished.load(); }));
  EXPECT_EQ(log, (log_t{"run timeout_error"}));
}

TEST(ThreadpoolTest, JobWhoseWaiterLeftBeforeItStartedIsSkipped) {
  fern::threadpool tp(1);
  std::atomic<bool> release{false}, second_ran{false};
  auto first = tp.submit([&] {
    thread_wait_until([&] { return release.load(); });
    return 1;
  });
  // The only thread is busy with `first`, so this job is still queued when the wait ends.
  EXPECT_THROW(tp.run([&] { second_ran = true; }, 10ms), fern::timeout_error);
  release = true;
  EXPECT_EQ(first.get(), 1);
  EXPECT_FALSE(tp.run([&] { return second_ran.load(); }));
}

TEST(ThreadpoolTest, EnclosingTimeoutScopeAroundRunThrowsTimeoutError) {
  fern::threadpool tp(1);
  std::atomic<bool> release{false};
  {
    fern::timeout t(20ms);
    try {
      tp.run([&] { thread_wait_until([&] { return release.load(); }); });
      ADD_FAILURE() << "run returned";
    } catch (const fern::timeout_error& e) {
      EXPECT_TRUE(e.is(t));
    }
  }
  release = true;
  EXPECT_EQ(tp.run([] { return 3; }), 3);
}

TEST(ThreadpoolTest, KillOfTheWaitingFiberRaisesFiberExitWhileTheJobRunsOn) {
  fern::threadpool tp(1);
  std::atomic<bool> started{false}, release{false}, finished{false};
  log_t log;
  auto caller = fern::spawn([&] {
    try {
      tp.run([&] {
        started = true;
        thread_wait_until([&] { return release.load(); });
        finished = true;
        return 1;
      });
      log.push_back("run returned");
    } catch (const fern::fiber_exit&) {
      log.push_back("caller fiber_exit at run");
      throw;
    }
  });
  ASSERT_TRUE(fiber_wait_until([&] { return started.load(); }));
  EXPECT_TRUE(caller.kill());
  EXPECT_TRUE(ended_by_kill(caller));
  EXPECT_FALSE(finished);  // the kill did not wait for the job
  release = true;
  EXPECT_TRUE(tp.run([&] { return finished.load(); }));
  EXPECT_EQ(log, (log_t{"caller fiber_exit at run"}));
}

TEST(ThreadpoolTest, SubmitReturnsAnAsyncResultWithoutBlocking) {
  fern::threadpool tp(2);
  auto r = tp.submit([] { return 5; });
  EXPECT_FALSE(r.ready());  // completions are delivered by the hub loop, which has not run
  EXPECT_EQ(r.get(), 5);
  auto e = tp.submit([]() -> int { throw std::runtime_error("submitted job failed"); });
  EXPECT_THROW(e.get(), std::runtime_error);
  EXPECT_FALSE(e.successful());
  std::atomic<int> n{0};
  auto v = tp.submit([&] { ++n; });
  v.get();
  EXPECT_TRUE(v.successful());
  EXPECT_EQ(n.load(), 1);
}

TEST(ThreadpoolTest, PoolOfNThreadsRunsAtMostNJobsAtOnce) {
  fern::threadpool tp(2);
  EXPECT_EQ(tp.max_threads(), 2u);
  std::atomic<int> running{0}, max_running{0};
  std::vector<fern::async_result<void>> rs;
  for (int i = 0; i < 6; ++i)
    rs.push_back(tp.submit([&] {
      int now = ++running;
      int seen = max_running.load();
      while (now > seen && !max_running.compare_exchange_weak(seen, now)) {
      }
      // The first two jobs meet here, so two really overlap; later ones only linger a little.
      thread_wait_until([&] { return max_running.load() >= 2; }, 2s);
      std::this_thread::sleep_for(5ms);
      --running;
    }));
  for (auto& r : rs) r.get();
  EXPECT_EQ(max_running.load(), 2);
  EXPECT_EQ(tp.threads(), 2u);
}

TEST(ThreadpoolTest, QueuedJobsRunBeforeTheDestructorReturns) {
  std::mutex mu;
  std::vector<int> order;
  std::atomic<bool> release{false};
  std::vector<fern::async_result<void>> rs;
  std::thread releaser;
  {
    fern::threadpool tp(1);
    rs.push_back(tp.submit([&] {
      thread_wait_until([&] { return release.load(); });
      std::lock_guard<std::mutex> g(mu);
      order.push_back(0);
    }));
    for (int i = 1; i < 5; ++i)
      rs.push_back(tp.submit([&, i] {
        std::lock_guard<std::mutex> g(mu);
        order.push_back(i);
      }));
    releaser = std::thread([&] {
      std::this_thread::sleep_for(20ms);
      release = true;
    });
  }  // jobs 1..4 are still queued behind job 0 here
  {
    std::lock_guard<std::mutex> g(mu);
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  }
  releaser.join();
  for (auto& r : rs) {
    r.get();  // the completions still reach this hub after the pool is gone
    EXPECT_TRUE(r.successful());
  }
}

TEST(ThreadpoolTest, RootWaitingOnlyOnAJobIsNotFailedWithLoopExit) {
  // No other fiber, no timer, no fd: only the job can wake the root.
  EXPECT_EQ(fern::run_in_thread([] {
              std::this_thread::sleep_for(20ms);
              return 7;
            }),
            7);
  fern::threadpool tp(1);
  auto r = tp.submit([] {
    std::this_thread::sleep_for(20ms);
    return 8;
  });
  EXPECT_EQ(r.get(), 8);  // waiting on an event only the job's completion sets
}

TEST(ThreadpoolTest, ConcurrentCallersEachGetTheirOwnResult) {
  std::atomic<int> started{0};
  std::vector<fern::fiber<int>> fs;
  for (int i = 0; i < 4; ++i)
    fs.push_back(fern::spawn([&, i] {
      return fern::run_in_thread([&, i] {
        ++started;
        // All four jobs are in flight at once: the callers did not serialise on the hub.
        thread_wait_until([&] { return started.load() == 4; });
        return i * 100 + started.load();
      });
    }));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(fs[i].get(), i * 100 + 4);
}

// Counts destructor calls made on a thread other than the one that created it.
struct thread_probe {
  explicit thread_probe(std::atomic<int>* foreign)
      : foreign(foreign), home(std::this_thread::get_id()) {}
  thread_probe(const thread_probe&) = default;
  ~thread_probe() {
    if (std::this_thread::get_id() != home) ++*foreign;
  }
  std::atomic<int>* foreign;
  std::thread::id home;
};

TEST(ThreadpoolTest, JobsAndWhatTheyCaptureAreDestroyedOnTheHubThread) {
  // A job's callable may capture hub-thread-only objects (fiber handles, sync primitives): the
  // worker must not be the one that destroys it.
  std::atomic<int> foreign{0};
  for (int i = 0; i < 50; ++i) {
    thread_probe p(&foreign);
    EXPECT_EQ(fern::run_in_thread([p, i] { return p.foreign != nullptr ? i : -1; }), i);
  }
  fern::threadpool tp(2);
  std::vector<fern::async_result<int>> rs;
  for (int i = 0; i < 50; ++i) {
    thread_probe p(&foreign);
    rs.push_back(tp.submit([p, i] { return p.foreign != nullptr ? i : -1; }));
  }
  for (int i = 0; i < 50; ++i) EXPECT_EQ(rs[i].get(), i);
  EXPECT_EQ(foreign.load(), 0);
}

TEST(ThreadpoolTest, ZeroThreadsThrowsInvalidArgument) {
  EXPECT_THROW(fern::threadpool(0), std::invalid_argument);
}

}  // namespace
