// Process-wide defaults read once from the FERN_* environment (the only way to configure a
// binary run under the shim); each also has a typed setter on fern::hub. Never throws.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace fern::detail {

struct runtime_config {
  std::size_t stack_size = 256 * 1024;  // FERN_STACK_SIZE: usable bytes per fiber stack
  std::size_t threadpool_size = 10;     // FERN_THREADPOOL_SIZE: threads of a hub's default pool
};

const runtime_config& config() noexcept;

// "65536", "64K", "64k", "1M", "1G"; nullopt for anything else (including overflow).
std::optional<std::size_t> parse_size(std::string_view s) noexcept;

}  // namespace fern::detail
