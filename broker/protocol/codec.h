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

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
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
// set for explicit-ack subscriptions only (0: left out).
size_t DeliverSize(uint64_t sid, std::string_view topic,
                   std::string_view reply_to, std::string_view headers = {},
                   uint64_t delivery_id = 0, uint32_t attempt = 0,
                   bool retained = false);
// Writes a DELIVER header into out[0, DeliverSize(...)). Returns bytes written.
size_t EncodeDeliver(uint64_t sid, std::string_view topic,
                     std::string_view reply_to, std::string_view headers,
                     char* out);
size_t EncodeDeliver(uint64_t sid, std::string_view topic,
                     std::string_view reply_to, std::string_view headers,
                     uint64_t delivery_id, uint32_t attempt, bool retained,
                     char* out);

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

}  // namespace sift::protocol

#endif  // SIFT_BROKER_PROTOCOL_CODEC_H_
