// Overlays of directories (image layers), attached (mount_overlay) or detached (an fd attached
// nowhere, which a container's init attaches inside its own mount namespace, so the host's mount
// table never shows it; a rootless init makes it there itself, in its user namespace). Here, not
// in image/, because the runtime's init makes them too. The ways they are made are exposed so
// that tests drive each: the new mount API with one fsconfig "lowerdir+" per layer (Linux 6.8+)
// or with one "lowerdir" string (older kernels), and mount(2) with one "lowerdir=a:b:c" string,
// which must fit in a page.
#pragma once

#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/unique_fd.hpp"

namespace forker::linux {

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

// The detached overlay the new mount API makes before it is attached (O_CLOEXEC). _per_layer
// gives each lower its own "lowerdir+"; _joined gives them all in one "lowerdir" string, which
// kernels before 6.8 take through fsopen too (5.2+): fsconfig copies at most 256 bytes of a
// value, so when the paths do not fit (or hold a ',', which the pre-6.5 shim refuses) each
// layer is named by a /proc/self/fd link to an fd held until the overlay is made.
Result<UniqueFd> overlay_fsmount_per_layer(const OverlaySpec& spec);
Result<UniqueFd> overlay_fsmount_joined(const OverlaySpec& spec);

// A detached overlay mount of SPEC (attached nowhere; see mount_overlay for the option rules,
// one lower with no upper = a read-only detached bind of that lower). lowerdir+ where the kernel
// has it, else the joined string; userxattr also when not in the initial user namespace.
Result<UniqueFd> overlay_mount_fd(const OverlaySpec& spec);
// A detached recursive bind of DIR, read-only (every mount in it) when READ_ONLY.
Result<UniqueFd> bind_mount_fd(const std::string& dir, bool read_only);

// Attached on TARGET (read-only when LOWERS is one layer and UPPER is empty); the rules and
// fallbacks of image::mount_overlay (image/store.hpp), which forwards here.
Status mount_overlay(const std::vector<std::string>& lowers, const std::string& upper,
                     const std::string& work, const std::string& target);

}  // namespace forker::linux
