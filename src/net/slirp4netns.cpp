#include "net/slirp4netns.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "core/file.hpp"
#include "core/strings.hpp"

extern char** environ;

namespace forker::net {
namespace {

// slirp4netns reports readiness within milliseconds; this only bounds a hung start.
constexpr int kReadyTimeoutMs = 30000;
// It exits at once on SIGTERM; this only bounds the wait for one that does not.
constexpr int kStopTimeoutMs = 5000;

// The last lines of slirp4netns's log, for an error message.
std::string log_tail(const std::string& path) {
  auto text = read_file(path);
  if (!text) return "";
  std::string t = *text;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  if (t.size() > 400) t = t.substr(t.size() - 400);
  for (char& c : t)
    if (c == '\n') c = ' ';
  return t;
}

bool is_slirp4netns(pid_t pid) {
  auto cmdline = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  if (!cmdline || cmdline->empty()) return false;
  std::string argv0 = cmdline->substr(0, cmdline->find('\0'));
  return argv0 == "slirp4netns" || argv0.ends_with("/slirp4netns");
}

void reap(pid_t pid) {
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

namespace {
constexpr int kNetnsFd = 5, kUsernsFd = 6;  // slirp4netns's fds for SlirpOptions' namespaces
}  // namespace

std::vector<std::string> slirp4netns_args(const SlirpOptions& o) {
  std::vector<std::string> a = {"--configure", "--mtu=" + std::to_string(o.mtu),
                                "--disable-host-loopback"};
  if (o.sandbox) a.push_back("--enable-sandbox");
  if (o.seccomp) a.push_back("--enable-seccomp");
  if (!o.api_socket.empty()) a.push_back("--api-socket=" + o.api_socket);
  if (o.exit_fd >= 0) a.push_back("--exit-fd=" + std::to_string(o.exit_fd));
  if (o.ready_fd >= 0) a.push_back("--ready-fd=" + std::to_string(o.ready_fd));
  if (o.netns_fd >= 0) {
    a.push_back("--netns-type=path");
    if (o.userns_fd >= 0) a.push_back("--userns-path=/proc/self/fd/" + std::to_string(kUsernsFd));
    a.push_back("/proc/self/fd/" + std::to_string(kNetnsFd));
  } else {
    a.push_back(std::to_string(o.pid));
  }
  a.push_back(kSlirpInterface);
  return a;
}

nlohmann::json add_hostfwd_request(const PortMapping& m) {
  return {{"execute", "add_hostfwd"},
          {"arguments",
           {{"proto", m.protocol},
            {"host_addr", m.host_ip.empty() ? "0.0.0.0" : m.host_ip},
            {"host_port", m.host_port},
            {"guest_port", m.container_port}}}};
}

Status check_api_reply(const std::string& what, const std::string& reply) {
  auto fail = [&](const std::string& why) { return Error{"slirp4netns " + what + ": " + why}; };
  nlohmann::json j = nlohmann::json::parse(reply, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail("unreadable reply '" + reply + "'");
  if (auto e = j.find("error"); e != j.end()) {
    std::string desc = e->is_object() ? e->value("desc", e->dump()) : e->dump();
    return fail(desc);
  }
  if (!j.contains("return")) return fail("reply '" + reply + "'");
  return ok();
}

std::string find_slirp4netns() {
  const char* path = std::getenv("PATH");
  for (const std::string& dir : split(path && *path ? path : "/usr/local/bin:/usr/bin:/bin", ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/slirp4netns";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

Result<Slirp4netns> Slirp4netns::start(const std::string& program, SlirpOptions o,
                                       const std::string& log_path) {
  int exit_pipe[2], ready_pipe[2];
  if (pipe2(exit_pipe, O_CLOEXEC) < 0) return sys_error("pipe2", "slirp4netns exit fd");
  UniqueFd exit_read(exit_pipe[0]), exit_write(exit_pipe[1]);
  if (pipe2(ready_pipe, O_CLOEXEC) < 0) return sys_error("pipe2", "slirp4netns ready fd");
  UniqueFd ready_read(ready_pipe[0]), ready_write(ready_pipe[1]);
  // The child's fds 3 and 4; copies above 10 first so that the dup2s cannot overwrite each
  // other's source.
  UniqueFd exit_high(fcntl(exit_read.get(), F_DUPFD_CLOEXEC, 10));
  UniqueFd ready_high(fcntl(ready_write.get(), F_DUPFD_CLOEXEC, 10));
  if (!exit_high || !ready_high) return sys_error("fcntl F_DUPFD_CLOEXEC", "slirp4netns fds");
  UniqueFd netns_high, userns_high;
  if (o.netns_fd >= 0) netns_high = UniqueFd(fcntl(o.netns_fd, F_DUPFD_CLOEXEC, 10));
  if (o.userns_fd >= 0) userns_high = UniqueFd(fcntl(o.userns_fd, F_DUPFD_CLOEXEC, 10));
  if ((o.netns_fd >= 0 && !netns_high) || (o.userns_fd >= 0 && !userns_high))
    return sys_error("fcntl F_DUPFD_CLOEXEC", "slirp4netns namespace fds");
  exit_read.reset();
  ready_write.reset();
  o.exit_fd = 3;
  o.ready_fd = 4;

  std::vector<std::string> args = slirp4netns_args(o);
  args.insert(args.begin(), "slirp4netns");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_adddup2(&fa, exit_high.get(), 3);
  posix_spawn_file_actions_adddup2(&fa, ready_high.get(), 4);
  if (netns_high) posix_spawn_file_actions_adddup2(&fa, netns_high.get(), kNetnsFd);
  if (userns_high) posix_spawn_file_actions_adddup2(&fa, userns_high.get(), kUsernsFd);
  // A session of its own (no Ctrl-C from our terminal) and default signals: a monitor ignores
  // SIGHUP and SIGINT, and ignored signals survive exec.
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, program.c_str(), &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  exit_high.reset();
  ready_high.reset();
  if (rc != 0) return sys_error_errno(rc, "posix_spawn", program);
  Slirp4netns running(pid, std::move(exit_write));

  // It writes "1" once tap0 is configured; EOF means it exited.
  pollfd p{ready_read.get(), POLLIN, 0};
  int n;
  while ((n = poll(&p, 1, kReadyTimeoutMs)) < 0 && errno == EINTR) {
  }
  char c = 0;
  ssize_t got = 0;
  if (n > 0) {
    while ((got = read(ready_read.get(), &c, 1)) < 0 && errno == EINTR) {
    }
  }
  if (n > 0 && got == 1 && c == '1') return running;
  std::string why = n == 0 ? "not ready after " + std::to_string(kReadyTimeoutMs / 1000) + " s"
                           : "exited before it was ready";
  { Slirp4netns doomed = std::move(running); }  // stopped and reaped here, before its log is read
  std::string tail = log_tail(log_path);
  return Error{"slirp4netns for pid " + std::to_string(o.pid) + ": " + why +
               (tail.empty() ? "" : ": " + tail)};
}

Slirp4netns::~Slirp4netns() {
  if (pid_ > 0) stop_slirp4netns(pid_, std::move(exit_write_));
}

pid_t Slirp4netns::release(UniqueFd& exit_write) {
  exit_write = std::move(exit_write_);
  return std::exchange(pid_, 0);
}

Result<std::string> slirp_api_call(const std::string& socket_path, const nlohmann::json& request) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof sa.sun_path)
    return Error{"slirp4netns API socket " + socket_path + ": path too long for a socket"};
  std::memcpy(sa.sun_path, socket_path.c_str(), socket_path.size() + 1);
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return sys_error("socket", socket_path);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0)
    return sys_error("connect", socket_path);
  // One read() on its side takes the request: send it whole, then say it is complete.
  const std::string text = request.dump();
  if (send(fd.get(), text.data(), text.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(text.size()))
    return sys_error("send", socket_path);
  (void)shutdown(fd.get(), SHUT_WR);
  std::string reply;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("read", socket_path);
    if (n == 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  return reply;
}

Status slirp_add_hostfwd(const std::string& socket_path, const PortMapping& m) {
  std::string reply = FORKER_TRY(slirp_api_call(socket_path, add_hostfwd_request(m)));
  return check_api_reply("add_hostfwd " + m.str(), reply);
}

void stop_slirp4netns(pid_t pid, UniqueFd exit_write) {
  if (pid <= 0) return;
  exit_write.reset();
  // A pidfd pins the process between the cmdline check and the signal, and tells when it has
  // exited even when it is another process's child (the monitor's, for `forker rm -f`).
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!is_slirp4netns(pid)) {
    // A recycled pid, or gone already.
  } else if (!pidfd) {
    kill(pid, SIGTERM);  // kernels before 5.3: no pidfd
  } else if (syscall(SYS_pidfd_send_signal, pidfd.get(), SIGTERM, nullptr, 0) == 0) {
    pollfd p{pidfd.get(), POLLIN, 0};
    while (poll(&p, 1, kStopTimeoutMs) < 0 && errno == EINTR) {
    }
  }
  // Our child (the process that started it): reaped here. Another's: ECHILD at once.
  reap(pid);
}

}  // namespace forker::net
