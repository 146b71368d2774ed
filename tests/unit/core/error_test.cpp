// Error text ("ctx: op object: strerror"), Result and Result<void>, FORKER_TRY propagation.
#include "core/error.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>

namespace forker {
namespace {

TEST(ErrorMessage, OpOnly) { EXPECT_EQ(make_error("bad input").message(), "bad input"); }

TEST(ErrorMessage, OpAndObject) {
  EXPECT_EQ(make_error("invalid container id", "a/b").message(), "invalid container id a/b");
}

TEST(ErrorMessage, WithErrno) {
  EXPECT_EQ(sys_error_errno(EPERM, "mount proc on", "/proc").message(),
            std::string("mount proc on /proc: ") + std::strerror(EPERM));
  EXPECT_EQ(sys_error_errno(ENOENT, "mount proc on", "/proc").message(),
            "mount proc on /proc: No such file or directory");
}

TEST(ErrorMessage, ErrnoWithoutObject) {
  EXPECT_EQ(sys_error_errno(EINVAL, "unshare").message(), "unshare: Invalid argument");
}

TEST(ErrorMessage, ContextOutermostFirst) {
  Error e = sys_error_errno(EPERM, "mount proc on", "/proc");
  e.add_context("rootfs").add_context("create c1");
  EXPECT_EQ(e.message(), "create c1: rootfs: mount proc on /proc: Operation not permitted");
  EXPECT_THAT(e.context, ::testing::ElementsAre("rootfs", "create c1"));
}

TEST(ErrorMessage, ContextWithoutErrno) {
  Error e = make_error("process.args: must not be empty");
  e.add_context("create c1");
  EXPECT_EQ(e.message(), "create c1: process.args: must not be empty");
}

TEST(SysError, ReadsErrnoAtTheCall) {
  errno = EACCES;
  Error e = sys_error("open", "/x");
  EXPECT_EQ(e.err, EACCES);
  EXPECT_EQ(e.op, "open");
  EXPECT_EQ(e.object, "/x");
  EXPECT_TRUE(e.context.empty());
}

TEST(MakeError, HasNoErrno) {
  errno = EPERM;
  EXPECT_EQ(make_error("x").err, 0);
}

TEST(Result, HoldsValue) {
  Result<int> r = 42;
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(*r, 42);
  EXPECT_EQ(r.value(), 42);
}

TEST(Result, HoldsError) {
  Result<int> r = make_error("nope");
  ASSERT_FALSE(r.has_value());
  EXPECT_FALSE(static_cast<bool>(r));
  EXPECT_EQ(r.error().message(), "nope");
}

TEST(Result, ArrowAndMoveOnlyValue) {
  Result<std::string> s = std::string("abc");
  EXPECT_EQ(s->size(), 3u);
  Result<std::unique_ptr<int>> p = std::make_unique<int>(7);
  std::unique_ptr<int> owned = std::move(p).value();
  ASSERT_NE(owned, nullptr);
  EXPECT_EQ(*owned, 7);
}

TEST(Result, ContextOnlyOnError) {
  Result<int> good = Result<int>(1).context("ignored");
  EXPECT_TRUE(good);
  Result<int> bad = Result<int>(make_error("op", "obj")).context("layer");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "layer: op obj");
}

TEST(ResultVoid, DefaultIsSuccess) {
  Status s = ok();
  EXPECT_TRUE(s.has_value());
  EXPECT_TRUE(static_cast<bool>(s));
  s.value();  // no-op, must compile
  Status d;
  EXPECT_TRUE(d);
}

TEST(ResultVoid, ErrorAndContext) {
  Status s = Status(sys_error_errno(EBUSY, "umount2", "/old")).context("rootfs");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().err, EBUSY);
  EXPECT_EQ(s.error().message(), "rootfs: umount2 /old: Device or resource busy");
  Status good = ok().context("ignored");
  EXPECT_TRUE(good);
  EXPECT_TRUE(good.error().context.empty());
}

// ---- FORKER_TRY ----

Result<int> parse_digit(char c) {
  if (c < '0' || c > '9') return make_error("not a digit", std::string(1, c));
  return c - '0';
}

int steps_after_try = 0;

Result<int> sum_two(char a, char b) {
  int x = FORKER_TRY(parse_digit(a));
  ++steps_after_try;
  int y = FORKER_TRY(parse_digit(b));
  ++steps_after_try;
  return x + y;
}

TEST(ForkerTry, YieldsValues) {
  steps_after_try = 0;
  auto r = sum_two('3', '4');
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, 7);
  EXPECT_EQ(steps_after_try, 2);
}

TEST(ForkerTry, ReturnsFirstErrorAndStops) {
  steps_after_try = 0;
  auto r = sum_two('x', 'y');
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "not a digit x");
  EXPECT_EQ(steps_after_try, 0);

  steps_after_try = 0;
  auto r2 = sum_two('1', 'y');
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().message(), "not a digit y");
  EXPECT_EQ(steps_after_try, 1);
}

Status check(bool good) {
  if (!good) return sys_error_errno(EIO, "write", "/f");
  return ok();
}

Status two_checks(bool first, bool second, int* reached) {
  FORKER_TRY(check(first));
  *reached = 1;
  FORKER_TRY(check(second));
  *reached = 2;
  return ok();
}

TEST(ForkerTry, WorksWithStatus) {
  int reached = 0;
  EXPECT_TRUE(two_checks(true, true, &reached));
  EXPECT_EQ(reached, 2);
  reached = 0;
  Status s = two_checks(true, false, &reached);
  ASSERT_FALSE(s);
  EXPECT_EQ(reached, 1);
  EXPECT_EQ(s.error().err, EIO);
  EXPECT_EQ(s.error().message(), "write /f: Input/output error");
}

// A Status error propagates into a function returning Result<T>, and vice versa.
Result<std::string> status_into_result(bool good) {
  FORKER_TRY(check(good));
  return std::string("done");
}

Status result_into_status(char c, int* out) {
  *out = FORKER_TRY(parse_digit(c));
  return ok();
}

TEST(ForkerTry, CrossesResultTypes) {
  EXPECT_EQ(*status_into_result(true), "done");
  auto r = status_into_result(false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().op, "write");
  int out = -1;
  EXPECT_TRUE(result_into_status('5', &out));
  EXPECT_EQ(out, 5);
  Status s = result_into_status('z', &out);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(), "not a digit z");
}

Result<std::unique_ptr<int>> make_owned(bool good) {
  if (!good) return make_error("no memory for you");
  return std::make_unique<int>(9);
}

Result<int> unwrap_owned(bool good) {
  std::unique_ptr<int> p = FORKER_TRY(make_owned(good));
  return *p;
}

TEST(ForkerTry, MovesMoveOnlyValues) {
  EXPECT_EQ(*unwrap_owned(true), 9);
  EXPECT_FALSE(unwrap_owned(false));
}

Status with_ctx(bool good) {
  FORKER_TRY_CTX(check(good), "save state");
  return ok();
}

TEST(ForkerTryCtx, AddsLayer) {
  EXPECT_TRUE(with_ctx(true));
  Status s = with_ctx(false);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(), "save state: write /f: Input/output error");
}

}  // namespace
}  // namespace forker
