#include "broker/store/dir_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sift::store {
namespace {

// The pid the holder wrote, or "" if the file says none.
std::string HolderPid(int fd) {
  char buf[32] = {};
  const ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return "";
  uint64_t pid = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(buf, n)),
                        &pid)) {
    return "";
  }
  return absl::StrCat(pid);
}

}  // namespace

absl::StatusOr<DirLock> DirLock::Acquire(const std::string& dir) {
  std::string path = dir;  // "dd/" gives "dd/LOCK", not "dd//LOCK"
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  path += "/LOCK";
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    return absl::Status(err == EACCES || err == EPERM
                            ? absl::StatusCode::kPermissionDenied
                        : err == ENOENT ? absl::StatusCode::kNotFound
                                        : absl::StatusCode::kInternal,
                        absl::StrCat("cannot open the lock file ", path, ": ",
                                     std::strerror(err)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string pid = HolderPid(fd);
    close(fd);
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "in use by another broker",
          pid.empty() ? "" : absl::StrCat(" (pid ", pid, ")"), ", which holds ",
          path, ": each siftd needs a data_dir of its own"));
    }
    return absl::InternalError(
        absl::StrCat("cannot lock ", path, ": ", std::strerror(err)));
  }
  // Who holds it, for the message above; the lock itself is the flock.
  const std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) !=
                                   static_cast<ssize_t>(pid.size())) {
    // A full disk: the lock holds all the same, only the pid is not said.
  }
  return DirLock(fd);
}

DirLock::DirLock(DirLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)) {}

DirLock& DirLock::operator=(DirLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

DirLock::~DirLock() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace sift::store
