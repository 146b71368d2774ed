// Unpacking one image layer (a tar stream: plain, gzip, zstd or xz, told apart by content) into
// its own directory with libarchive. Every write is resolved inside the layer directory
// (openat2 RESOLVE_IN_ROOT for parents, *at() calls that never follow the last component);
// whiteouts become overlayfs whiteouts; the diff id (sha256 of the uncompressed tar, bytes after
// the end-of-archive blocks included) is computed on the way.
//
// Entry rules: a leading "/" or "./" is dropped ("/etc/x" is "etc/x"); a ".." component, an
// empty name and names the kernel cannot take are refused; missing parents are made 0755;
// a later entry replaces an earlier one (a directory over a directory keeps its contents);
// hard links must name a non-directory written earlier in the same layer. Xattrs are copied
// (security.capability after chown, which would clear it) except trusted.overlay.* and
// user.overlay.*, which a layer must not forge. ".wh.NAME" becomes a 0/0 character device (or
// see xattr_whiteouts), ".wh..wh..opq" sets overlay.opaque="y" on its directory (trusted.* as
// root, user.* rootless); other ".wh..wh." names (AUFS bookkeeping) are skipped.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "image/digest.hpp"

namespace forker::image {

struct UnpackOptions {
  // Not root (a rootless store): device nodes are refused, ownership is not changed, overlay
  // xattrs are user.overlay.* (for "userxattr" mounts), xattrs the kernel refuses are skipped,
  // and directory modes are applied last (a 0555 directory would refuse its own children).
  bool rootless = false;
  // Whiteouts as empty files with an "overlay.whiteout" xattr (their directory marked
  // "overlay.opaque"="x"; honoured by Linux 6.7+ in lower layers) instead of 0/0 character
  // devices. Rootless unpacking falls back to this form by itself if mknod of a whiteout is refused.
  bool xattr_whiteouts = false;
  // Checked once the stream has ended; a mismatch is an error.
  std::optional<Digest> expected_diff_id;
};

struct UnpackResult {
  Digest diff_id;            // sha256 of the uncompressed tar stream
  uint64_t tar_bytes = 0;    // size of the uncompressed tar stream
  uint64_t entries = 0;
};

// Unpacks the layer read from input_fd into dest_dir, which must exist and be empty. The error
// names the archive entry and the operation. On failure dest_dir holds a partial tree: the caller
// unpacks into a temporary name and removes it with remove_tree().
Result<UnpackResult> unpack_layer(int input_fd, const std::string& dest_dir,
                                  const UnpackOptions& options = {});

// rm -rf without following symlinks or crossing mount points; a missing path is not an error.
Status remove_tree(const std::string& path);

}  // namespace forker::image
