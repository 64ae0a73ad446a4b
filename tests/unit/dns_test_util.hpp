// Helpers for the DNS tests: a temporary directory, a real DNS server (Debian's dnsmasq) on a
// free loopback port, and two DNS servers of our own: one that answers A queries after a fixed
// delay (to show lookups overlap) and one that never answers. They run on plain OS threads with
// plain blocking calls, outside fern, so they keep answering whatever the hub under test does.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

extern char** environ;

namespace fern_test {

// A fresh directory, removed with everything in it.
struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/fern-dns-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::system_error(errno, std::generic_category(), "mkdtemp");
    path = tmpl;
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
  // Writes `text` to path/name and returns the full path.
  std::string write(const std::string& name, const std::string& text) const {
    std::string p = path + "/" + name;
    std::ofstream(p, std::ios::trunc) << text;
    return p;
  }
};

// A loopback port free for both UDP and TCP at the time of the call.
inline int free_port() {
  for (int tries = 0; tries < 100; ++tries) {
    int u = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(u, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(u, reinterpret_cast<sockaddr*>(&a), &len);
    int t = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = ::bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(t);
    ::close(u);
    if (ok) return ntohs(a.sin_port);
  }
  throw std::runtime_error("no free port");
}

// --- DNS wire format (just enough for the tests' servers) -------------------------------------

struct dns_question {
  std::uint16_t id = 0;
  std::string name;  // dotted, lower case, no trailing dot
  std::uint16_t type = 0;
  std::size_t end = 0;  // offset just past the question
};

inline bool parse_question(const unsigned char* p, std::size_t n, dns_question* q) {
  if (n < 12) return false;
  q->id = static_cast<std::uint16_t>(p[0] << 8 | p[1]);
  std::size_t i = 12;
  q->name.clear();
  while (i < n && p[i] != 0) {
    std::size_t len = p[i++];
    if (i + len > n) return false;
    if (!q->name.empty()) q->name += '.';
    for (std::size_t k = 0; k < len; ++k) q->name += static_cast<char>(std::tolower(p[i + k]));
    i += len;
  }
  if (i + 5 > n) return false;
  ++i;
  q->type = static_cast<std::uint16_t>(p[i] << 8 | p[i + 1]);
  q->end = i + 4;
  return true;
}

// A response to the query in `req`: NOERROR with one A record (if `a` is given) or none.
inline std::vector<unsigned char> make_response(const unsigned char* req, const dns_question& q,
                                                const in_addr* a) {
  std::vector<unsigned char> r(req, req + q.end);
  r[2] = 0x84 | (req[2] & 0x01);  // QR, AA, RD copied
  r[3] = 0x80;                    // RA, NOERROR
  r[6] = 0;
  r[7] = a ? 1 : 0;
  r[8] = r[9] = r[10] = r[11] = 0;
  if (a) {
    const unsigned char rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4};
    r.insert(r.end(), rr, rr + sizeof rr);
    const auto* b = reinterpret_cast<const unsigned char*>(a);
    r.insert(r.end(), b, b + 4);
  }
  return r;
}

// The address the slow responder gives "h<N>.slow.test": 10.0.N/256.N%256.
inline std::string slow_address(int n) {
  return "10." + std::to_string((n >> 16) & 0xff) + "." + std::to_string((n >> 8) & 0xff) + "." +
         std::to_string(n & 0xff);
}

// A UDP DNS server on 127.0.0.1 that answers every A query for "h<N>.slow.test" after `delay`
// (other names and types: NOERROR, no records, after the same delay). With answer == false it
// never answers at all (an unresponsive server). Runs on its own thread until destroyed.
class udp_responder {
 public:
  explicit udp_responder(std::chrono::milliseconds delay, bool answer = true)
      : delay_(delay), answer_(answer) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int size = 4 << 20;  // a thousand queries arrive at once
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      throw std::system_error(errno, std::generic_category(), "bind");
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~udp_responder() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
  // Queries received so far.
  int queries() const { return queries_.load(); }

 private:
  struct pending {
    std::chrono::steady_clock::time_point due;
    std::vector<unsigned char> reply;
    sockaddr_in to;
  };

  void run() {
    std::deque<pending> q;
    unsigned char buf[1500];
    while (!stop_) {
      auto now = std::chrono::steady_clock::now();
      while (!q.empty() && q.front().due <= now) {
        const pending& p = q.front();
        ::sendto(fd_, p.reply.data(), p.reply.size(), 0, reinterpret_cast<const sockaddr*>(&p.to),
                 sizeof p.to);
        q.pop_front();
      }
      int wait_ms = 20;
      if (!q.empty()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(q.front().due - now);
        wait_ms = static_cast<int>(std::max<long long>(0, std::min<long long>(20, left.count())));
      }
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, wait_ms) <= 0) continue;
      for (;;) {
        sockaddr_in from{};
        socklen_t flen = sizeof from;
        ssize_t n = ::recvfrom(fd_, buf, sizeof buf, MSG_DONTWAIT,
                               reinterpret_cast<sockaddr*>(&from), &flen);
        if (n <= 0) break;
        ++queries_;
        dns_question qu;
        if (!answer_ || !parse_question(buf, static_cast<std::size_t>(n), &qu)) continue;
        in_addr a{};
        bool have = false;
        if (qu.type == 1 && qu.name.starts_with("h") && qu.name.ends_with(".slow.test")) {
          int num = std::atoi(qu.name.c_str() + 1);
          have = ::inet_pton(AF_INET, slow_address(num).c_str(), &a) == 1;
        }
        q.push_back({std::chrono::steady_clock::now() + delay_,
                     make_response(buf, qu, have ? &a : nullptr), from});
      }
    }
  }

  std::chrono::milliseconds delay_;
  bool answer_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> queries_{0};
  std::thread thread_;
};

// dnsmasq on 127.0.0.1:<free port>, answering only from its command line (--host-record,
// --cname, --address...; names under --local domains it does not know are NXDOMAIN). Started
// in the constructor, which waits until it answers; killed in the destructor.
class dnsmasq {
 public:
  explicit dnsmasq(const std::vector<std::string>& records) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_port();
      std::vector<std::string> args = {"/usr/sbin/dnsmasq",
                                       "--keep-in-foreground",
                                       "--no-hosts",
                                       "--no-resolv",
                                       "--no-poll",
                                       "--port=" + std::to_string(port_),
                                       "--listen-address=127.0.0.1",
                                       "--bind-interfaces",
                                       "--pid-file=",
                                       "--conf-file=/dev/null",
                                       "--cache-size=0",
                                       "--host-record=ready.test,127.0.0.1"};
      if (::geteuid() == 0) args.push_back("--user=root");
      args.insert(args.end(), records.begin(), records.end());
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
      int rc = ::posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
      posix_spawn_file_actions_destroy(&fa);
      if (rc != 0) throw std::system_error(rc, std::generic_category(), "posix_spawn dnsmasq");
      if (wait_ready()) return;
      stop();  // the port was taken meanwhile: try another
    }
    throw std::runtime_error("dnsmasq did not start");
  }
  ~dnsmasq() { stop(); }
  int port() const { return port_; }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  bool wait_ready() {
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(port_));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // A query for ready.test A.
    const unsigned char query[] = {0x12, 0x34, 1,   0,   0, 1,   0,   0,   0,   0, 0, 0, 5, 'r',
                                   'e',  'a',  'd', 'y', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1};
    bool ok = false;
    for (int i = 0; i < 100 && !ok; ++i) {
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      ::sendto(fd, query, sizeof query, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
      pollfd pfd{fd, POLLIN, 0};
      if (::poll(&pfd, 1, 50) > 0) {
        unsigned char buf[512];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        ok = n >= 12 && buf[0] == 0x12 && buf[1] == 0x34;
      }
    }
    ::close(fd);
    return ok;
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace fern_test
