#include "integration/support/test_user.hpp"

#include <dirent.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace forker::test {
namespace {

constexpr const char* kSetpriv = "/usr/bin/setpriv";

bool find_range(const std::string& file, const std::string& name, uint32_t& start,
                uint32_t& count) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string user, s, c;
    if (!std::getline(f, user, ':') || !std::getline(f, s, ':') || !std::getline(f, c)) continue;
    if (user != name) continue;
    start = static_cast<uint32_t>(std::stoul(s));
    count = static_cast<uint32_t>(std::stoul(c));
    return true;
  }
  return false;
}

std::string tool(const char* name) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    std::string p = std::string(dir) + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

}  // namespace

std::unique_ptr<TestUser> TestUser::create(std::string& why) {
  if (!is_root()) {
    why = "needs root to create a user";
    return nullptr;
  }
  std::string useradd = tool("useradd"), userdel = tool("userdel"), usermod = tool("usermod");
  if (useradd.empty() || userdel.empty() || usermod.empty() || access(kSetpriv, X_OK) != 0) {
    why = "needs useradd/userdel/usermod (passwd) and setpriv (util-linux)";
    return nullptr;
  }
  std::unique_ptr<TestUser> u(new TestUser);
  u->name_ = "fkr" + std::to_string(getpid());
  run_cmd({userdel, "-r", u->name_});  // left by a killed run of this pid? (usually absent)
  auto r = run_cmd({useradd, "-m", "-U", "-s", "/bin/sh", u->name_});
  if (r.status != 0) {
    run_cmd({userdel, "-r", u->name_});
    why = "useradd failed: " + r.err;
    return nullptr;
  }
  passwd* pw = getpwnam(u->name_.c_str());
  if (pw == nullptr) {
    why = "useradd made no passwd entry";
    run_cmd({userdel, "-r", u->name_});
    return nullptr;  // uid_ is still 0: the destructor leaves everything alone
  }
  u->uid_ = pw->pw_uid;
  u->gid_ = pw->pw_gid;
  u->home_ = pw->pw_dir;
  // useradd gives subordinate ids when login.defs asks for it; else add a range of our own.
  if (!find_range("/etc/subuid", u->name_, u->subuid_start_, u->subuid_count_) ||
      !find_range("/etc/subgid", u->name_, u->subgid_start_, u->subgid_count_)) {
    uint32_t base = 600000 + static_cast<uint32_t>(getpid() % 1000) * 65536;
    std::string range = std::to_string(base) + "-" + std::to_string(base + 65535);
    run_cmd({usermod, "--add-subuids", range, "--add-subgids", range, u->name_});
    find_range("/etc/subuid", u->name_, u->subuid_start_, u->subuid_count_);
    find_range("/etc/subgid", u->name_, u->subgid_start_, u->subgid_count_);
  }
  return u;
}

TestUser::~TestUser() {
  if (uid_ == 0) return;  // never made: never kill root's processes
  // Whatever a failed test left running as the user goes first; userdel refuses otherwise.
  for (int round = 0; round < 100; ++round) {
    auto pids = processes();
    if (pids.empty()) break;
    for (pid_t p : pids) kill(p, SIGKILL);
    usleep(20000);
  }
  run_cmd({tool("userdel"), "-r", name_});
  std::error_code ec;
  std::filesystem::remove_all(home_, ec);
}

RunResult TestUser::run(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                        const std::string& path, int timeout_s) const {
  return run_cmd(command(argv, env, path), timeout_s);
}

std::vector<std::string> TestUser::command(const std::vector<std::string>& argv,
                                           const std::vector<std::string>& env,
                                           const std::string& path) const {
  std::vector<std::string> full = {kSetpriv,
                                   "--reuid",
                                   std::to_string(uid_),
                                   "--regid",
                                   std::to_string(gid_),
                                   "--init-groups",
                                   "/usr/bin/env",
                                   "-i",
                                   "PATH=" + path,
                                   "HOME=" + home_};
  full.insert(full.end(), env.begin(), env.end());
  full.insert(full.end(), argv.begin(), argv.end());
  return full;
}

void TestUser::give(const std::string& path) const {
  std::error_code ec;
  auto own = [&](const std::filesystem::path& p) {
    if (lchown(p.c_str(), uid_, gid_) < 0) {
    }
  };
  own(path);
  for (const auto& e : std::filesystem::recursive_directory_iterator(path, ec)) own(e.path());
}

std::vector<pid_t> TestUser::processes() const {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream st(std::string("/proc/") + e->d_name + "/status");
    for (std::string line; std::getline(st, line);) {
      // A zombie is gone already; its reaper (not us) has yet to collect it.
      if (line.rfind("State:", 0) == 0 && line.find('Z') != std::string::npos) break;
      if (line.rfind("Uid:", 0) != 0) continue;
      std::istringstream f(line.substr(4));
      uid_t real = 0;
      f >> real;
      // The user's own uid, or one of its subordinate uids (a container's other users).
      bool sub = subuid_start_ > 0 && subuid_count_ > 0 && real >= subuid_start_ &&
                 real - subuid_start_ < subuid_count_;
      if (real == uid_ || sub) out.push_back(static_cast<pid_t>(std::stoi(e->d_name)));
      break;
    }
  }
  closedir(d);
  return out;
}

}  // namespace forker::test
