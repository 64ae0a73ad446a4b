// Cooperative sockets (net.hpp): every call first tries the non-blocking system call and parks
// on the hub (wait_readable / wait_writable) only on EAGAIN, as Go's netpoller and gevent do, so
// a call that can complete at once costs one system call and never reads the clock. System calls
// go through fern::sys (sys_net.hpp), never through libc's interposable names.
#include "fern/net.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "fern/errors.hpp"
#include "fern/fiber.hpp"
#include "fern/io.hpp"
#include "sys_net.hpp"

namespace fern {

namespace {

using std::chrono::nanoseconds;

[[noreturn]] void throw_errno(int e, const char* what) {
  throw std::system_error(e, std::generic_category(), what);
}

[[noreturn]] void bad_address(std::string_view text, const char* why) {
  throw std::invalid_argument("fern::address: " + std::string(why) + ": \"" + std::string(text) +
                              "\"");
}

// One call's time limit: its own timeout, else the socket's default. The deadline is fixed at
// the first wait, so a call that never waits never reads the clock; later waits of the same call
// (read_exactly, write_all, connect retries) share it.
class call_limit {
 public:
  explicit call_limit(const opt_timeout& t) noexcept : timeout_(t) {}

  // Parks until fd is ready in one direction. Throws fern::timeout_error once the limit has
  // passed; otherwise whatever wait_readable/wait_writable throws.
  void wait(int fd, bool read) {
    opt_timeout left = remaining();
    bool ready = read ? fern::wait_readable(fd, left) : fern::wait_writable(fd, left);
    if (!ready) throw timeout_error();
  }

  // Sleeps for d, or until the limit, whichever is first; throws fern::timeout_error if the
  // limit had already passed.
  void sleep(nanoseconds d) {
    opt_timeout left = remaining();
    if (left && left->count() <= 0) throw timeout_error();
    fern::sleep(left ? std::min(d, *left) : d);
  }

 private:
  opt_timeout remaining() {
    if (!timeout_) return std::nullopt;
    if (deadline_ == unset) {
      deadline_ = detail::deadline_after(*timeout_);
      return *timeout_;
    }
    return nanoseconds(std::max<detail::deadline_t>(0, deadline_ - detail::now_ns()));
  }

  static constexpr detail::deadline_t unset = INT64_MIN;
  opt_timeout timeout_;
  detail::deadline_t deadline_ = unset;
};

bool all_digits(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::uint16_t parse_port(std::string_view text, std::string_view port) {
  unsigned v = 0;
  if (!all_digits(port) || port.size() > 5) bad_address(text, "bad port");
  std::from_chars(port.data(), port.data() + port.size(), v);
  if (v > 65535) bad_address(text, "port out of range");
  return static_cast<std::uint16_t>(v);
}

constexpr socklen_t sun_path_offset = offsetof(sockaddr_un, sun_path);
constexpr std::size_t sun_path_max = sizeof(sockaddr_un{}.sun_path);  // 108 on Linux

}  // namespace

// --- address --------------------------------------------------------------------------------

address::address() noexcept : storage_{}, len_(0) {
  storage_.ss_family = AF_UNSPEC;
}

address::address(const sockaddr* sa, socklen_t len) : storage_{}, len_(len) {
  if (len > sizeof storage_) throw std::invalid_argument("fern::address: sockaddr too long");
  if (len < sizeof(sa_family_t)) {  // nothing, not even a family (an unnamed socketpair end)
    storage_.ss_family = AF_UNSPEC;
    len_ = 0;
    return;
  }
  std::memcpy(&storage_, sa, len);
}

address address::ip(std::string_view host, std::uint16_t port) {
  address a;
  std::string h(host);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
  if (::inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.len_ = sizeof(sockaddr_in);
    return a;
  }
  a.storage_ = {};
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
  std::string zone;
  if (auto pct = h.find('%'); pct != std::string::npos) {
    zone = h.substr(pct + 1);
    h.resize(pct);
    if (zone.empty()) bad_address(host, "empty IPv6 zone");
  }
  if (::inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) != 1)
    bad_address(host, "not a numeric IPv4 or IPv6 address");
  if (!zone.empty()) {
    unsigned idx = 0;
    if (all_digits(zone)) {
      auto [p, ec] = std::from_chars(zone.data(), zone.data() + zone.size(), idx);
      if (ec != std::errc()) bad_address(host, "bad IPv6 zone index");
    } else {
      idx = ::if_nametoindex(zone.c_str());
      if (idx == 0) bad_address(host, "unknown network interface in IPv6 zone");
    }
    v6->sin6_scope_id = idx;
  }
  v6->sin6_family = AF_INET6;
  v6->sin6_port = htons(port);
  a.len_ = sizeof(sockaddr_in6);
  return a;
}

address address::unix_path(std::string_view path) {
  if (path.empty()) throw std::invalid_argument("fern::address: empty Unix socket path");
  if (path.size() >= sun_path_max || path.find('\0') != std::string_view::npos)
    bad_address(path, "Unix socket path too long or contains NUL");
  address a;
  auto* un = reinterpret_cast<sockaddr_un*>(&a.storage_);
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.data(), path.size());
  a.len_ = static_cast<socklen_t>(sun_path_offset + path.size() + 1);  // with the NUL, as the
                                                                       // kernel reports it
  return a;
}

address address::unix_abstract(std::string_view name) {
  if (name.size() >= sun_path_max) bad_address(name, "abstract Unix socket name too long");
  address a;
  auto* un = reinterpret_cast<sockaddr_un*>(&a.storage_);
  un->sun_family = AF_UNIX;
  un->sun_path[0] = '\0';
  std::memcpy(un->sun_path + 1, name.data(), name.size());
  a.len_ = static_cast<socklen_t>(sun_path_offset + 1 + name.size());
  return a;
}

address address::parse(std::string_view text) {
  if (text.starts_with("unix:")) {
    std::string_view rest = text.substr(5);
    if (rest.empty()) {  // unnamed, as to_string() prints it
      address a;
      a.storage_.ss_family = AF_UNIX;
      a.len_ = sizeof(sa_family_t);
      return a;
    }
    if (rest.front() == '@') return unix_abstract(rest.substr(1));
    return unix_path(rest);
  }
  if (text.starts_with('[')) {
    auto close = text.find(']');
    if (close == std::string_view::npos) bad_address(text, "missing ']'");
    if (close + 1 >= text.size() || text[close + 1] != ':') bad_address(text, "missing port");
    std::string_view host = text.substr(1, close - 1);
    address a = ip(host, parse_port(text, text.substr(close + 2)));
    if (a.family() != AF_INET6) bad_address(text, "brackets hold an IPv6 address");
    return a;
  }
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) bad_address(text, "missing port (host:port)");
  std::string_view host = text.substr(0, colon);
  std::uint16_t port = parse_port(text, text.substr(colon + 1));
  if (host.empty()) return ip("0.0.0.0", port);
  if (host.find(':') != std::string_view::npos)
    bad_address(text, "an IPv6 address needs brackets: [::1]:80");
  address a = ip(host, port);
  if (a.family() != AF_INET) bad_address(text, "not a numeric IPv4 address");
  return a;
}

int address::family() const noexcept {
  return storage_.ss_family;
}

bool address::is_ip() const noexcept {
  return family() == AF_INET || family() == AF_INET6;
}

bool address::is_unix() const noexcept {
  return family() == AF_UNIX;
}

std::uint16_t address::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

address address::with_port(std::uint16_t port) const {
  address a = *this;
  if (family() == AF_INET)
    reinterpret_cast<sockaddr_in*>(&a.storage_)->sin_port = htons(port);
  else if (family() == AF_INET6)
    reinterpret_cast<sockaddr_in6*>(&a.storage_)->sin6_port = htons(port);
  else
    throw std::invalid_argument("fern::address::with_port: not an IP address");
  return a;
}

std::string address::host() const {
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2] = {};
  switch (family()) {
    case AF_INET:
      ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf,
                  sizeof buf);
      return buf;
    case AF_INET6: {
      const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
      ::inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
      std::string s = buf;
      if (v6->sin6_scope_id != 0) {
        char name[IF_NAMESIZE] = {};
        s += '%';
        s += ::if_indextoname(v6->sin6_scope_id, name) ? std::string(name)
                                                       : std::to_string(v6->sin6_scope_id);
      }
      return s;
    }
    case AF_UNIX: {
      if (len_ <= sun_path_offset) return "";  // unnamed
      const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
      std::size_t n = len_ - sun_path_offset;
      if (un->sun_path[0] == '\0') {
        std::string s(1, '@');
        s.append(un->sun_path + 1, n - 1);
        return s;
      }
      return std::string(un->sun_path, strnlen(un->sun_path, n));
    }
    default:
      return "";
  }
}

std::string address::to_string() const {
  // Appended piece by piece: g++ 12 warns (-Wrestrict, a false positive) on "literal" + string&&.
  std::string s;
  switch (family()) {
    case AF_INET:
      s = host();
      s += ':';
      s += std::to_string(port());
      break;
    case AF_INET6:
      s = '[';
      s += host();
      s += "]:";
      s += std::to_string(port());
      break;
    case AF_UNIX:
      s = "unix:";
      s += host();
      break;
    case AF_UNSPEC:
      break;
    default:
      s = "family-";
      s += std::to_string(family());
      break;
  }
  return s;
}

bool operator==(const address& a, const address& b) noexcept {
  if (a.family() != b.family()) return false;
  switch (a.family()) {
    case AF_INET: {
      const auto* x = reinterpret_cast<const sockaddr_in*>(&a.storage_);
      const auto* y = reinterpret_cast<const sockaddr_in*>(&b.storage_);
      return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    case AF_INET6: {
      const auto* x = reinterpret_cast<const sockaddr_in6*>(&a.storage_);
      const auto* y = reinterpret_cast<const sockaddr_in6*>(&b.storage_);
      return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
             std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    case AF_UNSPEC:
      return true;
    default:
      return a.len_ == b.len_ && std::memcmp(&a.storage_, &b.storage_, a.len_) == 0;
  }
}

// --- socket: life cycle ---------------------------------------------------------------------

socket::socket(int family, int type, int protocol) {
  fd_ = sys::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd_ < 0) throw_errno(errno, "fern::socket");
}

socket socket::adopt(int fd) {
  int flags = sys::fcntl(fd, F_GETFL, 0);
  if (flags < 0) throw_errno(errno, "fern::socket::adopt");
  if (!(flags & O_NONBLOCK) && sys::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    throw_errno(errno, "fern::socket::adopt");
  return socket(fd, nullptr);
}

socket::socket(socket&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      read_timeout_(o.read_timeout_),
      write_timeout_(o.write_timeout_) {}

socket& socket::operator=(socket&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) {
      try {
        fern::close(std::exchange(fd_, -1));
      } catch (const std::system_error&) {  // the fd is closed anyway (Linux)
      }
    }
    fd_ = std::exchange(o.fd_, -1);
    read_timeout_ = o.read_timeout_;
    write_timeout_ = o.write_timeout_;
  }
  return *this;
}

socket::~socket() {
  if (fd_ >= 0) {
    try {
      fern::close(fd_);
    } catch (const std::system_error&) {  // the fd is closed anyway (Linux)
    }
  }
}

void socket::close() {
  if (fd_ >= 0) fern::close(std::exchange(fd_, -1));
}

// --- socket: set-up -------------------------------------------------------------------------

void socket::connect(const address& to, opt_timeout timeout) {
  call_limit limit(timeout ? timeout : write_timeout_);
  if (sys::connect(fd_, to.data(), to.size()) == 0) return;
  int e = errno;
  if (e == EAGAIN && to.is_unix()) {
    // A Unix listener's backlog is full. The kernel offers no readiness for "a slot freed", so
    // retry on a short, doubling sleep (never a spin) until the limit.
    for (nanoseconds delay = std::chrono::milliseconds(1);;) {
      limit.sleep(delay);
      if (sys::connect(fd_, to.data(), to.size()) == 0) return;
      if (errno != EAGAIN) throw_errno(errno, "fern::socket::connect");
      delay = std::min<nanoseconds>(delay * 2, std::chrono::milliseconds(64));
    }
  }
  if (e != EINPROGRESS && e != EINTR) throw_errno(e, "fern::socket::connect");
  for (;;) {
    limit.wait(fd_, false);
    int err = get_option(SOL_SOCKET, SO_ERROR);
    if (err == EINPROGRESS || err == EALREADY || err == EINTR) continue;
    if (err != 0) throw_errno(err, "fern::socket::connect");
    // SO_ERROR is 0 both when connected and while still connecting (a spurious wake-up):
    // getpeername tells them apart, as Go's netpoller does.
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (sys::getpeername(fd_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) return;
    if (errno != ENOTCONN) throw_errno(errno, "fern::socket::connect");
  }
}

void socket::bind(const address& local) {
  if (sys::bind(fd_, local.data(), local.size()) < 0) throw_errno(errno, "fern::socket::bind");
}

void socket::shutdown(int how) {
  if (sys::shutdown(fd_, how) < 0) throw_errno(errno, "fern::socket::shutdown");
}

// --- socket: I/O ----------------------------------------------------------------------------

std::size_t socket::read(void* buf, std::size_t n, opt_timeout timeout) {
  if (n == 0) return 0;
  call_limit limit(timeout ? timeout : read_timeout_);
  for (;;) {
    ssize_t r = sys::recvfrom(fd_, buf, n, 0, nullptr, nullptr);
    if (r >= 0) return static_cast<std::size_t>(r);
    if (errno == EINTR) continue;
    if (errno != EAGAIN) throw_errno(errno, "fern::socket::read");
    limit.wait(fd_, true);
  }
}

std::size_t socket::write(const void* buf, std::size_t n, opt_timeout timeout) {
  if (n == 0) return 0;
  call_limit limit(timeout ? timeout : write_timeout_);
  for (;;) {
    ssize_t r = sys::sendto(fd_, buf, n, MSG_NOSIGNAL, nullptr, 0);
    if (r >= 0) return static_cast<std::size_t>(r);
    if (errno == EINTR) continue;
    if (errno != EAGAIN) throw_errno(errno, "fern::socket::write");
    limit.wait(fd_, false);
  }
}

std::size_t socket::readv(const iovec* iov, int iovcnt, opt_timeout timeout) {
  call_limit limit(timeout ? timeout : read_timeout_);
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = static_cast<std::size_t>(iovcnt);
  for (;;) {
    ssize_t r = sys::recvmsg(fd_, &msg, 0);
    if (r >= 0) return static_cast<std::size_t>(r);
    if (errno == EINTR) continue;
    if (errno != EAGAIN) throw_errno(errno, "fern::socket::readv");
    limit.wait(fd_, true);
  }
}

std::size_t socket::writev(const iovec* iov, int iovcnt, opt_timeout timeout) {
  call_limit limit(timeout ? timeout : write_timeout_);
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = static_cast<std::size_t>(iovcnt);
  for (;;) {
    ssize_t r = sys::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (r >= 0) return static_cast<std::size_t>(r);
    if (errno == EINTR) continue;
    if (errno != EAGAIN) throw_errno(errno, "fern::socket::writev");
    limit.wait(fd_, false);
  }
}

void socket::read_exactly(void* buf, std::size_t n, opt_timeout timeout) {
  call_limit limit(timeout ? timeout : read_timeout_);
  auto* p = static_cast<char*>(buf);
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = sys::recvfrom(fd_, p + got, n - got, 0, nullptr, nullptr);
    if (r > 0) {
      got += static_cast<std::size_t>(r);
    } else if (r == 0) {
      throw eof_error(got);
    } else if (errno == EAGAIN) {
      limit.wait(fd_, true);
    } else if (errno != EINTR) {
      throw_errno(errno, "fern::socket::read_exactly");
    }
  }
}

void socket::write_all(const void* buf, std::size_t n, opt_timeout timeout) {
  call_limit limit(timeout ? timeout : write_timeout_);
  const auto* p = static_cast<const char*>(buf);
  std::size_t done = 0;
  while (done < n) {
    ssize_t r = sys::sendto(fd_, p + done, n - done, MSG_NOSIGNAL, nullptr, 0);
    if (r >= 0) {
      done += static_cast<std::size_t>(r);
    } else if (errno == EAGAIN) {
      limit.wait(fd_, false);
    } else if (errno != EINTR) {
      throw_errno(errno, "fern::socket::write_all");
    }
  }
}

bool socket::wait_readable(opt_timeout timeout) {
  return fern::wait_readable(fd_, timeout ? timeout : read_timeout_);
}

bool socket::wait_writable(opt_timeout timeout) {
  return fern::wait_writable(fd_, timeout ? timeout : write_timeout_);
}

std::size_t socket::send_to(const void* buf, std::size_t n, const address& to,
                            opt_timeout timeout) {
  call_limit limit(timeout ? timeout : write_timeout_);
  for (;;) {
    ssize_t r = sys::sendto(fd_, buf, n, MSG_NOSIGNAL, to.data(), to.size());
    if (r >= 0) return static_cast<std::size_t>(r);
    if (errno == EINTR) continue;
    if (errno != EAGAIN) throw_errno(errno, "fern::socket::send_to");
    limit.wait(fd_, false);
  }
}

received socket::recv_from(void* buf, std::size_t n, opt_timeout timeout) {
  call_limit limit(timeout ? timeout : read_timeout_);
  for (;;) {
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    ssize_t r = sys::recvfrom(fd_, buf, n, 0, reinterpret_cast<sockaddr*>(&ss), &len);
    if (r >= 0)
      return {static_cast<std::size_t>(r), address(reinterpret_cast<sockaddr*>(&ss), len)};
    if (errno == EINTR) continue;
    if (errno != EAGAIN) throw_errno(errno, "fern::socket::recv_from");
    limit.wait(fd_, true);
  }
}

// --- socket: options and names --------------------------------------------------------------

void socket::set_option(int level, int name, int value) {
  set_option(level, name, &value, sizeof value);
}

void socket::set_option(int level, int name, const void* value, socklen_t len) {
  if (sys::setsockopt(fd_, level, name, value, len) < 0)
    throw_errno(errno, "fern::socket::set_option");
}

int socket::get_option(int level, int name) const {
  int v = 0;
  socklen_t len = sizeof v;
  if (sys::getsockopt(fd_, level, name, &v, &len) < 0)
    throw_errno(errno, "fern::socket::get_option");
  return v;
}

void socket::set_nodelay(bool on) {
  set_option(IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0);
}

void socket::set_keepalive(bool on) {
  set_option(SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0);
}

address socket::local_address() const {
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (sys::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) < 0)
    throw_errno(errno, "fern::socket::local_address");
  return address(reinterpret_cast<sockaddr*>(&ss), len);
}

address socket::peer_address() const {
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (sys::getpeername(fd_, reinterpret_cast<sockaddr*>(&ss), &len) < 0)
    throw_errno(errno, "fern::socket::peer_address");
  return address(reinterpret_cast<sockaddr*>(&ss), len);
}

// --- listener -------------------------------------------------------------------------------

listener::listener(const address& local, listen_options opts) : sock_(local.family(), SOCK_STREAM) {
  if (local.is_ip()) sock_.set_option(SOL_SOCKET, SO_REUSEADDR, 1);
  if (opts.reuse_port) sock_.set_option(SOL_SOCKET, SO_REUSEPORT, 1);
  sock_.bind(local);
  std::string path = local.is_unix() ? local.host() : std::string();
  if (sys::listen(sock_.fd(), opts.backlog) < 0) {
    int e = errno;
    if (!path.empty() && path[0] != '@') ::unlink(path.c_str());
    throw_errno(e, "fern::listener");
  }
  if (opts.unlink_on_close && !path.empty() && path[0] != '@') unlink_path_ = std::move(path);
}

listener::listener(listener&& o) noexcept
    : sock_(std::move(o.sock_)), unlink_path_(std::move(o.unlink_path_)) {
  o.unlink_path_.clear();
}

listener& listener::operator=(listener&& o) noexcept {
  if (this != &o) {
    try {
      close();
    } catch (const std::system_error&) {
    }
    sock_ = std::move(o.sock_);
    unlink_path_ = std::move(o.unlink_path_);
    o.unlink_path_.clear();
  }
  return *this;
}

listener::~listener() {
  try {
    close();
  } catch (const std::system_error&) {
  }
}

void listener::close() {
  if (!unlink_path_.empty() && sock_.valid()) {
    ::unlink(unlink_path_.c_str());
    unlink_path_.clear();
  }
  sock_.close();
}

accepted listener::accept(opt_timeout timeout) {
  call_limit limit(timeout ? timeout : sock_.read_timeout_);
  for (;;) {
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = sys::accept4(sock_.fd_, reinterpret_cast<sockaddr*>(&ss), &len,
                          SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return {socket(fd, nullptr), address(reinterpret_cast<sockaddr*>(&ss), len)};
    switch (errno) {
      case EAGAIN:
        limit.wait(sock_.fd_, true);
        break;
      // The connection died while queued, or a signal: take the next one. Linux also passes a
      // queued connection's pending network error to accept (accept(2), "Error handling"); each
      // of these consumes that connection, so retrying cannot spin.
      case EINTR:
      case ECONNABORTED:
      case EPROTO:
      case ENETDOWN:
      case ENONET:
      case EHOSTDOWN:
      case EHOSTUNREACH:
      case ENETUNREACH:
        break;
      default:
        throw_errno(errno, "fern::listener::accept");
    }
  }
}

// --- helpers --------------------------------------------------------------------------------

socket create_connection(const address& to, opt_timeout timeout) {
  socket s(to.family(), SOCK_STREAM);
  s.connect(to, timeout);
  return s;
}

socket bind_datagram(const address& local) {
  socket s(local.family(), SOCK_DGRAM);
  s.bind(local);
  return s;
}

std::pair<socket, socket> socketpair(int type) {
  int sv[2];
  if (sys::socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
    throw_errno(errno, "fern::socketpair");
  return {socket(sv[0], nullptr), socket(sv[1], nullptr)};
}

}  // namespace fern
