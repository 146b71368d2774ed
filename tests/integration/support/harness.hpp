// Integration test support: a bundle in a temp dir whose rootfs holds the static probe (and
// busybox when the host has it), a runner for forker-oci, and a leftover check.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace forker::test {

struct RunResult {
  int status = -1;  // exit code, 128+N for a signal, -1 when it timed out
  std::string out;
  std::string err;
};

// Runs forker-oci ARGS (with --root ROOT prepended when root is not empty), capturing output.
RunResult run_oci(const std::vector<std::string>& args, const std::string& root,
                  int timeout_s = 30, const std::string& stdin_text = "");
// Runs any program the same way.
RunResult run_cmd(const std::vector<std::string>& argv, int timeout_s = 30,
                  const std::string& stdin_text = "");

bool is_root();
bool have_busybox();
std::string read_text(const std::string& path);
void write_text(const std::string& path, const std::string& text);

// A bundle: DIR/config.json and DIR/rootfs with /probe, /bin/busybox (+ sh), /etc/passwd.
class Bundle {
 public:
  explicit Bundle(const std::string& test_name);
  ~Bundle();
  Bundle(const Bundle&) = delete;
  Bundle& operator=(const Bundle&) = delete;

  const std::string& dir() const { return dir_; }
  std::string rootfs() const { return dir_ + "/rootfs"; }
  const std::string& root() const { return root_; }  // --root for this test
  std::string id(const std::string& suffix = "") const { return id_ + suffix; }
  nlohmann::json& config() { return config_; }
  // Sets process.args; "probe" as the first word means /probe.
  void args(const std::vector<std::string>& argv);
  void save() const;

  // forker-oci run ID with the saved config.
  RunResult run(const std::vector<std::string>& extra = {}, int timeout_s = 30);
  RunResult oci(const std::vector<std::string>& args, int timeout_s = 30) const {
    return run_oci(args, root_, timeout_s);
  }

 private:
  std::string dir_;
  std::string root_;
  std::string id_;
  nlohmann::json config_;
};

// A fixture for tests that run one bundle's containers: root required, the bundle made on first
// use, and after the test (passed or not) the bundle's containers are force-deleted and nothing
// may be left: no mount naming the bundle, no cgroup named after its id, no state entry.
class ContainerTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  Bundle& bundle();
  std::unique_ptr<Bundle> bundle_;
};

// Everything this process's tests could leave on the host: mounts naming PATH_PART, cgroup
// directories named NAME_PART, and entries under ROOT. Empty when clean.
std::vector<std::string> leftovers(const std::string& path_part, const std::string& name_part,
                                   const std::string& root);

// `forker network rm` of every network in the store at STORAGE_ROOT (forker0 included), so
// that no bridge outlives a test's store; the error lines of any that failed.
std::vector<std::string> remove_forker_networks(const std::string& storage_root);

// Every test's `forker` runs put the default network on this subnet (FORKER_DEFAULT_SUBNET,
// set for the whole test binary), which no host here uses.
inline constexpr const char* kTestDefaultSubnet = "10.213.7.0/24";

// Skips the test when not root.
#define REQUIRE_ROOT()                                         \
  do {                                                         \
    if (!::forker::test::is_root()) GTEST_SKIP() << "needs root"; \
  } while (0)

}  // namespace forker::test
