// fd waits: wait_readable / wait_writable / fern::close and the shim's detail::wait_fd, on
// socketpairs and pipes.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fern/fern.hpp"
#include "fern/io.hpp"

using namespace std::chrono_literals;

namespace {

struct pair_fds {
  int a = -1, b = -1;
  pair_fds() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
      throw std::system_error(errno, std::generic_category(), "socketpair");
    a = sv[0];
    b = sv[1];
  }
  // fern::close, not ::close: fds that fibers waited on must be closed through fern so their
  // registration is dropped before the number is reused (io.hpp).
  ~pair_fds() {
    if (a >= 0) fern::close(a);
    if (b >= 0) fern::close(b);
  }
};

TEST(IoTest, ReaderParksUntilPeerWrites) {
  pair_fds p;
  std::vector<std::string> log;
  auto reader = fern::spawn([&] {
    char buf[16];
    ASSERT_EQ(::read(p.a, buf, sizeof buf), -1);
    ASSERT_EQ(errno, EAGAIN);
    log.push_back("wait");
    EXPECT_TRUE(fern::wait_readable(p.a));
    ssize_t n = ::read(p.a, buf, sizeof buf);
    log.push_back("read " + std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0));
  });
  auto writer = fern::spawn([&] {
    fern::sleep(10ms);
    log.push_back("write");
    ASSERT_EQ(::write(p.b, "hi", 2), 2);
  });
  fern::joinall({reader, writer});
  EXPECT_EQ(log, (std::vector<std::string>{"wait", "write", "read hi"}));
}

TEST(IoTest, ReadinessThatArrivedBeforeTheWaitIsNotLost) {
  pair_fds p;
  // Register the fd with a first, timed-out wait; then let the edge arrive with nobody waiting.
  EXPECT_FALSE(fern::wait_readable(p.a, 1ms));
  ASSERT_EQ(::write(p.b, "x", 1), 1);
  fern::sleep(5ms);  // the hub polls and remembers the edge
  EXPECT_TRUE(fern::wait_readable(p.a, 1s));
}

TEST(IoTest, WaitTimesOutWithFalse) {
  pair_fds p;
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(fern::wait_readable(p.a, 20ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
}

TEST(IoTest, WritableAtOnceOnAFreshSocket) {
  pair_fds p;
  EXPECT_TRUE(fern::wait_writable(p.a, 1s));
}

TEST(IoTest, CloseWakesBlockedReaderWithEbadf) {
  pair_fds p;
  int fd = p.a;
  p.a = -1;
  std::vector<std::string> log;
  auto reader = fern::spawn([&] {
    try {
      fern::wait_readable(fd);
      log.push_back("woke");
    } catch (const std::system_error& e) {
      log.push_back(e.code().value() == EBADF ? "EBADF" : "other");
    }
  });
  auto closer = fern::spawn([&] {
    fern::yield();
    log.push_back("close");
    fern::close(fd);
  });
  fern::joinall({reader, closer});
  EXPECT_EQ(log, (std::vector<std::string>{"close", "EBADF"}));
}

TEST(IoTest, ReusedFdNumberIsNotConfusedWithTheClosedOne) {
  pair_fds p;
  EXPECT_FALSE(fern::wait_readable(p.a, 1ms));  // registers p.a
  int old = p.a;
  fern::close(p.a);
  p.a = -1;
  int pfd[2];
  ASSERT_EQ(::pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
  int reused = pfd[0] == old ? pfd[0] : pfd[1] == old ? pfd[1] : -1;
  ASSERT_NE(reused, -1) << "the kernel did not reuse the number";
  int rd = pfd[0], wr = pfd[1];
  if (reused == rd) {
    auto w = fern::spawn([&] {
      fern::sleep(5ms);
      ASSERT_EQ(::write(wr, "z", 1), 1);
    });
    EXPECT_TRUE(fern::wait_readable(rd, 1s));  // a fresh registration under a new tag
    w.join();
  } else {
    EXPECT_TRUE(fern::wait_writable(wr, 1s));
  }
  fern::close(pfd[0]);
  fern::close(pfd[1]);
}

TEST(IoTest, SecondReaderOnTheSameFdIsAConcurrentUseError) {
  pair_fds p;
  auto first = fern::spawn([&] { fern::wait_readable(p.a, 200ms); });
  auto second = fern::spawn([&] {
    fern::yield();
    EXPECT_THROW(fern::wait_readable(p.a, 10ms), fern::concurrent_use_error);
    // The other direction is free.
    EXPECT_TRUE(fern::wait_writable(p.a, 10ms));
  });
  second.join();
  first.kill();
}

TEST(IoTest, ShimWaitQueuesSeveralWaitersAndWakesThemAll) {
  pair_fds p;
  int woke = 0;
  std::vector<fern::fiber<int>> fs;
  for (int i = 0; i < 3; ++i)
    fs.push_back(fern::spawn([&] {
      bool scope = false;
      int r = fern::detail::wait_fd(p.a, fern::detail::io_dir::read,
                                    fern::detail::deadline_after(1s), &scope);
      ++woke;
      return r;
    }));
  auto w = fern::spawn([&] {
    fern::sleep(5ms);
    ASSERT_EQ(::write(p.b, "x", 1), 1);
  });
  fern::joinall(fs);
  for (auto& f : fs) EXPECT_EQ(f.get(), 0);
  EXPECT_EQ(woke, 3);
  w.join();
}

TEST(IoTest, ShimWaitReportsTimeoutKillAndScopeAsErrno) {
  pair_fds p;
  bool scope = true;
  EXPECT_EQ(fern::detail::wait_fd(p.a, fern::detail::io_dir::read,
                                  fern::detail::deadline_after(5ms), &scope),
            ETIMEDOUT);
  EXPECT_FALSE(scope);
  {
    fern::timeout t(5ms);
    EXPECT_EQ(
        fern::detail::wait_fd(p.a, fern::detail::io_dir::read, fern::detail::no_deadline, &scope),
        ETIMEDOUT);
    EXPECT_TRUE(scope);
  }
  auto victim = fern::spawn([&] {
    bool s = false;
    return fern::detail::wait_fd(p.a, fern::detail::io_dir::read, fern::detail::no_deadline, &s);
  });
  fern::yield();
  victim.kill();
  EXPECT_EQ(victim.get(), ECANCELED);
}

TEST(IoTest, RegularFileCannotBeWatched) {
  FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  try {
    fern::wait_readable(fileno(f), 10ms);
    ADD_FAILURE() << "no exception";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EPERM);
  }
  std::fclose(f);
}

TEST(IoTest, InvalidFdIsEbadf) {
  try {
    fern::wait_readable(987654, 10ms);
    ADD_FAILURE() << "no exception";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EBADF);
  }
}

TEST(IoTest, KillWakesAFiberWaitingOnAnFd) {
  pair_fds p;
  auto f = fern::spawn([&] { fern::wait_readable(p.a); });
  fern::yield();
  EXPECT_TRUE(f.kill({.timeout = 1s}));
  EXPECT_THROW(f.get(), fern::fiber_exit);
}

TEST(IoTest, RootWaitingOnAnFdIsNotALoopExit) {
  pair_fds p;
  std::thread t([fd = p.b] {
    std::this_thread::sleep_for(20ms);
    ASSERT_EQ(::write(fd, "x", 1), 1);
  });
  EXPECT_TRUE(fern::wait_readable(p.a));
  t.join();
}

}  // namespace
