// https_hello: the server side of fern::tls on its own. A fern::stream_server hands each
// connection to a fiber, which wraps the socket in a fern::tls::stream, reads one request, waits
// --delay-ms (parking only itself) and answers with a fixed HTML page, then ends the TLS stream
// with close_notify. A handshake a client rejects (an untrusted certificate, say) costs only its
// own fiber. fetch_urls_demo.sh uses it as the https:// server next to weather_upstream.
//
//   usage: https_hello --cert FILE --key FILE [--port N] [--delay-ms N]
// Prints "listening on ADDRESS", then one line per connection; SIGINT or SIGTERM stop it.
#include <fern/fern.hpp>
#include <fern/tls.hpp>

#include "mini_http.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>

using namespace std::chrono_literals;

namespace {

const char page[] =
    "<!doctype html>\n"
    "<html><head><title>hello from fern</title></head>\n"
    "<body><p>Served over TLS by a fiber: fern::stream_server + fern::tls::stream.</p></body>\n"
    "</html>\n";

struct options {
  std::string port = "0";
  std::chrono::milliseconds delay{0};
  std::string cert, key;
};

// One connection: handshake, read the request head, wait, answer, close_notify. Every step is
// bounded, so a client that stalls holds only this fiber, and only for a while.
void serve(fern::socket& conn, const fern::address& peer, const fern::tls::context& ctx,
           const options& opts) {
  conn.set_nodelay(true);
  conn.set_timeout(10s);  // the default for every read, write and the handshake below
  fern::tls::stream tls(ctx, std::move(conn));
  std::string request_line = "-";
  try {
    tls.handshake();
    std::string head;
    char buf[2048];
    while (head.find("\r\n\r\n") == std::string::npos) {
      std::size_t n = tls.read(buf, sizeof buf);
      if (n == 0 || head.size() > 16 * 1024) return;  // closed, or not HTTP
      head.append(buf, n);
    }
    request_line = head.substr(0, head.find("\r\n"));
    if (opts.delay.count() > 0) fern::sleep(opts.delay);  // parks this connection only
    tls.write_all(
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "Content-Length: " +
        std::to_string(sizeof page - 1) +
        "\r\n"
        "Connection: close\r\n\r\n" +
        page);
    tls.shutdown();
    std::printf("%s \"%s\" 200 %s\n", peer.to_string().c_str(), request_line.c_str(),
                tls.protocol_version().c_str());
  } catch (const fern::tls::error& e) {  // the client rejected us, or spoke something else
    std::printf("%s \"%s\" tls error: %s\n", peer.to_string().c_str(), request_line.c_str(),
                e.what());
  } catch (const fern::timeout_error&) {
    std::printf("%s \"%s\" timed out\n", peer.to_string().c_str(), request_line.c_str());
  } catch (const std::system_error& e) {  // reset or gone
    std::printf("%s \"%s\" %s\n", peer.to_string().c_str(), request_line.c_str(), e.what());
  }
}

int usage(const char* argv0, int rc) {
  std::fprintf(rc ? stderr : stdout,
               "usage: %s --cert FILE --key FILE [options]\n"
               "  --cert FILE      certificate chain (PEM, leaf first)\n"
               "  --key FILE       its private key (PEM, unencrypted)\n"
               "  --port N         listen on 127.0.0.1:N (default 0: a free port)\n"
               "  --delay-ms N     wait N ms before each answer (default 0)\n"
               "Answers every HTTPS request with a small HTML page.\n",
               argv0);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  options opts;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return usage(argv[0], 0);
    if (i + 1 == argc) return usage(argv[0], 2);
    std::string val = argv[++i];
    if (arg == "--port") {
      opts.port = val;
    } else if (arg == "--delay-ms") {
      opts.delay = std::chrono::milliseconds(std::strtol(val.c_str(), nullptr, 10));
    } else if (arg == "--cert") {
      opts.cert = val;
    } else if (arg == "--key") {
      opts.key = val;
    } else {
      return usage(argv[0], 2);
    }
  }
  if (opts.cert.empty() || opts.key.empty()) return usage(argv[0], 2);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // one log line at a time, also into a file

  try {
    // Loaded once, shared by every connection's stream.
    fern::tls::context ctx = fern::tls::context::server();
    ctx.use_certificate_chain_file(opts.cert).use_private_key_file(opts.key);
    fern::stream_server server(
        fern::address::parse("127.0.0.1:" + opts.port),
        [&](fern::socket& conn, const fern::address& peer) { serve(conn, peer, ctx, opts); });
    std::printf("listening on %s\n", server.local_address().to_string().c_str());
    mini_http::serve_until_signalled(server);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "https_hello: %s\n", e.what());
    return 1;
  }
}
