// Fiber stacks: carved from large mmap'ed chunks (MAP_NORESERVE, MADV_NOHUGEPAGE, so only the
// pages a fiber touches cost RAM), each with a guard region below it, and pooled per size for
// reuse without returning hot pages to the kernel. One pool per hub; hub thread only.
//
// Guards use madvise(MADV_GUARD_INSTALL) (Linux >= 6.13): it adds no VMA, so a million guarded
// stacks fit under vm.max_map_count (65530). On older kernels the guard is an mprotect(PROT_NONE)
// range, which splits the chunk's VMA and so caps a process near 32k stacks.
#pragma once

#include <cstddef>
#include <vector>

namespace fern::detail {

// Size of the no-access region below every stack: larger than a page so that a frame bigger
// than one page (code built without -fstack-clash-protection) still lands in it.
inline constexpr std::size_t stack_guard_size = 64 * 1024;

class stack_pool {
 public:
  stack_pool() = default;
  stack_pool(const stack_pool&) = delete;
  stack_pool& operator=(const stack_pool&) = delete;
  ~stack_pool();

  // A stack with `usable` bytes (a page multiple); returns its top (highest address), or null
  // with errno set if the kernel refused memory.
  void* acquire(std::size_t usable) noexcept;
  void release(void* top, std::size_t usable) noexcept;

  // Rounds a requested size to what acquire() hands out.
  static std::size_t round_size(std::size_t requested) noexcept;

  // True if guards are MADV_GUARD_INSTALL markers (false: mprotect fallback).
  static bool guard_install_supported() noexcept;

 private:
  struct size_class {
    std::size_t usable;
    std::vector<void*> free;  // stack tops, LIFO so the hottest stack is reused first
    std::size_t next_chunk = 16;
    std::size_t total = 0;  // stacks ever made for this class (free's capacity covers them)
  };
  struct chunk {
    void* base;
    std::size_t bytes;
  };
  size_class* class_for(std::size_t usable);
  bool grow(size_class& c) noexcept;

  std::vector<size_class> classes_;
  std::vector<chunk> chunks_;
};

}  // namespace fern::detail
