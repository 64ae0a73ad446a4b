// The hub's timers: a 4-ary min-heap of (deadline, node) pairs. push/remove/pop are O(log n) with
// a million pending timers; a cancelled timer is removed at once, so it costs nothing later.
// Deadlines sit in the heap array itself so that sifting compares without touching the nodes.
// Hub thread only; never blocks, never throws except std::bad_alloc on growth.
#pragma once

#include <cstddef>
#include <vector>

#include "fern/detail/core.hpp"

namespace fern::detail {

class timer_heap {
 public:
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  deadline_t next_deadline() const noexcept {
    return heap_.empty() ? no_deadline : heap_.front().deadline;
  }

  void push(timer_node* n) {
    heap_.push_back({n->deadline, n});
    n->heap_index = heap_.size() - 1;
    sift_up(heap_.size() - 1);
  }

  void remove(timer_node* n) noexcept {
    std::size_t i = n->heap_index;
    n->heap_index = timer_node::npos;
    std::size_t last = heap_.size() - 1;
    if (i != last) {
      heap_[i] = heap_[last];
      heap_[i].node->heap_index = i;
      heap_.pop_back();
      if (i > 0 && heap_[i].deadline < heap_[parent(i)].deadline)
        sift_up(i);
      else
        sift_down(i);
    } else {
      heap_.pop_back();
    }
  }

  // Removes and returns the earliest node if its deadline is <= now, else null.
  timer_node* pop_expired(deadline_t now) noexcept {
    if (heap_.empty() || heap_.front().deadline > now) return nullptr;
    timer_node* n = heap_.front().node;
    remove(n);
    return n;
  }

 private:
  struct entry {
    deadline_t deadline;
    timer_node* node;
  };
  static std::size_t parent(std::size_t i) noexcept { return (i - 1) / 4; }

  void sift_up(std::size_t i) noexcept {
    entry e = heap_[i];
    while (i > 0) {
      std::size_t p = parent(i);
      if (!(e.deadline < heap_[p].deadline)) break;
      heap_[i] = heap_[p];
      heap_[i].node->heap_index = i;
      i = p;
    }
    heap_[i] = e;
    e.node->heap_index = i;
  }

  void sift_down(std::size_t i) noexcept {
    entry e = heap_[i];
    std::size_t n = heap_.size();
    for (;;) {
      std::size_t c = 4 * i + 1;
      if (c >= n) break;
      std::size_t best = c;
      std::size_t end = c + 4 < n ? c + 4 : n;
      for (std::size_t k = c + 1; k < end; ++k)
        if (heap_[k].deadline < heap_[best].deadline) best = k;
      if (!(heap_[best].deadline < e.deadline)) break;
      heap_[i] = heap_[best];
      heap_[i].node->heap_index = i;
      i = best;
    }
    heap_[i] = e;
    e.node->heap_index = i;
  }

  std::vector<entry> heap_;
};

}  // namespace fern::detail
