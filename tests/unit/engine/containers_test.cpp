// Container records in a temp store root: JSON round trips and field errors, ids and names,
// name reservation (live, in progress, stale), lookup by name / id / prefix, list and groups.
#include "engine/containers.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "core/log.hpp"
#include "support/temp_dir.hpp"

namespace forker::engine {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using ::forker::test::TempDir;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ContainerRecord full_record() {
  ContainerRecord r;
  r.id = std::string(64, 'a');
  r.name = "web";
  r.image = "busybox";
  r.image_id = std::string(64, 'f');
  r.rootfs_dir = "";
  r.args = {"sh", "-c", "echo hi"};
  r.created = "2024-05-06T07:08:09.123456789Z";
  r.group = "web";
  r.replica = 3;
  r.auto_remove = true;
  r.detached = true;
  r.tty = true;
  r.restart_policy = "on-failure";
  r.restart_max = 5;
  r.stop_signal = "SIGINT";
  r.stop_timeout = 42;
  r.run_options = json{{"env", {"A=1"}}, {"memory", "64m"}};
  return r;
}

// A store root with containers/ as Store::create_snapshot leaves it.
class ContainerStoreTest : public ::testing::Test {
 protected:
  ContainerStoreTest() : store_(tmp_.path()) {
    fs::create_directories(tmp_.path() + "/containers");
  }

  // Makes containers/<id>/ and saves a record with NAME, CREATED, GROUP and REPLICA.
  ContainerRecord add(const std::string& id, const std::string& name, const std::string& created,
                      const std::string& group = "", int replica = 0) {
    ContainerRecord r;
    r.id = id;
    r.name = name;
    r.image = "busybox";
    r.created = created;
    r.group = group;
    r.replica = replica;
    fs::create_directories(store_.dir(id));
    EXPECT_TRUE(store_.save(r).has_value());
    if (!name.empty()) {
      auto st = store_.reserve_name(name, id);
      EXPECT_TRUE(st.has_value()) << st.error().message();
    }
    return r;
  }
  std::string names(const std::string& name) const { return tmp_.path() + "/names/" + name; }
  void age_link(const std::string& link, int seconds) {
    timespec times[2];
    ::clock_gettime(CLOCK_REALTIME, &times[0]);
    times[0].tv_sec -= seconds;
    times[1] = times[0];
    ASSERT_EQ(::utimensat(AT_FDCWD, link.c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
  }

  TempDir tmp_;
  ContainerStore store_;
};

// ---- JSON ----

TEST(ContainerRecordJson, RoundTripKeepsEveryField) {
  ContainerRecord r = full_record();
  auto back = parse_record(record_json(r).dump());
  ASSERT_TRUE(back.has_value()) << back.error().message();
  EXPECT_EQ(record_json(*back), record_json(r));
  EXPECT_EQ(back->id, r.id);
  EXPECT_EQ(back->args, r.args);
  EXPECT_EQ(back->replica, 3);
  EXPECT_TRUE(back->auto_remove);
  EXPECT_EQ(back->restart_policy, "on-failure");
  EXPECT_EQ(back->restart_max, 5);
  EXPECT_EQ(back->stop_signal, "SIGINT");
  EXPECT_EQ(back->stop_timeout, 42);
  EXPECT_EQ(back->run_options["memory"], "64m");
}

TEST(ContainerRecordJson, UsesSnakeCaseKeys) {
  json j = record_json(full_record());
  for (const char* key : {"id", "name", "image", "image_id", "rootfs_dir", "args", "created",
                          "group", "replica", "auto_remove", "detached", "tty", "restart_policy",
                          "restart_max", "stop_signal", "stop_timeout", "run_options", "network"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j.size(), 18u);
}

TEST(ContainerRecordJson, MissingFieldsTakeDefaults) {
  auto r = parse_record(R"({"id":"abc"})");
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->id, "abc");
  EXPECT_EQ(r->restart_policy, "no");
  EXPECT_EQ(r->stop_signal, "SIGTERM");
  EXPECT_EQ(r->stop_timeout, 10);
  EXPECT_FALSE(r->tty);
  EXPECT_TRUE(r->args.empty());
  EXPECT_TRUE(r->run_options.is_null());
}

TEST(ContainerRecordJson, ErrorsNameTheField) {
  auto missing = parse_record(R"({"name":"x"})");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().message(), "container.json: field 'id': missing");

  auto wrong = parse_record(R"({"id":"abc","replica":"two"})");
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().message(), "container.json: field 'replica': expected an integer");

  auto args = parse_record(R"({"id":"abc","args":["sh",1]})");
  ASSERT_FALSE(args.has_value());
  EXPECT_EQ(args.error().message(), "container.json: field 'args': expected an array of strings");

  auto tty = parse_record(R"({"id":"abc","tty":"yes"})");
  ASSERT_FALSE(tty.has_value());
  EXPECT_EQ(tty.error().message(), "container.json: field 'tty': expected a boolean");

  auto big = parse_record(R"({"id":"abc","stop_timeout":99999999999})");
  ASSERT_FALSE(big.has_value());
  EXPECT_EQ(big.error().message(), "container.json: field 'stop_timeout': value out of range");

  auto bad_id = parse_record(R"({"id":"../etc"})");
  ASSERT_FALSE(bad_id.has_value());
  EXPECT_THAT(bad_id.error().message(), HasSubstr("container.json: field 'id': invalid"));
}

TEST(ContainerRecordJson, RejectsNonObjectsAndBadJson) {
  auto bad = parse_record("{not json");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message(), "container.json: not valid JSON");
  auto arr = parse_record("[1,2]");
  ASSERT_FALSE(arr.has_value());
  EXPECT_EQ(arr.error().message(), "container.json: expected a JSON object");
}

TEST(ExitRecordJson, RoundTripKeepsEveryField) {
  ExitRecord e;
  e.exit_code = 137;
  e.started = "2024-01-01T00:00:00Z";
  e.finished = "2024-01-01T00:00:05Z";
  e.oom_killed = true;
  e.stopped_by_user = true;
  e.ignored_sigterm = true;
  e.restart_count = 4;
  e.error = "exec: no such file";
  json j = exit_json(e);
  EXPECT_EQ(j["exit_code"], 137);
  EXPECT_EQ(j["restart_count"], 4);
  auto back = parse_exit(j.dump());
  ASSERT_TRUE(back.has_value()) << back.error().message();
  EXPECT_EQ(back->exit_code, 137);
  EXPECT_EQ(back->started, e.started);
  EXPECT_EQ(back->finished, e.finished);
  EXPECT_TRUE(back->oom_killed);
  EXPECT_TRUE(back->stopped_by_user);
  EXPECT_TRUE(back->ignored_sigterm);
  EXPECT_EQ(back->restart_count, 4);
  EXPECT_EQ(back->error, e.error);
}

TEST(ExitRecordJson, ErrorsNameTheField) {
  auto wrong = parse_exit(R"({"exit_code":1,"oom_killed":1})");
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().message(), "exit.json: field 'oom_killed': expected a boolean");
  auto missing = parse_exit(R"({"started":""})");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().message(), "exit.json: field 'exit_code': missing");
}

// ---- ids and names ----

TEST(ContainerIds, NewIdIs64LowercaseHexAndFresh) {
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    std::string id = new_container_id();
    EXPECT_TRUE(std::regex_match(id, std::regex("[0-9a-f]{64}"))) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 50u);
}

TEST(ContainerIds, GeneratedNameIsDeterministicValidAndVaried) {
  std::string id = std::string(64, '7');
  EXPECT_EQ(generated_name(id), generated_name(id));
  std::set<std::string> names;
  for (int i = 0; i < 300; ++i) {
    std::string name = generated_name(new_container_id());
    EXPECT_TRUE(std::regex_match(name, std::regex("[a-z]+_[a-z]+"))) << name;
    EXPECT_TRUE(validate_name(name).has_value()) << name;
    names.insert(name);
  }
  // 1600 pairs: 300 random ids must not collapse onto a handful.
  EXPECT_GT(names.size(), 200u);
}

TEST(ContainerNames, ValidNames) {
  for (const char* n : {"a", "Z", "0", "web_1.prod-2", "a..b", "x-", "9_"})
    EXPECT_TRUE(validate_name(n).has_value()) << n;
  EXPECT_TRUE(validate_name(std::string(128, 'n')).has_value());
}

TEST(ContainerNames, InvalidNames) {
  for (const char* n : {"", "_x", ".x", "-x", ".", "..", "a/b", "a b", "a:b", "caf\xc3\xa9", "a\n"})
    EXPECT_FALSE(validate_name(n).has_value()) << n;
  EXPECT_FALSE(validate_name(std::string(129, 'n')).has_value());
  auto st = validate_name("a/b");
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().message(),
            "invalid container name 'a/b': only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
}

// ---- names/ ----

TEST_F(ContainerStoreTest, ReserveMakesSymlinkInPrivateNamesDir) {
  ASSERT_TRUE(store_.reserve_name("web", "id1").has_value());
  char buf[64] = {};
  ASSERT_GT(::readlink(names("web").c_str(), buf, sizeof buf - 1), 0);
  EXPECT_STREQ(buf, "id1");
  struct stat st;
  ASSERT_EQ(::stat((tmp_.path() + "/names").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST_F(ContainerStoreTest, ReserveSameIdTwiceIsFine) {
  ASSERT_TRUE(store_.reserve_name("web", "id1").has_value());
  EXPECT_TRUE(store_.reserve_name("web", "id1").has_value());
}

TEST_F(ContainerStoreTest, ReserveRejectsBadNames) {
  auto st = store_.reserve_name("../x", "id1");
  ASSERT_FALSE(st.has_value());
  EXPECT_THAT(st.error().message(), HasSubstr("invalid container name '../x'"));
  EXPECT_FALSE(fs::exists(tmp_.path() + "/x"));
}

TEST_F(ContainerStoreTest, ReserveConflictsWithLiveContainer) {
  add("id1", "web", "2024-01-01T00:00:00Z");
  auto st = store_.reserve_name("web", "id2");
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().message(),
            "the container name \"/web\" is already in use by container \"id1\". You have to "
            "remove (or rename) that container to be able to reuse that name.");
  char buf[64] = {};
  ASSERT_GT(::readlink(names("web").c_str(), buf, sizeof buf - 1), 0);
  EXPECT_STREQ(buf, "id1");
}

TEST_F(ContainerStoreTest, ReserveConflictsWithContainerBeingCreated) {
  // The directory exists but container.json is not written yet, and the link is fresh.
  fs::create_directories(store_.dir("id1"));
  ASSERT_TRUE(store_.reserve_name("web", "id1").has_value());
  auto st = store_.reserve_name("web", "id2");
  ASSERT_FALSE(st.has_value());
  EXPECT_THAT(st.error().message(), HasSubstr("already in use by container \"id1\""));
}

TEST_F(ContainerStoreTest, ReserveReplacesEntryOfOldUnfinishedCreate) {
  fs::create_directories(store_.dir("id1"));
  ASSERT_TRUE(store_.reserve_name("web", "id1").has_value());
  age_link(names("web"), 120);
  auto st = store_.reserve_name("web", "id2");
  ASSERT_TRUE(st.has_value()) << st.error().message();
  EXPECT_EQ(fs::read_symlink(names("web")).string(), "id2");
}

TEST_F(ContainerStoreTest, ReserveReplacesEntryOfRemovedContainer) {
  ASSERT_TRUE(store_.reserve_name("web", "gone").has_value());  // no containers/gone at all
  auto st = store_.reserve_name("web", "id2");
  ASSERT_TRUE(st.has_value()) << st.error().message();
  EXPECT_EQ(fs::read_symlink(names("web")).string(), "id2");
}

TEST_F(ContainerStoreTest, ReleaseFreesNameAndIgnoresMissing) {
  add("id1", "web", "2024-01-01T00:00:00Z");
  ASSERT_TRUE(store_.release_name("web").has_value());
  EXPECT_FALSE(fs::is_symlink(names("web")));
  EXPECT_TRUE(store_.release_name("web").has_value());
  EXPECT_TRUE(store_.release_name("never").has_value());
  EXPECT_TRUE(store_.reserve_name("web", "id2").has_value());
}

// ---- records on disk ----

TEST_F(ContainerStoreTest, SaveWritesPrivateContainerJson) {
  ContainerRecord r = full_record();
  fs::create_directories(store_.dir(r.id));
  ASSERT_TRUE(store_.save(r).has_value());
  std::string path = store_.dir(r.id) + "/container.json";
  EXPECT_EQ(store_.dir(r.id), tmp_.path() + "/containers/" + r.id);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(json::parse(read_text(path))["stop_timeout"], 42);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  auto found = store_.find(r.id);
  ASSERT_TRUE(found.has_value()) << found.error().message();
  EXPECT_EQ(record_json(*found), record_json(r));
}

TEST_F(ContainerStoreTest, SaveNeedsTheSnapshotDirectory) {
  ContainerRecord r;
  r.id = "nodir";
  auto st = store_.save(r);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().err, ENOENT);
}

TEST_F(ContainerStoreTest, ExitRoundTripAndMissing) {
  fs::create_directories(store_.dir("id1"));
  EXPECT_FALSE(store_.load_exit("id1").has_value());
  ExitRecord e;
  e.exit_code = 143;
  e.stopped_by_user = true;
  e.restart_count = 2;
  ASSERT_TRUE(store_.save_exit("id1", e).has_value());
  auto back = store_.load_exit("id1");
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->exit_code, 143);
  EXPECT_TRUE(back->stopped_by_user);
  EXPECT_EQ(back->restart_count, 2);
  std::ofstream(store_.dir("id1") + "/exit.json") << "{garbage";
  EXPECT_FALSE(store_.load_exit("id1").has_value());
  EXPECT_FALSE(store_.load_exit("nosuch").has_value());
}

// ---- find ----

TEST_F(ContainerStoreTest, FindByNameFullIdAndUniquePrefix) {
  add("abc123", "web", "2024-01-01T00:00:00Z");
  add("def456", "db", "2024-01-01T00:00:01Z");
  auto by_name = store_.find("db");
  ASSERT_TRUE(by_name.has_value()) << by_name.error().message();
  EXPECT_EQ(by_name->id, "def456");
  auto by_id = store_.find("abc123");
  ASSERT_TRUE(by_id.has_value());
  EXPECT_EQ(by_id->name, "web");
  auto by_prefix = store_.find("d");
  ASSERT_TRUE(by_prefix.has_value());
  EXPECT_EQ(by_prefix->id, "def456");
}

TEST_F(ContainerStoreTest, FindAmbiguousPrefix) {
  add("abc123", "", "2024-01-01T00:00:00Z");
  add("abd456", "", "2024-01-01T00:00:01Z");
  auto r = store_.find("ab");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), "multiple containers match 'ab'");
  auto unique = store_.find("abd");
  ASSERT_TRUE(unique.has_value());
  EXPECT_EQ(unique->id, "abd456");
}

TEST_F(ContainerStoreTest, FindNameWinsOverIdPrefix) {
  add("abc123", "", "2024-01-01T00:00:00Z");
  add("fff999", "abc", "2024-01-01T00:00:01Z");
  auto r = store_.find("abc");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->id, "fff999");
}

TEST_F(ContainerStoreTest, FindMissing) {
  add("abc123", "web", "2024-01-01T00:00:00Z");
  for (const char* key : {"zzz", "", "../containers", "web2"}) {
    auto r = store_.find(key);
    ASSERT_FALSE(r.has_value()) << key;
    EXPECT_EQ(r.error().message(), std::string("no such container: ") + key);
  }
}

TEST_F(ContainerStoreTest, FindIgnoresNameAndDirWithoutRecord) {
  // A name reserved for a container still being created does not find it, nor does its id.
  fs::create_directories(store_.dir("abc123"));
  ASSERT_TRUE(store_.reserve_name("web", "abc123").has_value());
  EXPECT_FALSE(store_.find("web").has_value());
  EXPECT_FALSE(store_.find("abc").has_value());
  EXPECT_FALSE(store_.find("abc123").has_value());
}

TEST_F(ContainerStoreTest, FindReportsCorruptRecord) {
  fs::create_directories(store_.dir("abc123"));
  std::ofstream(store_.dir("abc123") + "/container.json") << R"({"id":"abc123","tty":3})";
  auto r = store_.find("abc123");
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), HasSubstr("container.json: field 'tty': expected a boolean"));
  EXPECT_THAT(r.error().message(), HasSubstr(store_.dir("abc123")));
}

TEST_F(ContainerStoreTest, FindRejectsRecordInWrongDirectory) {
  fs::create_directories(store_.dir("abc123"));
  std::ofstream(store_.dir("abc123") + "/container.json") << R"({"id":"other"})";
  auto r = store_.find("abc123");
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), HasSubstr("does not match the directory"));
}

// ---- list and group ----

TEST_F(ContainerStoreTest, ListIsOldestFirstThenByIdAndSkipsBrokenOnes) {
  add("c3", "", "2024-01-01T00:00:02Z");
  add("b2", "", "2024-01-01T00:00:01Z");
  add("a9", "", "2024-01-01T00:00:01Z");
  add("z0", "", "2023-12-31T23:59:59Z");
  fs::create_directories(store_.dir("snapshot-only"));  // no container.json: not listed
  fs::create_directories(store_.dir("broken"));
  std::ofstream(store_.dir("broken") + "/container.json") << "{";

  char tmpl[] = "/tmp/forker-containers-log-XXXXXX";
  int fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  log::configure(fd, log::Format::kText, false, "forker");
  auto all = store_.list();
  log::configure(STDERR_FILENO, log::Format::kText, false, "forker");
  ::close(fd);
  std::string warnings = read_text(tmpl);
  ::unlink(tmpl);

  ASSERT_TRUE(all.has_value()) << all.error().message();
  std::vector<std::string> ids;
  for (const auto& r : *all) ids.push_back(r.id);
  EXPECT_THAT(ids, ElementsAre("z0", "a9", "b2", "c3"));
  EXPECT_THAT(warnings, HasSubstr(store_.dir("broken") + "/container.json"));
  EXPECT_THAT(warnings, HasSubstr("not valid JSON"));
}

TEST_F(ContainerStoreTest, ListWithoutContainersDirIsEmpty) {
  TempDir empty;
  ContainerStore s(empty.path());
  auto all = s.list();
  ASSERT_TRUE(all.has_value()) << all.error().message();
  EXPECT_TRUE(all->empty());
}

TEST_F(ContainerStoreTest, GroupMembersInReplicaOrder) {
  add("r3", "web-3", "2024-01-01T00:00:00Z", "web", 3);
  add("r1", "web-1", "2024-01-01T00:00:02Z", "web", 1);
  add("r2", "web-2", "2024-01-01T00:00:01Z", "web", 2);
  add("o1", "db-1", "2024-01-01T00:00:00Z", "db", 1);
  add("solo", "solo", "2024-01-01T00:00:00Z");
  auto g = store_.group("web");
  ASSERT_TRUE(g.has_value()) << g.error().message();
  std::vector<std::string> ids;
  for (const auto& r : *g) ids.push_back(r.id);
  EXPECT_THAT(ids, ElementsAre("r1", "r2", "r3"));
  auto none = store_.group("nope");
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty());
  auto empty = store_.group("");
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->empty());
}

}  // namespace
}  // namespace forker::engine
