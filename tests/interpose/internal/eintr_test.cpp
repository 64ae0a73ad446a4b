// The EINTR mechanism the io hooks build on (signals.hpp): an eintr_scope of kind unless_restart
// around a wait ends it with EINTR only for a handler without SA_RESTART, as the kernel restarts
// read/recv/accept/connect otherwise. The shim exports only libc names, so this test links the
// shim's objects into the executable (which then interposes libc for libfern as the preloaded
// library does) to reach eintr_scope.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "fern/fern.hpp"
#include "fern/io.hpp"
#include "signals.hpp"

// siginterrupt is deprecated, and still in use: the shim covers it.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

using namespace std::chrono_literals;

namespace {

std::atomic<int> g_usr1{0};
std::atomic<int> g_usr2{0};

void on_usr1(int) {
  g_usr1.fetch_add(1);
}
void on_usr2(int) {
  g_usr2.fetch_add(1);
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

class SignalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_usr1 = 0;
    g_usr2 = 0;
    ::sigaction(SIGUSR1, nullptr, &old1_);
    ::sigaction(SIGUSR2, nullptr, &old2_);
  }
  void TearDown() override {
    ::sigaction(SIGUSR1, &old1_, nullptr);
    ::sigaction(SIGUSR2, &old2_, nullptr);
  }
  static void handle(int sig, void (*fn)(int), int flags) {
    struct sigaction sa {};
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(::sigaction(sig, &sa, nullptr), 0);
  }

 private:
  struct sigaction old1_ {
  }, old2_{};
};

TEST_F(SignalTest, TheHooksAreThisExecutablesOwn) {
  // Sanity: sigaction is the shim's (the program's handler is behind a trampoline).
  handle(SIGUSR1, on_usr1, 0);
  struct sigaction kernel {};
  ASSERT_EQ(::syscall(SYS_rt_sigaction, SIGUSR1, nullptr, &kernel, 8), 0);
  EXPECT_NE(kernel.sa_handler, on_usr1);
  ::raise(SIGUSR1);
  EXPECT_EQ(g_usr1, 1);
}

// --- restartable waits (the mechanism read/recv/accept/connect use) ------------------------------

// What the io hooks do for a blocking read with no SO_RCVTIMEO.
int restartable_wait(int fd) {
  bool expired = false;
  return fern::shim::wait_fd_eintr(fern::detail::hub_impl::current(), fd,
                                   fern::detail::io_dir::read, fern::detail::no_deadline, &expired);
}

TEST_F(SignalTest, RestartableWaitGoesOnWhenTheHandlerHasSaRestart) {
  handle(SIGUSR1, on_usr1, SA_RESTART);
  pipe_fds p;
  std::vector<std::string> log;
  auto waiter = fern::spawn([&] {
    int r = restartable_wait(p.r);
    log.push_back("woke " + std::to_string(r));
  });
  fern::sleep(5ms);
  ::raise(SIGUSR1);
  log.push_back("signalled");
  fern::sleep(10ms);
  log.push_back("write");
  ASSERT_EQ(::syscall(SYS_write, p.w, "x", 1), 1);
  waiter.join();
  EXPECT_EQ(g_usr1, 1);
  EXPECT_EQ(log, (std::vector<std::string>{"signalled", "write", "woke 0"}));
}

TEST_F(SignalTest, RestartableWaitEndsWithEintrWithoutSaRestart) {
  handle(SIGUSR1, on_usr1, 0);
  pipe_fds p;
  int r = -1;
  auto waiter = fern::spawn([&] { r = restartable_wait(p.r); });
  fern::sleep(5ms);
  ::raise(SIGUSR1);
  waiter.join();
  EXPECT_EQ(r, EINTR);
}

TEST_F(SignalTest, WaitWithASocketTimeoutEndsWithEintrEvenWithSaRestart) {
  handle(SIGUSR1, on_usr1, SA_RESTART);
  pipe_fds p;
  int r = -1;
  auto waiter = fern::spawn([&] {
    bool expired = false;
    r = fern::shim::wait_fd_eintr(fern::detail::hub_impl::current(), p.r,
                                  fern::detail::io_dir::read,
                                  fern::detail::deadline_after(std::chrono::seconds(10)), &expired);
  });
  fern::sleep(5ms);
  ::raise(SIGUSR1);
  waiter.join();
  EXPECT_EQ(r, EINTR);
}

TEST_F(SignalTest, OneNonRestartingSignalAmongRestartingOnesInterrupts) {
  handle(SIGUSR1, on_usr1, SA_RESTART);
  handle(SIGUSR2, on_usr2, 0);
  pipe_fds p;
  int r = -1;
  auto waiter = fern::spawn([&] { r = restartable_wait(p.r); });
  fern::sleep(5ms);
  ::raise(SIGUSR1);
  fern::sleep(5ms);
  EXPECT_FALSE(waiter.ready());
  ::raise(SIGUSR2);
  waiter.join();
  EXPECT_EQ(r, EINTR);
}

TEST_F(SignalTest, SiginterruptTurnsRestartOffForSignalToo) {
  ASSERT_NE(::signal(SIGUSR1, on_usr1), SIG_ERR);
  struct sigaction sa {};
  ASSERT_EQ(::sigaction(SIGUSR1, nullptr, &sa), 0);
  EXPECT_TRUE(sa.sa_flags & SA_RESTART);  // glibc's signal() is BSD's
  ASSERT_EQ(::siginterrupt(SIGUSR1, 1), 0);
  ASSERT_EQ(::sigaction(SIGUSR1, nullptr, &sa), 0);
  EXPECT_FALSE(sa.sa_flags & SA_RESTART);
  EXPECT_EQ(sa.sa_handler, on_usr1);
  // Remembered for later signal() calls, as glibc does.
  ASSERT_NE(::signal(SIGUSR1, on_usr1), SIG_ERR);
  ASSERT_EQ(::sigaction(SIGUSR1, nullptr, &sa), 0);
  EXPECT_FALSE(sa.sa_flags & SA_RESTART);
  pipe_fds p;
  int r = -1;
  auto waiter = fern::spawn([&] { r = restartable_wait(p.r); });
  fern::sleep(5ms);
  ::raise(SIGUSR1);
  waiter.join();
  EXPECT_EQ(r, EINTR);
  ASSERT_EQ(::siginterrupt(SIGUSR1, 0), 0);
  ASSERT_EQ(::sigaction(SIGUSR1, nullptr, &sa), 0);
  EXPECT_TRUE(sa.sa_flags & SA_RESTART);
}

}  // namespace
