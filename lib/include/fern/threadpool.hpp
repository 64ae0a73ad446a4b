// fern::threadpool and fern::run_in_thread: run a function on another OS thread while the
// calling fiber waits cooperatively (gevent's threadpool, asyncio's run_in_executor). For
// CPU-bound work and for calls that cannot be made non-blocking. The function's result or
// exception comes back to the waiting fiber; the hub keeps running other fibers meanwhile.
//
// A wait that is killed or times out stops waiting at once; the job cannot be interrupted, so
// it still runs to completion (or is skipped if it had not started), and its result is dropped.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "fern/async_result.hpp"
#include "fern/detail/core.hpp"
#include "fern/errors.hpp"

namespace fern {

namespace detail {
struct remote_queue;

// One job: created on the hub thread, run on a worker, completed back on the hub thread.
// `state` is the only field both threads write (acq_rel CAS); the result fields are written by
// the worker and read by the hub after the completion was posted through remote_queue's mutex,
// which orders them.
struct pool_job {
  enum : int { queued, running, finished, cancelled };
  virtual ~pool_job() = default;
  virtual void execute() noexcept = 0;  // worker thread

  std::atomic<int> state{queued};
  hub_impl* hub = nullptr;                   // the submitting hub
  std::shared_ptr<remote_queue> completion;  // where the worker reports back
  // Hub thread only:
  waiter* w = nullptr;  // the fiber waiting in run(), while it waits
  bool completed = false;
  std::function<void()> on_complete;  // submit(): fills the async_result
};

template <class R, class F>
struct typed_job final : pool_job {
  explicit typed_job(F&& f) : fn(std::move(f)) {}
  void execute() noexcept override {
    try {
      if constexpr (std::is_void_v<R>) {
        fn();
        value.emplace(true);
      } else {
        value.emplace(fn());
      }
    } catch (...) {
      error = std::current_exception();
    }
  }
  F fn;
  std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> value;
  std::exception_ptr error;
};

struct threadpool_state;
}  // namespace detail

class threadpool {
 public:
  // A pool of at most max_threads threads, started on demand. Throws std::invalid_argument for 0.
  explicit threadpool(std::size_t max_threads);
  // Runs the jobs still queued, then joins the threads (this blocks the calling OS thread).
  ~threadpool();
  threadpool(const threadpool&) = delete;
  threadpool& operator=(const threadpool&) = delete;

  // Runs f() on a pool thread and returns its result, or rethrows its exception. Throws
  // fern::timeout_error if `timeout` passes first. Blocking point: honours the enclosing
  // fern::timeout and kill() (the job itself continues, see above).
  template <class F>
  auto run(F&& f, std::optional<std::chrono::nanoseconds> timeout = {}) {
    using R = std::invoke_result_t<std::decay_t<F>&>;
    using job_t = detail::typed_job<R, std::decay_t<F>>;
    auto job = std::make_shared<job_t>(std::decay_t<F>(std::forward<F>(f)));
    submit_job(job);
    wait_job(*job, detail::deadline_after(timeout));
    if (job->error) std::rethrow_exception(job->error);
    if constexpr (!std::is_void_v<R>) return std::move(*job->value);
  }

  // Starts f() on a pool thread and returns an async_result the calling hub's fibers can wait
  // on. Never blocks.
  template <class F>
  auto submit(F&& f) {
    using R = std::invoke_result_t<std::decay_t<F>&>;
    using job_t = detail::typed_job<R, std::decay_t<F>>;
    auto job = std::make_shared<job_t>(std::decay_t<F>(std::forward<F>(f)));
    async_result<R> result;
    job->on_complete = [result, j = job.get()]() mutable {
      if (j->error)
        result.set_exception(j->error);
      else if constexpr (std::is_void_v<R>)
        result.set();
      else
        result.set(std::move(*j->value));
    };
    submit_job(job);
    return result;
  }

  std::size_t max_threads() const noexcept;
  // Threads started so far.
  std::size_t threads() const;

 private:
  void submit_job(std::shared_ptr<detail::pool_job> job);
  void wait_job(detail::pool_job& job, detail::deadline_t deadline);
  std::shared_ptr<detail::threadpool_state> st_;
};

namespace detail {
threadpool& default_threadpool();
}

// threadpool::run on this hub's default pool (FERN_THREADPOOL_SIZE threads at most, default 10,
// started on demand). Blocking point.
template <class F>
auto run_in_thread(F&& f, std::optional<std::chrono::nanoseconds> timeout = {}) {
  return detail::default_threadpool().run(std::forward<F>(f), timeout);
}

}  // namespace fern
