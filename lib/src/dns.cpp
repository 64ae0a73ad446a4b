// The public DNS API (fern/dns.hpp): thin C++ wrappers over the glibc-compatible functions of
// dns_gai.cpp, and the detail:: entry points the shim calls. Interruptions become exceptions here
// (fern::fiber_exit, fern::timeout_error) and EAI_SYSTEM + errno for the shim.
#include "fern/dns.hpp"

#include <errno.h>
#include <netdb.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "dns_channel.hpp"
#include "dns_config.hpp"
#include "dns_gai.hpp"
#include "fern/errors.hpp"

namespace fern {

namespace {

using detail::dns::call_state;

// Rethrows what ended a lookup's wait: a kill, the call's own timeout or an enclosing scope.
[[noreturn]] void throw_interrupted(const call_state& cs) {
  if (cs.interrupted == ECANCELED) throw fiber_exit();
  if (cs.interrupted == ETIMEDOUT) {
    if (cs.scope_expired) detail::check_interrupts();  // throws the scope's own timeout_error
    throw timeout_error();
  }
  throw std::bad_alloc();
}

[[noreturn]] void throw_dns(int code, const std::string& name, int err) {
  std::string what = name;
  what += ": ";
  what += ::gai_strerror(code);
  if (code == EAI_SYSTEM) {
    what += ": ";
    what += std::strerror(err);
  }
  throw dns_error(code, what);
}

}  // namespace

resolve_result resolve(std::string_view host, std::string_view service, const resolve_hints& hints,
                       opt_timeout timeout) {
  std::string h(host), s(service);
  if (h.find('\0') != std::string::npos) throw_dns(EAI_NONAME, h, 0);
  if (s.find('\0') != std::string::npos) throw_dns(EAI_SERVICE, s, 0);
  addrinfo ai;
  std::memset(&ai, 0, sizeof ai);
  ai.ai_family = hints.family;
  ai.ai_socktype = hints.socktype;
  ai.ai_protocol = hints.protocol;
  ai.ai_flags = hints.flags;
  const char* node = h.empty() ? nullptr : h.c_str();
  const char* serv = s.empty() ? nullptr : s.c_str();
  if (!node && !serv) serv = "0";  // "empty means port 0" (getaddrinfo refuses two nulls)
  call_state cs;
  cs.deadline = detail::deadline_after(timeout);
  addrinfo* res = nullptr;
  int rc = detail::dns::getaddrinfo_impl(cs, node, serv, &ai, &res);
  if (cs.interrupted == ECANCELED || cs.interrupted == ETIMEDOUT) throw_interrupted(cs);
  if (rc != 0) {
    int err = errno;
    const std::string& name = (rc == EAI_SERVICE || h.empty()) && !s.empty() ? s : h;
    throw_dns(rc, name, err);
  }
  resolve_result out;
  try {
    for (addrinfo* p = res; p; p = p->ai_next) {
      if (p == res && p->ai_canonname) out.canonical_name = p->ai_canonname;
      out.endpoints.push_back(
          endpoint{address(p->ai_addr, p->ai_addrlen), p->ai_socktype, p->ai_protocol});
    }
  } catch (...) {
    detail::dns::free_addrinfo(res);
    throw;
  }
  detail::dns::free_addrinfo(res);
  return out;
}

name_info reverse_resolve(const address& addr, int flags, opt_timeout timeout) {
  std::string text = addr.host();
  if (!addr.is_ip()) throw_dns(EAI_FAMILY, text, 0);
  char host[NI_MAXHOST];
  char serv[NI_MAXSERV];
  call_state cs;
  cs.deadline = detail::deadline_after(timeout);
  int rc = detail::dns::getnameinfo_impl(cs, addr.data(), addr.size(), host, sizeof host, serv,
                                         sizeof serv, flags);
  if (cs.interrupted == ECANCELED || cs.interrupted == ETIMEDOUT) throw_interrupted(cs);
  if (rc != 0) throw_dns(rc, text, errno);
  return name_info{host, serv};
}

void set_dns_options(const dns_options& options) {
  for (const std::string& s : options.servers) {
    detail::dns::server_spec spec;
    if (!detail::dns::parse_server(s, &spec))
      throw std::invalid_argument("fern::set_dns_options: not a numeric DNS server: \"" + s + "\"");
  }
  if (options.timeout && options.timeout->count() <= 0)
    throw std::invalid_argument("fern::set_dns_options: the timeout must be positive");
  if (options.attempts && *options.attempts < 1)
    throw std::invalid_argument("fern::set_dns_options: attempts must be at least 1");
  detail::dns::resolver::current().set_options(options);
}

namespace detail {

namespace {
// The shim's convention: an interrupted wait is EAI_SYSTEM (or NETDB_INTERNAL) with its errno.
int gai_result(const dns::call_state& cs, int rc) {
  if (cs.interrupted == ECANCELED || cs.interrupted == ETIMEDOUT) {
    errno = cs.interrupted;
    return EAI_SYSTEM;
  }
  return rc;
}
}  // namespace

int getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                addrinfo** res) noexcept {
  dns::call_state cs;
  int saved = errno;
  int rc = gai_result(cs, dns::getaddrinfo_impl(cs, node, service, hints, res));
  if (rc != EAI_SYSTEM) errno = saved;
  return rc;
}

int getnameinfo(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv,
                socklen_t servlen, int flags) noexcept {
  dns::call_state cs;
  int saved = errno;
  int rc =
      gai_result(cs, dns::getnameinfo_impl(cs, sa, salen, host, hostlen, serv, servlen, flags));
  if (rc != EAI_SYSTEM) errno = saved;
  return rc;
}

int gethostbyname(const char* name, int family, host_entry* out) noexcept {
  dns::call_state cs;
  int saved = errno;
  int rc = dns::gethostbyname_impl(cs, name, family, out);
  if (rc != NETDB_INTERNAL) errno = saved;
  return rc;
}

int gethostbyaddr(const void* addr, socklen_t len, int family, host_entry* out) noexcept {
  dns::call_state cs;
  int saved = errno;
  int rc = dns::gethostbyaddr_impl(cs, addr, len, family, out);
  if (rc != NETDB_INTERNAL) errno = saved;
  return rc;
}

}  // namespace detail

}  // namespace fern
