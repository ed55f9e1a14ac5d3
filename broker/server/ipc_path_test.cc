#include "broker/server/ipc_path.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace sift {
namespace {

// A Unix socket bound at `path`, listening or not; -1 on failure.
int BoundSocket(const std::string& path, bool listening) {
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (fd < 0 ||
      bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0 ||
      (listening && listen(fd, 1) != 0)) {
    return -1;
  }
  return fd;
}

TEST(IpcPathTest, FreeStaleLiveAndNotASocket) {
  char dir[] = "/tmp/sift-ipc-XXXXXX";  // short: sun_path holds 107 bytes
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string free_path = absl::StrCat(dir, "/free.sock");
  EXPECT_TRUE(CheckIpcPathFree("ipc://" + free_path).ok());
  EXPECT_TRUE(CheckIpcPathFree("tcp://127.0.0.1:1").ok());
  EXPECT_TRUE(CheckIpcPathFree("ipc://@abstract").ok());

  // Left behind by a broker that died: nobody listens, so it may go.
  const std::string stale = absl::StrCat(dir, "/stale.sock");
  const int stale_fd = BoundSocket(stale, false);
  ASSERT_GE(stale_fd, 0);
  close(stale_fd);
  EXPECT_TRUE(CheckIpcPathFree("ipc://" + stale).ok());

  const std::string live = absl::StrCat(dir, "/live.sock");
  const int live_fd = BoundSocket(live, true);
  ASSERT_GE(live_fd, 0);
  absl::Status in_use = CheckIpcPathFree("ipc://" + live);
  EXPECT_EQ(in_use.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(in_use.message(),
            absl::StrCat("cannot listen on ipc://", live,
                         ": in use: another process listens on it (another "
                         "siftd?)"));
  close(live_fd);

  const std::string file = absl::StrCat(dir, "/notes.txt");
  std::ofstream(file) << "keep me";
  absl::Status not_socket = CheckIpcPathFree("ipc://" + file);
  EXPECT_EQ(not_socket.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(not_socket.message(),
            absl::StrCat("cannot listen on ipc://", file, ": ", file,
                         " exists and is not a socket (binding would delete "
                         "it)"));

  const std::string link = absl::StrCat(dir, "/link.sock");
  ASSERT_EQ(symlink(file.c_str(), link.c_str()), 0);
  EXPECT_EQ(CheckIpcPathFree("ipc://" + link).message(),
            absl::StrCat("cannot listen on ipc://", link, ": ", link,
                         " is a symbolic link (binding would delete it)"));
  const std::string nowhere = absl::StrCat(dir, "/missing/x.sock");
  EXPECT_EQ(CheckIpcPathFree("ipc://" + nowhere).message(),
            absl::StrCat("cannot listen on ipc://", nowhere, ": directory ",
                         dir, "/missing does not exist"));
  unlink(link.c_str());
  for (const std::string& p : {stale, live, file}) unlink(p.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace sift
