// FERN_* environment parsing: see config.hpp. A malformed value is reported once on stderr and
// the default kept, so a typo never silently changes behaviour.
#include "config.hpp"

#include <cstdio>
#include <cstdlib>

#include "stack_pool.hpp"

namespace fern::detail {

std::optional<std::size_t> parse_size(std::string_view s) noexcept {
  if (s.empty()) return std::nullopt;
  std::size_t mult = 1;
  switch (s.back()) {
    case 'k':
    case 'K':
      mult = std::size_t{1} << 10;
      break;
    case 'm':
    case 'M':
      mult = std::size_t{1} << 20;
      break;
    case 'g':
    case 'G':
      mult = std::size_t{1} << 30;
      break;
    default:
      break;
  }
  if (mult != 1) s.remove_suffix(1);
  if (s.empty()) return std::nullopt;
  std::size_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    std::size_t digit = static_cast<std::size_t>(c - '0');
    if (v > (SIZE_MAX - digit) / 10) return std::nullopt;
    v = v * 10 + digit;
  }
  if (v > SIZE_MAX / mult) return std::nullopt;
  return v * mult;
}

namespace {

void read_size(const char* name, std::size_t& out, std::size_t min, std::size_t max) {
  const char* v = std::getenv(name);
  if (!v) return;
  auto n = parse_size(v);
  if (!n || *n < min || *n > max) {
    std::fprintf(stderr, "fern: ignoring %s=%s (expected a size between %zu and %zu)\n", name, v,
                 min, max);
    return;
  }
  out = *n;
}

runtime_config load() noexcept {
  runtime_config c;
  read_size("FERN_STACK_SIZE", c.stack_size, 16 * 1024, std::size_t{1} << 30);
  read_size("FERN_THREADPOOL_SIZE", c.threadpool_size, 1, 1024);
  c.stack_size = stack_pool::round_size(c.stack_size);
  return c;
}

}  // namespace

const runtime_config& config() noexcept {
  static const runtime_config c = load();
  return c;
}

}  // namespace fern::detail
