// process.terminal: a pseudo-terminal made inside the container and runc's console-socket
// protocol for handing its master to whoever asked (--console-socket), or to our own foreground
// proxy (`forker-oci run` with a terminal and no console socket).
//
// Sequence, as runc does it:
//   parent: connect_console_socket(path) before clone; the fd goes to the child.
//   child:  after /dev/pts (newinstance) is mounted and /dev/ptmx -> pts/ptmx, open_pty(size);
//           bind-mount pair.slave_path on /dev/console; send_console_fd(socket, master);
//           close the master; setup_console_stdio(slave) just before exec.
//   receiver: recv_console_fd(socket) and copy bytes (proxy_terminal, or containerd's shim).
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <optional>
#include <string>

#include "core/error.hpp"
#include "core/unique_fd.hpp"
#include "oci/spec.hpp"

namespace forker::linux {

struct PtyPair {
  UniqueFd master;
  UniqueFd slave;
  // "/dev/pts/N" in the mount namespace that opened the pair; runc bind-mounts it on /dev/console.
  std::string slave_path;
};

// Connects to the AF_UNIX SOCK_STREAM socket given by --console-socket. The runtime does this in
// the parent, before clone, so that the path is resolved on the host and not in the container.
Result<UniqueFd> connect_console_socket(const std::string& path);

// Opens a new pty pair through ptmx_path (the container's /dev/ptmx when called in the child;
// the host's in tests), unlocks it, opens the peer and sets the window size when both dimensions
// of size are non-zero. All fds are O_CLOEXEC and O_NOCTTY.
Result<PtyPair> open_pty(const std::optional<oci::ConsoleSize>& size,
                         const std::string& ptmx_path = "/dev/ptmx");

// TIOCSWINSZ. A zero height or width is left alone, as runc does.
Status set_window_size(int tty_fd, const oci::ConsoleSize& size);

// Sends master_fd with SCM_RIGHTS; the payload is the master's file name ("/dev/ptmx"), which is
// what runc's utils.SendFd sends and what console-socket receivers (containerd) expect.
Status send_console_fd(int socket_fd, int master_fd);

// Receives one fd sent by send_console_fd (or by runc). The fd is O_CLOEXEC. Extra fds, if a
// sender passes more than one, are closed and reported as an error.
Result<UniqueFd> recv_console_fd(int socket_fd);

// In the container process, just before exec: a new session, slave_fd as its controlling
// terminal, and slave_fd on stdin, stdout and stderr. The caller still owns slave_fd (it is
// O_CLOEXEC, so exec closes the original).
Status setup_console_stdio(int slave_fd);

struct TerminalProxyOptions {
  int in_fd = STDIN_FILENO;    // put in raw mode while proxying when it is a tty
  int out_fd = STDOUT_FILENO;  // container output goes here
};

// The foreground proxy of `run` with a terminal and no console socket: copies in_fd to the master
// and the master to out_fd, forwards SIGWINCH on in_fd's tty as TIOCSWINSZ on the master, and
// puts in_fd in raw mode (restored on every return path). When child > 0, SIGINT, SIGTERM,
// SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGCONT sent to us are sent on to child.
//
// Returns once the master reports EOF/EIO (every slave fd closed) or, when child > 0, once child
// has exited and the output the master still holds has been copied; a background process that
// keeps the slave open does not hold `run` up. child is not reaped: the caller waits for its
// status. These signals are blocked in the calling thread while proxying (read from a signalfd).
Status proxy_terminal(int master_fd, pid_t child, const TerminalProxyOptions& options = {});

}  // namespace forker::linux
