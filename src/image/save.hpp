// `forker save`: images as one OCI image-layout tar (oci-layout, index.json naming each image by
// org.opencontainers.image.ref.name, blobs/sha256/...), which `forker import`, skopeo's
// oci-archive: transport and umoci (once extracted) all read.
#pragma once

#include <string>
#include <vector>

#include "core/error.hpp"
#include "image/store.hpp"

namespace forker::image {

// Writes the archive of IMAGES (each named by its ImageRecord::name) to OUT_FD. Blobs shared
// by several images are written once. The tar is deterministic: same images, same bytes.
Status write_oci_archive(const Store& store, const std::vector<ImageRecord>& images, int out_fd);

// Writes the archive to PATH through a temporary name beside it: PATH appears whole or not at
// all.
Status save_oci_archive(const Store& store, const std::vector<ImageRecord>& images,
                        const std::string& path);

}  // namespace forker::image
