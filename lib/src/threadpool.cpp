// fern::threadpool: worker threads started on demand, a FIFO of jobs under one mutex, and
// completions posted back to the submitting hub through its remote queue. Jobs whose waiter left
// before they started are skipped (state queued -> cancelled), but still reported, so the hub's
// count of outstanding jobs (which keeps fern::loop_exit from firing early) stays exact.
#include "fern/threadpool.hpp"

#include <stdexcept>

#include "hub_impl.hpp"

namespace fern {

namespace detail {

struct threadpool_state {
  explicit threadpool_state(std::size_t max) : max_threads(max) {}
  const std::size_t max_threads;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::shared_ptr<pool_job>> jobs;  // guarded by mu
  std::vector<std::thread> threads;            // guarded by mu
  std::size_t idle = 0;                        // workers waiting on cv; guarded by mu
  bool stopping = false;                       // guarded by mu

  void worker() {
    std::unique_lock<std::mutex> lk(mu);
    for (;;) {
      ++idle;
      cv.wait(lk, [&] { return stopping || !jobs.empty(); });
      --idle;
      if (jobs.empty()) return;  // stopping, and everything queued has run
      std::shared_ptr<pool_job> job = std::move(jobs.front());
      jobs.pop_front();
      lk.unlock();
      int expected = pool_job::queued;
      if (job->state.compare_exchange_strong(expected, pool_job::running,
                                             std::memory_order_acq_rel)) {
        job->execute();
        job->state.store(pool_job::finished, std::memory_order_release);
      }
      std::shared_ptr<remote_queue> q = job->completion;
      // The completion takes over this thread's reference, so the job (the user's callable and
      // what it captured, its result or exception) is destroyed on the hub thread, which owns
      // it (fiber handles are not thread-safe). Only if the hub is gone does it die here.
      q->push(
          [job = std::move(job)]() {
            job->hub->job_finished();
            job->completed = true;
            if (job->w) unpark(*job->w);
            if (job->on_complete &&
                job->state.load(std::memory_order_acquire) == pool_job::finished)
              job->on_complete();
          },
          false);
      lk.lock();
    }
  }
};

threadpool& default_threadpool() {
  return hub_impl::current()->default_pool();
}

}  // namespace detail

threadpool::threadpool(std::size_t max_threads)
    : st_(std::make_shared<detail::threadpool_state>(max_threads)) {
  if (max_threads == 0) throw std::invalid_argument("fern: threadpool needs at least one thread");
}

threadpool::~threadpool() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lk(st_->mu);
    st_->stopping = true;
    threads.swap(st_->threads);
  }
  st_->cv.notify_all();
  for (std::thread& t : threads) t.join();
}

std::size_t threadpool::max_threads() const noexcept {
  return st_->max_threads;
}

std::size_t threadpool::threads() const {
  std::lock_guard<std::mutex> lk(st_->mu);
  return st_->threads.size();
}

void threadpool::submit_job(std::shared_ptr<detail::pool_job> job) {
  detail::hub_impl* h = detail::hub_impl::current();
  job->hub = h;
  job->completion = h->remote();
  {
    std::lock_guard<std::mutex> lk(st_->mu);
    if (st_->stopping) throw std::logic_error("fern: threadpool is shutting down");
    st_->jobs.push_back(job);
    if (st_->idle < st_->jobs.size() && st_->threads.size() < st_->max_threads)
      st_->threads.emplace_back([st = st_.get()] { st->worker(); });
  }
  st_->cv.notify_one();
  h->job_started();
}

void threadpool::wait_job(detail::pool_job& job, detail::deadline_t deadline) {
  detail::waiter w;
  job.w = &w;
  struct leave_guard {
    detail::pool_job& j;
    ~leave_guard() {
      j.w = nullptr;
      if (!j.completed) {
        int expected = detail::pool_job::queued;
        j.state.compare_exchange_strong(expected, detail::pool_job::cancelled,
                                        std::memory_order_acq_rel);
      }
    }
  } guard{job};
  while (!job.completed)
    if (!detail::block(w, deadline)) throw timeout_error();
}

}  // namespace fern
