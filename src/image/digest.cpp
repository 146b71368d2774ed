#include "image/digest.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <unistd.h>

#include "core/unique_fd.hpp"

namespace forker::image {

Result<Digest> Digest::parse(std::string_view text) {
  constexpr std::string_view kPrefix = "sha256:";
  auto bad = [&] { return make_error("parse digest", std::string(text)); };
  if (!text.starts_with(kPrefix)) return bad();
  std::string_view hex = text.substr(kPrefix.size());
  if (hex.size() != 64) return bad();
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return bad();
  }
  return Digest{"sha256", std::string(hex)};
}

struct Sha256::Context {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ~Context() { EVP_MD_CTX_free(md); }
};

namespace {
// SHA-256 from the default provider, fetched once. OpenSSL's own start-up would read
// openssl.cnf and walk the engine tables (~100 page faults on every `forker run`); a digest of
// our own content needs neither.
const EVP_MD* sha256_md() {
  static const EVP_MD* md = [] {
    OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ADD_ALL_CIPHERS |
                            OPENSSL_INIT_NO_ADD_ALL_DIGESTS,
                        nullptr);
    const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched ? fetched : EVP_sha256();
  }();
  return md;
}
}  // namespace

Sha256::Sha256() : ctx_(std::make_unique<Context>()) {
  EVP_DigestInit_ex2(ctx_->md, sha256_md(), nullptr);
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(const void* data, size_t size) {
  EVP_DigestUpdate(ctx_->md, data, size);
  bytes_ += size;
}

Digest Sha256::finish() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_->md, out, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    hex.push_back(kHex[out[i] >> 4]);
    hex.push_back(kHex[out[i] & 0xf]);
  }
  return Digest{"sha256", std::move(hex)};
}

Digest sha256_of(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish();
}

Result<Digest> sha256_of_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return sys_error("open", path);
  Sha256 h;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("read", path);
    }
    if (n == 0) break;
    h.update(buf, static_cast<size_t>(n));
  }
  return h.finish();
}

}  // namespace forker::image
