// fern::group and fern::pool (gevent.pool.Group / Pool): track a set of fibers, join or kill
// them together, and map a function over inputs. A pool limits how many of its fibers run at
// once: spawn() waits for a free slot, which is what gives a server back-pressure.
// One hub only.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "fern/fiber.hpp"
#include "fern/semaphore.hpp"

namespace fern {

class group {
 public:
  group() = default;
  group(const group&) = delete;
  group& operator=(const group&) = delete;
  // Does not kill the members: they keep running, as fibers whose handles were dropped do.
  ~group() = default;

  // Spawns f(args...) and adds it. Never blocks.
  template <class F, class... Args>
  auto spawn(F&& f, Args&&... args) {
    auto fb = fern::spawn(std::forward<F>(f), std::forward<Args>(args)...);
    add(fb);
    return fb;
  }
  // Adds a fiber spawned elsewhere. Never blocks.
  void add(any_fiber f) {
    prune();
    members_.push_back(std::move(f));
  }
  void discard(const any_fiber& f) {
    for (auto it = members_.begin(); it != members_.end(); ++it)
      if (*it == f) {
        members_.erase(it);
        return;
      }
  }
  bool contains(const any_fiber& f) const {
    for (const any_fiber& m : members_)
      if (m == f) return true;
    return false;
  }
  // Members that have not finished.
  std::size_t size() const noexcept {
    std::size_t n = 0;
    for (const any_fiber& m : members_) n += !m.ready();
    return n;
  }
  std::vector<any_fiber> fibers() const { return members_; }

  // Waits until every member has finished, including members added while waiting; false if the
  // timeout passed first. With raise_error, rethrows the first failure. Blocking point.
  bool join(std::optional<std::chrono::nanoseconds> timeout = {}, bool raise_error = false) {
    detail::deadline_t dl = detail::deadline_after(timeout);
    for (;;) {
      std::vector<any_fiber> snapshot = members_;
      std::optional<std::chrono::nanoseconds> left;
      if (dl != detail::no_deadline)
        left = std::chrono::nanoseconds(std::max<detail::deadline_t>(0, dl - detail::now_ns()));
      if (!joinall(snapshot, left, raise_error)) return false;
      if (size() == 0) {
        prune();
        return true;
      }
    }
  }
  // Kills every member. Blocking point when opts.block.
  bool kill(kill_options opts = {}) { return killall(members_, opts); }

  // Runs f(item) for every item in its own fiber and returns the results in input order
  // (void: nothing). Rethrows the first exception in input order. Blocking point.
  template <class F, class Range>
  auto map(F f, const Range& items) {
    return map_with(*this, std::move(f), items);
  }

 protected:
  template <class G, class F, class Range>
  static auto map_with(G& g, F f, const Range& items) {
    using item_t = decltype(*std::begin(items));
    using R = std::remove_cvref_t<std::invoke_result_t<F&, item_t>>;
    std::vector<fiber<R>> fibers;
    for (auto&& item : items) fibers.push_back(g.spawn(f, item));
    if constexpr (std::is_void_v<R>) {
      for (auto& fb : fibers) fb.get();
    } else {
      std::vector<R> out;
      out.reserve(fibers.size());
      for (auto& fb : fibers) out.push_back(fb.get());
      return out;
    }
  }
  // Drops finished members once the list has doubled since the last prune: amortised O(1).
  void prune() {
    if (members_.size() < prune_at_) return;
    std::erase_if(members_, [](const any_fiber& m) { return m.ready(); });
    prune_at_ = std::max<std::size_t>(16, members_.size() * 2);
  }
  std::vector<any_fiber> members_;
  std::size_t prune_at_ = 16;
};

class pool : public group {
 public:
  // At most `capacity` members run at once. Throws std::invalid_argument for 0.
  explicit pool(std::size_t capacity)
      : capacity_(capacity), slots_(std::make_shared<semaphore>(capacity)) {
    if (capacity == 0) throw std::invalid_argument("fern: pool capacity must be at least 1");
  }

  // Waits for a free slot, then spawns f(args...) in it. Blocking point (while the pool is
  // full): honours the enclosing fern::timeout and kill().
  template <class F, class... Args>
  auto spawn(F&& f, Args&&... args) {
    slots_->acquire();
    return spawn_in_slot(std::forward<F>(f), std::forward<Args>(args)...);
  }
  // As spawn, but gives up when no slot frees within `timeout`: returns an empty handle.
  template <class F, class... Args>
  auto try_spawn(std::chrono::nanoseconds timeout, F&& f, Args&&... args)
      -> decltype(fern::spawn(std::forward<F>(f), std::forward<Args>(args)...)) {
    if (!slots_->acquire(timeout)) return {};
    return spawn_in_slot(std::forward<F>(f), std::forward<Args>(args)...);
  }

  // Like group::map, with at most capacity() calls running at once.
  template <class F, class Range>
  auto map(F f, const Range& items) {
    return map_with(*this, std::move(f), items);
  }

  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t free_count() const noexcept { return slots_->value(); }
  bool full() const noexcept { return slots_->value() == 0; }
  // Waits until a slot is free (without taking it); false on timeout. Blocking point.
  bool wait_available(std::optional<std::chrono::nanoseconds> timeout = {}) {
    if (!slots_->acquire(timeout)) return false;
    slots_->release();
    return true;
  }

 private:
  // The slot is returned when the fiber ends however it ends, even if killed before it ran.
  struct slot_hook {
    detail::completion_hook c;  // first member
    std::shared_ptr<semaphore> slots;
  };

  template <class F, class... Args>
  auto spawn_in_slot(F&& f, Args&&... args) {
    decltype(fern::spawn(std::forward<F>(f), std::forward<Args>(args)...)) fb;
    try {
      fb = fern::spawn(std::forward<F>(f), std::forward<Args>(args)...);
      add(fb);
    } catch (...) {
      slots_->release();
      throw;
    }
    auto* h = new slot_hook{{}, slots_};
    h->c.fn = [](detail::completion_hook* c, detail::fiber_base*) noexcept {
      auto* self = reinterpret_cast<slot_hook*>(c);
      self->slots->release();
      delete self;
    };
    detail::on_fiber_done(fb.base(), &h->c);
    return fb;
  }

  std::size_t capacity_;
  std::shared_ptr<semaphore> slots_;
};

}  // namespace fern
