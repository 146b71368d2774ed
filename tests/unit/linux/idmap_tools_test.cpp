#include "linux/idmap_tools.hpp"

#include <gtest/gtest.h>

#include "linux/rootless.hpp"

namespace forker::linux {
namespace {

TEST(IdMapTools, MapText) {
  EXPECT_EQ(id_map_text({{0, 1000, 1}, {1, 100000, 65536}}), "0 1000 1\n1 100000 65536\n");
}

TEST(IdMapTools, WriterChoice) {
  const std::vector<oci::IdMapping> own = {{0, 1000, 1}};
  const std::vector<oci::IdMapping> other = {{0, 1001, 1}};
  const std::vector<oci::IdMapping> ranges = {{0, 1000, 1}, {1, 100000, 65536}};
  const std::vector<oci::IdMapping> own_wide = {{0, 1000, 2}};
  EXPECT_EQ(choose_id_map_writer(ranges, true, true, 0, 0), IdMapWriter::kDirect);
  EXPECT_EQ(choose_id_map_writer(own, true, false, 1000, 2000), IdMapWriter::kDirectOwnId);
  EXPECT_EQ(choose_id_map_writer(other, true, false, 1000, 2000), IdMapWriter::kHelper);
  EXPECT_EQ(choose_id_map_writer(ranges, true, false, 1000, 2000), IdMapWriter::kHelper);
  EXPECT_EQ(choose_id_map_writer(own_wide, true, false, 1000, 2000), IdMapWriter::kHelper);
  // gid maps compare with the egid.
  EXPECT_EQ(choose_id_map_writer({{0, 2000, 1}}, false, false, 1000, 2000),
            IdMapWriter::kDirectOwnId);
  EXPECT_EQ(choose_id_map_writer(own, false, false, 1000, 2000), IdMapWriter::kHelper);
}

TEST(Rootless, LimitsThatNeedACgroup) {
  oci::Resources r;
  EXPECT_TRUE(cgroup_limits_set(r).empty());
  // The default spec's "deny everything" device rule needs no cgroup in a user namespace.
  r.devices.push_back(oci::DeviceRule{false, "a", std::nullopt, std::nullopt, "rwm"});
  EXPECT_TRUE(cgroup_limits_set(r).empty());
  r.memory = oci::MemoryResources{};
  r.memory->limit = 1 << 20;
  r.pids_limit = 10;
  r.cpu = oci::CpuResources{};
  r.cpu->cpus = "0-1";
  r.unified["io.weight"] = "100";
  EXPECT_EQ(cgroup_limits_set(r),
            (std::vector<std::string>{"memory.limit", "cpu.cpus", "pids.limit", "unified"}));
  r.devices.push_back(oci::DeviceRule{true, "c", 1, 3, "rwm"});
  EXPECT_EQ(cgroup_limits_set(r).front(), "devices");
}

TEST(Rootless, OneWarningNamesEveryLimit) {
  oci::Spec spec;
  EXPECT_EQ(unapplied_limits_warning(spec, "x"), "");
  spec.linux.resources = oci::Resources{};
  spec.linux.resources->pids_limit = 10;
  spec.linux.resources->memory = oci::MemoryResources{};
  spec.linux.resources->memory->swap = 5;
  std::string w = unapplied_limits_warning(spec, "/sys/fs/cgroup/x is not writable");
  EXPECT_NE(w.find("linux.resources.memory.swap, linux.resources.pids.limit"), std::string::npos)
      << w;
  EXPECT_NE(w.find("/sys/fs/cgroup/x is not writable"), std::string::npos);
  EXPECT_EQ(w.find('\n'), std::string::npos);
}

TEST(Rootless, DefaultStateRoot) {
  if (running_rootless()) GTEST_SKIP() << "checks root's default";
  EXPECT_EQ(default_state_root(), "/run/forker-oci");
}

}  // namespace
}  // namespace forker::linux
