// The pieces of the protobuf wire format that sift's hand-written encoders
// and decoders share (codec.cc, batch.cc): wire types, field tags, varints.
// For the protocol code (broker/protocol) alone; plain functions, any thread.
#ifndef SIFT_BROKER_PROTOCOL_WIRE_FORMAT_H_
#define SIFT_BROKER_PROTOCOL_WIRE_FORMAT_H_

#include <cstddef>
#include <cstdint>

namespace sift::protocol::wire_format {

// Field tags are (field_number << 3) | wire_type; all of ours fit in one
// byte.
constexpr uint8_t kVarint = 0;
constexpr uint8_t kLengthDelimited = 2;
constexpr uint8_t Tag(int field, uint8_t wire_type) {
  return static_cast<uint8_t>((field << 3) | wire_type);
}

constexpr size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Writes `v` at p[0, VarintSize(v)); returns the end.
inline char* PutVarint(uint64_t v, char* p) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

}  // namespace sift::protocol::wire_format

#endif  // SIFT_BROKER_PROTOCOL_WIRE_FORMAT_H_
