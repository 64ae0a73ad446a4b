// POSIX conformance of the fd family under the shim (pipe, pipe2, close, close_range, fclose,
// dup, dup2, dup3, fcntl, ioctl): duplicates share the program's view as they share the kernel's
// open file description, closing an fd wakes the fibers parked on it with EBADF, and fcntl/ioctl
// forward their variadic argument for every command.
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fern/fern.hpp"
#include "shim_test_util.hpp"

using namespace std::chrono_literals;
using namespace shim_test;

namespace {

// A fiber parked in read(fd); `err` gets its errno once it returns.
struct parked_reader {
  ssize_t n = -2;
  int err = 0;
  fern::fiber<void> f;
  explicit parked_reader(int fd) {
    f = fern::spawn([this, fd] {
      char c;
      n = ::read(fd, &c, 1);
      err = errno;
    });
    fern::sleep(3ms);
  }
};

// --- pipe, pipe2 ------------------------------------------------------------------------------

TEST(ShimFdTest, PipeSucceedsPreservingErrnoAndIsShimOwned) {
  int p[2];
  errno = EDOM;
  ASSERT_EQ(::pipe(p), 0);
  EXPECT_EQ(errno, EDOM);
  EXPECT_TRUE(real_nonblock(p[0]));
  EXPECT_FALSE(::fcntl(p[0], F_GETFL) & O_NONBLOCK);
  EXPECT_FALSE(::fcntl(p[0], F_GETFD) & FD_CLOEXEC);
  errno = EDOM;
  EXPECT_EQ(::close(p[0]), 0);
  EXPECT_EQ(::close(p[1]), 0);
  EXPECT_EQ(errno, EDOM);
}

TEST(ShimFdTest, Pipe2HonoursItsFlags) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  EXPECT_TRUE(::fcntl(p[0], F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(::fcntl(p[1], F_GETFL) & O_NONBLOCK);
  EXPECT_EQ(::fcntl(p[0], F_GETFL), static_cast<int>(real_flags(p[0])));
  ::close(p[0]);
  ::close(p[1]);
  EXPECT_EQ(errno_of([&] { return ::pipe2(p, 0x7fffffff); }),
            errno_of([&] { return ::syscall(SYS_pipe2, p, 0x7fffffff); }));
}

// --- close -------------------------------------------------------------------------------------

TEST(ShimFdTest, CloseOfABadFdFailsLikeTheRawSyscall) {
  for (int fd : {-1, 9999}) {
    EXPECT_EQ(errno_of([&] { return ::close(fd); }),
              errno_of([&] { return ::syscall(SYS_close, fd); }));
  }
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  EXPECT_EQ(::close(p[0]), 0);
  EXPECT_EQ(errno_of([&] { return ::close(p[0]); }), EBADF);  // twice
  ::close(p[1]);
}

TEST(ShimFdTest, CloseWakesEveryFiberParkedOnTheFdWithEbadf) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  parked_reader a(p[0]), b(p[0]);
  event_log log;
  ::close(p[0]);
  log("closed");
  fern::joinall({a.f, b.f});
  EXPECT_EQ(a.err, EBADF);
  EXPECT_EQ(b.err, EBADF);
  EXPECT_EQ(a.n, -1);
  // The number may be reused at once: a new pipe on it works normally.
  int q[2];
  ASSERT_EQ(::pipe(q), 0);
  auto writer = fern::spawn([&] { ::write(q[1], "n", 1); });
  char c;
  EXPECT_EQ(::read(q[0], &c, 1), 1);
  writer.join();
  for (int fd : {p[1], q[0], q[1]}) ::close(fd);
}

TEST(ShimFdTest, CloseRangeWakesParkedFibers) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  parked_reader r(p[0]);
  int lo = std::min(p[0], p[1]), hi = std::max(p[0], p[1]);
  EXPECT_EQ(::close_range(static_cast<unsigned>(lo), static_cast<unsigned>(hi), 0), 0);
  r.f.join();
  EXPECT_EQ(r.err, EBADF);
  EXPECT_EQ(errno_of([&] { return ::close(p[1]); }), EBADF);
}

TEST(ShimFdTest, FcloseWakesFibersParkedOnItsFd) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  FILE* f = ::fdopen(sv[0], "r");
  ASSERT_NE(f, nullptr);
  parked_reader r(sv[0]);
  errno = EDOM;
  EXPECT_EQ(::fclose(f), 0);
  EXPECT_EQ(errno, EDOM);
  r.f.join();
  EXPECT_EQ(r.err, EBADF);
  ::close(sv[1]);
}

// --- dup, dup2, dup3, F_DUPFD
// ------------------------------------------------------------------------

TEST(ShimFdTest, DupSharesTheViewLikeTheKernelSharesTheDescription) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  errno = EDOM;
  int d = ::dup(p[0]);
  ASSERT_GE(d, 0);
  EXPECT_EQ(errno, EDOM);
  EXPECT_FALSE(::fcntl(d, F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(real_nonblock(d));
  // O_NONBLOCK belongs to the description: set through one fd, it shows through the other.
  ASSERT_EQ(::fcntl(d, F_SETFL, O_NONBLOCK), 0);
  EXPECT_TRUE(::fcntl(p[0], F_GETFL) & O_NONBLOCK);
  char c;
  EXPECT_EQ(errno_of([&] { return ::read(p[0], &c, 1); }), EAGAIN);
  ASSERT_EQ(::fcntl(p[0], F_SETFL, 0), 0);
  EXPECT_FALSE(::fcntl(d, F_GETFL) & O_NONBLOCK);
  // Closing the original leaves the duplicate working, cooperatively.
  ::close(p[0]);
  auto writer = fern::spawn([&] { ::write(p[1], "d", 1); });
  EXPECT_EQ(::read(d, &c, 1), 1);
  writer.join();
  ::close(d);
  ::close(p[1]);
}

TEST(ShimFdTest, Dup2OverAnFdAFiberWaitsOnWakesItWithEbadf) {
  int p[2], q[2];
  ASSERT_EQ(::pipe(p), 0);
  ASSERT_EQ(::pipe(q), 0);
  parked_reader r(p[0]);
  errno = EDOM;
  EXPECT_EQ(::dup2(q[0], p[0]), p[0]);
  EXPECT_EQ(errno, EDOM);
  r.f.join();
  EXPECT_EQ(r.err, EBADF);
  // p[0] is now q's read end, with q's view.
  auto writer = fern::spawn([&] { ::write(q[1], "2", 1); });
  char c;
  EXPECT_EQ(::read(p[0], &c, 1), 1);
  EXPECT_EQ(c, '2');
  writer.join();
  for (int fd : {p[0], p[1], q[0], q[1]}) ::close(fd);
}

TEST(ShimFdTest, Dup2FromABadFdLeavesTheTargetAndItsWaitersAlone) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  parked_reader r(p[0]);
  EXPECT_EQ(errno_of([&] { return ::dup2(9999, p[0]); }),
            errno_of([&] { return ::syscall(SYS_dup2, 9999, p[0]); }));
  EXPECT_FALSE(r.f.ready());
  ::write(p[1], "x", 1);
  r.f.join();
  EXPECT_EQ(r.n, 1);
  ::close(p[0]);
  ::close(p[1]);
}

TEST(ShimFdTest, Dup2OntoItselfAndDup3FlagsBehaveLikeTheKernel) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  EXPECT_EQ(::dup2(p[0], p[0]), p[0]);
  EXPECT_EQ(errno_of([&] { return ::dup3(p[0], p[0], 0); }),
            errno_of([&] { return ::syscall(SYS_dup3, p[0], p[0], 0); }));
  int target = p[1] + 10;
  EXPECT_EQ(::dup3(p[0], target, O_CLOEXEC), target);
  EXPECT_TRUE(::fcntl(target, F_GETFD) & FD_CLOEXEC);
  EXPECT_FALSE(::fcntl(target, F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(real_nonblock(target));
  EXPECT_EQ(errno_of([&] { return ::dup3(p[0], target, 12345); }),
            errno_of([&] { return ::syscall(SYS_dup3, p[0], target, 12345); }));
  for (int fd : {p[0], p[1], target}) ::close(fd);
}

TEST(ShimFdTest, FDupfdCopiesTheView) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 100);
  ASSERT_GE(d, 100);
  EXPECT_TRUE(::fcntl(d, F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(d, F_GETFD) & FD_CLOEXEC);
  int e = ::fcntl(fd, F_DUPFD, 0);
  EXPECT_FALSE(::fcntl(e, F_GETFD) & FD_CLOEXEC);
  for (int x : {fd, d, e}) ::close(x);
}

TEST(ShimFdTest, DupOfABadFdFailsLikeTheRawSyscall) {
  EXPECT_EQ(errno_of([&] { return ::dup(-1); }), errno_of([&] { return ::syscall(SYS_dup, -1); }));
  EXPECT_EQ(errno_of([&] { return ::dup2(-1, 5); }),
            errno_of([&] { return ::syscall(SYS_dup2, -1, 5); }));
  EXPECT_EQ(errno_of([&] { return ::fcntl(-1, F_DUPFD, 0); }),
            errno_of([&] { return ::syscall(SYS_fcntl, -1, F_DUPFD, 0); }));
}

// --- fcntl
// ---------------------------------------------------------------------------------------------

TEST(ShimFdTest, FcntlPassesEveryOtherCommandThrough) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  errno = EDOM;
  EXPECT_EQ(::fcntl(p[0], F_SETFD, FD_CLOEXEC), 0);
  EXPECT_EQ(::fcntl(p[0], F_GETFD), FD_CLOEXEC);
  EXPECT_EQ(errno, EDOM);
  int size = ::fcntl(p[0], F_GETPIPE_SZ);
  EXPECT_EQ(size, static_cast<int>(::syscall(SYS_fcntl, p[0], F_GETPIPE_SZ)));
  EXPECT_EQ(::fcntl(p[0], F_SETPIPE_SZ, 2 * size), 2 * size);
  // A pointer argument (F_GETOWN_EX) travels intact.
  f_owner_ex owner{};
  EXPECT_EQ(::fcntl(p[0], F_GETOWN_EX, &owner), 0);
  EXPECT_EQ(::fcntl64(p[0], F_GETFD), FD_CLOEXEC);
  // Flags other than O_NONBLOCK go to the kernel as given.
  ASSERT_EQ(::fcntl(p[1], F_SETFL, O_APPEND), 0);
  EXPECT_TRUE(real_flags(p[1]) & O_APPEND);
  EXPECT_TRUE(real_nonblock(p[1]));
  EXPECT_EQ(::fcntl(p[1], F_GETFL) & (O_APPEND | O_NONBLOCK), O_APPEND);
  for (int fd : {-1, 9999}) {
    EXPECT_EQ(errno_of([&] { return ::fcntl(fd, F_GETFL); }),
              errno_of([&] { return ::syscall(SYS_fcntl, fd, F_GETFL); }));
    EXPECT_EQ(errno_of([&] { return ::fcntl(fd, F_SETFL, O_NONBLOCK); }),
              errno_of([&] { return ::syscall(SYS_fcntl, fd, F_SETFL, O_NONBLOCK); }));
  }
  EXPECT_EQ(errno_of([&] { return ::fcntl(p[0], 12345); }),
            errno_of([&] { return ::syscall(SYS_fcntl, p[0], 12345); }));
  ::close(p[0]);
  ::close(p[1]);
}

TEST(ShimFdTest, FcntlOnAnInheritedPipeShowsAndChangesTheKernelsFlag) {
  int p[2];
  raw_pipe(p);
  EXPECT_EQ(::fcntl(p[0], F_GETFL), static_cast<int>(real_flags(p[0])));
  ASSERT_EQ(::fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
  EXPECT_TRUE(real_nonblock(p[0]));  // the program's own request reaches the kernel
  char c;
  EXPECT_EQ(errno_of([&] { return ::read(p[0], &c, 1); }), EAGAIN);
  ASSERT_EQ(::fcntl(p[0], F_SETFL, 0), 0);
  EXPECT_FALSE(real_nonblock(p[0]));
  ::close(p[0]);
  ::close(p[1]);
}

// --- ioctl
// ---------------------------------------------------------------------------------------------

TEST(ShimFdTest, IoctlForwardsItsArgumentAndTracksFionbio) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ::write(p[1], "abc", 3);
  int avail = -1;
  errno = EDOM;
  EXPECT_EQ(::ioctl(p[0], FIONREAD, &avail), 0);
  EXPECT_EQ(avail, 3);
  EXPECT_EQ(errno, EDOM);
  int one = 1, zero = 0;
  EXPECT_EQ(::ioctl(p[1], FIONBIO, &one), 0);
  EXPECT_TRUE(::fcntl(p[1], F_GETFL) & O_NONBLOCK);
  EXPECT_EQ(::ioctl(p[1], FIONBIO, &zero), 0);
  EXPECT_FALSE(::fcntl(p[1], F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(real_nonblock(p[1]));
  for (int fd : {-1, 9999}) {
    EXPECT_EQ(errno_of([&] { return ::ioctl(fd, FIONBIO, &one); }),
              errno_of([&] { return ::syscall(SYS_ioctl, fd, FIONBIO, &one); }));
    EXPECT_EQ(errno_of([&] { return ::ioctl(fd, FIONREAD, &avail); }),
              errno_of([&] { return ::syscall(SYS_ioctl, fd, FIONREAD, &avail); }));
  }
  EXPECT_EQ(errno_of([&] { return ::ioctl(p[0], 0x12345678, &avail); }),
            errno_of([&] { return ::syscall(SYS_ioctl, p[0], 0x12345678, &avail); }));
  ::close(p[0]);
  ::close(p[1]);
}

TEST(ShimFdTest, FionbioOnAnInheritedPipeReachesTheKernel) {
  int p[2];
  raw_pipe(p);
  int one = 1, zero = 0;
  ASSERT_EQ(::ioctl(p[0], FIONBIO, &one), 0);
  EXPECT_TRUE(real_nonblock(p[0]));
  EXPECT_TRUE(::fcntl(p[0], F_GETFL) & O_NONBLOCK);
  ASSERT_EQ(::ioctl(p[0], FIONBIO, &zero), 0);
  EXPECT_FALSE(real_nonblock(p[0]));
  ::close(p[0]);
  ::close(p[1]);
}

// --- threads
// -------------------------------------------------------------------------------------------

TEST(ShimFdTest, ViewsAreProcessWide) {
  int p[2] = {-1, -1};
  std::thread t([&] { ASSERT_EQ(::pipe2(p, O_NONBLOCK), 0); });
  t.join();
  // Created off a hub: not shim-owned, and the program's O_NONBLOCK is what the kernel has.
  EXPECT_TRUE(::fcntl(p[0], F_GETFL) & O_NONBLOCK);
  char c;
  EXPECT_EQ(errno_of([&] { return ::read(p[0], &c, 1); }), EAGAIN);
  ::close(p[0]);
  ::close(p[1]);
}

}  // namespace
