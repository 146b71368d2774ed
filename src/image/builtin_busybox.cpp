#include "image/builtin_busybox.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <elf.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>
#include <map>
#include <memory>
#include <vector>

#include "core/file.hpp"
#include "core/strings.hpp"
#include "core/unique_fd.hpp"
#include "image/import.hpp"

extern char** environ;

namespace forker::image {
namespace {

constexpr std::string_view kPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr std::string_view kPasswd =
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n";
constexpr std::string_view kGroup = "root:x:0:\nnobody:x:65534:\n";

// A static binary has no PT_INTERP program header (nothing asks for a dynamic loader).
Result<bool> is_static_elf(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return sys_error("open", path);
  Elf64_Ehdr eh{};
  if (::pread(fd.get(), &eh, sizeof eh, 0) != static_cast<ssize_t>(sizeof eh) ||
      std::string_view(reinterpret_cast<const char*>(eh.e_ident), 4) != ELFMAG ||
      eh.e_ident[EI_CLASS] != ELFCLASS64)
    return make_error("busybox image: not a 64-bit ELF binary", path);
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph{};
    off_t at = static_cast<off_t>(eh.e_phoff + i * sizeof ph);
    if (::pread(fd.get(), &ph, sizeof ph, at) != static_cast<ssize_t>(sizeof ph))
      return make_error("busybox image: truncated ELF program headers", path);
    if (ph.p_type == PT_INTERP) return false;
  }
  return true;
}

// `busybox --list-full`: "bin/sh", "usr/bin/awk", ... One spawn, once per store.
Result<std::vector<std::string>> applet_paths(const std::string& busybox) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) return sys_error("pipe");
  UniqueFd rd(p[0]), wr(p[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, wr.get(), STDOUT_FILENO);
  std::string arg0 = busybox;
  char* argv[] = {arg0.data(), const_cast<char*>("--list-full"), nullptr};
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, busybox.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return sys_error_errno(rc, "spawn", busybox + " --list-full");
  wr.reset();
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(rd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return make_error("busybox image: failed", busybox + " --list-full");
  std::vector<std::string> out;
  for (auto& line : split(text, '\n')) {
    std::string_view path = trim(line);
    if (path.empty() || path == "bin/busybox") continue;
    // Applet paths become tar member names: keep only plain relative ones.
    auto checked = check_member_path(path);
    if (!checked) return make_error("busybox image: odd applet path", std::string(path));
    out.push_back(*checked);
  }
  if (out.empty()) return make_error("busybox image: no applets listed by", busybox);
  return out;
}

struct WriterFree {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

struct Member {
  mode_t type = AE_IFDIR;
  mode_t perm = 0755;
  std::string content;  // regular files (other than busybox itself)
  std::string target;   // symlinks
  bool is_busybox = false;
};

Status write_members(const std::map<std::string, Member>& members, const std::string& busybox,
                     time_t mtime, int out_fd, const std::string& out) {
  std::unique_ptr<struct archive, WriterFree> a(archive_write_new());
  archive_write_set_format_ustar(a.get());
  auto fail = [&](const std::string& what) {
    const char* why = archive_error_string(a.get());
    return make_error("busybox image: write " + what + " to " + out, why ? why : "?");
  };
  if (archive_write_open_fd(a.get(), out_fd) != ARCHIVE_OK) return fail("archive");
  std::string binary;
  for (const auto& [path, m] : members) {
    if (m.is_busybox) binary = FORKER_TRY(read_file(busybox));
    const std::string& data = m.is_busybox ? binary : m.content;
    std::unique_ptr<archive_entry, EntryFree> e(archive_entry_new());
    archive_entry_set_pathname(e.get(), path.c_str());
    archive_entry_set_filetype(e.get(), m.type);
    archive_entry_set_perm(e.get(), m.perm);
    archive_entry_set_uid(e.get(), 0);
    archive_entry_set_gid(e.get(), 0);
    archive_entry_set_mtime(e.get(), mtime, 0);
    if (m.type == AE_IFLNK) archive_entry_set_symlink(e.get(), m.target.c_str());
    archive_entry_set_size(e.get(), m.type == AE_IFREG ? static_cast<int64_t>(data.size()) : 0);
    if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK) return fail(path);
    if (m.type == AE_IFREG &&
        archive_write_data(a.get(), data.data(), data.size()) != static_cast<la_ssize_t>(data.size()))
      return fail(path);
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) return fail("archive end");
  return ok();
}

std::string rfc3339(time_t t) {
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<time_t> binary_mtime(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) < 0) return sys_error("stat", path);
  return st.st_mtime;
}

}  // namespace

std::optional<std::string> find_host_busybox() {
  for (const char* p : {"/bin/busybox", "/usr/bin/busybox"}) {
    if (::access(p, X_OK) == 0) return std::string(p);
  }
  return std::nullopt;
}

Status write_busybox_rootfs(const std::string& busybox, const std::string& out) {
  if (!FORKER_TRY(is_static_elf(busybox)))
    return make_error("busybox image: " + busybox + " is dynamically linked; install busybox-static");
  time_t mtime = FORKER_TRY(binary_mtime(busybox));
  std::map<std::string, Member> members;  // sorted: parents come before their children
  for (const char* dir : {"bin", "dev", "etc", "home", "proc", "sys", "usr", "usr/bin", "usr/sbin",
                          "sbin", "var", "var/spool", "var/www"})
    members[dir] = Member{};
  members["root"] = Member{AE_IFDIR, 0700, "", "", false};
  members["tmp"] = Member{AE_IFDIR, 01777, "", "", false};
  members["etc/passwd"] = Member{AE_IFREG, 0644, std::string(kPasswd), "", false};
  members["etc/group"] = Member{AE_IFREG, 0644, std::string(kGroup), "", false};
  members["bin/busybox"] = Member{AE_IFREG, 0755, "", "", true};
  for (const auto& applet : FORKER_TRY(applet_paths(busybox))) {
    // Directories an applet needs (usr/local/bin, ...) are made too.
    for (size_t slash = applet.find('/'); slash != std::string::npos;
         slash = applet.find('/', slash + 1))
      members.try_emplace(applet.substr(0, slash));
    members.try_emplace(applet, Member{AE_IFLNK, 0777, "", "/bin/busybox", false});
  }
  UniqueFd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) return sys_error("create", out);
  Status st = write_members(members, busybox, mtime, fd.get(), out);
  if (st && ::fsync(fd.get()) < 0) st = sys_error("fsync", out);
  if (!st) ::unlink(out.c_str());
  return st;
}

Result<ImageRecord> ensure_builtin_busybox(Store& store) {
  std::string name(kBuiltinBusyboxName);
  if (auto found = store.find_image(name)) return found;
  auto busybox = find_host_busybox();
  if (!busybox)
    return make_error("busybox image: no /bin/busybox on this host (install busybox-static)");
  std::string tar = store.temp_path("busybox-rootfs");
  struct Unlink {
    std::string path;
    ~Unlink() { ::unlink(path.c_str()); }
  } cleanup{tar};
  FORKER_TRY(write_busybox_rootfs(*busybox, tar));
  RootfsImageOptions options;
  options.name = name;
  // The binary's time (from its package) rather than now: same binary, same image id.
  options.created = rfc3339(FORKER_TRY(binary_mtime(*busybox)));
  options.created_by = "forker built-in busybox (from busybox-static)";
  options.env = {std::string(kPath)};
  options.cmd = {"sh"};
  FORKER_TRY(import_rootfs_tarball(store, tar, options).context("busybox image"));
  return store.find_image(name);
}

Result<ImageRecord> find_image_or_builtin(Store& store, std::string_view name_or_id) {
  auto found = store.find_image(name_or_id);
  if (found) return found;
  auto full = normalize_image_name(name_or_id);
  if (full && *full == kBuiltinBusyboxName) return ensure_builtin_busybox(store);
  return found;
}

}  // namespace forker::image
