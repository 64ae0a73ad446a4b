// Fiber stack pool: see stack_pool.hpp. Chunks grow geometrically (16 stacks, then doubling up
// to 1024) so a million stacks take about ten thousand mmap calls, not a million.
#include "stack_pool.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define FERN_HAVE_VALGRIND 1
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102  // Linux 6.13, include/uapi/asm-generic/mman-common.h
#endif

namespace fern::detail {
namespace {

std::size_t page_size() noexcept {
  static const std::size_t p = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return p;
}

// -1 unknown, 0 mprotect fallback, 1 MADV_GUARD_INSTALL. Probed once per process.
std::atomic<int> g_guard_mode{-1};

bool install_guard(char* lo, std::size_t len) noexcept {
  int mode = g_guard_mode.load(std::memory_order_relaxed);
  if (mode != 0) {
    if (::madvise(lo, len, MADV_GUARD_INSTALL) == 0) {
      g_guard_mode.store(1, std::memory_order_relaxed);
      return true;
    }
    if (errno != EINVAL) return false;
    g_guard_mode.store(0, std::memory_order_relaxed);  // kernel older than 6.13
  }
  return ::mprotect(lo, len, PROT_NONE) == 0;
}

}  // namespace

bool stack_pool::guard_install_supported() noexcept {
  if (g_guard_mode.load() < 0) {
    std::size_t p = page_size();
    void* m = ::mmap(nullptr, 2 * p, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) {
      install_guard(static_cast<char*>(m), p);
      ::munmap(m, 2 * p);
    }
  }
  return g_guard_mode.load() == 1;
}

std::size_t stack_pool::round_size(std::size_t requested) noexcept {
  std::size_t p = page_size();
  std::size_t s = std::max<std::size_t>(requested, 16 * 1024);
  return (s + p - 1) / p * p;
}

stack_pool::~stack_pool() {
  for (chunk& c : chunks_) ::munmap(c.base, c.bytes);
}

stack_pool::size_class* stack_pool::class_for(std::size_t usable) {
  for (size_class& c : classes_)
    if (c.usable == usable) return &c;
  classes_.push_back(size_class{usable, {}, 16, 0});
  return &classes_.back();
}

bool stack_pool::grow(size_class& c) noexcept {
  std::size_t stride = c.usable + stack_guard_size;
  std::size_t n = c.next_chunk;
  std::size_t bytes = stride * n;
  void* m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return false;
  // With transparent huge pages a first touch could fault in 2 MiB (or an mTHP folio) for a
  // stack that needs 4 KiB; measured: 64 KiB RSS per idle fiber instead of 4 KiB.
  ::madvise(m, bytes, MADV_NOHUGEPAGE);
  char* base = static_cast<char*>(m);
  try {
    chunks_.push_back({m, bytes});
    c.free.reserve(c.total + n);
  } catch (...) {
    ::munmap(m, bytes);
    return false;
  }
  c.total += n;
  // Push in reverse so the lowest-addressed stack is handed out first.
  for (std::size_t i = n; i-- > 0;) {
    char* lo = base + i * stride;
    if (!install_guard(lo, stack_guard_size)) return false;
    char* top = lo + stride;
#ifdef FERN_HAVE_VALGRIND
    VALGRIND_STACK_REGISTER(lo + stack_guard_size, top);
#endif
    c.free.push_back(top);
  }
  c.next_chunk = std::min<std::size_t>(n * 2, 1024);
  return true;
}

void* stack_pool::acquire(std::size_t usable) noexcept {
  size_class* c;
  try {
    c = class_for(usable);
  } catch (...) {
    errno = ENOMEM;
    return nullptr;
  }
  if (c->free.empty() && !grow(*c)) return nullptr;
  void* top = c->free.back();
  c->free.pop_back();
  return top;
}

void stack_pool::release(void* top, std::size_t usable) noexcept {
  // Never fails: the vector had room for every stack of this class when its chunk was made.
  for (size_class& c : classes_)
    if (c.usable == usable) {
      c.free.push_back(top);
      return;
    }
}

}  // namespace fern::detail
