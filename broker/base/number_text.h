// Numbers as users type them in flags and settings, read strictly: absl's
// SimpleAtoi and SimpleAtod also take whitespace around the number and a
// '+' sign, so ' 300' or '+5' would pass as 300 and 5 where a quoting or
// typing mistake is far likelier than intent. Plain functions; any thread.
#ifndef SIFT_BROKER_BASE_NUMBER_TEXT_H_
#define SIFT_BROKER_BASE_NUMBER_TEXT_H_

#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"

namespace sift {

namespace number_text_internal {
inline bool Padded(absl::string_view text) {
  return !text.empty() &&
         (absl::ascii_isspace(static_cast<unsigned char>(text.front())) ||
          absl::ascii_isspace(static_cast<unsigned char>(text.back())));
}
inline bool Signed(absl::string_view text) {
  return !text.empty() && text.front() == '+';
}
}  // namespace number_text_internal

// Whether `text` begins or ends with whitespace.
inline bool IsPadded(absl::string_view text) {
  return number_text_internal::Padded(text);
}
inline bool IsPadded(std::string_view text) {
  return IsPadded(absl::string_view(text.data(), text.size()));
}
inline bool IsPadded(const std::string& text) {
  return IsPadded(absl::string_view(text));
}

// SimpleAtoi without surrounding whitespace or a '+' sign ('-' is read, for
// a signed Int, as absl does). False leaves *out unspecified. (Overloads
// for each string type: absl's string_view is its own type in Debian's
// build.)
template <typename Int>
bool ParseInteger(absl::string_view text, Int* out) {
  return !number_text_internal::Padded(text) &&
         !number_text_internal::Signed(text) && absl::SimpleAtoi(text, out);
}
template <typename Int>
bool ParseInteger(std::string_view text, Int* out) {
  return ParseInteger(absl::string_view(text.data(), text.size()), out);
}
template <typename Int>
bool ParseInteger(const std::string& text, Int* out) {
  return ParseInteger(absl::string_view(text), out);
}
template <typename Int>
bool ParseInteger(const char* text, Int* out) {
  return ParseInteger(absl::string_view(text), out);
}

// SimpleAtod without surrounding whitespace or a '+' sign.
inline bool ParseDouble(absl::string_view text, double* out) {
  return !number_text_internal::Padded(text) &&
         !number_text_internal::Signed(text) && absl::SimpleAtod(text, out);
}
inline bool ParseDouble(std::string_view text, double* out) {
  return ParseDouble(absl::string_view(text.data(), text.size()), out);
}
inline bool ParseDouble(const std::string& text, double* out) {
  return ParseDouble(absl::string_view(text), out);
}
inline bool ParseDouble(const char* text, double* out) {
  return ParseDouble(absl::string_view(text), out);
}

}  // namespace sift

#endif  // SIFT_BROKER_BASE_NUMBER_TEXT_H_
