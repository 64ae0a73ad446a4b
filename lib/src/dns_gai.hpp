// getaddrinfo, getnameinfo, gethostbyname2 and gethostbyaddr with glibc 2.36's semantics, on the
// hub's resolver: numeric hosts, the hosts file and DNS (c-ares) in nsswitch.conf's order, or
// glibc's own functions on the thread pool when nsswitch.conf names other services. Each takes a
// call_state: its deadline, and where an interruption (kill, timeout, fern::timeout scope) is
// reported; the return value is then meaningless. Blocking points; never throw.
#pragma once

#include <netdb.h>
#include <sys/socket.h>

#include "dns_internal.hpp"
#include "fern/dns.hpp"

namespace fern::detail::dns {

int getaddrinfo_impl(call_state& cs, const char* node, const char* service, const addrinfo* hints,
                     addrinfo** res) noexcept;
int getnameinfo_impl(call_state& cs, const sockaddr* sa, socklen_t salen, char* host,
                     socklen_t hostlen, char* serv, socklen_t servlen, int flags) noexcept;
int gethostbyname_impl(call_state& cs, const char* name, int family, host_entry* out) noexcept;
int gethostbyaddr_impl(call_state& cs, const void* addr, socklen_t len, int family,
                       host_entry* out) noexcept;

// Frees a list getaddrinfo_impl returned (as glibc's freeaddrinfo does: free() per entry and
// for the canonical name).
void free_addrinfo(addrinfo* ai) noexcept;

}  // namespace fern::detail::dns
