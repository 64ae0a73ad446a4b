// fiber_local storage: see locals.hpp. Tables are tiny (a fiber uses a handful of locals), so a
// vector searched linearly beats any map.
#include "locals.hpp"

#include <atomic>
#include <new>
#include <vector>

#include "fern/fiber_local.hpp"

namespace fern::detail {
namespace {

struct local_entry {
  std::uint64_t key;
  void* value;
  void (*del)(void*);
};
using local_table = std::vector<local_entry>;

std::atomic<std::uint64_t> g_next_key{1};

}  // namespace

std::uint64_t new_local_key() noexcept {
  return g_next_key.fetch_add(1, std::memory_order_relaxed);
}

void* find_local(fiber_base* f, std::uint64_t key) noexcept {
  auto* t = static_cast<local_table*>(f->locals_);
  if (!t) return nullptr;
  for (const local_entry& e : *t)
    if (e.key == key) return e.value;
  return nullptr;
}

void add_local(fiber_base* f, std::uint64_t key, void* p, void (*del)(void*)) {
  try {
    auto* t = static_cast<local_table*>(f->locals_);
    if (!t) f->locals_ = t = new local_table();
    t->push_back({key, p, del});
  } catch (...) {
    del(p);
    throw;
  }
}

void destroy_locals(fiber_base* f) noexcept {
  auto* t = static_cast<local_table*>(f->locals_);
  if (!t) return;
  // A destructor may touch another fiber_local of the same fiber: detach the table first and
  // repeat until no destructor created new values.
  while (t) {
    f->locals_ = nullptr;
    for (auto it = t->rbegin(); it != t->rend(); ++it) it->del(it->value);
    delete t;
    t = static_cast<local_table*>(f->locals_);
  }
}

}  // namespace fern::detail
