// glibc 2.36's getaddrinfo / getnameinfo / gethostbyname2_r / gethostbyaddr_r, re-expressed on
// fern's sources (dns_gai.hpp). The structure follows sysdeps/posix/getaddrinfo.c (gaih_inet:
// get_servtuples, text_to_binary_address, try_simple_gethostbyname, get_nss_addresses,
// generate_addrinfo), inet/getnameinfo.c, nss/digits_dots.c and the nss_files / nss_dns modules'
// status and h_errno conventions, so the same inputs give the same results, error codes, flags
// and order. Where glibc has quirks (duplicate addresses from multi-line hosts entries, the
// got_ipv6 bookkeeping, EAI_NODATA vs EAI_NONAME) they are kept.
//
// Not done natively, delegated to glibc's own function on the hub's thread pool (the hub keeps
// running): hosts lines in nsswitch.conf with services other than files/dns or actions other than
// return/continue; AI_IDN with a non-ASCII name; AI_CANONIDN / NI_IDN when the answer holds an
// "xn--" label (IDNA decoding is libidn2's job).
#include "dns_gai.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <resolv.h>
#include <strings.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "dns_channel.hpp"
#include "dns_config.hpp"
#include "dns_sort.hpp"
#include "fern/errors.hpp"
#include "fern/threadpool.hpp"

// glibc's former AI_IDN_* and NI_IDN_* flags, accepted and ignored.
#ifndef DEPRECATED_AI_IDN
#define DEPRECATED_AI_IDN 0x300
#endif
#ifndef DEPRECATED_NI_IDN
#define DEPRECATED_NI_IDN 192
#endif

namespace fern::detail::dns {

namespace {

bool c_isdigit(char c) noexcept {
  return c >= '0' && c <= '9';
}
bool c_isxdigit(char c) noexcept {
  return c_isdigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool c_isspace(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool is_ascii(const char* s) noexcept {
  for (; *s; ++s)
    if (static_cast<unsigned char>(*s) >= 0x80) return false;
  return true;
}

// True if some label of the name starts with the IDNA ACE prefix.
bool has_ace_label(const char* s) noexcept {
  for (const char* p = s; *p; ++p)
    if ((p == s || p[-1] == '.') && ::strncasecmp(p, "xn--", 4) == 0) return true;
  return false;
}

// --- glibc's own functions on the thread pool -------------------------------------------------

// Runs f() on the hub's thread pool, the calling fiber parked meanwhile. nullopt when the wait
// ended early (recorded in cs; ENOMEM if the job could not even be submitted).
template <class F>
auto run_blocking(call_state& cs, F&& f) -> std::optional<std::invoke_result_t<std::decay_t<F>&>> {
  std::optional<std::chrono::nanoseconds> timeout;
  if (cs.deadline != no_deadline)
    timeout = std::chrono::nanoseconds(std::max<deadline_t>(0, cs.deadline - now_ns()));
  try {
    return run_in_thread(std::forward<F>(f), timeout);
  } catch (const fiber_exit&) {
    cs.interrupted = ECANCELED;
  } catch (const timeout_error& e) {
    cs.interrupted = ETIMEDOUT;
    cs.scope_expired = e.source() != nullptr;
  } catch (...) {
    cs.interrupted = ENOMEM;
  }
  return std::nullopt;
}

using getaddrinfo_fn = int (*)(const char*, const char*, const addrinfo*, addrinfo**);
using getnameinfo_fn = int (*)(const sockaddr*, socklen_t, char*, socklen_t, char*, socklen_t, int);
using gethostbyname2_r_fn = int (*)(const char*, int, hostent*, char*, size_t, hostent**, int*);
using gethostbyaddr_r_fn = int (*)(const void*, socklen_t, int, hostent*, char*, size_t, hostent**,
                                   int*);
using getservbyname_r_fn = int (*)(const char*, const char*, servent*, char*, size_t, servent**);
using getservbyport_r_fn = int (*)(int, const char*, servent*, char*, size_t, servent**);

template <class Fn>
Fn libc(const char* name) noexcept {
  return reinterpret_cast<Fn>(libc_symbol(name));
}

// A glibc getaddrinfo result in transit from a pool thread; freed if nobody takes it.
struct gai_outcome {
  int rc = EAI_SYSTEM;
  int err = ENOSYS;
  addrinfo* res = nullptr;
  gai_outcome() = default;
  gai_outcome(gai_outcome&& o) noexcept
      : rc(o.rc), err(o.err), res(std::exchange(o.res, nullptr)) {}
  gai_outcome& operator=(gai_outcome&&) = delete;
  ~gai_outcome() {
    if (res) free_addrinfo(res);
  }
};

int glibc_getaddrinfo(call_state& cs, const char* node, const char* service, const addrinfo* hints,
                      addrinfo** pai) {
  std::optional<std::string> n, s;
  if (node) n = node;
  if (service) s = service;
  std::optional<addrinfo> h;
  if (hints) {
    h.emplace();
    std::memset(&*h, 0, sizeof *h);
    h->ai_flags = hints->ai_flags;
    h->ai_family = hints->ai_family;
    h->ai_socktype = hints->ai_socktype;
    h->ai_protocol = hints->ai_protocol;
  }
  auto out = run_blocking(cs, [n, s, h]() {
    gai_outcome o;
    static const auto f = libc<getaddrinfo_fn>("getaddrinfo");
    if (f) {
      o.rc = f(n ? n->c_str() : nullptr, s ? s->c_str() : nullptr, h ? &*h : nullptr, &o.res);
      o.err = errno;
    }
    return o;
  });
  if (!out) return EAI_SYSTEM;
  if (out->rc == EAI_SYSTEM) errno = out->err;
  if (out->rc == 0) *pai = std::exchange(out->res, nullptr);
  return out->rc;
}

struct gni_outcome {
  int rc = EAI_SYSTEM;
  int err = ENOSYS;
  std::string host, serv;
};

int glibc_getnameinfo(call_state& cs, const sockaddr* sa, socklen_t salen, char* host,
                      socklen_t hostlen, char* serv, socklen_t servlen, int flags) {
  sockaddr_storage ss{};
  std::memcpy(&ss, sa, std::min<std::size_t>(salen, sizeof ss));
  bool want_host = host != nullptr, want_serv = serv != nullptr;
  auto out = run_blocking(cs, [=]() {
    gni_outcome o;
    std::vector<char> hb(want_host ? hostlen : 0), sb(want_serv ? servlen : 0);
    static const auto f = libc<getnameinfo_fn>("getnameinfo");
    if (f) {
      o.rc = f(reinterpret_cast<const sockaddr*>(&ss), salen, want_host ? hb.data() : nullptr,
               hostlen, want_serv ? sb.data() : nullptr, servlen, flags);
      o.err = errno;
      if (o.rc == 0) {
        if (want_host && hostlen > 0) o.host.assign(hb.data(), strnlen(hb.data(), hostlen));
        if (want_serv && servlen > 0) o.serv.assign(sb.data(), strnlen(sb.data(), servlen));
      }
    }
    return o;
  });
  if (!out) return EAI_SYSTEM;
  if (out->rc == EAI_SYSTEM) errno = out->err;
  if (out->rc == 0) {
    if (host && hostlen > 0) std::memcpy(host, out->host.c_str(), out->host.size() + 1);
    if (serv && servlen > 0) std::memcpy(serv, out->serv.c_str(), out->serv.size() + 1);
  }
  return out->rc;
}

struct ghb_outcome {
  int herrno = NETDB_INTERNAL;
  int err = ENOSYS;
  host_entry entry;
};

ghb_outcome from_hostent(int rc, hostent* result, int herrno) {
  ghb_outcome o;
  o.err = rc;
  if (!result) {
    o.herrno = herrno == NETDB_SUCCESS ? HOST_NOT_FOUND : herrno;
    return o;
  }
  o.herrno = 0;
  o.entry.name = result->h_name ? result->h_name : "";
  for (char** a = result->h_aliases; a && *a; ++a) o.entry.aliases.emplace_back(*a);
  o.entry.family = result->h_addrtype;
  for (char** p = result->h_addr_list; p && *p; ++p)
    o.entry.addrs.emplace_back(*p, static_cast<std::size_t>(result->h_length));
  return o;
}

int glibc_gethostby(call_state& cs, host_entry* out, std::function<ghb_outcome()> job) {
  auto o = run_blocking(cs, std::move(job));
  if (!o) {
    errno = cs.interrupted;
    return NETDB_INTERNAL;
  }
  if (o->herrno == 0) {
    *out = std::move(o->entry);
    return 0;
  }
  if (o->herrno == NETDB_INTERNAL) errno = o->err;
  return o->herrno;
}

// Calls a *_r function with a growing buffer (ERANGE) and converts its result.
template <class Call>
ghb_outcome grow_call(Call call) {
  std::vector<char> buf(1024);
  for (;;) {
    hostent he, *result = nullptr;
    int herrno = 0;
    int rc = call(&he, buf.data(), buf.size(), &result, &herrno);
    if (rc == ERANGE && herrno == NETDB_INTERNAL && buf.size() < (std::size_t{1} << 24)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    return from_hostent(rc, result, herrno);
  }
}

// --- the hosts database (nsswitch.conf's hosts line) -------------------------------------------

// _nss_dns_gethostbyname3_context's mapping of a failed search: the errno of its last round
// decides UNAVAIL (no server answered) or NOTFOUND.
template <class Result>
void set_search_failure(const search_result& sr, Result* r) {
  r->herrno = sr.herrno;
  r->err = sr.err;
  if (sr.herrno == NETDB_INTERNAL)
    r->status = nss_status::unavail;
  else if (sr.err == ECONNREFUSED || sr.err == ETIMEDOUT)
    r->status = nss_status::unavail;
  else
    r->status = nss_status::notfound;
}

host_result files_by_name(const char* name, int af) {
  resolver& rv = resolver::current();
  host_result r;
  if (!rv.hosts().refresh(rv.hosts_path())) {
    r.status = nss_status::unavail;
    r.herrno = HOST_NOT_FOUND;
    r.err = errno;
    return r;
  }
  return rv.hosts().by_name(name, af, hosts_multi());
}

tuples_result files_by_name4(const char* name) {
  resolver& rv = resolver::current();
  tuples_result r;
  if (!rv.hosts().refresh(rv.hosts_path())) {
    r.status = nss_status::unavail;
    r.herrno = NO_DATA;  // _nss_files_gethostbyname4_r's choice
    r.err = errno;
    return r;
  }
  return rv.hosts().by_name4(name, hosts_multi());
}

host_result files_by_addr(const void* addr, socklen_t len, int af) {
  resolver& rv = resolver::current();
  host_result r;
  if (!rv.hosts().refresh(rv.hosts_path())) {
    r.status = nss_status::unavail;
    r.herrno = HOST_NOT_FOUND;
    r.err = errno;
    return r;
  }
  return rv.hosts().by_addr(addr, len, af);
}

// _nss_dns_gethostbyname3_r (check_hnok false) or gethostbyname2_r (true: res_hnok first).
host_result dns_by_name(call_state& cs, const char* name, int af, bool check_hnok) {
  host_result r;
  if (check_hnok && !::res_hnok(name)) return r;  // NOTFOUND, HOST_NOT_FOUND
  if (af != AF_INET && af != AF_INET6) {
    r.status = nss_status::unavail;
    r.herrno = NO_DATA;
    r.err = EAFNOSUPPORT;
    return r;
  }
  search_result sr;
  dns_search(cs, name, af == AF_INET, af == AF_INET6, &sr);
  if (cs.interrupted) return r;
  if (sr.ret < 0) {
    set_search_failure(sr, &r);
    return r;
  }
  // getanswer_r: the question must look like a host name; then the records of the type.
  if (!::res_hnok(sr.qname.c_str())) {
    r.status = nss_status::unavail;
    r.herrno = NO_RECOVERY;
    r.err = EBADMSG;
    return r;
  }
  const dns_reply& rep = af == AF_INET ? sr.a : sr.aaaa;
  if (rep.status != ARES_SUCCESS || rep.addrs.empty()) {
    r.status = nss_status::notfound;  // an answer without records of the type (a lone CNAME)
    r.herrno = NO_RECOVERY;
    return r;
  }
  r.status = nss_status::success;
  r.herrno = NETDB_SUCCESS;
  r.name = rep.name;
  r.aliases = rep.aliases;
  r.family = af;
  r.addrs = rep.addrs;
  return r;
}

// _nss_dns_gethostbyname4_r: A and AAAA at once; IPv4 answers first, as glibc lists them.
tuples_result dns_by_name4(call_state& cs, const char* name) {
  tuples_result t;
  if (!::res_hnok(name)) return t;
  search_result sr;
  dns_search(cs, name, true, true, &sr);
  if (cs.interrupted) return t;
  if (sr.ret < 0) {
    set_search_failure(sr, &t);
    return t;
  }
  if (!::res_hnok(sr.qname.c_str())) {
    t.status = nss_status::unavail;
    t.herrno = NO_RECOVERY;
    t.err = EBADMSG;
    return t;
  }
  for (const dns_reply* rep : {&sr.a, &sr.aaaa}) {
    if (rep->status != ARES_SUCCESS) continue;
    if (t.at.empty()) t.canon = rep->name;
    for (const ip_bytes& b : rep->addrs) {
      addr_tuple at;
      at.family = rep == &sr.a ? AF_INET : AF_INET6;
      at.addr = b;
      t.at.push_back(at);
    }
  }
  if (t.at.empty()) {
    t.status = nss_status::notfound;
    t.herrno = NO_RECOVERY;
    return t;
  }
  t.status = nss_status::success;
  t.herrno = NETDB_SUCCESS;
  return t;
}

// _nss_dns_gethostbyaddr2_r.
host_result dns_by_addr(call_state& cs, const void* addr, socklen_t len, int af) {
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static const unsigned char tunnelled[12] = {};
  static const unsigned char v6local[4] = {0, 0, 0, 1};
  const auto* uaddr = static_cast<const unsigned char*>(addr);
  host_result r;
  if (af == AF_INET6 && len == 16 &&
      (std::memcmp(uaddr, mapped, 12) == 0 ||
       (std::memcmp(uaddr, tunnelled, 12) == 0 && std::memcmp(uaddr + 12, v6local, 4) != 0))) {
    uaddr += 12;  // unmap: ask for the IPv4 address
    af = AF_INET;
    len = 4;
  }
  socklen_t size = af == AF_INET ? 4 : 16;
  if ((af != AF_INET && af != AF_INET6) || size > len) {
    r.status = nss_status::unavail;
    r.herrno = NETDB_INTERNAL;
    r.err = EAFNOSUPPORT;
    return r;
  }
  search_result sr;
  dns_ptr(cs, uaddr, af, &sr);
  if (cs.interrupted) return r;
  if (sr.ret < 0) {
    r.herrno = sr.herrno;
    r.err = sr.err;
    r.status = sr.herrno == NETDB_INTERNAL || sr.err == ECONNREFUSED ? nss_status::unavail
                                                                     : nss_status::notfound;
    return r;
  }
  if (sr.a.status != ARES_SUCCESS || !::res_hnok(sr.a.name.c_str())) {
    r.status = nss_status::tryagain;  // getanswer_r found no usable PTR record
    r.herrno = NO_RECOVERY;
    return r;
  }
  r.status = nss_status::success;
  r.herrno = NETDB_SUCCESS;
  r.name = sr.a.name;
  r.family = af;
  ip_bytes b{};
  std::memcpy(b.data(), uaddr, size);
  r.addrs.push_back(b);
  return r;
}

// Runs the hosts line's services in order until one's action says return.
template <class Result, class Lookup>
Result nss_lookup(call_state& cs, Lookup lookup) {
  Result r;
  r.status = nss_status::unavail;
  r.herrno = NO_RECOVERY;
  for (const nss_source& src : hosts_nss().sources) {
    r = lookup(src.kind);
    if (cs.interrupted) return r;
    if (src.ret[static_cast<int>(r.status)]) break;
  }
  return r;
}

// nss/digits_dots.c: a name of digits and dots (or an IPv6 literal) never reaches the
// services. Returns true if it decided the lookup (*out set).
bool digits_dots(const char* name, int af, host_result* out) {
  if (!(c_isdigit(name[0]) || c_isxdigit(name[0]) || name[0] == ':')) return false;
  int eff = af == AF_INET || af == AF_INET6 ? af : AF_INET;
  auto found = [&](int family, const unsigned char* bytes) {
    *out = host_result{};
    out->status = nss_status::success;
    out->herrno = NETDB_SUCCESS;
    out->name = name;
    out->family = family;
    ip_bytes b{};
    std::memcpy(b.data(), bytes, addr_len(family));
    out->addrs.push_back(b);
  };
  auto not_found = [&] {
    *out = host_result{};
    out->status = nss_status::notfound;
    out->herrno = HOST_NOT_FOUND;
  };
  if (c_isdigit(name[0])) {
    const char* cp = name;
    for (;; ++cp) {
      if (*cp == '\0') {
        if (cp[-1] == '.') break;
        unsigned char addr[16] = {};
        bool ok = eff == AF_INET ? ::inet_aton(name, reinterpret_cast<in_addr*>(addr)) != 0
                                 : ::inet_pton(AF_INET6, name, addr) > 0;
        if (ok)
          found(eff, addr);
        else
          not_found();
        return true;
      }
      if (!c_isdigit(*cp) && *cp != '.') break;
    }
  }
  if ((c_isxdigit(name[0]) && std::strchr(name, ':')) || name[0] == ':') {
    if (eff != AF_INET6) {  // an IPv6 literal cannot be an IPv4 address
      not_found();
      return true;
    }
    for (const char* cp = name;; ++cp) {
      if (*cp == '\0') {
        if (cp[-1] == '.') break;
        unsigned char addr[16] = {};
        if (::inet_pton(AF_INET6, name, addr) > 0)
          found(AF_INET6, addr);
        else
          not_found();
        return true;
      }
      if (!c_isxdigit(*cp) && *cp != ':' && *cp != '.') break;
    }
  }
  return false;
}

// __gethostbyname2_r: digits_dots, then the services (gethostbyname2_r: dns checks the name).
host_result gethostbyname2_full(call_state& cs, const char* name, int af) {
  host_result r;
  if (digits_dots(name, af, &r)) return r;
  return nss_lookup<host_result>(cs, [&](source_kind k) {
    return k == source_kind::files ? files_by_name(name, af) : dns_by_name(cs, name, af, true);
  });
}

// __gethostbyaddr_r.
host_result gethostbyaddr_full(call_state& cs, const void* addr, socklen_t len, int af) {
  if (len == 16 && std::memcmp(addr, &in6addr_any, 16) == 0) return host_result{};
  return nss_lookup<host_result>(cs, [&](source_kind k) {
    return k == source_kind::files ? files_by_addr(addr, len, af) : dns_by_addr(cs, addr, len, af);
  });
}

void fill_entry(const host_result& h, host_entry* out) {
  out->name = h.name;
  out->aliases = h.aliases;
  out->family = h.family;
  out->addrs.clear();
  for (const ip_bytes& b : h.addrs)
    out->addrs.emplace_back(reinterpret_cast<const char*>(b.data()), addr_len(h.family));
}

// --- getaddrinfo --------------------------------------------------------------------------------

struct servtuple {
  int socktype;
  int protocol;
  int port;  // network order
};

constexpr std::uint8_t proto_noservice = 1;
constexpr std::uint8_t proto_protoany = 2;

struct typeproto {
  int socktype;
  int protocol;
  std::uint8_t protoflag;
  bool defaultflag;
  const char* name;
};

// glibc's gaih_inet_typeproto: the order of this table is the order of the results.
constexpr typeproto typeprotos[] = {
    {0, 0, 0, false, ""},
    {SOCK_STREAM, IPPROTO_TCP, 0, true, "tcp"},
    {SOCK_DGRAM, IPPROTO_UDP, 0, true, "udp"},
    {SOCK_DCCP, IPPROTO_DCCP, 0, false, "dccp"},
    {SOCK_DGRAM, IPPROTO_UDPLITE, 0, false, "udplite"},
    {SOCK_STREAM, IPPROTO_SCTP, 0, false, "sctp"},
    {SOCK_SEQPACKET, IPPROTO_SCTP, 0, false, "sctp"},
    {SOCK_RAW, 0, proto_protoany | proto_noservice, true, "raw"},
    {0, 0, 0, false, ""},
};

struct service_arg {
  const char* name;
  int num;  // -1: look the name up in /etc/services
};

// gaih_inet_serv: 0 with *st, EAI_SERVICE, or EAI_MEMORY.
int inet_serv(const char* name, const typeproto* tp, const addrinfo& req, servtuple* st) {
  static const auto f = libc<getservbyname_r_fn>("getservbyname_r");
  if (!f) return EAI_SERVICE;
  std::vector<char> buf(1024);
  for (;;) {
    servent ts, *s = nullptr;
    int r = f(name, tp->name, &ts, buf.data(), buf.size(), &s);
    if (r == ERANGE) {
      if (buf.size() >= (std::size_t{1} << 24)) return EAI_MEMORY;
      buf.resize(buf.size() * 2);
      continue;
    }
    if (r != 0 || !s) return EAI_SERVICE;
    st->socktype = tp->socktype;
    st->protocol = (tp->protoflag & proto_protoany) ? req.ai_protocol : tp->protocol;
    st->port = s->s_port;
    return 0;
  }
}

int get_servtuples(const service_arg* service, const addrinfo& req, std::vector<servtuple>* st) {
  const typeproto* tp = typeprotos;
  if (req.ai_protocol || req.ai_socktype) {
    ++tp;
    while (tp->name[0] && ((req.ai_socktype != 0 && req.ai_socktype != tp->socktype) ||
                           (req.ai_protocol != 0 && !(tp->protoflag & proto_protoany) &&
                            req.ai_protocol != tp->protocol)))
      ++tp;
    if (!tp->name[0]) return req.ai_socktype ? EAI_SOCKTYPE : EAI_SERVICE;
  }
  if (service && (tp->protoflag & proto_noservice)) return EAI_SERVICE;
  if (!service || service->num >= 0) {
    int port = htons(static_cast<std::uint16_t>(service ? service->num : 0));
    if (req.ai_socktype || req.ai_protocol) {
      st->push_back(
          {tp->socktype, (tp->protoflag & proto_protoany) ? req.ai_protocol : tp->protocol, port});
      return 0;
    }
    for (++tp; tp->name[0]; ++tp)
      if (tp->defaultflag) st->push_back({tp->socktype, tp->protocol, port});
    return 0;
  }
  if (tp->name[0]) {
    servtuple t;
    int r = inet_serv(service->name, tp, req, &t);
    if (r) return r;
    st->push_back(t);
    return 0;
  }
  for (++tp; tp->name[0]; ++tp) {
    if (tp->protoflag & proto_noservice) continue;
    if (req.ai_socktype != 0 && req.ai_socktype != tp->socktype) continue;
    if (req.ai_protocol != 0 && !(tp->protoflag & proto_protoany) &&
        req.ai_protocol != tp->protocol)
      continue;
    servtuple t;
    if (inet_serv(service->name, tp, req, &t) != 0) continue;
    st->push_back(t);
  }
  return st->empty() ? EAI_SERVICE : 0;
}

// What gaih_inet collects before building the addrinfo list.
struct gaih_result {
  std::vector<addr_tuple> at;
  std::optional<std::string> canon;
  bool got_ipv6 = false;
};

// __inet6_scopeid_pton.
bool scopeid_pton(const in6_addr& a, const char* scope, std::uint32_t* out) {
  if (IN6_IS_ADDR_LINKLOCAL(&a) || IN6_IS_ADDR_MC_NODELOCAL(&a) || IN6_IS_ADDR_MC_LINKLOCAL(&a)) {
    if (unsigned idx = ::if_nametoindex(scope)) {
      *out = idx;
      return true;
    }
  }
  if (c_isdigit(scope[0])) {
    char* end;
    errno = 0;
    unsigned long long n = std::strtoull(scope, &end, 10);
    if (*end == '\0' && errno == 0 && n <= UINT32_MAX) {
      *out = static_cast<std::uint32_t>(n);
      return true;
    }
  }
  return false;
}

// text_to_binary_address: 0 and res->at set for a numeric host, 0 with nothing for a name,
// or an error.
int text_to_binary(const char* name, const addrinfo& req, gaih_result* res) {
  addr_tuple at;
  in_addr a4;
  bool has_space = false;
  for (const char* p = name; *p; ++p) has_space |= c_isspace(*p);
  // __inet_aton_exact: inet_aton's forms ("127.1", "0x7f.1", octal), nothing after them.
  if (!has_space && ::inet_aton(name, &a4) != 0) {
    if (req.ai_family == AF_UNSPEC || req.ai_family == AF_INET) {
      at.family = AF_INET;
      std::memcpy(at.addr.data(), &a4, 4);
    } else if (req.ai_family == AF_INET6 && (req.ai_flags & AI_V4MAPPED)) {
      at.family = AF_INET6;
      at.addr[10] = at.addr[11] = 0xff;
      std::memcpy(at.addr.data() + 12, &a4, 4);
    } else {
      return EAI_ADDRFAMILY;
    }
    if (req.ai_flags & AI_CANONNAME) res->canon = name;
    res->at.push_back(at);
    return 0;
  }
  const char* scope = std::strchr(name, '%');
  std::string head(name, scope ? static_cast<std::size_t>(scope - name) : std::strlen(name));
  in6_addr a6;
  if (::inet_pton(AF_INET6, head.c_str(), &a6) > 0) {
    if (req.ai_family == AF_UNSPEC || req.ai_family == AF_INET6) {
      at.family = AF_INET6;
      std::memcpy(at.addr.data(), &a6, 16);
    } else if (req.ai_family == AF_INET && IN6_IS_ADDR_V4MAPPED(&a6)) {
      at.family = AF_INET;
      std::memcpy(at.addr.data(), &a6.s6_addr[12], 4);
    } else {
      return EAI_ADDRFAMILY;
    }
    if (scope && !scopeid_pton(a6, scope + 1, &at.scope_id)) return EAI_NONAME;
    if (req.ai_flags & AI_CANONNAME) res->canon = name;
    res->at.push_back(at);
    return 0;
  }
  if (req.ai_flags & AI_NUMERICHOST) return EAI_NONAME;
  return 0;
}

// convert_hostent_to_gaih_addrtuple.
void append_hostent(const host_result& h, int family, const addrinfo& req, gaih_result* res) {
  if (h.addrs.empty()) return;
  res->got_ipv6 = family == AF_INET6;
  for (const ip_bytes& b : h.addrs) {
    addr_tuple at;
    if (family == AF_INET && req.ai_family == AF_INET6) {
      at.family = AF_INET6;
      at.addr[10] = at.addr[11] = 0xff;
      std::memcpy(at.addr.data() + 12, b.data(), 4);
    } else {
      at.family = family;
      at.addr = b;
    }
    res->at.push_back(at);
  }
}

int set_system(int err) {
  errno = err;
  return EAI_SYSTEM;
}

// try_simple_gethostbyname: AF_INET without AI_CANONNAME goes through gethostbyname2_r.
int try_simple(call_state& cs, const char* name, const addrinfo& req, gaih_result* res) {
  host_result h = gethostbyname2_full(cs, name, AF_INET);
  if (cs.interrupted) return 0;
  if (h.status == nss_status::success) {
    append_hostent(h, AF_INET, req, res);
    return 0;
  }
  if (h.status == nss_status::notfound) return h.herrno == NO_DATA ? EAI_NODATA : EAI_NONAME;
  if (h.herrno == NETDB_INTERNAL) return set_system(h.err);
  if (h.herrno == TRY_AGAIN) return EAI_AGAIN;
  return EAI_NODATA;
}

// get_nss_addresses.
int nss_addresses(call_state& cs, const char* name, const addrinfo& req, gaih_result* res) {
  int no_data = 0, no_inet6_data = 0;
  nss_status status = nss_status::unavail, inet6_status = nss_status::unavail;
  int herrno = NETDB_SUCCESS, err = 0;
  const bool canon_wanted = req.ai_flags & AI_CANONNAME;
  // gethosts(): one family through one service.
  auto gethosts = [&](source_kind k, int family) -> int {
    host_result h = k == source_kind::files ? files_by_name(name, family)
                                            : dns_by_name(cs, name, family, !canon_wanted);
    status = h.status;
    herrno = h.herrno;
    err = h.err;
    no_data = 0;
    if (cs.interrupted) return 0;
    if (h.status != nss_status::success) {
      if (h.herrno == NETDB_INTERNAL) return set_system(h.err);
      no_data = h.herrno == TRY_AGAIN ? EAI_AGAIN : h.herrno == NO_DATA;
    } else {
      append_hostent(h, family, req, res);
      // gethostbyname3_r reports the official name; gethostbyname2_r (no AI_CANONNAME) none.
      if (canon_wanted && !res->canon) res->canon = h.name;
    }
    return 0;
  };
  for (const nss_source& src : hosts_nss().sources) {
    *res = gaih_result{};  // every service starts afresh
    if (req.ai_family == AF_UNSPEC) {
      tuples_result t =
          src.kind == source_kind::files ? files_by_name4(name) : dns_by_name4(cs, name);
      if (cs.interrupted) return 0;
      status = t.status;
      herrno = t.herrno;
      err = t.err;
      if (t.status == nss_status::success) {
        if (canon_wanted) res->canon = t.canon;
        res->at = std::move(t.at);
        no_data = res->at.empty();
      } else {
        no_data = t.herrno == TRY_AGAIN ? EAI_AGAIN : t.herrno == NO_DATA;
      }
      no_inet6_data = no_data;
    } else {
      if (req.ai_family == AF_INET6) {
        if (int r = gethosts(src.kind, AF_INET6)) return r;
        if (cs.interrupted) return 0;
        no_inet6_data = no_data;
        inet6_status = status;
      }
      if (req.ai_family == AF_INET || (req.ai_family == AF_INET6 && (req.ai_flags & AI_V4MAPPED) &&
                                       ((req.ai_flags & AI_ALL) || !res->got_ipv6))) {
        if (int r = gethosts(src.kind, AF_INET)) return r;
        if (cs.interrupted) return 0;
        if (req.ai_family == AF_INET) {
          no_inet6_data = no_data;
          inet6_status = status;
        }
      }
      if (inet6_status == nss_status::success || status == nss_status::success) {
        if (canon_wanted && !res->canon) res->canon = name;  // getcanonname's answer
        status = nss_status::success;
      } else if (inet6_status == nss_status::tryagain) {
        status = nss_status::tryagain;
      } else if (status == nss_status::unavail && inet6_status != nss_status::unavail) {
        status = inet6_status;
      }
    }
    if (src.ret[static_cast<int>(status)]) break;
  }
  if ((status == nss_status::tryagain || status == nss_status::unavail) &&
      herrno == NETDB_INTERNAL) {
    *res = gaih_result{};
    return set_system(err);
  }
  if (no_data != 0 && no_inet6_data != 0) {
    *res = gaih_result{};
    return no_data == EAI_AGAIN && no_inet6_data == EAI_AGAIN ? EAI_AGAIN : EAI_NODATA;
  }
  return 0;
}

void free_list(addrinfo* ai) noexcept {
  while (ai) {
    addrinfo* next = ai->ai_next;
    std::free(ai->ai_canonname);
    std::free(ai);
    ai = next;
  }
}

struct list_owner {
  addrinfo* head = nullptr;
  ~list_owner() { free_list(head); }
  addrinfo* release() noexcept { return std::exchange(head, nullptr); }
};

// generate_addrinfo: one entry per (address, socket type); glibc's allocation layout (the
// sockaddr right after its addrinfo, in one malloc block).
int generate(const addrinfo& req, gaih_result& res, const std::vector<servtuple>& st,
             addrinfo** pai, unsigned* naddrs) {
  char* canon = nullptr;
  if (res.canon) {
    canon = ::strdup(res.canon->c_str());
    if (!canon) return EAI_MEMORY;
  }
  for (const addr_tuple& at : res.at) {
    socklen_t socklen;
    if (at.family == AF_INET6) {
      socklen = sizeof(sockaddr_in6);
      if (res.got_ipv6 && (req.ai_flags & (AI_V4MAPPED | AI_ALL)) == AI_V4MAPPED &&
          IN6_IS_ADDR_V4MAPPED(reinterpret_cast<const in6_addr*>(at.addr.data())))
        continue;
    } else {
      socklen = sizeof(sockaddr_in);
    }
    for (const servtuple& s : st) {
      auto* ai = static_cast<addrinfo*>(std::malloc(sizeof(addrinfo) + socklen));
      if (!ai) {
        std::free(canon);
        return EAI_MEMORY;
      }
      std::memset(ai, 0, sizeof(addrinfo) + socklen);
      ai->ai_flags = req.ai_flags;
      ai->ai_family = at.family;
      ai->ai_socktype = s.socktype;
      ai->ai_protocol = s.protocol;
      ai->ai_addrlen = socklen;
      ai->ai_addr = reinterpret_cast<sockaddr*>(ai + 1);
      ai->ai_canonname = std::exchange(canon, nullptr);  // the first entry only
      ai->ai_next = nullptr;
      if (at.family == AF_INET6) {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(ai->ai_addr);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = static_cast<in_port_t>(s.port);
        std::memcpy(&sin6->sin6_addr, at.addr.data(), 16);
        sin6->sin6_scope_id = at.scope_id;
      } else {
        auto* sin = reinterpret_cast<sockaddr_in*>(ai->ai_addr);
        sin->sin_family = AF_INET;
        sin->sin_port = static_cast<in_port_t>(s.port);
        std::memcpy(&sin->sin_addr, at.addr.data(), 4);
      }
      *pai = ai;
      pai = &ai->ai_next;
    }
    ++*naddrs;
  }
  std::free(canon);
  return 0;
}

// gaih_inet.
int gaih_inet(call_state& cs, const char* name, const service_arg* service, const addrinfo& req,
              addrinfo** pai, unsigned* naddrs) {
  std::vector<servtuple> st;
  if (int r = get_servtuples(service, req, &st)) return r;
  gaih_result res;
  if (!name) {
    // get_local_addresses: the wildcard (AI_PASSIVE) or loopback, IPv6 first.
    if (req.ai_family == AF_UNSPEC || req.ai_family == AF_INET6) {
      addr_tuple at;
      at.family = AF_INET6;
      if (!(req.ai_flags & AI_PASSIVE)) at.addr[15] = 1;
      res.at.push_back(at);
    }
    if (req.ai_family == AF_UNSPEC || req.ai_family == AF_INET) {
      addr_tuple at;
      at.family = AF_INET;
      if (!(req.ai_flags & AI_PASSIVE)) {
        in_addr_t lo = htonl(INADDR_LOOPBACK);
        std::memcpy(at.addr.data(), &lo, 4);
      }
      res.at.push_back(at);
    }
  } else {
    if (int r = text_to_binary(name, req, &res)) return r;
    if (res.at.empty()) {
      int r = req.ai_family == AF_INET && !(req.ai_flags & AI_CANONNAME)
                  ? try_simple(cs, name, req, &res)
                  : nss_addresses(cs, name, req, &res);
      if (cs.interrupted) return 0;
      if (r) return r;
      if (res.at.empty()) return EAI_NONAME;
    }
    if ((req.ai_flags & AI_CANONNAME) && !res.canon) res.canon = name;
  }
  return generate(req, res, st, pai, naddrs);
}

int gai(call_state& cs, const char* name, const char* service, const addrinfo* hints,
        addrinfo** pai) {
  if (name && name[0] == '*' && name[1] == '\0') name = nullptr;
  if (service && service[0] == '*' && service[1] == '\0') service = nullptr;
  if (!name && !service) return EAI_NONAME;
  addrinfo local_hints;
  if (!hints) {
    std::memset(&local_hints, 0, sizeof local_hints);
    local_hints.ai_flags = AI_V4MAPPED | AI_ADDRCONFIG;  // glibc's AI_DEFAULT
    local_hints.ai_family = AF_UNSPEC;
    hints = &local_hints;
  }
  if (hints->ai_flags & ~(AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST | AI_ADDRCONFIG | AI_V4MAPPED |
                          AI_IDN | AI_CANONIDN | DEPRECATED_AI_IDN | AI_NUMERICSERV | AI_ALL))
    return EAI_BADFLAGS;
  if ((hints->ai_flags & AI_CANONNAME) && !name) return EAI_BADFLAGS;
  if (hints->ai_family != AF_UNSPEC && hints->ai_family != AF_INET && hints->ai_family != AF_INET6)
    return EAI_FAMILY;

  if (!hosts_nss().supported || ((hints->ai_flags & AI_IDN) && name && !is_ascii(name)))
    return glibc_getaddrinfo(cs, name, service, hints, pai);

  pf_info pf;
  bool pf_called = false;
  addrinfo req = *hints;
  if (hints->ai_flags & AI_ADDRCONFIG) {
    if (check_pf(cs, &pf) != 0) return 0;  // interrupted
    pf_called = true;
    if (req.ai_family == AF_UNSPEC && (pf.seen_ipv4 || pf.seen_ipv6)) {
      if (pf.seen_ipv4 != pf.seen_ipv6) req.ai_family = pf.seen_ipv4 ? AF_INET : AF_INET6;
    } else if ((req.ai_family == AF_INET && !pf.seen_ipv4) ||
               (req.ai_family == AF_INET6 && !pf.seen_ipv6)) {
      return EAI_NONAME;
    }
  }

  service_arg svc;
  const service_arg* psvc = nullptr;
  if (service && service[0]) {
    char* c;
    svc.name = service;
    svc.num = static_cast<int>(std::strtoul(service, &c, 10));
    if (*c != '\0') {
      if (req.ai_flags & AI_NUMERICSERV) return EAI_NONAME;
      svc.num = -1;
    }
    psvc = &svc;
  }

  list_owner list;
  unsigned naddrs = 0;
  if (int r = gaih_inet(cs, name, psvc, req, &list.head, &naddrs)) return r;
  if (cs.interrupted) return 0;
  std::size_t nresults = 0;
  for (addrinfo* q = list.head; q; q = q->ai_next) ++nresults;
  if (naddrs > 1) {
    if (!pf_called && check_pf(cs, &pf) != 0) return 0;
    sort_results(cs, &list.head, nresults, pf);
    if (cs.interrupted) return 0;
  }
  if (!list.head) return EAI_NONAME;
  if ((req.ai_flags & AI_CANONIDN) && list.head->ai_canonname &&
      has_ace_label(list.head->ai_canonname))
    return glibc_getaddrinfo(cs, name, service, hints, pai);
  *pai = list.release();
  return 0;
}

// --- getnameinfo --------------------------------------------------------------------------------

int checked_copy(char* dest, std::size_t destlen, const char* source) {
  std::size_t n = std::strlen(source);
  if (n + 1 > destlen) return EAI_OVERFLOW;
  std::memcpy(dest, source, n + 1);
  return 0;
}

int checked_snprintf_result(int result, std::size_t destlen) {
  if (result < 0) return EAI_SYSTEM;
  if (static_cast<std::size_t>(result) >= destlen) return EAI_OVERFLOW;
  return 0;
}

// getnameinfo's nrl_domainname: the local domain NI_NOFQDN strips, found once per process from
// "localhost", the host name, or 127.0.0.1's name. False if a lookup was interrupted.
bool local_domain(call_state& cs, std::optional<std::string>* out) {
  static std::mutex mu;
  static bool done = false;
  static std::optional<std::string> domain;  // guarded by mu
  {
    std::lock_guard<std::mutex> lk(mu);
    if (done) {
      *out = domain;
      return true;
    }
  }
  std::optional<std::string> d;
  auto after_dot = [](const std::string& s) -> std::optional<std::string> {
    auto dot = s.find('.');
    if (dot == std::string::npos) return std::nullopt;
    return s.substr(dot + 1);
  };
  host_result h = gethostbyname2_full(cs, "localhost", AF_INET);
  if (cs.interrupted) return false;
  if (h.status == nss_status::success) d = after_dot(h.name);
  if (!d) {
    char hn[256] = {};
    if (::gethostname(hn, sizeof hn - 1) == 0) {
      std::string host = hn;
      d = after_dot(host);
      if (!d) {
        h = gethostbyname2_full(cs, host.c_str(), AF_INET);
        if (cs.interrupted) return false;
        if (h.status == nss_status::success) d = after_dot(h.name);
        if (!d) {
          in_addr lo;
          lo.s_addr = htonl(INADDR_LOOPBACK);
          h = gethostbyaddr_full(cs, &lo, sizeof lo, AF_INET);
          if (cs.interrupted) return false;
          if (h.status == nss_status::success) d = after_dot(h.name);
        }
      }
    }
  }
  std::lock_guard<std::mutex> lk(mu);
  if (!done) {
    done = true;
    domain = d;
  }
  *out = domain;
  return true;
}

// 0, EAI_NONAME (no name: the caller may fall back to numeric), or another error. *idn_fallback
// is set when NI_IDN needs glibc's decoder.
int gni_host_name(call_state& cs, const sockaddr* sa, char* host, socklen_t hostlen, int flags,
                  bool* idn_fallback) {
  host_result h;
  if (sa->sa_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(sa);
    h = gethostbyaddr_full(cs, &sin6->sin6_addr, sizeof(in6_addr), AF_INET6);
  } else {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(sa);
    h = gethostbyaddr_full(cs, &sin->sin_addr, sizeof(in_addr), AF_INET);
  }
  if (cs.interrupted) return 0;
  if (h.status != nss_status::success) {
    if (h.herrno == NETDB_INTERNAL) return set_system(h.err);
    if (h.herrno == TRY_AGAIN) return EAI_AGAIN;
    return EAI_NONAME;
  }
  std::string name = h.name;
  if (flags & NI_NOFQDN) {
    std::optional<std::string> domain;
    if (!local_domain(cs, &domain)) return 0;
    if (domain) {
      std::size_t at = name.find(*domain);
      if (at != std::string::npos && at != 0 && name[at - 1] == '.') name.resize(at - 1);
    }
  }
  if ((flags & NI_IDN) && has_ace_label(name.c_str())) {
    *idn_fallback = true;
    return 0;
  }
  if (name.size() + 1 > hostlen) return EAI_OVERFLOW;
  std::memcpy(host, name.c_str(), name.size() + 1);
  return 0;
}

int gni_host_numeric(const sockaddr* sa, char* host, socklen_t hostlen) {
  if (sa->sa_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(sa);
    if (!::inet_ntop(AF_INET6, &sin6->sin6_addr, host, hostlen)) return EAI_OVERFLOW;
    std::uint32_t scope = sin6->sin6_scope_id;
    if (scope != 0) {
      std::size_t used = ::strnlen(host, hostlen);
      char* start = host + used;
      std::size_t room = hostlen - used;
      if (IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr) || IN6_IS_ADDR_MC_LINKLOCAL(&sin6->sin6_addr)) {
        char ifname[IF_NAMESIZE];
        if (::if_indextoname(scope, ifname))
          return checked_snprintf_result(std::snprintf(start, room, "%c%s", '%', ifname), room);
      }
      return checked_snprintf_result(std::snprintf(start, room, "%c%u", '%', scope), room);
    }
    return 0;
  }
  const auto* sin = reinterpret_cast<const sockaddr_in*>(sa);
  if (!::inet_ntop(AF_INET, &sin->sin_addr, host, hostlen)) return EAI_OVERFLOW;
  return 0;
}

int gni(call_state& cs, const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen,
        char* serv, socklen_t servlen, int flags) {
  if (flags & ~(NI_NUMERICHOST | NI_NUMERICSERV | NI_NOFQDN | NI_NAMEREQD | NI_DGRAM | NI_IDN |
                DEPRECATED_NI_IDN))
    return EAI_BADFLAGS;
  if (!sa || salen < sizeof(sa_family_t)) return EAI_FAMILY;
  if ((flags & NI_NAMEREQD) && !host && !serv) return EAI_NONAME;
  switch (sa->sa_family) {
    case AF_LOCAL:
      if (salen < static_cast<socklen_t>(offsetof(sockaddr_un, sun_path))) return EAI_FAMILY;
      break;
    case AF_INET:
      if (salen < sizeof(sockaddr_in)) return EAI_FAMILY;
      break;
    case AF_INET6:
      if (salen < sizeof(sockaddr_in6)) return EAI_FAMILY;
      break;
    default:
      return EAI_FAMILY;
  }
  if (!hosts_nss().supported)
    return glibc_getnameinfo(cs, sa, salen, host, hostlen, serv, servlen, flags);

  if (host && hostlen > 0) {
    int r;
    if (sa->sa_family == AF_LOCAL) {
      utsname u;
      if (!(flags & NI_NUMERICHOST) && ::uname(&u) == 0)
        r = checked_copy(host, hostlen, u.nodename);
      else if (flags & NI_NAMEREQD)
        r = EAI_NONAME;
      else
        r = checked_copy(host, hostlen, "localhost");
    } else {
      r = EAI_NONAME;
      if (!(flags & NI_NUMERICHOST)) {
        bool idn_fallback = false;
        r = gni_host_name(cs, sa, host, hostlen, flags, &idn_fallback);
        if (cs.interrupted) return 0;
        if (idn_fallback)
          return glibc_getnameinfo(cs, sa, salen, host, hostlen, serv, servlen, flags);
      }
      if (r == EAI_NONAME)
        r = (flags & NI_NAMEREQD) ? EAI_NONAME : gni_host_numeric(sa, host, hostlen);
    }
    if (r) return r;
  }

  if (serv && servlen > 0) {
    int r;
    if (sa->sa_family == AF_LOCAL) {
      const auto* un = reinterpret_cast<const sockaddr_un*>(sa);
      std::size_t max =
          std::min<std::size_t>(salen - offsetof(sockaddr_un, sun_path), sizeof un->sun_path);
      std::string path(un->sun_path, ::strnlen(un->sun_path, max));
      r = checked_copy(serv, servlen, path.c_str());
    } else {
      int port = reinterpret_cast<const sockaddr_in*>(sa)->sin_port;  // same offset in sin6
      r = -1;
      if (!(flags & NI_NUMERICSERV)) {
        static const auto f = libc<getservbyport_r_fn>("getservbyport_r");
        if (f) {
          std::vector<char> buf(1024);
          for (;;) {
            servent ts, *s = nullptr;
            int e = f(port, (flags & NI_DGRAM) ? "udp" : "tcp", &ts, buf.data(), buf.size(), &s);
            if (e == ERANGE && buf.size() < (std::size_t{1} << 24)) {
              buf.resize(buf.size() * 2);
              continue;
            }
            if (e == 0 && s) r = checked_copy(serv, servlen, s->s_name);
            break;
          }
        }
      }
      if (r == -1)
        r = checked_snprintf_result(
            std::snprintf(serv, servlen, "%d", ntohs(static_cast<std::uint16_t>(port))), servlen);
    }
    if (r) return r;
  }
  return 0;
}

}  // namespace

// --- entry points -------------------------------------------------------------------------------

void free_addrinfo(addrinfo* ai) noexcept {
  free_list(ai);
}

int getaddrinfo_impl(call_state& cs, const char* node, const char* service, const addrinfo* hints,
                     addrinfo** res) noexcept {
  try {
    int r = gai(cs, node, service, hints, res);
    if (cs.interrupted == ENOMEM) return EAI_MEMORY;
    return r;
  } catch (const std::bad_alloc&) {
    return EAI_MEMORY;
  } catch (...) {
    return set_system(EIO);
  }
}

int getnameinfo_impl(call_state& cs, const sockaddr* sa, socklen_t salen, char* host,
                     socklen_t hostlen, char* serv, socklen_t servlen, int flags) noexcept {
  try {
    int r = gni(cs, sa, salen, host, hostlen, serv, servlen, flags);
    if (cs.interrupted == ENOMEM) return EAI_MEMORY;
    return r;
  } catch (const std::bad_alloc&) {
    return EAI_MEMORY;
  } catch (...) {
    return set_system(EIO);
  }
}

// The gethostby* return convention (dns.hpp) for a finished lookup: 0 with *out filled, or the
// h_errno value (NETDB_INTERNAL with errno for a kill, a timeout scope or a system error).
static int host_entry_outcome(const call_state& cs, const host_result& h, host_entry* out) {
  if (cs.interrupted) {
    errno = cs.interrupted;
    return NETDB_INTERNAL;
  }
  if (h.status == nss_status::success) {
    fill_entry(h, out);
    return 0;
  }
  if (h.herrno == NETDB_INTERNAL) errno = h.err;
  return h.herrno == NETDB_SUCCESS ? HOST_NOT_FOUND : h.herrno;
}

int gethostbyname_impl(call_state& cs, const char* name, int family, host_entry* out) noexcept {
  try {
    if (!name) return HOST_NOT_FOUND;
    // glibc: the hosts file cannot match "", and the resolver refuses to build a query for it.
    if (*name == '\0') return NO_RECOVERY;
    if (!hosts_nss().supported) {
      std::string n = name;
      return glibc_gethostby(cs, out, [n, family]() {
        static const auto f = libc<gethostbyname2_r_fn>("gethostbyname2_r");
        if (!f) return ghb_outcome{};
        return grow_call([&](hostent* he, char* buf, std::size_t len, hostent** res, int* h) {
          return f(n.c_str(), family, he, buf, len, res, h);
        });
      });
    }
    return host_entry_outcome(cs, gethostbyname2_full(cs, name, family), out);
  } catch (...) {
    errno = ENOMEM;
    return NETDB_INTERNAL;
  }
}

int gethostbyaddr_impl(call_state& cs, const void* addr, socklen_t len, int family,
                       host_entry* out) noexcept {
  try {
    if (!addr) return HOST_NOT_FOUND;
    if (!hosts_nss().supported) {
      std::string a(static_cast<const char*>(addr), len);
      return glibc_gethostby(cs, out, [a, len, family]() {
        static const auto f = libc<gethostbyaddr_r_fn>("gethostbyaddr_r");
        if (!f) return ghb_outcome{};
        return grow_call([&](hostent* he, char* buf, std::size_t blen, hostent** res, int* h) {
          return f(a.data(), len, family, he, buf, blen, res, h);
        });
      });
    }
    return host_entry_outcome(cs, gethostbyaddr_full(cs, addr, len, family), out);
  } catch (...) {
    errno = ENOMEM;
    return NETDB_INTERNAL;
  }
}

}  // namespace fern::detail::dns
