// The image store against the real kernel and real tools (root): layers unpacked from gzip
// tarballs made by tar(1), containers' overlays with whiteouts and opaque directories, 150
// layers through fsconfig lowerdir+, read-only overlays, snapshot removal, and skopeo reading
// the store as a standard OCI image layout.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "image/layer_unpack.hpp"
#include "image/overlay.hpp"
#include "image/store.hpp"
#include "integration/support/harness.hpp"

namespace forker::image {
namespace {

using nlohmann::json;
using test::run_cmd;

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

// Mount points under PREFIX, from /proc/self/mountinfo.
std::vector<std::string> mounts_under(const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream in(slurp("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point;
    fields >> id >> parent >> devno >> root >> point;
    if (point.rfind(prefix, 0) == 0) out.push_back(point);
  }
  return out;
}

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename());
  return out;
}

class StoreOverlayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_ROOT();
    char tmpl[] = "/tmp/forker-store-it-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = Store::open(dir_ + "/root");
    ASSERT_TRUE(s) << s.error().message();
    store_ = std::make_unique<Store>(std::move(*s));
  }
  void TearDown() override {
    if (dir_.empty()) return;
    // Whatever a failed test left mounted goes first (deepest first), then the files.
    auto left = mounts_under(dir_);
    for (auto it = left.rbegin(); it != left.rend(); ++it) ::umount2(it->c_str(), MNT_DETACH);
    EXPECT_TRUE(left.empty()) << "mounts left: " << left.size();
    store_.reset();
    EXPECT_TRUE(remove_tree(dir_));
  }

  // A gzip layer made by `tar czf` from TREE (relative path -> content; "" ends in '/' = dir).
  struct Layer {
    Descriptor blob;
    Digest diff_id;
  };
  Layer make_layer(const std::string& name, const std::map<std::string, std::string>& tree) {
    std::string src = dir_ + "/src-" + name;
    std::filesystem::create_directories(src);
    for (const auto& [path, content] : tree) {
      if (path.back() == '/')
        std::filesystem::create_directories(src + "/" + path);
      else
        spit(src + "/" + path, content);
    }
    std::string tgz = dir_ + "/" + name + ".tar.gz", tar = dir_ + "/" + name + ".tar";
    auto r = run_cmd(
        {"/bin/sh", "-c",
         "tar czf '" + tgz + "' -C '" + src + "' . && gzip -dc '" + tgz + "' > '" + tar + "'"});
    EXPECT_EQ(r.status, 0) << r.err;
    Layer l;
    l.diff_id = *sha256_of_file(tar);
    std::string bytes = slurp(tgz);
    auto d = store_->put_blob(bytes);
    EXPECT_TRUE(d);
    l.blob =
        Descriptor{std::string(kMediaOciLayerGzip), *d, static_cast<int64_t>(bytes.size()), {}};
    return l;
  }

  // Config and manifest JSON written by hand, tagged as NAME.
  Descriptor put_image(const std::string& name, const std::vector<Layer>& layers) {
    json diff_ids = json::array(), blobs = json::array();
    for (const Layer& l : layers) {
      diff_ids.push_back(l.diff_id.str());
      blobs.push_back({{"mediaType", l.blob.media_type},
                       {"digest", l.blob.digest.str()},
                       {"size", l.blob.size}});
    }
    std::string config = json({{"architecture", "amd64"},
                               {"os", "linux"},
                               {"created", "2024-05-01T10:00:00Z"},
                               {"config", {{"Cmd", {"/bin/sh"}}}},
                               {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}})
                             .dump();
    Digest config_digest = *store_->put_blob(config);
    std::string manifest = json({{"schemaVersion", 2},
                                 {"mediaType", kMediaOciManifest},
                                 {"config",
                                  {{"mediaType", kMediaOciConfig},
                                   {"digest", config_digest.str()},
                                   {"size", config.size()}}},
                                 {"layers", blobs}})
                               .dump();
    Descriptor d{std::string(kMediaOciManifest),
                 *store_->put_blob(manifest),
                 static_cast<int64_t>(manifest.size()),
                 {}};
    auto st = store_->tag(name, d);
    EXPECT_TRUE(st) << st.error().message();
    return d;
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreOverlayTest, UnpackBlobOfAGzipTarballOnceAndVerified) {
  Layer l = make_layer("one", {{"etc/hostname", "box\n"}, {"usr/bin/", ""}, {"README", "hi"}});
  auto wrong = store_->unpack_blob(l.blob.digest, sha256_of("not the diff id"));
  ASSERT_FALSE(wrong);
  EXPECT_FALSE(store_->has_layer(sha256_of("not the diff id")));
  EXPECT_FALSE(store_->has_layer(l.diff_id));
  EXPECT_TRUE(entries(dir_ + "/root/tmp").empty());

  auto d = store_->unpack_blob(l.blob.digest, l.diff_id);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(*d, l.diff_id);
  std::string layer = store_->layer_path(l.diff_id);
  EXPECT_EQ(slurp(layer + "/etc/hostname"), "box\n");
  EXPECT_TRUE(std::filesystem::is_directory(layer + "/usr/bin"));
  // Present: nothing is unpacked again (a marker we drop in stays).
  spit(layer + "/marker", "");
  ASSERT_TRUE(store_->unpack_blob(l.blob.digest, l.diff_id));
  EXPECT_TRUE(exists(layer + "/marker"));
  // Without an expected diff id (import): learnt by unpacking; the duplicate copy is dropped.
  auto learnt = store_->unpack_blob(l.blob.digest, std::nullopt);
  ASSERT_TRUE(learnt) << learnt.error().message();
  EXPECT_EQ(*learnt, l.diff_id);
  EXPECT_TRUE(exists(layer + "/marker"));
  EXPECT_TRUE(entries(dir_ + "/root/tmp").empty());
  // A blob the store does not have.
  auto missing = store_->unpack_blob(sha256_of("absent"), std::nullopt);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find(sha256_of("absent").str()), std::string::npos);
}

TEST_F(StoreOverlayTest, TwoProcessesUnpackingOneLayerMakeOneCopy) {
  Layer l = make_layer("race", {{"a/b/c", "x"}, {"d", "y"}});
  std::vector<pid_t> kids;
  for (int i = 0; i < 2; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto s = Store::open(dir_ + "/root");
      ::_exit(s && s->unpack_blob(l.blob.digest, l.diff_id) ? 0 : 1);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_EQ(entries(dir_ + "/root/layers"), std::vector<std::string>{l.diff_id.hex});
  EXPECT_EQ(slurp(store_->layer_path(l.diff_id) + "/a/b/c"), "x");
  EXPECT_TRUE(entries(dir_ + "/root/tmp").empty());
}

TEST_F(StoreOverlayTest, SnapshotOverlayWithWhiteoutsAndAnOpaqueDirectory) {
  Layer base = make_layer("base", {{"a", "a1"}, {"b", "b1"}, {"dir/x", "x1"}, {"keep/k", "k"}});
  Layer mid = make_layer("mid", {{".wh.b", ""}, {"c", "c2"}});
  Layer top = make_layer("top", {{"d", "d3"}, {"dir/.wh..wh..opq", ""}, {"dir/y", "y3"}});
  put_image("layered", {base, mid, top});
  auto image = store_->find_image("layered");
  ASSERT_TRUE(image) << image.error().message();

  // The layers are not unpacked yet: create_snapshot does it from their blobs.
  EXPECT_FALSE(store_->has_layer(base.diff_id));
  auto snap = store_->create_snapshot(*image, "c1");
  ASSERT_TRUE(snap) << snap.error().message();
  for (const Layer* l : {&base, &mid, &top}) EXPECT_TRUE(store_->has_layer(l->diff_id));
  ASSERT_EQ(snap->lowers.size(), 3u);
  EXPECT_EQ(snap->lowers.front(), store_->layer_path(top.diff_id));

  auto st = mount_overlay(snap->lowers, snap->upper, snap->work, snap->rootfs);
  ASSERT_TRUE(st) << st.error().message();
  const std::string& r = snap->rootfs;
  EXPECT_EQ(slurp(r + "/a"), "a1");
  EXPECT_FALSE(exists(r + "/b")) << "whiteout in the middle layer must hide b";
  EXPECT_EQ(slurp(r + "/c"), "c2");
  EXPECT_EQ(slurp(r + "/d"), "d3");
  EXPECT_FALSE(exists(r + "/dir/x")) << "opaque dir must hide the lower dir's content";
  EXPECT_EQ(slurp(r + "/dir/y"), "y3");
  EXPECT_EQ(slurp(r + "/keep/k"), "k");

  // Writes go to upper; the layers stay as they were.
  spit(r + "/new", "written");
  ASSERT_EQ(::unlink((r + "/a").c_str()), 0);
  EXPECT_EQ(slurp(snap->upper + "/new"), "written");
  EXPECT_TRUE(exists(store_->layer_path(base.diff_id) + "/a"));
  EXPECT_FALSE(exists(r + "/a"));

  // prune keeps what the image and the snapshot use.
  auto report = store_->prune();
  ASSERT_TRUE(report) << report.error().message();
  EXPECT_TRUE(report->layers_removed.empty());
  EXPECT_TRUE(report->blobs_removed.empty());

  ASSERT_TRUE(store_->remove_snapshot("c1"));
  EXPECT_TRUE(mounts_under(dir_).empty());
  EXPECT_FALSE(exists(snap->dir));

  // With the image untagged and no snapshot, everything goes.
  ASSERT_TRUE(store_->untag("layered"));
  report = store_->prune();
  ASSERT_TRUE(report);
  EXPECT_EQ(report->layers_removed.size(), 3u);
  EXPECT_EQ(report->blobs_removed.size(), 5u);  // manifest, config, 3 layers
  EXPECT_TRUE(entries(dir_ + "/root/layers").empty());
  EXPECT_TRUE(entries(dir_ + "/root/blobs/sha256").empty());
}

// 150 layers of one file each: far more than a page of lowerdir= can name with these paths.
TEST_F(StoreOverlayTest, OneHundredFiftyLayersMountThroughLowerdirPlus) {
  // lowerdir+ came in Linux 6.8 (the cgroup v2 VM runs 6.1, where the page limit stands).
  struct utsname u {};
  ::uname(&u);
  int major = 0, minor = 0;
  std::sscanf(u.release, "%d.%d", &major, &minor);
  if (major < 6 || (major == 6 && minor < 8)) GTEST_SKIP() << "kernel " << u.release << " has no lowerdir+";
  ImageRecord image;
  image.name = "docker.io/library/tall:latest";
  for (int i = 0; i < 150; ++i) {
    Digest d = sha256_of("layer " + std::to_string(i));
    std::filesystem::create_directories(store_->layer_path(d));
    spit(store_->layer_path(d) + "/file" + std::to_string(i), std::to_string(i));
    image.diff_ids.push_back(d);
    image.layers.push_back(
        Descriptor{std::string(kMediaOciLayerGzip), sha256_of("b" + std::to_string(i)), 1, {}});
  }
  auto snap = store_->create_snapshot(image, "tall");
  ASSERT_TRUE(snap) << snap.error().message();
  // The old string would not fit: the fallback reports why instead of truncating.
  auto legacy = overlay_mount_data(OverlaySpec{snap->lowers, snap->upper, snap->work, false},
                                   static_cast<size_t>(::sysconf(_SC_PAGESIZE)));
  EXPECT_FALSE(legacy);
  auto st = mount_overlay(snap->lowers, snap->upper, snap->work, snap->rootfs);
  ASSERT_TRUE(st) << st.error().message();
  int seen = 0;
  for (int i = 0; i < 150; ++i)
    seen += slurp(snap->rootfs + "/file" + std::to_string(i)) == std::to_string(i) ? 1 : 0;
  EXPECT_EQ(seen, 150);
  ASSERT_TRUE(store_->remove_snapshot("tall"));
  EXPECT_TRUE(mounts_under(dir_).empty());
  EXPECT_FALSE(exists(snap->dir));
}

TEST_F(StoreOverlayTest, ReadOnlyOverlaysOfOneAndOfTwoLayers) {
  std::string l1 = dir_ + "/l1", l2 = dir_ + "/l2", m = dir_ + "/m";
  spit(l1 + "/one", "1");
  spit(l2 + "/two", "2");
  std::filesystem::create_directories(m);
  ASSERT_TRUE(mount_overlay({l2, l1}, "", "", m));
  EXPECT_EQ(slurp(m + "/one"), "1");
  EXPECT_EQ(slurp(m + "/two"), "2");
  int fd = ::open((m + "/new").c_str(), O_CREAT | O_WRONLY, 0644);
  EXPECT_EQ(fd, -1);
  EXPECT_EQ(errno, EROFS);
  ASSERT_EQ(::umount2(m.c_str(), MNT_DETACH), 0);
  // One layer: overlay refuses a single lower without upper, so it is a read-only bind.
  ASSERT_TRUE(mount_overlay({l1}, "", "", m));
  EXPECT_EQ(slurp(m + "/one"), "1");
  fd = ::open((m + "/new").c_str(), O_CREAT | O_WRONLY, 0644);
  EXPECT_EQ(fd, -1);
  EXPECT_EQ(errno, EROFS);
  ASSERT_EQ(::umount2(m.c_str(), MNT_DETACH), 0);
  EXPECT_FALSE(exists(l1 + "/new"));
}

// The mount(2) fallback, driven directly (this kernel has lowerdir+).
TEST_F(StoreOverlayTest, LegacyMountWithEscapedPaths) {
  std::string l1 = dir_ + "/low:er,1", l2 = dir_ + "/l2", up = dir_ + "/up", work = dir_ + "/work",
              m = dir_ + "/m";
  spit(l1 + "/one", "1");
  spit(l2 + "/two", "2");
  for (const auto& d : {up, work, m}) std::filesystem::create_directories(d);
  auto st = mount_overlay_legacy(OverlaySpec{{l2, l1}, up, work, false}, m);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(slurp(m + "/one"), "1");
  EXPECT_EQ(slurp(m + "/two"), "2");
  spit(m + "/three", "3");
  EXPECT_EQ(slurp(up + "/three"), "3");
  ASSERT_EQ(::umount2(m.c_str(), MNT_DETACH), 0);
}

// A rootless runtime mounts inside its user namespace as that namespace's root: trusted.* is out
// of reach there, so the overlay keeps its whiteouts and opaque marks in user.* (userxattr).
TEST_F(StoreOverlayTest, InsideAUserNamespaceTheOverlayUsesUserXattr) {
  std::string l1 = dir_ + "/l1", l2 = dir_ + "/l2", up = dir_ + "/up", work = dir_ + "/work",
              m = dir_ + "/m";
  spit(l1 + "/a", "a");
  spit(l1 + "/d/inner", "i");
  spit(l2 + "/b", "b");
  for (const auto& d : {up, work, m}) std::filesystem::create_directories(d);
  int to_child[2], to_parent[2];
  ASSERT_EQ(::pipe2(to_child, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(to_parent, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char c = 0;
    auto say = [&](const std::string& text) {
      ssize_t n = ::write(to_parent[1], text.data(), text.size());
      (void)n;
    };
    if (::unshare(CLONE_NEWUSER) < 0) _exit(10);
    say("u");
    if (::read(to_child[0], &c, 1) != 1) _exit(11);  // our uid/gid maps are written
    if (::unshare(CLONE_NEWNS) < 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0)
      _exit(12);
    auto st = mount_overlay({l2, l1}, up, work, m);
    if (!st) {
      say(st.error().message());
      _exit(13);
    }
    std::string info = slurp("/proc/self/mountinfo");
    if (info.find(" " + m + " ") == std::string::npos ||
        info.find("userxattr") == std::string::npos)
      _exit(14);
    // A whiteout made through the overlay, and a write that lands in upper.
    if (::unlink((m + "/a").c_str()) < 0) _exit(15);
    spit(m + "/new", "n");
    _exit(0);
  }
  ::close(to_parent[1]);
  ::close(to_child[0]);
  char c = 0;
  ASSERT_EQ(::read(to_parent[0], &c, 1), 1);
  test::write_text("/proc/" + std::to_string(pid) + "/uid_map", "0 0 1\n");
  test::write_text("/proc/" + std::to_string(pid) + "/gid_map", "0 0 1\n");
  ASSERT_EQ(::write(to_child[1], "g", 1), 1);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  std::string said;
  char buf[512];
  for (ssize_t n; (n = ::read(to_parent[0], buf, sizeof buf)) > 0;)
    said.append(buf, static_cast<size_t>(n));
  ::close(to_parent[0]);
  ::close(to_child[1]);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "child status " << status << ": " << said;
  struct stat st;
  ASSERT_EQ(::lstat((up + "/a").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode) && st.st_rdev == 0) << "upper/a must be a whiteout";
  EXPECT_EQ(slurp(up + "/new"), "n");
  EXPECT_TRUE(exists(l1 + "/a"));
}

TEST_F(StoreOverlayTest, MountErrorsNameThePath) {
  std::string m = dir_ + "/m";
  std::filesystem::create_directories(m);
  auto st = mount_overlay({dir_ + "/missing-layer", dir_}, "", "", m);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find(dir_ + "/missing-layer"), std::string::npos)
      << st.error().message();
  EXPECT_NE(st.error().message().find("No such file"), std::string::npos) << st.error().message();
}

TEST_F(StoreOverlayTest, SkopeoAndUmociReadTheStore) {
  if (access("/usr/bin/skopeo", X_OK) != 0) GTEST_SKIP() << "skopeo not installed";
  Layer l = make_layer("std", {{"etc/os-release", "ID=forker\n"}});
  Descriptor manifest = put_image("x", {l});
  std::string root = dir_ + "/root";
  auto r =
      run_cmd({"/usr/bin/skopeo", "inspect", "oci:" + root + ":docker.io/library/x:latest"}, 60);
  ASSERT_EQ(r.status, 0) << r.err;
  json out = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(out.is_discarded()) << r.out;
  EXPECT_EQ(out["Digest"], manifest.digest.str());
  EXPECT_EQ(out["Layers"], json({l.blob.digest.str()}));
  EXPECT_EQ(out["Os"], "linux");
  if (access("/usr/bin/umoci", X_OK) == 0) {
    auto ls = run_cmd({"/usr/bin/umoci", "ls", "--layout", root}, 60);
    EXPECT_EQ(ls.status, 0) << ls.err;
    EXPECT_NE(ls.out.find("docker.io/library/x:latest"), std::string::npos) << ls.out;
  }
}

}  // namespace
}  // namespace forker::image
