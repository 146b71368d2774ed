// The `forker` image commands, run as the real binary against a private --storage-root:
// import (rootfs tar, docker save, OCI layout), images, image inspect, tag, rmi, save (checked
// with skopeo and umoci), system df/prune, the built-in busybox, and hostile archives.
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "image/digest.hpp"
#include "image/layer_unpack.hpp"
#include "integration/support/harness.hpp"

namespace forker::test {
namespace {

using nlohmann::json;

struct TarMember {
  std::string name;
  std::string content;
  std::string symlink;  // set: a symlink to this target
};

void write_tar(const std::string& path, const std::vector<TarMember>& members) {
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
  for (const auto& m : members) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, m.name.c_str());
    if (!m.symlink.empty()) {
      archive_entry_set_filetype(e, AE_IFLNK);
      archive_entry_set_symlink(e, m.symlink.c_str());
      archive_entry_set_perm(e, 0777);
    } else {
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_perm(e, 0644);
      archive_entry_set_size(e, static_cast<int64_t>(m.content.size()));
    }
    archive_write_header(a, e);
    if (m.symlink.empty()) archive_write_data(a, m.content.data(), m.content.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
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
  std::sort(out.begin(), out.end());
  return out;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// run_cmd does not search PATH: the absolute path of a host tool, or "" when it is missing.
std::string tool(const char* name) {
  for (const char* dir : {"/usr/local/bin/", "/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/"}) {
    std::string p = std::string(dir) + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

class ForkerImageCli : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/forker-image-cli-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    root_ = dir_ + "/store";
  }
  void TearDown() override {
    if (!dir_.empty())
      for (const auto& e : remove_forker_networks(root_)) ADD_FAILURE() << e;
    (void)image::remove_tree(dir_);
  }

  RunResult forker(const std::vector<std::string>& args, const std::string& root = "",
                   const std::string& stdin_text = "") {
    std::vector<std::string> argv{FORKER_CLI_BIN, "--storage-root", root.empty() ? root_ : root};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_cmd(argv, 120, stdin_text);
  }
  // Runs and expects success; returns stdout.
  std::string ok(const std::vector<std::string>& args, const std::string& root = "") {
    RunResult r = forker(args, root);
    EXPECT_EQ(r.status, 0) << "forker " << testing::PrintToString(args) << "\n" << r.err;
    return r.out;
  }

  // A small rootfs tar made by tar(1): a file, a directory, a symlink. Made once per test.
  std::string rootfs_tar() {
    std::string tar = dir_ + "/rootfs.tar";
    if (exists(tar)) return tar;
    std::string src = dir_ + "/rootfs-src";
    ::mkdir(src.c_str(), 0755);
    ::mkdir((src + "/etc").c_str(), 0755);
    write_text(src + "/etc/hello", "hello from forker\n");
    EXPECT_EQ(::symlink("etc/hello", (src + "/hello-link").c_str()), 0);
    EXPECT_EQ(run_cmd({tool("tar"), "-C", src, "-cf", tar, "."}).status, 0);
    return tar;
  }

  // Imports a rootfs as NAME; returns the printed id ("sha256:...").
  std::string import_rootfs(const std::string& name) {
    std::string out = ok({"import", rootfs_tar(), name});
    EXPECT_EQ(out.size(), 72u) << out;  // "sha256:" + 64 + "\n"
    return out.substr(0, out.size() - 1);
  }

  json inspect(const std::string& name, const std::string& root = "") {
    std::string out = ok({"image", "inspect", name}, root);
    json j = json::parse(out, nullptr, false);
    EXPECT_TRUE(j.is_array() && j.size() == 1) << out;
    return j.is_array() && !j.empty() ? j[0] : json::object();
  }

  // What a refused import must leave as it was.
  struct Snapshot {
    std::string images;
    std::vector<std::string> blobs, layers, tmp;
    bool operator==(const Snapshot&) const = default;
  };
  Snapshot snapshot() {
    // index.json itself rather than the table, whose CREATED column moves with the clock.
    return {read_text(root_ + "/index.json"), list_dir(root_ + "/blobs/sha256"), list_dir(root_ + "/layers"),
            list_dir(root_ + "/tmp")};
  }

  // A docker save archive: one image NAME with one layer (LAYER_TAR's bytes).
  struct DockerSave {
    std::string layer;          // layer tar bytes
    std::string config;         // config bytes
    std::string config_member;  // "<hex>.json"
    json manifest;
    std::vector<TarMember> extra;
  };
  DockerSave docker_save(const std::string& name) {
    DockerSave d;
    std::string layer_path = dir_ + "/layer-src.tar";
    write_tar(layer_path, {{"etc/from-docker-save", "saved\n", ""}});
    d.layer = read_text(layer_path);
    json config{{"architecture", "amd64"},
                {"os", "linux"},
                {"created", "2024-05-01T12:00:00Z"},
                {"config", {{"Cmd", {"sh"}}}},
                {"rootfs",
                 {{"type", "layers"}, {"diff_ids", {image::sha256_of(d.layer).str()}}}}};
    d.config = config.dump();
    d.config_member = image::sha256_of(d.config).hex + ".json";
    d.manifest = json::array(
        {{{"Config", d.config_member}, {"RepoTags", {name}}, {"Layers", {"0abc/layer.tar"}}}});
    return d;
  }
  std::string write_docker_save(const DockerSave& d, const std::string& file) {
    std::vector<TarMember> members{{"0abc/layer.tar", d.layer, ""},
                                   {d.config_member, d.config, ""},
                                   {"manifest.json", d.manifest.dump(), ""}};
    members.insert(members.end(), d.extra.begin(), d.extra.end());
    std::string path = dir_ + "/" + file;
    write_tar(path, members);
    return path;
  }

  // Imports PATH expecting a refusal whose one-line error mentions WHAT, with the store as it was.
  void expect_refused(const std::string& path, const std::string& what, const std::string& name = "") {
    Snapshot before = snapshot();
    std::vector<std::string> args{"import", path};
    if (!name.empty()) args.push_back(name);
    RunResult r = forker(args);
    EXPECT_NE(r.status, 0) << path;
    EXPECT_EQ(r.out, "");
    EXPECT_TRUE(r.err.starts_with("forker: import ")) << r.err;
    EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    Snapshot after = snapshot();
    EXPECT_EQ(after.images, before.images);
    EXPECT_EQ(after.blobs, before.blobs);
    EXPECT_EQ(after.layers, before.layers);
    EXPECT_TRUE(after.tmp.empty()) << testing::PrintToString(after.tmp);
  }

  std::string dir_, root_;
};

TEST_F(ForkerImageCli, VersionAndUsageErrors) {
  RunResult v = run_cmd({FORKER_CLI_BIN, "--version"});
  EXPECT_EQ(v.status, 0);
  EXPECT_TRUE(v.out.starts_with("forker version ")) << v.out;
  RunResult bad = forker({"images", "--no-such-flag"});
  EXPECT_NE(bad.status, 0);
  EXPECT_TRUE(bad.err.starts_with("forker: ")) << bad.err;
  RunResult missing = forker({"image", "inspect", "nothere:1"});
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("nothere"), std::string::npos) << missing.err;
}

TEST_F(ForkerImageCli, ImportRootfsTarThenImagesAndInspect) {
  REQUIRE_ROOT();
  std::string id = import_rootfs("myimg:1");
  EXPECT_TRUE(id.starts_with("sha256:")) << id;

  std::string table = ok({"images"});
  EXPECT_TRUE(table.starts_with("REPOSITORY")) << table;
  EXPECT_NE(table.find("IMAGE ID"), std::string::npos);
  EXPECT_NE(table.find("myimg"), std::string::npos) << table;
  EXPECT_NE(table.find(id.substr(7, 12)), std::string::npos) << table;
  EXPECT_NE(table.find(" ago "), std::string::npos) << table;
  EXPECT_EQ(ok({"images", "-q"}), id.substr(7, 12) + "\n");
  json row = json::parse(ok({"images", "--format", "json"}));
  EXPECT_EQ(row["Repository"], "myimg");
  EXPECT_EQ(row["Tag"], "1");
  EXPECT_EQ(row["ID"], id.substr(7, 12));

  json j = inspect("myimg:1");
  EXPECT_EQ(j["Id"], id);
  EXPECT_EQ(j["RepoTags"], json::array({"myimg:1"}));
  ASSERT_EQ(j["RepoDigests"].size(), 1u);
  EXPECT_TRUE(j["RepoDigests"][0].get<std::string>().starts_with("myimg@sha256:"));
  EXPECT_EQ(j["Os"], "linux");
  EXPECT_FALSE(j["Architecture"].get<std::string>().empty());
  EXPECT_FALSE(j["Created"].get<std::string>().empty());
  EXPECT_GT(j["Size"].get<int64_t>(), 0);
  EXPECT_EQ(j["RootFS"]["Type"], "layers");
  ASSERT_EQ(j["RootFS"]["Layers"].size(), 1u);
  EXPECT_TRUE(j["Config"].is_object());
  // The layer is unpacked under its diff id, files and links as tar(1) wrote them.
  std::string layer = root_ + "/layers/" + j["RootFS"]["Layers"][0].get<std::string>().substr(7);
  EXPECT_EQ(read_text(layer + "/etc/hello"), "hello from forker\n");
  char target[64] = {};
  EXPECT_GT(::readlink((layer + "/hello-link").c_str(), target, sizeof target - 1), 0);
  EXPECT_STREQ(target, "etc/hello");

  // Same tar from stdin; a rootfs without a name is refused.
  RunResult piped = forker({"import", "-", "piped"}, "", read_text(rootfs_tar()));
  EXPECT_EQ(piped.status, 0) << piped.err;
  EXPECT_EQ(inspect("piped")["RootFS"], j["RootFS"]);
  RunResult unnamed = forker({"import", rootfs_tar()});
  EXPECT_EQ(unnamed.status, 1);
  EXPECT_NE(unnamed.err.find("NAME"), std::string::npos) << unnamed.err;
  EXPECT_TRUE(list_dir(root_ + "/tmp").empty());
}

TEST_F(ForkerImageCli, TagAndRmi) {
  REQUIRE_ROOT();
  std::string id = import_rootfs("first:1");
  EXPECT_EQ(ok({"tag", "first:1", "second:2"}), "");
  std::string table = ok({"images"});
  EXPECT_NE(table.find("second"), std::string::npos) << table;
  EXPECT_EQ(ok({"images", "-q"}), id.substr(7, 12) + "\n");  // unique ids
  json j = inspect("second:2");
  EXPECT_EQ(j["RepoTags"], json::array({"first:1", "second:2"}));

  // By id while two repositories use it: refused unless forced.
  RunResult by_id = forker({"rmi", id.substr(7, 12)});
  EXPECT_EQ(by_id.status, 1);
  EXPECT_NE(by_id.err.find("multiple repositories"), std::string::npos) << by_id.err;

  EXPECT_EQ(ok({"rmi", "second:2"}), "Untagged: second:2\n");
  EXPECT_FALSE(list_dir(root_ + "/layers").empty());
  EXPECT_EQ(ok({"rmi", "first:1"}), "Untagged: first:1\nDeleted: " + id + "\n");
  EXPECT_EQ(ok({"images", "-q"}), "");
  // The last name took the image's objects with it.
  EXPECT_TRUE(list_dir(root_ + "/blobs/sha256").empty());
  EXPECT_TRUE(list_dir(root_ + "/layers").empty());

  std::string id2 = import_rootfs("a:1");
  ok({"tag", "a:1", "b:1"});
  EXPECT_EQ(ok({"rmi", "-f", id2.substr(7, 12)}),
            "Untagged: a:1\nUntagged: b:1\nDeleted: " + id2 + "\n");
  EXPECT_NE(forker({"rmi", "a:1"}).status, 0);
}

TEST_F(ForkerImageCli, BuiltinBusyboxIsMadeOfflineAndDeterministic) {
  REQUIRE_ROOT();
  if (!exists("/bin/busybox")) GTEST_SKIP() << "no /bin/busybox (busybox-static)";
  // Listing does not make it; asking for it by name does.
  EXPECT_EQ(ok({"images", "-q"}), "");
  json a = inspect("busybox");
  json b = inspect("busybox", dir_ + "/other-store");
  EXPECT_EQ(a["Id"], b["Id"]);
  EXPECT_EQ(a["RootFS"], b["RootFS"]);
  EXPECT_EQ(a["RepoTags"], json::array({"busybox:latest"}));
  EXPECT_EQ(a["Config"]["Cmd"], json::array({"sh"}));
  EXPECT_EQ(a["Config"]["Env"][0], "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  std::string table = ok({"images"});
  EXPECT_NE(table.find("busybox      latest"), std::string::npos) << table;

  std::string layer = root_ + "/layers/" + a["RootFS"]["Layers"][0].get<std::string>().substr(7);
  EXPECT_TRUE(exists(layer + "/bin/busybox"));
  char target[64] = {};
  EXPECT_GT(::readlink((layer + "/bin/sh").c_str(), target, sizeof target - 1), 0);
  EXPECT_STREQ(target, "/bin/busybox");
  EXPECT_NE(read_text(layer + "/etc/passwd").find("root:x:0:0:"), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat((layer + "/tmp").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);

  // The image's layer, imported as a rootfs tarball, is the same layer.
  ok({"save", "busybox", "-o", dir_ + "/bb.tar"});
  std::string extracted = dir_ + "/bb";
  ::mkdir(extracted.c_str(), 0755);
  ASSERT_EQ(run_cmd({tool("tar"), "-C", extracted, "-xf", dir_ + "/bb.tar"}).status, 0);
  json manifest = json::parse(read_text(extracted + "/blobs/sha256/" +
      json::parse(read_text(extracted + "/index.json"))["manifests"][0]["digest"].get<std::string>().substr(7)));
  std::string layer_blob = extracted + "/blobs/sha256/" +
                           manifest["layers"][0]["digest"].get<std::string>().substr(7);
  ok({"import", layer_blob, "again:1"});
  EXPECT_EQ(inspect("again:1")["RootFS"], a["RootFS"]);
}

TEST_F(ForkerImageCli, SaveIsReadBySkopeoUmociAndReimportsToTheSameId) {
  REQUIRE_ROOT();
  std::string id = import_rootfs("saved/app:v1");
  std::string archive = dir_ + "/saved.tar";
  EXPECT_EQ(ok({"save", "saved/app:v1", "-o", archive}), "");
  // Deterministic, and the same bytes on a pipe.
  RunResult piped = forker({"save", "saved/app:v1"});
  EXPECT_EQ(piped.status, 0) << piped.err;
  EXPECT_EQ(piped.out.size(), read_text(archive).size());
  EXPECT_TRUE(image::sha256_of(piped.out) == image::sha256_of(read_text(archive)));

  std::string manifest_digest = inspect("saved/app:v1")["RepoDigests"][0].get<std::string>();
  manifest_digest = manifest_digest.substr(manifest_digest.find('@') + 1);
  if (!tool("skopeo").empty()) {
    RunResult s = run_cmd({tool("skopeo"), "inspect", "oci-archive:" + archive}, 120);
    ASSERT_EQ(s.status, 0) << s.err;
    json info = json::parse(s.out, nullptr, false);
    EXPECT_EQ(info["Digest"], manifest_digest) << s.out;
    EXPECT_EQ(info["Os"], "linux");
  }
  if (!tool("umoci").empty()) {
    std::string layout = dir_ + "/layout";
    ::mkdir(layout.c_str(), 0755);
    ASSERT_EQ(run_cmd({tool("tar"), "-C", layout, "-xf", archive}).status, 0);
    std::string bundle = dir_ + "/bundle";
    RunResult u = run_cmd({tool("umoci"), "unpack", "--image",
                           layout + ":docker.io/saved/app:v1", bundle}, 120);
    ASSERT_EQ(u.status, 0) << u.err;
    EXPECT_EQ(read_text(bundle + "/rootfs/etc/hello"), "hello from forker\n");
  }
  std::string other = dir_ + "/store2";
  EXPECT_EQ(ok({"import", archive}, other), id + "\n");
  EXPECT_NE(ok({"images"}, other).find("saved/app"), std::string::npos);
  EXPECT_EQ(inspect("saved/app:v1", other)["RepoDigests"], inspect("saved/app:v1")["RepoDigests"]);
  // NAME renames the one image of an archive; an OCI layout directory imports too.
  EXPECT_EQ(ok({"import", archive, "renamed:2"}, other), id + "\n");
  EXPECT_EQ(inspect("renamed:2", other)["Id"], id);
  std::string layout = dir_ + "/layout-dir";
  ::mkdir(layout.c_str(), 0755);
  ASSERT_EQ(run_cmd({tool("tar"), "-C", layout, "-xf", archive}).status, 0);
  std::string third = dir_ + "/store3";
  EXPECT_EQ(ok({"import", layout}, third), id + "\n");
}

TEST_F(ForkerImageCli, DockerSaveArchiveImports) {
  REQUIRE_ROOT();
  DockerSave d = docker_save("dsave:1");
  std::string path = write_docker_save(d, "dsave.tar");
  std::string config_id = "sha256:" + d.config_member.substr(0, 64);
  EXPECT_EQ(ok({"import", path}), config_id + "\n");
  json j = inspect("dsave:1");
  EXPECT_EQ(j["Id"], config_id);
  EXPECT_EQ(j["Created"], "2024-05-01T12:00:00Z");
  EXPECT_EQ(j["Config"]["Cmd"], json::array({"sh"}));
  std::string layer = root_ + "/layers/" + image::sha256_of(d.layer).hex;
  EXPECT_EQ(read_text(layer + "/etc/from-docker-save"), "saved\n");
  // A NAME replaces RepoTags for a one-image archive.
  EXPECT_EQ(ok({"import", path, "other:7"}), config_id + "\n");
  EXPECT_EQ(inspect("other:7")["Id"], config_id);
  EXPECT_TRUE(list_dir(root_ + "/tmp").empty());
}

TEST_F(ForkerImageCli, HostileArchivesAreRefusedAndLeaveTheStoreAsItWas) {
  REQUIRE_ROOT();
  import_rootfs("keep:1");  // something that must survive every refusal

  {  // Layers naming a path outside the archive.
    DockerSave d = docker_save("evil:1");
    d.manifest[0]["Layers"] = {"../../etc/shadow"};
    expect_refused(write_docker_save(d, "dotdot.tar"), "unsafe archive path");
    d.manifest[0]["Layers"] = {"/etc/shadow"};
    expect_refused(write_docker_save(d, "abs.tar"), "unsafe archive path");
  }
  {  // The config is not what its name (its digest) says.
    DockerSave d = docker_save("evil:1");
    d.config_member = std::string(64, 'a') + ".json";
    d.manifest[0]["Config"] = d.config_member;
    expect_refused(write_docker_save(d, "config-digest.tar"), "does not match the digest in its name");
  }
  {  // The layer is a symlink member (to a host file).
    DockerSave d = docker_save("evil:1");
    d.manifest[0]["Layers"] = {"link/layer.tar"};
    d.extra.push_back({"link/layer.tar", "", "/etc/passwd"});
    expect_refused(write_docker_save(d, "symlink.tar"), "symlink");
  }
  {  // The layer is not the one the config's diff id names.
    DockerSave d = docker_save("evil:1");
    json config = json::parse(d.config);
    config["rootfs"]["diff_ids"][0] = "sha256:" + std::string(64, 'b');
    d.config = config.dump();
    d.config_member = image::sha256_of(d.config).hex + ".json";
    d.manifest[0]["Config"] = d.config_member;
    expect_refused(write_docker_save(d, "diffid.tar"), "diff id");
  }
  {  // A layer whose own entries climb out: the unpack refuses it and the import is undone.
    DockerSave d = docker_save("evil:1");
    std::string layer_path = dir_ + "/climb.tar";
    write_tar(layer_path, {{"../../../../../tmp/forker-escaped-by-import", "x", ""}});
    d.layer = read_text(layer_path);
    json config = json::parse(d.config);
    config["rootfs"]["diff_ids"][0] = image::sha256_of(d.layer).str();
    d.config = config.dump();
    d.config_member = image::sha256_of(d.config).hex + ".json";
    d.manifest[0]["Config"] = d.config_member;
    expect_refused(write_docker_save(d, "climb-layer.tar"), "..");
    EXPECT_FALSE(exists("/tmp/forker-escaped-by-import"));
  }
  {  // Two members of one name.
    DockerSave d = docker_save("evil:1");
    d.extra.push_back({"0abc/layer.tar", "other bytes", ""});
    expect_refused(write_docker_save(d, "twice.tar"), "appears twice");
  }
  {  // OCI layout whose index names a manifest the blob does not hash to.
    std::string manifest = R"({"schemaVersion":2,"config":{},"layers":[]})";
    json index{{"schemaVersion", 2},
               {"manifests",
                {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                  {"digest", "sha256:" + std::string(64, 'c')},
                  {"size", manifest.size()}}}}};
    std::string path = dir_ + "/oci-bad.tar";
    write_tar(path, {{"oci-layout", R"({"imageLayoutVersion":"1.0.0"})", ""},
                     {"index.json", index.dump(), ""},
                     {"blobs/sha256/" + std::string(64, 'c'), manifest, ""}});
    expect_refused(path, "does not match its digest", "x:1");
  }
  {  // OCI layout directory whose blob is a symlink to a host file.
    std::string layout = dir_ + "/oci-link";
    ::mkdir(layout.c_str(), 0755);
    ::mkdir((layout + "/blobs").c_str(), 0755);
    ::mkdir((layout + "/blobs/sha256").c_str(), 0755);
    write_text(layout + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    std::string hex = image::sha256_of(read_text("/etc/hostname")).hex;
    json index{{"schemaVersion", 2},
               {"manifests",
                {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                  {"digest", "sha256:" + hex},
                  {"size", read_text("/etc/hostname").size()}}}}};
    write_text(layout + "/index.json", index.dump());
    ASSERT_EQ(::symlink("/etc/hostname", (layout + "/blobs/sha256/" + hex).c_str()), 0);
    expect_refused(layout, "openat2", "x:1");
  }
  // Not an archive at all.
  write_text(dir_ + "/junk", "junk\n");
  expect_refused(dir_ + "/junk", "Unrecognized archive format", "x:1");
  EXPECT_NE(ok({"images"}).find("keep"), std::string::npos);
}

TEST_F(ForkerImageCli, SystemDfAndPrune) {
  REQUIRE_ROOT();
  std::string id = import_rootfs("kept:1");
  // Debris of a dead session and a blob nothing names.
  write_text(root_ + "/tmp/00000000deadbeef-1-import-layer", std::string(10000, 'x'));
  std::string stray = "stray blob\n";
  std::string stray_hex = image::sha256_of(stray).hex;
  write_text(root_ + "/blobs/sha256/" + stray_hex, stray);

  std::string df = ok({"system", "df"});
  EXPECT_TRUE(df.starts_with("TYPE")) << df;
  for (const char* row : {"Images", "Layers", "Containers", "Build debris"})
    EXPECT_NE(df.find(row), std::string::npos) << df;
  EXPECT_EQ(df.find("Build debris        -         0B"), std::string::npos) << df;

  // Without -f it asks; "n" keeps everything.
  RunResult asked = forker({"system", "prune"}, "", "n\n");
  EXPECT_EQ(asked.status, 0);
  EXPECT_NE(asked.out.find("Are you sure"), std::string::npos);
  EXPECT_TRUE(exists(root_ + "/blobs/sha256/" + stray_hex));

  std::string pruned = ok({"system", "prune", "-f"});
  EXPECT_NE(pruned.find("Deleted blob: sha256:" + stray_hex), std::string::npos) << pruned;
  EXPECT_NE(pruned.find("Deleted debris: 1 entries"), std::string::npos) << pruned;
  EXPECT_NE(pruned.find("Total reclaimed space: "), std::string::npos) << pruned;
  EXPECT_FALSE(exists(root_ + "/blobs/sha256/" + stray_hex));
  EXPECT_TRUE(list_dir(root_ + "/tmp").empty());
  EXPECT_EQ(inspect("kept:1")["Id"], id);  // named content stays
  EXPECT_EQ(ok({"system", "prune", "-f"}), "Total reclaimed space: 0B\n");
}

}  // namespace
}  // namespace forker::test
