// Overlays of image layers: made by linux/overlay.hpp (the runtime's init makes them too, and the
// runtime library does not link this one); named here for the store's callers and tests.
#pragma once

#include "linux/overlay.hpp"

namespace forker::image {

using linux::bind_mount_fd;
using linux::mount_overlay_legacy;
using linux::mount_overlay_new_api;
using linux::overlay_fsmount_joined;
using linux::overlay_fsmount_per_layer;
using linux::overlay_mount_data;
using linux::overlay_mount_fd;
using linux::OverlaySpec;

}  // namespace forker::image
