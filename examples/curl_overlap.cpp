// A third-party blocking C library in fibers: libcurl's easy API, whose curl_easy_perform()
// returns only when its transfer is done, run in N fibers on one thread. libcurl waits in
// poll(); this program is linked with libfern_interpose (the shim, as if LD_PRELOADed), which
// turns each such poll() into a park of the calling fiber, so the N transfers overlap. libcurl
// itself is unmodified and knows nothing of fern.
//
//   curl_overlap [N [DELAY_MS]]     (defaults: 20 transfers, 300 ms)
// Starts a small HTTP server on 127.0.0.1 (a fern::stream_server in this same thread) that
// answers each request after DELAY_MS, fetches N URLs from it at once, prints each result and
// exits 0 only if the whole batch took less than 3 delays (the transfers overlapped).
#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include <fern/fern.hpp>

namespace {

using clk = std::chrono::steady_clock;
using ms = std::chrono::duration<double, std::milli>;

// The server side: read one request (up to its blank line), wait `delay`, answer with a body
// that names the path, so each client can check it got its own reply.
void answer_after(fern::socket& conn, std::chrono::milliseconds delay) {
  std::string req;
  char buf[1024];
  while (req.find("\r\n\r\n") == std::string::npos) {
    std::size_t n = conn.read(buf, sizeof buf, std::chrono::seconds(10));
    if (n == 0 || req.size() > 16 * 1024) return;
    req.append(buf, n);
  }
  std::string path = req.substr(4, req.find(' ', 4) - 4);  // "GET /7 HTTP/1.1"
  fern::sleep(delay);  // parks this handler only; the other connections carry on
  std::string body = "reply to " + path + "\n";
  conn.write_all(
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
      "Content-Length: " +
          std::to_string(body.size()) + "\r\n\r\n" + body,
      std::chrono::seconds(10));
}

struct result {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string body;
  double start_ms = 0, end_ms = 0;  // since the batch began
};

std::size_t append_body(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// One fiber's whole job: plain libcurl, exactly as a program without fern would write it.
void fetch(const std::string& url, long timeout_ms, clk::time_point t0, result& r) {
  CURL* h = curl_easy_init();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM: required with threads and fibers
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &r.body);
  r.start_ms = ms(clk::now() - t0).count();
  r.code = curl_easy_perform(h);  // blocks: this fiber parks in poll(), the others run
  r.end_ms = ms(clk::now() - t0).count();
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
  curl_easy_cleanup(h);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 3 || (argc > 1 && std::string(argv[1]) == "--help")) {
    std::fprintf(stderr, "usage: %s [N [DELAY_MS]]\n", argv[0]);
    return 2;
  }
  const int n = argc > 1 ? std::atoi(argv[1]) : 20;
  const auto delay = std::chrono::milliseconds(argc > 2 ? std::atoi(argv[2]) : 300);
  if (n < 1 || delay.count() < 1) {
    std::fprintf(stderr, "N and DELAY_MS must be positive\n");
    return 2;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;  // once, before any fiber

  fern::stream_server server(
      fern::address::parse("127.0.0.1:0"),
      [delay](fern::socket& conn, const fern::address&) { answer_after(conn, delay); });
  server.start();
  const std::string base = "http://" + server.local_address().to_string();  // numeric: no DNS
  std::printf(
      "A local HTTP server (%s, a fern::stream_server in this thread) answers each request\n"
      "after %lld ms. %d fibers each call libcurl's blocking curl_easy_perform() on it.\n\n",
      base.c_str(), static_cast<long long>(delay.count()), n);

  // A heartbeat fiber ticking every 10 ms: if any call blocked the thread instead of parking
  // its fiber, a tick would come late by about that long.
  double worst_late = 0;
  bool done = false;
  auto heartbeat = fern::spawn([&] {
    while (!done) {
      auto before = clk::now();
      fern::sleep(std::chrono::milliseconds(10));
      worst_late = std::max(worst_late, ms(clk::now() - before).count() - 10);
    }
  });

  std::vector<result> results(n);
  std::vector<fern::fiber<void>> fibers;
  // Any transfer slower than the limit below fails the run anyway; without the shim they would
  // run one by one, each until this timeout (the server could never answer).
  const long timeout_ms = 3 * static_cast<long>(delay.count()) + 1000;
  const auto t0 = clk::now();
  for (int i = 0; i < n; ++i)
    fibers.push_back(
        fern::spawn(fetch, base + "/" + std::to_string(i), timeout_ms, t0, std::ref(results[i])));
  fern::joinall(fibers);
  const double wall = ms(clk::now() - t0).count();
  done = true;
  heartbeat.join();
  server.stop();

  std::printf("   #  result  status  bytes   started  finished     took\n");
  double sum = 0;
  int ok = 0;
  for (int i = 0; i < n; ++i) {
    const result& r = results[i];
    const bool good =
        r.code == CURLE_OK && r.status == 200 && r.body == "reply to /" + std::to_string(i) + "\n";
    ok += good;
    sum += r.end_ms - r.start_ms;
    std::printf("%4d  %-6s  %6ld  %5zu  %6.1f ms %6.1f ms %6.1f ms%s%s\n", i, good ? "ok" : "FAIL",
                r.status, r.body.size(), r.start_ms, r.end_ms, r.end_ms - r.start_ms,
                r.code == CURLE_OK ? "" : "  ",
                r.code == CURLE_OK ? "" : curl_easy_strerror(r.code));
  }
  const double limit = 3.0 * static_cast<double>(delay.count());
  std::printf(
      "\n%d of %d transfers correct.\n"
      "sum of per-request times: %8.1f ms  (the wall time if they ran one after another)\n"
      "wall time of the batch:   %8.1f ms  (must be under %.0f ms = 3 delays)\n"
      "latest tick of a 10 ms heartbeat fiber: %.1f ms late (the thread was never blocked "
      "longer)\n",
      ok, n, sum, wall, limit, worst_late);
  curl_global_cleanup();

  if (ok == n && wall < limit) {
    std::printf(
        "OK: the %d blocking calls overlapped (%.1fx). Each waited in poll(), which the shim\n"
        "turned into a park of its fiber, so the others - and the server answering them, in\n"
        "the same thread - ran meanwhile.\n",
        n, sum / wall);
    return 0;
  }
  if (ok != n) std::printf("FAILED: %d transfers went wrong.\n", n - ok);
  if (wall >= limit) std::printf("FAILED: the calls did not overlap.\n");
  if (worst_late >= static_cast<double>(delay.count()))
    std::printf("The thread itself was blocked: is libfern_interpose loaded?\n");
  return 1;
}
