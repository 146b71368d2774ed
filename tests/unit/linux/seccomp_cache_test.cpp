#include "linux/seccomp_cache.hpp"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace forker::linux {
namespace {

oci::Seccomp profile() {
  oci::Seccomp s;
  s.default_action = "SCMP_ACT_ALLOW";
  oci::SeccompSyscall r;
  r.names = {"getcwd", "uname"};
  r.action = "SCMP_ACT_ERRNO";
  r.errno_ret = 1;
  s.syscalls.push_back(r);
  return s;
}

bool same(const SeccompProgram& a, const SeccompProgram& b) {
  return a.flags == b.flags && a.needs_listener == b.needs_listener &&
         a.skipped_syscalls == b.skipped_syscalls && a.filter.size() == b.filter.size() &&
         std::memcmp(a.filter.data(), b.filter.data(), a.filter.size() * sizeof(sock_filter)) == 0;
}

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') out.push_back(dir + "/" + e->d_name);
    closedir(d);
  }
  return out;
}

class SeccompCache : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/seccomp-cache-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    dir_ = base_ + "/cache";
  }
  void TearDown() override { (void)std::system(("rm -rf " + base_).c_str()); }
  std::string base_, dir_;
};

TEST_F(SeccompCache, KeyChangesWithEveryField) {
  const std::string k = seccomp_cache_key(profile());
  auto changed = [&](auto edit) {
    oci::Seccomp s = profile();
    edit(s);
    return seccomp_cache_key(s) != k;
  };
  EXPECT_EQ(seccomp_cache_key(profile()), k);
  EXPECT_TRUE(changed([](oci::Seccomp& s) { s.default_action = "SCMP_ACT_LOG"; }));
  EXPECT_TRUE(changed([](oci::Seccomp& s) { s.default_errno_ret = 1; }));
  EXPECT_TRUE(changed([](oci::Seccomp& s) { s.architectures = {"SCMP_ARCH_X86"}; }));
  EXPECT_TRUE(changed([](oci::Seccomp& s) { s.flags = {"SECCOMP_FILTER_FLAG_LOG"}; }));
  EXPECT_TRUE(changed([](oci::Seccomp& s) { s.syscalls[0].names.push_back("getpid"); }));
  EXPECT_TRUE(changed([](oci::Seccomp& s) { s.syscalls[0].errno_ret = 2; }));
  EXPECT_TRUE(changed([](oci::Seccomp& s) { s.syscalls[0].action = "SCMP_ACT_KILL"; }));
  EXPECT_TRUE(changed([](oci::Seccomp& s) {
    s.syscalls[0].args.push_back({0, 1, 0, "SCMP_CMP_EQ"});
  }));
  // Names split differently are a different profile, not the same text.
  EXPECT_TRUE(changed([](oci::Seccomp& s) { s.syscalls[0].names = {"getcwduname"}; }));
}

TEST_F(SeccompCache, SecondCallReadsWhatTheFirstStoredAndMatchesACompile) {
  auto direct = compile_seccomp(profile());
  ASSERT_TRUE(direct) << direct.error().message();
  auto first = compile_seccomp_cached(profile(), dir_);
  ASSERT_TRUE(first) << first.error().message();
  auto files = entries(dir_);
  ASSERT_EQ(files.size(), 1u);
  struct stat st {};
  ASSERT_EQ(stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  auto second = compile_seccomp_cached(profile(), dir_);
  ASSERT_TRUE(second);
  EXPECT_TRUE(same(*direct, *first));
  EXPECT_TRUE(same(*direct, *second));
  // A different profile is a second entry.
  oci::Seccomp other = profile();
  other.syscalls[0].errno_ret = 38;
  ASSERT_TRUE(compile_seccomp_cached(other, dir_));
  EXPECT_EQ(entries(dir_).size(), 2u);
}

TEST_F(SeccompCache, DamagedOrForeignEntriesAreCompiledAgain) {
  ASSERT_TRUE(compile_seccomp_cached(profile(), dir_));
  auto files = entries(dir_);
  ASSERT_EQ(files.size(), 1u);
  auto direct = compile_seccomp(profile());
  ASSERT_TRUE(direct);

  // Truncated: not used, and rewritten whole.
  ASSERT_EQ(truncate(files[0].c_str(), 40), 0);
  auto again = compile_seccomp_cached(profile(), dir_);
  ASSERT_TRUE(again);
  EXPECT_TRUE(same(*direct, *again));
  struct stat st {};
  ASSERT_EQ(stat(files[0].c_str(), &st), 0);
  EXPECT_GT(st.st_size, 40);

  // An entry for another profile under this name (a hash collision, or a planted file) is
  // refused: the stored key is compared whole.
  oci::Seccomp other = profile();
  other.syscalls[0].action = "SCMP_ACT_KILL";
  std::string other_dir = base_ + "/other";
  ASSERT_TRUE(compile_seccomp_cached(other, other_dir));
  auto other_files = entries(other_dir);
  ASSERT_EQ(other_files.size(), 1u);
  ASSERT_EQ(rename(other_files[0].c_str(), files[0].c_str()), 0);
  auto refused = compile_seccomp_cached(profile(), dir_);
  ASSERT_TRUE(refused);
  EXPECT_TRUE(same(*direct, *refused));

  // A group-writable entry is not trusted.
  ASSERT_EQ(chmod(files[0].c_str(), 0666), 0);
  std::ofstream(files[0], std::ios::trunc) << "garbage";
  auto writable = compile_seccomp_cached(profile(), dir_);
  ASSERT_TRUE(writable);
  EXPECT_TRUE(same(*direct, *writable));
}

TEST_F(SeccompCache, ErrorsAreNotCached) {
  oci::Seccomp bad = profile();
  bad.syscalls[0].action = "SCMP_ACT_FOO";
  auto r = compile_seccomp_cached(bad, dir_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("SCMP_ACT_FOO"), std::string::npos);
  EXPECT_TRUE(entries(dir_).empty());
}

TEST_F(SeccompCache, NoDirectoryMeansNoCache) {
  auto r = compile_seccomp_cached(profile(), "");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->filter.empty());
}

}  // namespace
}  // namespace forker::linux
