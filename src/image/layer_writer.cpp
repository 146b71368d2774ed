#include "image/layer_writer.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <unordered_set>

#include "image/remove_tree.hpp"
#include "linux/safe_path.hpp"

namespace forker::image {
namespace {

// OCI image spec, "Whiteouts": ".wh.NAME" hides NAME of the lower layers, ".wh..wh..opq" makes
// its directory opaque; other ".wh..wh." names are AUFS bookkeeping (".wh..wh.plnk") and skipped.
constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kWhiteoutMetaPrefix = ".wh..wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

constexpr unsigned long long kInRoot = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

Result<UniqueFd> openat2_in_root(int root_fd, const std::string& rel, int flags) {
  open_how how{};
  how.flags = static_cast<unsigned long long>(flags | O_CLOEXEC);
  how.resolve = kInRoot;
  long fd = syscall(SYS_openat2, root_fd, rel.empty() ? "." : rel.c_str(), &how, sizeof how);
  if (fd < 0) return sys_error("open", rel.empty() ? "." : rel);
  return UniqueFd(static_cast<int>(fd));
}

std::string join_rel(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : parent + "/" + name;
}

// Paths as libarchive decoded them: the locale's multibyte form, else the UTF-8 one (pax
// headers carry UTF-8, which a "C" locale cannot convert).
const char* entry_string(const char* mbs, const char* utf8) { return mbs != nullptr ? mbs : utf8; }

bool is_overlay_xattr(std::string_view name) {
  return name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.");
}

Status write_all(int fd, const void* data, size_t size, int64_t offset) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = pwrite(fd, p, size, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("write");
    }
    p += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
  return ok();
}

// Streams the entry's data blocks into FD; sparse entries come as blocks at offsets. libarchive
// fails with "Truncated tar archive" when the stream ends before the size the header claims.
// A stream that ends right after the last entry's data, without the padding to 512 bytes and
// the end-of-archive blocks (umoci 0.4's `insert` writes such layers), is accepted as Go's
// archive/tar (docker, containerd) accepts it: *ENDED_AFTER_DATA tells the caller to stop.
Status copy_contents(archive* ar, int fd, int64_t size, bool* ended_after_data) {
  int64_t end = 0;
  for (;;) {
    const void* buf = nullptr;
    size_t len = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(ar, &buf, &len, &offset);
    if (r == ARCHIVE_EOF) break;
    // ARCHIVE_RETRY ("Damaged tar archive") is above ARCHIVE_WARN but still a failure.
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      const char* why = archive_error_string(ar);
      if (end == size && why != nullptr && std::string_view(why).starts_with("Truncated input")) {
        *ended_after_data = true;
        break;
      }
      return make_error(std::string("read contents: ") + (why ? why : "unknown error"));
    }
    if (offset < 0 || offset + static_cast<int64_t>(len) > size)
      return make_error("read contents: data beyond the size in the header");
    FORKER_TRY(write_all(fd, buf, len, offset));
    end = offset + static_cast<int64_t>(len);
  }
  // A sparse file may end in a hole.
  if (end < size && ftruncate(fd, size) < 0) return sys_error("truncate");
  return ok();
}

}  // namespace

std::string quote_entry(std::string_view raw) {
  std::string out = "\"";
  for (unsigned char c : raw) {
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02x", c);
      out += esc;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

Result<EntryPath> normalize_entry_path(std::string_view raw) {
  if (raw.size() >= PATH_MAX) return sys_error_errno(ENAMETOOLONG, "path");
  // Docker writes "/etc/x" and "./etc/x" for "etc/x": a leading "/" is not hostile by itself.
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (pos <= raw.size()) {
    size_t slash = raw.find('/', pos);
    if (slash == std::string_view::npos) slash = raw.size();
    std::string_view part = raw.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return make_error("refusing a path with a \"..\" component");
    if (part.size() > NAME_MAX) return sys_error_errno(ENAMETOOLONG, "path component");
    parts.push_back(part);
  }
  EntryPath out;
  if (parts.empty()) {
    // Only an explicit root ("." "./" "/") names the layer directory; "" names nothing.
    if (raw.empty()) return make_error("refusing an empty path");
    out.root = true;
    return out;
  }
  out.name = parts.back();
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (i > 0) out.parent += '/';
    out.parent += parts[i];
  }
  return out;
}

Result<LayerWriter> LayerWriter::open(const std::string& dest_dir, const UnpackOptions& options) {
  UniqueFd root(::open(dest_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return sys_error("open layer directory", dest_dir);
  // Empty, so that whatever a hard link finds was written by this layer.
  int dup_fd = fcntl(root.get(), F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return sys_error("dup", dest_dir);
  DIR* dir = fdopendir(dup_fd);
  if (dir == nullptr) {
    close(dup_fd);
    return sys_error("opendir", dest_dir);
  }
  bool empty = true;
  while (dirent* d = readdir(dir)) {
    std::string_view n = d->d_name;
    if (n != "." && n != "..") empty = false;
  }
  closedir(dir);
  if (!empty) return sys_error_errno(ENOTEMPTY, "unpack layer into", dest_dir);
  return LayerWriter(std::move(root), options);
}

Status LayerWriter::write(archive* ar, archive_entry* entry) {
  const char* raw =
      entry_string(archive_entry_pathname(entry), archive_entry_pathname_utf8(entry));
  if (raw == nullptr) return make_error("layer entry without a readable path");
  auto path = normalize_entry_path(raw);
  if (!path) return std::move(path).error().add_context("layer entry " + quote_entry(raw));
  auto st = write_entry(ar, entry, *path);
  if (!st) return std::move(st).error().add_context("layer entry " + quote_entry(raw));
  return ok();
}

Status LayerWriter::write_entry(archive* ar, archive_entry* entry, const EntryPath& path) {
  // Parent components named ".wh.*" would create whiteout-looking directories.
  size_t start = 0;
  while (start < path.parent.size()) {
    size_t slash = path.parent.find('/', start);
    if (slash == std::string::npos) slash = path.parent.size();
    std::string_view part = std::string_view(path.parent).substr(start, slash - start);
    if (part.starts_with(kWhiteoutMetaPrefix)) return ok();
    if (part.starts_with(kWhiteoutPrefix))
      return make_error("refusing a path below a whiteout name");
    start = slash + 1;
  }
  if (path.name == kOpaqueMarker) return make_opaque(path.parent);
  if (std::string_view(path.name).starts_with(kWhiteoutMetaPrefix)) return ok();
  if (std::string_view(path.name).starts_with(kWhiteoutPrefix))
    return write_whiteout(path, path.name.substr(kWhiteoutPrefix.size()));

  const char* link =
      entry_string(archive_entry_hardlink(entry), archive_entry_hardlink_utf8(entry));
  if (link != nullptr) return write_hardlink(path, link);

  la_int64_t uid = archive_entry_uid(entry);
  la_int64_t gid = archive_entry_gid(entry);
  if (uid < 0 || uid >= UINT32_MAX || gid < 0 || gid >= UINT32_MAX)
    return make_error("refusing an owner out of range");
  Meta meta{};
  meta.perm = archive_entry_perm(entry) & 07777;
  meta.uid = static_cast<uid_t>(uid);
  meta.gid = static_cast<gid_t>(gid);
  meta.has_times = archive_entry_mtime_is_set(entry) != 0;
  meta.times[1] = {archive_entry_mtime(entry), archive_entry_mtime_nsec(entry)};
  meta.times[0] = archive_entry_atime_is_set(entry)
                      ? timespec{archive_entry_atime(entry), archive_entry_atime_nsec(entry)}
                      : meta.times[1];

  switch (archive_entry_filetype(entry)) {
    case AE_IFREG:
      if (path.root) return make_error("refusing a regular file as the layer root");
      return write_file(ar, entry, path, meta);
    case AE_IFDIR:
      return write_dir(entry, path, meta);
    case AE_IFLNK:
      if (path.root) return make_error("refusing a symlink as the layer root");
      return write_symlink(entry, path, meta);
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO:
    case AE_IFSOCK:
      if (path.root) return make_error("refusing a special file as the layer root");
      return write_node(entry, path, meta);
    default:
      return make_error("refusing an entry of unknown type");
  }
}

Result<int> LayerWriter::parent_dir(const std::string& parent) {
  if (parent.empty()) return root_.get();
  if (cached_fd_ && cached_parent_ == parent) return cached_fd_.get();
  cached_fd_.reset();
  auto fd = openat2_in_root(root_.get(), parent, O_PATH | O_DIRECTORY);
  if (!fd && fd.error().err == ENOENT) fd = create_missing_parents(parent);
  if (!fd) return std::move(fd).error().add_context("parent directory");
  cached_fd_ = std::move(*fd);
  cached_parent_ = parent;
  return cached_fd_.get();
}

// Tars often omit directory entries; missing parents are made 0755 and owned by root, as
// docker does. A component that exists but does not resolve (a symlink to a missing directory)
// is refused rather than guessed at.
Result<UniqueFd> LayerWriter::create_missing_parents(const std::string& parent) {
  UniqueFd dir(fcntl(root_.get(), F_DUPFD_CLOEXEC, 0));
  if (!dir) return sys_error("dup");
  std::string prefix;
  size_t start = 0;
  while (start < parent.size()) {
    size_t slash = parent.find('/', start);
    if (slash == std::string::npos) slash = parent.size();
    std::string part = parent.substr(start, slash - start);
    start = slash + 1;
    prefix = join_rel(prefix, part);
    auto next = openat2_in_root(root_.get(), prefix, O_PATH | O_DIRECTORY);
    if (!next && next.error().err == ENOENT) {
      if (mkdirat(dir.get(), part.c_str(), 0755) < 0) {
        if (errno == EEXIST) return sys_error_errno(ENOENT, "resolve symlink", prefix);
        return sys_error("mkdir", prefix);
      }
      next = openat2_in_root(root_.get(), prefix, O_PATH | O_DIRECTORY);
    }
    if (!next) return std::move(next).error();
    dir = std::move(*next);
  }
  return dir;
}

// Makes room for a new entry at NAME: a later entry replaces an earlier one, except that a
// directory over a directory keeps it (and its contents) and only updates its metadata.
Status LayerWriter::clear_slot(int parent_fd, const std::string& name, bool keep_dir,
                               bool* kept_dir) {
  struct stat st {};
  if (fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT) return ok();
    return sys_error("stat existing entry");
  }
  if (S_ISDIR(st.st_mode) && keep_dir) {
    *kept_dir = true;
    return ok();
  }
  // What is removed may be a parent of the cached directory: look it up again next time. The fd
  // stays open for the current entry, whose parent is not being removed.
  cached_parent_.clear();
  if (S_ISDIR(st.st_mode)) return remove_tree_at(parent_fd, name, name);
  if (unlinkat(parent_fd, name.c_str(), 0) < 0) return sys_error("replace existing entry");
  return ok();
}

std::string LayerWriter::overlay_xattr(std::string_view what) const {
  // A rootless store cannot write trusted.*; its overlay mounts use "userxattr".
  return std::string(options_.rootless ? "user.overlay." : "trusted.overlay.") + std::string(what);
}

// Archive xattrs are copied except the overlay's own (trusted.overlay.* and user.overlay.*): a
// layer must not forge opaque directories, redirects or metacopy for the mount. Unsupported
// namespaces and the ones an unprivileged store cannot write are skipped, not fatal.
Status LayerWriter::apply_xattrs(archive_entry* entry, int fd, const std::string& proc_path,
                                 bool user_ok) {
  if (archive_entry_xattr_count(entry) == 0) return ok();
  archive_entry_xattr_reset(entry);
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  while (archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK) {
    std::string_view n = name;
    if (is_overlay_xattr(n)) continue;
    if (n.starts_with("user.") && !user_ok) continue;  // the kernel allows user.* on files and dirs only
    int r = fd >= 0 ? fsetxattr(fd, name, value, size, 0)
                    : lsetxattr(proc_path.c_str(), name, value, size, 0);
    if (r == 0) continue;
    if (errno == ENOTSUP || (errno == EPERM && options_.rootless)) continue;
    return sys_error("set xattr", name);
  }
  return ok();
}

// Order matters: chown clears setuid/setgid and security.capability, so it goes first, then
// the xattrs, then the mode.
Status LayerWriter::apply_fd_meta(int fd, archive_entry* entry, const Meta& meta, bool is_dir,
                                  const std::string& rel) {
  if (!options_.rootless && fchown(fd, meta.uid, meta.gid) < 0) return sys_error("chown");
  FORKER_TRY(apply_xattrs(entry, fd, {}, true));
  bool defer_mode = is_dir && options_.rootless;
  if (!defer_mode && fchmod(fd, meta.perm) < 0) return sys_error("chmod");
  if (is_dir) {
    // Children change a directory's mtime, so both wait for the end.
    if (meta.has_times || defer_mode)
      deferred_dirs_.push_back(
          {rel, {meta.times[0], meta.times[1]}, meta.has_times, meta.perm, defer_mode});
  } else if (meta.has_times && futimens(fd, meta.times) < 0) {
    return sys_error("set times");
  }
  return ok();
}

Status LayerWriter::write_file(archive* ar, archive_entry* entry, const EntryPath& path,
                               const Meta& meta) {
  int parent = FORKER_TRY(parent_dir(path.parent));
  const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  UniqueFd fd(openat(parent, path.name.c_str(), flags, 0600));
  if (!fd && errno == EEXIST) {
    bool kept = false;
    FORKER_TRY(clear_slot(parent, path.name, false, &kept));
    fd.reset(openat(parent, path.name.c_str(), flags, 0600));
  }
  if (!fd) return sys_error("create file");
  FORKER_TRY(copy_contents(ar, fd.get(), archive_entry_size(entry), &ended_after_data_));
  return apply_fd_meta(fd.get(), entry, meta, false, {});
}

Status LayerWriter::write_dir(archive_entry* entry, const EntryPath& path, const Meta& meta) {
  UniqueFd fd;
  std::string rel;
  if (path.root) {
    fd.reset(fcntl(root_.get(), F_DUPFD_CLOEXEC, 0));
    if (!fd) return sys_error("dup");
  } else {
    int parent = FORKER_TRY(parent_dir(path.parent));
    rel = join_rel(path.parent, path.name);
    // Rootless, the owner keeps rwx until finish() (see there).
    mode_t create_mode = options_.rootless ? 0700 : 0755;
    if (mkdirat(parent, path.name.c_str(), create_mode) < 0) {
      if (errno != EEXIST) return sys_error("mkdir");
      bool kept = false;
      FORKER_TRY(clear_slot(parent, path.name, true, &kept));
      if (!kept && mkdirat(parent, path.name.c_str(), create_mode) < 0) return sys_error("mkdir");
    }
    fd.reset(openat(parent, path.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return sys_error("open directory");
    if (options_.rootless) {
      struct stat st {};
      if (fstat(fd.get(), &st) < 0) return sys_error("stat directory");
      if ((st.st_mode & 0700) != 0700 && fchmod(fd.get(), 0700) < 0) return sys_error("chmod");
    }
  }
  return apply_fd_meta(fd.get(), entry, meta, true, rel);
}

Status LayerWriter::write_symlink(archive_entry* entry, const EntryPath& path, const Meta& meta) {
  const char* target =
      entry_string(archive_entry_symlink(entry), archive_entry_symlink_utf8(entry));
  if (target == nullptr) return make_error("symlink without a readable target");
  int parent = FORKER_TRY(parent_dir(path.parent));
  // Stored as it is and never followed here: it only means something inside the container.
  if (symlinkat(target, parent, path.name.c_str()) < 0) {
    if (errno != EEXIST) return sys_error("symlink");
    bool kept = false;
    FORKER_TRY(clear_slot(parent, path.name, false, &kept));
    if (symlinkat(target, parent, path.name.c_str()) < 0) return sys_error("symlink");
  }
  if (!options_.rootless &&
      fchownat(parent, path.name.c_str(), meta.uid, meta.gid, AT_SYMLINK_NOFOLLOW) < 0)
    return sys_error("chown");
  // lsetxattr on "/proc/self/fd/PARENT/NAME": the parent is the fd's directory, NAME not followed.
  FORKER_TRY(apply_xattrs(entry, -1, linux::fd_path(parent) + "/" + path.name, false));
  if (meta.has_times &&
      utimensat(parent, path.name.c_str(), meta.times, AT_SYMLINK_NOFOLLOW) < 0)
    return sys_error("set times");
  return ok();
}

Status LayerWriter::write_node(archive_entry* entry, const EntryPath& path, const Meta& meta) {
  mode_t type = archive_entry_filetype(entry);
  dev_t dev = 0;
  if (type == AE_IFCHR || type == AE_IFBLK) {
    if (options_.rootless) return make_error("refusing a device node in a rootless layer");
    dev = makedev(archive_entry_rdevmajor(entry), archive_entry_rdevminor(entry));
  }
  int parent = FORKER_TRY(parent_dir(path.parent));
  if (mknodat(parent, path.name.c_str(), type | 0600, dev) < 0) {
    if (errno != EEXIST) return sys_error("mknod");
    bool kept = false;
    FORKER_TRY(clear_slot(parent, path.name, false, &kept));
    if (mknodat(parent, path.name.c_str(), type | 0600, dev) < 0) return sys_error("mknod");
  }
  // A device or fifo is never opened (that could block or touch hardware): *at() calls on the
  // name just made, none following it.
  if (!options_.rootless &&
      fchownat(parent, path.name.c_str(), meta.uid, meta.gid, AT_SYMLINK_NOFOLLOW) < 0)
    return sys_error("chown");
  FORKER_TRY(apply_xattrs(entry, -1, linux::fd_path(parent) + "/" + path.name, false));
  if (fchmodat(parent, path.name.c_str(), meta.perm, AT_SYMLINK_NOFOLLOW) < 0)
    return sys_error("chmod");
  if (meta.has_times &&
      utimensat(parent, path.name.c_str(), meta.times, AT_SYMLINK_NOFOLLOW) < 0)
    return sys_error("set times");
  return ok();
}

// The target must be a non-directory this layer wrote earlier, found inside the layer root. A
// symlink target is linked itself (O_NOFOLLOW), never the file it points to.
Status LayerWriter::write_hardlink(const EntryPath& path, std::string_view target_raw) {
  if (path.root) return make_error("refusing a hard link as the layer root");
  auto target = normalize_entry_path(target_raw);
  if (!target) return std::move(target).error().add_context("hard link target " + quote_entry(target_raw));
  if (target->root) return make_error("refusing a hard link to the layer root");
  std::string target_rel = join_rel(target->parent, target->name);
  auto target_fd = openat2_in_root(root_.get(), target_rel, O_PATH | O_NOFOLLOW);
  if (!target_fd) return std::move(target_fd).error().add_context("hard link target");
  struct stat tst {};
  if (fstat(target_fd->get(), &tst) < 0) return sys_error("stat hard link target", target_rel);
  if (S_ISDIR(tst.st_mode)) return make_error("refusing a hard link to a directory", target_rel);

  int parent = FORKER_TRY(parent_dir(path.parent));
  auto link = [&]() {
    // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc/self/fd/N with AT_SYMLINK_FOLLOW does not.
    if (linkat(target_fd->get(), "", parent, path.name.c_str(), AT_EMPTY_PATH) == 0) return 0;
    if (errno != ENOENT && errno != EPERM) return -1;
    return linkat(AT_FDCWD, linux::fd_path(target_fd->get()).c_str(), parent, path.name.c_str(),
                  AT_SYMLINK_FOLLOW);
  };
  if (link() == 0) return ok();
  if (errno != EEXIST) return sys_error("link", target_rel);
  struct stat existing {};
  if (fstatat(parent, path.name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0 &&
      existing.st_ino == tst.st_ino && existing.st_dev == tst.st_dev)
    return ok();  // already that file (a link to itself, or a repeated entry)
  bool kept = false;
  FORKER_TRY(clear_slot(parent, path.name, false, &kept));
  if (link() < 0) return sys_error("link", target_rel);
  return ok();
}

// ".wh.NAME" becomes an overlay whiteout for NAME: a 0/0 character device, which the kernel lets
// even an unprivileged user make (Linux 5.8+). The xattr form is used when asked or when that
// mknod is refused. A NAME this layer already wrote stays: a whiteout only hides lower layers.
Status LayerWriter::write_whiteout(const EntryPath& path, const std::string& hidden) {
  if (path.root) return make_error("refusing a whiteout as the layer root");
  if (hidden.empty() || hidden == "." || hidden == "..")
    return make_error("refusing a whiteout for " + quote_entry(hidden));
  if (hidden.starts_with(kWhiteoutPrefix))
    return make_error("refusing a whiteout of a whiteout name");
  int parent = FORKER_TRY(parent_dir(path.parent));
  if (!options_.xattr_whiteouts) {
    if (mknodat(parent, hidden.c_str(), S_IFCHR, makedev(0, 0)) == 0) return ok();
    if (errno == EEXIST) return ok();
    if (errno != EPERM || !options_.rootless) return sys_error("mknod whiteout", hidden);
  }
  return write_xattr_whiteout(parent, path.parent, hidden);
}

// Overlay (Linux 6.7+) honours an empty regular file carrying "overlay.whiteout" in a lower
// layer when its directory carries "overlay.opaque"="x" (has xattr whiteouts, not opaque). In a
// directory that is opaque ("y") already the whiteout is moot, and would show as an empty file.
Status LayerWriter::write_xattr_whiteout(int parent_fd, const std::string& parent,
                                         const std::string& name) {
  std::string dir_path = linux::fd_path(parent_fd);
  std::string opaque = overlay_xattr("opaque");
  char value[2] = {};
  ssize_t n = getxattr(dir_path.c_str(), opaque.c_str(), value, sizeof value);
  if (n == 1 && value[0] == 'y') return ok();
  // 0600: setting a user.* xattr needs write permission on the inode, not just a writable fd.
  UniqueFd fd(openat(parent_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                     0600));
  if (!fd) {
    if (errno == EEXIST) return ok();
    return sys_error("create whiteout", name);
  }
  if (fsetxattr(fd.get(), overlay_xattr("whiteout").c_str(), "y", 1, 0) < 0)
    return sys_error("set whiteout xattr", name);
  if (n != 1 && setxattr(dir_path.c_str(), opaque.c_str(), "x", 1, 0) < 0)
    return sys_error("mark directory with xattr whiteouts", parent.empty() ? "." : parent);
  return ok();
}

Status LayerWriter::make_opaque(const std::string& dir) {
  UniqueFd fd;
  if (dir.empty()) {
    fd.reset(fcntl(root_.get(), F_DUPFD_CLOEXEC, 0));
    if (!fd) return sys_error("dup");
  } else {
    // The directory may not have had its own entry: make it like any missing parent.
    auto opened = openat2_in_root(root_.get(), dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (!opened && opened.error().err == ENOENT) {
      FORKER_TRY(parent_dir(dir));
      opened = openat2_in_root(root_.get(), dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    }
    if (!opened) return std::move(opened).error().add_context("opaque directory");
    fd = std::move(*opened);
  }
  if (options_.xattr_whiteouts) {
    // Xattr whiteouts already here are moot in an opaque directory and would show as files.
    auto listing = std::string(linux::fd_path(fd.get()));
    DIR* d = opendir(listing.c_str());
    if (d == nullptr) return sys_error("opendir", dir.empty() ? "." : dir);
    std::vector<std::string> moot;
    std::string whiteout = overlay_xattr("whiteout");
    while (dirent* e = readdir(d)) {
      if (e->d_type != DT_REG) continue;
      struct stat st {};
      if (fstatat(fd.get(), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_size != 0) continue;
      std::string p = listing + "/" + e->d_name;
      if (lgetxattr(p.c_str(), whiteout.c_str(), nullptr, 0) >= 0) moot.emplace_back(e->d_name);
    }
    closedir(d);
    for (const auto& name : moot)
      if (unlinkat(fd.get(), name.c_str(), 0) < 0) return sys_error("remove moot whiteout", name);
  }
  if (fsetxattr(fd.get(), overlay_xattr("opaque").c_str(), "y", 1, 0) < 0)
    return sys_error("set opaque xattr", dir.empty() ? "." : dir);
  return ok();
}

Status LayerWriter::finish() {
  cached_fd_.reset();
  cached_parent_.clear();
  // Last written first: children before parents (a rootless 0500 parent must not stop us from
  // reaching its children), and the last entry for a directory wins over earlier ones.
  std::unordered_set<std::string_view> done;
  for (auto it = deferred_dirs_.rbegin(); it != deferred_dirs_.rend(); ++it) {
    if (!done.insert(it->path).second) continue;
    auto fd = openat2_in_root(root_.get(), it->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (!fd) {
      int err = fd.error().err;
      if (err == ENOENT || err == ENOTDIR || err == ELOOP) continue;  // replaced by a later entry
      return std::move(fd).error().add_context("layer entry " + quote_entry(it->path));
    }
    if (it->has_mode && fchmod(fd->get(), it->mode) < 0)
      return sys_error("chmod", it->path.empty() ? "." : it->path);
    if (it->has_times && futimens(fd->get(), it->times) < 0)
      return sys_error("set times", it->path.empty() ? "." : it->path);
  }
  deferred_dirs_.clear();
  return ok();
}

}  // namespace forker::image
