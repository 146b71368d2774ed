// Shared fixture of the config_*_test.cpp files: every test runs a real container built from a
// config and checks from inside that the config was applied.
#pragma once

#include <gmock/gmock.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "integration/support/harness.hpp"

namespace forker::test {

class ConfigBase : public ::testing::Test {
 protected:
  void SetUp() override { REQUIRE_ROOT(); }
  void TearDown() override {
    // Containers go first (their cgroups hold the parents a test made), then the extra host
    // state a test made (mounts, cgroups), even on failure; then the bundle.
    if (bundle_ && std::filesystem::exists(bundle_->root())) {
      for (const auto& e : std::filesystem::directory_iterator(bundle_->root()))
        bundle_->oci({"delete", "-f", e.path().filename().string()});
    }
    for (auto it = cleanups_.rbegin(); it != cleanups_.rend(); ++it) (*it)();
    cleanups_.clear();
    if (!bundle_) return;
    std::string id = bundle_->id();
    std::string root = bundle_->root();
    std::string dir = bundle_->dir();
    bundle_.reset();
    EXPECT_THAT(leftovers(dir, id, root), ::testing::IsEmpty());
  }
  Bundle& bundle() {
    if (!bundle_)
      bundle_ = std::make_unique<Bundle>(
          ::testing::UnitTest::GetInstance()->current_test_info()->name());
    return *bundle_;
  }
  nlohmann::json& config() { return bundle().config(); }
  // Runs the probe (or any argv) in a container made from the current config.
  RunResult run(const std::vector<std::string>& argv) {
    bundle().args(argv);
    return bundle().run();
  }
  // Runs a cleanup in TearDown, after the containers and before the bundle are deleted (in
  // reverse order of registration).
  void on_teardown(std::function<void()> f) { cleanups_.push_back(std::move(f)); }

  // Starts container ID (a suffix of the bundle's id) detached with the current config, running
  // ARGV; returns its pid, or -1 (with a test failure) when it did not start.
  int run_detached(const std::string& suffix, const std::vector<std::string>& argv) {
    auto& b = bundle();
    b.args(argv);
    b.save();
    auto r = b.oci({"run", "-d", "--bundle", b.dir(), b.id(suffix)});
    EXPECT_EQ(r.status, 0) << r.err;
    if (r.status != 0) return -1;
    return state(suffix).value("pid", -1);
  }
  nlohmann::json state(const std::string& suffix = "") {
    auto r = bundle().oci({"state", bundle().id(suffix)});
    if (r.status != 0) return nlohmann::json::object();
    return nlohmann::json::parse(r.out, nullptr, false);
  }

  // Adds a mount to the config.
  void add_mount(const std::string& dest, const std::string& type, const std::string& source,
                 const std::vector<std::string>& options) {
    nlohmann::json m = {{"destination", dest}, {"type", type}, {"source", source}};
    m["options"] = options;
    config()["mounts"].push_back(m);
  }
  void remove_namespace(const std::string& type) {
    auto& ns = config()["linux"]["namespaces"];
    auto kept = nlohmann::json::array();
    for (auto& n : ns)
      if (n["type"] != type) kept.push_back(n);
    ns = kept;
  }
  void add_namespace(const std::string& type, const std::string& path = "") {
    remove_namespace(type);
    nlohmann::json n = {{"type", type}};
    if (!path.empty()) n["path"] = path;
    config()["linux"]["namespaces"].push_back(n);
  }

  // The line of a mountinfo text whose mount point (5th field) is MOUNT_POINT, or "".
  static std::string mountinfo_line(const std::string& mountinfo, const std::string& mount_point) {
    std::istringstream in(mountinfo);
    std::string found;
    for (std::string line; std::getline(in, line);) {
      std::istringstream f(line);
      std::string id, parent, devno, root, mp;
      f >> id >> parent >> devno >> root >> mp;
      if (mp == mount_point) found = line;  // the last one is the visible one
    }
    return found;
  }
  // The value of FIELD ("CapEff") in a /proc/PID/status text, or "".
  static std::string status_field(const std::string& status, const std::string& field) {
    std::istringstream in(status);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(field + ":", 0) != 0) continue;
      std::string v = line.substr(field.size() + 1);
      size_t b = v.find_first_not_of(" \t");
      return b == std::string::npos ? "" : v.substr(b);
    }
    return "";
  }
  static std::string host_readlink(const std::string& path) {
    char buf[4096];
    ssize_t n = readlink(path.c_str(), buf, sizeof buf - 1);
    return n < 0 ? "" : std::string(buf, static_cast<size_t>(n));
  }
  static std::string err_text(int e) { return strerror(e); }
  // Whether this test process has capability number CAP in its effective set.
  static bool have_cap(int cap) {
    std::string eff = status_field(read_text("/proc/self/status"), "CapEff");
    return !eff.empty() && ((std::stoull(eff, nullptr, 16) >> cap) & 1) != 0;
  }

  std::unique_ptr<Bundle> bundle_;
  std::vector<std::function<void()>> cleanups_;
};

}  // namespace forker::test
