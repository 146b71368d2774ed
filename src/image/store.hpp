// The image store: an OCI image-layout (oci-layout, index.json, blobs/sha256/) that skopeo and
// umoci can read, plus one unpacked directory per layer (keyed by diff id) and one snapshot
// directory per container (overlay upper/work). Layout under root():
//   oci-layout, index.json          OCI image-layout; index entries name images by the
//                                   annotation org.opencontainers.image.ref.name = full reference
//   blobs/sha256/<hex>              verified content, written to tmp/ first, fsynced, renamed
//   layers/<diff-id hex>/           unpacked layers (overlay lower dirs), renamed into place whole
//   containers/<id>/{upper,work,rootfs}
//   tmp/                            work in progress; anything here is debris once its lock is free
//   locks/                          store.lock (index.json and GC), <hex>.lock per blob/layer
// Nothing outside tmp/ ever holds a partial object, so a process killed at any point leaves no
// entry that later looks valid.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

  // A fresh unique path under tmp/ (not created). PURPOSE goes into the name for debugging.
  std::string temp_path(std::string_view purpose) const;

  // Blobs.
  std::string blob_path(const Digest& digest) const;
  bool has_blob(const Digest& digest) const;
  Result<std::string> read_blob(const Digest& digest) const;
  // Stores BYTES; EXPECTED, if given, must match. Returns the digest.
  Result<Digest> put_blob(std::string_view bytes, const std::optional<Digest>& expected = {});
  // Moves a finished file from tmp/ into blobs/ after checking its digest (and size if >= 0).
  Status commit_blob_file(const std::string& temp_file, const Digest& expected, int64_t size = -1);

  // Layers: unpacked once, keyed by diff id.
  std::string layer_path(const Digest& diff_id) const;
  bool has_layer(const Digest& diff_id) const;
  // Unpacks the stored blob into layers/<diff id> (through tmp/, then rename) unless present.
  // EXPECTED_DIFF_ID (from the image config) must match what the unpack computes.
  Result<Digest> unpack_blob(const Digest& blob, const std::optional<Digest>& expected_diff_id);

  // Images: names in index.json (full references).
  // Points NAME at the manifest (a stored blob); replaces an entry with the same name.
  Status tag(const std::string& name, const Descriptor& manifest);
  Status untag(const std::string& name);
  Result<std::vector<ImageRecord>> images() const;
  // By full or familiar reference ("busybox" = docker.io/library/busybox:latest), or by an
  // image id prefix (config digest, at least 4 hex digits, unambiguous).
  Result<ImageRecord> find_image(std::string_view name_or_id) const;

  // Containers' snapshots.
  Result<Snapshot> create_snapshot(const ImageRecord& image, const std::string& container_id);
  Status remove_snapshot(const std::string& container_id);

  // Maintenance.
  Result<DiskUsage> disk_usage() const;
  // Removes blobs and layers no image references, and tmp/ debris whose lock is free.
  Result<PruneReport> prune();

 private:
  Store(std::string root, bool rootless) : root_(std::move(root)), rootless_(rootless) {}
  std::string root_;
  bool rootless_ = false;
};

// Mounts an overlay of LOWERS (top first) with UPPER/WORK (both empty = read-only overlay) on
// TARGET. Uses the new mount API with one `lowerdir+` per layer, so the number of layers is not
// bounded by the page-sized mount data; falls back to mount(2) with a lowerdir= string.
Status mount_overlay(const std::vector<std::string>& lowers, const std::string& upper,
                     const std::string& work, const std::string& target);

}  // namespace forker::image
