// forker-init: the PID 1 of `forker run --init` (tini's job, docker-init's role). It runs the
// command as its child, passes it the signals a user or `forker stop` sends, reaps every process
// that ends up as its child, and exits with the command's status.
//
// Static and libc only: it is copied into containers whose rootfs may have no libc at all.
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

namespace {

// The signals passed on to the command. SIGKILL and SIGSTOP cannot be caught; the rest keep their
// default action (as PID 1 the kernel drops those it has no handler for).
constexpr int kForwarded[] = {SIGTERM, SIGINT,  SIGHUP,   SIGQUIT,
                              SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};

void put(const char* s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = write(STDERR_FILENO, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

[[noreturn]] void exec_child(char** argv, const sigset_t& old_mask) {
  // Its own process group in the terminal's foreground, as tini does: a ^C from the terminal then
  // reaches the command once, not once from the tty and again from us. SIGTTOU is still blocked,
  // so tcsetpgrp from what is now a background group is allowed.
  setpgid(0, 0);
  if (isatty(STDIN_FILENO)) tcsetpgrp(STDIN_FILENO, getpgrp());
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  execvp(argv[0], argv);
  int err = errno;
  put("forker-init: exec ");
  put(argv[0]);
  put(": ");
  put(strerror(err));
  put("\n");
  _exit(err == ENOENT ? 127 : 126);
}

// Reaps every child that has ended. Returns true once CHILD is among them, its status in STATUS.
bool reap(pid_t child, int* status) {
  bool child_done = false;
  for (;;) {
    int st = 0;
    pid_t pid = waitpid(-1, &st, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) return child_done;
    if (pid == child) {
      *status = st;
      child_done = true;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    put("usage: forker-init COMMAND [ARG...]\n");
    return 2;
  }
  // Orphans are re-parented to us even when we are not PID 1 (tini -s): we reap them either way.
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

  // Blocked before the fork so that none is lost in between; the child unblocks before exec.
  sigset_t wanted, old_mask;
  sigemptyset(&wanted);
  for (int sig : kForwarded) sigaddset(&wanted, sig);
  sigaddset(&wanted, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &wanted, &old_mask) < 0) {
    put("forker-init: sigprocmask: ");
    put(strerror(errno));
    put("\n");
    return 1;
  }

  pid_t child = fork();
  if (child < 0) {
    put("forker-init: fork: ");
    put(strerror(errno));
    put("\n");
    return 1;
  }
  if (child == 0) exec_child(argv + 1, old_mask);

  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&wanted, &info);
    if (sig < 0) continue;  // EINTR (a stop/continue of ourselves)
    if (sig != SIGCHLD) {
      kill(child, sig);  // ESRCH: it has just exited; the SIGCHLD is on its way
      continue;
    }
    int status = 0;
    // Signals coalesce: one SIGCHLD may stand for several children, so reap them all.
    if (reap(child, &status)) return exit_code(status);
  }
}
