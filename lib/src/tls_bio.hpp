// The transport under fern's TLS streams: an OpenSSL BIO on a non-blocking socket fd that moves
// bytes with fern::sys's direct system calls (recvfrom/sendto), never libc's read/write/recv/
// send, so libfern does not recurse into libfern_interpose when both are loaded. It never waits:
// EAGAIN becomes OpenSSL's retry flags and the stream parks the fiber. Hub thread only.
#pragma once

#include <openssl/bio.h>

namespace fern::tls::detail {

// Per-BIO state, owned by the BIO (freed with it). The stream reads it after a failed call.
struct bio_state {
  int fd = -1;         // not owned: the stream's socket closes it
  int last_errno = 0;  // errno of the last failed system call other than EAGAIN/EINTR
  bool eof = false;    // a read saw end of stream (BIO_eof, which OpenSSL 3 checks to report
                       // SSL_R_UNEXPECTED_EOF_WHILE_READING)
};

// A new BIO on fd (BIO_free releases it, leaving fd open), or null if OpenSSL is out of memory.
// Sends use MSG_NOSIGNAL: a closed peer is EPIPE, never SIGPIPE.
BIO* new_socket_bio(int fd) noexcept;
// The state of a BIO made by new_socket_bio.
bio_state* socket_bio_state(BIO* b) noexcept;

}  // namespace fern::tls::detail
