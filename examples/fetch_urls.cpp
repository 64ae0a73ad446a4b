// fetch_urls: gevent's signature demo in C++. Every URL is fetched by its own fiber with plain
// blocking code - libcurl's easy API, curl_easy_perform() returning only when the transfer is
// done - and yet the fetches overlap, because this program is linked with libfern_interpose
// (the shim, as if LD_PRELOADed): libcurl waits in poll(), and the shim turns that poll() into
// a park of the calling fiber. The whole batch takes about as long as the slowest URL, not the
// sum. http:// and https:// alike (libcurl's own OpenSSL, unaware of fern).
//
//   usage: fetch_urls [--cacert FILE] [--timeout SECONDS] URL...
// Prints a line per URL as it completes (status, size, time, the first bytes of the body), then
// the wall time of the batch against the sum of the fetch times. A URL that fails (no answer,
// TLS error, HTTP status >= 400) is reported, not fatal; the exit status is 1 if any failed.
#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <fern/fern.hpp>

namespace {

using clk = std::chrono::steady_clock;
using ms = std::chrono::duration<double, std::milli>;

struct options {
  std::string cacert;   // empty: the system's CA store
  double timeout = 10;  // seconds, for each whole transfer
  std::vector<std::string> urls;
};

struct result {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::size_t size = 0;
  std::string head;  // the body's first bytes
  std::string error;
  double took_ms = 0;
  bool ok() const { return code == CURLE_OK && status > 0 && status < 400; }
};

constexpr std::size_t head_bytes = 40;

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* out) {
  auto* r = static_cast<result*>(out);
  std::size_t len = size * n;
  r->size += len;
  if (r->head.size() < head_bytes) r->head.append(data, std::min(len, head_bytes - r->head.size()));
  return len;
}

// The bytes as a C string literal would show them: printable ASCII as is, the rest escaped.
std::string escaped(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// One fiber's whole job: plain libcurl, exactly as a program without fern would write it.
void fetch(const std::string& url, const options& opts, result& r) {
  char errbuf[CURL_ERROR_SIZE] = "";
  CURL* h = curl_easy_init();
  if (!h) {
    r.code = CURLE_FAILED_INIT;
    r.error = "curl_easy_init failed";
    return;
  }
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM: required with threads and fibers
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(opts.timeout * 1000));
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  if (!opts.cacert.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, opts.cacert.c_str());
  const auto t0 = clk::now();
  r.code = curl_easy_perform(h);  // blocks: this fiber parks in poll(), the others run
  r.took_ms = ms(clk::now() - t0).count();
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
  if (r.code != CURLE_OK) r.error = *errbuf ? errbuf : curl_easy_strerror(r.code);
  curl_easy_cleanup(h);

  // Printed as each one completes, so the order shows which finished first.
  if (r.ok())
    std::printf("%-4s %3ld %7zu B %8.1f ms  %s  \"%s\"%s\n", "ok", r.status, r.size, r.took_ms,
                url.c_str(), escaped(r.head).c_str(), r.size > r.head.size() ? "..." : "");
  else if (r.code == CURLE_OK)
    std::printf("%-4s %3ld %7zu B %8.1f ms  %s  HTTP error status\n", "FAIL", r.status, r.size,
                r.took_ms, url.c_str());
  else
    std::printf("%-4s %3s %7s   %8.1f ms  %s  %s\n", "FAIL", "-", "-", r.took_ms, url.c_str(),
                r.error.c_str());
}

int usage(const char* argv0, int rc) {
  std::fprintf(rc ? stderr : stdout,
               "usage: %s [options] URL...\n"
               "  --cacert FILE       trust the CA certificates in FILE (PEM) for https://\n"
               "                      (default: the system's CA store)\n"
               "  --timeout SECONDS   limit for each whole transfer (default 10)\n"
               "Fetches every URL at once, a fiber each, with libcurl's blocking easy API.\n"
               "Exit status: 0 if every URL was fetched with a status below 400, else 1.\n",
               argv0);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  options opts;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return usage(argv[0], 0);
    if (arg == "--cacert" || arg == "--timeout") {
      if (i + 1 == argc) return usage(argv[0], 2);
      std::string val = argv[++i];
      if (arg == "--cacert") {
        opts.cacert = val;
      } else {
        char* end = nullptr;
        opts.timeout = std::strtod(val.c_str(), &end);
        if (*end || !(opts.timeout > 0)) return usage(argv[0], 2);
      }
    } else if (arg.starts_with("-")) {
      return usage(argv[0], 2);
    } else {
      opts.urls.push_back(arg);
    }
  }
  if (opts.urls.empty()) return usage(argv[0], 2);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;  // once, before any fiber

  std::vector<result> results(opts.urls.size());
  std::vector<fern::fiber<void>> fibers;
  const auto t0 = clk::now();
  for (std::size_t i = 0; i < opts.urls.size(); ++i)
    fibers.push_back(
        fern::spawn(fetch, std::cref(opts.urls[i]), std::cref(opts), std::ref(results[i])));
  fern::joinall(fibers);
  const double wall = ms(clk::now() - t0).count();
  curl_global_cleanup();

  double sum = 0, slowest = 0;
  std::size_t failed = 0;
  for (const result& r : results) {
    sum += r.took_ms;
    slowest = std::max(slowest, r.took_ms);
    failed += !r.ok();
  }
  std::printf(
      "\n%zu URLs: %zu ok, %zu failed\n"
      "total wall time %.1f ms, slowest fetch %.1f ms, sum of fetch times %.1f ms (%.1fx)\n",
      results.size(), results.size() - failed, failed, wall, slowest, sum, sum / wall);
  return failed ? 1 : 0;
}
