#include "image/pull.hpp"

#include <algorithm>
#include <map>

#include "image/image_config.hpp"

namespace forker::image {
namespace {

// A partial download keeps one name per blob, so a pull killed half way resumes where it
// stopped (fetch_blob continues an existing file with a Range request). prune() removes it once
// no pull holds the gc lock.
std::string partial_path(const Store& store, const Digest& blob) {
  return store.root() + "/tmp/partial-" + blob.hex;
}

void emit(const PullOptions& options, PullEvent event) {
  if (options.on_event) options.on_event(event);
}

}  // namespace

Result<PullResult> pull_image(Store& store, const Reference& ref, const PullOptions& options) {
  const std::string ctx = "pull " + ref.familiar();
  RegistryOptions registry_options = options.registry;
  // Byte counts from the download threads become events.
  registry_options.progress = [&options, user = options.registry.progress](
                                  const Digest& blob, int64_t done, int64_t total) {
    if (user) user(blob, done, total);
    emit(options, {PullEvent::Kind::kBlobProgress, blob, done, total});
  };
  RegistryClient client(registry_options);
  ResolvedImage resolved = FORKER_TRY(client.resolve(ref, options.platform).context(ctx));
  emit(options, {PullEvent::Kind::kResolved, resolved.digest, 0,
                 static_cast<int64_t>(resolved.manifest.size())});

  // From the first blob written until tag(), prune must not take what index.json does not
  // name yet.
  FileLock gc = FORKER_TRY(store.lock_gc(false).context(ctx));
  PullResult result;
  result.manifest_digest = resolved.digest;

  FORKER_TRY(store.put_blob(resolved.manifest, resolved.digest).context(ctx));
  std::string config_text;
  if (store.has_blob(resolved.config.digest)) {
    config_text = FORKER_TRY(store.read_blob(resolved.config.digest).context(ctx));
  } else {
    config_text = FORKER_TRY(client.fetch_blob_bytes(ref, resolved.config).context(ctx));
    FORKER_TRY(store.put_blob(config_text, resolved.config.digest).context(ctx));
    result.downloaded_anything = true;
  }
  ConfigDoc config = FORKER_TRY(parse_config(config_text).context(ctx + ": image config"));
  if (config.diff_ids.size() != resolved.layers.size())
    return make_error("pull", ref.str())
        .add_context(ctx + ": the manifest lists " + std::to_string(resolved.layers.size()) +
                     " layers, the config " + std::to_string(config.diff_ids.size()) + " diff ids");
  if (!config.os.empty() && !config.architecture.empty()) {
    Platform got{config.os, config.architecture, ""};
    if (!Platform{options.platform.os, options.platform.architecture, ""}.accepts(got))
      return make_error("pull", ref.str())
          .add_context(ctx + ": the image is for " + got.str() + ", not " +
                       options.platform.str() + " (use --platform)");
  }

  // Missing layer blobs, each under its own lock (taken in digest order, so two pulls never
  // wait for each other in a circle). A blob that appears while we wait is not fetched again.
  std::vector<Descriptor> missing;
  for (const auto& layer : resolved.layers) {
    if (store.has_blob(layer.digest)) {
      emit(options, {PullEvent::Kind::kBlobPresent, layer.digest, layer.size, layer.size});
      continue;
    }
    if (std::none_of(missing.begin(), missing.end(),
                     [&](const Descriptor& d) { return d.digest == layer.digest; }))
      missing.push_back(layer);
  }
  std::sort(missing.begin(), missing.end(),
            [](const Descriptor& a, const Descriptor& b) { return a.digest.hex < b.digest.hex; });
  std::vector<FileLock> locks;
  std::vector<BlobJob> jobs;
  for (const auto& layer : missing) {
    locks.push_back(FORKER_TRY(store.lock_object(layer.digest).context(ctx)));
    if (store.has_blob(layer.digest)) continue;
    jobs.push_back({layer, partial_path(store, layer.digest)});
    emit(options, {PullEvent::Kind::kBlobStart, layer.digest, 0, layer.size});
  }
  if (!jobs.empty()) {
    FORKER_TRY(client.fetch_blobs(ref, jobs).context(ctx));
    for (const auto& job : jobs) {
      FORKER_TRY(store.commit_blob_file(job.dest_path, job.descriptor.digest, job.descriptor.size)
                     .context(ctx));
      emit(options, {PullEvent::Kind::kBlobDone, job.descriptor.digest, job.descriptor.size,
                     job.descriptor.size});
    }
    result.downloaded_anything = true;
  }
  locks.clear();

  // Each layer unpacked once; the config's diff id is checked against what the unpack computes.
  for (size_t i = 0; i < resolved.layers.size(); ++i) {
    const Digest& diff_id = config.diff_ids[i];
    if (store.has_layer(diff_id)) continue;
    FORKER_TRY(store.unpack_blob(resolved.layers[i].digest, diff_id)
                   .context(ctx + ": layer " + resolved.layers[i].digest.short_id()));
    emit(options, {PullEvent::Kind::kUnpacked, resolved.layers[i].digest, 0, 0});
  }

  Descriptor manifest{resolved.media_type, resolved.digest,
                      static_cast<int64_t>(resolved.manifest.size()), {}};
  FORKER_TRY(store.tag(ref.str(), manifest).context(ctx));
  result.image = FORKER_TRY(store.find_image(ref.str()).context(ctx));
  return result;
}

}  // namespace forker::image
