// The exception types of fern's public C++ API (DESIGN.md §6). I/O errors are std::system_error
// carrying the real errno; everything fern adds is one of the types below.
#pragma once

#include <cstddef>
#include <stdexcept>

namespace fern {

class timeout;

// Thrown at a blocking point once an enclosing fern::timeout scope has expired. source() names
// the scope that fired, so nested scopes can tell whose deadline it was:
//   catch (const fern::timeout_error& e) { if (!e.is(my_scope)) throw; }
class timeout_error : public std::runtime_error {
 public:
  explicit timeout_error(const timeout* source = nullptr)
      : std::runtime_error("fern: timeout expired"), source_(source) {}
  const timeout* source() const noexcept { return source_; }
  bool is(const timeout& t) const noexcept { return source_ == &t; }

 private:
  const timeout* source_;
};

// What a killed fiber sees at its blocking point. Deliberately not derived from std::exception,
// like gevent's GreenletExit (a BaseException): `catch (const std::exception&)` handlers in user
// code do not swallow a kill. A fiber ended by it is not reported on stderr.
class fiber_exit {
 public:
  const char* what() const noexcept { return "fern: fiber killed"; }
};

// Thrown when the root fiber (the thread's own stack) waits and nothing can ever wake it: no
// ready fibers, no timers, no watched fds, no cross-thread handles.
class loop_exit : public std::runtime_error {
 public:
  loop_exit() : std::runtime_error("fern: this operation would block forever") {}
};

// Thrown when a second fiber waits in the same direction on the same fd through the C++ API.
class concurrent_use_error : public std::logic_error {
 public:
  explicit concurrent_use_error(const char* what) : std::logic_error(what) {}
};

// Thrown by socket::read_exactly when the stream ends before the requested bytes arrived (Go's
// io.ErrUnexpectedEOF, asyncio's IncompleteReadError). received() bytes were read. Not a
// std::system_error: no system call failed.
class eof_error : public std::runtime_error {
 public:
  explicit eof_error(std::size_t received)
      : std::runtime_error("fern: unexpected end of stream"), received_(received) {}
  std::size_t received() const noexcept { return received_; }

 private:
  std::size_t received_;
};

// Thrown by put/get on a queue or channel after close() (get: once it is drained).
class closed_error : public std::runtime_error {
 public:
  closed_error() : std::runtime_error("fern: closed") {}
};

}  // namespace fern
