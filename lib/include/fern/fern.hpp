// fern: gevent for native code. Stackful fibers on a per-thread hub, with fiber-aware sync
// primitives, timeouts and a thread pool. Include this one header for the whole public API.
#pragma once

#include "fern/async_result.hpp"
#include "fern/channel.hpp"
#include "fern/dns.hpp"
#include "fern/errors.hpp"
#include "fern/event.hpp"
#include "fern/fiber.hpp"
#include "fern/fiber_local.hpp"
#include "fern/group.hpp"
#include "fern/hub.hpp"
#include "fern/io.hpp"
#include "fern/mutex.hpp"
#include "fern/net.hpp"
#include "fern/queue.hpp"
#include "fern/semaphore.hpp"
#include "fern/server.hpp"
#include "fern/threadpool.hpp"
#include "fern/timeout.hpp"
#include "fern/tls.hpp"
