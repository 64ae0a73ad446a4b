// fern::stream_server (server.hpp): the accept loop, the connection fibers and the stop protocol.
// All of it runs on one hub; the state is shared (shared_ptr) between the server object, the
// accept loop and every connection fiber, so it outlives a server destroyed while they unwind.
// The accept loop re-checks `stopping` after every blocking point, so it never touches the
// listener's fd number after stop() closed it (the number may already belong to another file).
#include "fern/server.hpp"

#include <errno.h>

#include <cstdio>
#include <exception>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

#include "fern/event.hpp"
#include "fern/fiber.hpp"
#include "fern/group.hpp"
#include "sys.hpp"

namespace fern {

using namespace std::chrono_literals;

struct stream_server::state {
  listener lst;
  address local;
  handler_type handler;
  server_options opts;
  std::unique_ptr<fern::pool> own_pool;  // when opts.max_connections > 0
  fern::pool* slots = nullptr;           // opts.pool, own_pool, or null (no limit)
  group conns;                           // the connection fibers (not the pool's other members)
  fiber<void> acceptor;                  // valid once started
  event done;                // serve_forever returns: stop() completed, or the accept loop failed
  event stopped_ev;          // stop() completed (a second stop() waits for it)
  std::exception_ptr error;  // what ended the accept loop, if not stop()
  bool started = false;
  bool stopping = false;  // set first thing in stop(); the accept loop checks it after waits
  bool stopped = false;
  bool clean = true;  // every handler finished on its own within stop()'s timeout
  server_stats stats;
};

namespace {

using state = stream_server::state;

bool out_of_resources(int e) noexcept {
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

void log_backoff(const state& st, const std::system_error& e, std::chrono::nanoseconds delay) {
  char line[512];
  std::string why = e.code().message();
  int n = std::snprintf(line, sizeof line, "fern: %s %s: accept: %s; retrying in %lld ms\n",
                        st.opts.name.c_str(), st.local.to_string().c_str(), why.c_str(),
                        static_cast<long long>(delay / 1ms));
  if (n > 0)
    sys::write(2, line, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof line - 1));
}

void spawn_connection(const std::shared_ptr<state>& st, accepted conn) {
  spawn_options so{.name = st->opts.name + " peer " + conn.peer.to_string(),
                   .stack_size = st->opts.stack_size};
  // The socket lives in the fiber's callable, which is destroyed right after the handler
  // returns or throws (or if the fiber is killed before it ran): that closes the connection.
  auto body = [st, sock = std::move(conn.sock), peer = std::move(conn.peer)]() mutable {
    st->handler(sock, peer);
  };
  any_fiber f = st->slots ? any_fiber(st->slots->spawn(std::move(so), std::move(body)))
                          : any_fiber(fern::spawn(std::move(so), std::move(body)));
  st->conns.add(std::move(f));
}

void accept_loop(const std::shared_ptr<state>& st) {
  std::chrono::nanoseconds backoff{0};
  try {
    for (;;) {
      // Back-pressure: with the pool full, leave connections in the kernel's backlog.
      if (st->slots) st->slots->wait_available();
      if (st->stopping) return;
      accepted conn;
      try {
        conn = st->lst.accept();
      } catch (const std::system_error& e) {
        if (st->stopping) return;  // EBADF: stop() closed the listener under us
        if (!out_of_resources(e.code().value())) throw;
        // Out of fds or memory: retrying at once would spin (the connection stays queued and
        // the listener stays readable). Sleep, doubling, until something is freed.
        ++st->stats.accept_errors;
        backoff = backoff.count() ? std::min<std::chrono::nanoseconds>(backoff * 2, 1s) : 10ms;
        log_backoff(*st, e, backoff);
        fern::sleep(backoff);
        continue;
      }
      backoff = 0ns;
      if (st->stopping) return;
      ++st->stats.accepted;
      spawn_connection(st, std::move(conn));
    }
  } catch (...) {
    if (!st->stopping) {
      st->error = std::current_exception();
      st->done.set();
    }
    throw;  // reported on stderr like any fiber's failure
  }
}

// The connection fibers still running, except the caller (a handler may stop its server).
std::vector<any_fiber> running_handlers(const state& st) {
  std::vector<any_fiber> v;
  any_fiber self = current();
  for (any_fiber& f : st.conns.fibers())
    if (!f.ready() && !(f == self)) v.push_back(std::move(f));
  return v;
}

void close_listener(state& st) noexcept {
  try {
    st.lst.close();
  } catch (const std::system_error&) {  // closed anyway (Linux)
  }
}

// Kills the accept loop and every handler without waiting. Never blocks.
void kill_now(state& st) noexcept {
  try {
    any_fiber self = current();
    if (st.acceptor.valid() && !(st.acceptor == self)) st.acceptor.kill({.block = false});
    for (any_fiber& f : running_handlers(st)) f.kill({.block = false});
  } catch (...) {  // bad_alloc building the list: the fibers keep running, nothing else breaks
  }
}

void finish(state& st, bool clean) noexcept {
  st.stopping = true;
  st.stopped = true;
  st.clean = st.clean && clean;
  st.stopped_ev.set();
  st.done.set();
}

std::shared_ptr<state> make_state(listener l, stream_server::handler_type h, server_options opts) {
  if (!h) throw std::invalid_argument("fern::stream_server: empty handler");
  auto st = std::make_shared<state>();
  st->local = l.local_address();
  st->lst = std::move(l);
  st->handler = std::move(h);
  st->opts = std::move(opts);
  if (st->opts.pool) {
    st->slots = st->opts.pool;
  } else if (st->opts.max_connections > 0) {
    st->own_pool = std::make_unique<fern::pool>(st->opts.max_connections);
    st->slots = st->own_pool.get();
  }
  return st;
}

std::shared_ptr<state> bind_and_make_state(const address& local, stream_server::handler_type h,
                                           server_options opts) {
  listener l(local, opts.listen);
  return make_state(std::move(l), std::move(h), std::move(opts));
}

}  // namespace

stream_server::stream_server(const address& local, handler_type handler, server_options opts)
    : st_(bind_and_make_state(local, std::move(handler), std::move(opts))) {}

stream_server::stream_server(listener l, handler_type handler, server_options opts)
    : st_(make_state(std::move(l), std::move(handler), std::move(opts))) {}

stream_server::~stream_server() {
  if (!st_ || st_->stopped) return;
  st_->stopping = true;
  close_listener(*st_);
  kill_now(*st_);
  finish(*st_, false);
}

void stream_server::start() {
  if (st_->started || st_->stopping)
    throw std::logic_error("fern::stream_server::start: already started or stopped");
  st_->started = true;
  st_->acceptor =
      fern::spawn(spawn_options{.name = st_->opts.name + " accept " + st_->local.to_string()},
                  [st = st_] { accept_loop(st); });
}

void stream_server::serve_forever() {
  std::shared_ptr<state> st = st_;  // the object may be destroyed by another fiber meanwhile
  if (!st->started && !st->stopping) start();
  try {
    st->done.wait();
  } catch (...) {  // killed, or an enclosing fern::timeout: stop without waiting
    if (!st->stopped) {
      st->stopping = true;
      close_listener(*st);
      kill_now(*st);
      finish(*st, false);
    }
    throw;
  }
  if (st->error) std::rethrow_exception(st->error);
}

bool stream_server::stop(std::optional<std::chrono::nanoseconds> timeout) {
  std::shared_ptr<state> st = st_;
  if (st->stopped) return st->clean;
  if (st->stopping) {  // another fiber is stopping it
    st->stopped_ev.wait();
    return st->clean;
  }
  st->stopping = true;
  close_listener(*st);  // refuses new connections; wakes an accept loop waiting in accept()
  try {
    // The loop may instead wait for a pool slot or sleep in a back-off: kill it out of those.
    if (st->acceptor.valid()) st->acceptor.kill();
    std::vector<any_fiber> rest = running_handlers(*st);
    bool clean = joinall(rest, timeout);
    if (!clean) killall(rest);
    finish(*st, clean);
    return clean;
  } catch (...) {
    kill_now(*st);
    finish(*st, false);
    throw;
  }
}

address stream_server::local_address() const {
  return st_->local;
}

bool stream_server::started() const noexcept {
  return st_->started;
}

bool stream_server::stopped() const noexcept {
  return st_->stopped;
}

std::size_t stream_server::connection_count() const noexcept {
  return st_->conns.size();
}

server_stats stream_server::stats() const noexcept {
  return st_->stats;
}

}  // namespace fern
