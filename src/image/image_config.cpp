#include "image/image_config.hpp"

namespace forker::image {
namespace {

using nlohmann::json;

// nlohmann-json throws; every document is parsed through here so that a malformed one is an
// Error naming WHAT, never an exception.
Result<json> parse_json(std::string_view text, std::string_view what) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error("parse " + std::string(what) + ":", "not valid JSON");
  if (!j.is_object()) return make_error("parse " + std::string(what) + ":", "not a JSON object");
  return j;
}

std::string string_field(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<std::vector<Descriptor>> descriptor_list(const json& j, const char* key,
                                                std::string_view what) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array())
    return make_error("parse " + std::string(what) + ":", std::string("no \"") + key + "\" array");
  std::vector<Descriptor> out;
  for (const json& item : *it)
    out.push_back(FORKER_TRY_CTX(parse_descriptor(item), std::string(what) + " " + key));
  return out;
}

}  // namespace

Result<Descriptor> parse_descriptor(const json& j) {
  if (!j.is_object()) return make_error("parse descriptor:", "not a JSON object");
  Descriptor d;
  d.media_type = string_field(j, "mediaType");
  d.digest = FORKER_TRY(Digest::parse(string_field(j, "digest")));
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer() || size->get<int64_t>() < 0)
    return make_error("parse descriptor:", d.digest.str() + ": no valid size");
  d.size = size->get<int64_t>();
  if (auto a = j.find("annotations"); a != j.end() && a->is_object()) {
    for (auto& [key, value] : a->items())
      if (value.is_string()) d.annotations[key] = value.get<std::string>();
  }
  return d;
}

json descriptor_json(const Descriptor& d) {
  json j = {{"mediaType", d.media_type}, {"digest", d.digest.str()}, {"size", d.size}};
  if (!d.annotations.empty()) j["annotations"] = d.annotations;
  return j;
}

Result<ManifestKind> manifest_kind(std::string_view text, std::string_view descriptor_media_type) {
  json j = FORKER_TRY(parse_json(text, "manifest"));
  std::string media = string_field(j, "mediaType");
  if (media.empty()) media = descriptor_media_type;
  if (media == kMediaOciIndex || media == kMediaDockerManifestList) return ManifestKind::kIndex;
  if (media == kMediaOciManifest || media == kMediaDockerManifest) return ManifestKind::kManifest;
  if (media.empty() && j.contains("manifests")) return ManifestKind::kIndex;
  if (media.empty() && j.contains("config")) return ManifestKind::kManifest;
  return make_error("parse manifest:", "unsupported media type \"" + media + "\"");
}

Result<ManifestDoc> parse_manifest(std::string_view text) {
  json j = FORKER_TRY(parse_json(text, "manifest"));
  auto version = j.find("schemaVersion");
  if (version == j.end() || *version != 2)
    return make_error("parse manifest:", "schemaVersion is not 2");
  ManifestDoc doc;
  doc.media_type = string_field(j, "mediaType");
  auto config = j.find("config");
  if (config == j.end()) return make_error("parse manifest:", "no \"config\"");
  doc.config = FORKER_TRY_CTX(parse_descriptor(*config), "manifest config");
  doc.layers = FORKER_TRY(descriptor_list(j, "layers", "manifest"));
  return doc;
}

Result<std::vector<IndexEntry>> parse_index(std::string_view text) {
  json j = FORKER_TRY(parse_json(text, "image index"));
  auto list = j.find("manifests");
  if (list == j.end() || !list->is_array())
    return make_error("parse image index:", "no \"manifests\" array");
  std::vector<IndexEntry> out;
  for (const json& item : *list) {
    IndexEntry e;
    e.descriptor = FORKER_TRY_CTX(parse_descriptor(item), "image index manifests");
    if (auto p = item.find("platform"); p != item.end() && p->is_object()) {
      e.platform.os = string_field(*p, "os");
      e.platform.architecture = string_field(*p, "architecture");
      e.platform.variant = string_field(*p, "variant");
    }
    out.push_back(std::move(e));
  }
  return out;
}

Result<ConfigDoc> parse_config(std::string_view text) {
  json j = FORKER_TRY(parse_json(text, "image config"));
  ConfigDoc doc;
  doc.created = string_field(j, "created");
  doc.os = string_field(j, "os");
  doc.architecture = string_field(j, "architecture");
  auto rootfs = j.find("rootfs");
  if (rootfs == j.end() || !rootfs->is_object())
    return make_error("parse image config:", "no \"rootfs\" object");
  auto ids = rootfs->find("diff_ids");
  if (ids == rootfs->end() || !ids->is_array())
    return make_error("parse image config:", "no \"rootfs.diff_ids\" array");
  for (const json& id : *ids) {
    if (!id.is_string()) return make_error("parse image config:", "a diff id is not a string");
    doc.diff_ids.push_back(FORKER_TRY_CTX(Digest::parse(id.get<std::string>()), "image config"));
  }
  return doc;
}

int choose_platform(const std::vector<IndexEntry>& entries, const Platform& wanted) {
  for (size_t i = 0; i < entries.size(); ++i)
    if (wanted.accepts(entries[i].platform)) return static_cast<int>(i);
  return -1;
}

}  // namespace forker::image
