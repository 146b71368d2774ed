// Paths inside a container's rootfs are resolved with openat2(RESOLVE_IN_ROOT), so a symlink in
// the image (even "../../etc") can never lead a mount or a mknod outside the rootfs.
#pragma once

#include <string>

#include "core/error.hpp"
#include "core/unique_fd.hpp"

namespace forker::linux {

// Opens PATH (absolute inside the root) relative to ROOT_FD. `resolve` adds RESOLVE_* flags.
Result<UniqueFd> open_in_root(int root_fd, const std::string& path, int flags,
                              unsigned long long resolve = 0);
// Creates every missing directory of PATH inside the root, then the last component as a
// directory or (last_is_file) an empty file, and returns an O_PATH fd to it.
Result<UniqueFd> mkdir_all_in_root(int root_fd, const std::string& path, bool last_is_file,
                                   mode_t mode = 0755);
// "/proc/self/fd/N": the magic link through which mount(2) reaches exactly that file.
std::string fd_path(int fd);
// Joins a container path onto a host directory for messages: ("/run/x/rootfs", "/proc").
std::string host_path(const std::string& rootfs, const std::string& path);

}  // namespace forker::linux
