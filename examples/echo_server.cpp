// An echo server on fern's C++ API: fern::stream_server runs the handler below in a fiber per
// connection, and each read()/write_all() that would block parks only that fiber. Plain
// blocking-style code, thousands of connections, one thread.
//
//   usage: echo_server [PORT [MAX_CONNECTIONS]]
// Listens on 127.0.0.1:PORT (0 or none: a free port), prints "listening on ADDRESS" and serves
// until killed. With MAX_CONNECTIONS, at most that many connections are served at once; the
// rest wait in the kernel's backlog. It is the fern entry of the echo benchmark
// (../shared/anchors: loadclient -p PORT -c 1000).
#include <fern/fern.hpp>

#include <sys/resource.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>

namespace {

void echo(fern::socket& conn, const fern::address& /*peer*/) {
  conn.set_nodelay(true);
  char buf[16384];
  try {
    while (std::size_t n = conn.read(buf, sizeof buf)) conn.write_all(buf, n);
  } catch (const std::system_error& e) {
    // A client that vanishes (reset, or closed while we write) is normal for a server; anything
    // else escapes and is reported on stderr, ending only this connection.
    if (e.code().value() != ECONNRESET && e.code().value() != EPIPE) throw;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 3 || (argc > 1 && std::string(argv[1]) == "--help")) {
    std::fprintf(stderr, "usage: %s [PORT [MAX_CONNECTIONS]]\n", argv[0]);
    return 2;
  }
  std::string port = argc > 1 ? argv[1] : "0";
  fern::server_options opts;
  if (argc > 2) opts.max_connections = std::strtoul(argv[2], nullptr, 10);

  // Two fds per connection would hit the usual 1024 soft limit quickly: take the hard limit.
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  try {
    fern::stream_server server(fern::address::parse("127.0.0.1:" + port), echo, opts);
    std::printf("listening on %s\n", server.local_address().to_string().c_str());
    std::fflush(stdout);
    server.serve_forever();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "echo_server: %s\n", e.what());
    return 1;
  }
}
