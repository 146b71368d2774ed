#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "image/http.hpp"
#include "image/registry.hpp"

namespace forker::image {
namespace {

using nlohmann::json;

std::string digest_of(char c) { return "sha256:" + std::string(64, c); }

json descriptor(std::string_view media, char c, int64_t size) {
  return {{"mediaType", media}, {"digest", digest_of(c)}, {"size", size}};
}

json manifest(std::vector<json> layers, std::string_view config_type = kMediaOciConfig) {
  return {{"schemaVersion", 2}, {"mediaType", kMediaOciManifest},
          {"config", descriptor(config_type, 'c', 10)}, {"layers", layers}};
}

TEST(Manifest, ParsesLayersOfEverySupportedType) {
  auto m = parse_image_manifest(manifest({descriptor(kMediaOciLayerGzip, '1', 100), descriptor(kMediaOciLayerZstd, '2', 200),
                                          descriptor(kMediaOciLayer, '3', 300), descriptor(kMediaDockerLayerGzip, '4', 400)})
                                    .dump());
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->config.digest.str(), digest_of('c'));
  ASSERT_EQ(m->layers.size(), 4u);
  EXPECT_EQ(m->layers[1].media_type, kMediaOciLayerZstd);
  EXPECT_EQ(m->layers[3].size, 400);
}

TEST(Manifest, RefusesForeignLayersArtifactsAndBrokenDescriptors) {
  auto foreign = parse_image_manifest(
      manifest({descriptor("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", '1', 1)}).dump());
  ASSERT_FALSE(foreign);
  EXPECT_NE(foreign.error().message().find("non-distributable"), std::string::npos);
  auto nondist = parse_image_manifest(
      manifest({descriptor("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", '1', 1)}).dump());
  EXPECT_FALSE(nondist);
  auto odd = parse_image_manifest(manifest({descriptor("application/x-tar+lz4", '1', 1)}).dump());
  ASSERT_FALSE(odd);
  EXPECT_NE(odd.error().message().find("application/x-tar+lz4"), std::string::npos);
  auto artifact = parse_image_manifest(manifest({}, "application/vnd.cncf.helm.config.v1+json").dump());
  ASSERT_FALSE(artifact);
  EXPECT_NE(artifact.error().message().find("not a container image"), std::string::npos);

  json bad_digest = manifest({descriptor(kMediaOciLayerGzip, '1', 1)});
  bad_digest["layers"][0]["digest"] = "sha256:../../etc/passwd";
  EXPECT_FALSE(parse_image_manifest(bad_digest.dump()));
  json negative = manifest({descriptor(kMediaOciLayerGzip, '1', -5)});
  EXPECT_FALSE(parse_image_manifest(negative.dump()));
  EXPECT_FALSE(parse_image_manifest("{"));
  EXPECT_FALSE(parse_image_manifest(R"({"schemaVersion":2})"));
}

TEST(Manifest, MediaTypeFromFieldHeaderOrShape) {
  EXPECT_EQ(*manifest_media_type(manifest({}).dump(), "application/json"), kMediaOciManifest);
  json docker = manifest({});
  docker["mediaType"] = kMediaDockerManifest;
  EXPECT_EQ(*manifest_media_type(docker.dump(), ""), kMediaDockerManifest);
  json bare = manifest({});
  bare.erase("mediaType");
  EXPECT_EQ(*manifest_media_type(bare.dump(), std::string(kMediaDockerManifest) + "; charset=utf-8"), kMediaDockerManifest);
  EXPECT_EQ(*manifest_media_type(bare.dump(), "application/json"), kMediaOciManifest);
  EXPECT_EQ(*manifest_media_type(R"({"schemaVersion":2,"manifests":[]})", ""), kMediaOciIndex);

  auto schema1 = manifest_media_type(R"({"schemaVersion":1,"name":"x","fsLayers":[]})", kMediaDockerSchema1Signed);
  ASSERT_FALSE(schema1);
  EXPECT_NE(schema1.error().message().find("unsupported"), std::string::npos);
  auto strange = manifest_media_type(R"({"schemaVersion":2})", "text/html");
  EXPECT_FALSE(strange);
}

TEST(Index, SelectsThePlatform) {
  json index = {{"schemaVersion", 2}, {"mediaType", kMediaOciIndex}, {"manifests", json::array()}};
  auto entry = [&](char c, json platform) {
    json d = descriptor(kMediaOciManifest, c, 10);
    if (!platform.is_null()) d["platform"] = platform;
    index["manifests"].push_back(d);
  };
  entry('a', {{"os", "linux"}, {"architecture", "amd64"}});
  entry('b', {{"os", "linux"}, {"architecture", "arm"}, {"variant", "v6"}});
  entry('c', {{"os", "linux"}, {"architecture", "arm"}, {"variant", "v7"}});
  entry('d', {{"os", "linux"}, {"architecture", "arm64"}});
  entry('e', {{"os", "linux"}, {"architecture", "arm64"}, {"variant", "v8"}});
  entry('f', {{"os", "unknown"}, {"architecture", "unknown"}});
  entry('0', nullptr);
  auto entries = parse_image_index(index.dump());
  ASSERT_TRUE(entries) << entries.error().message();
  ASSERT_EQ(entries->size(), 7u);

  auto pick = [&](Platform p) { return select_platform(*entries, p); };
  EXPECT_EQ(pick({"linux", "amd64", ""})->descriptor.digest.str(), digest_of('a'));
  EXPECT_EQ(pick({"linux", "arm", "v7"})->descriptor.digest.str(), digest_of('c'));
  EXPECT_EQ(pick({"linux", "arm", "v6"})->descriptor.digest.str(), digest_of('b'));
  EXPECT_EQ(pick({"linux", "arm64", "v8"})->descriptor.digest.str(), digest_of('e'));  // exact first
  EXPECT_EQ(pick({"linux", "arm64", ""})->descriptor.digest.str(), digest_of('d'));
  auto none = pick({"linux", "s390x", ""});
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message().find("linux/s390x"), std::string::npos);
  EXPECT_NE(none.error().message().find("linux/arm/v7"), std::string::npos);
  EXPECT_FALSE(parse_image_index(R"({"manifests": {}})"));
}

TEST(Http, DescribesRegistryErrorsAndResolvesRedirects) {
  http::Response r;
  r.status = 404;
  r.reason = "Not Found";
  r.body = R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]})";
  EXPECT_EQ(http::describe_status(r), "HTTP 404 Not Found (MANIFEST_UNKNOWN: manifest unknown)");
  r.body = "<html>bad gateway</html>";
  r.status = 502;
  r.reason = "";
  EXPECT_EQ(http::describe_status(r), "HTTP 502");
  EXPECT_TRUE(http::is_transient_status(503));
  EXPECT_TRUE(http::is_transient_status(429));
  EXPECT_FALSE(http::is_transient_status(404));

  EXPECT_EQ(*http::resolve_url("http://r:5000/v2/a/blobs/x", "/storage/y?sig=1"), "http://r:5000/storage/y?sig=1");
  EXPECT_EQ(*http::resolve_url("https://r/v2/a", "https://cdn.example/z"), "https://cdn.example/z");
  EXPECT_EQ(http::url_origin("https://r/v2/"), "https://r:443");
  EXPECT_EQ(http::url_origin("http://127.0.0.1:5000/v2/"), "http://127.0.0.1:5000");
  EXPECT_NE(http::url_origin("http://r:5000/"), http::url_origin("http://r:5001/"));
  EXPECT_EQ(http::escape("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
}

}  // namespace
}  // namespace forker::image
