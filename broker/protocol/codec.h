// Encoding and decoding of the header frame (frame 0) of sift messages.
//
// HeaderDecoder parses into a protobuf arena backed by an inline block, so a
// steady stream of headers costs no heap allocation. The Encode* fast paths
// write the wire bytes of the hottest commands (PUB, DELIVER) directly; they
// produce exactly what protobuf would (codec_test checks this).
//
// Thread-safety: a HeaderDecoder belongs to one thread. Free functions are
// thread-safe.
#ifndef SIFT_BROKER_PROTOCOL_CODEC_H_
#define SIFT_BROKER_PROTOCOL_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <google/protobuf/arena.h>

#include <cstring>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "broker/protocol/wire_format.h"
#include "proto/sift.pb.h"

namespace sift::protocol {

// Reusable header parser. The returned pointer is valid until the next
// Decode() call or the decoder's destruction.
class HeaderDecoder {
 public:
  HeaderDecoder();
  HeaderDecoder(const HeaderDecoder&) = delete;
  HeaderDecoder& operator=(const HeaderDecoder&) = delete;

  // Parses frame 0. Fails with InvalidArgument (wire code BAD_FRAME) if the
  // bytes are not a Header.
  absl::StatusOr<const wire::Header*> Decode(const void* data, size_t size);

 private:
  // The arena's first block lives here; Reset() keeps it, so parsing reuses
  // the same memory for every message that fits (all but huge headers).
  alignas(16) char initial_block_[8192];
  google::protobuf::Arena arena_;
};

// `headers` below is raw header entries (broker/protocol/headers.h), copied
// as they are; empty for none.

// Exact encoded size of a DELIVER header. `delivery_id` and `attempt` are
// set for explicit-ack subscriptions only (0: left out), `retained` for a
// retained value sent to a new subscription. Inline: the broker encodes one
// per delivery.
inline size_t DeliverSize(uint64_t sid, std::string_view topic,
                          std::string_view reply_to,
                          std::string_view headers = {},
                          uint64_t delivery_id = 0, uint32_t attempt = 0,
                          bool retained = false);
// Writes a DELIVER header into out[0, DeliverSize(...)). Returns bytes written.
inline size_t EncodeDeliver(uint64_t sid, std::string_view topic,
                            std::string_view reply_to,
                            std::string_view headers, uint64_t delivery_id,
                            uint32_t attempt, bool retained, char* out);
inline size_t EncodeDeliver(uint64_t sid, std::string_view topic,
                            std::string_view reply_to,
                            std::string_view headers, char* out) {
  return EncodeDeliver(sid, topic, reply_to, headers, 0, 0, false, out);
}

// Exact encoded size of a PUB header.
size_t PubSize(uint64_t request_id, std::string_view topic,
               std::string_view reply_to, bool confirm,
               std::string_view headers = {});
// Writes a PUB header into out[0, PubSize(...)). Returns bytes written.
size_t EncodePub(uint64_t request_id, std::string_view topic,
                 std::string_view reply_to, bool confirm,
                 std::string_view headers, char* out);

// Serializes any header (the general, slower path for rare commands).
std::string EncodeHeader(const wire::Header& header);

// A Status that carries a wire ErrorCode (as a payload), so a code chosen deep
// inside the broker reaches the ERROR frame, and an ERROR received by a client
// becomes a Status the caller can inspect with WireCodeOf().
absl::Status WireError(wire::ErrorCode code, absl::string_view message);
// The wire code of a status made by WireError(); for other statuses a code
// derived from the canonical status code (INTERNAL if nothing fits).
wire::ErrorCode WireCodeOf(const absl::Status& status);
// The canonical absl code that matches a wire code.
absl::StatusCode StatusCodeFor(wire::ErrorCode code);

// Short name of the command in a header ("PUB", "SUB", ...), for logs.
const char* CommandName(const wire::Header& header);

// ---- Inline definitions.

namespace codec_internal {

inline char* PutLengthDelimited(int field, std::string_view s, char* p) {
  *p++ = static_cast<char>(
      wire_format::Tag(field, wire_format::kLengthDelimited));
  p = wire_format::PutVarint(s.size(), p);
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

inline size_t DeliverBodySize(uint64_t sid, std::string_view topic,
                              std::string_view reply_to,
                              std::string_view headers, uint64_t delivery_id,
                              uint32_t attempt, bool retained) {
  using wire_format::VarintSize;
  size_t n = headers.size();
  if (sid != 0) n += 1 + VarintSize(sid);
  if (!topic.empty()) n += 1 + VarintSize(topic.size()) + topic.size();
  if (!reply_to.empty()) {
    n += 1 + VarintSize(reply_to.size()) + reply_to.size();
  }
  if (ABSL_PREDICT_FALSE(delivery_id != 0)) n += 1 + VarintSize(delivery_id);
  if (ABSL_PREDICT_FALSE(attempt != 0)) n += 1 + VarintSize(attempt);
  if (ABSL_PREDICT_FALSE(retained)) n += 2;
  return n;
}

}  // namespace codec_internal

inline size_t DeliverSize(uint64_t sid, std::string_view topic,
                          std::string_view reply_to, std::string_view headers,
                          uint64_t delivery_id, uint32_t attempt,
                          bool retained) {
  const size_t body = codec_internal::DeliverBodySize(
      sid, topic, reply_to, headers, delivery_id, attempt, retained);
  return 1 + wire_format::VarintSize(body) + body;
}

namespace codec_internal {

// EncodeDeliver, given DeliverBodySize(...) of the same arguments as `body`.
inline size_t EncodeDeliverSized(size_t body, uint64_t sid,
                                 std::string_view topic,
                                 std::string_view reply_to,
                                 std::string_view headers,
                                 uint64_t delivery_id, uint32_t attempt,
                                 bool retained, char* out) {
  using wire_format::kLengthDelimited;
  using wire_format::kVarint;
  using wire_format::PutVarint;
  using wire_format::Tag;
  char* p = out;
  *p++ = static_cast<char>(
      Tag(wire::Header::kDeliverFieldNumber, kLengthDelimited));
  p = PutVarint(body, p);
  if (sid != 0) {
    *p++ = static_cast<char>(Tag(wire::Deliver::kSidFieldNumber, kVarint));
    p = PutVarint(sid, p);
  }
  if (!topic.empty()) {
    p = codec_internal::PutLengthDelimited(wire::Deliver::kTopicFieldNumber,
                                           topic, p);
  }
  if (!reply_to.empty()) {
    p = codec_internal::PutLengthDelimited(wire::Deliver::kReplyToFieldNumber,
                                           reply_to, p);
  }
  if (!headers.empty()) {
    std::memcpy(p, headers.data(), headers.size());
    p += headers.size();
  }
  if (ABSL_PREDICT_FALSE(delivery_id != 0)) {
    *p++ = static_cast<char>(
        Tag(wire::Deliver::kDeliveryIdFieldNumber, kVarint));
    p = PutVarint(delivery_id, p);
  }
  if (ABSL_PREDICT_FALSE(attempt != 0)) {
    *p++ = static_cast<char>(Tag(wire::Deliver::kAttemptFieldNumber, kVarint));
    p = PutVarint(attempt, p);
  }
  if (ABSL_PREDICT_FALSE(retained)) {
    *p++ = static_cast<char>(Tag(wire::Deliver::kRetainedFieldNumber, kVarint));
    *p++ = 1;
  }
  return static_cast<size_t>(p - out);
}

}  // namespace codec_internal

inline size_t EncodeDeliver(uint64_t sid, std::string_view topic,
                            std::string_view reply_to,
                            std::string_view headers, uint64_t delivery_id,
                            uint32_t attempt, bool retained, char* out) {
  return codec_internal::EncodeDeliverSized(
      codec_internal::DeliverBodySize(sid, topic, reply_to, headers,
                                      delivery_id, attempt, retained),
      sid, topic, reply_to, headers, delivery_id, attempt, retained, out);
}

}  // namespace sift::protocol

#endif  // SIFT_BROKER_PROTOCOL_CODEC_H_
