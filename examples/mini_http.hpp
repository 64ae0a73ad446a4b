// mini_http.hpp: the little HTTP/1.1 and JSON that the api_gateway and weather_upstream examples
// share. A message reader over a fern::socket (requests and responses, keep-alive, pipelining,
// Content-Length bodies), a response/request writer, query-string decoding, and a JSON string
// escaper, object writer and validator. Every size is bounded, so garbage from a peer becomes a
// mini_http::error (the 4xx to answer), never a crash or unbounded memory. Deliberately not a
// general HTTP library: no chunked transfer coding, no absolute-form targets, no trailers.
#pragma once

#include <fern/fern.hpp>

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace mini_http {

// A protocol error: the peer sent something this reader cannot or will not handle. Reading a
// request, status() is the answer to send before closing the connection (400, 413, 431, 501,
// 505); reading a response it is 502 (the upstream misbehaved).
class error : public std::runtime_error {
 public:
  error(int status, const std::string& what) : std::runtime_error(what), status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

struct limits {
  std::size_t max_head_bytes = 8192;     // start line plus headers (431 beyond)
  std::size_t max_headers = 64;          // header fields (431 beyond)
  std::size_t max_body_bytes = 1 << 20;  // Content-Length (413 beyond)
};

struct header {
  std::string name;
  std::string value;
};

namespace detail {

inline char lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c;
}

inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

// RFC 9110 §5.6.2 tchar.
inline bool is_tchar(char c) noexcept {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

inline bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

inline std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

inline const std::string* find_header(const std::vector<header>& hs, std::string_view name) {
  for (const header& h : hs)
    if (iequals(h.name, name)) return &h.value;
  return nullptr;
}

// What the framing headers say, common to requests and responses.
struct framing {
  std::optional<std::size_t> content_length;
  bool transfer_encoding = false;
  bool conn_close = false;       // "Connection: close"
  bool conn_keep_alive = false;  // "Connection: keep-alive" (HTTP/1.0)
  std::size_t host_count = 0;
};

// Splits a head (start line excluded) into fields and reads the framing ones. Throws
// error(bad) for malformed fields, error(431) for too many.
inline framing parse_fields(std::string_view text, std::vector<header>& out, const limits& lim,
                            int bad) {
  framing f;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // Obsolete line folding (RFC 9112 §5.2) is rejected, as a server may.
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t'))
      throw error(bad, "folded header line");
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon)))
      throw error(bad, "malformed header line");
    std::string_view value = trim(line.substr(colon + 1));
    for (char c : value)
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
        throw error(bad, "control character in a header value");
    if (out.size() == lim.max_headers) throw error(bad == 400 ? 431 : bad, "too many headers");
    out.push_back({std::string(line.substr(0, colon)), std::string(value)});

    const std::string& name = out.back().name;
    if (iequals(name, "content-length")) {
      std::size_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (value.empty() || ec != std::errc() || end != value.data() + value.size())
        throw error(bad, "malformed Content-Length");
      if (f.content_length && *f.content_length != n)
        throw error(bad, "conflicting Content-Length headers");
      f.content_length = n;
    } else if (iequals(name, "transfer-encoding")) {
      f.transfer_encoding = true;
    } else if (iequals(name, "host")) {
      ++f.host_count;
    } else if (iequals(name, "connection")) {
      while (!value.empty()) {
        std::size_t comma = value.find(',');
        std::string_view tok = trim(value.substr(0, comma));
        value.remove_prefix(comma == std::string_view::npos ? value.size() : comma + 1);
        if (iequals(tok, "close")) f.conn_close = true;
        if (iequals(tok, "keep-alive")) f.conn_keep_alive = true;
      }
    }
  }
  return f;
}

// "HTTP/1.x" -> x (HTTP/1.2 and later minors read as 1.1, RFC 9110 §6.2); -1 for HTTP/2 and
// later (505); -2 for anything else.
inline int parse_version(std::string_view v) noexcept {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.') return -2;
  if (v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9') return -2;
  if (v[5] != '1') return v[5] == '0' ? -2 : -1;
  return v[7] == '0' ? 0 : 1;
}

// The characters JSON escapes with a letter, and those letters: '\n' is written \n.
inline constexpr std::string_view escaped = "\"\\\n\r\t\b\f";
inline constexpr std::string_view escape_letters = "\"\\nrtbf";

}  // namespace detail

struct request {
  std::string method;
  std::string target;     // as sent: "/weather?city=paris"
  std::string path;       // the target before '?'
  std::string query;      // after '?', still percent-encoded
  int minor_version = 1;  // HTTP/1.<minor_version>
  std::vector<header> headers;
  std::string body;
  bool keep_alive = true;  // what the client asked for (HTTP/1.1 default, Connection header)

  // The first header named `name` (case-insensitive), or nullptr.
  const std::string* find(std::string_view name) const {
    return detail::find_header(headers, name);
  }
};

struct response {
  int status = 0;
  std::string reason;
  std::vector<header> headers;
  std::string body;
  bool keep_alive = true;  // false if the server will close (or closed: body ran to EOF)

  const std::string* find(std::string_view name) const {
    return detail::find_header(headers, name);
  }
};

// Reads HTTP/1.x messages from a connection, one after another; bytes of the next pipelined
// message stay buffered. Every read is a blocking point of fern::socket: the socket's timeouts
// and the caller's fern::timeout scope bound it (fern::timeout_error). Also throws
// std::system_error for socket errors, fern::eof_error when the peer closes in the middle of a
// message, and mini_http::error for malformed ones.
class reader {
 public:
  explicit reader(fern::socket& sock, limits lim = {}) : sock_(sock), lim_(lim) {}

  // The next request; nullopt if the peer closed the connection cleanly between requests.
  // Requests with a Transfer-Encoding (501), an HTTP/1.1 request without exactly one Host (400)
  // and bodies over the limit (413) are errors.
  std::optional<request> read_request() {
    std::optional<std::string> head = read_head(400);
    if (!head) return std::nullopt;
    std::string_view text = *head;
    std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

    // request-line = method SP request-target SP HTTP-version (RFC 9112 §3), single spaces.
    std::size_t sp1 = line.find(' ');
    std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
      throw error(400, "malformed request line");
    request req;
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    if (!detail::is_token(method)) throw error(400, "malformed method");
    if (target.empty() || target[0] != '/') throw error(400, "request target must be a path");
    for (char c : target)
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
        throw error(400, "control character in the request target");
    int minor = detail::parse_version(line.substr(sp2 + 1));
    if (minor == -1) throw error(505, "HTTP version not supported");
    if (minor < 0) throw error(400, "malformed HTTP version");

    req.method = method;
    req.target = target;
    std::size_t q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string_view::npos) req.query = target.substr(q + 1);
    req.minor_version = minor;
    detail::framing f = detail::parse_fields(text, req.headers, lim_, 400);
    if (f.transfer_encoding) throw error(501, "Transfer-Encoding is not supported");
    if (minor == 1 && f.host_count != 1) throw error(400, "an HTTP/1.1 request needs one Host");
    req.keep_alive = minor == 1 ? !f.conn_close : f.conn_keep_alive && !f.conn_close;
    std::size_t n = f.content_length.value_or(0);
    if (n > lim_.max_body_bytes) throw error(413, "request body too large");
    req.body = read_body(n);
    return req;
  }

  // The response to the request last sent (1xx interim responses skipped). Without a
  // Content-Length the body runs to end of stream (keep_alive is then false); pass
  // head_request for the answer to a HEAD. Malformed or oversized answers, chunked ones, and a
  // connection closed before any answer are error(502).
  response read_response(bool head_request = false) {
    for (;;) {
      std::optional<std::string> head = read_head(502);
      if (!head) throw error(502, "connection closed without an answer");
      std::string_view text = *head;
      std::size_t nl = text.find('\n');
      std::string_view line = text.substr(0, nl);
      text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

      // status-line = HTTP-version SP 3DIGIT SP [reason-phrase] (RFC 9112 §4)
      response resp;
      int minor = detail::parse_version(line.substr(0, 8));
      if (minor < 0 || line.size() < 12 || line[8] != ' ' || (line.size() > 12 && line[12] != ' '))
        throw error(502, "malformed status line");
      auto [end, ec] = std::from_chars(line.data() + 9, line.data() + 12, resp.status);
      if (ec != std::errc() || end != line.data() + 12 || resp.status < 100)
        throw error(502, "malformed status code");
      if (line.size() > 13) resp.reason = line.substr(13);
      detail::framing f = detail::parse_fields(text, resp.headers, lim_, 502);
      if (resp.status < 200) continue;  // 100 Continue and friends: the real answer follows
      if (f.transfer_encoding) throw error(502, "chunked answers are not supported");
      resp.keep_alive = minor == 1 ? !f.conn_close : f.conn_keep_alive && !f.conn_close;
      if (head_request || resp.status == 204 || resp.status == 304) return resp;
      if (f.content_length) {
        if (*f.content_length > lim_.max_body_bytes) throw error(502, "answer too large");
        resp.body = read_body(*f.content_length);
      } else {
        resp.body = read_to_eof();
        resp.keep_alive = false;
      }
      return resp;
    }
  }

  // True if bytes of a next message are buffered: a timeout then hit a partial request (408),
  // not an idle connection.
  bool pending() const noexcept { return pos_ < buf_.size(); }

 private:
  // Reads more into buf_; false at end of stream.
  bool fill() {
    if (pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    } else if (pos_ >= 4096) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    char chunk[4096];
    std::size_t n = sock_.read(chunk, sizeof chunk);
    buf_.append(chunk, n);
    return n > 0;
  }

  // The next head (start line and fields, without the blank line that ends it), consumed from
  // the buffer; nullopt at a clean end of stream. Empty lines before it are skipped (RFC 9112
  // §2.2). Heads over the limit are error(431) (bad == 400) or error(bad).
  std::optional<std::string> read_head(int bad) {
    std::size_t scanned = 0;  // bytes after pos_ known to hold no complete empty line
    for (;;) {
      while (pos_ < buf_.size() && (buf_[pos_] == '\r' || buf_[pos_] == '\n') && scanned == 0)
        ++pos_;
      std::string_view avail = std::string_view(buf_).substr(pos_);
      std::size_t line_start = scanned;
      while (line_start < avail.size()) {
        std::size_t nl = avail.find('\n', line_start);
        if (nl == std::string_view::npos) break;
        std::size_t len = nl - line_start;
        if (len == 0 || (len == 1 && avail[line_start] == '\r')) {
          if (line_start > lim_.max_head_bytes) break;  // found, but too late: the check below
          std::string head(avail.substr(0, line_start));
          pos_ += nl + 1;
          return head;
        }
        line_start = nl + 1;
      }
      scanned = line_start;
      if (avail.size() > lim_.max_head_bytes)
        throw error(bad == 400 ? 431 : bad, "request head too large");
      if (!fill()) {
        if (pos_ == buf_.size()) return std::nullopt;
        throw fern::eof_error(buf_.size() - pos_);
      }
    }
  }

  std::string read_body(std::size_t n) {
    while (buf_.size() - pos_ < n)
      if (!fill()) throw fern::eof_error(buf_.size() - pos_);
    std::string body = buf_.substr(pos_, n);
    pos_ += n;
    return body;
  }

  std::string read_to_eof() {
    while (fill())
      if (buf_.size() - pos_ > lim_.max_body_bytes) throw error(502, "answer too large");
    std::string body = buf_.substr(pos_);
    pos_ = buf_.size();
    return body;
  }

  fern::socket& sock_;
  limits lim_;
  std::string buf_;  // bytes read; those before pos_ are consumed
  std::size_t pos_ = 0;
};

inline std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

// What a handler answers.
struct reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<header> headers;  // extra fields (Allow...)
};

// Writes a whole response in one write: Date, Content-Type, Content-Length, Connection, the
// extra headers, then the body (left out for HEAD, whose Content-Length still says its size).
// Blocking point (the socket's write timeout and the caller's scope bound it).
inline void write_response(fern::socket& sock, const reply& r, bool keep_alive,
                           bool head_only = false) {
  char date[64];
  std::time_t t = std::time(nullptr);
  std::tm tm;
  gmtime_r(&t, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  std::string out;
  out.reserve(256 + r.body.size());
  out += "HTTP/1.1 " + std::to_string(r.status) + " ";
  out += reason_phrase(r.status);
  out += "\r\nDate: ";
  out += date;
  out += "\r\nContent-Type: " + r.content_type;
  out += "\r\nContent-Length: " + std::to_string(r.body.size());
  out += keep_alive ? "\r\nConnection: keep-alive\r\n" : "\r\nConnection: close\r\n";
  for (const header& h : r.headers) out += h.name + ": " + h.value + "\r\n";
  out += "\r\n";
  if (!head_only) out += r.body;
  sock.write_all(out);
}

// Writes a GET for `target` (already percent-encoded) to `host`. Blocking point.
inline void write_get(fern::socket& sock, std::string_view target, std::string_view host,
                      bool keep_alive) {
  std::string out = "GET ";
  out += target;
  out += " HTTP/1.1\r\nHost: ";
  out += host;
  out += "\r\nAccept: application/json\r\n";
  out += keep_alive ? "\r\n" : "Connection: close\r\n\r\n";
  sock.write_all(out);
}

// Closes a connection after an error answer without destroying that answer: a close with
// unread input makes the kernel send RST, and the peer may lose our response before reading it.
// So: stop writing (the peer sees EOF after the answer), discard input for a short while, close.
// Blocking point (up to `linger`); never throws.
inline void lingering_close(fern::socket& sock,
                            std::chrono::milliseconds linger = std::chrono::milliseconds(500)) {
  try {
    sock.shutdown(SHUT_WR);
    fern::timeout scope(linger);
    char sink[4096];
    for (std::size_t total = 0; total < (256u << 10);) {
      std::size_t n = sock.read(sink, sizeof sink);
      if (n == 0) break;
      total += n;
    }
  } catch (const std::exception&) {
    // A timeout or a reset: the peer had its chance to read the answer.
  }
  try {
    sock.close();
  } catch (const std::exception&) {
  }
}

// Serves until SIGINT or SIGTERM, then stops the server gracefully: no new connections, up to
// `grace` for the running ones to finish, the rest killed. The signals are blocked and read from
// a signalfd by a fiber, so a signal is one more fd to wait on. Call it from main before any
// thread is started (the mask must be every thread's). Blocking point; throws what
// serve_forever throws, std::system_error if the signalfd cannot be made.
inline void serve_until_signalled(fern::stream_server& server,
                                  std::chrono::milliseconds grace = std::chrono::seconds(2)) {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  int fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "signalfd");
  auto watcher = fern::spawn({.name = "signal watcher"}, [fd, &server, grace] {
    signalfd_siginfo si;
    while (::read(fd, &si, sizeof si) != sizeof si) fern::wait_readable(fd);
    std::printf("%s: stopping\n", strsignal(static_cast<int>(si.ssi_signo)));
    server.stop(grace);
  });
  try {
    server.serve_forever();
  } catch (...) {
    watcher.kill();
    fern::close(fd);
    throw;
  }
  watcher.join();
  fern::close(fd);
}

// --- URLs ---------------------------------------------------------------------------------

// Percent-decodes a query component ('+' is a space). Throws error(400) for a malformed escape.
inline std::string url_decode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      int hi = i + 2 < s.size() ? hex(s[i + 1]) : -1, lo = hi >= 0 ? hex(s[i + 2]) : -1;
      if (lo < 0) throw error(400, "malformed percent-escape in the query");
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Percent-encodes everything but RFC 3986's unreserved characters.
inline std::string url_encode(std::string_view s) {
  static const char digits[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    bool unreserved = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += c;
    } else {
      auto b = static_cast<unsigned char>(c);
      out += '%';
      out += digits[b >> 4];
      out += digits[b & 15];
    }
  }
  return out;
}

// The decoded value of the first parameter called `name` in a query string ("a=1&city=x");
// nullopt if there is none ("city" alone counts as an empty value). Throws error(400) for a
// malformed percent-escape in a name or in the value returned.
inline std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
    std::size_t eq = pair.find('=');
    if (url_decode(pair.substr(0, eq)) != name) continue;
    return eq == std::string_view::npos ? std::string() : url_decode(pair.substr(eq + 1));
  }
  return std::nullopt;
}

// --- JSON (RFC 8259) ------------------------------------------------------------------------

namespace json {

// The length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF), or 0 if there is none.
inline std::size_t utf8_length(std::string_view s, std::size_t i) noexcept {
  auto at = [&](std::size_t k) -> unsigned {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0x100;
  };
  auto cont = [&](std::size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) {
    return at(k) >= lo && at(k) <= hi;
  };
  unsigned c = at(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF)
    return cont(1, c == 0xE0 ? 0xA0 : 0x80, c == 0xED ? 0x9F : 0xBF) && cont(2) ? 3 : 0;
  if (c >= 0xF0 && c <= 0xF4)
    return cont(1, c == 0xF0 ? 0x90 : 0x80, c == 0xF4 ? 0x8F : 0xBF) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

// Appends s as a JSON string: quotes, backslashes and control characters escaped, and bytes
// that are not well-formed UTF-8 replaced by U+FFFD, so any input gives valid JSON.
inline void append_quoted(std::string& out, std::string_view s) {
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    char c = s[i];
    if (std::size_t k = detail::escaped.find(c); k != std::string_view::npos) {
      out += '\\';
      out += detail::escape_letters[k];
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(c));
      out += esc;
    } else if (std::size_t n = utf8_length(s, i)) {
      out.append(s.substr(i, n));
      i += n;
      continue;
    } else {
      out += "\\ufffd";
    }
    ++i;
  }
  out += '"';
}

inline std::string quote(std::string_view s) {
  std::string out;
  append_quoted(out, s);
  return out;
}

// Builds one JSON object, member by member, in insertion order:
//   std::string s = json::object().str("city", c).num("celsius", 18.5).raw("wind", w).done();
// raw() takes text that is already valid JSON (checked by the caller, e.g. parse_object).
class object {
 public:
  object& str(std::string_view key, std::string_view value) {
    append_quoted(begin_member(key), value);
    return *this;
  }
  // A number in the shortest form that reads back the same; NaN and infinities become null.
  object& num(std::string_view key, double value) {
    std::string& o = begin_member(key);
    char buf[32];
    if (!std::isfinite(value)) {
      o += "null";
    } else {
      auto res = std::to_chars(buf, buf + sizeof buf, value);
      o.append(buf, res.ptr);
    }
    return *this;
  }
  object& raw(std::string_view key, std::string_view json_text) {
    begin_member(key) += json_text;
    return *this;
  }
  std::string done() const { return out_.empty() ? "{}" : out_ + "}"; }

 private:
  std::string& begin_member(std::string_view key) {
    out_ += out_.empty() ? '{' : ',';
    append_quoted(out_, key);
    out_ += ':';
    return out_;
  }
  std::string out_;
};

// A member of an object as parse_object gives it: the key decoded, the value as its raw text.
struct member {
  std::string key;
  std::string_view value;
};

// A recursive-descent validator of RFC 8259 JSON text, with bounded nesting.
class parser {
 public:
  static constexpr int max_depth = 64;
  explicit parser(std::string_view s) noexcept : s_(s) {}

  // Parses the whole text as one object; its members, or nullopt if it is anything else.
  std::optional<std::vector<member>> top_object() {
    std::vector<member> members;
    ws();
    if (!eat('{')) return std::nullopt;
    ws();
    if (!eat('}')) {
      do {
        ws();
        std::string key;
        if (!string(&key)) return std::nullopt;
        ws();
        if (!eat(':')) return std::nullopt;
        ws();
        std::size_t start = i_;
        if (!value(1)) return std::nullopt;
        members.push_back({std::move(key), s_.substr(start, i_ - start)});
        ws();
      } while (eat(','));
      if (!eat('}')) return std::nullopt;
    }
    ws();
    if (i_ != s_.size()) return std::nullopt;
    return members;
  }

  // True once the whole text has been consumed.
  bool at_end() const noexcept { return i_ == s_.size(); }

  // A string starting here; its decoded text into *out if out is not null.
  bool string(std::string* out) {
    if (!eat('"')) return false;
    while (i_ < s_.size()) {
      auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++i_ == s_.size()) return false;
        char e = s_[i_++];
        std::size_t k = detail::escape_letters.find(e);
        char plain = k != std::string_view::npos ? detail::escaped[k] : e == '/' ? '/' : 0;
        if (plain) {
          if (out) *out += plain;
        } else if (e == 'u') {
          unsigned cp;
          if (!hex4(&cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF && s_.substr(i_, 2) == "\\u") {
            std::size_t save = i_;
            unsigned lo;
            i_ += 2;
            if (hex4(&lo) && lo >= 0xDC00 && lo <= 0xDFFF)
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            else
              i_ = save;
          }
          if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;  // a lone surrogate: valid JSON, no text
          if (out) append_utf8(*out, cp);
        } else {
          return false;
        }
        continue;
      }
      std::size_t n = utf8_length(s_, i_);
      if (n == 0) return false;
      if (out) out->append(s_.substr(i_, n));
      i_ += n;
    }
    return false;
  }

 private:
  bool value(int depth) {
    if (depth > max_depth || i_ == s_.size()) return false;
    char c = s_[i_];
    if (c == '{' || c == '[') {
      char close = c == '{' ? '}' : ']';
      ++i_;
      ws();
      if (eat(close)) return true;
      do {
        ws();
        if (c == '{') {
          if (!string(nullptr)) return false;
          ws();
          if (!eat(':')) return false;
          ws();
        }
        if (!value(depth + 1)) return false;
        ws();
      } while (eat(','));
      return eat(close);
    }
    if (c == '"') return string(nullptr);
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    for (std::string_view lit : {"true", "false", "null"})
      if (s_.substr(i_, lit.size()) == lit) {
        i_ += lit.size();
        return true;
      }
    return false;
  }

  // -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
  bool number() {
    eat('-');
    if (!eat('0') && !digits()) return false;
    if (eat('.') && !digits()) return false;
    if (eat('e') || eat('E')) {
      if (!eat('+')) eat('-');
      if (!digits()) return false;
    }
    return true;
  }

  bool digits() {
    std::size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return i_ > start;
  }

  bool hex4(unsigned* cp) {
    if (s_.size() - i_ < 4) return false;
    auto [end, ec] = std::from_chars(s_.data() + i_, s_.data() + i_ + 4, *cp, 16);
    if (ec != std::errc() || end != s_.data() + i_ + 4) return false;
    i_ += 4;
    return true;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

// The members of `text` if it is exactly one valid JSON object (values as raw JSON text,
// pointing into `text`); nullopt for anything else, including arrays, scalars and bad syntax.
inline std::optional<std::vector<member>> parse_object(std::string_view text) {
  return parser(text).top_object();
}

// The decoded text of a raw JSON string value ("\"a\\nb\"" -> "a\nb"), nullopt if it is not one.
inline std::optional<std::string> as_string(std::string_view raw) {
  parser p(raw);
  std::string out;
  if (!p.string(&out) || !p.at_end()) return std::nullopt;
  return out;
}

}  // namespace json
}  // namespace mini_http
