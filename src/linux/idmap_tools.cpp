#include "linux/idmap_tools.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "core/file.hpp"
#include "core/strings.hpp"
#include "core/unique_fd.hpp"

extern char** environ;

namespace forker::linux {
namespace {

// NAME looked up in PATH as execvp does (its default when PATH is unset); empty if absent.
std::string find_helper(const std::string& name) {
  const char* path = getenv("PATH");
  for (const std::string& dir :
       split(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin", ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// The helper's stderr on one line.
std::string one_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  for (char& c : text)
    if (c == '\n') c = ' ';
  return text;
}

// Runs newuidmap/newgidmap PID C H S ...; reads its stderr for the error.
Status run_helper(const std::string& name, pid_t pid, const std::vector<oci::IdMapping>& maps,
                  const std::string& field) {
  std::string helper = find_helper(name);
  if (helper.empty())
    return make_error(field + ": " + name +
                      " not found (install the uidmap package): needed "
                      "to map ids other than your own as uid " +
                      std::to_string(geteuid()));
  std::vector<std::string> args = {helper, std::to_string(pid)};
  for (const auto& m : maps) {
    args.push_back(std::to_string(m.container_id));
    args.push_back(std::to_string(m.host_id));
    args.push_back(std::to_string(m.size));
  }
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return sys_error("pipe", name);
  UniqueFd read_end(p[0]), write_end(p[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDERR_FILENO);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t child = -1;
  int rc = posix_spawn(&child, helper.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  write_end.reset();
  if (rc != 0) return sys_error_errno(rc, field + ": run", helper);
  std::string out;
  char buf[512];
  for (ssize_t n; (n = read(read_end.get(), buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ok();
  std::string cmd = name;
  for (size_t i = 1; i < args.size(); ++i) cmd += " " + args[i];
  std::string said = one_line(out);
  return make_error(field + ": " + cmd + ": " + (said.empty() ? "failed" : said));
}

Status write_maps(pid_t pid, const std::vector<oci::IdMapping>& maps, bool is_uid,
                  IdMapWriter writer) {
  const std::string proc = "/proc/" + std::to_string(pid);
  const std::string field = is_uid ? "uidMappings" : "gidMappings";
  if (writer == IdMapWriter::kHelper)
    return run_helper(is_uid ? "newuidmap" : "newgidmap", pid, maps, field);
  // Without CAP_SETGID the kernel takes a gid_map only once setgroups(2) is denied for good,
  // so the container cannot drop a supplementary group the user is in.
  if (!is_uid && writer == IdMapWriter::kDirectOwnId)
    FORKER_TRY(write_file(proc + "/setgroups", "deny").context(field));
  return write_file(proc + (is_uid ? "/uid_map" : "/gid_map"), id_map_text(maps)).context(field);
}

}  // namespace

std::string id_map_text(const std::vector<oci::IdMapping>& maps) {
  std::string out;
  for (const auto& m : maps)
    out += std::to_string(m.container_id) + " " + std::to_string(m.host_id) + " " +
           std::to_string(m.size) + "\n";
  return out;
}

IdMapWriter choose_id_map_writer(const std::vector<oci::IdMapping>& maps, bool is_uid,
                                 bool privileged, uid_t euid, gid_t egid) {
  if (privileged) return IdMapWriter::kDirect;
  const uint32_t own = is_uid ? euid : egid;
  if (maps.size() == 1 && maps[0].size == 1 && maps[0].host_id == own)
    return IdMapWriter::kDirectOwnId;
  return IdMapWriter::kHelper;
}

Status write_id_maps(pid_t pid, const std::vector<oci::IdMapping>& uid_mappings,
                     const std::vector<oci::IdMapping>& gid_mappings) {
  // Root (on the host, or in the user namespace we run in) has CAP_SETUID and CAP_SETGID there.
  const bool privileged = geteuid() == 0;
  FORKER_TRY(
      write_maps(pid, uid_mappings, true,
                 choose_id_map_writer(uid_mappings, true, privileged, geteuid(), getegid())));
  FORKER_TRY(
      write_maps(pid, gid_mappings, false,
                 choose_id_map_writer(gid_mappings, false, privileged, geteuid(), getegid())));
  return ok();
}

}  // namespace forker::linux
