// `forker import`: a rootfs tarball (`docker export`), a `docker save` archive, or an OCI
// image-layout (tarball or directory) into the store. The outer archive is only ever read as a
// stream: the members an import needs are copied by name into tmp/ files and verified (digests
// recomputed, diff ids checked), never extracted as a tree, so hostile names and links in it
// cannot write anywhere.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "image/digest.hpp"
#include "image/store.hpp"

namespace forker::image {

enum class ArchiveKind { kDockerSave, kOciLayout, kRootfs };
std::string_view archive_kind_name(ArchiveKind kind);

// From the member names of a tar (leading "./" allowed): manifest.json at the top is a docker
// save archive, oci-layout + index.json an OCI layout, anything else a rootfs.
ArchiveKind classify_members(const std::vector<std::string>& member_names);
// Reads the headers of PATH (a directory is an OCI layout directory). Not a tar: an error.
Result<ArchiveKind> detect_archive_kind(const std::string& path);

// A member name taken from a manifest: relative, no "." or ".." or empty components. Returns it
// without a leading "./".
Result<std::string> check_member_path(std::string_view path);

// One entry of a docker save manifest.json, paths checked.
struct DockerSaveImage {
  std::string config;                  // "<hex>.json" or "blobs/sha256/<hex>"
  std::vector<std::string> repo_tags;  // as written ("busybox:latest"), may be empty
  std::vector<std::string> layers;     // "<id>/layer.tar" or "blobs/sha256/<hex>", bottom first
};
Result<std::vector<DockerSaveImage>> parse_docker_save_manifest(std::string_view json);

// Names as the store keys them: the full reference ("busybox" -> docker.io/library/busybox:latest)
// and back to docker's familiar repository and tag for display.
Result<std::string> normalize_image_name(std::string_view name);
struct FamiliarName {
  std::string repository;  // "busybox", "localhost:5000/app"
  std::string tag;         // "latest"; empty for a by-digest name
};
FamiliarName familiar_name(const std::string& full_name);

// Now in RFC 3339 (UTC, seconds).
std::string rfc3339_now();

struct ImportedImage {
  Digest config;    // the image id
  Descriptor manifest;
  std::vector<std::string> names;  // full references tagged
};

// Imports PATH (see detect_archive_kind). NAME[:TAG] names a rootfs image (required there) or
// replaces the names inside an archive holding exactly one image. On failure nothing this call
// added stays in the store.
Result<std::vector<ImportedImage>> import_path(Store& store, const std::string& path,
                                               const std::optional<std::string>& name);
// The same from a stream (stdin): spooled into tmp/ first.
Result<std::vector<ImportedImage>> import_stream(Store& store, int fd,
                                                 const std::optional<std::string>& name);

// How a rootfs tarball becomes an image config.
struct RootfsImageOptions {
  std::string name;                  // NAME[:TAG], normalized here
  std::string created;               // RFC 3339; empty = now
  std::string created_by = "imported by forker";
  std::vector<std::string> env;      // config.Env (none for a plain import, as docker's)
  std::vector<std::string> cmd;      // config.Cmd
};
// One-layer image from a tar (plain, gzip or zstd stored as is; xz/bzip2 stored decompressed).
Result<ImportedImage> import_rootfs_tarball(Store& store, const std::string& path,
                                            const RootfsImageOptions& options);

}  // namespace forker::image
