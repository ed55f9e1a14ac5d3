#include "broker/server/ipc_path.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "broker/base/absl_view.h"

namespace sift {

std::string IpcSocketFile(std::string_view endpoint) {
  constexpr std::string_view kIpc = "ipc://";
  if (endpoint.substr(0, kIpc.size()) != kIpc) return "";
  const std::string_view path = endpoint.substr(kIpc.size());
  if (path.empty() || path[0] == '@' || path == "*") return "";
  return std::string(path);
}

absl::Status CheckIpcPathFree(std::string_view endpoint) {
  const std::string path = IpcSocketFile(endpoint);
  sockaddr_un addr = {};
  // Abstract sockets (Linux) have no file; ZeroMQ's bind reports one in
  // use. A path too long for a socket is the config's to refuse.
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::OkStatus();
  }
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    // Free; but ZeroMQ's bind in a missing directory says only "No such
    // file or directory".
    const size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos
                                ? "."
                                : path.substr(0, std::max<size_t>(slash, 1));
    struct stat dir_st;
    if (stat(dir.c_str(), &dir_st) != 0 || !S_ISDIR(dir_st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot listen on ", AV(endpoint), ": directory ", dir,
                       " does not exist"));
    }
    return absl::OkStatus();
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot listen on ", AV(endpoint), ": ", path,
                     S_ISLNK(st.st_mode) ? " is a symbolic link"
                                         : " exists and is not a socket",
                     " (binding would delete it)"));
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::OkStatus();  // let the bind say what is wrong
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

void IpcSocketFiles::Remember(std::string_view endpoint) {
  std::string path = IpcSocketFile(endpoint);
  struct stat st;
  if (path.empty() || lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
    return;
  }
  files_.emplace_back(std::move(path), st.st_ino);
}

void IpcSocketFiles::RemoveAll() {
  for (const auto& [path, inode] : files_) {
    struct stat st;
    if (lstat(path.c_str(), &st) == 0 && st.st_ino == inode) {
      unlink(path.c_str());
    }
  }
  files_.clear();
}

}  // namespace sift
