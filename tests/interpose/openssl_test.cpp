// Unmodified blocking OpenSSL code under the shim: plain socket()/connect()/accept() and
// SSL_set_fd/SSL_connect/SSL_accept/SSL_read/SSL_write on blocking sockets, written as any C
// program would, running in several fern fibers on one thread. OpenSSL's socket BIO calls read()
// and write(), which the shim turns into fiber waits, so N connections that each wait ~200 ms on
// a slow peer finish in about one delay, not N. The peers are fern::tls (whose own I/O bypasses
// the shim) in the same process. Loopback only; every wait is bounded.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "../unit/tls_test_util.hpp"
#include "fern/fern.hpp"
#include "shim_test_util.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

constexpr int n_conns = 5;
constexpr auto delay = 200ms;
constexpr double delay_ms = 200;

std::string openssl_error() {
  char buf[256] = "";
  ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

// A blocking TLS client as a C program writes it: one request, one response. The socket has
// 5 s SO_RCVTIMEO/SO_SNDTIMEO so that nothing can hang. Returns the response or "error: ...".
std::string blocking_client(std::uint16_t port, const char* ca_file, const std::string& request) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_load_verify_file(ctx, ca_file);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv = {5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string result;
  SSL* ssl = nullptr;
  char buf[256];
  int n = 0;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    result = "error: connect " + std::to_string(errno);
    goto out;
  }
  ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, "localhost");
  SSL_set1_host(ssl, "localhost");
  if (SSL_connect(ssl) != 1) {
    result = "error: SSL_connect " + openssl_error();
    goto out;
  }
  if (SSL_write(ssl, request.data(), static_cast<int>(request.size())) <= 0) {
    result = "error: SSL_write " + openssl_error();
    goto out;
  }
  n = SSL_read(ssl, buf, sizeof buf);
  if (n <= 0) {
    result = "error: SSL_read " + openssl_error();
    goto out;
  }
  result.assign(buf, static_cast<std::size_t>(n));
  SSL_shutdown(ssl);
out:
  SSL_free(ssl);
  ::close(fd);
  SSL_CTX_free(ctx);
  return result;
}

// A blocking TLS server connection as a C program writes it: handshake, one request, a slow
// answer (usleep, which the shim also makes cooperative), close_notify.
void blocking_serve(SSL_CTX* ctx, int fd, int* in_flight, int* max_in_flight) {
  timeval tv = {5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  char buf[256];
  int n = 0;
  if (SSL_accept(ssl) == 1 && (n = SSL_read(ssl, buf, sizeof buf)) > 0) {
    *max_in_flight = std::max(*max_in_flight, ++*in_flight);
    ::usleep(static_cast<useconds_t>(std::chrono::microseconds(delay).count()));
    --*in_flight;
    std::string reply = "slow:" + std::string(buf, static_cast<std::size_t>(n));
    SSL_write(ssl, reply.data(), static_cast<int>(reply.size()));
    SSL_shutdown(ssl);
  } else {
    ADD_FAILURE() << "server: " << openssl_error();
  }
  SSL_free(ssl);
  ::close(fd);
}

TEST(ShimOpensslTest, BlockingClientsInFibersOverlap) {
  // A fern::tls server in this process: each request waits `delay` before its answer.
  auto sctx = fern::tls::context::server();
  sctx.use_certificate_chain_file(tls_test::the_pki().server.cert_file)
      .use_private_key_file(tls_test::the_pki().server.key_file);
  int in_flight = 0, max_in_flight = 0;
  fern::stream_server srv(fern::address::parse("127.0.0.1:0"),
                          [&](fern::socket& conn, const fern::address&) {
                            fern::tls::stream s(sctx, std::move(conn));
                            char buf[256];
                            std::size_t n = s.read(buf, sizeof buf, 5s);
                            max_in_flight = std::max(max_in_flight, ++in_flight);
                            fern::sleep(delay);
                            --in_flight;
                            s.write_all("slow:" + std::string(buf, n), 5s);
                            s.shutdown(5s);
                          });
  srv.start();
  std::uint16_t port = srv.local_address().port();
  std::string ca = tls_test::the_pki().ca.cert_file;

  auto t0 = steady::now();
  std::vector<fern::fiber<std::string>> clients;
  for (int i = 0; i < n_conns; ++i)
    clients.push_back(fern::spawn(
        [&, i] { return blocking_client(port, ca.c_str(), "request " + std::to_string(i)); }));
  ASSERT_TRUE(fern::joinall(clients, 30s));
  double ms = shim_test::ms_since(t0);
  for (int i = 0; i < n_conns; ++i)
    EXPECT_EQ(clients[i].get(), "slow:request " + std::to_string(i));
  // All N requests were waiting at the server at once: every client fiber was parked in
  // SSL_read (the shim's read), not blocking the thread.
  EXPECT_EQ(max_in_flight, n_conns);
  EXPECT_LT(ms, delay_ms * (n_conns - 1));
  srv.stop(1s);
}

TEST(ShimOpensslTest, BlockingServerServesConnectionsConcurrently) {
  // The server: blocking socket()/bind()/listen()/accept() and OpenSSL calls, a fiber per
  // connection, exactly n_conns connections.
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  ASSERT_EQ(SSL_CTX_use_certificate_chain_file(ctx, tls_test::the_pki().server.cert_file.c_str()),
            1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey_file(ctx, tls_test::the_pki().server.key_file.c_str(),
                                        SSL_FILETYPE_PEM),
            1);
  shim_test::listener l;
  int in_flight = 0, max_in_flight = 0;
  auto server = fern::spawn([&] {
    fern::timeout bound(30s);  // the shim's accept fails with ETIMEDOUT past it
    std::vector<fern::fiber<void>> conns;
    for (int i = 0; i < n_conns; ++i) {
      int c = ::accept(l.fd, nullptr, nullptr);
      if (c < 0) {
        ADD_FAILURE() << "accept: " << errno;
        break;
      }
      conns.push_back(fern::spawn(blocking_serve, ctx, c, &in_flight, &max_in_flight));
    }
    fern::joinall(conns, 30s);
  });

  // The clients: fern::tls streams.
  auto cctx = fern::tls::context::client();
  cctx.load_verify_file(tls_test::the_pki().ca.cert_file);
  auto t0 = steady::now();
  std::vector<fern::fiber<std::string>> clients;
  for (int i = 0; i < n_conns; ++i)
    clients.push_back(fern::spawn([&, i] {
      auto s = fern::tls::connect(cctx, "127.0.0.1", ntohs(l.addr.sin_port), "localhost", 5s);
      s.write_all("hello " + std::to_string(i), 5s);
      std::string got;
      char buf[256];
      while (std::size_t n = s.read(buf, sizeof buf, 5s)) got.append(buf, n);  // to close_notify
      return got;
    }));
  ASSERT_TRUE(fern::joinall(clients, 30s));
  double ms = shim_test::ms_since(t0);
  ASSERT_TRUE(server.join(10s));
  for (int i = 0; i < n_conns; ++i) EXPECT_EQ(clients[i].get(), "slow:hello " + std::to_string(i));
  EXPECT_EQ(max_in_flight, n_conns);
  EXPECT_LT(ms, delay_ms * (n_conns - 1));
  SSL_CTX_free(ctx);
}

TEST(ShimOpensslTest, BlockingHandshakeHonoursSoRcvtimeoWhileOthersRun) {
  // A peer that accepts and never answers: SSL_connect waits in the shim's read until
  // SO_RCVTIMEO, which surfaces as OpenSSL's retry (EAGAIN); other fibers run meanwhile.
  shim_test::listener l;
  int ticks = 0;
  auto ticker = fern::spawn([&] {
    for (;;) {
      fern::sleep(10ms);
      ++ticks;
    }
  });
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv = {0, 200000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ASSERT_EQ(::connect(fd, l.sa(), sizeof l.addr), 0);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  auto t0 = steady::now();
  int r = SSL_connect(ssl);
  int saved_errno = errno;
  double ms = shim_test::ms_since(t0);
  EXPECT_EQ(r, -1);
  EXPECT_EQ(SSL_get_error(ssl, r), SSL_ERROR_WANT_READ);
  EXPECT_EQ(saved_errno, EAGAIN);
  EXPECT_GE(ms, 190);
  EXPECT_GE(ticks, 5);  // the hub ran the ticker while SSL_connect waited
  ticker.kill();
  SSL_free(ssl);
  ::close(fd);
  SSL_CTX_free(ctx);
}

}  // namespace
