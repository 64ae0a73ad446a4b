// Cooperative sockets: addresses, stream and datagram sockets, listeners (TCP, UDP, Unix). A
// call that would block parks the calling fiber on the hub, so code written in the plain blocking
// style serves thousands of connections on one thread, as gevent's socket module does.
//
//   fern::socket conn = fern::create_connection(fern::address::parse("127.0.0.1:7"), 1s);
//   conn.write_all("ping\n");
//   char buf[64];
//   std::size_t n = conn.read(buf, sizeof buf);  // 0 at EOF
//
// Every blocking call takes an optional timeout (after which it throws fern::timeout_error, with
// source() == nullptr), falls back to the socket's default timeout (set_timeout), and honours the
// enclosing fern::timeout scope and kill(). Timeouts, scopes and kills act where the call would
// wait: a call that can complete at once does (a zero timeout means "only if it needn't wait").
// System errors are std::system_error carrying the real errno (generic_category:
// e.code() == std::errc::connection_reset works). Numeric addresses only: name resolution is
// fern::resolve's job. Sockets belong to the hub of the thread that uses them.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace fern {

using opt_timeout = std::optional<std::chrono::nanoseconds>;

// A socket address: IPv4, IPv6 (with an optional zone) or Unix (a path, an abstract name, or
// unnamed). A value type; copying it copies at most a sockaddr_storage. Never blocks.
class address {
 public:
  // The empty address: family() == AF_UNSPEC.
  address() noexcept;
  // Copies a sockaddr as the kernel gives it (accept, recvfrom, getsockname). Throws
  // std::invalid_argument if len exceeds sizeof(sockaddr_storage).
  address(const sockaddr* sa, socklen_t len);

  // Parses the textual forms to_string() produces:
  //   "127.0.0.1:8080"      IPv4 and port
  //   ":8080"               the IPv4 wildcard 0.0.0.0 and port
  //   "[::1]:80"            IPv6 and port; "[fe80::1%eth0]:80" with a zone (name or index)
  //   "unix:/run/app.sock"  a Unix socket path (at most 107 bytes)
  //   "unix:@name"          a Linux abstract Unix socket
  // Hosts are numeric: no DNS. Throws std::invalid_argument naming the text.
  static address parse(std::string_view text);
  // A numeric IPv4 or IPv6 host (no brackets; IPv6 may carry "%zone") and a port. Throws
  // std::invalid_argument.
  static address ip(std::string_view host, std::uint16_t port);
  // A Unix socket path. Throws std::invalid_argument if empty or longer than 107 bytes.
  static address unix_path(std::string_view path);
  // A Linux abstract Unix socket name (no file; gone when the last socket closes). Throws
  // std::invalid_argument if longer than 107 bytes.
  static address unix_abstract(std::string_view name);

  int family() const noexcept;
  bool empty() const noexcept { return family() == AF_UNSPEC; }
  bool is_ip() const noexcept;
  bool is_unix() const noexcept;
  // The port of an IP address, 0 otherwise.
  std::uint16_t port() const noexcept;
  // The same IP address with another port; throws std::invalid_argument if not IP.
  address with_port(std::uint16_t port) const;
  // The host part: "127.0.0.1", "::1", "fe80::1%eth0"; the path or "@name" for Unix.
  std::string host() const;
  // "127.0.0.1:8080", "[::1]:80", "unix:/path", "unix:@name", "unix:" (unnamed), "" (empty).
  // parse(to_string()) gives an equal address back.
  std::string to_string() const;

  // For the socket system calls.
  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return len_; }

  friend bool operator==(const address& a, const address& b) noexcept;

 private:
  sockaddr_storage storage_;
  socklen_t len_;
};

// What recv_from() returns: the datagram's size and its sender.
struct received {
  std::size_t size;
  address from;
};

// A socket: owns one fd, always in O_NONBLOCK and O_CLOEXEC mode; blocking calls park the
// fiber instead. Move-only. Destroying or close()-ing it closes the fd through fern::close, so a
// fiber blocked on it wakes with std::system_error(EBADF).
//
// One fiber may read and another write at the same time; a second fiber that would wait to read
// (or to write) while one already does gets fern::concurrent_use_error, as two readers on one
// stream are always a bug.
class socket {
 public:
  // An empty socket (valid() == false).
  socket() noexcept = default;
  // A new socket (socket(2) with SOCK_NONBLOCK | SOCK_CLOEXEC added to type). Throws
  // std::system_error.
  socket(int family, int type, int protocol = 0);
  // Takes ownership of an open socket fd and puts it in O_NONBLOCK mode (which every other
  // holder of the same open file description then sees too). Throws std::system_error (fd is
  // then not owned).
  static socket adopt(int fd);

  socket(socket&& o) noexcept;
  socket& operator=(socket&& o) noexcept;
  socket(const socket&) = delete;
  socket& operator=(const socket&) = delete;
  // Closes the fd (errors ignored).
  ~socket();

  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }
  int fd() const noexcept { return fd_; }
  // Gives up ownership: returns the fd (still O_NONBLOCK; close it with fern::close) and leaves
  // this socket empty.
  int release() noexcept { return std::exchange(fd_, -1); }
  // Closes now (fern::close: waiters wake with EBADF); does nothing if empty. Never blocks.
  // Throws std::system_error if close(2) fails.
  void close();

  // --- default timeouts -------------------------------------------------------------------
  // A limit for every later blocking call that does not pass its own timeout, as Python's
  // settimeout: each call may wait that long in total. nullopt (the default) waits forever.
  // set_timeout sets both directions; reads and accepts use the read timeout, writes and
  // connects the write timeout. For one absolute deadline over many calls, use a fern::timeout
  // scope. Never blocks.
  void set_timeout(opt_timeout t) noexcept { read_timeout_ = write_timeout_ = t; }
  void set_read_timeout(opt_timeout t) noexcept { read_timeout_ = t; }
  void set_write_timeout(opt_timeout t) noexcept { write_timeout_ = t; }
  opt_timeout read_timeout() const noexcept { return read_timeout_; }
  opt_timeout write_timeout() const noexcept { return write_timeout_; }

  // --- connection set-up ------------------------------------------------------------------
  // Connects to `to`. Blocking point: waits for the handshake up to the timeout. Throws
  // std::system_error (ECONNREFUSED, ENETUNREACH, ETIMEDOUT from the kernel's own retries...),
  // fern::timeout_error when the timeout passes (the socket is then unusable: close it). A Unix
  // listener whose backlog is full is retried (sleeping 1 ms, doubling to 64 ms) until the
  // timeout.
  void connect(const address& to, opt_timeout timeout = {});
  // Binds to a local address. Never blocks. Throws std::system_error.
  void bind(const address& local);
  // Shuts down reading (SHUT_RD), writing (SHUT_WR: the peer reads EOF) or both (SHUT_RDWR).
  // Never blocks. Throws std::system_error (ENOTCONN...).
  void shutdown(int how = SHUT_RDWR);

  // --- stream I/O -------------------------------------------------------------------------
  // Reads up to n bytes; returns how many, 0 at end of stream (or if n == 0). Waits only while
  // nothing is available. Blocking point. Throws std::system_error (ECONNRESET...).
  std::size_t read(void* buf, std::size_t n, opt_timeout timeout = {});
  // Writes up to n bytes and returns how many (at least 1 unless n == 0); waits only while
  // nothing fits. Never raises SIGPIPE: a closed peer is std::system_error(EPIPE or
  // ECONNRESET). Blocking point.
  std::size_t write(const void* buf, std::size_t n, opt_timeout timeout = {});
  // Scatter/gather versions (at most IOV_MAX entries). Blocking points.
  std::size_t readv(const iovec* iov, int iovcnt, opt_timeout timeout = {});
  std::size_t writev(const iovec* iov, int iovcnt, opt_timeout timeout = {});
  // Reads exactly n bytes, over as many reads as it takes; the timeout bounds the whole call.
  // Throws fern::eof_error (received() bytes are in buf) if the stream ends first. Blocking
  // point.
  void read_exactly(void* buf, std::size_t n, opt_timeout timeout = {});
  // Writes all n bytes; the timeout bounds the whole call (on timeout or error, how much was
  // written is unknown: close the connection). Blocking point.
  void write_all(const void* buf, std::size_t n, opt_timeout timeout = {});
  void write_all(std::string_view s, opt_timeout timeout = {}) {
    write_all(s.data(), s.size(), timeout);
  }
  // Waits until a read would not block (data, EOF or an error pending); false on timeout.
  // Blocking point.
  bool wait_readable(opt_timeout timeout = {});
  bool wait_writable(opt_timeout timeout = {});

  // --- datagrams --------------------------------------------------------------------------
  // Sends one datagram to `to` (or, on a connected socket, write() sends to the peer).
  // Blocking point (while the send buffer is full). Throws std::system_error (EMSGSIZE...).
  std::size_t send_to(const void* buf, std::size_t n, const address& to, opt_timeout timeout = {});
  // Receives one datagram of up to n bytes (the rest of a longer one is discarded) and its
  // sender. Blocking point.
  received recv_from(void* buf, std::size_t n, opt_timeout timeout = {});

  // --- options and names (never block; throw std::system_error) ---------------------------
  void set_option(int level, int name, int value);
  void set_option(int level, int name, const void* value, socklen_t len);
  int get_option(int level, int name) const;
  // TCP_NODELAY: send small writes at once (request/response protocols).
  void set_nodelay(bool on);
  // SO_KEEPALIVE: the kernel probes an idle connection and resets it if the peer is gone.
  void set_keepalive(bool on);
  address local_address() const;
  address peer_address() const;

 private:
  explicit socket(int fd, std::nullptr_t) noexcept : fd_(fd) {}
  friend class listener;
  friend std::pair<socket, socket> socketpair(int type);

  int fd_ = -1;
  opt_timeout read_timeout_;
  opt_timeout write_timeout_;
};

// What listener::accept() returns: the connection and its peer's address.
//   auto [conn, peer] = listener.accept();
struct accepted {
  socket sock;
  address peer;
};

// Options for a listener.
struct listen_options {
  int backlog = SOMAXCONN;      // pending connections the kernel queues (capped by somaxconn)
  bool reuse_port = false;      // SO_REUSEPORT: one listener per hub (per core) on the same port
  bool unlink_on_close = true;  // Unix path listeners remove their socket file when closed
};

// A listening stream socket (TCP or Unix). SO_REUSEADDR is set for IP addresses, so a restarted
// server binds at once. Move-only; owned like fern::socket.
//
//   fern::listener l(fern::address::parse("127.0.0.1:0"));
//   auto [conn, peer] = l.accept();
class listener {
 public:
  listener() noexcept = default;
  // Binds and listens. Port 0 picks a free port (see local_address()). A Unix path must not
  // exist yet (EADDRINUSE: remove a stale socket file first). Never blocks. Throws
  // std::system_error (EADDRINUSE, EACCES...).
  explicit listener(const address& local, listen_options opts = {});
  // Adopts a socket that already listens (socket activation, an inherited fd).
  explicit listener(socket listening) noexcept : sock_(std::move(listening)) {}
  listener(listener&& o) noexcept;
  listener& operator=(listener&& o) noexcept;
  ~listener();

  // Accepts one connection; the new socket is O_NONBLOCK | O_CLOEXEC. Connections that died
  // in the queue (ECONNABORTED, EPROTO) and EINTR are skipped. Blocking point: waits up to the
  // timeout (fern::timeout_error), or the socket's read timeout. Throws std::system_error:
  // EMFILE/ENFILE/ENOBUFS/ENOMEM (out of resources: back off and retry, as stream_server
  // does), EBADF if the listener is closed while it waits.
  accepted accept(opt_timeout timeout = {});

  bool valid() const noexcept { return sock_.valid(); }
  int fd() const noexcept { return sock_.fd(); }
  address local_address() const { return sock_.local_address(); }
  // Closes it (waking a fiber blocked in accept with EBADF) and, for a Unix path it bound,
  // removes the socket file. Never blocks.
  void close();
  // The underlying socket, for options and timeouts.
  socket& sock() noexcept { return sock_; }

 private:
  socket sock_;
  std::string unlink_path_;  // a Unix path this listener bound, removed on close
};
using tcp_listener = listener;
using unix_listener = listener;

// A stream socket of to's family (TCP, or Unix stream), connected to it: Python's
// socket.create_connection, Go's net.Dial. Blocking point; throws like socket::connect.
socket create_connection(const address& to, opt_timeout timeout = {});

// A datagram socket (UDP, or Unix datagram) bound to `local` (port 0: any free port; for Unix,
// a path, whose file the caller removes, or an abstract name). Never blocks. Throws
// std::system_error.
socket bind_datagram(const address& local);

// A connected pair of Unix sockets (SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET). Never blocks.
// Throws std::system_error.
std::pair<socket, socket> socketpair(int type = SOCK_STREAM);

}  // namespace fern
