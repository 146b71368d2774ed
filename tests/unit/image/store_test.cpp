// The image store without mounts: layout files, blobs, index.json under concurrent writers,
// names and ids, snapshots' directories, prune and its debris rule, overlay option strings.
#include "image/store.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "image/layer_unpack.hpp"
#include "image/overlay.hpp"
#include "image/platform.hpp"
#include "support/temp_dir.hpp"

namespace forker::image {
namespace {

using nlohmann::json;

using ::forker::test::TempDir;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename());
  return out;
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return st.st_mode & 07777;
}

// An image made by hand: one (fake) layer blob, a config naming its diff id, a manifest.
struct TestImage {
  Descriptor manifest;
  Digest config, layer, diff_id;
};

std::string config_for(const std::string& seed) {
  json config = {
      {"architecture", "amd64"},
      {"os", "linux"},
      {"created", "2024-05-01T10:00:00Z"},
      {"config", json::object()},
      {"rootfs", {{"type", "layers"}, {"diff_ids", {sha256_of("uncompressed " + seed).str()}}}},
      {"comment", seed}};  // distinct configs, distinct ids
  return config.dump();
}

TestImage put_image(Store& store, const std::string& seed) {
  TestImage img;
  std::string layer = "layer bytes " + seed;
  img.layer = *store.put_blob(layer);
  img.diff_id = sha256_of("uncompressed " + seed);
  std::string config_text = config_for(seed);
  img.config = *store.put_blob(config_text);
  json manifest = {
      {"schemaVersion", 2},
      {"mediaType", kMediaOciManifest},
      {"config",
       {{"mediaType", kMediaOciConfig},
        {"digest", img.config.str()},
        {"size", config_text.size()}}},
      {"layers",
       {{{"mediaType", kMediaOciLayerGzip}, {"digest", img.layer.str()}, {"size", layer.size()}}}}};
  std::string manifest_text = manifest.dump();
  img.manifest.media_type = std::string(kMediaOciManifest);
  img.manifest.digest = *store.put_blob(manifest_text);
  img.manifest.size = static_cast<int64_t>(manifest_text.size());
  return img;
}

class StoreTest : public ::testing::Test {
 protected:
  Store open() {
    auto s = Store::open(dir_.path() + "/root");
    EXPECT_TRUE(s) << s.error().message();
    return std::move(*s);
  }
  std::string root() const { return dir_.path() + "/root"; }
  TempDir dir_;
};

TEST_F(StoreTest, OpenWritesAnOciImageLayout) {
  Store store = open();
  EXPECT_EQ(store.root(), root());
  EXPECT_EQ(store.rootless(), ::geteuid() != 0);
  json layout = json::parse(slurp(root() + "/oci-layout"));
  EXPECT_EQ(layout, json({{"imageLayoutVersion", "1.0.0"}}));
  json index = json::parse(slurp(root() + "/index.json"));
  EXPECT_EQ(index["schemaVersion"], 2);
  EXPECT_EQ(index["mediaType"], kMediaOciIndex);
  EXPECT_TRUE(index["manifests"].is_array());
  EXPECT_TRUE(index["manifests"].empty());
  for (const char* d : {"blobs/sha256", "layers", "containers", "tmp", "locks"})
    EXPECT_TRUE(std::filesystem::is_directory(root() + "/" + d)) << d;
  EXPECT_EQ(mode_of(root()), 0711u);
  EXPECT_EQ(mode_of(root() + "/blobs/sha256"), 0755u);
  EXPECT_EQ(mode_of(root() + "/locks"), 0700u);
  EXPECT_EQ(mode_of(root() + "/tmp"), 0700u);
  // A second open keeps what is there.
  auto d = store.put_blob("kept");
  ASSERT_TRUE(d);
  Store again = open();
  EXPECT_TRUE(again.has_blob(*d));
  EXPECT_TRUE(entries(root() + "/tmp").empty());
}

TEST_F(StoreTest, OpenRefusesSomethingElsesDirectory) {
  std::filesystem::create_directories(root());
  spit(root() + "/oci-layout", "{\"imageLayoutVersion\":\"9.0\"}");
  auto s = Store::open(root());
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("not an OCI image layout"), std::string::npos)
      << s.error().message();
  spit(dir_.path() + "/file", "x");
  EXPECT_FALSE(Store::open(dir_.path() + "/file"));
}

TEST_F(StoreTest, DefaultRootFollowsTheEnvironment) {
  const char* saved = std::getenv("FORKER_STORAGE_ROOT");
  ::setenv("FORKER_STORAGE_ROOT", "/x/y", 1);
  EXPECT_EQ(Store::default_root(), "/x/y");
  ::unsetenv("FORKER_STORAGE_ROOT");
  if (::geteuid() == 0) {
    EXPECT_EQ(Store::default_root(), "/var/lib/forker");
  }
  if (saved != nullptr) ::setenv("FORKER_STORAGE_ROOT", saved, 1);
}

TEST_F(StoreTest, PutBlobVerifiesAndAMismatchLeavesNothing) {
  Store store = open();
  auto d = store.put_blob("hello");
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(*d, sha256_of("hello"));
  EXPECT_EQ(slurp(store.blob_path(*d)), "hello");
  EXPECT_EQ(mode_of(store.blob_path(*d)), 0644u);
  EXPECT_EQ(*store.read_blob(*d), "hello");
  EXPECT_TRUE(store.put_blob("hello", sha256_of("hello")));  // present: fine

  Digest wrong = sha256_of("other");
  auto bad = store.put_blob("not other", wrong);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find(wrong.str()), std::string::npos) << bad.error().message();
  EXPECT_FALSE(store.has_blob(wrong));
  EXPECT_FALSE(store.has_blob(sha256_of("not other")));
  EXPECT_TRUE(entries(root() + "/tmp").empty());

  // A blob changed on disk is refused when read, naming its digest.
  spit(store.blob_path(*d), "tampered");
  auto read = store.read_blob(*d);
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().message().find(d->str()), std::string::npos);
  auto missing = store.read_blob(wrong);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find(wrong.str()), std::string::npos);
}

TEST_F(StoreTest, CommitBlobFileChecksDigestAndSize) {
  Store store = open();
  std::string tmp = store.temp_path("download");
  EXPECT_EQ(tmp.rfind(root() + "/tmp/", 0), 0u) << tmp;
  spit(tmp, "payload");
  Digest d = sha256_of("payload");
  ASSERT_TRUE(store.commit_blob_file(tmp, d, 7));
  EXPECT_TRUE(store.has_blob(d));
  EXPECT_FALSE(exists(tmp));

  // Wrong size, wrong digest: an error, the temp file gone, no blob.
  std::string t2 = store.temp_path("download");
  spit(t2, "other payload");
  Digest d2 = sha256_of("other payload");
  EXPECT_FALSE(store.commit_blob_file(t2, d2, 3));
  EXPECT_FALSE(exists(t2));
  EXPECT_FALSE(store.has_blob(d2));
  std::string t3 = store.temp_path("download");
  spit(t3, "other payload");
  auto st = store.commit_blob_file(t3, sha256_of("x"));
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find(sha256_of("x").str()), std::string::npos);
  EXPECT_FALSE(exists(t3));
  EXPECT_FALSE(store.has_blob(sha256_of("x")));
  // Already present: the duplicate is dropped.
  std::string t4 = store.temp_path("download");
  spit(t4, "payload");
  ASSERT_TRUE(store.commit_blob_file(t4, d));
  EXPECT_FALSE(exists(t4));
  // Not under tmp/: refused and left alone.
  std::string outside = dir_.path() + "/outside";
  spit(outside, "other payload");
  EXPECT_FALSE(store.commit_blob_file(outside, d2));
  EXPECT_TRUE(exists(outside));
  EXPECT_FALSE(store.commit_blob_file(root() + "/tmp/../../outside", d2));
  EXPECT_TRUE(exists(outside));
}

TEST_F(StoreTest, TagImagesAndFindByFullFamiliarAndIdPrefix) {
  Store store = open();
  TestImage img = put_image(store, "a");
  ASSERT_TRUE(store.tag("busybox", img.manifest));
  ASSERT_TRUE(store.tag("localhost:5000/team/app:v1", img.manifest));

  json index = json::parse(slurp(root() + "/index.json"));
  ASSERT_EQ(index["manifests"].size(), 2u);
  EXPECT_EQ(index["manifests"][0]["annotations"][std::string(kRefNameAnnotation)],
            "docker.io/library/busybox:latest");
  EXPECT_EQ(index["manifests"][0]["digest"], img.manifest.digest.str());
  EXPECT_EQ(index["manifests"][0]["mediaType"], kMediaOciManifest);

  auto all = store.images();
  ASSERT_TRUE(all) << all.error().message();
  ASSERT_EQ(all->size(), 2u);
  const ImageRecord& r = (*all)[0];
  EXPECT_EQ(r.name, "docker.io/library/busybox:latest");
  EXPECT_EQ(r.id(), img.config.hex);
  EXPECT_EQ(r.manifest.digest, img.manifest.digest);
  ASSERT_EQ(r.layers.size(), 1u);
  EXPECT_EQ(r.layers[0].digest, img.layer);
  ASSERT_EQ(r.diff_ids.size(), 1u);
  EXPECT_EQ(r.diff_ids[0], img.diff_id);
  EXPECT_EQ(r.created, "2024-05-01T10:00:00Z");
  EXPECT_EQ(r.os, "linux");
  EXPECT_EQ(r.architecture, "amd64");
  EXPECT_EQ(r.size, r.config.size + r.layers[0].size);

  for (const char* name :
       {"busybox", "busybox:latest", "library/busybox", "docker.io/library/busybox:latest"}) {
    auto f = store.find_image(name);
    ASSERT_TRUE(f) << name << ": " << f.error().message();
    EXPECT_EQ(f->name, "docker.io/library/busybox:latest");
  }
  EXPECT_EQ(store.find_image("localhost:5000/team/app:v1")->name, "localhost:5000/team/app:v1");
  EXPECT_EQ(store.find_image(img.config.hex.substr(0, 4))->id(), img.config.hex);
  EXPECT_EQ(store.find_image("sha256:" + img.config.hex.substr(0, 12))->id(), img.config.hex);
  EXPECT_FALSE(store.find_image(img.config.hex.substr(0, 3)));
  auto none = store.find_image("nothere");
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message().find("no such image: nothere"), std::string::npos);

  // Tagging a name again moves it; untag removes exactly that name.
  TestImage other = put_image(store, "b");
  ASSERT_TRUE(store.tag("docker.io/library/busybox:latest", other.manifest));
  EXPECT_EQ(store.images()->size(), 2u);
  EXPECT_EQ(store.find_image("busybox")->id(), other.config.hex);
  ASSERT_TRUE(store.untag("busybox"));
  EXPECT_FALSE(store.find_image("busybox"));
  EXPECT_EQ(store.images()->size(), 1u);
  auto again = store.untag("busybox");
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message().find("docker.io/library/busybox:latest"), std::string::npos);
}

TEST_F(StoreTest, TagRefusesMissingManifestAndBadNames) {
  Store store = open();
  Descriptor missing{std::string(kMediaOciManifest), sha256_of("nope"), 4, {}};
  auto st = store.tag("x", missing);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find(missing.digest.str()), std::string::npos);
  TestImage img = put_image(store, "a");
  EXPECT_FALSE(store.tag("UPPER/case", img.manifest));
  EXPECT_FALSE(store.tag("", img.manifest));
  Descriptor wrong_size = img.manifest;
  wrong_size.size += 1;
  EXPECT_FALSE(store.tag("x", wrong_size));
  EXPECT_TRUE(json::parse(slurp(root() + "/index.json"))["manifests"].empty());
}

TEST_F(StoreTest, AmbiguousIdPrefixIsAnErrorWithTheCount) {
  Store store = open();
  // Two configs whose ids share 4 hex digits (a birthday search over a few hundred seeds).
  std::map<std::string, std::string> by_prefix;
  std::string a, b;
  for (int i = 0; a.empty(); ++i) {
    std::string seed = std::to_string(i);
    std::string prefix = sha256_of(config_for(seed)).hex.substr(0, 4);
    auto [it, fresh] = by_prefix.emplace(prefix, seed);
    if (!fresh) {
      a = it->second;
      b = seed;
    }
  }
  TestImage ia = put_image(store, a), ib = put_image(store, b);
  ASSERT_EQ(ia.config.hex.substr(0, 4), ib.config.hex.substr(0, 4));
  ASSERT_TRUE(store.tag("a", ia.manifest));
  ASSERT_TRUE(store.tag("b", ib.manifest));
  auto f = store.find_image(ia.config.hex.substr(0, 4));
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message().find("matches 2 images"), std::string::npos) << f.error().message();
  EXPECT_EQ(store.find_image(ia.config.hex.substr(0, 12))->id(), ia.config.hex);
}

TEST_F(StoreTest, BrokenEntriesAreSkippedByImagesAndNamedByFindImage) {
  Store store = open();
  TestImage good = put_image(store, "good"), bad = put_image(store, "bad");
  ASSERT_TRUE(store.tag("good", good.manifest));
  ASSERT_TRUE(store.tag("bad", bad.manifest));
  ASSERT_EQ(::unlink(store.blob_path(bad.config).c_str()), 0);
  std::vector<Error> broken;
  auto all = store.images(&broken);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].name, "docker.io/library/good:latest");
  ASSERT_EQ(broken.size(), 1u);
  EXPECT_NE(broken[0].message().find(bad.config.str()), std::string::npos) << broken[0].message();
  auto f = store.find_image("bad");
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message().find(bad.config.str()), std::string::npos) << f.error().message();
  // A corrupt manifest is named too.
  spit(store.blob_path(good.manifest.digest), "{not json");
  f = store.find_image("good");
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message().find(good.manifest.digest.str()), std::string::npos)
      << f.error().message();
}

TEST_F(StoreTest, IndexEntryShowsTheHostPlatformsChild) {
  Store store = open();
  TestImage host = put_image(store, "host"), foreign = put_image(store, "foreign");
  Platform p = Platform::host();
  json platform = {{"os", p.os}, {"architecture", p.architecture}};
  if (!p.variant.empty()) platform["variant"] = p.variant;
  json index = {{"schemaVersion", 2},
                {"mediaType", kMediaOciIndex},
                {"manifests",
                 {{{"mediaType", kMediaOciManifest},
                   {"digest", foreign.manifest.digest.str()},
                   {"size", foreign.manifest.size},
                   {"platform", {{"os", "linux"}, {"architecture", "s390x-none"}}}},
                  {{"mediaType", kMediaOciManifest},
                   {"digest", host.manifest.digest.str()},
                   {"size", host.manifest.size},
                   {"platform", platform}}}}};
  std::string text = index.dump();
  Descriptor d{
      std::string(kMediaOciIndex), *store.put_blob(text), static_cast<int64_t>(text.size()), {}};
  ASSERT_TRUE(store.tag("multi", d));
  auto f = store.find_image("multi");
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_EQ(f->id(), host.config.hex);
  EXPECT_EQ(f->manifest.digest, d.digest);
  // prune keeps both children and what they name.
  auto report = store.prune();
  ASSERT_TRUE(report) << report.error().message();
  EXPECT_TRUE(report->blobs_removed.empty());
  for (const TestImage* i : {&host, &foreign})
    for (const Digest& b : {i->manifest.digest, i->config, i->layer})
      EXPECT_TRUE(store.has_blob(b));
}

// Two processes each tag 50 names at once: every read-modify-write of index.json is under the
// metadata lock, so none is lost.
TEST_F(StoreTest, ConcurrentTaggersLoseNoName) {
  Store store = open();
  TestImage img = put_image(store, "shared");
  std::vector<pid_t> children;
  for (int writer = 0; writer < 2; ++writer) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto mine = Store::open(root());
      if (!mine) ::_exit(2);
      for (int i = 0; i < 50; ++i) {
        if (!mine->tag("w" + std::to_string(writer) + "/img:" + std::to_string(i), img.manifest))
          ::_exit(1);
      }
      ::_exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  auto all = store.images();
  ASSERT_TRUE(all);
  std::set<std::string> names;
  for (const auto& r : *all) names.insert(r.name);
  EXPECT_EQ(names.size(), 100u);
  EXPECT_TRUE(names.count("docker.io/w1/img:49"));
}

TEST_F(StoreTest, PruneKeepsReferencedAndRemovesTheRest) {
  Store store = open();
  TestImage kept = put_image(store, "kept"), dropped = put_image(store, "dropped");
  ASSERT_TRUE(store.tag("kept", kept.manifest));
  Digest stray = *store.put_blob("stray blob");
  // Layers: the image's, one only a snapshot uses, one nobody uses.
  Digest snap_layer = sha256_of("snapshot layer"), orphan = sha256_of("orphan layer");
  for (const Digest& l : {kept.diff_id, snap_layer, orphan}) {
    std::filesystem::create_directories(store.layer_path(l) + "/etc");
    spit(store.layer_path(l) + "/etc/file", "data");
  }
  std::filesystem::create_directories(root() + "/containers/c1/upper");
  spit(root() + "/containers/c1/snapshot.json", json({{"diff_ids", {snap_layer.str()}}}).dump());
  // Debris of a session that is gone; work of this live session.
  std::string dead = root() + "/tmp/0123456789abcdef-1-blob";
  spit(dead, "partial");
  std::filesystem::create_directories(root() + "/tmp/0123456789abcdef-2-layer/usr/bin");
  spit(root() + "/locks/session-0123456789abcdef.lock", "");
  std::string live = store.temp_path("in-progress");
  spit(live, "partial");
  // A blob being downloaded right now (its object lock held) is not touched either.
  Digest busy = *store.put_blob("busy blob");
  auto busy_lock = store.lock_object(busy);
  ASSERT_TRUE(busy_lock);

  auto report = store.prune();
  ASSERT_TRUE(report) << report.error().message();
  std::set<std::string> removed;
  for (const Digest& d : report->blobs_removed) removed.insert(d.hex);
  EXPECT_EQ(removed, (std::set<std::string>{dropped.manifest.digest.hex, dropped.config.hex,
                                            dropped.layer.hex, stray.hex}));
  ASSERT_EQ(report->layers_removed.size(), 1u);
  EXPECT_EQ(report->layers_removed[0], orphan);
  EXPECT_EQ(report->debris_removed, 2);
  EXPECT_GT(report->bytes_freed, 0);

  for (const Digest& b : {kept.manifest.digest, kept.config, kept.layer, busy})
    EXPECT_TRUE(store.has_blob(b)) << b.str();
  EXPECT_FALSE(store.has_blob(stray));
  EXPECT_TRUE(store.has_layer(kept.diff_id));
  EXPECT_TRUE(store.has_layer(snap_layer));
  EXPECT_FALSE(store.has_layer(orphan));
  EXPECT_FALSE(exists(dead));
  EXPECT_TRUE(exists(live));
  EXPECT_FALSE(exists(root() + "/locks/session-0123456789abcdef.lock"));
  EXPECT_TRUE(store.find_image("kept"));

  // A second prune has nothing left to do.
  auto again = store.prune();
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->blobs_removed.empty());
  EXPECT_TRUE(again->layers_removed.empty());
  EXPECT_EQ(again->debris_removed, 0);
}

TEST_F(StoreTest, TempEntryOfALiveStoreSurvivesAnotherStoresPrune) {
  std::string entry;
  auto pruner = Store::open(root());
  ASSERT_TRUE(pruner);
  {
    Store owner = open();
    entry = owner.temp_path("download");
    spit(entry, "in progress");
    auto r = pruner->prune();
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->debris_removed, 0);
    EXPECT_TRUE(exists(entry));
    auto du = pruner->disk_usage();
    ASSERT_TRUE(du);
    EXPECT_EQ(du->debris_bytes, 0);
  }
  // The owner closed its store (as a killed process would): now it is debris.
  auto du = pruner->disk_usage();
  ASSERT_TRUE(du);
  EXPECT_GT(du->debris_bytes, 0);
  auto r = pruner->prune();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->debris_removed, 1);
  EXPECT_FALSE(exists(entry));
}

TEST_F(StoreTest, DiskUsageCountsEachPart) {
  Store store = open();
  TestImage img = put_image(store, "du");
  ASSERT_TRUE(store.tag("du", img.manifest));
  std::filesystem::create_directories(store.layer_path(img.diff_id));
  spit(store.layer_path(img.diff_id) + "/f", std::string(10000, 'x'));
  auto du = store.disk_usage();
  ASSERT_TRUE(du) << du.error().message();
  EXPECT_EQ(du->images, 1);
  EXPECT_GT(du->blobs_bytes, 0);
  EXPECT_EQ(du->layers, 1);
  EXPECT_GE(du->layers_bytes, 10000);
  EXPECT_EQ(du->containers, 0);
  EXPECT_EQ(du->debris_bytes, 0);
}

TEST_F(StoreTest, SnapshotDirectoriesAndTheirRecord) {
  Store store = open();
  // Two layers already unpacked (directories made by hand), so no unpack is needed.
  TestImage a = put_image(store, "s1");
  ASSERT_TRUE(store.tag("snap", a.manifest));
  auto found = store.find_image("snap");
  ASSERT_TRUE(found) << found.error().message();
  ImageRecord image = *found;
  Digest lower2 = sha256_of("second layer");
  image.layers.push_back(Descriptor{std::string(kMediaOciLayerGzip), sha256_of("blob2"), 5, {}});
  image.diff_ids.push_back(lower2);
  for (const Digest& d : image.diff_ids) std::filesystem::create_directories(store.layer_path(d));

  auto snap = store.create_snapshot(image, "c-1_x.y");
  ASSERT_TRUE(snap) << snap.error().message();
  EXPECT_EQ(snap->dir, root() + "/containers/c-1_x.y");
  EXPECT_EQ(snap->lowers,
            (std::vector<std::string>{store.layer_path(lower2), store.layer_path(a.diff_id)}));
  for (const std::string& d : {snap->upper, snap->work, snap->rootfs})
    EXPECT_TRUE(std::filesystem::is_directory(d)) << d;
  json record = json::parse(slurp(snap->dir + "/snapshot.json"));
  EXPECT_EQ(record["diff_ids"], json({a.diff_id.str(), lower2.str()}));
  EXPECT_TRUE(entries(root() + "/tmp").empty());

  auto dup = store.create_snapshot(image, "c-1_x.y");
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message().find("exists"), std::string::npos);
  for (const std::string& bad :
       std::vector<std::string>{"", "-x", "a/b", "..", "a b", std::string(129, 'a')})
    EXPECT_FALSE(store.create_snapshot(image, bad)) << bad;
  // A layer whose blob is not stored cannot be unpacked: an error naming it, nothing made.
  ImageRecord missing = image;
  missing.diff_ids[1] = sha256_of("never unpacked");
  auto no = store.create_snapshot(missing, "c2");
  ASSERT_FALSE(no);
  EXPECT_NE(no.error().message().find(sha256_of("blob2").str()), std::string::npos)
      << no.error().message();
  EXPECT_FALSE(exists(root() + "/containers/c2"));
  EXPECT_TRUE(entries(root() + "/tmp").empty());

  ASSERT_TRUE(store.remove_snapshot("c-1_x.y"));
  EXPECT_FALSE(exists(snap->dir));
  EXPECT_TRUE(store.remove_snapshot("c-1_x.y"));  // idempotent
  EXPECT_FALSE(store.remove_snapshot("../x"));
}

TEST(OverlayMountData, EscapesSeparatorsAndRespectsThePage) {
  OverlaySpec spec{{"/l/top", "/l/a:b", "/l/c,d", "/l/e\\f"}, "/u", "/w", false};
  auto data = overlay_mount_data(spec, 4096);
  ASSERT_TRUE(data) << data.error().message();
  EXPECT_EQ(*data, "lowerdir=/l/top:/l/a\\:b:/l/c\\,d:/l/e\\\\f,upperdir=/u,workdir=/w");
  spec.upper.clear();
  spec.work.clear();
  spec.userxattr = true;
  EXPECT_EQ(*overlay_mount_data(spec, 4096),
            "lowerdir=/l/top:/l/a\\:b:/l/c\\,d:/l/e\\\\f,userxattr");

  OverlaySpec many;
  for (int i = 0; i < 150; ++i)
    many.lowers.push_back("/var/lib/forker/layers/" + sha256_of(std::to_string(i)).hex);
  auto too_long = overlay_mount_data(many, 4096);
  ASSERT_FALSE(too_long);
  EXPECT_NE(too_long.error().message().find("150 layers"), std::string::npos)
      << too_long.error().message();
  EXPECT_NE(too_long.error().message().find("lowerdir+"), std::string::npos);
}

TEST(OverlayMount, RefusesEmptyAndHalfSpecs) {
  EXPECT_FALSE(mount_overlay({}, "", "", "/nonexistent"));
  EXPECT_FALSE(mount_overlay({"/a", "/b"}, "/u", "", "/nonexistent"));
}

}  // namespace
}  // namespace forker::image
