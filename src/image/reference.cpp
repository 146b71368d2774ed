#include "image/reference.hpp"

#include <algorithm>
#include <regex>

namespace forker::image {
namespace {

constexpr size_t kMaxNameLength = 255;  // docker's limit on registry/repository

Error bad_reference(std::string_view text, std::string_view why) {
  return make_error("invalid image reference \"" + std::string(text) + "\":", std::string(why));
}

bool is_registry_component(std::string_view first) {
  return first.find_first_of(".:") != std::string_view::npos || first == "localhost";
}

// host[:port] with a DNS name or IPv4, or [ipv6][:port].
bool valid_registry(std::string_view r) {
  static const std::regex kHost(
      R"(^(([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])(\.([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$)");
  return std::regex_match(r.begin(), r.end(), kHost);
}

bool valid_component(std::string_view c) {
  static const std::regex kComponent(R"(^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$)");
  return std::regex_match(c.begin(), c.end(), kComponent);
}

bool valid_tag(std::string_view t) {
  static const std::regex kTag(R"(^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$)");
  return std::regex_match(t.begin(), t.end(), kTag);
}

}  // namespace

Result<Reference> Reference::parse(std::string_view text) {
  if (text.empty()) return bad_reference(text, "empty");
  Reference ref;
  std::string_view rest = text;
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    auto digest = Digest::parse(rest.substr(at + 1));
    if (!digest) return bad_reference(text, "bad digest \"" + std::string(rest.substr(at + 1)) + "\"");
    ref.digest = std::move(*digest);
    rest = rest.substr(0, at);
  }
  // A tag is a ':' after the last '/' (a ':' before it is a registry port).
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    std::string_view tag = rest.substr(colon + 1);
    if (!valid_tag(tag)) return bad_reference(text, "bad tag \"" + std::string(tag) + "\"");
    ref.tag = std::string(tag);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return bad_reference(text, "no repository name");

  std::string_view path = rest;
  size_t first_slash = rest.find('/');
  if (first_slash != std::string_view::npos && is_registry_component(rest.substr(0, first_slash))) {
    ref.registry = std::string(rest.substr(0, first_slash));
    path = rest.substr(first_slash + 1);
    if (!valid_registry(ref.registry))
      return bad_reference(text, "bad registry \"" + ref.registry + "\"");
    if (ref.registry == "index.docker.io") ref.registry = std::string(kDockerHub);
  } else {
    ref.registry = std::string(kDockerHub);
  }
  if (path.empty()) return bad_reference(text, "no repository name");
  for (size_t start = 0;;) {
    size_t end = path.find('/', start);
    std::string_view component = path.substr(start, end == std::string_view::npos ? end : end - start);
    if (!valid_component(component)) {
      bool upper = std::any_of(component.begin(), component.end(),
                               [](char c) { return c >= 'A' && c <= 'Z'; });
      return bad_reference(text, upper ? "repository name must be lowercase"
                                       : "bad repository component \"" + std::string(component) + "\"");
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  ref.repository = std::string(path);
  if (ref.registry == kDockerHub && ref.repository.find('/') == std::string::npos)
    ref.repository = "library/" + ref.repository;
  if (ref.name().size() > kMaxNameLength)
    return bad_reference(text, "name longer than " + std::to_string(kMaxNameLength) + " characters");
  if (ref.tag.empty() && !ref.digest) ref.tag = "latest";
  return ref;
}

std::string Reference::str() const {
  std::string out = name();
  if (!tag.empty()) out += ":" + tag;
  if (digest) out += "@" + digest->str();
  return out;
}

std::string Reference::familiar() const {
  std::string out;
  constexpr std::string_view kLibrary = "library/";
  if (registry == kDockerHub) {
    std::string_view repo = repository;
    if (repo.starts_with(kLibrary) && repo.find('/', kLibrary.size()) == std::string_view::npos)
      repo.remove_prefix(kLibrary.size());
    out = std::string(repo);
  } else {
    out = name();
  }
  if (!tag.empty()) out += ":" + tag;
  if (digest) out += "@" + digest->str();
  return out;
}

std::string Reference::api_host() const {
  return registry == kDockerHub ? "registry-1.docker.io" : registry;
}

Reference Reference::with_digest(const Digest& d) const {
  Reference r = *this;
  r.digest = d;
  return r;
}

bool is_loopback_registry(std::string_view registry) {
  std::string_view host = registry;
  if (host.starts_with("[")) {
    size_t close = host.find(']');
    if (close == std::string_view::npos) return false;
    host = host.substr(1, close - 1);
    return host == "::1";
  }
  if (size_t colon = host.rfind(':'); colon != std::string_view::npos) host = host.substr(0, colon);
  if (host == "localhost") return true;
  // 127.0.0.0/8, dotted quad only.
  static const std::regex kLoopback(R"(^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$)");
  return std::regex_match(host.begin(), host.end(), kLoopback);
}

}  // namespace forker::image
