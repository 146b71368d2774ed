#include "integration/support/harness.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "oci/default_spec.hpp"

namespace fs = std::filesystem;

namespace forker::test {

bool is_root() { return geteuid() == 0; }

bool have_busybox() { return access("/bin/busybox", X_OK) == 0; }

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

RunResult run_cmd(const std::vector<std::string>& argv, int timeout_s,
                  const std::string& stdin_text) {
  RunResult r;
  int out[2], err[2], in[2];
  if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || pipe2(in, O_CLOEXEC)) return r;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    std::vector<char*> a;
    for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execv(a[0], a.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  close(in[0]);
  if (!stdin_text.empty()) {
    ssize_t ignored = write(in[1], stdin_text.data(), stdin_text.size());
    (void)ignored;
  }
  close(in[1]);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  // The child's exit ends the wait, not EOF: a detached container keeps our pipes open.
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  pollfd p[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {pidfd, POLLIN, 0}};
  int open_fds = 2;
  bool timed_out = false;
  bool exited = false;
  while (open_fds > 0 && !exited) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    int n = poll(p, 3, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    if (p[2].revents) {
      exited = true;
      // Drain what is already buffered without waiting for writers that outlive the child.
      for (int i = 0; i < 2; ++i) {
        if (p[i].fd < 0) continue;
        fcntl(p[i].fd, F_SETFL, O_NONBLOCK);
        char buf[4096];
        ssize_t k;
        while ((k = read(p[i].fd, buf, sizeof buf)) > 0) (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(k));
      }
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (p[i].fd < 0 || !p[i].revents) continue;
      char buf[4096];
      ssize_t k = read(p[i].fd, buf, sizeof buf);
      if (k <= 0) {
        close(p[i].fd);
        p[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(k));
      }
    }
  }
  if (timed_out) kill(pid, SIGKILL);
  for (auto& x : p)
    if (x.fd >= 0) close(x.fd);
  int status = 0;
  waitpid(pid, &status, 0);
  if (timed_out) r.status = -1;
  else if (WIFEXITED(status)) r.status = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) r.status = 128 + WTERMSIG(status);
  return r;
}

RunResult run_oci(const std::vector<std::string>& args, const std::string& root, int timeout_s,
                  const std::string& stdin_text) {
  std::vector<std::string> argv = {FORKER_OCI_BIN};
  if (!root.empty()) {
    argv.push_back("--root");
    argv.push_back(root);
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return run_cmd(argv, timeout_s, stdin_text);
}

Bundle::Bundle(const std::string& test_name) {
  std::string clean;
  for (char c : test_name) clean += (isalnum(static_cast<unsigned char>(c)) ? c : '-');
  id_ = "fkt-" + clean.substr(0, 40) + "-" + std::to_string(getpid());
  char tmpl[] = "/tmp/forker-it-XXXXXX";
  dir_ = mkdtemp(tmpl);
  root_ = dir_ + "/state";
  fs::create_directories(rootfs() + "/bin");
  fs::create_directories(rootfs() + "/etc");
  fs::copy_file(FORKER_PROBE_BIN, rootfs() + "/probe");
  if (have_busybox()) {
    fs::copy_file("/bin/busybox", rootfs() + "/bin/busybox");
    for (const char* a : {"sh", "cat", "ls", "echo", "sleep", "id", "mkdir", "touch", "test"})
      fs::create_symlink("busybox", rootfs() + "/bin/" + a);
  }
  write_text(rootfs() + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
  config_ = nlohmann::json::parse(oci::default_spec_json(false, 0, 0));
  config_["process"]["terminal"] = false;
  config_["root"]["readonly"] = false;
  config_["process"]["args"] = {"/probe", "pid"};
}

Bundle::~Bundle() {
  // A test that failed half-way must still leave nothing: force-delete whatever it created.
  if (fs::exists(root_)) {
    for (const auto& e : fs::directory_iterator(root_))
      run_oci({"delete", "-f", e.path().filename().string()}, root_, 30);
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void Bundle::args(const std::vector<std::string>& argv) {
  auto a = nlohmann::json::array();
  for (size_t i = 0; i < argv.size(); ++i)
    a.push_back(i == 0 && argv[i] == "probe" ? "/probe" : argv[i]);
  config_["process"]["args"] = a;
}

void Bundle::save() const { write_text(dir_ + "/config.json", config_.dump(2)); }

RunResult Bundle::run(const std::vector<std::string>& extra, int timeout_s) {
  save();
  std::vector<std::string> args = {"run", "--bundle", dir_};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(id_);
  return run_oci(args, root_, timeout_s);
}

void ContainerTest::SetUp() {
  if (!is_root()) GTEST_SKIP() << "needs root";
}

void ContainerTest::TearDown() {
  if (!bundle_) return;
  std::string id = bundle_->id(), root = bundle_->root(), dir = bundle_->dir();
  bundle_.reset();
  EXPECT_TRUE(leftovers(dir, id, root).empty()) << "left behind: " << [&] {
    std::string all;
    for (const auto& l : leftovers(dir, id, root)) all += l + "\n";
    return all;
  }();
}

Bundle& ContainerTest::bundle() {
  if (!bundle_)
    bundle_ = std::make_unique<Bundle>(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
  return *bundle_;
}

std::vector<std::string> leftovers(const std::string& path_part, const std::string& name_part,
                                   const std::string& root) {
  std::vector<std::string> out;
  std::ifstream mi("/proc/self/mountinfo");
  for (std::string line; std::getline(mi, line);)
    if (!path_part.empty() && line.find(path_part) != std::string::npos)
      out.push_back("mount: " + line);
  std::error_code ec;
  for (const auto& hier : fs::directory_iterator("/sys/fs/cgroup", ec)) {
    for (const auto& parent : {hier.path() / "forker", hier.path()}) {
      for (const auto& d : fs::directory_iterator(parent, ec))
        if (d.is_directory() && d.path().filename().string().find(name_part) != std::string::npos)
          out.push_back("cgroup: " + d.path().string());
    }
  }
  if (!root.empty() && fs::exists(root))
    for (const auto& e : fs::directory_iterator(root, ec))
      out.push_back("state: " + e.path().string());
  return out;
}

std::vector<std::string> remove_forker_networks(const std::string& storage_root) {
  std::vector<std::string> errors;
  RunResult ls = run_cmd({FORKER_CLI_BIN, "--storage-root", storage_root, "network", "ls", "-q"});
  std::istringstream in(ls.out);
  for (std::string name; std::getline(in, name);) {
    if (name.empty()) continue;
    RunResult rm =
        run_cmd({FORKER_CLI_BIN, "--storage-root", storage_root, "network", "rm", name});
    if (rm.status != 0) errors.push_back("network rm " + name + ": " + rm.err);
  }
  return errors;
}

namespace {
// Before any test runs (static initialisation of the test binary).
const bool kDefaultSubnetSet = ::setenv("FORKER_DEFAULT_SUBNET", kTestDefaultSubnet, 1) == 0;
}  // namespace

}  // namespace forker::test
