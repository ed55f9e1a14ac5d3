#include "clients/cpp/endpoint.h"

#include <stdio.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace sift::internal {
namespace {

TEST(EndpointTest, ProblemsAreNamed) {
  EXPECT_EQ(EndpointProblem("tcp://127.0.0.1:7440"), "");
  EXPECT_EQ(EndpointProblem("tcp://broker.example:1"), "");
  EXPECT_EQ(EndpointProblem("ipc:///tmp/sift.sock"), "");
  EXPECT_EQ(EndpointProblem("inproc://sift"), "");
  EXPECT_EQ(EndpointProblem("127.0.0.1:7440"),
            "not an endpoint (no transport://)");
  EXPECT_EQ(EndpointProblem("tcp://127.0.0.1"), "no port (tcp://HOST:PORT)");
  EXPECT_EQ(EndpointProblem("tcp://127.0.0.1:"), "no port (tcp://HOST:PORT)");
  EXPECT_EQ(EndpointProblem("tcp://:7440"), "no host (tcp://HOST:PORT)");
  EXPECT_EQ(EndpointProblem("tcp://h:0"),
            "port 0 is out of range (1 to 65535)");
  EXPECT_EQ(EndpointProblem("tcp://h:65536"),
            "port 65536 is out of range (1 to 65535)");
  EXPECT_EQ(EndpointProblem("tcp://h:74x"),
            "port \"74x\" is not a number from 1 to 65535");
  EXPECT_EQ(EndpointProblem("tcp://h:123456"),
            "port \"123456\" is not a number from 1 to 65535");
  EXPECT_EQ(EndpointProblem("ipc://"), "no path (ipc://PATH)");
  EXPECT_EQ(EndpointProblem("ipc:///" + std::string(106, 'a')), "");
  EXPECT_EQ(EndpointProblem("ipc:///" + std::string(107, 'a')),
            "its path is 108 bytes, over the 107 a Unix socket's path may "
            "have");
}

TEST(EndpointTest, SilenceHintNamesAMissingSocketFile) {
  const std::string dir = ::testing::TempDir();
  const std::string missing = dir + "/endpoint-test-missing.sock";
  unlink(missing.c_str());
  EXPECT_EQ(
      SilenceHint("ipc://" + missing),
      "there is no socket file " + missing + " (No such file or directory)");
  // A file that is there: nothing to say from here.
  const std::string present = dir + "/endpoint-test-present";
  FILE* f = fopen(present.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  EXPECT_EQ(SilenceHint("ipc://" + present), "");
  unlink(present.c_str());
  // Nothing can be told of tcp:// or inproc://.
  EXPECT_EQ(SilenceHint("tcp://127.0.0.1:1"), "");
  EXPECT_EQ(SilenceHint("inproc://nobody"), "");
}

}  // namespace
}  // namespace sift::internal
