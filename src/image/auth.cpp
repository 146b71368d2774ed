#include "image/auth.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/file.hpp"
#include "core/unique_fd.hpp"
#include "image/reference.hpp"

namespace forker::image {
namespace {

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A cursor over a header value.
struct Scanner {
  std::string_view s;
  size_t pos = 0;
  bool done() const { return pos >= s.size(); }
  char peek() const { return s[pos]; }
  void skip_space() {
    while (!done() && (peek() == ' ' || peek() == '\t')) ++pos;
  }
  void skip_space_and_commas() {
    while (!done() && (peek() == ' ' || peek() == '\t' || peek() == ',')) ++pos;
  }
  std::string_view token() {
    size_t start = pos;
    while (!done() && is_token_char(peek())) ++pos;
    return s.substr(start, pos - start);
  }
};

std::string base64_encode(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out(3 * in.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the bytes that '=' padding stands for.
  size_t len = static_cast<size_t>(n);
  if (!in.empty() && in.back() == '=') --len;
  if (in.size() >= 2 && in[in.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

// "https://index.docker.io/v1/" -> "docker.io"; "http://host:5000/" -> "host:5000";
// "quay.io/org/repo" stays (a per-repository key).
std::string normalize_auth_key(std::string_view key) {
  for (std::string_view scheme : {"https://", "http://"}) {
    if (key.starts_with(scheme)) key.remove_prefix(scheme.size());
  }
  while (key.ends_with("/")) key.remove_suffix(1);
  for (std::string_view api : {"/v1", "/v2"}) {
    if (key.ends_with(api)) key.remove_suffix(api.size());
  }
  std::string out(key);
  if (out == "index.docker.io" || out == "registry-1.docker.io") out = std::string(kDockerHub);
  return out;
}

std::string home_dir() {
  const char* home = std::getenv("HOME");
  return home && *home ? home : "/root";
}

}  // namespace

Result<std::vector<Challenge>> parse_challenges(std::string_view header) {
  auto bad = [&](std::string_view why) {
    return make_error("parse WWW-Authenticate \"" + std::string(header) + "\":", std::string(why));
  };
  std::vector<Challenge> out;
  Scanner sc{header};
  sc.skip_space_and_commas();
  while (!sc.done()) {
    std::string_view scheme = sc.token();
    if (scheme.empty()) return bad("expected an auth scheme");
    Challenge ch{lower(scheme), {}};
    for (;;) {
      sc.skip_space_and_commas();
      size_t param_start = sc.pos;
      std::string_view name = sc.token();
      sc.skip_space();
      if (name.empty() || sc.done() || sc.peek() != '=') {
        sc.pos = param_start;  // the next challenge's scheme, or the end
        break;
      }
      ++sc.pos;  // '='
      sc.skip_space();
      std::string value;
      if (!sc.done() && sc.peek() == '"') {
        ++sc.pos;
        bool closed = false;
        while (!sc.done()) {
          char c = sc.s[sc.pos++];
          if (c == '\\' && !sc.done()) {
            value.push_back(sc.s[sc.pos++]);
          } else if (c == '"') {
            closed = true;
            break;
          } else {
            value.push_back(c);
          }
        }
        if (!closed) return bad("unterminated quoted value");
      } else {
        value = std::string(sc.token());
      }
      ch.params[lower(name)] = std::move(value);
    }
    out.push_back(std::move(ch));
    sc.skip_space_and_commas();
    if (!sc.done() && !is_token_char(sc.peek())) return bad("unexpected character");
  }
  if (out.empty()) return bad("no challenge");
  return out;
}

std::string basic_authorization(const Credentials& creds) {
  return "Basic " + base64_encode(creds.username + ":" + creds.password);
}

std::vector<std::string> auth_file_candidates() {
  std::vector<std::string> files;
  if (const char* f = std::getenv("REGISTRY_AUTH_FILE"); f && *f) files.emplace_back(f);
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x)
    files.push_back(std::string(x) + "/containers/auth.json");
  files.push_back(home_dir() + "/.docker/config.json");
  return files;
}

std::string default_auth_file() { return auth_file_candidates().front(); }

Result<std::optional<Credentials>> credentials_from_auth_json(std::string_view json,
                                                              std::string_view registry,
                                                              std::string_view repository,
                                                              std::string_view source) {
  auto bad = [&](std::string_view why) {
    return make_error("read credentials from", std::string(source) + ": " + std::string(why));
  };
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    return bad(e.what());
  }
  if (!doc.is_object()) return bad("not a JSON object");
  auto auths = doc.find("auths");
  if (auths == doc.end()) return std::optional<Credentials>();
  if (!auths->is_object()) return bad("\"auths\" is not an object");

  std::string wanted_registry = normalize_auth_key(registry);
  std::string full_name = wanted_registry + "/" + std::string(repository);
  const nlohmann::json* best = nullptr;
  size_t best_len = 0;
  for (const auto& [key, entry] : auths->items()) {
    std::string k = normalize_auth_key(key);
    // A host key, or a "host/namespace[/repo]" key that is a path prefix of this repository.
    bool matches = k == wanted_registry ||
                   (k.starts_with(wanted_registry + "/") && full_name.starts_with(k) &&
                    (full_name.size() == k.size() || full_name[k.size()] == '/'));
    if (matches && k.size() > best_len) {
      best = &entry;
      best_len = k.size();
    }
  }
  if (!best) return std::optional<Credentials>();
  if (!best->is_object()) return bad("entry for " + wanted_registry + " is not an object");
  auto auth = best->find("auth");
  if (auth == best->end() || !auth->is_string() || auth->get<std::string>().empty())
    return std::optional<Credentials>();  // e.g. only an identity token or a helper: not ours
  auto decoded = base64_decode(auth->get<std::string>());
  if (!decoded) return bad("\"auth\" for " + wanted_registry + " is not base64");
  size_t colon = decoded->find(':');
  if (colon == std::string::npos) return bad("\"auth\" for " + wanted_registry + " is not user:password");
  return std::optional<Credentials>(Credentials{decoded->substr(0, colon), decoded->substr(colon + 1)});
}

Result<std::optional<Credentials>> find_credentials(const std::vector<std::string>& files,
                                                    std::string_view registry,
                                                    std::string_view repository) {
  for (const auto& file : files) {
    if (!path_exists(file)) continue;
    std::string text = FORKER_TRY(read_file(file));
    auto creds = FORKER_TRY(credentials_from_auth_json(text, registry, repository, file));
    if (creds) return creds;
  }
  return std::optional<Credentials>();
}

namespace {

// Reads FILE's JSON (an empty object when the file does not exist), applies EDIT to it and
// writes it back through a 0600 temporary file in the same directory.
template <typename Edit>
Status edit_auth_file(const std::string& file, Edit edit) {
  nlohmann::json doc = nlohmann::json::object();
  if (path_exists(file)) {
    std::string text = FORKER_TRY(read_file(file));
    try {
      if (!text.empty()) doc = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      return make_error("parse", file + ": " + e.what());
    }
    if (!doc.is_object()) return make_error("parse", file + ": not a JSON object");
  }
  if (!doc.contains("auths") || !doc["auths"].is_object()) doc["auths"] = nlohmann::json::object();
  edit(doc["auths"]);
  std::string dir = file.substr(0, file.rfind('/') == std::string::npos ? 0 : file.rfind('/'));
  if (!dir.empty()) FORKER_TRY(mkdir_all(dir, 0700));
  std::string tmpl = (dir.empty() ? "." : dir) + "/.auth.json.XXXXXX";
  UniqueFd fd(::mkstemp(tmpl.data()));  // mode 0600
  if (!fd) return sys_error("mkstemp", tmpl);
  std::string text = doc.dump(1, '\t') + "\n";
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Error e = sys_error("write", tmpl);
      ::unlink(tmpl.c_str());
      return e;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) < 0 || ::rename(tmpl.c_str(), file.c_str()) < 0) {
    Error e = sys_error("write", file);
    ::unlink(tmpl.c_str());
    return e;
  }
  return ok();
}

// Removes every entry of AUTHS that names the registry KEY, however it is spelled.
void erase_registry(nlohmann::json& auths, const std::string& key) {
  for (auto it = auths.begin(); it != auths.end();) {
    if (normalize_auth_key(it.key()) == key) {
      it = auths.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace

Status save_credentials(std::string_view registry, const Credentials& creds, const std::string& file) {
  std::string key = normalize_auth_key(registry);
  return edit_auth_file(file, [&](nlohmann::json& auths) {
    // Drop other spellings of the same registry so that lookups see the new entry.
    erase_registry(auths, key);
    auths[key] = {{"auth", base64_encode(creds.username + ":" + creds.password)}};
  }).context("save credentials for " + key);
}

Status remove_credentials(std::string_view registry, const std::string& file) {
  if (!path_exists(file)) return ok();
  std::string key = normalize_auth_key(registry);
  return edit_auth_file(file, [&](nlohmann::json& auths) { erase_registry(auths, key); })
      .context("remove credentials for " + key);
}

}  // namespace forker::image
