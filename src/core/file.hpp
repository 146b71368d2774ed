// Small file helpers that report failures as Error values.
#pragma once

#include <string>
#include <string_view>

#include "core/error.hpp"

namespace forker {

Result<std::string> read_file(const std::string& path);
Result<std::string> read_file_at(int dirfd, const std::string& path);
// Writes the whole string to an existing file (cgroup files, /proc knobs): O_WRONLY, no create.
Status write_file(const std::string& path, std::string_view data);
Status write_file_at(int dirfd, const std::string& path, std::string_view data);
// Writes to PATH.tmp, fsyncs, renames over PATH.
Status write_file_atomic(const std::string& path, std::string_view data, int mode = 0644);
// The same; without SYNC readers still see the old or the new file whole, but a crash may
// lose the write (state that does not outlive the machine's uptime, a container's files).
Status write_file_replace(const std::string& path, std::string_view data, int mode, bool sync);
// mkdir -p for host paths.
Status mkdir_all(const std::string& path, int mode = 0755);
bool path_exists(const std::string& path);

}  // namespace forker
