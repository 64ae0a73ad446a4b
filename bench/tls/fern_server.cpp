// fern's side of the TLS benchmark (bench/tls.sh): a TLS echo server on one thread, a fiber per
// connection (fern::stream_server + fern::tls::stream), with the same certificate, key and
// protocol settings as the thread-per-connection baseline (bench/tls/thread_server.c).
//
//   usage: bench_tls_fern_server PORT CERT KEY
#include <openssl/ssl.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "fern/fern.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s PORT CERT KEY\n", argv[0]);
    return 2;
  }
  try {
    fern::tls::context ctx = fern::tls::context::server();
    ctx.use_certificate_chain_file(argv[2]).use_private_key_file(argv[3]);
    ctx.set_min_version(fern::tls::version::tls1_2);
    // As the baseline: full handshakes only (no session cache, no tickets).
    SSL_CTX_set_session_cache_mode(ctx.native_handle(), SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx.native_handle(), SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx.native_handle(), 0);

    auto port = static_cast<std::uint16_t>(std::atoi(argv[1]));
    fern::stream_server server(
        fern::address::ip("127.0.0.1", port), [&ctx](fern::socket& conn, const fern::address&) {
          conn.set_nodelay(true);
          fern::tls::stream s(ctx, std::move(conn));
          char buf[16384];
          try {
            for (;;) {
              std::size_t n = s.read(buf, sizeof buf);
              if (n == 0) break;
              s.write_all(buf, n);
            }
            s.shutdown(false);
          } catch (const std::exception&) {
            // A client that goes away mid-stream: nothing to report in a benchmark.
          }
        });
    server.serve_forever();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_tls_fern_server: %s\n", e.what());
    return 1;
  }
}
