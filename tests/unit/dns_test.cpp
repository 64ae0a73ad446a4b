// Name resolution (dns.hpp) against real DNS servers on loopback: Debian's dnsmasq for records
// (A, AAAA, CNAME, PTR, NXDOMAIN, search lists), our own slow and silent responders for overlap,
// timeouts and failures. Results are compared with glibc's own getaddrinfo / getnameinfo where
// glibc can see the same inputs: in-process for numeric hosts, services and /etc/hosts, and in a
// private mount+network namespace (root only) for hosts files and DNS.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "dns_config.hpp"
#include "dns_test_util.hpp"
#include "fern/fern.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;
using fern_test::dnsmasq;
using fern_test::temp_dir;
using fern_test::udp_responder;

namespace {

// dnsmasq's records for most tests.
const std::vector<std::string> k_records = {
    "--host-record=a4.test,192.0.2.10",
    "--host-record=a6.test,2001:db8::10",
    "--host-record=both.test,127.0.0.5,::1",
    "--cname=alias.test,a4.test",
    "--host-record=www.sub.test,192.0.2.40",
    "--host-record=x.y.test,192.0.2.50",
    "--local=/test/",
    "--local=/2.0.192.in-addr.arpa/",
    "--local=/8.b.d.0.1.0.0.2.ip6.arpa/",
};

long long ms_since(clk::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clk::now() - t0).count();
}

// "family socktype protocol address" per endpoint, in order.
std::vector<std::string> describe(const fern::resolve_result& r) {
  std::vector<std::string> out;
  for (const fern::endpoint& e : r)
    out.push_back(std::to_string(e.addr.family()) + " " + std::to_string(e.socktype) + " " +
                  std::to_string(e.protocol) + " " + e.addr.to_string());
  return out;
}

std::vector<std::string> hosts_of(const fern::resolve_result& r) {
  std::vector<std::string> out;
  for (const fern::endpoint& e : r) out.push_back(e.addr.host());
  return out;
}

// The EAI code fern::resolve fails with (0 if it succeeds).
template <class F>
int dns_error_of(F&& f) {
  try {
    f();
  } catch (const fern::dns_error& e) {
    return e.code();
  }
  return 0;
}

// Whether this machine can reach ::1 (IPv6 may be disabled in a container); glibc's order
// depends on it (RFC 3484 rule 1).
bool ipv6_loopback_usable() {
  int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  a.sin6_port = htons(9);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// A one-line rendering of a getaddrinfo list, for comparisons with glibc.
std::string dump_ai(int rc, const addrinfo* r) {
  if (rc != 0) return "error " + std::to_string(rc);
  std::string s;
  for (; r; r = r->ai_next) {
    char host[INET6_ADDRSTRLEN] = {};
    int port = 0;
    unsigned scope = 0;
    if (r->ai_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(r->ai_addr);
      ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
      port = ntohs(in->sin_port);
    } else {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(r->ai_addr);
      ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
      port = ntohs(in6->sin6_port);
      scope = in6->sin6_scope_id;
    }
    char line[512];
    std::snprintf(line, sizeof line, "[%d %d %d %s%%%u %d len=%u flags=%x canon=%s] ", r->ai_family,
                  r->ai_socktype, r->ai_protocol, host, scope, port, r->ai_addrlen, r->ai_flags,
                  r->ai_canonname ? r->ai_canonname : "-");
    s += line;
  }
  return s;
}

// One query of the differential tests: "gai NODE SERVICE FAMILY SOCKTYPE PROTOCOL FLAGS(hex)"
// ("-" for a null node or service), "gni ADDRESS PORT FLAGS(hex) HOSTLEN SERVLEN",
// "ghbn NAME FAMILY" or "ghba ADDRESS FAMILY"; answered by glibc or by fern.
std::string run_query(const std::string& line, bool use_fern) {
  std::istringstream in(line);
  std::string op;
  in >> op;
  if (op == "gai") {
    std::string n, s;
    int fam, st, pr;
    unsigned fl;
    in >> n >> s >> fam >> st >> pr >> std::hex >> fl;
    addrinfo h{};
    h.ai_family = fam;
    h.ai_socktype = st;
    h.ai_protocol = pr;
    h.ai_flags = static_cast<int>(fl);
    const char* np = n == "-" ? nullptr : n.c_str();
    const char* sp = s == "-" ? nullptr : s.c_str();
    addrinfo* r = nullptr;
    int rc = use_fern ? fern::detail::getaddrinfo(np, sp, &h, &r) : ::getaddrinfo(np, sp, &h, &r);
    std::string out = dump_ai(rc, r);
    if (rc == 0) ::freeaddrinfo(r);  // glibc's free works on fern's lists too
    return out;
  }
  if (op == "gni") {
    std::string a;
    int port, hl, sl;
    unsigned fl;
    in >> a >> port >> std::hex >> fl >> std::dec >> hl >> sl;
    sockaddr_storage ss{};
    socklen_t len;
    if (a.find(':') != std::string::npos) {
      auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
      s6->sin6_family = AF_INET6;
      s6->sin6_port = htons(static_cast<std::uint16_t>(port));
      std::string addr = a;
      if (auto pct = a.find('%'); pct != std::string::npos) {
        addr = a.substr(0, pct);
        s6->sin6_scope_id = static_cast<std::uint32_t>(std::stoul(a.substr(pct + 1)));
      }
      ::inet_pton(AF_INET6, addr.c_str(), &s6->sin6_addr);
      len = sizeof *s6;
    } else {
      auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
      s4->sin_family = AF_INET;
      s4->sin_port = htons(static_cast<std::uint16_t>(port));
      ::inet_pton(AF_INET, a.c_str(), &s4->sin_addr);
      len = sizeof *s4;
    }
    char host[1025] = "?", serv[64] = "?";
    const auto* sa = reinterpret_cast<const sockaddr*>(&ss);
    int rc = use_fern ? fern::detail::getnameinfo(sa, len, host, hl, serv, sl, fl)
                      : ::getnameinfo(sa, len, host, hl, serv, sl, fl);
    return rc ? "error " + std::to_string(rc) : std::string(host) + " " + serv;
  }
  if (op == "ghbn" || op == "ghba") {
    std::string n;
    int fam;
    in >> n >> fam;
    unsigned char a[16];
    int afam = n.find(':') != std::string::npos ? AF_INET6 : AF_INET;
    socklen_t alen = afam == AF_INET6 ? 16 : 4;
    if (op == "ghba") ::inet_pton(afam, n.c_str(), a);
    std::string out;
    if (!use_fern) {
      hostent he, *res = nullptr;
      char buf[8192];
      int herr = 0;
      if (op == "ghbn")
        ::gethostbyname2_r(n.c_str(), fam, &he, buf, sizeof buf, &res, &herr);
      else
        ::gethostbyaddr_r(a, alen, fam, &he, buf, sizeof buf, &res, &herr);
      if (!res) return "herrno " + std::to_string(herr);
      out = std::string(res->h_name) + " family " + std::to_string(res->h_addrtype);
      for (char** p = res->h_aliases; *p; ++p) out += std::string(" alias ") + *p;
      for (char** p = res->h_addr_list; *p; ++p) {
        char t[INET6_ADDRSTRLEN];
        ::inet_ntop(res->h_addrtype, *p, t, sizeof t);
        out += std::string(" ") + t;
      }
      return out;
    }
    fern::detail::host_entry e;
    int r = op == "ghbn" ? fern::detail::gethostbyname(n.c_str(), fam, &e)
                         : fern::detail::gethostbyaddr(a, alen, fam, &e);
    if (r) return "herrno " + std::to_string(r);
    out = e.name + " family " + std::to_string(e.family);
    for (const std::string& al : e.aliases) out += " alias " + al;
    for (const std::string& ad : e.addrs) {
      char t[INET6_ADDRSTRLEN];
      ::inet_ntop(e.family, ad.data(), t, sizeof t);
      out += std::string(" ") + t;
    }
    return out;
  }
  return "bad query";
}

class DnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // host.conf's "multi on" (Debian's default), whatever this machine's host.conf says.
    ::setenv("RESOLV_MULTI", "on", 1);
  }

  // Points this thread's resolver at `server` with a hosts file and a resolv.conf of our own.
 public:
  void use(const std::string& server, const std::string& hosts = "",
           const std::string& resolv = "options ndots:1\n", fern::opt_timeout timeout = 2s,
           int attempts = 1) {
    fern::dns_options o;
    o.servers = {server};
    o.timeout = timeout;
    o.attempts = attempts;
    o.hosts_file = dir_.write("hosts", hosts);
    o.resolv_conf = dir_.write("resolv.conf", resolv);
    fern::set_dns_options(o);
  }

 protected:
  temp_dir dir_;
};

const fern::resolve_hints k_v4_stream{.family = AF_INET, .socktype = SOCK_STREAM};

// --- glibc's semantics where glibc sees the same inputs --------------------------------------

TEST_F(DnsTest, NumericHostsServicesAndFlagsMatchGlibcGetaddrinfo) {
  // Numeric hosts, null hosts, services and /etc/hosts' localhost: both read the same files.
  const char* queries[] = {
      "gai 127.0.0.1 - 0 0 0 0",
      "gai 127.0.0.1 80 0 0 0 2",
      "gai 127.1 - 0 0 0 2",
      "gai 0x7f.1 - 0 0 0 0",
      "gai 017.0.0.1 - 0 0 0 0",
      "gai 1.2.3 - 2 1 0 0",
      "gai 4294967295 - 0 1 0 0",
      "gai 1.2.3.4.5 - 0 1 0 4",
      "gai 1.2.3.4 - 10 0 0 0",
      "gai 1.2.3.4 - 10 0 0 8",
      "gai ::ffff:1.2.3.4 - 2 0 0 0",
      "gai 2001:db8::1 - 2 0 0 0",
      "gai ::1 22 0 1 0 0",
      "gai ::1 22 10 2 0 2",
      "gai fe80::1%1 7 0 1 0 0",
      "gai fe80::1%4294967295 7 0 1 0 0",
      "gai fe80::1%4294967296 7 0 1 0 0",
      "gai fe80::1%no-such-if 7 0 1 0 0",
      "gai 2001:db8::1%3 7 0 1 0 0",
      "gai fe80::1% 7 0 1 0 0",
      "gai - 80 0 0 0 0",
      "gai - 80 0 0 0 1",
      "gai - 80 2 0 0 1",
      "gai - 80 10 0 0 0",
      "gai - 80 0 0 0 2",
      "gai - - 0 0 0 0",
      "gai * * 0 0 0 0",
      "gai * 80 0 1 0 1",
      "gai 127.0.0.1 domain 0 0 0 0",
      "gai 127.0.0.1 domain 0 2 0 0",
      "gai 127.0.0.1 http 0 0 0 0",
      "gai 127.0.0.1 http 0 2 0 0",
      "gai 127.0.0.1 nosuchservice 0 0 0 0",
      "gai 127.0.0.1 http 0 0 0 400",
      "gai 127.0.0.1 80 0 0 0 400",
      "gai 127.0.0.1 +80 0 1 0 0",
      "gai 127.0.0.1 -1 0 1 0 0",
      "gai 127.0.0.1 65536 0 1 0 0",
      "gai 127.0.0.1 80 0 3 0 0",
      "gai 127.0.0.1 - 0 3 0 0",
      "gai 127.0.0.1 - 0 3 99 0",
      "gai 127.0.0.1 - 0 0 17 0",
      "gai 127.0.0.1 - 0 0 132 0",
      "gai 127.0.0.1 - 0 5 0 0",
      "gai 127.0.0.1 - 0 99 0 0",
      "gai 127.0.0.1 - 0 2 6 0",
      "gai 127.0.0.1 - 0 0 255 0",
      "gai 127.0.0.1 - 99 0 0 0",
      "gai 127.0.0.1 - 0 0 0 10000",
      "gai - 80 0 0 0 2",
      "gai localhost - 0 0 0 0",
      "gai localhost 80 0 1 0 2",
      "gai LocalHost 80 2 1 0 2",
      "gai localhost - 10 1 0 18",
      "gai localhost - 0 1 0 20",
      "gai - 80 0 1 0 20",
      "gai 127.0.0.1 - 0 1 0 20",
      "gai 1.2.3.4 - 0 1 0 4",
      "gai 1.2.3.4 - 0 1 0 24",
      "gai a.b - 0 1 0 4",
  };
  for (const char* q : queries) EXPECT_EQ(run_query(q, true), run_query(q, false)) << q;
}

TEST_F(DnsTest, NumericGetnameinfoMatchesGlibc) {
  const char* queries[] = {
      "gni 127.0.0.1 80 1 1025 64",
      "gni 127.0.0.1 80 3 1025 64",
      "gni 127.0.0.1 53 11 1025 64",
      "gni 127.0.0.1 53 10 1025 64",
      "gni 127.0.0.1 80 1 9 64",
      "gni 127.0.0.1 80 1 10 64",
      "gni 127.0.0.1 80 2 1025 2",
      "gni 127.0.0.1 80 0 1025 3",
      "gni fe80::1%1 22 1 1025 64",
      "gni fe80::1%77 22 1 1025 64",
      "gni fe80::1%77 22 1 10 64",
      "gni 2001:db8::1%5 22 1 1025 64",
      "gni ff02::1%1 0 1 1025 64",
      "gni :: 0 0 1025 64",
      "gni :: 0 8 1025 64",
      "gni 127.0.0.1 80 4000 1025 64",
      "gni 127.0.0.1 80 0 1025 64",
      "gni 127.0.0.1 80 4 1025 64",
      "gni ::ffff:127.0.0.1 0 0 1025 64",
  };
  for (const char* q : queries) EXPECT_EQ(run_query(q, true), run_query(q, false)) << q;
}

// Runs the differential queries inside a private namespace (see below); idle unless asked to.
TEST(DnsGlibcDiffHelper, Run) {
  const char* mode = std::getenv("FERN_DNS_DIFF_MODE");
  if (!mode) GTEST_SKIP() << "helper for GlibcAndFernAgreeInPrivateNamespace";
  std::ifstream in(std::getenv("FERN_DNS_DIFF_QUERIES"));
  std::ofstream out(std::getenv("FERN_DNS_DIFF_OUT"));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty())
      out << line << " => " << run_query(line, std::string(mode) == "fern") << "\n";
}

// glibc reads only /etc/hosts and /etc/resolv.conf (port 53): give it ours in a private mount
// and network namespace, with dnsmasq on 127.0.0.1:53 and extra local addresses that make the
// RFC 3484 rules decide, and check fern answers every query exactly as glibc does.
TEST_F(DnsTest, GlibcAndFernAgreeInPrivateNamespace) {
  if (::geteuid() != 0 || ::access("/usr/bin/unshare", X_OK) != 0 ||
      ::access("/usr/sbin/dnsmasq", X_OK) != 0)
    GTEST_SKIP() << "needs root, unshare and dnsmasq";
  std::string hosts = dir_.write("hosts",
                                 "# a hosts file\n"
                                 "127.0.0.1\tlocalhost\n"
                                 "::1 localhost ip6-localhost   # comment\n"
                                 "192.0.2.1   Gateway.Example gw\n"
                                 "192.0.2.2   gateway.example gw2\n"
                                 "  # indented comment\n"
                                 "10.0.0.1 dual.example\n"
                                 "fd00::77 dual.example dual6\n"
                                 "::ffff:10.1.1.1 mapped.example\n"
                                 "127.1 short-v4\n"
                                 "bad.addr bad-address\n"
                                 "1.2.3.4\n"
                                 "192.0.2.9 sorted.example\n"
                                 "198.51.100.9 sorted.example\n"
                                 "2001:db8::9 sorted.example\n"
                                 "fe80::9 sorted.example\n"
                                 "127.0.0.9 sorted.example\n"
                                 "2002::9 sorted.example\n"
                                 "fd00::9 sorted.example\n"
                                 "::1 sorted.example\n"
                                 "fec0::9 sorted.example\n"
                                 "10.2.2.2 both.test\n");
  std::string resolv = dir_.write("resolv.conf",
                                  "nameserver 127.0.0.1\nsearch sub.test test\n"
                                  "options ndots:2 timeout:1 attempts:1\n");
  std::string queries = dir_.write("queries", R"(gai localhost - 0 0 0 0
gai localhost - 0 0 0 2
gai localhost - 2 0 0 2
gai localhost - 10 0 0 0
gai localhost - 10 0 0 8
gai localhost - 10 0 0 18
gai localhost - 0 1 0 20
gai LOCALHOST 80 0 1 0 2
gai gw - 0 1 0 2
gai GATEWAY.EXAMPLE - 2 1 0 2
gai gw2 - 0 1 0 0
gai dual.example - 0 1 0 2
gai dual.example - 2 1 0 2
gai dual.example - 10 1 0 2
gai dual.example - 10 1 0 8
gai dual.example - 10 1 0 18
gai dual6 - 0 1 0 2
gai mapped.example - 0 1 0 2
gai mapped.example - 2 1 0 2
gai mapped.example - 10 1 0 8
gai short-v4 - 0 1 0 0
gai bad-address - 0 1 0 0
gai sorted.example - 0 1 0 0
gai sorted.example - 0 0 0 2
gai sorted.example - 0 1 0 20
gai sorted.example - 2 1 0 0
gai sorted.example - 10 1 0 0
gai sorted.example - 10 1 0 18
gai - 80 0 1 0 0
gai - 80 0 1 0 21
gai a4.test - 0 1 0 2
gai a4.test - 2 1 0 2
gai a4.test - 10 1 0 2
gai a4.test - 10 1 0 8
gai a6.test - 0 1 0 2
gai a6.test - 2 1 0 0
gai a6.test - 2 1 0 2
gai both.test - 0 0 0 2
gai both.test - 10 1 0 18
gai alias.test - 0 1 0 2
gai alias.test - 2 1 0 2
gai alias.test - 10 1 0 2
gai nx.test - 0 1 0 0
gai nx.test - 2 1 0 2
gai nx.test - 10 1 0 0
gai www - 0 1 0 2
gai www - 2 1 0 0
gai www.sub - 0 1 0 2
gai x.y - 0 1 0 2
gai x.y.test. - 0 1 0 2
gai y - 0 1 0 0
gai y - 2 1 0 2
gai a_b.test - 0 1 0 0
gai -bad.test - 0 1 0 0
gai -bad.test - 2 1 0 2
gai 999.1.1.1 - 2 1 0 0
gai 1.2.3.4. - 0 1 0 0
gai outside.example - 0 1 0 0
gai a4.test domain 0 0 0 0
gai a4.test nosuchservice 0 0 0 0
gni 127.0.0.1 80 0 1025 64
gni 192.0.2.1 22 0 1025 64
gni 192.0.2.10 0 0 1025 64
gni 192.0.2.10 0 8 1025 64
gni 192.0.2.99 0 8 1025 64
gni 192.0.2.99 0 0 1025 64
gni 2001:db8::10 0 0 1025 64
gni ::1 0 0 1025 64
gni fd00::77 0 0 1025 64
gni ::ffff:192.0.2.10 0 0 1025 64
gni ::ffff:10.1.1.1 0 0 1025 64
gni 192.0.2.10 0 0 5 64
gni 192.0.2.10 0 4 1025 64
ghbn localhost 2
ghbn localhost 10
ghbn gw 2
ghbn dual.example 2
ghbn dual.example 10
ghbn mapped.example 2
ghbn sorted.example 2
ghbn sorted.example 10
ghbn a4.test 2
ghbn a4.test 10
ghbn alias.test 2
ghbn nx.test 2
ghbn www 2
ghbn 1.2.3.4 2
ghbn 1.2.3.4 10
ghbn dead::beef 2
ghba 127.0.0.1 2
ghba ::1 10
ghba 192.0.2.10 2
ghba 2001:db8::10 10
ghba 192.0.2.99 2
ghba 10.1.1.1 2
ghba ::ffff:10.1.1.1 10
)");
  std::string self = std::filesystem::read_symlink("/proc/self/exe");
  const std::string& d = dir_.path;
  std::string sh = "set -e\n";
  sh += "ip link set lo up\n";
  sh += "ip addr add 192.0.2.5/24 dev lo\n";
  sh += "ip -6 addr add 2001:db8::5/64 dev lo\n";
  sh += "ip -6 addr add fd00::5/64 dev lo\n";
  sh += "mount --bind " + hosts + " /etc/hosts\n";
  sh += "mount --bind " + resolv + " /etc/resolv.conf\n";
  sh += "/usr/sbin/dnsmasq --keep-in-foreground --no-hosts --no-resolv --port=53";
  sh += " --listen-address=127.0.0.1 --bind-interfaces --pid-file= --conf-file=/dev/null";
  sh += " --user=root --host-record=a4.test,192.0.2.10 --host-record=a6.test,2001:db8::10";
  sh += " --host-record=both.test,127.0.0.5,::1 --cname=alias.test,a4.test";
  sh += " --host-record=www.sub.test,192.0.2.40 --host-record=x.y.test,192.0.2.50";
  sh += " --host-record=a_b.test,192.0.2.60 --host-record=-bad.test,192.0.2.61";
  sh += " --local=/test/ 2>/dev/null &\n";
  sh += "DP=$!\n";
  sh += "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.1; done\n";
  sh += "set +e\n";
  sh += "export FERN_DNS_DIFF_QUERIES=" + queries + "\n";
  for (const char* mode : {"glibc", "fern"}) {
    sh += "FERN_DNS_DIFF_MODE=" + std::string(mode) + " FERN_DNS_DIFF_OUT=" + d + "/" + mode +
          ".out " + self + " --gtest_filter=DnsGlibcDiffHelper.Run >/dev/null\n";
    sh += "echo $? > " + d + "/" + mode + ".rc\n";
  }
  sh += "kill $DP\n";
  std::string script = dir_.write("run.sh", sh);
  // The namespace set-up failing (no unshare, no ip, a kernel without network namespaces) skips
  // the test; the helpers failing fails it.
  std::string cmd = "unshare -mn --propagation private /bin/sh " + script + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "cannot create a private namespace here";
  auto status_of = [&](const char* name) {
    std::ifstream in(dir_.path + "/" + name);
    int rc = -1;
    in >> rc;
    return rc;
  };
  EXPECT_EQ(status_of("glibc.rc"), 0);
  ASSERT_EQ(status_of("fern.rc"), 0) << "the fern helper crashed or failed";
  std::ifstream g(dir_.path + "/glibc.out"), f(dir_.path + "/fern.out");
  std::string gl, fl;
  int lines = 0;
  while (std::getline(g, gl)) {
    ASSERT_TRUE(std::getline(f, fl)) << "fern stopped before " << gl;
    EXPECT_EQ(fl, gl);
    ++lines;
  }
  EXPECT_GE(lines, 90);
}

// --- the hosts file ---------------------------------------------------------------------------

TEST_F(DnsTest, HostsFileFirstLineIsCanonicalAndLinesMergeInFileOrder) {
  udp_responder silent(0ms, false);  // no DNS answer may be needed
  use(silent.server(),
      "# comment line\n"
      "127.0.0.2  Official.Example first-alias   # trailing comment\n"
      "127.0.0.3  other.example FIRST-ALIAS\n"
      "::1 ip6-only.example\n"
      "127.0.0.4  first-alias\n");
  fern::resolve_hints h = k_v4_stream;
  h.flags = AI_CANONNAME;
  fern::resolve_result r = fern::resolve("First-Alias", "", h);
  EXPECT_EQ(r.canonical_name, "Official.Example");
  EXPECT_EQ(hosts_of(r), (std::vector<std::string>{"127.0.0.2", "127.0.0.3", "127.0.0.4"}));

  fern::detail::host_entry e;
  ASSERT_EQ(fern::detail::gethostbyname("first-alias", AF_INET, &e), 0);
  EXPECT_EQ(e.name, "Official.Example");
  EXPECT_EQ(e.aliases, (std::vector<std::string>{"first-alias", "FIRST-ALIAS", "other.example",
                                                 "first-alias"}));
  ASSERT_EQ(e.addrs.size(), 3u);
  EXPECT_EQ(std::memcmp(e.addrs[2].data(), "\x7f\x00\x00\x04", 4), 0);

  // An AF_INET lookup takes "::1" lines as 127.0.0.1, as glibc does.
  fern::resolve_result v4 = fern::resolve("ip6-only.example", "", k_v4_stream);
  EXPECT_EQ(hosts_of(v4), std::vector<std::string>{"127.0.0.1"});
  EXPECT_EQ(silent.queries(), 0);
}

TEST_F(DnsTest, HostsFileEditsAreSeenAtOnce) {
  udp_responder silent(0ms, false);
  use(silent.server(), "127.0.0.2 changing.example\n");
  EXPECT_EQ(hosts_of(fern::resolve("changing.example", "", k_v4_stream)),
            std::vector<std::string>{"127.0.0.2"});
  dir_.write("hosts", "127.0.0.3 changing.example\n");  // same size, same second
  EXPECT_EQ(hosts_of(fern::resolve("changing.example", "", k_v4_stream)),
            std::vector<std::string>{"127.0.0.3"});
}

// --- DNS ----------------------------------------------------------------------------------------

TEST_F(DnsTest, ResolvesARecord) {
  dnsmasq dns(k_records);
  use(dns.server());
  fern::resolve_result r = fern::resolve("a4.test", "80", k_v4_stream);
  EXPECT_EQ(describe(r), std::vector<std::string>{"2 1 6 192.0.2.10:80"});
  EXPECT_TRUE(r.canonical_name.empty());  // only with AI_CANONNAME
}

TEST_F(DnsTest, ResolvesAaaaRecord) {
  dnsmasq dns(k_records);
  use(dns.server());
  fern::resolve_result r =
      fern::resolve("a6.test", "443", {.family = AF_INET6, .socktype = SOCK_STREAM});
  EXPECT_EQ(describe(r), std::vector<std::string>{"10 1 6 [2001:db8::10]:443"});
}

TEST_F(DnsTest, UnspecGivesBothFamiliesInGlibcOrderWithEverySocketType) {
  dnsmasq dns(k_records);
  use(dns.server());
  fern::resolve_result r = fern::resolve("both.test", "7");
  // Rule 6 (precedence: ::1 50, IPv4 10) puts ::1 first when it is usable; socket types
  // expand per address: STREAM/TCP, DGRAM/UDP, RAW/0.
  std::vector<std::string> v6 = {"10 1 6 [::1]:7", "10 2 17 [::1]:7", "10 3 0 [::1]:7"};
  std::vector<std::string> v4 = {"2 1 6 127.0.0.5:7", "2 2 17 127.0.0.5:7", "2 3 0 127.0.0.5:7"};
  std::vector<std::string> expected = ipv6_loopback_usable() ? v6 : v4;
  const auto& rest = ipv6_loopback_usable() ? v4 : v6;
  expected.insert(expected.end(), rest.begin(), rest.end());
  EXPECT_EQ(describe(r), expected);
}

TEST_F(DnsTest, CnameTargetIsTheCanonicalName) {
  dnsmasq dns(k_records);
  use(dns.server());
  fern::resolve_hints h = k_v4_stream;
  h.flags = AI_CANONNAME;
  fern::resolve_result r = fern::resolve("alias.test", "", h);
  EXPECT_EQ(r.canonical_name, "a4.test");
  EXPECT_EQ(hosts_of(r), std::vector<std::string>{"192.0.2.10"});
  fern::detail::host_entry e;
  ASSERT_EQ(fern::detail::gethostbyname("alias.test", AF_INET, &e), 0);
  EXPECT_EQ(e.name, "a4.test");
  EXPECT_EQ(e.aliases, std::vector<std::string>{"alias.test"});
}

TEST_F(DnsTest, SearchListAndNdotsDecideWhichNamesAreAsked) {
  dnsmasq dns(k_records);
  use(dns.server(), "", "search sub.test test\noptions ndots:2\n");
  fern::resolve_hints h = k_v4_stream;
  h.flags = AI_CANONNAME;
  // No dot: the search list first ("www.sub.test").
  fern::resolve_result r = fern::resolve("www", "", h);
  EXPECT_EQ(r.canonical_name, "www.sub.test");
  EXPECT_EQ(hosts_of(r), std::vector<std::string>{"192.0.2.40"});
  // One dot, fewer than ndots: still the search list ("x.y" + ".test").
  EXPECT_EQ(hosts_of(fern::resolve("x.y", "", k_v4_stream)),
            std::vector<std::string>{"192.0.2.50"});
  // Two dots: as is first.
  EXPECT_EQ(hosts_of(fern::resolve("x.y.test", "", k_v4_stream)),
            std::vector<std::string>{"192.0.2.50"});
  // A trailing dot: only as is (www.test does not exist; www.sub.test would).
  EXPECT_EQ(dns_error_of([] { fern::resolve("www.test.", "", k_v4_stream); }), EAI_NONAME);
}

TEST_F(DnsTest, NxdomainIsEaiNonameWithTheNameInTheMessage) {
  dnsmasq dns(k_records);
  use(dns.server());
  try {
    fern::resolve("nx.test", "", k_v4_stream);
    FAIL() << "resolved a name that does not exist";
  } catch (const fern::dns_error& e) {
    EXPECT_EQ(e.code(), EAI_NONAME);
    EXPECT_STREQ(e.what(), "nx.test: Name or service not known");
  }
  fern::detail::host_entry e;
  EXPECT_EQ(fern::detail::gethostbyname("nx.test", AF_INET, &e), HOST_NOT_FOUND);
}

TEST_F(DnsTest, NameWithoutRecordsOfTheFamilyIsEaiNodata) {
  dnsmasq dns(k_records);
  use(dns.server());
  EXPECT_EQ(dns_error_of([] { fern::resolve("a4.test", "", {.family = AF_INET6}); }), EAI_NODATA);
  fern::detail::host_entry e;
  EXPECT_EQ(fern::detail::gethostbyname("a4.test", AF_INET6, &e), NO_DATA);
}

TEST_F(DnsTest, ServerDownIsEaiAgainPromptly) {
  int closed = fern_test::free_port();  // nothing listens: ICMP port unreachable
  use("127.0.0.1:" + std::to_string(closed), "", "options ndots:1\n", 3s, 2);
  auto t0 = clk::now();
  EXPECT_EQ(dns_error_of([] { fern::resolve("a4.test", "", k_v4_stream); }), EAI_AGAIN);
  EXPECT_EQ(dns_error_of([] { fern::resolve("a4.test"); }), EAI_AGAIN);
  EXPECT_LT(ms_since(t0), 2000);  // well under one 3 s timeout
  fern::detail::host_entry e;
  EXPECT_EQ(fern::detail::gethostbyname("a4.test", AF_INET, &e), TRY_AGAIN);
}

TEST_F(DnsTest, UnresponsiveServerIsEaiAgainAfterTimeoutTimesAttempts) {
  udp_responder silent(0ms, false);
  use(silent.server(), "", "options ndots:1\n", 150ms, 2);
  auto t0 = clk::now();
  EXPECT_EQ(dns_error_of([] { fern::resolve("a4.test", "", k_v4_stream); }), EAI_AGAIN);
  long long took = ms_since(t0);
  EXPECT_GE(took, 280);   // two attempts of 150 ms
  EXPECT_LT(took, 3000);  // and not much more
  EXPECT_EQ(silent.queries(), 2);
}

TEST_F(DnsTest, TimeoutScopeEndsTheLookupWithItsTimeoutError) {
  udp_responder silent(0ms, false);
  use(silent.server(), "", "options ndots:1\n", 5s, 2);
  auto t0 = clk::now();
  fern::timeout scope(100ms);
  try {
    fern::resolve("a4.test", "", k_v4_stream);
    FAIL() << "no timeout";
  } catch (const fern::timeout_error& e) {
    EXPECT_TRUE(e.is(scope));
  }
  EXPECT_LT(ms_since(t0), 2000);
}

TEST_F(DnsTest, PerCallTimeoutThrowsTimeoutError) {
  udp_responder silent(0ms, false);
  use(silent.server(), "", "options ndots:1\n", 5s, 2);
  auto t0 = clk::now();
  try {
    fern::resolve("a4.test", "", k_v4_stream, 100ms);
    FAIL() << "no timeout";
  } catch (const fern::timeout_error& e) {
    EXPECT_EQ(e.source(), nullptr);
  }
  EXPECT_LT(ms_since(t0), 2000);
  // The same through reverse_resolve.
  EXPECT_THROW(fern::reverse_resolve(fern::address::ip("192.0.2.99", 0), NI_NAMEREQD, 100ms),
               fern::timeout_error);
}

TEST_F(DnsTest, KilledLookupEndsTheFiberAndLaterLookupsWork) {
  udp_responder silent(0ms, false);
  use(silent.server(), "", "options ndots:1\n", 200ms, 1);
  auto f = fern::spawn([] { fern::resolve("a4.test", "", k_v4_stream); });
  fern::sleep(50ms);
  EXPECT_FALSE(f.ready());
  f.kill();
  EXPECT_TRUE(fern_test::ended_by_kill(f));
  // Its abandoned query times out later; its callback must free it without the fiber.
  fern::sleep(400ms);
  dnsmasq dns(k_records);
  use(dns.server());
  EXPECT_EQ(hosts_of(fern::resolve("a4.test", "", k_v4_stream)),
            std::vector<std::string>{"192.0.2.10"});
}

TEST_F(DnsTest, ShimEntryPointsReportKillAndScopeAsErrno) {
  udp_responder silent(0ms, false);
  use(silent.server(), "", "options ndots:1\n", 5s, 1);
  int rc = 0, err = 0;
  auto f = fern::spawn([&] {
    addrinfo* res = nullptr;
    addrinfo hints{};
    hints.ai_family = AF_INET;
    rc = fern::detail::getaddrinfo("a4.test", nullptr, &hints, &res);
    err = errno;
  });
  fern::sleep(50ms);
  f.kill();
  f.join();
  EXPECT_FALSE(fern_test::ended_by_kill(f));  // a C entry point returns, never throws
  EXPECT_EQ(rc, EAI_SYSTEM);
  EXPECT_EQ(err, ECANCELED);

  fern::timeout scope(50ms);
  fern::detail::host_entry e;
  EXPECT_EQ(fern::detail::gethostbyname("a4.test", AF_INET, &e), NETDB_INTERNAL);
  EXPECT_EQ(errno, ETIMEDOUT);
}

// Resolves h0..h<n-1>.slow.test at once, a fiber each, against a responder that answers every
// query after 200 ms; checks every answer and that each name was asked exactly once (none lost,
// none retried). Returns the milliseconds the whole batch took.
long long resolve_at_once_from_slow_server(DnsTest& t, int n) {
  udp_responder slow(200ms);
  t.use(slow.server(), "", "options ndots:1\n", 10s, 1);
  std::vector<fern::fiber<std::string>> fibers;
  auto t0 = clk::now();
  for (int i = 0; i < n; ++i)
    fibers.push_back(fern::spawn([i] {
      return fern::resolve("h" + std::to_string(i) + ".slow.test", "", k_v4_stream)
          .endpoints.at(0)
          .addr.host();
    }));
  for (int i = 0; i < n; ++i) EXPECT_EQ(fibers[i].get(), fern_test::slow_address(i)) << i;
  long long took = ms_since(t0);
  EXPECT_EQ(slow.queries(), n);
  return took;
}

TEST_F(DnsTest, ThousandConcurrentLookupsOverlapOnOneThread) {
  long long took = resolve_at_once_from_slow_server(*this, 1000);
  EXPECT_GE(took, 190);  // each answer waited its delay...
  // ...but all of them at once: one after another would take 1000 * 200 ms = 200 s. The bound
  // is loose enough for TSan on a loaded 2-core machine (1.2 s seen there).
  EXPECT_LT(took, 25 * 200);
}

TEST_F(DnsTest, LookupsBeyondTheInFlightWindowQueueInOrderAndAllFinish) {
  // At most 1000 queries are in flight per channel; the rest wait for replies to make room.
  long long took = resolve_at_once_from_slow_server(*this, 1500);
  EXPECT_GE(took, 2 * 190);  // the last 500 were sent only once the first answers came
  EXPECT_LT(took, 25 * 200);
}

TEST_F(DnsTest, ReverseLookupUsesHostsFileThenPtr) {
  dnsmasq dns(k_records);
  use(dns.server(), "192.0.2.77 from-hosts.example alias\n");
  EXPECT_EQ(fern::reverse_resolve(fern::address::ip("192.0.2.77", 80)).host, "from-hosts.example");
  fern::name_info ni = fern::reverse_resolve(fern::address::ip("192.0.2.10", 53));
  EXPECT_EQ(ni.host, "a4.test");  // dnsmasq's PTR for its host-record
  EXPECT_EQ(ni.service, "domain");
  EXPECT_EQ(fern::reverse_resolve(fern::address::ip("2001:db8::10", 0)).host, "a6.test");
  EXPECT_EQ(fern::reverse_resolve(fern::address::ip("192.0.2.10", 53), NI_NUMERICSERV).service,
            "53");
  EXPECT_EQ(fern::reverse_resolve(fern::address::ip("192.0.2.99", 0)).host, "192.0.2.99");
  EXPECT_EQ(
      dns_error_of([] { fern::reverse_resolve(fern::address::ip("192.0.2.99", 0), NI_NAMEREQD); }),
      EAI_NONAME);
  EXPECT_EQ(dns_error_of([] { fern::reverse_resolve(fern::address::unix_path("/tmp/x")); }),
            EAI_FAMILY);
  fern::detail::host_entry e;
  in_addr a;
  ::inet_pton(AF_INET, "192.0.2.10", &a);
  ASSERT_EQ(fern::detail::gethostbyaddr(&a, sizeof a, AF_INET, &e), 0);
  EXPECT_EQ(e.name, "a4.test");
  ::inet_pton(AF_INET, "192.0.2.99", &a);
  EXPECT_EQ(fern::detail::gethostbyaddr(&a, sizeof a, AF_INET, &e), HOST_NOT_FOUND);
}

TEST_F(DnsTest, ServicesByNameAndNumber) {
  udp_responder silent(0ms, false);
  use(silent.server());
  servent* tcp = ::getservbyname("domain", "tcp");
  servent* udp = ::getservbyname("domain", "udp");
  ASSERT_TRUE(tcp && udp) << "/etc/services lacks domain";
  fern::resolve_result r = fern::resolve("127.0.0.1", "domain");
  EXPECT_EQ(describe(r), (std::vector<std::string>{"2 1 6 127.0.0.1:53", "2 2 17 127.0.0.1:53"}));
  EXPECT_EQ(describe(fern::resolve("127.0.0.1", "8080", k_v4_stream)),
            std::vector<std::string>{"2 1 6 127.0.0.1:8080"});
  EXPECT_EQ(describe(fern::resolve("", "9", {.family = AF_INET, .socktype = SOCK_DGRAM})),
            std::vector<std::string>{"2 2 17 127.0.0.1:9"});
  EXPECT_EQ(describe(fern::resolve(
                "", "9", {.family = AF_INET6, .socktype = SOCK_STREAM, .flags = AI_PASSIVE})),
            std::vector<std::string>{"10 1 6 [::]:9"});
  EXPECT_EQ(dns_error_of([] { fern::resolve("127.0.0.1", "no-such-service"); }), EAI_SERVICE);
  EXPECT_EQ(dns_error_of([] { fern::resolve("127.0.0.1", "domain", {.flags = AI_NUMERICSERV}); }),
            EAI_NONAME);
  EXPECT_EQ(dns_error_of([] { fern::resolve("127.0.0.1", "80", {.socktype = SOCK_RAW}); }),
            EAI_SERVICE);
  EXPECT_EQ(silent.queries(), 0);
}

TEST_F(DnsTest, BadFlagsFamiliesAndSocketTypes) {
  udp_responder silent(0ms, false);
  use(silent.server());
  EXPECT_EQ(dns_error_of([] { fern::resolve("", "80", {.flags = AI_CANONNAME}); }), EAI_BADFLAGS);
  EXPECT_EQ(dns_error_of([] { fern::resolve("127.0.0.1", "80", {.flags = 0x10000}); }),
            EAI_BADFLAGS);
  EXPECT_EQ(dns_error_of([] { fern::resolve("127.0.0.1", "80", {.family = AF_UNIX}); }),
            EAI_FAMILY);
  EXPECT_EQ(dns_error_of([] { fern::resolve("127.0.0.1", "80", {.socktype = 99}); }), EAI_SOCKTYPE);
  EXPECT_EQ(dns_error_of([] { fern::resolve("1.2.3.4", "", {.family = AF_INET6}); }),
            EAI_ADDRFAMILY);
  EXPECT_EQ(dns_error_of([] { fern::resolve("a4.test", "", {.flags = AI_NUMERICHOST}); }),
            EAI_NONAME);
  char host[64];
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  EXPECT_EQ(fern::detail::getnameinfo(reinterpret_cast<sockaddr*>(&sin), sizeof sin, host,
                                      sizeof host, nullptr, 0, 0x8000),
            EAI_BADFLAGS);
  EXPECT_EQ(fern::detail::getnameinfo(reinterpret_cast<sockaddr*>(&sin), sizeof sin - 1, host,
                                      sizeof host, nullptr, 0, 0),
            EAI_FAMILY);
  EXPECT_EQ(silent.queries(), 0);
}

TEST_F(DnsTest, GetaddrinfoListIsFreedByGlibcFreeaddrinfo) {
  dnsmasq dns(k_records);
  use(dns.server());
  addrinfo hints{};
  hints.ai_flags = AI_CANONNAME;
  addrinfo* res = nullptr;
  ASSERT_EQ(fern::detail::getaddrinfo("both.test", "80", &hints, &res), 0);
  int n = 0;
  for (addrinfo* p = res; p; p = p->ai_next) {
    ++n;
    EXPECT_EQ(reinterpret_cast<char*>(p->ai_addr), reinterpret_cast<char*>(p + 1));
    EXPECT_EQ(p->ai_canonname != nullptr, p == res);
  }
  EXPECT_EQ(n, 6);
  EXPECT_STREQ(res->ai_canonname, "both.test");
  ::freeaddrinfo(res);  // glibc's: the sanitizer builds check nothing leaks or double-frees
}

TEST_F(DnsTest, ThreadExitWithLookupsPendingFreesEverything) {
  udp_responder silent(0ms, false);
  std::string hosts = dir_.write("hosts", ""), resolv = dir_.write("resolv.conf", "");
  std::atomic<int> started{0};
  auto t0 = clk::now();
  std::thread t([&] {
    fern::set_dns_options({.servers = {silent.server()},
                           .timeout = 10s,
                           .attempts = 3,
                           .hosts_file = hosts,
                           .resolv_conf = resolv});
    for (int i = 0; i < 20; ++i)
      fern::spawn([&, i] {
        ++started;
        try {
          fern::resolve("pending" + std::to_string(i) + ".test");
        } catch (const fern::dns_error&) {
        }
      });
    fern::sleep(100ms);  // every fiber is parked in its lookup when the thread ends
  });
  t.join();
  EXPECT_EQ(started.load(), 20);
  EXPECT_LT(ms_since(t0), 5000);  // nobody waited for the 10 s timeouts
  EXPECT_GE(silent.queries(), 20);
}

TEST_F(DnsTest, TwoThreadsResolveAtOnceOnTheirOwnHubs) {
  dnsmasq dns(k_records);
  std::string hosts = dir_.write("hosts", ""), resolv = dir_.write("resolv.conf", "");
  auto work = [&](const char* name, const char* expected, int* ok) {
    fern::set_dns_options({.servers = {dns.server()}, .hosts_file = hosts, .resolv_conf = resolv});
    std::vector<fern::fiber<bool>> fs;
    for (int i = 0; i < 50; ++i)
      fs.push_back(fern::spawn([&] {
        return hosts_of(fern::resolve(name, "", k_v4_stream)) == std::vector<std::string>{expected};
      }));
    for (auto& f : fs) *ok += f.get();
  };
  int ok1 = 0, ok2 = 0;
  std::thread t1([&] { work("a4.test", "192.0.2.10", &ok1); });
  std::thread t2([&] { work("x.y.test", "192.0.2.50", &ok2); });
  t1.join();
  t2.join();
  EXPECT_EQ(ok1, 50);
  EXPECT_EQ(ok2, 50);
}

TEST_F(DnsTest, SetDnsOptionsValidatesItsInput) {
  EXPECT_THROW(fern::set_dns_options({.servers = {"dns.example"}}), std::invalid_argument);
  EXPECT_THROW(fern::set_dns_options({.servers = {"127.0.0.1:0"}}), std::invalid_argument);
  EXPECT_THROW(fern::set_dns_options({.servers = {"[::1"}}), std::invalid_argument);
  EXPECT_THROW(fern::set_dns_options({.timeout = 0ms}), std::invalid_argument);
  EXPECT_THROW(fern::set_dns_options({.attempts = 0}), std::invalid_argument);
  EXPECT_NO_THROW(fern::set_dns_options(
      {.servers = {"127.0.0.1", "::1", "127.0.0.1:5353", "[::1]:53", "[fe80::1]"}}));
}

TEST_F(DnsTest, NewOptionsApplyToLaterLookupsWhileEarlierOnesFinish) {
  udp_responder slow(200ms);
  dnsmasq dns(k_records);
  use(slow.server(), "", "options ndots:1\n", 5s, 1);
  auto early = fern::spawn([] { return hosts_of(fern::resolve("h7.slow.test", "", k_v4_stream)); });
  fern::yield();  // it has sent its query to the slow server
  use(dns.server());
  EXPECT_EQ(hosts_of(fern::resolve("a4.test", "", k_v4_stream)),
            std::vector<std::string>{"192.0.2.10"});
  EXPECT_EQ(early.get(), std::vector<std::string>{fern_test::slow_address(7)});
}

TEST_F(DnsTest, OtherNsswitchServicesFallBackToGlibcOnTheThreadPool) {
  fern::detail::dns::nss_config unsupported;
  unsupported.supported = false;
  fern::detail::dns::override_hosts_nss(unsupported);
  for (const char* q : {"gai localhost 80 0 1 0 2", "gai 127.0.0.1 - 0 0 0 0", "gai - 53 0 0 0 0",
                        "gni 127.0.0.1 22 0 1025 64", "ghbn localhost 2", "ghba 127.0.0.1 2"})
    EXPECT_EQ(run_query(q, true), run_query(q, false)) << q;
  EXPECT_GE(fern::detail::default_threadpool().threads(), 1u);
  fern::detail::dns::override_hosts_nss(std::nullopt);
}

// Resolves with nothing but the FERN_* environment; idle unless asked to.
TEST(DnsEnvHelper, Run) {
  const char* out = std::getenv("FERN_DNS_ENV_HELPER_OUT");
  if (!out) GTEST_SKIP() << "helper for EnvironmentConfiguresTheResolver";
  std::ofstream o(out);
  o << fern::resolve("a4.test", "", k_v4_stream).endpoints.at(0).addr.host() << "\n";
  o << fern::resolve("from-env-hosts", "", k_v4_stream).endpoints.at(0).addr.host() << "\n";
}

// A binary run under the shim is configured by the environment alone.
TEST_F(DnsTest, EnvironmentConfiguresTheResolver) {
  dnsmasq dns(k_records);
  std::string hosts = dir_.write("hosts", "127.0.0.7 from-env-hosts\n");
  std::string resolv = dir_.write("resolv.conf", "options ndots:1\n");
  std::string self = std::filesystem::read_symlink("/proc/self/exe");
  std::string cmd = "FERN_DNS_SERVERS=" + dns.server() +
                    " FERN_DNS_TIMEOUT=2s FERN_DNS_ATTEMPTS=1" + " FERN_HOSTS_FILE=" + hosts +
                    " FERN_RESOLV_CONF=" + resolv + " FERN_DNS_ENV_HELPER_OUT=" + dir_.path +
                    "/env.out " + self + " --gtest_filter=DnsEnvHelper.Run >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream in(dir_.path + "/env.out");
  std::string a, b;
  std::getline(in, a);
  std::getline(in, b);
  EXPECT_EQ(a, "192.0.2.10");
  EXPECT_EQ(b, "127.0.0.7");
}

// --- configuration parsing ----------------------------------------------------------------------

TEST(DnsConfigTest, NsswitchHostsLines) {
  using fern::detail::dns::parse_nsswitch;
  using fern::detail::dns::source_kind;
  auto c = parse_nsswitch("passwd: files\nhosts:   files dns   # comment\n");
  ASSERT_TRUE(c.supported);
  ASSERT_EQ(c.sources.size(), 2u);
  EXPECT_EQ(c.sources[0].kind, source_kind::files);
  EXPECT_EQ(c.sources[1].kind, source_kind::dns);
  EXPECT_TRUE(c.sources[0].ret[0]);
  EXPECT_FALSE(c.sources[0].ret[1]);

  EXPECT_FALSE(parse_nsswitch("hosts: files mdns4_minimal [NOTFOUND=return] dns\n").supported);
  EXPECT_FALSE(parse_nsswitch("hosts: files myhostname dns\n").supported);
  EXPECT_FALSE(parse_nsswitch("hosts: files [SUCCESS=merge] dns\n").supported);

  auto d = parse_nsswitch("hosts: dns [!UNAVAIL=return] files\n");
  ASSERT_TRUE(d.supported);
  EXPECT_TRUE(d.sources[0].ret[1]);              // NOTFOUND: return
  EXPECT_FALSE(d.sources[0].ret[2]);             // UNAVAIL: continue
  auto def = parse_nsswitch("passwd: files\n");  // no hosts line: glibc's default, the same
  ASSERT_EQ(def.sources.size(), 2u);
  EXPECT_EQ(def.sources[0].kind, source_kind::dns);
  EXPECT_FALSE(def.sources[0].ret[2]);
}

TEST(DnsConfigTest, EnvironmentKnobsAndMalformedValues) {
  ::setenv("FERN_DNS_SERVERS", "127.0.0.1:5353, [::1]:53", 1);
  ::setenv("FERN_DNS_TIMEOUT", "500ms", 1);
  ::setenv("FERN_DNS_ATTEMPTS", "3", 1);
  ::setenv("FERN_HOSTS_FILE", "/tmp/h", 1);
  ::setenv("FERN_RESOLV_CONF", "/tmp/r", 1);
  fern::detail::dns::env_settings e = fern::detail::dns::parse_env();
  ASSERT_EQ(e.servers.size(), 2u);
  EXPECT_EQ(e.servers[0].port, 5353);
  EXPECT_EQ(e.servers[1].family, AF_INET6);
  EXPECT_EQ(e.timeout_ms, 500);
  EXPECT_EQ(e.attempts, 3);
  EXPECT_EQ(e.hosts_file, "/tmp/h");
  EXPECT_EQ(e.resolv_conf, "/tmp/r");
  // Malformed values are reported on stderr and ignored.
  ::setenv("FERN_DNS_SERVERS", "dns.example", 1);
  ::setenv("FERN_DNS_TIMEOUT", "soon", 1);
  ::setenv("FERN_DNS_ATTEMPTS", "0", 1);
  e = fern::detail::dns::parse_env();
  EXPECT_TRUE(e.servers.empty());
  EXPECT_FALSE(e.timeout_ms);
  EXPECT_FALSE(e.attempts);
  for (const char* v : {"FERN_DNS_SERVERS", "FERN_DNS_TIMEOUT", "FERN_DNS_ATTEMPTS",
                        "FERN_HOSTS_FILE", "FERN_RESOLV_CONF"})
    ::unsetenv(v);
}

TEST(DnsConfigTest, ServerAndTimeoutSyntax) {
  using fern::detail::dns::parse_server;
  using fern::detail::dns::parse_timeout_ms;
  fern::detail::dns::server_spec s;
  ASSERT_TRUE(parse_server("127.0.0.1:5353", &s));
  EXPECT_EQ(s.family, AF_INET);
  EXPECT_EQ(s.port, 5353);
  ASSERT_TRUE(parse_server("::1", &s));
  EXPECT_EQ(s.family, AF_INET6);
  EXPECT_EQ(s.port, 53);
  ASSERT_TRUE(parse_server("[2001:db8::1]:54", &s));
  EXPECT_EQ(s.port, 54);
  EXPECT_FALSE(parse_server("localhost", &s));
  EXPECT_FALSE(parse_server("1.2.3.4:99999", &s));
  EXPECT_FALSE(parse_server("[::1]x", &s));
  EXPECT_EQ(parse_timeout_ms("500ms"), 500);
  EXPECT_EQ(parse_timeout_ms("2s"), 2000);
  EXPECT_EQ(parse_timeout_ms("2"), 2000);
  EXPECT_EQ(parse_timeout_ms("0.25"), 250);
  EXPECT_FALSE(parse_timeout_ms("0"));
  EXPECT_FALSE(parse_timeout_ms("fast"));
  EXPECT_FALSE(parse_timeout_ms("-1s"));
}

}  // namespace
