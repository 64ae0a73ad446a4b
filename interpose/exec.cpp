// exec family: execve, execv, execvp, execvpe, execl, execle, execlp, fexecve, execveat,
// posix_spawn, posix_spawnp, posix_spawn_file_actions_adddup2. A new program knows nothing of
// the shim, so every shim-owned description it inherits and that this program sees as blocking
// is made blocking underneath first (a shell's `echo hi | cat` would otherwise give cat a
// non-blocking stdin and EAGAIN). Such a description may be shared with the parent of a forked
// child: in this process it stops being shim-owned, and the parent, whose view still says owned,
// keeps cooperating because its reads and writes use per-call MSG_DONTWAIT / RWF_NOWAIT.
// Listening sockets stay non-blocking: a listener leaked into a child (the common case) is still
// the parent's, and its blocking accept must not block the parent's hub. Runs between fork and
// exec: raw system calls and atomics only, no allocation.
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "coop.hpp"

FERN_REAL_DEF(execve)
FERN_REAL_DEF(execv)
FERN_REAL_DEF(execvp)
FERN_REAL_DEF(execvpe)
FERN_REAL_DEF(fexecve)
FERN_REAL_DEF(execveat)
FERN_REAL_DEF(posix_spawn)
FERN_REAL_DEF(posix_spawnp)
FERN_REAL_DEF(posix_spawn_file_actions_adddup2)

namespace fern::shim {
namespace {

// Makes fd's description blocking if it is shim-owned, the program sees it as blocking and it is
// not a listening socket; `cloexec_too` also takes fds the new program will not inherit.
void hand_over(int fd, bool cloexec_too) noexcept {
  fd_view v = view_peek(fd);
  if (!v.owned_blocking()) return;
  long fdfl = ::syscall(SYS_fcntl, fd, F_GETFD);
  if (fdfl < 0 || (!cloexec_too && (fdfl & FD_CLOEXEC))) return;
  if (v.socket()) {
    int listening = 0;
    socklen_t len = sizeof listening;
    if (::syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 &&
        listening)
      return;
  }
  long fl = ::syscall(SYS_fcntl, fd, F_GETFL);
  if (fl >= 0 && (fl & O_NONBLOCK)) ::syscall(SYS_fcntl, fd, F_SETFL, fl & ~O_NONBLOCK);
  view_disown(fd);
}

// Before the exec: every inherited shim-owned fd. Preserves errno.
void prepare_exec() noexcept {
  const int saved = errno;
  int hw = view_high_water();
  for (int fd = 0; fd <= hw; ++fd) hand_over(fd, false);
  errno = saved;
}

// Counts execl's NULL-terminated arguments after `first`.
int count_args(const char* first, va_list ap) noexcept {
  int n = first ? 1 : 0;
  if (first) {
    while (va_arg(ap, const char*)) ++n;
  }
  return n;
}

}  // namespace
}  // namespace fern::shim

using namespace fern::shim;

extern "C" int execve(const char* path, char* const argv[], char* const envp[]) {
  prepare_exec();
  return REAL(execve)(path, argv, envp);
}

extern "C" int execv(const char* path, char* const argv[]) {
  prepare_exec();
  return REAL(execv)(path, argv);
}

extern "C" int execvp(const char* file, char* const argv[]) {
  prepare_exec();
  return REAL(execvp)(file, argv);
}

extern "C" int execvpe(const char* file, char* const argv[], char* const envp[]) {
  prepare_exec();
  return REAL(execvpe)(file, argv, envp);
}

extern "C" int fexecve(int fd, char* const argv[], char* const envp[]) {
  prepare_exec();
  return REAL(fexecve)(fd, argv, envp);
}

extern "C" int execveat(int dirfd, const char* path, char* const argv[], char* const envp[],
                        int flags) {
  prepare_exec();
  return REAL(execveat)(dirfd, path, argv, envp, flags);
}

// execl, execle and execlp build their argv on the stack (no malloc between fork and exec), as
// glibc's own do, and exec through the v-forms' real versions.
#define FERN_COLLECT_ARGS(first, argv_name, after_null)                 \
  va_list ap;                                                           \
  va_start(ap, first);                                                  \
  int argc_ = count_args(first, ap);                                    \
  va_end(ap);                                                           \
  char* argv_name[argc_ + 1];                                           \
  va_start(ap, first);                                                  \
  argv_name[0] = const_cast<char*>(first);                              \
  for (int i_ = 1; i_ < argc_; ++i_) argv_name[i_] = va_arg(ap, char*); \
  argv_name[argc_] = nullptr;                                           \
  if (argc_ > 0) (void)va_arg(ap, char*); /* the terminating NULL */    \
  after_null;                                                           \
  va_end(ap)

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wvla"
extern "C" int execl(const char* path, const char* arg, ...) {
  FERN_COLLECT_ARGS(arg, argv, (void)0);
  prepare_exec();
  return REAL(execv)(path, argv);
}

extern "C" int execlp(const char* file, const char* arg, ...) {
  FERN_COLLECT_ARGS(arg, argv, (void)0);
  prepare_exec();
  return REAL(execvp)(file, argv);
}

extern "C" int execle(const char* path, const char* arg, ...) {
  char* const* envp = nullptr;
  FERN_COLLECT_ARGS(arg, argv, envp = va_arg(ap, char* const*));
  prepare_exec();
  return REAL(execve)(path, argv, envp);
}
#pragma GCC diagnostic pop
#undef FERN_COLLECT_ARGS

// posix_spawn execs the child without returning to this process's code in between (and shares
// the descriptions with it): the hand-over happens here, in the parent.
extern "C" int posix_spawn(pid_t* pid, const char* path, const posix_spawn_file_actions_t* fa,
                           const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
  prepare_exec();
  return REAL(posix_spawn)(pid, path, fa, attr, argv, envp);
}

extern "C" int posix_spawnp(pid_t* pid, const char* file, const posix_spawn_file_actions_t* fa,
                            const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
  prepare_exec();
  return REAL(posix_spawnp)(pid, file, fa, attr, argv, envp);
}

// A dup2 file action hands `fd` to a spawned child even when fd is close-on-exec here (the usual
// pipe set-up of Rust's and others' process libraries): hand it over now.
extern "C" int posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t* fa, int fd, int newfd) {
  int r = REAL(posix_spawn_file_actions_adddup2)(fa, fd, newfd);
  if (r == 0) hand_over(fd, true);
  return r;
}
