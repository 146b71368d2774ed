// A throwaway unprivileged user for rootless tests: made with a home and /etc/subuid and
// /etc/subgid ranges, and removed again (with every process it still runs) when the object goes.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "integration/support/harness.hpp"

namespace forker::test {

class TestUser {
 public:
  static constexpr const char* kDefaultPath = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  // Null with WHY set when this host cannot make one (not root, no useradd or setpriv).
  static std::unique_ptr<TestUser> create(std::string& why);
  ~TestUser();
  TestUser(const TestUser&) = delete;
  TestUser& operator=(const TestUser&) = delete;

  const std::string& name() const { return name_; }
  uid_t uid() const { return uid_; }
  gid_t gid() const { return gid_; }
  // The user's first /etc/subuid and /etc/subgid ranges.
  uint32_t subuid_start() const { return subuid_start_; }
  uint32_t subuid_count() const { return subuid_count_; }
  uint32_t subgid_start() const { return subgid_start_; }
  uint32_t subgid_count() const { return subgid_count_; }

  // Runs ARGV as the user (setpriv --reuid --regid --init-groups) with a clean environment:
  // PATH (default: the usual one), HOME and ENV ("XDG_RUNTIME_DIR=/x", ...).
  RunResult run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                const std::string& path = kDefaultPath, int timeout_s = 60) const;
  // The argv run() runs (setpriv ... env -i ... ARGV), for callers that wrap it.
  std::vector<std::string> command(const std::vector<std::string>& argv,
                                   const std::vector<std::string>& env = {},
                                   const std::string& path = kDefaultPath) const;
  // chown -R of PATH to the user.
  void give(const std::string& path) const;
  // Pids of the processes running as the user (real uid).
  std::vector<pid_t> processes() const;

 private:
  TestUser() = default;
  std::string name_, home_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  uint32_t subuid_start_ = 0, subuid_count_ = 0, subgid_start_ = 0, subgid_count_ = 0;
};

}  // namespace forker::test
