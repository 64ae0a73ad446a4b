// TLS on OpenSSL 3: a context (trust, identity, policy) and a stream over a fern::socket whose
// handshake, reads, writes and shutdown park the calling fiber instead of blocking the thread, as
// gevent's ssl module does. Peers are verified by default: a client checks the server's chain
// against the trusted CAs (the system store unless told otherwise) and its name (DNS name or IP
// address, also sent as SNI); a certificate problem is always an exception, never a warning.
//
//   auto ctx = fern::tls::context::client();  // trusts the system's CAs
//   fern::address addr = ...;                  // example.com's, from fern::resolve
//   fern::tls::stream s = fern::tls::connect(ctx, addr, "example.com", 5s);
//   s.write_all("GET / HTTP/1.0\r\nHost: example.com\r\n\r\n");
//   char buf[4096];
//   while (std::size_t n = s.read(buf, sizeof buf)) fwrite(buf, 1, n, stdout);  // 0: close_notify
//
// Every blocking call takes an optional timeout (fern::timeout_error once it passes, source() ==
// nullptr), falls back to the socket's default timeouts (socket::set_timeout, through sock()),
// and honours the enclosing fern::timeout scope and kill(), like fern::socket. Errors:
// fern::tls::error (and fern::tls::verify_error) carry OpenSSL's own text; a failed system call
// is std::system_error with the real errno (ECONNRESET, EPIPE...). After an error, or a timeout or
// kill() in a handshake, write or shutdown, the connection is unusable: close it (a read that
// timed out may be retried).
//
// I/O goes through a private BIO on fern's direct system calls, never libc's read/write, so a
// process run under libfern_interpose does not recurse into the shim. A stream belongs to the hub
// of the thread that uses it; a configured context may be shared between threads (configuring it
// is not thread-safe).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "fern/net.hpp"

// OpenSSL's own types (SSL_CTX and SSL), for native_handle(): include <openssl/ssl.h> to use them.
struct ssl_ctx_st;
struct ssl_st;

namespace fern::tls {

// An OpenSSL failure: a protocol error, an alert from the peer, a bad certificate or key file...
// what() is "<operation>: " followed by OpenSSL's error queue, each entry as ERR_error_string_n
// gives it (with its detail text), e.g. "fern::tls::stream::read: error:0A000126:SSL
// routines::unexpected eof while reading". Thrown by every call below; never for a failed system
// call (std::system_error) or a timeout (fern::timeout_error).
class error : public std::runtime_error {
 public:
  error(const std::string& what, unsigned long code, long verify_result)
      : std::runtime_error(what), code_(code), verify_result_(verify_result) {}
  // OpenSSL's packed code of the first (innermost) error on the queue (ERR_GET_LIB,
  // ERR_GET_REASON), 0 if the queue was empty.
  unsigned long code() const noexcept { return code_; }
  // The peer certificate's verification result as X509_V_ERR_* (X509_V_OK, 0, unless the
  // certificate failed verification).
  long verify_result() const noexcept { return verify_result_; }
  // True if the peer closed the connection without a close_notify alert (possibly in the middle
  // of a record): the data read so far may be truncated (OpenSSL's
  // SSL_R_UNEXPECTED_EOF_WHILE_READING).
  bool unexpected_eof() const noexcept;

 private:
  unsigned long code_;
  long verify_result_;
};

// The peer's certificate failed verification: what() ends with OpenSSL's reason
// (X509_verify_cert_error_string: "certificate has expired", "hostname mismatch", "self-signed
// certificate"...), verify_result() is its X509_V_ERR_* code.
class verify_error : public error {
 public:
  using error::error;
};

// Protocol versions, for minimum and maximum.
enum class version { tls1_2, tls1_3 };

// How the peer's certificate is checked, as Python's ssl.CERT_*:
//   none:     not checked at all (a server does not ask clients for one). Encryption without
//             authentication: only for tests and peers authenticated some other way.
//   optional: a server asks for a client certificate and verifies it if one is sent; on a client,
//             the same as required.
//   required: the peer must present a certificate that verifies (a client's default).
enum class verify_mode { none, optional, required };

// Trust, identity and policy shared by many streams: a reference-counted handle on an SSL_CTX
// (copies share it). Configure it before the first stream uses it. Never blocks. The setters
// return *this for chaining and throw fern::tls::error (with OpenSSL's text: "No such file or
// directory", "key values mismatch"...) when OpenSSL refuses.
class context {
 public:
  // A client context: verify_mode::required, hostname check on, at least TLS 1.2. It trusts the
  // system's CA store (OpenSSL's default paths; SSL_CERT_FILE/SSL_CERT_DIR override them) unless
  // a load_verify_* call chose other CAs before the first stream.
  static context client();
  // A server context: verify_mode::none (no client certificates asked for), at least TLS 1.2.
  // It needs a certificate chain and key (use_certificate_chain_* and use_private_key_*). With
  // set_verify(optional/required), client certificates are checked against the CAs loaded with
  // load_verify_* (or the system store, if none was).
  static context server();

  // An empty handle (valid() == false); only assignable.
  context() noexcept = default;

  // --- trust: whom to believe -------------------------------------------------------------
  // Trusts the CA certificates in a PEM file.
  context& load_verify_file(const std::string& path);
  // Trusts a directory of CA certificates named by subject hash (c_rehash / openssl rehash).
  context& load_verify_dir(const std::string& path);
  // Trusts the CA certificates in PEM text (one or more). Throws if it holds none.
  context& load_verify_pem(std::string_view pem);
  // Trusts the system store now (also after other CAs were loaded).
  context& load_default_verify_paths();

  // --- identity: who we are ---------------------------------------------------------------
  // Our certificate chain: a PEM file with the leaf first, then intermediates.
  context& use_certificate_chain_file(const std::string& path);
  // The same from PEM text.
  context& use_certificate_chain_pem(std::string_view pem);
  // The private key for the certificate (PEM, unencrypted); checked against it if it was loaded
  // first ("key values mismatch").
  context& use_private_key_file(const std::string& path);
  context& use_private_key_pem(std::string_view pem);

  // --- policy -----------------------------------------------------------------------------
  context& set_verify(verify_mode m);
  // Client: whether the server's name is checked against its certificate (on by default; only
  // meaningful with verification on). Off, a stream needs no server name.
  context& set_check_hostname(bool on);
  // ALPN: a client offers these protocols in order; a server picks the first of its list that
  // the client offers (none in common: no protocol is negotiated and the handshake goes on, as
  // OpenSSL's s_server does). Each name is 1 to 255 bytes (std::invalid_argument otherwise).
  context& set_alpn(const std::vector<std::string>& protocols);
  context& set_alpn(std::initializer_list<std::string_view> protocols);
  context& set_min_version(version v);
  context& set_max_version(version v);

  bool valid() const noexcept { return static_cast<bool>(st_); }
  bool is_server() const noexcept;
  verify_mode verify() const noexcept;
  bool check_hostname() const noexcept;
  // The SSL_CTX, for what this class does not wrap (cipher lists, session caches, callbacks...).
  // Valid while a handle or a stream made from it lives.
  ssl_ctx_st* native_handle() const noexcept;

  struct state;  // the SSL_CTX and the policy flags; shared by the handles and their streams

 private:
  friend class stream;
  explicit context(std::shared_ptr<state> st) noexcept : st_(std::move(st)) {}
  state& st() const;
  std::shared_ptr<state> st_;
};

// A TLS connection over a fern::socket it owns. Move-only.
//
// The handshake runs on the first handshake(), read() or write(). One fiber may read while
// another writes (full duplex); a second fiber that reads (or writes, or does the handshake)
// while one already does gets fern::concurrent_use_error. Destroying or close()-ing a stream
// closes the socket without a close_notify (a fiber waiting on it wakes with
// std::system_error(EBADF)): call shutdown() first to end the stream cleanly.
class stream {
 public:
  stream() noexcept;
  // A stream over `sock` (a connected TCP or Unix stream socket; ownership moves in). Its role
  // comes from ctx. A client sends `server_name` as SNI (unless it is an IP literal: "127.0.0.1",
  // "::1" or "[::1]") and, with verification and the hostname check on, requires the server's
  // certificate to match it (a DNS name against the DNS SANs, an IP literal against the IP
  // SANs); it may only be empty with one of them off. A server takes no name (std::invalid_argument
  // otherwise) and learns the client's SNI (server_name()). Never blocks. Throws
  // std::invalid_argument, fern::tls::error (the socket is then closed).
  stream(const context& ctx, socket sock, std::string_view server_name = {});
  stream(stream&& o) noexcept;
  stream& operator=(stream&& o) noexcept;
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;
  ~stream();

  bool valid() const noexcept;
  explicit operator bool() const noexcept { return valid(); }

  // Runs the handshake to completion; does nothing once it is done. Certificate checks happen
  // here: fern::tls::verify_error when they fail. With TLS 1.3 a client's handshake can finish
  // before the server has checked the client's certificate: a rejection then surfaces as an
  // error (the server's alert) on the client's first read. Without a timeout argument it is
  // bounded by the shorter of the socket's read and write timeouts, if any. Blocking point.
  // Throws fern::tls::error, std::system_error, fern::timeout_error.
  void handshake(opt_timeout timeout = {});
  bool handshake_done() const noexcept;

  // Reads up to n bytes of application data; returns how many, 0 once the peer has sent
  // close_notify (a clean end of stream), or if n == 0. A connection that ends without
  // close_notify (truncated, maybe mid-record) is fern::tls::error with unexpected_eof(), never
  // 0. Waits only while nothing is available; the socket's read timeout is the default. Blocking
  // point.
  std::size_t read(void* buf, std::size_t n, opt_timeout timeout = {});
  // Reads exactly n bytes; the timeout bounds the whole call. Throws fern::eof_error (received()
  // bytes are in buf) if the peer's close_notify comes first. Blocking point.
  void read_exactly(void* buf, std::size_t n, opt_timeout timeout = {});
  // Writes up to n bytes (at least 1 unless n == 0, at most one TLS record: 16 KiB) and returns
  // how many; the socket's write timeout is the default. Never raises SIGPIPE: a closed peer is
  // std::system_error(EPIPE or ECONNRESET). Blocking point.
  std::size_t write(const void* buf, std::size_t n, opt_timeout timeout = {});
  // Writes all n bytes; the timeout bounds the whole call. Blocking point.
  void write_all(const void* buf, std::size_t n, opt_timeout timeout = {});
  void write_all(std::string_view s, opt_timeout timeout = {}) {
    write_all(s.data(), s.size(), timeout);
  }

  // Ends the TLS stream cleanly: sends close_notify (waiting until it is written) without
  // waiting for the peer's, as Go's Conn.Close does; the socket stays open (close() it, or
  // keep using it in plain text once the peer has shut down too: reads take whole TLS records
  // ahead, so plain text is intact only if the peer sends it after it has received our
  // close_notify, as it does when it shuts down waiting for ours). Returns true if the peer's
  // close_notify had already arrived. A second call sends nothing; before the handshake there is
  // nothing to end (false). Bounded like handshake(). Blocking point. Throws fern::tls::error
  // (also after an earlier error), std::system_error (EPIPE: the peer has closed the socket
  // already), fern::timeout_error.
  bool shutdown(opt_timeout timeout = {});
  // The same, then, if wait_for_peer, reads until the peer's close_notify, discarding any data
  // that comes first (Python's unwrap()): returns true then. The timeout bounds the whole call.
  bool shutdown(bool wait_for_peer, opt_timeout timeout = {});
  // Closes the socket now, without close_notify (the peer sees a truncated stream unless
  // shutdown() came first). Never blocks. Throws std::system_error if close(2) fails.
  void close();

  // --- what was negotiated (valid after the handshake; never block) -----------------------
  // The ALPN protocol agreed on, or "" if none.
  std::string alpn_protocol() const;
  // Client: the name given to the constructor (without brackets or a trailing dot). Server: the
  // SNI name the client sent, or "".
  std::string server_name() const;
  // "TLSv1.3", "TLSv1.2"; "" before the handshake.
  std::string protocol_version() const;
  // The cipher suite's OpenSSL name ("TLS_AES_256_GCM_SHA384"); "" before the handshake.
  std::string cipher() const;
  // Whether the peer presented a certificate.
  bool has_peer_certificate() const;
  // The peer certificate's subject in RFC 2253 form ("CN=localhost,O=fern"), "" if none.
  std::string peer_subject() const;
  // The peer certificate's issuer, likewise.
  std::string peer_issuer() const;
  // The peer certificate in PEM form, "" if none.
  std::string peer_certificate_pem() const;
  // The verification result of the peer's certificate (X509_V_OK, or the X509_V_ERR_* that a
  // verify_mode::none context let through).
  long verify_result() const;

  // --- the transport ------------------------------------------------------------------------
  // The socket, for its timeouts and addresses (on a stream made by the constructor, not a
  // default-constructed or moved-from one). Reading or writing it directly corrupts the TLS
  // stream.
  socket& sock() noexcept;
  const socket& sock() const noexcept;
  int fd() const noexcept;
  // The context it was made from.
  const context& ctx() const noexcept;
  // OpenSSL's SSL object, for what this class does not wrap. Null once closed.
  ssl_st* native_handle() const noexcept;

  // Heap-allocated, so moving a stream never moves what OpenSSL points at; each blocking call
  // holds a reference, so a stream destroyed while another fiber waits in it is freed only once
  // that fiber has woken (EBADF) and left.
  struct impl;

 private:
  std::shared_ptr<impl> p_;
};

// A connected, handshaken client stream to `to`, verifying the server as `server_name`. The
// timeout bounds the TCP connection and the handshake together. Blocking point. Throws like
// socket::connect and stream::handshake.
stream connect(const context& ctx, const address& to, std::string_view server_name,
               opt_timeout timeout = {});
// The same to a numeric host ("127.0.0.1", "::1", "[::1]"; names are fern::resolve's job:
// std::invalid_argument) and port; the server name is the host itself unless given.
stream connect(const context& ctx, std::string_view host, std::uint16_t port,
               opt_timeout timeout = {});
stream connect(const context& ctx, std::string_view host, std::uint16_t port,
               std::string_view server_name, opt_timeout timeout = {});

}  // namespace fern::tls
