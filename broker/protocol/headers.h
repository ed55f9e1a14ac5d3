// Message headers on the wire (docs/protocol.md §8.1): the raw bytes of a
// PUB's or DELIVER's repeated `headers` field (field 4 of both), i.e. entries
//   tag(4, length-delimited) varint(length) HeaderField
// back to back. The broker keeps them in this form: it checks them once per
// PUB and copies the same bytes into each DELIVER, never decoding them into
// objects on the routing path. A message without headers has an empty span
// and pays nothing.
//
// Free functions and small values; thread-safe.
#ifndef SIFT_BROKER_PROTOCOL_HEADERS_H_
#define SIFT_BROKER_PROTOCOL_HEADERS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "proto/sift.pb.h"

namespace sift::protocol {

// Pub.headers and Deliver.headers share a field number, so a PUB's header
// bytes are a valid DELIVER's.
inline constexpr int kHeadersFieldNumber = wire::Pub::kHeadersFieldNumber;
static_assert(static_cast<int>(wire::Pub::kHeadersFieldNumber) ==
              static_cast<int>(wire::Deliver::kHeadersFieldNumber));

// Longest header key, in bytes.
inline constexpr size_t kMaxHeaderKeyBytes = 64;
// Wire bytes a header costs beyond its key and value, at most (the entry's
// tag and length, and the key's and value's tags and lengths). Frame 0's
// bound allows this much per header.
inline constexpr size_t kHeaderOverheadBytes = 16;

struct HeaderLimits {
  uint32_t max_count = 64;      // headers per message
  uint64_t max_bytes = 65536;   // key + value bytes, all headers together
};

// True if `c` is an RFC 7230 token character (tchar).
bool IsHeaderKeyChar(unsigned char c);

// True if `key` is 1 to 64 bytes of RFC 7230 token characters:
// A-Z a-z 0-9 ! # $ % & ' * + - . ^ _ ` | ~
bool IsHeaderKey(std::string_view key);

// Checks header bytes as received: every entry well formed (a HeaderField
// with `key` once, `value` at most once, nothing else) with a valid key, else
// a WireError INVALID_HEADER saying which header and why; then at most
// limits.max_count headers and limits.max_bytes key + value bytes, else
// HEADERS_TOO_LARGE with the figures.
absl::Status ValidateHeaders(std::string_view wire, const HeaderLimits& limits);

// Walks header bytes without copying. For bytes that passed ValidateHeaders
// (or came from the broker); on malformed input Next() returns false and
// error() is true.
class HeaderReader {
 public:
  explicit HeaderReader(std::string_view wire)
      : p_(wire.data()), end_(wire.data() + wire.size()) {}
  bool Next(std::string_view* key, std::string_view* value);
  bool error() const { return error_; }

 private:
  const char* p_;
  const char* end_;
  bool error_ = false;
};

// Wire size of one header entry, and its encoding appended to *out.
size_t HeaderEntrySize(std::string_view key, std::string_view value);
void AppendHeader(std::string_view key, std::string_view value,
                  std::string* out);

// Header bytes for a list of pairs (keys are not checked here: the broker
// checks them).
template <typename Pairs>
std::string EncodeHeaders(const Pairs& pairs) {
  std::string out;
  for (const auto& [key, value] : pairs) AppendHeader(key, value, &out);
  return out;
}

// The header bytes of a decoded message's headers (the slow path, for PUBs
// the fast decoder handed to protobuf).
void AppendHeadersOf(
    const google::protobuf::RepeatedPtrField<wire::HeaderField>& headers,
    std::string* out);

// Decodes header bytes into pairs of views into `wire`. False if malformed.
bool DecodeHeaders(
    std::string_view wire,
    std::vector<std::pair<std::string_view, std::string_view>>* out);

}  // namespace sift::protocol

#endif  // SIFT_BROKER_PROTOCOL_HEADERS_H_
