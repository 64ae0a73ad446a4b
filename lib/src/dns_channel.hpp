// The hub's c-ares channel and the DNS queries that park fibers on it.
//
// One channel per hub (resolver::current()), created on first use with the hub's settings.
// c-ares's sockets are made, read, written and closed through fern::sys (the shim never sees
// them; close goes through fd_closing first). A driver fiber exists only while queries are
// pending: it waits on the channel's fds (detail::wait_fds) until ares_timeout's deadline, then
// runs ares_process_fd; a new query kicks it so it also watches new sockets and earlier
// deadlines. A parked driver-less hub is never kept alive by DNS, so loop_exit detection works.
//
// A lookup (dns_search, dns_ptr) allocates a lookup_op the c-ares callbacks fill in, submits its
// queries and parks on its own waiter. If the wait ends early (kill, timeout, fern::timeout
// scope), the op is abandoned: c-ares has no per-query cancel, so the op stays until its last
// callback, which frees it without touching the gone fiber. Queries go out with ares_query and
// one try per server; a timed-out query is re-issued up to the configured attempts, so every
// attempt waits the same per-server timeout, as glibc does (c-ares would double it each round).
// The search list is walked here, not by ares_search, to follow glibc's rules to the letter.
//
// Hub thread only. Channels are destroyed with the hub (the resolver lives in the root fiber's
// locals) or, after set_dns_options, when their last lookup ends.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dns_config.hpp"
#include "dns_hosts.hpp"
#include "dns_internal.hpp"
#include "fern/dns.hpp"

namespace fern::detail::dns {

// One query's outcome: the status c-ares reported (`raw`: ARES_SUCCESS means NOERROR with a
// non-empty answer section) and, after parsing, `status` with what ares_parse_{a,aaaa,ptr}_reply
// found (ARES_ENODATA when the answer held no record of the type asked, e.g. a lone CNAME).
struct dns_reply {
  int raw = 0;
  int status = 0;
  std::string name;  // hostent h_name: the canonical name (CNAME target) or the PTR name
  std::vector<std::string> aliases;
  std::vector<ip_bytes> addrs;
};

// What glibc's res_nsearch / res_nquery leave behind: ret > 0 when some query of the search
// answered (the replies of that round are in a / aaaa, qname is the name asked), else the
// h_errno of the search and the errno of the last transport failure (ECONNREFUSED when every
// server refused or was unreachable, ETIMEDOUT when one timed out; 0 if none).
struct search_result {
  int ret = -1;
  int herrno = HOST_NOT_FOUND;
  int err = 0;
  std::string qname;
  dns_reply a, aaaa;
};

// Everything a channel is created from.
struct channel_config {
  std::vector<server_spec> servers;  // empty: resolv.conf's
  std::optional<int> timeout_ms;     // per attempt; nullopt: resolv.conf's (default 5 s)
  int attempts = 2;
  std::string resolv_conf;  // empty: /etc/resolv.conf
};

class channel;

// The calling hub's DNS state: its settings, its current channel, its hosts file cache.
class resolver {
 public:
  // This hub's resolver, created on first use. Hub thread only; throws std::bad_alloc.
  static resolver& current();
  resolver() = default;
  ~resolver();
  resolver(const resolver&) = delete;
  resolver& operator=(const resolver&) = delete;

  // The channel for a new lookup, created if needed; null with *ares_status on failure.
  std::shared_ptr<channel> get_channel(int* ares_status);
  // New settings for later lookups (the channel in use finishes its lookups).
  void set_options(const dns_options& o);
  std::string hosts_path() const;
  hosts_db& hosts() noexcept { return hosts_; }

 private:
  channel_config make_config() const;
  dns_options opts_;
  std::shared_ptr<channel> channel_;
  hosts_db hosts_;
};

// glibc's __res_context_search for A and/or AAAA: HOSTALIASES, resolv.conf's ndots and search
// list, the name as is first or last, and which failures stop the search, exactly as glibc
// decides them. Each round asks the requested types at once (as glibc's parallel A/AAAA
// queries), with ares_query. Blocking point: parks until done, or sets cs.interrupted.
void dns_search(call_state& cs, const char* name, bool want_a, bool want_aaaa, search_result* out);
// A PTR query (res_query: no search list) for the reverse name of addr (4 or 16 bytes); the
// reply is in out->a. Blocking point.
void dns_ptr(call_state& cs, const unsigned char* addr, int family, search_result* out);

}  // namespace fern::detail::dns
