// The image store: an OCI image-layout (oci-layout, index.json, blobs/sha256/) that skopeo and
// umoci can read, plus one unpacked directory per layer (keyed by diff id) and one snapshot
// directory per container (overlay upper/work). Layout under root():
//   oci-layout, index.json          OCI image-layout; index entries name images by the
//                                   annotation org.opencontainers.image.ref.name = full reference
//   blobs/sha256/<hex>              verified content, written to tmp/ first, fsynced, renamed
//   layers/<diff-id hex>/           unpacked layers (overlay lower dirs), renamed into place whole
//   containers/<id>/{upper,work,rootfs}
//   containers/<id>/snapshot.json   the image name and diff ids the snapshot stacks (prune keeps
//                                   those layers)
//   tmp/<session>-<pid>.<n>-<purpose>  work in progress; debris once its session's lock is free
//   locks/store.lock                index.json (read-modify-write under it, exclusive)
//   locks/gc.lock                   shared: content written but not yet named; exclusive: prune
//   locks/<hex>.lock                one blob's download (lock_object)
//   locks/layer-<hex>.lock          one layer's unpack (lock_layer); separate from the blob's
//                                   because an uncompressed layer's blob digest is its diff id
//   locks/session-<token>.lock      held by one open Store for its whole life
// Nothing outside tmp/ ever holds a partial object, so a process killed at any point leaves no
// entry that later looks valid.
//
// Debris: every open Store holds an exclusive flock on its own session lock, and temp_path()
// puts the session token first in the name. prune() removes a tmp/ entry only when that
// session's lock can be taken, i.e. the process that made the entry has exited (or closed the
// Store); a leftover of a live process, even this one, is kept.
//
// Content written but not yet in index.json (a pull's blobs and layers before tag()) would look
// unreferenced to prune(): writers hold lock_gc() shared from their first write to their tag();
// prune() takes it exclusive, so it waits for them. A writer killed at any point releases it, and
// what it left is then removed as unreferenced.
//
// Readers (images, find_image, read_blob) take no lock: index.json and blobs only ever change
// by rename. Methods take the locks they need themselves; a caller holding lock_metadata() or
// an object lock must not call a method that takes the same lock (flock is per open file, so
// that would wait for itself).
//
// Permissions: root 0711, blobs/ 0755 with 0644 files (readable by skopeo/umoci as anyone),
// layers/ 0700, containers/ 0711 (a container's user must be able to reach its rootfs), tmp/
// and locks/ 0700.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/error.hpp"
#include "core/unique_fd.hpp"
#include "image/digest.hpp"

namespace forker::image {

inline constexpr std::string_view kMediaOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kMediaOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kMediaOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kMediaOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kMediaOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kMediaOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kMediaDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kMediaDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kMediaDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kMediaDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";

struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::map<std::string, std::string> annotations;
};

// A held flock; released (and the fd closed) when destroyed.
class FileLock {
 public:
  FileLock() = default;
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  bool held() const { return fd_.valid(); }

 private:
  UniqueFd fd_;
};

// One image as `forker images` shows it: a name in index.json and what its manifest says.
struct ImageRecord {
  std::string name;              // full reference: "docker.io/library/busybox:latest"
  Descriptor manifest;           // the index.json entry
  Descriptor config;
  std::vector<Descriptor> layers;  // blobs, bottom first
  std::vector<Digest> diff_ids;    // from the config, bottom first
  std::string created;             // config "created" (RFC 3339), may be empty
  std::string os, architecture;
  int64_t size = 0;                // config + layer blobs, compressed
  // docker's IMAGE ID: the config digest.
  std::string id() const { return config.digest.hex; }
};

struct DiskUsage {
  int64_t images = 0, blobs_bytes = 0, layers = 0, layers_bytes = 0, containers = 0,
          containers_bytes = 0, debris_bytes = 0;
};

struct PruneReport {
  std::vector<Digest> blobs_removed;
  std::vector<Digest> layers_removed;
  int64_t bytes_freed = 0;
  int debris_removed = 0;  // entries of tmp/ whose owner is gone
};

// A container's writable root: overlay of its image's layers (lower), upper and work dirs.
struct Snapshot {
  std::string dir;     // containers/<id>
  std::string upper, work, rootfs;
  std::vector<std::string> lowers;  // layer dirs, top first (overlay order)
};

class Store {
 public:
  // FORKER_STORAGE_ROOT, else /var/lib/forker for root, else $XDG_DATA_HOME/forker
  // (~/.local/share/forker).
  static std::string default_root();
  // Opens (creating on first use) the store at ROOT.
  static Result<Store> open(const std::string& root);

  const std::string& root() const { return root_; }
  bool rootless() const { return rootless_; }

  // Locks. The metadata lock guards index.json and garbage collection; object locks guard
  // the download or unpack of one blob or layer (two pulls of one image wait for each other).
  Result<FileLock> lock_metadata(bool exclusive = true) const;
  Result<FileLock> lock_object(const Digest& digest) const;
  // The unpack of the layer DIFF_ID (unpack_blob takes it itself).
  Result<FileLock> lock_layer(const Digest& diff_id) const;
  // Shared: I am writing content that index.json does not name yet (hold it from the first
  // blob to tag()). Exclusive: prune. create_snapshot takes it shared itself.
  Result<FileLock> lock_gc(bool exclusive = false) const;

  // A fresh unique path under tmp/ (not created): "<session>-<pid>.<n>-<purpose>". PURPOSE
  // goes into the name for debugging (characters outside [A-Za-z0-9_.-] become '_'). It stays
  // protected from prune() while this Store (or a copy of it) is alive.
  std::string temp_path(std::string_view purpose) const;

  // Blobs.
  std::string blob_path(const Digest& digest) const;
  bool has_blob(const Digest& digest) const;
  Result<std::string> read_blob(const Digest& digest) const;
  // Without checking the digest: blobs are verified when they enter the store and never
  // change after. For reads on the start path of a container (find_image, the image config),
  // where hashing would start OpenSSL (~70 page faults) for a file we wrote ourselves.
  Result<std::string> read_blob_unverified(const Digest& digest) const;
  // Stores BYTES; EXPECTED, if given, must match (else nothing is written). Returns the digest.
  Result<Digest> put_blob(std::string_view bytes, const std::optional<Digest>& expected = {});
  // Moves a finished file from tmp/ into blobs/ after checking its digest (and size if >= 0).
  // The file is removed on a mismatch, and when the blob is already stored. Neither call takes
  // the object lock: a downloader holds lock_object() around its download and this commit (so a
  // second one waits and finds the blob), and renaming verified bytes over identical ones is
  // harmless.
  Status commit_blob_file(const std::string& temp_file, const Digest& expected, int64_t size = -1);

  // Layers: unpacked once, keyed by diff id.
  std::string layer_path(const Digest& diff_id) const;
  bool has_layer(const Digest& diff_id) const;
  // Unpacks the stored blob into layers/<diff id> (through tmp/, then syncfs and rename) unless
  // present, under lock_layer(). EXPECTED_DIFF_ID (from the image config) must match what the
  // unpack computes; without it (an import) the diff id is learnt by unpacking, and the copy is
  // dropped if that layer already exists. Returns the diff id.
  Result<Digest> unpack_blob(const Digest& blob, const std::optional<Digest>& expected_diff_id);

  // Images: names in index.json (full references).
  // Points NAME at the manifest (a stored blob); replaces an entry with the same name.
  Status tag(const std::string& name, const Descriptor& manifest);
  // NAME may be familiar ("busybox"); it is stored as its full reference.
  Status untag(const std::string& name);
  // Every index.json entry (unnamed ones with an empty name). An entry whose manifest or
  // config blob is missing or corrupt is left out: its error (naming the digest) goes to BROKEN
  // when given, else to log::warn. index.json itself unreadable is an error.
  // An entry naming an image index (manifest list) shows the child for this host's platform.
  Result<std::vector<ImageRecord>> images(std::vector<Error>* broken = nullptr) const;
  // By full or familiar reference ("busybox" = docker.io/library/busybox:latest), or by an
  // image id prefix (config digest, at least 4 hex digits, "sha256:" allowed, unambiguous). A
  // name wins over an id prefix. A named entry with a broken blob is an error naming the digest.
  Result<ImageRecord> find_image(std::string_view name_or_id) const;

  // Containers' snapshots. The id must match [A-Za-z0-9][A-Za-z0-9_.-]{0,127}. Missing layers
  // are unpacked from their blobs first. Made in tmp/ and renamed into containers/<id>, so a
  // snapshot either exists whole or not at all; an existing id is an error. Nothing is mounted:
  // mount_overlay(lowers, upper, work, rootfs) is the caller's.
  // DURABLE false skips the fsyncs: for a container that does not outlive this boot (--rm).
  Result<Snapshot> create_snapshot(const ImageRecord& image, const std::string& container_id,
                                   bool durable = true);
  // The same over a plain directory ROOT_DIR (absolute) as the only lower: `forker run ./rootfs`
  // writes to the upper, never to ROOT_DIR. snapshot.json names the directory and no layers.
  Result<Snapshot> create_directory_snapshot(const std::string& root_dir,
                                             const std::string& container_id, bool durable = true);
  // Detaches whatever is mounted on rootfs (MNT_DETACH), then removes the directory. A missing
  // snapshot is not an error (removal is idempotent).
  Status remove_snapshot(const std::string& container_id);
  std::string snapshot_path(const std::string& container_id) const;

  // Maintenance. Bytes are space on disk (st_blocks * 512, hard links once, mount points not
  // crossed); blobs_bytes covers blobs/, debris_bytes tmp/.
  Result<DiskUsage> disk_usage() const;
  // Removes blobs and layers no image references (each index entry's manifest, config and
  // layers; an index entry's child manifests and theirs) and no snapshot uses, and tmp/ debris
  // whose session lock is free. Waits for lock_gc() holders. Objects whose lock is held are kept.
  Result<PruneReport> prune();

 private:
  Store(std::string root, bool rootless, std::string session,
        std::shared_ptr<const FileLock> session_lock)
      : root_(std::move(root)),
        rootless_(rootless),
        session_(std::move(session)),
        session_lock_(std::move(session_lock)) {}
  // containers/<id> from tmp/: snapshot.json = DOC, upper/, work/, rootfs/.
  Result<Snapshot> make_snapshot(const std::string& container_id, const nlohmann::json& doc,
                                 std::vector<std::string> lowers, bool durable);
  std::string root_;
  bool rootless_ = false;
  std::string session_;  // 16 hex digits: the prefix of this Store's tmp/ names
  std::shared_ptr<const FileLock> session_lock_;  // shared by copies of this Store
};

// Mounts an overlay of LOWERS (top first) with UPPER/WORK (both empty = read-only overlay) on
// TARGET. Uses the new mount API with one `lowerdir+` per layer, so the number of layers is not
// bounded by the page-sized mount data; falls back to mount(2) with a lowerdir= string (a clear
// error when that exceeds a page). Outside the initial user namespace adds "userxattr". One
// lower and no upper is a read-only bind of that lower (overlay wants two lowers without an
// upper). Errors name the option, the path and the errno text (and what the kernel logged).
Status mount_overlay(const std::vector<std::string>& lowers, const std::string& upper,
                     const std::string& work, const std::string& target);

}  // namespace forker::image
