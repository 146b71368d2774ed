// The layer stream: an outer libarchive reader in "raw" format undoes gzip/zstd/xz (detected by
// content) and hands out decompressed blocks; each block is hashed on its way to an inner
// reader that parses the tar. The diff id thus covers every uncompressed byte, the padding and
// anything after the end-of-archive blocks included, in one pass without copying.
#include "image/layer_unpack.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <memory>
#include <string>

#include "image/layer_writer.hpp"

namespace forker::image {
namespace {

// Large enough that a big file is a handful of syscalls per MiB, small enough to stay in cache.
constexpr size_t kReadBlock = 128 * 1024;

struct ArchiveFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveFree>;

std::string archive_message(archive* a) {
  const char* why = archive_error_string(a);
  return why != nullptr ? why : "unknown error";
}

class TarStream {
 public:
  static Result<std::unique_ptr<TarStream>> open(int input_fd) {
    auto stream = std::unique_ptr<TarStream>(new TarStream());
    FORKER_TRY(stream->open_outer(input_fd));
    FORKER_TRY(stream->open_inner());
    return stream;
  }

  archive* tar() const { return inner_.get(); }

  // The error of a failed inner read: the decompressor's when it was the one that failed.
  Error read_error(std::string_view where) const {
    std::string why = outer_error_.empty() ? archive_message(inner_.get()) : outer_error_;
    return make_error(std::string(where) + ": " + why);
  }

  // Hashes what follows the end-of-archive blocks (docker's diff id includes it).
  Status drain() {
    while (!outer_eof_) {
      const void* buf = nullptr;
      if (next_block(&buf) < 0) return make_error("read layer after the tar end: " + outer_error_);
    }
    return ok();
  }

  Sha256& hash() { return hash_; }

 private:
  TarStream() = default;

  Status open_outer(int input_fd) {
    outer_.reset(archive_read_new());
    if (!outer_) return make_error("archive_read_new");
    // ARCHIVE_WARN means libarchive would run an external program: not for untrusted input.
    if (archive_read_support_filter_gzip(outer_.get()) != ARCHIVE_OK ||
        archive_read_support_filter_zstd(outer_.get()) != ARCHIVE_OK)
      return make_error("libarchive lacks built-in gzip or zstd support");
    (void)archive_read_support_filter_xz(outer_.get());  // a bonus for `forker import x.tar.xz`
    if (archive_read_support_format_raw(outer_.get()) != ARCHIVE_OK)
      return make_error("libarchive lacks the raw format");
    input_fd_ = input_fd;
    input_buffer_ = std::make_unique<char[]>(kReadBlock);
    if (archive_read_open(outer_.get(), this, nullptr, &TarStream::input_callback, nullptr) !=
        ARCHIVE_OK) {
      if (input_bytes_ == 0 && input_errno_ == 0) return make_error("read layer: empty stream");
      return make_error("read layer: " + archive_message(outer_.get()));
    }
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(outer_.get(), &entry);
    if (r == ARCHIVE_EOF) {
      outer_eof_ = true;  // an empty stream: the tar reader will say so
    } else if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      if (input_bytes_ == 0 && input_errno_ == 0) return make_error("read layer: empty stream");
      return make_error("read layer: " + archive_message(outer_.get()));
    }
    return ok();
  }

  Status open_inner() {
    inner_.reset(archive_read_new());
    if (!inner_) return make_error("archive_read_new");
    if (archive_read_support_format_tar(inner_.get()) != ARCHIVE_OK)
      return make_error("libarchive lacks the tar format");
    if (archive_read_open(inner_.get(), this, nullptr, &TarStream::read_callback, nullptr) !=
        ARCHIVE_OK)
      return read_error("read layer: not a tar archive");
    return ok();
  }

  // Next decompressed block, hashed; 0 at the end, -1 on a decompression error.
  la_ssize_t next_block(const void** buf) {
    if (outer_eof_) return 0;
    size_t len = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(outer_.get(), buf, &len, &offset);
    if (r == ARCHIVE_EOF) {
      outer_eof_ = true;
      return 0;
    }
    // ARCHIVE_RETRY ("Damaged tar archive") is above ARCHIVE_WARN but still a failure.
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      outer_error_ = archive_message(outer_.get());
      return -1;
    }
    hash_.update(*buf, len);
    return static_cast<la_ssize_t>(len);
  }

  // The compressed input, read in large blocks (a pipe from a download or a blob file).
  static la_ssize_t input_callback(archive* a, void* self, const void** buf) {
    auto* stream = static_cast<TarStream*>(self);
    ssize_t n;
    do {
      n = read(stream->input_fd_, stream->input_buffer_.get(), kReadBlock);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      stream->input_errno_ = errno;
      archive_set_error(a, errno, "read input: %s", strerror(errno));
      return -1;
    }
    stream->input_bytes_ += static_cast<uint64_t>(n);
    *buf = stream->input_buffer_.get();
    return n;
  }

  static la_ssize_t read_callback(archive* a, void* self, const void** buf) {
    auto* stream = static_cast<TarStream*>(self);
    la_ssize_t n = stream->next_block(buf);
    if (n < 0) archive_set_error(a, -1, "%s", stream->outer_error_.c_str());
    return n;
  }

  int input_fd_ = -1;
  std::unique_ptr<char[]> input_buffer_;
  uint64_t input_bytes_ = 0;
  int input_errno_ = 0;
  ArchivePtr outer_;
  ArchivePtr inner_;
  Sha256 hash_;
  bool outer_eof_ = false;
  std::string outer_error_;
};

}  // namespace

Result<UnpackResult> unpack_layer(int input_fd, const std::string& dest_dir,
                                  const UnpackOptions& options) {
  LayerWriter writer = FORKER_TRY(LayerWriter::open(dest_dir, options));
  auto stream = FORKER_TRY(TarStream::open(input_fd));
  UnpackResult result;
  std::string last_entry;
  for (;;) {
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(stream->tar(), &entry);
    if (r == ARCHIVE_EOF) break;
    // ARCHIVE_RETRY ("Damaged tar archive") is above ARCHIVE_WARN but still a failure.
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      if (result.entries == 0) return stream->read_error("read layer: not a tar archive");
      return stream->read_error("read layer after entry " + quote_entry(last_entry));
    }
    FORKER_TRY(writer.write(stream->tar(), entry));
    ++result.entries;
    const char* name = archive_entry_pathname(entry);
    last_entry = name != nullptr ? name : "";
    if (writer.ended_after_data()) break;
  }
  FORKER_TRY(writer.finish());
  FORKER_TRY(stream->drain());
  result.tar_bytes = stream->hash().bytes();
  result.diff_id = stream->hash().finish();
  if (options.expected_diff_id && *options.expected_diff_id != result.diff_id)
    return make_error("verify layer diff id: expected " + options.expected_diff_id->str() +
                      ", got " + result.diff_id.str());
  return result;
}

}  // namespace forker::image
