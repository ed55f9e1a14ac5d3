#include "broker/store/stream_segment.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace sift::store {

std::string SegmentFileName(uint64_t base_seq) {
  char name[32];
  std::snprintf(name, sizeof(name), "%020llu.seg",
                static_cast<unsigned long long>(base_seq));
  return name;
}

std::optional<uint64_t> ParseSegmentFileName(std::string_view name) {
  if (name.size() != 24 || name.substr(20) != ".seg") return std::nullopt;
  uint64_t v = 0;
  for (size_t i = 0; i < 20; ++i) {
    const char c = name[i];
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  if (v == 0) return std::nullopt;
  return v;
}

Segment::~Segment() {
  if (fd >= 0) ::close(fd);
}

void Segment::Add(uint64_t seq, int64_t unix_ms, uint64_t offset,
                  size_t frame_bytes, uint64_t index_interval_bytes) {
  if (records == 0) first_ms = unix_ms;
  if (records == 0 || offset - last_index_offset >= index_interval_bytes) {
    index.push_back(IndexEntry{seq, unix_ms, offset});
    last_index_offset = offset;
  }
  ++records;
  last_ms = unix_ms;
  size = offset + frame_bytes;
}

uint64_t Segment::OffsetForSeq(uint64_t seq) const {
  auto it = std::upper_bound(
      index.begin(), index.end(), seq,
      [](uint64_t s, const IndexEntry& e) { return s < e.seq; });
  if (it == index.begin()) return kSegmentHeaderBytes;
  return std::prev(it)->offset;
}

uint64_t Segment::OffsetForTime(int64_t ms) const {
  // First entry at or after `ms`; records between the entry before it and
  // it may be at or after `ms` too, so start at the one before.
  auto it = std::lower_bound(
      index.begin(), index.end(), ms,
      [](const IndexEntry& e, int64_t t) { return e.unix_ms < t; });
  if (it == index.begin()) return kSegmentHeaderBytes;
  return std::prev(it)->offset;
}

bool SegmentReader::Fill(size_t want) {
  if (len_ - pos_ >= want) return true;
  // Move what is left to the front, then read at least a chunk.
  if (pos_ > 0) {
    std::memmove(buf_.data(), buf_.data() + pos_, len_ - pos_);
    len_ -= pos_;
    pos_ = 0;
  }
  constexpr size_t kChunk = 256 * 1024;
  const uint64_t file_pos = next_ + len_;
  const uint64_t left_in_file = end_ > file_pos ? end_ - file_pos : 0;
  size_t to_read = std::max(want - len_, kChunk);
  if (to_read > left_in_file) to_read = static_cast<size_t>(left_in_file);
  if (buf_.size() < len_ + to_read) buf_.resize(len_ + to_read);
  size_t done = 0;
  while (done < to_read) {
    const ssize_t n = ::pread(fd_, buf_.data() + len_ + done, to_read - done,
                              static_cast<off_t>(file_pos + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      errno_ = errno;
      return false;
    }
    if (n == 0) break;  // the file is shorter than `end_`
    done += static_cast<size_t>(n);
  }
  len_ += done;
  return true;
}

SegmentReader::Outcome SegmentReader::Next(RecordView* r) {
  record_offset_ = next_;
  frame_bytes_ = 0;
  if (next_ >= end_) return Outcome::kEnd;
  if (!Fill(kFrameHeaderBytes)) return Outcome::kIoError;
  for (;;) {
    const std::string_view avail(buf_.data() + pos_, len_ - pos_);
    size_t frame = 0;
    const DecodeResult d = DecodeRecord(avail, max_body_, r, &frame);
    if (d == DecodeResult::kOk) {
      frame_bytes_ = frame;
      pos_ += frame;
      next_ += frame;
      return Outcome::kRecord;
    }
    if (d == DecodeResult::kShort) {
      const size_t want = frame == 0 ? kFrameHeaderBytes : frame;
      if (next_ + want <= end_ && avail.size() < want) {
        if (!Fill(want)) return Outcome::kIoError;
        if (len_ - pos_ > avail.size()) continue;  // got more: decode again
      }
    }
    error_ = d;
    frame_bytes_ = frame;
    return Outcome::kCorrupt;
  }
}

uint64_t CountFramesInTail(std::string_view tail, size_t max_body) {
  uint64_t frames = 0;
  while (!tail.empty()) {
    ++frames;
    if (tail.size() < kFrameHeaderBytes) break;
    const auto* p = reinterpret_cast<const unsigned char*>(tail.data());
    const uint32_t body_len = p[0] | (p[1] << 8) | (p[2] << 16) |
                              (static_cast<uint32_t>(p[3]) << 24);
    if (body_len < kBodyFixedBytes || body_len > max_body) break;
    const size_t frame = kFrameHeaderBytes + body_len;
    if (frame >= tail.size()) break;
    tail.remove_prefix(frame);
  }
  return frames;
}

uint64_t ValidRecordAfter(std::string_view tail, size_t max_body,
                          uint64_t after_seq) {
  for (size_t off = 1; off + kFrameHeaderBytes < tail.size(); ++off) {
    RecordView r;
    size_t frame_bytes = 0;
    if (DecodeRecord(tail.substr(off), max_body, &r, &frame_bytes) ==
            DecodeResult::kOk &&
        r.seq > after_seq) {
      return r.seq;
    }
  }
  return 0;
}

}  // namespace sift::store
