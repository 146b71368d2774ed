// Reading the JSON documents of an image: descriptors, manifests (OCI and docker schema2),
// indexes / manifest lists, and the parts of an image config the store needs.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "image/platform.hpp"
#include "image/store.hpp"

namespace forker::image {

struct IndexEntry {
  Descriptor descriptor;
  Platform platform;  // empty when the entry has none
};

struct ManifestDoc {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;  // bottom first
};

struct ConfigDoc {
  std::vector<Digest> diff_ids;  // bottom first
  std::string created, os, architecture;
};

enum class ManifestKind { kManifest, kIndex };

Result<Descriptor> parse_descriptor(const nlohmann::json& j);
nlohmann::json descriptor_json(const Descriptor& d);

// Index or manifest, from the document's own mediaType, else the descriptor's, else its shape
// ("manifests" vs "config"). Anything else is an error.
Result<ManifestKind> manifest_kind(std::string_view text, std::string_view descriptor_media_type);
Result<ManifestDoc> parse_manifest(std::string_view text);
Result<std::vector<IndexEntry>> parse_index(std::string_view text);
Result<ConfigDoc> parse_config(std::string_view text);

// The first entry of ENTRIES that WANTED accepts (Platform::accepts), or -1.
int choose_platform(const std::vector<IndexEntry>& entries, const Platform& wanted);

}  // namespace forker::image
