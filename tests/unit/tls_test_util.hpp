// Helpers for the TLS tests (tests/unit/tls_test.cpp, tests/interpose/openssl_test.cpp): a test
// PKI made at run time with OpenSSL's API (a CA; server certificates good, expired, for another
// host and self-signed; a client certificate), written as PEM files into a temporary directory
// removed at exit; and, for the unit tests, child processes (openssl s_server / s_client) that
// the fibers wait for cooperatively and that are killed when the helper goes out of scope.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "fern/fiber.hpp"

extern char** environ;

namespace tls_test {

[[noreturn]] inline void openssl_failed(const char* what) {
  char buf[256] = "";
  ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
  ERR_clear_error();
  throw std::runtime_error(std::string("test PKI: ") + what + ": " + buf);
}

struct pkey_free {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct x509_free {
  void operator()(X509* x) const noexcept { X509_free(x); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;

// A certificate and its key, as objects (to sign others) and as PEM text and files.
struct identity {
  pkey_ptr key;
  x509_ptr cert;
  std::string cert_pem, key_pem;
  std::string cert_file, key_file;
};

// What to put in a certificate. Times are offsets from now, in seconds.
struct cert_spec {
  std::string cn;
  std::string san;  // "DNS:localhost,IP:127.0.0.1", or empty
  long not_before = -3600;
  long not_after = 7 * 86400;
  bool ca = false;
  bool client = false;  // extendedKeyUsage clientAuth instead of serverAuth
};

inline std::string to_pem(X509* x) {
  std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new(BIO_s_mem()), BIO_free);
  if (!b || PEM_write_bio_X509(b.get(), x) != 1) openssl_failed("PEM_write_bio_X509");
  char* data = nullptr;
  long n = BIO_get_mem_data(b.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

inline std::string to_pem(EVP_PKEY* k) {
  std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new(BIO_s_mem()), BIO_free);
  if (!b || PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    openssl_failed("PEM_write_bio_PrivateKey");
  char* data = nullptr;
  long n = BIO_get_mem_data(b.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

inline void add_ext(X509* x, X509V3_CTX* ctx, int nid, const std::string& value) {
  X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str());
  if (!e) openssl_failed("X509V3_EXT_conf_nid");
  int ok = X509_add_ext(x, e, -1);
  X509_EXTENSION_free(e);
  if (ok != 1) openssl_failed("X509_add_ext");
}

// A fresh P-256 key and a certificate for it, signed by `issuer` (self-signed if null).
inline identity make_identity(const cert_spec& spec, const identity* issuer) {
  static long serial = 1000;
  identity id;
  id.key.reset(EVP_EC_gen("P-256"));
  if (!id.key) openssl_failed("EVP_EC_gen");
  id.cert.reset(X509_new());
  X509* x = id.cert.get();
  if (!x) openssl_failed("X509_new");
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), ++serial);
  X509_gmtime_adj(X509_getm_notBefore(x), spec.not_before);
  X509_gmtime_adj(X509_getm_notAfter(x), spec.not_after);
  X509_set_pubkey(x, id.key.get());
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("fern test"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1, -1, 0);
  X509* issuer_cert = issuer ? issuer->cert.get() : x;
  X509_set_issuer_name(x, X509_get_subject_name(issuer_cert));
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer_cert, x, nullptr, nullptr, 0);
  add_ext(x, &ctx, NID_basic_constraints, spec.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add_ext(x, &ctx, NID_key_usage,
          spec.ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  if (!spec.ca) add_ext(x, &ctx, NID_ext_key_usage, spec.client ? "clientAuth" : "serverAuth");
  add_ext(x, &ctx, NID_subject_key_identifier, "hash");
  if (issuer) add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
  if (!spec.san.empty()) add_ext(x, &ctx, NID_subject_alt_name, spec.san);
  EVP_PKEY* signer = issuer ? issuer->key.get() : id.key.get();
  if (X509_sign(x, signer, EVP_sha256()) <= 0) openssl_failed("X509_sign");
  id.cert_pem = to_pem(x);
  id.key_pem = to_pem(id.key.get());
  return id;
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f) throw std::runtime_error("test PKI: cannot write " + path);
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The whole test PKI, made once per process (each test runs in its own process).
struct pki {
  std::string dir;
  identity ca;            // CN=fern test CA
  identity server;        // CN=localhost, SAN DNS:localhost, IP:127.0.0.1; signed by ca
  identity expired;       // the same names, expired yesterday; signed by ca
  identity wrong_host;    // CN=other.example, SAN DNS:other.example; signed by ca
  identity self_signed;   // CN=localhost, SAN DNS:localhost, IP:127.0.0.1; signed by itself
  identity client;        // CN=fern client, clientAuth; signed by ca
  identity rogue_client;  // CN=fern client, clientAuth; signed by itself

  pki() {
    char tmpl[] = "/tmp/fern-tls-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::system_error(errno, std::generic_category(), "mkdtemp");
    dir = tmpl;
    const std::string names = "DNS:localhost,IP:127.0.0.1";
    ca = make_identity({.cn = "fern test CA", .ca = true}, nullptr);
    server = make_identity({.cn = "localhost", .san = names}, &ca);
    expired = make_identity(
        {.cn = "localhost", .san = names, .not_before = -2 * 86400, .not_after = -86400}, &ca);
    wrong_host = make_identity({.cn = "other.example", .san = "DNS:other.example"}, &ca);
    self_signed = make_identity({.cn = "localhost", .san = names}, nullptr);
    client = make_identity({.cn = "fern client", .client = true}, &ca);
    rogue_client = make_identity({.cn = "fern client", .client = true}, nullptr);
    using entry = std::pair<identity*, const char*>;
    for (auto [id, name] : std::initializer_list<entry>{{&ca, "ca"},
                                                        {&server, "server"},
                                                        {&expired, "expired"},
                                                        {&wrong_host, "wrong_host"},
                                                        {&self_signed, "self_signed"},
                                                        {&client, "client"},
                                                        {&rogue_client, "rogue_client"}}) {
      id->cert_file = dir + "/" + name + ".pem";
      id->key_file = dir + "/" + name + ".key";
      write_file(id->cert_file, id->cert_pem);
      write_file(id->key_file, id->key_pem);
    }
  }
  ~pki() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string path(const std::string& name) const { return dir + "/" + name; }
};

inline const pki& the_pki() {
  static const pki p;
  return p;
}

// Waits (bounded, letting other fibers run) until pred() holds; false if it never does.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    fern::sleep(std::chrono::milliseconds(1));
  }
  return true;
}

// A child process (an openssl s_server or s_client) with stdin from a file and stdout+stderr to
// a file. Waits poll with fern::sleep, so other fibers (a fern server it talks to) run
// meanwhile. Killed (SIGKILL, its whole process group) and reaped on destruction if still
// running. It runs under `timeout -s KILL 120` in a process group of its own, so that even if
// the test process dies first it does not outlive it by more than two minutes.
class child {
 public:
  child(const std::vector<std::string>& argv, std::string out_file,
        const std::string& in_file = "/dev/null")
      : out_file_(std::move(out_file)) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, in_file.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);  // a group of its own, led by the child
    std::vector<std::string> full = {"timeout", "-s", "KILL", "120"};
    full.insert(full.end(), argv.begin(), argv.end());
    std::vector<char*> args;
    for (const std::string& a : full) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int e = ::posix_spawnp(&pid_, args[0], &fa, &attr, args.data(), environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    if (e != 0) throw std::system_error(e, std::generic_category(), "posix_spawnp " + argv[0]);
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  ~child() { kill(); }

  pid_t pid() const { return pid_; }
  std::string output() const { return read_file(out_file_); }

  // Waits until the output contains `text`; false if the process exits or the time passes first.
  bool wait_output(const std::string& text, std::chrono::milliseconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (output().find(text) != std::string::npos) return true;
      if (exited() || std::chrono::steady_clock::now() > end) return false;
      fern::sleep(std::chrono::milliseconds(5));
    }
  }
  // Waits for the exit status (or -signal); nullopt if it is still running after `limit`.
  std::optional<int> wait_exit(std::chrono::milliseconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!exited()) {
      if (std::chrono::steady_clock::now() > end) return std::nullopt;
      fern::sleep(std::chrono::milliseconds(5));
    }
    return status_;
  }
  // SIGKILL to the process group, and reap (no-op once reaped).
  void kill() {
    if (pid_ <= 0 || status_) return;
    ::kill(-pid_, SIGKILL);  // `timeout` and the program it runs
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    status_ = -SIGKILL;
  }

 private:
  bool exited() {
    if (status_) return true;
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    return status_.has_value();
  }

  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string out_file_;
};

}  // namespace tls_test
