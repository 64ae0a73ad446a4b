// DNS family: getaddrinfo, getnameinfo, gethostbyname, gethostbyname2, gethostbyaddr and their
// _r forms resolve on fern's c-ares resolver (fern/dns.hpp, fern::detail): the calling fiber
// parks while the hub runs the others. glibc's own call is kept wherever it needs no name
// service (no hub, the hub's own context, numeric hosts, a numeric-only getnameinfo, arguments
// glibc rejects up front), so those answers are exactly glibc's. freeaddrinfo and gai_strerror
// pass through: fern's lists are laid out as glibc's, so glibc frees both kinds. Results, h_errno
// and the _r buffer contract are glibc's; errno is preserved on success. Never throws.

// The shim defines libc's own names: a fortified build's inline wrappers would clash with them.
#undef _FORTIFY_SOURCE

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include "fern/dns.hpp"
#include "fern/fiber_local.hpp"
#include "shim.hpp"

FERN_REAL_DEF(getaddrinfo)
FERN_REAL_DEF(freeaddrinfo)
FERN_REAL_DEF(gai_strerror)
FERN_REAL_DEF(getnameinfo)
FERN_REAL_DEF(gethostbyname_r)
FERN_REAL_DEF(gethostbyname2_r)
FERN_REAL_DEF(gethostbyname)
FERN_REAL_DEF(gethostbyname2)
FERN_REAL_DEF(gethostbyaddr_r)
FERN_REAL_DEF(gethostbyaddr)

namespace fern::shim {
namespace {

using detail::host_entry;

// --- which calls glibc answers without a name service -----------------------------------------

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}
bool is_xdigit(char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// True if glibc's gethostbyname family answers `name` itself, without NSS: the names that
// __nss_hostname_digits_dots (glibc 2.36, nss/digits_dots.c) decides. All digits and dots
// without a final dot is an IPv4 address (inet_aton forms included) or HOST_NOT_FOUND; a name
// with a colon that starts with a hex digit or a colon is IPv6 text, or HOST_NOT_FOUND for
// AF_INET. Anything else (a trailing dot included) is looked up.
bool glibc_parses(const char* name, int af) noexcept {
  const char c0 = name[0];
  if (!is_xdigit(c0) && c0 != ':') return false;
  const std::size_t n = std::strlen(name);
  if (is_digit(c0)) {
    bool digits_dots = true;
    for (std::size_t i = 0; i < n && digits_dots; ++i)
      digits_dots = is_digit(name[i]) || name[i] == '.';
    if (digits_dots) return name[n - 1] != '.';
  }
  if (c0 != ':' && !std::strchr(name, ':')) return false;
  if (af == AF_INET) return true;
  for (std::size_t i = 0; i < n; ++i)
    if (!is_xdigit(name[i]) && name[i] != ':' && name[i] != '.') return false;
  return name[n - 1] != '.';
}

// The buffer glibc's gethostbyname*_r needs before it looks at a name that starts with a digit,
// a hex digit or a colon (digits_dots.c again): a smaller one is ERANGE whatever the name.
bool glibc_refuses_buffer(const char* name, std::size_t buflen) noexcept {
  if (!is_xdigit(name[0]) && name[0] != ':') return false;
  return buflen < 16 + 3 * sizeof(char*) + std::strlen(name) + 1;
}

bool ip_family(int af) noexcept {
  return af == AF_INET || af == AF_INET6;
}

// gethostbyaddr arguments that fern looks up: an IPv4 address of 4 bytes or an IPv6 one of 16,
// not the unspecified address. glibc answers the others without a query (HOST_NOT_FOUND for ::,
// EAFNOSUPPORT for a bad family or a short length), or, for a length above the family's,
// queries the prefix: rare enough to leave to glibc, blocking.
bool fern_reverse(const void* addr, socklen_t len, int type) noexcept {
  if (!addr) return false;
  if (type == AF_INET) return len == 4;
  if (type != AF_INET6 || len != 16) return false;
  static const unsigned char any[16] = {};
  return std::memcmp(addr, any, 16) != 0;
}

// getnameinfo needs a name service only for a host name: asked for (a buffer), not
// NI_NUMERICHOST, of an IPv4 or IPv6 address. Flags outside the ones fern implements (unknown
// bits: EAI_BADFLAGS at once; NI_IDN: decoding fern does not do) stay with glibc.
bool fern_reverse_name(const sockaddr* sa, socklen_t salen, const char* host, socklen_t hostlen,
                       int flags) noexcept {
  constexpr int known = NI_NUMERICHOST | NI_NUMERICSERV | NI_NOFQDN | NI_NAMEREQD | NI_DGRAM;
  if (!sa || !host || hostlen == 0 || (flags & NI_NUMERICHOST) || (flags & ~known)) return false;
  if (sa->sa_family == AF_INET) return salen >= sizeof(sockaddr_in);
  return sa->sa_family == AF_INET6 && salen >= sizeof(sockaddr_in6);
}

// --- struct hostent in a caller's buffer ------------------------------------------------------

std::size_t addr_size(int family) noexcept {
  return family == AF_INET6 ? 16 : 4;
}

// Bytes that lay_out() needs for e in a buffer at `buf`.
std::size_t hostent_size(const host_entry& e, const char* buf) noexcept {
  const std::size_t pad = -reinterpret_cast<std::uintptr_t>(buf) % alignof(char*);
  std::size_t n = pad + (e.aliases.size() + 1 + e.addrs.size() + 1) * sizeof(char*) +
                  e.addrs.size() * addr_size(e.family) + e.name.size() + 1;
  for (const std::string& a : e.aliases) n += a.size() + 1;
  return n;
}

// Lays e out in buf as glibc's backends do: the alias and address pointer arrays (each ending
// in a null pointer, aligned), the addresses, then the strings. The caller checked the size.
void lay_out(const host_entry& e, hostent* he, char* buf) noexcept {
  const std::size_t len = addr_size(e.family);
  char* p = buf + (-reinterpret_cast<std::uintptr_t>(buf) % alignof(char*));
  char** aliases = reinterpret_cast<char**>(p);
  char** addrs = aliases + e.aliases.size() + 1;
  p = reinterpret_cast<char*>(addrs + e.addrs.size() + 1);
  for (std::size_t i = 0; i < e.addrs.size(); ++i) {
    std::memset(p, 0, len);
    std::memcpy(p, e.addrs[i].data(), std::min(len, e.addrs[i].size()));
    addrs[i] = p;
    p += len;
  }
  addrs[e.addrs.size()] = nullptr;
  auto put = [&p](const std::string& s) {
    char* at = p;
    std::memcpy(p, s.c_str(), s.size() + 1);
    p += s.size() + 1;
    return at;
  };
  he->h_name = put(e.name);
  for (std::size_t i = 0; i < e.aliases.size(); ++i) aliases[i] = put(e.aliases[i]);
  aliases[e.aliases.size()] = nullptr;
  he->h_aliases = aliases;
  he->h_addrtype = e.family;
  he->h_length = static_cast<int>(len);
  he->h_addr_list = addrs;
}

// The _r contract (glibc 2.36 nss/getXXbyYY_r.c) for fern's answer `herr` (0 or an h_errno
// value, lib's convention) with entry e:
//   found               0, *result = ret, *h_errnop untouched
//   buffer too small    ERANGE (errno too), *result = NULL, *h_errnop = NETDB_INTERNAL
//   HOST_NOT_FOUND, NO_DATA, NO_RECOVERY, TRY_AGAIN
//                       0, *result = NULL, *h_errnop set
//   NETDB_INTERNAL      errno (ETIMEDOUT, ECANCELED, ENOMEM), *result = NULL
// glibc returns EAGAIN for TRY_AGAIN only when the name server refused the connection, which
// fern's answer does not tell apart. errno is restored to `saved` unless an error number is
// returned (glibc's _r sets it to 0); *h_errnop is left alone on success (glibc's is whatever
// its NSS chain left: untouched after the hosts file, NETDB_SUCCESS after DNS).
int finish_r(int herr, const host_entry& e, hostent* ret, char* buf, std::size_t buflen,
             hostent** result, int* h_errnop, int saved) noexcept {
  *result = nullptr;
  switch (herr) {
    case 0:
      if (buflen < hostent_size(e, buf)) {
        *h_errnop = NETDB_INTERNAL;
        errno = ERANGE;
        return ERANGE;
      }
      lay_out(e, ret, buf);
      *result = ret;
      errno = saved;
      return 0;
    case NETDB_INTERNAL:
      *h_errnop = NETDB_INTERNAL;
      if (errno == 0) errno = ENOMEM;
      return errno;
    default:
      *h_errnop = herr;
      errno = saved;
      return 0;
  }
}

// --- the non-reentrant forms ------------------------------------------------------------------

// Result storage of gethostbyname, gethostbyname2 and gethostbyaddr: one per function, as in
// glibc, but per fiber rather than per process. A result stays valid until the same fiber calls
// the same function again or ends, so fibers that park between a lookup and the use of its
// result (connecting to each address in turn) never see each other's answers.
struct static_hostent {
  hostent he{};
  std::vector<char> buf;
};
enum class which { byname, byname2, byaddr };
static_hostent& storage(which w) {
  static fiber_local<static_hostent> byname, byname2, byaddr;
  return w == which::byname ? byname.get() : w == which::byname2 ? byname2.get() : byaddr.get();
}

// The non-reentrant form around glibc's own _r call, as glibc's wrapper (nss/getXXbyYY.c) does
// it: a buffer that grows while it is too small, h_errno set only when the call gave a non-zero
// value. errno is preserved unless the call reported through it (glibc's may leave it 0).
template <class Reentrant>
hostent* glibc_static(which w, Reentrant real_r) noexcept {
  const int saved = errno;
  int herr = 0;
  hostent* result = nullptr;
  try {
    static_hostent& s = storage(w);
    if (s.buf.size() < 1024) s.buf.resize(1024);
    while (real_r(&s.he, s.buf.data(), s.buf.size(), &result, &herr) == ERANGE &&
           herr == NETDB_INTERNAL)
      s.buf.resize(s.buf.size() * 2);
  } catch (const std::bad_alloc&) {
    result = nullptr;
    herr = NETDB_INTERNAL;
    errno = ENOMEM;
  }
  if (errno == 0) errno = saved;
  if (herr != 0) h_errno = herr;
  return result;
}

// The same contract for a lookup on fern: one lookup, into storage sized for its answer.
template <class Lookup>
hostent* fern_static(which w, Lookup lookup) noexcept {
  const int saved = errno;
  host_entry e;
  int herr = lookup(&e);
  hostent* result = nullptr;
  int h = 0;
  try {
    static_hostent& s = storage(w);
    const std::size_t need = hostent_size(e, nullptr) + alignof(char*);
    if (s.buf.size() < need) s.buf.resize(need);
    finish_r(herr, e, &s.he, s.buf.data(), s.buf.size(), &result, &h, saved);
  } catch (const std::bad_alloc&) {
    result = nullptr;
    h = NETDB_INTERNAL;
    errno = ENOMEM;
  }
  if (errno == 0) errno = saved;
  if (h != 0) h_errno = h;
  return result;
}

// Forward and reverse lookups on fern, into a caller's buffer.
int fern_byname_r(const char* name, int af, hostent* ret, char* buf, std::size_t buflen,
                  hostent** result, int* h_errnop) noexcept {
  const int saved = errno;
  host_entry e;
  const int herr = detail::gethostbyname(name, af, &e);
  return finish_r(herr, e, ret, buf, buflen, result, h_errnop, saved);
}
int fern_byaddr_r(const void* addr, socklen_t len, int type, hostent* ret, char* buf,
                  std::size_t buflen, hostent** result, int* h_errnop) noexcept {
  const int saved = errno;
  host_entry e;
  const int herr = detail::gethostbyaddr(addr, len, type, &e);
  return finish_r(herr, e, ret, buf, buflen, result, h_errnop, saved);
}

// True if a forward lookup of name in family af goes to fern (the thread has a hub, checked by
// the caller): a name glibc would look up, in a family it looks up.
bool fern_forward(const char* name, int af) noexcept {
  return name && ip_family(af) && !glibc_parses(name, af);
}

// glibc's default hints (getaddrinfo with null hints): AI_V4MAPPED | AI_ADDRCONFIG.
constexpr addrinfo default_hints = {.ai_flags = AI_V4MAPPED | AI_ADDRCONFIG,
                                    .ai_family = AF_UNSPEC,
                                    .ai_socktype = 0,
                                    .ai_protocol = 0,
                                    .ai_addrlen = 0,
                                    .ai_addr = nullptr,
                                    .ai_canonname = nullptr,
                                    .ai_next = nullptr};

}  // namespace
}  // namespace fern::shim

using fern::shim::cooperative_hub;

// Where a lookup on fern differs from glibc's, on purpose or by design:
// - Sources are fern's (fern/dns.hpp): the hosts file, then DNS; other NSS modules of
//   nsswitch.conf (myhostname, mdns, ldap, nscd) are not consulted on a hub.
// - errno is preserved on success (glibc's getnameinfo and _r calls leave it 0), and h_errno
//   or *h_errnop is untouched on success (glibc's is whatever its NSS chain left).
// - A name that is not found is HOST_NOT_FOUND whatever the _r buffer size; glibc's files
//   backend fails with ERANGE first when the buffer cannot hold a line of the hosts file.
// - Per-fiber storage for the non-reentrant forms (static_hostent).
// - The AI_IDN / NI_IDN flags and gethostbyaddr with a length above the family's stay with
//   glibc, which blocks the thread as it would without fern.

extern "C" {

// A null node needs no lookup; otherwise glibc's call with AI_NUMERICHOST added answers at once
// for a numeric host and for every argument error (bad flags, family, socket type, service),
// since glibc checks those before the host. Only EAI_NONAME (a name to look up) goes to fern.
// glibc copies the hints' flags into each entry: the added one is taken out again.
// The AI_IDN flags stay with glibc (fern does no IDNA), which blocks the thread as without fern.
int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
  if (!cooperative_hub() || !node || (hints && (hints->ai_flags & (AI_IDN | AI_CANONIDN))))
    return REAL(getaddrinfo)(node, service, hints, res);
  const int saved = errno;
  addrinfo probe = hints ? *hints : fern::shim::default_hints;
  const bool numeric_only = probe.ai_flags & AI_NUMERICHOST;
  probe.ai_flags |= AI_NUMERICHOST;
  int r = REAL(getaddrinfo)(node, service, &probe, res);
  if (r == 0 && !numeric_only) {
    for (addrinfo* ai = *res; ai; ai = ai->ai_next) ai->ai_flags &= ~AI_NUMERICHOST;
  } else if (r == EAI_NONAME && !numeric_only) {
    r = fern::detail::getaddrinfo(node, service, hints, res);
  }
  if (r != EAI_SYSTEM) errno = saved;
  return r;
}

// fern's lists are glibc's layout (fern/dns.hpp): each entry and its address in one block, the
// canonical name in its own block on the first entry only. glibc's free handles both.
void freeaddrinfo(addrinfo* ai) {
  REAL(freeaddrinfo)(ai);
}

const char* gai_strerror(int code) {
  return REAL(gai_strerror)(code);
}

int getnameinfo(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv,
                socklen_t servlen, int flags) {
  if (!cooperative_hub() || !fern::shim::fern_reverse_name(sa, salen, host, hostlen, flags))
    return REAL(getnameinfo)(sa, salen, host, hostlen, serv, servlen, flags);
  const int saved = errno;
  int r = fern::detail::getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
  if (r != EAI_SYSTEM) errno = saved;
  return r;
}

// glibc's _r calls check the buffer before parsing a name that may be numeric (a smaller one is
// ERANGE at once), so those stay with glibc too.
int gethostbyname_r(const char* name, hostent* ret, char* buf, size_t buflen, hostent** result,
                    int* h_errnop) {
  if (!cooperative_hub() || !fern::shim::fern_forward(name, AF_INET) ||
      fern::shim::glibc_refuses_buffer(name, buflen))
    return REAL(gethostbyname_r)(name, ret, buf, buflen, result, h_errnop);
  return fern::shim::fern_byname_r(name, AF_INET, ret, buf, buflen, result, h_errnop);
}

int gethostbyname2_r(const char* name, int af, hostent* ret, char* buf, size_t buflen,
                     hostent** result, int* h_errnop) {
  if (!cooperative_hub() || !fern::shim::fern_forward(name, af) ||
      fern::shim::glibc_refuses_buffer(name, buflen))
    return REAL(gethostbyname2_r)(name, af, ret, buf, buflen, result, h_errnop);
  return fern::shim::fern_byname_r(name, af, ret, buf, buflen, result, h_errnop);
}

int gethostbyaddr_r(const void* addr, socklen_t len, int type, hostent* ret, char* buf,
                    size_t buflen, hostent** result, int* h_errnop) {
  if (!cooperative_hub() || !fern::shim::fern_reverse(addr, len, type))
    return REAL(gethostbyaddr_r)(addr, len, type, ret, buf, buflen, result, h_errnop);
  return fern::shim::fern_byaddr_r(addr, len, type, ret, buf, buflen, result, h_errnop);
}

// The non-reentrant forms keep glibc's process-wide storage off a hub. On one, they return
// per-fiber storage (static_hostent), filled by fern's lookup or by glibc's _r call.
hostent* gethostbyname(const char* name) {
  using namespace fern::shim;
  if (!cooperative_hub() || !name) return REAL(gethostbyname)(name);
  if (!fern_forward(name, AF_INET))
    return glibc_static(which::byname, [name](hostent* he, char* b, size_t n, hostent** r, int* h) {
      return REAL(gethostbyname_r)(name, he, b, n, r, h);
    });
  return fern_static(which::byname, [name](fern::detail::host_entry* e) {
    return fern::detail::gethostbyname(name, AF_INET, e);
  });
}

hostent* gethostbyname2(const char* name, int af) {
  using namespace fern::shim;
  if (!cooperative_hub() || !name) return REAL(gethostbyname2)(name, af);
  if (!fern_forward(name, af))
    return glibc_static(which::byname2,
                        [name, af](hostent* he, char* b, size_t n, hostent** r, int* h) {
                          return REAL(gethostbyname2_r)(name, af, he, b, n, r, h);
                        });
  return fern_static(which::byname2, [name, af](fern::detail::host_entry* e) {
    return fern::detail::gethostbyname(name, af, e);
  });
}

hostent* gethostbyaddr(const void* addr, socklen_t len, int type) {
  using namespace fern::shim;
  if (!cooperative_hub()) return REAL(gethostbyaddr)(addr, len, type);
  if (!fern_reverse(addr, len, type))
    return glibc_static(which::byaddr, [=](hostent* he, char* b, size_t n, hostent** r, int* h) {
      return REAL(gethostbyaddr_r)(addr, len, type, he, b, n, r, h);
    });
  return fern_static(which::byaddr, [=](fern::detail::host_entry* e) {
    return fern::detail::gethostbyaddr(addr, len, type, e);
  });
}

}  // extern "C"
