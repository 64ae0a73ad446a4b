// Destination address selection as glibc 2.36's getaddrinfo does it: which address families the
// host has configured (__check_pf, for AI_ADDRCONFIG, from a netlink RTM_GETADDR dump) and the
// RFC 3484 sort of the results (rfc3484_sort with glibc's built-in label, precedence and scope
// tables; /etc/gai.conf is not read). Source addresses come from connecting a UDP socket to each
// destination, with direct system calls. Hub thread only.
#pragma once

#include <netdb.h>

#include <cstdint>
#include <vector>

#include "dns_internal.hpp"

namespace fern::detail::dns {

// One local address (glibc's struct in6addrinfo): IPv6, or IPv4 as ::ffff:a.b.c.d.
struct local_addr {
  std::uint32_t addr[4];
  std::uint8_t flags;  // deprecated_flag | homeaddress_flag
  std::uint8_t prefixlen;
  std::uint32_t index;
  static constexpr std::uint8_t deprecated_flag = 1;
  static constexpr std::uint8_t homeaddress_flag = 2;
};

// What __check_pf reports. `locals` is filled only when a non-loopback IPv6 address exists (as
// glibc, which keeps the list only then); when the dump fails both families count as present.
struct pf_info {
  bool seen_ipv4 = true;
  bool seen_ipv6 = true;
  std::vector<local_addr> locals;  // sorted by address
};

// Fills *out from a netlink dump. Blocking point only in theory (the kernel answers at once; the
// wait is bounded by two seconds): returns 0, or ECANCELED / ETIMEDOUT when a kill or an
// enclosing fern::timeout ended the wait (recorded in cs too).
int check_pf(call_state& cs, pf_info* out) noexcept;

// Sorts the list *head (n entries) in place as glibc does when a lookup found more than one
// address, moving ai_canonname to the new first entry. Blocking point only when rule 7 needs the
// interface types (a netlink dump, as check_pf); an interruption is recorded in cs and the sort
// goes on without that information. Throws std::bad_alloc.
void sort_results(call_state& cs, addrinfo** head, std::size_t n, const pf_info& pf);

}  // namespace fern::detail::dns
