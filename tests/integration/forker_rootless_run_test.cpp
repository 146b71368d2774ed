// Rootless `forker run`: as a throwaway user the container's init mounts the overlay itself, in
// its own user and mount namespaces (the host's user namespace refuses the user an overlay). The
// user is root inside, mapped to its own uid, the root is writable, and the host's mount table
// never names the user's store, neither while a container runs nor after.
#include <gmock/gmock.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <functional>

#include "image/remove_tree.hpp"
#include "integration/forker_cli_fixture.hpp"
#include "integration/support/test_user.hpp"

namespace forker::test {
namespace {

namespace fs = std::filesystem;

// The host's mountinfo lines that name TEXT (a mount point, source or overlay option under it).
std::vector<std::string> mounts_naming(const std::string& text) {
  std::vector<std::string> out;
  for (const auto& line : lines(read_text("/proc/self/mountinfo")))
    if (line.find(text) != std::string::npos) out.push_back(line);
  return out;
}

class ForkerRootlessRun : public ForkerCliTest {};

TEST_F(ForkerRootlessRun, UserIsRootInsideWithWritableRootAndNoHostMount) {
  std::string why;
  auto user = TestUser::create(why);
  if (!user) GTEST_SKIP() << why;
  ASSERT_EQ(::chmod(dir_.c_str(), 0711), 0);
  const std::string store = dir_ + "/user-store", xdg = dir_ + "/xdg";
  fs::create_directories(store);
  fs::create_directories(xdg);
  ::chmod(xdg.c_str(), 0700);
  user->give(store);
  user->give(xdg);
  auto as_user = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {FORKER_CLI_BIN, "--storage-root", store});
    return user->run(args, {"XDG_RUNTIME_DIR=" + xdg});
  };
  // The user's containers and store go even when an assertion fails.
  struct Cleanup {
    std::function<void()> f;
    ~Cleanup() { f(); }
  } cleanup{[&] {
    for (const auto& id : lines(as_user({"ps", "-aq", "--no-trunc"}).out))
      as_user({"rm", "-f", id});
    (void)image::remove_tree(store);
  }};
  const std::vector<std::string> before = mounts_naming(store);
  EXPECT_THAT(before, ::testing::IsEmpty());

  RunResult r = as_user({"run", "--rm", "--network", "none", "busybox", "sh", "-c",
                         "id -u; cat /proc/self/uid_map; echo x > /tmp/f && cat /tmp/f"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::vector<std::string> out = lines(r.out);
  ASSERT_EQ(out.size(), 3u) << r.out;
  EXPECT_EQ(out[0], "0");
  // "0 UID 1": inside, root; outside, the user.
  std::istringstream map(out[1]);
  uint64_t inside = 1, outside = 0, count = 0;
  map >> inside >> outside >> count;
  EXPECT_EQ(inside, 0u) << out[1];
  EXPECT_EQ(outside, user->uid()) << out[1];
  EXPECT_GE(count, 1u) << out[1];
  EXPECT_EQ(out[2], "x");
  EXPECT_EQ(mounts_naming(store), before) << "the run left a mount of the user's store";

  // While a container runs its overlay is in its mount namespace only.
  r = as_user({"run", "-d", "--network", "none", "busybox", "sleep", "600"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::string id = r.out.substr(0, r.out.find('\n'));
  ASSERT_EQ(id.size(), 64u) << r.out;
  EXPECT_EQ(mounts_naming(store), before) << "a running container's root shows on the host";
  r = as_user({"exec", id, "sh", "-c", "echo y > /y && cat /y"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "y\n");
  r = as_user({"rm", "-f", id});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(mounts_naming(store), before);
}

}  // namespace
}  // namespace forker::test
