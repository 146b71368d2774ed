// Image names: index.json (read-modify-write under the metadata lock) and what each entry's
// manifest and config say.
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <set>

#include "core/file.hpp"
#include "core/log.hpp"
#include "image/image_config.hpp"
#include "image/reference.hpp"
#include "image/store.hpp"
#include "image/store_files.hpp"

namespace forker::image {
namespace {

using nlohmann::json;

std::string ref_name(const json& entry) {
  auto a = entry.find("annotations");
  if (a == entry.end() || !a->is_object()) return {};
  auto n = a->find(kRefNameAnnotation);
  return n != a->end() && n->is_string() ? n->get<std::string>() : std::string();
}

Result<std::string> normalize(std::string_view name) {
  Reference ref = FORKER_TRY(Reference::parse(name));
  return ref.str();
}

bool is_id_prefix(std::string_view text) {
  if (text.size() < 4 || text.size() > 64) return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// What the manifest behind ENTRY says; an index resolves to this host's child.
Result<ImageRecord> load_record(const Store& store, const Descriptor& entry) {
  ImageRecord rec;
  rec.manifest = entry;
  if (auto n = entry.annotations.find(std::string(kRefNameAnnotation));
      n != entry.annotations.end())
    rec.name = n->second;
  std::string text = FORKER_TRY(store.read_blob_unverified(entry.digest));
  ManifestKind kind = FORKER_TRY_CTX(manifest_kind(text, entry.media_type), entry.digest.str());
  if (kind == ManifestKind::kIndex) {
    auto children = FORKER_TRY_CTX(parse_index(text), entry.digest.str());
    Platform host = Platform::host();
    int i = choose_platform(children, host);
    if (i < 0)
      return make_error("image index " + entry.digest.str() + ":", "no manifest for " + host.str());
    const Descriptor& child = children[static_cast<size_t>(i)].descriptor;
    text = FORKER_TRY_CTX(store.read_blob_unverified(child.digest), "image index " + entry.digest.str());
    ManifestKind child_kind =
        FORKER_TRY_CTX(manifest_kind(text, child.media_type), child.digest.str());
    if (child_kind != ManifestKind::kManifest)
      return make_error("image index " + entry.digest.str() + ":",
                        child.digest.str() + " is not a manifest");
  }
  ManifestDoc manifest = FORKER_TRY_CTX(parse_manifest(text), "manifest " + entry.digest.str());
  std::string config_text =
      FORKER_TRY_CTX(store.read_blob_unverified(manifest.config.digest), "config of " + entry.digest.str());
  ConfigDoc config = FORKER_TRY_CTX(parse_config(config_text), manifest.config.digest.str());
  if (config.diff_ids.size() != manifest.layers.size())
    return make_error("image " + entry.digest.str() + ":",
                      "manifest has " + std::to_string(manifest.layers.size()) +
                          " layers but config " + manifest.config.digest.str() + " has " +
                          std::to_string(config.diff_ids.size()) + " diff ids");
  rec.config = manifest.config;
  rec.layers = std::move(manifest.layers);
  rec.diff_ids = std::move(config.diff_ids);
  rec.created = std::move(config.created);
  rec.os = std::move(config.os);
  rec.architecture = std::move(config.architecture);
  rec.size = rec.config.size;
  for (const Descriptor& l : rec.layers) rec.size += l.size;
  return rec;
}

}  // namespace

Status Store::tag(const std::string& name, const Descriptor& manifest) {
  std::string full = FORKER_TRY_CTX(normalize(name), "tag");
  std::string context = "tag " + full;
  struct stat st;
  if (::stat(blob_path(manifest.digest).c_str(), &st) < 0)
    return make_error(context + ":", "manifest " + manifest.digest.str() + " is not in the store");
  if (st.st_size != manifest.size)
    return make_error(context + ":", "manifest " + manifest.digest.str() + " has " +
                                         std::to_string(st.st_size) + " bytes, descriptor says " +
                                         std::to_string(manifest.size));
  Descriptor entry = manifest;
  if (entry.media_type.empty()) {
    std::string text = FORKER_TRY_CTX(read_blob_unverified(manifest.digest), context);
    json j = json::parse(text, nullptr, false);
    if (j.is_object() && j.contains("mediaType") && j["mediaType"].is_string())
      entry.media_type = j["mediaType"].get<std::string>();
    if (entry.media_type.empty())
      return make_error(context + ":", "manifest " + manifest.digest.str() + " has no media type");
  }
  entry.annotations[std::string(kRefNameAnnotation)] = full;

  auto lock = FORKER_TRY_CTX(lock_metadata(true), context);
  json index = FORKER_TRY_CTX(detail::read_index(root_), context);
  json kept = json::array();
  for (const json& e : index["manifests"])
    if (ref_name(e) != full) kept.push_back(e);
  kept.push_back(descriptor_json(entry));
  index["manifests"] = std::move(kept);
  return std::move(detail::write_durable(temp_path("index.json"), root_ + "/index.json",
                                         index.dump(), 0644))
      .context(context);
}

Status Store::untag(const std::string& name) {
  std::string full = FORKER_TRY_CTX(normalize(name), "untag");
  auto lock = FORKER_TRY_CTX(lock_metadata(true), "untag " + full);
  json index = FORKER_TRY_CTX(detail::read_index(root_), "untag " + full);
  json kept = json::array();
  for (const json& e : index["manifests"])
    if (ref_name(e) != full) kept.push_back(e);
  if (kept.size() == index["manifests"].size())
    return make_error("untag:", "no image named " + full);
  index["manifests"] = std::move(kept);
  return std::move(detail::write_durable(temp_path("index.json"), root_ + "/index.json",
                                         index.dump(), 0644))
      .context("untag " + full);
}

Result<std::vector<ImageRecord>> Store::images(std::vector<Error>* broken) const {
  json index = FORKER_TRY(detail::read_index(root_));
  std::vector<ImageRecord> out;
  for (const json& e : index["manifests"]) {
    auto desc = parse_descriptor(e);
    auto rec = desc ? load_record(*this, *desc) : Result<ImageRecord>(std::move(desc).error());
    if (rec) {
      out.push_back(std::move(*rec));
      continue;
    }
    std::string name = ref_name(e);
    rec.error().add_context("image " + (name.empty() ? std::string("<unnamed>") : name));
    if (broken != nullptr)
      broken->push_back(std::move(rec).error());
    else
      log::warn("skipping " + rec.error().message());
  }
  return out;
}

Result<ImageRecord> Store::find_image(std::string_view name_or_id) const {
  std::string text(name_or_id);
  if (auto full = normalize(text)) {
    json index = FORKER_TRY(detail::read_index(root_));
    for (const json& e : index["manifests"]) {
      if (ref_name(e) != *full) continue;
      Descriptor d = FORKER_TRY_CTX(parse_descriptor(e), "image " + *full);
      return FORKER_TRY_CTX(load_record(*this, d), "image " + *full);
    }
  }
  std::string prefix = text.starts_with("sha256:") ? text.substr(7) : text;
  if (is_id_prefix(prefix)) {
    std::vector<Error> broken;
    auto all = FORKER_TRY(images(&broken));
    std::set<std::string> ids;
    const ImageRecord* found = nullptr;
    for (const ImageRecord& r : all) {
      if (!r.id().starts_with(prefix)) continue;
      ids.insert(r.id());
      found = &r;
    }
    if (ids.size() > 1)
      return make_error("find image:", "id prefix " + prefix + " is ambiguous: it matches " +
                                           std::to_string(ids.size()) + " images");
    if (found != nullptr) return *found;
  }
  return make_error("no such image:", text);
}

}  // namespace forker::image
