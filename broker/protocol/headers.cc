#include "broker/protocol/headers.h"

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "broker/protocol/codec.h"
#include "broker/protocol/wire_format.h"

namespace sift::protocol {
namespace {

using wire_format::GetBytes;
using wire_format::GetVarint;
using wire_format::kLengthDelimited;
using wire_format::Tag;
using wire_format::VarintSize;

constexpr uint8_t kEntryTag = Tag(kHeadersFieldNumber, kLengthDelimited);
constexpr uint8_t kKeyTag =
    Tag(wire::HeaderField::kKeyFieldNumber, kLengthDelimited);
constexpr uint8_t kValueTag =
    Tag(wire::HeaderField::kValueFieldNumber, kLengthDelimited);

// RFC 7230 §3.2.6 tchar.
constexpr bool IsTokenChar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
      (c >= '0' && c <= '9')) {
    return true;
  }
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
    case '+': case '-': case '.': case '^': case '_': case '`': case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

// Outcome of reading one entry.
enum class Entry { kOk, kEnd, kMalformed };

// Reads the entry at p: its key and value (empty if absent). Strict: the
// entry's tag must be the headers field, and the HeaderField must hold the
// key once, the value at most once, and nothing else, so every reader
// (protobuf included) sees the same pairs.
Entry ReadEntry(const char*& p, const char* end, std::string_view* key,
                std::string_view* value) {
  if (p >= end) return Entry::kEnd;
  if (static_cast<uint8_t>(*p) != kEntryTag) return Entry::kMalformed;
  ++p;
  std::string_view body;
  if (!GetBytes(p, end, &body)) return Entry::kMalformed;
  const char* q = body.data();
  const char* body_end = q + body.size();
  bool have_key = false, have_value = false;
  *key = {};
  *value = {};
  while (q < body_end) {
    const uint8_t tag = static_cast<uint8_t>(*q++);
    if (tag == kKeyTag && !have_key) {
      if (!GetBytes(q, body_end, key)) return Entry::kMalformed;
      have_key = true;
    } else if (tag == kValueTag && !have_value) {
      if (!GetBytes(q, body_end, value)) return Entry::kMalformed;
      have_value = true;
    } else {
      return Entry::kMalformed;
    }
  }
  return have_key ? Entry::kOk : Entry::kMalformed;
}

}  // namespace

// A key as an error message shows it: quoted, printable ASCII as is, other
// bytes as \xHH, at most 64 bytes of it.
static std::string KeyForHumans(std::string_view key) {
  std::string out = "\"";
  for (char c : key.substr(0, kMaxHeaderKeyBytes)) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '"' && c != '\\') {
      out.push_back(c);
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out += "\\x";
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  if (key.size() > kMaxHeaderKeyBytes) out += "...";
  return out + "\"";
}

bool IsHeaderKeyChar(unsigned char c) { return IsTokenChar(c); }

bool IsHeaderKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxHeaderKeyBytes) return false;
  for (char c : key) {
    if (!IsTokenChar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::Status ValidateHeaders(std::string_view wire,
                             const HeaderLimits& limits) {
  const char* p = wire.data();
  const char* end = p + wire.size();
  uint64_t count = 0, bytes = 0;
  std::string_view key, value;
  for (;;) {
    const Entry e = ReadEntry(p, end, &key, &value);
    if (e == Entry::kEnd) break;
    if (e == Entry::kMalformed) {
      return WireError(
          wire::INVALID_HEADER,
          absl::StrCat("header ", count + 1,
                       " is malformed (a HeaderField needs its key once, its "
                       "value at most once, and nothing else)"));
    }
    if (!IsHeaderKey(key)) {
      return WireError(
          wire::INVALID_HEADER,
          absl::StrCat("header ", count + 1, ": key ",
                       key.empty() ? std::string("is empty")
                                   : absl::StrCat(KeyForHumans(key), " (",
                                                  key.size(),
                                                  " bytes) is not a token"),
                       " (1 to 64 of A-Z a-z 0-9 ! # $ % & ' * + - . ^ _ ` | "
                       "~)"));
    }
    ++count;
    bytes += key.size() + value.size();
  }
  if (count > limits.max_count) {
    return WireError(wire::HEADERS_TOO_LARGE,
                     absl::StrCat(count, " headers; at most ",
                                  limits.max_count, " are allowed"));
  }
  if (bytes > limits.max_bytes) {
    return WireError(wire::HEADERS_TOO_LARGE,
                     absl::StrCat("headers hold ", bytes,
                                  " key and value bytes; at most ",
                                  limits.max_bytes, " are allowed"));
  }
  return absl::OkStatus();
}

bool HeaderReader::Next(std::string_view* key, std::string_view* value) {
  if (error_) return false;
  switch (ReadEntry(p_, end_, key, value)) {
    case Entry::kOk:
      return true;
    case Entry::kEnd:
      return false;
    case Entry::kMalformed:
      break;
  }
  error_ = true;
  return false;
}

size_t HeaderEntrySize(std::string_view key, std::string_view value) {
  size_t body = 1 + VarintSize(key.size()) + key.size();
  if (!value.empty()) body += 1 + VarintSize(value.size()) + value.size();
  return 1 + VarintSize(body) + body;
}

void AppendHeader(std::string_view key, std::string_view value,
                  std::string* out) {
  const size_t at = out->size();
  out->resize(at + HeaderEntrySize(key, value));
  char* p = out->data() + at;
  size_t body = 1 + VarintSize(key.size()) + key.size();
  if (!value.empty()) body += 1 + VarintSize(value.size()) + value.size();
  *p++ = static_cast<char>(kEntryTag);
  p = wire_format::PutVarint(body, p);
  *p++ = static_cast<char>(kKeyTag);
  p = wire_format::PutVarint(key.size(), p);
  if (!key.empty()) std::memcpy(p, key.data(), key.size());
  p += key.size();
  if (!value.empty()) {
    *p++ = static_cast<char>(kValueTag);
    p = wire_format::PutVarint(value.size(), p);
    std::memcpy(p, value.data(), value.size());
  }
}

void AppendHeadersOf(
    const google::protobuf::RepeatedPtrField<wire::HeaderField>& headers,
    std::string* out) {
  for (const wire::HeaderField& h : headers) AppendHeader(h.key(), h.value(), out);
}

bool DecodeHeaders(
    std::string_view wire,
    std::vector<std::pair<std::string_view, std::string_view>>* out) {
  out->clear();
  HeaderReader reader(wire);
  std::string_view key, value;
  while (reader.Next(&key, &value)) out->emplace_back(key, value);
  return !reader.error();
}

}  // namespace sift::protocol
