// api_gateway: an HTTP/1.1 JSON gateway in plain blocking style. GET /weather?city=X calls every
// upstream service (by default temperature, wind and forecast) at once, a fiber per upstream,
// each under its own fern::timeout, and answers their JSON objects merged into one:
//   {"city":"paris","temperature":{...},"wind":{...},"forecast":{...}}
// The request's latency is the slowest upstream's, not their sum. fern::stream_server gives each
// client connection its own fiber (keep-alive, pipelining); nothing here is a callback.
//
// Errors are JSON too, {"error": "..."} plus details, and end only their request:
//   400  no or empty city, a malformed query; a malformed request (then the connection closes)
//   404  unknown path; or an upstream said the city is unknown ("unknown city" wins over the
//        failures below, being a definitive answer about the request)
//   405  a method other than GET or HEAD          431  request head over 8 KiB
//   502  an upstream failed: refused, reset, not HTTP, a status other than 200, or an answer
//        that is not a JSON object            504  every failing upstream timed out
// A 502/504 names the first failing upstream ("upstream") and lists what went wrong with each
// failing one ("errors": {"wind": "HTTP 500"}). There is no partial answer: a client either gets
// all the parts or an error.
//
//   usage: api_gateway [--port N] [--upstream NAME=HOST:PORT[/PATH]]... [--timeout-ms N] ...
// Prints "listening on ADDRESS", then one line per request; SIGINT or SIGTERM stop it gracefully
// (up to 2 s for the requests in flight). See --help.
#include <fern/fern.hpp>

#include "mini_http.hpp"

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using std::chrono::milliseconds;

namespace {

struct upstream {
  std::string name;  // its key in the merged answer
  fern::address addr;
  std::string path;  // asked as PATH?city=X
};

struct config {
  fern::address listen = fern::address::parse("127.0.0.1:8080");
  std::vector<upstream> upstreams;
  milliseconds upstream_timeout{1000};  // connect + request + whole answer, per upstream
  milliseconds idle_timeout{15000};     // a keep-alive connection's wait for its next request
  std::size_t max_connections = 1000;   // clients served at once; the rest wait in the backlog
};

// What one upstream call came to.
struct upstream_result {
  enum kind { ok, unknown_city, failed, timed_out };
  kind how = failed;
  std::string text;  // ok: the answer (a JSON object); otherwise what went wrong
  milliseconds took{0};
};

// Asks one upstream about one city. Runs in its own fiber; everything that blocks here (connect,
// write, read) is bounded by the one deadline. Never throws but fern::fiber_exit (a kill).
upstream_result fetch(const upstream& u, const std::string& city, milliseconds limit) {
  auto t0 = std::chrono::steady_clock::now();
  auto result = [&](upstream_result::kind how, std::string text) {
    return upstream_result{
        how, std::move(text),
        std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0)};
  };
  fern::timeout deadline(limit);
  try {
    fern::socket s = fern::create_connection(u.addr);
    s.set_nodelay(true);
    mini_http::write_get(s, u.path + "?city=" + mini_http::url_encode(city), u.addr.to_string(),
                         false);
    mini_http::reader in(s);
    mini_http::response r = in.read_response();
    auto members = mini_http::json::parse_object(r.body);
    if (r.status == 200) {
      if (!members) return result(upstream_result::failed, "answer is not a JSON object");
      return result(upstream_result::ok, std::move(r.body));
    }
    // Only {"error": "unknown city"} is the upstream's verdict on the city; a 404 for anything
    // else (a wrong path in our configuration) is the upstream failing.
    if (r.status == 404 && members)
      for (const mini_http::json::member& m : *members)
        if (m.key == "error" && mini_http::json::as_string(m.value) == "unknown city")
          return result(upstream_result::unknown_city, "unknown city");
    return result(upstream_result::failed, "HTTP " + std::to_string(r.status));
  } catch (const fern::timeout_error& e) {
    if (!e.is(deadline)) throw;
    return result(upstream_result::timed_out,
                  "no answer within " + std::to_string(limit.count()) + " ms");
  } catch (const mini_http::error& e) {
    return result(upstream_result::failed, e.what());
  } catch (const fern::eof_error&) {
    return result(upstream_result::failed, "connection closed in the middle of the answer");
  } catch (const std::system_error& e) {
    return result(upstream_result::failed, e.code().message());
  }
}

mini_http::reply error_reply(int status, std::string_view message) {
  return {.status = status, .body = mini_http::json::object().str("error", message).done()};
}

// The answer to a request, and a note for the log line.
struct answer {
  mini_http::reply reply;
  std::string note;
};

answer weather(const std::string& city, const config& cfg) {
  // The fan-out: one fiber per upstream, all started before any is waited for. Arguments are
  // copied into the fibers, so they own what they use even if this handler is killed.
  std::vector<fern::fiber<upstream_result>> calls;
  for (const upstream& u : cfg.upstreams)
    calls.push_back(
        fern::spawn({.name = "upstream " + u.name}, fetch, u, city, cfg.upstream_timeout));
  // If this fiber is killed while it waits (the server stopping), the calls go with it.
  struct kill_on_unwind {
    std::vector<fern::fiber<upstream_result>>& calls;
    ~kill_on_unwind() { fern::killall(calls, {.block = false}); }
  } guard{calls};
  fern::joinall(calls);  // each call is bounded by its own deadline

  std::string note;
  const upstream* first_failure = nullptr;
  bool unknown = false, all_timeouts = true;
  mini_http::json::object merged, errors;
  merged.str("city", city);
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const upstream& u = cfg.upstreams[i];
    const upstream_result& r = calls[i].get();
    note += " " + u.name + "=" + std::to_string(r.took.count()) + "ms";
    switch (r.how) {
      case upstream_result::ok:
        merged.raw(u.name, r.text);
        break;
      case upstream_result::unknown_city:
        unknown = true;
        break;
      case upstream_result::failed:
      case upstream_result::timed_out:
        if (!first_failure) first_failure = &u;
        all_timeouts = all_timeouts && r.how == upstream_result::timed_out;
        errors.str(u.name, r.text);
        note += "(" + r.text + ")";
        break;
    }
  }
  if (unknown) {
    auto body = mini_http::json::object().str("error", "unknown city").str("city", city).done();
    return {{.status = 404, .body = body}, note};
  }
  if (first_failure) {
    int status = all_timeouts ? 504 : 502;
    auto body = mini_http::json::object()
                    .str("error", all_timeouts ? "upstream timed out" : "upstream failed")
                    .str("upstream", first_failure->name)
                    .str("city", city)
                    .raw("errors", errors.done())
                    .done();
    return {{.status = status, .body = body}, note};
  }
  return {{.status = 200, .body = merged.done()}, note};
}

answer route(const mini_http::request& req, const config& cfg) {
  if (req.path != "/weather") {
    auto body = mini_http::json::object().str("error", "no such path").str("path", req.path);
    return {{.status = 404, .body = body.done()}, ""};
  }
  if (req.method != "GET" && req.method != "HEAD") {
    answer a{error_reply(405, "method not allowed"), ""};
    a.reply.headers.push_back({"Allow", "GET, HEAD"});
    return a;
  }
  std::optional<std::string> city;
  try {
    city = mini_http::query_param(req.query, "city");
  } catch (const mini_http::error& e) {
    return {error_reply(e.status(), e.what()), ""};
  }
  if (!city || city->empty()) return {error_reply(400, "missing query parameter 'city'"), ""};
  if (city->size() > 100) return {error_reply(400, "city name too long"), ""};
  return weather(*city, cfg);
}

void log_line(const fern::address& peer, const std::string& request_line, int status,
              std::size_t bytes, std::chrono::steady_clock::time_point t0,
              const std::string& note) {
  std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - t0;
  std::printf("%s \"%s\" %d %zu %.1fms%s\n", peer.to_string().c_str(), request_line.c_str(), status,
              bytes, took.count(), note.c_str());
}

// The next request on a connection, waiting at most the idle timeout for it; nullopt when the
// client closed. An idle timeout on a connection with part of a request buffered answers 408.
std::optional<mini_http::request> next_request(mini_http::reader& in, const config& cfg) {
  fern::timeout idle(cfg.idle_timeout);
  try {
    return in.read_request();
  } catch (const fern::timeout_error& e) {
    if (!e.is(idle) || !in.pending()) throw;
    throw mini_http::error(408, "timed out reading the request");
  }
}

// One client connection, in its own fiber: requests are answered in order until the client
// closes, asks to close, idles too long or sends something malformed.
void serve(fern::socket& conn, const fern::address& peer, const config& cfg) {
  conn.set_nodelay(true);
  conn.set_write_timeout(10s);  // a client that does not read its answers is dropped
  mini_http::reader in(conn);
  try {
    for (;;) {
      auto t0 = std::chrono::steady_clock::now();
      std::optional<mini_http::request> req;
      try {
        req = next_request(in, cfg);
      } catch (const mini_http::error& e) {
        // The stream cannot be trusted past a malformed request: answer and close.
        mini_http::reply r = error_reply(e.status(), e.what());
        mini_http::write_response(conn, r, false);
        log_line(peer, "-", r.status, r.body.size(), t0, "");
        mini_http::lingering_close(conn);
        return;
      }
      if (!req) return;
      t0 = std::chrono::steady_clock::now();
      answer a = route(*req, cfg);
      mini_http::write_response(conn, a.reply, req->keep_alive, req->method == "HEAD");
      log_line(peer,
               req->method + " " + req->target + " HTTP/1." + std::to_string(req->minor_version),
               a.reply.status, a.reply.body.size(), t0, a.note);
      if (!req->keep_alive) return;  // stream_server closes the socket
    }
  } catch (const fern::timeout_error&) {
    // Idle too long between requests, or the client stopped reading: hang up.
  } catch (const fern::eof_error&) {
    // The client went away in the middle of a request.
  } catch (const std::system_error& e) {
    if (e.code() != std::errc::connection_reset && e.code() != std::errc::broken_pipe) throw;
  }
}

int usage(const char* argv0, int rc) {
  std::fprintf(
      rc ? stderr : stdout,
      "usage: %s [options]\n"
      "  --port N                 listen on 127.0.0.1:N (default 8080; 0: a free port)\n"
      "  --listen ADDR            or on this numeric address, e.g. 0.0.0.0:8080, [::1]:8080\n"
      "  --upstream NAME=HOST:PORT[/PATH]\n"
      "                           an upstream, asked GET /PATH?city=X (PATH defaults to NAME)\n"
      "                           and nested under NAME; repeatable; numeric addresses only.\n"
      "                           Default: temperature, wind and forecast on 127.0.0.1:8081\n"
      "  --timeout-ms N           per-upstream deadline for the whole call (default 1000)\n"
      "  --idle-timeout-ms N      close keep-alive connections idle this long (default 15000)\n"
      "  --max-connections N      clients served at once (default 1000)\n"
      "Serves GET /weather?city=NAME: the upstreams' JSON answers merged into one object.\n",
      argv0);
  return rc;
}

// NAME=HOST:PORT[/PATH]; throws std::invalid_argument.
upstream parse_upstream(const std::string& spec) {
  std::size_t eq = spec.find('=');
  if (eq == 0 || eq == std::string::npos) throw std::invalid_argument("bad --upstream " + spec);
  std::string name = spec.substr(0, eq), rest = spec.substr(eq + 1);
  std::size_t slash = rest.find('/');
  std::string path = slash == std::string::npos ? "/" + name : rest.substr(slash);
  return {name, fern::address::parse(rest.substr(0, slash)), path};
}

long number(const std::string& s) {
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end || v < 0) throw std::invalid_argument("not a number: " + s);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  config cfg;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "--help" || arg == "-h") return usage(argv[0], 0);
      if (i + 1 == argc) return usage(argv[0], 2);
      std::string val = argv[++i];
      if (arg == "--port")
        cfg.listen = fern::address::parse("127.0.0.1:" + val);
      else if (arg == "--listen")
        cfg.listen = fern::address::parse(val);
      else if (arg == "--upstream")
        cfg.upstreams.push_back(parse_upstream(val));
      else if (arg == "--timeout-ms")
        cfg.upstream_timeout = milliseconds(number(val));
      else if (arg == "--idle-timeout-ms")
        cfg.idle_timeout = milliseconds(number(val));
      else if (arg == "--max-connections")
        cfg.max_connections = number(val);
      else
        return usage(argv[0], 2);
    }
    if (cfg.upstreams.empty())
      for (const char* name : {"temperature", "wind", "forecast"})
        cfg.upstreams.push_back(parse_upstream(std::string(name) + "=127.0.0.1:8081"));
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "api_gateway: %s\n", e.what());
    return usage(argv[0], 2);
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // one log line at a time, also into a file

  // Each client costs an fd and each of its upstream calls another: take the hard limit.
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  try {
    fern::server_options opts;
    opts.max_connections = cfg.max_connections;
    opts.name = "gateway";
    fern::stream_server server(
        cfg.listen,
        [&cfg](fern::socket& conn, const fern::address& peer) { serve(conn, peer, cfg); }, opts);
    std::printf("listening on %s\n", server.local_address().to_string().c_str());
    mini_http::serve_until_signalled(server);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "api_gateway: %s\n", e.what());
    return 1;
  }
}
