// StreamLog is one durable stream's on-disk log: an append-only sequence of
// records (seq 1.., contiguous; a caller-given Unix ms timestamp; an optional
// message id; the message) in a directory of segment files. A writer thread
// of its own writes, fsyncs and enforces retention; the routing thread
// appends without ever waiting on a disk and learns of durability through an
// fd it polls.
//
// Design (decisions a caller relies on):
// - Files: <dir>/<base seq, 20 digits>.seg, format in stream_record.h
//   (length prefix + CRC-32 per record). A segment is rotated when the
//   next record would take it past segment_max_bytes (a record larger than
//   that gets a segment of its own). There is always at least one segment
//   file (possibly empty), so an empty stream keeps its next seq on disk.
// - Index: a sparse in-memory index per segment (stream_segment.h), rebuilt
//   on Open by scanning every segment, which also verifies every checksum:
//   Open costs one sequential read of the whole stream.
// - Timestamps are made non-decreasing: a record stamped earlier than the
//   one before it is stored with the earlier record's time. SeekTime is
//   then a binary search, and age retention a prefix of the records.
// - Retention (max_age_ms, max_bytes, max_msgs; 0 = no limit) is exact, a
//   record at a time, as JetStream's: the stream keeps the newest max_msgs
//   records, the newest records whose frames (TotalBytes) add up to at most
//   max_bytes, and the records stamped at most max_age_ms before
//   unix_clock(). FirstSeq() is the oldest record all three keep; it only
//   grows, and a record below it is gone for every reader at once (Read,
//   SeekTime, TotalRecords, TotalBytes). max_msgs and max_bytes are applied
//   as each batch is written, in the step that makes its records readable,
//   so no reader sees the stream over them; max_age_ms after every batch
//   and every retention_check_ms. Append refuses a record whose frame alone
//   is over max_bytes (it could never be kept), so the newest record always
//   stays unless it is older than max_age_ms: a stream is never emptied by
//   max_msgs or max_bytes. Disk space is freed a whole segment at a time:
//   the writer deletes a segment file once every record in it is below
//   FirstSeq(). The active (last) segment is never rotated for a limit; its
//   file goes once a later segment has started. So the files hold the kept
//   records plus the expired head of the oldest segment (less than one
//   segment) plus 16-byte segment headers; pick segment_max_bytes well
//   below max_bytes to keep that overhead small.
// - FirstSeq() across restarts: the writer keeps it in <dir>/first_seq (the
//   decimal seq and a newline, replaced atomically: a temporary file,
//   fdatasync, rename, fsync of the dir; no fsyncs under kNever) whenever it
//   lies inside the oldest segment file, at most every retention_check_ms
//   while it moves, and on Close. Open takes the largest of that file, the
//   oldest segment's base seq and the limits applied again to the records
//   recovered (max_age_ms by unix_clock()). After a Close that is exactly
//   the FirstSeq() the stream had, whatever the new limits. After a crash
//   it is at least the file's (at most retention_check_ms old) and, with
//   the limits unchanged, at least what they keep of the records that
//   survived; so a record trimmed since the file's last write can come back
//   only if the limits were raised, or if the records that pushed it out
//   were not yet durable and the crash cut them (the stream is then as of
//   its last durable record). A garbled file is ignored (the limits still
//   apply), and one ahead of the recovered records (a torn tail was cut) is
//   rewritten by Open so it cannot hide the seqs appended next.
// - Durability: Append hands the record to the writer through a bounded
//   queue and returns its seq at once (the owner keeps a batch of its own
//   and hands it over in one lock: every kHandOffRecords appends, and on
//   HandOff, which the owner calls before it goes idle). The writer takes
//   everything queued as one batch, writes it with one pwrite per segment
//   touched, then per fsync_policy: kAlways fdatasyncs the batch before it
//   counts as durable
//   (group commit: everything that queued up during the previous fsync goes
//   in the next one); kEveryMs fdatasyncs at most every fsync_every_ms (when
//   something was written since); kNever never fsyncs and counts a record
//   durable once written (it survives a broker crash, not a machine crash).
//   The writer then stores "durable up to seq N" (an atomic) and writes the
//   eventfd notify_fd(); the routing thread polls that fd, calls
//   TakeDurable() (which drains it) and answers the confirms up to N. This
//   is the "inproc socket" of DESIGN.md's store/: an eventfd is the
//   cheapest pollable wake-up, and a zmq_poll item takes a raw fd.
// - Dedup (JetStream's Msg-Id): Append with a non-empty msg_id that was
//   appended less than dedup_window_ms ago (by the records' timestamps)
//   AND is among the last dedup_max_ids ids appended returns AlreadyExists
//   with the original seq and queues nothing. Ids live in memory (at most
//   dedup_max_ids, oldest forgotten first: a burst of more ids than that
//   within the window makes the oldest of them forgettable before the
//   window ends; stats().dedup_ids_forgotten_early counts those, since
//   Open) and are reloaded on Open from the last dedup_max_ids records with
//   an id within the window of the newest record (those of the window
//   beyond a cap lowered since are not reloaded, and not counted).
// - Recovery (Open): the last segment is scanned and a torn or corrupt tail
//   (short record, bad length, bad checksum, a seq out of order, a torn
//   segment header) is cut off at the last valid record; Open reports what
//   it cut (RecoveryReport) for the caller to log. Corruption in any other
//   segment is a DataLoss error naming the file and offset, and Open fails:
//   those records were durable once, and dropping them and every later
//   segment silently is not a call the log should make for the operator
//   (who can move the file away and reopen).
// - A write or fsync error (a full disk) fails the writer for good: records
//   not yet durable never become durable, writer_status() and every later
//   Append return the error, and notify_fd() fires so the routing thread
//   sees it. Close and Open again to recover (Open cuts any torn tail).
//
// Thread-safety:
// - Owner thread (the routing thread; one thread at a time): Append,
//   TakeDurable, notify_fd, and the non-const-calls Flush and Close (which
//   block: tests, shutdown, never the hot path).
// - Any thread, concurrently with all of the above: DurableSeq, WrittenSeq,
//   FirstSeq, LastSeq, TotalRecords, TotalBytes, Read, SeekTime, stats(),
//   writer_status(). FirstSeq, TotalRecords and TotalBytes only take mu_
//   (held by the writer for in-memory updates only, never across a disk
//   call), so the routing thread may call them. Read and SeekTime pread()
//   the files: they wait on the disk when the pages are not cached, so the
//   broker should call them from a reader thread (or accept page-cache hits
//   on the routing thread).
// - The writer thread: writes, fsyncs, rotates, applies retention (finding
//   the new first record may read frame headers at the head of the stream,
//   outside mu_), updates the segment table and FirstSeq (under mu_), the
//   durable seq and <dir>/first_seq. Close() (and the destructor) writes
//   what is queued, fsyncs it unless the policy is kNever, records
//   FirstSeq, and joins it.
//
// Costs: Append is a hash lookup (with a msg id), a short mutex section and
// a vector push; the record is encoded and checksummed on the writer thread
// (it holds the MessageRef, so the payload is not copied on the routing
// thread). Under max_msgs or max_bytes the writer finds each batch's new
// first record from the sparse index, then steps through at most one index
// interval of frame headers (at most one pread of 16 KiB or more, none
// while the head stays in the bytes the last one read); no per-record
// memory is kept for retention. Run //broker/store:stream_log_bench before
// changing the write path.
#ifndef SIFT_BROKER_STORE_STREAM_LOG_H_
#define SIFT_BROKER_STORE_STREAM_LOG_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "broker/delivery/deliveries.h"
#include "broker/store/stream_segment.h"

namespace sift::store {

enum class FsyncPolicy { kAlways, kEveryMs, kNever };

struct StreamLogOptions {
  std::string dir;  // created if missing (not its parents)

  uint64_t segment_max_bytes = 64 << 20;
  uint64_t index_interval_bytes = 4096;
  uint32_t max_record_bytes = 16 << 20;  // a record's body, bigger = refused

  // Retention, exact per record (see the header comment); 0 = unlimited.
  int64_t max_age_ms = 0;
  uint64_t max_bytes = 0;
  uint64_t max_msgs = 0;
  int64_t retention_check_ms = 1000;

  FsyncPolicy fsync_policy = FsyncPolicy::kAlways;
  int64_t fsync_every_ms = 10;  // kEveryMs only

  // The queue between Append and the writer: records appended and not yet
  // written. Append is ResourceExhausted past either bound.
  size_t max_queued_records = 65536;
  uint64_t max_queued_bytes = 64 << 20;

  int64_t dedup_window_ms = 2 * 60 * 1000;
  // The ids remembered for dedup, at most (the oldest forgotten first, even
  // inside the window: see "Dedup" above). 0: none (no dedup).
  size_t dedup_max_ids = 100000;

  // Unix time in ms for age retention; the system clock if empty. Called on
  // the writer thread (and by Open, before it starts).
  std::function<int64_t()> unix_clock;

  // Tests: called on the writer thread before each fdatasync of a segment
  // (stats().fsyncs counts them); may block to hold the writer there.
  std::function<void()> before_fsync;
};

// What Open cut off the last segment (all zero if it was intact).
struct RecoveryReport {
  std::string file;            // the segment cut, empty if none
  uint64_t offset = 0;         // where it was cut (its new size)
  uint64_t truncated_bytes = 0;
  uint64_t truncated_records = 0;  // frames seen in the cut bytes (a torn
                                   // one, or garbage, counts as one)
  std::string reason;          // "bad checksum", "short record (torn write)"
  bool truncated() const { return truncated_bytes > 0; }
};

struct StreamLogStats {
  std::atomic<uint64_t> appended{0};
  std::atomic<uint64_t> duplicates{0};
  std::atomic<uint64_t> rejected_full{0};
  std::atomic<uint64_t> records_written{0};
  std::atomic<uint64_t> bytes_written{0};
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> fsyncs{0};  // fdatasync calls on segment files
  std::atomic<uint64_t> segments_created{0};
  std::atomic<uint64_t> segments_deleted{0};
  std::atomic<uint64_t> records_expired{0};  // dropped below FirstSeq
                                             // by retention
  // Message ids forgotten because dedup_max_ids were newer while they were
  // still inside dedup_window_ms: a republish of one of them would have
  // been stored again. Counted by Append (owner thread) and by Open for the
  // ids it could not reload.
  std::atomic<uint64_t> dedup_ids_forgotten_early{0};
};

// One record as Read returns it.
struct StreamRecord {
  uint64_t seq = 0;
  int64_t unix_ms = 0;
  std::string msg_id;
  delivery::MessageRef message;
};

class StreamLog {
 public:
  // Opens (or creates) the stream in options.dir, recovers it and starts the
  // writer thread. Errors: InvalidArgument (options), DataLoss (corruption
  // in a segment other than the last: names the file and offset), and the
  // errno of a failing file operation (Internal / PermissionDenied / ...).
  static absl::StatusOr<std::unique_ptr<StreamLog>> Open(
      StreamLogOptions options, RecoveryReport* report = nullptr);

  ~StreamLog();  // Close()
  StreamLog(const StreamLog&) = delete;
  StreamLog& operator=(const StreamLog&) = delete;

  // Owner thread. Assigns the next seq to `message` and queues the record
  // for the writer (handed over in batches: see HandOff); *seq is set on OK
  // and on AlreadyExists. The queue's bounds count staged records too. `msg_id` may be
  // empty (no dedup). Errors: AlreadyExists (a duplicate msg_id within the
  // window: *seq is the original's, nothing queued), ResourceExhausted (the
  // queue is full: nothing queued, no seq used), InvalidArgument (record
  // over max_record_bytes, or a frame over max_bytes), FailedPrecondition
  // (closed), or the writer's error once it has failed.
  // REQUIRES: message != nullptr.
  absl::Status Append(delivery::MessageRef message, int64_t unix_ms,
                      std::string_view msg_id, uint64_t* seq);

  // Owner thread. Hands the records appended since the last call to the
  // writer. Append queues a record in the owner's own batch and hands a
  // batch over only when it reaches kHandOffRecords, so the owner calls
  // this whenever it may go idle (the broker: after each drain of its
  // socket); Flush and Close call it. Cheap when nothing is staged.
  void HandOff();
  static constexpr size_t kHandOffRecords = 256;

  // An eventfd (non-blocking, readable while the writer has news: durable
  // seq advanced or the writer failed). Owned by the log.
  int notify_fd() const { return event_fd_; }
  // Owner thread: drains notify_fd() and returns DurableSeq().
  uint64_t TakeDurable();

  // Every record with seq <= DurableSeq() is durable per the fsync policy.
  uint64_t DurableSeq() const {
    return durable_seq_.load(std::memory_order_acquire);
  }
  // Every record with seq <= WrittenSeq() is in the files (readable).
  uint64_t WrittenSeq() const {
    return written_seq_.load(std::memory_order_acquire);
  }
  // The oldest record kept by retention (LastSeq() + 1 when the stream is
  // empty). Never decreases, across Close and Open too.
  uint64_t FirstSeq() const;
  // The newest record written (FirstSeq() - 1 when empty). Equals
  // WrittenSeq().
  uint64_t LastSeq() const { return WrittenSeq(); }
  // The records kept, FirstSeq() to the newest written, and their bytes as
  // framed on disk (kFrameOverhead plus the five fields, each): the figure
  // max_bytes bounds. Segment headers and expired records still in a file
  // are not counted (the files are larger by less than one segment).
  uint64_t TotalBytes() const;
  uint64_t TotalRecords() const;

  // Any thread. Appends to *out the written records (seq <= WrittenSeq(),
  // which may be ahead of DurableSeq(): a consumer that must only see
  // durable records bounds itself by DurableSeq()) from `from_seq` on, or
  // from FirstSeq() if `from_seq` is older (never a record retention
  // dropped, even while its file is still on disk), up to max_records and
  // max_bytes (frame bytes; the first record is returned whatever its
  // size). Errors: DataLoss naming the file and offset of a corrupt record,
  // or a read errno.
  absl::Status Read(uint64_t from_seq, size_t max_records, uint64_t max_bytes,
                    std::vector<StreamRecord>* out) const;

  // Any thread. The seq of the first kept record (>= FirstSeq()) stamped at
  // or after `unix_ms`; LastSeq() + 1 if there is none.
  absl::StatusOr<uint64_t> SeekTime(int64_t unix_ms) const;

  // Owner thread; blocks. Waits until everything appended so far is
  // written and fsynced (whatever the policy) and retention has been
  // applied. Returns the writer's status.
  absl::Status Flush();

  // Owner thread; blocks. Writes what is queued (fsynced unless the policy
  // is kNever), stops the writer and closes the files. Idempotent. Returns
  // the writer's status.
  absl::Status Close();

  // OK, or the error that failed the writer.
  absl::Status writer_status() const;
  const StreamLogStats& stats() const { return stats_; }
  const StreamLogOptions& options() const { return options_; }

 private:
  struct Pending {
    uint64_t seq;
    int64_t unix_ms;
    std::string msg_id;
    delivery::MessageRef message;
    uint64_t bytes;  // encoded size
  };
  struct DedupEntry {
    uint64_t seq;
    int64_t unix_ms;
  };
  // Where FirstSeq()'s record is: its segment, seq, file offset and stamp.
  // When the stream is empty: the end of the last segment (unix_ms unused).
  struct Head {
    std::shared_ptr<Segment> seg;
    uint64_t seq = 0;
    uint64_t offset = 0;
    int64_t unix_ms = 0;
  };
  // What the limits drop: always a prefix of the records, since seqs,
  // offsets and stamps only grow. A record goes if any test says so.
  struct Trim {
    uint64_t below_seq = 0;         // max_msgs: seq < below_seq
    uint64_t drop_bytes = 0;        // max_bytes: it starts within the first
                                    // drop_bytes record bytes from the head
    int64_t before_ms = INT64_MIN;  // max_age_ms: stamped before this
  };

  explicit StreamLog(StreamLogOptions options);

  absl::Status Recover(RecoveryReport* report);
  void RememberId(std::string_view id, uint64_t seq, int64_t unix_ms);
  void ExpireIds(int64_t now_ms);

  // Writer thread.
  void WriterLoop();
  absl::Status WriteBatch(const std::vector<Pending>& batch);
  absl::Status FlushWriteBuf();  // pwrite write_buf_ to active_, publish it
  absl::Status SyncActive();
  absl::Status Rotate();  // starts a new segment after the last record
  // Advances FirstSeq() by max_age_ms (max_msgs and max_bytes are applied
  // by FlushWriteBuf), deletes the segments wholly below it and records it
  // in <dir>/first_seq when due.
  absl::Status ApplyRetention();
  // What the limits drop now, counting the records in write_buf_; the age
  // test only if `age`.
  Trim TrimFor(bool age) const;
  // Moves *head past the records `trim` drops, from the sparse index and at
  // most one index interval of frame headers read from the file (outside
  // mu_); *dropped_bytes is the record bytes it passed. Knows the records
  // in write_buf_ (not yet in the segment table). Also used by Recover.
  absl::Status AdvanceHead(const Trim& trim, Head* head,
                           uint64_t* dropped_bytes);
  // The frame size and stamp of the written record at `offset` of `seg`,
  // through scan_buf_; `hint`: how far the caller may go (what to read).
  // DataLoss if the frame's length is out of range.
  absl::Status PeekFrame(const std::shared_ptr<Segment>& seg, uint64_t offset,
                         uint64_t hint, uint64_t* frame_bytes,
                         int64_t* unix_ms);
  // Makes `head` FirstSeq() (mu_ held only for the in-memory update).
  void CommitHead(const Head& head, uint64_t dropped_bytes);
  // Writes <dir>/first_seq if FirstSeq() differs from what it holds.
  absl::Status PersistFirstSeq();
  void Fail(absl::Status status);
  void Notify();
  int64_t UnixNow() const;

  // Creates (O_EXCL) and headers the segment file for `base_seq`.
  absl::StatusOr<std::shared_ptr<Segment>> CreateSegment(uint64_t base_seq);

  // Constant after construction.
  const StreamLogOptions options_;
  int event_fd_ = -1;
  int dir_fd_ = -1;

  // Owner thread only.
  // Appended, not yet handed to the writer (HandOff): one lock per batch of
  // appends rather than per append.
  std::vector<Pending> staged_;
  uint64_t staged_bytes_ = 0;
  std::vector<Pending> spent_taken_;  // spent_, emptied here (HandOff)
  uint64_t next_seq_ = 1;
  int64_t last_ms_ = 0;
  bool closed_ = false;
  absl::flat_hash_map<std::string, DedupEntry> ids_;
  std::deque<std::pair<std::string, DedupEntry>> id_order_;  // oldest first

  // The queue. State below is protected by queue_mu_.
  mutable absl::Mutex queue_mu_;
  absl::CondVar work_cv_;  // the writer waits for work
  absl::CondVar done_cv_;  // Flush waits for the writer
  std::vector<Pending> queue_ ABSL_GUARDED_BY(queue_mu_);
  // Written records going back to the owner, which drops them in HandOff:
  // their messages are freed by the thread that made them, into its
  // BlockCache, not by the writer. has_spent_: spent_ is not empty.
  std::vector<Pending> spent_ ABSL_GUARDED_BY(queue_mu_);
  std::atomic<bool> has_spent_{false};
  // Handed to the writer and not yet written (its batch included): changed
  // under queue_mu_, read by Append without it.
  std::atomic<uint64_t> queued_bytes_{0};
  std::atomic<uint64_t> queued_records_{0};
  bool closing_ ABSL_GUARDED_BY(queue_mu_) = false;
  uint64_t flush_requested_ ABSL_GUARDED_BY(queue_mu_) = 0;  // Flush calls
  uint64_t flush_done_ ABSL_GUARDED_BY(queue_mu_) = 0;  // ... answered
  absl::Status writer_status_ ABSL_GUARDED_BY(queue_mu_);

  // The segment table and FirstSeq(). State below is protected by mu_; the
  // writer is the only one to change it (and reads it without mu_).
  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<Segment>> segments_ ABSL_GUARDED_BY(mu_);
  uint64_t first_seq_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t kept_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // TotalBytes()

  std::atomic<uint64_t> written_seq_{0};
  std::atomic<uint64_t> durable_seq_{0};
  std::atomic<bool> failed_{false};
  StreamLogStats stats_;

  // Writer thread only, and Recover before it starts (it alone changes the
  // segment table, so it may read segments_, their fields, first_seq_ and
  // kept_bytes_ without mu_).
  std::shared_ptr<Segment> active_;  // segments_.back()
  uint64_t synced_seq_ = 0;
  std::string write_buf_;
  std::vector<IndexEntry> write_recs_;  // the records in write_buf_
  Head head_;                           // FirstSeq()'s record
  uint64_t persisted_first_seq_ = 0;    // what <dir>/first_seq holds
  absl::Time next_persist_ = absl::InfinitePast();
  std::string scan_buf_;                // PeekFrame's bytes ...
  std::shared_ptr<Segment> scan_seg_;   // ... of this segment ...
  uint64_t scan_offset_ = 0;            // ... from this offset

  std::thread writer_;
};

const char* FsyncPolicyName(FsyncPolicy policy);

}  // namespace sift::store

#endif  // SIFT_BROKER_STORE_STREAM_LOG_H_
