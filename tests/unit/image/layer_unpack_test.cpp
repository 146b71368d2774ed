// unpack_layer and remove_tree on archives built in memory with libarchive's writer. Each test
// unpacks into <sandbox>/dest next to <sandbox>/outside (a victim file and directory that hostile
// entries aim at) and checks afterwards that nothing else appeared in the sandbox and that the
// victims are unchanged. Root-only parts (ownership, devices, overlay mounts) skip otherwise.
#include "image/layer_unpack.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <grp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <clocale>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "core/unique_fd.hpp"
#include "image/digest.hpp"

namespace forker::image {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// ---- building archives ------------------------------------------------------------------------

struct TarEntry {
  std::string path;
  unsigned type = AE_IFREG;
  mode_t perm = 0644;
  std::string data;
  std::string symlink;
  std::string hardlink;
  int64_t uid = 0;
  int64_t gid = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
  unsigned dev_major = 0;
  unsigned dev_minor = 0;
  time_t mtime = 1600000000;
};

TarEntry file(std::string path, std::string data, mode_t perm = 0644) {
  TarEntry e;
  e.path = std::move(path);
  e.data = std::move(data);
  e.perm = perm;
  return e;
}
TarEntry dir(std::string path, mode_t perm = 0755) {
  TarEntry e;
  e.path = std::move(path);
  e.type = AE_IFDIR;
  e.perm = perm;
  return e;
}
TarEntry symlink_entry(std::string path, std::string target) {
  TarEntry e;
  e.path = std::move(path);
  e.type = AE_IFLNK;
  e.perm = 0777;
  e.symlink = std::move(target);
  return e;
}
TarEntry hardlink_entry(std::string path, std::string target) {
  TarEntry e;
  e.path = std::move(path);
  e.hardlink = std::move(target);
  return e;
}
TarEntry node(std::string path, unsigned type, unsigned major = 0, unsigned minor = 0) {
  TarEntry e;
  e.path = std::move(path);
  e.type = type;
  e.perm = 0600;
  e.dev_major = major;
  e.dev_minor = minor;
  return e;
}

la_ssize_t append_cb(archive*, void* out, const void* buf, size_t len) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(buf), len);
  return static_cast<la_ssize_t>(len);
}

// A pax tar (SCHILY.xattr for xattrs), padded to libarchive's 10 KiB blocks like real ones.
std::string make_tar(const std::vector<TarEntry>& entries) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax(a);
  EXPECT_EQ(archive_write_open(a, &out, nullptr, append_cb, nullptr), ARCHIVE_OK);
  for (const auto& t : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, t.path.c_str());
    archive_entry_set_uid(e, t.uid);
    archive_entry_set_gid(e, t.gid);
    archive_entry_set_mtime(e, t.mtime, 0);
    if (!t.hardlink.empty()) {
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_perm(e, t.perm);
      archive_entry_set_hardlink(e, t.hardlink.c_str());
      archive_entry_set_size(e, 0);
    } else {
      archive_entry_set_filetype(e, t.type);
      archive_entry_set_perm(e, t.perm);
      if (t.type == AE_IFLNK) archive_entry_set_symlink(e, t.symlink.c_str());
      if (t.type == AE_IFCHR || t.type == AE_IFBLK)
        archive_entry_set_rdev(e, makedev(t.dev_major, t.dev_minor));
      archive_entry_set_size(e, t.type == AE_IFREG ? static_cast<la_int64_t>(t.data.size()) : 0);
    }
    for (const auto& [name, value] : t.xattrs)
      archive_entry_xattr_add_entry(e, name.c_str(), value.data(), value.size());
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << t.path << ": " << archive_error_string(a);
    if (!t.data.empty()) {
      EXPECT_EQ(archive_write_data(a, t.data.data(), t.data.size()),
                static_cast<la_ssize_t>(t.data.size()));
    }
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

// Compresses bytes as they are (raw format), so the uncompressed stream is exactly PLAIN.
std::string compress(const std::string& plain, int filter) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_add_filter(a, filter);
  archive_write_set_format_raw(a);
  archive_write_set_bytes_in_last_block(a, 1);
  EXPECT_EQ(archive_write_open(a, &out, nullptr, append_cb, nullptr), ARCHIVE_OK);
  archive_entry* e = archive_entry_new();
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_size(e, static_cast<la_int64_t>(plain.size()));
  EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
  EXPECT_EQ(archive_write_data(a, plain.data(), plain.size()),
            static_cast<la_ssize_t>(plain.size()));
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

UniqueFd memfd_with(const std::string& bytes) {
  UniqueFd fd(memfd_create("layer", MFD_CLOEXEC));
  EXPECT_TRUE(fd.valid());
  EXPECT_EQ(write(fd.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  lseek(fd.get(), 0, SEEK_SET);
  return fd;
}

std::string xattr_of(const std::string& path, const char* name) {
  char buf[256];
  ssize_t n = lgetxattr(path.c_str(), name, buf, sizeof buf);
  return n < 0 ? std::string("<none>") : std::string(buf, static_cast<size_t>(n));
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool is_root() { return geteuid() == 0; }

// A file capability granting cap_net_raw (vfs_cap_data revision 2, effective).
std::string net_raw_capability() {
  uint32_t words[5] = {0x02000001, 1u << 13, 0, 0, 0};
  return std::string(reinterpret_cast<const char*>(words), sizeof words);
}

// ---- fixture -------------------------------------------------------------------------------

class LayerUnpackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/var/tmp/forker-unpack-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    sandbox_ = tmpl;
    dest_ = sandbox_ + "/dest";
    outside_ = sandbox_ + "/outside";
    ASSERT_EQ(mkdir(dest_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(outside_.c_str(), 0755), 0);
    std::ofstream(outside_ + "/victim") << "original";
    ASSERT_EQ(stat("/etc/passwd", &host_passwd_), 0);
  }
  void TearDown() override {
    // Nothing beside dest and outside, the victim untouched, the host's /etc as it was.
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(sandbox_)) names.insert(e.path().filename());
    EXPECT_EQ(names, (std::set<std::string>{"dest", "outside"}));
    std::set<std::string> outside_names;
    for (const auto& e : fs::directory_iterator(outside_))
      outside_names.insert(e.path().filename());
    EXPECT_EQ(outside_names, std::set<std::string>{"victim"});
    struct stat st {};
    EXPECT_EQ(stat((outside_ + "/victim").c_str(), &st), 0);
    EXPECT_EQ(st.st_nlink, 1u);
    EXPECT_EQ(st.st_mode & 07777, 0644u);
    EXPECT_EQ(read_text(outside_ + "/victim"), "original");
    struct stat passwd {};
    EXPECT_EQ(stat("/etc/passwd", &passwd), 0);
    EXPECT_EQ(passwd.st_ino, host_passwd_.st_ino);
    EXPECT_EQ(passwd.st_mtim.tv_sec, host_passwd_.st_mtim.tv_sec);
    EXPECT_EQ(passwd.st_nlink, host_passwd_.st_nlink);
    EXPECT_FALSE(fs::exists("/etc/forker-unpack-probe"));
    Status removed = remove_tree(sandbox_);
    EXPECT_TRUE(removed) << removed.error().message();
    std::error_code ec;
    fs::remove_all(sandbox_, ec);
  }

  // Not root, every unpack is a rootless one (chown would fail).
  Result<UnpackResult> unpack(const std::string& bytes, UnpackOptions options = {}) {
    if (!is_root()) options.rootless = true;
    UniqueFd fd = memfd_with(bytes);
    return unpack_layer(fd.get(), dest_, options);
  }
  // Expects a refusal naming ENTRY, on one line.
  void expect_refused(const std::string& bytes, const std::string& entry, const std::string& why,
                      const UnpackOptions& options = {}) {
    auto r = unpack(bytes, options);
    ASSERT_FALSE(r) << "unpacked although " << entry << " is hostile";
    std::string msg = r.error().message();
    EXPECT_THAT(msg, HasSubstr("\"" + entry + "\"")) << msg;
    EXPECT_THAT(msg, HasSubstr(why)) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  // remove_tree (under test too) copes with the 0555 directories a rootless unpack leaves.
  void reset_dest() {
    Status removed = remove_tree(dest_);
    ASSERT_TRUE(removed) << removed.error().message();
    ASSERT_EQ(mkdir(dest_.c_str(), 0755), 0);
  }
  std::string at(const std::string& rel) const { return dest_ + "/" + rel; }
  struct stat lstat_of(const std::string& rel) const {
    struct stat st {};
    EXPECT_EQ(lstat(at(rel).c_str(), &st), 0) << rel;
    return st;
  }

  std::string sandbox_;
  std::string dest_;
  std::string outside_;
  struct stat host_passwd_ {};
};

// ---- normal layers ----------------------------------------------------------------------------

TEST_F(LayerUnpackTest, FilesDirectoriesLinksModesAndTimes) {
  TarEntry su = file("usr/bin/su", "#!/bin/su\n", 04755);
  TarEntry shadow = file("etc/shadow", "root:*:\n", 0640);
  shadow.gid = 42;
  TarEntry home = dir("home/user", 0700);
  home.uid = 1000;
  home.gid = 1000;
  home.mtime = 1500000000;
  TarEntry owned = file("home/user/notes", "hello", 0600);
  owned.uid = 1000;
  owned.gid = 1000;
  TarEntry tmp = dir("tmp", 01777);
  TarEntry sgid = dir("srv/shared", 02775);
  std::string big(3 * 1024 * 1024 + 17, 'x');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + i % 26);
  std::string bytes = make_tar({dir("./", 0755), dir("etc"), file("/etc/hosts", "127.0.0.1 x\n"),
                                shadow, su, home, owned, tmp, sgid, file("./var/big", big),
                                symlink_entry("bin", "usr/bin"),
                                symlink_entry("etc/abs", "/etc/hosts"),
                                hardlink_entry("usr/bin/su-again", "usr/bin/su"),
                                node("run/fifo", AE_IFIFO)});
  auto r = unpack(bytes);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->entries, 14u);
  EXPECT_EQ(r->tar_bytes, bytes.size());
  EXPECT_EQ(r->diff_id, sha256_of(bytes));

  EXPECT_EQ(read_text(at("etc/hosts")), "127.0.0.1 x\n");
  EXPECT_EQ(read_text(at("var/big")), big);
  EXPECT_EQ(lstat_of("var").st_mode & 07777, 0755u) << "a missing parent is made 0755";
  EXPECT_EQ(lstat_of("usr/bin/su").st_mode & 07777, 04755u) << "setuid survives chown";
  EXPECT_EQ(lstat_of("etc/shadow").st_mode & 07777, 0640u);
  EXPECT_EQ(lstat_of("tmp").st_mode & 07777, 01777u);
  EXPECT_EQ(lstat_of("srv/shared").st_mode & 07777, 02775u);
  EXPECT_EQ(lstat_of("home/user").st_mode & 07777, 0700u);
  EXPECT_EQ(lstat_of("home/user/notes").st_mtim.tv_sec, 1600000000);
  EXPECT_EQ(lstat_of("home/user").st_mtim.tv_sec, 1500000000) << "set after its children";
  EXPECT_TRUE(S_ISLNK(lstat_of("bin").st_mode));
  EXPECT_EQ(fs::read_symlink(at("bin")), "usr/bin");
  EXPECT_EQ(fs::read_symlink(at("etc/abs")), "/etc/hosts");
  EXPECT_EQ(lstat_of("usr/bin/su-again").st_ino, lstat_of("usr/bin/su").st_ino);
  EXPECT_EQ(lstat_of("usr/bin/su").st_nlink, 2u);
  EXPECT_TRUE(S_ISFIFO(lstat_of("run/fifo").st_mode));
  EXPECT_EQ(lstat_of("run/fifo").st_mode & 07777, 0600u);
  if (is_root()) {
    EXPECT_EQ(lstat_of("home/user").st_uid, 1000u);
    EXPECT_EQ(lstat_of("home/user/notes").st_gid, 1000u);
    EXPECT_EQ(lstat_of("etc/shadow").st_gid, 42u);
    EXPECT_EQ(lstat_of("usr/bin/su").st_uid, 0u);
  }
}

TEST_F(LayerUnpackTest, DevicesAndOwnershipAsRoot) {
  if (!is_root()) GTEST_SKIP() << "needs root";
  TarEntry null_dev = node("dev/null", AE_IFCHR, 1, 3);
  null_dev.perm = 0666;
  TarEntry loop = node("dev/loop9", AE_IFBLK, 7, 9);
  loop.uid = 0;
  loop.gid = 6;
  TarEntry link = symlink_entry("home/link", "nowhere");
  link.uid = 1000;
  link.gid = 1001;
  auto r = unpack(make_tar({null_dev, loop, link}));
  ASSERT_TRUE(r) << r.error().message();
  auto st = lstat_of("dev/null");
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  EXPECT_EQ(st.st_mode & 07777, 0666u);
  st = lstat_of("dev/loop9");
  EXPECT_TRUE(S_ISBLK(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(7, 9));
  EXPECT_EQ(st.st_gid, 6u);
  st = lstat_of("home/link");
  EXPECT_EQ(st.st_uid, 1000u) << "lchown, not the target";
  EXPECT_EQ(st.st_gid, 1001u);
}

TEST_F(LayerUnpackTest, XattrsIncludingFileCapabilities) {
  TarEntry ping = file("bin/ping", "ELF", 0755);
  ping.xattrs = {{"security.capability", net_raw_capability()}, {"user.origin", "debian"}};
  TarEntry d = dir("data");
  d.xattrs = {{"user.kind", "dir"}};
  TarEntry forged = dir("forged");
  forged.xattrs = {{"trusted.overlay.opaque", "y"}, {"user.overlay.redirect", "/x"}};
  TarEntry link = symlink_entry("bin/link", "ping");
  link.xattrs = {{"user.not-on-symlinks", "x"}};
  auto r = unpack(make_tar({ping, d, forged, link}));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(xattr_of(at("bin/ping"), "user.origin"), "debian");
  EXPECT_EQ(xattr_of(at("data"), "user.kind"), "dir");
  EXPECT_EQ(xattr_of(at("forged"), "trusted.overlay.opaque"), "<none>") << "overlay xattrs dropped";
  EXPECT_EQ(xattr_of(at("forged"), "user.overlay.redirect"), "<none>");
  if (is_root()) {
    EXPECT_EQ(xattr_of(at("bin/ping"), "security.capability"), net_raw_capability())
        << "chown clears it, so it must be set after";
    EXPECT_EQ(lstat_of("bin/ping").st_mode & 07777, 0755u);
  }
}

TEST_F(LayerUnpackTest, Utf8NamesFromPaxHeaders) {
  // Written under a UTF-8 locale, so the pax header carries the name as UTF-8; read back under
  // the "C" locale the tests run in, where libarchive cannot convert it to a multibyte string.
  std::string saved = setlocale(LC_CTYPE, nullptr);
  if (setlocale(LC_CTYPE, "C.UTF-8") == nullptr) GTEST_SKIP() << "no C.UTF-8 locale";
  std::string bytes = make_tar({file("caf\xc3\xa9/\xc3\xbcnicode \xe2\x9c\x93", "u")});
  setlocale(LC_CTYPE, saved.c_str());
  auto r = unpack(bytes);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(read_text(at("caf\xc3\xa9/\xc3\xbcnicode \xe2\x9c\x93")), "u");
}

TEST_F(LayerUnpackTest, LaterEntriesReplaceEarlierOnes) {
  TarEntry d1 = dir("keep", 0700);
  TarEntry d2 = dir("keep", 0750);
  d2.mtime = 1400000000;
  auto r = unpack(make_tar({file("x", "file first"), dir("x"), file("x/inside", "1"),  //
                            dir("gone"), file("gone/child", "c"), file("gone", "now a file"),
                            d1, file("keep/child", "kept"), d2,
                            symlink_entry("s", outside_ + "/victim"), file("s", "not through"),
                            file("f", "old"), file("f", "new"), symlink_entry("l", "a"),
                            symlink_entry("l", "b")}));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(S_ISDIR(lstat_of("x").st_mode));
  EXPECT_EQ(read_text(at("x/inside")), "1");
  EXPECT_EQ(read_text(at("gone")), "now a file");
  EXPECT_EQ(read_text(at("keep/child")), "kept") << "a directory over a directory keeps it";
  EXPECT_EQ(lstat_of("keep").st_mode & 07777, 0750u);
  EXPECT_EQ(lstat_of("keep").st_mtim.tv_sec, 1400000000);
  EXPECT_TRUE(S_ISREG(lstat_of("s").st_mode)) << "the symlink is replaced, not written through";
  EXPECT_EQ(read_text(at("s")), "not through");
  EXPECT_EQ(read_text(at("f")), "new");
  EXPECT_EQ(fs::read_symlink(at("l")), "b");
}

// ---- the diff id ---------------------------------------------------------------------------

TEST_F(LayerUnpackTest, PlainGzipAndZstdGiveTheSameDiffId) {
  std::string plain = make_tar({dir("a"), file("a/b", std::string(200000, 'z')),
                                file("c", "small")});
  Digest want = sha256_of(plain);
  struct Variant {
    const char* name;
    std::string bytes;
  };
  std::vector<Variant> variants = {{"plain", plain},
                                   {"gzip", compress(plain, ARCHIVE_FILTER_GZIP)},
                                   {"zstd", compress(plain, ARCHIVE_FILTER_ZSTD)},
                                   {"xz", compress(plain, ARCHIVE_FILTER_XZ)}};
  for (const auto& v : variants) {
    SCOPED_TRACE(v.name);
    if (std::string(v.name) != "plain") {
      EXPECT_NE(v.bytes, plain);
    }
    reset_dest();
    UnpackOptions options;
    options.expected_diff_id = want;
    auto r = unpack(v.bytes, options);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->diff_id, want);
    EXPECT_EQ(r->tar_bytes, plain.size());
    EXPECT_EQ(r->entries, 3u);
    EXPECT_EQ(read_text(at("a/b")), std::string(200000, 'z'));
  }
}

TEST_F(LayerUnpackTest, BytesAfterTheEndBlocksAreHashed) {
  std::string bytes = make_tar({file("a", "1")}) + "trailing garbage that is not a header";
  auto r = unpack(bytes);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->diff_id, sha256_of(bytes));
  EXPECT_EQ(r->tar_bytes, bytes.size());
  reset_dest();
  std::string gz = compress(bytes, ARCHIVE_FILTER_GZIP);
  r = unpack(gz);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->diff_id, sha256_of(bytes));
}

TEST_F(LayerUnpackTest, ExpectedDiffIdMismatchIsAnError) {
  std::string bytes = make_tar({file("a", "1")});
  UnpackOptions options;
  options.expected_diff_id = sha256_of("something else");
  auto r = unpack(bytes, options);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "verify layer diff id: expected " +
                                     sha256_of("something else").str() + ", got " +
                                     sha256_of(bytes).str());
}

TEST_F(LayerUnpackTest, StreamsFromAPipe) {
  std::string plain = make_tar({file("big", std::string(5 << 20, 'p')), file("small", "s")});
  std::string gz = compress(plain, ARCHIVE_FILTER_GZIP);
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  std::thread writer([&] {
    size_t off = 0;
    while (off < gz.size()) {
      ssize_t n = write(write_end.get(), gz.data() + off, std::min<size_t>(gz.size() - off, 7000));
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    write_end.reset();
  });
  UnpackOptions options;
  options.rootless = !is_root();
  auto r = unpack_layer(read_end.get(), dest_, options);
  writer.join();
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->diff_id, sha256_of(plain));
  EXPECT_EQ(fs::file_size(at("big")), 5u << 20);
}

// ---- whiteouts ------------------------------------------------------------------------------

TEST_F(LayerUnpackTest, WhiteoutsBecomeCharDevicesAndOpaqueDirsGetTheXattr) {
  if (!is_root()) GTEST_SKIP() << "trusted.overlay.* needs root";
  auto r = unpack(make_tar({dir("a"), file("a/.wh.gone", ""), file(".wh.top", ""),
                            dir("b"), file("b/.wh..wh..opq", ""), file("b/keep", "k"),
                            file("c/.wh..wh..opq", ""),  // the directory has no entry of its own
                            file("d/f", "mine"), file("d/.wh.f", ""),
                            dir(".wh..wh.plnk"), file(".wh..wh.plnk/123.456", "aufs")}));
  ASSERT_TRUE(r) << r.error().message();
  for (const char* w : {"a/gone", "top"}) {
    auto st = lstat_of(w);
    EXPECT_TRUE(S_ISCHR(st.st_mode)) << w;
    EXPECT_EQ(st.st_rdev, makedev(0, 0)) << w;
  }
  EXPECT_EQ(xattr_of(at("b"), "trusted.overlay.opaque"), "y");
  EXPECT_EQ(xattr_of(at("c"), "trusted.overlay.opaque"), "y");
  EXPECT_EQ(xattr_of(at("a"), "trusted.overlay.opaque"), "<none>");
  EXPECT_EQ(read_text(at("b/keep")), "k");
  EXPECT_EQ(read_text(at("d/f")), "mine") << "a whiteout only hides lower layers";
  for (const auto& e : fs::recursive_directory_iterator(dest_))
    EXPECT_EQ(e.path().filename().string().find(".wh."), std::string::npos) << e.path();
}

// Mounts the layer over a lower directory and looks: the kernel is the judge of whiteouts.
class OverlayMount {
 public:
  OverlayMount(const std::string& target, const std::string& options) : target_(target) {
    mounted_ = mount("overlay", target.c_str(), "overlay", 0, options.c_str()) == 0;
    err_ = errno;
  }
  ~OverlayMount() {
    if (mounted_) umount2(target_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  int err() const { return err_; }

 private:
  std::string target_;
  bool mounted_ = false;
  int err_ = 0;
};

TEST_F(LayerUnpackTest, OverlayHonoursBothWhiteoutForms) {
  if (!is_root()) GTEST_SKIP() << "mounting overlay needs root";
  for (bool xattr_form : {false, true}) {
    SCOPED_TRACE(xattr_form ? "xattr whiteouts (rootless store)" : "char device whiteouts");
    reset_dest();
    std::string lower = dest_ + "/lower", layer = dest_ + "/layer", mnt = dest_ + "/mnt";
    fs::create_directories(lower + "/a");
    fs::create_directories(lower + "/b");
    fs::create_directories(layer);
    fs::create_directories(mnt);
    std::ofstream(lower + "/a/gone") << "x";
    std::ofstream(lower + "/a/stays") << "x";
    std::ofstream(lower + "/b/old") << "x";
    std::ofstream(lower + "/top") << "x";
    UnpackOptions options;
    options.rootless = xattr_form;
    options.xattr_whiteouts = xattr_form;
    UniqueFd fd = memfd_with(make_tar({file("a/.wh.gone", ""), file(".wh.top", ""),
                                       file("b/.wh..wh..opq", ""), file("b/new", "n")}));
    auto r = unpack_layer(fd.get(), layer, options);
    ASSERT_TRUE(r) << r.error().message();
    std::string opts = "lowerdir=" + layer + ":" + lower + (xattr_form ? ",userxattr" : "");
    OverlayMount m(mnt, opts);
    if (!m.mounted()) GTEST_SKIP() << "overlay mount: " << strerror(m.err());
    EXPECT_FALSE(fs::exists(mnt + "/a/gone"));
    EXPECT_TRUE(fs::exists(mnt + "/a/stays"));
    EXPECT_FALSE(fs::exists(mnt + "/top"));
    EXPECT_FALSE(fs::exists(mnt + "/b/old")) << "b is opaque";
    EXPECT_TRUE(fs::exists(mnt + "/b/new"));
  }
}

TEST_F(LayerUnpackTest, RootlessUsesUserXattrsSkipsChownAndRefusesDevices) {
  UnpackOptions options;
  options.rootless = true;
  options.xattr_whiteouts = true;
  TarEntry owned = file("owned", "o");
  owned.uid = 1234;
  owned.gid = 1234;
  auto r = unpack(make_tar({owned, file("a/.wh.gone", ""), dir("b"), file("b/.wh..wh..opq", ""),
                            dir("ro", 0555), file("ro/inside", "i", 0444), node("fifo", AE_IFIFO)}),
                  options);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(lstat_of("owned").st_uid, geteuid());
  auto st = lstat_of("a/gone");
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_size, 0);
  EXPECT_EQ(xattr_of(at("a/gone"), "user.overlay.whiteout"), "y");
  EXPECT_EQ(xattr_of(at("a"), "user.overlay.opaque"), "x") << "a has xattr whiteouts";
  EXPECT_EQ(xattr_of(at("b"), "user.overlay.opaque"), "y");
  EXPECT_EQ(xattr_of(at("b"), "trusted.overlay.opaque"), "<none>");
  EXPECT_EQ(lstat_of("ro").st_mode & 07777, 0555u) << "applied after its children";
  EXPECT_EQ(read_text(at("ro/inside")), "i");

  reset_dest();
  expect_refused(make_tar({node("dev/sda", AE_IFBLK, 8, 0)}), "dev/sda",
                 "refusing a device node in a rootless layer", options);
  reset_dest();
  expect_refused(make_tar({node("dev/null", AE_IFCHR, 1, 3)}), "dev/null",
                 "refusing a device node in a rootless layer", options);
}

TEST_F(LayerUnpackTest, XattrWhiteoutsInAnOpaqueDirectoryAreDropped) {
  UnpackOptions options;
  options.rootless = true;
  options.xattr_whiteouts = true;
  auto r = unpack(make_tar({file("d/.wh.x", ""), file("d/.wh..wh..opq", ""), file("d/.wh.y", ""),
                            file("d/real", "")}),
                  options);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_FALSE(fs::exists(at("d/x")));
  EXPECT_FALSE(fs::exists(at("d/y")));
  EXPECT_TRUE(fs::exists(at("d/real")));
  EXPECT_EQ(xattr_of(at("d"), "user.overlay.opaque"), "y");
}

// ---- hostile input --------------------------------------------------------------------------

TEST_F(LayerUnpackTest, DotDotComponentsAreRefused) {
  for (const char* p : {"../evil", "a/../../evil", "/../evil", "./a/b/../../../evil", ".."}) {
    SCOPED_TRACE(p);
    reset_dest();
    expect_refused(make_tar({file(p, "x")}), p, "\"..\" component");
  }
  reset_dest();
  expect_refused(make_tar({dir("a"), symlink_entry("a/up", "x"), hardlink_entry("h", "../../etc/passwd")}),
                 "h", "\"..\" component");
}

TEST_F(LayerUnpackTest, AbsolutePathsAreInsideTheLayer) {
  auto r = unpack(make_tar({file("/abs", "1"), file("///twice//slashed", "2"),
                            file("./dot/./file", "3"), dir(".")}));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(read_text(at("abs")), "1");
  EXPECT_EQ(read_text(at("twice/slashed")), "2");
  EXPECT_EQ(read_text(at("dot/file")), "3");
}

TEST_F(LayerUnpackTest, SymlinkedParentsNeverLeadOutside) {
  // An absolute symlink to the victim's directory, then a file below it: resolved inside the
  // layer, where that directory does not exist, so the entry is refused.
  expect_refused(make_tar({symlink_entry("a", outside_), file("a/victim", "pwned")}), "a/victim",
                 "resolve symlink a");
  reset_dest();
  expect_refused(make_tar({symlink_entry("e", "/etc"), file("e/forker-unpack-probe", "pwned")}),
                 "e/forker-unpack-probe", "resolve symlink e");
  // When the target exists inside the layer, the write lands there.
  reset_dest();
  auto r = unpack(make_tar({dir("etc"), symlink_entry("e", "/etc"),
                            file("e/forker-unpack-probe", "inside"),
                            symlink_entry("up", "../../../../.."),
                            file("up/etc/second", "inside too"),
                            symlink_entry("deep", outside_), dir(outside_.substr(1)),
                            file("deep/victim", "inside three")}));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(read_text(at("etc/forker-unpack-probe")), "inside");
  EXPECT_EQ(read_text(at("etc/second")), "inside too");
  EXPECT_EQ(read_text(at(outside_.substr(1) + "/victim")), "inside three");
  reset_dest();
  // ".." above the root stays at the root, as in the container.
  r = unpack(make_tar({symlink_entry("up", "../../../../../../.."),
                       file("up/forker-unpack-probe", "at the root")}));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(read_text(at("forker-unpack-probe")), "at the root");
}

TEST_F(LayerUnpackTest, HardLinksStayInsideAndNeverLinkTheHost) {
  expect_refused(make_tar({hardlink_entry("h", outside_ + "/victim")}), "h",
                 "No such file or directory");
  reset_dest();
  expect_refused(make_tar({symlink_entry("d", outside_), hardlink_entry("h", "d/victim")}), "h",
                 "No such file or directory");
  reset_dest();
  expect_refused(make_tar({dir("d"), hardlink_entry("h", "d")}), "h", "hard link to a directory");
  reset_dest();
  expect_refused(make_tar({hardlink_entry("h", "later"), file("later", "x")}), "h",
                 "No such file or directory");
  reset_dest();
  expect_refused(make_tar({hardlink_entry("h", ".")}), "h", "hard link to the layer root");
  // A hard link to a symlink that points outside links the symlink itself.
  reset_dest();
  auto r = unpack(make_tar({symlink_entry("s", outside_ + "/victim"), hardlink_entry("h", "s"),
                            hardlink_entry("h2", "/s")}));
  ASSERT_TRUE(r) << r.error().message();
  auto st = lstat_of("h");
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(st.st_ino, lstat_of("s").st_ino);
  EXPECT_EQ(lstat_of("h2").st_ino, st.st_ino);
}

TEST_F(LayerUnpackTest, BadWhiteoutsAreRefused) {
  expect_refused(make_tar({file(".wh...", "")}), ".wh...", "whiteout for \"..\"");
  reset_dest();
  expect_refused(make_tar({file("a/.wh..", "")}), "a/.wh..", "whiteout for \".\"");
  reset_dest();
  expect_refused(make_tar({file(".wh.", "")}), ".wh.", "whiteout for \"\"");
  reset_dest();
  expect_refused(make_tar({file("a/.wh.b/c", "")}), "a/.wh.b/c", "below a whiteout name");
}

TEST_F(LayerUnpackTest, OverlongNamesAreRefused) {
  std::string component(300, 'n');
  expect_refused(make_tar({file("a/" + component, "x")}), "a/" + component, "File name too long");
  reset_dest();
  std::string deep;
  while (deep.size() < 5000) deep += "d/";
  deep += "f";
  auto r = unpack(make_tar({file(deep, "x")}));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("layer entry \"d/d/d/d/"));
  EXPECT_THAT(r.error().message(), HasSubstr("File name too long"));
}

TEST_F(LayerUnpackTest, TruncatedArchivesAreRefused) {
  std::string plain = make_tar({file("first", "1"), file("big", std::string(300000, 'b'))});
  // Cut inside big's data: the header claims more bytes than the stream has.
  auto r = unpack(plain.substr(0, 150000));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("\"big\""));
  EXPECT_THAT(r.error().message(), HasSubstr("runcated"));
  // Cut inside a header.
  reset_dest();
  r = unpack(plain.substr(0, 1024 + 100));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("read layer"));
  // A compressed stream cut short.
  for (int filter : {ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_ZSTD}) {
    reset_dest();
    std::string packed = compress(plain, filter);
    r = unpack(packed.substr(0, packed.size() / 2));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message().find('\n'), std::string::npos);
  }
}

// umoci 0.4's `insert` ends a layer right after the last file's data: no padding to 512 bytes,
// no end-of-archive blocks. Go's archive/tar (docker, containerd) takes that as the end, so
// forker does too; a cut one byte earlier is still a truncated file.
TEST_F(LayerUnpackTest, AStreamEndingRightAfterTheLastDataIsComplete) {
  std::string plain = make_tar({file("a", "1"), file("b", "hello")});
  std::string cut = plain.substr(0, 1536 + 5);  // header a, a's block, header b, "hello"
  auto r = unpack(cut);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->entries, 2u);
  EXPECT_EQ(r->diff_id, sha256_of(cut));
  std::ifstream in(dest_ + "/b");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "hello");
  reset_dest();
  r = unpack(compress(cut, ARCHIVE_FILTER_GZIP));
  ASSERT_TRUE(r) << r.error().message();
  reset_dest();
  r = unpack(plain.substr(0, 1536 + 4));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("runcated"));
}

TEST_F(LayerUnpackTest, DamagedArchivesAreRefused) {
  // A regular file whose name ends in "/" reads as a directory: its data then sits where the
  // next header should be, which libarchive reports as ARCHIVE_RETRY, not a warning.
  auto r = unpack(make_tar({file("dir-like/", "data that is not a header"), file("next", "n")}));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("read layer after entry \"dir-like/\""));
  EXPECT_THAT(r.error().message(), HasSubstr("Damaged tar archive"));
}

TEST_F(LayerUnpackTest, NonArchivesAreRefused) {
  std::mt19937 rng(42);
  std::string noise(64 * 1024, '\0');
  for (auto& c : noise) c = static_cast<char>(rng());
  auto r = unpack(noise);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("not a tar archive"));
  reset_dest();
  r = unpack(compress(noise, ARCHIVE_FILTER_GZIP));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("not a tar archive"));
  reset_dest();
  r = unpack("");
  ASSERT_FALSE(r) << "an empty stream is not a layer";
  EXPECT_EQ(r.error().message(), "read layer: empty stream");
  // gzip magic followed by garbage
  reset_dest();
  r = unpack(std::string("\x1f\x8b\x08\x00", 4) + noise.substr(0, 100));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message().find('\n'), std::string::npos) << r.error().message();
}

TEST_F(LayerUnpackTest, DestinationMustBeEmpty) {
  std::ofstream(at("already")) << "x";
  auto r = unpack(make_tar({file("a", "1")}));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("Directory not empty"));
  fs::remove(at("already"));
}

// ---- remove_tree ---------------------------------------------------------------------------

TEST_F(LayerUnpackTest, RemoveTreeNeverFollowsSymlinksAndHandlesReadOnlyDirs) {
  std::string tree = dest_ + "/tree";
  fs::create_directories(tree + "/ro/sub");
  std::ofstream(tree + "/ro/sub/f") << "x";
  std::ofstream(tree + "/ro/f") << "x";
  fs::create_directories(tree + "/none/inner");
  fs::create_directory_symlink(outside_, tree + "/to-outside");
  fs::create_symlink(outside_ + "/victim", tree + "/to-victim");
  fs::create_symlink(outside_, tree + "/ro/sub/again");
  ASSERT_EQ(mkfifo((tree + "/fifo").c_str(), 0600), 0);
  ASSERT_EQ(chmod((tree + "/ro/sub").c_str(), 0500), 0);
  ASSERT_EQ(chmod((tree + "/ro").c_str(), 0555), 0);
  ASSERT_EQ(chmod((tree + "/none").c_str(), 0), 0);
  ASSERT_TRUE(remove_tree(tree)) << remove_tree(tree).error().message();
  EXPECT_FALSE(fs::exists(fs::symlink_status(tree)));
  EXPECT_TRUE(remove_tree(tree)) << "a missing path is fine";
  EXPECT_TRUE(remove_tree(dest_ + "/no/such/parent"));
  // A symlink given as the path itself is removed, not followed.
  fs::create_directory_symlink(outside_, dest_ + "/link");
  ASSERT_TRUE(remove_tree(dest_ + "/link"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(dest_ + "/link")));
  // "." and ".." as the last component are refused, not resolved.
  fs::create_directories(dest_ + "/sub");
  EXPECT_FALSE(remove_tree(dest_ + "/sub/."));
  EXPECT_FALSE(remove_tree(dest_ + "/sub/.."));
  EXPECT_TRUE(fs::exists(dest_ + "/sub"));
}

TEST_F(LayerUnpackTest, RemoveTreeAsAnUnprivilegedOwner) {
  if (!is_root()) GTEST_SKIP() << "needs root to switch users";
  std::string tree = dest_ + "/tree";
  fs::create_directories(tree + "/ro/sub");
  std::ofstream(tree + "/ro/sub/f") << "x";
  fs::create_directories(tree + "/none/inner");
  std::ofstream(tree + "/none/inner/g") << "x";
  fs::create_directory_symlink(outside_, tree + "/ro/out");
  for (const auto& e : fs::recursive_directory_iterator(tree))
    ASSERT_EQ(lchown(e.path().c_str(), 65534, 65534), 0);
  ASSERT_EQ(chown(tree.c_str(), 65534, 65534), 0);
  ASSERT_EQ(chown(dest_.c_str(), 65534, 65534), 0);
  ASSERT_EQ(chmod(sandbox_.c_str(), 0711), 0);  // mkdtemp made it 0700
  ASSERT_EQ(chmod((tree + "/ro/sub").c_str(), 0500), 0);
  ASSERT_EQ(chmod((tree + "/ro").c_str(), 0500), 0);
  ASSERT_EQ(chmod((tree + "/none/inner").c_str(), 0), 0);
  ASSERT_EQ(chmod((tree + "/none").c_str(), 0), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
        setresuid(65534, 65534, 65534) != 0)
      _exit(2);
    Status st = remove_tree(tree);
    if (!st) fprintf(stderr, "remove_tree: %s\n", st.error().message().c_str());
    _exit(st ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_EQ(chown(dest_.c_str(), 0, 0), 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_FALSE(fs::exists(fs::symlink_status(tree)));
}

TEST_F(LayerUnpackTest, RemoveTreeCopesWithVeryDeepTrees) {
  std::string tree = dest_ + "/deep";
  ASSERT_EQ(mkdir(tree.c_str(), 0755), 0);
  UniqueFd cur(open(tree.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  for (int i = 0; i < 1500; ++i) {
    ASSERT_EQ(mkdirat(cur.get(), "d", 0755), 0) << i;
    UniqueFd next(openat(cur.get(), "d", O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(next.valid());
    if (i % 100 == 0) {
      UniqueFd f(openat(next.get(), "..", O_PATH | O_CLOEXEC));  // keep the loop honest
    }
    cur = std::move(next);
  }
  cur.reset();
  // Fewer fds than levels: the walk must not hold one per level.
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  rlimit low = old;
  low.rlim_cur = 256;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  Status st = remove_tree(tree);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_FALSE(fs::exists(tree));
}

TEST_F(LayerUnpackTest, RemoveTreeDoesNotEnterMounts) {
  if (!is_root()) GTEST_SKIP() << "needs root to mount";
  std::string tree = dest_ + "/tree";
  fs::create_directories(tree + "/mnt");
  std::ofstream(tree + "/file") << "x";
  ASSERT_EQ(mount("tmpfs", (tree + "/mnt").c_str(), "tmpfs", 0, "size=1m"), 0);
  std::ofstream(tree + "/mnt/precious") << "keep";
  Status st = remove_tree(tree);
  bool precious = fs::exists(tree + "/mnt/precious");
  umount2((tree + "/mnt").c_str(), MNT_DETACH);
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message(), HasSubstr(tree + "/mnt"));
  EXPECT_TRUE(precious);
  EXPECT_TRUE(remove_tree(tree));
}

TEST_F(LayerUnpackTest, RemoveTreeReportsWhatItCannotRemove) {
  if (!is_root()) GTEST_SKIP() << "needs root for the immutable flag";
  std::string tree = dest_ + "/tree";
  fs::create_directories(tree + "/d");
  std::ofstream(tree + "/d/stuck") << "x";
  std::ofstream(tree + "/other") << "x";
  UniqueFd fd(open((tree + "/d/stuck").c_str(), O_RDONLY | O_CLOEXEC));
  int flags = 0;
  if (ioctl(fd.get(), FS_IOC_GETFLAGS, &flags) < 0) GTEST_SKIP() << "no inode flags here";
  int immutable = flags | FS_IMMUTABLE_FL;
  if (ioctl(fd.get(), FS_IOC_SETFLAGS, &immutable) < 0) GTEST_SKIP() << "cannot set immutable";
  Status st = remove_tree(tree);
  ioctl(fd.get(), FS_IOC_SETFLAGS, &flags);
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message(), HasSubstr(tree + "/d/stuck"));
  EXPECT_FALSE(fs::exists(tree + "/other")) << "the rest is removed anyway";
  EXPECT_TRUE(remove_tree(tree));
}

// ---- throughput --------------------------------------------------------------------------------

// FORKER_UNPACK_BENCH=1 (or =tmpfs for tmpfs only): ~100 MiB layer of many small files and a few big ones, unpacked by
// unpack_layer and by tar -x (times printed, not asserted).
TEST_F(LayerUnpackTest, Throughput) {
  if (getenv("FORKER_UNPACK_BENCH") == nullptr) GTEST_SKIP() << "set FORKER_UNPACK_BENCH=1";
  std::vector<TarEntry> entries;
  std::mt19937 rng(7);
  for (int d = 0; d < 200; ++d) {
    entries.push_back(dir("usr/share/d" + std::to_string(d)));
    for (int f = 0; f < 100; ++f) {
      std::string data(512 + rng() % 3000, 'a' + static_cast<char>(f % 26));
      entries.push_back(file("usr/share/d" + std::to_string(d) + "/f" + std::to_string(f), data));
    }
  }
  for (int b = 0; b < 4; ++b) {
    std::string data(17 << 20, '\0');
    for (auto& c : data) c = static_cast<char>('a' + rng() % 16);  // compresses like text
    entries.push_back(file("big" + std::to_string(b), std::move(data)));
  }
  std::string plain = make_tar(entries);
  std::string gz = compress(plain, ARCHIVE_FILTER_GZIP);
  std::string zst = compress(plain, ARCHIVE_FILTER_ZSTD);
  double mib = static_cast<double>(plain.size()) / (1 << 20);
  printf("layer: %.1f MiB uncompressed, %zu entries\n", mib, entries.size());
  std::string tar_path = outside_ + "/layer.tar";
  std::ofstream(tar_path, std::ios::binary) << plain;
  std::ofstream(tar_path + ".gz", std::ios::binary) << gz;
  auto time_ms = [](auto&& f) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  auto report = [&](const char* fs_name, const char* what, double ms) {
    printf("%-6s %-22s %7.0f ms %6.0f MiB/s\n", fs_name, what, ms, mib / ms * 1000);
  };
  auto run_all = [&](const char* fs_name) {
    for (const auto& [name, bytes] : {std::pair<const char*, std::string*>{"unpack_layer plain", &plain},
                                      {"unpack_layer gzip", &gz}, {"unpack_layer zstd", &zst}}) {
      reset_dest();
      sync();
      UniqueFd fd = memfd_with(*bytes);
      Result<UnpackResult> r = make_error("not run");
      double ms = time_ms([&] { r = unpack_layer(fd.get(), dest_); });
      ASSERT_TRUE(r) << r.error().message();
      report(fs_name, name, ms);
    }
    for (const auto& [name, cmd] : {std::pair<const char*, std::string>{"tar -x plain", "tar -xf " + tar_path},
                                    {"tar -xz gzip", "tar -xzf " + tar_path + ".gz"}}) {
      reset_dest();
      sync();
      std::string full = cmd + " -C " + dest_ + " --same-owner --xattrs";
      int rc = -1;
      double ms = time_ms([&] { rc = system(full.c_str()); });
      EXPECT_EQ(rc, 0);
      report(fs_name, name, ms);
    }
    reset_dest();
  };
  if (std::string(getenv("FORKER_UNPACK_BENCH")) != "tmpfs") run_all("disk");
  // The same on tmpfs, which takes the disk (shared, slow in CI VMs) out of the measurement.
  if (is_root() && mount("tmpfs", dest_.c_str(), "tmpfs", 0, "size=1g") == 0) {
    std::string saved = dest_;
    dest_ += "/layer";
    ASSERT_EQ(mkdir(dest_.c_str(), 0755), 0);
    run_all("tmpfs");
    dest_ = saved;
    umount2(dest_.c_str(), MNT_DETACH);
  }
  fs::remove(tar_path);
  fs::remove(tar_path + ".gz");
}

}  // namespace
}  // namespace forker::image
