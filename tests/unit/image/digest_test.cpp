#include "image/digest.hpp"

#include <gtest/gtest.h>

namespace forker::image {
namespace {

TEST(Digest, ParsesSha256AndRefusesEverythingElse) {
  auto d = Digest::parse("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->short_id(), "e3b0c44298fc");
  for (const char* bad : {"", "sha256:", "sha512:e3b0", "sha256:../../etc/passwd",
                          "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                          "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"}) {
    EXPECT_FALSE(Digest::parse(bad)) << bad;
  }
}

TEST(Sha256, MatchesKnownVectorsIncrementally) {
  EXPECT_EQ(sha256_of("").hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 h;
  h.update("a");
  h.update("bc");
  EXPECT_EQ(h.bytes(), 3u);
  EXPECT_EQ(h.finish().hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace forker::image
