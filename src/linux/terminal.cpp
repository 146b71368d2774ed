#include "linux/terminal.hpp"

#include "core/fd_passing.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "core/io_proxy.hpp"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace forker::linux {
namespace {

// What runc's console.NewPty master reports as file.Name(); receivers may log it.
constexpr std::string_view kMasterName = "/dev/ptmx";
// runc's utils.MaxNameLen: the payload of a console-socket message is shorter than this.
constexpr size_t kMaxNameLen = 4096;
constexpr size_t kCopyChunk = size_t{16} * 1024;
// Bounds the final drain after the child exited, in case something else in the container keeps
// the slave open and writes without end.
constexpr int kMaxDrainReads = 64;

unsigned short clamp_dimension(uint32_t v) {
  return static_cast<unsigned short>(std::min<uint32_t>(v, USHRT_MAX));
}

// Puts a tty in raw mode for the proxy's lifetime; the destructor puts the saved mode back, so
// every return path of proxy_terminal leaves the user's terminal as it was.
class RawMode {
 public:
  RawMode(RawMode&& other) noexcept : fd_(std::exchange(other.fd_, -1)), saved_(other.saved_) {}
  RawMode& operator=(RawMode&&) = delete;
  ~RawMode() {
    if (fd_ >= 0) ::tcsetattr(fd_, TCSANOW, &saved_);
  }

  static Result<RawMode> enter(int fd) {
    RawMode mode;  // restores nothing until fd_ is set
    if (::tcgetattr(fd, &mode.saved_) < 0) return sys_error("tcgetattr", "terminal input");
    termios raw = mode.saved_;
    ::cfmakeraw(&raw);
    // Keep output processing, as containerd/console's SetRaw does: the container's tty has
    // ONLCR cleared (see clear_onlcr), so our terminal turns "\n" into "\r\n".
    raw.c_oflag |= OPOST;
    if (::tcsetattr(fd, TCSANOW, &raw) < 0) return sys_error("tcsetattr raw", "terminal input");
    mode.fd_ = fd;
    return mode;
  }

 private:
  RawMode() = default;

  int fd_ = -1;
  termios saved_{};
};

// What a user sends to the runtime of a foreground container with a terminal (kill, the SIGHUP
// of a closed terminal): forwarded to the child, as runc and docker's sig-proxy do. Left to their
// default action, they would end us with the user's terminal still raw and the container running.
constexpr int kForwardedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCONT};

// The proxy's signals read from a signalfd: SIGWINCH when there is a terminal size to follow, and
// kForwardedSignals when there is a child. Blocked in this thread while proxying, the old mask
// restored afterwards; those that arrived meanwhile are consumed, unless the caller blocked them.
class ProxySignals {
 public:
  ProxySignals(ProxySignals&& other) noexcept
      : fd_(std::move(other.fd_)),
        set_(other.set_),
        old_mask_(other.old_mask_),
        active_(std::exchange(other.active_, false)) {}
  ProxySignals& operator=(ProxySignals&&) = delete;
  ~ProxySignals() {
    if (!active_) return;
    fd_.reset();
    sigset_t pending_ours;
    sigemptyset(&pending_ours);
    for (int sig = 1; sig < NSIG; ++sig)
      if (sigismember(&set_, sig) == 1 && sigismember(&old_mask_, sig) != 1)
        sigaddset(&pending_ours, sig);
    timespec zero{};
    while (sigtimedwait(&pending_ours, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }

  static Result<ProxySignals> open(bool winch, bool forward) {
    ProxySignals s;
    sigemptyset(&s.set_);
    if (winch) sigaddset(&s.set_, SIGWINCH);
    if (forward)
      for (int sig : kForwardedSignals) sigaddset(&s.set_, sig);
    if (int rc = pthread_sigmask(SIG_BLOCK, &s.set_, &s.old_mask_); rc != 0)
      return sys_error_errno(rc, "pthread_sigmask", "terminal proxy signals");
    s.active_ = true;
    s.fd_.reset(::signalfd(-1, &s.set_, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!s.fd_) return sys_error("signalfd", "terminal proxy signals");
    return s;
  }

  int fd() const { return fd_.get(); }

  // Empties the signalfd: SIGWINCH sets *resized, the others are sent on to child.
  void dispatch(pid_t child, bool* resized) {
    signalfd_siginfo info;
    while (::read(fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      int sig = static_cast<int>(info.ssi_signo);
      if (sig == SIGWINCH)
        *resized = true;
      else if (child > 0)
        ::kill(child, sig);
    }
  }

 private:
  ProxySignals() = default;

  UniqueFd fd_;
  sigset_t set_{};
  sigset_t old_mask_{};
  bool active_ = false;
};

// Sets O_NONBLOCK on the master so one poll round never blocks on it; restores the old flags.
class NonBlocking {
 public:
  NonBlocking(NonBlocking&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)), flags_(other.flags_) {}
  NonBlocking& operator=(NonBlocking&&) = delete;
  ~NonBlocking() {
    if (fd_ >= 0) ::fcntl(fd_, F_SETFL, flags_);
  }

  static Result<NonBlocking> set(int fd) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0) return sys_error("fcntl F_GETFL", "terminal master");
    if (::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
      return sys_error("fcntl O_NONBLOCK", "terminal master");
    return NonBlocking(fd, flags);
  }

 private:
  NonBlocking(int fd, int flags) : fd_(fd), flags_(flags) {}

  int fd_;
  int flags_;
};

// As runc's recvtty: the container's tty passes "\n" through unchanged, so output redirected to
// a file is what the program wrote, and a raw-with-OPOST terminal still shows lines right.
void clear_onlcr(int master_fd) {
  termios t;
  if (::tcgetattr(master_fd, &t) < 0) return;
  t.c_oflag &= ~static_cast<tcflag_t>(ONLCR);
  ::tcsetattr(master_fd, TCSANOW, &t);
}

// The size of our terminal, copied onto the container's. Best effort: a failed resize must not
// end an interactive session.
void copy_window_size(int from_fd, int master_fd) {
  winsize ws{};
  if (from_fd < 0 || ::ioctl(from_fd, TIOCGWINSZ, &ws) < 0) return;
  if (ws.ws_row == 0 || ws.ws_col == 0) return;
  ::ioctl(master_fd, TIOCSWINSZ, &ws);
}

enum class MasterState { kOpen, kClosed };

// One read from the (non-blocking) master, written to out_fd. EIO is how a pty master reports
// that every slave fd is closed.
Result<MasterState> copy_master_once(int master_fd, int out_fd, bool* would_block) {
  char buf[kCopyChunk];
  *would_block = false;
  for (;;) {
    ssize_t n = ::read(master_fd, buf, sizeof buf);
    if (n > 0) {
      FORKER_TRY(
          write_all(out_fd, std::string_view(buf, static_cast<size_t>(n)), "terminal output"));
      return MasterState::kOpen;
    }
    if (n == 0) return MasterState::kClosed;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      *would_block = true;
      return MasterState::kOpen;
    }
    if (errno == EIO) return MasterState::kClosed;
    return sys_error("read", "terminal master");
  }
}

// After the child exited: copy what the master still holds. A read on an empty master flushes
// the pty's pending buffer work first, so output written just before exit is not lost.
Status drain_master(int master_fd, int out_fd) {
  for (int i = 0; i < kMaxDrainReads; ++i) {
    bool would_block = false;
    auto state = FORKER_TRY(copy_master_once(master_fd, out_fd, &would_block));
    if (state == MasterState::kClosed || would_block) break;
  }
  return ok();
}

// Watches for the child's exit without reaping it: a pidfd (Linux 5.3), else waitid(WNOWAIT)
// on a poll tick.
class ChildWatch {
 public:
  explicit ChildWatch(pid_t child) : child_(child) {
    if (child_ <= 0) return;
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, child_, 0));
    if (fd >= 0) {
      pidfd_.reset(fd);
    } else if (errno == ESRCH) {
      gone_ = true;  // already reaped by someone: nothing left to wait for
    }
  }
  int pidfd() const { return pidfd_.get(); }
  // Milliseconds for poll(): a tick only when we must ask waitid.
  int poll_timeout() const { return child_ > 0 && !pidfd_ ? 100 : -1; }
  bool exited(short pidfd_revents) const {
    if (gone_) return true;
    if (child_ <= 0) return false;
    if (pidfd_) return (pidfd_revents & POLLIN) != 0;
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(child_), &info, WEXITED | WNOHANG | WNOWAIT) < 0)
      return errno == ECHILD;
    return info.si_pid != 0;
  }

 private:
  pid_t child_;
  UniqueFd pidfd_;
  bool gone_ = false;
};

}  // namespace

Result<UniqueFd> connect_console_socket(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    return sys_error_errno(ENAMETOOLONG, "connect console socket", path);
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return sys_error("socket AF_UNIX for console socket", path);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0)
    return sys_error("connect console socket", path);
  return fd;
}

Status set_window_size(int tty_fd, const oci::ConsoleSize& size) {
  if (size.height == 0 || size.width == 0) return ok();
  winsize ws{};
  ws.ws_row = clamp_dimension(size.height);
  ws.ws_col = clamp_dimension(size.width);
  if (::ioctl(tty_fd, TIOCSWINSZ, &ws) < 0) return sys_error("ioctl TIOCSWINSZ", "console");
  return ok();
}

Result<PtyPair> open_pty(const std::optional<oci::ConsoleSize>& size,
                         const std::string& ptmx_path) {
  PtyPair pair;
  pair.master.reset(::open(ptmx_path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!pair.master) return sys_error("open", ptmx_path);
  int unlock = 0;
  if (::ioctl(pair.master.get(), TIOCSPTLCK, &unlock) < 0) return sys_error("unlockpt", ptmx_path);
  unsigned int index = 0;
  if (::ioctl(pair.master.get(), TIOCGPTN, &index) < 0)
    return sys_error("ioctl TIOCGPTN", ptmx_path);
  pair.slave_path = "/dev/pts/" + std::to_string(index);

  // TIOCGPTPEER (Linux 4.13) opens the peer through the master's own devpts instance, so nothing
  // the container placed at /dev/pts/N can stand in for it. Older kernels: open by name.
  int slave = ::ioctl(pair.master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) {
    if (errno != EINVAL && errno != ENOTTY) return sys_error("ioctl TIOCGPTPEER", ptmx_path);
    slave = ::open(pair.slave_path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) return sys_error("open", pair.slave_path);
  }
  pair.slave.reset(slave);

  if (size) FORKER_TRY(set_window_size(pair.slave.get(), *size));
  return pair;
}

Status send_console_fd(int socket_fd, int master_fd) {
  auto sent = send_with_fd(socket_fd, master_fd, kMasterName);
  if (!sent) return std::move(sent).error().add_context("pty master to console socket");
  if (*sent != kMasterName.size())
    return make_error("sendmsg pty master to", "console socket: short write");
  return ok();
}

Result<UniqueFd> recv_console_fd(int socket_fd) {
  auto msg = recv_with_fd(socket_fd, kMaxNameLen);
  if (!msg) return std::move(msg).error().add_context("pty master from console socket");
  if (msg->data.empty() && msg->fds_received == 0)
    return make_error("recvmsg pty master from", "console socket: peer closed without sending");
  if (msg->fds_received != 1 || msg->truncated)
    return make_error("recvmsg pty master from",
                      "console socket: expected exactly one fd, got " +
                          std::to_string(msg->fds_received) +
                          (msg->truncated ? " (truncated)" : ""));
  return std::move(msg->fd);
}

Status setup_console_stdio(int slave_fd) {
  if (::setsid() < 0) return sys_error("setsid");
  if (::ioctl(slave_fd, TIOCSCTTY, 0) < 0) return sys_error("ioctl TIOCSCTTY", "console");
  for (int target = STDIN_FILENO; target <= STDERR_FILENO; ++target) {
    if (slave_fd == target) {
      // dup2 onto itself keeps FD_CLOEXEC, and exec would close our stdio.
      if (::fcntl(target, F_SETFD, 0) < 0) return sys_error("fcntl clear FD_CLOEXEC", "console");
      continue;
    }
    if (::dup2(slave_fd, target) < 0)
      return sys_error("dup2 console onto fd", std::to_string(target));
  }
  return ok();
}

Status proxy_terminal(int master_fd, pid_t child, const TerminalProxyOptions& options) {
  const int in_fd = options.in_fd;
  const int out_fd = options.out_fd;
  const bool in_is_tty = in_fd >= 0 && ::isatty(in_fd) == 1;
  const int size_fd = in_is_tty ? in_fd : (out_fd >= 0 && ::isatty(out_fd) == 1 ? out_fd : -1);

  // Declared in this order so they unwind in reverse: the user's terminal mode comes back last.
  std::optional<RawMode> raw;
  if (in_is_tty) raw.emplace(FORKER_TRY(RawMode::enter(in_fd)));
  ScopedSigpipeBlock no_sigpipe;
  std::optional<ProxySignals> signals;
  if (size_fd >= 0 || child > 0)
    signals.emplace(FORKER_TRY(ProxySignals::open(size_fd >= 0, child > 0)));
  NonBlocking nonblocking = FORKER_TRY(NonBlocking::set(master_fd));
  ChildWatch watch(child);

  clear_onlcr(master_fd);
  copy_window_size(size_fd, master_fd);

  std::string pending;  // read from in_fd, not yet accepted by the master
  bool in_open = in_fd >= 0;
  for (;;) {
    enum { kMaster, kIn, kChild, kSignals, kCount };
    pollfd fds[kCount] = {};
    fds[kMaster] = {master_fd, static_cast<short>(POLLIN | (pending.empty() ? 0 : POLLOUT)), 0};
    fds[kIn] = {in_open && pending.empty() ? in_fd : -1, POLLIN, 0};
    fds[kChild] = {watch.pidfd(), POLLIN, 0};
    fds[kSignals] = {signals ? signals->fd() : -1, POLLIN, 0};
    if (::poll(fds, kCount, watch.poll_timeout()) < 0) {
      if (errno == EINTR) continue;
      return sys_error("poll", "terminal");
    }

    // Output first, so that what the child wrote before exiting is copied in this round.
    if ((fds[kMaster].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      bool would_block = false;
      if (FORKER_TRY(copy_master_once(master_fd, out_fd, &would_block)) == MasterState::kClosed)
        return ok();
    }
    if ((fds[kMaster].revents & POLLOUT) != 0 && !pending.empty()) {
      ssize_t n = ::write(master_fd, pending.data(), pending.size());
      if (n > 0) {
        pending.erase(0, static_cast<size_t>(n));
      } else if (n < 0 && errno != EINTR && errno != EAGAIN) {
        pending.clear();  // the slave is gone; the read side reports the end
      }
    }
    if ((fds[kIn].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      char buf[kCopyChunk];
      ssize_t n = ::read(in_fd, buf, sizeof buf);
      if (n > 0) {
        pending.assign(buf, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        // EOF on our input: stop forwarding it, as runc's io.Copy does, and keep the output.
        in_open = false;
      }
    }
    if ((fds[kSignals].revents & POLLIN) != 0) {
      bool resized = false;
      signals->dispatch(child, &resized);
      if (resized) copy_window_size(size_fd, master_fd);
    }
    if (watch.exited(fds[kChild].revents)) return drain_master(master_fd, out_fd);
  }
}

}  // namespace forker::linux
