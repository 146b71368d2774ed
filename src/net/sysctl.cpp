#include "net/sysctl.hpp"

#include "core/file.hpp"

namespace forker::net {
namespace {

// A relative path that stays below /proc/sys: no empty, "." or ".." components.
Result<std::string> sysctl_path(const std::string& key) {
  bool ok = !key.empty() && key.front() != '/' && key.back() != '/';
  size_t start = 0;
  while (ok && start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string::npos) end = key.size();
    std::string_view part(key.data() + start, end - start);
    ok = !part.empty() && part != "." && part != "..";
    start = end + 1;
  }
  if (!ok) return make_error("sysctl", key + ": not a path below /proc/sys");
  return "/proc/sys/" + key;
}

}  // namespace

Status write_sysctl(const std::string& key, std::string_view value) {
  std::string path = FORKER_TRY(sysctl_path(key));
  return write_file(path, value);
}

Result<std::string> read_sysctl(const std::string& key) {
  std::string path = FORKER_TRY(sysctl_path(key));
  std::string value = FORKER_TRY(read_file(path));
  if (!value.empty() && value.back() == '\n') value.pop_back();
  return value;
}

}  // namespace forker::net
