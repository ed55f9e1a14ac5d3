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

// `text` if it is at most kMaxQuotedBytes long, else its first bytes (cut
// before a UTF-8 character, not inside one) then "... (N bytes)". Bytes
// that are not UTF-8 are left to the caller (ToValidUtf8 when sent).
inline std::string Bounded(std::string_view text) {
  if (text.size() <= kMaxQuotedBytes) return std::string(text);
  size_t cut = kMaxQuotedBytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) {
    --cut;
  }
  return absl::StrCat(AV(text.substr(0, cut)), "... (", text.size(),
                      " bytes)");
}

// Bounded(text) in double quotes: "orders", or "aaaa"... (3000 bytes).
inline std::string Quoted(std::string_view text) {
  if (text.size() <= kMaxQuotedBytes) return absl::StrCat("\"", AV(text), "\"");
  const std::string cut = Bounded(text);
  const size_t dots = cut.rfind("... (");
  return absl::StrCat("\"", AV(std::string_view(cut).substr(0, dots)), "\"",
                      AV(std::string_view(cut).substr(dots)));
}

}  // namespace sift

#endif  // SIFT_BROKER_BASE_QUOTED_TEXT_H_
