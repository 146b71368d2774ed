#include "image/save.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "core/unique_fd.hpp"

namespace forker::image {
namespace {

using nlohmann::json;

struct WriterFree {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
using WriterPtr = std::unique_ptr<struct archive, WriterFree>;
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using EntryPtr = std::unique_ptr<archive_entry, EntryFree>;

Error write_error(struct archive* a, const std::string& what) {
  const char* why = archive_error_string(a);
  return make_error("save: write " + what, why ? why : "unknown libarchive error");
}

// Fixed ownership and times: the archive depends only on the images.
EntryPtr make_entry(const std::string& path, mode_t type, mode_t perm, int64_t size) {
  EntryPtr e(archive_entry_new());
  archive_entry_set_pathname(e.get(), path.c_str());
  archive_entry_set_filetype(e.get(), type);
  archive_entry_set_perm(e.get(), perm);
  archive_entry_set_size(e.get(), size);
  archive_entry_set_uid(e.get(), 0);
  archive_entry_set_gid(e.get(), 0);
  archive_entry_set_mtime(e.get(), 0, 0);
  return e;
}

Status add_dir(struct archive* a, const std::string& path) {
  EntryPtr e = make_entry(path, AE_IFDIR, 0755, 0);
  if (archive_write_header(a, e.get()) != ARCHIVE_OK) return write_error(a, path);
  return ok();
}

Status add_bytes(struct archive* a, const std::string& path, std::string_view bytes) {
  EntryPtr e = make_entry(path, AE_IFREG, 0644, static_cast<int64_t>(bytes.size()));
  if (archive_write_header(a, e.get()) != ARCHIVE_OK) return write_error(a, path);
  if (archive_write_data(a, bytes.data(), bytes.size()) != static_cast<la_ssize_t>(bytes.size()))
    return write_error(a, path);
  return ok();
}

// Streams a stored blob; its size must be what the descriptor says.
Status add_blob(struct archive* a, const Store& store, const Descriptor& d) {
  std::string src = store.blob_path(d.digest);
  UniqueFd fd(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return sys_error("save: open blob", src);
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) return sys_error("save: stat blob", src);
  if (st.st_size != d.size)
    return make_error("save: stored blob size differs from its descriptor", d.digest.str());
  std::string path = "blobs/" + d.digest.algorithm + "/" + d.digest.hex;
  EntryPtr e = make_entry(path, AE_IFREG, 0644, st.st_size);
  if (archive_write_header(a, e.get()) != ARCHIVE_OK) return write_error(a, path);
  std::vector<char> buf(1 << 16);
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("save: read blob", src);
    }
    if (n == 0) break;
    if (archive_write_data(a, buf.data(), static_cast<size_t>(n)) != n)
      return write_error(a, path);
  }
  return ok();
}

}  // namespace

Status write_oci_archive(const Store& store, const std::vector<ImageRecord>& images, int out_fd) {
  WriterPtr a(archive_write_new());
  archive_write_set_format_pax_restricted(a.get());
  // Unset, libarchive pads a pipe to 10 KiB records but not a regular file: the same images
  // would give different bytes on stdout and with -o.
  archive_write_set_bytes_in_last_block(a.get(), 1);
  if (archive_write_open_fd(a.get(), out_fd) != ARCHIVE_OK) return write_error(a.get(), "archive");

  json index{{"schemaVersion", 2}, {"mediaType", kMediaOciIndex}, {"manifests", json::array()}};
  std::set<std::string> names;
  std::vector<Descriptor> blobs;
  std::set<std::string> seen_blobs;
  auto want = [&](const Descriptor& d) {
    if (seen_blobs.insert(d.digest.hex).second) blobs.push_back(d);
  };
  for (const auto& img : images) {
    if (!names.insert(img.name + "@" + img.manifest.digest.hex).second) continue;
    json entry{{"mediaType", img.manifest.media_type},
               {"digest", img.manifest.digest.str()},
               {"size", img.manifest.size}};
    if (!img.name.empty()) {
      entry["annotations"] = {{std::string(kRefNameAnnotation), img.name},
                              {"io.containerd.image.name", img.name}};
    }
    index["manifests"].push_back(std::move(entry));
    want(img.manifest);
    want(img.config);
    for (const auto& l : img.layers) want(l);
  }

  FORKER_TRY(add_bytes(a.get(), "oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
  FORKER_TRY(add_bytes(a.get(), "index.json", index.dump()));
  FORKER_TRY(add_dir(a.get(), "blobs"));
  FORKER_TRY(add_dir(a.get(), "blobs/sha256"));
  for (const auto& d : blobs) FORKER_TRY(add_blob(a.get(), store, d));
  if (archive_write_close(a.get()) != ARCHIVE_OK) return write_error(a.get(), "archive end");
  return ok();
}

Status save_oci_archive(const Store& store, const std::vector<ImageRecord>& images,
                        const std::string& path) {
  std::string temp = path + ".forker-save-" + std::to_string(::getpid());
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) return sys_error("save: create", temp);
  struct Unlink {
    std::string path;
    bool keep = false;
    ~Unlink() {
      if (!keep) ::unlink(path.c_str());
    }
  } cleanup{temp};
  FORKER_TRY(write_oci_archive(store, images, fd.get()).context("save " + path));
  if (::fsync(fd.get()) < 0) return sys_error("save: fsync", temp);
  if (::rename(temp.c_str(), path.c_str()) < 0) return sys_error("save: rename to", path);
  cleanup.keep = true;
  return ok();
}

}  // namespace forker::image
