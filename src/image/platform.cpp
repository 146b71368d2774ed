#include "image/platform.hpp"

#include <sys/utsname.h>

#include <utility>

#include "core/strings.hpp"

namespace forker::image {
namespace {

// Kernel (uname -m) names to OCI/GOARCH architecture and variant.
std::pair<std::string, std::string> normalize_arch(std::string_view arch, std::string_view variant) {
  if (arch == "x86_64" || arch == "x86-64") return {"amd64", std::string(variant)};
  if (arch == "aarch64") return {"arm64", variant.empty() ? "v8" : std::string(variant)};
  if (arch == "i386" || arch == "i486" || arch == "i586" || arch == "i686") return {"386", ""};
  if (arch == "armhf" || arch == "armv7l" || arch == "armv7") return {"arm", "v7"};
  if (arch == "armel" || arch == "armv6l" || arch == "armv6") return {"arm", "v6"};
  if (arch == "armv5l" || arch == "armv5tel") return {"arm", "v5"};
  return {std::string(arch), std::string(variant)};
}

// arm64 images usually omit the variant; the only arm64 variant in use is v8.
std::string effective_variant(const Platform& p) {
  if (p.architecture == "arm64" && p.variant.empty()) return "v8";
  return p.variant;
}

}  // namespace

Platform Platform::host() {
  utsname u{};
  ::uname(&u);
  auto [arch, variant] = normalize_arch(u.machine, "");
  return Platform{"linux", arch, variant};
}

Result<Platform> Platform::parse(std::string_view text) {
  auto parts = split(text, '/');
  auto bad = [&] {
    return make_error("invalid platform \"" + std::string(text) + "\":",
                      "expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8");
  };
  if (parts.size() < 2 || parts.size() > 3) return bad();
  for (const auto& p : parts) {
    if (p.empty()) return bad();
    for (char c : p) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
      if (!ok) return bad();
    }
  }
  auto [arch, variant] = normalize_arch(parts[1], parts.size() == 3 ? parts[2] : "");
  return Platform{parts[0], arch, variant};
}

std::string Platform::str() const {
  std::string out = os + "/" + architecture;
  if (!variant.empty()) out += "/" + variant;
  return out;
}

bool Platform::accepts(const Platform& candidate) const {
  if (candidate.os != os || candidate.architecture != architecture) return false;
  if (variant.empty()) return true;
  return effective_variant(candidate) == effective_variant(*this);
}

}  // namespace forker::image
