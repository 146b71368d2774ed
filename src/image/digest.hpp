// Content addresses: "sha256:<64 lowercase hex>" and a streaming SHA-256 (OpenSSL EVP).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace forker::image {

struct Digest {
  std::string algorithm;  // "sha256" (the only one accepted)
  std::string hex;        // 64 lowercase hex digits

  // Accepts only "sha256:" + 64 lowercase hex digits; anything else (other algorithms, upper
  // case, path characters) is an error naming the text, so a digest is always safe as a file name.
  static Result<Digest> parse(std::string_view text);
  std::string str() const { return algorithm + ":" + hex; }
  // The first 12 hex digits, as docker shows image ids.
  std::string short_id() const { return hex.substr(0, 12); }
  bool operator==(const Digest&) const = default;
};

// Incremental SHA-256. update() any number of times, then finish() once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void update(const void* data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  Digest finish();
  uint64_t bytes() const { return bytes_; }

 private:
  struct Context;
  std::unique_ptr<Context> ctx_;
  uint64_t bytes_ = 0;
};

Digest sha256_of(std::string_view data);
// Hashes a whole file; errors name the path.
Result<Digest> sha256_of_file(const std::string& path);

}  // namespace forker::image
