// `forker pull` and `forker login` as the real binary against a private docker-registry on
// 127.0.0.1 (tests/integration/support/registry_fixture): layers with a whiteout and an opaque
// directory, a zstd layer, a two-platform index, a registry with htpasswd auth, and pulls killed
// with SIGKILL at random points. The pulled image's layers are stacked with the store's own
// overlay mount, and the files are checked in the merged view.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "image/layer_unpack.hpp"
#include "image/store.hpp"
#include "integration/support/harness.hpp"
#include "integration/support/registry_fixture.hpp"

namespace forker::test {
namespace {

using nlohmann::json;

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> out;
  DIR* d = ::opendir(path.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  return out;
}

class ForkerPull : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root()) GTEST_SKIP() << "needs root";
    if (auto missing = RegistryFixture::missing_tools(); !missing.empty())
      GTEST_SKIP() << "missing " << missing;
    char tmpl[] = "/tmp/forker-pull-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    storage_ = dir_ + "/storage";
  }
  void TearDown() override {
    if (!storage_.empty())
      for (const auto& e : remove_forker_networks(storage_)) ADD_FAILURE() << e;
    if (!mounted_.empty()) ::umount2(mounted_.c_str(), MNT_DETACH);
    if (!dir_.empty()) (void)image::remove_tree(dir_);
  }

  RunResult forker(std::vector<std::string> args, int timeout_s = 60) {
    args.insert(args.begin(), {FORKER_CLI_BIN, "--storage-root", storage_});
    return run_cmd(args, timeout_s);
  }

  void start_registry(const RegistryFixtureOptions& options = {}) {
    std::string err;
    registry_ = RegistryFixture::start(options, &err);
    ASSERT_TRUE(registry_) << err;
  }

  // Stacks the image's layers with the store's overlay (read-only) and returns the mount point.
  std::string mount_image(const std::string& name) {
    auto store = image::Store::open(storage_);
    EXPECT_TRUE(store) << store.error().message();
    if (!store) return "";
    auto img = store->find_image(name);
    EXPECT_TRUE(img) << img.error().message();
    if (!img) return "";
    std::vector<std::string> lowers;
    for (auto it = img->diff_ids.rbegin(); it != img->diff_ids.rend(); ++it)
      lowers.push_back(store->layer_path(*it));
    std::string target = dir_ + "/merged";
    ::mkdir(target.c_str(), 0755);
    auto st = image::mount_overlay(lowers, "", "", target);
    EXPECT_TRUE(st) << st.error().message();
    if (!st) return "";
    mounted_ = target;
    return target;
  }

  std::string dir_, storage_, mounted_;
  std::unique_ptr<RegistryFixture> registry_;
};

TEST_F(ForkerPull, LayersWithWhiteoutAndOpaqueDirectoryShowTheRightFiles) {
  start_registry();
  std::string layout = dir_ + "/layout";
  ASSERT_EQ(make_busybox_layout(layout, "v1",
                                {{.files = {{"/etc/gone", "x"}, {"/data/old", "o"}}},
                                 {.files = {{"/data/new", "n"}}, .opaque_dir = "/data"},
                                 {.whiteout = "/etc/gone"}}),
            "");
  ASSERT_EQ(registry_->push_layout(layout, "v1", "test/layers"), "");
  std::string ref = registry_->host_port() + "/test/layers:v1";

  auto r = forker({"pull", ref});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("Downloaded newer image for " + ref), std::string::npos) << r.out;
  auto images = forker({"images", "--format", "json"});
  ASSERT_EQ(images.status, 0) << images.err;
  EXPECT_NE(images.out.find(registry_->host_port() + "/test/layers"), std::string::npos)
      << images.out;

  std::string root = mount_image(ref);
  ASSERT_FALSE(root.empty());
  EXPECT_EQ(read_text(root + "/data/new"), "n");
  EXPECT_FALSE(exists(root + "/data/old")) << "the opaque directory hides the lower layer";
  EXPECT_FALSE(exists(root + "/etc/gone")) << "the whiteout hides the file";
  EXPECT_TRUE(exists(root + "/bin/busybox"));

  // forker run of the pulled image: the same three layers, from inside the container.
  auto run = forker({"run", "--rm", ref, "sh", "-c",
                     "cat /data/new; echo; ls /data; test -e /etc/gone || echo gone"});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(run.out, "n\nnew\ngone\n");

  // Again: nothing is fetched.
  auto again = forker({"pull", ref});
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_NE(again.out.find("Image is up to date"), std::string::npos) << again.out;
  // -q prints the image id only.
  auto quiet = forker({"pull", "-q", ref});
  ASSERT_EQ(quiet.status, 0) << quiet.err;
  EXPECT_EQ(quiet.out.rfind("sha256:", 0), 0u) << quiet.out;
}

TEST_F(ForkerPull, ZstdLayer) {
  start_registry();
  std::string layout = dir_ + "/layout";
  ASSERT_EQ(make_busybox_layout(layout, "z"), "");
  ASSERT_EQ(add_zstd_layer(layout, "z", {{"/opt/zstd-file", "zstd content"}}), "");
  ASSERT_EQ(registry_->push_layout(layout, "z", "test/zstd"), "");
  std::string ref = registry_->host_port() + "/test/zstd:z";
  auto r = forker({"pull", ref});
  ASSERT_EQ(r.status, 0) << r.err;
  std::string root = mount_image(ref);
  ASSERT_FALSE(root.empty());
  EXPECT_EQ(read_text(root + "/opt/zstd-file"), "zstd content");
}

TEST_F(ForkerPull, IndexWithTwoPlatforms) {
  start_registry();
  std::string layout = dir_ + "/layout";
  ASSERT_EQ(make_two_platform_layout(layout, "multi"), "");
  ASSERT_EQ(registry_->push_layout(layout, "multi", "test/plat", {"--all"}), "");
  std::string ref = registry_->host_port() + "/test/plat:multi";

  auto arm = forker({"pull", "--platform", "linux/arm64", ref});
  ASSERT_EQ(arm.status, 0) << arm.err;
  auto inspect = forker({"image", "inspect", ref});
  ASSERT_EQ(inspect.status, 0) << inspect.err;
  EXPECT_EQ(json::parse(inspect.out)[0]["Architecture"], "arm64") << inspect.out;
  {
    std::string root = mount_image(ref);
    ASSERT_FALSE(root.empty());
    EXPECT_EQ(read_text(root + "/etc/arch-marker"), "arm64");
    ::umount2(root.c_str(), MNT_DETACH);
    mounted_.clear();
  }
  // The same name pulled for this host (amd64 here) now points at the amd64 image.
  auto host = forker({"pull", ref});
  ASSERT_EQ(host.status, 0) << host.err;
  inspect = forker({"image", "inspect", ref});
  ASSERT_EQ(inspect.status, 0) << inspect.err;
  EXPECT_EQ(json::parse(inspect.out)[0]["Architecture"], "amd64") << inspect.out;

  auto none = forker({"pull", "--platform", "linux/s390x", ref});
  EXPECT_EQ(none.status, 1);
  EXPECT_NE(none.err.find("linux/arm64"), std::string::npos) << none.err;
}

TEST_F(ForkerPull, AuthRegistryNeedsLogin) {
  start_registry({.htpasswd_user = "tester", .htpasswd_password = "s3cret"});
  std::string layout = dir_ + "/layout";
  ASSERT_EQ(make_busybox_layout(layout, "a"), "");
  ASSERT_EQ(registry_->push_layout(layout, "a", "test/private"), "");
  std::string ref = registry_->host_port() + "/test/private:a";
  std::string authfile = dir_ + "/auth.json";
  ::setenv("REGISTRY_AUTH_FILE", authfile.c_str(), 1);
  struct Unset {
    ~Unset() { ::unsetenv("REGISTRY_AUTH_FILE"); }
  } unset;

  auto denied = forker({"pull", ref});
  EXPECT_EQ(denied.status, 1);
  EXPECT_NE(denied.err.find("401"), std::string::npos) << denied.err;
  EXPECT_EQ(std::count(denied.err.begin(), denied.err.end(), '\n'), 1) << denied.err;
  EXPECT_TRUE(list_dir(storage_ + "/tmp").empty());

  auto wrong = forker({"login", "-u", "tester", "-p", "nope", registry_->host_port()});
  EXPECT_EQ(wrong.status, 1) << wrong.out;
  EXPECT_FALSE(exists(authfile));
  auto login = forker({"login", "-u", "tester", "-p", "s3cret", registry_->host_port()});
  ASSERT_EQ(login.status, 0) << login.err;
  struct stat st {};
  ASSERT_EQ(::stat(authfile.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto pulled = forker({"pull", ref});
  ASSERT_EQ(pulled.status, 0) << pulled.err;
  auto logout = forker({"logout", registry_->host_port()});
  ASSERT_EQ(logout.status, 0) << logout.err;
  EXPECT_EQ(read_text(authfile).find("tester"), std::string::npos);
}

TEST_F(ForkerPull, KilledPullsLeaveNoImageThatLooksValidAndPruneCleansUp) {
  start_registry();
  std::string layout = dir_ + "/layout";
  std::string big(4 << 20, 'b');  // a layer that takes a moment to fetch and unpack
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + (i / 4096) % 26);
  ASSERT_EQ(make_busybox_layout(layout, "k",
                                {{.files = {{"/big/one", big}}},
                                 {.files = {{"/big/two", big + "2"}}},
                                 {.files = {{"/small", "s"}}}}),
            "");
  ASSERT_EQ(registry_->push_layout(layout, "k", "test/killed"), "");
  std::string ref = registry_->host_port() + "/test/killed:k";

  std::mt19937 rng(::getpid());
  std::uniform_int_distribution<int> delay_us(0, 400000);
  for (int i = 0; i < 12; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      ::execl(FORKER_CLI_BIN, FORKER_CLI_BIN, "--storage-root", storage_.c_str(), "pull",
              ref.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    // Whatever point it died at: an image that is listed is complete.
    auto images = forker({"images", "--format", "json"});
    ASSERT_EQ(images.status, 0) << images.err;
    if (images.out.find("test/killed") != std::string::npos) {
      auto store = image::Store::open(storage_);
      ASSERT_TRUE(store);
      auto img = store->find_image(ref);
      ASSERT_TRUE(img) << img.error().message();
      for (const auto& d : img->diff_ids) EXPECT_TRUE(store->has_layer(d)) << d.str();
      for (const auto& l : img->layers) EXPECT_TRUE(store->has_blob(l.digest)) << l.digest.str();
      ASSERT_EQ(forker({"rmi", ref}).status, 0);
    }
  }
  auto pulled = forker({"pull", ref});
  ASSERT_EQ(pulled.status, 0) << pulled.err;
  std::string root = mount_image(ref);
  ASSERT_FALSE(root.empty());
  EXPECT_EQ(read_text(root + "/big/two"), big + "2");
  ::umount2(root.c_str(), MNT_DETACH);
  mounted_.clear();

  auto prune = forker({"system", "prune", "-f"});
  ASSERT_EQ(prune.status, 0) << prune.err;
  EXPECT_TRUE(list_dir(storage_ + "/tmp").empty());
  // Every blob left is the image's: manifest, config and three layers (busybox + 3 = 4 layers).
  auto store = image::Store::open(storage_);
  ASSERT_TRUE(store);
  auto img = store->find_image(ref);
  ASSERT_TRUE(img);
  EXPECT_EQ(list_dir(storage_ + "/blobs/sha256").size(), 2 + img->layers.size());
  EXPECT_EQ(list_dir(storage_ + "/layers").size(), img->diff_ids.size());
}

}  // namespace
}  // namespace forker::test
