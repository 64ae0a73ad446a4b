// DNS configuration (dns_config.hpp): FERN_DNS_* parsing in config.cpp's style (a malformed value
// is reported once on stderr and ignored), and the few glibc configuration files that decide
// behaviour c-ares does not know about. Files are read with direct system calls (fern::sys), so
// a preloaded shim never sees the runtime's own reads.
#include "dns_config.hpp"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "sys.hpp"

namespace fern::detail::dns {

bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view next_line(std::string_view& rest) noexcept {
  std::size_t nl = rest.find('\n');
  std::string_view line = rest.substr(0, nl);
  rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  return line;
}

namespace {

bool all_digits(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

bool parse_port(std::string_view s, int* port) noexcept {
  if (!all_digits(s) || s.size() > 5) return false;
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  if (v < 1 || v > 65535) return false;
  *port = v;
  return true;
}

bool parse_ip(std::string_view host, int family, server_spec* out) noexcept {
  char buf[INET6_ADDRSTRLEN + 1];
  if (host.empty() || host.size() >= sizeof buf) return false;
  std::memcpy(buf, host.data(), host.size());
  buf[host.size()] = '\0';
  out->addr = {};
  if (::inet_pton(family, buf, out->addr.data()) != 1) return false;
  out->family = family;
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

void report_bad(const char* name, const char* value, const char* expected) {
  std::fprintf(stderr, "fern: ignoring %s=%s (expected %s)\n", name, value, expected);
}

}  // namespace

env_settings parse_env() {
  env_settings e;
  if (const char* v = std::getenv("FERN_DNS_SERVERS"); v && *v) {
    std::vector<server_spec> list;
    if (parse_server_list(v, &list) && !list.empty())
      e.servers = std::move(list);
    else
      report_bad("FERN_DNS_SERVERS", v, "numeric servers like \"127.0.0.1:5353,[::1]:53\"");
  }
  if (const char* v = std::getenv("FERN_DNS_TIMEOUT"); v && *v) {
    if (auto ms = parse_timeout_ms(v))
      e.timeout_ms = *ms;
    else
      report_bad("FERN_DNS_TIMEOUT", v, "a duration like \"500ms\", \"2s\" or \"2\"");
  }
  if (const char* v = std::getenv("FERN_DNS_ATTEMPTS"); v && *v) {
    std::string_view s(v);
    if (all_digits(s) && s.size() <= 3 && std::atoi(v) >= 1 && std::atoi(v) <= 100)
      e.attempts = std::atoi(v);
    else
      report_bad("FERN_DNS_ATTEMPTS", v, "a number of attempts between 1 and 100");
  }
  if (const char* v = std::getenv("FERN_HOSTS_FILE"); v && *v) e.hosts_file = v;
  if (const char* v = std::getenv("FERN_RESOLV_CONF"); v && *v) e.resolv_conf = v;
  return e;
}

namespace {

// glibc's status names in nsswitch.conf action items.
int status_index(std::string_view s) noexcept {
  if (iequals(s, "SUCCESS")) return static_cast<int>(nss_status::success);
  if (iequals(s, "NOTFOUND")) return static_cast<int>(nss_status::notfound);
  if (iequals(s, "UNAVAIL")) return static_cast<int>(nss_status::unavail);
  if (iequals(s, "TRYAGAIN")) return static_cast<int>(nss_status::tryagain);
  return -1;
}

// Parses the services of one hosts line into cfg; false if fern cannot follow it.
bool parse_hosts_services(std::string_view line, nss_config* cfg) {
  std::size_t i = 0;
  auto skip_ws = [&] {
    while (i < line.size() && is_space(line[i])) ++i;
  };
  for (;;) {
    skip_ws();
    if (i >= line.size()) break;
    if (line[i] == '[') {
      // Action items for the previous service: [!]STATUS=ACTION ...
      if (cfg->sources.empty()) return false;
      std::size_t close = line.find(']', i);
      if (close == std::string_view::npos) return false;
      std::string_view items = line.substr(i + 1, close - i - 1);
      i = close + 1;
      std::size_t j = 0;
      while (j < items.size()) {
        while (j < items.size() && is_space(items[j])) ++j;
        if (j >= items.size()) break;
        std::size_t k = j;
        while (k < items.size() && !is_space(items[k])) ++k;
        std::string_view item = items.substr(j, k - j);
        j = k;
        bool negate = false;
        if (!item.empty() && item.front() == '!') {
          negate = true;
          item.remove_prefix(1);
        }
        std::size_t eq = item.find('=');
        if (eq == std::string_view::npos) return false;
        int st = status_index(trim(item.substr(0, eq)));
        std::string_view action = trim(item.substr(eq + 1));
        bool ret;
        if (iequals(action, "return"))
          ret = true;
        else if (iequals(action, "continue"))
          ret = false;
        else
          return false;  // merge, or unknown
        if (st < 0) return false;
        nss_source& src = cfg->sources.back();
        for (int s = 0; s < 4; ++s)
          if ((s == st) != negate) src.ret[s] = ret;
      }
      continue;
    }
    std::size_t k = i;
    while (k < line.size() && !is_space(line[k]) && line[k] != '[') ++k;
    std::string_view name = line.substr(i, k - i);
    i = k;
    nss_source src;
    if (name == "files")
      src.kind = source_kind::files;
    else if (name == "dns")
      src.kind = source_kind::dns;
    else
      return false;  // mdns, myhostname, resolve, nis...: glibc's own getaddrinfo
    cfg->sources.push_back(src);
  }
  return true;
}

nss_config default_hosts_nss() {
  // glibc 2.36's built-in default when nsswitch.conf has no hosts line.
  nss_config cfg;
  nss_source dns;
  dns.kind = source_kind::dns;
  dns.ret[static_cast<int>(nss_status::notfound)] = true;  // [!UNAVAIL=return]
  dns.ret[static_cast<int>(nss_status::tryagain)] = true;
  nss_source files;
  files.kind = source_kind::files;
  cfg.sources = {dns, files};
  return cfg;
}

std::mutex g_nss_mu;
std::optional<nss_config> g_nss_override;  // guarded by g_nss_mu

}  // namespace

bool parse_server(std::string_view text, server_spec* out) noexcept {
  text = trim(text);
  server_spec s;
  if (!text.empty() && text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos) return false;
    if (!parse_ip(text.substr(1, close - 1), AF_INET6, &s)) return false;
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':' || !parse_port(rest.substr(1), &s.port)) return false;
    }
    *out = s;
    return true;
  }
  if (text.find(':') != text.rfind(':')) {  // two or more colons: a bare IPv6 address
    if (!parse_ip(text, AF_INET6, &s)) return false;
    *out = s;
    return true;
  }
  std::size_t colon = text.find(':');
  std::string_view host = text.substr(0, colon);
  if (!parse_ip(host, AF_INET, &s)) return false;
  if (colon != std::string_view::npos && !parse_port(text.substr(colon + 1), &s.port)) return false;
  *out = s;
  return true;
}

bool parse_server_list(std::string_view text, std::vector<server_spec>* out) {
  out->clear();
  while (!text.empty()) {
    std::size_t comma = text.find(',');
    std::string_view item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (item.empty()) continue;
    server_spec s;
    if (!parse_server(item, &s)) return false;
    out->push_back(s);
  }
  return true;
}

std::optional<int> parse_timeout_ms(std::string_view text) noexcept {
  text = trim(text);
  double scale = 1000.0;  // a plain number is seconds
  if (text.size() > 2 && text.substr(text.size() - 2) == "ms") {
    scale = 1.0;
    text.remove_suffix(2);
  } else if (text.size() > 1 && text.back() == 's') {
    text.remove_suffix(1);
  }
  if (text.empty()) return std::nullopt;
  double whole = 0, frac = 0, div = 1;
  bool dot = false, digits = false;
  for (char c : text) {
    if (c == '.' && !dot) {
      dot = true;
      continue;
    }
    if (c < '0' || c > '9') return std::nullopt;
    digits = true;
    if (dot) {
      div *= 10;
      frac += (c - '0') / div;
    } else {
      whole = whole * 10 + (c - '0');
    }
    if (whole > 1e7) return std::nullopt;
  }
  if (!digits) return std::nullopt;
  double ms = (whole + frac) * scale;
  if (ms <= 0 || ms > 2147483647.0) return std::nullopt;
  return ms < 1 ? 1 : static_cast<int>(ms);
}

const env_settings& env() noexcept {
  static const env_settings e = parse_env();
  return e;
}

nss_config parse_nsswitch(std::string_view text) {
  while (!text.empty()) {
    std::string_view line = next_line(text);
    if (std::size_t hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    line = trim(line);
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || !iequals(trim(line.substr(0, colon)), "hosts")) continue;
    nss_config cfg;
    if (!parse_hosts_services(line.substr(colon + 1), &cfg)) {
      cfg.supported = false;
      cfg.sources.clear();
      return cfg;
    }
    if (cfg.sources.empty()) return default_hosts_nss();
    return cfg;
  }
  return default_hosts_nss();
}

const nss_config& hosts_nss() {
  static const nss_config from_file = [] {
    std::string text;
    if (!read_file("/etc/nsswitch.conf", &text)) text.clear();
    return parse_nsswitch(text);
  }();
  std::lock_guard<std::mutex> lk(g_nss_mu);
  return g_nss_override ? *g_nss_override : from_file;
}

void override_hosts_nss(std::optional<nss_config> cfg) {
  std::lock_guard<std::mutex> lk(g_nss_mu);
  g_nss_override = std::move(cfg);
}

bool hosts_multi() noexcept {
  static const bool multi = [] {
    bool on = false;  // glibc's default without host.conf
    const char* path = std::getenv("RESOLV_HOST_CONF");
    std::string text;
    if (read_file(path ? path : "/etc/host.conf", &text)) {
      std::string_view rest(text);
      while (!rest.empty()) {
        std::string_view line = next_line(rest);
        std::size_t i = 0;
        while (i < line.size() && is_space(line[i])) ++i;
        std::size_t k = i;
        while (k < line.size() && !is_space(line[k]) && line[k] != '#' && line[k] != ',') ++k;
        if (!iequals(line.substr(i, k - i), "multi")) continue;
        while (k < line.size() && is_space(line[k])) ++k;
        std::string_view arg = line.substr(k);
        if (arg.size() >= 2 && ::strncasecmp(arg.data(), "on", 2) == 0)
          on = true;
        else if (arg.size() >= 3 && ::strncasecmp(arg.data(), "off", 3) == 0)
          on = false;
      }
    }
    if (const char* v = std::getenv("RESOLV_MULTI")) {
      if (::strncasecmp(v, "on", 2) == 0)
        on = true;
      else if (::strncasecmp(v, "off", 3) == 0)
        on = false;
    }
    return on;
  }();
  return multi;
}

std::optional<int> resolv_conf_attempts(const std::string& path) {
  std::optional<int> attempts;
  auto scan_options = [&](std::string_view opts) {
    std::size_t i = 0;
    while (i < opts.size()) {
      while (i < opts.size() && (opts[i] == ' ' || opts[i] == '\t')) ++i;
      std::size_t k = i;
      while (k < opts.size() && opts[k] != ' ' && opts[k] != '\t') ++k;
      std::string_view tok = opts.substr(i, k - i);
      i = k;
      if (tok.starts_with("attempts:")) {
        int v = std::atoi(std::string(tok.substr(9)).c_str());
        attempts = v > 5 ? 5 : (v < 1 ? 1 : v);  // glibc's RES_MAXRETRY
      }
    }
  };
  std::string text;
  if (read_file(path.c_str(), &text)) {
    std::string_view rest(text);
    while (!rest.empty()) {
      std::string_view line = next_line(rest);
      if (line.size() > 7 && line.starts_with("options") && (line[7] == ' ' || line[7] == '\t'))
        scan_options(line.substr(8));
    }
  }
  if (const char* v = std::getenv("RES_OPTIONS")) scan_options(v);
  return attempts;
}

bool read_file(const char* path, std::string* out) noexcept {
  int fd = static_cast<int>(::syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC));
  if (fd < 0) return false;
  try {
    out->clear();
    char buf[4096];
    for (;;) {
      ssize_t n = sys::read(fd, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        int e = errno;
        sys::close(fd);
        errno = e;
        return false;
      }
      if (n == 0) break;
      if (out->size() > (std::size_t{64} << 20)) {  // not a configuration file
        sys::close(fd);
        errno = EFBIG;
        return false;
      }
      out->append(buf, static_cast<std::size_t>(n));
    }
  } catch (...) {
    sys::close(fd);
    errno = ENOMEM;
    return false;
  }
  sys::close(fd);
  return true;
}

void* libc_symbol(const char* name) noexcept {
  static void* const libc = ::dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  void* p = libc ? ::dlsym(libc, name) : nullptr;
  if (!p) p = ::dlsym(RTLD_NEXT, name);
  return p;
}

}  // namespace fern::detail::dns
