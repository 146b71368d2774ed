#include "runtime/hooks.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace forker::runtime {
namespace {

namespace fs = std::filesystem;

class HookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/forker-hook-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  static std::string slurp(const std::string& file) {
    std::ifstream in(file);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  static oci::Hook sh(const std::string& script, std::vector<std::string> extra = {}) {
    oci::Hook h;
    h.path = "/bin/sh";
    h.args = {"sh", "-c", script};
    for (auto& e : extra) h.args.push_back(std::move(e));
    return h;
  }

  std::string dir_;
};

const std::string kState =
    R"({"ociVersion":"1.2.0","id":"c1","status":"creating","pid":42,"bundle":"/b"})";

TEST_F(HookTest, StateJsonArrivesOnStdinExactly) {
  auto st = run_hook(sh("cat > " + path("state")), kState);
  ASSERT_TRUE(st.has_value()) << st.error().message();
  EXPECT_EQ(slurp(path("state")), kState);
}

TEST_F(HookTest, LargeStateJsonIsWrittenWhileTheHookReads) {
  std::string big(1 << 20, 'x');  // far more than a pipe holds
  auto st = run_hook(sh("cat > " + path("state")), big);
  ASSERT_TRUE(st.has_value()) << st.error().message();
  EXPECT_EQ(slurp(path("state")).size(), big.size());
}

TEST_F(HookTest, HookThatIgnoresStdinIsFine) {
  // The hook exits without reading: our writes see EPIPE, which must not kill us nor fail.
  std::string big(1 << 20, 'x');
  auto st = run_hook(sh("exit 0"), big);
  EXPECT_TRUE(st.has_value()) << st.error().message();
}

TEST_F(HookTest, EnvIsExactlyTheHooksEnv) {
  auto hook = sh("env > " + path("env"));
  hook.env = {"FOO=bar", "BAZ=with space"};
  auto st = run_hook(hook, kState);
  ASSERT_TRUE(st.has_value()) << st.error().message();
  std::vector<std::string> lines;
  std::istringstream in(slurp(path("env")));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("PWD=", 0) == 0) continue;  // dash sets it itself
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{"BAZ=with space", "FOO=bar"}));
}

TEST_F(HookTest, EmptyEnvMeansNoVariables) {
  auto st = run_hook(sh("env > " + path("env")), kState);
  ASSERT_TRUE(st.has_value()) << st.error().message();
  EXPECT_EQ(slurp(path("env")).find("PATH="), std::string::npos);
  EXPECT_EQ(slurp(path("env")).find("HOME="), std::string::npos);
}

TEST_F(HookTest, ArgsArePassed) {
  auto st = run_hook(sh("echo \"$0 $1\" > " + path("args"), {"zero", "one two"}), kState);
  ASSERT_TRUE(st.has_value()) << st.error().message();
  EXPECT_EQ(slurp(path("args")), "zero one two\n");
}

TEST_F(HookTest, ArgsZeroIsArgvZero) {
  oci::Hook hook;
  hook.path = "/bin/sh";
  // Without a command_name operand, sh -c sets $0 from its argv[0].
  hook.args = {"my-hook-name", "-c", "echo \"$0\" > " + path("argv0")};
  auto st = run_hook(hook, kState);
  ASSERT_TRUE(st.has_value()) << st.error().message();
  EXPECT_EQ(slurp(path("argv0")), "my-hook-name\n");
}

TEST_F(HookTest, EmptyArgsRunsPath) {
  oci::Hook hook;
  hook.path = "/bin/true";
  auto st = run_hook(hook, kState);
  EXPECT_TRUE(st.has_value()) << st.error().message();
}

TEST_F(HookTest, NonZeroExitNamesHookStatusAndLastStderrLine) {
  auto st = run_hook(sh("echo first >&2; echo 'it broke' >&2; exit 3"), kState);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().message(), "hook /bin/sh: exit status 3: it broke");
}

TEST_F(HookTest, NonZeroExitFallsBackToStdout) {
  auto st = run_hook(sh("echo 'on stdout'; exit 1"), kState);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().message(), "hook /bin/sh: exit status 1: on stdout");
}

TEST_F(HookTest, KilledBySignal) {
  auto st = run_hook(sh("kill -9 $$"), kState);
  ASSERT_FALSE(st.has_value());
  EXPECT_NE(st.error().message().find("hook /bin/sh: killed by signal 9"), std::string::npos)
      << st.error().message();
}

TEST_F(HookTest, TimeoutKillsTheHook) {
  auto hook = sh("sleep 5");
  hook.timeout = 1;
  auto start = std::chrono::steady_clock::now();
  auto st = run_hook(hook, kState);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().message(), "hook /bin/sh timed out after 1 s");
  // The whole process group goes, so the sleep holding our pipes does not keep us waiting.
  EXPECT_LT(elapsed, std::chrono::milliseconds(4500));
}

TEST_F(HookTest, HookThatFinishesInTimeIsFine) {
  auto hook = sh("exit 0");
  hook.timeout = 5;
  auto st = run_hook(hook, kState);
  EXPECT_TRUE(st.has_value()) << st.error().message();
}

TEST_F(HookTest, BackgroundChildHoldingPipesDoesNotBlock) {
  // A hook may start a daemon; it inherits stdout/stderr, but the hook's exit is what counts.
  auto start = std::chrono::steady_clock::now();
  auto st = run_hook(sh("sleep 5 & exit 0"), kState);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(st.has_value()) << st.error().message();
  EXPECT_LT(elapsed, std::chrono::milliseconds(4000));
}

TEST_F(HookTest, MissingPathIsAnExecError) {
  oci::Hook hook;
  hook.path = "/nonexistent/forker-hook";
  auto st = run_hook(hook, kState);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().err, ENOENT);
  EXPECT_EQ(st.error().message(), "hook /nonexistent/forker-hook: exec: No such file or directory");
}

TEST_F(HookTest, RuntimeFdsDoNotLeakIntoTheHook) {
  int leaked = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  ASSERT_GE(leaked, 0);
  auto st = run_hook(sh("test ! -e /proc/self/fd/" + std::to_string(leaked)), kState);
  ::close(leaked);
  EXPECT_TRUE(st.has_value()) << st.error().message();
}

TEST_F(HookTest, RunHooksRunsInOrderAndStopsAtFirstFailure) {
  std::vector<oci::Hook> hooks = {sh("echo 1 >> " + path("log")), sh("echo 2 >> " + path("log")),
                                  sh("exit 1"), sh("echo 4 >> " + path("log"))};
  auto st = run_hooks("createRuntime", hooks, kState);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().message(), "createRuntime hook /bin/sh: exit status 1");
  EXPECT_EQ(slurp(path("log")), "1\n2\n");
}

TEST_F(HookTest, RunHooksAllRunsEveryHookAndReportsEachFailure) {
  std::vector<oci::Hook> hooks = {sh("echo 1 >> " + path("log")), sh("exit 3"),
                                  sh("echo 3 >> " + path("log")), sh("exit 4")};
  auto failures = run_hooks_all("poststart", hooks, kState);
  ASSERT_EQ(failures.size(), 2u);
  EXPECT_EQ(failures[0].message(), "poststart hook /bin/sh: exit status 3");
  EXPECT_EQ(failures[1].message(), "poststart hook /bin/sh: exit status 4");
  EXPECT_EQ(slurp(path("log")), "1\n3\n");
}

TEST_F(HookTest, RunHooksWithNoHooksIsOk) {
  EXPECT_TRUE(run_hooks("poststop", {}, kState).has_value());
}

TEST_F(HookTest, RunHooksNamesThePhaseOnExecError) {
  oci::Hook hook;
  hook.path = "/nonexistent/forker-hook";
  auto st = run_hooks("prestart", {hook}, kState);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().message(),
            "prestart hook /nonexistent/forker-hook: exec: No such file or directory");
}

}  // namespace
}  // namespace forker::runtime
