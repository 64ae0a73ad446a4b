// TLS on OpenSSL 3 (fern/tls.hpp): contexts, streams and their error reporting. Every OpenSSL
// call runs non-blocking over the fern::sys BIO (tls_bio.hpp); SSL_ERROR_WANT_READ/WANT_WRITE
// park the fiber on the socket (a read may need to write and a write to read) and the call is
// retried with the same arguments. OpenSSL's error queue is per thread and fibers switch only
// while parked, so each call clears it first and drains it at once when it fails.
#include "fern/tls.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <climits>
#include <mutex>
#include <system_error>
#include <utility>

#include "fern/errors.hpp"
#include "fern/io.hpp"
#include "fern/timeout.hpp"
#include "tls_bio.hpp"

namespace fern::tls {

using std::chrono::nanoseconds;

// --- errors ---------------------------------------------------------------------------------

bool error::unexpected_eof() const noexcept {
  return ERR_GET_LIB(code_) == ERR_LIB_SSL &&
         ERR_GET_REASON(code_) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

namespace {

// Drains this thread's OpenSSL error queue into text, oldest first: each entry as
// ERR_error_string_n gives it, with its detail text in parentheses, "; " between entries.
// *first is the oldest entry's code (0 if the queue was empty).
std::string drain_errors(unsigned long* first) {
  std::string out;
  *first = 0;
  const char* data = nullptr;
  int flags = 0;
  while (unsigned long e = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    if (*first == 0) *first = e;
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
    if ((flags & ERR_TXT_STRING) && data && *data) {
      out += " (";
      out += data;
      out += ')';
    }
  }
  return out;
}

// Throws fern::tls::error for `op` with the error queue's text (or `fallback` if it is empty).
// With `ssl`, a failed certificate verification becomes fern::tls::verify_error naming
// OpenSSL's reason.
[[noreturn]] void throw_openssl(const std::string& op, const SSL* ssl = nullptr,
                                const char* fallback = "unknown OpenSSL error") {
  unsigned long code = 0;
  std::string text = drain_errors(&code);
  std::string what = op + ": " + (text.empty() ? std::string(fallback) : text);
  long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
  if (ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED &&
      vr != X509_V_OK) {
    what += ": ";
    what += X509_verify_cert_error_string(vr);
    what += " (X509_V_ERR " + std::to_string(vr) + ")";
    throw verify_error(what, code, vr);
  }
  throw error(what, code, vr);
}

// OpenSSL calls outside a stream (context set-up): throw unless ok.
void check(bool ok, const char* op) {
  if (!ok) throw_openssl(op);
}

// Declines every passphrase prompt: OpenSSL's default callback would read the terminal,
// blocking the thread (encrypted keys are not supported; decrypt them first).
int no_passphrase(char*, int, int, void*) {
  return -1;
}

// Owning pointers for OpenSSL objects.
struct bio_free {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
using bio_ptr = std::unique_ptr<BIO, bio_free>;
struct x509_free {
  void operator()(X509* x) const noexcept { X509_free(x); }
};
using x509_ptr = std::unique_ptr<X509, x509_free>;

bio_ptr mem_bio(std::string_view pem) {
  if (pem.size() > INT_MAX) throw std::invalid_argument("fern::tls: PEM text too long");
  ERR_clear_error();
  bio_ptr b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  check(b != nullptr, "fern::tls: BIO_new_mem_buf");
  return b;
}

// After a loop of PEM_read_bio_* calls: the last failure must be the end of the text, anything
// else (a corrupt block) is an error.
void check_pem_end(const char* op) {
  unsigned long e = ERR_peek_last_error();
  if (e == 0 || (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
    ERR_clear_error();
    return;
  }
  throw_openssl(op);
}

// The server's ALPN list (wire format), in the SSL_CTX's ex_data so that it lives exactly as
// long as the SSL_CTX, which native_handle() users may keep beyond the last fern handle.
void free_alpn(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<std::string*>(ptr);
}

int alpn_index() {
  static const int index =
      CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, nullptr, nullptr, nullptr, free_alpn);
  return index;
}

int alpn_select(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  const auto* wire =
      static_cast<const std::string*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), alpn_index()));
  if (!wire || wire->empty()) return SSL_TLSEXT_ERR_NOACK;
  unsigned char* chosen = nullptr;
  unsigned char len = 0;
  // The server's list comes first: its order is the preference.
  if (SSL_select_next_proto(&chosen, &len, reinterpret_cast<const unsigned char*>(wire->data()),
                            static_cast<unsigned>(wire->size()), in,
                            inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = chosen;
  *outlen = len;
  return SSL_TLSEXT_ERR_OK;
}

int proto_version(version v) {
  return v == version::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

// "[::1]" -> "::1"; a DNS name loses one trailing dot (SNI carries none, RFC 6066 §3).
std::string normalize_name(std::string_view name) {
  if (name.size() >= 2 && name.front() == '[' && name.back() == ']')
    name = name.substr(1, name.size() - 2);
  else if (name.size() > 1 && name.back() == '.')
    name.remove_suffix(1);
  return std::string(name);
}

bool is_ip_literal(const std::string& name) {
  unsigned char buf[sizeof(in6_addr)];
  std::string host = name.substr(0, name.find('%'));  // an IPv6 zone is not part of a SAN
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

// --- context --------------------------------------------------------------------------------

struct context::state {
  SSL_CTX* ctx = nullptr;
  bool server = false;
  verify_mode verify = verify_mode::required;
  bool check_hostname = true;
  bool ca_chosen = false;       // a load_verify_* call picked the trusted CAs
  std::once_flag system_store;  // the lazy load of the system store (see trust_ready)

  ~state() { SSL_CTX_free(ctx); }

  // Before the first stream: a context that verifies peers and was given no CAs trusts the
  // system store, as Python's create_default_context and Go's nil RootCAs do.
  void trust_ready() {
    if (verify == verify_mode::none || ca_chosen) return;
    std::call_once(system_store, [this] {
      ERR_clear_error();
      // No system store is not an error here: verification then fails, naming the missing issuer.
      SSL_CTX_set_default_verify_paths(ctx);
      ERR_clear_error();
    });
  }

  void apply_verify() {
    int mode = SSL_VERIFY_NONE;
    if (verify != verify_mode::none) mode = SSL_VERIFY_PEER;
    if (server && verify == verify_mode::required) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, nullptr);
  }

  // A server that verifies clients also names the CAs it accepts in its CertificateRequest.
  STACK_OF(X509_NAME) * client_ca_names() {
    STACK_OF(X509_NAME)* names = SSL_CTX_get_client_CA_list(ctx);
    if (!names) {
      names = sk_X509_NAME_new_null();
      check(names != nullptr, "fern::tls::context: sk_X509_NAME_new_null");
      SSL_CTX_set_client_CA_list(ctx, names);
    }
    return names;
  }
};

namespace {

std::shared_ptr<context::state> new_state(bool server) {
  auto st = std::make_shared<context::state>();
  ERR_clear_error();
  st->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  check(st->ctx != nullptr, "fern::tls::context: SSL_CTX_new");
  st->server = server;
  st->verify = server ? verify_mode::none : verify_mode::required;
  SSL_CTX_set_default_passwd_cb(st->ctx, no_passphrase);
  check(SSL_CTX_set_min_proto_version(st->ctx, TLS1_2_VERSION) == 1,
        "fern::tls::context: SSL_CTX_set_min_proto_version");
  // Partial writes: write() returns after one record, as a socket write does. Moving buffer:
  // write_all retries from a new offset only after a record went out, but allow it anyway.
  SSL_CTX_set_mode(st->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Read-ahead: one recv takes a record's header and body (and whatever follows) instead of one
  // for each: a record costs one recv, not two. OpenSSL then buffers bytes the socket no longer
  // has, but drive() parks only on SSL_ERROR_WANT_READ, which OpenSSL reports only once its
  // buffer holds no whole record, so no reader waits on the fd while data is pending. The price:
  // bytes a peer sends right after its close_notify may land in that buffer (shutdown() with
  // wait_for_peer turns read-ahead off first, see tls.hpp).
  SSL_CTX_set_read_ahead(st->ctx, 1);
  // Renegotiation (TLS 1.2) would let a read need the handshake's I/O pattern mid-stream.
  SSL_CTX_set_options(st->ctx, SSL_OP_NO_RENEGOTIATION);
  // A truncated stream must never read as a clean end, whatever openssl.cnf says.
  SSL_CTX_clear_options(st->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (server) {
    // Required for session resumption when client certificates are verified.
    static const unsigned char sid_ctx[] = "fern";
    SSL_CTX_set_session_id_context(st->ctx, sid_ctx, sizeof sid_ctx - 1);
  }
  st->apply_verify();
  return st;
}

}  // namespace

context context::client() {
  return context(new_state(false));
}

context context::server() {
  return context(new_state(true));
}

context::state& context::st() const {
  if (!st_) throw std::logic_error("fern::tls::context: empty handle");
  return *st_;
}

context& context::load_verify_file(const std::string& path) {
  state& s = st();
  ERR_clear_error();
  check(SSL_CTX_load_verify_file(s.ctx, path.c_str()) == 1,
        ("fern::tls::context::load_verify_file(" + path + ")").c_str());
  if (s.server)
    check(SSL_add_file_cert_subjects_to_stack(s.client_ca_names(), path.c_str()) == 1,
          "fern::tls::context::load_verify_file");
  s.ca_chosen = true;
  return *this;
}

context& context::load_verify_dir(const std::string& path) {
  state& s = st();
  ERR_clear_error();
  check(SSL_CTX_load_verify_dir(s.ctx, path.c_str()) == 1,
        ("fern::tls::context::load_verify_dir(" + path + ")").c_str());
  s.ca_chosen = true;
  return *this;
}

context& context::load_verify_pem(std::string_view pem) {
  state& s = st();
  bio_ptr b = mem_bio(pem);
  X509_STORE* store = SSL_CTX_get_cert_store(s.ctx);
  int n = 0;
  while (x509_ptr x{PEM_read_bio_X509(b.get(), nullptr, no_passphrase, nullptr)}) {
    check(X509_STORE_add_cert(store, x.get()) == 1, "fern::tls::context::load_verify_pem");
    if (s.server)
      check(SSL_CTX_add_client_CA(s.ctx, x.get()) == 1, "fern::tls::context::load_verify_pem");
    ++n;
  }
  if (n == 0) throw_openssl("fern::tls::context::load_verify_pem", nullptr, "no certificate");
  check_pem_end("fern::tls::context::load_verify_pem");
  s.ca_chosen = true;
  return *this;
}

context& context::load_default_verify_paths() {
  state& s = st();
  ERR_clear_error();
  check(SSL_CTX_set_default_verify_paths(s.ctx) == 1,
        "fern::tls::context::load_default_verify_paths");
  s.ca_chosen = true;
  return *this;
}

namespace {

// After loading one half of the identity (certificate or key): if the other half was loaded
// before, the two must belong together. OpenSSL checks a key against the certificate, but
// silently drops a key that does not match a certificate loaded after it, and files a key of
// another type apart from the certificate.
void check_pair(SSL_CTX* ctx, bool other_half_before, const std::string& op) {
  if (!other_half_before) return;
  if (SSL_CTX_get0_certificate(ctx) && SSL_CTX_get0_privatekey(ctx)) {
    check(SSL_CTX_check_private_key(ctx) == 1, op.c_str());
    return;
  }
  ERR_clear_error();
  throw error(op + ": the certificate and the private key do not match (key values mismatch)", 0,
              X509_V_OK);
}

}  // namespace

context& context::use_certificate_chain_file(const std::string& path) {
  state& s = st();
  ERR_clear_error();
  std::string op = "fern::tls::context::use_certificate_chain_file(" + path + ")";
  bool had_key = SSL_CTX_get0_privatekey(s.ctx) != nullptr;
  check(SSL_CTX_use_certificate_chain_file(s.ctx, path.c_str()) == 1, op.c_str());
  check_pair(s.ctx, had_key, op);
  return *this;
}

context& context::use_certificate_chain_pem(std::string_view pem) {
  state& s = st();
  const char* op = "fern::tls::context::use_certificate_chain_pem";
  bool had_key = SSL_CTX_get0_privatekey(s.ctx) != nullptr;
  bio_ptr b = mem_bio(pem);
  x509_ptr leaf{PEM_read_bio_X509_AUX(b.get(), nullptr, no_passphrase, nullptr)};
  if (!leaf) throw_openssl(op, nullptr, "no certificate");
  check(SSL_CTX_use_certificate(s.ctx, leaf.get()) == 1, op);
  check(SSL_CTX_clear_chain_certs(s.ctx) == 1, op);
  while (x509_ptr ca{PEM_read_bio_X509(b.get(), nullptr, no_passphrase, nullptr)}) {
    check(SSL_CTX_add0_chain_cert(s.ctx, ca.get()) == 1, op);
    ca.release();  // add0: the context owns it now
  }
  check_pem_end(op);
  check_pair(s.ctx, had_key, op);
  return *this;
}

context& context::use_private_key_file(const std::string& path) {
  state& s = st();
  ERR_clear_error();
  std::string op = "fern::tls::context::use_private_key_file(" + path + ")";
  bool had_cert = SSL_CTX_get0_certificate(s.ctx) != nullptr;
  check(SSL_CTX_use_PrivateKey_file(s.ctx, path.c_str(), SSL_FILETYPE_PEM) == 1, op.c_str());
  check_pair(s.ctx, had_cert, op);
  return *this;
}

context& context::use_private_key_pem(std::string_view pem) {
  state& s = st();
  const char* op = "fern::tls::context::use_private_key_pem";
  bool had_cert = SSL_CTX_get0_certificate(s.ctx) != nullptr;
  bio_ptr b = mem_bio(pem);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(b.get(), nullptr, no_passphrase, nullptr);
  if (!key) throw_openssl(op, nullptr, "no private key");
  int ok = SSL_CTX_use_PrivateKey(s.ctx, key);
  EVP_PKEY_free(key);
  check(ok == 1, op);
  check_pair(s.ctx, had_cert, op);
  return *this;
}

context& context::set_verify(verify_mode m) {
  state& s = st();
  s.verify = m;
  s.apply_verify();
  return *this;
}

context& context::set_check_hostname(bool on) {
  st().check_hostname = on;
  return *this;
}

context& context::set_alpn(const std::vector<std::string>& protocols) {
  state& s = st();
  std::string wire;
  for (const std::string& p : protocols) {
    if (p.empty() || p.size() > 255)
      throw std::invalid_argument(
          "fern::tls::context::set_alpn: a protocol name has 1 to 255 "
          "bytes: \"" +
          p + "\"");
    wire += static_cast<char>(p.size());
    wire += p;
  }
  ERR_clear_error();
  if (s.server) {
    auto* copy = new std::string(std::move(wire));
    int idx = alpn_index();
    auto* old = static_cast<std::string*>(SSL_CTX_get_ex_data(s.ctx, idx));
    if (idx < 0 || SSL_CTX_set_ex_data(s.ctx, idx, copy) != 1) {
      delete copy;
      throw_openssl("fern::tls::context::set_alpn");
    }
    delete old;
    SSL_CTX_set_alpn_select_cb(s.ctx, alpn_select, nullptr);
  } else {
    // Note the inverted convention: 0 is success.
    check(SSL_CTX_set_alpn_protos(s.ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                                  static_cast<unsigned>(wire.size())) == 0,
          "fern::tls::context::set_alpn");
  }
  return *this;
}

context& context::set_alpn(std::initializer_list<std::string_view> protocols) {
  std::vector<std::string> v;
  for (std::string_view p : protocols) v.emplace_back(p);
  return set_alpn(v);
}

context& context::set_min_version(version v) {
  state& s = st();
  ERR_clear_error();
  check(SSL_CTX_set_min_proto_version(s.ctx, proto_version(v)) == 1,
        "fern::tls::context::set_min_version");
  return *this;
}

context& context::set_max_version(version v) {
  state& s = st();
  ERR_clear_error();
  check(SSL_CTX_set_max_proto_version(s.ctx, proto_version(v)) == 1,
        "fern::tls::context::set_max_version");
  return *this;
}

bool context::is_server() const noexcept {
  return st_ && st_->server;
}

verify_mode context::verify() const noexcept {
  return st_ ? st_->verify : verify_mode::none;
}

bool context::check_hostname() const noexcept {
  return st_ && st_->check_hostname;
}

ssl_ctx_st* context::native_handle() const noexcept {
  return st_ ? st_->ctx : nullptr;
}

// --- stream ---------------------------------------------------------------------------------

// The stream's state. `ssl` owns the BIO, which owns `bio`; both are null once closed. The busy
// flags say which fiber-exclusive operation is under way (set by busy_guard, cleared when it
// ends, also by an exception); they are not touched by close(), so a closed stream's waiters
// unwind safely.
struct stream::impl {
  context ctx;
  socket sock;
  SSL* ssl = nullptr;
  detail::bio_state* bio = nullptr;
  std::string name;             // client: the server name given
  bool handshake_done = false;  // SSL_do_handshake returned 1
  bool failed = false;          // a fatal error happened: later calls throw at once
  bool close_notify_sent = false;
  bool handshaking = false;
  bool reading = false;
  bool writing = false;

  ~impl() {
    if (ssl) SSL_free(ssl);
  }
};

namespace {

using impl_t = stream::impl;

// One call's time limit: its own timeout or the default, fixed as a deadline at the first wait
// (a call that never waits never reads the clock); later waits of the same call share it.
class call_limit {
 public:
  explicit call_limit(opt_timeout t) noexcept : timeout_(t) {}
  fern::detail::deadline_t deadline() noexcept {
    if (!timeout_) return fern::detail::no_deadline;
    if (deadline_ == unset) deadline_ = fern::detail::deadline_after(*timeout_);
    return deadline_;
  }

 private:
  static constexpr fern::detail::deadline_t unset = INT64_MIN;
  opt_timeout timeout_;
  fern::detail::deadline_t deadline_ = unset;
};

// The shorter of the socket's two default timeouts (handshake and shutdown go both ways).
opt_timeout both_ways(const socket& s) {
  opt_timeout r = s.read_timeout(), w = s.write_timeout();
  if (r && w) return std::min(*r, *w);
  return r ? r : w;
}

// Marks one fiber-exclusive operation as under way.
class busy_guard {
 public:
  busy_guard(bool& flag, const char* what) : flag_(flag) {
    if (flag_) throw concurrent_use_error(what);
    flag_ = true;
  }
  ~busy_guard() { flag_ = false; }
  busy_guard(const busy_guard&) = delete;
  busy_guard& operator=(const busy_guard&) = delete;

 private:
  bool& flag_;
};

// Parks until the socket may be ready in direction d. Several fibers may wait in one direction
// here (a reader whose SSL_read must flush while a writer waits to write), so this uses the
// runtime's shared wait rather than wait_readable/wait_writable, and turns its outcome into the
// exceptions those throw.
void park(impl_t& s, fern::detail::io_dir d, call_limit& limit, const char* op) {
  bool scope_expired = false;
  int r = fern::detail::wait_fd(s.sock.fd(), d, limit.deadline(), &scope_expired);
  switch (r) {
    case 0:
    case EINTR:
      return;
    case ETIMEDOUT:
      // An expired fern::timeout scope stays expired: check_interrupts throws its
      // timeout_error, naming it.
      if (scope_expired) fern::detail::check_interrupts();
      throw timeout_error();
    case ECANCELED:
      throw fiber_exit();
    case EDEADLK:
      throw loop_exit();
    default:
      throw std::system_error(r, std::generic_category(), op);
  }
}

// A failed OpenSSL call on the stream (SSL_get_error gave `err`): throws the matching exception.
[[noreturn]] void fail(impl_t& s, int err, const char* op) {
  s.failed = true;
  if (err == SSL_ERROR_SYSCALL) {
    if (s.bio && s.bio->last_errno != 0) {
      ERR_clear_error();
      throw std::system_error(s.bio->last_errno, std::generic_category(), op);
    }
    if (ERR_peek_error() == 0 && s.bio && s.bio->eof) {
      // OpenSSL 3 reports a truncated stream as SSL_R_UNEXPECTED_EOF_WHILE_READING
      // (SSL_ERROR_SSL); should a path still report it the 1.1 way, say the same thing.
      throw error(std::string(op) +
                      ": unexpected eof while reading (the peer closed the "
                      "connection without close_notify)",
                  ERR_PACK(ERR_LIB_SSL, 0, SSL_R_UNEXPECTED_EOF_WHILE_READING), X509_V_OK);
    }
  }
  if (err != SSL_ERROR_SYSCALL && err != SSL_ERROR_SSL) {
    ERR_clear_error();
    throw error(std::string(op) + ": unexpected SSL_get_error result " + std::to_string(err) +
                    " (a callback set through native_handle?)",
                0, X509_V_OK);
  }
  throw_openssl(op, s.ssl);
}

// The stream's state for one call, kept alive until the call returns.
std::shared_ptr<impl_t> live(const std::shared_ptr<impl_t>& p, const char* op) {
  if (!p || !p->ssl) throw std::system_error(EBADF, std::generic_category(), op);
  return p;
}

// Runs `call` (an SSL_* call on s.ssl returning > 0 on success) until it succeeds, parking on
// WANT_READ/WANT_WRITE. Returns false on SSL_ERROR_ZERO_RETURN (the peer's close_notify).
template <class Call>
bool drive(impl_t& s, call_limit& limit, const char* op, Call&& call) {
  if (s.failed)  // OpenSSL must not be driven on after a fatal error (SSL_get_error(3))
    throw error(std::string(op) + ": the connection failed earlier; close it", 0, X509_V_OK);
  for (;;) {
    if (!s.ssl) throw std::system_error(EBADF, std::generic_category(), op);  // closed meanwhile
    ERR_clear_error();
    s.bio->last_errno = 0;
    int r = call(s.ssl);
    if (r > 0) return true;
    int err = SSL_get_error(s.ssl, r);
    switch (err) {
      case SSL_ERROR_WANT_READ:
        park(s, fern::detail::io_dir::read, limit, op);
        break;
      case SSL_ERROR_WANT_WRITE:
        park(s, fern::detail::io_dir::write, limit, op);
        break;
      case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        return false;
      default:
        fail(s, err, op);
    }
  }
}

void run_handshake(impl_t& s, call_limit& limit) {
  if (s.handshake_done) return;
  const char* op = "fern::tls::stream::handshake";
  busy_guard g(s.handshaking, "fern::tls::stream: another fiber is already doing the handshake");
  if (!drive(s, limit, op, [](SSL* ssl) { return SSL_do_handshake(ssl); })) {
    s.failed = true;
    throw error(std::string(op) + ": the peer sent close_notify during the handshake", 0,
                X509_V_OK);
  }
  s.handshake_done = true;
}

std::string name_text(const X509_NAME* n) {
  if (!n) return {};
  bio_ptr b(BIO_new(BIO_s_mem()));
  if (!b) return {};
  X509_NAME_print_ex(b.get(), n, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long len = BIO_get_mem_data(b.get(), &data);
  std::string out(data, len > 0 ? static_cast<std::size_t>(len) : 0);
  ERR_clear_error();
  return out;
}

}  // namespace

stream::stream() noexcept = default;
stream::stream(stream&& o) noexcept = default;
stream& stream::operator=(stream&& o) noexcept {
  if (this != &o) {
    try {
      close();
    } catch (const std::system_error&) {  // the fd is closed anyway (Linux)
    }
    p_ = std::move(o.p_);
  }
  return *this;
}

stream::~stream() {
  try {
    close();
  } catch (const std::system_error&) {  // the fd is closed anyway (Linux)
  }
}

stream::stream(const context& ctx, socket sock, std::string_view server_name) {
  if (!ctx.valid()) throw std::invalid_argument("fern::tls::stream: empty context");
  context::state& cs = *ctx.st_;
  if (!sock.valid()) throw std::invalid_argument("fern::tls::stream: empty socket");
  std::string name = normalize_name(server_name);
  bool verify_name = !cs.server && cs.verify != verify_mode::none && cs.check_hostname;
  if (cs.server && !name.empty())
    throw std::invalid_argument("fern::tls::stream: a server stream takes no server name");
  if (verify_name && name.empty())
    throw std::invalid_argument(
        "fern::tls::stream: a client needs the server's name to verify its certificate (or a "
        "context with set_check_hostname(false))");
  cs.trust_ready();

  auto p = std::make_shared<impl>();
  p->ctx = ctx;
  p->sock = std::move(sock);
  ERR_clear_error();
  p->ssl = SSL_new(cs.ctx);
  check(p->ssl != nullptr, "fern::tls::stream: SSL_new");
  BIO* b = detail::new_socket_bio(p->sock.fd());
  if (!b) throw_openssl("fern::tls::stream: BIO_new", nullptr, "out of memory");
  p->bio = detail::socket_bio_state(b);
  SSL_set_bio(p->ssl, b, b);  // one reference, for both directions: the SSL owns it
  if (cs.server) {
    SSL_set_accept_state(p->ssl);
  } else {
    SSL_set_connect_state(p->ssl);
    bool ip = !name.empty() && is_ip_literal(name);
    // SNI carries DNS names only (RFC 6066 §3): never an address literal.
    if (!name.empty() && !ip)
      check(SSL_set_tlsext_host_name(p->ssl, name.c_str()) == 1,
            "fern::tls::stream: SSL_set_tlsext_host_name");
    if (verify_name) {
      if (ip) {
        std::string host = name.substr(0, name.find('%'));
        check(X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(p->ssl), host.c_str()) == 1,
              "fern::tls::stream: X509_VERIFY_PARAM_set1_ip_asc");
      } else {
        SSL_set_hostflags(p->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        check(SSL_set1_host(p->ssl, name.c_str()) == 1, "fern::tls::stream: SSL_set1_host");
      }
    }
    p->name = std::move(name);
  }
  p_ = std::move(p);
}

bool stream::valid() const noexcept {
  return p_ && p_->ssl;
}

void stream::handshake(opt_timeout timeout) {
  std::shared_ptr<impl> hold = live(p_, "fern::tls::stream::handshake");
  impl& s = *hold;
  if (s.handshake_done) return;
  call_limit limit(timeout ? timeout : both_ways(s.sock));
  run_handshake(s, limit);
}

bool stream::handshake_done() const noexcept {
  return p_ && p_->handshake_done;
}

std::size_t stream::read(void* buf, std::size_t n, opt_timeout timeout) {
  const char* op = "fern::tls::stream::read";
  std::shared_ptr<impl> hold = live(p_, op);
  impl& s = *hold;
  if (n == 0) return 0;
  busy_guard g(s.reading, "fern::tls::stream: another fiber is already reading");
  call_limit limit(timeout ? timeout : s.sock.read_timeout());
  run_handshake(s, limit);
  std::size_t got = 0;
  if (!drive(s, limit, op, [&](SSL* ssl) { return SSL_read_ex(ssl, buf, n, &got); })) return 0;
  return got;
}

void stream::read_exactly(void* buf, std::size_t n, opt_timeout timeout) {
  const char* op = "fern::tls::stream::read_exactly";
  std::shared_ptr<impl> hold = live(p_, op);
  impl& s = *hold;
  busy_guard g(s.reading, "fern::tls::stream: another fiber is already reading");
  call_limit limit(timeout ? timeout : s.sock.read_timeout());
  run_handshake(s, limit);
  auto* p = static_cast<char*>(buf);
  std::size_t got = 0;
  while (got < n) {
    std::size_t r = 0;
    if (!drive(s, limit, op, [&](SSL* ssl) { return SSL_read_ex(ssl, p + got, n - got, &r); }))
      throw eof_error(got);
    got += r;
  }
}

std::size_t stream::write(const void* buf, std::size_t n, opt_timeout timeout) {
  const char* op = "fern::tls::stream::write";
  std::shared_ptr<impl> hold = live(p_, op);
  impl& s = *hold;
  if (n == 0) return 0;
  busy_guard g(s.writing, "fern::tls::stream: another fiber is already writing");
  call_limit limit(timeout ? timeout : s.sock.write_timeout());
  run_handshake(s, limit);
  std::size_t done = 0;
  drive(s, limit, op, [&](SSL* ssl) { return SSL_write_ex(ssl, buf, n, &done); });
  return done;
}

void stream::write_all(const void* buf, std::size_t n, opt_timeout timeout) {
  const char* op = "fern::tls::stream::write_all";
  std::shared_ptr<impl> hold = live(p_, op);
  impl& s = *hold;
  busy_guard g(s.writing, "fern::tls::stream: another fiber is already writing");
  call_limit limit(timeout ? timeout : s.sock.write_timeout());
  run_handshake(s, limit);
  const auto* p = static_cast<const char*>(buf);
  std::size_t done = 0;
  while (done < n) {
    std::size_t w = 0;
    drive(s, limit, op, [&](SSL* ssl) { return SSL_write_ex(ssl, p + done, n - done, &w); });
    done += w;
  }
}

bool stream::shutdown(opt_timeout timeout) {
  return shutdown(false, timeout);
}

bool stream::shutdown(bool wait_for_peer, opt_timeout timeout) {
  const char* op = "fern::tls::stream::shutdown";
  std::shared_ptr<impl> hold = live(p_, op);
  impl& s = *hold;
  busy_guard gw(s.writing, "fern::tls::stream: another fiber is already writing");
  std::optional<busy_guard> gr;
  if (wait_for_peer) gr.emplace(s.reading, "fern::tls::stream: another fiber is already reading");
  if (!s.handshake_done) return false;  // no TLS session to end
  call_limit limit(timeout ? timeout : both_ways(s.sock));
  if (!s.close_notify_sent) {
    // SSL_shutdown returns 0 (sent; the peer's not yet seen) or 1 (both done) once our alert is
    // written; -1 with WANT_WRITE while it is not. Called again after that it would read.
    drive(s, limit, op, [](SSL* ssl) {
      int r = SSL_shutdown(ssl);
      return r == 0 ? 1 : r;
    });
    s.close_notify_sent = true;
  }
  auto received = [&] { return (SSL_get_shutdown(s.ssl) & SSL_RECEIVED_SHUTDOWN) != 0; };
  if (!wait_for_peer || received()) return received();
  // Exact reads from here on: a peer that answers our close_notify with its own and then talks
  // in plain text must find its first plain bytes still in the socket, not in OpenSSL's buffer.
  SSL_set_read_ahead(s.ssl, 0);
  char scratch[4096];
  for (;;) {
    std::size_t got = 0;
    if (!drive(s, limit, op,
               [&](SSL* ssl) { return SSL_read_ex(ssl, scratch, sizeof scratch, &got); }))
      return true;
  }
}

void stream::close() {
  if (!p_) return;
  if (p_->ssl) {
    SSL_free(p_->ssl);  // sends nothing: close_notify is shutdown()'s job
    p_->ssl = nullptr;
    p_->bio = nullptr;
  }
  p_->sock.close();
}

std::string stream::alpn_protocol() const {
  if (!valid()) return {};
  const unsigned char* data = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(p_->ssl, &data, &len);
  return data ? std::string(reinterpret_cast<const char*>(data), len) : std::string();
}

std::string stream::server_name() const {
  if (!p_) return {};
  if (!p_->ctx.is_server()) return p_->name;
  if (!p_->ssl) return {};
  const char* sni = SSL_get_servername(p_->ssl, TLSEXT_NAMETYPE_host_name);
  return sni ? sni : "";
}

std::string stream::protocol_version() const {
  if (!valid() || !p_->handshake_done) return {};
  return SSL_get_version(p_->ssl);
}

std::string stream::cipher() const {
  if (!valid() || !p_->handshake_done) return {};
  const SSL_CIPHER* c = SSL_get_current_cipher(p_->ssl);
  return c ? SSL_CIPHER_get_name(c) : "";
}

bool stream::has_peer_certificate() const {
  return valid() && SSL_get0_peer_certificate(p_->ssl) != nullptr;
}

std::string stream::peer_subject() const {
  if (!valid()) return {};
  const X509* x = SSL_get0_peer_certificate(p_->ssl);
  return x ? name_text(X509_get_subject_name(x)) : std::string();
}

std::string stream::peer_issuer() const {
  if (!valid()) return {};
  const X509* x = SSL_get0_peer_certificate(p_->ssl);
  return x ? name_text(X509_get_issuer_name(x)) : std::string();
}

std::string stream::peer_certificate_pem() const {
  if (!valid()) return {};
  X509* x = SSL_get0_peer_certificate(p_->ssl);
  if (!x) return {};
  bio_ptr b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_X509(b.get(), x) != 1) {
    ERR_clear_error();
    throw std::bad_alloc();
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(b.get(), &data);
  return std::string(data, len > 0 ? static_cast<std::size_t>(len) : 0);
}

long stream::verify_result() const {
  return valid() ? SSL_get_verify_result(p_->ssl) : X509_V_OK;
}

socket& stream::sock() noexcept {
  return p_->sock;
}

const socket& stream::sock() const noexcept {
  return p_->sock;
}

int stream::fd() const noexcept {
  return p_ ? p_->sock.fd() : -1;
}

const context& stream::ctx() const noexcept {
  return p_->ctx;
}

ssl_st* stream::native_handle() const noexcept {
  return p_ ? p_->ssl : nullptr;
}

// --- connect --------------------------------------------------------------------------------

stream connect(const context& ctx, const address& to, std::string_view server_name,
               opt_timeout timeout) {
  fern::detail::deadline_t start = timeout ? fern::detail::now_ns() : 0;
  stream s(ctx, create_connection(to, timeout), server_name);
  opt_timeout left;
  if (timeout)
    left = std::max(nanoseconds(0), *timeout - nanoseconds(fern::detail::now_ns() - start));
  s.handshake(left);
  return s;
}

stream connect(const context& ctx, std::string_view host, std::uint16_t port, opt_timeout timeout) {
  return connect(ctx, host, port, host, timeout);
}

stream connect(const context& ctx, std::string_view host, std::uint16_t port,
               std::string_view server_name, opt_timeout timeout) {
  std::string_view h = host;
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  address to;
  try {
    to = address::ip(h, port);
  } catch (const std::invalid_argument&) {
    throw std::invalid_argument("fern::tls::connect: \"" + std::string(host) +
                                "\" is not a numeric address (resolve names with fern::resolve)");
  }
  return connect(ctx, to, server_name, timeout);
}

}  // namespace fern::tls
