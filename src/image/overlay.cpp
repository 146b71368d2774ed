#include "image/overlay.hpp"

#include "image/store.hpp"

namespace forker::image {

Status mount_overlay(const std::vector<std::string>& lowers, const std::string& upper,
                     const std::string& work, const std::string& target) {
  return linux::mount_overlay(lowers, upper, work, target);
}

}  // namespace forker::image
