// The pieces of the protobuf wire format that sift's hand-written encoders
// and decoders share (codec.cc, batch.cc): wire types, field tags, varints.
// For the protocol code (broker/protocol) alone; plain functions, any thread.
#ifndef SIFT_BROKER_PROTOCOL_WIRE_FORMAT_H_
#define SIFT_BROKER_PROTOCOL_WIRE_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sift::protocol::wire_format {

// Field tags are (field_number << 3) | wire_type; all of ours fit in one
// byte.
constexpr uint8_t kVarint = 0;
constexpr uint8_t kLengthDelimited = 2;
constexpr uint8_t Tag(int field, uint8_t wire_type) {
  return static_cast<uint8_t>((field << 3) | wire_type);
}

constexpr size_t VarintSize(uint64_t v) {
  // 7 bits a byte: the bits in use (at least 1), rounded up to sevens. The
  // multiply-and-shift divides by 7 for any bit count of a uint64.
  const uint32_t bits = 64 - static_cast<uint32_t>(__builtin_clzll(v | 1));
  return (bits * 9 + 64) / 64;
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

// Reads a varint of at most `max_bytes` bytes (10 for a uint64; 5 where
// protobuf allows only 32 bits: tags and lengths, which it refuses longer),
// advancing p. False on a truncated or over-long varint.
inline bool GetVarint(const char*& p, const char* end, uint64_t* v,
                      int max_bytes = 10) {
  // One byte (values below 128: most tags and lengths) without the loop.
  if (__builtin_expect(p < end && (static_cast<uint8_t>(*p) & 0x80) == 0,
                       1)) {
    *v = static_cast<uint8_t>(*p++);
    return true;
  }
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

// Reads a length-delimited value (varint length, then the bytes) at p.
inline bool GetBytes(const char*& p, const char* end, std::string_view* out) {
  uint64_t len;
  if (!GetVarint(p, end, &len, 5) || len > static_cast<uint64_t>(end - p)) {
    return false;
  }
  *out = std::string_view(p, len);
  p += len;
  return true;
}

}  // namespace sift::protocol::wire_format

#endif  // SIFT_BROKER_PROTOCOL_WIRE_FORMAT_H_
