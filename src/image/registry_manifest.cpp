// Manifest and index parsing for the registry client (declared in registry.hpp).
#include <nlohmann/json.hpp>

#include "core/strings.hpp"
#include "image/registry.hpp"

namespace forker::image {
namespace {

using nlohmann::json;

Result<json> parse_json(std::string_view bytes, std::string_view what) {
  try {
    json doc = json::parse(bytes);
    if (!doc.is_object()) return make_error("parse " + std::string(what) + ":", "not a JSON object");
    return doc;
  } catch (const json::exception& e) {
    return make_error("parse " + std::string(what) + ":", e.what());
  }
}

Result<Descriptor> parse_descriptor(const json& j, std::string_view what) {
  auto bad = [&](std::string_view why) {
    return make_error("parse " + std::string(what) + ":", std::string(why));
  };
  if (!j.is_object()) return bad("descriptor is not an object");
  Descriptor d;
  auto media = j.find("mediaType");
  if (media == j.end() || !media->is_string()) return bad("descriptor without mediaType");
  d.media_type = media->get<std::string>();
  auto digest = j.find("digest");
  if (digest == j.end() || !digest->is_string()) return bad("descriptor without digest");
  d.digest = FORKER_TRY(Digest::parse(digest->get<std::string>()).context("parse " + std::string(what)));
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer() || size->get<int64_t>() < 0)
    return bad("descriptor of " + d.digest.str() + " without a valid size");
  d.size = size->get<int64_t>();
  if (auto ann = j.find("annotations"); ann != j.end() && ann->is_object()) {
    for (const auto& [k, v] : ann->items())
      if (v.is_string()) d.annotations[k] = v.get<std::string>();
  }
  return d;
}

bool is_schema1(std::string_view media_type) {
  return media_type == kMediaDockerSchema1 || media_type == kMediaDockerSchema1Signed;
}

Status check_layer_type(const Descriptor& layer) {
  std::string_view t = layer.media_type;
  if (t == kMediaOciLayer || t == kMediaOciLayerGzip || t == kMediaOciLayerZstd ||
      t == kMediaDockerLayerGzip || t == kMediaDockerLayerTar)
    return ok();
  if (t.find("nondistributable") != std::string_view::npos || t.find("foreign") != std::string_view::npos)
    return make_error("refusing non-distributable (foreign) layer", layer.digest.str() + " (" + std::string(t) + ")");
  return make_error("unsupported layer media type", std::string(t) + " of " + layer.digest.str());
}

}  // namespace

bool is_index_media_type(std::string_view media_type) {
  return media_type == kMediaOciIndex || media_type == kMediaDockerManifestList;
}

Result<std::string> manifest_media_type(std::string_view bytes, std::string_view content_type) {
  json doc = FORKER_TRY(parse_json(bytes, "manifest"));
  std::string type;
  if (auto m = doc.find("mediaType"); m != doc.end() && m->is_string()) type = m->get<std::string>();
  if (type.empty()) {
    std::string_view ct = content_type.substr(0, content_type.find(';'));
    type = std::string(trim(ct));
  }
  if (auto v = doc.find("schemaVersion"); v != doc.end() && v->is_number_integer() && v->get<int>() == 1)
    type = std::string(kMediaDockerSchema1);
  if (is_schema1(type))
    return make_error("unsupported manifest:", "docker schema 1 (" + type + ") is obsolete; push the image again with a current client");
  // Registries answer generic JSON types for OCI content that carries no mediaType field.
  if (type.empty() || type == "application/json" || type == "text/plain") {
    if (doc.contains("manifests")) return std::string(kMediaOciIndex);
    if (doc.contains("layers")) return std::string(kMediaOciManifest);
  }
  if (is_index_media_type(type) || type == kMediaOciManifest || type == kMediaDockerManifest) return type;
  return make_error("unsupported manifest media type", type.empty() ? "(none)" : type);
}

Result<ImageManifest> parse_image_manifest(std::string_view bytes) {
  json doc = FORKER_TRY(parse_json(bytes, "manifest"));
  ImageManifest m;
  auto config = doc.find("config");
  if (config == doc.end()) return make_error("parse manifest:", "no config");
  m.config = FORKER_TRY(parse_descriptor(*config, "manifest config"));
  if (m.config.media_type != kMediaOciConfig && m.config.media_type != kMediaDockerConfig)
    return make_error("not a container image: config media type", m.config.media_type);
  auto layers = doc.find("layers");
  if (layers == doc.end() || !layers->is_array()) return make_error("parse manifest:", "no layers array");
  for (const auto& l : *layers) {
    Descriptor d = FORKER_TRY(parse_descriptor(l, "manifest layer"));
    FORKER_TRY(check_layer_type(d));
    m.layers.push_back(std::move(d));
  }
  return m;
}

Result<std::vector<PlatformEntry>> parse_image_index(std::string_view bytes) {
  json doc = FORKER_TRY(parse_json(bytes, "index"));
  auto manifests = doc.find("manifests");
  if (manifests == doc.end() || !manifests->is_array()) return make_error("parse index:", "no manifests array");
  std::vector<PlatformEntry> out;
  for (const auto& m : *manifests) {
    PlatformEntry e;
    e.descriptor = FORKER_TRY(parse_descriptor(m, "index entry"));
    if (auto p = m.find("platform"); p != m.end() && p->is_object()) {
      e.platform = Platform{p->value("os", std::string()), p->value("architecture", std::string()),
                            p->value("variant", std::string())};
    }
    out.push_back(std::move(e));
  }
  return out;
}

Result<PlatformEntry> select_platform(const std::vector<PlatformEntry>& entries, const Platform& wanted) {
  const PlatformEntry* fallback = nullptr;
  std::vector<std::string> available;
  for (const auto& e : entries) {
    // Attestations and other artifacts share the index under an "unknown/unknown" platform.
    if (!e.platform || is_index_media_type(e.descriptor.media_type)) continue;
    available.push_back(e.platform->str());
    if (!wanted.accepts(*e.platform)) continue;
    if (e.platform->variant == wanted.variant) return e;
    if (!fallback) fallback = &e;
  }
  if (fallback) return *fallback;
  return make_error("no image for platform " + wanted.str() + " in the index;",
                    "it has: " + (available.empty() ? std::string("none") : join(available, ", ")));
}

}  // namespace forker::image
