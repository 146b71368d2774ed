// Writes the entries of one layer tar into the layer directory. Every parent directory is opened
// with openat2(RESOLVE_IN_ROOT) below the layer root and the last component is made with *at()
// calls that never follow it, so no entry, symlink or hard link can reach outside the layer.
#pragma once

#include <sys/types.h>
#include <time.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/unique_fd.hpp"
#include "image/layer_unpack.hpp"

struct archive;
struct archive_entry;

namespace forker::image {

// An entry path made relative to the layer root: "/etc/x", "./etc/x" and "etc//x" all give
// parent "etc", name "x". root is set for ".", "./" and "/" (the layer directory itself).
struct EntryPath {
  std::string parent;  // "" for the layer root
  std::string name;    // last component; "" when root
  bool root = false;
};

// Refuses "..", an empty path, and names longer than the kernel takes (NAME_MAX, PATH_MAX).
Result<EntryPath> normalize_entry_path(std::string_view raw);
// The entry's name as it appears in errors: quoted, control characters escaped.
std::string quote_entry(std::string_view raw);

class LayerWriter {
 public:
  // dest_dir must be an existing empty directory.
  static Result<LayerWriter> open(const std::string& dest_dir, const UnpackOptions& options);

  // Creates ENTRY (reading a regular file's contents from AR). Errors carry the entry's name.
  Status write(archive* ar, archive_entry* entry);
  // Applies what had to wait for the last entry: directory times (children change them) and,
  // rootless, directory modes (a 0555 directory would refuse its own children).
  Status finish();
  // The stream ended right after the last entry's data (no padding, no end-of-archive blocks).
  bool ended_after_data() const { return ended_after_data_; }

 private:
  bool ended_after_data_ = false;
  struct DirMeta {
    std::string path;  // relative to the root, "" for the root itself
    timespec times[2];
    bool has_times;
    mode_t mode;
    bool has_mode;
  };
  struct Meta {
    mode_t perm;
    uid_t uid;
    gid_t gid;
    timespec times[2];
    bool has_times;
  };

  LayerWriter(UniqueFd root, const UnpackOptions& options) : root_(std::move(root)), options_(options) {}

  Status write_entry(archive* ar, archive_entry* entry, const EntryPath& path);
  Result<int> parent_dir(const std::string& parent);
  Result<UniqueFd> create_missing_parents(const std::string& parent);
  Status clear_slot(int parent_fd, const std::string& name, bool keep_dir, bool* kept_dir);

  Status write_file(archive* ar, archive_entry* entry, const EntryPath& path, const Meta& meta);
  Status write_dir(archive_entry* entry, const EntryPath& path, const Meta& meta);
  Status write_symlink(archive_entry* entry, const EntryPath& path, const Meta& meta);
  Status write_node(archive_entry* entry, const EntryPath& path, const Meta& meta);
  Status write_hardlink(const EntryPath& path, std::string_view target_raw);
  Status write_whiteout(const EntryPath& path, const std::string& hidden);
  Status write_xattr_whiteout(int parent_fd, const std::string& parent, const std::string& name);
  Status make_opaque(const std::string& dir);

  Status apply_fd_meta(int fd, archive_entry* entry, const Meta& meta, bool is_dir,
                       const std::string& rel);
  Status apply_xattrs(archive_entry* entry, int fd, const std::string& proc_path, bool user_ok);
  std::string overlay_xattr(std::string_view what) const;

  UniqueFd root_;
  UnpackOptions options_;
  // Consecutive entries usually share a directory: its fd is kept until anything is removed
  // (a removal could take the cached directory or one of its parents with it).
  std::string cached_parent_;
  UniqueFd cached_fd_;
  std::vector<DirMeta> deferred_dirs_;
};

}  // namespace forker::image
