// The poll family under the shim (poll.cpp): poll, ppoll, select, pselect, epoll_wait,
// epoll_pwait, epoll_pwait2. A call that finds nothing ready parks its fiber (the others run)
// until any fd of its set is ready; results, revents, fd sets and errno are the kernel's
// (compared with direct system calls); kill, fern::timeout, closing and timeouts end the wait as
// poll.cpp's header says. Linked against libfern_interpose: every ::poll here is the hook.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fern/fern.hpp"
#include "fern/io.hpp"
#include "hub_impl.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// A pipe closed with fern::close (which also drops the hub's registration: io.hpp).
struct pipe_fds {
  int r = -1, w = -1;
  pipe_fds() {
    int p[2];
    if (::syscall(SYS_pipe2, p, O_CLOEXEC) != 0)
      throw std::system_error(errno, std::generic_category(), "pipe2");
    r = p[0];
    w = p[1];
  }
  ~pipe_fds() {
    if (r >= 0) fern::close(r);
    if (w >= 0) fern::close(w);
  }
  void close_w() {
    fern::close(w);
    w = -1;
  }
};

struct outcome {
  long r;
  int e;
  bool operator==(const outcome&) const = default;
};
template <class... A>
outcome sys(long nr, A... a) {
  errno = 0;
  long r = ::syscall(nr, a...);
  return {r, r < 0 ? errno : 0};
}
template <class F>
outcome call(F f) {
  errno = 0;
  long r = f();
  return {r, r < 0 ? errno : 0};
}
void PrintTo(const outcome& o, std::ostream* os) {
  *os << "{" << o.r << ", " << o.e << "}";
}

std::int64_t ms_since(steady::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
}

// A null pointer the compiler cannot see through (glibc marks these arguments as arrays).
template <class T>
T* opaque_null() {
  T* p = nullptr;
  asm volatile("" : "+r"(p));
  return p;
}

// An fd number that is not open.
int closed_fd() {
  int fd = static_cast<int>(::syscall(SYS_dup, 0));
  ::syscall(SYS_close, fd);
  return fd;
}

// --- poll
// -----------------------------------------------------------------------------------------

TEST(PollTest, ReadyFdsAreReportedAtOnceWithTheirRevents) {
  pipe_fds p;
  ASSERT_EQ(::write(p.w, "x", 1), 1);
  pollfd fds[3] = {{p.r, POLLIN, 7}, {p.w, POLLOUT, 7}, {-1, POLLIN, 7}};
  pollfd ref[3] = {{p.r, POLLIN, 7}, {p.w, POLLOUT, 7}, {-1, POLLIN, 7}};
  EXPECT_EQ(::poll(fds, 3, 1000), 2);
  EXPECT_EQ(sys(SYS_poll, ref, 3, 0), (outcome{2, 0}));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(fds[i].revents, ref[i].revents) << i;
  EXPECT_EQ(fds[0].revents, POLLIN);
  EXPECT_EQ(fds[1].revents, POLLOUT);
  EXPECT_EQ(fds[2].revents, 0);
}

TEST(PollTest, ParksUntilThePeerWritesWhileOthersRun) {
  pipe_fds p;
  std::vector<std::string> log;
  auto reader = fern::spawn([&] {
    pollfd fd{p.r, POLLIN, 0};
    log.push_back("poll");
    int n = ::poll(&fd, 1, 5000);
    log.push_back("woke " + std::to_string(n) + " " + std::to_string(fd.revents));
  });
  auto writer = fern::spawn([&] {
    log.push_back("writer");
    fern::sleep(10ms);
    log.push_back("write");
    ASSERT_EQ(::write(p.w, "x", 1), 1);
  });
  fern::joinall({reader, writer});
  EXPECT_EQ(log, (std::vector<std::string>{"poll", "writer", "write",
                                           "woke 1 " + std::to_string(POLLIN)}));
}

TEST(PollTest, WakesWhenAnyOfSeveralFdsIsReady) {
  pipe_fds a, b, c;
  pollfd fds[3] = {{a.r, POLLIN, 0}, {b.r, POLLIN, 0}, {c.r, POLLIN, 0}};
  auto writer = fern::spawn([&] {
    fern::sleep(10ms);
    ASSERT_EQ(::write(c.w, "x", 1), 1);
  });
  auto t0 = steady::now();
  EXPECT_EQ(::poll(fds, 3, 5000), 1);
  EXPECT_LT(ms_since(t0), 4000);
  EXPECT_EQ(fds[0].revents, 0);
  EXPECT_EQ(fds[1].revents, 0);
  EXPECT_EQ(fds[2].revents, POLLIN);
  writer.join();
}

TEST(PollTest, WaitsForWritabilityToo) {
  int sv[2];
  ASSERT_EQ(::syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  char junk[4096] = {};
  while (::syscall(SYS_write, sv[0], junk, sizeof junk) > 0) {
  }
  pollfd fd{sv[0], POLLOUT, 0};
  EXPECT_EQ(::poll(&fd, 1, 0), 0);
  auto drainer = fern::spawn([&] {
    fern::sleep(10ms);
    char buf[65536];
    while (::syscall(SYS_read, sv[1], buf, sizeof buf) > 0) {
    }
  });
  EXPECT_EQ(::poll(&fd, 1, 5000), 1);
  EXPECT_TRUE(fd.revents & POLLOUT);
  drainer.join();
  fern::close(sv[0]);
  fern::close(sv[1]);
}

TEST(PollTest, TimeoutReturnsZeroAndClearsRevents) {
  pipe_fds p;
  pollfd fd{p.r, POLLIN, 0x55};
  bool other_ran = false;
  auto other = fern::spawn([&] { other_ran = true; });
  auto t0 = steady::now();
  EXPECT_EQ(::poll(&fd, 1, 30), 0);
  EXPECT_GE(ms_since(t0), 29);
  EXPECT_EQ(fd.revents, 0);
  EXPECT_TRUE(other_ran);
  other.join();
}

TEST(PollTest, NoFdsIsATimedSleep) {
  auto t0 = steady::now();
  EXPECT_EQ(::poll(nullptr, 0, 20), 0);
  EXPECT_GE(ms_since(t0), 19);
  pollfd ignored{-1, POLLIN, 0};
  EXPECT_EQ(::poll(&ignored, 1, 20), 0);
}

TEST(PollTest, PeerHangupAndBadFdsAreReportedLikeTheKernel) {
  pipe_fds p;
  int bad = closed_fd();
  auto closer = fern::spawn([&] {
    fern::sleep(10ms);
    p.close_w();
  });
  pollfd fd{p.r, POLLIN, 0};
  EXPECT_EQ(::poll(&fd, 1, 5000), 1);
  EXPECT_EQ(fd.revents, POLLHUP);
  closer.join();
  pollfd fds[2] = {{bad, POLLIN, 0}, {p.r, POLLIN, 0}};
  pollfd ref[2] = {{bad, POLLIN, 0}, {p.r, POLLIN, 0}};
  EXPECT_EQ(::poll(fds, 2, 1000), 2);
  EXPECT_EQ(sys(SYS_poll, ref, 2, 0), (outcome{2, 0}));
  EXPECT_EQ(fds[0].revents, POLLNVAL);
  EXPECT_EQ(fds[0].revents, ref[0].revents);
  EXPECT_EQ(fds[1].revents, ref[1].revents);
}

TEST(PollTest, ClosingAPolledFdEndsTheWaitWithPollnval) {
  pipe_fds p;
  auto closer = fern::spawn([&] {
    fern::sleep(10ms);
    fern::close(p.r);  // wakes the poller; its re-poll finds the fd gone
    p.r = -1;
  });
  pollfd fd{p.r, POLLIN, 0};
  auto t0 = steady::now();
  EXPECT_EQ(::poll(&fd, 1, 5000), 1);
  EXPECT_LT(ms_since(t0), 4000);
  EXPECT_EQ(fd.revents, POLLNVAL);
  closer.join();
}

TEST(PollTest, InvalidArgumentsGiveTheKernelsErrors) {
  pollfd* null = opaque_null<pollfd>();
  EXPECT_EQ(call([&] { return ::poll(null, 1, 100); }), sys(SYS_poll, null, 1, 100));
  EXPECT_EQ(call([&] { return ::poll(null, 1, 100); }), (outcome{-1, EFAULT}));
  rlimit rl;
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_cur > (1u << 20)) GTEST_SKIP() << "RLIMIT_NOFILE too large for the EINVAL case";
  nfds_t too_many = rl.rlim_cur + 1;
  std::vector<pollfd> fds(too_many, pollfd{-1, POLLIN, 0});  // sanitizers read all of it
  EXPECT_EQ(call([&] { return ::poll(fds.data(), too_many, 100); }),
            sys(SYS_poll, fds.data(), too_many, 100));
  EXPECT_EQ(call([&] { return ::poll(fds.data(), too_many, 100); }), (outcome{-1, EINVAL}));
}

TEST(PollTest, RegularFilesAreAlwaysReady) {
  FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  pollfd fd{fileno(f), POLLIN | POLLOUT, 0};
  EXPECT_EQ(::poll(&fd, 1, 5000), 1);
  EXPECT_EQ(fd.revents, POLLIN | POLLOUT);
  std::fclose(f);
}

TEST(PollTest, KilledPollerGetsEcanceled) {
  pipe_fds p;
  outcome got{0, 0};
  auto f = fern::spawn([&] {
    pollfd fd{p.r, POLLIN, 0};
    got = call([&] { return ::poll(&fd, 1, -1); });
  });
  fern::sleep(5ms);
  f.kill();
  EXPECT_TRUE(f.successful());
  EXPECT_EQ(got, (outcome{-1, ECANCELED}));
}

TEST(PollTest, ExpiredTimeoutScopeGivesEtimedout) {
  pipe_fds p;
  pollfd fd{p.r, POLLIN, 0};
  {
    fern::timeout scope(20ms);
    auto t0 = steady::now();
    EXPECT_EQ(call([&] { return ::poll(&fd, 1, -1); }), (outcome{-1, ETIMEDOUT}));
    EXPECT_GE(ms_since(t0), 19);
  }
  // The call's own timeout, shorter than the scope: a plain 0.
  fern::timeout scope(10s);
  EXPECT_EQ(call([&] { return ::poll(&fd, 1, 10); }), (outcome{0, 0}));
}

TEST(PollTest, ErrnoIsPreservedOnSuccess) {
  pipe_fds p;
  auto noisy = fern::spawn([&] {
    errno = EPIPE;
    fern::sleep(5ms);
    errno = EPIPE;
    ASSERT_EQ(::write(p.w, "x", 1), 1);
  });
  errno = 4242;
  pollfd fd{p.r, POLLIN, 0};
  EXPECT_EQ(::poll(&fd, 1, 5000), 1);
  EXPECT_EQ(errno, 4242);
  noisy.join();
}

TEST(PollTest, ManyFibersEachWakeWhenTheirOwnFdIsReady) {
  constexpr int n = 50;
  std::vector<pipe_fds> pipes(n);
  std::vector<int> woke;
  std::vector<fern::fiber<void>> fibers;
  for (int i = 0; i < n; ++i)
    fibers.push_back(fern::spawn([&, i] {
      pollfd fd{pipes[i].r, POLLIN, 0};
      EXPECT_EQ(::poll(&fd, 1, 5000), 1);
      woke.push_back(i);
    }));
  fern::yield();
  std::vector<int> expected;
  for (int i = n - 1; i >= 0; --i) {  // wake them in reverse order, one per hub turn
    ASSERT_EQ(::write(pipes[i].w, "x", 1), 1);
    expected.push_back(i);
    fern::sleep(1ms);
  }
  fern::joinall(fibers);
  EXPECT_EQ(woke, expected);
}

TEST(PollTest, AThreadWithoutAHubGetsTheRealCall) {
  pipe_fds p;
  std::atomic<int> r{-2};
  std::atomic<bool> had_hub{true};
  std::thread t([&] {
    pollfd fd{p.r, POLLIN, 0};
    r = ::poll(&fd, 1, 5000);
    had_hub = fern::detail::hub_impl::peek() != nullptr;
  });
  std::this_thread::sleep_for(10ms);
  ASSERT_EQ(::syscall(SYS_write, p.w, "x", 1), 1);
  t.join();
  EXPECT_EQ(r, 1);
  EXPECT_FALSE(had_hub);
}

// _FORTIFY_SOURCE builds call these instead of poll/ppoll when the array's size is known.
extern "C" int __poll_chk(pollfd*, nfds_t, int, size_t);
extern "C" int __ppoll_chk(pollfd*, nfds_t, const timespec*, const sigset_t*, size_t);

TEST(PollTest, FortifiedEntryPointsParkToo) {
  pipe_fds p;
  std::vector<std::string> log;
  auto writer = fern::spawn([&] {
    log.push_back("writer");
    fern::sleep(5ms);
    ASSERT_EQ(::write(p.w, "x", 1), 1);
  });
  pollfd fd{p.r, POLLIN, 0};
  EXPECT_EQ(__poll_chk(&fd, 1, 5000, sizeof fd), 1);
  log.push_back("woke");
  writer.join();
  EXPECT_EQ(log, (std::vector<std::string>{"writer", "woke"}));
  char c;
  ASSERT_EQ(::syscall(SYS_read, p.r, &c, 1), 1);
  timespec t{0, 10 * 1000 * 1000};
  EXPECT_EQ(__ppoll_chk(&fd, 1, &t, nullptr, sizeof fd), 0);
}

// --- ppoll
// ----------------------------------------------------------------------------------------

TEST(PpollTest, ParksAndHonoursItsTimespec) {
  pipe_fds p;
  pollfd fd{p.r, POLLIN, 0};
  timespec t{0, 20 * 1000 * 1000};
  auto t0 = steady::now();
  EXPECT_EQ(::ppoll(&fd, 1, &t, nullptr), 0);
  EXPECT_GE(ms_since(t0), 19);
  EXPECT_EQ(t.tv_nsec, 20 * 1000 * 1000);  // glibc's ppoll does not update the caller's timeout
  auto writer = fern::spawn([&] {
    fern::sleep(5ms);
    ASSERT_EQ(::write(p.w, "x", 1), 1);
  });
  EXPECT_EQ(::ppoll(&fd, 1, nullptr, nullptr), 1);
  EXPECT_EQ(fd.revents, POLLIN);
  writer.join();
}

TEST(PpollTest, InvalidArgumentsGiveTheKernelsErrors) {
  pollfd fd{0, POLLIN, 0};
  for (timespec bad : {timespec{-1, 0}, timespec{0, -1}, timespec{0, 1000000000}}) {
    timespec k = bad;
    EXPECT_EQ(call([&] { return ::ppoll(&fd, 1, &bad, nullptr); }),
              sys(SYS_ppoll, &fd, 1, &k, nullptr, 8));
    EXPECT_EQ(call([&] { return ::ppoll(&fd, 1, &bad, nullptr); }), (outcome{-1, EINVAL}));
  }
  timespec t{1, 0}, k{1, 0};
  pollfd* null = opaque_null<pollfd>();
  EXPECT_EQ(call([&] { return ::ppoll(null, 1, &t, nullptr); }),
            sys(SYS_ppoll, null, 1, &k, nullptr, 8));
}

// --- select, pselect
// ------------------------------------------------------------------------------

TEST(SelectTest, ReadyAtOnceKeepsOnlyTheReadyBits) {
  pipe_fds a, b;
  ASSERT_EQ(::write(b.w, "x", 1), 1);
  fd_set r, w;
  FD_ZERO(&r);
  FD_ZERO(&w);
  FD_SET(a.r, &r);
  FD_SET(b.r, &r);
  FD_SET(a.w, &w);
  fd_set rr = r, rw = w;
  int nfds = std::max({a.r, b.r, a.w}) + 1;
  timeval tv{5, 0};
  EXPECT_EQ(::select(nfds, &r, &w, nullptr, &tv), 2);
  timeval ktv{0, 0};
  EXPECT_EQ(sys(SYS_select, nfds, &rr, &rw, nullptr, &ktv), (outcome{2, 0}));
  EXPECT_EQ(std::memcmp(&r, &rr, sizeof r), 0);
  EXPECT_EQ(std::memcmp(&w, &rw, sizeof w), 0);
  EXPECT_FALSE(FD_ISSET(a.r, &r));
  EXPECT_TRUE(FD_ISSET(b.r, &r));
  EXPECT_TRUE(FD_ISSET(a.w, &w));
  EXPECT_GT(tv.tv_sec, 3);  // Linux: the time left
}

TEST(SelectTest, ParksUntilAnyFdIsReady) {
  pipe_fds a, b;
  std::vector<std::string> log;
  auto writer = fern::spawn([&] {
    log.push_back("writer");
    fern::sleep(10ms);
    ASSERT_EQ(::write(b.w, "x", 1), 1);
  });
  fd_set r;
  FD_ZERO(&r);
  FD_SET(a.r, &r);
  FD_SET(b.r, &r);
  log.push_back("select");
  EXPECT_EQ(::select(std::max(a.r, b.r) + 1, &r, nullptr, nullptr, nullptr), 1);
  log.push_back("woke");
  EXPECT_FALSE(FD_ISSET(a.r, &r));
  EXPECT_TRUE(FD_ISSET(b.r, &r));
  writer.join();
  EXPECT_EQ(log, (std::vector<std::string>{"select", "writer", "woke"}));
}

TEST(SelectTest, SetsOffTheStackWorkToo) {
  // Sets outside the fiber's stack are read through the kernel (poll.cpp): same results.
  pipe_fds a, b;
  auto sets = std::make_unique<fd_set[]>(2);
  FD_ZERO(&sets[0]);
  FD_ZERO(&sets[1]);
  FD_SET(a.r, &sets[0]);
  FD_SET(b.r, &sets[0]);
  FD_SET(b.w, &sets[1]);
  auto writer = fern::spawn([&] {
    fern::sleep(10ms);
    ASSERT_EQ(::write(a.w, "x", 1), 1);
  });
  int nfds = std::max({a.r, b.r, b.w}) + 1;
  EXPECT_EQ(::select(nfds, &sets[0], nullptr, nullptr, nullptr), 1);
  EXPECT_TRUE(FD_ISSET(a.r, &sets[0]));
  EXPECT_FALSE(FD_ISSET(b.r, &sets[0]));
  EXPECT_EQ(::select(nfds, nullptr, &sets[1], nullptr, nullptr), 1);
  EXPECT_TRUE(FD_ISSET(b.w, &sets[1]));
  writer.join();
}

TEST(SelectTest, TimeoutClearsTheSetsAndTheTimeval) {
  pipe_fds a;
  fd_set r;
  FD_ZERO(&r);
  FD_SET(a.r, &r);
  timeval tv{0, 30000};
  auto t0 = steady::now();
  EXPECT_EQ(::select(a.r + 1, &r, nullptr, nullptr, &tv), 0);
  EXPECT_GE(ms_since(t0), 29);
  EXPECT_FALSE(FD_ISSET(a.r, &r));
  EXPECT_EQ(tv.tv_sec, 0);
  EXPECT_EQ(tv.tv_usec, 0);
  // tv_usec beyond a second is normalized, not refused (as the kernel does).
  FD_SET(a.r, &r);
  timeval big{0, 1020000};
  auto f = fern::spawn([&] { return ::select(a.r + 1, &r, nullptr, nullptr, &big); });
  fern::sleep(10ms);
  EXPECT_FALSE(f.ready());
  ASSERT_EQ(::write(a.w, "x", 1), 1);
  EXPECT_EQ(f.get(), 1);
}

TEST(SelectTest, InvalidArgumentsGiveTheKernelsErrors) {
  pipe_fds a;
  int bad = closed_fd();
  fd_set r, kr;
  FD_ZERO(&r);
  FD_SET(bad, &r);
  FD_SET(a.r, &r);
  kr = r;
  timeval tv{1, 0}, ktv{1, 0};
  int nfds = std::max(bad, a.r) + 1;
  EXPECT_EQ(call([&] { return ::select(nfds, &r, nullptr, nullptr, &tv); }),
            sys(SYS_select, nfds, &kr, nullptr, nullptr, &ktv));
  EXPECT_EQ(std::memcmp(&r, &kr, sizeof r), 0);  // untouched on error
  EXPECT_EQ(call([&] { return ::select(-1, nullptr, nullptr, nullptr, &tv); }),
            (outcome{-1, EINVAL}));
  timeval neg{-1, 0};
  EXPECT_EQ(call([&] { return ::select(1, nullptr, nullptr, nullptr, &neg); }),
            (outcome{-1, EINVAL}));
  // An unreadable set: EFAULT, not a crash.
  fd_set* wild = reinterpret_cast<fd_set*>(16);
  timeval t2{1, 0}, kt2{1, 0};
  EXPECT_EQ(call([&] { return ::select(nfds, wild, nullptr, nullptr, &t2); }),
            sys(SYS_select, nfds, wild, nullptr, nullptr, &kt2));
  EXPECT_EQ(call([&] { return ::select(nfds, wild, nullptr, nullptr, &t2); }),
            (outcome{-1, EFAULT}));
}

TEST(SelectTest, KillAndTimeoutScope) {
  pipe_fds a;
  outcome got{0, 0};
  auto f = fern::spawn([&] {
    fd_set r;
    FD_ZERO(&r);
    FD_SET(a.r, &r);
    got = call([&] { return ::select(a.r + 1, &r, nullptr, nullptr, nullptr); });
    EXPECT_TRUE(FD_ISSET(a.r, &r));  // the sets are left as given on error
  });
  fern::sleep(5ms);
  f.kill();
  EXPECT_EQ(got, (outcome{-1, ECANCELED}));
  fern::timeout scope(10ms);
  fd_set r;
  FD_ZERO(&r);
  FD_SET(a.r, &r);
  EXPECT_EQ(call([&] { return ::select(a.r + 1, &r, nullptr, nullptr, nullptr); }),
            (outcome{-1, ETIMEDOUT}));
}

TEST(SelectTest, PselectParksAndKeepsItsTimespec) {
  pipe_fds a;
  fd_set r;
  FD_ZERO(&r);
  FD_SET(a.r, &r);
  timespec t{0, 20 * 1000 * 1000};
  EXPECT_EQ(::pselect(a.r + 1, &r, nullptr, nullptr, &t, nullptr), 0);
  EXPECT_EQ(t.tv_nsec, 20 * 1000 * 1000);
  auto writer = fern::spawn([&] {
    fern::sleep(5ms);
    ASSERT_EQ(::write(a.w, "x", 1), 1);
  });
  FD_SET(a.r, &r);
  EXPECT_EQ(::pselect(a.r + 1, &r, nullptr, nullptr, nullptr, nullptr), 1);
  EXPECT_TRUE(FD_ISSET(a.r, &r));
  writer.join();
  timespec bad{0, -5};
  EXPECT_EQ(call([&] { return ::pselect(1, nullptr, nullptr, nullptr, &bad, nullptr); }),
            (outcome{-1, EINVAL}));
}

// --- epoll
// ----------------------------------------------------------------------------------------

struct epoll_fd {
  int fd = static_cast<int>(::syscall(SYS_epoll_create1, EPOLL_CLOEXEC));
  ~epoll_fd() {
    if (fd >= 0) fern::close(fd);
  }
  void add(int f, std::uint32_t events, std::uint64_t tag) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = tag;
    ASSERT_EQ(::syscall(SYS_epoll_ctl, fd, EPOLL_CTL_ADD, f, &ev), 0);
  }
};

TEST(EpollTest, TheProgramsOwnEpollLoopParksOnItsEpollFd) {
  pipe_fds a, b;
  epoll_fd ep;
  ep.add(a.r, EPOLLIN, 0xa);
  ep.add(b.r, EPOLLIN, 0xb);
  std::vector<std::string> log;
  auto writer = fern::spawn([&] {
    log.push_back("writer");
    fern::sleep(10ms);
    ASSERT_EQ(::write(b.w, "x", 1), 1);
  });
  epoll_event evs[4];
  log.push_back("wait");
  int n = ::epoll_wait(ep.fd, evs, 4, 5000);
  log.push_back("woke");
  ASSERT_EQ(n, 1);
  EXPECT_EQ(evs[0].data.u64, 0xbu);
  EXPECT_EQ(evs[0].events, static_cast<std::uint32_t>(EPOLLIN));
  writer.join();
  EXPECT_EQ(log, (std::vector<std::string>{"wait", "writer", "woke"}));
  // Level-triggered: reported again at once.
  EXPECT_EQ(::epoll_wait(ep.fd, evs, 4, 5000), 1);
}

TEST(EpollTest, EdgeTriggeredSetsWakeOnEachNewEdge) {
  pipe_fds a;
  epoll_fd ep;
  ep.add(a.r, EPOLLIN | EPOLLET, 1);
  epoll_event ev;
  for (int i = 0; i < 3; ++i) {
    auto writer = fern::spawn([&] {
      fern::sleep(2ms);
      ASSERT_EQ(::write(a.w, "x", 1), 1);
    });
    EXPECT_EQ(::epoll_wait(ep.fd, &ev, 1, 5000), 1) << i;
    writer.join();
  }
  EXPECT_EQ(::epoll_wait(ep.fd, &ev, 1, 20), 0);  // no new edge
}

TEST(EpollTest, TimeoutsAndErrorsAreTheKernels) {
  epoll_fd ep;
  pipe_fds a;
  ep.add(a.r, EPOLLIN, 1);
  epoll_event evs[2];
  auto t0 = steady::now();
  EXPECT_EQ(::epoll_wait(ep.fd, evs, 2, 20), 0);
  EXPECT_GE(ms_since(t0), 19);
  int bad = closed_fd();
  EXPECT_EQ(call([&] { return ::epoll_wait(ep.fd, evs, 0, 100); }),
            sys(SYS_epoll_wait, ep.fd, evs, 0, 100));
  EXPECT_EQ(call([&] { return ::epoll_wait(ep.fd, evs, 0, 100); }), (outcome{-1, EINVAL}));
  EXPECT_EQ(call([&] { return ::epoll_wait(bad, evs, 2, 100); }), (outcome{-1, EBADF}));
  EXPECT_EQ(call([&] { return ::epoll_wait(a.r, evs, 2, 100); }), (outcome{-1, EINVAL}));
  epoll_event* null = opaque_null<epoll_event>();
  EXPECT_EQ(call([&] { return ::epoll_wait(ep.fd, null, 2, 100); }),
            sys(SYS_epoll_wait, ep.fd, null, 2, 100));
  timespec badts{0, -1};
  EXPECT_EQ(call([&] { return ::epoll_pwait2(ep.fd, evs, 2, &badts, nullptr); }),
            (outcome{-1, EINVAL}));
  timespec ts{0, 20 * 1000 * 1000};
  EXPECT_EQ(call([&] { return ::epoll_pwait2(ep.fd, evs, 2, &ts, nullptr); }), (outcome{0, 0}));
  EXPECT_EQ(call([&] { return ::epoll_pwait(ep.fd, evs, 2, 20, nullptr); }), (outcome{0, 0}));
}

TEST(EpollTest, ClosingTheEpollFdEndsTheWaitWithEbadf) {
  epoll_fd ep;
  auto closer = fern::spawn([&] {
    fern::sleep(10ms);
    fern::close(ep.fd);
    ep.fd = -1;
  });
  epoll_event ev;
  int fd = ep.fd;
  EXPECT_EQ(call([&] { return ::epoll_wait(fd, &ev, 1, 5000); }), (outcome{-1, EBADF}));
  closer.join();
}

TEST(EpollTest, KillAndTimeoutScope) {
  epoll_fd ep;
  outcome got{0, 0};
  auto f = fern::spawn([&] {
    epoll_event ev;
    got = call([&] { return ::epoll_wait(ep.fd, &ev, 1, -1); });
  });
  fern::sleep(5ms);
  f.kill();
  EXPECT_EQ(got, (outcome{-1, ECANCELED}));
  fern::timeout scope(10ms);
  epoll_event ev;
  timespec ts{10, 0};
  EXPECT_EQ(call([&] { return ::epoll_pwait2(ep.fd, &ev, 1, &ts, nullptr); }),
            (outcome{-1, ETIMEDOUT}));
}

TEST(EpollTest, EpollPwait2WithNullTimeoutWaitsForever) {
  epoll_fd ep;
  pipe_fds a;
  ep.add(a.r, EPOLLIN, 9);
  auto writer = fern::spawn([&] {
    fern::sleep(10ms);
    ASSERT_EQ(::write(a.w, "x", 1), 1);
  });
  epoll_event ev;
  errno = 4242;
  EXPECT_EQ(::epoll_pwait2(ep.fd, &ev, 1, nullptr, nullptr), 1);
  EXPECT_EQ(errno, 4242);
  EXPECT_EQ(ev.data.u64, 9u);
  writer.join();
}

}  // namespace
