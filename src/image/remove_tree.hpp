// The fd-relative half of remove_tree() (declared in layer_unpack.hpp), for callers that hold a
// directory fd already: the unpacker replacing a directory entry with a file.
#pragma once

#include <string>

#include "core/error.hpp"

namespace forker::image {

// Removes NAME under PARENT_FD like rm -rf, without following symlinks or entering other
// mounts; errors name SHOWN_PATH (and what lies under it). A missing NAME is not an error.
Status remove_tree_at(int parent_fd, const std::string& name, const std::string& shown_path);

}  // namespace forker::image
