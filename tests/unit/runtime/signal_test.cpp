// parse_signal: names with and without SIG, any case, numbers, real-time signals.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include "runtime/container.hpp"

namespace forker::runtime {
namespace {

int sig(const std::string& name) {
  auto r = parse_signal(name);
  EXPECT_TRUE(r) << name << ": " << r.error().message();
  return r ? *r : -1;
}

void expect_invalid(const std::string& name) {
  auto r = parse_signal(name);
  ASSERT_FALSE(r) << name << " parsed as " << *r;
  EXPECT_EQ(r.error().message(), "invalid signal " + name);
}

TEST(ParseSignal, Names) {
  EXPECT_EQ(sig("KILL"), SIGKILL);
  EXPECT_EQ(sig("SIGKILL"), SIGKILL);
  EXPECT_EQ(sig("TERM"), SIGTERM);
  EXPECT_EQ(sig("HUP"), SIGHUP);
  EXPECT_EQ(sig("USR1"), SIGUSR1);
  EXPECT_EQ(sig("SIGUSR2"), SIGUSR2);
  EXPECT_EQ(sig("WINCH"), SIGWINCH);
  EXPECT_EQ(sig("CHLD"), SIGCHLD);
  EXPECT_EQ(sig("SIGSTOP"), SIGSTOP);
  EXPECT_EQ(sig("CONT"), SIGCONT);
}

TEST(ParseSignal, CaseInsensitive) {
  EXPECT_EQ(sig("sigterm"), SIGTERM);
  EXPECT_EQ(sig("term"), SIGTERM);
  EXPECT_EQ(sig("SigInt"), SIGINT);
}

TEST(ParseSignal, Numbers) {
  EXPECT_EQ(sig("9"), 9);
  EXPECT_EQ(sig("15"), 15);
  EXPECT_EQ(sig("1"), 1);
  EXPECT_EQ(sig("64"), 64);
}

TEST(ParseSignal, RealTime) {
  EXPECT_EQ(sig("RTMIN"), SIGRTMIN);
  EXPECT_EQ(sig("SIGRTMIN"), SIGRTMIN);
  EXPECT_EQ(sig("RTMIN+1"), SIGRTMIN + 1);
  EXPECT_EQ(sig("sigrtmin+3"), SIGRTMIN + 3);
  EXPECT_EQ(sig("RTMIN+" + std::to_string(SIGRTMAX - SIGRTMIN)), SIGRTMAX);
}

TEST(ParseSignal, InvalidNumbers) {
  expect_invalid("0");
  expect_invalid("65");
  expect_invalid("-1");
  expect_invalid("-9");
  expect_invalid("99999999999999999999");
}

TEST(ParseSignal, InvalidNames) {
  expect_invalid("");
  expect_invalid("SIG");
  expect_invalid("FOO");
  expect_invalid("SIGFOO");
  expect_invalid("KILLX");
  expect_invalid(" KILL");
  expect_invalid("9x");
}

TEST(ParseSignal, InvalidRealTime) {
  expect_invalid("RTMIN+" + std::to_string(SIGRTMAX - SIGRTMIN + 1));
  expect_invalid("RTMIN-1");  // below RTMIN is not a real-time signal
  expect_invalid("RTMIN+-1");
  expect_invalid("RTMINX1");
  expect_invalid("RTMIN+");
}

}  // namespace
}  // namespace forker::runtime
