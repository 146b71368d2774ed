// -u NAME[:GROUP] -> numeric ids, with runc's rules (libcontainer/user GetExecUser), which docker
// uses: the image's /etc/passwd and /etc/group, read through the container's root so that a
// symlink in the image cannot point the lookup at the host's files.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include "core/strings.hpp"
#include "engine/container_config.hpp"
#include "linux/safe_path.hpp"

namespace forker::engine {
namespace {

// runc refuses ids above this (they would not fit Go's int on 32-bit platforms, and the kernel
// reserves (uid_t)-1).
constexpr int64_t kMaxId = 2147483647;
// An image's passwd is a few kilobytes; a bigger one is refused instead of read into memory.
constexpr size_t kMaxFileSize = 16 << 20;

struct PasswdEntry {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string home;
};

struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
};

std::optional<uint32_t> parse_id(std::string_view s) {
  const std::optional<int64_t> v = parse_int(s);
  if (!v || *v < 0 || *v > kMaxId) return std::nullopt;
  return static_cast<uint32_t>(*v);
}

// PATH inside the root, or nullopt when the image has none. Opened O_PATH first so that a
// FIFO or device node planted at /etc/passwd is refused without being opened for reading.
Result<std::optional<std::string>> read_etc_file(int rootfs_fd, const std::string& path) {
  if (rootfs_fd < 0) return std::optional<std::string>();
  auto where = linux::open_in_root(rootfs_fd, path, O_PATH);
  if (!where) {
    const int err = where.error().err;
    if (err == ENOENT || err == ENOTDIR) return std::optional<std::string>();
    return std::move(where).error();
  }
  struct stat st {};
  if (fstat(where->get(), &st) < 0) return sys_error("fstat", path);
  if (!S_ISREG(st.st_mode)) return make_error("read " + path + ": not a regular file");
  if (static_cast<uint64_t>(st.st_size) > kMaxFileSize)
    return make_error("read " + path + ": larger than 16 MiB");
  // Reopening through our own /proc/self/fd reaches exactly the file resolved above.
  UniqueFd fd(open(linux::fd_path(where->get()).c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return sys_error("open", path);
  std::string text;
  char buf[8192];
  for (;;) {
    const ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("read", path);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxFileSize) return make_error("read " + path + ": larger than 16 MiB");
  }
  return std::optional<std::string>(std::move(text));
}

// Lines of a colon-separated file, without blank lines, comments and NIS "+"/"-" entries.
std::vector<std::vector<std::string>> entries(const std::string& text) {
  std::vector<std::vector<std::string>> out;
  for (const std::string& raw : split(text, '\n')) {
    const std::string_view line = trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == '+' || line[0] == '-') continue;
    out.push_back(split(line, ':'));
  }
  return out;
}

std::vector<PasswdEntry> parse_passwd(const std::string& text) {
  std::vector<PasswdEntry> out;
  for (const auto& f : entries(text)) {
    if (f.size() < 4) continue;
    const auto uid = parse_id(f[2]);
    const auto gid = parse_id(f[3]);
    if (!uid || !gid) continue;  // a malformed line cannot match anything sensibly
    out.push_back(PasswdEntry{f[0], *uid, *gid, f.size() > 5 ? f[5] : ""});
  }
  return out;
}

std::vector<GroupEntry> parse_group(const std::string& text) {
  std::vector<GroupEntry> out;
  for (const auto& f : entries(text)) {
    if (f.size() < 3) continue;
    const auto gid = parse_id(f[2]);
    if (!gid) continue;
    GroupEntry g{f[0], *gid, {}};
    if (f.size() > 3)
      for (const std::string& m : split(f[3], ','))
        if (!trim(m).empty()) g.members.emplace_back(trim(m));
    out.push_back(std::move(g));
  }
  return out;
}

Error range_error(std::string_view spec) {
  return make_error("-u '" + std::string(spec) + "': uids and gids must be in range 0-" +
                    std::to_string(kMaxId));
}

}  // namespace

Result<ResolvedUser> lookup_user(std::string_view spec, int rootfs_fd) {
  const size_t colon = spec.find(':');
  const std::string user_arg(spec.substr(0, colon));
  const std::string group_arg(colon == std::string_view::npos ? "" : spec.substr(colon + 1));
  // As runc: an empty user means uid 0, looked up like "-u 0".
  const std::string user_key = user_arg.empty() ? "0" : user_arg;
  const std::optional<int64_t> uid_num = parse_int(user_key);
  if (uid_num && (*uid_num < 0 || *uid_num > kMaxId)) return range_error(spec);
  if (!uid_num && rootfs_fd < 0)
    return make_error("-u '" + std::string(spec) +
                      "': a user name needs the image's /etc/passwd (no root filesystem given)");

  const auto passwd_text = FORKER_TRY(read_etc_file(rootfs_fd, "/etc/passwd"));
  const auto passwd = passwd_text ? parse_passwd(*passwd_text) : std::vector<PasswdEntry>{};
  ResolvedUser out;
  const PasswdEntry* matched = nullptr;
  for (const PasswdEntry& e : passwd) {
    if (uid_num ? e.uid == *uid_num : e.name == user_key) {
      matched = &e;  // the first match wins, as in runc
      break;
    }
  }
  if (matched) {
    out.user.uid = matched->uid;
    out.user.gid = matched->gid;
    if (!matched->home.empty()) out.home = matched->home;
  } else if (!uid_num) {
    return make_error("unable to find user " + user_key + ": no matching entries in passwd file");
  } else {
    out.user.uid = static_cast<uint32_t>(*uid_num);  // a numeric uid needs no entry; gid 0
  }

  if (group_arg.empty() && !matched) return out;
  const auto group_text = FORKER_TRY(read_etc_file(rootfs_fd, "/etc/group"));
  const auto groups = group_text ? parse_group(*group_text) : std::vector<GroupEntry>{};
  if (!group_arg.empty()) {
    // An explicit group replaces the primary one; supplementary groups apply only to the
    // implicit form, as in runc.
    const std::optional<int64_t> gid_num = parse_int(group_arg);
    if (gid_num && (*gid_num < 0 || *gid_num > kMaxId)) return range_error(spec);
    for (const GroupEntry& g : groups) {
      if (gid_num ? g.gid == *gid_num : g.name == group_arg) {
        out.user.gid = g.gid;
        return out;
      }
    }
    if (!gid_num)
      return make_error("unable to find group " + group_arg +
                        ": no matching entries in group file");
    out.user.gid = static_cast<uint32_t>(*gid_num);
    return out;
  }
  for (const GroupEntry& g : groups)
    for (const std::string& m : g.members)
      if (m == matched->name) {
        out.user.additional_gids.push_back(g.gid);
        break;
      }
  return out;
}

Result<oci::User> resolve_user(std::string_view spec, int rootfs_fd) {
  ResolvedUser r = FORKER_TRY(lookup_user(spec, rootfs_fd));
  return std::move(r.user);
}

}  // namespace forker::engine
