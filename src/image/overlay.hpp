// The two ways mount_overlay (store.hpp) mounts an overlay, exposed so that tests drive both:
// the new mount API with one fsconfig "lowerdir+" per layer (Linux 6.8+), and mount(2) with one
// "lowerdir=a:b:c" string, which must fit in a page.
#pragma once

#include <string>
#include <vector>

#include "core/error.hpp"

namespace forker::image {

struct OverlaySpec {
  std::vector<std::string> lowers;  // top first
  std::string upper, work;          // both empty: read-only overlay
  bool userxattr = false;           // in a user namespace: trusted.* is out of reach, use user.*
};

// The mount(2) data string: lowerdir (':' separated, top first), upperdir, workdir, userxattr.
// '\', ':' and ',' in paths are escaped with '\' (overlayfs unescapes them). Longer than
// PAGE_SIZE - 1 bytes is an error saying how long it is and that the kernel lacks lowerdir+.
Result<std::string> overlay_mount_data(const OverlaySpec& spec, size_t page_size);

// fsopen("overlay") / fsconfig per option / fsmount / move_mount onto TARGET. When the kernel
// does not know "lowerdir+" (EINVAL on the first one) the error has err == EINVAL and op
// "fsconfig lowerdir+", which mount_overlay takes as the cue to fall back.
Status mount_overlay_new_api(const OverlaySpec& spec, const std::string& target);
Status mount_overlay_legacy(const OverlaySpec& spec, const std::string& target);

}  // namespace forker::image
