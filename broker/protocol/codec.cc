#include "broker/protocol/codec.h"

#include <cstring>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "broker/protocol/wire_format.h"

namespace sift::protocol {
namespace {

using wire_format::kLengthDelimited;
using wire_format::kVarint;
using wire_format::PutVarint;
using wire_format::Tag;
using wire_format::VarintSize;

inline char* PutBytes(int field, std::string_view s, char* p) {
  *p++ = static_cast<char>(Tag(field, kLengthDelimited));
  p = PutVarint(s.size(), p);
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

// Size of a length-delimited field holding `len` bytes (tag + length + data).
constexpr size_t FieldSize(size_t len) { return 1 + VarintSize(len) + len; }


size_t PubBodySize(std::string_view topic, std::string_view reply_to,
                   bool confirm, std::string_view headers) {
  size_t n = headers.size();
  if (!topic.empty()) n += FieldSize(topic.size());
  if (!reply_to.empty()) n += FieldSize(reply_to.size());
  if (confirm) n += 2;
  return n;
}

constexpr char kWireCodeUrl[] = "type.sift.dev/wire_error_code";

}  // namespace

HeaderDecoder::HeaderDecoder()
    : arena_([this] {
        google::protobuf::ArenaOptions options;
        options.initial_block = initial_block_;
        options.initial_block_size = sizeof(initial_block_);
        return options;
      }()) {}

absl::StatusOr<const wire::Header*> HeaderDecoder::Decode(const void* data,
                                                          size_t size) {
  arena_.Reset();
  auto* header = google::protobuf::Arena::CreateMessage<wire::Header>(&arena_);
  if (size > static_cast<size_t>(INT32_MAX) ||
      !header->ParseFromArray(data, static_cast<int>(size))) {
    return WireError(wire::BAD_FRAME,
                     absl::StrCat("frame 0 (", size,
                                  " bytes) is not a sift Header protobuf"));
  }
  return header;
}

size_t PubSize(uint64_t request_id, std::string_view topic,
               std::string_view reply_to, bool confirm,
               std::string_view headers) {
  size_t n = FieldSize(PubBodySize(topic, reply_to, confirm, headers));
  if (request_id != 0) n += 1 + VarintSize(request_id);
  return n;
}

size_t EncodePub(uint64_t request_id, std::string_view topic,
                 std::string_view reply_to, bool confirm,
                 std::string_view headers, char* out) {
  char* p = out;
  if (request_id != 0) {
    *p++ = static_cast<char>(
        Tag(wire::Header::kRequestIdFieldNumber, kVarint));
    p = PutVarint(request_id, p);
  }
  *p++ = static_cast<char>(Tag(wire::Header::kPubFieldNumber,
                               kLengthDelimited));
  p = PutVarint(PubBodySize(topic, reply_to, confirm, headers), p);
  if (!topic.empty()) p = PutBytes(wire::Pub::kTopicFieldNumber, topic, p);
  if (!reply_to.empty()) {
    p = PutBytes(wire::Pub::kReplyToFieldNumber, reply_to, p);
  }
  if (confirm) {
    *p++ = static_cast<char>(Tag(wire::Pub::kConfirmFieldNumber, kVarint));
    *p++ = 1;
  }
  if (!headers.empty()) {
    std::memcpy(p, headers.data(), headers.size());
    p += headers.size();
  }
  return static_cast<size_t>(p - out);
}

std::string EncodeHeader(const wire::Header& header) {
  return header.SerializeAsString();
}

absl::Status WireError(wire::ErrorCode code, absl::string_view message) {
  absl::Status status(StatusCodeFor(code), message);
  status.SetPayload(kWireCodeUrl, absl::Cord(absl::StrCat(static_cast<int>(code))));
  return status;
}

wire::ErrorCode WireCodeOf(const absl::Status& status) {
  if (auto payload = status.GetPayload(kWireCodeUrl)) {
    int code = 0;
    if (absl::SimpleAtoi(std::string(*payload), &code) &&
        wire::ErrorCode_IsValid(code)) {
      return static_cast<wire::ErrorCode>(code);
    }
  }
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return wire::INVALID_REQUEST;
    case absl::StatusCode::kResourceExhausted:
      return wire::TOO_MANY_SUBSCRIPTIONS;
    case absl::StatusCode::kAlreadyExists:
      return wire::DUPLICATE_SID;
    case absl::StatusCode::kNotFound:
      return wire::UNKNOWN_SID;
    case absl::StatusCode::kPermissionDenied:
      return wire::FORBIDDEN;
    default:
      return wire::INTERNAL;
  }
}

absl::StatusCode StatusCodeFor(wire::ErrorCode code) {
  switch (code) {
    case wire::BAD_FRAME:
    case wire::UNKNOWN_COMMAND:
    case wire::INVALID_TOPIC:
    case wire::INVALID_PATTERN:
    case wire::INVALID_QUEUE_GROUP:
    case wire::INVALID_REQUEST:
    case wire::INVALID_HEADER:
    case wire::INVALID_FILTER:
    case wire::INVALID_PLUGIN:
    case wire::INVALID_CONFIG:
    case wire::INVALID_STREAM:
      return absl::StatusCode::kInvalidArgument;
    case wire::VERSION_MISMATCH:
      return absl::StatusCode::kFailedPrecondition;
    case wire::HELLO_REQUIRED:
      return absl::StatusCode::kUnavailable;
    case wire::PAYLOAD_TOO_LARGE:
    case wire::HEADERS_TOO_LARGE:
    case wire::TOO_MANY_SUBSCRIPTIONS:
    case wire::TOO_MANY_CLIENTS:
    case wire::SLOW_CONSUMER:
    case wire::STORE_FULL:
    case wire::QUEUE_FULL:
      return absl::StatusCode::kResourceExhausted;
    case wire::DUPLICATE_SID:
      return absl::StatusCode::kAlreadyExists;
    case wire::UNKNOWN_SID:
    case wire::UNKNOWN_DELIVERY:
    case wire::UNKNOWN_STREAM:
      return absl::StatusCode::kNotFound;
    case wire::FORBIDDEN:
      return absl::StatusCode::kPermissionDenied;
    default:
      return absl::StatusCode::kInternal;
  }
}

const char* CommandName(const wire::Header& header) {
  switch (header.command_case()) {
    case wire::Header::kHello: return "HELLO";
    case wire::Header::kWelcome: return "WELCOME";
    case wire::Header::kPub: return "PUB";
    case wire::Header::kSub: return "SUB";
    case wire::Header::kUnsub: return "UNSUB";
    case wire::Header::kDeliver: return "DELIVER";
    case wire::Header::kPing: return "PING";
    case wire::Header::kPong: return "PONG";
    case wire::Header::kOk: return "OK";
    case wire::Header::kError: return "ERROR";
    case wire::Header::kStats: return "STATS";
    case wire::Header::kStatsReply: return "STATS_REPLY";
    case wire::Header::kBye: return "BYE";
    case wire::Header::kBatch: return "BATCH";
    case wire::Header::kReload: return "RELOAD";
    case wire::Header::kAck: return "ACK";
    case wire::Header::kNack: return "NACK";
    case wire::Header::kProgress: return "PROGRESS";
    case wire::Header::kDeclare: return "DECLARE";
    case wire::Header::kFetch: return "FETCH";
    case wire::Header::kStream: return "STREAM";
    case wire::Header::kStreamReply: return "STREAM_REPLY";
    case wire::Header::COMMAND_NOT_SET: break;
  }
  return "UNKNOWN";
}

}  // namespace sift::protocol
