// One broker per data directory: an exclusive flock(2) on <dir>/LOCK, held
// for as long as the DirLock lives. Two siftd on one data_dir would append
// to the same stream logs and confirm the same sequence numbers to
// different publishers; the second one is refused at start instead. The
// kernel drops the lock when the process ends, however it ends (a SIGKILL
// leaves nothing stale behind). Used by the stream manager as it opens the
// data directory; not thread-safe (one owner).
#ifndef SIFT_BROKER_STORE_DIR_LOCK_H_
#define SIFT_BROKER_STORE_DIR_LOCK_H_

#include <string>

#include "absl/status/statusor.h"

namespace sift::store {

class DirLock {
 public:
  // Takes the lock on existing directory `dir`, writing this process's pid
  // into <dir>/LOCK. FailedPrecondition if another process (or another
  // DirLock of this one) holds it, naming the holder's pid when the file
  // says it; the errno's text for a lock file that cannot be opened
  // (PermissionDenied, NotFound, ...).
  static absl::StatusOr<DirLock> Acquire(const std::string& dir);

  DirLock() = default;
  DirLock(DirLock&& other) noexcept;
  DirLock& operator=(DirLock&& other) noexcept;
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  ~DirLock();  // releases the lock (the file stays)

  bool held() const { return fd_ >= 0; }

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace sift::store

#endif  // SIFT_BROKER_STORE_DIR_LOCK_H_
