// Registry protocol paths docker-registry cannot show: bearer tokens, redirects to another
// origin, 5xx retries and a server that ignores Range. A tiny scripted HTTP server on 127.0.0.1
// plays the registry.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include "image/registry.hpp"
#include "integration/support/harness.hpp"

namespace forker::test {
namespace {

namespace fs = std::filesystem;

struct SeenRequest {
  std::string path;  // with query
  std::map<std::string, std::string> headers;  // lower-case names
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// One connection per request (Connection: close), handled in order on one thread.
class ScriptedServer {
 public:
  using Handler = std::function<std::string(const SeenRequest&)>;  // returns the raw response
  explicit ScriptedServer(Handler h) : handler_(std::move(h)) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(fd_, 16);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }
  std::string host_port() const { return "127.0.0.1:" + std::to_string(port_); }
  std::vector<SeenRequest> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

  static std::string response(int status, const std::string& body, const std::vector<std::string>& headers = {}) {
    std::string r = "HTTP/1.1 " + std::to_string(status) + " X\r\nConnection: close\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n";
    for (const auto& h : headers) r += h + "\r\n";
    return r + "\r\n" + body;
  }

 private:
  void serve() {
    while (!stop_) {
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      std::string in;
      char buf[4096];
      while (in.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
      }
      SeenRequest req;
      size_t sp1 = in.find(' '), sp2 = in.find(' ', sp1 + 1);
      if (sp1 != std::string::npos && sp2 != std::string::npos) req.path = in.substr(sp1 + 1, sp2 - sp1 - 1);
      size_t pos = in.find("\r\n");
      while (pos != std::string::npos) {
        size_t next = in.find("\r\n", pos + 2);
        if (next == std::string::npos || next == pos + 2) break;
        std::string line = in.substr(pos + 2, next - pos - 2);
        size_t colon = line.find(':');
        if (colon != std::string::npos) {
          std::string name = line.substr(0, colon);
          for (char& ch : name) ch = static_cast<char>(tolower(ch));
          req.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
        }
        pos = next;
      }
      {
        std::lock_guard lock(mu_);
        seen_.push_back(req);
      }
      std::string out = handler_(req);
      size_t done = 0;
      while (done < out.size()) {
        ssize_t n = write(c, out.data() + done, out.size() - done);
        if (n <= 0) break;
        done += static_cast<size_t>(n);
      }
      close(c);
    }
  }

  Handler handler_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<SeenRequest> seen_;
};

std::string blob_content() {
  std::string s;
  for (int i = 0; i < 20000; ++i) s += std::to_string(i) + ",";
  return s;
}

std::string manifest_for(const std::string& blob) {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
         R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
         image::sha256_of("{}").str() + R"(","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" +
         image::sha256_of(blob).str() + R"(","size":)" + std::to_string(blob.size()) + "}]}";
}

class RegistryProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/forker-proto-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  static image::RegistryOptions options() {
    image::RegistryOptions o;
    o.auth_files.clear();
    return o;
  }
  std::string dir_;
};

TEST_F(RegistryProtocolTest, BearerTokenWithCredentialsAndRedirectWithoutThem) {
  const std::string blob = blob_content();
  const std::string manifest = manifest_for(blob);
  // Blob storage on another origin: it must never see the registry's Authorization header.
  ScriptedServer storage([&](const SeenRequest& r) {
    if (r.headers.count("authorization")) return ScriptedServer::response(400, "leaked credentials");
    return ScriptedServer::response(200, blob);
  });
  int registry_port = 0;
  ScriptedServer registry([&](const SeenRequest& r) {
    std::string realm = "http://127.0.0.1:" + std::to_string(registry_port) + "/token";
    if (r.path.starts_with("/token")) {
      // basic u:p
      if (r.header("authorization") != "Basic dTpw") return ScriptedServer::response(401, "{}");
      return ScriptedServer::response(200, R"({"token":"tok-1","expires_in":300})");
    }
    if (r.header("authorization") != "Bearer tok-1")
      return ScriptedServer::response(
          401, R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})",
          {"WWW-Authenticate: Bearer realm=\"" + realm + "\",service=\"test, svc\",scope=\"repository:a/b:pull\""});
    if (r.path == "/v2/a/b/manifests/t")
      return ScriptedServer::response(200, manifest, {"Content-Type: application/vnd.oci.image.manifest.v1+json"});
    if (r.path.starts_with("/v2/a/b/blobs/"))
      return ScriptedServer::response(307, "", {"Location: http://" + storage.host_port() + "/store/x?sig=1"});
    return ScriptedServer::response(404, "{}");
  });
  registry_port = registry.port();

  auto o = options();
  o.credentials = image::Credentials{"u", "p"};
  image::RegistryClient client(o);
  auto ref = image::Reference::parse(registry.host_port() + "/a/b:t");
  ASSERT_TRUE(ref);
  auto img = client.resolve(*ref);
  ASSERT_TRUE(img) << img.error().message();
  ASSERT_EQ(img->layers.size(), 1u);
  std::string dest = dir_ + "/blob";
  auto st = client.fetch_blob(*ref, img->layers[0], dest);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(read_text(dest), blob);

  // The token request carried service and scope, percent-encoded; the token was reused.
  int token_requests = 0;
  for (const auto& r : registry.seen()) {
    if (!r.path.starts_with("/token")) continue;
    ++token_requests;
    EXPECT_EQ(r.path, "/token?service=test%2C%20svc&scope=repository%3Aa%2Fb%3Apull");
  }
  EXPECT_EQ(token_requests, 1);
  ASSERT_EQ(storage.seen().size(), 1u);
  EXPECT_EQ(storage.seen()[0].path, "/store/x?sig=1");
  EXPECT_EQ(storage.seen()[0].headers.count("authorization"), 0u);
  EXPECT_EQ(storage.seen()[0].header("user-agent"), "forker/" FORKER_VERSION);

  // Anonymous: the token server refuses, and the error says where.
  image::RegistryClient anonymous(options());
  auto refused = anonymous.resolve(*ref);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("fetch token"), std::string::npos) << refused.error().message();
}

TEST_F(RegistryProtocolTest, RetriesServerErrorsAndRestartsWhenRangeIsIgnored) {
  const std::string blob = blob_content();
  const std::string manifest = manifest_for(blob);
  std::atomic<int> manifest_calls{0};
  ScriptedServer registry([&](const SeenRequest& r) {
    if (r.path == "/v2/a/b/manifests/t") {
      if (manifest_calls++ < 2) return ScriptedServer::response(503, "busy");
      return ScriptedServer::response(200, manifest, {"Docker-Content-Digest: " + image::sha256_of(manifest).str()});
    }
    if (r.path.starts_with("/v2/a/b/blobs/")) return ScriptedServer::response(200, blob);  // no Range support
    return ScriptedServer::response(404, "{}");
  });
  image::RegistryClient client(options());
  auto ref = image::Reference::parse(registry.host_port() + "/a/b:t");
  auto img = client.resolve(*ref);
  ASSERT_TRUE(img) << img.error().message();
  EXPECT_EQ(manifest_calls.load(), 3);

  std::string dest = dir_ + "/blob";
  write_text(dest, blob.substr(0, 1000));
  auto st = client.fetch_blob(*ref, img->layers[0], dest);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(read_text(dest), blob);
  EXPECT_EQ(registry.seen().back().header("range"), "bytes=1000-");

  // Out of retries: the last status is the error.
  image::RegistryOptions few = options();
  few.retries = 0;
  manifest_calls = 0;
  image::RegistryClient impatient(few);
  auto busy = impatient.resolve(*ref);
  ASSERT_FALSE(busy);
  EXPECT_NE(busy.error().message().find("HTTP 503"), std::string::npos) << busy.error().message();
}

TEST_F(RegistryProtocolTest, RefusesAManifestWhoseHeaderDigestDisagreesOrIsTooLarge) {
  const std::string manifest = manifest_for("x");
  ScriptedServer registry([&](const SeenRequest& r) {
    if (r.path == "/v2/a/b/manifests/lie")
      return ScriptedServer::response(200, manifest, {"Docker-Content-Digest: " + image::sha256_of("other").str()});
    if (r.path == "/v2/a/b/manifests/huge") return ScriptedServer::response(200, std::string(5 << 20, ' '));
    if (r.path == "/v2/a/b/manifests/v1")
      return ScriptedServer::response(200, R"({"schemaVersion":1,"name":"a/b","fsLayers":[]})",
                                      {"Content-Type: application/vnd.docker.distribution.manifest.v1+prettyjws"});
    return ScriptedServer::response(404, "{}");
  });
  image::RegistryClient client(options());
  auto lie = client.resolve(*image::Reference::parse(registry.host_port() + "/a/b:lie"));
  ASSERT_FALSE(lie);
  EXPECT_NE(lie.error().message().find("Docker-Content-Digest"), std::string::npos) << lie.error().message();
  auto huge = client.resolve(*image::Reference::parse(registry.host_port() + "/a/b:huge"));
  ASSERT_FALSE(huge);
  EXPECT_NE(huge.error().message().find("larger than"), std::string::npos) << huge.error().message();
  auto v1 = client.resolve(*image::Reference::parse(registry.host_port() + "/a/b:v1"));
  ASSERT_FALSE(v1);
  EXPECT_NE(v1.error().message().find("schema 1"), std::string::npos) << v1.error().message();
}

}  // namespace
}  // namespace forker::test
