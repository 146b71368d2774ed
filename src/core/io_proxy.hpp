// Copying bytes between fds that may be non-blocking, and SIGPIPE turned into EPIPE while the
// runtime writes to pipes it does not control (a hook's stdin, the user's stdout).
#pragma once

#include <signal.h>

#include <string_view>

#include "core/error.hpp"

namespace forker {

// Writes all of data to fd. Retries EINTR; when fd is non-blocking and full, waits for POLLOUT
// instead of failing with EAGAIN. what names the stream in errors ("terminal output").
Status write_all(int fd, std::string_view data, std::string_view what);

// Blocks SIGPIPE in the calling thread, so a write to a pipe or socket whose reader is gone fails
// with EPIPE instead of killing the runtime (which would leave a tty raw or a hook unreaped).
// The destructor discards a SIGPIPE raised meanwhile, unless one was pending before, and
// restores the mask. The signal of a pipe write goes to the writing thread, so a per-thread
// mask is enough. Children forked meanwhile inherit the mask: reset it before exec.
class [[nodiscard]] ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock();
  ~ScopedSigpipeBlock();
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

 private:
  sigset_t old_mask_;
  bool was_pending_ = false;
  bool was_blocked_ = false;
};

}  // namespace forker
