// User-mode networking for containers without privilege on the host, as rootless docker and
// podman do it: slirp4netns(1) joins the container's network namespace, makes tap0 there
// (10.0.2.100/24, gateway 10.0.2.2, DNS 10.0.2.3 with --configure) and carries its traffic
// through ordinary sockets of the calling user. Published ports are asked of it over its API
// socket (add_hostfwd); it listens on the host itself.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/unique_fd.hpp"
#include "net/port_spec.hpp"

namespace forker::net {

inline constexpr const char* kSlirpInterface = "tap0";
inline constexpr const char* kSlirpGuestAddress = "10.0.2.100";  // --configure's default
inline constexpr const char* kSlirpDns = "10.0.2.3";

struct SlirpOptions {
  pid_t pid = 0;           // the container's init: slirp4netns joins its user and net namespaces
  std::string api_socket;  // --api-socket
  int exit_fd = -1;        // fd numbers as slirp4netns sees them
  int ready_fd = -1;
  // The container's namespaces as fds of ours, passed on as fds 5 and 6 (-1: joined by PID).
  // A rootless caller cannot open /proc/PID/ns of an init that is no longer dumpable.
  int netns_fd = -1;
  int userns_fd = -1;
  int mtu = 65520;
  // --enable-sandbox (a mount namespace of its own, made in a user namespace of its own, so it
  // works unprivileged) and --enable-seccomp, as podman runs it.
  bool sandbox = true;
  bool seccomp = true;
};

// The argv after the program name: --configure --mtu=65520 --disable-host-loopback ...
// <pid> tap0. --disable-host-loopback: the container must not reach the host's 127.0.0.1
// through 10.0.2.2.
std::vector<std::string> slirp4netns_args(const SlirpOptions& o);

// {"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"0.0.0.0",...}} for M
// (no guest_addr: slirp4netns uses the address --configure gave tap0).
nlohmann::json add_hostfwd_request(const PortMapping& m);
// An API reply: {"return":{...}} is success; {"error":{"desc":"..."}} or anything else is an
// error naming WHAT.
Status check_api_reply(const std::string& what, const std::string& reply);

// The slirp4netns program in PATH, or "" when it is not installed.
std::string find_slirp4netns();

// A running slirp4netns: killed and reaped on destruction unless release()d. The exit fd's write
// end is held here: slirp4netns exits when it closes, so it goes with the process holding it.
class [[nodiscard]] Slirp4netns {
 public:
  // Starts PROGRAM with O (exit_fd and ready_fd are chosen here) in a session of its own, its
  // output appended to LOG_PATH, and waits until it reports tap0 configured. On failure nothing
  // runs and the error carries the tail of the log.
  static Result<Slirp4netns> start(const std::string& program, SlirpOptions o,
                                   const std::string& log_path);
  Slirp4netns(Slirp4netns&& other) noexcept
      : pid_(std::exchange(other.pid_, 0)), exit_write_(std::move(other.exit_write_)) {}
  Slirp4netns& operator=(Slirp4netns&&) = delete;
  ~Slirp4netns();

  pid_t pid() const { return pid_; }
  // Hands the process and the exit fd on (to hold until the container is gone).
  pid_t release(UniqueFd& exit_write);

 private:
  Slirp4netns(pid_t pid, UniqueFd exit_write) : pid_(pid), exit_write_(std::move(exit_write)) {}
  pid_t pid_ = 0;
  UniqueFd exit_write_;
};

// One request over the API socket at SOCKET_PATH; the reply text.
Result<std::string> slirp_api_call(const std::string& socket_path, const nlohmann::json& request);
// add_hostfwd for M; the reply checked.
Status slirp_add_hostfwd(const std::string& socket_path, const PortMapping& m);

// Stops slirp4netns PID: SIGTERM when /proc/PID/cmdline is slirp4netns's (a recycled pid is left
// alone), then reaps it when it is our child. Closing EXIT_WRITE first lets it exit by itself.
void stop_slirp4netns(pid_t pid, UniqueFd exit_write = UniqueFd());

}  // namespace forker::net
