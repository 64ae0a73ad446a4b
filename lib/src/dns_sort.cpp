// glibc 2.36's destination address selection (dns_sort.hpp), rule by rule as in
// sysdeps/posix/getaddrinfo.c and sysdeps/unix/sysv/linux/check_pf.c / check_native.c, with its
// quirks kept on purpose (they decide the order programs see):
//   - rule 9 also applies to IPv4, and then only within the source's subnet; a source whose
//     prefix length is unknown gets the shift-by-32 x86 behaviour glibc's C has (mask all ones);
//   - the built-in tables, not RFC 6724's (no fc00::/7 precedence entry, Teredo label 7...);
//   - the merge sort glibc's qsort_r uses, so even an inconsistent comparison yields glibc's
//     order;
//   - one UDP socket reused across destinations, switched to AF_INET6 when needed, exactly as
//     glibc does (IPv4 destinations after an IPv6 one are connected over the dual-stack socket).
#include "dns_sort.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_arp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <map>
#include <memory>

#include "fern/io.hpp"
#include "sys.hpp"
#include "sys_net.hpp"

namespace fern::detail::dns {

namespace {

// --- netlink --------------------------------------------------------------------------------

struct fd_guard {
  int fd;
  ~fd_guard() {
    if (fd >= 0) {
      fd_closing(fd);
      sys::close(fd);
    }
  }
};

// Dumps `type` (RTM_GETADDR, RTM_GETLINK) and calls on_msg for each reply message. Returns 0 when
// the dump completed, -1 if netlink failed, or the errno of an interruption (also put in cs).
template <class F>
int netlink_dump(call_state& cs, int type, F&& on_msg) {
  fd_guard g{sys::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE)};
  if (g.fd < 0) return -1;
  sockaddr_nl nladdr{};
  nladdr.nl_family = AF_NETLINK;
  socklen_t alen = sizeof nladdr;
  if (sys::bind(g.fd, reinterpret_cast<sockaddr*>(&nladdr), sizeof nladdr) != 0 ||
      sys::getsockname(g.fd, reinterpret_cast<sockaddr*>(&nladdr), &alen) != 0)
    return -1;
  const std::uint32_t pid = nladdr.nl_pid;
  struct {
    nlmsghdr nlh;
    rtgenmsg g;
    char pad[3];
  } req{};
  req.nlh.nlmsg_len = sizeof req;
  req.nlh.nlmsg_type = static_cast<std::uint16_t>(type);
  req.nlh.nlmsg_flags = NLM_F_ROOT | NLM_F_MATCH | NLM_F_REQUEST;
  req.nlh.nlmsg_seq = static_cast<std::uint32_t>(::time(nullptr));
  req.g.rtgen_family = AF_UNSPEC;
  std::memset(&nladdr, 0, sizeof nladdr);
  nladdr.nl_family = AF_NETLINK;
  if (sys::sendto(g.fd, &req, sizeof req, 0, reinterpret_cast<sockaddr*>(&nladdr), sizeof nladdr) <
      0)
    return -1;
  std::unique_ptr<char[]> buf(new (std::nothrow) char[65536]);
  if (!buf) return -1;
  // The kernel queues a dump's parts as it is read; a wait here is a formality, bounded anyway.
  deadline_t limit = std::min(cs.deadline, now_ns() + 2000000000);
  for (;;) {
    iovec iov{buf.get(), 65536};
    msghdr msg{};
    msg.msg_name = &nladdr;
    msg.msg_namelen = sizeof nladdr;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ssize_t n = sys::recvmsg(g.fd, &msg, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return -1;
      bool scope_expired = false;
      int r = wait_fd(g.fd, io_dir::read, limit, &scope_expired);
      if (r == 0 || r == EINTR) continue;
      if (r == ECANCELED || (r == ETIMEDOUT && (scope_expired || cs.deadline <= now_ns()))) {
        cs.interrupted = r;
        cs.scope_expired = scope_expired;
        return r;
      }
      return -1;
    }
    if (msg.msg_flags & MSG_TRUNC) return -1;
    std::size_t len = static_cast<std::size_t>(n);
    for (nlmsghdr* h = reinterpret_cast<nlmsghdr*>(buf.get()); NLMSG_OK(h, len);
         h = NLMSG_NEXT(h, len)) {
      if (nladdr.nl_pid != 0 || h->nlmsg_pid != pid || h->nlmsg_seq != req.nlh.nlmsg_seq) continue;
      if (h->nlmsg_type == NLMSG_DONE) return 0;
      if (h->nlmsg_type == NLMSG_ERROR) return -1;
      on_msg(h);
    }
  }
}

// --- glibc's tables ---------------------------------------------------------------------------

struct prefix_entry {
  unsigned char prefix[16];
  unsigned bits;
  int val;
};

constexpr prefix_entry default_labels[] = {
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, 0},
    {{0x20, 0x02}, 16, 2},
    {{}, 96, 3},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96, 4},
    {{0xfe, 0xc0}, 10, 5},
    {{0xfc, 0x00}, 7, 6},
    {{0x20, 0x01}, 32, 7},
    {{}, 0, 1},
};

constexpr prefix_entry default_precedence[] = {
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, 50},
    {{0x20, 0x02}, 16, 30},
    {{}, 96, 20},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96, 10},
    {{}, 0, 40},
};

struct scope_entry {
  std::uint32_t addr;     // network order
  std::uint32_t netmask;  // network order
  int scope;
};

const scope_entry default_scopes[] = {
    {htonl(0xa9fe0000), htonl(0xffff0000), 2},  // 169.254/16: link-local
    {htonl(0x7f000000), htonl(0xff000000), 2},  // 127/8
    {0, 0, 14},
};

// The v4-mapped form of an AF_INET sockaddr, or the IPv6 address of an AF_INET6 one.
bool as_in6(const sockaddr* sa, in6_addr* out) {
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    std::memset(out, 0, sizeof *out);
    out->s6_addr[10] = 0xff;
    out->s6_addr[11] = 0xff;
    std::memcpy(&out->s6_addr[12], &in->sin_addr, 4);
    return true;
  }
  if (sa->sa_family == AF_INET6) {
    *out = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    return true;
  }
  return false;
}

int match_prefix(const sockaddr* sa, const prefix_entry* list, int default_val) {
  in6_addr a;
  if (!as_in6(sa, &a)) return default_val;
  for (const prefix_entry* e = list;; ++e) {
    unsigned bits = e->bits;
    unsigned i = 0;
    while (bits >= 8 && e->prefix[i] == a.s6_addr[i]) {
      ++i;
      bits -= 8;
    }
    if (bits >= 8) continue;  // a whole byte differed
    if (bits == 0) return e->val;
    unsigned mask = (0xff00u >> bits) & 0xffu;
    if ((e->prefix[i] & mask) == (a.s6_addr[i] & mask)) return e->val;
  }
}

int get_label(const sockaddr* sa) {
  return match_prefix(sa, default_labels, INT_MAX);
}

int get_precedence(const sockaddr* sa) {
  return match_prefix(sa, default_precedence, 0);
}

int get_scope(const sockaddr* sa) {
  if (sa->sa_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    if (!IN6_IS_ADDR_MULTICAST(&a)) {
      if (IN6_IS_ADDR_LINKLOCAL(&a) || IN6_IS_ADDR_LOOPBACK(&a)) return 2;
      if (IN6_IS_ADDR_SITELOCAL(&a)) return 5;
      return 14;
    }
    return a.s6_addr[1] & 0xf;
  }
  if (sa->sa_family == AF_INET) {
    std::uint32_t a = reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr;
    for (const scope_entry& e : default_scopes)
      if ((a & e.netmask) == e.addr) return e.scope;
  }
  return 15;
}

// glibc's fls: the number of leading zero bits (32 for 0).
int leading_zeros(std::uint32_t a) {
  int n = 0;
  for (std::uint32_t mask = 1u << 31; n < 32; mask >>= 1, ++n)
    if (a & mask) break;
  return n;
}

struct sort_result {
  addrinfo* dest;
  sockaddr_in6 source;  // an AF_INET sockaddr_in when the destination is IPv4
  bool got_source = false;
  std::uint8_t source_flags = 0;
  std::uint8_t prefixlen = 0;
  std::uint32_t index = 0xffffffffu;
};

// Rule 7's "native transport": interfaces that are not tunnels, from an RTM_GETLINK dump taken
// the first time the rule needs it (glibc's __check_native). Unknown indexes count as 0.
class native_table {
 public:
  explicit native_table(call_state& cs) : cs_(cs) {}
  int native(std::uint32_t index) {
    if (!loaded_) load();
    auto it = types_.find(index);
    if (it == types_.end()) return 0;
    return it->second != ARPHRD_TUNNEL6 && it->second != ARPHRD_TUNNEL && it->second != ARPHRD_SIT;
  }

 private:
  void load() {
    loaded_ = true;
    netlink_dump(cs_, RTM_GETLINK, [&](nlmsghdr* h) {
      if (h->nlmsg_type != RTM_NEWLINK) return;
      const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
      types_[static_cast<std::uint32_t>(ifi->ifi_index)] = ifi->ifi_type;
    });
  }
  call_state& cs_;
  bool loaded_ = false;
  std::map<std::uint32_t, unsigned short> types_;
};

int compare(const sort_result& a1, const sort_result& a2, std::size_t idx1, std::size_t idx2,
            native_table& natives) {
  const sockaddr* d1 = a1.dest->ai_addr;
  const sockaddr* d2 = a2.dest->ai_addr;
  const auto* s1 = reinterpret_cast<const sockaddr*>(&a1.source);
  const auto* s2 = reinterpret_cast<const sockaddr*>(&a2.source);

  // Rule 1: avoid unusable destinations.
  if (a1.got_source && !a2.got_source) return -1;
  if (!a1.got_source && a2.got_source) return 1;

  // Rule 2: prefer matching scope.
  int a1_dst_scope = get_scope(d1);
  int a2_dst_scope = get_scope(d2);
  if (a1.got_source) {
    int a1_src_scope = get_scope(s1);
    int a2_src_scope = get_scope(s2);
    if (a1_dst_scope == a1_src_scope && a2_dst_scope != a2_src_scope) return -1;
    if (a1_dst_scope != a1_src_scope && a2_dst_scope == a2_src_scope) return 1;
  }

  // Rule 3: avoid deprecated addresses.
  if (a1.got_source) {
    bool dep1 = a1.source_flags & local_addr::deprecated_flag;
    bool dep2 = a2.source_flags & local_addr::deprecated_flag;
    if (!dep1 && dep2) return -1;
    if (dep1 && !dep2) return 1;
  }

  // Rule 4: prefer home addresses.
  if (a1.got_source) {
    bool home1 = a1.source_flags & local_addr::homeaddress_flag;
    bool home2 = a2.source_flags & local_addr::homeaddress_flag;
    if (!home1 && home2) return 1;
    if (home1 && !home2) return -1;
  }

  // Rule 5: prefer matching label.
  if (a1.got_source) {
    int a1_dst_label = get_label(d1);
    int a1_src_label = get_label(s1);
    int a2_dst_label = get_label(d2);
    int a2_src_label = get_label(s2);
    if (a1_dst_label == a1_src_label && a2_dst_label != a2_src_label) return -1;
    if (a1_dst_label != a1_src_label && a2_dst_label == a2_src_label) return 1;
  }

  // Rule 6: prefer higher precedence.
  int a1_prec = get_precedence(d1);
  int a2_prec = get_precedence(d2);
  if (a1_prec > a2_prec) return -1;
  if (a1_prec < a2_prec) return 1;

  // Rule 7: prefer native transport.
  if (a1.got_source && a1.index != a2.index) {
    int n1 = natives.native(a1.index);
    int n2 = natives.native(a2.index);
    if (n1 && !n2) return -1;
    if (!n1 && n2) return 1;
  }

  // Rule 8: prefer smaller scope.
  if (a1_dst_scope < a2_dst_scope) return -1;
  if (a1_dst_scope > a2_dst_scope) return 1;

  // Rule 9: longest matching prefix (glibc applies it to IPv4 too, within the subnet).
  if (a1.got_source && a1.dest->ai_family == a2.dest->ai_family) {
    int bit1 = 0, bit2 = 0;
    if (a1.dest->ai_family == AF_INET) {
      auto v4 = [](const sockaddr* sa) {
        return ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr);
      };
      std::uint32_t dst1 = v4(d1), src1 = v4(s1), dst2 = v4(d2), src2 = v4(s2);
      // 0xffffffff << (32 - prefixlen), with the shift count taken modulo 32 as x86 does for
      // glibc's prefixlen 0 (an unknown source: the mask keeps every bit).
      std::uint32_t mask1 = 0xffffffffu << ((32 - a1.prefixlen) & 31);
      std::uint32_t mask2 = 0xffffffffu << ((32 - a2.prefixlen) & 31);
      if ((src1 & mask1) == (dst1 & mask1)) bit1 = leading_zeros(dst1 ^ src1);
      if ((src2 & mask2) == (dst2 & mask2)) bit2 = leading_zeros(dst2 ^ src2);
    } else if (a1.dest->ai_family == AF_INET6) {
      auto words = [](const sockaddr* sa, int i) {
        std::uint32_t w;
        std::memcpy(&w, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr.s6_addr[i * 4], 4);
        return w;
      };
      int i;
      for (i = 0; i < 4; ++i)
        if (words(d1, i) != words(s1, i) || words(d2, i) != words(s2, i)) break;
      if (i < 4) {
        bit1 = leading_zeros(ntohl(words(d1, i) ^ words(s1, i)));
        bit2 = leading_zeros(ntohl(words(d2, i) ^ words(s2, i)));
      }
    }
    if (bit1 > bit2) return -1;
    if (bit1 < bit2) return 1;
  }

  // Rule 10: leave the order unchanged.
  return idx1 < idx2 ? -1 : 1;
}

// glibc 2.36's qsort_r for small arrays: a top-down merge sort (stdlib/msort.c).
template <class Cmp>
void msort(std::size_t* b, std::size_t n, std::size_t* tmp, Cmp& cmp) {
  if (n <= 1) return;
  std::size_t n1 = n / 2, n2 = n - n1;
  std::size_t* b1 = b;
  std::size_t* b2 = b + n1;
  msort(b1, n1, tmp, cmp);
  msort(b2, n2, tmp, cmp);
  std::size_t* out = tmp;
  while (n1 > 0 && n2 > 0) {
    if (cmp(*b1, *b2) <= 0) {
      *out++ = *b1++;
      --n1;
    } else {
      *out++ = *b2++;
      --n2;
    }
  }
  if (n1 > 0) std::memcpy(out, b1, n1 * sizeof *b1);
  std::memcpy(b, tmp, (n - n2) * sizeof *b);
}

bool try_connect(int* fdp, int* afp, sockaddr_in6* source, const sockaddr* addr, socklen_t addrlen,
                 int family) {
  for (;;) {
    socklen_t sl = sizeof *source;
    if (*fdp != -1 && sys::connect(*fdp, addr, addrlen) == 0 &&
        sys::getsockname(*fdp, reinterpret_cast<sockaddr*>(source), &sl) == 0)
      return true;
    if (errno == EAFNOSUPPORT && *afp == AF_INET6 && family == AF_INET) {
      // IPv6 sockets may be IPv6-only.
      if (*fdp != -1) sys::close(*fdp);
      *afp = AF_INET;
      *fdp = sys::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_IP);
      continue;
    }
    return false;
  }
}

}  // namespace

int check_pf(call_state& cs, pf_info* out) noexcept {
  *out = pf_info{};
  bool seen4 = false, seen6 = false;
  std::vector<local_addr> locals;
  int r;
  try {
    r = netlink_dump(cs, RTM_GETADDR, [&](nlmsghdr* h) {
      if (h->nlmsg_type != RTM_NEWADDR) return;
      const auto* ifam = static_cast<const ifaddrmsg*>(NLMSG_DATA(h));
      if (ifam->ifa_family != AF_INET && ifam->ifa_family != AF_INET6) return;
      const void* local = nullptr;
      const void* address = nullptr;
      std::size_t len = h->nlmsg_len - NLMSG_LENGTH(sizeof *ifam);
      for (const rtattr* rta = IFA_RTA(ifam); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
        if (rta->rta_type == IFA_LOCAL) local = RTA_DATA(rta);
        if (rta->rta_type == IFA_ADDRESS) {
          address = RTA_DATA(rta);
          break;
        }
      }
      if (!address) address = local;
      if (address) {
        if (ifam->ifa_family == AF_INET) {
          std::uint32_t a;
          std::memcpy(&a, address, 4);
          if (a != htonl(INADDR_LOOPBACK)) seen4 = true;
        } else if (!IN6_IS_ADDR_LOOPBACK(static_cast<const in6_addr*>(address))) {
          seen6 = true;
        }
      }
      // glibc records every address, even one without IFA_ADDRESS/IFA_LOCAL (left zero).
      local_addr info{};
      info.flags =
          ((ifam->ifa_flags & (IFA_F_DEPRECATED | IFA_F_OPTIMISTIC)) ? local_addr::deprecated_flag
                                                                     : 0) |
          ((ifam->ifa_flags & IFA_F_HOMEADDRESS) ? local_addr::homeaddress_flag : 0);
      info.prefixlen = ifam->ifa_prefixlen;
      info.index = ifam->ifa_index;
      if (address) {
        if (ifam->ifa_family == AF_INET) {
          info.addr[2] = htonl(0xffff);
          std::memcpy(&info.addr[3], address, 4);
        } else {
          std::memcpy(info.addr, address, 16);
        }
      }
      locals.push_back(info);
    });
  } catch (...) {  // std::bad_alloc: as a failed dump
    r = -1;
  }
  if (r != 0) return r > 0 ? r : 0;  // a failed dump: both families, no list (glibc)
  out->seen_ipv4 = seen4;
  out->seen_ipv6 = seen6;
  if (seen6) {
    std::sort(locals.begin(), locals.end(), [](const local_addr& a, const local_addr& b) {
      return std::memcmp(a.addr, b.addr, sizeof a.addr) < 0;
    });
    out->locals = std::move(locals);
  }
  return 0;
}

void sort_results(call_state& cs, addrinfo** head, std::size_t n, const pf_info& pf) {
  std::vector<sort_result> results(n);
  std::vector<std::size_t> order(n), tmp(n);
  int fd = -1;
  int af = AF_UNSPEC;
  char* canonname = nullptr;
  addrinfo* last = nullptr;
  std::size_t i = 0;
  for (addrinfo* q = *head; q; last = q, q = q->ai_next, ++i) {
    sort_result& r = results[i];
    r.dest = q;
    order[i] = i;
    if (last && last->ai_addrlen == q->ai_addrlen &&
        std::memcmp(last->ai_addr, q->ai_addr, q->ai_addrlen) == 0) {
      // The same address for another socket type: reuse the previous result.
      r.source = results[i - 1].source;
      r.got_source = results[i - 1].got_source;
      r.source_flags = results[i - 1].source_flags;
      r.prefixlen = results[i - 1].prefixlen;
      r.index = results[i - 1].index;
    } else {
      if (fd == -1 || (af == AF_INET && q->ai_family == AF_INET6)) {
        if (fd != -1) sys::close(fd);
        af = q->ai_family;
        fd = sys::socket(af, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_IP);
      } else {
        sockaddr reset{};
        reset.sa_family = AF_UNSPEC;  // dissolve the previous association
        sys::connect(fd, &reset, sizeof reset);
      }
      if (try_connect(&fd, &af, &r.source, q->ai_addr, q->ai_addrlen, q->ai_family)) {
        r.got_source = true;
        if (!pf.locals.empty()) {
          local_addr key{};
          if (q->ai_family == AF_INET && af == AF_INET) {
            const auto* sin = reinterpret_cast<const sockaddr_in*>(&r.source);
            key.addr[2] = htonl(0xffff);
            // The lo interface: its source may differ from the interface address.
            if ((ntohl(sin->sin_addr.s_addr) & 0xff000000) == 0x7f000000)
              key.addr[3] = htonl(0x7f000001);
            else
              key.addr[3] = sin->sin_addr.s_addr;
          } else {
            std::memcpy(key.addr, &r.source.sin6_addr, 16);
          }
          auto it = std::lower_bound(pf.locals.begin(), pf.locals.end(), key,
                                     [](const local_addr& a, const local_addr& b) {
                                       return std::memcmp(a.addr, b.addr, sizeof a.addr) < 0;
                                     });
          if (it != pf.locals.end() && std::memcmp(it->addr, key.addr, sizeof key.addr) == 0) {
            r.source_flags = it->flags;
            r.prefixlen = it->prefixlen;
            r.index = it->index;
          }
        }
        if (q->ai_family == AF_INET && af == AF_INET6) {
          // An IPv4 destination reached over the IPv6 socket: its source is v4-mapped.
          sockaddr_in sin{};
          sin.sin_family = AF_INET;
          sin.sin_port = r.source.sin6_port;
          std::memcpy(&sin.sin_addr, &r.source.sin6_addr.s6_addr[12], 4);
          std::memcpy(&r.source, &sin, sizeof sin);
        }
      }
    }
    if (q->ai_canonname) {
      canonname = q->ai_canonname;
      q->ai_canonname = nullptr;
    }
  }
  if (fd != -1) sys::close(fd);

  native_table natives(cs);
  auto cmp = [&](std::size_t a, std::size_t b) {
    return compare(results[a], results[b], a, b, natives);
  };
  msort(order.data(), n, tmp.data(), cmp);

  addrinfo* q = *head = results[order[0]].dest;
  for (i = 1; i < n; ++i) q = q->ai_next = results[order[i]].dest;
  q->ai_next = nullptr;
  (*head)->ai_canonname = canonname;
}

}  // namespace fern::detail::dns
