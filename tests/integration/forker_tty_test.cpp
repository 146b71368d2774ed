// `forker run -it`, `exec -it`, `run -dt` and signal forwarding, driven through a real terminal:
// a tmux server on a private socket whose pane runs a shell that types forker commands, read
// back with capture-pane. Checked from inside the containers: the pty, its size (and a resize
// reaching it as SIGWINCH), TERM, Ctrl-C reaching the container's foreground process, the exit
// code, and the outer terminal back in cooked mode afterwards.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "core/unique_fd.hpp"
#include "image/layer_unpack.hpp"
#include "integration/forker_cli_fixture.hpp"
#include "integration/support/harness.hpp"

namespace forker::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kPollMs = 50;
constexpr int kTimeoutMs = 20000;

// The program's path on PATH, or empty.
std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    std::string candidate = dir + "/" + name;
    if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string part; std::getline(in, part, sep);) out.push_back(part);
  return out;
}

std::string rtrim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

// The rest of the line after the last MARKER in TEXT.
std::string after_marker(const std::string& text, const std::string& marker) {
  auto at = text.rfind(marker);
  if (at == std::string::npos) return "";
  auto start = at + marker.size();
  return rtrim(text.substr(start, text.find('\n', start) - start));
}

// Pids whose command line is exactly ARGV.
std::vector<pid_t> pids_running(const std::vector<std::string>& argv) {
  std::string want;
  for (const auto& a : argv) want += a + '\0';
  std::vector<pid_t> out;
  DIR* proc = ::opendir("/proc");
  if (!proc) return out;
  while (dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    if (read_text(std::string("/proc/") + e->d_name + "/cmdline") == want)
      out.push_back(std::atoi(e->d_name));
  }
  ::closedir(proc);
  return out;
}

// Pids whose command line holds every one of PARTS.
std::vector<pid_t> pids_matching(const std::vector<std::string>& parts) {
  std::vector<pid_t> out;
  DIR* proc = ::opendir("/proc");
  if (!proc) return out;
  while (dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string cmdline = read_text(std::string("/proc/") + e->d_name + "/cmdline");
    bool all = !cmdline.empty();
    for (const auto& p : parts) all = all && cmdline.find(p) != std::string::npos;
    if (all) out.push_back(std::atoi(e->d_name));
  }
  ::closedir(proc);
  return out;
}

template <typename F>
bool poll_until(F done, int timeout_ms = kTimeoutMs) {
  auto deadline = Clock::now() + milliseconds(timeout_ms);
  for (;;) {
    if (done()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(kPollMs));
  }
}

// A tmux server on a private socket with one session running a plain shell. The destructor
// kills the server, so a failed assertion does not leave it (or the pane's forker) behind.
class Tmux {
 public:
  Tmux(std::string tmux, std::string socket) : tmux_(std::move(tmux)), socket_(std::move(socket)) {}
  ~Tmux() { (void)run({"kill-server"}); }
  Tmux(const Tmux&) = delete;
  Tmux& operator=(const Tmux&) = delete;

  RunResult run(std::vector<std::string> args) const {
    args.insert(args.begin(), {tmux_, "-S", socket_, "-f", "/dev/null"});
    return run_cmd(args, 10);
  }

  // A COLS x ROWS window whose shell prompts "outer$ ".
  bool start(int cols, int rows) {
    RunResult r = run({"new-session", "-d", "-s", "tty", "-x", std::to_string(cols), "-y",
                       std::to_string(rows), "env PS1='outer$ ' /bin/sh"});
    return r.status == 0 && wait_for("outer$ ");
  }

  // Types TEXT literally, then Enter.
  void type(const std::string& text) const {
    (void)run({"send-keys", "-t", "tty", "-l", text});
    (void)run({"send-keys", "-t", "tty", "Enter"});
  }
  void key(const std::string& name) const { (void)run({"send-keys", "-t", "tty", name}); }

  void resize(int cols, int rows) const {
    (void)run(
        {"resize-window", "-t", "tty", "-x", std::to_string(cols), "-y", std::to_string(rows)});
  }

  // The pane with its history, wrapped lines joined.
  std::string screen() const {
    return run({"capture-pane", "-p", "-J", "-S", "-", "-t", "tty"}).out;
  }

  bool wait_for(const std::string& text, int timeout_ms = kTimeoutMs) const {
    return poll_until([&] { return screen().find(text) != std::string::npos; }, timeout_ms);
  }

  // Types `echo "MARKER:$(COMMAND)"` and returns what followed MARKER: the marker's colon is
  // only in the output, as the typed line shows "$(", so the echo of the command never matches.
  std::optional<std::string> ask(const std::string& marker, const std::string& shell_words) const {
    type("echo \"" + marker + ":" + shell_words + "\"");
    std::string needle = marker + ":";
    std::string text;
    bool seen = poll_until([&] {
      text = screen();
      // The typed line shows MARKER:$(... or MARKER:$VAR; the output never starts with "$".
      for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
        if (text.compare(at + needle.size(), 1, "$") != 0) return true;
      return false;
    });
    if (!seen) return std::nullopt;
    std::string value;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
      if (text.compare(at + needle.size(), 1, "$") != 0)
        value = after_marker(text.substr(at), needle);
    return value;
  }

 private:
  std::string tmux_, socket_;
};

class ForkerTty : public ForkerCliTest {
 protected:
  void SetUp() override {
    ForkerCliTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    tmux_ = find_program("tmux");
    if (tmux_.empty()) GTEST_SKIP() << "needs tmux (scripts/setup.sh installs it)";
  }

  void TearDown() override {
    term_.reset();  // the tmux server and whatever its pane still runs, before the containers
    ForkerCliTest::TearDown();
  }

  // The forker command line as the pane's shell types it.
  std::string cli() const { return std::string(FORKER_CLI_BIN) + " --storage-root " + root_; }

  Tmux& terminal(int cols = 120, int rows = 40) {
    term_ = std::make_unique<Tmux>(tmux_, dir_ + "/tmux.sock");
    EXPECT_TRUE(term_->start(cols, rows)) << term_->screen();
    return *term_;
  }

  // The outer shell's terminal settings (stty -g), asked in the pane.
  std::string outer_modes(Tmux& t, const std::string& marker) {
    return t.ask(marker, "$(stty -g)").value_or("(no answer)");
  }

  // The outer shell's terminal is cooked: a line is read whole, with echo (what raw mode clears).
  void expect_cooked(Tmux& t) {
    auto flags = t.ask("COOKED",
                       "$(stty -a | tr ' ;' '\\n\\n' | grep -x -e -icanon -e icanon "
                       "-e -echo -e echo | tr '\\n' ' ')");
    ASSERT_TRUE(flags.has_value()) << "the outer shell does not answer:\n" << t.screen();
    EXPECT_EQ(*flags, "icanon echo") << t.screen();
  }

  // Types `sleep N` in the container's shell, Ctrl-C once it runs; true when the prompt comes
  // back (a following echo answers) within 5 s and the sleep is gone.
  void expect_ctrl_c_interrupts(Tmux& t, const std::string& marker) {
    std::string seconds = std::to_string(5000 + ::getpid() % 4000);
    t.type("sleep " + seconds);
    ASSERT_TRUE(poll_until([&] {
      return !pids_running({"sleep", seconds}).empty();
    })) << t.screen();
    auto start = Clock::now();
    t.key("C-c");
    auto answer = t.ask(marker, "$((40 + 2))");
    ASSERT_TRUE(answer.has_value()) << "Ctrl-C did not interrupt sleep:\n" << t.screen();
    EXPECT_EQ(*answer, "42");
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
    EXPECT_TRUE(pids_running({"sleep", seconds}).empty());
  }

  // Polls `stty size` in the container's shell until it reads WANT (a resize travels as
  // SIGWINCH to forker, then TIOCSWINSZ on the container's pty; typed keys may overtake it).
  bool size_becomes(Tmux& t, const std::string& marker, const std::string& want) {
    for (int i = 0; i < 20; ++i) {
      if (t.ask(marker + std::to_string(i), "$(stty size)").value_or("") == want) return true;
      std::this_thread::sleep_for(milliseconds(kPollMs));
    }
    return false;
  }

  std::string tmux_;
  std::unique_ptr<Tmux> term_;
};

// ---- run -it: a real pty, its size and resizes, TERM, Ctrl-C, exit code, cooked mode after ----
TEST_F(ForkerTty, RunInteractiveTerminal) {
  Tmux& t = terminal(120, 40);
  std::string modes_before = outer_modes(t, "MODES0");
  t.type(cli() + " run -it --rm busybox sh; echo \"EXIT=$?\"");
  ASSERT_TRUE(t.wait_for("built-in shell")) << t.screen();

  auto seen = t.ask("R1", "$(tty)|$(stty size)|$TERM|$(hostname)|$$");
  ASSERT_TRUE(seen.has_value()) << t.screen();
  auto fields = split(*seen, '|');
  ASSERT_EQ(fields.size(), 5u) << *seen;
  EXPECT_TRUE(fields[0].starts_with("/dev/pts/")) << fields[0];
  EXPECT_EQ(fields[1], "40 120");  // rows cols, as tmux made the window
  EXPECT_EQ(fields[2], "xterm");
  EXPECT_EQ(fields[4], "1");

  t.resize(100, 30);
  EXPECT_TRUE(size_becomes(t, "R2-", "30 100")) << t.screen();

  expect_ctrl_c_interrupts(t, "R3");

  t.type("exit 3");
  ASSERT_TRUE(t.wait_for("EXIT=3")) << t.screen();
  expect_cooked(t);
  EXPECT_EQ(outer_modes(t, "MODES1"), modes_before);
}

// ---- exec -it into a detached container ----
TEST_F(ForkerTty, ExecInteractiveTerminal) {
  RunResult r = forker({"run", "-d", "--name", "t1", "busybox", "sleep", "1000"});
  ASSERT_EQ(r.status, 0) << r.err;
  seen_.insert(r.out.substr(0, r.out.find('\n')));

  Tmux& t = terminal(120, 40);
  std::string modes_before = outer_modes(t, "MODES0");
  t.type(cli() + " exec -it t1 sh; echo \"EXIT=$?\"");
  ASSERT_TRUE(t.wait_for("built-in shell")) << t.screen();

  auto seen = t.ask("E1", "$(tty)|$(stty size)|$$|$TERM|$(cat /proc/1/comm)");
  ASSERT_TRUE(seen.has_value()) << t.screen();
  auto fields = split(*seen, '|');
  ASSERT_EQ(fields.size(), 5u) << *seen;
  EXPECT_TRUE(fields[0].starts_with("/dev/pts/")) << fields[0];
  EXPECT_EQ(fields[1], "40 120");
  EXPECT_NE(fields[2], "1");      // the container's PID 1 is still sleep
  EXPECT_EQ(fields[3], "xterm");  // docker's exec -t sets TERM when the container has none
  EXPECT_EQ(fields[4], "sleep");
  // ps inside shows the exec'd shell under its own pid.
  auto ps = t.ask("E2", "$(ps | awk -v me=$$ '$1 == me { print $NF }')");
  ASSERT_TRUE(ps.has_value()) << t.screen();
  EXPECT_EQ(*ps, "sh") << t.screen();

  t.resize(100, 30);
  EXPECT_TRUE(size_becomes(t, "E3-", "30 100")) << t.screen();

  expect_ctrl_c_interrupts(t, "E4");

  t.type("exit 5");
  ASSERT_TRUE(t.wait_for("EXIT=5")) << t.screen();
  expect_cooked(t);
  EXPECT_EQ(outer_modes(t, "MODES1"), modes_before);
  // The exec'd shell's end is not the container's.
  RunResult ps_after = forker({"ps", "-q"});
  EXPECT_EQ(ps_after.out.size(), 13u) << ps_after.out;
}

// ---- run -dt: the monitor logs what the container wrote to its pty ----
TEST_F(ForkerTty, DetachedTerminalIsLogged) {
  RunResult r = forker(
      {"run", "-dt", "--name", "t2", "busybox", "sh", "-c", "echo hello-tty; tty; sleep 1000"});
  ASSERT_EQ(r.status, 0) << r.err;
  seen_.insert(r.out.substr(0, r.out.find('\n')));
  RunResult logs;
  EXPECT_TRUE(poll_until([&] {
    logs = forker({"logs", "t2"});
    return logs.out.find("/dev/pts/") != std::string::npos;
  })) << logs.out
      << logs.err;
  EXPECT_NE(logs.out.find("hello-tty"), std::string::npos) << logs.out;
  EXPECT_LT(logs.out.find("hello-tty"), logs.out.find("/dev/pts/")) << logs.out;
  EXPECT_EQ(logs.err, "");  // one stream: the pty merges stdout and stderr
}

// Starts ARGV with default dispositions of the signals we send and an empty signal mask
// (a shell's `cmd &` would start it with SIGINT ignored), stdout and stderr to a pipe.
pid_t spawn(const std::vector<std::string>& argv, UniqueFd* output) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::signal(sig, SIG_DFL);
    int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    ::execv(a[0], a.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  output->reset(fds[0]);
  return pid;
}

// Reads FD until TEXT shows up (or the timeout passes); everything read.
std::string read_until(int fd, const std::string& text, int timeout_ms = kTimeoutMs) {
  std::string out;
  auto deadline = Clock::now() + milliseconds(timeout_ms);
  while (out.find(text) == std::string::npos) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// The exit code of PID (128+N for a signal), or -1 after the timeout (then it is killed).
int wait_exit(pid_t pid, int timeout_ms = kTimeoutMs) {
  int status = 0;
  bool done = poll_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, timeout_ms);
  if (!done) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// ---- a foreground run without -t: `kill` of forker reaches the container ----
TEST_F(ForkerTty, ForegroundForwardsSignalsWithoutTerminal) {
  for (const char* sig : {"TERM", "INT"}) {
    SCOPED_TRACE(sig);
    std::string name = std::string("sig-") + sig;
    UniqueFd out;
    pid_t pid = spawn({FORKER_CLI_BIN, "--storage-root", root_, "run", "--rm", "--name", name,
                       "busybox", "sh", "-c",
                       std::string("trap 'echo trapped; exit 7' ") + sig +
                           "; echo \"ready $(hostname)\"; while :; do sleep 0.1; done"},
                      &out);
    ASSERT_GT(pid, 0);
    std::string text = read_until(out.get(), "ready ");
    if (text.find('\n', text.find("ready ")) == std::string::npos)
      text += read_until(out.get(), "\n");
    ASSERT_NE(text.find("ready "), std::string::npos) << text;
    ::kill(pid, std::string(sig) == "TERM" ? SIGTERM : SIGINT);
    EXPECT_EQ(wait_exit(pid), 7);
    text += read_until(out.get(), "trapped", 2000);
    EXPECT_NE(text.find("trapped"), std::string::npos) << text;
  }
}

// ---- run -it: `kill` of forker (not Ctrl-C) also reaches the container, and the terminal
// comes back cooked; without it forker died by SIGTERM, raw mode stayed and the container ran on.
TEST_F(ForkerTty, InteractiveForwardsSignals) {
  Tmux& t = terminal(120, 40);
  t.type(cli() +
         " run -it --rm --name sigtty busybox sh -c "
         "'trap \"echo trapped; exit 9\" TERM; echo \"ready-$((1 + 1)) $(hostname)\"; "
         "while :; do sleep 0.1; done'; echo \"EXIT=$?\"");
  ASSERT_TRUE(t.wait_for("ready-2 ")) << t.screen();
  auto pids = pids_matching({FORKER_CLI_BIN, root_, "sigtty"});
  ASSERT_EQ(pids.size(), 1u) << t.screen();
  ::kill(pids.front(), SIGTERM);
  ASSERT_TRUE(t.wait_for("EXIT=9")) << t.screen();
  EXPECT_NE(t.screen().find("trapped"), std::string::npos);
  expect_cooked(t);
}

// ---- run -t without -i: the container does not get our input (docker's rule) ----
TEST_F(ForkerTty, TerminalWithoutInteractiveTakesNoInput) {
  Tmux& t = terminal(120, 40);
  t.type(cli() +
         " run -t --rm busybox sh -c "
         "'echo \"ready-$((2 + 2)) $(hostname)\"; read -t 2 line; echo \"got=[$line]\"; "
         "stty size'; echo \"EXIT=$?\"");
  ASSERT_TRUE(t.wait_for("ready-4 ")) << t.screen();
  t.type("typed-text");
  ASSERT_TRUE(t.wait_for("EXIT=0")) << t.screen();
  std::string screen = t.screen();
  EXPECT_NE(screen.find("got=[]"), std::string::npos) << screen;
  EXPECT_NE(screen.find("40 120"), std::string::npos) << screen;  // the size all the same
  expect_cooked(t);
}

}  // namespace
}  // namespace forker::test
