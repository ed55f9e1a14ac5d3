// FastMutex: the lock behind the client's short, frequent critical sections
// (the outbox, the socket, the subscription table). It is std::mutex with
// Abseil's thread-safety annotations, so ABSL_GUARDED_BY and friends still
// document (and, under clang, check) what it guards.
//
// Why not absl::Mutex: Debian builds Abseil without NDEBUG, which leaves
// absl::Mutex's deadlock detection on; an uncontended lock and unlock then
// costs about 44 ns on the benchmark machine against 4 ns for std::mutex,
// paid several times per message (BENCHMARKS.md, 16 B). absl::Mutex stays
// where a condition is awaited.
//
// Any thread may lock it; it is not reentrant. Internal to clients/cpp.
#ifndef SIFT_CLIENTS_CPP_FAST_MUTEX_H_
#define SIFT_CLIENTS_CPP_FAST_MUTEX_H_

#include <mutex>

#include "absl/base/thread_annotations.h"

namespace sift::internal {

class ABSL_LOCKABLE FastMutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

// Holds a FastMutex for its scope.
class ABSL_SCOPED_LOCKABLE FastMutexLock {
 public:
  explicit FastMutexLock(FastMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu)
      : mu_(mu) {
    mu_->Lock();
  }
  ~FastMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  FastMutexLock(const FastMutexLock&) = delete;
  FastMutexLock& operator=(const FastMutexLock&) = delete;

 private:
  FastMutex* const mu_;
};

}  // namespace sift::internal

#endif  // SIFT_CLIENTS_CPP_FAST_MUTEX_H_
