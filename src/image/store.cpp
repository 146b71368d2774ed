// The store's layout, locks, temp names and blobs.
#include "image/store.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/file.hpp"
#include "core/random.hpp"
#include "image/image_config.hpp"
#include "image/store_files.hpp"

namespace forker::image {
namespace {

constexpr std::string_view kLayoutFile = R"({"imageLayoutVersion":"1.0.0"})";

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

std::string home_dir() {
  if (std::string home = env("HOME"); !home.empty()) return home;
  struct passwd* pw = ::getpwuid(::geteuid());
  return pw != nullptr && pw->pw_dir != nullptr ? pw->pw_dir : "/";
}

Result<std::string> absolute(const std::string& path) {
  if (path.empty()) return make_error("open image store:", "empty root path");
  if (path.front() == '/') return path;
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd) == nullptr) return sys_error("getcwd", path);
  return std::string(cwd) + "/" + path;
}

Status make_dir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) == 0) {
    // The umask must not decide who can reach blobs or a container's rootfs.
    if (::chmod(path.c_str(), mode) < 0) return sys_error("chmod", path);
    return ok();
  }
  if (errno != EEXIST) return sys_error("mkdir", path);
  struct stat st;
  if (::stat(path.c_str(), &st) < 0) return sys_error("stat", path);
  if (!S_ISDIR(st.st_mode)) return make_error("open image store:", path + " is not a directory");
  return ok();
}


std::string safe_purpose(std::string_view purpose) {
  std::string out;
  for (char c : purpose.substr(0, 48)) {
    bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '.' || c == '-';
    out.push_back(keep ? c : '_');
  }
  return out;
}

// A layout we did not write must at least claim to be an OCI image layout 1.x.
Status check_layout(const std::string& root) {
  std::string path = root + "/oci-layout";
  std::string text = FORKER_TRY(read_file(path));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("imageLayoutVersion") ||
      !j["imageLayoutVersion"].is_string() ||
      !j["imageLayoutVersion"].get<std::string>().starts_with("1."))
    return make_error("open image store:", path + " is not an OCI image layout 1.x");
  return ok();
}

}  // namespace

std::string Store::default_root() {
  if (std::string root = env("FORKER_STORAGE_ROOT"); !root.empty()) return root;
  if (::geteuid() == 0) return "/var/lib/forker";
  if (std::string data = env("XDG_DATA_HOME"); !data.empty()) return data + "/forker";
  return home_dir() + "/.local/share/forker";
}

Result<Store> Store::open(const std::string& root_arg) {
  std::string root = FORKER_TRY(absolute(root_arg));
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  FORKER_TRY(mkdir_all(detail::parent_dir(root)));
  FORKER_TRY(make_dir(root, 0711));
  FORKER_TRY(make_dir(root + "/blobs", 0755));
  FORKER_TRY(make_dir(root + "/blobs/sha256", 0755));
  FORKER_TRY(make_dir(root + "/layers", 0700));
  FORKER_TRY(make_dir(root + "/containers", 0711));
  FORKER_TRY(make_dir(root + "/tmp", 0700));
  FORKER_TRY(make_dir(root + "/locks", 0700));

  std::string session = random_hex(8);
  auto session_lock =
      FORKER_TRY(detail::acquire_lock(root + "/locks/session-" + session + ".lock", true));
  Store store(root, ::geteuid() != 0, session,
              std::make_shared<const FileLock>(std::move(session_lock)));

  // First use: oci-layout and an empty index, under the metadata lock so that a concurrent
  // first open cannot replace an index another process has just tagged into.
  auto meta = FORKER_TRY(store.lock_metadata(true));
  if (!path_exists(root + "/oci-layout")) {
    FORKER_TRY(detail::write_durable(store.temp_path("oci-layout"), root + "/oci-layout",
                                     kLayoutFile, 0644));
  }
  FORKER_TRY(check_layout(root));
  if (!path_exists(root + "/index.json")) {
    nlohmann::json index = {{"schemaVersion", 2},
                            {"mediaType", kMediaOciIndex},
                            {"manifests", nlohmann::json::array()}};
    FORKER_TRY(detail::write_durable(store.temp_path("index.json"), root + "/index.json",
                                     index.dump(), 0644));
  }
  return store;
}

Result<FileLock> Store::lock_metadata(bool exclusive) const {
  return detail::acquire_lock(root_ + "/locks/store.lock", exclusive);
}

Result<FileLock> Store::lock_object(const Digest& digest) const {
  return detail::acquire_lock(root_ + "/locks/" + digest.hex + ".lock", true);
}

Result<FileLock> Store::lock_layer(const Digest& diff_id) const {
  return detail::acquire_lock(root_ + "/locks/layer-" + diff_id.hex + ".lock", true);
}

Result<FileLock> Store::lock_gc(bool exclusive) const {
  return detail::acquire_lock(root_ + "/locks/gc.lock", exclusive);
}

std::string Store::temp_path(std::string_view purpose) const {
  // Copies of a Store share the session, threads share the counter, and a forked child that
  // keeps using its parent's Store differs by pid.
  static std::atomic<uint64_t> counter{0};
  return root_ + "/tmp/" + session_ + "-" + std::to_string(::getpid()) + "." +
         std::to_string(++counter) + "-" + safe_purpose(purpose);
}

std::string Store::blob_path(const Digest& digest) const {
  return root_ + "/blobs/sha256/" + digest.hex;
}

bool Store::has_blob(const Digest& digest) const {
  struct stat st;
  return ::stat(blob_path(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Result<std::string> Store::read_blob_unverified(const Digest& digest) const {
  auto text = read_file(blob_path(digest));
  if (!text && text.error().err == ENOENT)
    return make_error("read blob", digest.str() + ": not in the store");
  return text;
}

Result<std::string> Store::read_blob(const Digest& digest) const {
  std::string text = FORKER_TRY(read_blob_unverified(digest));
  if (sha256_of(text) != digest)
    return make_error("read blob", digest.str() + ": content does not match its digest (corrupt)");
  return text;
}

Result<Digest> Store::put_blob(std::string_view bytes, const std::optional<Digest>& expected) {
  Digest actual = sha256_of(bytes);
  if (expected && *expected != actual)
    return make_error("store blob:",
                      "content is " + actual.str() + ", expected " + expected->str());
  if (has_blob(actual)) return actual;
  FORKER_TRY_CTX(
      detail::write_durable(temp_path("blob-" + actual.short_id()), blob_path(actual), bytes, 0644),
      "store blob " + actual.str());
  return actual;
}

Status Store::commit_blob_file(const std::string& temp_file, const Digest& expected, int64_t size) {
  auto drop = [&](Error e) {
    ::unlink(temp_file.c_str());
    return e.add_context("commit blob " + expected.str());
  };
  // Only our own tmp/ may be renamed into blobs/ (a rename from elsewhere could cross devices or
  // move a caller's file away).
  if (!temp_file.starts_with(root_ + "/tmp/") || temp_file.find("/..") != std::string::npos)
    return make_error("commit blob " + expected.str() + ":",
                      temp_file + " is not under " + root_ + "/tmp");
  struct stat st;
  if (::lstat(temp_file.c_str(), &st) < 0) return sys_error("stat", temp_file);
  if (!S_ISREG(st.st_mode))
    return drop(make_error("commit:", temp_file + " is not a regular file"));
  if (size >= 0 && st.st_size != size)
    return drop(make_error("verify:", temp_file + " has " + std::to_string(st.st_size) +
                                          " bytes, expected " + std::to_string(size)));
  auto actual = sha256_of_file(temp_file);
  if (!actual) return drop(std::move(actual).error());
  if (*actual != expected) return drop(make_error("verify:", temp_file + " is " + actual->str()));
  if (has_blob(expected)) {
    ::unlink(temp_file.c_str());
    return ok();
  }
  {
    UniqueFd fd(::open(temp_file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return drop(sys_error("open", temp_file));
    if (::fchmod(fd.get(), 0644) < 0) return drop(sys_error("chmod", temp_file));
    if (::fsync(fd.get()) < 0) return drop(sys_error("fsync", temp_file));
  }
  if (::rename(temp_file.c_str(), blob_path(expected).c_str()) < 0)
    return drop(sys_error("rename " + temp_file + " to", blob_path(expected)));
  return detail::fsync_dir(root_ + "/blobs/sha256");
}

}  // namespace forker::image
