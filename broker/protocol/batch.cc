#include "broker/protocol/batch.h"

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "broker/protocol/codec.h"
#include "broker/protocol/headers.h"
#include "broker/protocol/wire_format.h"
#include "proto/sift.pb.h"

namespace sift::protocol {
namespace {

using wire_format::kLengthDelimited;
using wire_format::kVarint;
using wire_format::Tag;
using wire_format::VarintSize;
using wire_format::GetBytes;
using wire_format::GetVarint;

// Calls visit(field, is_bytes, varint_value, bytes, field_begin) for each
// field of a message (field_begin: where the field's tag starts); stops with
// false on malformed input, on a field that appears twice (protobuf would
// merge the two: the full decoder must judge) unless it is `repeated_field`,
// on a tag beyond 32 bits, or when visit says false. The fast decoders accept
// only what protobuf reads the same way (fuzz/decoder_checks.cc checks).
template <typename Visit>
bool WalkFields(const char* p, const char* end, Visit visit,
                int repeated_field = -1) {
  uint64_t seen = 0;
  while (p < end) {
    const char* field_begin = p;
    uint64_t key;
    if (!GetVarint(p, end, &key, 5) || key > 0xffffffffu) return false;
    const int field = static_cast<int>(key >> 3);
    if (field >= 64) return false;
    const uint64_t bit = uint64_t{1} << field;
    if ((seen & bit) && field != repeated_field) return false;
    seen |= bit;
    const int type = static_cast<int>(key & 7);
    if (type == kVarint) {
      uint64_t v;
      if (!GetVarint(p, end, &v) ||
          !visit(field, false, v, std::string_view(), field_begin)) {
        return false;
      }
    } else if (type == kLengthDelimited) {
      std::string_view bytes;
      if (!GetBytes(p, end, &bytes) ||
          !visit(field, true, 0, bytes, field_begin)) {
        return false;
      }
    } else {
      return false;
    }
  }
  return true;
}

// Extends *span, the raw bytes of a repeated field's entries seen so far, by
// the entry [begin, end). False if the entry does not follow the span
// directly (entries interleaved with other fields: left to protobuf).
inline bool ExtendSpan(std::string_view* span, const char* begin,
                       const char* end) {
  if (span->empty()) {
    *span = std::string_view(begin, static_cast<size_t>(end - begin));
    return true;
  }
  if (span->data() + span->size() != begin) return false;
  *span = std::string_view(span->data(),
                           static_cast<size_t>(end - span->data()));
  return true;
}

// Finds the single inner message `field` of a Header with an optional
// request_id; false if anything else is there.
bool OuterFields(const char* data, size_t size, int field,
                 uint64_t* request_id, std::string_view* inner) {
  bool found = false;
  bool ok = WalkFields(data, data + size,
                       [&](int f, bool is_bytes, uint64_t v,
                           std::string_view bytes, const char*) {
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
  return WalkFields(
      inner.data(), inner.data() + inner.size(),
      [out](int f, bool is_bytes, uint64_t v, std::string_view bytes,
            const char* begin) {
                      switch (f) {
                        case wire::Pub::kHeadersFieldNumber:
                          return is_bytes &&
                                 ExtendSpan(&out->headers, begin,
                                            bytes.data() + bytes.size());
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
                    },
      wire::Pub::kHeadersFieldNumber);
}

bool DecodeDeliverFast(const char* data, size_t size, DeliverView* out) {
  *out = DeliverView{};
  std::string_view inner;
  uint64_t request_id = 0;
  if (!OuterFields(data, size, wire::Header::kDeliverFieldNumber, &request_id,
                   &inner)) {
    return false;
  }
  return WalkFields(
      inner.data(), inner.data() + inner.size(),
      [out](int f, bool is_bytes, uint64_t v, std::string_view bytes,
            const char* begin) {
                      switch (f) {
                        case wire::Deliver::kHeadersFieldNumber:
                          return is_bytes &&
                                 ExtendSpan(&out->headers, begin,
                                            bytes.data() + bytes.size());
                        case wire::Deliver::kSidFieldNumber:
                          if (is_bytes) return false;
                          out->sid = v;
                          return true;
                        case wire::Deliver::kDeliveryIdFieldNumber:
                          if (is_bytes) return false;
                          out->delivery_id = v;
                          return true;
                        case wire::Deliver::kAttemptFieldNumber:
                          if (is_bytes || v > 0xffffffffu) return false;
                          out->attempt = static_cast<uint32_t>(v);
                          return true;
                        case wire::Deliver::kRetainedFieldNumber:
                          if (is_bytes) return false;
                          out->retained = v != 0;
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
                    },
      wire::Deliver::kHeadersFieldNumber);
}

bool DecodeOkFast(const char* data, size_t size, OkView* out) {
  *out = OkView{};
  std::string_view inner;
  if (!OuterFields(data, size, wire::Header::kOkFieldNumber, &out->request_id,
                   &inner)) {
    return false;
  }
  return WalkFields(inner.data(), inner.data() + inner.size(),
                    [out](int f, bool is_bytes, uint64_t v, std::string_view,
                          const char*) {
                      if (is_bytes) return false;
                      switch (f) {
                        case wire::Ok::kStreamSeqFieldNumber:
                          out->stream_seq = v;
                          return true;
                        case wire::Ok::kDuplicateFieldNumber:
                          out->duplicate = v != 0;
                          return true;
                        case wire::Ok::kDeliveredFieldNumber:
                          // protobuf would keep the low 32 bits: its call.
                          if (v > 0xffffffffu) return false;
                          out->delivered = static_cast<uint32_t>(v);
                          return true;
                        default:
                          return false;
                      }
                    });
}

bool DecodeAckFast(const char* data, size_t size, AckView* out,
                   std::vector<uint64_t>* ids) {
  *out = AckView{};
  if (ids != nullptr) ids->clear();
  std::string_view inner;
  if (!OuterFields(data, size, wire::Header::kAckFieldNumber, &out->request_id,
                   &inner)) {
    return false;
  }
  const bool ok = WalkFields(
      inner.data(), inner.data() + inner.size(),
      [out](int f, bool is_bytes, uint64_t, std::string_view bytes,
            const char*) {
        if (f != wire::Ack::kDeliveryIdsFieldNumber || !is_bytes) return false;
        out->packed_ids = bytes;
        return true;
      });
  if (!ok) return false;
  // Every id a whole varint of at most 9 bytes: beyond, protobuf's reading
  // (and 64-bit truncation) is its own to judge.
  const char* p = out->packed_ids.data();
  const char* end = p + out->packed_ids.size();
  while (p < end) {
    uint64_t id;
    if (!GetVarint(p, end, &id, 9)) return false;
    if (ids != nullptr) ids->push_back(id);
  }
  return true;
}

bool NextPackedId(std::string_view* packed, uint64_t* id) {
  if (packed->empty()) return false;
  const char* p = packed->data();
  const char* end = p + packed->size();
  if (!GetVarint(p, end, id, 9)) return false;
  packed->remove_prefix(static_cast<size_t>(p - packed->data()));
  return true;
}

void EncodeAck(const uint64_t* ids, size_t count, std::string* out) {
  size_t packed = 0;
  for (size_t i = 0; i < count; ++i) packed += VarintSize(ids[i]);
  const size_t inner = 1 + VarintSize(packed) + packed;
  out->resize(2 + VarintSize(inner) + inner);  // field 17's tag takes 2
  char* p = out->data();
  p = wire_format::PutVarint(
      Tag(wire::Header::kAckFieldNumber, kLengthDelimited), p);
  p = wire_format::PutVarint(inner, p);
  *p++ = static_cast<char>(
      Tag(wire::Ack::kDeliveryIdsFieldNumber, kLengthDelimited));
  p = wire_format::PutVarint(packed, p);
  for (size_t i = 0; i < count; ++i) p = wire_format::PutVarint(ids[i], p);
}

namespace {

// Appends one entry: the header (written in place by `encode`, which must
// write exactly header_size bytes) and the payload, each after its length.
template <typename Encode>
void AppendEntry(std::string* body, size_t header_size, Encode encode,
                 std::string_view payload) {
  // One resize for the two lengths and the header (this is every
  // delivery's path), then the payload.
  const size_t at = body->size();
  body->resize(at + wire_format::VarintSize(header_size) + header_size +
               wire_format::VarintSize(payload.size()));
  char* p = wire_format::PutVarint(header_size, body->data() + at);
  encode(p);
  wire_format::PutVarint(payload.size(), p + header_size);
  body->append(payload.data(), payload.size());
}

}  // namespace

void BatchWriter::AppendPub(uint64_t request_id, std::string_view topic,
                            std::string_view reply_to, bool confirm,
                            std::string_view headers,
                            std::string_view payload) {
  AppendEntry(
      body_, PubSize(request_id, topic, reply_to, confirm, headers),
      [&](char* out) {
        EncodePub(request_id, topic, reply_to, confirm, headers, out);
      },
      payload);
}

void BatchWriter::AppendDeliver(uint64_t sid, std::string_view topic,
                                std::string_view reply_to,
                                std::string_view headers,
                                std::string_view payload,
                                uint64_t delivery_id, uint32_t attempt,
                                bool retained) {
  const size_t body = codec_internal::DeliverBodySize(
      sid, topic, reply_to, headers, delivery_id, attempt, retained);
  AppendEntry(
      body_, 1 + VarintSize(body) + body,
      [&](char* out) {
        codec_internal::EncodeDeliverSized(body, sid, topic, reply_to, headers,
                                           delivery_id, attempt, retained,
                                           out);
      },
      payload);
}

void BatchWriter::AppendReply(const wire::Header& reply) {
  AppendEntry(
      body_, reply.ByteSizeLong(),
      [&](char* out) {
        reply.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(out));
      },
      {});
}

void BatchWriter::AppendOk(const OkView& ok) {
  // Header{request_id = 1, ok = 10{stream_seq = 1, duplicate = 2,
  // delivered = 3}}, fields in number order, zeros left out, as protobuf.
  size_t inner = 0;
  if (ok.stream_seq != 0) inner += 1 + VarintSize(ok.stream_seq);
  if (ok.duplicate) inner += 2;
  if (ok.delivered != 0) inner += 1 + VarintSize(ok.delivered);
  size_t size = 1 + VarintSize(inner) + inner;
  if (ok.request_id != 0) size += 1 + VarintSize(ok.request_id);
  AppendEntry(
      body_, size,
      [&](char* p) {
        using wire_format::PutVarint;
        if (ok.request_id != 0) {
          *p++ = static_cast<char>(
              Tag(wire::Header::kRequestIdFieldNumber, kVarint));
          p = PutVarint(ok.request_id, p);
        }
        *p++ = static_cast<char>(
            Tag(wire::Header::kOkFieldNumber, kLengthDelimited));
        p = PutVarint(inner, p);
        if (ok.stream_seq != 0) {
          *p++ = static_cast<char>(
              Tag(wire::Ok::kStreamSeqFieldNumber, kVarint));
          p = PutVarint(ok.stream_seq, p);
        }
        if (ok.duplicate) {
          *p++ = static_cast<char>(
              Tag(wire::Ok::kDuplicateFieldNumber, kVarint));
          *p++ = 1;
        }
        if (ok.delivered != 0) {
          *p++ = static_cast<char>(
              Tag(wire::Ok::kDeliveredFieldNumber, kVarint));
          p = PutVarint(ok.delivered, p);
        }
      },
      {});
}

PubView PubViewOf(const wire::Header& h, std::string* headers_scratch) {
  PubView v;
  v.request_id = h.request_id();
  v.topic = h.pub().topic();
  v.reply_to = h.pub().reply_to();
  v.confirm = h.pub().confirm();
  v.retain = h.pub().retain();
  v.delay_ms = h.pub().delay_ms();
  v.deliver_at_ms = h.pub().deliver_at_ms();
  headers_scratch->clear();
  AppendHeadersOf(h.pub().headers(), headers_scratch);
  v.headers = *headers_scratch;
  return v;
}

DeliverView DeliverViewOf(const wire::Deliver& d,
                          std::string* headers_scratch) {
  DeliverView v;
  v.sid = d.sid();
  v.topic = d.topic();
  v.reply_to = d.reply_to();
  v.delivery_id = d.delivery_id();
  v.attempt = d.attempt();
  v.retained = d.retained();
  headers_scratch->clear();
  AppendHeadersOf(d.headers(), headers_scratch);
  v.headers = *headers_scratch;
  return v;
}

uint64_t BatchReader::SkipRest() {
  // Each entry's position depends on the lengths before it, so a walk over
  // a body the network thread has just written would wait for its cache
  // lines one by one. Asking for them this far ahead overlaps the waits.
  constexpr ptrdiff_t kPrefetchBytes = 1024;
  uintptr_t prefetched = reinterpret_cast<uintptr_t>(p_);
  std::string_view header, payload;
  uint64_t n = 0;
  for (;;) {
    const uintptr_t want = reinterpret_cast<uintptr_t>(
        end_ - p_ > kPrefetchBytes ? p_ + kPrefetchBytes : end_);
    for (; prefetched < want; prefetched += 64) {
      __builtin_prefetch(reinterpret_cast<const void*>(prefetched));
    }
    if (!Next(&header, &payload)) return n;
    ++n;
  }
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
