// The state directory in a temp root: create/open/save/load/remove, the flock, stale dirs, the
// state JSON, and status derived from the real process.
#include "oci/state.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include "support/temp_dir.hpp"

namespace forker::oci {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using ::forker::test::TempDir;

void touch(const std::string& path) { std::ofstream(path) << ""; }
void write_text(const std::string& path, const char* text) { std::ofstream(path) << text; }

ContainerState sample_state(const std::string& id) {
  ContainerState st;
  st.id = id;
  st.pid = 4242;
  st.pid_start_time = 987654321;
  st.bundle = "/bundles/" + id;
  st.rootfs = "/bundles/" + id + "/rootfs";
  st.created = "2024-01-02T03:04:05.123456789Z";
  st.owner = "root";
  st.cgroups_path = "/sys/fs/cgroup/forker/" + id;
  st.cgroup_dirs_created = {"/sys/fs/cgroup/forker", "/sys/fs/cgroup/forker/" + id};
  st.annotations = {{"org.example", "yes"}, {"b", "2"}};
  st.config_json = R"({"ociVersion":"1.1.0"})";
  st.systemd_cgroup = true;
  return st;
}

class StateDirTest : public ::testing::Test {
 protected:
  TempDir tmp_;
  std::string root_ = tmp_.path() + "/root";
};

TEST_F(StateDirTest, CreateMakesRootAndDir) {
  auto dir = StateDir::create(root_, "c1");
  ASSERT_TRUE(dir) << dir.error().message();
  EXPECT_EQ(dir->path(), root_ + "/c1");
  EXPECT_GE(dir->fd(), 0);
  struct stat st {};
  ASSERT_EQ(stat(dir->path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0066, 0u) << "others may read the state dir";
}

TEST_F(StateDirTest, CreateMakesMissingParents) {
  std::string deep = tmp_.path() + "/a/b/c";
  auto dir = StateDir::create(deep, "c1");
  ASSERT_TRUE(dir) << dir.error().message();
  EXPECT_TRUE(fs::is_directory(deep + "/c1"));
}

TEST_F(StateDirTest, SaveLoadRoundTrip) {
  auto dir = StateDir::create(root_, "c1");
  ASSERT_TRUE(dir) << dir.error().message();
  ContainerState in = sample_state("c1");
  ASSERT_TRUE(dir->save(in));
  struct stat st {};
  ASSERT_EQ(stat((dir->path() + "/state.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto out = dir->load();
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_EQ(out->id, in.id);
  EXPECT_EQ(out->pid, in.pid);
  EXPECT_EQ(out->pid_start_time, in.pid_start_time);
  EXPECT_EQ(out->bundle, in.bundle);
  EXPECT_EQ(out->rootfs, in.rootfs);
  EXPECT_EQ(out->created, in.created);
  EXPECT_EQ(out->owner, in.owner);
  EXPECT_EQ(out->cgroups_path, in.cgroups_path);
  EXPECT_EQ(out->cgroup_dirs_created, in.cgroup_dirs_created);
  EXPECT_EQ(out->annotations, in.annotations);
  EXPECT_EQ(out->config_json, in.config_json);
  EXPECT_TRUE(out->systemd_cgroup);

  auto read = read_state(root_, "c1");
  ASSERT_TRUE(read) << read.error().message();
  EXPECT_EQ(read->bundle, in.bundle);
}

TEST_F(StateDirTest, SaveReplaces) {
  auto dir = StateDir::create(root_, "c1");
  ASSERT_TRUE(dir);
  ContainerState st = sample_state("c1");
  ASSERT_TRUE(dir->save(st));
  st.pid = 7;
  ASSERT_TRUE(dir->save(st));
  EXPECT_EQ(dir->load()->pid, 7);
  EXPECT_FALSE(fs::exists(dir->path() + "/state.json.tmp"));
}

TEST_F(StateDirTest, CreateTwiceFails) {
  auto first = StateDir::create(root_, "c1");
  ASSERT_TRUE(first) << first.error().message();
  ASSERT_TRUE(first->save(sample_state("c1")));
  auto second = StateDir::create(root_, "c1");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().message(), "container c1 already exists");
}

TEST_F(StateDirTest, CreateTwiceFailsWhenFirstIsUnlockedButSaved) {
  {
    auto first = StateDir::create(root_, "c1");
    ASSERT_TRUE(first);
    ASSERT_TRUE(first->save(sample_state("c1")));
  }  // lock released
  auto second = StateDir::create(root_, "c1");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().message(), "container c1 already exists");
  EXPECT_TRUE(fs::exists(root_ + "/c1/state.json"));
}

TEST_F(StateDirTest, CreateWhileLockHeldFails) {
  // A create in progress: locked, no state.json yet. The second create must not take it over.
  auto first = StateDir::create(root_, "c1");
  ASSERT_TRUE(first) << first.error().message();
  touch(first->path() + "/marker");
  auto second = StateDir::create(root_, "c1");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().message(), "container c1 already exists");
  EXPECT_TRUE(fs::exists(root_ + "/c1/marker"));
}

TEST_F(StateDirTest, StaleDirIsReplaced) {
  // Left by a create that was killed: no state.json, nobody holds the lock.
  ASSERT_EQ(mkdir(root_.c_str(), 0711), 0);
  ASSERT_EQ(mkdir((root_ + "/c1").c_str(), 0711), 0);
  ASSERT_EQ(mkdir((root_ + "/c1/sub").c_str(), 0700), 0);
  touch(root_ + "/c1/exec.fifo");
  touch(root_ + "/c1/sub/file");
  auto dir = StateDir::create(root_, "c1");
  ASSERT_TRUE(dir) << dir.error().message();
  EXPECT_FALSE(fs::exists(root_ + "/c1/exec.fifo"));
  EXPECT_FALSE(fs::exists(root_ + "/c1/sub"));
  EXPECT_TRUE(fs::is_directory(root_ + "/c1"));
}

TEST_F(StateDirTest, LockIsHeldUntilDestroyed) {
  auto dir = StateDir::create(root_, "c1");
  ASSERT_TRUE(dir);
  // flock locks belong to the open file description: a second open of the same dir conflicts.
  int other = ::open(dir->path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(other, 0);
  EXPECT_EQ(flock(other, LOCK_EX | LOCK_NB), -1);
  EXPECT_EQ(errno, EWOULDBLOCK);

  // And from another process.
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int fd = ::open((root_ + "/c1").c_str(), O_RDONLY | O_DIRECTORY);
    _exit(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child could take the lock";

  { StateDir moved = std::move(dir).value(); }  // destroyed: unlocked
  EXPECT_EQ(flock(other, LOCK_EX | LOCK_NB), 0);
  close(other);
}

TEST_F(StateDirTest, OpenExisting) {
  {
    auto dir = StateDir::create(root_, "c1");
    ASSERT_TRUE(dir);
    ASSERT_TRUE(dir->save(sample_state("c1")));
  }
  auto dir = StateDir::open(root_, "c1");
  ASSERT_TRUE(dir) << dir.error().message();
  EXPECT_EQ(dir->path(), root_ + "/c1");
  EXPECT_EQ(dir->load()->pid, 4242);
  // open holds the lock as well.
  int other = ::open(dir->path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(other, 0);
  EXPECT_EQ(flock(other, LOCK_EX | LOCK_NB), -1);
  close(other);
}

TEST_F(StateDirTest, OpenMissing) {
  auto dir = StateDir::open(root_, "nope");
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().message(), "container nope does not exist");
}

TEST_F(StateDirTest, OpenWithoutStateJson) {
  ASSERT_EQ(mkdir(root_.c_str(), 0711), 0);
  ASSERT_EQ(mkdir((root_ + "/c1").c_str(), 0711), 0);
  auto dir = StateDir::open(root_, "c1");
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().message(), "container c1 does not exist");
}

TEST_F(StateDirTest, RemoveDeletesEverything) {
  auto dir = StateDir::create(root_, "c1");
  ASSERT_TRUE(dir);
  ASSERT_TRUE(dir->save(sample_state("c1")));
  ASSERT_EQ(mkdir((dir->path() + "/a").c_str(), 0700), 0);
  ASSERT_EQ(mkdir((dir->path() + "/a/b").c_str(), 0700), 0);
  touch(dir->path() + "/a/b/f");
  ASSERT_EQ(symlink("/etc/passwd", (dir->path() + "/link").c_str()), 0);
  ASSERT_TRUE(dir->remove());
  EXPECT_FALSE(fs::exists(root_ + "/c1"));
  EXPECT_TRUE(fs::exists("/etc/passwd"));
  EXPECT_EQ(dir->fd(), -1);
  // The id is free again.
  EXPECT_TRUE(StateDir::create(root_, "c1"));
}

TEST_F(StateDirTest, LoadCorruptState) {
  auto dir = StateDir::create(root_, "c1");
  ASSERT_TRUE(dir);
  std::ofstream(dir->path() + "/state.json") << "{not json";
  auto st = dir->load();
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message(), HasSubstr("parse " + dir->path() + "/state.json: "));
  std::ofstream(dir->path() + "/state.json") << R"({"id": "c1"})";
  EXPECT_FALSE(dir->load());
}

TEST_F(StateDirTest, LoadStateWithoutOptionalFields) {
  // A state.json from an older forker: only the required fields.
  auto dir = StateDir::create(root_, "c1");
  ASSERT_TRUE(dir);
  std::ofstream(dir->path() + "/state.json")
      << R"({"id": "c1", "pid": 5, "pid_start_time": 6, "bundle": "/b", "rootfs": "/b/r",
             "created": "2024-01-01T00:00:00.000000000Z"})";
  auto st = dir->load();
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(st->pid, 5);
  EXPECT_EQ(st->owner, "");
  EXPECT_TRUE(st->cgroup_dirs_created.empty());
  EXPECT_TRUE(st->annotations.empty());
  EXPECT_FALSE(st->systemd_cgroup);
}

TEST_F(StateDirTest, ListContainers) {
  auto empty = list_containers(root_);  // root does not exist yet
  ASSERT_TRUE(empty) << empty.error().message();
  EXPECT_TRUE(empty->empty());
  for (const char* id : {"zeta", "alpha", "mid"}) {
    auto d = StateDir::create(root_, id);
    ASSERT_TRUE(d);
    ASSERT_TRUE(d->save(sample_state(id)));
  }
  auto creating = StateDir::create(root_, "creating");  // no state.json yet: not listed
  ASSERT_TRUE(creating);
  touch(root_ + "/stray-file");
  auto ids = list_containers(root_);
  ASSERT_TRUE(ids) << ids.error().message();
  EXPECT_THAT(*ids, ElementsAre("alpha", "mid", "zeta"));
}

TEST_F(StateDirTest, ReadStateMissing) {
  auto st = read_state(root_, "ghost");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message(), "container ghost does not exist");
}

// ---- state JSON ----

TEST(StateJson, RuntimeSpecFields) {
  ContainerState st = sample_state("c1");
  json j = json::parse(state_json(st, ContainerStatus::Running, false));
  EXPECT_EQ(j["ociVersion"], "1.1.0");
  EXPECT_EQ(j["id"], "c1");
  EXPECT_EQ(j["status"], "running");
  EXPECT_EQ(j["pid"], 4242);
  EXPECT_EQ(j["bundle"], "/bundles/c1");
  EXPECT_EQ(j["annotations"]["org.example"], "yes");
  EXPECT_FALSE(j.contains("rootfs"));
  EXPECT_FALSE(j.contains("created"));
  EXPECT_FALSE(j.contains("owner"));
  // Internal fields never leak into the state the spec defines.
  EXPECT_FALSE(j.contains("pid_start_time"));
  EXPECT_FALSE(j.contains("config"));
}

TEST(StateJson, RuncFields) {
  json j = json::parse(state_json(sample_state("c1"), ContainerStatus::Created, true));
  EXPECT_EQ(j["status"], "created");
  EXPECT_EQ(j["pid"], 4242);
  EXPECT_EQ(j["rootfs"], "/bundles/c1/rootfs");
  EXPECT_EQ(j["created"], "2024-01-02T03:04:05.123456789Z");
  EXPECT_EQ(j["owner"], "root");
}

TEST(StateJson, StoppedHasPidZero) {
  json j = json::parse(state_json(sample_state("c1"), ContainerStatus::Stopped, false));
  EXPECT_EQ(j["status"], "stopped");
  EXPECT_EQ(j["pid"], 0);
}

TEST(StateJson, EmptyAnnotationsIsAnObject) {
  ContainerState st = sample_state("c1");
  st.annotations.clear();
  json j = json::parse(state_json(st, ContainerStatus::Paused, false));
  EXPECT_EQ(j["status"], "paused");
  EXPECT_TRUE(j["annotations"].is_object());
}

TEST(StatusName, All) {
  EXPECT_STREQ(status_name(ContainerStatus::Creating), "creating");
  EXPECT_STREQ(status_name(ContainerStatus::Created), "created");
  EXPECT_STREQ(status_name(ContainerStatus::Running), "running");
  EXPECT_STREQ(status_name(ContainerStatus::Paused), "paused");
  EXPECT_STREQ(status_name(ContainerStatus::Stopped), "stopped");
}

// ---- time and process ----

TEST(Rfc3339Now, Format) {
  std::string now = rfc3339_now();
  EXPECT_TRUE(std::regex_match(now, std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z)")))
      << now;
  // Sorting as text follows time.
  std::string later = rfc3339_now();
  EXPECT_LE(now, later);
}

TEST(ProcessStartTime, Self) {
  auto a = process_start_time(getpid());
  ASSERT_TRUE(a);
  EXPECT_GT(*a, 0u);
  EXPECT_EQ(process_start_time(getpid()), a);  // stable
  EXPECT_FALSE(process_start_time(0));
  EXPECT_FALSE(process_start_time(-1));
  EXPECT_FALSE(process_start_time(1 << 30));  // above pid_max
}

TEST(ProcessStartTime, ChildStartsNoEarlier) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pause();
    _exit(0);
  }
  auto mine = process_start_time(getpid());
  auto theirs = process_start_time(child);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_TRUE(mine && theirs);
  EXPECT_GE(*theirs, *mine);
}

class DeriveStatusTest : public ::testing::Test {
 protected:
  TempDir tmp_;
  ContainerState self() {
    ContainerState st;
    st.id = "c1";
    st.pid = getpid();
    st.pid_start_time = process_start_time(getpid()).value_or(0);
    return st;
  }
};

TEST_F(DeriveStatusTest, LiveProcessIsRunning) {
  EXPECT_EQ(derive_status(tmp_.path(), self()), ContainerStatus::Running);
}

TEST_F(DeriveStatusTest, WrongStartTimeIsStopped) {
  ContainerState st = self();
  st.pid_start_time += 1;  // the pid was reused by another process
  EXPECT_EQ(derive_status(tmp_.path(), st), ContainerStatus::Stopped);
}

TEST_F(DeriveStatusTest, NoPidIsStopped) {
  ContainerState st = self();
  st.pid = 0;
  EXPECT_EQ(derive_status(tmp_.path(), st), ContainerStatus::Stopped);
  st.pid = -5;
  EXPECT_EQ(derive_status(tmp_.path(), st), ContainerStatus::Stopped);
}

TEST_F(DeriveStatusTest, ExecFifoIsCreated) {
  touch(tmp_.path() + "/exec.fifo");
  EXPECT_EQ(derive_status(tmp_.path(), self()), ContainerStatus::Created);
}

// pause links ID/freezer to the cgroup's freezer file; its content decides.
TEST_F(DeriveStatusTest, FrozenFreezerIsPaused) {
  std::string file = tmp_.path() + "/freezer.state";
  ASSERT_EQ(symlink(file.c_str(), (tmp_.path() + "/" + kFreezerLink).c_str()), 0);
  for (const char* text : {"FROZEN\n", "1\n"}) {
    write_text(file, text);
    EXPECT_EQ(derive_status(tmp_.path(), self()), ContainerStatus::Paused) << text;
  }
  for (const char* text : {"THAWED\n", "FREEZING\n", "0\n"}) {
    write_text(file, text);
    EXPECT_EQ(derive_status(tmp_.path(), self()), ContainerStatus::Running) << text;
  }
  unlink(file.c_str());  // the cgroup is gone
  EXPECT_EQ(derive_status(tmp_.path(), self()), ContainerStatus::Running);
}

TEST_F(DeriveStatusTest, ReapedChildIsStopped) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pause();
    _exit(0);
  }
  ContainerState st;
  st.pid = child;
  st.pid_start_time = process_start_time(child).value_or(0);
  ASSERT_NE(st.pid_start_time, 0u);
  EXPECT_EQ(derive_status(tmp_.path(), st), ContainerStatus::Running);
  ASSERT_EQ(kill(child, SIGKILL), 0);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
  EXPECT_EQ(derive_status(tmp_.path(), st), ContainerStatus::Stopped);
}

TEST_F(DeriveStatusTest, ZombieIsStopped) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  ContainerState st;
  st.pid = child;
  // Wait until it is a zombie (not reaped), then compare with its recorded start time.
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT), 0);
  st.pid_start_time = process_start_time(child).value_or(0);
  ASSERT_NE(st.pid_start_time, 0u);
  EXPECT_EQ(derive_status(tmp_.path(), st), ContainerStatus::Stopped);
  waitpid(child, nullptr, 0);
}

}  // namespace
}  // namespace forker::oci
