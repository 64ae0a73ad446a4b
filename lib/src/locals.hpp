// Storage behind fern::fiber_local: a small per-fiber table keyed by each fiber_local's unique
// id, created on first use and destroyed when the fiber ends (on its own stack). Hub thread only.
#pragma once

#include "fern/detail/core.hpp"

namespace fern::detail {
void destroy_locals(fiber_base* f) noexcept;
}
