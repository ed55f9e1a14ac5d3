#include "broker/store/dir_lock.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace sift::store {
namespace {

std::string NewDir() {
  std::string dir = ::testing::TempDir() + "/dir-lock-XXXXXX";
  return mkdtemp(dir.data()) != nullptr ? dir : "";
}

TEST(DirLockTest, OneHolderAtATime) {
  const std::string dir = NewDir();
  ASSERT_FALSE(dir.empty());
  absl::StatusOr<DirLock> first = DirLock::Acquire(dir);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->held());
  std::ifstream pid_file(dir + "/LOCK");
  std::string pid;
  pid_file >> pid;
  EXPECT_EQ(pid, absl::StrCat(getpid()));

  // A second holder, in this process or another, is refused with the pid.
  absl::StatusOr<DirLock> second = DirLock::Acquire(dir);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(second.status().message(),
            absl::StrCat("in use by another broker (pid ", getpid(),
                         "), which holds ", dir,
                         "/LOCK: each siftd needs a data_dir of its own"));
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(DirLock::Acquire(dir).ok() ? 1 : 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  // Released with its holder (moved from first: still one holder).
  DirLock moved = *std::move(first);
  EXPECT_TRUE(moved.held());
  EXPECT_FALSE(DirLock::Acquire(dir).ok());
  // The same directory written with a trailing slash: the same lock.
  absl::StatusOr<DirLock> slash = DirLock::Acquire(dir + "/");
  ASSERT_FALSE(slash.ok());
  EXPECT_TRUE(absl::StrContains(slash.status().message(),
                                absl::StrCat("which holds ", dir, "/LOCK:")))
      << slash.status();
  moved = DirLock();
  EXPECT_TRUE(DirLock::Acquire(dir).ok());
}

TEST(DirLockTest, AProcessThatDiesLeavesNoLockBehind) {
  const std::string dir = NewDir();
  ASSERT_FALSE(dir.empty());
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    absl::StatusOr<DirLock> lock = DirLock::Acquire(dir);
    const char c = lock.ok() ? 'y' : 'n';
    (void)!write(ready[1], &c, 1);
    pause();  // until killed
    _exit(0);
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  absl::StatusOr<DirLock> busy = DirLock::Acquire(dir);
  ASSERT_FALSE(busy.ok());
  EXPECT_TRUE(absl::StrContains(busy.status().message(),
                                absl::StrCat("(pid ", child, ")")))
      << busy.status();
  kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(DirLock::Acquire(dir).ok());
  close(ready[0]);
  close(ready[1]);
}

TEST(DirLockTest, AMissingDirectoryIsNamed) {
  absl::StatusOr<DirLock> lock = DirLock::Acquire("/nonexistent-sift-dir");
  ASSERT_FALSE(lock.ok());
  EXPECT_EQ(lock.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(lock.status().message(),
            "cannot open the lock file /nonexistent-sift-dir/LOCK: No such "
            "file or directory");
}

}  // namespace
}  // namespace sift::store
