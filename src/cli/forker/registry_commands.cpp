// `forker pull`, `forker login`, `forker logout`.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>

#include "cli/forker/cli.hpp"
#include "image/auth.hpp"
#include "image/pull.hpp"

namespace forker::cli {
namespace {

struct PullArgs {
  std::string reference;
  std::string platform;
  std::vector<std::string> insecure;
  bool quiet = false;
};

std::string human_bytes(int64_t n) {
  char buf[32];
  if (n >= (1 << 20)) std::snprintf(buf, sizeof buf, "%.1fMB", n / 1e6);
  else if (n >= 1000) std::snprintf(buf, sizeof buf, "%.1fkB", n / 1e3);
  else std::snprintf(buf, sizeof buf, "%lldB", static_cast<long long>(n));
  return buf;
}

// One line per layer. On a terminal the lines are redrawn in place (at most 10 times a
// second); otherwise each blob prints a line when it starts and when it is done.
class PullProgress {
 public:
  explicit PullProgress(bool tty) : tty_(tty), start_(std::chrono::steady_clock::now()) {}

  void on_event(const image::PullEvent& e) {
    std::lock_guard lock(mu_);
    using K = image::PullEvent::Kind;
    const std::string id = e.digest.short_id();
    switch (e.kind) {
      case K::kResolved:
        std::printf("Resolved manifest %s\n", e.digest.str().c_str());
        break;
      case K::kBlobPresent:
        line(id, "Already exists", false);
        break;
      case K::kBlobStart:
        line(id, "Waiting", false);
        break;
      case K::kBlobProgress: {
        if (!tty_) return;
        auto now = std::chrono::steady_clock::now();
        if (now - last_draw_ < std::chrono::milliseconds(100) && e.done != e.total) return;
        last_draw_ = now;
        double secs = std::chrono::duration<double>(now - start_).count();
        std::string text = "Downloading " + human_bytes(e.done) + "/" + human_bytes(e.total);
        if (secs > 0.1) text += " (" + human_bytes(static_cast<int64_t>(e.done / secs)) + "/s)";
        line(id, text, true);
        break;
      }
      case K::kBlobDone:
        downloaded_ += e.total;
        line(id, "Download complete " + human_bytes(e.total), false);
        break;
      case K::kUnpacked:
        line(id, "Pull complete", false);
        break;
    }
    std::fflush(stdout);
  }

  int64_t downloaded() const { return downloaded_; }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  // On a terminal: the layer's line is rewritten (cursor up, clear line); else appended.
  void line(const std::string& id, const std::string& text, bool progress_only) {
    if (!tty_) {
      if (!progress_only) std::printf("%s: %s\n", id.c_str(), text.c_str());
      return;
    }
    auto it = rows_.find(id);
    if (it == rows_.end()) {
      rows_[id] = static_cast<int>(rows_.size());
      std::printf("%s: %s\n", id.c_str(), text.c_str());
      return;
    }
    int up = static_cast<int>(rows_.size()) - it->second;
    std::printf("\x1b[%dA\r\x1b[2K%s: %s\x1b[%dB\r", up, id.c_str(), text.c_str(), up);
  }

  bool tty_;
  std::mutex mu_;
  std::map<std::string, int> rows_;
  std::chrono::steady_clock::time_point start_, last_draw_{};
  int64_t downloaded_ = 0;
};

int run_pull(const Globals& g, const PullArgs& args) {
  auto ref = image::Reference::parse(args.reference);
  if (!ref) return fail(ref.error());
  image::PullOptions options;
  if (!args.platform.empty()) {
    auto platform = image::Platform::parse(args.platform);
    if (!platform) return fail(platform.error());
    options.platform = *platform;
  }
  options.registry.insecure_registries = args.insecure;
  auto store = open_store(g);
  if (!store) return fail(store.error());
  auto progress = std::make_shared<PullProgress>(isatty(STDOUT_FILENO) == 1);
  if (!args.quiet) options.on_event = [progress](const image::PullEvent& e) { progress->on_event(e); };
  auto result = image::pull_image(*store, *ref, options);
  if (!result) return fail(result.error());
  if (args.quiet) {
    std::printf("%s\n", result->image.config.digest.str().c_str());
    return 0;
  }
  std::printf("Digest: %s\n", result->manifest_digest.str().c_str());
  if (result->downloaded_anything) {
    std::printf("Status: Downloaded newer image for %s (%s in %.2f s)\n", ref->familiar().c_str(),
                human_bytes(progress->downloaded()).c_str(), progress->seconds());
  } else {
    std::printf("Status: Image is up to date for %s\n", ref->familiar().c_str());
  }
  std::printf("%s\n", ref->str().c_str());
  return 0;
}

struct LoginArgs {
  std::string registry;
  std::string username, password;
  bool password_stdin = false;
  std::string authfile;
};

int run_login(const LoginArgs& args) {
  image::Credentials creds{args.username, args.password};
  if (args.password_stdin) {
    if (!std::getline(std::cin, creds.password))
      return fail(make_error("login", "read the password from stdin"));
  }
  if (creds.username.empty() || creds.password.empty())
    return fail(make_error("login", args.registry)
                    .add_context("needs --username and --password (or --password-stdin)"));
  image::RegistryClient client;
  if (auto st = client.check_login(args.registry, creds); !st) return fail(st.error());
  std::string file = args.authfile.empty() ? image::default_auth_file() : args.authfile;
  if (auto st = image::save_credentials(args.registry, creds, file); !st) return fail(st.error());
  std::printf("Login Succeeded\n");
  return 0;
}

}  // namespace

void register_registry_commands(CLI::App& app, Globals& g, Actions& actions) {
  auto pull_args = std::make_shared<PullArgs>();
  CLI::App* pull = app.add_subcommand("pull", "Download an image from a registry");
  pull->add_option("image", pull_args->reference, "[REGISTRY/]NAME[:TAG|@DIGEST]")->required();
  pull->add_option("--platform", pull_args->platform, "os/arch[/variant] (default: this host)");
  pull->add_option("--insecure-registry", pull_args->insecure,
                   "host[:port] reached over plain HTTP or unverified TLS");
  pull->add_flag("-q,--quiet", pull_args->quiet, "print only the image id");
  actions.add(pull, [&g, pull_args] { return run_pull(g, *pull_args); });

  auto login_args = std::make_shared<LoginArgs>();
  CLI::App* login = app.add_subcommand("login", "Store credentials for a registry");
  login->add_option("registry", login_args->registry, "host[:port]")->required();
  login->add_option("-u,--username", login_args->username, "user name");
  login->add_option("-p,--password", login_args->password, "password");
  login->add_flag("--password-stdin", login_args->password_stdin, "read the password from stdin");
  login->add_option("--authfile", login_args->authfile,
                    "credentials file (default: $REGISTRY_AUTH_FILE, "
                    "$XDG_RUNTIME_DIR/containers/auth.json or ~/.docker/config.json)");
  actions.add(login, [login_args] { return run_login(*login_args); });

  auto logout_args = std::make_shared<LoginArgs>();
  CLI::App* logout = app.add_subcommand("logout", "Remove stored credentials for a registry");
  logout->add_option("registry", logout_args->registry, "host[:port]")->required();
  logout->add_option("--authfile", logout_args->authfile, "credentials file");
  actions.add(logout, [logout_args] {
    std::string file =
        logout_args->authfile.empty() ? image::default_auth_file() : logout_args->authfile;
    if (auto st = image::remove_credentials(logout_args->registry, file); !st)
      return fail(st.error());
    std::printf("Removed login credentials for %s\n", logout_args->registry.c_str());
    return 0;
  });
}

}  // namespace forker::cli
