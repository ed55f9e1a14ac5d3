// Topic names and subscription patterns: the rules every name must follow
// before it reaches the subject tree.
//
// A topic is a sequence of tokens separated by single dots
// ("orders.eu.created"). Tokens are non-empty and consist of printable ASCII
// (0x21..0x7E) other than '.'. A subscription pattern may additionally use two
// wildcards, each only as a whole token: "*" matches exactly one token and
// ">" matches one or more trailing tokens, so ">" may only be the last token
// (the NATS convention).
//
// All functions are pure and thread-safe. Validation runs on every publish, so
// the success path performs no heap allocation; only building an error message
// allocates.

#ifndef SIFT_BROKER_TOPIC_TOPIC_H_
#define SIFT_BROKER_TOPIC_TOPIC_H_

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"

namespace sift::topic {

// Limits configured by the operator.
struct Limits {
  uint32_t max_length = 256;  // bytes, including the dots
  uint32_t max_tokens = 16;
};

// The configured max_tokens may not exceed this. The subject tree splits names
// into a fixed-size stack array of this many tokens, and validation clamps
// Limits::max_tokens to it so that a validated name always fits.
inline constexpr uint32_t kHardMaxTokens = 64;

// Queue group names are 1..kMaxQueueGroupLength characters.
inline constexpr uint32_t kMaxQueueGroupLength = 64;

// Checks a configuration: max_length >= 1, 1 <= max_tokens <= kHardMaxTokens.
absl::Status ValidateLimits(const Limits& limits);

// Checks a literal topic (the subject of a PUB, a reply_to): no wildcards.
// Returns InvalidArgumentError naming the problem and where it is.
absl::Status ValidateTopic(std::string_view topic, const Limits& limits);

// Checks a subscription pattern: like a topic, plus "*" (exactly one token) and
// ">" (one or more trailing tokens, last token only) as whole tokens.
absl::Status ValidatePattern(std::string_view pattern, const Limits& limits);

// Checks a queue group name. Empty is valid and means "no group"; otherwise
// 1..64 characters from [A-Za-z0-9_-.:].
absl::Status ValidateQueueGroup(std::string_view group);

// Reports whether `topic` matches `pattern`. A simple reference matcher: it
// does not validate either argument. Used by tests and by brute-force checks of
// the subject tree; routing uses SubjectTree::Match.
bool PatternMatches(std::string_view pattern, std::string_view topic);

// Reports whether some topic matches both patterns (e.g. "a.>" and "*.b";
// not "a.*" and "a.b.c"). Does not validate either argument.
bool PatternsOverlap(std::string_view a, std::string_view b);

}  // namespace sift::topic

#endif  // SIFT_BROKER_TOPIC_TOPIC_H_
