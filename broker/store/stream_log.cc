#include "broker/store/stream_log.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/base/absl_view.h"

namespace sift::store {
namespace {

// FirstSeq() across restarts (see the header), beside the segments.
constexpr char kFirstSeqFile[] = "first_seq";

absl::Status ErrnoError(int err, std::string_view what,
                        std::string_view path) {
  return absl::ErrnoToStatus(
      err, absl::StrCat(AV(what), " ", AV(path), ": ", std::strerror(err)));
}

// Writes all of [data, data+n) at `offset`.
bool PwriteAll(int fd, const char* data, size_t n, uint64_t offset) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return true;
}

bool PreadAll(int fd, char* data, size_t n, uint64_t offset) {
  while (n > 0) {
    const ssize_t r = ::pread(fd, data, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (r == 0) {
      errno = EIO;  // shorter than fstat said
      return false;
    }
    data += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return true;
}

absl::Status ValidateOptions(const StreamLogOptions& o) {
  if (o.dir.empty()) return absl::InvalidArgumentError("stream dir is empty");
  if (o.segment_max_bytes < 1024) {
    return absl::InvalidArgumentError("segment_max_bytes must be >= 1024");
  }
  if (o.index_interval_bytes == 0) {
    return absl::InvalidArgumentError("index_interval_bytes must be > 0");
  }
  if (o.max_record_bytes < kBodyFixedBytes ||
      o.max_record_bytes > (1u << 30)) {
    return absl::InvalidArgumentError(
        "max_record_bytes must be in [36, 1 GiB]");
  }
  if (o.max_age_ms < 0) {
    return absl::InvalidArgumentError("max_age_ms must be >= 0");
  }
  if (o.retention_check_ms <= 0) {
    return absl::InvalidArgumentError("retention_check_ms must be > 0");
  }
  if (o.fsync_policy == FsyncPolicy::kEveryMs && o.fsync_every_ms <= 0) {
    return absl::InvalidArgumentError("fsync every_ms must be > 0");
  }
  if (o.max_queued_records == 0 || o.max_queued_bytes == 0) {
    return absl::InvalidArgumentError("the append queue bounds must be > 0");
  }
  if (o.dedup_window_ms < 0) {
    return absl::InvalidArgumentError("dedup_window_ms must be >= 0");
  }
  return absl::OkStatus();
}

}  // namespace

const char* FsyncPolicyName(FsyncPolicy policy) {
  switch (policy) {
    case FsyncPolicy::kAlways:
      return "always";
    case FsyncPolicy::kEveryMs:
      return "every_ms";
    case FsyncPolicy::kNever:
      return "never";
  }
  return "?";
}

StreamLog::StreamLog(StreamLogOptions options)
    : options_(std::move(options)) {}

StreamLog::~StreamLog() {
  Close().IgnoreError();
  {
    absl::MutexLock l(&mu_);
    segments_.clear();
  }
  active_.reset();
  if (event_fd_ >= 0) ::close(event_fd_);
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

absl::StatusOr<std::unique_ptr<StreamLog>> StreamLog::Open(
    StreamLogOptions options, RecoveryReport* report) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  std::unique_ptr<StreamLog> log(new StreamLog(std::move(options)));
  const std::string& dir = log->options_.dir;
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoError(errno, "cannot create stream dir", dir);
  }
  log->dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (log->dir_fd_ < 0) return ErrnoError(errno, "cannot open", dir);
  log->event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (log->event_fd_ < 0) return ErrnoError(errno, "eventfd for", dir);
  RecoveryReport local;
  if (absl::Status s = log->Recover(report ? report : &local); !s.ok()) {
    return s;
  }
  log->writer_ = std::thread([l = log.get()] { l->WriterLoop(); });
  return log;
}

absl::StatusOr<std::shared_ptr<Segment>> StreamLog::CreateSegment(
    uint64_t base_seq) {
  const std::string path =
      absl::StrCat(options_.dir, "/", SegmentFileName(base_seq));
  const int fd =
      ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(errno, "cannot create segment", path);
  auto seg = std::make_shared<Segment>(fd, path, base_seq);
  const std::string header = EncodeSegmentHeader(base_seq);
  if (!PwriteAll(fd, header.data(), header.size(), 0)) {
    return ErrnoError(errno, "cannot write segment header", path);
  }
  if (options_.fsync_policy != FsyncPolicy::kNever &&
      ::fsync(dir_fd_) != 0) {
    return ErrnoError(errno, "cannot fsync dir", options_.dir);
  }
  stats_.segments_created.fetch_add(1, std::memory_order_relaxed);
  return seg;
}

// Scans every segment in order (see the header's Recovery).
absl::Status StreamLog::Recover(RecoveryReport* report) {
  *report = RecoveryReport();
  std::vector<uint64_t> bases;
  {
    DIR* d = ::opendir(options_.dir.c_str());
    if (d == nullptr) return ErrnoError(errno, "cannot list", options_.dir);
    while (struct dirent* e = ::readdir(d)) {
      if (auto base = ParseSegmentFileName(e->d_name)) bases.push_back(*base);
    }
    ::closedir(d);
  }
  std::sort(bases.begin(), bases.end());

  std::vector<std::shared_ptr<Segment>> segments;
  // Message ids seen, oldest first, trimmed to dedup_max_ids as we go.
  std::deque<std::pair<std::string, DedupEntry>> ids;
  uint64_t expected = 0;  // the seq the next record must have (0: any)
  int64_t newest_ms = 0;
  uint64_t record_bytes = 0;
  for (size_t i = 0; i < bases.size(); ++i) {
    const bool last = i + 1 == bases.size();
    const std::string path =
        absl::StrCat(options_.dir, "/", SegmentFileName(bases[i]));
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return ErrnoError(errno, "cannot open segment", path);
    auto seg = std::make_shared<Segment>(fd, path, bases[i]);
    struct stat st;
    if (::fstat(fd, &st) != 0) return ErrnoError(errno, "cannot stat", path);
    const uint64_t file_size = static_cast<uint64_t>(st.st_size);
    if (expected != 0 && bases[i] != expected) {
      return absl::DataLossError(absl::StrCat(
          "segment ", path, " starts at seq ", bases[i], " but the segment "
          "before it ends at seq ", expected - 1, " (a segment is missing)"));
    }

    auto cut = [&](uint64_t offset, std::string_view reason) -> absl::Status {
      std::string tail(file_size - offset, '\0');
      if (!PreadAll(fd, tail.data(), tail.size(), offset)) {
        return ErrnoError(errno, "cannot read", path);
      }
      report->file = path;
      report->offset = offset;
      report->truncated_bytes = file_size - offset;
      report->truncated_records =
          offset < kSegmentHeaderBytes
              ? 0
              : CountFramesInTail(tail, options_.max_record_bytes);
      report->reason = std::string(reason);
      if (::ftruncate(fd, static_cast<off_t>(offset)) != 0 ||
          ::fdatasync(fd) != 0) {
        return ErrnoError(errno, "cannot truncate", path);
      }
      return absl::OkStatus();
    };

    // The header.
    char header[kSegmentHeaderBytes];
    uint64_t header_base = 0;
    const bool header_ok =
        file_size >= kSegmentHeaderBytes &&
        PreadAll(fd, header, sizeof(header), 0) &&
        DecodeSegmentHeader(std::string_view(header, sizeof(header)),
                            &header_base) &&
        header_base == bases[i];
    if (!header_ok) {
      if (!last) {
        return absl::DataLossError(
            absl::StrCat("segment ", path, ": bad segment header at offset 0"));
      }
      if (absl::Status s = cut(0, "bad segment header"); !s.ok()) return s;
      const std::string h = EncodeSegmentHeader(bases[i]);
      if (!PwriteAll(fd, h.data(), h.size(), 0) || ::fdatasync(fd) != 0) {
        return ErrnoError(errno, "cannot rewrite segment header", path);
      }
      segments.push_back(std::move(seg));
      expected = bases[i];
      continue;
    }

    SegmentReader reader(fd, kSegmentHeaderBytes, file_size,
                         options_.max_record_bytes);
    RecordView r;
    for (;;) {
      const SegmentReader::Outcome o = reader.Next(&r);
      if (o == SegmentReader::Outcome::kEnd) break;
      if (o == SegmentReader::Outcome::kIoError) {
        return ErrnoError(reader.io_errno(), "cannot read", path);
      }
      std::string_view reason;
      if (o == SegmentReader::Outcome::kCorrupt) {
        reason = DecodeResultName(reader.error());
      } else if (r.seq != bases[i] + seg->records) {
        reason = "record out of sequence";
      }
      if (!reason.empty()) {
        if (!last) {
          return absl::DataLossError(
              absl::StrCat("segment ", path, ": ", AV(reason), " at offset ",
                           reader.record_offset()));
        }
        // A torn tail ends the file. Valid records after the damage mean
        // records that were durable (confirmed) are damaged: cutting would
        // drop them and hand their seqs to new records.
        {
          const uint64_t at = reader.record_offset();
          std::string rest(file_size - at, '\0');
          if (!PreadAll(fd, rest.data(), rest.size(), at)) {
            return ErrnoError(errno, "cannot read", path);
          }
          const uint64_t good = bases[i] + seg->records - 1;
          if (const uint64_t later =
                  ValidRecordAfter(rest, options_.max_record_bytes, good)) {
            return absl::DataLossError(absl::StrCat(
                "segment ", path, ": ", AV(reason), " at offset ", at,
                " followed by valid records (seq ", later,
                "): records that were durable are damaged; move the file "
                "away (the stream then starts after the segment before it)"));
          }
        }
        if (absl::Status s = cut(reader.record_offset(), reason); !s.ok()) {
          return s;
        }
        break;
      }
      seg->Add(r.seq, r.unix_ms, reader.record_offset(), reader.frame_bytes(),
               options_.index_interval_bytes);
      newest_ms = std::max(newest_ms, r.unix_ms);
      if (!r.msg_id.empty() && options_.dedup_max_ids > 0) {
        ids.emplace_back(std::string(r.msg_id),
                         DedupEntry{r.seq, r.unix_ms});
        if (ids.size() > options_.dedup_max_ids) ids.pop_front();
      }
    }
    record_bytes += seg->size - kSegmentHeaderBytes;
    expected = seg->base_seq + seg->records;
    segments.push_back(std::move(seg));
  }

  if (segments.empty()) {
    absl::StatusOr<std::shared_ptr<Segment>> seg = CreateSegment(1);
    if (!seg.ok()) return seg.status();
    segments.push_back(*std::move(seg));
  }
  const std::shared_ptr<Segment>& tail = segments.back();
  next_seq_ = tail->base_seq + tail->records;
  last_ms_ = newest_ms;
  written_seq_.store(next_seq_ - 1);
  durable_seq_.store(next_seq_ - 1);
  synced_seq_ = next_seq_ - 1;
  active_ = tail;
  for (auto& [id, entry] : ids) {
    if (newest_ms - entry.unix_ms < options_.dedup_window_ms) {
      RememberId(id, entry.seq, entry.unix_ms);
    }
  }
  // Ids of the window beyond the cap are not reloaded, and not counted as
  // forgotten early: with the cap unchanged they were forgotten (and
  // counted) before the restart already; stats() counts since Open.
  const std::shared_ptr<Segment>& front = segments.front();
  head_ = Head{front, front->base_seq, kSegmentHeaderBytes,
               front->records > 0 ? front->first_ms : 0};
  {
    absl::MutexLock l(&mu_);
    segments_ = std::move(segments);
    first_seq_ = head_.seq;
    kept_bytes_ = record_bytes;
  }

  // FirstSeq(): the largest of the oldest segment's base, <dir>/first_seq
  // and the limits applied again (see the header's "FirstSeq() across
  // restarts").
  Trim trim = TrimFor(/*age=*/true);
  {
    std::ifstream in(absl::StrCat(options_.dir, "/", kFirstSeqFile));
    std::string text;
    uint64_t kept_first = 0;
    if (in && std::getline(in, text) && absl::SimpleAtoi(text, &kept_first)) {
      persisted_first_seq_ = kept_first;
      trim.below_seq = std::max(trim.below_seq, kept_first);
    }
  }
  Head head = head_;
  uint64_t dropped = 0;
  if (absl::Status s = AdvanceHead(trim, &head, &dropped); !s.ok()) return s;
  {
    absl::MutexLock l(&mu_);
    first_seq_ = head.seq;
    kept_bytes_ -= dropped;
  }
  head_ = std::move(head);
  if (persisted_first_seq_ > head_.seq) {
    // A torn tail took records the file counted: it must not hide the seqs
    // the next appends reuse.
    if (absl::Status s = PersistFirstSeq(); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// --- Owner thread ----------------------------------------------------------

void StreamLog::RememberId(std::string_view id, uint64_t seq,
                           int64_t unix_ms) {
  if (options_.dedup_max_ids == 0) return;
  ids_.insert_or_assign(std::string(id), DedupEntry{seq, unix_ms});
  id_order_.emplace_back(std::string(id), DedupEntry{seq, unix_ms});
  while (id_order_.size() > options_.dedup_max_ids) {
    const DedupEntry& oldest = id_order_.front().second;
    auto it = ids_.find(id_order_.front().first);
    if (it != ids_.end() && it->second.seq == oldest.seq) {
      // Append expired the ids out of the window before this one (by the
      // same clock, unix_ms): one forgotten here could still be a duplicate.
      if (unix_ms - oldest.unix_ms < options_.dedup_window_ms) {
        stats_.dedup_ids_forgotten_early.fetch_add(1,
                                                   std::memory_order_relaxed);
      }
      ids_.erase(it);
    }
    id_order_.pop_front();
  }
}

void StreamLog::ExpireIds(int64_t now_ms) {
  while (!id_order_.empty() &&
         now_ms - id_order_.front().second.unix_ms >=
             options_.dedup_window_ms) {
    auto it = ids_.find(id_order_.front().first);
    if (it != ids_.end() && it->second.seq == id_order_.front().second.seq) {
      ids_.erase(it);
    }
    id_order_.pop_front();
  }
}

absl::Status StreamLog::Append(delivery::MessageRef message, int64_t unix_ms,
                               std::string_view msg_id, uint64_t* seq) {
  if (closed_) return absl::FailedPreconditionError("stream log is closed");
  if (failed_.load(std::memory_order_acquire)) return writer_status();
  const int64_t ms = std::max(unix_ms, last_ms_);
  if (!msg_id.empty()) {
    ExpireIds(ms);
    auto it = ids_.find(AV(msg_id));
    if (it != ids_.end()) {
      *seq = it->second.seq;
      stats_.duplicates.fetch_add(1, std::memory_order_relaxed);
      return absl::AlreadyExistsError(
          absl::StrCat("duplicate message id ", AV(msg_id), " (seq ",
                       it->second.seq, ")"));
    }
  }
  const RecordView view{0,
                        ms,
                        msg_id,
                        message->topic(),
                        message->reply_to(),
                        message->headers(),
                        message->payload()};
  const uint64_t bytes = EncodedSize(view);
  if (bytes - kFrameHeaderBytes > options_.max_record_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("record of ", bytes - kFrameHeaderBytes,
                     " bytes is over the stream's max_record_bytes (",
                     options_.max_record_bytes, ")"));
  }
  if (options_.max_bytes > 0 && bytes > options_.max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("record of ", bytes, " bytes is over the stream's "
                     "max_bytes (", options_.max_bytes, "): it could never "
                     "be kept"));
  }
  const uint64_t records =
      queued_records_.load(std::memory_order_relaxed) + staged_.size();
  const uint64_t queued_bytes =
      queued_bytes_.load(std::memory_order_relaxed) + staged_bytes_;
  if (records >= options_.max_queued_records ||
      (records > 0 && queued_bytes + bytes > options_.max_queued_bytes)) {
    stats_.rejected_full.fetch_add(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(
        absl::StrCat("stream writer queue is full (", records, " records, ",
                     queued_bytes, " bytes not yet written)"));
  }
  staged_.push_back(
      Pending{next_seq_, ms, std::string(msg_id), std::move(message), bytes});
  staged_bytes_ += bytes;
  if (staged_.size() >= kHandOffRecords) HandOff();
  *seq = next_seq_++;
  last_ms_ = ms;
  if (!msg_id.empty()) RememberId(msg_id, *seq, ms);
  stats_.appended.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

uint64_t StreamLog::TakeDurable() {
  uint64_t v;
  while (::read(event_fd_, &v, sizeof(v)) < 0 && errno == EINTR) {
  }
  return DurableSeq();
}

void StreamLog::HandOff() {
  if (has_spent_.load(std::memory_order_acquire)) {
    {
      absl::MutexLock l(&queue_mu_);
      spent_taken_.swap(spent_);
      has_spent_.store(false, std::memory_order_relaxed);
    }
    spent_taken_.clear();  // frees the messages here, the owner thread
  }
  if (staged_.empty()) return;
  absl::MutexLock l(&queue_mu_);
  queued_records_.fetch_add(staged_.size(), std::memory_order_relaxed);
  queued_bytes_.fetch_add(staged_bytes_, std::memory_order_relaxed);
  staged_bytes_ = 0;
  if (queue_.empty()) {
    queue_.swap(staged_);  // staged_ keeps the emptied vector's storage
    work_cv_.Signal();
  } else {
    queue_.insert(queue_.end(), std::make_move_iterator(staged_.begin()),
                  std::make_move_iterator(staged_.end()));
    staged_.clear();
  }
}

absl::Status StreamLog::Flush() {
  if (closed_) return writer_status();
  HandOff();
  absl::MutexLock l(&queue_mu_);
  const uint64_t ticket = ++flush_requested_;
  work_cv_.Signal();
  while (flush_done_ < ticket) done_cv_.Wait(&queue_mu_);
  return writer_status_;
}

absl::Status StreamLog::Close() {
  if (closed_) return writer_status();
  HandOff();
  closed_ = true;
  {
    absl::MutexLock l(&queue_mu_);
    closing_ = true;
    work_cv_.Signal();
  }
  if (writer_.joinable()) writer_.join();
  return writer_status();
}

absl::Status StreamLog::writer_status() const {
  absl::MutexLock l(&queue_mu_);
  return writer_status_;
}

// --- Any thread ------------------------------------------------------------

uint64_t StreamLog::FirstSeq() const {
  absl::MutexLock l(&mu_);
  return first_seq_;
}

uint64_t StreamLog::TotalBytes() const {
  absl::MutexLock l(&mu_);
  return kept_bytes_;
}

uint64_t StreamLog::TotalRecords() const {
  absl::MutexLock l(&mu_);
  const Segment& last = *segments_.back();
  return last.base_seq + last.records - first_seq_;
}

absl::Status StreamLog::Read(uint64_t from_seq, size_t max_records,
                             uint64_t max_bytes,
                             std::vector<StreamRecord>* out) const {
  if (max_records == 0) return absl::OkStatus();
  // A snapshot of the segments to read and how far each is written.
  struct Part {
    std::shared_ptr<Segment> seg;
    uint64_t offset;
    uint64_t end;
  };
  std::vector<Part> parts;
  {
    absl::MutexLock l(&mu_);
    from_seq = std::max(from_seq, first_seq_);
    auto it = std::upper_bound(
        segments_.begin(), segments_.end(), from_seq,
        [](uint64_t s, const std::shared_ptr<Segment>& g) {
          return s < g->base_seq;
        });
    if (it != segments_.begin()) --it;
    for (; it != segments_.end(); ++it) {
      const Segment& g = **it;
      if (g.records == 0 || g.last_seq() < from_seq) continue;
      const uint64_t offset =
          parts.empty() ? g.OffsetForSeq(from_seq) : kSegmentHeaderBytes;
      parts.push_back(Part{*it, offset, g.size});
      if (parts.size() > 1 && g.size - kSegmentHeaderBytes >= max_bytes) {
        break;  // enough to fill the read
      }
    }
  }
  size_t records = 0;
  uint64_t bytes = 0;
  for (const Part& part : parts) {
    SegmentReader reader(part.seg->fd, part.offset, part.end,
                         options_.max_record_bytes);
    RecordView r;
    for (;;) {
      const SegmentReader::Outcome o = reader.Next(&r);
      if (o == SegmentReader::Outcome::kEnd) break;
      if (o == SegmentReader::Outcome::kIoError) {
        return ErrnoError(reader.io_errno(), "cannot read", part.seg->path);
      }
      if (o == SegmentReader::Outcome::kCorrupt) {
        return absl::DataLossError(absl::StrCat(
            "segment ", part.seg->path, ": ",
            AV(DecodeResultName(reader.error())), " at offset ",
            reader.record_offset()));
      }
      if (r.seq < from_seq) continue;
      if (records > 0 && bytes + reader.frame_bytes() > max_bytes) {
        return absl::OkStatus();
      }
      out->push_back(StreamRecord{
          r.seq, r.unix_ms, std::string(r.msg_id),
          delivery::StoredMessage::Make(r.topic, r.reply_to, r.headers,
                                        r.payload)});
      bytes += reader.frame_bytes();
      if (++records >= max_records) return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> StreamLog::SeekTime(int64_t unix_ms) const {
  std::shared_ptr<Segment> seg;
  uint64_t offset = 0, end = 0, after = 0, first = 0;
  {
    absl::MutexLock l(&mu_);
    first = first_seq_;
    const Segment& last = *segments_.back();
    after = last.base_seq + last.records;
    auto it = std::partition_point(
        segments_.begin(), segments_.end(),
        [unix_ms](const std::shared_ptr<Segment>& g) {
          return g->records == 0 || g->last_ms < unix_ms;
        });
    if (it == segments_.end()) return std::max(after, first);
    seg = *it;
    offset = seg->OffsetForTime(unix_ms);
    end = seg->size;
    after = seg->base_seq + seg->records;
  }
  SegmentReader reader(seg->fd, offset, end, options_.max_record_bytes);
  RecordView r;
  for (;;) {
    const SegmentReader::Outcome o = reader.Next(&r);
    if (o == SegmentReader::Outcome::kEnd) return std::max(after, first);
    if (o == SegmentReader::Outcome::kIoError) {
      return ErrnoError(reader.io_errno(), "cannot read", seg->path);
    }
    if (o == SegmentReader::Outcome::kCorrupt) {
      return absl::DataLossError(
          absl::StrCat("segment ", seg->path, ": ",
                       AV(DecodeResultName(reader.error())), " at offset ",
                       reader.record_offset()));
    }
    // Stamps never decrease, so a dropped record's match means FirstSeq()
    // (or, if the stream is empty, LastSeq() + 1) is the answer.
    if (r.unix_ms >= unix_ms) return std::max(r.seq, first);
  }
}

// --- Writer thread ---------------------------------------------------------

int64_t StreamLog::UnixNow() const {
  if (options_.unix_clock) return options_.unix_clock();
  return absl::ToUnixMillis(absl::Now());
}

void StreamLog::Notify() {
  const uint64_t one = 1;
  while (::write(event_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

void StreamLog::Fail(absl::Status status) {
  {
    absl::MutexLock l(&queue_mu_);
    if (writer_status_.ok()) writer_status_ = std::move(status);
  }
  failed_.store(true, std::memory_order_release);
  Notify();
}

absl::Status StreamLog::FlushWriteBuf() {
  if (write_recs_.empty()) return absl::OkStatus();
  if (!PwriteAll(active_->fd, write_buf_.data(), write_buf_.size(),
                 active_->size)) {
    return ErrnoError(errno, "cannot write", active_->path);
  }
  // max_msgs and max_bytes move FirstSeq() in the same mu_ section that
  // makes these records readable: no reader sees the stream over them.
  Head head = head_;
  uint64_t dropped = 0;
  if (options_.max_msgs > 0 || options_.max_bytes > 0) {
    if (absl::Status s = AdvanceHead(TrimFor(/*age=*/false), &head, &dropped);
        !s.ok()) {
      return s;
    }
  }
  const uint64_t pending_seq = write_recs_.front().seq;
  if (head.seq >= pending_seq && head.seq <= write_recs_.back().seq) {
    head.unix_ms = write_recs_[head.seq - pending_seq].unix_ms;  // was empty
  }
  const uint64_t expired = head.seq - head_.seq;
  {
    absl::MutexLock l(&mu_);
    const uint64_t end = active_->size + write_buf_.size();
    for (size_t i = 0; i < write_recs_.size(); ++i) {
      const IndexEntry& e = write_recs_[i];
      const uint64_t next =
          i + 1 < write_recs_.size() ? write_recs_[i + 1].offset : end;
      active_->Add(e.seq, e.unix_ms, e.offset, next - e.offset,
                   options_.index_interval_bytes);
    }
    kept_bytes_ += write_buf_.size() - dropped;
    first_seq_ = head.seq;
  }
  head_ = std::move(head);
  if (expired > 0) {
    stats_.records_expired.fetch_add(expired, std::memory_order_relaxed);
  }
  written_seq_.store(write_recs_.back().seq, std::memory_order_release);
  stats_.records_written.fetch_add(write_recs_.size(),
                                   std::memory_order_relaxed);
  stats_.bytes_written.fetch_add(write_buf_.size(),
                                 std::memory_order_relaxed);
  write_buf_.clear();
  write_recs_.clear();
  return absl::OkStatus();
}

absl::Status StreamLog::WriteBatch(const std::vector<Pending>& batch) {
  for (const Pending& p : batch) {
    const uint64_t pending_size = active_->size + write_buf_.size();
    const bool has_records = active_->records > 0 || !write_recs_.empty();
    if (has_records && pending_size + p.bytes > options_.segment_max_bytes) {
      if (absl::Status s = FlushWriteBuf(); !s.ok()) return s;
      if (absl::Status s = Rotate(); !s.ok()) return s;
    }
    const uint64_t offset = active_->size + write_buf_.size();
    EncodeRecord(RecordView{p.seq, p.unix_ms, p.msg_id, p.message->topic(),
                            p.message->reply_to(), p.message->headers(),
                            p.message->payload()},
                 &write_buf_);
    write_recs_.push_back(IndexEntry{p.seq, p.unix_ms, offset});
  }
  stats_.batches.fetch_add(1, std::memory_order_relaxed);
  return FlushWriteBuf();
}

absl::Status StreamLog::SyncActive() {
  const uint64_t written = written_seq_.load(std::memory_order_relaxed);
  if (written <= synced_seq_) return absl::OkStatus();
  if (options_.before_fsync) options_.before_fsync();
  if (::fdatasync(active_->fd) != 0) {
    return ErrnoError(errno, "cannot fsync", active_->path);
  }
  stats_.fsyncs.fetch_add(1, std::memory_order_relaxed);
  synced_seq_ = written;
  return absl::OkStatus();
}

absl::Status StreamLog::Rotate() {
  // Everything written is in the active segment: sync it before moving on,
  // since later syncs only cover the new one.
  if (options_.fsync_policy != FsyncPolicy::kNever) {
    if (absl::Status s = SyncActive(); !s.ok()) return s;
  }
  absl::StatusOr<std::shared_ptr<Segment>> seg =
      CreateSegment(active_->base_seq + active_->records);
  if (!seg.ok()) return seg.status();
  {
    absl::MutexLock l(&mu_);
    segments_.push_back(*seg);
  }
  // An empty stream's head sits at the end of the last segment: move it to
  // the new one, so it is never in a segment retention deletes.
  if (head_.seg == active_ && head_.seq == (*seg)->base_seq) {
    head_ = Head{*seg, head_.seq, kSegmentHeaderBytes, 0};
  }
  active_ = *std::move(seg);
  return absl::OkStatus();
}

absl::Status StreamLog::ApplyRetention() {
  const StreamLogOptions& o = options_;
  if (o.max_age_ms > 0) {
    Head head = head_;
    uint64_t dropped = 0;
    if (absl::Status s = AdvanceHead(TrimFor(/*age=*/true), &head, &dropped);
        !s.ok()) {
      return s;
    }
    CommitHead(head, dropped);
  }
  // Delete the segments wholly below FirstSeq(), never the last one.
  for (;;) {
    std::shared_ptr<Segment> gone;
    {
      absl::MutexLock l(&mu_);
      const Segment& oldest = *segments_.front();
      if (segments_.size() == 1 ||
          oldest.base_seq + oldest.records > first_seq_) {
        break;
      }
      gone = segments_.front();
      segments_.erase(segments_.begin());
    }
    if (::unlink(gone->path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoError(errno, "cannot delete segment", gone->path);
    }
    stats_.segments_deleted.fetch_add(1, std::memory_order_relaxed);
  }
  // <dir>/first_seq is only needed while FirstSeq() is inside the oldest
  // file; written at most every retention_check_ms (and by Close).
  const absl::Time now = absl::Now();
  if (head_.seq != persisted_first_seq_ &&
      head_.seq != segments_.front()->base_seq && now >= next_persist_) {
    next_persist_ = now + absl::Milliseconds(o.retention_check_ms);
    return PersistFirstSeq();
  }
  return absl::OkStatus();
}

StreamLog::Trim StreamLog::TrimFor(bool age) const {
  const StreamLogOptions& o = options_;
  const uint64_t end_seq = write_recs_.empty()
                               ? active_->base_seq + active_->records
                               : write_recs_.back().seq + 1;
  const uint64_t kept = kept_bytes_ + write_buf_.size();
  Trim t;
  if (o.max_msgs > 0 && end_seq > o.max_msgs) {
    t.below_seq = end_seq - o.max_msgs;
  }
  if (o.max_bytes > 0 && kept > o.max_bytes) {
    t.drop_bytes = kept - o.max_bytes;
  }
  if (age && o.max_age_ms > 0) t.before_ms = UnixNow() - o.max_age_ms;
  return t;
}

// Walks the segments from *head. A segment whose last record goes is passed
// whole; in the one where the head stops, a binary search over its entries
// (the sparse index, then write_recs_ for the active one) finds the last
// entry that goes, and the frames after it are read one by one up to the
// first record that stays, which is at or before the next entry.
absl::Status StreamLog::AdvanceHead(const Trim& trim, Head* head,
                                    uint64_t* dropped_bytes) {
  auto goes = [&trim](uint64_t seq, uint64_t at, int64_t ms) {
    return seq < trim.below_seq || at < trim.drop_bytes || ms < trim.before_ms;
  };
  Head c = *head;
  uint64_t passed = 0;  // record bytes from *head to c
  const uint64_t pending_seq =
      write_recs_.empty() ? UINT64_MAX : write_recs_.front().seq;
  size_t i = 0;  // c's segment: the first, or one just after it
  while (segments_[i] != c.seg) {
    ++i;
    assert(i < segments_.size() && "the head's segment was deleted");
  }
  // Moves c to the first record of the next segment.
  auto next_segment = [&] {
    const std::shared_ptr<Segment>& next = segments_[++i];
    c = Head{next, next->base_seq, kSegmentHeaderBytes,
             next->index.empty() ? 0 : next->index[0].unix_ms};
  };
  for (;;) {
    const Segment& seg = *segments_[i];
    const bool active = i + 1 == segments_.size();
    const bool pending = active && !write_recs_.empty();
    const uint64_t end = seg.size + (active ? write_buf_.size() : 0);
    const uint64_t end_seq =
        pending ? write_recs_.back().seq + 1 : seg.base_seq + seg.records;
    if (c.seq >= end_seq) {  // nothing (left) in this segment
      if (active) break;
      next_segment();
      continue;
    }
    if (c.seq >= pending_seq) {
      c.unix_ms = write_recs_[c.seq - pending_seq].unix_ms;
    }
    if (!goes(c.seq, passed, c.unix_ms)) break;  // the usual case

    // Does all that is left of the segment go?
    const int64_t last_ms = pending ? write_recs_.back().unix_ms : seg.last_ms;
    if (end_seq - 1 < trim.below_seq || last_ms < trim.before_ms ||
        passed + (end - c.offset) <= trim.drop_bytes) {
      passed += end - c.offset;
      if (active) {
        c = Head{segments_[i], end_seq, end, 0};
        break;
      }
      next_segment();
      continue;
    }

    // The entries after c are [lo, n); of them, [lo, hi) go.
    const size_t n_index = seg.index.size();
    const size_t n = n_index + (pending ? write_recs_.size() : 0);
    auto entry = [&](size_t k) -> const IndexEntry& {
      return k < n_index ? seg.index[k] : write_recs_[k - n_index];
    };
    size_t lo = 0;
    for (size_t b = n; lo < b;) {
      const size_t mid = lo + (b - lo) / 2;
      if (entry(mid).seq <= c.seq) {
        lo = mid + 1;
      } else {
        b = mid;
      }
    }
    size_t hi = lo;
    for (size_t b = n; hi < b;) {
      const size_t mid = hi + (b - hi) / 2;
      const IndexEntry& e = entry(mid);
      if (goes(e.seq, passed + (e.offset - c.offset), e.unix_ms)) {
        hi = mid + 1;
      } else {
        b = mid;
      }
    }
    if (hi > lo) {
      const IndexEntry& e = entry(hi - 1);
      passed += e.offset - c.offset;
      c = Head{segments_[i], e.seq, e.offset, e.unix_ms};
    }
    // c goes: step a frame at a time, at most to entry(hi) (which stays).
    const uint64_t bound = hi < n ? entry(hi).offset : end;
    bool stays = false;
    while (!stays) {
      uint64_t frame = 0;
      if (c.seq >= pending_seq) {
        const size_t k = c.seq - pending_seq;
        frame = (k + 1 < write_recs_.size() ? write_recs_[k + 1].offset : end) -
                c.offset;
      } else if (absl::Status s = PeekFrame(segments_[i], c.offset, bound,
                                            &frame, &c.unix_ms);
                 !s.ok()) {
        return s;
      }
      passed += frame;
      c.offset += frame;
      ++c.seq;
      if (c.offset >= end) break;  // the whole segment went after all
      if (c.offset == bound) {
        c.unix_ms = entry(hi).unix_ms;
        stays = true;
      } else if (c.seq >= pending_seq) {
        c.unix_ms = write_recs_[c.seq - pending_seq].unix_ms;
        stays = !goes(c.seq, passed, c.unix_ms);
      } else {
        uint64_t unused = 0;
        if (absl::Status s =
                PeekFrame(segments_[i], c.offset, bound, &unused, &c.unix_ms);
            !s.ok()) {
          return s;
        }
        stays = !goes(c.seq, passed, c.unix_ms);
      }
    }
    if (stays) break;
    if (active) {
      c = Head{segments_[i], end_seq, end, 0};
      break;
    }
    next_segment();
  }
  *head = std::move(c);
  *dropped_bytes = passed;
  return absl::OkStatus();
}

// Reads from `offset` to just past `hint` (at least 16 KiB, at most 1 MiB,
// never past the segment's size) into scan_buf_, unless it holds the frame
// header already. The bytes stay valid across calls (the head moves on
// slowly, so most calls read nothing): written records are never rewritten.
absl::Status StreamLog::PeekFrame(const std::shared_ptr<Segment>& g,
                                  uint64_t offset, uint64_t hint,
                                  uint64_t* frame_bytes, int64_t* unix_ms) {
  constexpr uint64_t kPeek = kFrameHeaderBytes + 16;  // body_len .. unix_ms
  const Segment& seg = *g;
  const uint64_t end = seg.size;
  if (scan_seg_ != g || offset < scan_offset_ ||
      offset + kPeek > scan_offset_ + scan_buf_.size()) {
    uint64_t want = std::max(hint, offset) + kPeek - offset;
    want = std::min<uint64_t>(std::max<uint64_t>(want, 16 << 10), 1 << 20);
    want = std::min(want, end - std::min(offset, end));
    scan_seg_.reset();
    if (want < kPeek) {
      return absl::DataLossError(absl::StrCat(
          "segment ", seg.path, ": short record at offset ", offset));
    }
    scan_buf_.resize(want);
    if (!PreadAll(seg.fd, scan_buf_.data(), want, offset)) {
      return ErrnoError(errno, "cannot read", seg.path);
    }
    scan_seg_ = g;
    scan_offset_ = offset;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(scan_buf_.data()) +
                  (offset - scan_offset_);
  uint64_t body = 0, ms = 0;
  for (int k = 3; k >= 0; --k) body = (body << 8) | p[k];
  for (int k = 7; k >= 0; --k) ms = (ms << 8) | p[kFrameHeaderBytes + 8 + k];
  if (body < kBodyFixedBytes || body > options_.max_record_bytes ||
      offset + kFrameHeaderBytes + body > end) {
    return absl::DataLossError(absl::StrCat(
        "segment ", seg.path, ": bad record length at offset ", offset));
  }
  *frame_bytes = kFrameHeaderBytes + body;
  *unix_ms = static_cast<int64_t>(ms);
  return absl::OkStatus();
}

void StreamLog::CommitHead(const Head& head, uint64_t dropped_bytes) {
  const uint64_t expired = head.seq - head_.seq;
  if (expired == 0) return;
  {
    absl::MutexLock l(&mu_);
    first_seq_ = head.seq;
    kept_bytes_ -= dropped_bytes;
  }
  head_ = head;
  stats_.records_expired.fetch_add(expired, std::memory_order_relaxed);
}

absl::Status StreamLog::PersistFirstSeq() {
  const uint64_t first = head_.seq;
  if (first == persisted_first_seq_) return absl::OkStatus();
  const bool sync = options_.fsync_policy != FsyncPolicy::kNever;
  const std::string path = absl::StrCat(options_.dir, "/", kFirstSeqFile);
  const std::string temp = absl::StrCat(path, ".tmp");
  const std::string text = absl::StrCat(first, "\n");
  const int fd =
      ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(errno, "cannot create", temp);
  const bool ok = PwriteAll(fd, text.data(), text.size(), 0) &&
                  (!sync || ::fdatasync(fd) == 0);
  const int err = errno;
  ::close(fd);
  if (!ok) return ErrnoError(err, "cannot write", temp);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    return ErrnoError(errno, "cannot rename to", path);
  }
  if (sync && ::fsync(dir_fd_) != 0) {
    return ErrnoError(errno, "cannot fsync dir", options_.dir);
  }
  persisted_first_seq_ = first;
  return absl::OkStatus();
}

void StreamLog::WriterLoop() {
  const FsyncPolicy policy = options_.fsync_policy;
  const bool retention = options_.max_age_ms > 0 || options_.max_bytes > 0 ||
                         options_.max_msgs > 0;
  const absl::Duration every = absl::Milliseconds(options_.fsync_every_ms);
  const absl::Duration retention_every =
      absl::Milliseconds(options_.retention_check_ms);
  absl::Time last_sync = absl::InfinitePast();
  absl::Time next_retention = absl::Now();
  std::vector<Pending> batch;
  for (;;) {
    bool closing = false;
    uint64_t flush_ticket = 0;
    {
      absl::MutexLock l(&queue_mu_);
      for (;;) {
        if (!queue_.empty() || closing_ || flush_requested_ > flush_done_) {
          break;
        }
        absl::Time deadline = absl::InfiniteFuture();
        if (retention) deadline = next_retention;
        if (policy == FsyncPolicy::kEveryMs &&
            written_seq_.load(std::memory_order_relaxed) > synced_seq_) {
          deadline = std::min(deadline, last_sync + every);
        }
        if (deadline <= absl::Now()) break;
        work_cv_.WaitWithDeadline(&queue_mu_, deadline);
      }
      batch.swap(queue_);
      closing = closing_;
      if (flush_requested_ > flush_done_) flush_ticket = flush_requested_;
    }
    uint64_t batch_bytes = 0;
    for (const Pending& p : batch) batch_bytes += p.bytes;
    if (!failed_.load(std::memory_order_relaxed)) {
      absl::Status s;
      if (!batch.empty()) s = WriteBatch(batch);
      const uint64_t written = written_seq_.load(std::memory_order_relaxed);
      const absl::Time now = absl::Now();
      bool sync = false;
      if (written > synced_seq_) {
        switch (policy) {
          case FsyncPolicy::kAlways:
            sync = true;
            break;
          case FsyncPolicy::kEveryMs:
            sync = now >= last_sync + every || closing;
            break;
          case FsyncPolicy::kNever:
            break;
        }
        if (flush_ticket != 0) sync = true;
      }
      if (s.ok() && sync) {
        s = SyncActive();
        last_sync = now;
      }
      const uint64_t durable =
          policy == FsyncPolicy::kNever ? written : synced_seq_;
      if (durable > durable_seq_.load(std::memory_order_relaxed)) {
        durable_seq_.store(durable, std::memory_order_release);
        Notify();
      }
      if (s.ok() && retention &&
          (!batch.empty() || flush_ticket != 0 || now >= next_retention)) {
        s = ApplyRetention();
        next_retention = now + retention_every;
      }
      if (!s.ok()) Fail(std::move(s));
    }
    const size_t batch_records = batch.size();
    {
      absl::MutexLock l(&queue_mu_);
      // The owner drops the written records (HandOff; after Close, the
      // destructor).
      if (spent_.empty()) {
        spent_.swap(batch);
      } else {
        spent_.insert(spent_.end(), std::make_move_iterator(batch.begin()),
                      std::make_move_iterator(batch.end()));
      }
      has_spent_.store(!spent_.empty(), std::memory_order_release);
      queued_records_.fetch_sub(batch_records, std::memory_order_relaxed);
      queued_bytes_.fetch_sub(batch_bytes, std::memory_order_relaxed);
      if (flush_ticket != 0) {
        flush_done_ = flush_ticket;
        done_cv_.SignalAll();
      }
      if (closing && queue_.empty()) break;
    }
    batch.clear();  // moved from, or spent_'s emptied vector
  }
  // Closing: record FirstSeq() for the next Open.
  if (!failed_.load(std::memory_order_relaxed) &&
      head_.seq != segments_.front()->base_seq) {
    if (absl::Status s = PersistFirstSeq(); !s.ok()) Fail(std::move(s));
  }
}

}  // namespace sift::store
