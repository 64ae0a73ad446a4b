// Private vocabulary of the DNS unit (dns_*.cpp): what one name-service source answers, in the
// shape glibc's NSS modules give it (a status, an h_errno, a hostent or a list of address tuples),
// so the getaddrinfo / getnameinfo logic in dns_gai.cpp can follow glibc 2.36 step by step. Also
// the per-call state that carries a deadline and records why a wait ended early. Hub thread only;
// nothing here blocks.
#pragma once

#include <netdb.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "fern/detail/core.hpp"

namespace fern::detail::dns {

// glibc's enum nss_status, reduced to what the hosts database returns. The values index
// nss_source::ret (dns_config.hpp).
enum class nss_status : int { success = 0, notfound = 1, unavail = 2, tryagain = 3 };

// One blocking call (getaddrinfo, getnameinfo, ...): its own deadline (fern::resolve's timeout;
// no_deadline for the shim's calls) and, once a wait was cut short, why. A lookup that sees
// `interrupted` set stops at once and reports it (EAI_SYSTEM / NETDB_INTERNAL with that errno).
struct call_state {
  deadline_t deadline = no_deadline;
  int interrupted = 0;         // 0, ETIMEDOUT or ECANCELED
  bool scope_expired = false;  // with ETIMEDOUT: an enclosing fern::timeout, not `deadline`
};

// An IPv4 (first 4 bytes used) or IPv6 address in network order.
using ip_bytes = std::array<unsigned char, 16>;

// What gethostbyname3_r / gethostbyaddr_r of one source (or of the whole hosts database) gives.
// `name`, `aliases` and `addrs` are valid only with status success.
struct host_result {
  nss_status status = nss_status::notfound;
  int herrno = HOST_NOT_FOUND;  // NETDB_INTERNAL: `err` holds the errno
  int err = 0;
  std::string name;
  std::vector<std::string> aliases;
  int family = AF_INET;  // of every entry of addrs
  std::vector<ip_bytes> addrs;
};

// One address of a gethostbyname4_r answer (glibc's struct gaih_addrtuple).
struct addr_tuple {
  int family = AF_INET;
  ip_bytes addr{};
  std::uint32_t scope_id = 0;
};

// What gethostbyname4_r of one source gives: addresses of both families, and the name glibc puts
// on the first tuple (the canonical name).
struct tuples_result {
  nss_status status = nss_status::notfound;
  int herrno = HOST_NOT_FOUND;
  int err = 0;
  std::vector<addr_tuple> at;
  std::string canon;
};

inline std::size_t addr_len(int family) noexcept {
  return family == AF_INET6 ? 16 : 4;
}

}  // namespace fern::detail::dns
