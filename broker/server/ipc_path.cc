#include "broker/server/ipc_path.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "broker/base/absl_view.h"

namespace sift {

absl::Status CheckIpcPathFree(std::string_view endpoint) {
  constexpr std::string_view kIpc = "ipc://";
  if (endpoint.substr(0, kIpc.size()) != kIpc) return absl::OkStatus();
  const std::string path(endpoint.substr(kIpc.size()));
  // Abstract sockets (Linux) have no file; ZeroMQ's bind reports one in use.
  if (path.empty() || path[0] == '@' || path == "*") return absl::OkStatus();
  if (path.size() > kMaxIpcPathBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot listen on ", AV(endpoint), ": its path is ",
                     path.size(), " bytes, over the ", kMaxIpcPathBytes,
                     " a Unix socket's path may have"));
  }
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return absl::OkStatus();  // free
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot listen on ", AV(endpoint), ": ", path,
                     " exists and is not a socket (binding would delete it)"));
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::OkStatus();  // let the bind say what is wrong
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  const bool live =
      connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  if (live) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", AV(endpoint),
        ": in use: another process listens on it (another siftd?)"));
  }
  return absl::OkStatus();  // a socket left behind: ZeroMQ replaces it
}

}  // namespace sift
