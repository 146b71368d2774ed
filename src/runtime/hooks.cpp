#include "runtime/hooks.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <utility>

#include "core/io_proxy.hpp"
#include "core/unique_fd.hpp"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

namespace forker::runtime {
namespace {

// How much of a hook's stdout and stderr is kept (the tail: the last line says most).
constexpr size_t kMaxCaptured = 4096;
// Poll tick when there is no pidfd (kernels before 5.3) and waitpid(WNOHANG) must be asked.
constexpr int kWaitTickMs = 20;

using Clock = std::chrono::steady_clock;

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

// A pipe end numbered 0-2 (the runtime started with a closed stdin, say) could be overwritten by
// the child's dup2 onto stdio before it is used: move it above.
Status lift_above_stdio(UniqueFd& fd) {
  if (fd.get() > STDERR_FILENO) return ok();
  int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  if (moved < 0) return sys_error("fcntl F_DUPFD_CLOEXEC", "hook pipe");
  fd.reset(moved);
  return ok();
}

Result<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) return sys_error("pipe2", "hook stdio");
  Pipe p{UniqueFd(fds[0]), UniqueFd(fds[1])};
  FORKER_TRY(lift_above_stdio(p.read));
  FORKER_TRY(lift_above_stdio(p.write));
  return p;
}

Status set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    return sys_error("fcntl O_NONBLOCK", "hook pipe");
  return ok();
}

// argv and envp are built before fork: after it, the child calls only async-signal-safe
// functions (the runtime may have other threads, whose locks the child would inherit held).
struct ExecVectors {
  std::vector<char*> argv;
  std::vector<char*> envp;
};

ExecVectors make_exec_vectors(const oci::Hook& hook) {
  ExecVectors v;
  if (hook.args.empty()) {
    v.argv.push_back(const_cast<char*>(hook.path.c_str()));
  } else {
    for (const auto& a : hook.args) v.argv.push_back(const_cast<char*>(a.c_str()));
  }
  v.argv.push_back(nullptr);
  for (const auto& e : hook.env) v.envp.push_back(const_cast<char*>(e.c_str()));
  v.envp.push_back(nullptr);
  return v;
}

struct ChildFds {
  int in;
  int out;
  int err;
  int exec_errno;  // O_CLOEXEC: closed by a successful exec, else carries errno to the parent
};

[[noreturn]] void report_and_exit(int exec_errno_fd) {
  int e = errno;
  ssize_t ignored = ::write(exec_errno_fd, &e, sizeof e);
  (void)ignored;
  ::_exit(127);
}

[[noreturn]] void exec_hook_child(const char* path, const ExecVectors& v, const ChildFds& fds) {
  // Own process group, so a timeout kills what the hook started too (a `sh -c 'sleep 9'`).
  ::setpgid(0, 0);
  if (::dup2(fds.in, STDIN_FILENO) < 0 || ::dup2(fds.out, STDOUT_FILENO) < 0 ||
      ::dup2(fds.err, STDERR_FILENO) < 0)
    report_and_exit(fds.exec_errno);
  // The runtime's signal mask (it blocks SIGPIPE while feeding us, maybe SIGCHLD or SIGWINCH for
  // signalfds) and ignored dispositions survive exec; the hook gets a clean slate.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  // Everything the runtime opens is O_CLOEXEC; this covers what a library did not open so.
  // CLOSE_RANGE_CLOEXEC needs Linux 5.11; before that, O_CLOEXEC is all there is.
  ::syscall(SYS_close_range, STDERR_FILENO + 1, ~0U, CLOSE_RANGE_CLOEXEC);
  ::execve(path, v.argv.data(), v.envp.data());
  report_and_exit(fds.exec_errno);
}

// The forked hook: killed (with its process group) and reaped unless wait() saw it exit, so no
// early return leaves a zombie or a runaway hook.
class HookProcess {
 public:
  explicit HookProcess(pid_t pid) : pid_(pid) {}
  HookProcess(HookProcess&& other) noexcept
      : pid_(other.pid_), reaped_(std::exchange(other.reaped_, true)) {}
  HookProcess& operator=(HookProcess&&) = delete;
  ~HookProcess() {
    if (!reaped_) {
      kill_group();
      (void)wait();
    }
  }

  pid_t pid() const { return pid_; }
  // Killing the group before reaping is safe: the unreaped leader keeps its pid, hence the
  // group id, from being reused.
  void kill_group() {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
  }
  // Blocks until the hook exits; its wait status.
  Result<int> wait() { return *wait_flags(0); }
  // Reaps only when the hook has exited already.
  std::optional<Result<int>> try_wait() { return wait_flags(WNOHANG); }

 private:
  std::optional<Result<int>> wait_flags(int flags) {
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid_, &status, flags);
    } while (r < 0 && errno == EINTR);
    if (r == 0) return std::nullopt;
    reaped_ = true;
    if (r < 0) return Result<int>(sys_error("waitpid", "hook " + std::to_string(pid_)));
    return Result<int>(status);
  }

  pid_t pid_;
  bool reaped_ = false;
};

// Keeps the last kMaxCaptured bytes.
void append_tail(std::string& buf, const char* data, size_t n) {
  buf.append(data, n);
  if (buf.size() > kMaxCaptured) buf.erase(0, buf.size() - kMaxCaptured);
}

// Reads what is available from a non-blocking pipe; resets fd at EOF.
void read_available(UniqueFd& fd, std::string& buf) {
  char chunk[4096];
  while (fd) {
    ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n > 0) {
      append_tail(buf, chunk, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return;
    } else {
      fd.reset();  // EOF, or an error no retry would fix
    }
  }
}

std::string last_line(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.remove_suffix(1);
  size_t nl = text.rfind('\n');
  if (nl != std::string_view::npos) text.remove_prefix(nl + 1);
  return std::string(text);
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return "killed by signal " + std::to_string(sig) + " (" + ::strsignal(sig) + ")";
  }
  return "wait status " + std::to_string(status);
}

// What the hook said, for the error: the last line of stderr, else of stdout.
std::string output_hint(const std::string& out, const std::string& err) {
  std::string line = last_line(err);
  if (line.empty()) line = last_line(out);
  return line.empty() ? "" : ": " + line;
}

int remaining_ms(std::optional<Clock::time_point> deadline) {
  if (!deadline) return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

// Errors of one hook: "<label> <path><detail>", label being "hook" or "prestart hook".
struct HookErrors {
  std::string_view label;
  const std::string& path;
  Error operator()(const std::string& detail, int err = 0) const {
    return Error{std::string(label), path + detail, err, {}};
  }
};

// The running hook and our ends of its stdio.
struct SpawnedHook {
  HookProcess proc;
  UniqueFd in;   // its stdin; non-blocking
  UniqueFd out;  // its stdout; non-blocking
  UniqueFd err;  // its stderr; non-blocking
};

Result<SpawnedHook> spawn_hook(const oci::Hook& hook, const HookErrors& hook_error) {
  const ExecVectors vectors = make_exec_vectors(hook);
  Pipe in = FORKER_TRY(make_pipe());
  Pipe out = FORKER_TRY(make_pipe());
  Pipe err = FORKER_TRY(make_pipe());
  Pipe exec_status = FORKER_TRY(make_pipe());

  pid_t pid = ::fork();
  if (pid < 0) return hook_error(": fork", errno);
  if (pid == 0) {
    exec_hook_child(hook.path.c_str(), vectors,
                    {in.read.get(), out.write.get(), err.write.get(), exec_status.write.get()});
  }
  HookProcess proc(pid);
  ::setpgid(pid, pid);  // also here, so kill(-pid) works whoever runs first; EACCES after exec
  exec_status.write.reset();

  // Returns 0 bytes once execve succeeded and closed the O_CLOEXEC end.
  int exec_errno = 0;
  ssize_t n;
  do {
    n = ::read(exec_status.read.get(), &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    (void)proc.wait();
    return hook_error(": exec", exec_errno);
  }
  FORKER_TRY(set_nonblocking(in.write.get()));
  FORKER_TRY(set_nonblocking(out.read.get()));
  FORKER_TRY(set_nonblocking(err.read.get()));
  return SpawnedHook{std::move(proc), std::move(in.write), std::move(out.read),
                     std::move(err.read)};
}

struct HookOutcome {
  std::optional<int> status;  // wait status; none when the timeout killed the hook
  std::string out;            // tails of its stdout and stderr
  std::string err;
};

// Feeds state_json to the hook while collecting its output, until it exits or the deadline
// passes (then its process group is killed). Always leaves the hook reaped.
Result<HookOutcome> supervise(SpawnedHook& hook, std::string_view state_json,
                              std::optional<Clock::time_point> deadline) {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, hook.proc.pid(), 0)));
  ScopedSigpipeBlock no_sigpipe;  // a hook that exits without reading stdin gives EPIPE
  if (state_json.empty()) hook.in.reset();
  HookOutcome outcome;
  while (!outcome.status) {
    int wait_ms = remaining_ms(deadline);
    if (wait_ms == 0) {
      hook.proc.kill_group();
      FORKER_TRY(hook.proc.wait());
      read_available(hook.err, outcome.err);
      return outcome;
    }
    if (!pidfd && (wait_ms < 0 || wait_ms > kWaitTickMs)) wait_ms = kWaitTickMs;

    enum { kIn, kOut, kErr, kPid, kCount };
    pollfd fds[kCount] = {{hook.in.get(), POLLOUT, 0},
                          {hook.out.get(), POLLIN, 0},
                          {hook.err.get(), POLLIN, 0},
                          {pidfd.get(), POLLIN, 0}};
    if (::poll(fds, kCount, wait_ms) < 0) {
      if (errno == EINTR) continue;
      return sys_error("poll", "hook " + std::to_string(hook.proc.pid()));
    }
    if (fds[kIn].revents != 0) {
      ssize_t w = ::write(hook.in.get(), state_json.data(), state_json.size());
      if (w > 0) state_json.remove_prefix(static_cast<size_t>(w));
      // Done, or EPIPE: the hook need not read its stdin (runc tolerates this too).
      if (state_json.empty() || (w < 0 && errno != EAGAIN && errno != EINTR)) hook.in.reset();
    }
    if (fds[kOut].revents != 0) read_available(hook.out, outcome.out);
    if (fds[kErr].revents != 0) read_available(hook.err, outcome.err);
    if (!pidfd || fds[kPid].revents != 0) {
      if (auto r = hook.proc.try_wait()) outcome.status = FORKER_TRY(std::move(*r));
    }
  }
  // Whatever the hook wrote is in the pipes now; a daemon it left behind may keep them open, so
  // take what is there and do not wait for EOF.
  read_available(hook.out, outcome.out);
  read_available(hook.err, outcome.err);
  return outcome;
}

Status run_hook_as(std::string_view label, const oci::Hook& hook, const std::string& state_json) {
  const HookErrors hook_error{label, hook.path};
  std::optional<Clock::time_point> deadline;
  if (hook.timeout && *hook.timeout > 0) {
    deadline = Clock::now() + std::chrono::seconds(*hook.timeout);
  }
  SpawnedHook spawned = FORKER_TRY(spawn_hook(hook, hook_error));
  HookOutcome outcome = FORKER_TRY(supervise(spawned, state_json, deadline));
  const std::string hint = output_hint(outcome.out, outcome.err);
  if (!outcome.status) {
    return hook_error(" timed out after " + std::to_string(*hook.timeout) + " s" + hint);
  }
  if (WIFEXITED(*outcome.status) && WEXITSTATUS(*outcome.status) == 0) return ok();
  return hook_error(": " + describe_status(*outcome.status) + hint);
}

}  // namespace

Status run_hook(const oci::Hook& hook, const std::string& state_json) {
  return run_hook_as("hook", hook, state_json);
}

Status run_hooks(std::string_view phase, const std::vector<oci::Hook>& hooks,
                 const std::string& state_json) {
  const std::string label = std::string(phase) + " hook";
  for (const auto& hook : hooks) FORKER_TRY(run_hook_as(label, hook, state_json));
  return ok();
}

std::vector<Error> run_hooks_all(std::string_view phase, const std::vector<oci::Hook>& hooks,
                                 const std::string& state_json) {
  const std::string label = std::string(phase) + " hook";
  std::vector<Error> failures;
  for (const auto& hook : hooks)
    if (auto st = run_hook_as(label, hook, state_json); !st) failures.push_back(std::move(st).error());
  return failures;
}

}  // namespace forker::runtime
