// A fixture for tests of `forker` commands against a private --storage-root: root and the
// host's static busybox (the built-in image) required; every container a test made is removed
// after it, and nothing may be left (mounts, cgroups, runtime state, records).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "image/layer_unpack.hpp"
#include "integration/support/harness.hpp"

namespace forker::test {

// The non-empty lines of S.
inline std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

class ForkerCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_ROOT();
    if (!have_busybox()) GTEST_SKIP() << "needs a static /bin/busybox";
    char tmpl[] = "/tmp/forker-cli-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    root_ = dir_ + "/store";
    // A detached container's monitor is our orphan-to-be: reap it here.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  }

  void TearDown() override {
    if (dir_.empty()) return;
    for (const auto& id : lines(forker({"ps", "-aq", "--no-trunc"}).out)) seen_.insert(id);
    for (const auto& id : seen_) forker({"rm", "-f", id});
    EXPECT_EQ(forker({"ps", "-aq"}).out, "") << "containers left in ps -a";
    // Networks (forker0 included) and their bridges go with the test's store.
    for (const auto& e : remove_forker_networks(root_)) ADD_FAILURE() << e;
    for (const auto& link : forker_links())
      ADD_FAILURE() << "network link left: " << link;
    EXPECT_NE(run_cmd({"/usr/sbin/nft", "list", "table", "inet", "forker"}).status, 0)
        << "nftables table inet forker left";
    for (const auto& id : seen_) {
      auto left = leftovers(dir_, id, "");
      EXPECT_TRUE(left.empty()) << "left behind by " << id << ": " << left.front();
      struct stat st {};
      EXPECT_NE(::stat(("/run/forker/" + id).c_str(), &st), 0) << "runtime state of " << id;
    }
    reap();
    (void)image::remove_tree(dir_);
  }

  // Links forker makes on the host: bridges forker0 and fk-*, container veths fk<id>.
  static std::vector<std::string> forker_links() {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/sys/class/net", ec)) {
      std::string n = e.path().filename();
      if (n == "forker0" || n.starts_with("fk")) out.push_back(n);
    }
    return out;
  }

  static void reap() {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
  }

  RunResult forker(const std::vector<std::string>& args, int timeout_s = 60,
                   const std::string& stdin_text = "") {
    std::vector<std::string> argv{FORKER_CLI_BIN, "--storage-root", root_};
    argv.insert(argv.end(), args.begin(), args.end());
    RunResult r = run_cmd(argv, timeout_s, stdin_text);
    reap();
    return r;
  }

  // `forker run -d ARGS`: the id it printed, remembered for the leftover check.
  std::string run_detached(std::vector<std::string> args) {
    args.insert(args.begin(), {"run", "-d"});
    RunResult r = forker(args);
    EXPECT_EQ(r.status, 0) << r.err;
    std::string id = r.out.substr(0, r.out.find('\n'));
    EXPECT_EQ(id.size(), 64u) << r.out << r.err;
    seen_.insert(id);
    return id;
  }

  std::string dir_;
  std::string root_;
  std::set<std::string> seen_;
};

}  // namespace forker::test
