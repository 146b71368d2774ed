#include "integration/support/registry_fixture.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "image/digest.hpp"
#include "integration/support/harness.hpp"

namespace forker::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string make_temp_dir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  if (!mkdtemp(tmpl.data())) return {};
  return tmpl;
}

// Runs ARGV; "" on success, else the command line and its output.
std::string run_step(const std::vector<std::string>& argv, int timeout_s = 120) {
  RunResult r = run_cmd(argv, timeout_s);
  if (r.status == 0) return {};
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  return cmd + " -> exit " + std::to_string(r.status) + ": " + r.out + r.err;
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

// GET URL/v2/: 200 or 401 means the registry serves.
bool answers(const std::string& url) {
  CURL* c = curl_easy_init();
  if (!c) return false;
  std::string target = url + "/v2/";
  curl_easy_setopt(c, CURLOPT_URL, target.c_str());
  curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 2L);
  long status = 0;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  return status == 200 || status == 401;
}

std::string blob_file(const std::string& layout, const std::string& digest) {
  return layout + "/blobs/sha256/" + digest.substr(7);
}

std::string write_blob(const std::string& layout, const std::string& bytes) {
  std::string digest = image::sha256_of(bytes).str();
  write_text(blob_file(layout, digest), bytes);
  return digest;
}

// index.json's entry for TAG.
json* find_tag(json& index, const std::string& tag) {
  for (auto& m : index["manifests"]) {
    if (m.contains("annotations") && m["annotations"].value("org.opencontainers.image.ref.name", "") == tag)
      return &m;
  }
  return nullptr;
}

std::string write_files(const std::string& root, const std::map<std::string, std::string>& files) {
  for (const auto& [path, content] : files) {
    fs::path p = fs::path(root) / fs::path(path).relative_path();
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    if (ec) return "mkdir " + p.parent_path().string() + ": " + ec.message();
    write_text(p.string(), content);
  }
  return {};
}

// A scratch directory removed when the builder returns.
struct Scratch {
  std::string dir = make_temp_dir("forker-layer");
  ~Scratch() {
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
};

}  // namespace

std::string RegistryFixture::missing_tools() {
  std::string missing;
  for (const char* tool : {"/usr/bin/docker-registry", "/usr/bin/skopeo", "/usr/bin/umoci", "/usr/bin/htpasswd",
                           "/usr/bin/zstd", "/usr/bin/tar", "/bin/busybox"}) {
    if (access(tool, X_OK) != 0) missing += std::string(missing.empty() ? "" : " ") + tool;
  }
  return missing;
}

std::unique_ptr<RegistryFixture> RegistryFixture::start(const RegistryFixtureOptions& options, std::string* error) {
  std::unique_ptr<RegistryFixture> reg(new RegistryFixture());
  reg->options_ = options;
  reg->dir_ = make_temp_dir("forker-registry");
  if (reg->dir_.empty()) {
    *error = "mkdtemp failed";
    return nullptr;
  }
  bool auth = !options.htpasswd_user.empty();
  if (auth) {
    RunResult h = run_cmd({"/usr/bin/htpasswd", "-Bbn", options.htpasswd_user, options.htpasswd_password});
    if (h.status != 0) {
      *error = "htpasswd: " + h.err;
      return nullptr;
    }
    write_text(reg->dir_ + "/htpasswd", h.out);
  }
  // The port is free when probed; another process may take it before the registry binds, so try
  // a few.
  for (int attempt = 0; attempt < 5; ++attempt) {
    reg->port_ = free_port();
    std::string config = "version: 0.1\n"
                         "log:\n  level: error\n  accesslog:\n    disabled: true\n"
                         "storage:\n  filesystem:\n    rootdirectory: " + reg->dir_ + "/storage\n"
                         "  delete:\n    enabled: true\n"
                         "http:\n  addr: " + reg->host_port() + "\n  secret: forker-test-secret\n";
    if (auth) config += "auth:\n  htpasswd:\n    realm: forker-test\n    path: " + reg->dir_ + "/htpasswd\n";
    write_text(reg->dir_ + "/config.yml", config);
    std::string log = reg->dir_ + "/registry.log";
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      if (null >= 0) dup2(null, 0);
      execl("/usr/bin/docker-registry", "docker-registry", "serve", (reg->dir_ + "/config.yml").c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    if (pid < 0) {
      *error = "fork failed";
      return nullptr;
    }
    reg->pid_ = pid;
    // Readiness: poll until /v2/ answers or the process exits (bounded at 30 s).
    for (int i = 0; i < 300; ++i) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        reg->pid_ = -1;
        *error = "docker-registry exited: " + read_text(log);
        break;
      }
      if (answers(reg->url())) return reg;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (reg->pid_ > 0) {
      kill(reg->pid_, SIGKILL);
      waitpid(reg->pid_, nullptr, 0);
      reg->pid_ = -1;
      *error = "docker-registry did not answer on " + reg->url() + ": " + read_text(log);
    }
  }
  return nullptr;
}

RegistryFixture::~RegistryFixture() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    bool gone = false;
    for (int i = 0; i < 50 && !gone; ++i) {
      gone = waitpid(pid_, nullptr, WNOHANG) == pid_;
      if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!gone) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

std::string RegistryFixture::push_layout(const std::string& layout, const std::string& tag, const std::string& name,
                                         const std::vector<std::string>& extra) const {
  std::vector<std::string> argv = {"/usr/bin/skopeo", "copy", "--quiet", "--insecure-policy", "--dest-tls-verify=false"};
  if (!options_.htpasswd_user.empty())
    argv.push_back("--dest-creds=" + options_.htpasswd_user + ":" + options_.htpasswd_password);
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back("oci:" + layout + ":" + tag);
  argv.push_back("docker://" + host_port() + "/" + name + ":" + tag);
  return run_step(argv);
}

std::string RegistryFixture::blob_data_path(const std::string& digest) const {
  std::string hex = digest.substr(digest.find(':') + 1);
  return dir_ + "/storage/docker/registry/v2/blobs/sha256/" + hex.substr(0, 2) + "/" + hex + "/data";
}

std::string make_busybox_layout(const std::string& layout, const std::string& tag,
                                const std::vector<TestLayer>& layers, const std::string& architecture) {
  const std::string image = layout + ":" + tag;
  if (!fs::exists(layout + "/index.json")) {
    if (auto e = run_step({"/usr/bin/umoci", "init", "--layout", layout}); !e.empty()) return e;
  }
  if (auto e = run_step({"/usr/bin/umoci", "new", "--image", image}); !e.empty()) return e;
  {
    Scratch base;
    std::error_code ec;
    fs::create_directories(base.dir + "/bin", ec);
    fs::copy_file("/bin/busybox", base.dir + "/bin/busybox", ec);
    if (ec) return "copy /bin/busybox: " + ec.message();
    for (const char* applet : {"sh", "cat", "ls", "echo", "test"}) fs::create_symlink("busybox", base.dir + "/bin/" + applet);
    if (auto e = write_files(base.dir, {{"/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"},
                                        {"/etc/os-release-forker", "busybox test image\n"}});
        !e.empty())
      return e;
    if (auto e = run_step({"/usr/bin/umoci", "insert", "--image", image, base.dir, "/"}); !e.empty()) return e;
  }
  for (const auto& layer : layers) {
    if (!layer.whiteout.empty()) {
      if (auto e = run_step({"/usr/bin/umoci", "insert", "--image", image, "--whiteout", layer.whiteout}); !e.empty())
        return e;
      continue;
    }
    Scratch stage;
    if (!layer.opaque_dir.empty()) {
      std::map<std::string, std::string> inside;
      for (const auto& [path, content] : layer.files) {
        if (!path.starts_with(layer.opaque_dir + "/")) return "file " + path + " is not under " + layer.opaque_dir;
        inside[path.substr(layer.opaque_dir.size())] = content;
      }
      if (auto e = write_files(stage.dir, inside); !e.empty()) return e;
      if (auto e = run_step({"/usr/bin/umoci", "insert", "--image", image, "--opaque", stage.dir, layer.opaque_dir});
          !e.empty())
        return e;
    } else {
      if (auto e = write_files(stage.dir, layer.files); !e.empty()) return e;
      if (auto e = run_step({"/usr/bin/umoci", "insert", "--image", image, stage.dir, "/"}); !e.empty()) return e;
    }
  }
  std::vector<std::string> config = {"/usr/bin/umoci", "config", "--image", image, "--config.cmd", "/bin/sh"};
  if (!architecture.empty()) config.insert(config.end(), {"--architecture", architecture});
  return run_step(config);
}

std::string add_zstd_layer(const std::string& layout, const std::string& tag,
                           const std::map<std::string, std::string>& files) {
  Scratch work;
  std::string root = work.dir + "/root";
  if (auto e = write_files(root, files); !e.empty()) return e;
  std::string tar = work.dir + "/layer.tar";
  if (auto e = run_step({"/usr/bin/tar", "--numeric-owner", "--owner=0", "--group=0", "-C", root, "-cf", tar, "."});
      !e.empty())
    return e;
  if (auto e = run_step({"/usr/bin/zstd", "-q", "-f", tar, "-o", tar + ".zst"}); !e.empty()) return e;
  std::string diff_id = file_digest(tar);
  std::string blob = read_text(tar + ".zst");
  std::string blob_digest = write_blob(layout, blob);

  json index = json::parse(read_text(layout + "/index.json"));
  json* entry = find_tag(index, tag);
  if (!entry) return "no tag " + tag + " in " + layout;
  json manifest = json::parse(read_text(blob_file(layout, (*entry)["digest"])));
  json config = json::parse(read_text(blob_file(layout, manifest["config"]["digest"])));
  config["rootfs"]["diff_ids"].push_back(diff_id);
  std::string config_bytes = config.dump();
  manifest["config"]["digest"] = write_blob(layout, config_bytes);
  manifest["config"]["size"] = config_bytes.size();
  manifest["layers"].push_back({{"mediaType", "application/vnd.oci.image.layer.v1.tar+zstd"},
                                {"digest", blob_digest},
                                {"size", blob.size()}});
  std::string manifest_bytes = manifest.dump();
  (*entry)["digest"] = write_blob(layout, manifest_bytes);
  (*entry)["size"] = manifest_bytes.size();
  write_text(layout + "/index.json", index.dump());
  return {};
}

std::string make_two_platform_layout(const std::string& layout, const std::string& tag) {
  if (auto e = make_busybox_layout(layout, tag + "-amd64", {}, "amd64"); !e.empty()) return e;
  if (auto e = make_busybox_layout(layout, tag + "-arm64", {{.files = {{"/etc/arch-marker", "arm64"}}}}, "arm64");
      !e.empty())
    return e;
  json index = json::parse(read_text(layout + "/index.json"));
  json list = {{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.index.v1+json"}, {"manifests", json::array()}};
  for (const char* arch : {"amd64", "arm64"}) {
    json* entry = find_tag(index, tag + "-" + arch);
    if (!entry) return "no tag " + tag + "-" + arch;
    json m = {{"mediaType", (*entry)["mediaType"]}, {"digest", (*entry)["digest"]}, {"size", (*entry)["size"]},
              {"platform", {{"os", "linux"}, {"architecture", arch}}}};
    list["manifests"].push_back(m);
  }
  std::string bytes = list.dump();
  index["manifests"].push_back({{"mediaType", "application/vnd.oci.image.index.v1+json"},
                                {"digest", write_blob(layout, bytes)},
                                {"size", bytes.size()},
                                {"annotations", {{"org.opencontainers.image.ref.name", tag}}}});
  write_text(layout + "/index.json", index.dump());
  return {};
}

std::string file_digest(const std::string& path) {
  auto d = image::sha256_of_file(path);
  return d ? d->str() : std::string();
}

}  // namespace forker::test
