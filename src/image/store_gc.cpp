// Disk usage and garbage collection: what index.json and the snapshots reference stays,
// everything else in blobs/ and layers/ goes, and so do tmp/ entries of sessions that are gone.
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <set>

#include "core/file.hpp"
#include "image/image_config.hpp"
#include "image/layer_unpack.hpp"
#include "image/store.hpp"
#include "image/store_files.hpp"

namespace forker::image {
namespace {

struct Referenced {
  std::set<std::string> blobs;   // hex
  std::set<std::string> layers;  // diff id hex
};

// A manifest and what it names. Blobs that are missing or unreadable are simply not followed:
// nothing they would name can be protected anyway.
void mark_manifest(const Store& store, const Digest& digest, std::string_view media_type,
                   Referenced& refs, int depth) {
  refs.blobs.insert(digest.hex);
  auto text = store.read_blob(digest);
  if (!text) return;
  auto kind = manifest_kind(*text, media_type);
  if (!kind) return;
  if (*kind == ManifestKind::kIndex) {
    auto children = parse_index(*text);
    if (!children || depth > 4) return;  // an index of indexes, but not a cycle
    for (const IndexEntry& child : *children)
      mark_manifest(store, child.descriptor.digest, child.descriptor.media_type, refs, depth + 1);
    return;
  }
  auto manifest = parse_manifest(*text);
  if (!manifest) return;
  refs.blobs.insert(manifest->config.digest.hex);
  for (const Descriptor& layer : manifest->layers) refs.blobs.insert(layer.digest.hex);
  auto config_text = store.read_blob(manifest->config.digest);
  if (!config_text) return;
  auto config = parse_config(*config_text);
  if (!config) return;
  for (const Digest& d : config->diff_ids) refs.layers.insert(d.hex);
}

Result<Referenced> referenced(const Store& store) {
  Referenced refs;
  nlohmann::json index = FORKER_TRY(detail::read_index(store.root()));
  for (const nlohmann::json& entry : index["manifests"]) {
    auto desc = parse_descriptor(entry);
    if (desc) mark_manifest(store, desc->digest, desc->media_type, refs, 0);
  }
  // A snapshot whose record cannot be read might stack any layer: refuse rather than guess.
  std::string containers = store.root() + "/containers";
  for (const std::string& id : FORKER_TRY(detail::list_dir(containers))) {
    std::string path = containers + "/" + id + "/snapshot.json";
    std::string text = FORKER_TRY_CTX(read_file(path), "prune: snapshot of container " + id);
    auto doc = nlohmann::json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("diff_ids") ||
        !doc["diff_ids"].is_array())
      return make_error("prune: " + path + ":", "no diff_ids array");
    for (const auto& d : doc["diff_ids"]) {
      auto digest = Digest::parse(d.is_string() ? d.get<std::string>() : "");
      if (!digest) return make_error("prune: " + path + ":", "bad diff id");
      refs.layers.insert(digest->hex);
    }
  }
  return refs;
}

bool is_hex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// "<session>-<pid>.<n>-<purpose>" -> the session's lock file; names we did not make have none.
std::string session_lock_of(const std::string& root, const std::string& tmp_name) {
  size_t dash = tmp_name.find('-');
  if (dash == std::string::npos || dash == 0) return {};
  return root + "/locks/session-" + tmp_name.substr(0, dash) + ".lock";
}

// Whether the owner of tmp/NAME is gone. A name not from temp_path() has no owner to wait for.
Result<bool> is_debris(const std::string& root, const std::string& name) {
  std::string lock_path = session_lock_of(root, name);
  if (lock_path.empty()) return true;
  auto lock = FORKER_TRY(detail::try_lock(lock_path));
  return lock.has_value();
}

// Removes PATH (file or tree) if LOCK_PATH is free, unlinking the lock file too while holding
// it. Returns the bytes freed, or -1 when the lock was held.
Result<int64_t> remove_unlocked(const std::string& path, const std::string& lock_path) {
  auto lock = FORKER_TRY(detail::try_lock(lock_path));
  if (!lock) return int64_t{-1};
  int64_t bytes = FORKER_TRY(detail::tree_bytes(path));
  FORKER_TRY(remove_tree(path));
  ::unlink(lock_path.c_str());
  return bytes;
}

}  // namespace

Result<DiskUsage> Store::disk_usage() const {
  DiskUsage du;
  std::vector<Error> broken;
  du.images = static_cast<int64_t>(FORKER_TRY(images(&broken)).size());
  du.blobs_bytes = FORKER_TRY(detail::tree_bytes(root_ + "/blobs"));
  du.layers = static_cast<int64_t>(FORKER_TRY(detail::list_dir(root_ + "/layers")).size());
  du.layers_bytes = FORKER_TRY(detail::tree_bytes(root_ + "/layers"));
  du.containers = static_cast<int64_t>(FORKER_TRY(detail::list_dir(root_ + "/containers")).size());
  du.containers_bytes = FORKER_TRY(detail::tree_bytes(root_ + "/containers"));
  for (const std::string& name : FORKER_TRY(detail::list_dir(root_ + "/tmp"))) {
    if (FORKER_TRY(is_debris(root_, name)))
      du.debris_bytes += FORKER_TRY(detail::tree_bytes(root_ + "/tmp/" + name));
  }
  return du;
}

Result<PruneReport> Store::prune() {
  // gc first, then metadata: the order writers use (lock_gc, later tag).
  auto gc = FORKER_TRY_CTX(lock_gc(true), "prune");
  auto meta = FORKER_TRY_CTX(lock_metadata(true), "prune");
  Referenced refs = FORKER_TRY_CTX(referenced(*this), "prune");
  PruneReport report;

  // Unreferenced objects in DIR whose lock (locks/<LOCK_PREFIX><hex>.lock) is free.
  auto sweep = [&](const std::string& dir, const std::string& lock_prefix,
                   const std::set<std::string>& keep, std::vector<Digest>& removed) -> Status {
    for (const std::string& hex : FORKER_TRY(detail::list_dir(dir))) {
      if (!is_hex64(hex) || keep.count(hex) != 0) continue;  // foreign names are left alone
      int64_t freed = FORKER_TRY_CTX(
          remove_unlocked(dir + "/" + hex, root_ + "/locks/" + lock_prefix + hex + ".lock"),
          "prune");
      if (freed < 0) continue;
      report.bytes_freed += freed;
      removed.push_back(Digest{"sha256", hex});
    }
    return ok();
  };
  const std::string blobs = root_ + "/blobs/sha256", layers = root_ + "/layers";
  FORKER_TRY(sweep(blobs, "", refs.blobs, report.blobs_removed));
  FORKER_TRY(sweep(layers, "layer-", refs.layers, report.layers_removed));
  std::string tmp = root_ + "/tmp";
  for (const std::string& name : FORKER_TRY(detail::list_dir(tmp))) {
    if (!FORKER_TRY_CTX(is_debris(root_, name), "prune")) continue;
    report.bytes_freed += FORKER_TRY_CTX(detail::tree_bytes(tmp + "/" + name), "prune");
    FORKER_TRY_CTX(remove_tree(tmp + "/" + name), "prune");
    ++report.debris_removed;
  }
  // Lock files of sessions that ended and of objects that are gone (held ones stay).
  std::string locks = root_ + "/locks";
  for (const std::string& name : FORKER_TRY(detail::list_dir(locks))) {
    bool session = name.starts_with("session-");
    std::string hex = name.starts_with("layer-") ? name.substr(6) : name;
    hex = hex.size() > 5 ? hex.substr(0, hex.size() - 5) : "";
    bool object_gone =
        is_hex64(hex) && !path_exists(blobs + "/" + hex) && !path_exists(layers + "/" + hex);
    if (!session && !object_gone) continue;
    auto lock = FORKER_TRY_CTX(detail::try_lock(locks + "/" + name), "prune");
    if (lock) ::unlink((locks + "/" + name).c_str());
  }
  return report;
}

}  // namespace forker::image
