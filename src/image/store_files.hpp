// File primitives of the image store: durable writes (temp name, fsync, rename, fsync of the
// directory), flock-based locks that survive their file being unlinked, and disk usage of a tree.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "image/store.hpp"

namespace forker::image::detail {

std::string parent_dir(const std::string& path);
Status fsync_dir(const std::string& dir);

// Writes DATA to TEMP_PATH (which must not exist), fsyncs it, renames it to FINAL_PATH and
// fsyncs FINAL_PATH's directory. On failure the temp file is gone and FINAL_PATH untouched.
Status write_durable(const std::string& temp_path, const std::string& final_path,
                     std::string_view data, mode_t mode);

// Blocks until PATH (created if missing) is flocked. Retries when the file was unlinked
// between open and flock (prune removes lock files it holds), so two holders of "one" lock
// can never sit on different inodes.
Result<FileLock> acquire_lock(const std::string& path, bool exclusive);
// Non-blocking exclusive attempt: a held FileLock, or nullopt when someone else holds it. A
// missing file counts as free and is not created (the lock is returned unheld).
Result<std::optional<FileLock>> try_lock(const std::string& path);

// Bytes a tree occupies on disk (st_blocks * 512; hard links counted once). Does not cross
// mount points (a mounted container rootfs is not counted) and does not follow symlinks. A
// missing path is 0.
Result<int64_t> tree_bytes(const std::string& path);

// The names in DIR, without "." and "..", sorted. A missing DIR is an error.
Result<std::vector<std::string>> list_dir(const std::string& dir);

// ROOT/index.json as JSON, with "manifests" checked to be an array (added when absent).
Result<nlohmann::json> read_index(const std::string& root);

}  // namespace forker::image::detail
