// Numbers as users type them in flags and settings, read strictly: plain
// decimal, as a person writes a count or a share. absl's SimpleAtoi and
// SimpleAtod also take whitespace around the number and a '+' sign, and
// SimpleAtod hex ("0x0.1p0" is 0.0625), "inf" and "nan", so ' 300', '+5' or
// '0x10' would pass where a quoting or typing mistake is far likelier than
// intent. A '-' sign is read only before a number below zero: callers
// refuse negatives by value (n < min), which "-0" would pass as 0. Plain
// functions; any thread.
#ifndef SIFT_BROKER_BASE_NUMBER_TEXT_H_
#define SIFT_BROKER_BASE_NUMBER_TEXT_H_

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace sift {

namespace number_text_internal {
inline bool Padded(absl::string_view text) {
  return !text.empty() &&
         (absl::ascii_isspace(static_cast<unsigned char>(text.front())) ||
          absl::ascii_isspace(static_cast<unsigned char>(text.back())));
}
inline bool Negative(absl::string_view text) {
  return !text.empty() && text.front() == '-';
}
// Removes the ASCII digits at the front of *text; returns how many.
inline size_t ConsumeDigits(absl::string_view* text) {
  size_t n = 0;
  while (n < text->size() &&
         absl::ascii_isdigit(static_cast<unsigned char>((*text)[n]))) {
    ++n;
  }
  text->remove_prefix(n);
  return n;
}
// An optional '-', then digits: "300", "-7".
inline bool PlainInteger(absl::string_view text) {
  absl::ConsumePrefix(&text, "-");
  return ConsumeDigits(&text) > 0 && text.empty();
}
// An optional '-', digits with an optional '.' among or around them (one
// digit at least), and an optional exponent: "2", "0.25", ".5", "1e3",
// "2.5E-1".
inline bool PlainDecimal(absl::string_view text) {
  absl::ConsumePrefix(&text, "-");
  size_t digits = ConsumeDigits(&text);
  if (absl::ConsumePrefix(&text, ".")) digits += ConsumeDigits(&text);
  if (digits == 0) return false;
  if (absl::ConsumePrefix(&text, "e") || absl::ConsumePrefix(&text, "E")) {
    if (!absl::ConsumePrefix(&text, "+")) absl::ConsumePrefix(&text, "-");
    if (ConsumeDigits(&text) == 0) return false;
  }
  return text.empty();
}
}  // namespace number_text_internal

// Whether `text` is ASCII digits only, one at least: a number in the form a
// caller takes, which it may have refused for its size alone.
inline bool IsDigits(absl::string_view text) {
  absl::string_view rest = text;
  return number_text_internal::ConsumeDigits(&rest) > 0 && rest.empty();
}

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

// Digits, read as SimpleAtoi does, with a '-' before them only for a signed
// Int and a number below zero ("-0" is refused). No whitespace around, no
// '+' sign. False leaves *out unspecified. (Overloads for each string type:
// absl's string_view is its own type in Debian's build.)
template <typename Int>
bool ParseInteger(absl::string_view text, Int* out) {
  return number_text_internal::PlainInteger(text) &&
         absl::SimpleAtoi(text, out) &&
         !(number_text_internal::Negative(text) && *out == 0);
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

// A finite decimal number, read as SimpleAtod does: digits with an
// optional '.' and decimal exponent ("0.2", "1.5", "1e9"), a '-' before
// them only for a number below zero ("-0", "-0.0" and "-1e-400", which
// rounds to -0.0, are refused). No whitespace around, no '+' sign, no hex,
// "inf" or "nan", nothing beyond a double's range ("1e400"). False leaves
// *out unspecified.
inline bool ParseDouble(absl::string_view text, double* out) {
  return number_text_internal::PlainDecimal(text) &&
         absl::SimpleAtod(text, out) && std::isfinite(*out) &&
         !(number_text_internal::Negative(text) && !(*out < 0));
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
