// Name resolution on c-ares: a lookup parks the calling fiber while the hub runs the others, so
// a thousand fibers resolving at once cost one DNS round trip, not a thousand, and no thread.
//
//   for (const fern::endpoint& e : fern::resolve("example.test", "https"))
//     std::printf("%s\n", e.addr.to_string().c_str());
//
// Each hub has one c-ares channel, driven by the hub's own poller and timers (no extra threads;
// a driver fiber exists only while queries are in flight). Sources, in glibc's order for
// "hosts: files dns": numeric hosts (inet_aton's forms too: "127.1"), the hosts file
// (/etc/hosts: the first matching line's name is the canonical one; with host.conf's "multi on"
// or RESOLV_MULTI=on every matching line adds its addresses, in file order), then DNS with the
// servers, search list, ndots, timeout and attempts of /etc/resolv.conf (and LOCALDOMAIN,
// RES_OPTIONS, HOSTALIASES), walked as glibc's res_nsearch walks it. Results, errors and order
// are glibc 2.36's getaddrinfo's: the same socket-type expansion and flag semantics, and RFC 3484
// destination sorting with glibc's built-in tables. /etc/gai.conf is not read: its defaults
// apply whatever the file says.
//
// When /etc/nsswitch.conf's hosts line names services other than files and dns (mdns,
// myhostname, resolve, nis...) or actions other than return/continue, every lookup is glibc's
// own getaddrinfo / getnameinfo / gethostbyname2_r / gethostbyaddr_r, run on the hub's thread
// pool (fern::run_in_thread) so the hub still never blocks; so are AI_IDN lookups of non-ASCII
// names and AI_CANONIDN / NI_IDN answers holding "xn--" labels. Those lookups use the system's
// configuration (set_dns_options and FERN_* do not apply). nsswitch.conf is read once.
//
// Configuration: a typed fern::dns_options (set_dns_options) or, for a binary run under the shim,
// the environment, read once:
//   FERN_DNS_SERVERS   "127.0.0.1:5353,[::1]:53"  replace resolv.conf's name servers
//   FERN_DNS_TIMEOUT   "500ms", "2s" or a number of seconds: per-attempt timeout
//   FERN_DNS_ATTEMPTS  attempts (each tries every server once; default resolv.conf's, else 2)
//   FERN_HOSTS_FILE    another hosts file instead of /etc/hosts
//   FERN_RESOLV_CONF   another resolv.conf instead of /etc/resolv.conf
#pragma once

#include <netdb.h>
#include <sys/socket.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "fern/net.hpp"

namespace fern {

// A failed lookup: code() is the EAI_* value getaddrinfo would return (EAI_NONAME, EAI_AGAIN,
// EAI_SERVICE, EAI_BADFLAGS, EAI_FAMILY, EAI_NODATA, ...); what() is gai_strerror's text with
// the name that failed, e.g. "example.invalid: Name or service not known".
class dns_error : public std::runtime_error {
 public:
  dns_error(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

// getaddrinfo's hints. flags are the AI_* bits (AI_PASSIVE, AI_CANONNAME, AI_NUMERICHOST,
// AI_NUMERICSERV, AI_ADDRCONFIG, AI_V4MAPPED, AI_ALL). Unlike getaddrinfo with null hints, the
// default flags are 0, as in Python's socket.getaddrinfo.
struct resolve_hints {
  int family = AF_UNSPEC;
  int socktype = 0;
  int protocol = 0;
  int flags = 0;
};

// One result: an address with its port, and the socket type and protocol to use with it.
struct endpoint {
  address addr;
  int socktype = 0;
  int protocol = 0;
  friend bool operator==(const endpoint&, const endpoint&) = default;
};

struct resolve_result {
  std::vector<endpoint> endpoints;  // in getaddrinfo's order
  std::string canonical_name;       // filled only with AI_CANONNAME
  auto begin() const noexcept { return endpoints.begin(); }
  auto end() const noexcept { return endpoints.end(); }
  bool empty() const noexcept { return endpoints.empty(); }
  std::size_t size() const noexcept { return endpoints.size(); }
};

// Resolves host (a name or a numeric address; empty means the wildcard with AI_PASSIVE, else
// loopback) and service (a port number or a name from /etc/services; empty means port 0).
// Blocking point: honours the timeout (fern::timeout_error, source() == nullptr, when it
// passes), the enclosing fern::timeout and kill(). Throws fern::dns_error for every getaddrinfo
// failure: EAI_NONAME for a name that does not exist (NXDOMAIN), EAI_NODATA for one without
// addresses of the family, EAI_AGAIN when the servers refuse, fail or stay silent for the
// configured timeout x attempts. Hub thread (the calling thread's resolver).
resolve_result resolve(std::string_view host, std::string_view service = {},
                       const resolve_hints& hints = {}, opt_timeout timeout = {});

// What getnameinfo gives: a host name (or numeric text) and a service name (or port number).
struct name_info {
  std::string host;
  std::string service;
};

// Reverse lookup of an IPv4 or IPv6 address, with getnameinfo's NI_* flags (NI_NUMERICHOST,
// NI_NUMERICSERV, NI_NAMEREQD, NI_DGRAM, NI_NOFQDN): the hosts file first, then a PTR query.
// Blocking point, like resolve(). Throws fern::dns_error.
name_info reverse_resolve(const address& addr, int flags = 0, opt_timeout timeout = {});

// Settings of the calling thread's resolver; unset fields keep resolv.conf's (or the FERN_DNS_*
// environment's) values. Lookups already in flight finish with the old settings. Never blocks.
// Throws std::invalid_argument for a server that is not a numeric "host", "host:port",
// "[v6]" or "[v6]:port" (no zones), a timeout that is not positive or attempts below 1.
struct dns_options {
  std::vector<std::string> servers;
  opt_timeout timeout;          // per attempt and server (rounded up to whole milliseconds)
  std::optional<int> attempts;  // rounds over the servers before EAI_AGAIN
  std::optional<std::string> hosts_file;
  std::optional<std::string> resolv_conf;
};
void set_dns_options(const dns_options& options);

namespace detail {
// What the shim needs: glibc's contracts, cooperative, never throwing. Blocking points (the
// calling fiber parks; an enclosing fern::timeout or a kill ends the wait with EAI_SYSTEM and
// errno ETIMEDOUT / ECANCELED). errno is left as it was unless the result is EAI_SYSTEM (or
// NETDB_INTERNAL). Hub thread.
//
// getaddrinfo: 0 or an EAI_* code (EAI_SYSTEM with errno set). *res is laid out as glibc lays
// it out (each addrinfo and its sockaddr in one malloc'ed block, ai_canonname malloc'ed on the
// first entry only), so glibc's own freeaddrinfo frees it.
int getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                addrinfo** res) noexcept;
// getnameinfo: 0 or an EAI_* code, exactly as glibc's.
int getnameinfo(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv,
                socklen_t servlen, int flags) noexcept;

// For the gethostbyname / gethostbyaddr families: one name's addresses of one family.
struct host_entry {
  std::string name;                  // official (canonical) name
  std::vector<std::string> aliases;  // the other names
  int family = AF_INET;              // AF_INET (4-byte addrs) or AF_INET6 (16-byte addrs)
  std::vector<std::string> addrs;    // raw network-order addresses, 4 or 16 bytes each
};
// Forward lookup as gethostbyname2(name, family) does it (hosts file, then DNS with the search
// list; numeric names are parsed). Returns 0 and fills *out, or returns the h_errno value
// (HOST_NOT_FOUND, TRY_AGAIN, NO_RECOVERY, NO_DATA); NETDB_INTERNAL with errno set for
// ETIMEDOUT / ECANCELED / ENOMEM (and EAFNOSUPPORT where glibc gives it).
int gethostbyname(const char* name, int family, host_entry* out) noexcept;
// Reverse lookup as gethostbyaddr does it; same return convention.
int gethostbyaddr(const void* addr, socklen_t len, int family, host_entry* out) noexcept;
}  // namespace detail

}  // namespace fern
