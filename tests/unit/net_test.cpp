// Cooperative sockets (net.hpp): addresses, stream sockets over 127.0.0.1, ::1 and Unix sockets,
// timeouts, kill, close-while-waiting, concurrent use, UDP and Unix datagrams, listeners.
// Network on loopback only; Unix sockets live in a temporary directory removed at the end.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "fern/fern.hpp"

using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

namespace {

// A fresh directory for Unix socket files, removed with everything in it.
struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/fern-net-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::system_error(errno, std::generic_category(), "mkdtemp");
    path = tmpl;
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
  fern::address sock(const char* name) const { return fern::address::unix_path(path + "/" + name); }
};

struct conn_pair {
  fern::socket client;
  fern::socket server;
  fern::address server_peer;  // what accept() reported
};

// A connection through a listener on `where` (port 0 / a fresh path), accepted.
conn_pair connect_pair(const fern::address& where) {
  fern::listener l(where);
  conn_pair p;
  p.client = fern::create_connection(l.local_address(), 5s);
  auto acc = l.accept(5s);
  p.server = std::move(acc.sock);
  p.server_peer = acc.peer;
  return p;
}

std::string read_string(fern::socket& s, std::size_t n) {
  std::string out(n, '\0');
  s.read_exactly(out.data(), n, 5s);
  return out;
}

int errno_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::system_error& e) {
    return e.code().value();
  }
  return 0;
}

// One request/response over a connected pair: the server echoes until EOF.
void check_echo(conn_pair& p) {
  auto echo = fern::spawn([&] {
    char buf[64];
    while (std::size_t n = p.server.read(buf, sizeof buf, 5s)) p.server.write_all(buf, n, 5s);
    p.server.close();
  });
  p.client.write_all("hello, fern", 5s);
  EXPECT_EQ(read_string(p.client, 11), "hello, fern");
  p.client.shutdown(SHUT_WR);
  char c;
  EXPECT_EQ(p.client.read(&c, 1, 5s), 0u);  // the echo loop saw EOF and closed
  echo.get();
}

}  // namespace

// --- addresses ------------------------------------------------------------------------------

TEST(AddressTest, ParsesIpv4AndPort) {
  auto a = fern::address::parse("127.0.0.1:8080");
  EXPECT_EQ(a.family(), AF_INET);
  EXPECT_TRUE(a.is_ip());
  EXPECT_EQ(a.port(), 8080);
  EXPECT_EQ(a.host(), "127.0.0.1");
  EXPECT_EQ(a.to_string(), "127.0.0.1:8080");
  EXPECT_EQ(a.size(), sizeof(sockaddr_in));
}

TEST(AddressTest, ParsesBracketedIpv6WithOptionalZone) {
  auto a = fern::address::parse("[::1]:80");
  EXPECT_EQ(a.family(), AF_INET6);
  EXPECT_EQ(a.port(), 80);
  EXPECT_EQ(a.host(), "::1");
  EXPECT_EQ(a.to_string(), "[::1]:80");
  auto z = fern::address::parse("[fe80::1%1]:443");  // index 1 is the loopback interface
  EXPECT_EQ(z.port(), 443);
  EXPECT_NE(z.to_string().find('%'), std::string::npos);
  EXPECT_EQ(fern::address::parse(z.to_string()), z);
  EXPECT_EQ(fern::address::ip("::1", 9), fern::address::parse("[::1]:9"));
}

TEST(AddressTest, WildcardHostIsIpv4Any) {
  EXPECT_EQ(fern::address::parse(":8080").to_string(), "0.0.0.0:8080");
}

TEST(AddressTest, ParsesUnixPathsAndAbstractNames) {
  auto p = fern::address::parse("unix:/tmp/app.sock");
  EXPECT_TRUE(p.is_unix());
  EXPECT_EQ(p.port(), 0);
  EXPECT_EQ(p.host(), "/tmp/app.sock");
  EXPECT_EQ(p.to_string(), "unix:/tmp/app.sock");
  EXPECT_EQ(p, fern::address::unix_path("/tmp/app.sock"));
  auto a = fern::address::parse("unix:@fern-test");
  EXPECT_EQ(a.host(), "@fern-test");
  EXPECT_EQ(a.to_string(), "unix:@fern-test");
  EXPECT_EQ(a, fern::address::unix_abstract("fern-test"));
  EXPECT_FALSE(a == p);
}

TEST(AddressTest, RejectsMalformedOrNonNumericText) {
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
                          "127.0.0.1:8o", "localhost:80", "1.2.3:80", "::1:80", "[::1]", "[::1]80",
                          "[::1:80", "[127.0.0.1]:80", "[fe80::1%]:80", ""})
    EXPECT_THROW(fern::address::parse(bad), std::invalid_argument) << bad;
  EXPECT_THROW(fern::address::parse("unix:/" + std::string(200, 'x')), std::invalid_argument);
  EXPECT_THROW(fern::address::unix_path(""), std::invalid_argument);
  EXPECT_THROW(fern::address::parse("unix:/x").with_port(1), std::invalid_argument);
}

TEST(AddressTest, RoundTripsThroughSockaddrAndWithPort) {
  for (const char* text : {"10.1.2.3:1", "[2001:db8::5]:65535", "unix:/run/x", "unix:@abs"}) {
    auto a = fern::address::parse(text);
    fern::address b(a.data(), a.size());
    EXPECT_EQ(a, b) << text;
    EXPECT_EQ(b.to_string(), text);
  }
  auto a = fern::address::parse("10.1.2.3:1").with_port(99);
  EXPECT_EQ(a.to_string(), "10.1.2.3:99");
}

TEST(AddressTest, DefaultIsEmpty) {
  fern::address a;
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.to_string(), "");
  EXPECT_EQ(a, fern::address());
}

// --- stream sockets: echo on every family ---------------------------------------------------

TEST(SocketTest, EchoesOverIpv4Loopback) {
  conn_pair p = connect_pair(fern::address::parse("127.0.0.1:0"));
  EXPECT_EQ(p.client.peer_address(), p.server.local_address());
  EXPECT_EQ(p.server_peer, p.client.local_address());
  EXPECT_EQ(p.server_peer.host(), "127.0.0.1");
  p.client.set_nodelay(true);
  EXPECT_NE(p.client.get_option(IPPROTO_TCP, TCP_NODELAY), 0);
  check_echo(p);
}

TEST(SocketTest, EchoesOverIpv6Loopback) {
  conn_pair p;
  try {
    p = connect_pair(fern::address::parse("[::1]:0"));
  } catch (const std::system_error& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  EXPECT_EQ(p.client.peer_address(), p.server.local_address());
  EXPECT_EQ(p.server_peer.family(), AF_INET6);
  check_echo(p);
}

TEST(SocketTest, EchoesOverUnixSocketPath) {
  temp_dir dir;
  conn_pair p = connect_pair(dir.sock("echo.sock"));
  EXPECT_EQ(p.client.peer_address(), dir.sock("echo.sock"));
  EXPECT_EQ(p.server_peer.to_string(), "unix:");  // the client is unnamed
  check_echo(p);
}

TEST(SocketTest, EchoesOverAbstractUnixSocket) {
  auto where = fern::address::unix_abstract("fern-net-test-" + std::to_string(::getpid()));
  conn_pair p = connect_pair(where);
  EXPECT_EQ(p.client.peer_address(), where);
  check_echo(p);
}

TEST(SocketTest, SocketpairEndsTalkBothWays) {
  // Not a structured binding: clang 14 cannot capture those in lambdas.
  auto pair_ab = fern::socketpair();
  [[maybe_unused]] auto& a = pair_ab.first;
  [[maybe_unused]] auto& b = pair_ab.second;
  a.write_all("ping");
  EXPECT_EQ(read_string(b, 4), "ping");
  b.write_all("pong");
  EXPECT_EQ(read_string(a, 4), "pong");
}

// --- reads and writes -----------------------------------------------------------------------

TEST(SocketTest, ReadReturnsWhatIsAvailableWithoutWaitingForMore) {
  auto pr = fern::socketpair();
  fern::socket& a = pr.first;
  fern::socket& b = pr.second;
  std::vector<std::string> log;
  auto reader = fern::spawn([&] {
    char buf[100];
    std::size_t n = a.read(buf, sizeof buf, 5s);
    log.push_back("read " + std::string(buf, n));
  });
  auto writer = fern::spawn([&] {
    b.write_all("abc");
    log.push_back("wrote abc");
    fern::sleep(30ms);
    log.push_back("writing def");
    b.write_all("def");
  });
  fern::joinall({reader, writer});
  EXPECT_EQ(log, (std::vector<std::string>{"wrote abc", "read abc", "writing def"}));
}

TEST(SocketTest, ReadExactlyAssemblesSeveralWrites) {
  conn_pair p = connect_pair(fern::address::parse("127.0.0.1:0"));
  std::vector<std::string> log;
  auto writer = fern::spawn([&] {
    for (const char* part : {"he", "llo wo", "rld"}) {
      p.server.write_all(part);
      log.push_back(std::string("wrote ") + part);
      fern::sleep(5ms);
    }
  });
  char buf[11];
  p.client.read_exactly(buf, sizeof buf, 5s);
  log.push_back("got " + std::string(buf, sizeof buf));
  writer.get();
  EXPECT_EQ(log,
            (std::vector<std::string>{"wrote he", "wrote llo wo", "wrote rld", "got hello world"}));
}

TEST(SocketTest, ReadExactlyThrowsEofErrorWithWhatArrived) {
  // Not a structured binding: clang 14 cannot capture those in lambdas.
  auto pair_ab = fern::socketpair();
  [[maybe_unused]] auto& a = pair_ab.first;
  [[maybe_unused]] auto& b = pair_ab.second;
  b.write_all("abc");
  b.close();
  char buf[10] = {};
  try {
    a.read_exactly(buf, sizeof buf, 5s);
    FAIL() << "no eof_error";
  } catch (const fern::eof_error& e) {
    EXPECT_EQ(e.received(), 3u);
    EXPECT_EQ(std::string(buf, 3), "abc");
  }
}

TEST(SocketTest, ReadReturnsZeroAtEndOfStream) {
  conn_pair p = connect_pair(fern::address::parse("127.0.0.1:0"));
  auto closer = fern::spawn([&] {
    fern::sleep(5ms);
    p.server.close();
  });
  char c;
  EXPECT_EQ(p.client.read(&c, 1, 5s), 0u);
  EXPECT_EQ(p.client.read(&c, 1, 5s), 0u);
  closer.get();
}

TEST(SocketTest, ReadFromResetConnectionThrowsEconnreset) {
  conn_pair p = connect_pair(fern::address::parse("127.0.0.1:0"));
  auto resetter = fern::spawn([&] {
    fern::sleep(5ms);
    linger lg{1, 0};  // close with RST
    p.server.set_option(SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    p.server.close();
  });
  char c;
  EXPECT_EQ(errno_of([&] { p.client.read(&c, 1, 5s); }), ECONNRESET);
  resetter.get();
}

TEST(SocketTest, WriteToResetPeerThrowsInsteadOfRaisingSigpipe) {
  conn_pair p = connect_pair(fern::address::parse("127.0.0.1:0"));
  linger lg{1, 0};
  p.server.set_option(SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  p.server.close();
  int err = 0;
  for (int i = 0; i < 50 && err == 0; ++i) {
    err = errno_of([&] { p.client.write_all("x", 1s); });
    if (err == 0) fern::sleep(2ms);
  }
  EXPECT_TRUE(err == EPIPE || err == ECONNRESET) << err;
  EXPECT_EQ(errno_of([&] { p.client.write_all("x", 1s); }), EPIPE);  // and the process lives
}

TEST(SocketTest, WriteAllWaitsWhileThePeerIsSlowToRead) {
  // Not a structured binding: clang 14 cannot capture those in lambdas.
  auto pair_ab = fern::socketpair();
  [[maybe_unused]] auto& a = pair_ab.first;
  [[maybe_unused]] auto& b = pair_ab.second;
  a.set_option(SOL_SOCKET, SO_SNDBUF, 4096);
  std::string data(1 << 20, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 23);
  std::vector<std::string> log;
  auto writer = fern::spawn([&] {
    a.write_all(data, 10s);
    log.push_back("writer done");
  });
  std::string got;
  char buf[8192];
  bool first = true;
  while (got.size() < data.size()) {
    std::size_t n = b.read(buf, sizeof buf, 10s);
    ASSERT_GT(n, 0u);
    got.append(buf, n);
    if (first) log.push_back("reader got some");
    first = false;
    if (got.size() < 64 * 1024) fern::sleep(1ms);  // slow at first: the writer must wait
  }
  writer.get();
  EXPECT_EQ(got, data);
  EXPECT_EQ(log, (std::vector<std::string>{"reader got some", "writer done"}));
}

TEST(SocketTest, ReadvAndWritevMoveScatteredBuffers) {
  // Not a structured binding: clang 14 cannot capture those in lambdas.
  auto pair_ab = fern::socketpair();
  [[maybe_unused]] auto& a = pair_ab.first;
  [[maybe_unused]] auto& b = pair_ab.second;
  char h[] = "head:", body[] = "body";
  iovec out[2] = {{h, 5}, {body, 4}};
  EXPECT_EQ(a.writev(out, 2, 1s), 9u);
  char x[3], y[6];
  iovec in[2] = {{x, 3}, {y, 6}};
  EXPECT_EQ(b.readv(in, 2, 1s), 9u);
  EXPECT_EQ(std::string(x, 3) + std::string(y, 6), "head:body");
}

TEST(SocketTest, ShutdownWriteSendsEofButKeepsTheOtherDirection) {
  conn_pair p = connect_pair(fern::address::parse("127.0.0.1:0"));
  p.client.write_all("req");
  p.client.shutdown(SHUT_WR);
  char buf[8];
  EXPECT_EQ(read_string(p.server, 3), "req");
  EXPECT_EQ(p.server.read(buf, sizeof buf, 5s), 0u);
  p.server.write_all("resp");
  EXPECT_EQ(read_string(p.client, 4), "resp");
}

// --- connect --------------------------------------------------------------------------------

TEST(SocketTest, ConnectToAClosedPortIsRefused) {
  fern::address where;
  {
    fern::listener l(fern::address::parse("127.0.0.1:0"));
    where = l.local_address();
  }  // closed: nothing listens on that port now
  EXPECT_EQ(errno_of([&] { fern::create_connection(where, 5s); }), ECONNREFUSED);
}

TEST(SocketTest, ConnectTimesOutWhenTheListenerBacklogIsFull) {
  // A loopback listener that never accepts: once its accept queue is full, Linux drops further
  // SYNs and the client waits in SYN_SENT for a retransmission (1 s), past our timeout.
  fern::listener l(fern::address::parse("127.0.0.1:0"), {.backlog = 0});
  std::vector<fern::socket> held;
  bool timed_out = false;
  for (int i = 0; i < 8 && !timed_out; ++i) {
    auto t0 = clk::now();
    try {
      held.push_back(fern::create_connection(l.local_address(), 100ms));
    } catch (const fern::timeout_error& e) {
      EXPECT_EQ(e.source(), nullptr);
      EXPECT_GE(clk::now() - t0, 100ms);
      timed_out = true;
    }
  }
  EXPECT_TRUE(timed_out) << "the backlog never filled";
  EXPECT_GE(held.size(), 1u);
}

TEST(SocketTest, ConnectToAFullUnixBacklogRetriesUntilItsTimeout) {
  temp_dir dir;
  fern::listener l(dir.sock("full.sock"), {.backlog = 0});
  std::vector<fern::socket> held;
  bool timed_out = false;
  for (int i = 0; i < 8 && !timed_out; ++i) {
    try {
      held.push_back(fern::create_connection(l.local_address(), 30ms));
    } catch (const fern::timeout_error&) {
      timed_out = true;
    }
  }
  ASSERT_TRUE(timed_out) << "the Unix backlog never filled";
  // A connect waiting for room succeeds once the server accepts one.
  auto late = fern::spawn([&] { return fern::create_connection(l.local_address(), 5s); });
  fern::sleep(20ms);
  EXPECT_FALSE(late.ready());
  auto first = l.accept(1s);
  EXPECT_TRUE(late.get().valid());
}

// --- timeouts, kill, close, concurrent use --------------------------------------------------

TEST(SocketTest, ReadTimesOutWithTimeoutError) {
  // Not a structured binding: clang 14 cannot capture those in lambdas.
  auto pair_ab = fern::socketpair();
  [[maybe_unused]] auto& a = pair_ab.first;
  [[maybe_unused]] auto& b = pair_ab.second;
  char c;
  auto t0 = clk::now();
  try {
    a.read(&c, 1, 20ms);
    FAIL() << "read returned";
  } catch (const fern::timeout_error& e) {
    EXPECT_EQ(e.source(), nullptr);
  }
  EXPECT_GE(clk::now() - t0, 20ms);
  b.write_all("x");  // the socket is still usable
  EXPECT_EQ(a.read(&c, 1, 1s), 1u);
}

TEST(SocketTest, DefaultTimeoutAppliesUnlessACallPassesItsOwn) {
  auto pr = fern::socketpair();
  fern::socket& a = pr.first;
  a.set_timeout(20ms);
  EXPECT_EQ(a.read_timeout(), std::optional<std::chrono::nanoseconds>(20ms));
  char c;
  EXPECT_THROW(a.read(&c, 1), fern::timeout_error);
  auto writer = fern::spawn([&] {
    fern::sleep(50ms);
    pr.second.write_all("y");
  });
  EXPECT_EQ(a.read(&c, 1, 5s), 1u);  // its own, longer timeout wins
  writer.get();
}

TEST(SocketTest, EnclosingFernTimeoutInterruptsARead) {
  // Not a structured binding: clang 14 cannot capture those in lambdas.
  auto pair_ab = fern::socketpair();
  [[maybe_unused]] auto& a = pair_ab.first;
  [[maybe_unused]] auto& b = pair_ab.second;
  char c;
  fern::timeout scope(20ms);
  try {
    a.read(&c, 1, 5s);
    FAIL() << "read returned";
  } catch (const fern::timeout_error& e) {
    EXPECT_TRUE(e.is(scope));
  }
}

TEST(SocketTest, KillEndsAFiberBlockedInRead) {
  auto pr = fern::socketpair();
  fern::socket& a = pr.first;
  std::vector<std::string> log;
  auto reader = fern::spawn([&] {
    char c;
    log.push_back("reading");
    a.read(&c, 1);
    log.push_back("read returned");
  });
  fern::sleep(5ms);
  EXPECT_TRUE(reader.kill());
  EXPECT_EQ(log, (std::vector<std::string>{"reading"}));
  // The killed wait left nothing behind: the next reader waits normally.
  auto writer = fern::spawn([&] { pr.second.write_all("z"); });
  char c;
  EXPECT_EQ(a.read(&c, 1, 1s), 1u);
  writer.get();
}

TEST(SocketTest, CloseFromAnotherFiberWakesTheReaderWithEbadf) {
  auto pr = fern::socketpair();
  fern::socket& a = pr.first;
  std::vector<std::string> log;
  auto reader = fern::spawn([&] {
    char c;
    log.push_back("reading");
    int e = errno_of([&] { a.read(&c, 1, 5s); });
    log.push_back(e == EBADF ? "EBADF" : "errno " + std::to_string(e));
  });
  auto closer = fern::spawn([&] {
    fern::sleep(5ms);
    log.push_back("close");
    a.close();
  });
  fern::joinall({reader, closer});
  EXPECT_EQ(log, (std::vector<std::string>{"reading", "close", "EBADF"}));
  EXPECT_FALSE(a.valid());
}

TEST(SocketTest, SecondConcurrentReaderGetsConcurrentUseError) {
  auto pr = fern::socketpair();
  fern::socket& a = pr.first;
  auto first = fern::spawn([&] {
    char c;
    a.read(&c, 1, 5s);
  });
  fern::sleep(2ms);
  char c;
  EXPECT_THROW(a.read(&c, 1, 1s), fern::concurrent_use_error);
  EXPECT_TRUE(a.wait_writable(1s));  // the other direction is free
  pr.second.write_all("k");
  first.get();
}

TEST(SocketTest, WriteTimesOutWhenThePeerNeverReads) {
  // Not a structured binding: clang 14 cannot capture those in lambdas.
  auto pair_ab = fern::socketpair();
  [[maybe_unused]] auto& a = pair_ab.first;
  [[maybe_unused]] auto& b = pair_ab.second;
  std::string big(8 << 20, 'q');  // more than any socket buffer
  EXPECT_THROW(a.write_all(big, 30ms), fern::timeout_error);
}

// --- datagrams ------------------------------------------------------------------------------

TEST(SocketTest, UdpDatagramsRoundTrip) {
  fern::socket a = fern::bind_datagram(fern::address::parse("127.0.0.1:0"));
  fern::socket b = fern::bind_datagram(fern::address::parse("127.0.0.1:0"));
  auto replier = fern::spawn([&] {
    char buf[64];
    fern::received r = b.recv_from(buf, sizeof buf, 5s);
    EXPECT_EQ(std::string(buf, r.size), "ping");
    EXPECT_EQ(r.from, a.local_address());
    b.send_to("pong", 4, r.from, 5s);
  });
  EXPECT_EQ(a.send_to("ping", 4, b.local_address()), 4u);
  char buf[64];
  fern::received r = a.recv_from(buf, sizeof buf, 5s);
  EXPECT_EQ(std::string(buf, r.size), "pong");
  EXPECT_EQ(r.from, b.local_address());
  replier.get();
}

TEST(SocketTest, UdpRecvFromTimesOut) {
  fern::socket a = fern::bind_datagram(fern::address::parse("127.0.0.1:0"));
  char buf[8];
  auto t0 = clk::now();
  EXPECT_THROW(a.recv_from(buf, sizeof buf, 20ms), fern::timeout_error);
  EXPECT_GE(clk::now() - t0, 20ms);
}

TEST(SocketTest, UnixDatagramsCarryTheSendersAddress) {
  temp_dir dir;
  fern::socket server = fern::bind_datagram(dir.sock("srv.sock"));
  fern::socket client = fern::bind_datagram(dir.sock("cli.sock"));
  client.send_to("hi", 2, dir.sock("srv.sock"), 1s);
  char buf[8];
  fern::received r = server.recv_from(buf, sizeof buf, 5s);
  EXPECT_EQ(std::string(buf, r.size), "hi");
  EXPECT_EQ(r.from, dir.sock("cli.sock"));
}

// --- listeners and ownership ----------------------------------------------------------------

TEST(ListenerTest, AcceptTimesOutWithTimeoutError) {
  fern::listener l(fern::address::parse("127.0.0.1:0"));
  EXPECT_NE(l.local_address().port(), 0);
  EXPECT_THROW(l.accept(20ms), fern::timeout_error);
}

TEST(ListenerTest, CloseWakesABlockedAcceptWithEbadf) {
  fern::listener l(fern::address::parse("127.0.0.1:0"));
  auto closer = fern::spawn([&] {
    fern::sleep(5ms);
    l.close();
  });
  EXPECT_EQ(errno_of([&] { l.accept(5s); }), EBADF);
  closer.get();
}

TEST(ListenerTest, ReusePortLetsTwoListenersShareAPort) {
  fern::listener a(fern::address::parse("127.0.0.1:0"), {.reuse_port = true});
  fern::listener b(a.local_address(), {.reuse_port = true});
  EXPECT_EQ(a.local_address(), b.local_address());
  EXPECT_EQ(errno_of([&] { fern::listener c(a.local_address()); }), EADDRINUSE);
}

TEST(ListenerTest, UnixListenerRemovesItsSocketFileOnClose) {
  temp_dir dir;
  std::string path = dir.path + "/l.sock";
  {
    fern::listener l(fern::address::unix_path(path));
    EXPECT_TRUE(std::filesystem::exists(path));
    fern::listener moved = std::move(l);
    EXPECT_TRUE(std::filesystem::exists(path));  // the moved-from one does not remove it
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(SocketTest, NewSocketsAreNonBlockingAndCloseOnExec) {
  conn_pair p = connect_pair(fern::address::parse("127.0.0.1:0"));
  // Not a structured binding: clang 14 cannot capture those in lambdas.
  auto pair_xy = fern::socketpair(SOCK_DGRAM);
  [[maybe_unused]] auto& x = pair_xy.first;
  [[maybe_unused]] auto& y = pair_xy.second;
  for (int fd : {p.client.fd(), p.server.fd(), x.fd(), y.fd()}) {
    EXPECT_TRUE(::fcntl(fd, F_GETFL) & O_NONBLOCK) << fd;
    EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC) << fd;
  }
}

TEST(SocketTest, AdoptTurnsABlockingFdIntoACooperativeSocket) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  fern::socket a = fern::socket::adopt(sv[0]);
  fern::socket b = fern::socket::adopt(sv[1]);
  EXPECT_TRUE(::fcntl(a.fd(), F_GETFL) & O_NONBLOCK);
  char c;
  EXPECT_THROW(a.read(&c, 1, 10ms), fern::timeout_error);  // parks instead of blocking the thread
}

TEST(SocketTest, MoveTransfersOwnershipAndReleaseKeepsTheFdOpen) {
  // Not a structured binding: clang 14 cannot capture those in lambdas.
  auto pair_ab = fern::socketpair();
  [[maybe_unused]] auto& a = pair_ab.first;
  [[maybe_unused]] auto& b = pair_ab.second;
  int fd = a.fd();
  fern::socket moved = std::move(a);
  EXPECT_FALSE(a.valid());
  EXPECT_EQ(moved.fd(), fd);
  int raw = moved.release();
  EXPECT_FALSE(moved.valid());
  EXPECT_EQ(::fcntl(raw, F_GETFD) >= 0, true);  // still open
  fern::close(raw);
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1);
}
