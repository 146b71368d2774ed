// The built-in `busybox` image: made offline, the first time something asks for it, from the
// host's static busybox (Debian's busybox-static): one layer holding bin/busybox, a symlink per
// applet (as `busybox --list-full` names them), /etc/passwd and /etc/group (root, nobody) and
// the usual empty directories. Deterministic: the same binary gives the same image id.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "image/store.hpp"

namespace forker::image {

inline constexpr std::string_view kBuiltinBusyboxName = "docker.io/library/busybox:latest";

// /bin/busybox, else /usr/bin/busybox; nullopt when neither is there.
std::optional<std::string> find_host_busybox();
// Writes the image's rootfs tar to OUT (which must not exist). Refuses a dynamically linked
// busybox: the image holds nothing else for it to load.
Status write_busybox_rootfs(const std::string& busybox, const std::string& out);
// The image; made (and tagged busybox:latest) when the store does not have it.
Result<ImageRecord> ensure_builtin_busybox(Store& store);
// Store::find_image, except that a name meaning busybox:latest makes the built-in image when
// the store has none.
Result<ImageRecord> find_image_or_builtin(Store& store, std::string_view name_or_id);

}  // namespace forker::image
