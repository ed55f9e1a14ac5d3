#include "broker/protocol/batch.h"

#include <cstring>

#include "broker/protocol/codec.h"
#include "broker/protocol/wire_format.h"
#include "proto/sift.pb.h"

namespace sift::protocol {
namespace {

using wire_format::kLengthDelimited;
using wire_format::kVarint;
using wire_format::Tag;
using wire_format::VarintSize;

// Reads a varint of at most `max_bytes` bytes (10 for a uint64; 5 where
// protobuf allows only 32 bits: tags and lengths, which it refuses longer).
inline bool GetVarint(const char*& p, const char* end, uint64_t* v,
                      int max_bytes = 10) {
  uint64_t result = 0;
  for (int shift = 0; shift < 7 * max_bytes && p < end; shift += 7) {
    const uint8_t byte = static_cast<uint8_t>(*p++);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

inline bool GetBytes(const char*& p, const char* end, std::string_view* out) {
  uint64_t len;
  if (!GetVarint(p, end, &len, 5) || len > static_cast<uint64_t>(end - p)) {
    return false;
  }
  *out = std::string_view(p, len);
  p += len;
  return true;
}

inline void PutVarint(uint64_t v, std::string* out) {
  char buf[10];
  out->append(buf, static_cast<size_t>(wire_format::PutVarint(v, buf) - buf));
}

// Calls visit(field, is_bytes, varint_value, bytes) for each field of a
// message; stops with false on malformed input, on a field that appears
// twice (protobuf would merge the two: the full decoder must judge), on a
// tag beyond 32 bits, or when visit says false. The fast decoders accept
// only what protobuf reads the same way (fuzz/decoder_checks.cc checks).
template <typename Visit>
bool WalkFields(const char* p, const char* end, Visit visit) {
  uint64_t seen = 0;
  while (p < end) {
    uint64_t key;
    if (!GetVarint(p, end, &key, 5) || key > 0xffffffffu) return false;
    const int field = static_cast<int>(key >> 3);
    if (field >= 64) return false;
    const uint64_t bit = uint64_t{1} << field;
    if (seen & bit) return false;
    seen |= bit;
    const int type = static_cast<int>(key & 7);
    if (type == kVarint) {
      uint64_t v;
      if (!GetVarint(p, end, &v) || !visit(field, false, v, std::string_view()))
        return false;
    } else if (type == kLengthDelimited) {
      std::string_view bytes;
      if (!GetBytes(p, end, &bytes) || !visit(field, true, 0, bytes)) {
        return false;
      }
    } else {
      return false;
    }
  }
  return true;
}

// Finds the single inner message `field` of a Header with an optional
// request_id; false if anything else is there.
bool OuterFields(const char* data, size_t size, int field,
                 uint64_t* request_id, std::string_view* inner) {
  bool found = false;
  bool ok = WalkFields(data, data + size,
                       [&](int f, bool is_bytes, uint64_t v,
                           std::string_view bytes) {
                         if (f == wire::Header::kRequestIdFieldNumber &&
                             !is_bytes) {
                           *request_id = v;
                           return true;
                         }
                         if (f == field && is_bytes) {
                           *inner = bytes;
                           found = true;
                           return true;
                         }
                         return false;
                       });
  return ok && found;
}

}  // namespace

bool DecodePubFast(const char* data, size_t size, PubView* out) {
  *out = PubView{};
  std::string_view inner;
  if (!OuterFields(data, size, wire::Header::kPubFieldNumber,
                   &out->request_id, &inner)) {
    return false;
  }
  return WalkFields(inner.data(), inner.data() + inner.size(),
                    [out](int f, bool is_bytes, uint64_t v,
                          std::string_view bytes) {
                      switch (f) {
                        case wire::Pub::kTopicFieldNumber:
                          if (!is_bytes) return false;
                          out->topic = bytes;
                          return true;
                        case wire::Pub::kReplyToFieldNumber:
                          if (!is_bytes) return false;
                          out->reply_to = bytes;
                          return true;
                        case wire::Pub::kConfirmFieldNumber:
                          if (is_bytes) return false;
                          out->confirm = v != 0;
                          return true;
                        default:
                          return false;
                      }
                    });
}

bool DecodeDeliverFast(const char* data, size_t size, DeliverView* out) {
  *out = DeliverView{};
  std::string_view inner;
  uint64_t request_id = 0;
  if (!OuterFields(data, size, wire::Header::kDeliverFieldNumber, &request_id,
                   &inner)) {
    return false;
  }
  return WalkFields(inner.data(), inner.data() + inner.size(),
                    [out](int f, bool is_bytes, uint64_t v,
                          std::string_view bytes) {
                      switch (f) {
                        case wire::Deliver::kSidFieldNumber:
                          if (is_bytes) return false;
                          out->sid = v;
                          return true;
                        case wire::Deliver::kTopicFieldNumber:
                          if (!is_bytes) return false;
                          out->topic = bytes;
                          return true;
                        case wire::Deliver::kReplyToFieldNumber:
                          if (!is_bytes) return false;
                          out->reply_to = bytes;
                          return true;
                        default:
                          return false;
                      }
                    });
}

namespace {

// Appends one entry: the header (written in place by `encode`, which must
// write exactly header_size bytes) and the payload, each after its length.
template <typename Encode>
void AppendEntry(std::string* body, size_t header_size, Encode encode,
                 std::string_view payload) {
  PutVarint(header_size, body);
  const size_t at = body->size();
  body->resize(at + header_size);
  encode(body->data() + at);
  PutVarint(payload.size(), body);
  body->append(payload.data(), payload.size());
}

}  // namespace

void BatchWriter::AppendPub(uint64_t request_id, std::string_view topic,
                            std::string_view reply_to, bool confirm,
                            std::string_view payload) {
  AppendEntry(
      body_, PubSize(request_id, topic, reply_to, confirm),
      [&](char* out) { EncodePub(request_id, topic, reply_to, confirm, out); },
      payload);
}

void BatchWriter::AppendDeliver(uint64_t sid, std::string_view topic,
                                std::string_view reply_to,
                                std::string_view payload) {
  AppendEntry(
      body_, DeliverSize(sid, topic, reply_to),
      [&](char* out) { EncodeDeliver(sid, topic, reply_to, out); }, payload);
}

PubView PubViewOf(const wire::Header& h) {
  PubView v;
  v.request_id = h.request_id();
  v.topic = h.pub().topic();
  v.reply_to = h.pub().reply_to();
  v.confirm = h.pub().confirm();
  return v;
}

DeliverView DeliverViewOf(const wire::Deliver& d) {
  DeliverView v;
  v.sid = d.sid();
  v.topic = d.topic();
  v.reply_to = d.reply_to();
  return v;
}

uint64_t BatchReader::SkipRest() {
  std::string_view header, payload;
  uint64_t n = 0;
  while (Next(&header, &payload)) ++n;
  return n;
}

bool BatchReader::Next(std::string_view* header, std::string_view* payload) {
  if (p_ >= end_ || error_) return false;
  if (!GetBytes(p_, end_, header) || !GetBytes(p_, end_, payload)) {
    error_ = true;
    return false;
  }
  return true;
}

size_t BatchHeaderSize(uint32_t count) {
  if (count == 0) return 2;  // tag, empty Batch
  return 3 + VarintSize(count);  // tag, length, count's tag, count
}

size_t EncodeBatchHeader(uint32_t count, char* out) {
  // Header{batch: Batch{count}}: the batch field's tag, the inner length,
  // then (unless 0) the count field.
  char* p = out;
  *p++ = static_cast<char>(
      Tag(wire::Header::kBatchFieldNumber, kLengthDelimited));
  if (count == 0) {
    *p++ = 0;
    return static_cast<size_t>(p - out);
  }
  *p++ = static_cast<char>(1 + VarintSize(count));
  *p++ = static_cast<char>(Tag(wire::Batch::kCountFieldNumber, kVarint));
  p = wire_format::PutVarint(count, p);
  return static_cast<size_t>(p - out);
}

}  // namespace sift::protocol
