#include "image/import.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "core/unique_fd.hpp"
#include "image/image_config.hpp"
#include "image/layer_unpack.hpp"
#include "image/reference.hpp"
#include "linux/safe_path.hpp"

namespace forker::image {
namespace {

using nlohmann::json;

constexpr size_t kMaxJsonMember = 16 << 20;  // manifests, configs, index.json
constexpr size_t kChunk = 1 << 16;

// ---- Reading the outer archive -------------------------------------------------------------

struct ArchiveFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveFree>;

// The path is not repeated here: import_path() names it once, as the context.
Error archive_error(std::string_view op, struct archive* a) {
  const char* why = archive_error_string(a);
  return make_error(std::string(op) + ":", why ? why : "unknown libarchive error");
}

Result<ArchivePtr> open_tar(const std::string& path) {
  ArchivePtr a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), kChunk) != ARCHIVE_OK)
    return archive_error("open archive", a.get());
  return a;
}

// A member name for an error line: quoted, control characters escaped (it stays one line).
std::string quote_name(const std::string& name) {
  std::string out = "\"";
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// "./a/b/" -> "a/b": how tar writers spell the same member differently.
std::string normalize_member_name(std::string_view name) {
  while (name.starts_with("./")) name.remove_prefix(2);
  while (name.ends_with('/')) name.remove_suffix(1);
  return std::string(name);
}

// Hands out a member's bytes chunk by chunk: returns 0 at its end.
using ChunkReader = std::function<Result<size_t>(char* buf, size_t cap)>;
using MemberSink = std::function<Status(const std::string& name, const ChunkReader& read)>;

// Where the members of a docker save archive or an OCI layout come from.
class Source {
 public:
  virtual ~Source() = default;
  // Calls SINK once for each of NAMES; each must be a regular file present exactly once.
  virtual Status visit(const std::set<std::string>& names, const MemberSink& sink) = 0;
};

class TarSource : public Source {
 public:
  explicit TarSource(std::string path) : path_(std::move(path)) {}

  Status visit(const std::set<std::string>& names, const MemberSink& sink) override {
    ArchivePtr a = FORKER_TRY(open_tar(path_));
    std::set<std::string> seen;
    archive_entry* entry = nullptr;
    for (;;) {
      int r = archive_read_next_header(a.get(), &entry);
      if (r == ARCHIVE_EOF) break;
      // ARCHIVE_RETRY ("Damaged tar archive") is above ARCHIVE_WARN but still a failure.
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return archive_error("read archive", a.get());
      std::string name = normalize_member_name(archive_entry_pathname(entry));
      if (!names.count(name)) continue;
      // A second member of the same name would make "which one" depend on the reader.
      if (!seen.insert(name).second)
        return make_error("archive member " + quote_name(name) + " appears twice");
      if (archive_entry_filetype(entry) == AE_IFLNK)
        return make_error("archive member " + quote_name(name) + " is a symlink, not a regular file");
      if (archive_entry_hardlink(entry) != nullptr)
        return make_error("archive member " + quote_name(name) + " is a hard link, not a regular file");
      if (archive_entry_filetype(entry) != AE_IFREG)
        return make_error("archive member " + quote_name(name) + " is not a regular file");
      struct archive* raw = a.get();
      ChunkReader read = [raw, &name](char* buf, size_t cap) -> Result<size_t> {
        la_ssize_t n = archive_read_data(raw, buf, cap);
        if (n < 0) return archive_error("read archive member " + name, raw);
        return static_cast<size_t>(n);
      };
      FORKER_TRY(sink(name, read));
    }
    for (const auto& name : names)
      if (!seen.count(name)) return make_error("archive has no member " + quote_name(name));
    return ok();
  }

 private:
  std::string path_;
};

// An OCI layout directory: every open resolved beneath it with no symlinks at all.
class DirSource : public Source {
 public:
  explicit DirSource(std::string path) : path_(std::move(path)) {}

  Status visit(const std::set<std::string>& names, const MemberSink& sink) override {
    UniqueFd dir(::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return sys_error("open", path_);
    for (const auto& name : names) {
      UniqueFd fd = FORKER_TRY(linux::open_in_root(dir.get(), name, O_RDONLY | O_NOFOLLOW,
                                                   RESOLVE_NO_SYMLINKS));
      struct stat st {};
      if (::fstat(fd.get(), &st) < 0) return sys_error("stat", name);
      if (!S_ISREG(st.st_mode))
        return make_error("layout entry " + quote_name(name) + " is not a regular file");
      int raw = fd.get();
      std::string where = path_ + "/" + name;
      ChunkReader read = [raw, &where](char* buf, size_t cap) -> Result<size_t> {
        for (;;) {
          ssize_t n = ::read(raw, buf, cap);
          if (n >= 0) return static_cast<size_t>(n);
          if (errno != EINTR) return sys_error("read", where);
        }
      };
      FORKER_TRY(sink(name, read));
    }
    return ok();
  }

 private:
  std::string path_;
};

Result<std::map<std::string, std::string>> read_members(Source& src,
                                                        const std::set<std::string>& names) {
  std::map<std::string, std::string> out;
  FORKER_TRY(src.visit(names, [&](const std::string& name, const ChunkReader& read) -> Status {
    std::string& text = out[name];
    char buf[kChunk];
    for (;;) {
      size_t n = FORKER_TRY(read(buf, sizeof buf));
      if (n == 0) return ok();
      if (text.size() + n > kMaxJsonMember)
        return make_error("archive member " + quote_name(name) + " is too large for metadata");
      text.append(buf, n);
    }
  }));
  return out;
}

enum class Compression { kNone, kGzip, kZstd, kBzip2, kXz };

Compression sniff_compression(std::string_view head) {
  auto has = [&](std::string_view magic) { return head.starts_with(magic); };
  if (has("\x1f\x8b")) return Compression::kGzip;
  if (has("\x28\xb5\x2f\xfd")) return Compression::kZstd;
  if (has("BZh")) return Compression::kBzip2;
  if (has(std::string_view("\xfd" "7zXZ\0", 6))) return Compression::kXz;
  return Compression::kNone;
}

std::optional<std::string_view> layer_media_type(Compression c) {
  switch (c) {
    case Compression::kNone: return kMediaOciLayer;
    case Compression::kGzip: return kMediaOciLayerGzip;
    case Compression::kZstd: return kMediaOciLayerZstd;
    default: return std::nullopt;
  }
}

struct Copied {
  Digest digest;
  int64_t size = 0;
  Compression compression = Compression::kNone;
};

Status write_all(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("write", path);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return ok();
}

// Streams READ into DEST (created, must not exist), hashing; fsynced before it is renamed.
Result<Copied> copy_to_file(const ChunkReader& read, const std::string& dest) {
  UniqueFd out(::open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!out) return sys_error("create", dest);
  Sha256 hash;
  std::string head;
  std::vector<char> buf(kChunk);
  for (;;) {
    size_t n = FORKER_TRY(read(buf.data(), buf.size()));
    if (n == 0) break;
    if (head.size() < 8) head.append(buf.data(), std::min(n, 8 - head.size()));
    hash.update(buf.data(), n);
    FORKER_TRY(write_all(out.get(), buf.data(), n, dest));
  }
  if (::fsync(out.get()) < 0) return sys_error("fsync", dest);
  Copied c;
  c.size = static_cast<int64_t>(hash.bytes());
  c.digest = hash.finish();
  c.compression = sniff_compression(head);
  return c;
}

// ---- Adding to the store, undone unless committed ------------------------------------------

// Everything one import adds. Destroyed uncommitted, it puts the store back: names restored,
// new layers and blobs removed, temp files unlinked. While it lives it holds lock_gc() shared,
// so a prune cannot take blobs that are stored but not yet named.
class Transaction {
 public:
  static Result<std::unique_ptr<Transaction>> begin(Store& store) {
    FileLock gc = FORKER_TRY(store.lock_gc(false));
    return std::unique_ptr<Transaction>(new Transaction(store, std::move(gc)));
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    for (const auto& t : temps_) ::unlink(t.c_str());
    if (committed_) return;
    for (auto it = tagged_.rbegin(); it != tagged_.rend(); ++it) {
      if (it->second) (void)store_.tag(it->first, *it->second);
      else (void)store_.untag(it->first);
    }
    for (const auto& d : new_layers_) (void)remove_tree(store_.layer_path(d));
    for (const auto& d : new_blobs_) ::unlink(store_.blob_path(d).c_str());
  }

  std::string temp(std::string_view purpose) {
    temps_.push_back(store_.temp_path(purpose));
    return temps_.back();
  }

  Status commit_file(const std::string& temp_file, const Digest& digest, int64_t size) {
    if (store_.has_blob(digest)) return ok();  // the temp file goes with the transaction
    FORKER_TRY(store_.commit_blob_file(temp_file, digest, size));
    new_blobs_.push_back(digest);
    return ok();
  }
  Result<Digest> put(std::string_view bytes, const std::optional<Digest>& expected = {}) {
    Digest d = sha256_of(bytes);
    if (expected && !(*expected == d))
      return make_error("content does not match its digest", expected->str());
    bool had = store_.has_blob(d);
    FORKER_TRY(store_.put_blob(bytes, d));
    if (!had) new_blobs_.push_back(d);
    return d;
  }
  Result<Digest> unpack(const Digest& blob, const std::optional<Digest>& diff_id) {
    // Without an expected diff id we cannot tell whether the layer was there before: it is
    // left for prune rather than risk removing one another image uses.
    bool fresh = diff_id && !store_.has_layer(*diff_id);
    Digest d = FORKER_TRY(store_.unpack_blob(blob, diff_id));
    if (fresh) new_layers_.push_back(d);
    return d;
  }
  Status tag(const std::string& name, const Descriptor& manifest) {
    std::optional<Descriptor> previous;
    if (auto old = store_.find_image(name); old && old->name == name) previous = old->manifest;
    FORKER_TRY(store_.tag(name, manifest));
    tagged_.emplace_back(name, previous);
    return ok();
  }
  void commit() { committed_ = true; }

 private:
  Transaction(Store& store, FileLock gc) : store_(store), gc_(std::move(gc)) {}
  Store& store_;
  FileLock gc_;  // released after the destructor's body has undone what needed undoing
  std::vector<std::string> temps_;
  std::vector<Digest> new_blobs_, new_layers_;
  std::vector<std::pair<std::string, std::optional<Descriptor>>> tagged_;
  bool committed_ = false;
};

// ---- Image metadata --------------------------------------------------------------------------

std::string blob_member(const Digest& d) { return "blobs/" + d.algorithm + "/" + d.hex; }

// The digest a member's name promises: "blobs/sha256/<hex>" or "<hex>.json" (docker save).
std::optional<Digest> digest_in_name(const std::string& name) {
  if (name.starts_with("blobs/sha256/")) {
    if (auto d = Digest::parse("sha256:" + name.substr(13))) return *d;
  }
  if (name.size() == 69 && name.ends_with(".json")) {
    if (auto d = Digest::parse("sha256:" + name.substr(0, 64))) return *d;
  }
  return std::nullopt;
}

Result<std::vector<Digest>> config_diff_ids(const std::string& bytes, const std::string& what) {
  ConfigDoc doc = FORKER_TRY(parse_config(bytes).context("config " + what));
  return doc.diff_ids;
}

Status check_blob(const std::string& bytes, const Descriptor& d) {
  if (static_cast<int64_t>(bytes.size()) != d.size)
    return make_error("blob size does not match its descriptor", d.digest.str());
  if (!(sha256_of(bytes) == d.digest))
    return make_error("blob content does not match its digest", d.digest.str());
  return ok();
}

std::string manifest_json(const Descriptor& config, const std::vector<Descriptor>& layers) {
  json m{{"schemaVersion", 2}, {"mediaType", kMediaOciManifest}, {"config", descriptor_json(config)}};
  m["layers"] = json::array();
  for (const auto& l : layers) m["layers"].push_back(descriptor_json(l));
  return m.dump();
}

// One image to add: its blobs are in tmp files (layers) or memory (config, manifest).
struct PendingLayer {
  std::string temp_file;
  Copied copied;
  std::optional<Digest> diff_id;
};
struct PendingImage {
  std::string config_bytes;
  Digest config_digest;
  std::string manifest_bytes;  // empty: written from the parts
  Descriptor manifest;         // filled when manifest_bytes is given
  std::vector<Descriptor> layers;
  std::vector<Digest> diff_ids;
  std::vector<std::string> names;
};

Result<std::vector<ImportedImage>> store_images(Transaction& tx, std::vector<PendingImage> images,
                                                const std::map<std::string, PendingLayer>& files) {
  // Layer blobs first (once each), then unpacks (which check the diff ids), then metadata.
  for (const auto& [member, layer] : files)
    FORKER_TRY(tx.commit_file(layer.temp_file, layer.copied.digest, layer.copied.size));
  std::vector<ImportedImage> out;
  for (auto& img : images) {
    for (size_t i = 0; i < img.layers.size(); ++i)
      FORKER_TRY(tx.unpack(img.layers[i].digest, img.diff_ids[i]));
    FORKER_TRY(tx.put(img.config_bytes, img.config_digest));
    if (img.manifest_bytes.empty()) {
      Descriptor config{std::string(kMediaOciConfig), img.config_digest,
                        static_cast<int64_t>(img.config_bytes.size()), {}};
      img.manifest_bytes = manifest_json(config, img.layers);
      img.manifest = {std::string(kMediaOciManifest), sha256_of(img.manifest_bytes),
                      static_cast<int64_t>(img.manifest_bytes.size()), {}};
    }
    FORKER_TRY(tx.put(img.manifest_bytes, img.manifest.digest));
    Descriptor tagged{img.manifest.media_type, img.manifest.digest, img.manifest.size, {}};
    for (const auto& n : img.names) FORKER_TRY(tx.tag(n, tagged));
    out.push_back({img.config_digest, tagged, img.names});
  }
  return out;
}

Result<std::vector<std::string>> names_for(const std::optional<std::string>& override_name,
                                           const std::vector<std::string>& inside) {
  std::vector<std::string> out;
  if (override_name) {
    out.push_back(FORKER_TRY(normalize_image_name(*override_name)));
    return out;
  }
  for (const auto& n : inside) {
    std::string full = FORKER_TRY(normalize_image_name(n).context("name in the archive"));
    if (std::find(out.begin(), out.end(), full) == out.end()) out.push_back(full);
  }
  if (out.empty())
    return make_error("the archive does not name its image; give NAME[:TAG]");
  return out;
}

// Copies the layer members into tmp files in one pass and checks what their names promise.
Result<std::map<std::string, PendingLayer>> copy_layers(Transaction& tx, Source& src,
                                                        const std::set<std::string>& members) {
  std::map<std::string, PendingLayer> files;
  for (const auto& m : members) files[m].temp_file = tx.temp("import-layer");
  FORKER_TRY(src.visit(members, [&](const std::string& name, const ChunkReader& read) -> Status {
    PendingLayer& layer = files[name];
    layer.copied = FORKER_TRY(copy_to_file(read, layer.temp_file));
    if (auto promised = digest_in_name(name); promised && !(*promised == layer.copied.digest))
      return make_error("layer " + quote_name(name) + " does not match the digest in its name");
    return ok();
  }));
  return files;
}

// ---- docker save ------------------------------------------------------------------------------

Result<std::vector<ImportedImage>> import_docker_save(Store& store, Source& src,
                                                      const std::optional<std::string>& name) {
  auto top = FORKER_TRY(read_members(src, {"manifest.json"}));
  auto entries = FORKER_TRY(parse_docker_save_manifest(top["manifest.json"]));
  if (name && entries.size() != 1)
    return make_error("NAME can only name an archive of one image; this one holds " +
                      std::to_string(entries.size()));
  std::set<std::string> config_members, layer_members;
  for (const auto& e : entries) {
    config_members.insert(e.config);
    layer_members.insert(e.layers.begin(), e.layers.end());
  }
  auto configs = FORKER_TRY(read_members(src, config_members));

  std::vector<PendingImage> images;
  for (const auto& e : entries) {
    PendingImage img;
    img.config_bytes = configs[e.config];
    img.config_digest = sha256_of(img.config_bytes);
    if (auto promised = digest_in_name(e.config); promised && !(*promised == img.config_digest))
      return make_error("image config " + quote_name(e.config) + " does not match the digest in its name");
    img.diff_ids = FORKER_TRY(config_diff_ids(img.config_bytes, e.config));
    if (img.diff_ids.size() != e.layers.size())
      return make_error("manifest.json lists " + std::to_string(e.layers.size()) +
                        " layers but the config has " + std::to_string(img.diff_ids.size()) +
                        " diff ids", e.config);
    img.names = FORKER_TRY(names_for(name, e.repo_tags));
    images.push_back(std::move(img));
  }

  auto tx_owner = FORKER_TRY(Transaction::begin(store));
  Transaction& tx = *tx_owner;
  auto files = FORKER_TRY(copy_layers(tx, src, layer_members));
  for (size_t i = 0; i < entries.size(); ++i) {
    for (size_t l = 0; l < entries[i].layers.size(); ++l) {
      const std::string& member = entries[i].layers[l];
      const Copied& c = files[member].copied;
      auto media = layer_media_type(c.compression);
      if (!media) return make_error("layer " + quote_name(member) + ": compression not supported (bzip2/xz)");
      // An uncompressed layer's digest is its diff id: checked before anything is stored.
      if (c.compression == Compression::kNone && !(c.digest == images[i].diff_ids[l]))
        return make_error("layer " + quote_name(member) + " does not match the config's diff id " +
                          images[i].diff_ids[l].str());
      images[i].layers.push_back({std::string(*media), c.digest, c.size, {}});
    }
  }
  auto out = FORKER_TRY(store_images(tx, std::move(images), files));
  tx.commit();
  return out;
}

// ---- OCI image layout ---------------------------------------------------------------------------

Result<std::string> read_blob_member(Source& src, const Descriptor& d) {
  if (d.size > static_cast<int64_t>(kMaxJsonMember))
    return make_error("metadata blob too large", d.digest.str());
  auto got = FORKER_TRY(read_members(src, {blob_member(d.digest)}));
  std::string bytes = std::move(got.begin()->second);
  FORKER_TRY(check_blob(bytes, d));
  return bytes;
}

// An index entry down to one image manifest (with its bytes): nested indexes pick the host's
// platform, or their only entry.
Result<std::pair<Descriptor, std::string>> resolve_manifest(Source& src, Descriptor d) {
  for (int depth = 0;; ++depth) {
    if (depth > 4) return make_error("image indexes nested too deep", d.digest.str());
    std::string bytes = FORKER_TRY(read_blob_member(src, d));
    ManifestKind kind = FORKER_TRY(manifest_kind(bytes, d.media_type));
    if (kind == ManifestKind::kManifest) {
      if (d.media_type.empty()) d.media_type = kMediaOciManifest;
      return std::pair{d, bytes};
    }
    auto entries = FORKER_TRY(parse_index(bytes));
    int pick = choose_platform(entries, Platform::host());
    if (pick < 0 && entries.size() == 1) pick = 0;
    if (pick < 0)
      return make_error("no " + Platform::host().str() + " image in index", d.digest.str());
    d = entries[static_cast<size_t>(pick)].descriptor;
  }
}

std::vector<std::string> names_in_annotations(const Descriptor& d) {
  // containerd (and docker 25+) write the full name; ref.name is the OCI spelling.
  for (const char* key : {"io.containerd.image.name", kRefNameAnnotation.data()}) {
    if (auto it = d.annotations.find(key); it != d.annotations.end()) return {it->second};
  }
  return {};
}

Result<std::vector<ImportedImage>> import_oci_layout(Store& store, Source& src,
                                                     const std::optional<std::string>& name) {
  auto top = FORKER_TRY(read_members(src, {"oci-layout", "index.json"}));
  try {
    if (!json::parse(top["oci-layout"]).at("imageLayoutVersion").is_string())
      return make_error("oci-layout has no imageLayoutVersion");
  } catch (const json::exception& e) {
    return make_error("bad oci-layout", e.what());
  }
  std::vector<Descriptor> entries;
  for (auto& e : FORKER_TRY(parse_index(top["index.json"]).context("index.json")))
    entries.push_back(std::move(e.descriptor));
  if (entries.empty()) return make_error("index.json lists no images");
  if (name && entries.size() != 1)
    return make_error("NAME can only name an archive of one image; this one holds " +
                      std::to_string(entries.size()));

  std::vector<PendingImage> images;
  std::set<std::string> layer_members;
  for (const auto& entry : entries) {
    PendingImage img;
    std::tie(img.manifest, img.manifest_bytes) = FORKER_TRY(resolve_manifest(src, entry));
    ManifestDoc doc = FORKER_TRY(
        parse_manifest(img.manifest_bytes).context("manifest " + img.manifest.digest.str()));
    Descriptor config = doc.config;
    img.layers = doc.layers;
    img.config_bytes = FORKER_TRY(read_blob_member(src, config));
    img.config_digest = config.digest;
    img.diff_ids = FORKER_TRY(config_diff_ids(img.config_bytes, config.digest.str()));
    if (img.diff_ids.size() != img.layers.size())
      return make_error("manifest layers and config diff ids differ in number",
                        img.manifest.digest.str());
    for (const auto& l : img.layers) layer_members.insert(blob_member(l.digest));
    img.names = FORKER_TRY(names_for(name, names_in_annotations(entry)));
    images.push_back(std::move(img));
  }

  auto tx_owner = FORKER_TRY(Transaction::begin(store));
  Transaction& tx = *tx_owner;
  auto files = FORKER_TRY(copy_layers(tx, src, layer_members));
  for (const auto& img : images) {
    for (const auto& l : img.layers) {
      if (files[blob_member(l.digest)].copied.size != l.size)
        return make_error("layer size does not match its descriptor", l.digest.str());
    }
  }
  auto out = FORKER_TRY(store_images(tx, std::move(images), files));
  tx.commit();
  return out;
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Decompresses a bzip2/xz tarball into DEST (libarchive's raw format), hashing.
Result<Copied> decompress_to_file(const std::string& path, const std::string& dest) {
  ArchivePtr a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_raw(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), kChunk) != ARCHIVE_OK)
    return archive_error("open archive", a.get());
  archive_entry* entry = nullptr;
  if (archive_read_next_header(a.get(), &entry) != ARCHIVE_OK)
    return archive_error("read archive", a.get());
  struct archive* raw = a.get();
  return copy_to_file([&](char* buf, size_t cap) -> Result<size_t> {
    la_ssize_t n = archive_read_data(raw, buf, cap);
    if (n < 0) return archive_error("decompress", raw);
    return static_cast<size_t>(n);
  }, dest);
}

}  // namespace

std::string_view archive_kind_name(ArchiveKind kind) {
  switch (kind) {
    case ArchiveKind::kDockerSave: return "docker save archive";
    case ArchiveKind::kOciLayout: return "OCI image layout";
    case ArchiveKind::kRootfs: return "rootfs tarball";
  }
  return "?";
}

ArchiveKind classify_members(const std::vector<std::string>& member_names) {
  std::set<std::string> names;
  for (const auto& n : member_names) names.insert(normalize_member_name(n));
  if (names.count("manifest.json")) return ArchiveKind::kDockerSave;
  if (names.count("oci-layout") && names.count("index.json")) return ArchiveKind::kOciLayout;
  return ArchiveKind::kRootfs;
}

Result<ArchiveKind> detect_archive_kind(const std::string& path) {
  if (is_directory(path)) {
    struct stat st {};
    if (::stat((path + "/oci-layout").c_str(), &st) < 0)
      return make_error("directory is not an OCI image layout (no oci-layout)", path);
    return ArchiveKind::kOciLayout;
  }
  ArchivePtr a = FORKER_TRY(open_tar(path));
  std::vector<std::string> names;
  archive_entry* entry = nullptr;
  for (;;) {
    int r = archive_read_next_header(a.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
      return archive_error("not a readable tar archive", a.get());
    names.emplace_back(archive_entry_pathname(entry));
  }
  if (names.empty()) return make_error("archive is empty", path);
  return classify_members(names);
}

Result<std::string> check_member_path(std::string_view path) {
  std::string p(path);
  auto bad = [&](const char* why) {
    return make_error(std::string("unsafe archive path (") + why + ")", quote_name(p));
  };
  if (p.empty()) return bad("empty");
  if (p.size() > 4096) return bad("too long");
  if (p.find('\0') != std::string::npos) return bad("NUL byte");
  if (p[0] == '/') return bad("absolute");
  std::string_view rest = path;
  while (rest.starts_with("./")) rest.remove_prefix(2);
  std::string out(rest);
  size_t start = 0;
  for (;;) {
    size_t end = out.find('/', start);
    std::string_view part = std::string_view(out).substr(start, end == std::string::npos
                                                                    ? std::string::npos
                                                                    : end - start);
    if (part.empty()) return bad("empty component");
    if (part == "." || part == "..") return bad("\".\" or \"..\" component");
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

Result<std::vector<DockerSaveImage>> parse_docker_save_manifest(std::string_view text) {
  try {
    json doc = json::parse(text);
    if (!doc.is_array() || doc.empty())
      return make_error("manifest.json is not a non-empty array");
    std::vector<DockerSaveImage> out;
    for (const auto& e : doc) {
      DockerSaveImage img;
      img.config = FORKER_TRY(check_member_path(e.at("Config").get<std::string>()));
      if (auto t = e.find("RepoTags"); t != e.end() && !t->is_null()) {
        for (const auto& tag : *t) img.repo_tags.push_back(tag.get<std::string>());
      }
      for (const auto& l : e.at("Layers"))
        img.layers.push_back(FORKER_TRY(check_member_path(l.get<std::string>())));
      out.push_back(std::move(img));
    }
    return out;
  } catch (const json::exception& e) {
    return make_error("bad manifest.json", e.what());
  }
}

Result<std::string> normalize_image_name(std::string_view name) {
  Reference ref = FORKER_TRY(Reference::parse(name));
  return ref.str();
}

FamiliarName familiar_name(const std::string& full_name) {
  auto ref = Reference::parse(full_name);
  if (!ref) return {full_name, ""};
  std::string familiar = ref->familiar();
  // familiar() ends in ":tag" and/or "@digest"; the repository is what comes before.
  if (ref->digest) familiar = familiar.substr(0, familiar.rfind('@'));
  if (!ref->tag.empty()) familiar = familiar.substr(0, familiar.size() - ref->tag.size() - 1);
  return {familiar, ref->tag};
}

std::string rfc3339_now() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<ImportedImage> import_rootfs_tarball(Store& store, const std::string& path,
                                            const RootfsImageOptions& options) {
  std::string name = FORKER_TRY(normalize_image_name(options.name));
  auto tx_owner = FORKER_TRY(Transaction::begin(store));
  Transaction& tx = *tx_owner;
  std::string layer_file = tx.temp("import-rootfs");
  UniqueFd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return sys_error("open", path);
  char head[8] = {};
  ssize_t got = ::pread(in.get(), head, sizeof head, 0);
  if (got < 0) return sys_error("read", path);
  Compression c = sniff_compression(std::string_view(head, static_cast<size_t>(got)));
  Copied copied;
  if (layer_media_type(c)) {
    int fd = in.get();
    copied = FORKER_TRY(copy_to_file([fd, &path](char* buf, size_t cap) -> Result<size_t> {
      for (;;) {
        ssize_t n = ::read(fd, buf, cap);
        if (n >= 0) return static_cast<size_t>(n);
        if (errno != EINTR) return sys_error("read", path);
      }
    }, layer_file));
  } else {
    // No OCI media type for bzip2/xz layers: store the tar itself.
    copied = FORKER_TRY(decompress_to_file(path, layer_file));
  }
  FORKER_TRY(tx.commit_file(layer_file, copied.digest, copied.size));
  std::optional<Digest> expected;
  if (copied.compression == Compression::kNone) expected = copied.digest;
  Digest diff_id = FORKER_TRY(tx.unpack(copied.digest, expected));

  std::string created = options.created.empty() ? rfc3339_now() : options.created;
  json container_config = json::object();
  if (!options.env.empty()) container_config["Env"] = options.env;
  if (!options.cmd.empty()) container_config["Cmd"] = options.cmd;
  Platform host = Platform::host();
  json config{{"architecture", host.architecture},
              {"os", "linux"},
              {"created", created},
              {"config", container_config},
              {"rootfs", {{"type", "layers"}, {"diff_ids", {diff_id.str()}}}},
              {"history", {{{"created", created}, {"created_by", options.created_by}}}}};
  if (!host.variant.empty()) config["variant"] = host.variant;
  PendingImage img;
  img.config_bytes = config.dump();
  img.config_digest = sha256_of(img.config_bytes);
  img.layers.push_back({std::string(*layer_media_type(copied.compression)), copied.digest,
                        copied.size, {}});
  img.diff_ids = {diff_id};
  img.names = {name};
  std::vector<PendingImage> images;
  images.push_back(std::move(img));
  auto out = FORKER_TRY(store_images(tx, std::move(images), {}));
  tx.commit();
  return out.front();
}

namespace {

Result<std::vector<ImportedImage>> import_file(Store& store, const std::string& path,
                                               const std::optional<std::string>& name) {
  ArchiveKind kind = FORKER_TRY(detect_archive_kind(path));
  switch (kind) {
    case ArchiveKind::kDockerSave: {
      TarSource src(path);
      return import_docker_save(store, src, name);
    }
    case ArchiveKind::kOciLayout: {
      if (is_directory(path)) {
        DirSource src(path);
        return import_oci_layout(store, src, name);
      }
      TarSource src(path);
      return import_oci_layout(store, src, name);
    }
    case ArchiveKind::kRootfs: {
      if (!name)
        return make_error("a rootfs tarball needs a NAME[:TAG] for its image");
      RootfsImageOptions options;
      options.name = *name;
      ImportedImage img = FORKER_TRY(import_rootfs_tarball(store, path, options));
      return std::vector<ImportedImage>{img};
    }
  }
  return make_error("unknown archive kind");
}

}  // namespace

Result<std::vector<ImportedImage>> import_path(Store& store, const std::string& path,
                                               const std::optional<std::string>& name) {
  return import_file(store, path, name).context("import " + path);
}

Result<std::vector<ImportedImage>> import_stream(Store& store, int fd,
                                                 const std::optional<std::string>& name) {
  std::string spool = store.temp_path("import-stdin");
  struct Unlink {
    std::string path;
    ~Unlink() { ::unlink(path.c_str()); }
  } cleanup{spool};
  FORKER_TRY(copy_to_file([fd](char* buf, size_t cap) -> Result<size_t> {
    for (;;) {
      ssize_t n = ::read(fd, buf, cap);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return sys_error("read", "stdin");
    }
  }, spool).context("import -"));
  return import_file(store, spool, name).context("import -");
}

}  // namespace forker::image
