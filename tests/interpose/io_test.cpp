// POSIX conformance of the read/write family under the shim (read, write, readv, writev, pread,
// pwrite): results and errno as without fern, but a call that would block parks only its fiber.
// Pipes the shim created are non-blocking underneath; "inherited" ones (made with a raw syscall)
// keep their flags and still cooperate (RWF_NOWAIT, or readiness first).
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
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

struct pipe_fds {
  int r = -1, w = -1;
  explicit pipe_fds(int flags = 0) {
    int p[2];
    EXPECT_EQ(::pipe2(p, flags), 0);
    r = p[0];
    w = p[1];
  }
  ~pipe_fds() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
};

// --- success, errno preserved -------------------------------------------------------------

TEST(ShimIoTest, ReadAndWriteSucceedAtOnceAndPreserveErrno) {
  pipe_fds p;
  errno = EDOM;
  ASSERT_EQ(::write(p.w, "hello", 5), 5);
  EXPECT_EQ(errno, EDOM);
  char buf[16];
  ASSERT_EQ(::read(p.r, buf, sizeof buf), 5);
  EXPECT_EQ(errno, EDOM);
  EXPECT_EQ(std::string(buf, 5), "hello");
}

TEST(ShimIoTest, ReadvWritevMoveEveryBufferAndPreserveErrno) {
  pipe_fds p;
  char a[] = "ab", b[] = "cde";
  iovec out[2] = {{a, 2}, {b, 3}};
  errno = EDOM;
  ASSERT_EQ(::writev(p.w, out, 2), 5);
  EXPECT_EQ(errno, EDOM);
  char x[3] = {}, y[8] = {};
  iovec in[2] = {{x, 3}, {y, sizeof y}};
  ASSERT_EQ(::readv(p.r, in, 2), 5);
  EXPECT_EQ(errno, EDOM);
  EXPECT_EQ(std::string(x, 3) + std::string(y, 2), "abcde");
}

TEST(ShimIoTest, ZeroLengthReadAndWriteReturnZero) {
  pipe_fds p;
  char c;
  EXPECT_EQ(::read(p.r, &c, 0), 0);  // would otherwise block: a zero-length read never does
  EXPECT_EQ(::write(p.w, &c, 0), 0);
}

// --- would block: the fiber parks, the others run ------------------------------------------

TEST(ShimIoTest, ReadParksTheFiberWhileOthersRun) {
  pipe_fds p;
  event_log log;
  auto reader = fern::spawn([&] {
    log("read");
    char buf[8];
    ssize_t n = ::read(p.r, buf, sizeof buf);
    log("got " + std::string(buf, n > 0 ? static_cast<size_t>(n) : 0));
  });
  auto writer = fern::spawn([&] {
    log("write");
    ASSERT_EQ(::write(p.w, "hi", 2), 2);
  });
  fern::joinall({reader, writer});
  EXPECT_EQ(log.events, (std::vector<std::string>{"read", "write", "got hi"}));
}

// A call that parks and then succeeds restores errno: its first attempt failed with EAGAIN.
TEST(ShimIoTest, ParkedReadAndWriteThatSucceedPreserveErrno) {
  pipe_fds p;
  std::string big(300000, 'p');  // more than the pipe holds: the write parks
  int read_errno = 0, write_errno = 0;
  auto reader = fern::spawn([&] {
    char c;
    errno = EDOM;
    EXPECT_EQ(::read(p.r, &c, 1), 1);  // parks until the writer's first bytes
    read_errno = errno;
    std::vector<char> rest(big.size());
    size_t got = 1;
    while (got < big.size()) {
      ssize_t n = ::read(p.r, rest.data(), rest.size());
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    EXPECT_EQ(got, big.size());
  });
  auto writer = fern::spawn([&] {
    errno = ERANGE;
    EXPECT_EQ(::write(p.w, big.data(), big.size()), static_cast<ssize_t>(big.size()));
    write_errno = errno;
  });
  fern::joinall({reader, writer});
  EXPECT_EQ(read_errno, EDOM);
  EXPECT_EQ(write_errno, ERANGE);
}

TEST(ShimIoTest, RootFiberReadParksAndLetsFibersRun) {
  pipe_fds p;
  event_log log;
  auto writer = fern::spawn([&] {
    log("writer runs");
    ::write(p.w, "x", 1);
  });
  char c = 0;
  log("root reads");
  ASSERT_EQ(::read(p.r, &c, 1), 1);
  log("root got");
  EXPECT_EQ(log.events, (std::vector<std::string>{"root reads", "writer runs", "root got"}));
  writer.join();
}

TEST(ShimIoTest, BlockingWriteToAFullPipeParksAndWritesEverything) {
  pipe_fds p;
  const size_t total = 1 << 20;  // 16x the pipe's capacity
  std::string data(total, 'x');
  event_log log;
  size_t drained = 0;
  auto writer = fern::spawn([&] {
    log("write");
    ssize_t n = ::write(p.w, data.data(), total);
    log("wrote " + std::to_string(n));
  });
  auto reader = fern::spawn([&] {
    log("drain");
    std::vector<char> buf(1 << 16);
    while (drained < total) {
      ssize_t n = ::read(p.r, buf.data(), buf.size());
      if (n <= 0) break;
      drained += static_cast<size_t>(n);
    }
    log("drained");
  });
  fern::joinall({writer, reader});
  EXPECT_EQ(drained, total);
  ASSERT_EQ(log.events.size(), 4u);
  EXPECT_EQ(log.events[0], "write");
  EXPECT_EQ(log.events[1], "drain");  // the writer parked on the full pipe
  EXPECT_NE(std::find(log.events.begin(), log.events.end(), "wrote " + std::to_string(total)),
            log.events.end());
}

TEST(ShimIoTest, WritevToAFullPipeWritesEveryBuffer) {
  pipe_fds p;
  std::string a(100000, 'a'), b(100000, 'b');
  iovec iov[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
  std::string got;
  auto reader = fern::spawn([&] {
    char buf[4096];
    while (got.size() < a.size() + b.size()) {
      ssize_t n = ::read(p.r, buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
  });
  EXPECT_EQ(::writev(p.w, iov, 2), static_cast<ssize_t>(a.size() + b.size()));
  reader.join();
  EXPECT_EQ(got, a + b);
}

// --- peer closed ------------------------------------------------------------------------------

TEST(ShimIoTest, ParkedReadReturnsZeroWhenTheWriterCloses) {
  pipe_fds p;
  ssize_t n = -2;
  auto reader = fern::spawn([&] {
    char c;
    n = ::read(p.r, &c, 1);
  });
  fern::sleep(5ms);
  ::close(p.w);
  p.w = -1;
  reader.join();
  EXPECT_EQ(n, 0);
}

TEST(ShimIoTest, WriteToAPipeWithNoReaderFailsWithEpipe) {
  pipe_fds p;
  ::close(p.r);
  p.r = -1;
  errno = 0;
  EXPECT_EQ(::write(p.w, "x", 1), -1);
  EXPECT_EQ(errno, EPIPE);
  char c = 'x';
  iovec iov{&c, 1};
  EXPECT_EQ(::writev(p.w, &iov, 1), -1);
  EXPECT_EQ(errno, EPIPE);
}

TEST(ShimIoTest, ParkedWriterGetsEpipeWhenTheReaderCloses) {
  pipe_fds p;
  std::string big(1 << 17, 'x');  // twice the pipe: the writer parks half way
  ssize_t n = -2;
  int err = 0;
  auto writer = fern::spawn([&] {
    n = ::write(p.w, big.data(), big.size());
    err = errno;
  });
  fern::sleep(5ms);
  ::close(p.r);
  p.r = -1;
  writer.join();
  // Like a blocking pipe_write: what went out is reported (and SIGPIPE raised, ignored here).
  EXPECT_EQ(n, 65536) << err;
}

// --- invalid fd: exactly the kernel's errno ---------------------------------------------------

TEST(ShimIoTest, InvalidFdsFailLikeTheRawSyscall) {
  char buf[4];
  iovec iov{buf, 4};
  for (int fd : {-1, 9999, INT32_MAX}) {
    EXPECT_EQ(errno_of([&] { return ::read(fd, buf, 4); }),
              errno_of([&] { return ::syscall(SYS_read, fd, buf, 4); }));
    EXPECT_EQ(errno_of([&] { return ::write(fd, buf, 4); }),
              errno_of([&] { return ::syscall(SYS_write, fd, buf, 4); }));
    EXPECT_EQ(errno_of([&] { return ::readv(fd, &iov, 1); }),
              errno_of([&] { return ::syscall(SYS_readv, fd, &iov, 1); }));
    EXPECT_EQ(errno_of([&] { return ::writev(fd, &iov, 1); }),
              errno_of([&] { return ::syscall(SYS_writev, fd, &iov, 1); }));
    EXPECT_EQ(errno_of([&] { return ::pread(fd, buf, 4, 0); }),
              errno_of([&] { return ::syscall(SYS_pread64, fd, buf, 4, 0); }));
    EXPECT_EQ(errno_of([&] { return ::pwrite(fd, buf, 4, 0); }),
              errno_of([&] { return ::syscall(SYS_pwrite64, fd, buf, 4, 0); }));
    EXPECT_EQ(errno_of([&] { return ::read(fd, buf, 4); }), EBADF);
  }
}

TEST(ShimIoTest, BadArgumentsFailLikeTheRawSyscall) {
  pipe_fds p;
  char buf[4];
  iovec iov{buf, 4};
  volatile int negative = -1, too_many = 100000;  // volatile: the compiler would reject them
  EXPECT_EQ(errno_of([&] { return ::readv(p.r, &iov, negative); }),
            errno_of([&] { return ::syscall(SYS_readv, p.r, &iov, -1); }));
  EXPECT_EQ(errno_of([&] { return ::writev(p.w, &iov, too_many); }),
            errno_of([&] { return ::syscall(SYS_writev, p.w, &iov, 100000); }));
  EXPECT_EQ(errno_of([&] { return ::read(p.w, buf, 4); }),  // write end: EBADF
            errno_of([&] { return ::syscall(SYS_read, p.w, buf, 4); }));
  EXPECT_EQ(errno_of([&] { return ::pread(p.r, buf, 4, 0); }), ESPIPE);
  EXPECT_EQ(errno_of([&] { return ::pwrite(p.w, buf, 4, 0); }), ESPIPE);
}

// --- closed while waiting ---------------------------------------------------------------------

TEST(ShimIoTest, CloseWakesAParkedReaderWithEbadf) {
  pipe_fds p;
  ssize_t n = -2;
  int err = 0;
  event_log log;
  auto reader = fern::spawn([&] {
    char c;
    log("read");
    n = ::read(p.r, &c, 1);
    err = errno;
    log("woke");
  });
  fern::sleep(5ms);
  log("close");
  ::close(p.r);
  p.r = -1;
  reader.join();
  EXPECT_EQ(n, -1);
  EXPECT_EQ(err, EBADF);
  EXPECT_EQ(log.events, (std::vector<std::string>{"read", "close", "woke"}));
}

TEST(ShimIoTest, CloseWakesAParkedWriterWithEbadf) {
  pipe_fds p;
  std::string fill(65536, 'x');
  ASSERT_EQ(::write(p.w, fill.data(), fill.size()), 65536);  // the pipe is full now
  ssize_t n = -2;
  int err = 0;
  auto writer = fern::spawn([&] {
    n = ::write(p.w, "y", 1);
    err = errno;
  });
  fern::sleep(5ms);
  ::close(p.w);
  p.w = -1;
  writer.join();
  EXPECT_EQ(n, -1);
  EXPECT_EQ(err, EBADF);
}

// --- the program's own O_NONBLOCK --------------------------------------------------------------

TEST(ShimIoTest, ShimCreatedPipeIsNonblockingUnderneathButNotInTheProgramsView) {
  pipe_fds p;
  EXPECT_TRUE(real_nonblock(p.r));
  EXPECT_TRUE(real_nonblock(p.w));
  EXPECT_FALSE(::fcntl(p.r, F_GETFL) & O_NONBLOCK);
  EXPECT_FALSE(::fcntl(p.w, F_GETFL) & O_NONBLOCK);
}

TEST(ShimIoTest, UserNonblockPipeGetsEagainAtOnce) {
  pipe_fds p(O_NONBLOCK);
  EXPECT_TRUE(::fcntl(p.r, F_GETFL) & O_NONBLOCK);
  char c;
  EXPECT_EQ(errno_of([&] { return ::read(p.r, &c, 1); }), EAGAIN);
  iovec iov{&c, 1};
  EXPECT_EQ(errno_of([&] { return ::readv(p.r, &iov, 1); }), EAGAIN);
  std::string fill(65536, 'x');
  EXPECT_EQ(::write(p.w, fill.data(), fill.size()), 65536);
  EXPECT_EQ(errno_of([&] { return ::write(p.w, "y", 1); }), EAGAIN);
}

TEST(ShimIoTest, FsetflNonblockIsShownAndObeyedThenCleared) {
  pipe_fds p;
  int fl = ::fcntl(p.r, F_GETFL);
  ASSERT_EQ(::fcntl(p.r, F_SETFL, fl | O_NONBLOCK), 0);
  EXPECT_EQ(::fcntl(p.r, F_GETFL), fl | O_NONBLOCK);
  char c;
  EXPECT_EQ(errno_of([&] { return ::read(p.r, &c, 1); }), EAGAIN);
  ASSERT_EQ(::fcntl(p.r, F_SETFL, fl), 0);
  EXPECT_EQ(::fcntl(p.r, F_GETFL), fl);
  EXPECT_TRUE(real_nonblock(p.r));  // still non-blocking underneath
  // Blocking again: it parks (and the writer runs).
  auto writer = fern::spawn([&] { ::write(p.w, "z", 1); });
  EXPECT_EQ(::read(p.r, &c, 1), 1);
  EXPECT_EQ(c, 'z');
  writer.join();
}

// --- descriptions the shim did not create --------------------------------------------------------

TEST(ShimIoTest, InheritedPipeCooperatesWithoutItsFlagsBeingTouched) {
  int fds[2];
  raw_pipe(fds);
  ASSERT_FALSE(real_nonblock(fds[0]));
  event_log log;
  auto reader = fern::spawn([&] {
    log("read");
    char buf[4];
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    log("got " + std::to_string(n));
  });
  auto writer = fern::spawn([&] {
    log("write");
    ::write(fds[1], "abc", 3);
  });
  fern::joinall({reader, writer});
  EXPECT_EQ(log.events, (std::vector<std::string>{"read", "write", "got 3"}));
  EXPECT_FALSE(real_nonblock(fds[0]));
  EXPECT_FALSE(real_nonblock(fds[1]));
  EXPECT_FALSE(::fcntl(fds[0], F_GETFL) & O_NONBLOCK);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(ShimIoTest, InheritedPipeFullWriteParksAndFinishes) {
  int fds[2];
  raw_pipe(fds);
  std::string big(200000, 'q');
  size_t got = 0;
  auto reader = fern::spawn([&] {
    char buf[8192];
    while (got < big.size()) {
      ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
  });
  EXPECT_EQ(::write(fds[1], big.data(), big.size()), static_cast<ssize_t>(big.size()));
  reader.join();
  EXPECT_EQ(got, big.size());
  EXPECT_FALSE(real_nonblock(fds[1]));
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(ShimIoTest, InheritedNonblockingPipeKeepsGivingEagain) {
  int fds[2];
  raw_pipe(fds, O_NONBLOCK);
  EXPECT_TRUE(::fcntl(fds[0], F_GETFL) & O_NONBLOCK);
  char c;
  EXPECT_EQ(errno_of([&] { return ::read(fds[0], &c, 1); }), EAGAIN);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(ShimIoTest, InheritedSocketpairCooperatesThroughMsgDontwait) {
  int sv[2];
  raw_socketpair(SOCK_STREAM, sv);
  event_log log;
  auto reader = fern::spawn([&] {
    log("read");
    char buf[4];
    ssize_t n = ::read(sv[0], buf, sizeof buf);
    log("got " + std::to_string(n));
  });
  auto writer = fern::spawn([&] {
    log("write");
    ::write(sv[1], "ab", 2);
  });
  fern::joinall({reader, writer});
  EXPECT_EQ(log.events, (std::vector<std::string>{"read", "write", "got 2"}));
  EXPECT_FALSE(real_nonblock(sv[0]));
  ::close(sv[0]);
  ::close(sv[1]);
}

// --- kill and fern::timeout
// ------------------------------------------------------------------------

TEST(ShimIoTest, KillingAParkedReaderMakesItsReadFailWithEcanceled) {
  pipe_fds p;
  ssize_t n = -2;
  int err = 0;
  auto reader = fern::spawn([&] {
    char c;
    n = ::read(p.r, &c, 1);
    err = errno;
  });
  fern::sleep(5ms);
  EXPECT_TRUE(reader.kill());
  EXPECT_EQ(n, -1);
  EXPECT_EQ(err, ECANCELED);
}

TEST(ShimIoTest, KillingAParkedWriterAfterAPartialWriteReturnsTheCountAndKeepsTheKill) {
  pipe_fds p;
  std::string big(1 << 17, 'x');
  ssize_t n = -2, again = -2;
  int err = 0;
  auto writer = fern::spawn([&] {
    n = ::write(p.w, big.data(), big.size());
    again = ::write(p.w, "y", 1);  // the pipe is still full: this one would park
    err = errno;
  });
  fern::sleep(5ms);
  EXPECT_TRUE(writer.kill());
  EXPECT_EQ(n, 65536);
  EXPECT_EQ(again, -1);  // the kill is not lost: the next blocking call reports it
  EXPECT_EQ(err, ECANCELED);
}

TEST(ShimIoTest, ExpiredTimeoutScopeMakesReadFailWithEtimedout) {
  pipe_fds p;
  char c;
  auto t0 = std::chrono::steady_clock::now();
  fern::timeout scope(20ms);
  errno = 0;
  EXPECT_EQ(::read(p.r, &c, 1), -1);
  EXPECT_EQ(errno, ETIMEDOUT);
  EXPECT_GE(ms_since(t0), 19.0);
  scope.cancel();
}

// --- signals
// ---------------------------------------------------------------------------------------

std::atomic<int> g_signals{0};
void on_signal(int) {
  g_signals.fetch_add(1);
}

// Installs on_signal for SIGUSR1 (with or without SA_RESTART) for the test's duration.
struct usr1_handler {
  struct sigaction old {};
  explicit usr1_handler(bool restart) {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGUSR1, &sa, &old);
  }
  ~usr1_handler() { ::sigaction(SIGUSR1, &old, nullptr); }
};

TEST(ShimIoTest, SignalWithoutSaRestartInterruptsAParkedReadWithEintr) {
  usr1_handler h(false);
  pipe_fds p;
  ssize_t n = -2;
  int err = 0;
  auto reader = fern::spawn([&] {
    char c;
    n = ::read(p.r, &c, 1);
    err = errno;
  });
  fern::sleep(3ms);
  ::raise(SIGUSR1);
  reader.join();
  EXPECT_EQ(n, -1);
  EXPECT_EQ(err, EINTR);
}

TEST(ShimIoTest, SignalWithSaRestartLetsAParkedReadGoOn) {
  usr1_handler h(true);
  pipe_fds p;
  int before = g_signals.load();
  ssize_t n = -2;
  auto reader = fern::spawn([&] {
    char c;
    n = ::read(p.r, &c, 1);
  });
  fern::sleep(3ms);
  ::raise(SIGUSR1);
  fern::sleep(3ms);
  EXPECT_EQ(n, -2);  // still parked
  EXPECT_EQ(g_signals.load(), before + 1);
  ::write(p.w, "r", 1);
  reader.join();
  EXPECT_EQ(n, 1);
}

TEST(ShimIoTest, SignalInterruptingAPartialWriteReturnsTheCount) {
  usr1_handler h(false);
  pipe_fds p;
  std::string big(1 << 17, 'x');
  ssize_t n = -2;
  auto writer = fern::spawn([&] { n = ::write(p.w, big.data(), big.size()); });
  fern::sleep(3ms);
  ::raise(SIGUSR1);
  writer.join();
  EXPECT_EQ(n, 65536);  // as pipe_write returns what it wrote when a signal arrives
}

// --- pread / pwrite ------------------------------------------------------------------------------

// A tty refuses RWF_NOWAIT (EOPNOTSUPP): the shim learns it from the first attempt, then waits
// for readiness before each real call; the fiber parks all the same and errno survives the
// refused attempt.
TEST(ShimIoTest, TtyThatRefusesRwfNowaitParksTheReaderAndPreservesErrno) {
  int m = ::posix_openpt(O_RDWR | O_NOCTTY);
  if (m < 0) GTEST_SKIP() << "no pty: " << std::strerror(errno);
  ASSERT_EQ(::grantpt(m), 0);
  ASSERT_EQ(::unlockpt(m), 0);
  int s = ::open(::ptsname(m), O_RDWR | O_NOCTTY);
  ASSERT_GE(s, 0);
  termios raw{};
  ASSERT_EQ(::tcgetattr(s, &raw), 0);
  ::cfmakeraw(&raw);  // bytes as they come, no echo
  ASSERT_EQ(::tcsetattr(s, TCSANOW, &raw), 0);
  event_log log;
  auto reader = fern::spawn([&] {
    for (int i = 0; i < 2; ++i) {  // the second read knows RWF_NOWAIT is refused
      log("read");
      char buf[8];
      errno = EDOM;
      ssize_t n = ::read(s, buf, sizeof buf);
      log("got " + std::string(buf, n > 0 ? static_cast<size_t>(n) : 0) +
          (errno == EDOM ? "" : " errno " + std::to_string(errno)));
    }
  });
  auto writer = fern::spawn([&] {
    for (const char* b : {"a", "b"}) {
      log(std::string("write ") + b);
      errno = ERANGE;  // not the reader's: the fibers share the thread's errno
      EXPECT_EQ(::write(m, b, 1), 1);
      EXPECT_EQ(errno, ERANGE);
      fern::sleep(50ms);  // the reader gets it before the next write
    }
  });
  fern::joinall({reader, writer});
  EXPECT_EQ(log.events,
            (std::vector<std::string>{"read", "write a", "got a", "read", "write b", "got b"}));
  ::close(s);
  ::close(m);
}

TEST(ShimIoTest, PreadPwriteOnAFilePassThrough) {
  char path[] = "/tmp/fern_shim_io_XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::unlink(path);
  errno = EDOM;
  EXPECT_EQ(::pwrite(fd, "abcdef", 6, 0), 6);
  EXPECT_EQ(::pwrite64(fd, "XY", 2, 2), 2);
  char buf[8] = {};
  EXPECT_EQ(::pread(fd, buf, 6, 0), 6);
  EXPECT_EQ(std::string(buf, 6), "abXYef");
  EXPECT_EQ(::pread64(fd, buf, 2, 4), 2);
  EXPECT_EQ(std::string(buf, 2), "ef");
  EXPECT_EQ(errno, EDOM);
  EXPECT_EQ(errno_of([&] { return ::pread(fd, buf, 2, -1); }),
            errno_of([&] { return ::syscall(SYS_pread64, fd, buf, 2, -1L); }));
  // Regular files are never shim-owned nor made non-blocking.
  EXPECT_FALSE(real_nonblock(fd));
  ::close(fd);
}

TEST(ShimIoTest, ReadOfARegularFileIsTheRealCall) {
  int fd = ::open("/proc/self/stat", O_RDONLY);
  ASSERT_GE(fd, 0);
  char buf[64];
  EXPECT_GT(::read(fd, buf, sizeof buf), 0);
  ::close(fd);
}

// --- threads without a hub
// ------------------------------------------------------------------------

TEST(ShimIoTest, ThreadWithoutAHubGetsPlainBlockingCalls) {
  std::atomic<long> flags{-1};
  std::atomic<ssize_t> n{-2};
  int fds[2] = {-1, -1};
  std::thread t([&] {
    ASSERT_EQ(::pipe(fds), 0);  // created off a hub: not shim-owned
    flags = real_flags(fds[0]);
    std::thread w([&] {
      std::this_thread::sleep_for(30ms);
      ::write(fds[1], "k", 1);
    });
    char c;
    n = ::read(fds[0], &c, 1);  // blocks this thread until the other writes
    w.join();
  });
  t.join();
  EXPECT_FALSE(flags & O_NONBLOCK);
  EXPECT_EQ(n, 1);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(ShimIoTest, ShimOwnedPipeUsedFromAThreadWithoutAHubStillBlocks) {
  pipe_fds p;  // created on the main thread's hub: non-blocking underneath
  ASSERT_TRUE(real_nonblock(p.r));
  std::atomic<ssize_t> n{-2};
  std::atomic<int> err{0};
  std::thread t([&] {
    char c;
    n = ::read(p.r, &c, 1);  // must block, not return EAGAIN
    err = errno;
  });
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(n.load(), -2);
  ::write(p.w, "m", 1);
  t.join();
  EXPECT_EQ(n.load(), 1) << err.load();
}

TEST(ShimIoTest, ShimOwnedPipeReadvWritevFromAThreadWithoutAHubBlockLikeTheKernel) {
  pipe_fds p;  // created on the main thread's hub: non-blocking underneath
  std::atomic<ssize_t> got{-2};
  std::string big(300000, 'v');
  std::atomic<ssize_t> put{-2};
  std::thread t([&] {
    char a[2], b[2];
    iovec in[2] = {{a, sizeof a}, {b, sizeof b}};
    got = ::readv(p.r, in, 2);  // must block, not return EAGAIN
    iovec out[2] = {{big.data(), 100000}, {big.data() + 100000, big.size() - 100000}};
    put = ::writev(p.w, out, 2);  // more than the pipe holds: must write everything
  });
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(got.load(), -2);
  ::write(p.w, "rv", 2);
  auto t0 = std::chrono::steady_clock::now();
  while (got.load() == -2 && ms_since(t0) < 10000) fern::sleep(1ms);  // before draining it
  size_t drained = 0;
  char buf[8192];
  t0 = std::chrono::steady_clock::now();
  while (drained < big.size() && ms_since(t0) < 10000) {
    ssize_t r = ::read(p.r, buf, sizeof buf);
    if (r <= 0) break;
    drained += static_cast<size_t>(r);
  }
  t.join();
  EXPECT_EQ(got.load(), 2);
  EXPECT_EQ(put.load(), static_cast<ssize_t>(big.size()));
  EXPECT_EQ(drained, big.size());
}

TEST(ShimIoTest, ShimOwnedPipeFullWriteFromAThreadWithoutAHubWritesEverything) {
  pipe_fds p;
  std::string big(300000, 'w');
  std::atomic<ssize_t> n{-2};
  std::thread t([&] { n = ::write(p.w, big.data(), big.size()); });
  size_t got = 0;
  char buf[8192];
  auto t0 = std::chrono::steady_clock::now();
  while (got < big.size() && ms_since(t0) < 10000) {
    ssize_t r = ::read(p.r, buf, sizeof buf);
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  t.join();
  EXPECT_EQ(n.load(), static_cast<ssize_t>(big.size()));
  EXPECT_EQ(got, big.size());
}

}  // namespace
