// Unit tests for the hub's timer heap (lib/src/timer_heap.hpp), against a std::multiset model:
// push/remove/pop_expired in random order with many equal deadlines, heap_index kept right for
// every node (remove() relies on it), and 100k entries.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "timer_heap.hpp"

using fern::detail::deadline_t;
using fern::detail::no_deadline;
using fern::detail::timer_heap;
using fern::detail::timer_node;

namespace {

using model = std::multiset<std::pair<deadline_t, timer_node*>>;

// Every armed node's heap_index is a distinct slot below size(); unarmed nodes have npos.
void check_indices(const timer_heap& heap, const std::vector<timer_node>& nodes,
                   std::size_t armed_expected) {
  std::vector<bool> used(heap.size(), false);
  std::size_t armed = 0;
  for (const timer_node& n : nodes) {
    if (!n.armed()) continue;
    ++armed;
    ASSERT_LT(n.heap_index, heap.size());
    ASSERT_FALSE(used[n.heap_index]) << "two nodes claim slot " << n.heap_index;
    used[n.heap_index] = true;
  }
  ASSERT_EQ(armed, armed_expected);
  ASSERT_EQ(armed, heap.size());
}

}  // namespace

TEST(TimerHeapTest, EmptyHeapHasNoDeadline) {
  timer_heap heap;
  EXPECT_TRUE(heap.empty());
  EXPECT_EQ(heap.size(), 0u);
  EXPECT_EQ(heap.next_deadline(), no_deadline);
  EXPECT_EQ(heap.pop_expired(INT64_MAX), nullptr);
}

TEST(TimerHeapTest, PopExpiredReturnsDueNodesInDeadlineOrder) {
  timer_heap heap;
  std::vector<timer_node> nodes(6);
  deadline_t deadlines[] = {50, 10, 40, 10, 30, 20};
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    nodes[i].deadline = deadlines[i];
    heap.push(&nodes[i]);
    EXPECT_TRUE(nodes[i].armed());
  }
  EXPECT_EQ(heap.next_deadline(), 10);
  EXPECT_EQ(heap.pop_expired(9), nullptr);  // nothing due yet
  std::vector<deadline_t> popped;
  while (timer_node* n = heap.pop_expired(40)) {  // due means deadline <= now
    EXPECT_FALSE(n->armed());
    popped.push_back(n->deadline);
  }
  EXPECT_EQ(popped, (std::vector<deadline_t>{10, 10, 20, 30, 40}));
  EXPECT_EQ(heap.size(), 1u);
  EXPECT_EQ(heap.next_deadline(), 50);
}

TEST(TimerHeapTest, RemoveTakesOutArbitraryNodes) {
  timer_heap heap;
  std::vector<timer_node> nodes(40);
  std::mt19937 rng(7);
  std::vector<deadline_t> ds;
  for (int i = 0; i < 40; ++i) ds.push_back(i * 10);
  std::shuffle(ds.begin(), ds.end(), rng);
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    nodes[i].deadline = ds[i];
    heap.push(&nodes[i]);
  }
  // The root, the last slot, and some in between.
  auto at_slot = [&](std::size_t slot) -> timer_node* {
    for (timer_node& n : nodes)
      if (n.heap_index == slot) return &n;
    return nullptr;
  };
  std::set<deadline_t> removed;
  constexpr long last = -1;
  for (long want : {0L, last, 5L, 1L, 17L, 0L, last}) {
    std::size_t slot = want == last ? heap.size() - 1 : static_cast<std::size_t>(want);
    timer_node* n = at_slot(slot);
    ASSERT_NE(n, nullptr);
    removed.insert(n->deadline);
    heap.remove(n);
    EXPECT_FALSE(n->armed());
    check_indices(heap, nodes, 40 - removed.size());
  }
  std::vector<deadline_t> rest;
  while (timer_node* n = heap.pop_expired(INT64_MAX)) rest.push_back(n->deadline);
  EXPECT_TRUE(std::is_sorted(rest.begin(), rest.end()));
  EXPECT_EQ(rest.size(), 40 - removed.size());
  for (deadline_t d : rest) EXPECT_EQ(removed.count(d), 0u);
}

TEST(TimerHeapTest, RandomOperationsMatchAMultisetModel) {
  timer_heap heap;
  model ref;
  constexpr std::size_t pool = 5000;
  std::vector<timer_node> nodes(pool);
  std::vector<timer_node*> armed;            // nodes currently in the heap
  std::vector<std::size_t> armed_pos(pool);  // node -> its slot in `armed`
  std::vector<timer_node*> idle;
  for (timer_node& n : nodes) idle.push_back(&n);
  std::mt19937_64 rng(12345);
  auto index_of = [&](timer_node* n) { return static_cast<std::size_t>(n - nodes.data()); };
  auto add_to_armed = [&](timer_node* n) {
    armed_pos[index_of(n)] = armed.size();
    armed.push_back(n);
  };
  auto remove_from_armed = [&](timer_node* n) {
    std::size_t pos = armed_pos[index_of(n)];
    ASSERT_EQ(armed[pos], n);
    armed[pos] = armed.back();
    armed_pos[index_of(armed[pos])] = pos;
    armed.pop_back();
    idle.push_back(n);
  };
  for (int step = 0; step < 200000; ++step) {
    unsigned op = rng() % 10;
    if (op < 5 && !idle.empty()) {  // push, often with equal deadlines
      timer_node* n = idle.back();
      idle.pop_back();
      n->deadline = static_cast<deadline_t>(rng() % 2000);
      heap.push(n);
      ref.insert({n->deadline, n});
      add_to_armed(n);
    } else if (op < 8 && !armed.empty()) {  // remove an arbitrary node
      timer_node* n = armed[rng() % armed.size()];
      heap.remove(n);
      EXPECT_FALSE(n->armed());
      auto it = ref.find({n->deadline, n});
      ASSERT_NE(it, ref.end());
      ref.erase(it);
      remove_from_armed(n);
    } else {  // pop what is due at a random time
      deadline_t now = static_cast<deadline_t>(rng() % 2000);
      timer_node* n = heap.pop_expired(now);
      if (ref.empty() || ref.begin()->first > now) {
        ASSERT_EQ(n, nullptr);
      } else {
        ASSERT_NE(n, nullptr);
        EXPECT_FALSE(n->armed());
        EXPECT_EQ(n->deadline, ref.begin()->first);  // the earliest (any of equal ones)
        auto it = ref.find({n->deadline, n});
        ASSERT_NE(it, ref.end());
        ref.erase(it);
        remove_from_armed(n);
      }
    }
    ASSERT_EQ(heap.size(), ref.size());
    ASSERT_EQ(heap.empty(), ref.empty());
    ASSERT_EQ(heap.next_deadline(), ref.empty() ? no_deadline : ref.begin()->first);
    if (step % 5000 == 0) check_indices(heap, nodes, ref.size());
  }
  check_indices(heap, nodes, ref.size());
}

TEST(TimerHeapTest, HundredThousandEntries) {
  constexpr std::size_t n = 100000;
  timer_heap heap;
  std::vector<timer_node> nodes(n);
  std::mt19937_64 rng(99);
  for (timer_node& node : nodes) {
    node.deadline = static_cast<deadline_t>(rng() % 1'000'000'000);
    heap.push(&node);
  }
  EXPECT_EQ(heap.size(), n);
  check_indices(heap, nodes, n);
  // Remove every third node, through heap_index.
  std::size_t removed = 0;
  for (std::size_t i = 0; i < n; i += 3) {
    heap.remove(&nodes[i]);
    ++removed;
  }
  check_indices(heap, nodes, n - removed);
  std::vector<deadline_t> expected;
  for (std::size_t i = 0; i < n; ++i)
    if (i % 3 != 0) expected.push_back(nodes[i].deadline);
  std::sort(expected.begin(), expected.end());
  std::vector<deadline_t> popped;
  popped.reserve(expected.size());
  while (timer_node* t = heap.pop_expired(INT64_MAX)) popped.push_back(t->deadline);
  EXPECT_EQ(popped, expected);
  EXPECT_TRUE(heap.empty());
  for (const timer_node& node : nodes) EXPECT_FALSE(node.armed());
}

TEST(TimerHeapTest, ANodeCanBeRearmedAfterRemoval) {
  timer_heap heap;
  timer_node a, b;
  a.deadline = 5;
  b.deadline = 7;
  heap.push(&a);
  heap.push(&b);
  heap.remove(&a);
  a.deadline = 9;
  heap.push(&a);
  EXPECT_EQ(heap.pop_expired(100), &b);
  EXPECT_EQ(heap.pop_expired(100), &a);
  EXPECT_EQ(heap.pop_expired(100), nullptr);
}
