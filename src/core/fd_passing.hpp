// Passing one fd over a unix socket (SCM_RIGHTS) with a message: the console socket protocol,
// the init's sync channel, the seccomp notify listener.
#pragma once

#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/unique_fd.hpp"

namespace forker {

// Sends DATA (at least one byte) with FD attached. Returns the bytes sent: a stream socket may
// take fewer, and the caller sends the rest without the fd.
Result<size_t> send_with_fd(int sock, int fd, std::string_view data);

struct FdMessage {
  UniqueFd fd;  // invalid when the message carried none
  std::string data;
  size_t fds_received = 0;  // more than one is a protocol error the caller reports
  bool truncated = false;   // MSG_CTRUNC: fds beyond the first were dropped by the kernel
};
// Receives one message of at most MAX bytes; every fd that came with it is owned (the first is
// returned, the others closed) so no error path leaks one.
Result<FdMessage> recv_with_fd(int sock, size_t max);

}  // namespace forker
