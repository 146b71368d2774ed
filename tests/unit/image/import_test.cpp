#include "image/import.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>

#include "cli/forker/format.hpp"
#include "image/layer_unpack.hpp"
#include "support/temp_dir.hpp"

namespace forker::image {
namespace {

using ::forker::test::TempDir;

void write_tar(const std::string& path, const std::vector<std::pair<std::string, std::string>>& files) {
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
  for (const auto& [name, content] : files) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<int64_t>(content.size()));
    archive_write_header(a, e);
    archive_write_data(a, content.data(), content.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

TEST(ImportDetect, ClassifiesByTopLevelMembers) {
  EXPECT_EQ(classify_members({"abc/layer.tar", "abc.json", "manifest.json", "repositories"}),
            ArchiveKind::kDockerSave);
  EXPECT_EQ(classify_members({"./", "./manifest.json", "./blobs/sha256/aa"}),
            ArchiveKind::kDockerSave);
  EXPECT_EQ(classify_members({"oci-layout", "index.json", "blobs/sha256/aa"}),
            ArchiveKind::kOciLayout);
  // index.json alone (or nested) is not a layout: that is a rootfs that happens to hold one.
  EXPECT_EQ(classify_members({"index.json", "etc/passwd"}), ArchiveKind::kRootfs);
  EXPECT_EQ(classify_members({"./", "./bin/", "./bin/sh", "./etc/manifest.json"}),
            ArchiveKind::kRootfs);
}

TEST(ImportDetect, ReadsTarsAndDirectoriesAndRefusesOtherFiles) {
  TempDir dir;
  std::string docker = dir.path() + "/docker.tar", oci = dir.path() + "/oci.tar",
              rootfs = dir.path() + "/rootfs.tar", junk = dir.path() + "/junk";
  write_tar(docker, {{"manifest.json", "[]"}, {"x/layer.tar", ""}});
  write_tar(oci, {{"oci-layout", "{}"}, {"index.json", "{}"}});
  write_tar(rootfs, {{"etc/hostname", "h\n"}});
  std::ofstream(junk) << "this is not an archive\n";
  EXPECT_EQ(*detect_archive_kind(docker), ArchiveKind::kDockerSave);
  EXPECT_EQ(*detect_archive_kind(oci), ArchiveKind::kOciLayout);
  EXPECT_EQ(*detect_archive_kind(rootfs), ArchiveKind::kRootfs);
  auto bad = detect_archive_kind(junk);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("Unrecognized archive format"), std::string::npos)
      << bad.error().message();
  // A directory is an OCI layout only with its oci-layout file.
  EXPECT_FALSE(detect_archive_kind(dir.path()));
  std::ofstream(dir.path() + "/oci-layout") << "{\"imageLayoutVersion\":\"1.0.0\"}";
  EXPECT_EQ(*detect_archive_kind(dir.path()), ArchiveKind::kOciLayout);
}

TEST(ImportMemberPath, AcceptsPlainRelativePathsOnly) {
  EXPECT_EQ(*check_member_path("abc/layer.tar"), "abc/layer.tar");
  EXPECT_EQ(*check_member_path("./blobs/sha256/aa"), "blobs/sha256/aa");
  for (const char* bad : {"", "/etc/passwd", "../x", "a/../../b", "a/..", "a//b", "a/./b", "a/",
                          "."}) {
    auto r = check_member_path(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_NE(r.error().message().find("unsafe archive path"), std::string::npos);
    }
  }
}

TEST(DockerSaveManifest, ParsesEntries) {
  auto images = parse_docker_save_manifest(R"([
    {"Config":"0123.json","RepoTags":["busybox:latest","x/y:1"],"Layers":["a/layer.tar","b/layer.tar"]},
    {"Config":"blobs/sha256/ff","RepoTags":null,"Layers":[]}])");
  ASSERT_TRUE(images) << images.error().message();
  ASSERT_EQ(images->size(), 2u);
  EXPECT_EQ((*images)[0].config, "0123.json");
  EXPECT_EQ((*images)[0].repo_tags, (std::vector<std::string>{"busybox:latest", "x/y:1"}));
  EXPECT_EQ((*images)[0].layers, (std::vector<std::string>{"a/layer.tar", "b/layer.tar"}));
  EXPECT_TRUE((*images)[1].repo_tags.empty());
}

TEST(DockerSaveManifest, RefusesHostilePathsAndBadShapes) {
  const char* bad[] = {
      R"([{"Config":"c.json","Layers":["../../etc/shadow"]}])",
      R"([{"Config":"c.json","Layers":["a/../../b/layer.tar"]}])",
      R"([{"Config":"c.json","Layers":["/abs/layer.tar"]}])",
      R"([{"Config":"../c.json","Layers":[]}])",
      R"([{"Layers":["a/layer.tar"]}])",
      R"([{"Config":"c.json","Layers":[7]}])",
      R"({"Config":"c.json","Layers":[]})",
      R"([])",
      "not json",
  };
  for (const char* text : bad) EXPECT_FALSE(parse_docker_save_manifest(text)) << text;
}

TEST(ImageNames, NormalizeAndFamiliar) {
  EXPECT_EQ(*normalize_image_name("busybox"), "docker.io/library/busybox:latest");
  EXPECT_EQ(*normalize_image_name("me/app:1"), "docker.io/me/app:1");
  EXPECT_EQ(*normalize_image_name("localhost:5000/a/b:t"), "localhost:5000/a/b:t");
  EXPECT_FALSE(normalize_image_name("UPPER"));
  EXPECT_FALSE(normalize_image_name(""));
  auto f = familiar_name("docker.io/library/busybox:latest");
  EXPECT_EQ(f.repository, "busybox");
  EXPECT_EQ(f.tag, "latest");
  f = familiar_name("localhost:5000/a/b:t");
  EXPECT_EQ(f.repository, "localhost:5000/a/b");
  EXPECT_EQ(f.tag, "t");
}

TEST(CliFormat, HumanSizeLikeDocker) {
  using cli::human_size;
  EXPECT_EQ(human_size(0), "0B");
  EXPECT_EQ(human_size(999), "999B");
  EXPECT_EQ(human_size(1000), "1kB");
  EXPECT_EQ(human_size(1536), "1.54kB");
  EXPECT_EQ(human_size(4261234), "4.26MB");
  EXPECT_EQ(human_size(4261234, 4), "4.261MB");
  EXPECT_EQ(human_size(999960), "1MB");  // not "1e+03kB"
  EXPECT_EQ(human_size(77.3e9), "77.3GB");
}

TEST(CliFormat, HumanDurationLikeDocker) {
  using cli::human_duration;
  EXPECT_EQ(human_duration(0), "Less than a second");
  EXPECT_EQ(human_duration(1), "1 second");
  EXPECT_EQ(human_duration(45), "45 seconds");
  EXPECT_EQ(human_duration(90), "About a minute");
  EXPECT_EQ(human_duration(17 * 60), "17 minutes");
  EXPECT_EQ(human_duration(3600 + 600), "About an hour");
  EXPECT_EQ(human_duration(2 * 3600), "2 hours");
  EXPECT_EQ(human_duration(47 * 3600), "47 hours");
  EXPECT_EQ(human_duration(3 * 86400), "3 days");
  EXPECT_EQ(human_duration(20 * 86400), "2 weeks");
  EXPECT_EQ(human_duration(90 * 86400), "3 months");
  EXPECT_EQ(human_duration(3 * 365 * 86400), "3 years");
}

TEST(CliFormat, ParsesRfc3339AndAge) {
  using cli::parse_rfc3339;
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339("2024-05-01T12:00:00.123456789Z"), 1714564800);
  EXPECT_EQ(parse_rfc3339("2024-05-01T14:00:00+02:00"), 1714564800);
  EXPECT_EQ(parse_rfc3339("2024-05-01T10:30:00-01:30"), 1714564800);
  EXPECT_FALSE(parse_rfc3339(""));
  EXPECT_FALSE(parse_rfc3339("2024-05-01"));
  EXPECT_FALSE(parse_rfc3339("2024-05-01T12:00:00"));
  EXPECT_EQ(cli::created_ago("2024-05-01T12:00:00Z", 1714564800 + 2 * 3600), "2 hours ago");
  EXPECT_EQ(cli::created_ago("", 0), "N/A");
}

}  // namespace
}  // namespace forker::image
