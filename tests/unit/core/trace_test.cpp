// The --explain recorder: nothing recorded (nor formatted) when off, nesting, failed steps,
// truncation, the shared buffer seen across fork, and the tree the renderer draws.
#include "core/trace.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "core/error.hpp"

namespace forker::trace {
namespace {

Step step(int pid, int depth, int64_t start_us, int64_t duration_us, std::string text) {
  Step s;
  s.pid = pid;
  s.depth = depth;
  s.start_ns = start_us * 1000;
  s.duration_ns = duration_us * 1000;
  s.text = std::move(text);
  return s;
}

TEST(Trace, OffRecordsAndFormatsNothing) {
  Session session(false, -1);
  EXPECT_FALSE(enabled());
  bool formatted = false;
  {
    Scope s([&] {
      formatted = true;
      return std::string("never");
    });
    point([&] {
      formatted = true;
      return std::string("never");
    });
  }
  EXPECT_FALSE(formatted);
  EXPECT_TRUE(steps().empty());
}

TEST(Trace, NestsScopesAndPoints) {
  {
    Session session(true, -1);
    ASSERT_TRUE(session.active());
    {
      Scope outer("outer");
      {
        Scope inner([] { return std::string("inner ") + "42"; });
        usleep(2000);
        point([] { return std::string("exec /bin/true"); });
      }
      Scope second("second");
      second.end();
      second.end();  // a second end is a no-op
    }
    auto s = steps();
    ASSERT_EQ(s.size(), 4u);
    EXPECT_EQ(s[0].text, "outer");
    EXPECT_EQ(s[0].depth, 0);
    EXPECT_EQ(s[1].text, "inner 42");
    EXPECT_EQ(s[1].depth, 1);
    EXPECT_GE(s[1].duration_ns, 2'000'000);
    EXPECT_GE(s[0].duration_ns, s[1].duration_ns);
    EXPECT_EQ(s[2].text, "exec /bin/true");
    EXPECT_TRUE(s[2].point);
    EXPECT_EQ(s[2].depth, 2);
    EXPECT_EQ(s[3].text, "second");
    EXPECT_EQ(s[3].depth, 1);
    EXPECT_FALSE(s[3].open);
    EXPECT_EQ(s[0].pid, getpid());
    EXPECT_TRUE(saw_exec());
  }
  EXPECT_FALSE(enabled());  // the session turned recording off
  EXPECT_TRUE(steps().empty());
}

TEST(Trace, FailedSyscallKeepsErrnoAndIsMarked) {
  Session session(true, -1);
  int rc = 0, err = 0;
  {
    Scope s("open /nonexistent");
    rc = s.result(::open("/nonexistent/x", O_RDONLY));
    err = errno;
  }
  EXPECT_EQ(rc, -1);
  EXPECT_EQ(err, ENOENT);  // neither result() nor the end of the step changed it
  {
    Scope s("status");
    Status st = s.status(Status(sys_error_errno(EPERM, "mount", "/x")));
    EXPECT_FALSE(st);
  }
  auto s = steps();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].err, ENOENT);
  EXPECT_EQ(s[1].err, EPERM);
  EXPECT_NE(render(s, "t").find("✗ ENOENT"), std::string::npos);
}

TEST(Trace, TruncatesLongTextOnACharacterBoundary) {
  EXPECT_EQ(truncate_text("short", 10), "short");
  EXPECT_EQ(truncate_text("abcdefghij", 8), "abcde…");  // "…" is 3 bytes
  // "µ" is two bytes: a cut inside one backs up to its start.
  EXPECT_EQ(truncate_text("aaaaµµµµ", 9), "aaaaµ…");
  std::string t = truncate_text("aaaaµµµµ", 8);
  EXPECT_EQ(t, "aaaa…");
  EXPECT_LE(t.size(), 8u);

  Session session(true, -1);
  std::string long_text(1000, 'x');
  { Scope s(long_text); }
  auto s = steps();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].text.size(), kTextBytes);
  EXPECT_TRUE(s[0].text.ends_with("…"));
  EXPECT_EQ(s[0].text.substr(0, 10), "xxxxxxxxxx");
}

TEST(Trace, ChildOfForkAppendsToTheSameBuffer) {
  Session session(true, -1);
  Scope parent_step("parent");
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    begin_process();
    {
      Scope s("child step");
      point([] { return std::string("exec /bin/child"); });
    }
    // The parent's step is on our copy of the stack too: ending it here must not touch the
    // parent's record.
    parent_step.end();
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  auto s = steps();
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].pid, getpid());
  EXPECT_TRUE(s[0].open) << "the child ended the parent's step";
  EXPECT_EQ(s[1].pid, child);
  EXPECT_EQ(s[1].text, "child step");
  EXPECT_EQ(s[1].depth, 0);  // begin_process: a tree of its own
  EXPECT_FALSE(s[1].open);
  EXPECT_EQ(s[2].pid, child);
  EXPECT_TRUE(s[2].point);
  EXPECT_EQ(s[2].depth, 1);
  parent_step.end();
  s = steps();
  EXPECT_FALSE(s[0].open);
  EXPECT_GT(s[0].duration_ns, 0);
  // Rendered: the child's tree beside the parent's, by start time.
  std::string out = render(s, "t");
  EXPECT_NE(out.find("├─ parent"), std::string::npos) << out;
  EXPECT_NE(out.find("└─ child step"), std::string::npos) << out;
  EXPECT_NE(out.find("   └─ exec /bin/child"), std::string::npos) << out;
}

TEST(Trace, FullBufferCountsWhatItDropped) {
  Session session(true, -1);
  for (uint32_t i = 0; i < kCapacity + 5; ++i) Scope s("step");
  EXPECT_EQ(steps().size(), kCapacity);
  EXPECT_EQ(dropped(), 5u);
  // A step that found no slot still keeps the nesting right for the next one.
  { Scope lost("lost"); }
  EXPECT_NE(render(steps(), "t", dropped()).find("(6 more steps not recorded: buffer full)"),
            std::string::npos);
}

TEST(Trace, RendersOneTreePerProcessMergedByStartTime) {
  std::vector<Step> s = {
      step(10, 0, 0, 5, "prepare"),
      step(10, 1, 1, 2, "snapshot"),
      step(10, 0, 10, 100, "create"),
      step(1, 0, 20, 50, "init"),
      step(1, 1, 21, 1, "mount x"),
      step(10, 1, 11, 3, "clone3 CLONE_NEWPID"),  // after the child's in the buffer
      step(1, 0, 200, 0, "exec /bin/true"),
      step(10, 0, 150, 0, "start"),
  };
  s[4].err = EPERM;
  s[6].duration_ns = kPoint;
  s[6].point = true;
  s[7].duration_ns = kOpen;
  s[7].open = true;
  EXPECT_EQ(render(s, "forker run --explain"),
            "forker run --explain: 8 steps, total 200 µs\n"
            "├─ prepare                       5 µs\n"
            "│  └─ snapshot                   2 µs\n"
            "├─ create                      100 µs\n"
            "│  └─ clone3 CLONE_NEWPID        3 µs\n"
            "├─ init                         50 µs\n"
            "│  └─ mount x                    1 µs  ✗ EPERM\n"
            "├─ start                   unfinished\n"
            "└─ exec /bin/true                   —\n");
}

TEST(Trace, RenderShortensContainerIds) {
  std::string id(64, 'a');
  id.replace(0, 12, "0123456789ab");
  EXPECT_EQ(abbreviate_ids("mkdir /sys/fs/cgroup/pids/forker/" + id + "/x"),
            "mkdir /sys/fs/cgroup/pids/forker/0123456789ab…/x");
  EXPECT_EQ(abbreviate_ids("deadbeef " + std::string(65, 'f')), "deadbeef " + std::string(65, 'f'));
  std::string out = render({step(1, 0, 0, 1, "snapshot containers/" + id)}, "t");
  EXPECT_NE(out.find("snapshot containers/0123456789ab…"), std::string::npos) << out;
}

TEST(Trace, ShowsFdPathsAndPathsUnderTheRootRelatively) {
  char tmpl[] = "/tmp/forker-trace-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string root = tmpl;
  ASSERT_EQ(mkdir((root + "/proc").c_str(), 0755), 0);
  int fd = open((root + "/proc").c_str(), O_PATH | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::string fd_path = "/proc/self/fd/" + std::to_string(fd);
  {
    Session session(true, -1);
    EXPECT_EQ(shown_path(fd_path.c_str()), root + "/proc");
    set_path_root(root);
    EXPECT_EQ(shown_path(fd_path.c_str()), "/proc");
    EXPECT_EQ(shown_path((fd_path + "/sys").c_str()), "/proc/sys");
    EXPECT_EQ(shown_path(fd, "self"), "/proc/self");
    EXPECT_EQ(shown_path(fd, ""), "/proc");
    EXPECT_EQ(shown_path(root.c_str()), "/");
    EXPECT_EQ(shown_path((root + "x/proc").c_str()), "host:" + root + "x/proc");  // not under it
    EXPECT_EQ(shown_path("/"), "host:/");
    EXPECT_EQ(shown_path("."), ".");  // relative to the cwd: as given
    EXPECT_EQ(shown_path(AT_FDCWD, fd_path.c_str(), false), root + "/proc");  // a bind source
    EXPECT_EQ(shown_path(AT_FDCWD, "/sys", false), "/sys");
    set_path_root("");
    EXPECT_EQ(shown_path(fd_path.c_str()), root + "/proc");
  }
  close(fd);
  rmdir((root + "/proc").c_str());
  rmdir(root.c_str());
}

}  // namespace
}  // namespace forker::trace
