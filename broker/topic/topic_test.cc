#include "broker/topic/topic.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sift::topic {
namespace {

using ::testing::IsEmpty;

const Limits kDefault;

// Returns the error message, or "" for OK. Also checks the code.
std::string TopicError(std::string_view s, const Limits& limits = kDefault) {
  absl::Status st = ValidateTopic(s, limits);
  if (!st.ok()) {
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  }
  return std::string(st.message());
}
std::string PatternError(std::string_view s, const Limits& limits = kDefault) {
  absl::Status st = ValidatePattern(s, limits);
  if (!st.ok()) {
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  }
  return std::string(st.message());
}
std::string GroupError(std::string_view s) {
  absl::Status st = ValidateQueueGroup(s);
  if (!st.ok()) {
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  }
  return std::string(st.message());
}

TEST(ValidateTopicTest, AcceptsGoodTopics) {
  for (const char* t : {"a", "orders", "orders.eu.created", "a.b.c.d.e.f",
                        "x-1_2:3/4#!~", "\"quoted\".ok", "A.Z.a.z.0.9"}) {
    EXPECT_THAT(TopicError(t), IsEmpty()) << t;
  }
}

TEST(ValidateTopicTest, EmptyTokens) {
  EXPECT_EQ(TopicError("orders..eu"),
            "invalid topic \"orders..eu\": empty token at position 2 (tokens "
            "are separated by single dots)");
  EXPECT_EQ(TopicError(".a"),
            "invalid topic \".a\": empty token at position 1 (tokens are "
            "separated by single dots)");
  EXPECT_EQ(TopicError("a.b."),
            "invalid topic \"a.b.\": empty token at position 3 (tokens are "
            "separated by single dots)");
  EXPECT_EQ(TopicError("."),
            "invalid topic \".\": empty token at position 1 (tokens are "
            "separated by single dots)");
}

TEST(ValidateTopicTest, Wildcards) {
  EXPECT_EQ(TopicError("a.*"),
            "invalid topic \"a.*\": wildcards are only allowed in "
            "subscription patterns ('*' at offset 2)");
  EXPECT_EQ(TopicError("a.>"),
            "invalid topic \"a.>\": wildcards are only allowed in "
            "subscription patterns ('>' at offset 2)");
  EXPECT_EQ(TopicError("ab*c"),
            "invalid topic \"ab*c\": wildcards are only allowed in "
            "subscription patterns ('*' at offset 2)");
}

TEST(ValidateTopicTest, BadCharacters) {
  EXPECT_EQ(TopicError("a b"),
            "invalid topic \"a b\": character ' ' (0x20) at offset 1 is not "
            "allowed");
  EXPECT_EQ(TopicError("a\nb"),
            "invalid topic \"a\\x0Ab\": byte 0x0A at offset 1 is not allowed");
  EXPECT_EQ(TopicError("caf\xC3\xA9"),
            "invalid topic \"caf\\xC3\\xA9\": byte 0xC3 at offset 3 is not "
            "allowed");
  EXPECT_EQ(TopicError(std::string("a\0b", 3)),
            "invalid topic \"a\\x00b\": byte 0x00 at offset 1 is not allowed");
  EXPECT_EQ(TopicError("a\x7F"),
            "invalid topic \"a\\x7F\": byte 0x7F at offset 1 is not allowed");
  // Quotes and backslashes in the input are escaped in the message.
  EXPECT_EQ(TopicError("a\"\\ c"),
            "invalid topic \"a\\\"\\\\ c\": character ' ' (0x20) at offset 3 "
            "is not allowed");
}

TEST(ValidateTopicTest, Length) {
  EXPECT_EQ(TopicError(""),
            "invalid topic \"\": empty (must be 1 to 256 bytes)");
  EXPECT_THAT(TopicError(std::string(256, 'a')), IsEmpty());
  // The quoted input is truncated to 80 bytes.
  EXPECT_EQ(TopicError(std::string(300, 'a')),
            "invalid topic \"" + std::string(80, 'a') +
                "\"...: 300 bytes exceeds the limit of 256");
  const Limits tiny{/*max_length=*/4, /*max_tokens=*/16};
  EXPECT_THAT(TopicError("a.bc", tiny), IsEmpty());
  EXPECT_EQ(TopicError("a.bcd", tiny),
            "invalid topic \"a.bcd\": 5 bytes exceeds the limit of 4");
}

TEST(ValidateTopicTest, TokenCount) {
  const Limits three{/*max_length=*/256, /*max_tokens=*/3};
  EXPECT_THAT(TopicError("a.b.c", three), IsEmpty());
  EXPECT_EQ(TopicError("a.b.c.d.e", three),
            "invalid topic \"a.b.c.d.e\": 5 tokens exceeds the limit of 3");
  EXPECT_EQ(PatternError("a.*.c.>", three),
            "invalid pattern \"a.*.c.>\": 4 tokens exceeds the limit of 3");
  EXPECT_THAT(TopicError("a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p"), IsEmpty());
  EXPECT_EQ(TopicError("a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q"),
            "invalid topic \"a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q\": 17 tokens "
            "exceeds the limit of 16");
}

TEST(ValidateTopicTest, MaxTokensIsClampedToHardLimit) {
  const Limits lax{/*max_length=*/100000, /*max_tokens=*/1000};
  std::string t = "a";
  for (uint32_t i = 1; i < kHardMaxTokens; ++i) t += ".a";
  EXPECT_THAT(TopicError(t, lax), IsEmpty());
  t += ".a";
  EXPECT_THAT(TopicError(t, lax),
              ::testing::EndsWith(": 65 tokens exceeds the limit of 64"));
}

TEST(ValidatePatternTest, AcceptsGoodPatterns) {
  for (const char* p : {"a", "*", ">", "a.*", "a.>", "*.*", "*.>", "a.*.c",
                        "*.b.>", "orders.*.created"}) {
    EXPECT_THAT(PatternError(p), IsEmpty()) << p;
  }
}

TEST(ValidatePatternTest, GreaterMustBeLast) {
  EXPECT_EQ(PatternError("a.>.b"),
            "invalid pattern \"a.>.b\": '>' must be the last token (found at "
            "position 2 of 3)");
  EXPECT_EQ(PatternError(">.a"),
            "invalid pattern \">.a\": '>' must be the last token (found at "
            "position 1 of 2)");
}

TEST(ValidatePatternTest, WildcardsAreWholeTokens) {
  EXPECT_EQ(PatternError("a.b*"),
            "invalid pattern \"a.b*\": '*' must be a whole token, but token 2 "
            "is \"b*\"");
  EXPECT_EQ(PatternError("*a.b"),
            "invalid pattern \"*a.b\": '*' must be a whole token, but token 1 "
            "is \"*a\"");
  EXPECT_EQ(PatternError("a.>>"),
            "invalid pattern \"a.>>\": '>' must be a whole token, but token 2 "
            "is \">>\"");
  EXPECT_EQ(PatternError("a.*>"),
            "invalid pattern \"a.*>\": '*' must be a whole token, but token 2 "
            "is \"*>\"");
}

TEST(ValidatePatternTest, SharesTopicRules) {
  EXPECT_EQ(PatternError("a..*"),
            "invalid pattern \"a..*\": empty token at position 2 (tokens are "
            "separated by single dots)");
  EXPECT_EQ(PatternError("a.*."),
            "invalid pattern \"a.*.\": empty token at position 3 (tokens are "
            "separated by single dots)");
  EXPECT_EQ(PatternError("a.\t"),
            "invalid pattern \"a.\\x09\": byte 0x09 at offset 2 is not "
            "allowed");
  EXPECT_EQ(PatternError(""),
            "invalid pattern \"\": empty (must be 1 to 256 bytes)");
}

TEST(ValidateQueueGroupTest, Rules) {
  EXPECT_THAT(GroupError(""), IsEmpty());  // no group
  EXPECT_THAT(GroupError("workers"), IsEmpty());
  EXPECT_THAT(GroupError("svc-1_a.b:c"), IsEmpty());
  EXPECT_THAT(GroupError(std::string(64, 'g')), IsEmpty());
  EXPECT_EQ(GroupError(std::string(65, 'g')),
            "invalid queue group \"" + std::string(65, 'g') +
                "\": 65 bytes exceeds the limit of 64");
  EXPECT_EQ(GroupError("a b"),
            "invalid queue group \"a b\": character ' ' (0x20) at offset 1 is "
            "not allowed (use A-Z, a-z, 0-9, '_', '-', '.', ':')");
  EXPECT_EQ(GroupError("w*"),
            "invalid queue group \"w*\": character '*' (0x2A) at offset 1 is "
            "not allowed (use A-Z, a-z, 0-9, '_', '-', '.', ':')");
}

TEST(ValidateLimitsTest, Rules) {
  EXPECT_TRUE(ValidateLimits(Limits{}).ok());
  EXPECT_TRUE(ValidateLimits(Limits{1, kHardMaxTokens}).ok());
  EXPECT_EQ(ValidateLimits(Limits{0, 16}).message(),
            "invalid topic limits: max_length must be at least 1");
  EXPECT_EQ(ValidateLimits(Limits{256, 65}).message(),
            "invalid topic limits: max_tokens is 65, must be 1 to 64");
  EXPECT_EQ(ValidateLimits(Limits{256, 0}).message(),
            "invalid topic limits: max_tokens is 0, must be 1 to 64");
}

TEST(PatternMatchesTest, Table) {
  struct Case {
    const char* pattern;
    const char* topic;
    bool match;
  };
  const Case cases[] = {
      {"a", "a", true},         {"a", "b", false},
      {"a", "a.b", false},      {"a.b", "a", false},
      {"a.b", "a.b", true},     {"*", "a", true},
      {"*", "a.b", false},      {"a.*", "a.b", true},
      {"a.*", "a", false},      {"a.*", "a.b.c", false},
      {"*.b.*", "a.b.c", true}, {"*.b.*", "a.c.c", false},
      {">", "a", true},         {">", "a.b.c", true},
      {"a.>", "a", false},      {"a.>", "a.b", true},
      {"a.>", "a.b.c", true},   {"a.>", "b.c", false},
      {"*.>", "a", false},      {"*.>", "a.b", true},
      {"a.b.>", "a.b", false},  {"orders.*.created", "orders.eu.created", true},
      {"ab", "a", false},       {"a", "ab", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(PatternMatches(c.pattern, c.topic), c.match)
        << c.pattern << " vs " << c.topic;
  }
}

TEST(PatternsOverlapTest, Table) {
  struct Case {
    const char* a;
    const char* b;
    bool overlap;
  } cases[] = {
      {"a.>", "a.b", true},      {"a.>", "a", false},
      {"a.*", "a.b.c", false},   {"a.>", "*.b", true},
      {"*.b", "a.*", true},      {"a.b", "a.c", false},
      {">", "x.y.z", true},      {"a.*.c", "a.b.*", true},
      {"a.*.c", "a.b.d", false}, {"orders.>", "refunds.>", false},
      {"a.b", "a.b", true},      {"a", "a.b", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(PatternsOverlap(c.a, c.b), c.overlap) << c.a << " / " << c.b;
    EXPECT_EQ(PatternsOverlap(c.b, c.a), c.overlap) << c.b << " / " << c.a;
  }
}

}  // namespace
}  // namespace sift::topic
