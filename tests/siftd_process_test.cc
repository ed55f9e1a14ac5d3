// Tests of the SiftdProcess harness against the real siftd: it starts on a
// free port, answers the protocol, logs to the captured file, restarts on the
// same port and exits 0 on SIGTERM.
#include "tests/siftd_process.h"

#include <signal.h>

#include <memory>

#include "gtest/gtest.h"
#include "tests/raw_dealer.h"
#include "tests/test_util.h"

namespace sift::test {
namespace {

TEST(PickFreePortTest, ReturnsAUsablePort) {
  SIFT_ASSERT_OK_AND_ASSIGN(int port, PickFreePort());
  EXPECT_GT(port, 0);
  EXPECT_LT(port, 65536);
}

TEST(SiftdProcessTest, StartsAnswersLogsAndStopsCleanly) {
  SIFT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiftdProcess> siftd,
                            SiftdProcess::Start());
  EXPECT_TRUE(siftd->IsRunning());
  EXPECT_GT(siftd->pid(), 0);
  EXPECT_EQ(kill(siftd->pid(), 0), 0);

  RawDealer dealer(siftd->endpoint());
  SIFT_ASSERT_OK_AND_ASSIGN(wire::Header welcome, dealer.Hello());
  ASSERT_TRUE(welcome.has_welcome()) << welcome.DebugString();
  EXPECT_EQ(welcome.welcome().protocol_version(), 1u);
  dealer.CloseNow();

  SIFT_ASSERT_OK(siftd->Stop());
  EXPECT_FALSE(siftd->IsRunning());
  ASSERT_TRUE(siftd->exit_code().has_value());
  EXPECT_EQ(*siftd->exit_code(), 0) << siftd->LogTail();
  EXPECT_FALSE(siftd->was_killed());
  // The log captured siftd's stderr (its logfmt lines).
  EXPECT_NE(siftd->ReadLog().find("level="), std::string::npos)
      << siftd->ReadLog();
}

TEST(SiftdProcessTest, RestartKeepsThePortAndFlags) {
  SiftdOptions options;
  options.extra_flags = {"--max_payload_bytes=1024"};
  SIFT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiftdProcess> siftd,
                            SiftdProcess::Start(options));
  const int port = siftd->port();
  const pid_t first_pid = siftd->pid();
  SIFT_ASSERT_OK(siftd->Restart());
  // The first run was stopped with SIGTERM and exited 0.
  EXPECT_EQ(siftd->exit_code().value_or(-1000), 0);
  EXPECT_FALSE(siftd->was_killed());
  EXPECT_EQ(siftd->port(), port);
  EXPECT_NE(siftd->pid(), first_pid);
  EXPECT_TRUE(siftd->IsRunning());

  RawDealer dealer(siftd->endpoint());
  SIFT_ASSERT_OK_AND_ASSIGN(wire::Header welcome, dealer.Hello());
  ASSERT_TRUE(welcome.has_welcome()) << welcome.DebugString();
  EXPECT_EQ(welcome.welcome().max_payload_bytes(), 1024u);
  dealer.CloseNow();
}

TEST(SiftdProcessTest, StartFailsClearlyOnBadFlags) {
  SiftdOptions options;
  options.extra_flags = {"--no_such_flag=1"};
  options.ready_timeout = absl::Seconds(5);
  absl::StatusOr<std::unique_ptr<SiftdProcess>> siftd =
      SiftdProcess::Start(options);
  EXPECT_FALSE(siftd.ok());
}

}  // namespace
}  // namespace sift::test
