// A private Debian docker-registry (distribution 2.8) on 127.0.0.1 for tests, and builders of
// small OCI images made offline from busybox-static with umoci, pushed with skopeo.
//
//   std::string err;
//   auto reg = RegistryFixture::start({}, &err);            // or {.htpasswd_user = "u", ...}
//   ASSERT_TRUE(reg) << err;
//   ASSERT_EQ(make_busybox_layout(dir + "/layout", "v1", {{.files = {{"/etc/a", "x"}}}}), "");
//   ASSERT_EQ(reg->push_layout(dir + "/layout", "v1", "test/busybox"), "");
//   // pull 127.0.0.1:PORT/test/busybox:v1 (reg->host_port())
//
// Builders and push_layout return "" on success, else the failing command and its output.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace forker::test {

struct RegistryFixtureOptions {
  // When both are set, the registry requires basic auth (htpasswd, bcrypt) with this account.
  std::string htpasswd_user;
  std::string htpasswd_password;
};

class RegistryFixture {
 public:
  // Tools the fixture needs that are not installed (docker-registry, skopeo, umoci, htpasswd,
  // zstd, tar, busybox); empty when all are there. Tests GTEST_SKIP() on a non-empty answer.
  static std::string missing_tools();
  // Starts a registry with its own temp dir, config and storage, on a free port; waits until
  // /v2/ answers. nullptr and *ERROR set when it does not come up.
  static std::unique_ptr<RegistryFixture> start(const RegistryFixtureOptions& options, std::string* error);
  // Stops the registry (by pid) and removes its directory.
  ~RegistryFixture();
  RegistryFixture(const RegistryFixture&) = delete;
  RegistryFixture& operator=(const RegistryFixture&) = delete;

  std::string host_port() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string url() const { return "http://" + host_port(); }
  const std::string& dir() const { return dir_; }
  // `skopeo copy [EXTRA...] oci:LAYOUT:TAG docker://HOST:PORT/NAME:TAG` (with the fixture's
  // credentials when it has auth). Pass {"--all"} for an index.
  std::string push_layout(const std::string& layout, const std::string& tag, const std::string& name,
                          const std::vector<std::string>& extra = {}) const;
  // Where the registry keeps blob DIGEST ("sha256:..."): for tests that corrupt it.
  std::string blob_data_path(const std::string& digest) const;

 private:
  RegistryFixture() = default;
  std::string dir_;
  RegistryFixtureOptions options_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// One layer added on top of the busybox base (each becomes exactly one layer):
//   files      absolute path -> content; parent directories are created
//   opaque_dir with files under it: the directory replaces all earlier content (.wh..wh..opq)
//   whiteout   a path removed by this layer (.wh.<name>); files must then be empty
struct TestLayer {
  std::map<std::string, std::string> files;
  std::string opaque_dir;
  std::string whiteout;
};

// An OCI layout at LAYOUT (created if missing; other tags kept) whose image TAG has a busybox
// base layer (/bin/busybox, /bin/sh and a few applets, /etc/passwd, /etc/os-release-forker)
// and then LAYERS. ARCHITECTURE sets the config's architecture ("" = amd64).
std::string make_busybox_layout(const std::string& layout, const std::string& tag,
                                const std::vector<TestLayer>& layers = {},
                                const std::string& architecture = "");
// Appends to image TAG of LAYOUT a tar+zstd layer holding FILES (built with tar and zstd, the
// manifest and config rewritten by hand, since skopeo 1.9 does not recompress to zstd).
std::string add_zstd_layer(const std::string& layout, const std::string& tag,
                           const std::map<std::string, std::string>& files);
// Makes images TAG-amd64 and TAG-arm64 (the arm64 one has /etc/arch-marker = "arm64") in
// LAYOUT and an index TAG listing them as linux/amd64 and linux/arm64; push with {"--all"}.
std::string make_two_platform_layout(const std::string& layout, const std::string& tag);

// sha256 of a file's bytes as "sha256:<hex>"; empty when it cannot be read.
std::string file_digest(const std::string& path);

}  // namespace forker::test
