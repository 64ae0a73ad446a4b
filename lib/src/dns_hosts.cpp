// Hosts file lookups (dns_hosts.hpp), following glibc 2.36's nss/nss_files/files-hosts.c and
// files-parse.c: the same line syntax, the same per-family address conversions, the same
// matching and merging. The parsed file is cached per hub and re-read when its identity changes;
// a file modified within the last second is always re-read (its timestamp may not show a second
// change in the same tick), so edits are seen at once, as glibc, which re-reads every time.
#include "dns_hosts.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

#include "dns_config.hpp"

namespace fern::detail::dns {

namespace {

bool v4mapped(const unsigned char* a) noexcept {
  static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a, prefix, 12) == 0;
}

bool loopback6(const unsigned char* a) noexcept {
  static const unsigned char lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return std::memcmp(a, lo, 16) == 0;
}

}  // namespace

bool hosts_db::refresh(const std::string& path) noexcept {
  struct stat st;
  if (::syscall(SYS_newfstatat, AT_FDCWD, path.c_str(), &st, 0) != 0) {
    loaded_ = false;
    lines_.clear();
    return false;
  }
  struct timespec now;
  ::clock_gettime(CLOCK_REALTIME, &now);
  bool racy = now.tv_sec - st.st_mtim.tv_sec < 2;
  if (loaded_ && !racy && path == path_ && st.st_dev == dev_ && st.st_ino == ino_ &&
      st.st_size == size_ && st.st_mtim.tv_sec == mtime_.tv_sec &&
      st.st_mtim.tv_nsec == mtime_.tv_nsec)
    return true;
  std::string text;
  if (!read_file(path.c_str(), &text)) {
    loaded_ = false;
    lines_.clear();
    return false;
  }
  try {
    parse(text);
  } catch (...) {
    loaded_ = false;
    lines_.clear();
    errno = ENOMEM;
    return false;
  }
  path_ = path;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  size_ = st.st_size;
  mtime_ = st.st_mtim;
  loaded_ = true;
  return true;
}

void hosts_db::parse(const std::string& text) {
  lines_.clear();
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::size_t end = nl == std::string::npos ? text.size() : nl;
    std::string_view raw(text.data() + pos, end - pos);
    pos = end + 1;
    // files-parse.c: the line ends at the first '#'; leading white space is skipped.
    if (std::size_t hash = raw.find('#'); hash != std::string_view::npos) raw = raw.substr(0, hash);
    std::size_t i = 0;
    while (i < raw.size() && is_space(raw[i])) ++i;
    if (i >= raw.size()) continue;
    auto field = [&]() {
      std::size_t start = i;
      while (i < raw.size() && !is_space(raw[i])) ++i;
      std::string_view f = raw.substr(start, i - start);
      while (i < raw.size() && is_space(raw[i])) ++i;
      return f;
    };
    line l;
    l.addr_text = std::string(field());
    l.has4 = ::inet_pton(AF_INET, l.addr_text.c_str(), l.a4) == 1;
    l.has6 = ::inet_pton(AF_INET6, l.addr_text.c_str(), l.a6) == 1;
    if (!l.has4 && !l.has6) continue;  // ignored for every family
    l.name = std::string(field());
    while (i < raw.size()) {
      std::string_view alias = field();
      if (!alias.empty()) l.aliases.emplace_back(alias);
    }
    lines_.push_back(std::move(l));
  }
}

bool hosts_db::address_for(const line& l, int af, bool v4map, int* family, ip_bytes* out) {
  *out = {};
  if (af == AF_UNSPEC) {
    if (l.has4) {
      *family = AF_INET;
      std::memcpy(out->data(), l.a4, 4);
      return true;
    }
    if (l.has6) {
      *family = AF_INET6;
      std::memcpy(out->data(), l.a6, 16);
      return true;
    }
    return false;
  }
  if (af == AF_INET) {
    *family = AF_INET;
    if (l.has4) {
      std::memcpy(out->data(), l.a4, 4);
      return true;
    }
    if (l.has6 && v4mapped(l.a6)) {
      std::memcpy(out->data(), l.a6 + 12, 4);
      return true;
    }
    if (l.has6 && loopback6(l.a6)) {
      static const unsigned char lo4[4] = {127, 0, 0, 1};
      std::memcpy(out->data(), lo4, 4);
      return true;
    }
    return false;
  }
  if (af == AF_INET6) {
    *family = AF_INET6;
    if (l.has6) {
      std::memcpy(out->data(), l.a6, 16);
      return true;
    }
    if (v4map && l.has4) {
      (*out)[10] = 0xff;
      (*out)[11] = 0xff;
      std::memcpy(out->data() + 12, l.a4, 4);
      return true;
    }
    return false;
  }
  return false;  // inet_pton fails for any other family: the line is ignored
}

bool hosts_db::matches(const line& l, const char* name) {
  if (::strcasecmp(name, l.name.c_str()) == 0) return true;
  for (const std::string& a : l.aliases)
    if (::strcasecmp(name, a.c_str()) == 0) return true;
  return false;
}

host_result hosts_db::by_name(const char* name, int af, bool multi) const {
  host_result r;
  r.status = nss_status::notfound;
  r.herrno = HOST_NOT_FOUND;
  bool found = false;
  for (const line& l : lines_) {
    int family;
    ip_bytes a;
    if (!address_for(l, af, false, &family, &a) || !matches(l, name)) continue;
    if (!found) {
      found = true;
      r.status = nss_status::success;
      r.herrno = NETDB_SUCCESS;
      r.family = af;
      r.name = l.name;
      r.aliases = l.aliases;
      r.addrs.push_back(a);
      if (!multi) break;
      continue;
    }
    // gethostbyname3_multi: later lines add their addresses and aliases, and their official
    // name as one more alias when it differs.
    r.addrs.push_back(a);
    r.aliases.insert(r.aliases.end(), l.aliases.begin(), l.aliases.end());
    if (l.name != r.name) r.aliases.push_back(l.name);
  }
  return r;
}

tuples_result hosts_db::by_name4(const char* name, bool multi) const {
  tuples_result r;
  r.status = nss_status::notfound;
  r.herrno = HOST_NOT_FOUND;
  for (const line& l : lines_) {
    addr_tuple t;
    if (!address_for(l, AF_UNSPEC, false, &t.family, &t.addr) || !matches(l, name)) continue;
    if (r.at.empty()) r.canon = l.name;
    r.at.push_back(t);
    if (!multi) break;
  }
  if (!r.at.empty()) {
    r.status = nss_status::success;
    r.herrno = NETDB_SUCCESS;
  }
  return r;
}

host_result hosts_db::by_addr(const void* addr, socklen_t len, int af) const {
  host_result r;
  r.status = nss_status::notfound;
  r.herrno = HOST_NOT_FOUND;
  for (const line& l : lines_) {
    int family;
    ip_bytes a;
    // glibc 2.36 parses the lines for af without AI_V4MAPPED here: an IPv4 line never answers
    // a query for ::ffff:a.b.c.d.
    if (!address_for(l, af, false, &family, &a)) continue;
    if (addr_len(family) != len || std::memcmp(a.data(), addr, len) != 0) continue;
    r.status = nss_status::success;
    r.herrno = NETDB_SUCCESS;
    r.family = family;
    r.name = l.name;
    r.aliases = l.aliases;
    r.addrs.push_back(a);
    break;
  }
  return r;
}

}  // namespace fern::detail::dns
