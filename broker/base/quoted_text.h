// Names a client sent, for the broker's error messages and log lines. A
// name that names nothing (an unknown stream or plugin) may be of any
// length up to frame 0's bound (tens of KB), and echoing it whole made
// errors of that size, twice over in a log line; so at most
// kMaxQuotedBytes of it are shown, as topic errors show theirs. Plain
// functions; any thread.
#ifndef SIFT_BROKER_BASE_QUOTED_TEXT_H_
#define SIFT_BROKER_BASE_QUOTED_TEXT_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "broker/base/absl_view.h"

namespace sift {

inline constexpr size_t kMaxQuotedBytes = 80;

// How many of `text`'s bytes an error shows: all of them up to
// kMaxQuotedBytes, else kMaxQuotedBytes cut back to the start of a UTF-8
// character, never inside one.
inline size_t ShownBytes(std::string_view text) {
  if (text.size() <= kMaxQuotedBytes) return text.size();
  size_t cut = kMaxQuotedBytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) {
    --cut;
  }
  return cut;
}

// What follows the shown bytes: "" for the whole text, else
// "... (N bytes)".
inline std::string CutNote(std::string_view text) {
  return ShownBytes(text) == text.size()
             ? std::string()
             : absl::StrCat("... (", text.size(), " bytes)");
}

// `text`, or its first bytes then "... (N bytes)". Bytes that are not
// UTF-8 are left to the caller (ToValidUtf8 when sent).
inline std::string Bounded(std::string_view text) {
  return absl::StrCat(AV(text.substr(0, ShownBytes(text))), CutNote(text));
}

// Bounded(text) with the shown bytes in double quotes: "orders", or
// "aaaa"... (3000 bytes).
inline std::string Quoted(std::string_view text) {
  return absl::StrCat("\"", AV(text.substr(0, ShownBytes(text))), "\"",
                      CutNote(text));
}

}  // namespace sift

#endif  // SIFT_BROKER_BASE_QUOTED_TEXT_H_
