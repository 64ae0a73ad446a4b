// fern::tls (tls.hpp) against real peers: Debian's `openssl s_server` and `s_client` (spawned on
// loopback, killed at the end), fern's own TLS server in the same process, and raw TCP peers that
// misbehave (silent, truncating). The PKI is made at run time (tls_test_util.hpp). Covers
// verification (good, expired, wrong host, self-signed, verify off, client certificates), SNI,
// ALPN, clean and truncated ends of stream, timeouts, kill, close, full duplex and many
// connections on one thread. Every wait is bounded.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "fern/fern.hpp"
#include "test_util.hpp"
#include "tls_test_util.hpp"

using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;
using tls_test::identity;
using tls_test::the_pki;

namespace {

fern::tls::context client_ctx() {
  auto c = fern::tls::context::client();
  c.load_verify_file(the_pki().ca.cert_file);
  return c;
}

fern::tls::context server_ctx(const identity& id = the_pki().server) {
  auto c = fern::tls::context::server();
  c.use_certificate_chain_file(id.cert_file).use_private_key_file(id.key_file);
  return c;
}

std::string unique_path(const char* stem) {
  static int n = 0;
  return the_pki().path(std::string(stem) + "-" + std::to_string(++n));
}

// `openssl s_server` on 127.0.0.1 with a kernel-chosen port, in -rev mode (each line comes back
// reversed; "CLOSE" makes it send close_notify and close) unless `extra` says otherwise.
struct s_server {
  std::unique_ptr<tls_test::child> proc;
  std::uint16_t port = 0;

  explicit s_server(const identity& id, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {"openssl",    "s_server", "-accept",   "127.0.0.1:0", "-cert",
                                     id.cert_file, "-key",     id.key_file, "-rev"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc = std::make_unique<tls_test::child>(argv, unique_path("s_server.out"));
    // It prints "ACCEPT 127.0.0.1:<port>" once it listens.
    const std::string tag = "ACCEPT 127.0.0.1:";
    if (!proc->wait_output(tag, 10s)) throw std::runtime_error("s_server: " + proc->output());
    for (int i = 0; i < 1000; ++i) {
      std::string out = proc->output();
      auto at = out.find(tag) + tag.size();
      auto nl = out.find('\n', at);
      if (nl != std::string::npos) {
        port = static_cast<std::uint16_t>(std::stoi(out.substr(at, nl - at)));
        return;
      }
      fern::sleep(5ms);
    }
    throw std::runtime_error("s_server: no port in " + proc->output());
  }
};

// Reads until `delim` (included) or EOF.
std::string read_until(fern::tls::stream& s, char delim, fern::opt_timeout t = 5s) {
  std::string out;
  char c;
  while (s.read(&c, 1, t) == 1) {
    out += c;
    if (c == delim) break;
  }
  return out;
}

// Ends an s_server -rev session ("CLOSE": it sends close_notify and waits for ours), so that it
// accepts the next connection (it serves one at a time).
void end_rev_session(fern::tls::stream& s) {
  s.write_all("CLOSE\n", 5s);
  char c;
  EXPECT_EQ(s.read(&c, 1, 5s), 0u);
  EXPECT_TRUE(s.shutdown(5s));
  s.close();
}

// Reads until close_notify.
std::string read_all(fern::tls::stream& s, fern::opt_timeout t = 10s) {
  std::string out;
  char buf[16384];
  while (std::size_t n = s.read(buf, sizeof buf, t)) out.append(buf, n);
  return out;
}

// The error `fn` throws as fern::tls::error (its what() and codes); fails the test otherwise.
struct caught {
  bool thrown = false;
  bool verify = false;  // it was a fern::tls::verify_error
  std::string what;
  long verify_result = X509_V_OK;
  bool unexpected_eof = false;
};
template <class F>
caught tls_error_of(F&& fn) {
  caught c;
  try {
    fn();
  } catch (const fern::tls::verify_error& e) {
    c = {true, true, e.what(), e.verify_result(), e.unexpected_eof()};
  } catch (const fern::tls::error& e) {
    c = {true, false, e.what(), e.verify_result(), e.unexpected_eof()};
  }
  EXPECT_TRUE(c.thrown) << "no fern::tls::error";
  return c;
}

// A fern TLS server on 127.0.0.1 (a fern::stream_server): each connection is wrapped in a server
// stream, handshaken, then given to `serve`. What the handlers throw is recorded in `errors`.
struct fern_server {
  fern::tls::context ctx;
  std::function<void(fern::tls::stream&)> serve;
  std::vector<std::string> errors;
  int served = 0;
  fern::stream_server srv;

  fern_server(fern::tls::context c, std::function<void(fern::tls::stream&)> f)
      : ctx(std::move(c)),
        serve(std::move(f)),
        srv(fern::address::parse("127.0.0.1:0"), [this](fern::socket& conn, const fern::address&) {
          try {
            fern::tls::stream s(ctx, std::move(conn));
            s.handshake(5s);
            serve(s);
            ++served;
          } catch (const std::exception& e) {
            errors.push_back(e.what());
          }
        }) {
    srv.start();
  }
  ~fern_server() { srv.stop(200ms); }
  std::uint16_t port() const { return srv.local_address().port(); }
  fern::address addr() const { return srv.local_address(); }
};

// Echoes until close_notify, then answers with its own.
void echo(fern::tls::stream& s) {
  char buf[16384];
  while (std::size_t n = s.read(buf, sizeof buf, 10s)) s.write_all(buf, n, 10s);
  s.shutdown(5s);
}

// A TCP listener that accepts and then does what `peer` says with the raw socket.
struct raw_server {
  fern::listener l{fern::address::parse("127.0.0.1:0")};
  fern::fiber<void> f;
  explicit raw_server(std::function<void(fern::socket&)> peer) {
    f = fern::spawn([this, peer = std::move(peer)] {
      auto acc = l.accept(10s);
      peer(acc.sock);
    });
  }
  ~raw_server() { f.kill(); }
  fern::address addr() const { return l.local_address(); }
};

// A peer that accepts and never speaks; keeps the connection open until killed.
void silent(fern::socket& s) {
  char buf[4096];
  while (s.read(buf, sizeof buf, 30s) > 0) {
  }
}

// --- round trips with real peers ------------------------------------------------------------

TEST(TlsClientTest, RoundTripWithOpensslServerNegotiatesAlpnAndVerifies) {
  s_server peer(the_pki().server, {"-alpn", "h2,http/1.1"});
  auto ctx = client_ctx();
  ctx.set_alpn({"h2"});
  fern::tls::stream s = fern::tls::connect(ctx, "127.0.0.1", peer.port, "localhost", 5s);
  EXPECT_TRUE(s.handshake_done());
  EXPECT_EQ(s.alpn_protocol(), "h2");
  EXPECT_EQ(s.protocol_version(), "TLSv1.3");
  EXPECT_FALSE(s.cipher().empty());
  EXPECT_EQ(s.verify_result(), X509_V_OK);
  EXPECT_EQ(s.server_name(), "localhost");
  EXPECT_TRUE(s.has_peer_certificate());
  EXPECT_EQ(s.peer_subject(), "CN=localhost,O=fern test");
  EXPECT_EQ(s.peer_issuer(), "CN=fern test CA,O=fern test");
  EXPECT_EQ(s.peer_certificate_pem(), the_pki().server.cert_pem);
  s.write_all("hello fern\n", 5s);
  EXPECT_EQ(read_until(s, '\n'), "nref olleh\n");
  s.write_all("CLOSE\n", 5s);  // s_server answers with close_notify
  char c;
  EXPECT_EQ(s.read(&c, 1, 5s), 0u);
  EXPECT_EQ(s.read(&c, 1, 5s), 0u);  // and stays at EOF
}

TEST(TlsClientTest, SendsSniTheServerChecks) {
  // s_server switches to its second context when the SNI is "localhost" and, with
  // -servername_fatal, refuses any other name with an unrecognized_name alert; -debug makes it
  // print the name it received.
  const identity& id = the_pki().server;
  s_server peer(id, {"-servername", "localhost", "-servername_fatal", "-cert2", id.cert_file,
                     "-key2", id.key_file, "-debug"});
  auto good = fern::tls::connect(client_ctx(), "127.0.0.1", peer.port, "localhost", 5s);
  good.write_all("sni\n", 5s);
  EXPECT_EQ(read_until(good, '\n'), "ins\n");
  end_rev_session(good);
  auto other = client_ctx();
  other.set_check_hostname(false);  // so that a name the certificate lacks gets to the server
  auto c =
      tls_error_of([&] { fern::tls::connect(other, "127.0.0.1", peer.port, "other.example", 5s); });
  EXPECT_NE(c.what.find("unrecognized name"), std::string::npos) << c.what;
  std::string log = peer.proc->output();
  EXPECT_NE(log.find("Hostname in TLS extension: \"localhost\""), std::string::npos);
  EXPECT_NE(log.find("Switching server context"), std::string::npos);
}

TEST(TlsServerTest, OpensslClientTalksToFernServerWithClientCertAndAlpn) {
  auto ctx = server_ctx();
  ctx.load_verify_file(the_pki().ca.cert_file)
      .set_verify(fern::tls::verify_mode::required)
      .set_alpn({"h2", "http/1.1"});
  std::string sni, alpn, subject, line;
  fern_server srv(ctx, [&](fern::tls::stream& s) {
    sni = s.server_name();
    alpn = s.alpn_protocol();
    subject = s.peer_subject();
    line = read_until(s, '\n');
    s.write_all("echo: " + line, 5s);
    s.shutdown(5s);
  });
  std::string in = unique_path("s_client.in");
  tls_test::write_file(in, "hello from s_client\n");
  const auto& p = the_pki();
  tls_test::child cli(
      {"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(srv.port()), "-servername",
       "localhost", "-verify_return_error", "-CAfile", p.ca.cert_file, "-cert", p.client.cert_file,
       "-key", p.client.key_file, "-alpn", "http/1.1,h2", "-ign_eof"},
      unique_path("s_client.out"), in);
  auto status = cli.wait_exit(15s);
  std::string out = cli.output();
  ASSERT_TRUE(status.has_value()) << out;
  EXPECT_EQ(*status, 0) << out;
  EXPECT_NE(out.find("Verify return code: 0 (ok)"), std::string::npos) << out;
  EXPECT_NE(out.find("ALPN protocol: h2"), std::string::npos) << out;  // the server's preference
  EXPECT_NE(out.find("echo: hello from s_client"), std::string::npos) << out;
  EXPECT_TRUE(srv.errors.empty()) << srv.errors.front();
  EXPECT_EQ(srv.served, 1);
  EXPECT_EQ(sni, "localhost");
  EXPECT_EQ(alpn, "h2");
  EXPECT_EQ(subject, "CN=fern client,O=fern test");
  EXPECT_EQ(line, "hello from s_client\n");
}

TEST(TlsServerTest, OpensslClientRejectsFernServerWithUntrustedCertificate) {
  fern_server srv(server_ctx(the_pki().self_signed), [](fern::tls::stream& s) { echo(s); });
  tls_test::child cli(
      {"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(srv.port()), "-servername",
       "localhost", "-verify_return_error", "-CAfile", the_pki().ca.cert_file},
      unique_path("s_client.out"));
  auto status = cli.wait_exit(15s);
  ASSERT_TRUE(status.has_value());
  EXPECT_NE(*status, 0);
  EXPECT_NE(cli.output().find("self-signed certificate"), std::string::npos) << cli.output();
  // The fern side saw the client's alert.
  ASSERT_TRUE(tls_test::eventually([&] { return !srv.errors.empty(); }, 5s));
  EXPECT_NE(srv.errors[0].find("alert"), std::string::npos) << srv.errors[0];
}

// --- verification failures ------------------------------------------------------------------

TEST(TlsVerifyTest, ExpiredCertificateIsRefused) {
  s_server peer(the_pki().expired);
  auto c = tls_error_of(
      [&] { fern::tls::connect(client_ctx(), "127.0.0.1", peer.port, "localhost", 5s); });
  EXPECT_TRUE(c.verify);
  EXPECT_EQ(c.verify_result, X509_V_ERR_CERT_HAS_EXPIRED);
  EXPECT_NE(c.what.find("certificate has expired"), std::string::npos) << c.what;
  EXPECT_NE(c.what.find("certificate verify failed"), std::string::npos) << c.what;
}

TEST(TlsVerifyTest, CertificateForAnotherHostIsRefused) {
  s_server peer(the_pki().wrong_host);
  auto c = tls_error_of(
      [&] { fern::tls::connect(client_ctx(), "127.0.0.1", peer.port, "localhost", 5s); });
  EXPECT_TRUE(c.verify);
  EXPECT_EQ(c.verify_result, X509_V_ERR_HOSTNAME_MISMATCH);
  EXPECT_NE(c.what.find("hostname mismatch"), std::string::npos) << c.what;
}

TEST(TlsVerifyTest, IpLiteralIsCheckedAgainstIpSans) {
  s_server peer(the_pki().server);
  // The certificate has IP:127.0.0.1: the literal itself is the name (no SNI is sent for it).
  auto ok = fern::tls::connect(client_ctx(), "127.0.0.1", peer.port, 5s);
  ok.write_all("ip\n", 5s);
  EXPECT_EQ(read_until(ok, '\n'), "pi\n");
  end_rev_session(ok);
  auto c = tls_error_of(
      [&] { fern::tls::connect(client_ctx(), "127.0.0.1", peer.port, "127.0.0.2", 5s); });
  EXPECT_EQ(c.verify_result, X509_V_ERR_IP_ADDRESS_MISMATCH);
  EXPECT_NE(c.what.find("IP address mismatch"), std::string::npos) << c.what;
  // A DNS name the certificate does not list fails too.
  auto d = tls_error_of(
      [&] { fern::tls::connect(client_ctx(), "127.0.0.1", peer.port, "localhost2", 5s); });
  EXPECT_EQ(d.verify_result, X509_V_ERR_HOSTNAME_MISMATCH);
}

TEST(TlsVerifyTest, SelfSignedCertificateIsRefused) {
  s_server peer(the_pki().self_signed);
  auto c = tls_error_of(
      [&] { fern::tls::connect(client_ctx(), "127.0.0.1", peer.port, "localhost", 5s); });
  EXPECT_TRUE(c.verify);
  EXPECT_EQ(c.verify_result, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
  EXPECT_NE(c.what.find("self-signed certificate"), std::string::npos) << c.what;
}

TEST(TlsVerifyTest, DefaultContextTrustsTheSystemStoreNotOurCa) {
  s_server peer(the_pki().server);
  auto c = tls_error_of([&] {
    fern::tls::connect(fern::tls::context::client(), "127.0.0.1", peer.port, "localhost", 5s);
  });
  EXPECT_TRUE(c.verify);
  EXPECT_EQ(c.verify_result, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY) << c.what;
}

TEST(TlsVerifyTest, VerifyOffConnectsToAnything) {
  s_server peer(the_pki().self_signed);
  auto ctx = fern::tls::context::client();
  ctx.set_verify(fern::tls::verify_mode::none);
  EXPECT_EQ(ctx.verify(), fern::tls::verify_mode::none);
  auto s = fern::tls::connect(ctx, "127.0.0.1", peer.port, "whatever.example", 5s);
  s.write_all("insecure\n", 5s);
  EXPECT_EQ(read_until(s, '\n'), "erucesni\n");
  // The problem was seen, and let through.
  EXPECT_EQ(s.verify_result(), X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
}

TEST(TlsVerifyTest, ServerRequiringClientCertificates) {
  auto ctx = server_ctx();
  ctx.load_verify_file(the_pki().ca.cert_file).set_verify(fern::tls::verify_mode::required);
  std::vector<std::string> subjects;
  fern_server srv(ctx, [&](fern::tls::stream& s) {
    subjects.push_back(s.peer_subject());
    echo(s);
  });
  const auto& p = the_pki();

  // With a certificate from the CA: accepted, and the server sees who it is.
  auto with_cert = client_ctx();
  with_cert.use_certificate_chain_pem(p.client.cert_pem).use_private_key_pem(p.client.key_pem);
  auto s = fern::tls::connect(with_cert, srv.addr(), "localhost", 5s);
  s.write_all("id", 5s);
  s.shutdown(5s);
  EXPECT_EQ(read_all(s), "id");

  // Without one: the server's handshake fails; with TLS 1.3 the client's has already finished,
  // so the server's alert arrives at its first read.
  auto none = fern::tls::connect(client_ctx(), srv.addr(), "localhost", 5s);
  auto c = tls_error_of([&] { read_all(none); });
  EXPECT_NE(c.what.find("certificate required"), std::string::npos) << c.what;

  // With a certificate the CA did not sign: refused by the server's verification.
  auto rogue = client_ctx();
  rogue.use_certificate_chain_file(p.rogue_client.cert_file)
      .use_private_key_file(p.rogue_client.key_file);
  auto r = fern::tls::connect(rogue, srv.addr(), "localhost", 5s);
  auto rc = tls_error_of([&] { read_all(r); });
  EXPECT_NE(rc.what.find("alert"), std::string::npos) << rc.what;

  ASSERT_TRUE(tls_test::eventually([&] { return srv.errors.size() == 2; }, 5s));
  EXPECT_NE(srv.errors[0].find("peer did not return a certificate"), std::string::npos)
      << srv.errors[0];
  EXPECT_NE(srv.errors[1].find("certificate verify failed"), std::string::npos) << srv.errors[1];
  EXPECT_EQ(subjects, std::vector<std::string>{"CN=fern client,O=fern test"});
}

TEST(TlsVerifyTest, OptionalClientCertificateIsVerifiedWhenSent) {
  auto ctx = server_ctx();
  ctx.load_verify_pem(the_pki().ca.cert_pem).set_verify(fern::tls::verify_mode::optional);
  std::vector<bool> had_cert;
  fern_server srv(ctx, [&](fern::tls::stream& s) {
    had_cert.push_back(s.has_peer_certificate());
    echo(s);
  });
  auto anon = fern::tls::connect(client_ctx(), srv.addr(), "localhost", 5s);
  anon.write_all("a", 5s);
  anon.shutdown(5s);
  EXPECT_EQ(read_all(anon), "a");
  auto with_cert = client_ctx();
  with_cert.use_certificate_chain_file(the_pki().client.cert_file)
      .use_private_key_file(the_pki().client.key_file);
  auto named = fern::tls::connect(with_cert, srv.addr(), "localhost", 5s);
  named.write_all("b", 5s);
  named.shutdown(5s);
  EXPECT_EQ(read_all(named), "b");
  EXPECT_EQ(had_cert, (std::vector<bool>{false, true}));
}

// --- ALPN, SNI and versions on fern's server ------------------------------------------------

TEST(TlsServerTest, ServerSeesSniAndPicksAlpnByItsOwnPreference) {
  auto ctx = server_ctx();
  ctx.set_alpn({"http/1.1", "h2"});
  std::vector<std::string> seen;
  fern_server srv(ctx, [&](fern::tls::stream& s) {
    seen.push_back(s.server_name() + "|" + s.alpn_protocol());
    echo(s);
  });
  auto both = client_ctx();
  both.set_alpn({"h2", "http/1.1"});
  auto a = fern::tls::connect(both, srv.addr(), "localhost", 5s);
  EXPECT_EQ(a.alpn_protocol(), "http/1.1");
  auto h2_only = client_ctx();
  h2_only.set_alpn({"h2"});
  auto b = fern::tls::connect(h2_only, srv.addr(), "localhost", 5s);
  EXPECT_EQ(b.alpn_protocol(), "h2");
  auto other = client_ctx();
  other.set_alpn({"spdy/3"});
  auto c = fern::tls::connect(other, srv.addr(), "localhost.", 5s);  // trailing dot dropped
  EXPECT_EQ(c.alpn_protocol(), "");  // nothing in common: no protocol, no failure
  auto d = fern::tls::connect(client_ctx(), "127.0.0.1", srv.port(), 5s);  // IP: no SNI
  for (auto* s : {&a, &b, &c, &d}) {
    s->shutdown(5s);
    EXPECT_EQ(read_all(*s), "");
  }
  ASSERT_TRUE(tls_test::eventually([&] { return seen.size() == 4; }, 5s));
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen,
            (std::vector<std::string>{"localhost|", "localhost|h2", "localhost|http/1.1", "|"}));
}

TEST(TlsServerTest, ProtocolVersionBounds) {
  auto old_server = server_ctx();
  old_server.set_max_version(fern::tls::version::tls1_2);
  fern_server srv(old_server, [](fern::tls::stream& s) { echo(s); });
  auto s = fern::tls::connect(client_ctx(), srv.addr(), "localhost", 5s);
  EXPECT_EQ(s.protocol_version(), "TLSv1.2");
  s.write_all("v12", 5s);
  s.shutdown(5s);
  EXPECT_EQ(read_all(s), "v12");
  auto modern = client_ctx();
  modern.set_min_version(fern::tls::version::tls1_3);
  auto c = tls_error_of([&] { fern::tls::connect(modern, srv.addr(), "localhost", 5s); });
  EXPECT_NE(c.what.find("protocol version"), std::string::npos) << c.what;
}

// --- the end of a stream ---------------------------------------------------------------------

TEST(TlsStreamTest, CloseNotifyIsACleanEofAndShutdownCanWaitForThePeer) {
  fern::event done;
  fern_server srv(server_ctx(), [&](fern::tls::stream& s) {
    s.write_all("bye", 5s);
    EXPECT_FALSE(s.shutdown(5s));  // the client's close_notify has not come yet
    char c;
    EXPECT_EQ(s.read(&c, 1, 5s), 0u);  // it comes
    EXPECT_TRUE(s.shutdown(5s));       // a second call sends nothing and reports it
    done.set();
  });
  auto s = fern::tls::connect(client_ctx(), srv.addr(), "localhost", 5s);
  EXPECT_EQ(read_all(s), "bye");
  EXPECT_TRUE(s.shutdown(true, 5s));
  EXPECT_TRUE(done.wait(5s));
  EXPECT_TRUE(srv.errors.empty()) << srv.errors.front();
}

TEST(TlsStreamTest, ShutdownWaitingForThePeerDiscardsDataBeforeItsCloseNotify) {
  fern_server srv(server_ctx(), [&](fern::tls::stream& s) {
    char c;
    EXPECT_EQ(s.read(&c, 1, 5s), 0u);
    s.write_all(std::string(100000, 'x'), 5s);
    s.shutdown(5s);
  });
  auto s = fern::tls::connect(client_ctx(), srv.addr(), "localhost", 5s);
  EXPECT_TRUE(s.shutdown(true, 5s));
  char c;
  EXPECT_EQ(s.read(&c, 1, 5s), 0u);
  EXPECT_TRUE(srv.errors.empty()) << srv.errors.front();
}

TEST(TlsStreamTest, PeerClosingWithoutCloseNotifyIsAnError) {
  fern_server srv(server_ctx(), [&](fern::tls::stream& s) {
    s.write_all("partial", 5s);
    s.close();  // no close_notify
  });
  auto s = fern::tls::connect(client_ctx(), srv.addr(), "localhost", 5s);
  char buf[7];
  s.read_exactly(buf, 7, 5s);
  EXPECT_EQ(std::string(buf, 7), "partial");
  auto c = tls_error_of([&] { s.read(buf, sizeof buf, 5s); });
  EXPECT_TRUE(c.unexpected_eof) << c.what;
  EXPECT_NE(c.what.find("unexpected eof while reading"), std::string::npos) << c.what;
  // The stream stays failed: no call pretends otherwise.
  auto again = tls_error_of([&] { s.read(buf, sizeof buf, 5s); });
  EXPECT_NE(again.what.find("failed earlier"), std::string::npos) << again.what;
  EXPECT_THROW(s.shutdown(5s), fern::tls::error);
}

TEST(TlsStreamTest, KilledOpensslServerIsATruncationNotEof) {
  s_server peer(the_pki().server);
  auto s = fern::tls::connect(client_ctx(), "127.0.0.1", peer.port, "localhost", 5s);
  s.write_all("ab\n", 5s);
  EXPECT_EQ(read_until(s, '\n'), "ba\n");
  peer.proc->kill();
  char c;
  auto e = tls_error_of([&] { s.read(&c, 1, 5s); });
  EXPECT_TRUE(e.unexpected_eof) << e.what;
}

TEST(TlsStreamTest, PeerClosingMidRecordIsAnErrorNotEof) {
  // Client <-> relay <-> fern server. Once the handshake and a first message are through, the
  // relay passes on only the first 7 bytes of the next record, then ends the stream (FIN).
  fern::event write_second;
  fern_server srv(server_ctx(), [&](fern::tls::stream& s) {
    s.write_all("first", 5s);
    ASSERT_TRUE(write_second.wait(5s));
    s.write_all(std::string(1000, 's'), 5s);
    silent(s.sock());  // keep the connection open
  });
  bool truncate = false;
  std::size_t forwarded_after = 0;
  fern::listener relay(fern::address::parse("127.0.0.1:0"));
  auto relay_fiber = fern::spawn([&] {
    auto down = relay.accept(5s).sock;
    fern::socket up = fern::create_connection(srv.addr(), 5s);
    auto to_server = fern::spawn([&] {
      char buf[4096];
      while (std::size_t n = down.read(buf, sizeof buf, 10s)) up.write_all(buf, n, 5s);
    });
    struct killer {
      fern::fiber<void>& f;
      ~killer() {
        if (f.valid()) f.kill();
      }
    } k{to_server};
    char buf[4096];
    while (std::size_t n = up.read(buf, sizeof buf, 10s)) {
      if (truncate) {
        forwarded_after = std::min<std::size_t>(n, 7);
        down.write_all(buf, forwarded_after, 5s);
        down.shutdown(SHUT_WR);
        break;
      }
      down.write_all(buf, n, 5s);
    }
    to_server.join(10s);
  });
  auto s = fern::tls::connect(client_ctx(), relay.local_address(), "localhost", 5s);
  char buf[5];
  s.read_exactly(buf, 5, 5s);
  EXPECT_EQ(std::string(buf, 5), "first");
  truncate = true;
  write_second.set();
  char big[2000];
  auto c = tls_error_of([&] { s.read(big, sizeof big, 5s); });
  EXPECT_TRUE(c.unexpected_eof) << c.what;
  EXPECT_EQ(forwarded_after, 7u);
  relay_fiber.kill();
}

TEST(TlsStreamTest, PartialRecordDuringTheHandshakeIsAnError) {
  raw_server peer([](fern::socket& s) {
    // Read the ClientHello record (header, then body), answer with a record header and a few
    // bytes of a 64-byte body, then end the stream.
    unsigned char hdr[5];
    s.read_exactly(hdr, 5, 5s);
    std::string body((hdr[3] << 8) | hdr[4], '\0');
    s.read_exactly(body.data(), body.size(), 5s);
    const unsigned char partial[] = {0x16, 0x03, 0x03, 0x00, 0x40, 0x02, 0x00, 0x00, 0x3c};
    s.write_all(partial, sizeof partial, 5s);
    s.shutdown(SHUT_WR);
    silent(s);
  });
  auto c = tls_error_of([&] { fern::tls::connect(client_ctx(), peer.addr(), "localhost", 5s); });
  EXPECT_TRUE(c.unexpected_eof) << c.what;
}

TEST(TlsStreamTest, PeerResettingIsASystemError) {
  raw_server peer([](fern::socket& s) {
    char buf[1];
    s.read(buf, 1, 5s);  // the ClientHello is there, unread: closing now sends RST
    linger lg{1, 0};
    s.set_option(SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    s.close();
  });
  int e = fern_test::system_error_of(
      [&] { fern::tls::connect(client_ctx(), peer.addr(), "localhost", 5s); });
  EXPECT_EQ(e, ECONNRESET);
}

// --- timeouts, kill, close, concurrent use -------------------------------------------------------

TEST(TlsStreamTest, HandshakeWithASilentPeerTimesOut) {
  raw_server peer(silent);
  auto t0 = clk::now();
  try {
    fern::tls::connect(client_ctx(), peer.addr(), "localhost", 200ms);
    ADD_FAILURE() << "no timeout";
  } catch (const fern::timeout_error& e) {
    EXPECT_EQ(e.source(), nullptr);
  }
  auto took = clk::now() - t0;
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 3s);
}

TEST(TlsStreamTest, HandshakeHonoursSocketTimeoutsAndTimeoutScopes) {
  raw_server a(silent);
  fern::socket sock = fern::create_connection(a.addr(), 5s);
  sock.set_timeout(100ms);
  fern::tls::stream s(client_ctx(), std::move(sock), "localhost");
  EXPECT_THROW(s.handshake(), fern::timeout_error);

  raw_server b(silent);
  fern::tls::stream s2(client_ctx(), fern::create_connection(b.addr(), 5s), "localhost");
  {
    fern::timeout scope(100ms);
    try {
      s2.handshake();
      ADD_FAILURE() << "no timeout";
    } catch (const fern::timeout_error& e) {
      EXPECT_TRUE(e.is(scope));
    }
  }
}

TEST(TlsStreamTest, ReadTimesOutAndCanBeRetried) {
  fern::event go;
  fern_server srv(server_ctx(), [&](fern::tls::stream& s) {
    ASSERT_TRUE(go.wait(5s));
    s.write_all("late", 5s);
    s.shutdown(5s);
  });
  auto s = fern::tls::connect(client_ctx(), srv.addr(), "localhost", 5s);
  char buf[4];
  EXPECT_THROW(s.read(buf, 4, 50ms), fern::timeout_error);
  s.sock().set_read_timeout(50ms);
  EXPECT_THROW(s.read(buf, 4), fern::timeout_error);
  go.set();
  s.read_exactly(buf, 4, 5s);
  EXPECT_EQ(std::string(buf, 4), "late");
}

TEST(TlsStreamTest, KillEndsAFiberBlockedInHandshakeOrRead) {
  raw_server peer(silent);
  auto hs = fern::spawn([&] { fern::tls::connect(client_ctx(), peer.addr(), "localhost"); });
  fern_server srv(server_ctx(), [](fern::tls::stream& s) { silent(s.sock()); });
  auto rd = fern::spawn([&] {
    auto s = fern::tls::connect(client_ctx(), srv.addr(), "localhost", 5s);
    char c;
    s.read(&c, 1);
  });
  fern::sleep(100ms);
  EXPECT_FALSE(hs.ready());
  EXPECT_FALSE(rd.ready());
  EXPECT_TRUE(hs.kill({.timeout = 5s}));
  EXPECT_TRUE(rd.kill({.timeout = 5s}));
  EXPECT_TRUE(fern_test::ended_by_kill(hs));
  EXPECT_TRUE(fern_test::ended_by_kill(rd));
}

TEST(TlsStreamTest, CloseWakesABlockedReaderWithEbadf) {
  fern_server srv(server_ctx(), [](fern::tls::stream& s) { silent(s.sock()); });
  auto s = fern::tls::connect(client_ctx(), srv.addr(), "localhost", 5s);
  auto rd = fern::spawn([&] {
    char c;
    return fern_test::system_error_of([&] { s.read(&c, 1, 5s); });
  });
  fern::sleep(50ms);
  s.close();
  EXPECT_FALSE(s.valid());
  EXPECT_EQ(s.native_handle(), nullptr);
  ASSERT_TRUE(rd.join(5s));
  EXPECT_EQ(rd.get(), EBADF);
  char c;
  EXPECT_EQ(fern_test::system_error_of([&] { s.read(&c, 1); }), EBADF);
}

TEST(TlsStreamTest, DestroyingAStreamWakesABlockedReaderWithEbadf) {
  fern_server srv(server_ctx(), [](fern::tls::stream& s) { silent(s.sock()); });
  std::optional<fern::tls::stream> s(fern::tls::connect(client_ctx(), srv.addr(), "localhost", 5s));
  auto rd = fern::spawn([&] {
    char c;
    return fern_test::system_error_of([&] { s->read(&c, 1, 5s); });
  });
  fern::sleep(50ms);
  s.reset();  // the reader still holds the stream's state until it has unwound
  ASSERT_TRUE(rd.join(5s));
  EXPECT_EQ(rd.get(), EBADF);
}

TEST(TlsStreamTest, SecondReaderGetsConcurrentUseError) {
  fern_server srv(server_ctx(), [](fern::tls::stream& s) { silent(s.sock()); });
  auto s = fern::tls::connect(client_ctx(), srv.addr(), "localhost", 5s);
  auto first = fern::spawn([&] {
    char c;
    s.read(&c, 1, 5s);  // parks until killed below
  });
  fern::yield();
  char c;
  EXPECT_THROW(s.read(&c, 1, 10ms), fern::concurrent_use_error);
  first.kill();
}

// --- load ---------------------------------------------------------------------------------------

TEST(TlsStreamTest, FullDuplexOnOneStreamFromTwoFibers) {
  // Each side writes 4 MiB while reading the other's 4 MiB: both socket buffers fill, so reads
  // and writes of one stream park at the same time in different fibers.
  constexpr std::size_t total = 4 << 20;
  auto pattern = [](std::size_t i) { return static_cast<char>('a' + (i * 7) % 26); };
  auto pump = [&](fern::tls::stream& s) {
    std::size_t got = 0;
    bool good = true;
    fern::fiber<void> writer;
    struct killer {
      fern::fiber<void>& f;
      ~killer() {
        if (f.valid()) f.kill();
      }  // if reading failed: the writer must not outlive the stream
    } k{writer};
    writer = fern::spawn([&] {
      std::string chunk(65536, '\0');
      for (std::size_t off = 0; off < total; off += chunk.size()) {
        for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = pattern(off + i);
        s.write_all(chunk, 20s);
      }
      s.shutdown(20s);
    });
    char buf[16384];
    while (std::size_t n = s.read(buf, sizeof buf, 20s)) {
      for (std::size_t i = 0; i < n; ++i) good = good && buf[i] == pattern(got + i);
      got += n;
    }
    writer.get();
    EXPECT_TRUE(good);
    return got;
  };
  std::size_t server_got = 0;
  fern_server srv(server_ctx(), [&](fern::tls::stream& s) { server_got = pump(s); });
  auto s = fern::tls::connect(client_ctx(), srv.addr(), "localhost", 5s);
  EXPECT_EQ(pump(s), total);
  ASSERT_TRUE(tls_test::eventually([&] { return srv.served == 1; }, 10s));
  EXPECT_EQ(server_got, total);
  EXPECT_TRUE(srv.errors.empty()) << srv.errors.front();
}

TEST(TlsStreamTest, HundredConcurrentConnectionsOnOneThread) {
  constexpr int n = 100;
  fern_server srv(server_ctx(), echo);
  auto ctx = client_ctx();  // one context shared by all
  std::vector<fern::fiber<std::string>> clients;
  for (int i = 0; i < n; ++i) {
    clients.push_back(fern::spawn([&, i] {
      auto s = fern::tls::connect(ctx, srv.addr(), "localhost", 10s);
      std::string msg = "client " + std::to_string(i) + " " + std::string(3000 + i, 'x');
      s.write_all(msg, 10s);
      s.shutdown(10s);  // half-close: the echo loop sees EOF and answers with its own
      return read_all(s) == msg ? std::string() : "bad echo for " + std::to_string(i);
    }));
  }
  ASSERT_TRUE(fern::joinall(clients, 60s));
  for (auto& c : clients) EXPECT_EQ(c.get(), "");
  EXPECT_TRUE(tls_test::eventually([&] { return srv.served == n; }, 10s));
  EXPECT_TRUE(srv.errors.empty()) << srv.errors.front();
}

// --- configuration errors --------------------------------------------------------------------

TEST(TlsContextTest, BadFilesAndKeysAreErrorsWithOpensslText) {
  auto c = tls_error_of(
      [] { fern::tls::context::client().load_verify_file(the_pki().path("missing.pem")); });
  EXPECT_NE(c.what.find("missing.pem"), std::string::npos) << c.what;
  EXPECT_NE(c.what.find("No such file or directory"), std::string::npos) << c.what;
  auto k = tls_error_of([] {
    fern::tls::context::server()
        .use_certificate_chain_file(the_pki().server.cert_file)
        .use_private_key_file(the_pki().client.key_file);
  });
  EXPECT_NE(k.what.find("key values mismatch"), std::string::npos) << k.what;
  auto k2 = tls_error_of([] {  // the other order, where OpenSSL itself would drop the key
    fern::tls::context::server()
        .use_private_key_file(the_pki().client.key_file)
        .use_certificate_chain_file(the_pki().server.cert_file);
  });
  EXPECT_NE(k2.what.find("key values mismatch"), std::string::npos) << k2.what;
  fern::tls::context::server()  // the right pair, in that order, is fine
      .use_private_key_pem(the_pki().server.key_pem)
      .use_certificate_chain_pem(the_pki().server.cert_pem);
  auto p = tls_error_of([] { fern::tls::context::client().load_verify_pem("not a PEM"); });
  EXPECT_NE(p.what.find("load_verify_pem"), std::string::npos) << p.what;
  EXPECT_THROW(fern::tls::context::client().set_alpn({""}), std::invalid_argument);
  EXPECT_THROW(fern::tls::context::client().set_alpn({std::string(256, 'a')}),
               std::invalid_argument);
  EXPECT_EQ(ERR_peek_error(), 0u);  // nothing left on this thread's queue
}

TEST(TlsContextTest, PemInMemoryWorksLikeFiles) {
  const auto& p = the_pki();
  auto sctx = fern::tls::context::server();
  sctx.use_certificate_chain_pem(p.server.cert_pem + p.ca.cert_pem)
      .use_private_key_pem(p.server.key_pem);
  fern_server srv(sctx, echo);
  auto cctx = fern::tls::context::client();
  cctx.load_verify_pem(p.ca.cert_pem);
  auto s = fern::tls::connect(cctx, srv.addr(), "localhost", 5s);
  s.write_all("pem", 5s);
  s.shutdown(5s);
  EXPECT_EQ(read_all(s), "pem");
}

TEST(TlsContextTest, StreamArgumentsAreChecked) {
  raw_server peer(silent);
  EXPECT_THROW(fern::tls::stream(client_ctx(), fern::create_connection(peer.addr(), 5s), ""),
               std::invalid_argument);
  EXPECT_THROW(fern::tls::stream(server_ctx(), fern::socket(AF_INET, SOCK_STREAM), "name"),
               std::invalid_argument);
  EXPECT_THROW(fern::tls::stream(fern::tls::context(), fern::socket(AF_INET, SOCK_STREAM)),
               std::invalid_argument);
  EXPECT_THROW(fern::tls::connect(client_ctx(), "localhost", 443, 1s), std::invalid_argument);
  auto no_check = client_ctx();
  no_check.set_check_hostname(false);
  fern::tls::stream ok(no_check, fern::socket(AF_INET, SOCK_STREAM));  // no name needed
  EXPECT_TRUE(ok.valid());
  fern::tls::stream empty;
  EXPECT_FALSE(empty.valid());
  char c;
  EXPECT_EQ(fern_test::system_error_of([&] { empty.read(&c, 1); }), EBADF);
}

}  // namespace
