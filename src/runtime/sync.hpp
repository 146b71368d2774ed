// The parent <-> container init handshake over a SOCK_SEQPACKET socketpair. Each step has a
// name; an error in the child travels as a message and is rebuilt as an Error in the parent.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "core/error.hpp"
#include "core/unique_fd.hpp"

namespace forker::runtime {

enum class SyncStep : uint32_t {
  kGo = 1,            // parent -> child: maps and cgroups are in place; payload: state JSON
  kHooksRequest,      // child -> parent: mounts done, run prestart/createRuntime hooks
  kHooksDone,         // parent -> child
  kReady,             // child -> parent: about to wait for start (or exec); payload: pid
  kError,             // child -> parent: payload is a serialised Error
  kSeccompFd,         // child -> parent: the seccomp notify listener, as SCM_RIGHTS
};

class SyncChannel {
 public:
  SyncChannel() = default;
  explicit SyncChannel(UniqueFd fd) : fd_(std::move(fd)) {}
  static Result<std::pair<SyncChannel, SyncChannel>> make_pair();

  int fd() const { return fd_.get(); }
  void close() { fd_.reset(); }
  Status send(SyncStep step, std::string_view payload = {}) const;
  Status send_error(const Error& error) const;
  // Waits for STEP; a kError message or EOF becomes an Error.
  Result<std::string> expect(SyncStep step) const;
  // A step carrying one fd.
  Status send_fd(SyncStep step, int fd) const;
  Result<UniqueFd> expect_fd(SyncStep step) const;

 private:
  UniqueFd fd_;
};

}  // namespace forker::runtime
