#include "broker/store/stream_record.h"

#include <libdeflate.h>

#include <cstring>

namespace sift::store {
namespace {

inline void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline void PutU64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
inline uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// CRC-32 over body_len's 4 bytes and the body.
uint32_t FrameCrc(const char* len_bytes, const char* body, size_t body_len) {
  const uint32_t crc = libdeflate_crc32(0, len_bytes, 4);
  return libdeflate_crc32(crc, body, body_len);
}

}  // namespace

void EncodeRecord(const RecordView& r, std::string* out) {
  const size_t start = out->size();
  const size_t total = EncodedSize(r);
  out->resize(start + total);
  char* p = out->data() + start;
  const size_t body_len = total - kFrameHeaderBytes;
  PutU32(p, static_cast<uint32_t>(body_len));
  char* body = p + kFrameHeaderBytes;
  PutU64(body, r.seq);
  PutU64(body + 8, static_cast<uint64_t>(r.unix_ms));
  PutU32(body + 16, static_cast<uint32_t>(r.msg_id.size()));
  PutU32(body + 20, static_cast<uint32_t>(r.topic.size()));
  PutU32(body + 24, static_cast<uint32_t>(r.reply_to.size()));
  PutU32(body + 28, static_cast<uint32_t>(r.headers.size()));
  PutU32(body + 32, static_cast<uint32_t>(r.payload.size()));
  char* q = body + kBodyFixedBytes;
  for (std::string_view field :
       {r.msg_id, r.topic, r.reply_to, r.headers, r.payload}) {
    if (!field.empty()) std::memcpy(q, field.data(), field.size());
    q += field.size();
  }
  PutU32(p + 4, FrameCrc(p, body, body_len));
}

std::string EncodeSegmentHeader(uint64_t base_seq) {
  std::string h(kSegmentHeaderBytes, '\0');
  std::memcpy(h.data(), kSegmentMagic, sizeof(kSegmentMagic));
  PutU64(h.data() + 8, base_seq);
  return h;
}

bool DecodeSegmentHeader(std::string_view data, uint64_t* base_seq) {
  if (data.size() < kSegmentHeaderBytes) return false;
  if (std::memcmp(data.data(), kSegmentMagic, sizeof(kSegmentMagic)) != 0) {
    return false;
  }
  *base_seq = GetU64(data.data() + 8);
  return true;
}

DecodeResult DecodeRecord(std::string_view data, size_t max_body,
                          RecordView* r, size_t* frame_bytes) {
  *frame_bytes = 0;
  if (data.size() < kFrameHeaderBytes) return DecodeResult::kShort;
  const char* p = data.data();
  const uint32_t body_len = GetU32(p);
  if (body_len < kBodyFixedBytes || body_len > max_body) {
    return DecodeResult::kBadLength;
  }
  *frame_bytes = kFrameHeaderBytes + body_len;
  if (data.size() < *frame_bytes) return DecodeResult::kShort;
  const char* body = p + kFrameHeaderBytes;
  if (GetU32(p + 4) != FrameCrc(p, body, body_len)) {
    return DecodeResult::kBadChecksum;
  }
  uint64_t lens[5];
  uint64_t sum = 0;
  for (int i = 0; i < 5; ++i) {
    lens[i] = GetU32(body + 16 + 4 * i);
    sum += lens[i];
  }
  if (sum != body_len - kBodyFixedBytes) return DecodeResult::kBadLength;
  r->seq = GetU64(body);
  r->unix_ms = static_cast<int64_t>(GetU64(body + 8));
  const char* q = body + kBodyFixedBytes;
  std::string_view* fields[5] = {&r->msg_id, &r->topic, &r->reply_to,
                                 &r->headers, &r->payload};
  for (int i = 0; i < 5; ++i) {
    *fields[i] = std::string_view(q, lens[i]);
    q += lens[i];
  }
  return DecodeResult::kOk;
}

std::string_view DecodeResultName(DecodeResult result) {
  switch (result) {
    case DecodeResult::kOk:
      return "ok";
    case DecodeResult::kShort:
      return "short record (torn write)";
    case DecodeResult::kBadLength:
      return "bad record length";
    case DecodeResult::kBadChecksum:
      return "bad checksum";
  }
  return "unknown";
}

}  // namespace sift::store
