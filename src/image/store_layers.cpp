// Layers (unpacked once, keyed by diff id) and containers' snapshots over them.
#include <fcntl.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/file.hpp"
#include "core/undo.hpp"
#include "core/unique_fd.hpp"
#include "image/layer_unpack.hpp"
#include "image/store.hpp"
#include "image/store_files.hpp"

namespace forker::image {
namespace {

bool is_dir(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_mount_point(const std::string& path) {
  struct statx stx;
  if (::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) < 0)
    return false;
  return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) != 0 &&
         (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
}

Status check_container_id(const std::string& id) {
  bool valid = !id.empty() && id.size() <= 128;
  for (size_t i = 0; valid && i < id.size(); ++i) {
    char c = id[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    valid = alnum || (i > 0 && (c == '_' || c == '.' || c == '-'));
  }
  if (!valid)
    return make_error("container id", "\"" + id + "\" must match [A-Za-z0-9][A-Za-z0-9_.-]{0,127}");
  return ok();
}

Status make_dir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) < 0) return sys_error("mkdir", path);
  if (::chmod(path.c_str(), mode) < 0) return sys_error("chmod", path);
  return ok();
}

// Flushes the filesystem holding DIR once (cheaper than an fsync per unpacked file), so that a
// layer is on disk before its name appears in layers/.
Status sync_filesystem(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return sys_error("open", dir);
  if (::syncfs(fd.get()) < 0) return sys_error("syncfs", dir);
  return ok();
}

}  // namespace

std::string Store::layer_path(const Digest& diff_id) const {
  return root_ + "/layers/" + diff_id.hex;
}

bool Store::has_layer(const Digest& diff_id) const { return is_dir(layer_path(diff_id)); }

std::string Store::snapshot_path(const std::string& container_id) const {
  return root_ + "/containers/" + container_id;
}

namespace {

struct Unpacked {
  std::string dir;  // under tmp/
  Digest diff_id;
};

Result<Unpacked> unpack_to_temp(const Store& store, const Digest& blob,
                                const std::optional<Digest>& expected, bool rootless) {
  std::string path = store.blob_path(blob);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return make_error("blob not in the store");
    return sys_error("open", path);
  }
  std::string dir = store.temp_path("layer-" + blob.short_id());
  FORKER_TRY(make_dir(dir, 0755));
  auto unpacked = unpack_layer(fd.get(), dir,
                               UnpackOptions{.rootless = rootless, .expected_diff_id = expected});
  if (!unpacked) {
    (void)remove_tree(dir);
    return std::move(unpacked).error();
  }
  return Unpacked{dir, unpacked->diff_id};
}

}  // namespace

Result<Digest> Store::unpack_blob(const Digest& blob,
                                  const std::optional<Digest>& expected_diff_id) {
  std::string context = "unpack layer " + blob.str();
  FileLock lock;
  if (expected_diff_id) {
    // The common case (a pull): a second unpack of this layer waits here, then finds it done.
    lock = FORKER_TRY_CTX(lock_layer(*expected_diff_id), context);
    if (has_layer(*expected_diff_id)) return *expected_diff_id;
  }
  Unpacked unpacked =
      FORKER_TRY_CTX(unpack_to_temp(*this, blob, expected_diff_id, rootless_), context);
  UndoStack undo;
  undo.push("remove " + unpacked.dir, [&] { (void)remove_tree(unpacked.dir); });
  if (!expected_diff_id) {
    // An import learns the diff id only now; someone may have unpacked the same layer meanwhile.
    lock = FORKER_TRY_CTX(lock_layer(unpacked.diff_id), context);
    if (has_layer(unpacked.diff_id)) return unpacked.diff_id;
  }
  FORKER_TRY_CTX(sync_filesystem(unpacked.dir), context);
  std::string final_path = layer_path(unpacked.diff_id);
  if (::rename(unpacked.dir.c_str(), final_path.c_str()) < 0) {
    // Present already (written without its lock): ours is a duplicate, dropped by the undo.
    if ((errno == EEXIST || errno == ENOTEMPTY) && has_layer(unpacked.diff_id))
      return unpacked.diff_id;
    return sys_error("rename " + unpacked.dir + " to", final_path).add_context(context);
  }
  undo.commit();
  FORKER_TRY_CTX(detail::fsync_dir(root_ + "/layers"), context);
  return unpacked.diff_id;
}

Result<Snapshot> Store::create_snapshot(const ImageRecord& image, const std::string& container_id,
                                        bool durable) {
  FORKER_TRY(check_container_id(container_id));
  std::string context = "snapshot for container " + container_id;
  if (image.layers.size() != image.diff_ids.size())
    return make_error(context + ":", "image has " + std::to_string(image.layers.size()) +
                                         " layer blobs but " +
                                         std::to_string(image.diff_ids.size()) + " diff ids");
  if (::access(snapshot_path(container_id).c_str(), F_OK) == 0)
    return make_error(context + ":", snapshot_path(container_id) + " exists");
  // Prune must not take the layers away between their unpack and snapshot.json naming them.
  auto gc = FORKER_TRY_CTX(lock_gc(false), context);
  for (size_t i = 0; i < image.diff_ids.size(); ++i) {
    if (!has_layer(image.diff_ids[i]))
      FORKER_TRY_CTX(unpack_blob(image.layers[i].digest, image.diff_ids[i]), context);
  }
  nlohmann::json doc = {{"image", image.name},
                        {"config", image.config.digest.str()},
                        {"diff_ids", nlohmann::json::array()}};
  for (const Digest& d : image.diff_ids) doc["diff_ids"].push_back(d.str());
  std::vector<std::string> lowers;
  for (auto it = image.diff_ids.rbegin(); it != image.diff_ids.rend(); ++it)
    lowers.push_back(layer_path(*it));
  return std::move(make_snapshot(container_id, doc, std::move(lowers), durable)).context(context);
}

Result<Snapshot> Store::create_directory_snapshot(const std::string& root_dir,
                                                  const std::string& container_id, bool durable) {
  FORKER_TRY(check_container_id(container_id));
  std::string context = "snapshot for container " + container_id;
  if (root_dir.empty() || root_dir[0] != '/')
    return make_error(context + ":", "root directory '" + root_dir + "' is not absolute");
  if (!is_dir(root_dir)) return sys_error_errno(ENOTDIR, "root directory", root_dir).add_context(context);
  nlohmann::json doc = {{"directory", root_dir}, {"diff_ids", nlohmann::json::array()}};
  return std::move(make_snapshot(container_id, doc, {root_dir}, durable)).context(context);
}

Result<Snapshot> Store::make_snapshot(const std::string& container_id, const nlohmann::json& doc,
                                      std::vector<std::string> lowers, bool durable) {
  std::string final_dir = snapshot_path(container_id);
  std::string dir = temp_path("snapshot-" + container_id);
  UndoStack undo;
  FORKER_TRY(make_dir(dir, 0711));
  undo.push("remove " + dir, [&] { (void)remove_tree(dir); });
  FORKER_TRY(make_dir(dir + "/upper", 0755));
  FORKER_TRY(make_dir(dir + "/work", 0700));
  FORKER_TRY(make_dir(dir + "/rootfs", 0755));
  if (durable)
    FORKER_TRY(detail::write_durable(dir + "/snapshot.json.tmp", dir + "/snapshot.json", doc.dump(),
                                     0644));
  else
    FORKER_TRY(write_file_replace(dir + "/snapshot.json", doc.dump(), 0644, false));
  if (::rename(dir.c_str(), final_dir.c_str()) < 0) {
    if (errno == EEXIST || errno == ENOTEMPTY) return make_error(final_dir, "exists");
    return sys_error("rename " + dir + " to", final_dir);
  }
  undo.commit();
  if (durable) FORKER_TRY(detail::fsync_dir(root_ + "/containers"));

  Snapshot snap;
  snap.dir = final_dir;
  snap.upper = final_dir + "/upper";
  snap.work = final_dir + "/work";
  snap.rootfs = final_dir + "/rootfs";
  snap.lowers = std::move(lowers);
  return snap;
}

Status Store::remove_snapshot(const std::string& container_id) {
  FORKER_TRY(check_container_id(container_id));
  std::string dir = snapshot_path(container_id);
  if (!is_dir(dir)) return ok();
  std::string rootfs = dir + "/rootfs";
  // Everything stacked on rootfs. Asked first rather than umount2 blindly: umount2 of a plain
  // directory is EPERM, not EINVAL, for a rootless caller.
  while (is_mount_point(rootfs)) {
    if (::umount2(rootfs.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
      return sys_error("umount", rootfs).add_context("remove snapshot " + container_id);
  }
  return std::move(remove_tree(dir)).context("remove snapshot " + container_id);
}

}  // namespace forker::image
