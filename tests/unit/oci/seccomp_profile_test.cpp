#include "oci/seccomp_profile.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/filter.h>

#include "linux/seccomp.hpp"
#include "oci/spec.hpp"

namespace forker::oci {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

SeccompTarget target(std::vector<std::string> caps, std::string arch = "amd64",
                     std::string kernel = "6.1.0-13-amd64") {
  return SeccompTarget{std::move(caps), std::move(arch), std::move(kernel)};
}

// The names of every rule whose action is ACTION, in order.
std::vector<std::string> names_with(const json& seccomp, const std::string& action) {
  std::vector<std::string> out;
  for (const auto& r : seccomp["syscalls"])
    if (r["action"] == action)
      for (const auto& n : r["names"]) out.push_back(n);
  return out;
}

const char* kProfile = R"({
  "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
  "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
              {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
  "syscalls": [
    {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
    {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
    {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
     "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
    {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
    {"names": ["newer"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.10"}},
    {"names": ["older"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.10"}},
    {"name": "single", "action": "SCMP_ACT_ALLOW",
     "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]}
  ]})";

TEST(SeccompProfile, IncludesAndExcludesFollowTheCapabilities) {
  auto plain = resolve_seccomp_profile(kProfile, target({"CAP_KILL"}));
  ASSERT_TRUE(plain) << plain.error().message();
  EXPECT_THAT(names_with(*plain, "SCMP_ACT_ALLOW"), Not(Contains("mount")));
  EXPECT_THAT(names_with(*plain, "SCMP_ACT_ERRNO"), Contains("clone3"));
  auto admin = resolve_seccomp_profile(kProfile, target({"CAP_KILL", "CAP_SYS_ADMIN"}));
  ASSERT_TRUE(admin);
  EXPECT_THAT(names_with(*admin, "SCMP_ACT_ALLOW"), Contains("mount"));
  EXPECT_THAT(names_with(*admin, "SCMP_ACT_ERRNO"), Not(Contains("clone3")));
}

TEST(SeccompProfile, ArchitecturesFromTheArchMap) {
  auto x86 = resolve_seccomp_profile(kProfile, target({}));
  ASSERT_TRUE(x86);
  EXPECT_EQ((*x86)["architectures"], json::array({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"}));
  EXPECT_THAT(names_with(*x86, "SCMP_ACT_ALLOW"), Contains("arch_prctl"));
  auto arm = resolve_seccomp_profile(kProfile, target({}, "arm64"));
  ASSERT_TRUE(arm);
  EXPECT_EQ((*arm)["architectures"], json::array({"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"}));
  EXPECT_THAT(names_with(*arm, "SCMP_ACT_ALLOW"), Not(Contains("arch_prctl")));
}

TEST(SeccompProfile, MinKernel) {
  auto new_kernel = resolve_seccomp_profile(kProfile, target({}, "amd64", "5.10.0"));
  ASSERT_TRUE(new_kernel);
  EXPECT_THAT(names_with(*new_kernel, "SCMP_ACT_ALLOW"), Contains("newer"));
  EXPECT_THAT(names_with(*new_kernel, "SCMP_ACT_ALLOW"), Not(Contains("older")));
  auto old_kernel = resolve_seccomp_profile(kProfile, target({}, "amd64", "4.19.2-foo"));
  ASSERT_TRUE(old_kernel);
  EXPECT_THAT(names_with(*old_kernel, "SCMP_ACT_ALLOW"), Not(Contains("newer")));
  EXPECT_THAT(names_with(*old_kernel, "SCMP_ACT_ALLOW"), Contains("older"));
}

TEST(SeccompProfile, SingleNameAndArgsPassThrough) {
  auto r = resolve_seccomp_profile(kProfile, target({}));
  ASSERT_TRUE(r);
  const json& last = (*r)["syscalls"].back();
  EXPECT_EQ(last["names"], json::array({"single"}));
  EXPECT_EQ(last["args"][0]["op"], "SCMP_CMP_NE");
  EXPECT_EQ((*r)["defaultErrnoRet"], 1);
}

TEST(SeccompProfile, MalformedProfilesNameTheField) {
  auto r = resolve_seccomp_profile("{", target({}));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("not a JSON object"));
  r = resolve_seccomp_profile(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
      {"names": ["x"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": "CAP_X"}}]})",
                              target({}));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("syscalls[0].includes.caps"));
  r = resolve_seccomp_profile(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
      {"names": ["x"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "new"}}]})",
                              target({}));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("minKernel new"));
}

// The shipped profile: docker's rules, and it compiles to a filter the kernel takes.
TEST(SeccompProfile, DefaultProfileCompiles) {
  for (const auto& caps : {std::vector<std::string>{"CAP_KILL"},
                           std::vector<std::string>{"CAP_SYS_ADMIN", "CAP_SYS_PTRACE"}}) {
    auto resolved = resolve_seccomp_profile(default_seccomp_profile(), host_seccomp_target(caps));
    ASSERT_TRUE(resolved) << resolved.error().message();
    json config = {
        {"ociVersion", "1.1.0"},
        {"root", {{"path", "rootfs"}}},
        {"process", {{"args", {"sh"}}, {"cwd", "/"}, {"user", {{"uid", 0}, {"gid", 0}}}}},
        {"linux", {{"seccomp", *resolved}}}};
    auto spec = parse_spec(config.dump());
    ASSERT_TRUE(spec) << spec.error().message();
    auto program = linux::compile_seccomp(*spec->linux.seccomp);
    ASSERT_TRUE(program) << program.error().message();
    EXPECT_LE(program->filter.size(), static_cast<size_t>(BPF_MAXINSNS));
    EXPECT_FALSE(program->needs_listener);
  }
  auto plain = resolve_seccomp_profile(default_seccomp_profile(), host_seccomp_target({}));
  ASSERT_TRUE(plain);
  EXPECT_EQ((*plain)["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_THAT(names_with(*plain, "SCMP_ACT_ALLOW"), Contains("read"));
  EXPECT_THAT(names_with(*plain, "SCMP_ACT_ALLOW"), Not(Contains("mount")));
  EXPECT_THAT(names_with(*plain, "SCMP_ACT_ALLOW"), Not(Contains("unshare")));
  EXPECT_THAT(names_with(*plain, "SCMP_ACT_ALLOW"), Not(Contains("init_module")));
  EXPECT_THAT(names_with(*plain, "SCMP_ACT_ERRNO"), Contains("clone3"));
}

TEST(SeccompProfile, WithDefaultSeccompUsesTheBoundingSet) {
  json spec = {{"ociVersion", "1.1.0"},
               {"process", {{"capabilities", {{"bounding", {"CAP_SYS_CHROOT"}}}}}},
               {"linux", json::object()}};
  auto text = with_default_seccomp(spec.dump());
  ASSERT_TRUE(text) << text.error().message();
  json out = json::parse(*text);
  EXPECT_THAT(names_with(out["linux"]["seccomp"], "SCMP_ACT_ALLOW"), Contains("chroot"));
}

}  // namespace
}  // namespace forker::oci
