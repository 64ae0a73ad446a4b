// weather_upstream: the small HTTP/1.1 JSON service that api_gateway fans out to. It serves
// GET /temperature?city=X, /wind?city=X and /forecast?city=X from a built-in table, a fiber per
// connection (fern::stream_server), keep-alive included. For tests it can be made slow and made
// to fail: every answer can wait --delay-ms (only on the --slow-path paths, if given) and the
// --fail-path paths fail in the --fail-mode way.
//
//   usage: weather_upstream [--port N] [--delay-ms N] [--slow-path P]... [--fail-path P]...
//                           [--fail-mode status|close|not-object]
// Prints "listening on ADDRESS", then one line per request; SIGINT or SIGTERM stop it.
#include <fern/fern.hpp>

#include "mini_http.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct day {
  const char* summary;
  int high, low;
};

struct city_weather {
  const char* name;
  double celsius, feels_like;
  int humidity;
  double wind_kmh;
  const char* wind_from;
  int gust_kmh;
  std::array<day, 3> days;
};

const city_weather cities[] = {
    {"Paris",
     18.5,
     17.9,
     72,
     14,
     "SW",
     25,
     {{{"light rain", 19, 11}, {"cloudy", 20, 12}, {"sunny", 23, 13}}}},
    {"London",
     15.2,
     13.8,
     81,
     22.5,
     "W",
     40,
     {{{"drizzle", 16, 10}, {"rain", 15, 9}, {"cloudy", 17, 10}}}},
    {"Tokyo",
     24.1,
     25.3,
     65,
     9.5,
     "SE",
     15,
     {{{"sunny", 27, 19}, {"sunny", 28, 20}, {"thunderstorms", 25, 20}}}},
    {"New York",
     21,
     21.4,
     58,
     17,
     "NW",
     30,
     {{{"partly cloudy", 23, 15}, {"sunny", 25, 16}, {"showers", 22, 16}}}},
    {"S\u00e3o Paulo",
     26.7,
     28,
     70,
     11,
     "E",
     18,
     {{{"humid \"tropical\" heat", 29, 20}, {"rain", 26, 19}, {"sunny", 30, 21}}}},
};

struct options {
  std::string port = "0";
  std::chrono::milliseconds delay{0};
  std::vector<std::string> slow_paths;  // empty: the delay applies to every path
  std::vector<std::string> fail_paths;
  std::string fail_mode = "status";
};

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// ASCII-case-insensitive, so "paris", "PARIS" and "Paris" are one city.
const city_weather* find_city(std::string_view name) {
  for (const city_weather& c : cities)
    if (mini_http::detail::iequals(c.name, name)) return &c;
  return nullptr;
}

mini_http::reply json_reply(int status, std::string body) {
  return {.status = status, .body = std::move(body)};
}

mini_http::reply error_reply(int status, std::string_view message) {
  return json_reply(status, mini_http::json::object().str("error", message).done());
}

std::string temperature(const city_weather& c) {
  return mini_http::json::object()
      .str("city", c.name)
      .num("celsius", c.celsius)
      .num("feels_like", c.feels_like)
      .num("humidity_percent", c.humidity)
      .done();
}

std::string wind(const city_weather& c) {
  return mini_http::json::object()
      .str("city", c.name)
      .num("speed_kmh", c.wind_kmh)
      .str("from", c.wind_from)
      .num("gust_kmh", c.gust_kmh)
      .done();
}

std::string forecast(const city_weather& c) {
  std::string days = "[";
  for (std::size_t i = 0; i < c.days.size(); ++i) {
    if (i) days += ',';
    days += mini_http::json::object()
                .num("day", double(i + 1))
                .str("summary", c.days[i].summary)
                .num("high_c", c.days[i].high)
                .num("low_c", c.days[i].low)
                .done();
  }
  days += ']';
  return mini_http::json::object().str("city", c.name).raw("days", days).done();
}

// What to do with a request: an answer, or (fail-mode close) hang up without one.
struct outcome {
  mini_http::reply reply;
  bool hang_up = false;
};

outcome route(const mini_http::request& req, const options& opts) {
  const std::string& path = req.path;
  if (path != "/temperature" && path != "/wind" && path != "/forecast")
    return {error_reply(404, "no such path")};
  if (req.method != "GET" && req.method != "HEAD") {
    outcome o{error_reply(405, "method not allowed")};
    o.reply.headers.push_back({"Allow", "GET, HEAD"});
    return o;
  }
  std::optional<std::string> city = mini_http::query_param(req.query, "city");
  if (!city || city->empty()) return {error_reply(400, "missing query parameter 'city'")};

  // The artificial latency: only this fiber sleeps; other requests go on being served.
  if (opts.delay.count() > 0 && (opts.slow_paths.empty() || contains(opts.slow_paths, path)))
    fern::sleep(opts.delay);
  if (contains(opts.fail_paths, path)) {
    if (opts.fail_mode == "close") return {{}, true};
    if (opts.fail_mode == "not-object") return {json_reply(200, "[\"not\",\"an\",\"object\"]")};
    return {error_reply(500, "injected failure")};
  }

  const city_weather* c = find_city(*city);
  if (!c)
    return {json_reply(
        404, mini_http::json::object().str("error", "unknown city").str("city", *city).done())};
  if (path == "/temperature") return {json_reply(200, temperature(*c))};
  if (path == "/wind") return {json_reply(200, wind(*c))};
  return {json_reply(200, forecast(*c))};
}

void log_line(const fern::address& peer, const std::string& what, int status) {
  std::printf("%s \"%s\" %d\n", peer.to_string().c_str(), what.c_str(), status);
}

void serve(fern::socket& conn, const fern::address& peer, const options& opts) {
  conn.set_nodelay(true);
  conn.set_write_timeout(10s);
  mini_http::reader in(conn);
  try {
    for (;;) {
      std::optional<mini_http::request> req;
      try {
        fern::timeout idle(30s);
        req = in.read_request();
      } catch (const mini_http::error& e) {
        mini_http::write_response(conn, error_reply(e.status(), e.what()), false);
        log_line(peer, "-", e.status());
        mini_http::lingering_close(conn);
        return;
      }
      if (!req) return;
      outcome o;
      try {
        o = route(*req, opts);
      } catch (const mini_http::error& e) {  // a malformed query
        o = {error_reply(e.status(), e.what())};
      }
      if (o.hang_up) {
        log_line(peer, req->method + " " + req->target, 0);
        return;
      }
      mini_http::write_response(conn, o.reply, req->keep_alive, req->method == "HEAD");
      log_line(peer, req->method + " " + req->target, o.reply.status);
      if (!req->keep_alive) return;
    }
  } catch (const fern::timeout_error&) {
    // Idle for 30 s, or a client that does not read its answers: hang up.
  } catch (const fern::eof_error&) {
    // The client went away in the middle of a request.
  } catch (const std::system_error& e) {
    if (e.code() != std::errc::connection_reset && e.code() != std::errc::broken_pipe) throw;
  }
}

int usage(const char* argv0, int rc) {
  std::fprintf(rc ? stderr : stdout,
               "usage: %s [options]\n"
               "  --port N          listen on 127.0.0.1:N (default 0: a free port)\n"
               "  --delay-ms N      wait N ms before each answer (default 0)\n"
               "  --slow-path P     delay only requests for path P (repeatable)\n"
               "  --fail-path P     requests for path P fail (repeatable)\n"
               "  --fail-mode M     how they fail: status (500, the default), close (hang up\n"
               "                    without an answer), not-object (200 with a JSON array)\n"
               "Serves GET /temperature, /wind and /forecast ?city=NAME as JSON.\n",
               argv0);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  options opts;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return usage(argv[0], 0);
    if (i + 1 == argc) return usage(argv[0], 2);
    std::string val = argv[++i];
    if (arg == "--port") {
      opts.port = val;
    } else if (arg == "--delay-ms") {
      opts.delay = std::chrono::milliseconds(std::strtol(val.c_str(), nullptr, 10));
    } else if (arg == "--slow-path") {
      opts.slow_paths.push_back(val);
    } else if (arg == "--fail-path") {
      opts.fail_paths.push_back(val);
    } else if (arg == "--fail-mode" && (val == "status" || val == "close" || val == "not-object")) {
      opts.fail_mode = val;
    } else {
      return usage(argv[0], 2);
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // one log line at a time, also into a file

  // A gateway under load opens a connection per upstream call: take the hard fd limit.
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  try {
    fern::stream_server server(
        fern::address::parse("127.0.0.1:" + opts.port),
        [&opts](fern::socket& conn, const fern::address& peer) { serve(conn, peer, opts); });
    std::printf("listening on %s\n", server.local_address().to_string().c_str());
    mini_http::serve_until_signalled(server);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weather_upstream: %s\n", e.what());
    return 1;
  }
}
