// The DNS family under the shim (dns.cpp): getaddrinfo, getnameinfo and the gethostbyname family
// park the calling fiber while fern's resolver waits, so hundreds of fibers resolving through a
// slow name server finish in about one delay; a kill or an expired fern::timeout scope ends the
// call with EAI_SYSTEM (or NETDB_INTERNAL) and ECANCELED / ETIMEDOUT; errno is preserved on
// success; fern's results are freed by glibc's freeaddrinfo and fill _r buffers as glibc does; a
// thread without a hub gets glibc's own answers. The name server is slow_dns below, on a plain
// thread; fern finds it and a hosts file of its own through FERN_DNS_SERVERS, FERN_HOSTS_FILE
// and FERN_RESOLV_CONF, which glibc never reads. Linked against libfern_interpose: every
// ::getaddrinfo here is the hook. glibc's exact results are the differential tests' business.
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "fern/fern.hpp"
#include "hub_impl.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

constexpr auto delay = 200ms;  // how long slow_dns sits on each query

std::int64_t ms_since(steady::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
}

// libc's own definition, behind the shim.
template <class Fn>
Fn* libc_fn(const char* name) {
  void* libc = ::dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  return libc ? reinterpret_cast<Fn*>(::dlsym(libc, name)) : nullptr;
}

// A UDP name server on 127.0.0.1 that answers every query `delay` after it arrived, on a thread
// without a hub (so its own calls are the real ones). "h<N>.slow.test" has the A record
// 10.99.<N / 256>.<N % 256>; other names under slow.test have no AAAA or other records (NODATA);
// names elsewhere are NXDOMAIN.
class slow_dns {
 public:
  slow_dns() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0 || ::pipe(stop_) != 0) {
      std::perror("slow_dns");
      std::abort();
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~slow_dns() {
    char c = 0;
    (void)!::write(stop_[1], &c, 1);
    thread_.join();
    ::close(fd_);
    ::close(stop_[0]);
    ::close(stop_[1]);
  }
  std::uint16_t port() const { return port_; }
  int queries() const { return queries_.load(); }

  static std::string expected(int n) {
    return "10.99." + std::to_string(n / 256) + "." + std::to_string(n % 256);
  }

 private:
  struct pending {
    steady::time_point due;
    sockaddr_in to;
    std::string answer;
  };

  void run() {
    std::deque<pending> queue;  // in arrival order, so in due order
    for (;;) {
      int wait_ms = -1;
      if (!queue.empty())
        wait_ms = static_cast<int>(std::max<std::int64_t>(
            0,
            std::chrono::duration_cast<std::chrono::milliseconds>(queue.front().due - steady::now())
                    .count() +
                1));
      pollfd p[2] = {{fd_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
      ::poll(p, 2, wait_ms);
      if (p[1].revents) return;
      for (;;) {
        unsigned char q[512];
        sockaddr_in from{};
        socklen_t flen = sizeof from;
        ssize_t n =
            ::recvfrom(fd_, q, sizeof q, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &flen);
        if (n < 0) break;
        std::string answer = respond(q, static_cast<std::size_t>(n));
        if (answer.empty()) continue;
        ++queries_;
        queue.push_back({steady::now() + delay, from, std::move(answer)});
      }
      while (!queue.empty() && queue.front().due <= steady::now()) {
        const pending& r = queue.front();
        ::sendto(fd_, r.answer.data(), r.answer.size(), 0, reinterpret_cast<const sockaddr*>(&r.to),
                 sizeof r.to);
        queue.pop_front();
      }
    }
  }

  // The response to one query, or "" for a malformed one.
  static std::string respond(const unsigned char* q, std::size_t n) {
    if (n < 12 || q[4] != 0 || q[5] != 1) return {};
    std::size_t i = 12;
    std::string name;
    while (i < n && q[i] != 0) {
      std::size_t len = q[i];
      if (len > 63 || i + 1 + len > n) return {};
      if (!name.empty()) name += '.';
      for (std::size_t k = 0; k < len; ++k) name += static_cast<char>(std::tolower(q[i + 1 + k]));
      i += 1 + len;
    }
    if (i + 5 > n) return {};
    const std::size_t question_end = i + 5;
    const int qtype = q[i + 1] << 8 | q[i + 2];
    const bool ours = name.size() > 10 && name.ends_with(".slow.test");
    int host = -1;
    if (ours && name[0] == 'h' && qtype == 1) {
      char* end = nullptr;
      long v = std::strtol(name.c_str() + 1, &end, 10);
      if (end && *end == '.' && v >= 0 && v < 65536) host = static_cast<int>(v);
    }
    std::string r(reinterpret_cast<const char*>(q), question_end);
    r[2] = static_cast<char>(0x84 | (q[2] & 0x01));   // QR, AA, the query's RD
    r[3] = static_cast<char>(0x80 | (ours ? 0 : 3));  // RA; NOERROR or NXDOMAIN
    r[6] = 0;
    r[7] = host >= 0 ? 1 : 0;  // ANCOUNT
    r[8] = r[9] = r[10] = r[11] = 0;
    if (host >= 0) {
      const unsigned char rr[] = {0xc0,
                                  12,
                                  0,
                                  1,
                                  0,
                                  1,
                                  0,
                                  0,
                                  0,
                                  60,
                                  0,
                                  4,
                                  10,
                                  99,
                                  static_cast<unsigned char>(host / 256),
                                  static_cast<unsigned char>(host % 256)};
      r.append(reinterpret_cast<const char*>(rr), sizeof rr);
    }
    return r;
  }

  int fd_ = -1;
  int stop_[2] = {-1, -1};
  std::uint16_t port_ = 0;
  std::atomic<int> queries_{0};
  std::thread thread_;
};

// The test environment: slow_dns and fern's configuration, set before any lookup.
// FERN_HOSTS_FILE maps localhost to 127.0.0.9, so an answer tells which resolver gave it.
// Several attempts: 500 answers arriving at once can overflow the resolver socket's default
// receive buffer (about 250 datagrams) when the machine is busy; a lost one is asked again.
struct dns_env {
  slow_dns server;
  std::filesystem::path dir;
  dns_env() {
    char tmpl[] = "/tmp/fern_dns_test.XXXXXX";
    dir = ::mkdtemp(tmpl);
    std::ofstream(dir / "hosts") << "127.0.0.9 localhost\n"
                                    "10.77.0.1 fern-only.test fern-alias1 fern-alias2\n"
                                    "10.77.0.2 fern-multi.test\n"
                                    "10.77.0.3 fern-multi.test\n"
                                    "fd00::77:1 fern-only6.test\n";
    std::ofstream(dir / "resolv.conf") << "nameserver 192.0.2.1\n";
    ::setenv("FERN_HOSTS_FILE", (dir / "hosts").c_str(), 1);
    ::setenv("FERN_RESOLV_CONF", (dir / "resolv.conf").c_str(), 1);
    ::setenv("FERN_DNS_SERVERS", ("127.0.0.1:" + std::to_string(server.port())).c_str(), 1);
    ::setenv("FERN_DNS_TIMEOUT", "1s", 1);
    ::setenv("FERN_DNS_ATTEMPTS", "3", 1);
  }
  ~dns_env() { std::filesystem::remove_all(dir); }
};
dns_env& env() {
  static dns_env e;
  return e;
}
// Before main(), hence before any lookup of any test.
[[maybe_unused]] const bool env_ready = (env(), true);

addrinfo hints_of(int family, int socktype, int flags = 0) {
  addrinfo h{};
  h.ai_family = family;
  h.ai_socktype = socktype;
  h.ai_flags = flags;
  return h;
}

// "10.77.0.1:80" for each entry.
std::vector<std::string> texts(const addrinfo* ai) {
  std::vector<std::string> out;
  for (; ai; ai = ai->ai_next) {
    char buf[INET6_ADDRSTRLEN] = "?";
    std::uint16_t port = 0;
    if (ai->ai_family == AF_INET) {
      auto* in = reinterpret_cast<const sockaddr_in*>(ai->ai_addr);
      ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
      port = ntohs(in->sin_port);
    } else if (ai->ai_family == AF_INET6) {
      auto* in6 = reinterpret_cast<const sockaddr_in6*>(ai->ai_addr);
      ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
      port = ntohs(in6->sin6_port);
    }
    out.push_back(std::string(buf) + ":" + std::to_string(port) + "/" +
                  std::to_string(ai->ai_socktype));
  }
  return out;
}

std::string first_addr(const hostent* he) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (he && he->h_addr_list[0]) ::inet_ntop(he->h_addrtype, he->h_addr_list[0], buf, sizeof buf);
  return buf;
}

std::string host_name(int n) {
  std::string s(1, 'h');
  s += std::to_string(n);
  s += ".slow.test";
  return s;
}

// --- cooperation ----------------------------------------------------------------------------

TEST(ShimDnsTest, FiveHundredFibersResolveThroughASlowServerInAboutOneDelay) {
  constexpr int n = 500;
  int started = 0, started_at_first_return = -1;
  std::vector<fern::fiber<std::string>> fibers;
  const int queries_before = env().server.queries();
  auto t0 = steady::now();
  for (int i = 0; i < n; ++i) {
    fibers.push_back(fern::spawn([&, i]() -> std::string {
      ++started;
      addrinfo hints = hints_of(AF_INET, SOCK_STREAM);
      addrinfo* res = nullptr;
      int r = ::getaddrinfo(host_name(i).c_str(), "80", &hints, &res);
      if (started_at_first_return < 0) started_at_first_return = started;
      if (r != 0) return ::gai_strerror(r);
      std::vector<std::string> got = texts(res);
      ::freeaddrinfo(res);
      return got.size() == 1 ? got[0] : "entries: " + std::to_string(got.size());
    }));
  }
  fern::joinall(fibers);
  const auto ms = ms_since(t0);
  for (int i = 0; i < n; ++i) EXPECT_EQ(fibers[i].get(), slow_dns::expected(i) + ":80/1") << i;
  // Every fiber was parked in getaddrinfo before the first one returned.
  EXPECT_EQ(started_at_first_return, n);
  EXPECT_GE(env().server.queries() - queries_before, n);
  EXPECT_GE(ms, 190);
  EXPECT_LT(ms, 5000);  // one after the other: 100 s
}

TEST(ShimDnsTest, TwoHundredFibersInGethostbynameRInAboutOneDelay) {
  constexpr int n = 200;
  int started = 0, started_at_first_return = -1;
  std::vector<fern::fiber<std::string>> fibers;
  auto t0 = steady::now();
  for (int i = 0; i < n; ++i) {
    fibers.push_back(fern::spawn([&, i]() -> std::string {
      ++started;
      hostent he, *result = nullptr;
      char buf[1024];
      int herr = 0;
      const std::string name = host_name(1000 + i);
      int r = ::gethostbyname_r(name.c_str(), &he, buf, sizeof buf, &result, &herr);
      if (started_at_first_return < 0) started_at_first_return = started;
      if (r != 0 || !result) return "r " + std::to_string(r) + " h_errno " + std::to_string(herr);
      return std::string(he.h_name) + " " + first_addr(&he);
    }));
  }
  fern::joinall(fibers);
  const auto ms = ms_since(t0);
  for (int i = 0; i < n; ++i)
    EXPECT_EQ(fibers[i].get(), host_name(1000 + i) + " " + slow_dns::expected(1000 + i));
  EXPECT_EQ(started_at_first_return, n);
  EXPECT_GE(ms, 190);
  EXPECT_LT(ms, 5000);
}

TEST(ShimDnsTest, OtherFibersRunWhileOneResolves) {
  std::vector<std::string> log;
  auto resolver = fern::spawn([&] {
    log.push_back("resolve");
    hostent* he = ::gethostbyname(host_name(7).c_str());
    log.push_back(he ? "resolved " + first_addr(he) : "failed");
  });
  auto ticker = fern::spawn([&] {
    for (int i = 0; i < 3; ++i) {
      log.push_back("tick");
      fern::sleep(10ms);
    }
  });
  fern::joinall({resolver, ticker});
  EXPECT_EQ(log, (std::vector<std::string>{"resolve", "tick", "tick", "tick",
                                           "resolved " + slow_dns::expected(7)}));
}

// --- kill and fern::timeout -----------------------------------------------------------------

TEST(ShimDnsTest, KilledFiberInGetaddrinfoGetsEaiSystemWithEcanceled) {
  auto f = fern::spawn([] {
    addrinfo hints = hints_of(AF_INET, SOCK_STREAM);
    addrinfo* res = nullptr;
    errno = 0;
    int r = ::getaddrinfo(host_name(2000).c_str(), "80", &hints, &res);
    return std::pair(r, errno);
  });
  fern::sleep(20ms);
  EXPECT_FALSE(f.ready());
  auto t0 = steady::now();
  f.kill();
  EXPECT_LT(ms_since(t0), 150);  // not after the server's answer
  EXPECT_TRUE(f.successful());   // the C call returned; nothing was thrown through it
  EXPECT_EQ(f.get(), std::pair(EAI_SYSTEM, ECANCELED));
}

TEST(ShimDnsTest, ExpiredTimeoutScopeGivesEaiSystemWithEtimedout) {
  fern::timeout scope(50ms);
  addrinfo hints = hints_of(AF_INET, SOCK_STREAM);
  addrinfo* res = nullptr;
  auto t0 = steady::now();
  errno = 0;
  EXPECT_EQ(::getaddrinfo(host_name(2001).c_str(), "80", &hints, &res), EAI_SYSTEM);
  EXPECT_EQ(errno, ETIMEDOUT);
  const auto ms = ms_since(t0);
  EXPECT_GE(ms, 45);
  EXPECT_LT(ms, 190);
}

TEST(ShimDnsTest, KillAndTimeoutInTheGethostbynameFamilyAreNetdbInternal) {
  auto f = fern::spawn([] {
    hostent he, *result = reinterpret_cast<hostent*>(1);
    char buf[512];
    int herr = 0;
    errno = 0;
    int r = ::gethostbyname_r(host_name(2002).c_str(), &he, buf, sizeof buf, &result, &herr);
    return std::vector<long>{r, errno, herr, result == nullptr};
  });
  fern::sleep(20ms);
  f.kill();
  EXPECT_EQ(f.get(), (std::vector<long>{ECANCELED, ECANCELED, NETDB_INTERNAL, 1}));

  fern::timeout scope(30ms);
  h_errno = 0;
  errno = 0;
  EXPECT_EQ(::gethostbyname(host_name(2003).c_str()), nullptr);
  EXPECT_EQ(h_errno, NETDB_INTERNAL);
  EXPECT_EQ(errno, ETIMEDOUT);
}

TEST(ShimDnsTest, KilledFiberInGetnameinfoGetsEaiSystemWithEcanceled) {
  // 10.99.0.1 is in no hosts file: the PTR query goes to slow_dns.
  auto f = fern::spawn([] {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, "10.99.0.1", &a.sin_addr);
    char host[NI_MAXHOST];
    errno = 0;
    int r = ::getnameinfo(reinterpret_cast<sockaddr*>(&a), sizeof a, host, sizeof host, nullptr, 0,
                          NI_NAMEREQD);
    return std::pair(r, errno);
  });
  fern::sleep(20ms);
  f.kill();
  EXPECT_EQ(f.get(), std::pair(EAI_SYSTEM, ECANCELED));
}

// --- errno, h_errno and the result storage --------------------------------------------------

TEST(ShimDnsTest, ErrnoIsPreservedOnSuccess) {
  auto noisy = fern::spawn([] {
    for (int i = 0; i < 5; ++i) {
      errno = EPIPE;  // another fiber's errno on the same thread
      fern::sleep(1ms);
    }
  });
  addrinfo* res = nullptr;
  errno = 4242;
  ASSERT_EQ(::getaddrinfo("fern-only.test", "80", nullptr, &res), 0);
  EXPECT_EQ(errno, 4242);
  ::freeaddrinfo(res);

  errno = 4343;
  ASSERT_EQ(::getaddrinfo(host_name(5).c_str(), nullptr, nullptr, &res), 0);
  EXPECT_EQ(errno, 4343);
  ::freeaddrinfo(res);

  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(80);
  ::inet_pton(AF_INET, "10.77.0.1", &a.sin_addr);
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  errno = 4444;
  ASSERT_EQ(::getnameinfo(reinterpret_cast<sockaddr*>(&a), sizeof a, host, sizeof host, serv,
                          sizeof serv, NI_NAMEREQD),
            0);
  EXPECT_STREQ(host, "fern-only.test");
  EXPECT_EQ(errno, 4444);

  errno = 4545;
  h_errno = 4646;
  hostent* he = ::gethostbyname(host_name(6).c_str());
  ASSERT_NE(he, nullptr);
  EXPECT_EQ(errno, 4545);
  EXPECT_EQ(h_errno, 4646);  // only failures set it

  hostent ret, *result = nullptr;
  char buf[1024];
  int herr = 4747;
  errno = 4848;
  ASSERT_EQ(::gethostbyname2_r("fern-only6.test", AF_INET6, &ret, buf, sizeof buf, &result, &herr),
            0);
  ASSERT_EQ(result, &ret);
  EXPECT_EQ(errno, 4848);
  EXPECT_EQ(herr, 4747);
  noisy.join();
}

TEST(ShimDnsTest, FailuresSetHErrnoAndReturnGlibcsValues) {
  h_errno = 0;
  EXPECT_EQ(::gethostbyname("nothing.invalid-tld"), nullptr);
  EXPECT_EQ(h_errno, HOST_NOT_FOUND);
  h_errno = 0;
  EXPECT_EQ(::gethostbyname2(host_name(8).c_str(), AF_INET6), nullptr);  // A only: NO_DATA
  EXPECT_EQ(h_errno, NO_DATA);

  hostent ret, *result = &ret;
  char buf[512];
  int herr = 0;
  EXPECT_EQ(::gethostbyname_r("nothing.invalid-tld", &ret, buf, sizeof buf, &result, &herr), 0);
  EXPECT_EQ(result, nullptr);
  EXPECT_EQ(herr, HOST_NOT_FOUND);

  unsigned char addr[4] = {10, 88, 0, 1};  // NXDOMAIN for its PTR name
  result = &ret;
  EXPECT_EQ(::gethostbyaddr_r(addr, 4, AF_INET, &ret, buf, sizeof buf, &result, &herr), 0);
  EXPECT_EQ(result, nullptr);
  EXPECT_EQ(herr, HOST_NOT_FOUND);

  addrinfo* res = nullptr;
  EXPECT_EQ(::getaddrinfo("nothing.invalid-tld", "80", nullptr, &res), EAI_NONAME);
  addrinfo hints = hints_of(AF_INET6, SOCK_STREAM);
  EXPECT_EQ(::getaddrinfo(host_name(8).c_str(), "80", &hints, &res), EAI_NODATA);
}

TEST(ShimDnsTest, EachFiberKeepsItsOwnGethostbynameResult) {
  // Fibers that park between gethostbyname and the use of its result (as a program connecting
  // to each address in turn does) do not overwrite each other's hostent.
  auto lookup = [](std::string name) {
    hostent* he = ::gethostbyname(name.c_str());
    fern::sleep(30ms);  // the other fiber's lookup completes meanwhile
    return he ? std::string(he->h_name) + " " + first_addr(he) : std::string("NULL");
  };
  auto a = fern::spawn(lookup, std::string("fern-only.test"));
  auto b = fern::spawn(lookup, std::string("fern-multi.test"));
  auto c = fern::spawn(lookup, host_name(9));
  EXPECT_EQ(a.get(), "fern-only.test 10.77.0.1");
  EXPECT_EQ(b.get(), "fern-multi.test 10.77.0.2");
  EXPECT_EQ(c.get(), host_name(9) + " " + slow_dns::expected(9));

  // Within a fiber, each function reuses its own storage, as glibc's do.
  hostent* x = ::gethostbyname("fern-only.test");
  hostent* y = ::gethostbyname("10.1.2.3");  // numeric: glibc's parse, fern's storage
  EXPECT_EQ(x, y);
  EXPECT_STREQ(y->h_name, "10.1.2.3");
  unsigned char addr[4] = {10, 77, 0, 1};
  hostent* z = ::gethostbyaddr(addr, 4, AF_INET);
  hostent* w = ::gethostbyname2("fern-multi.test", AF_INET);
  ASSERT_NE(z, nullptr);
  ASSERT_NE(w, nullptr);
  EXPECT_NE(z, x);
  EXPECT_NE(w, x);
  EXPECT_STREQ(z->h_name, "fern-only.test");
  EXPECT_STREQ(w->h_name, "fern-multi.test");
  EXPECT_STREQ(y->h_name, "10.1.2.3");
}

// --- the _r buffer contract and freeaddrinfo -------------------------------------------------

// Every pointer of he lies in [buf, buf + len), pointer arrays aligned.
bool inside(const hostent& he, const char* buf, std::size_t len) {
  auto in = [&](const void* p) {
    return static_cast<const char*>(p) >= buf && static_cast<const char*>(p) < buf + len;
  };
  auto aligned = [](const void* p) {
    return reinterpret_cast<std::uintptr_t>(p) % alignof(char*) == 0;
  };
  if (!in(he.h_name) || !in(he.h_aliases) || !in(he.h_addr_list) || !aligned(he.h_aliases) ||
      !aligned(he.h_addr_list))
    return false;
  for (char** a = he.h_aliases; *a; ++a)
    if (!in(a) || !in(*a) || !in(*a + std::strlen(*a))) return false;
  for (char** a = he.h_addr_list; *a; ++a)
    if (!in(a) || !in(*a) || !in(*a + he.h_length - 1)) return false;
  return true;
}

TEST(ShimDnsTest, GethostbynameRFillsTheBufferOrGivesErangeWithANullResult) {
  for (std::size_t offset : {0, 1, 3, 7}) {
    SCOPED_TRACE(offset);
    alignas(16) char big[600];
    char* buf = big + offset;
    std::size_t fit = 0;
    for (std::size_t len = 0; len <= 512 && !fit; ++len) {
      hostent ret{}, *result = reinterpret_cast<hostent*>(1);
      int herr = 0;
      errno = 0;
      int r = ::gethostbyname_r("fern-only.test", &ret, buf, len, &result, &herr);
      if (r == ERANGE) {
        EXPECT_EQ(result, nullptr);
        EXPECT_EQ(herr, NETDB_INTERNAL);
        EXPECT_EQ(errno, ERANGE);
        continue;
      }
      ASSERT_EQ(r, 0) << len;
      ASSERT_EQ(result, &ret);
      fit = len;
      EXPECT_TRUE(inside(ret, buf, len));
      EXPECT_STREQ(ret.h_name, "fern-only.test");
      ASSERT_NE(ret.h_aliases[0], nullptr);
      ASSERT_NE(ret.h_aliases[1], nullptr);
      EXPECT_STREQ(ret.h_aliases[0], "fern-alias1");
      EXPECT_STREQ(ret.h_aliases[1], "fern-alias2");
      EXPECT_EQ(ret.h_aliases[2], nullptr);
      EXPECT_EQ(ret.h_addrtype, AF_INET);
      EXPECT_EQ(ret.h_length, 4);
      EXPECT_EQ(first_addr(&ret), "10.77.0.1");
      EXPECT_EQ(ret.h_addr_list[1], nullptr);
    }
    // Pointers to 2 aliases and 1 address, two null ends, 4 address bytes, 3 strings.
    EXPECT_GE(fit, 5 * sizeof(char*) + 4 + 15 + 12 + 12);
    EXPECT_LT(fit, 5 * sizeof(char*) + 4 + 15 + 12 + 12 + alignof(char*));
  }

  hostent ret, *result = nullptr;
  char buf[512];
  int herr = 0;
  ASSERT_EQ(::gethostbyname2_r("fern-multi.test", AF_INET, &ret, buf, sizeof buf, &result, &herr),
            0);
  ASSERT_EQ(result, &ret);
  EXPECT_TRUE(inside(ret, buf, sizeof buf));
  ASSERT_NE(ret.h_addr_list[1], nullptr);
  char text[INET_ADDRSTRLEN];
  EXPECT_STREQ(::inet_ntop(AF_INET, ret.h_addr_list[1], text, sizeof text), "10.77.0.3");
  ASSERT_EQ(::gethostbyname2_r("fern-only6.test", AF_INET6, &ret, buf, sizeof buf, &result, &herr),
            0);
  EXPECT_EQ(ret.h_length, 16);
  EXPECT_EQ(first_addr(&ret), "fd00::77:1");

  unsigned char addr[4] = {10, 77, 0, 1};
  ASSERT_EQ(::gethostbyaddr_r(addr, 4, AF_INET, &ret, buf, sizeof buf, &result, &herr), 0);
  EXPECT_STREQ(ret.h_name, "fern-only.test");
  EXPECT_TRUE(inside(ret, buf, sizeof buf));
  EXPECT_EQ(::gethostbyaddr_r(addr, 4, AF_INET, &ret, buf, 8, &result, &herr), ERANGE);
  EXPECT_EQ(result, nullptr);
  EXPECT_EQ(herr, NETDB_INTERNAL);
}

TEST(ShimDnsTest, FernsListsAreFreedByGlibcsFreeaddrinfo) {
  // Each entry and its sockaddr in one malloc'ed block (checked with malloc_usable_size, which
  // ASan rejects for anything but the start of a heap block), the canonical name on the first
  // entry only. freeaddrinfo is glibc's; ASan and LSan check that it frees everything.
  auto glibc_free = libc_fn<decltype(::freeaddrinfo)>("freeaddrinfo");
  ASSERT_NE(glibc_free, nullptr);
  for (const char* name : {"fern-only.test", "fern-multi.test", "fern-only6.test", "h10.slow.test",
                           "127.0.0.1", "::1"}) {
    SCOPED_TRACE(name);
    addrinfo hints = hints_of(AF_UNSPEC, 0, AI_CANONNAME);
    addrinfo* res = nullptr;
    ASSERT_EQ(::getaddrinfo(name, "80", &hints, &res), 0);
    ASSERT_NE(res, nullptr);
    ASSERT_NE(res->ai_canonname, nullptr);
    EXPECT_GE(::malloc_usable_size(res->ai_canonname), std::strlen(res->ai_canonname) + 1);
    int entries = 0;
    for (addrinfo* ai = res; ai; ai = ai->ai_next, ++entries) {
      const char* block = reinterpret_cast<const char*>(ai);
      const char* sa = reinterpret_cast<const char*>(ai->ai_addr);
      EXPECT_GE(sa, block + sizeof(addrinfo));
      EXPECT_LE(sa + ai->ai_addrlen, block + ::malloc_usable_size(ai));
      if (ai != res) {
        EXPECT_EQ(ai->ai_canonname, nullptr);
      }
    }
    EXPECT_GE(entries, 3);  // stream, datagram, raw for each address
    if (entries % 2)
      ::freeaddrinfo(res);  // the hook
    else
      glibc_free(res);
  }
}

// --- which calls stay with glibc ------------------------------------------------------------

TEST(ShimDnsTest, AThreadWithoutAHubGetsGlibcsAnswers) {
  auto glibc_gai = libc_fn<decltype(::getaddrinfo)>("getaddrinfo");
  ASSERT_NE(glibc_gai, nullptr);
  ASSERT_NE(glibc_gai, &::getaddrinfo);
  std::vector<std::string> hooked, direct;
  std::string byname, libc_byname;
  bool had_hub = true;
  std::thread t([&] {
    addrinfo hints = hints_of(AF_INET, SOCK_STREAM);
    addrinfo* res = nullptr;
    if (::getaddrinfo("localhost", "80", &hints, &res) == 0) {
      hooked = texts(res);
      ::freeaddrinfo(res);
    }
    if (glibc_gai("localhost", "80", &hints, &res) == 0) {
      direct = texts(res);
      ::freeaddrinfo(res);
    }
    byname = first_addr(::gethostbyname("localhost"));
    auto glibc_ghbn = libc_fn<decltype(::gethostbyname)>("gethostbyname");
    libc_byname = first_addr(glibc_ghbn("localhost"));
    had_hub = fern::detail::hub_impl::peek() != nullptr;
  });
  t.join();
  EXPECT_FALSE(had_hub);
  ASSERT_FALSE(direct.empty());
  EXPECT_EQ(hooked, direct);
  EXPECT_NE(direct[0], "127.0.0.9:80/1");
  EXPECT_EQ(byname, libc_byname);

  // On this thread fern answers, from FERN_HOSTS_FILE.
  addrinfo hints = hints_of(AF_INET, SOCK_STREAM);
  addrinfo* res = nullptr;
  ASSERT_EQ(::getaddrinfo("localhost", "80", &hints, &res), 0);
  EXPECT_EQ(texts(res), std::vector<std::string>{"127.0.0.9:80/1"});
  ::freeaddrinfo(res);
  EXPECT_EQ(first_addr(::gethostbyname("localhost")), "127.0.0.9");
}

TEST(ShimDnsTest, NumericHostsAndArgumentErrorsNeverReachTheServer) {
  auto glibc_gai = libc_fn<decltype(::getaddrinfo)>("getaddrinfo");
  const int before = env().server.queries();
  struct call {
    const char* node;
    const char* serv;
    addrinfo hints;
  };
  const call calls[] = {
      {"127.0.0.1", "80", hints_of(AF_UNSPEC, 0)},
      {"::1", "http", hints_of(AF_UNSPEC, SOCK_STREAM, AI_CANONNAME)},
      {"10.1", nullptr, hints_of(AF_INET, 0)},
      {"1.2.3.4", "80", hints_of(AF_INET6, SOCK_STREAM, AI_V4MAPPED)},
      {"h1.slow.test", "80", hints_of(AF_UNSPEC, SOCK_STREAM, 0x10000)},    // EAI_BADFLAGS
      {"h1.slow.test", "nosuchservice", hints_of(AF_UNSPEC, SOCK_STREAM)},  // EAI_SERVICE
      {"h1.slow.test", "80", hints_of(99, SOCK_STREAM)},                    // EAI_FAMILY
      {"h1.slow.test", "80", hints_of(AF_UNSPEC, 99)},                      // EAI_SOCKTYPE
      {"h1.slow.test", "80", hints_of(AF_UNSPEC, SOCK_STREAM, AI_NUMERICHOST)},
      {nullptr, "80", hints_of(AF_UNSPEC, SOCK_STREAM, AI_PASSIVE)},
  };
  for (const call& c : calls) {
    SCOPED_TRACE(c.node ? c.node : "NULL");
    addrinfo *mine = nullptr, *theirs = nullptr;
    int r = ::getaddrinfo(c.node, c.serv, &c.hints, &mine);
    EXPECT_EQ(r, glibc_gai(c.node, c.serv, &c.hints, &theirs));
    if (r == 0) {
      EXPECT_EQ(texts(mine), texts(theirs));
      ::freeaddrinfo(mine);
      ::freeaddrinfo(theirs);
    }
  }
  EXPECT_EQ(env().server.queries(), before);
}

}  // namespace
