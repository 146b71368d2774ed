// `forker completion bash|zsh`: the script is loaded into a real shell and its completion
// function is called with a line's words, as the shell would on <TAB>. Subcommands and flags
// come from the CLI11 tree; container and image names from the same forker binary, with the
// line's --storage-root (root and busybox needed for those).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "integration/forker_cli_fixture.hpp"

namespace forker::test {
namespace {

bool have_zsh() { return ::access("/usr/bin/zsh", X_OK) == 0 || ::access("/bin/zsh", X_OK) == 0; }
std::string zsh_path() { return ::access("/usr/bin/zsh", X_OK) == 0 ? "/usr/bin/zsh" : "/bin/zsh"; }

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// COMPREPLY for WORDS (the last is the word under the cursor) after sourcing the bash script.
std::vector<std::string> bash_complete(std::vector<std::string> words) {
  std::string script =
      "source <(\"$0\" completion bash) || exit 3\n"
      "COMP_WORDS=(\"$@\"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=()\n"
      "_forker\n"
      "printf '%s\\n' \"${COMPREPLY[@]}\"\n";
  std::vector<std::string> argv{"/bin/bash", "-c", script, FORKER_CLI_BIN};
  argv.insert(argv.end(), words.begin(), words.end());
  RunResult r = run_cmd(argv, 30);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  return lines(r.out);
}

// What the zsh script hands to compadd / _describe (stubbed: they print the candidates; zsh
// itself filters them by the prefix) or "<files>" when it leaves the word to _files.
std::vector<std::string> zsh_complete(std::vector<std::string> words) {
  std::string script =
      "compdef() { :; }\n"
      "compadd() { [[ $1 == -- ]] && shift; printf '%s\\n' \"$@\"; }\n"
      "_describe() { local -a arr; arr=(\"${(@P)${@[-1]}}\"); printf '%s\\n' \"${arr[@]%%:*}\"; }\n"
      "_files() { echo '<files>'; }\n"
      "source <(\"$0\" completion zsh) || exit 3\n"
      "words=(\"$@\"); CURRENT=$#\n"
      "_forker\n";
  std::vector<std::string> argv{zsh_path(), "-f", "-c", script, FORKER_CLI_BIN};
  argv.insert(argv.end(), words.begin(), words.end());
  RunResult r = run_cmd(argv, 30);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  return lines(r.out);
}

TEST(ForkerCompletion, BashCommandsAndFlags) {
  RunResult reg =
      run_cmd({"/bin/bash", "-c", "source <(\"$0\" completion bash) && complete -p forker",
               FORKER_CLI_BIN});
  EXPECT_EQ(reg.status, 0) << reg.err;
  EXPECT_EQ(reg.out, "complete -o default -F _forker forker\n");

  EXPECT_EQ(bash_complete({"forker", "ru"}), (std::vector<std::string>{"run"}));
  auto all = bash_complete({"forker", ""});
  for (const char* c : {"run", "ps", "stop", "exec", "images", "pull", "stats", "completion"})
    EXPECT_TRUE(contains(all, c)) << c;
  auto memory = bash_complete({"forker", "run", "--me"});
  EXPECT_TRUE(contains(memory, "--memory"));
  EXPECT_TRUE(contains(memory, "--memory-swap"));
  EXPECT_FALSE(contains(memory, "--name"));
  // Flags of the command on the line only, after global options and other flags.
  EXPECT_EQ(bash_complete({"forker", "--storage-root", "/x", "ps", "--no"}),
            (std::vector<std::string>{"--no-trunc"}));
  EXPECT_EQ(bash_complete({"forker", "run", "-d", "--rm", "--de"}),
            (std::vector<std::string>{"--detach"}));
  EXPECT_EQ(bash_complete({"forker", "image", ""}),
            (std::vector<std::string>{"inspect", "ls", "rm"}));
  EXPECT_EQ(bash_complete({"forker", "completion", "z"}), (std::vector<std::string>{"zsh"}));
  // An option's value and the container's command are left to the shell (files).
  EXPECT_TRUE(bash_complete({"forker", "run", "-m", ""}).empty());
  EXPECT_TRUE(bash_complete({"forker", "run", "busybox", "--me"}).empty());
  EXPECT_TRUE(bash_complete({"forker", "exec", "-it", "c1", "s"}).empty());
}

TEST(ForkerCompletion, ZshScript) {
  if (!have_zsh()) GTEST_SKIP() << "zsh is not installed";
  RunResult syntax = run_cmd({zsh_path(), "-f", "-c",
                              "\"$0\" completion zsh > /tmp/forker-completion-test.zsh && "
                              "zsh -n /tmp/forker-completion-test.zsh; s=$?; "
                              "rm -f /tmp/forker-completion-test.zsh; exit $s",
                              FORKER_CLI_BIN});
  EXPECT_EQ(syntax.status, 0) << syntax.err;
  EXPECT_TRUE(contains(zsh_complete({"forker", "ru"}), "run"));
  EXPECT_EQ(zsh_complete({"forker", "image", ""}),
            (std::vector<std::string>{"inspect", "ls", "rm"}));
  auto flags = zsh_complete({"forker", "run", "--me"});
  EXPECT_TRUE(contains(flags, "--memory"));
  EXPECT_TRUE(contains(flags, "--detach"));
  EXPECT_EQ(zsh_complete({"forker", "run", "-m", ""}), (std::vector<std::string>{"<files>"}));
  EXPECT_EQ(zsh_complete({"forker", "run", "busybox", ""}), (std::vector<std::string>{"<files>"}));
}

using ForkerCompletionNames = ForkerCliTest;

TEST_F(ForkerCompletionNames, ContainersAndImagesFromTheStore) {
  run_detached({"--name", "compl-web", "busybox", "sleep", "60"});
  const std::vector<std::string> line{FORKER_CLI_BIN, "--storage-root", root_};
  auto with = [&](std::vector<std::string> rest) {
    std::vector<std::string> words = line;
    words.insert(words.end(), rest.begin(), rest.end());
    return words;
  };
  EXPECT_EQ(bash_complete(with({"stop", "compl"})), (std::vector<std::string>{"compl-web"}));
  EXPECT_EQ(bash_complete(with({"logs", "-f", ""})), (std::vector<std::string>{"compl-web"}));
  // Repeated arguments: a second name too.
  EXPECT_EQ(bash_complete(with({"rm", "-f", "compl-web", "c"})),
            (std::vector<std::string>{"compl-web"}));
  EXPECT_EQ(bash_complete(with({"exec", ""})), (std::vector<std::string>{"compl-web"}));
  // --storage-root=DIR works too; without it, the default store has no such container.
  EXPECT_EQ(bash_complete({FORKER_CLI_BIN, "--storage-root=" + root_, "top", "compl"}),
            (std::vector<std::string>{"compl-web"}));
  // Images: run's first word, rmi's arguments.
  EXPECT_EQ(bash_complete(with({"run", "-m", "64m", "bu"})),
            (std::vector<std::string>{"busybox:latest"}));
  EXPECT_EQ(bash_complete(with({"rmi", ""})), (std::vector<std::string>{"busybox:latest"}));
  if (have_zsh()) {
    EXPECT_EQ(zsh_complete(with({"stop", ""})), (std::vector<std::string>{"compl-web"}));
    EXPECT_EQ(zsh_complete(with({"run", ""})), (std::vector<std::string>{"busybox:latest"}));
  }
}

}  // namespace
}  // namespace forker::test
