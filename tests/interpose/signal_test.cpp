// Signals under the shim (signals.cpp): a handled signal delivered on the hub's thread ends the
// parked calls the kernel would have interrupted with EINTR (poll, select, epoll_wait, the sleeps,
// pause, sigsuspend always; restartable waits only without SA_RESTART), the masks of ppoll and
// friends apply while they are parked, and sigaction & co. show the program its own handlers.
// Linked against libfern_interpose: every ::sigaction here is the hook.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fern/fern.hpp"
#include "fern/io.hpp"

// siginterrupt and sigset are deprecated, and still in use: the shim covers them.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

std::atomic<int> g_usr1{0};
std::atomic<int> g_usr2{0};
std::atomic<std::int64_t> g_usr1_at{0};  // steady_clock ns of the latest on_usr1
std::atomic<int> g_info_signo{0};
std::atomic<int> g_info_value{0};
std::atomic<bool> g_info_had_context{false};

void on_usr1(int) {
  g_usr1_at = steady::now().time_since_epoch().count();
  g_usr1.fetch_add(1);
}
void on_usr2(int) {
  g_usr2.fetch_add(1);
}
void on_usr1_info(int sig, siginfo_t* si, void* uc) {
  g_info_signo = sig;
  g_info_value = si ? si->si_value.sival_int : -1;
  g_info_had_context = uc != nullptr;
  g_usr1.fetch_add(1);
}

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
    fern::close(r);
    fern::close(w);
  }
};

struct outcome {
  long r;
  int e;
  bool operator==(const outcome&) const = default;
};
void PrintTo(const outcome& o, std::ostream* os) {
  *os << "{" << o.r << ", " << o.e << "}";
}
template <class F>
outcome call(F f) {
  errno = 0;
  long r = f();
  return {r, r < 0 ? errno : 0};
}

std::int64_t ms_since(steady::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
}

// Saves and restores SIGUSR1/SIGUSR2 and the thread's mask, so tests run in one process too.
class SignalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_usr1 = 0;
    g_usr2 = 0;
    ::sigaction(SIGUSR1, nullptr, &old1_);
    ::sigaction(SIGUSR2, nullptr, &old2_);
    ::pthread_sigmask(SIG_SETMASK, nullptr, &mask_);
  }
  void TearDown() override {
    ::sigaction(SIGUSR1, &old1_, nullptr);
    ::sigaction(SIGUSR2, &old2_, nullptr);
    ::pthread_sigmask(SIG_SETMASK, &mask_, nullptr);
  }
  static void handle(int sig, void (*fn)(int), int flags) {
    struct sigaction sa {};
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(::sigaction(sig, &sa, nullptr), 0);
  }
  // Sends `sig` to this thread from another OS thread after `delay`: it lands while the hub
  // sleeps in epoll.
  static std::thread send_later(int sig, std::chrono::milliseconds delay) {
    pthread_t self = ::pthread_self();
    return std::thread([=] {
      std::this_thread::sleep_for(delay);
      ::pthread_kill(self, sig);
    });
  }

 private:
  struct sigaction old1_ {
  }, old2_{};
  sigset_t mask_;
};

// --- EINTR for calls that are never restarted --------------------------------------------------

TEST_F(SignalTest, ParkedSleepIsInterruptedEvenWithSaRestart) {
  handle(SIGUSR1, on_usr1, SA_RESTART);
  outcome got{0, 0};
  timespec rem{0, 0};
  auto sleeper = fern::spawn([&] {
    timespec req{10, 0};
    got = call([&] { return ::nanosleep(&req, &rem); });
  });
  fern::sleep(5ms);
  ::raise(SIGUSR1);  // the handler runs here, on this fiber; the hub then wakes the sleeper
  sleeper.join();
  EXPECT_EQ(got, (outcome{-1, EINTR}));
  EXPECT_EQ(g_usr1, 1);
  EXPECT_GE(rem.tv_sec, 9);
}

TEST_F(SignalTest, SignalFromAnotherThreadInterruptsTheHubsSleep) {
  handle(SIGUSR1, on_usr1, SA_RESTART);
  pipe_fds p;
  std::thread t = send_later(SIGUSR1, 30ms);
  pollfd fd{p.r, POLLIN, 0};
  auto t0 = steady::now();
  EXPECT_EQ(call([&] { return ::poll(&fd, 1, 10000); }), (outcome{-1, EINTR}));
  EXPECT_LT(ms_since(t0), 5000);
  t.join();
  EXPECT_EQ(g_usr1, 1);
}

TEST_F(SignalTest, EveryParkedCallOfTheThreadSeesTheSignal) {
  handle(SIGUSR1, on_usr1, SA_RESTART);
  pipe_fds p;
  int ep = static_cast<int>(::syscall(SYS_epoll_create1, EPOLL_CLOEXEC));
  ASSERT_GE(ep, 0);
  std::vector<outcome> got(6, outcome{0, 0});
  std::vector<fern::fiber<void>> fibers;
  fibers.push_back(fern::spawn([&] {
    pollfd fd{p.r, POLLIN, 0};
    got[0] = call([&] { return ::poll(&fd, 1, -1); });
  }));
  fibers.push_back(fern::spawn([&] {
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p.r, &r);
    got[1] = call([&] { return ::select(p.r + 1, &r, nullptr, nullptr, nullptr); });
  }));
  fibers.push_back(fern::spawn([&] {
    epoll_event ev;
    got[2] = call([&] { return ::epoll_wait(ep, &ev, 1, -1); });
  }));
  fibers.push_back(fern::spawn([&] { got[3] = call([] { return ::usleep(10000000); }); }));
  fibers.push_back(fern::spawn([&] {
    timespec req{10, 0};
    got[4] = {::clock_nanosleep(CLOCK_MONOTONIC, 0, &req, nullptr), 0};
  }));
  fibers.push_back(fern::spawn([&] { got[5] = call([] { return ::pause(); }); }));
  fern::sleep(5ms);
  std::thread t = send_later(SIGUSR1, 0ms);
  EXPECT_TRUE(fern::joinall(fibers, 10s));
  fern::killall(fibers);
  t.join();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(got[i], (outcome{-1, EINTR})) << i;
  EXPECT_EQ(got[4], (outcome{EINTR, 0}));  // clock_nanosleep returns the error number
  EXPECT_EQ(got[5], (outcome{-1, EINTR}));
  fern::close(ep);
}

TEST_F(SignalTest, SleepReturnsTheSecondsLeftWithEintr) {
  handle(SIGUSR1, on_usr1, 0);
  std::thread t = send_later(SIGUSR1, 20ms);
  errno = 0;
  EXPECT_EQ(::sleep(5), 4u);
  EXPECT_EQ(errno, EINTR);
  t.join();
}

TEST_F(SignalTest, ASignalHandledBeforeTheCallDoesNotInterruptIt) {
  handle(SIGUSR1, on_usr1, 0);
  ::raise(SIGUSR1);
  EXPECT_EQ(g_usr1, 1);
  timespec req{0, 20 * 1000 * 1000};
  EXPECT_EQ(call([&] { return ::nanosleep(&req, nullptr); }), (outcome{0, 0}));
}

TEST_F(SignalTest, IgnoredAndDefaultIgnoredSignalsInterruptNothing) {
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGUSR1, &ign, nullptr), 0);
  std::thread t = send_later(SIGUSR1, 5ms);
  std::thread t2 = send_later(SIGWINCH, 10ms);  // default action: ignore
  timespec req{0, 40 * 1000 * 1000};
  EXPECT_EQ(call([&] { return ::nanosleep(&req, nullptr); }), (outcome{0, 0}));
  t.join();
  t2.join();
}

// --- what the program sees of its handlers -------------------------------------------------------

TEST_F(SignalTest, SigactionShowsTheProgramsOwnHandlerAndFlags) {
  struct sigaction sa {
  }, old{};
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGUSR2);
  ASSERT_EQ(::sigaction(SIGUSR1, &sa, nullptr), 0);
  ASSERT_EQ(::sigaction(SIGUSR1, nullptr, &old), 0);
  EXPECT_EQ(old.sa_handler, on_usr1);
  EXPECT_EQ(old.sa_flags & (SA_RESTART | SA_NODEFER | SA_SIGINFO), SA_RESTART | SA_NODEFER);
  EXPECT_TRUE(sigismember(&old.sa_mask, SIGUSR2));
  sa.sa_sigaction = on_usr1_info;
  sa.sa_flags = SA_SIGINFO;
  ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);
  EXPECT_EQ(old.sa_handler, on_usr1);  // the previous one, in the same call
  ASSERT_EQ(::sigaction(SIGUSR1, nullptr, &old), 0);
  EXPECT_EQ(old.sa_sigaction, on_usr1_info);
  EXPECT_TRUE(old.sa_flags & SA_SIGINFO);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(::signal(SIGUSR1, SIG_IGN)),
            reinterpret_cast<std::uintptr_t>(&on_usr1_info));
  EXPECT_EQ(::signal(SIGUSR1, SIG_DFL), SIG_IGN);
  EXPECT_EQ(::signal(SIGUSR1, on_usr1), SIG_DFL);
  EXPECT_EQ(::signal(SIGUSR1, SIG_DFL), on_usr1);
}

TEST_F(SignalTest, EachSignalRunsItsOwnHandler) {
  handle(SIGUSR1, on_usr1, 0);
  handle(SIGUSR2, on_usr2, SA_RESTART);
  ::raise(SIGUSR2);
  ::raise(SIGUSR2);
  ::raise(SIGUSR1);
  EXPECT_EQ(g_usr1, 1);
  EXPECT_EQ(g_usr2, 2);
}

TEST_F(SignalTest, SiginfoHandlersGetTheirSiginfo) {
  struct sigaction sa {};
  sa.sa_sigaction = on_usr1_info;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(::sigaction(SIGUSR1, &sa, nullptr), 0);
  sigval v;
  v.sival_int = 77;
  ASSERT_EQ(::pthread_sigqueue(::pthread_self(), SIGUSR1, v), 0);
  EXPECT_EQ(g_usr1, 1);
  EXPECT_EQ(g_info_signo, SIGUSR1);
  EXPECT_EQ(g_info_value, 77);
  EXPECT_TRUE(g_info_had_context);
}

TEST_F(SignalTest, BadArgumentsFailLikeGlibc) {
  struct sigaction sa {};
  sa.sa_handler = on_usr1;
  EXPECT_EQ(call([&] { return ::sigaction(0, &sa, nullptr); }), (outcome{-1, EINVAL}));
  EXPECT_EQ(call([&] { return ::sigaction(65, &sa, nullptr); }), (outcome{-1, EINVAL}));
  EXPECT_EQ(call([&] { return ::sigaction(SIGKILL, &sa, nullptr); }), (outcome{-1, EINVAL}));
  EXPECT_EQ(call([&] { return ::sigaction(32, &sa, nullptr); }), (outcome{-1, EINVAL}));
  errno = 0;
  EXPECT_EQ(::signal(0, on_usr1), SIG_ERR);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(::signal(33, on_usr1), SIG_ERR);  // glibc's own (SIGSETXID)
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(::signal(SIGUSR1, SIG_ERR), SIG_ERR);
  // The table was not changed by the failed calls.
  EXPECT_EQ(::signal(SIGUSR1, SIG_DFL), SIG_DFL);
}

TEST_F(SignalTest, SysvSignalIsOneShot) {
  ASSERT_NE(::sysv_signal(SIGUSR1, on_usr1), SIG_ERR);
  struct sigaction sa {};
  ASSERT_EQ(::sigaction(SIGUSR1, nullptr, &sa), 0);
  EXPECT_EQ(sa.sa_handler, on_usr1);
  EXPECT_TRUE(sa.sa_flags & SA_RESETHAND);
  ::raise(SIGUSR1);
  EXPECT_EQ(g_usr1, 1);
  ASSERT_EQ(::sigaction(SIGUSR1, nullptr, &sa), 0);
  EXPECT_EQ(sa.sa_handler, SIG_DFL);       // reset by the kernel at delivery
  EXPECT_FALSE(sa.sa_flags & SA_SIGINFO);  // the flags it kept are the program's
}

TEST_F(SignalTest, SigsetHoldsAndReleases) {
  EXPECT_EQ(::sigset(SIGUSR1, on_usr1), SIG_DFL);
  EXPECT_EQ(::sigset(SIGUSR1, SIG_HOLD), on_usr1);
  ::raise(SIGUSR1);
  EXPECT_EQ(g_usr1, 0);                             // held
  EXPECT_EQ(::sigset(SIGUSR1, on_usr1), SIG_HOLD);  // released: delivered now
  EXPECT_EQ(g_usr1, 1);
}

TEST_F(SignalTest, FaultSignalsAreNotWrapped) {
  struct sigaction sa {
  }, kernel{};
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  struct sigaction old {};
  ASSERT_EQ(::sigaction(SIGFPE, &sa, &old), 0);
  // The kernel holds the program's own function (struct k_sigaction starts with the handler).
  ASSERT_EQ(::syscall(SYS_rt_sigaction, SIGFPE, nullptr, &kernel, 8), 0);
  EXPECT_EQ(kernel.sa_handler, on_usr1);
  ASSERT_EQ(::sigaction(SIGFPE, &old, nullptr), 0);
}

// --- masks ---------------------------------------------------------------------------------------

TEST_F(SignalTest, PpollMaskLetsABlockedSignalInOnlyWhileParked) {
  handle(SIGUSR1, on_usr1, SA_RESTART);
  sigset_t usr1, none;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigemptyset(&none);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &usr1, nullptr), 0);
  pipe_fds p;
  pollfd fd{p.r, POLLIN, 0};
  // Blocked: a plain poll times out, the signal stays pending.
  std::thread t = send_later(SIGUSR1, 5ms);
  EXPECT_EQ(call([&] { return ::poll(&fd, 1, 40); }), (outcome{0, 0}));
  t.join();
  EXPECT_EQ(g_usr1, 0);
  // ppoll with a mask that unblocks it: delivered at once, EINTR.
  timespec ten{10, 0};
  EXPECT_EQ(call([&] { return ::ppoll(&fd, 1, &ten, &none); }), (outcome{-1, EINTR}));
  EXPECT_EQ(g_usr1, 1);
  // And one that arrives while ppoll is parked.
  std::thread t2 = send_later(SIGUSR1, 20ms);
  auto t0 = steady::now();
  EXPECT_EQ(call([&] { return ::ppoll(&fd, 1, &ten, &none); }), (outcome{-1, EINTR}));
  EXPECT_LT(ms_since(t0), 5000);
  t2.join();
  EXPECT_EQ(g_usr1, 2);
  sigset_t now;
  ASSERT_EQ(::pthread_sigmask(SIG_SETMASK, nullptr, &now), 0);
  EXPECT_TRUE(sigismember(&now, SIGUSR1));  // the thread's mask is back
}

TEST_F(SignalTest, PselectAndEpollPwaitMasksToo) {
  handle(SIGUSR1, on_usr1, SA_RESTART);
  sigset_t usr1, none;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigemptyset(&none);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &usr1, nullptr), 0);
  pipe_fds p;
  std::thread t = send_later(SIGUSR1, 20ms);
  fd_set r;
  FD_ZERO(&r);
  FD_SET(p.r, &r);
  timespec ten{10, 0};
  EXPECT_EQ(call([&] { return ::pselect(p.r + 1, &r, nullptr, nullptr, &ten, &none); }),
            (outcome{-1, EINTR}));
  t.join();
  int ep = static_cast<int>(::syscall(SYS_epoll_create1, EPOLL_CLOEXEC));
  std::thread t2 = send_later(SIGUSR1, 20ms);
  epoll_event ev;
  EXPECT_EQ(call([&] { return ::epoll_pwait(ep, &ev, 1, 10000, &none); }), (outcome{-1, EINTR}));
  t2.join();
  EXPECT_EQ(g_usr1, 2);
  fern::close(ep);
}

TEST_F(SignalTest, AMaskThatBlocksTheSignalKeepsTheCallParked) {
  handle(SIGUSR1, on_usr1, SA_RESTART);
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pipe_fds p;
  pollfd fd{p.r, POLLIN, 0};
  timespec t{0, 40 * 1000 * 1000};
  std::thread th = send_later(SIGUSR1, 5ms);
  // The thread's mask lets SIGUSR1 in, the call's does not: the handler waits for the call.
  auto t0 = steady::now();
  EXPECT_EQ(call([&] { return ::ppoll(&fd, 1, &t, &usr1); }), (outcome{0, 0}));
  th.join();
  fern::sleep(1ms);
  EXPECT_EQ(g_usr1, 1);  // delivered once the call's mask was gone, not during it
  EXPECT_GE(g_usr1_at - t0.time_since_epoch().count(), 35 * 1000 * 1000);
}

// --- waits only a signal can end ----------------------------------------------------------------

TEST_F(SignalTest, PauseAndEmptyPollWaitForASignalInsteadOfDeadlocking) {
  handle(SIGUSR1, on_usr1, SA_RESTART);
  fern::timeout bound(10s);  // a failure ends with ETIMEDOUT, not a hang
  std::thread t = send_later(SIGUSR1, 20ms);
  EXPECT_EQ(call([] { return ::pause(); }), (outcome{-1, EINTR}));
  t.join();
  std::thread t2 = send_later(SIGUSR1, 20ms);
  EXPECT_EQ(call([] { return ::poll(nullptr, 0, -1); }), (outcome{-1, EINTR}));
  t2.join();
  std::thread t3 = send_later(SIGUSR1, 20ms);
  EXPECT_EQ(call([] { return ::select(0, nullptr, nullptr, nullptr, nullptr); }),
            (outcome{-1, EINTR}));
  t3.join();
  EXPECT_EQ(g_usr1, 3);
}

TEST_F(SignalTest, SigsuspendDeliversAPendingSignalAtOnce) {
  handle(SIGUSR1, on_usr1, 0);
  sigset_t usr1, none;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigemptyset(&none);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &usr1, nullptr), 0);
  ::raise(SIGUSR1);  // pending
  EXPECT_EQ(g_usr1, 0);
  fern::timeout bound(10s);  // a failure ends with ETIMEDOUT, not a hang
  EXPECT_EQ(call([&] { return ::sigsuspend(&none); }), (outcome{-1, EINTR}));
  EXPECT_EQ(g_usr1, 1);
  std::thread t = send_later(SIGUSR1, 20ms);
  EXPECT_EQ(call([&] { return ::sigsuspend(&none); }), (outcome{-1, EINTR}));
  t.join();
  EXPECT_EQ(g_usr1, 2);
}

TEST_F(SignalTest, KilledPauseGetsEcanceled) {
  outcome got{0, 0};
  auto f = fern::spawn([&] { got = call([] { return ::pause(); }); });
  fern::sleep(5ms);
  f.kill();
  EXPECT_EQ(got, (outcome{-1, ECANCELED}));
}

}  // namespace
