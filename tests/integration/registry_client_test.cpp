// The registry client against a real local docker-registry: pulls of images built offline with
// umoci and pushed with skopeo (multi-layer with whiteouts, zstd, two platforms, htpasswd auth),
// resume, digest mismatch and the error texts.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "image/registry.hpp"
#include "integration/support/harness.hpp"
#include "integration/support/registry_fixture.hpp"

namespace forker::test {
namespace {

namespace fs = std::filesystem;
using image::Descriptor;
using image::Platform;
using image::Reference;
using image::RegistryClient;
using image::RegistryOptions;

class RegistryClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto missing = RegistryFixture::missing_tools(); !missing.empty()) GTEST_SKIP() << "missing " << missing;
    char tmpl[] = "/tmp/forker-regtest-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    registry_.reset();
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  void start_registry(const RegistryFixtureOptions& options = {}) {
    std::string err;
    registry_ = RegistryFixture::start(options, &err);
    ASSERT_TRUE(registry_) << err;
  }
  Reference ref(const std::string& name_tag) {
    auto r = Reference::parse(registry_->host_port() + "/" + name_tag);
    EXPECT_TRUE(r) << r.error().message();
    return *r;
  }
  // Options that never read the user's auth files.
  static RegistryOptions anonymous() {
    RegistryOptions o;
    o.auth_files.clear();
    return o;
  }
  // The multi-layer image: base, a file, a whiteout, an opaque /etc/conf.d.
  void push_multilayer(const std::string& name, const std::string& tag) {
    std::string layout = dir_ + "/layout";
    ASSERT_EQ(make_busybox_layout(layout, tag,
                                  {{.files = {{"/etc/conf.d/old", "old"}, {"/etc/conf.d/keep", "k"}, {"/data/a", "a"}}},
                                   {.whiteout = "/etc/os-release-forker"},
                                   {.files = {{"/etc/conf.d/new", "new"}}, .opaque_dir = "/etc/conf.d"}}),
              "");
    ASSERT_EQ(registry_->push_layout(layout, tag, name), "");
  }

  std::string dir_;
  std::unique_ptr<RegistryFixture> registry_;
};

// Sets an environment variable for one scope.
struct ScopedEnv {
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  const char* name_;
  std::optional<std::string> old_;
};

TEST_F(RegistryClientTest, ResolvesAndFetchesAMultiLayerImage) {
  start_registry();
  push_multilayer("test/multi", "v1");
  std::mutex mu;
  std::map<std::string, std::pair<int64_t, int64_t>> last_progress;
  RegistryOptions o = anonymous();
  o.progress = [&](const image::Digest& d, int64_t done, int64_t total) {
    std::lock_guard lock(mu);
    last_progress[d.str()] = {done, total};
  };
  RegistryClient client(o);
  Reference r = ref("test/multi:v1");
  auto img = client.resolve(r, Platform{"linux", "amd64", ""});
  ASSERT_TRUE(img) << img.error().message();
  EXPECT_EQ(img->media_type, image::kMediaOciManifest);
  EXPECT_EQ(image::sha256_of(img->manifest), img->digest);
  EXPECT_TRUE(img->index.empty());
  ASSERT_EQ(img->layers.size(), 4u);  // base + files + whiteout + opaque
  for (const auto& l : img->layers) EXPECT_EQ(l.media_type, image::kMediaOciLayerGzip);

  auto config = client.fetch_blob_bytes(r, img->config);
  ASSERT_TRUE(config) << config.error().message();
  auto cfg = nlohmann::json::parse(*config);
  EXPECT_EQ(cfg["rootfs"]["diff_ids"].size(), 4u);
  EXPECT_EQ(cfg["config"]["Cmd"][0], "/bin/sh");

  std::vector<image::BlobJob> jobs;
  for (const auto& l : img->layers) jobs.push_back({l, dir_ + "/blob-" + l.digest.hex});
  auto st = client.fetch_blobs(r, jobs);
  ASSERT_TRUE(st) << st.error().message();
  for (const auto& j : jobs) {
    EXPECT_EQ(file_digest(j.dest_path), j.descriptor.digest.str());
    EXPECT_EQ(static_cast<int64_t>(fs::file_size(j.dest_path)), j.descriptor.size);
    // The same bytes umoci wrote into the layout.
    EXPECT_EQ(read_text(j.dest_path), read_text(dir_ + "/layout/blobs/sha256/" + j.descriptor.digest.hex));
    auto p = last_progress[j.descriptor.digest.str()];
    EXPECT_EQ(p.first, j.descriptor.size);
    EXPECT_EQ(p.second, j.descriptor.size);
  }

  // The whiteout and the opaque marker are in the layers as pushed.
  std::string listing;
  for (size_t i = 2; i < jobs.size(); ++i)
    listing += run_cmd({"/usr/bin/tar", "-tzf", jobs[i].dest_path}).out;
  EXPECT_NE(listing.find(".wh.os-release-forker"), std::string::npos) << listing;
  EXPECT_NE(listing.find(".wh..wh..opq"), std::string::npos) << listing;

  // By digest: same manifest; a reference whose digest the registry does not have is unknown.
  auto by_digest = client.resolve(r.with_digest(img->digest));
  ASSERT_TRUE(by_digest) << by_digest.error().message();
  EXPECT_EQ(by_digest->manifest, img->manifest);
}

TEST_F(RegistryClientTest, UnknownTagAndRepositoryAreClearErrors) {
  start_registry();
  push_multilayer("test/multi", "v1");
  RegistryClient client(anonymous());
  auto tag = client.resolve(ref("test/multi:nope"));
  ASSERT_FALSE(tag);
  EXPECT_NE(tag.error().message().find("manifest unknown: " + registry_->host_port() + "/test/multi:nope"),
            std::string::npos)
      << tag.error().message();
  auto repo = client.resolve(ref("test/absent:v1"));
  ASSERT_FALSE(repo);
  EXPECT_NE(repo.error().message().find("test/absent"), std::string::npos) << repo.error().message();

  // Nothing listens here: a connection error names the URL (after the retries).
  RegistryOptions o = anonymous();
  o.retries = 1;
  RegistryClient nowhere(o);
  auto dead = Reference::parse("127.0.0.1:1/x:y");
  ASSERT_TRUE(dead);
  auto down = nowhere.resolve(*dead);
  ASSERT_FALSE(down);
  EXPECT_NE(down.error().message().find("http://127.0.0.1:1/v2/x/manifests/y"), std::string::npos)
      << down.error().message();
}

TEST_F(RegistryClientTest, AuthRegistryUsesTheAuthFileAndRefusesWithoutIt) {
  start_registry({.htpasswd_user = "tester", .htpasswd_password = "s3cret:pw"});
  push_multilayer("private/img", "v1");
  Reference r = ref("private/img:v1");

  {  // No credentials: the 401 is reported with the registry's message and a hint.
    RegistryClient client(anonymous());
    auto img = client.resolve(r);
    ASSERT_FALSE(img);
    std::string msg = img.error().message();
    EXPECT_NE(msg.find("HTTP 401"), std::string::npos) << msg;
    EXPECT_NE(msg.find("no credentials for " + registry_->host_port()), std::string::npos) << msg;
  }
  {  // Wrong password: refused by check_login and by resolve.
    RegistryClient client(anonymous());
    auto login = client.check_login(registry_->host_port(), {"tester", "wrong"});
    ASSERT_FALSE(login);
    EXPECT_NE(login.error().message().find("401"), std::string::npos) << login.error().message();
    EXPECT_TRUE(client.check_login(registry_->host_port(), {"tester", "s3cret:pw"}));
  }
  // Credentials from ${REGISTRY_AUTH_FILE}, written as `forker login` would.
  std::string auth_file = dir_ + "/auth/auth.json";
  ASSERT_TRUE(image::save_credentials(registry_->host_port(), {"tester", "s3cret:pw"}, auth_file));
  ScopedEnv env("REGISTRY_AUTH_FILE", auth_file);
  RegistryClient client;  // default options: the auth files from the environment
  ASSERT_FALSE(client.options().auth_files.empty());
  EXPECT_EQ(client.options().auth_files.front(), auth_file);
  auto img = client.resolve(r);
  ASSERT_TRUE(img) << img.error().message();
  std::string dest = dir_ + "/config";
  ASSERT_TRUE(client.fetch_blob(r, img->config, dest));
  EXPECT_EQ(file_digest(dest), img->config.digest.str());
  auto layer = client.fetch_blob(r, img->layers[0], dir_ + "/layer0");
  ASSERT_TRUE(layer) << layer.error().message();
}

TEST_F(RegistryClientTest, IndexPicksThePlatform) {
  start_registry();
  std::string layout = dir_ + "/layout";
  ASSERT_EQ(make_two_platform_layout(layout, "multi"), "");
  ASSERT_EQ(registry_->push_layout(layout, "multi", "test/plat", {"--all"}), "");
  RegistryClient client(anonymous());
  Reference r = ref("test/plat:multi");

  auto arm = client.resolve(r, *Platform::parse("linux/arm64"));
  ASSERT_TRUE(arm) << arm.error().message();
  ASSERT_TRUE(arm->platform);
  EXPECT_EQ(arm->platform->architecture, "arm64");
  ASSERT_TRUE(arm->index_digest);
  EXPECT_EQ(image::sha256_of(arm->index), *arm->index_digest);
  EXPECT_EQ(arm->index_media_type, image::kMediaOciIndex);
  EXPECT_EQ(arm->layers.size(), 2u);  // base + the marker layer
  auto cfg = client.fetch_blob_bytes(r, arm->config);
  ASSERT_TRUE(cfg) << cfg.error().message();
  EXPECT_EQ(nlohmann::json::parse(*cfg)["architecture"], "arm64");
  std::string marker = dir_ + "/marker-layer";
  ASSERT_TRUE(client.fetch_blob(r, arm->layers[1], marker));
  EXPECT_NE(run_cmd({"/usr/bin/tar", "-tzf", marker}).out.find("etc/arch-marker"), std::string::npos);

  auto amd = client.resolve(r, *Platform::parse("linux/amd64"));
  ASSERT_TRUE(amd) << amd.error().message();
  EXPECT_EQ(amd->platform->architecture, "amd64");
  EXPECT_EQ(amd->layers.size(), 1u);
  EXPECT_NE(amd->digest, arm->digest);
  EXPECT_EQ(*amd->index_digest, *arm->index_digest);

  Platform host = Platform::host();
  if (host.architecture == "amd64" || host.architecture == "arm64") {
    auto def = client.resolve(r);
    ASSERT_TRUE(def) << def.error().message();
    EXPECT_EQ(def->platform->architecture, host.architecture);
  }
  auto none = client.resolve(r, *Platform::parse("linux/s390x"));
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message().find("linux/arm64"), std::string::npos) << none.error().message();
}

TEST_F(RegistryClientTest, ReportsAZstdLayer) {
  start_registry();
  std::string layout = dir_ + "/layout";
  ASSERT_EQ(make_busybox_layout(layout, "z"), "");
  ASSERT_EQ(add_zstd_layer(layout, "z", {{"/etc/zstd-file", "compressed with zstd\n"}}), "");
  ASSERT_EQ(registry_->push_layout(layout, "z", "test/zstd"), "");
  RegistryClient client(anonymous());
  Reference r = ref("test/zstd:z");
  auto img = client.resolve(r);
  ASSERT_TRUE(img) << img.error().message();
  ASSERT_EQ(img->layers.size(), 2u);
  EXPECT_EQ(img->layers[1].media_type, image::kMediaOciLayerZstd);
  std::string dest = dir_ + "/zstd-layer";
  ASSERT_TRUE(client.fetch_blob(r, img->layers[1], dest));
  EXPECT_EQ(file_digest(dest), img->layers[1].digest.str());
  EXPECT_EQ(run_cmd({"/usr/bin/zstd", "-q", "-t", dest}).status, 0);
}

TEST_F(RegistryClientTest, ResumesAPartialBlob) {
  start_registry();
  push_multilayer("test/multi", "v1");
  std::vector<int64_t> starts;
  RegistryOptions o = anonymous();
  bool first_call = true;
  o.progress = [&](const image::Digest&, int64_t done, int64_t) {
    if (first_call) starts.push_back(done);
    first_call = false;
  };
  RegistryClient client(o);
  Reference r = ref("test/multi:v1");
  auto img = client.resolve(r);
  ASSERT_TRUE(img) << img.error().message();
  const Descriptor& base = img->layers[0];  // ~1 MiB busybox layer
  ASSERT_GT(base.size, 100000);
  std::string dest = dir_ + "/base";
  ASSERT_TRUE(client.fetch_blob(r, base, dest));
  std::string whole = read_text(dest);

  ASSERT_EQ(truncate(dest.c_str(), base.size / 2), 0);
  first_call = true;
  auto st = client.fetch_blob(r, base, dest);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(file_digest(dest), base.digest.str());
  EXPECT_EQ(read_text(dest), whole);
  // The second download started from the half already there (progress counts resumed bytes).
  ASSERT_EQ(starts.size(), 2u);
  EXPECT_GT(starts[1], base.size / 2);

  // A complete file is verified, not fetched again.
  first_call = true;
  ASSERT_TRUE(client.fetch_blob(r, base, dest));
  EXPECT_EQ(starts.back(), base.size);

  // A partial file whose prefix is wrong resumes, fails the digest check and is removed.
  std::string bad = whole.substr(0, static_cast<size_t>(base.size / 2));
  bad[10] = static_cast<char>(bad[10] ^ 0x55);
  write_text(dest, bad);
  auto mismatch = client.fetch_blob(r, base, dest);
  ASSERT_FALSE(mismatch);
  EXPECT_NE(mismatch.error().message().find("digest mismatch for blob " + base.digest.str()), std::string::npos)
      << mismatch.error().message();
  EXPECT_FALSE(fs::exists(dest));
  ASSERT_TRUE(client.fetch_blob(r, base, dest));  // and the next try starts clean
  EXPECT_EQ(file_digest(dest), base.digest.str());
}

TEST_F(RegistryClientTest, CorruptBlobInTheRegistryIsRefusedAndLeavesNoFile) {
  start_registry();
  push_multilayer("test/multi", "v1");
  RegistryClient client(anonymous());
  Reference r = ref("test/multi:v1");
  auto img = client.resolve(r);
  ASSERT_TRUE(img) << img.error().message();
  const Descriptor& victim = img->layers[1];
  std::string stored = registry_->blob_data_path(victim.digest.str());
  ASSERT_TRUE(fs::exists(stored)) << stored;
  std::string bytes = read_text(stored);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0xff);  // same size, other content
  write_text(stored, bytes);

  std::string dest = dir_ + "/victim";
  auto st = client.fetch_blob(r, victim, dest);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("digest mismatch for blob " + victim.digest.str()), std::string::npos)
      << st.error().message();
  EXPECT_FALSE(fs::exists(dest));

  // In a parallel fetch the bad blob's error is the one returned, and its file is gone too.
  std::vector<image::BlobJob> jobs;
  for (const auto& l : img->layers) jobs.push_back({l, dir_ + "/p-" + l.digest.hex});
  auto all = client.fetch_blobs(r, jobs);
  ASSERT_FALSE(all);
  EXPECT_NE(all.error().message().find(victim.digest.str()), std::string::npos) << all.error().message();
  EXPECT_FALSE(fs::exists(dir_ + "/p-" + victim.digest.hex));

  // A manifest whose bytes do not match the digest asked for is refused.
  auto other = image::Digest::parse("sha256:" + std::string(64, '0'));
  ASSERT_TRUE(other);
  auto wrong = client.resolve(r.with_digest(*other));
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message().find("manifest unknown"), std::string::npos) << wrong.error().message();
}

}  // namespace
}  // namespace forker::test
