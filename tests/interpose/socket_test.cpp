// POSIX conformance of the socket family under the shim (socket, socketpair, connect, accept,
// accept4, recv*, send*, setsockopt/getsockopt, shutdown): results and errno as without fern,
// SO_RCVTIMEO/SO_SNDTIMEO honoured, and a call that would block parks only its fiber. Network
// use is 127.0.0.1 only; every loop is bounded.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fern/fern.hpp"
#include "shim_test_util.hpp"

using namespace std::chrono_literals;
using namespace shim_test;

namespace {

const auto* const sigpipe_env = ::testing::AddGlobalTestEnvironment(new ignore_sigpipe);

struct unix_pair {
  int a = -1, b = -1;
  explicit unix_pair(int type = SOCK_STREAM) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, type, 0, sv), 0);
    a = sv[0];
    b = sv[1];
  }
  ~unix_pair() {
    if (a >= 0) ::close(a);
    if (b >= 0) ::close(b);
  }
};

struct udp_socket {
  int fd = -1;
  sockaddr_in addr{};
  udp_socket() {
    fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  }
  ~udp_socket() { ::close(fd); }
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&addr); }
};

timeval tv_of(std::chrono::milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000),
                 static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

// --- creation and the program's view ---------------------------------------------------------

TEST(ShimSocketTest, SocketIsNonblockingUnderneathWithABlockingView) {
  errno = EDOM;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(errno, EDOM);
  EXPECT_TRUE(real_nonblock(fd));
  EXPECT_FALSE(::fcntl(fd, F_GETFL) & O_NONBLOCK);
  ::close(fd);
  fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  EXPECT_TRUE(::fcntl(fd, F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC);
  ::close(fd);
}

TEST(ShimSocketTest, SocketpairViewFollowsTheFlags) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  EXPECT_TRUE(real_nonblock(sv[0]));
  EXPECT_FALSE(::fcntl(sv[0], F_GETFL) & O_NONBLOCK);
  EXPECT_FALSE(::fcntl(sv[1], F_GETFL) & O_NONBLOCK);
  ::close(sv[0]);
  ::close(sv[1]);
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv), 0);
  EXPECT_TRUE(::fcntl(sv[0], F_GETFL) & O_NONBLOCK);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST(ShimSocketTest, InvalidArgumentsFailLikeTheRawSyscall) {
  int sv[2];
  EXPECT_EQ(errno_of([&] { return ::socket(AF_INET, 12345, 0); }),
            errno_of([&] { return ::syscall(SYS_socket, AF_INET, 12345, 0); }));
  EXPECT_EQ(errno_of([&] { return ::socketpair(AF_INET, SOCK_STREAM, 0, sv); }),
            errno_of([&] { return ::syscall(SYS_socketpair, AF_INET, SOCK_STREAM, 0, sv); }));
}

// --- connect / accept --------------------------------------------------------------------------

TEST(ShimSocketTest, ConnectAcceptAndEchoOverLoopback) {
  listener l;
  event_log log;
  auto server = fern::spawn([&] {
    log("accept");
    errno = EDOM;
    int c = ::accept(l.fd, nullptr, nullptr);
    EXPECT_EQ(errno, EDOM);
    log("accepted");
    char buf[16];
    ssize_t n = ::read(c, buf, sizeof buf);
    ::write(c, buf, static_cast<size_t>(n));
    ::close(c);
  });
  auto client = fern::spawn([&] {
    log("connect");
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    errno = EDOM;
    ASSERT_EQ(::connect(fd, l.sa(), sizeof l.addr), 0);
    EXPECT_EQ(errno, EDOM);
    ASSERT_EQ(::write(fd, "ping", 4), 4);
    char buf[8];
    EXPECT_EQ(::read(fd, buf, sizeof buf), 4);
    EXPECT_EQ(std::string(buf, 4), "ping");
    EXPECT_EQ(errno, EDOM);
    ::close(fd);
    log("done");
  });
  fern::joinall({server, client});
  ASSERT_GE(log.events.size(), 3u);
  EXPECT_EQ(log.events[0], "accept");
  EXPECT_EQ(log.events[1], "connect");  // the server parked in accept
  EXPECT_EQ(log.events.back(), "done");
}

TEST(ShimSocketTest, ConnectRefusedGivesEconnrefusedAndLeavesTheSocketLikeTheKernel) {
  sockaddr_in a = refused_addr();
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int raw = static_cast<int>(::syscall(SYS_socket, AF_INET, SOCK_STREAM, 0));  // kernel-blocking
  for (int round = 0; round < 2; ++round) {  // a refused socket may be connected again
    errno = 0;
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), -1);
    EXPECT_EQ(errno, ECONNREFUSED);
    EXPECT_EQ(errno_of([&] { return ::syscall(SYS_connect, raw, &a, sizeof a); }), ECONNREFUSED);
  }
  int err = -1, raw_err = -1;
  socklen_t len = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  ::getsockopt(raw, SOL_SOCKET, SO_ERROR, &raw_err, &len);
  EXPECT_EQ(err, raw_err);
  ::close(fd);
  ::close(raw);
}

// A listener whose accept queue is full drops SYNs: a connect to it stays in SYN_SENT (the client
// retransmits after 1 s, 3 s...), which makes a blocking connect really wait on loopback.
TEST(ShimSocketTest, ConnectThatWaitsHonoursKillTimeoutSndtimeoAndResumesLikeTheKernel) {
  listener l(0, 0);  // backlog 0: one queued connection fills it
  int c1 = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(::connect(c1, l.sa(), sizeof l.addr), 0);
  int c2 = ::socket(AF_INET, SOCK_STREAM, 0);
  event_log log;
  int killed_err = 0;
  auto connector = fern::spawn([&] {
    log("connect");
    EXPECT_EQ(::connect(c2, l.sa(), sizeof l.addr), -1);
    killed_err = errno;
    log("woke");
  });
  fern::sleep(50ms);
  log("kill");
  EXPECT_TRUE(connector.kill());
  EXPECT_EQ(killed_err, ECANCELED);
  EXPECT_EQ(log.events, (std::vector<std::string>{"connect", "kill", "woke"}));

  // SO_SNDTIMEO expiry: EINPROGRESS, exactly as the kernel's own blocking connect.
  timeval tv = tv_of(50ms);
  int raw = static_cast<int>(::syscall(SYS_socket, AF_INET, SOCK_STREAM, 0));
  int c3 = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(::setsockopt(raw, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
  ASSERT_EQ(::setsockopt(c3, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(errno_of([&] { return ::syscall(SYS_connect, raw, l.sa(), sizeof l.addr); }),
            EINPROGRESS);
  EXPECT_EQ(errno_of([&] { return ::connect(c3, l.sa(), sizeof l.addr); }), EINPROGRESS);
  EXPECT_GE(ms_since(t0), 98.0);
  // Both are still connecting, as the kernel leaves them; a second blocking connect waits again
  // and, timing out, says EALREADY.
  EXPECT_EQ(errno_of([&] { return ::syscall(SYS_connect, raw, l.sa(), sizeof l.addr); }), EALREADY);
  EXPECT_EQ(errno_of([&] { return ::connect(c3, l.sa(), sizeof l.addr); }), EALREADY);
  ::close(raw);
  ::close(c3);

  // The interrupted connect of c2 is still in progress: a fern::timeout ends the next wait...
  {
    fern::timeout scope(30ms);
    EXPECT_EQ(errno_of([&] { return ::connect(c2, l.sa(), sizeof l.addr); }), ETIMEDOUT);
    scope.cancel();
  }
  // ...and once the listener has room, connect resumes and succeeds (the SYN is retransmitted).
  int s1 = ::accept(l.fd, nullptr, nullptr);
  ASSERT_GE(s1, 0);
  fern::timeout bound(10s);
  errno = EDOM;
  EXPECT_EQ(::connect(c2, l.sa(), sizeof l.addr), 0);
  EXPECT_EQ(errno, EDOM);
  bound.cancel();
  sockaddr_in peer{};
  socklen_t len = sizeof peer;
  EXPECT_EQ(::getpeername(c2, reinterpret_cast<sockaddr*>(&peer), &len), 0);
  for (int fd : {c1, c2, s1}) ::close(fd);
}

TEST(ShimSocketTest, UserNonblockConnectGivesEinprogress) {
  listener l;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int r = ::connect(fd, l.sa(), sizeof l.addr);
  int e = errno;
  EXPECT_TRUE(r == 0 || e == EINPROGRESS) << e;
  EXPECT_TRUE(fern::wait_writable(fd, 1s));
  int err = -1;
  socklen_t len = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  EXPECT_EQ(err, 0);
  ::close(fd);
}

TEST(ShimSocketTest, UserNonblockAcceptGivesEagainAtOnce) {
  listener l(SOCK_NONBLOCK);
  EXPECT_EQ(errno_of([&] { return ::accept(l.fd, nullptr, nullptr); }), EAGAIN);
  EXPECT_EQ(errno_of([&] { return ::accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC); }), EAGAIN);
}

TEST(ShimSocketTest, Accept4HonoursItsFlagsAndOwnsTheNewSocket) {
  listener l;
  int c1 = ::socket(AF_INET, SOCK_STREAM, 0);
  int c2 = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(::connect(c1, l.sa(), sizeof l.addr), 0);
  ASSERT_EQ(::connect(c2, l.sa(), sizeof l.addr), 0);
  int plain = ::accept4(l.fd, nullptr, nullptr, 0);
  int flagged = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  ASSERT_GE(plain, 0);
  ASSERT_GE(flagged, 0);
  EXPECT_FALSE(::fcntl(plain, F_GETFL) & O_NONBLOCK);
  EXPECT_FALSE(::fcntl(plain, F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(real_nonblock(plain));
  EXPECT_TRUE(::fcntl(flagged, F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(flagged, F_GETFD) & FD_CLOEXEC);
  char c;
  EXPECT_EQ(errno_of([&] { return ::recv(flagged, &c, 1, 0); }), EAGAIN);
  for (int fd : {c1, c2, plain, flagged}) ::close(fd);
}

TEST(ShimSocketTest, AcceptReturnsThePeerAddress) {
  listener l;
  int c = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(::connect(c, l.sa(), sizeof l.addr), 0);
  sockaddr_in peer{};
  socklen_t len = sizeof peer;
  int s = ::accept(l.fd, reinterpret_cast<sockaddr*>(&peer), &len);
  ASSERT_GE(s, 0);
  EXPECT_EQ(len, sizeof peer);
  EXPECT_EQ(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  ::close(s);
  ::close(c);
}

// --- receiving and sending ---------------------------------------------------------------------

TEST(ShimSocketTest, RecvParksWhileOthersRun) {
  tcp_pair p;
  event_log log;
  auto reader = fern::spawn([&] {
    log("recv");
    char buf[8];
    ssize_t n = ::recv(p.client, buf, sizeof buf, 0);
    log("got " + std::to_string(n));
  });
  auto writer = fern::spawn([&] {
    log("send");
    errno = EDOM;
    EXPECT_EQ(::send(p.server, "abc", 3, 0), 3);
    EXPECT_EQ(errno, EDOM);
  });
  fern::joinall({reader, writer});
  EXPECT_EQ(log.events, (std::vector<std::string>{"recv", "send", "got 3"}));
}

// recv, recvfrom, recvmsg and readv each park on an empty socket, then succeed with errno as the
// program left it.
TEST(ShimSocketTest, ParkedReceivesThatSucceedPreserveErrno) {
  unix_pair p;
  std::vector<int> errnos;
  auto reader = fern::spawn([&] {
    char c;
    errno = EDOM;
    EXPECT_EQ(::recv(p.a, &c, 1, 0), 1);
    errnos.push_back(errno);
    errno = EDOM;
    EXPECT_EQ(::recvfrom(p.a, &c, 1, 0, nullptr, nullptr), 1);
    errnos.push_back(errno);
    iovec v{&c, 1};
    msghdr m{};
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    errno = EDOM;
    EXPECT_EQ(::recvmsg(p.a, &m, 0), 1);
    errnos.push_back(errno);
    errno = EDOM;
    EXPECT_EQ(::readv(p.a, &v, 1), 1);
    errnos.push_back(errno);
  });
  auto writer = fern::spawn([&] {
    for (int i = 0; i < 4; ++i) {
      fern::sleep(5ms);  // the reader parks first
      EXPECT_EQ(::send(p.b, "x", 1, 0), 1);
    }
  });
  fern::joinall({reader, writer});
  EXPECT_EQ(errnos, (std::vector<int>{EDOM, EDOM, EDOM, EDOM}));
}

TEST(ShimSocketTest, RecvfromSendtoOverUdpCarryTheAddress) {
  udp_socket a, b;
  event_log log;
  auto reader = fern::spawn([&] {
    log("recvfrom");
    char buf[16];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(a.fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    EXPECT_EQ(from.sin_port, b.addr.sin_port);
    log("got " + std::string(buf, n > 0 ? static_cast<size_t>(n) : 0));
  });
  auto writer = fern::spawn([&] {
    log("sendto");
    EXPECT_EQ(::sendto(b.fd, "dgram", 5, 0, a.sa(), sizeof a.addr), 5);
  });
  fern::joinall({reader, writer});
  EXPECT_EQ(log.events, (std::vector<std::string>{"recvfrom", "sendto", "got dgram"}));
}

TEST(ShimSocketTest, RecvmsgSendmsgMoveIovecsAndPassFds) {
  unix_pair p;
  int passed[2];
  ASSERT_EQ(::pipe(passed), 0);
  char cbuf[CMSG_SPACE(sizeof(int))] = {};
  char x[] = "ab", y[] = "cd";
  iovec out[2] = {{x, 2}, {y, 2}};
  msghdr m{};
  m.msg_iov = out;
  m.msg_iovlen = 2;
  m.msg_control = cbuf;
  m.msg_controllen = sizeof cbuf;
  cmsghdr* cm = CMSG_FIRSTHDR(&m);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cm), &passed[1], sizeof(int));
  ssize_t got = -2;
  int received_fd = -1;
  auto reader = fern::spawn([&] {
    char buf[8];
    iovec in{buf, sizeof buf};
    char rbuf[CMSG_SPACE(sizeof(int))] = {};
    msghdr r{};
    r.msg_iov = &in;
    r.msg_iovlen = 1;
    r.msg_control = rbuf;
    r.msg_controllen = sizeof rbuf;
    got = ::recvmsg(p.a, &r, 0);
    if (cmsghdr* c = CMSG_FIRSTHDR(&r)) std::memcpy(&received_fd, CMSG_DATA(c), sizeof(int));
  });
  fern::sleep(2ms);
  EXPECT_EQ(::sendmsg(p.b, &m, 0), 4);
  reader.join();
  EXPECT_EQ(got, 4);
  ASSERT_GE(received_fd, 0);
  EXPECT_EQ(::write(received_fd, "!", 1), 1);  // the passed pipe end works
  char c;
  EXPECT_EQ(::read(passed[0], &c, 1), 1);
  for (int fd : {passed[0], passed[1], received_fd}) ::close(fd);
}

TEST(ShimSocketTest, RecvmmsgWaitsForEveryMessageUnlessWaitforone) {
  udp_socket a, b;
  event_log log;
  auto writer = fern::spawn([&] {
    for (int i = 0; i < 3; ++i) {
      fern::sleep(3ms);
      log("send");
      ::sendto(b.fd, "m", 1, 0, a.sa(), sizeof a.addr);
    }
  });
  char bufs[3][4];
  iovec iov[3];
  mmsghdr vec[3] = {};
  for (int i = 0; i < 3; ++i) {
    iov[i] = {bufs[i], sizeof bufs[i]};
    vec[i].msg_hdr.msg_iov = &iov[i];
    vec[i].msg_hdr.msg_iovlen = 1;
  }
  log("recvmmsg");
  errno = EDOM;
  EXPECT_EQ(::recvmmsg(a.fd, vec, 3, 0, nullptr), 3);
  EXPECT_EQ(errno, EDOM);
  log("got 3");
  writer.join();
  EXPECT_EQ(log.events, (std::vector<std::string>{"recvmmsg", "send", "send", "send", "got 3"}));
  // With MSG_WAITFORONE the first message is enough.
  auto one = fern::spawn([&] { ::sendto(b.fd, "n", 1, 0, a.sa(), sizeof a.addr); });
  EXPECT_EQ(::recvmmsg(a.fd, vec, 3, MSG_WAITFORONE, nullptr), 1);
  one.join();
}

TEST(ShimSocketTest, RecvmmsgTimeoutBoundsTheWaitOnceAMessageArrived) {
  udp_socket a, b;
  ASSERT_EQ(::sendto(b.fd, "m", 1, 0, a.sa(), sizeof a.addr), 1);
  char buf[2][4];
  iovec iov[2] = {{buf[0], 4}, {buf[1], 4}};
  mmsghdr vec[2] = {};
  vec[0].msg_hdr.msg_iov = &iov[0];
  vec[0].msg_hdr.msg_iovlen = 1;
  vec[1].msg_hdr.msg_iov = &iov[1];
  vec[1].msg_hdr.msg_iovlen = 1;
  timespec ts{0, 30 * 1000 * 1000};
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(::recvmmsg(a.fd, vec, 2, 0, &ts), 1);
  EXPECT_GE(ms_since(t0), 25.0);
  EXPECT_LT(ms_since(t0), 2000.0);
  EXPECT_EQ(ts.tv_sec, 0);
}

TEST(ShimSocketTest, SendmmsgSendsEveryMessage) {
  udp_socket a, b;
  char m0[] = "x", m1[] = "yy";
  iovec iov[2] = {{m0, 1}, {m1, 2}};
  mmsghdr vec[2] = {};
  for (int i = 0; i < 2; ++i) {
    vec[i].msg_hdr.msg_iov = &iov[i];
    vec[i].msg_hdr.msg_iovlen = 1;
    vec[i].msg_hdr.msg_name = &a.addr;
    vec[i].msg_hdr.msg_namelen = sizeof a.addr;
  }
  errno = EDOM;
  EXPECT_EQ(::sendmmsg(b.fd, vec, 2, 0), 2);
  EXPECT_EQ(errno, EDOM);
  EXPECT_EQ(vec[1].msg_len, 2u);
  char buf[4];
  EXPECT_EQ(::recv(a.fd, buf, 4, 0), 1);
  EXPECT_EQ(::recv(a.fd, buf, 4, 0), 2);
}

TEST(ShimSocketTest, SendmmsgOnAStreamSocketSendsEachMessageWhole) {
  unix_pair p;
  std::string big(300000, 'b');
  char small[] = "s";
  iovec iov[2] = {{big.data(), big.size()}, {small, 1}};
  mmsghdr vec[2] = {};
  for (int i = 0; i < 2; ++i) {
    vec[i].msg_hdr.msg_iov = &iov[i];
    vec[i].msg_hdr.msg_iovlen = 1;
  }
  std::string got;
  auto reader = fern::spawn([&] {
    char buf[8192];
    while (got.size() < big.size() + 1) {
      ssize_t n = ::read(p.b, buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
  });
  EXPECT_EQ(::sendmmsg(p.a, vec, 2, 0), 2);
  EXPECT_EQ(vec[0].msg_len, big.size());
  reader.join();
  EXPECT_EQ(got, big + "s");
}

TEST(ShimSocketTest, BlockingSendOfMoreThanTheBufferSendsEverything) {
  tcp_pair p;
  const size_t total = 8 << 20;
  std::string data(total, 'd');
  size_t got = 0;
  event_log log;
  auto reader = fern::spawn([&] {
    log("reader");
    std::vector<char> buf(1 << 16);
    while (got < total) {
      ssize_t n = ::recv(p.server, buf.data(), buf.size(), 0);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
  });
  log("send");
  EXPECT_EQ(::send(p.client, data.data(), total, 0), static_cast<ssize_t>(total));
  log("sent");
  reader.join();
  EXPECT_EQ(got, total);
  EXPECT_EQ(log.events[0], "send");
  EXPECT_EQ(log.events[1], "reader");
}

TEST(ShimSocketTest, MsgWaitallFillsTheBuffer) {
  tcp_pair p;
  auto writer = fern::spawn([&] {
    ::send(p.server, "1234", 4, 0);
    fern::sleep(5ms);
    ::send(p.server, "567890", 6, 0);
  });
  char buf[10];
  EXPECT_EQ(::recv(p.client, buf, sizeof buf, MSG_WAITALL), 10);
  EXPECT_EQ(std::string(buf, 10), "1234567890");
  writer.join();
}

TEST(ShimSocketTest, MsgDontwaitGivesEagainAtOnce) {
  tcp_pair p;
  char c;
  EXPECT_EQ(errno_of([&] { return ::recv(p.client, &c, 1, MSG_DONTWAIT); }), EAGAIN);
  EXPECT_EQ(errno_of([&] { return ::recvfrom(p.client, &c, 1, MSG_DONTWAIT, nullptr, nullptr); }),
            EAGAIN);
}

TEST(ShimSocketTest, ErrqueueAndOobReadsNeverBlockLikeTheKernel) {
  tcp_pair p;
  char c;
  char cbuf[64];
  iovec iov{&c, 1};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = cbuf;
  m.msg_controllen = sizeof cbuf;
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(errno_of([&] { return ::recvmsg(p.client, &m, MSG_ERRQUEUE); }),
            errno_of([&] { return ::syscall(SYS_recvmsg, p.client, &m, MSG_ERRQUEUE); }));
  EXPECT_EQ(errno_of([&] { return ::recv(p.client, &c, 1, MSG_OOB); }), errno_of([&] {
              return ::syscall(SYS_recvfrom, p.client, &c, 1, MSG_OOB, nullptr, nullptr);
            }));
  EXPECT_LT(ms_since(t0), 1000.0);
}

TEST(ShimSocketTest, SeqpacketWriteKeepsRecordBoundaries) {
  unix_pair p(SOCK_SEQPACKET);
  EXPECT_EQ(::write(p.a, "one", 3), 3);
  EXPECT_EQ(::write(p.a, "two!", 4), 4);
  char buf[16];
  EXPECT_EQ(::read(p.b, buf, sizeof buf), 3);
  EXPECT_EQ(::read(p.b, buf, sizeof buf), 4);
}

// --- peer closed, peer reset
// ----------------------------------------------------------------------

TEST(ShimSocketTest, ParkedRecvReturnsZeroWhenThePeerCloses) {
  tcp_pair p;
  ssize_t n = -2;
  auto reader = fern::spawn([&] {
    char c;
    n = ::recv(p.client, &c, 1, 0);
  });
  fern::sleep(5ms);
  ::close(p.server);
  p.server = -1;
  reader.join();
  EXPECT_EQ(n, 0);
}

TEST(ShimSocketTest, SendToAClosedPeerFailsWithEpipe) {
  unix_pair p;
  ::close(p.b);
  p.b = -1;
  EXPECT_EQ(errno_of([&] { return ::send(p.a, "x", 1, 0); }), EPIPE);
  EXPECT_EQ(errno_of([&] { return ::write(p.a, "x", 1); }), EPIPE);
  char c = 'x';
  iovec iov{&c, 1};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  EXPECT_EQ(errno_of([&] { return ::sendmsg(p.a, &m, 0); }), EPIPE);
  EXPECT_EQ(errno_of([&] { return ::writev(p.a, &iov, 1); }), EPIPE);
}

TEST(ShimSocketTest, ParkedRecvGetsEconnresetOnAReset) {
  tcp_pair p;
  ssize_t n = -2;
  int err = 0;
  auto reader = fern::spawn([&] {
    char c;
    n = ::recv(p.client, &c, 1, 0);
    err = errno;
  });
  fern::sleep(5ms);
  linger lg{1, 0};  // close with RST
  ASSERT_EQ(::setsockopt(p.server, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  ::close(p.server);
  p.server = -1;
  reader.join();
  EXPECT_EQ(n, -1);
  EXPECT_EQ(err, ECONNRESET);
}

TEST(ShimSocketTest, ShutdownWakesAParkedReaderWithEndOfFile) {
  tcp_pair p;
  ssize_t n = -2;
  auto reader = fern::spawn([&] {
    char c;
    n = ::read(p.client, &c, 1);
  });
  fern::sleep(5ms);
  errno = EDOM;
  EXPECT_EQ(::shutdown(p.server, SHUT_WR), 0);
  EXPECT_EQ(errno, EDOM);
  reader.join();
  EXPECT_EQ(n, 0);
}

// --- invalid fds
// ------------------------------------------------------------------------------------

TEST(ShimSocketTest, InvalidFdsFailLikeTheRawSyscall) {
  char buf[4] = {};
  iovec iov{buf, 4};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  mmsghdr mm{};
  mm.msg_hdr = m;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  socklen_t len = sizeof a;
  int v = 0;
  socklen_t vlen = sizeof v;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  // -1 and a closed number: EBADF; a pipe: ENOTSOCK.
  for (int fd : {-1, 9999, fds[0]}) {
    SCOPED_TRACE(fd);
    auto sa = reinterpret_cast<sockaddr*>(&a);
    EXPECT_EQ(errno_of([&] { return ::recv(fd, buf, 4, 0); }),
              errno_of([&] { return ::syscall(SYS_recvfrom, fd, buf, 4, 0, nullptr, nullptr); }));
    EXPECT_EQ(errno_of([&] { return ::recvfrom(fd, buf, 4, 0, sa, &len); }),
              errno_of([&] { return ::syscall(SYS_recvfrom, fd, buf, 4, 0, sa, &len); }));
    EXPECT_EQ(errno_of([&] { return ::recvmsg(fd, &m, 0); }),
              errno_of([&] { return ::syscall(SYS_recvmsg, fd, &m, 0); }));
    EXPECT_EQ(errno_of([&] { return ::recvmmsg(fd, &mm, 1, 0, nullptr); }),
              errno_of([&] { return ::syscall(SYS_recvmmsg, fd, &mm, 1, 0, nullptr); }));
    EXPECT_EQ(errno_of([&] { return ::send(fd, buf, 4, 0); }),
              errno_of([&] { return ::syscall(SYS_sendto, fd, buf, 4, 0, nullptr, 0); }));
    EXPECT_EQ(errno_of([&] { return ::sendto(fd, buf, 4, 0, sa, len); }),
              errno_of([&] { return ::syscall(SYS_sendto, fd, buf, 4, 0, sa, len); }));
    EXPECT_EQ(errno_of([&] { return ::sendmsg(fd, &m, 0); }),
              errno_of([&] { return ::syscall(SYS_sendmsg, fd, &m, 0); }));
    EXPECT_EQ(errno_of([&] { return ::sendmmsg(fd, &mm, 1, 0); }),
              errno_of([&] { return ::syscall(SYS_sendmmsg, fd, &mm, 1, 0); }));
    EXPECT_EQ(errno_of([&] { return ::connect(fd, sa, sizeof a); }),
              errno_of([&] { return ::syscall(SYS_connect, fd, sa, sizeof a); }));
    EXPECT_EQ(errno_of([&] { return ::accept(fd, nullptr, nullptr); }),
              errno_of([&] { return ::syscall(SYS_accept, fd, nullptr, nullptr); }));
    EXPECT_EQ(errno_of([&] { return ::accept4(fd, nullptr, nullptr, 0); }),
              errno_of([&] { return ::syscall(SYS_accept4, fd, nullptr, nullptr, 0); }));
    EXPECT_EQ(errno_of([&] { return ::shutdown(fd, SHUT_RDWR); }),
              errno_of([&] { return ::syscall(SYS_shutdown, fd, SHUT_RDWR); }));
    EXPECT_EQ(
        errno_of([&] { return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vlen); }),
        errno_of([&] { return ::syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_TYPE, &v, &vlen); }));
    EXPECT_EQ(errno_of([&] { return ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, vlen); }),
              errno_of([&] {
                return ::syscall(SYS_setsockopt, fd, SOL_SOCKET, SO_REUSEADDR, &v, vlen);
              }));
  }
  EXPECT_EQ(errno_of([&] { return ::recv(fds[0], buf, 4, 0); }), ENOTSOCK);
  ::close(fds[0]);
  ::close(fds[1]);
}

// --- closed while waiting
// -----------------------------------------------------------------------------

TEST(ShimSocketTest, CloseWakesParkedRecvAndAcceptWithEbadf) {
  tcp_pair p;
  listener l;
  int recv_err = 0, accept_err = 0;
  auto reader = fern::spawn([&] {
    char c;
    EXPECT_EQ(::recv(p.client, &c, 1, 0), -1);
    recv_err = errno;
  });
  auto acceptor = fern::spawn([&] {
    EXPECT_EQ(::accept(l.fd, nullptr, nullptr), -1);
    accept_err = errno;
  });
  fern::sleep(5ms);
  ::close(p.client);
  p.client = -1;
  ::close(l.fd);
  l.fd = -1;
  fern::joinall({reader, acceptor});
  EXPECT_EQ(recv_err, EBADF);
  EXPECT_EQ(accept_err, EBADF);
}

// --- the program's O_NONBLOCK
// ------------------------------------------------------------------------

TEST(ShimSocketTest, FionbioIsTrackedAndTheDescriptionStaysNonblocking) {
  tcp_pair p;
  int one = 1, zero = 0;
  errno = EDOM;
  ASSERT_EQ(::ioctl(p.client, FIONBIO, &one), 0);
  EXPECT_EQ(errno, EDOM);
  EXPECT_TRUE(::fcntl(p.client, F_GETFL) & O_NONBLOCK);
  char c;
  EXPECT_EQ(errno_of([&] { return ::recv(p.client, &c, 1, 0); }), EAGAIN);
  ASSERT_EQ(::ioctl(p.client, FIONBIO, &zero), 0);
  EXPECT_FALSE(::fcntl(p.client, F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(real_nonblock(p.client));
  auto writer = fern::spawn([&] { ::send(p.server, "q", 1, 0); });
  EXPECT_EQ(::recv(p.client, &c, 1, 0), 1);
  writer.join();
}

// --- SO_RCVTIMEO / SO_SNDTIMEO
// --------------------------------------------------------------------------

TEST(ShimSocketTest, SoRcvtimeoExpiryGivesEagainAfterTheTimeoutWhileOthersRun) {
  tcp_pair p;
  timeval tv = tv_of(50ms);
  errno = EDOM;
  ASSERT_EQ(::setsockopt(p.client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  EXPECT_EQ(errno, EDOM);
  timeval shown{};
  socklen_t len = sizeof shown;
  ASSERT_EQ(::getsockopt(p.client, SOL_SOCKET, SO_RCVTIMEO, &shown, &len), 0);
  EXPECT_EQ(shown.tv_sec, 0);
  EXPECT_GE(shown.tv_usec, 50000);  // the kernel rounds up to its tick
  EXPECT_LT(shown.tv_usec, 60000);
  int ticks = 0;
  auto ticker = fern::spawn([&] {
    for (int i = 0; i < 3; ++i) {
      fern::sleep(5ms);
      ++ticks;
    }
  });
  auto t0 = std::chrono::steady_clock::now();
  char c;
  EXPECT_EQ(errno_of([&] { return ::recv(p.client, &c, 1, 0); }), EAGAIN);
  double ms = ms_since(t0);
  EXPECT_GE(ms, 49.0);
  EXPECT_LT(ms, 2000.0);
  EXPECT_EQ(ticks, 3);  // the ticker ran while recv was parked
  ticker.join();
  // read() honours it too, and a zero timeval clears it.
  EXPECT_EQ(errno_of([&] { return ::read(p.client, &c, 1); }), EAGAIN);
  timeval none{};
  ASSERT_EQ(::setsockopt(p.client, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none), 0);
  auto writer = fern::spawn([&] {
    fern::sleep(80ms);
    ::send(p.server, "w", 1, 0);
  });
  EXPECT_EQ(::recv(p.client, &c, 1, 0), 1);
  writer.join();
}

TEST(ShimSocketTest, SoRcvtimeoBoundsAcceptAndIsInheritedByAcceptedSockets) {
  listener l;
  timeval tv = tv_of(30ms);
  ASSERT_EQ(::setsockopt(l.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(errno_of([&] { return ::accept(l.fd, nullptr, nullptr); }), EAGAIN);
  EXPECT_GE(ms_since(t0), 29.0);
  int c = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(::connect(c, l.sa(), sizeof l.addr), 0);
  int s = ::accept(l.fd, nullptr, nullptr);
  ASSERT_GE(s, 0);
  t0 = std::chrono::steady_clock::now();
  char ch;
  EXPECT_EQ(errno_of([&] { return ::recv(s, &ch, 1, 0); }), EAGAIN);
  EXPECT_GE(ms_since(t0), 29.0);
  ::close(s);
  ::close(c);
}

TEST(ShimSocketTest, SoSndtimeoExpiryReturnsThePartialCountThenEagain) {
  unix_pair p;
  timeval tv = tv_of(40ms);
  ASSERT_EQ(::setsockopt(p.a, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
  std::string big(4 << 20, 'x');
  auto t0 = std::chrono::steady_clock::now();
  ssize_t n = ::send(p.a, big.data(), big.size(), 0);
  EXPECT_GT(n, 0);
  EXPECT_LT(n, static_cast<ssize_t>(big.size()));
  EXPECT_GE(ms_since(t0), 39.0);
  t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(errno_of([&] { return ::send(p.a, big.data(), 1, 0); }), EAGAIN);
  EXPECT_GE(ms_since(t0), 39.0);
}

TEST(ShimSocketTest, InheritedSocketsSoRcvtimeoIsReadFromTheKernel) {
  int sv[2];
  raw_socketpair(SOCK_STREAM, sv);
  timeval tv = tv_of(30ms);
  ASSERT_EQ(::syscall(SYS_setsockopt, sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  auto t0 = std::chrono::steady_clock::now();
  char c;
  EXPECT_EQ(errno_of([&] { return ::recv(sv[0], &c, 1, 0); }), EAGAIN);
  EXPECT_GE(ms_since(t0), 29.0);
  EXPECT_FALSE(real_nonblock(sv[0]));
  ::close(sv[0]);
  ::close(sv[1]);
}

// --- signals
// -------------------------------------------------------------------------------------------

std::atomic<int> g_signals{0};
void on_signal(int) {
  g_signals.fetch_add(1);
}

TEST(ShimSocketTest, SignalInterruptsRecvWithSoRcvtimeoEvenUnderSaRestart) {
  struct sigaction sa {
  }, old{};
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(::sigaction(SIGUSR2, &sa, &old), 0);
  tcp_pair p;
  timeval tv = tv_of(5000ms);
  ASSERT_EQ(::setsockopt(p.client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  int accept_err = 0, recv_err = 0;
  listener l;
  ASSERT_EQ(::setsockopt(l.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  auto reader = fern::spawn([&] {
    char c;
    EXPECT_EQ(::recv(p.client, &c, 1, 0), -1);
    recv_err = errno;
  });
  auto acceptor = fern::spawn([&] {
    EXPECT_EQ(::accept(l.fd, nullptr, nullptr), -1);
    accept_err = errno;
  });
  fern::sleep(3ms);
  auto t0 = std::chrono::steady_clock::now();
  ::raise(SIGUSR2);
  fern::joinall({reader, acceptor});
  EXPECT_LT(ms_since(t0), 2000.0);
  EXPECT_EQ(recv_err, EINTR);  // signal(7): never restarted with a socket timeout
  EXPECT_EQ(accept_err, EINTR);
  ::sigaction(SIGUSR2, &old, nullptr);
}

// --- kill and fern::timeout
// --------------------------------------------------------------------------------

TEST(ShimSocketTest, KillingParkedRecvAndAcceptGivesEcanceled) {
  tcp_pair p;
  listener l;
  int recv_err = 0, accept_err = 0;
  auto reader = fern::spawn([&] {
    char c;
    EXPECT_EQ(::recv(p.client, &c, 1, 0), -1);
    recv_err = errno;
  });
  auto acceptor = fern::spawn([&] {
    EXPECT_EQ(::accept(l.fd, nullptr, nullptr), -1);
    accept_err = errno;
  });
  fern::sleep(5ms);
  EXPECT_TRUE(reader.kill());
  EXPECT_TRUE(acceptor.kill());
  EXPECT_EQ(recv_err, ECANCELED);
  EXPECT_EQ(accept_err, ECANCELED);
}

TEST(ShimSocketTest, ExpiredTimeoutScopeGivesEtimedout) {
  tcp_pair p;
  listener l;
  char c;
  {
    fern::timeout scope(15ms);
    EXPECT_EQ(errno_of([&] { return ::recv(p.client, &c, 1, 0); }), ETIMEDOUT);
    scope.cancel();
  }
  {
    fern::timeout scope(15ms);
    EXPECT_EQ(errno_of([&] { return ::accept(l.fd, nullptr, nullptr); }), ETIMEDOUT);
    scope.cancel();
  }
}

// --- threads without a hub
// ------------------------------------------------------------------------------

TEST(ShimSocketTest, ThreadWithoutAHubGetsPlainBlockingSockets) {
  listener l;
  std::atomic<long> flags{-1};
  std::atomic<ssize_t> n{-2};
  std::thread t([&] {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    flags = real_flags(fd);
    if (::connect(fd, l.sa(), sizeof l.addr) != 0) return;
    char buf[4];
    n = ::recv(fd, buf, sizeof buf, 0);  // blocks the thread until the server writes
    ::close(fd);
  });
  int s = ::accept(l.fd, nullptr, nullptr);
  ASSERT_GE(s, 0);
  fern::sleep(20ms);
  EXPECT_EQ(n.load(), -2);
  ::send(s, "t", 1, 0);
  t.join();
  EXPECT_FALSE(flags & O_NONBLOCK);
  EXPECT_EQ(n.load(), 1);
  ::close(s);
}

TEST(ShimSocketTest, ShimOwnedSocketUsedFromAThreadWithoutAHubStillBlocks) {
  listener l;
  int c = ::socket(AF_INET, SOCK_STREAM, 0);  // shim-owned: non-blocking underneath
  std::atomic<int> connected{-2};
  std::atomic<ssize_t> n{-2};
  std::thread t([&] {
    connected = ::connect(c, l.sa(), sizeof l.addr);
    char buf[4];
    n = ::recv(c, buf, sizeof buf, 0);  // must block, not fail with EAGAIN
  });
  int s = -1;
  for (int i = 0; i < 200 && s < 0; ++i) {
    s = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK);
    if (s < 0) fern::sleep(5ms);
  }
  ASSERT_GE(s, 0);
  fern::sleep(20ms);
  EXPECT_EQ(n.load(), -2);
  ::send(s, "u", 1, 0);
  t.join();
  EXPECT_EQ(connected.load(), 0);
  EXPECT_EQ(n.load(), 1);
  ::close(s);
  ::close(c);
}

// A blocking MSG_WAITALL recv on a shim-owned socket, from a thread without a hub: the
// non-blocking description returns the first part; the shim goes on as the kernel would.
TEST(ShimSocketTest, ShimOwnedSocketMsgWaitallFromAThreadWithoutAHubFillsTheBuffer) {
  unix_pair p;  // created on the main thread's hub: non-blocking underneath
  std::atomic<ssize_t> n{-2};
  char buf[6];
  std::thread t([&] { n = ::recv(p.a, buf, sizeof buf, MSG_WAITALL); });
  ::send(p.b, "abc", 3, 0);
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(n.load(), -2);
  ::send(p.b, "def", 3, 0);
  t.join();
  EXPECT_EQ(n.load(), 6);
  EXPECT_EQ(std::string(buf, 6), "abcdef");
}

// --- concurrency
// -------------------------------------------------------------------------------------------

// 1000 fibers on one OS thread each make blocking connect/write/read calls against a server
// (on the same thread) that answers each request after 100 ms: serially that is 100 s; parked
// cooperatively it is about 100 ms plus overhead.
TEST(ShimSocketTest, ThousandBlockingClientsOverlapOnOneThread) {
  constexpr int clients = 1000;
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 2 * clients + 64) {
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 2 * clients + 64);
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  ASSERT_GE(rl.rlim_cur, static_cast<rlim_t>(2 * clients + 64)) << "not enough fds";
  listener l(0, 2 * clients);
  std::vector<fern::fiber<void>> handlers;
  int served = 0;
  auto server = fern::spawn([&] {
    while (served < clients) {
      int c = ::accept(l.fd, nullptr, nullptr);
      if (c < 0) break;
      ++served;
      handlers.push_back(fern::spawn([c] {
        char buf[8];
        ssize_t n = ::read(c, buf, sizeof buf);
        fern::sleep(100ms);
        if (n > 0) ::write(c, buf, static_cast<size_t>(n));
        ::close(c);
      }));
    }
  });
  int ok = 0, in_flight = 0, max_in_flight = 0;
  auto t0 = std::chrono::steady_clock::now();
  std::vector<fern::fiber<void>> fibers;
  for (int i = 0; i < clients; ++i) {
    fibers.push_back(fern::spawn([&, i] {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      if (fd < 0 || ::connect(fd, l.sa(), sizeof l.addr) != 0) return;
      max_in_flight = std::max(max_in_flight, ++in_flight);
      std::string msg = std::to_string(i);
      char buf[8];
      if (::write(fd, msg.data(), msg.size()) == static_cast<ssize_t>(msg.size()) &&
          ::read(fd, buf, sizeof buf) == static_cast<ssize_t>(msg.size()) &&
          std::string(buf, msg.size()) == msg)
        ++ok;
      --in_flight;
      ::close(fd);
    }));
  }
  EXPECT_TRUE(fern::joinall(fibers, 20s));
  double ms = ms_since(t0);
  server.join(5s);
  fern::joinall(handlers, 5s);
  EXPECT_EQ(ok, clients);
  EXPECT_GT(max_in_flight, clients / 2);  // they really were all waiting at once
  EXPECT_LT(ms, 5000.0) << "1000 x 100 ms did not overlap";
}

}  // namespace
