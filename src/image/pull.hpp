// `forker pull`: a registry image into the store. Resolve the manifest for the platform, fetch
// the config and the missing layer blobs (in parallel, resumable), unpack each layer once, then
// name the image in index.json. The name is written last, so an interrupted pull leaves no
// image that looks complete; its blobs are reused by the next pull, or removed by prune.
#pragma once

#include <functional>
#include <string>

#include "core/error.hpp"
#include "image/platform.hpp"
#include "image/reference.hpp"
#include "image/registry.hpp"
#include "image/store.hpp"

namespace forker::image {

// What a pull reports as it goes, for the progress display.
struct PullEvent {
  enum class Kind { kResolved, kBlobPresent, kBlobStart, kBlobProgress, kBlobDone, kUnpacked };
  Kind kind;
  Digest digest;      // the blob (or the manifest for kResolved)
  int64_t done = 0;   // bytes so far (kBlobProgress, kBlobDone)
  int64_t total = 0;  // the blob's size
};

struct PullOptions {
  Platform platform = Platform::host();
  RegistryOptions registry;
  std::function<void(const PullEvent&)> on_event;  // may be called from download threads
};

struct PullResult {
  ImageRecord image;
  Digest manifest_digest;
  bool downloaded_anything = false;  // false: every blob was already here ("up to date")
};

Result<PullResult> pull_image(Store& store, const Reference& ref, const PullOptions& options);

}  // namespace forker::image
