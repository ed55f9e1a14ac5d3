#include "broker/topic/topic.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sift::topic {
namespace {

// ---------------------------------------------------------------------------
// Character classes. One table lookup per byte keeps the validation loop
// branch-light; the rare classes (dot, wildcards, bad bytes) fall out of it.

enum CharClass : uint8_t {
  kBad = 0,      // not allowed anywhere in a name
  kToken = 1,    // ordinary token character
  kDot = 2,      // token separator
  kStar = 3,     // '*' wildcard
  kGreater = 4,  // '>' wildcard
};

constexpr std::array<uint8_t, 256> MakeTopicClasses() {
  std::array<uint8_t, 256> t{};
  for (int c = 0x21; c <= 0x7E; ++c) t[c] = kToken;
  t['.'] = kDot;
  t['*'] = kStar;
  t['>'] = kGreater;
  return t;
}
constexpr std::array<uint8_t, 256> kTopicClass = MakeTopicClasses();

constexpr std::array<bool, 256> MakeGroupChars() {
  std::array<bool, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  t['_'] = t['-'] = t['.'] = t[':'] = true;
  return t;
}
constexpr std::array<bool, 256> kGroupChar = MakeGroupChars();

// ---------------------------------------------------------------------------
// Error construction. Everything below is off the success path: it may
// allocate, and it is kept out of line so that the loops stay small.

// Debian's abseil is built with its own absl::string_view (not an alias of
// std::string_view), so StrCat needs an explicit conversion.
absl::string_view Av(std::string_view s) { return {s.data(), s.size()}; }

constexpr size_t kMaxQuoted = 80;

// Double-quotes `s` for an error message: at most kMaxQuoted input bytes,
// '"' and '\\' backslash-escaped, other non-printable bytes as \xNN. A
// truncated input is followed by "..." outside the quotes.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  const size_t n = std::min(s.size(), kMaxQuoted);
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c >= 0x20 && c <= 0x7E) {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "\\x%02X", c);
    }
  }
  out.push_back('"');
  if (s.size() > kMaxQuoted) out += "...";
  return out;
}

// Describes one byte: "character ' ' (0x20)" or, when unprintable, "byte 0x0A".
std::string DescribeByte(unsigned char c) {
  if (c >= 0x20 && c <= 0x7E) {
    return absl::StrFormat("character '%c' (0x%02X)", c, c);
  }
  return absl::StrFormat("byte 0x%02X", c);
}

ABSL_ATTRIBUTE_NOINLINE ABSL_ATTRIBUTE_COLD absl::Status Invalid(
    std::string_view what, std::string_view input, std::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid ", Av(what), " ", Quote(input), ": ", Av(problem)));
}

ABSL_ATTRIBUTE_NOINLINE ABSL_ATTRIBUTE_COLD absl::Status BadLength(
    std::string_view what, std::string_view input, uint32_t max_length) {
  if (input.empty()) {
    return Invalid(what, input,
                   absl::StrCat("empty (must be 1 to ", max_length, " bytes)"));
  }
  return Invalid(
      what, input,
      absl::StrCat(input.size(), " bytes exceeds the limit of ", max_length));
}

ABSL_ATTRIBUTE_NOINLINE ABSL_ATTRIBUTE_COLD absl::Status EmptyToken(
    std::string_view what, std::string_view input, size_t position) {
  return Invalid(what, input,
                 absl::StrCat("empty token at position ", position,
                              " (tokens are separated by single dots)"));
}

ABSL_ATTRIBUTE_NOINLINE ABSL_ATTRIBUTE_COLD absl::Status TooManyTokens(
    std::string_view what, std::string_view input, uint32_t max_tokens) {
  const size_t tokens = std::count(input.begin(), input.end(), '.') + 1;
  return Invalid(
      what, input,
      absl::StrCat(tokens, " tokens exceeds the limit of ", max_tokens));
}

ABSL_ATTRIBUTE_NOINLINE ABSL_ATTRIBUTE_COLD absl::Status BadByte(
    std::string_view what, std::string_view input, size_t offset) {
  return Invalid(
      what, input,
      absl::StrCat(DescribeByte(static_cast<unsigned char>(input[offset])),
                   " at offset ", offset, " is not allowed"));
}

ABSL_ATTRIBUTE_NOINLINE ABSL_ATTRIBUTE_COLD absl::Status WildcardInTopic(
    std::string_view input, size_t offset) {
  return Invalid(
      "topic", input,
      absl::StrCat("wildcards are only allowed in subscription "
                   "patterns ('",
                   Av(input.substr(offset, 1)), "' at offset ", offset, ")"));
}

// `offset` is the wildcard's byte offset; the offending token is the one
// around it.
ABSL_ATTRIBUTE_NOINLINE ABSL_ATTRIBUTE_COLD absl::Status PartialWildcard(
    std::string_view input, size_t offset, size_t position) {
  size_t begin = input.rfind('.', offset);
  begin = begin == std::string_view::npos ? 0 : begin + 1;
  size_t end = input.find('.', offset);
  if (end == std::string_view::npos) end = input.size();
  return Invalid("pattern", input,
                 absl::StrCat("'", Av(input.substr(offset, 1)),
                              "' must be a whole token, but token ", position,
                              " is ", Quote(input.substr(begin, end - begin))));
}

ABSL_ATTRIBUTE_NOINLINE ABSL_ATTRIBUTE_COLD absl::Status GreaterNotLast(
    std::string_view input, size_t position) {
  const size_t tokens = std::count(input.begin(), input.end(), '.') + 1;
  return Invalid("pattern", input,
                 absl::StrCat("'>' must be the last token (found at position ",
                              position, " of ", tokens, ")"));
}

// ---------------------------------------------------------------------------

// Shared scanner for topics and patterns. kPattern is a template parameter so
// that each instantiation's inner loop carries only the checks it needs.
template <bool kPattern>
absl::Status Validate(std::string_view s, const Limits& limits) {
  constexpr std::string_view kWhat = kPattern ? "pattern" : "topic";
  if (ABSL_PREDICT_FALSE(s.empty() || s.size() > limits.max_length)) {
    return BadLength(kWhat, s, limits.max_length);
  }
  const uint32_t max_tokens = std::min(limits.max_tokens, kHardMaxTokens);
  const size_t n = s.size();
  size_t tokens = 1;       // 1-based position of the current token
  size_t token_start = 0;  // offset of the current token's first byte
  for (size_t i = 0; i < n; ++i) {
    const uint8_t cls = kTopicClass[static_cast<unsigned char>(s[i])];
    if (ABSL_PREDICT_TRUE(cls == kToken)) continue;
    switch (cls) {
      case kDot:
        if (ABSL_PREDICT_FALSE(i == token_start)) {
          return EmptyToken(kWhat, s, tokens);
        }
        if (ABSL_PREDICT_FALSE(++tokens > max_tokens)) {
          return TooManyTokens(kWhat, s, max_tokens);
        }
        token_start = i + 1;
        break;
      case kStar:
      case kGreater:
        if constexpr (!kPattern) {
          return WildcardInTopic(s, i);
        } else {
          const bool whole =
              i == token_start && (i + 1 == n || s[i + 1] == '.');
          if (ABSL_PREDICT_FALSE(!whole)) return PartialWildcard(s, i, tokens);
          if (ABSL_PREDICT_FALSE(cls == kGreater && i + 1 != n)) {
            return GreaterNotLast(s, tokens);
          }
        }
        break;
      default:
        return BadByte(kWhat, s, i);
    }
  }
  if (ABSL_PREDICT_FALSE(token_start == n)) {  // trailing dot
    return EmptyToken(kWhat, s, tokens);
  }
  return absl::OkStatus();
}

// Returns the token that starts at `*pos` and advances `*pos` past it and its
// dot. REQUIRES: *pos <= s.size().
std::string_view NextToken(std::string_view s, size_t* pos) {
  const size_t dot = s.find('.', *pos);
  const size_t end = dot == std::string_view::npos ? s.size() : dot;
  std::string_view token = s.substr(*pos, end - *pos);
  *pos = dot == std::string_view::npos ? s.size() + 1 : dot + 1;
  return token;
}

}  // namespace

absl::Status ValidateLimits(const Limits& limits) {
  if (limits.max_length < 1) {
    return absl::InvalidArgumentError(
        "invalid topic limits: max_length must be at least 1");
  }
  if (limits.max_tokens < 1 || limits.max_tokens > kHardMaxTokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid topic limits: max_tokens is ", limits.max_tokens,
                     ", must be 1 to ", kHardMaxTokens));
  }
  return absl::OkStatus();
}

absl::Status ValidateTopic(std::string_view topic, const Limits& limits) {
  return Validate</*kPattern=*/false>(topic, limits);
}

absl::Status ValidatePattern(std::string_view pattern, const Limits& limits) {
  return Validate</*kPattern=*/true>(pattern, limits);
}

absl::Status ValidateQueueGroup(std::string_view group) {
  if (ABSL_PREDICT_FALSE(group.size() > kMaxQueueGroupLength)) {
    return Invalid("queue group", group,
                   absl::StrCat(group.size(), " bytes exceeds the limit of ",
                                kMaxQueueGroupLength));
  }
  for (size_t i = 0; i < group.size(); ++i) {
    if (ABSL_PREDICT_FALSE(!kGroupChar[static_cast<unsigned char>(group[i])])) {
      return Invalid(
          "queue group", group,
          absl::StrCat(DescribeByte(static_cast<unsigned char>(group[i])),
                       " at offset ", i,
                       " is not allowed (use A-Z, a-z, 0-9, '_', '-', '.', "
                       "':')"));
    }
  }
  return absl::OkStatus();
}

bool PatternMatches(std::string_view pattern, std::string_view topic) {
  size_t p = 0;
  size_t t = 0;
  while (p <= pattern.size()) {
    const std::string_view want = NextToken(pattern, &p);
    if (want == ">") return t <= topic.size();  // at least one token left
    if (t > topic.size()) return false;         // topic ran out first
    const std::string_view have = NextToken(topic, &t);
    if (want != "*" && want != have) return false;
  }
  return t > topic.size();  // both ran out together
}

bool PatternsOverlap(std::string_view a, std::string_view b) {
  size_t i = 0;
  size_t j = 0;
  while (i <= a.size() && j <= b.size()) {
    const std::string_view x = NextToken(a, &i);
    const std::string_view y = NextToken(b, &j);
    // ">" takes one or more tokens: the other has one here, whatever follows.
    if (x == ">" || y == ">") return true;
    if (x != "*" && y != "*" && x != y) return false;
  }
  return i > a.size() && j > b.size();  // as many tokens in both
}

}  // namespace sift::topic
