// UTF-8 checks for text the broker quotes back to clients and into its log.
// A proto3 `string` field must hold valid UTF-8, or the receiver's parse
// fails (Error.message quoting a client's stream name with a byte 0xE9 left
// the client without its answer), so the broker passes such text through
// ToValidUtf8 first. Plain functions; any thread.
#ifndef SIFT_BROKER_BASE_UTF8_TEXT_H_
#define SIFT_BROKER_BASE_UTF8_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sift {

// Length of the valid UTF-8 sequence at the start of `s` (2 to 4 bytes), or
// 0 if it is not one. Refuses overlong forms, surrogates and code points
// above U+10FFFF (RFC 3629). REQUIRES: s is non-empty and s[0] >= 0x80.
inline size_t Utf8SequenceLength(std::string_view s) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  size_t len;
  uint32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07;
  } else {
    return 0;  // Continuation byte, overlong 2-byte lead, or beyond U+10FFFF.
  }
  if (s.size() < len) return 0;
  for (size_t i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
  if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
  return len;
}

// `text` with every byte that is not part of valid UTF-8 written as \xHH
// (uppercase hex, as the broker escapes topics), and with `controls` also
// the C0 control characters and DEL (\n, \r and \t as such, as sift
// writes them); the rest of valid UTF-8, ASCII included, is kept as it is.
inline std::string EscapeForUtf8(std::string_view text, bool controls) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (controls && (c < 0x20 || c == 0x7F)) {
        if (c == '\n') {
          out.append("\\n");
        } else if (c == '\r') {
          out.append("\\r");
        } else if (c == '\t') {
          out.append("\\t");
        } else {
          out.append({'\\', 'x', kHex[c >> 4], kHex[c & 0xF]});
        }
      } else {
        out.push_back(static_cast<char>(c));
      }
      ++i;
      continue;
    }
    if (const size_t len = Utf8SequenceLength(text.substr(i)); len > 0) {
      out.append(text.substr(i, len));
      i += len;
      continue;
    }
    out.append({'\\', 'x', kHex[c >> 4], kHex[c & 0xF]});
    ++i;
  }
  return out;
}

// Valid UTF-8 for a proto3 string: bytes that are not UTF-8 as \xHH.
inline std::string ToValidUtf8(std::string_view text) {
  return EscapeForUtf8(text, /*controls=*/false);
}

// An ERROR's message: valid UTF-8 and one line, since it may quote a
// client's names as given ("no stream \"a\nb\"", with a backslash and an
// n): control characters escaped too, so no client prints a newline or a
// terminal escape from it.
inline std::string ToOneLineUtf8(std::string_view text) {
  return EscapeForUtf8(text, /*controls=*/true);
}

}  // namespace sift

#endif  // SIFT_BROKER_BASE_UTF8_TEXT_H_
