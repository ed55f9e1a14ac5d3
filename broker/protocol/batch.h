// Batches: many PUBs (client -> broker) or DELIVERs and replies (broker ->
// client) packed into one ZeroMQ frame, each entry a varint-length header then a
// varint-length payload (see Batch in proto/sift.proto). Also the zero-copy
// decoders (and direct encoders) of the headers that travel most: PUB,
// DELIVER, OK and ACK.
//
// BatchWriter appends entries into a caller-owned string; BatchReader walks a
// received frame without copying. Both are plain values owned by one thread.
#ifndef SIFT_BROKER_PROTOCOL_BATCH_H_
#define SIFT_BROKER_PROTOCOL_BATCH_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "broker/protocol/wire_format.h"
#include "proto/sift.pb.h"

namespace sift::protocol {

// A PUB header seen in place: views into the frame it was decoded from.
struct PubView {
  uint64_t request_id = 0;
  std::string_view topic;
  std::string_view reply_to;
  bool confirm = false;
  // Rare options, read by the full decoder only (the fast one refuses
  // them): retain, and routing later.
  bool retain = false;
  uint64_t delay_ms = 0;
  uint64_t deliver_at_ms = 0;
  // The raw header entries (broker/protocol/headers.h); empty if none. Not
  // yet checked: the router validates them.
  std::string_view headers;
};

// A DELIVER header seen in place.
struct DeliverView {
  uint64_t sid = 0;
  std::string_view topic;
  std::string_view reply_to;
  std::string_view headers;  // raw header entries, as the broker sent them
  uint64_t delivery_id = 0;  // explicit-ack subscriptions only
  uint32_t attempt = 0;
  bool retained = false;     // a retained value sent to a new subscription
};

// An OK reply (broker -> client): the answer to request `request_id`, with
// the Ok fields a confirmed publish or a FETCH carries (0 / false: absent).
struct OkView {
  uint64_t request_id = 0;
  uint64_t stream_seq = 0;
  bool duplicate = false;
  uint32_t delivered = 0;
};

// Decode a Header that holds exactly a PUB (or a DELIVER, or an OK) and
// nothing the fast path does not know. Return false otherwise (including
// malformed input): the caller then falls back to HeaderDecoder, which tells
// them apart and reports errors.
bool DecodePubFast(const char* data, size_t size, PubView* out);
bool DecodeDeliverFast(const char* data, size_t size, DeliverView* out);
bool DecodeOkFast(const char* data, size_t size, OkView* out);

// An ACK (client -> broker) seen in place: its delivery ids, as protobuf
// packs them (one varint each). DecodeAckFast accepts only ids below 2^63
// (at most 9 bytes each), so that reading them back cannot fail.
struct AckView {
  uint64_t request_id = 0;
  std::string_view packed_ids;
};
// With `ids`, also replaces *ids with the ids, read in the same walk that
// checks them (its content is unspecified when false is returned).
bool DecodeAckFast(const char* data, size_t size, AckView* out,
                   std::vector<uint64_t>* ids = nullptr);
// Reads the first id of *packed (AckView::packed_ids, or what is left of
// it) into *id and removes it from *packed; false once *packed is empty.
bool NextPackedId(std::string_view* packed, uint64_t* id);
// Writes Header{ack{delivery_ids}} (request_id 0), the bytes protobuf
// writes, into *out (replacing its content). REQUIRES: ids non-empty.
void EncodeAck(const uint64_t* ids, size_t count, std::string* out);

// The same views of headers the full decoder read (the fast ones refused
// them): they point into `h` or `d`, and the header entries, re-encoded, into
// *headers_scratch, so are valid while those live.
// REQUIRES: h.has_pub().
PubView PubViewOf(const wire::Header& h, std::string* headers_scratch);
DeliverView DeliverViewOf(const wire::Deliver& d,
                          std::string* headers_scratch);

// Appends entries to a batch body.
class BatchWriter {
 public:
  explicit BatchWriter(std::string* body) : body_(body) {}

  // `headers`: raw header entries (broker/protocol/headers.h), or empty.
  void AppendPub(uint64_t request_id, std::string_view topic,
                 std::string_view reply_to, bool confirm,
                 std::string_view headers, std::string_view payload);
  void AppendDeliver(uint64_t sid, std::string_view topic,
                     std::string_view reply_to, std::string_view headers,
                     std::string_view payload, uint64_t delivery_id = 0,
                     uint32_t attempt = 0, bool retained = false);
  // A header-only reply (OK or ERROR, broker -> client): its entry has an
  // empty payload.
  void AppendReply(const wire::Header& reply);
  // AppendReply of Header{request_id, ok{...}}, written directly (the same
  // bytes protobuf writes): one per confirmed publish.
  void AppendOk(const OkView& ok);

 private:
  std::string* body_;
};

// Walks the entries of a batch body.
class BatchReader {
 public:
  BatchReader(const char* data, size_t size)
      : p_(data), end_(data + size) {}

  // Sets the next entry's header and payload bytes. False at the end, or if
  // the body is malformed (then error() is true).
  bool Next(std::string_view* header, std::string_view* payload);
  // Walks past the remaining entries; returns how many there were.
  uint64_t SkipRest();
  bool error() const { return error_; }

 private:
  const char* p_;
  const char* end_;
  bool error_ = false;
};

// Whether a header frame announces a BATCH, judged by its first byte (the tag
// of Header's batch field) without decoding it.
inline bool IsBatchHeader(std::string_view header) {
  return !header.empty() &&
         header[0] == static_cast<char>(wire_format::Tag(
                          wire::Header::kBatchFieldNumber,
                          wire_format::kLengthDelimited));
}

// The size of the Header that announces a batch of `count` entries, and its
// encoding into out[0, BatchHeaderSize(count)).
size_t BatchHeaderSize(uint32_t count);
size_t EncodeBatchHeader(uint32_t count, char* out);

}  // namespace sift::protocol

#endif  // SIFT_BROKER_PROTOCOL_BATCH_H_
