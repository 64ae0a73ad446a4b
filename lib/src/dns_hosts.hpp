// The hosts file as glibc's nss_files module reads it: one address and its names per line ("#"
// starts a comment), names matched case-insensitively, the first matching line's name is the
// official (canonical) one. With host.conf's "multi on" every matching line contributes, in file
// order. Lookups re-check the file's identity (inode, size, mtime) and re-parse only when it
// changed. Hub thread only; reads a small regular file, never parks.
#pragma once

#include <netinet/in.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "dns_internal.hpp"

namespace fern::detail::dns {

class hosts_db {
 public:
  // Points at `path` (re-read if it is another file than before). False, with errno, if the
  // file cannot be read (nss_files then reports UNAVAIL).
  bool refresh(const std::string& path) noexcept;

  // gethostbyname3_r(name, af): the first matching line, merged with later ones if `multi`.
  // Lines are parsed for `af` as glibc does (an AF_INET lookup also takes ::ffff:a.b.c.d and ::1
  // lines as IPv4). Status success or notfound.
  host_result by_name(const char* name, int af, bool multi) const;
  // gethostbyname4_r(name): every matching line of either family, in file order (the first only
  // without `multi`); canon is the first line's official name.
  tuples_result by_name4(const char* name, bool multi) const;
  // gethostbyaddr_r(addr, len, af): the first line with that address, lines parsed for af (so an
  // AF_INET query also matches ::1 and ::ffff:a.b.c.d lines, but an AF_INET6 query for
  // ::ffff:a.b.c.d does not match IPv4 lines).
  host_result by_addr(const void* addr, socklen_t len, int af) const;

 private:
  struct line {
    std::string addr_text;
    bool has4 = false, has6 = false;
    unsigned char a4[4] = {};
    unsigned char a6[16] = {};
    std::string name;  // may be empty (an address alone on its line)
    std::vector<std::string> aliases;
  };
  // The address of `l` in the form a lookup of family `af` sees it (glibc's parse_line);
  // false if such a lookup ignores the line.
  static bool address_for(const line& l, int af, bool v4mapped, int* family, ip_bytes* out);
  static bool matches(const line& l, const char* name);
  void parse(const std::string& text);

  std::string path_;
  bool loaded_ = false;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  off_t size_ = -1;
  struct timespec mtime_ = {};
  std::vector<line> lines_;
};

}  // namespace fern::detail::dns
