// The socket BIO of fern's TLS streams (tls_bio.hpp): a source/sink BIO_METHOD whose read and
// write are single non-blocking system calls through fern::sys. OpenSSL's own socket BIO would
// call libc's read/write, which the shim interposes. The method is created once per process and
// lives until exit.
#include "tls_bio.hpp"

#include <errno.h>
#include <sys/socket.h>

#include <new>

#include "sys_net.hpp"

namespace fern::tls::detail {

namespace {

bio_state* state_of(BIO* b) noexcept {
  return static_cast<bio_state*>(BIO_get_data(b));
}

int bio_read(BIO* b, char* buf, int n) {
  BIO_clear_retry_flags(b);
  bio_state* s = state_of(b);
  if (!s || n <= 0) return 0;
  for (;;) {
    ssize_t r = sys::recvfrom(s->fd, buf, static_cast<std::size_t>(n), 0, nullptr, nullptr);
    if (r > 0) return static_cast<int>(r);
    if (r == 0) {
      s->eof = true;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      BIO_set_retry_read(b);
    } else {
      s->last_errno = errno;
    }
    return -1;
  }
}

int bio_write(BIO* b, const char* buf, int n) {
  BIO_clear_retry_flags(b);
  bio_state* s = state_of(b);
  if (!s || n <= 0) return 0;
  for (;;) {
    ssize_t r = sys::sendto(s->fd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL, nullptr, 0);
    if (r >= 0) return static_cast<int>(r);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      BIO_set_retry_write(b);
    } else {
      s->last_errno = errno;
    }
    return -1;
  }
}

long bio_ctrl(BIO* b, int cmd, long /*num*/, void* ptr) {
  bio_state* s = state_of(b);
  switch (cmd) {
    case BIO_CTRL_FLUSH:  // every write went straight to the kernel
      return 1;
    case BIO_CTRL_EOF:
      return s && s->eof ? 1 : 0;
    case BIO_C_GET_FD:  // SSL_get_fd
      if (!s) return -1;
      if (ptr) *static_cast<int*>(ptr) = s->fd;
      return s->fd;
    case BIO_CTRL_GET_CLOSE:
      return BIO_NOCLOSE;
    case BIO_CTRL_SET_CLOSE:
    case BIO_CTRL_DUP:
      return 1;
    default:  // no kTLS, no pending bytes of our own, nothing else to configure
      return 0;
  }
}

int bio_create(BIO* b) {
  BIO_set_data(b, nullptr);
  BIO_set_init(b, 0);
  return 1;
}

int bio_destroy(BIO* b) {
  delete state_of(b);
  BIO_set_data(b, nullptr);
  BIO_set_init(b, 0);
  return 1;
}

BIO_METHOD* make_method() noexcept {
  int type = BIO_get_new_index();
  if (type < 0) return nullptr;
  BIO_METHOD* m = BIO_meth_new(type | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "fern socket");
  if (!m) return nullptr;
  if (!BIO_meth_set_write(m, bio_write) || !BIO_meth_set_read(m, bio_read) ||
      !BIO_meth_set_ctrl(m, bio_ctrl) || !BIO_meth_set_create(m, bio_create) ||
      !BIO_meth_set_destroy(m, bio_destroy)) {
    BIO_meth_free(m);
    return nullptr;
  }
  return m;
}

}  // namespace

BIO* new_socket_bio(int fd) noexcept {
  static BIO_METHOD* const method = make_method();  // thread-safe initialisation (C++11)
  if (!method) return nullptr;
  auto* s = new (std::nothrow) bio_state;
  if (!s) return nullptr;
  BIO* b = BIO_new(method);
  if (!b) {
    delete s;
    return nullptr;
  }
  s->fd = fd;
  BIO_set_data(b, s);
  BIO_set_init(b, 1);
  return b;
}

bio_state* socket_bio_state(BIO* b) noexcept {
  return state_of(b);
}

}  // namespace fern::tls::detail
