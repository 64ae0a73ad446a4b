// fern::stream_server: gevent's StreamServer. An accept loop in its own fiber runs a handler in
// a new fiber per connection; an optional fern::pool bounds how many run at once (back-pressure:
// while the pool is full the loop stops accepting and connections wait in the kernel's backlog).
//
//   fern::stream_server server(fern::address::parse("127.0.0.1:8080"),
//                              [](fern::socket& conn, const fern::address& peer) {
//                                char buf[4096];
//                                while (std::size_t n = conn.read(buf, sizeof buf))
//                                  conn.write_all(buf, n);
//                              });
//   server.serve_forever();  // until another fiber calls server.stop()
//
// Or start() it and carry on; stop(timeout) closes the listener, waits for the handlers up to
// the timeout and kills the rest. The handler's socket is closed when the handler returns. An
// exception escaping a handler ends only that connection and is reported on stderr like any
// fiber's. Accept errors from resource exhaustion (EMFILE, ENFILE, ENOBUFS, ENOMEM) make the loop
// sleep 10 ms, doubling up to 1 s while they last (logged on stderr), so it never spins; aborted
// connections (ECONNABORTED) and EINTR are skipped. One hub: use a server from the fibers of the
// thread that created it (one server per hub with listen_options::reuse_port for many cores).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "fern/net.hpp"

namespace fern {

class pool;

struct server_options {
  listen_options listen;               // backlog, reuse_port (when the server binds the address)
  std::size_t max_connections = 0;     // > 0: at most this many handlers at once (an own pool)
  fern::pool* pool = nullptr;          // or run handlers in this pool (shared with other work; it
                                       // must outlive the server); wins over max_connections
  std::size_t stack_size = 0;          // connection fibers' usable stack; 0 = the hub default
  std::string name = "stream_server";  // prefix of connection fiber names and log lines
};

// Counters, for monitoring and tests.
struct server_stats {
  std::uint64_t accepted = 0;       // connections handed to a handler
  std::uint64_t accept_errors = 0;  // accept calls that failed for lack of resources (each
                                    // followed by a back-off sleep)
};

class stream_server {
 public:
  // The handler owns the connection for its run: the server closes `conn` when the handler
  // returns, unless the handler moved it elsewhere (e.g. into a fern::tls::stream), which is
  // allowed.
  using handler_type = std::function<void(socket& conn, const address& peer)>;

  // Binds and listens on `local` now (port 0 picks one: see local_address()); start() or
  // serve_forever() begins accepting. Never blocks. Throws std::system_error (EADDRINUSE...),
  // std::invalid_argument for an empty handler.
  stream_server(const address& local, handler_type handler, server_options opts = {});
  // Serves on a listener made elsewhere (opts.listen is then unused).
  stream_server(listener l, handler_type handler, server_options opts = {});
  stream_server(const stream_server&) = delete;
  stream_server& operator=(const stream_server&) = delete;
  // A server still running is stopped without waiting: the listener closes and the running
  // handlers are killed (they finish unwinding in their own fibers soon after).
  ~stream_server();

  // Spawns the accept loop. Never blocks. Throws std::logic_error if already started or stopped.
  void start();
  // Starts if needed, then waits until stop() (called from another fiber, or a handler) has
  // finished. Rethrows the error that ended the accept loop, if one did (std::system_error: the
  // listener failed). If the caller is killed or its fern::timeout scope expires while it
  // waits, the server is stopped at once (handlers killed without waiting) and the exception
  // propagates. Blocking point.
  void serve_forever();
  // Stops accepting (the listener is closed, so new connections are refused), waits up to
  // `timeout` (nullopt: forever) for the running handlers to return, then kills the rest and
  // waits for them to unwind. Returns true if every handler finished on its own. A handler may
  // call it (it does not wait for itself). A second call waits for the first to complete.
  // Blocking point; if the caller is killed or timed out while waiting, the remaining handlers
  // are killed without waiting and the exception propagates.
  bool stop(std::optional<std::chrono::nanoseconds> timeout = std::chrono::seconds(1));

  // The address it listens on (with the port chosen for port 0), also after stop().
  address local_address() const;
  bool started() const noexcept;
  // True once stop() has completed.
  bool stopped() const noexcept;
  // Handlers running now.
  std::size_t connection_count() const noexcept;
  server_stats stats() const noexcept;

  struct state;  // shared with the accept loop and the connection fibers

 private:
  std::shared_ptr<state> st_;
};

}  // namespace fern
