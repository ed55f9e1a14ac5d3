// ConsumerStore keeps small named states of one stream, one file each in
// <dir> (<name>.state): its durable consumers' positions (consumers/), and
// the retained values and delayed messages of its topics (held/). A file is
// replaced atomically (written to a
// temporary file, fdatasync'd, renamed, the directory fsync'd) by a writer
// thread of its own, so an acknowledged position survives a crash (SIGKILL
// or power loss) and the routing thread never waits on a disk. Writes of
// the same consumer coalesce: only its newest state is written.
//
// Thread-safety: Put, Remove, TakeDurable, notify_fd and Load are for the
// owner thread (the routing thread); the writer thread is internal.
// Durability is told by tickets: Put/Remove return one, and every ticket up
// to DurableTicket() is on disk. notify_fd() (an eventfd) is readable when
// DurableTicket() advanced or the writer failed.
#ifndef SIFT_BROKER_STREAMS_CONSUMER_STORE_H_
#define SIFT_BROKER_STREAMS_CONSUMER_STORE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace sift::streams {

class ConsumerStore {
 public:
  // Creates `dir` if missing and starts the writer. Errors: the errno of a
  // failing mkdir/open, as Internal or PermissionDenied.
  static absl::StatusOr<std::unique_ptr<ConsumerStore>> Open(std::string dir);
  ~ConsumerStore();  // writes what is pending, then joins the writer

  // Every consumer's state as last written (name -> state text). Leftover
  // temporary files of a crash are removed.
  absl::StatusOr<std::map<std::string, std::string>> Load() const;

  uint64_t Put(const std::string& name, std::string state);
  uint64_t Remove(const std::string& name);

  // The ticket of the newest Put or Remove (0: none yet). Owner thread.
  uint64_t LastTicket() const { return next_ticket_; }
  uint64_t DurableTicket() const {
    return durable_.load(std::memory_order_acquire);
  }
  int notify_fd() const { return event_fd_; }
  // Drains notify_fd(); returns DurableTicket().
  uint64_t TakeDurable();
  // OK, or the error that stopped the writer (a full disk); nothing later
  // becomes durable.
  absl::Status writer_status() const;

 private:
  explicit ConsumerStore(std::string dir);
  void WriterLoop();
  absl::Status Write(const std::string& name,
                     const std::optional<std::string>& state);

  const std::string dir_;
  int event_fd_ = -1;
  int dir_fd_ = -1;
  uint64_t next_ticket_ = 0;  // owner thread

  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  // name -> newest state (nullopt: remove), and the ticket it was given.
  std::map<std::string, std::pair<std::optional<std::string>, uint64_t>>
      pending_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> durable_{0};
  std::thread writer_;
};

}  // namespace sift::streams

#endif  // SIFT_BROKER_STREAMS_CONSUMER_STORE_H_
