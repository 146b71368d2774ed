// The v2 device filter, run through a small interpreter of the instructions it uses, so the
// rule logic is checked without loading anything into the kernel.
#include "linux/cgroup_bpf.hpp"

#include <gtest/gtest.h>

namespace forker::linux {
namespace {

// Evaluates PROGRAM for one access; returns r0 (1 allow, 0 deny), or -1 on a bad program.
int run(const std::vector<bpf_insn>& program, int type, int access, uint32_t major,
        uint32_t minor) {
  uint32_t ctx[3] = {static_cast<uint32_t>(type) | (static_cast<uint32_t>(access) << 16), major,
                     minor};
  uint64_t r[11] = {};
  for (size_t pc = 0; pc < program.size(); ++pc) {
    const bpf_insn& i = program[pc];
    switch (i.code) {
      case BPF_LDX | BPF_MEM | BPF_W: r[i.dst_reg] = ctx[i.off / 4]; break;
      case BPF_ALU64 | BPF_MOV | BPF_X: r[i.dst_reg] = r[i.src_reg]; break;
      case BPF_ALU64 | BPF_MOV | BPF_K: r[i.dst_reg] = static_cast<uint64_t>(i.imm); break;
      case BPF_ALU | BPF_AND | BPF_K:
        r[i.dst_reg] = static_cast<uint32_t>(r[i.dst_reg]) & static_cast<uint32_t>(i.imm);
        break;
      case BPF_ALU | BPF_RSH | BPF_K:
        r[i.dst_reg] = static_cast<uint32_t>(r[i.dst_reg]) >> i.imm;
        break;
      case BPF_JMP | BPF_JNE | BPF_K:
        if (r[i.dst_reg] != static_cast<uint64_t>(static_cast<int64_t>(i.imm))) pc += i.off;
        break;
      case BPF_JMP | BPF_JEQ | BPF_K:
        if (r[i.dst_reg] == static_cast<uint64_t>(static_cast<int64_t>(i.imm))) pc += i.off;
        break;
      case BPF_JMP | BPF_EXIT: return static_cast<int>(r[0]);
      default: return -1;
    }
  }
  return -1;
}

constexpr int C = BPF_DEVCG_DEV_CHAR, B = BPF_DEVCG_DEV_BLOCK;
constexpr int R = BPF_DEVCG_ACC_READ, W = BPF_DEVCG_ACC_WRITE, M = BPF_DEVCG_ACC_MKNOD;

oci::DeviceRule rule(bool allow, std::string type, std::optional<int64_t> major,
                     std::optional<int64_t> minor, std::string access) {
  return oci::DeviceRule{allow, std::move(type), major, minor, std::move(access)};
}

TEST(CgroupBpf, NoRulesDeniesEverything) {
  auto p = device_filter_program({});
  ASSERT_TRUE(p);
  EXPECT_EQ(run(*p, C, R, 1, 3), 0);
}

TEST(CgroupBpf, DenyAllThenAllowListed) {
  auto p = device_filter_program({rule(false, "a", {}, {}, "rwm"), rule(true, "c", 1, 3, "rwm"),
                                  rule(true, "c", 136, {}, "rw"), rule(true, "b", {}, {}, "m")});
  ASSERT_TRUE(p);
  EXPECT_EQ(run(*p, C, R | W, 1, 3), 1);     // /dev/null
  EXPECT_EQ(run(*p, C, M, 1, 3), 1);
  EXPECT_EQ(run(*p, C, R, 1, 1), 0);         // /dev/mem: not listed
  EXPECT_EQ(run(*p, B, R, 1, 3), 0);         // same numbers, other type
  EXPECT_EQ(run(*p, C, R, 136, 7), 1);       // any pts
  EXPECT_EQ(run(*p, C, M, 136, 7), 0);       // but no mknod there
  EXPECT_EQ(run(*p, B, M, 8, 0), 1);         // mknod of any block device
  EXPECT_EQ(run(*p, B, R, 8, 0), 0);
}

TEST(CgroupBpf, LastMatchingRuleWins) {
  auto p = device_filter_program({rule(true, "c", 1, 3, "rwm"), rule(false, "c", 1, 3, "w")});
  ASSERT_TRUE(p);
  EXPECT_EQ(run(*p, C, R, 1, 3), 1);
  EXPECT_EQ(run(*p, C, W, 1, 3), 0);
  EXPECT_EQ(run(*p, C, R | W, 1, 3), 0) << "an rw open needs the w the last rule denies";
}

TEST(CgroupBpf, AllowAllAndEmptyType) {
  auto p = device_filter_program({rule(true, "", {}, {}, "")});
  ASSERT_TRUE(p);
  EXPECT_EQ(run(*p, B, R | W | M, 254, 0), 1);
}

TEST(CgroupBpf, BadRulesAreErrors) {
  auto p = device_filter_program({rule(true, "x", {}, {}, "rwm")});
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message(), "linux.resources.devices[0].type x: must be a, c or b");
  p = device_filter_program({rule(true, "c", {}, {}, "rwq")});
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message(), "linux.resources.devices[0].access rwq: unknown access letter");
}

}  // namespace
}  // namespace forker::linux
