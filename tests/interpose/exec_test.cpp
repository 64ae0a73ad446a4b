// The exec family under the shim (exec.cpp): a program exec'd from a shim process must receive
// the blocking descriptions it expects, although the shim keeps the ones it creates non-blocking
// underneath; close-on-exec fds, the program's own O_NONBLOCK and listening sockets are left
// alone. Children are /bin/sh and /bin/cat; every wait is bounded.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "fern/fern.hpp"
#include "shim_test_util.hpp"

using namespace std::chrono_literals;
using namespace shim_test;

extern char** environ;

namespace {

// Waits (bounded, cooperatively) for pid and returns its exit status, or -1.
int reap(pid_t pid) {
  for (int i = 0; i < 1000; ++i) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    fern::sleep(5ms);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return -1;
}

// Reads everything from fd until end of file (bounded).
std::string slurp(int fd) {
  std::string out;
  char buf[256];
  for (int i = 0; i < 1000; ++i) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

TEST(ShimExecTest, ForkedCatGetsABlockingStdinFromAShimPipe) {
  int in[2], out[2];
  ASSERT_EQ(::pipe(in), 0);
  ASSERT_EQ(::pipe(out), 0);
  ASSERT_TRUE(real_nonblock(in[0]));
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
    ::execl("/bin/cat", "cat", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  fern::sleep(50ms);  // cat is reading by now: a non-blocking stdin would have failed it
  ASSERT_EQ(::write(in[1], "hello", 5), 5);
  ::close(in[1]);
  EXPECT_EQ(slurp(out[0]), "hello");
  EXPECT_EQ(reap(pid), 0);
  ::close(out[0]);
}

TEST(ShimExecTest, PosixSpawnDup2HandsOverACloexecShimPipe) {
  int in[2], out[2];
  ASSERT_EQ(::pipe2(in, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  posix_spawn_file_actions_t fa;
  ::posix_spawn_file_actions_init(&fa);
  ASSERT_EQ(::posix_spawn_file_actions_adddup2(&fa, in[0], 0), 0);
  ASSERT_EQ(::posix_spawn_file_actions_adddup2(&fa, out[1], 1), 0);
  EXPECT_FALSE(real_nonblock(in[0]));  // handed over: blocking from here on
  pid_t pid = -1;
  char* argv[] = {const_cast<char*>("cat"), nullptr};
  ASSERT_EQ(::posix_spawn(&pid, "/bin/cat", &fa, nullptr, argv, environ), 0);
  ::posix_spawn_file_actions_destroy(&fa);
  ::close(in[0]);
  ::close(out[1]);
  fern::sleep(50ms);
  ASSERT_EQ(::write(in[1], "spawned", 7), 7);
  ::close(in[1]);
  EXPECT_EQ(slurp(out[0]), "spawned");
  EXPECT_EQ(reap(pid), 0);
  ::close(out[0]);
}

// Each exec function hands the inherited pipe over: after the child exec'd, the description it
// shares with the parent is blocking, and the parent still sees (F_GETFL) and gets what it expects.
class ShimExecVariantTest : public ::testing::TestWithParam<int> {};

TEST_P(ShimExecVariantTest, EveryExecFunctionHandsOverInheritedShimFds) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ASSERT_TRUE(real_nonblock(p[0]));
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char sh[] = "sh", c[] = "-c", cmd[] = "exit 3";
    char* argv[] = {sh, c, cmd, nullptr};
    switch (GetParam()) {
      case 0:
        ::execl("/bin/sh", "sh", "-c", "exit 3", static_cast<char*>(nullptr));
        break;
      case 1:
        ::execlp("sh", "sh", "-c", "exit 3", static_cast<char*>(nullptr));
        break;
      case 2:
        ::execle("/bin/sh", "sh", "-c", "exit 3", static_cast<char*>(nullptr), environ);
        break;
      case 3:
        ::execv("/bin/sh", argv);
        break;
      case 4:
        ::execvp("sh", argv);
        break;
      case 5:
        ::execvpe("sh", argv, environ);
        break;
      case 6:
        ::execve("/bin/sh", argv, environ);
        break;
    }
    ::_exit(127);
  }
  EXPECT_EQ(reap(pid), 3);
  EXPECT_FALSE(real_nonblock(p[0]));
  EXPECT_FALSE(real_nonblock(p[1]));
  EXPECT_FALSE(::fcntl(p[0], F_GETFL) & O_NONBLOCK);
  // The parent's view said shim-owned; its blocking read still parks only its fiber.
  auto writer = fern::spawn([&] { ::write(p[1], "v", 1); });
  char ch;
  EXPECT_EQ(::read(p[0], &ch, 1), 1);
  writer.join();
  ::close(p[0]);
  ::close(p[1]);
}

INSTANTIATE_TEST_SUITE_P(AllVariants, ShimExecVariantTest, ::testing::Range(0, 7));

TEST(ShimExecTest, CloexecUserNonblockAndListeningFdsAreLeftAlone) {
  int cloexec[2], user_nb[2];
  ASSERT_EQ(::pipe2(cloexec, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(user_nb, O_NONBLOCK), 0);
  listener l;
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl("/bin/true", "true", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  EXPECT_EQ(reap(pid), 0);
  EXPECT_TRUE(real_nonblock(cloexec[0]));
  EXPECT_TRUE(real_nonblock(user_nb[0]));
  EXPECT_TRUE(::fcntl(user_nb[0], F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(real_nonblock(l.fd));  // the parent's accept keeps cooperating
  for (int fd : {cloexec[0], cloexec[1], user_nb[0], user_nb[1]}) ::close(fd);
}

TEST(ShimExecTest, FailedExecReportsTheKernelsErrno) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    errno = 0;
    int r = ::execl("/nonexistent/program", "x", static_cast<char*>(nullptr));
    ::_exit(r == -1 && errno == ENOENT ? 42 : 1);
  }
  EXPECT_EQ(reap(pid), 42);
}

}  // namespace
