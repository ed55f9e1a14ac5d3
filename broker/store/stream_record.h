// The on-disk format of one stream log record, and of a segment file's
// header. Pure functions: no I/O, no state; thread-safe.
//
// Segment file (<dir>/<base seq, 20 digits>.seg):
//   header  = magic "SIFTSEG\x01" (8 bytes) | base_seq u64           16 bytes
//   records, back to back, from offset 16 to the end of the file.
// Record (every integer little-endian):
//   u32 body_len   bytes of body (>= kBodyFixedBytes, <= the log's max)
//   u32 crc        CRC-32 (zlib's and gzip's) over the 4 bytes of
//                  body_len, then body
//   body:
//     u64 seq      1.., contiguous within a stream
//     i64 unix_ms  timestamp (non-decreasing within a stream)
//     u32 id_len | u32 topic_len | u32 reply_len | u32 headers_len |
//     u32 payload_len
//     msg_id | topic | reply_to | headers | payload   (the five lengths
//                                                      sum to the rest)
// A record costs kFrameOverhead (44) bytes beyond its five fields. The
// checksum is the CRC-32 of zlib and gzip, computed by libdeflate
// (libdeflate-dev): Debian has no CRC-32C library package (libcrc32c is not
// in bookworm), and libdeflate's CRC-32 uses the CPU's carry-less multiply
// where there is one: about 15 ns for a 200-byte record here against
// zlib's 220 ns, the same values, so logs written with zlib's read back.
#ifndef SIFT_BROKER_STORE_STREAM_RECORD_H_
#define SIFT_BROKER_STORE_STREAM_RECORD_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sift::store {

inline constexpr char kSegmentMagic[8] = {'S', 'I', 'F', 'T',
                                          'S', 'E', 'G', '\x01'};
inline constexpr size_t kSegmentHeaderBytes = 16;
inline constexpr size_t kFrameHeaderBytes = 8;  // body_len + crc
inline constexpr size_t kBodyFixedBytes = 36;   // seq, ms, five lengths
inline constexpr size_t kFrameOverhead = kFrameHeaderBytes + kBodyFixedBytes;

// The fields of a record. The views point into the buffer it was decoded
// from (or the caller's strings, for encoding).
struct RecordView {
  uint64_t seq = 0;
  int64_t unix_ms = 0;
  std::string_view msg_id;
  std::string_view topic;
  std::string_view reply_to;
  std::string_view headers;
  std::string_view payload;
};

// Bytes EncodeRecord appends for `r` (header included).
inline size_t EncodedSize(const RecordView& r) {
  return kFrameOverhead + r.msg_id.size() + r.topic.size() +
         r.reply_to.size() + r.headers.size() + r.payload.size();
}

// Appends the framed record to *out.
void EncodeRecord(const RecordView& r, std::string* out);

// The segment header for `base_seq`.
std::string EncodeSegmentHeader(uint64_t base_seq);

// Checks a segment header. Returns false if it is not one (short, bad magic).
bool DecodeSegmentHeader(std::string_view data, uint64_t* base_seq);

enum class DecodeResult {
  kOk,          // *r and *frame_bytes are set
  kShort,       // `data` ends before the frame does (a torn tail, or read more)
  kBadLength,   // body_len out of range, or the five lengths do not add up
  kBadChecksum, // crc mismatch
};

// Decodes the record framed at the start of `data`. `max_body` bounds
// body_len (larger is kBadLength). On kShort, *frame_bytes is the frame's
// size if the 8-byte header was there (so a reader knows how much to read),
// else 0.
DecodeResult DecodeRecord(std::string_view data, size_t max_body,
                          RecordView* r, size_t* frame_bytes);

// Human words for a DecodeResult ("bad checksum"), for errors and reports.
std::string_view DecodeResultName(DecodeResult result);

}  // namespace sift::store

#endif  // SIFT_BROKER_STORE_STREAM_RECORD_H_
