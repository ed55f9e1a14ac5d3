// Frame 0's bound (docs/protocol.md §2): the broker refuses a larger frame
// 0 with BAD_FRAME and request id 0, before parsing it; a client computes
// the same bound from its WELCOME's limits and refuses such a request
// itself, since no answer could be matched to it. One definition for both
// sides. Plain functions and constants; any thread.
#ifndef SIFT_BROKER_PROTOCOL_FRAME_LIMITS_H_
#define SIFT_BROKER_PROTOCOL_FRAME_LIMITS_H_

#include <cstddef>

#include "broker/protocol/headers.h"

namespace sift::protocol {

// Longest HELLO client_name, in bytes (protocol.md §3.1).
inline constexpr size_t kMaxClientNameBytes = 256;

// The longest topic and reply_to, a client name, the largest headers
// allowed, and 1,024 bytes for the other fields: 68,352 with the defaults
// (max_topic_length 256, max_headers 64, max_headers_bytes 65536).
inline size_t MaxFrame0Bytes(size_t max_topic_length, size_t max_headers,
                             size_t max_headers_bytes) {
  return 2 * max_topic_length + kMaxClientNameBytes + 1024 +
         max_headers_bytes + kHeaderOverheadBytes * max_headers;
}

}  // namespace sift::protocol

#endif  // SIFT_BROKER_PROTOCOL_FRAME_LIMITS_H_
