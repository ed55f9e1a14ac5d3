// One segment file of a stream log: its metadata, its sparse index, and a
// buffered sequential reader over its records (stream_record.h).
//
// The sparse index is in memory: one entry (seq, unix_ms, file offset) for
// the segment's first record and then one at least every
// `index_interval_bytes` of records. It is built as records are written and
// rebuilt by the full scan StreamLog::Open makes of every segment (it
// verifies every checksum anyway), so there is no index file to keep
// consistent. Seeking reads at most one interval of records past the entry.
//
// Thread-safety: Segment's mutable fields are guarded by the owning
// StreamLog's mutex (the writer thread changes them, readers copy them).
// The fd is immutable and closed by the destructor, so a reader holding a
// shared_ptr<Segment> can pread() it after the file has been unlinked by
// retention. SegmentReader is not thread-safe (one per read).
#ifndef SIFT_BROKER_STORE_STREAM_SEGMENT_H_
#define SIFT_BROKER_STORE_STREAM_SEGMENT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/store/stream_record.h"

namespace sift::store {

// "00000000000000000001.seg" for base seq 1.
std::string SegmentFileName(uint64_t base_seq);
// The base seq of a segment file name, or nullopt if `name` is not one.
std::optional<uint64_t> ParseSegmentFileName(std::string_view name);

struct IndexEntry {
  uint64_t seq;
  int64_t unix_ms;
  uint64_t offset;  // of the record's frame in the file
};

struct Segment {
  Segment(int fd_in, std::string path_in, uint64_t base)
      : fd(fd_in), path(std::move(path_in)), base_seq(base) {}
  ~Segment();
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  // Records the record just written (seq == base_seq + records) at `offset`.
  void Add(uint64_t seq, int64_t unix_ms, uint64_t offset, size_t frame_bytes,
           uint64_t index_interval_bytes);

  // Offset to start scanning at for the first record with seq >= `seq`
  // (REQUIRES: records > 0).
  uint64_t OffsetForSeq(uint64_t seq) const;
  // Offset to start scanning at for the first record with unix_ms >= `ms`.
  uint64_t OffsetForTime(int64_t ms) const;

  uint64_t last_seq() const { return base_seq + records - 1; }

  // Constant after construction.
  const int fd;
  const std::string path;
  const uint64_t base_seq;

  // Guarded by the StreamLog's mutex.
  uint64_t records = 0;
  uint64_t size = kSegmentHeaderBytes;  // bytes in the file
  int64_t first_ms = 0;
  int64_t last_ms = 0;
  uint64_t last_index_offset = 0;
  std::vector<IndexEntry> index;
};

// Reads records in order from [offset, end) of a segment file.
class SegmentReader {
 public:
  enum class Outcome { kRecord, kEnd, kCorrupt, kIoError };

  SegmentReader(int fd, uint64_t offset, uint64_t end, size_t max_body)
      : fd_(fd), next_(offset), end_(end), max_body_(max_body) {}

  // The next record: kRecord with *r valid until the next call, kEnd at
  // `end`, kCorrupt (see error()) or kIoError (see io_errno()).
  Outcome Next(RecordView* r);

  // The offset of the record Next returned (or of the corrupt bytes).
  uint64_t record_offset() const { return record_offset_; }
  size_t frame_bytes() const { return frame_bytes_; }
  DecodeResult error() const { return error_; }
  int io_errno() const { return errno_; }

 private:
  bool Fill(size_t want);  // ensure `want` buffered bytes (or all to end_)

  const int fd_;
  uint64_t next_;  // file offset of buf_[pos_]
  const uint64_t end_;
  const size_t max_body_;
  std::string buf_;
  size_t pos_ = 0;
  size_t len_ = 0;  // valid bytes in buf_
  uint64_t record_offset_ = 0;
  size_t frame_bytes_ = 0;
  DecodeResult error_ = DecodeResult::kOk;
  int errno_ = 0;
};

// How many frames the bytes of a dropped tail look like: it walks the length
// prefixes while they are in range; a torn frame or garbage counts as one.
uint64_t CountFramesInTail(std::string_view tail, size_t max_body);

// The seq of the first record that decodes whole (checksum included) at
// any offset after the start of `tail` and has a seq above `after_seq`, or
// 0 if there is none: a damaged record followed by valid ones is damage
// amid durable records, not a torn tail.
uint64_t ValidRecordAfter(std::string_view tail, size_t max_body,
                          uint64_t after_seq);

}  // namespace sift::store

#endif  // SIFT_BROKER_STORE_STREAM_SEGMENT_H_
