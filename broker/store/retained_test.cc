#include "broker/store/retained.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace sift::store {
namespace {

MessageRef M(std::string topic, std::string payload) {
  return delivery::StoredMessage::Make(topic, "", "", payload);
}

std::vector<std::string> Topics(const RetainedStore& s, std::string_view p) {
  std::vector<MessageRef> out;
  s.Match(p, &out);
  std::vector<std::string> topics;
  for (const MessageRef& m : out)
    topics.push_back(std::string(m->topic()) + "=" + std::string(m->payload()));
  return topics;
}

TEST(RetainedStoreTest, LastValueWinsAndEmptyClears) {
  RetainedStore s(10, 1000);
  ASSERT_TRUE(s.Set(M("a.b", "1")).ok());
  ASSERT_TRUE(s.Set(M("a.b", "2")).ok());
  EXPECT_EQ(Topics(s, "a.b"), std::vector<std::string>{"a.b=2"});
  ASSERT_TRUE(s.Set(M("a.b", "")).ok());
  EXPECT_TRUE(Topics(s, "a.b").empty());
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.bytes(), 0u);
  ASSERT_TRUE(s.Set(M("nothing.here", "")).ok());  // clearing nothing is fine
}

TEST(RetainedStoreTest, WildcardsMatchAsSubscriptionsDo) {
  RetainedStore s(10, 1000);
  for (const char* t : {"a", "a.b", "a.c", "a.b.c", "b.b", "ab.x"}) {
    ASSERT_TRUE(s.Set(M(t, "v")).ok());
  }
  EXPECT_EQ(Topics(s, "a.*"), (std::vector<std::string>{"a.b=v", "a.c=v"}));
  EXPECT_EQ(Topics(s, "a.>"),
            (std::vector<std::string>{"a.b=v", "a.b.c=v", "a.c=v"}));
  EXPECT_EQ(Topics(s, "*.b"), (std::vector<std::string>{"a.b=v", "b.b=v"}));
  EXPECT_EQ(Topics(s, ">").size(), 6u);
  EXPECT_EQ(Topics(s, "a"), std::vector<std::string>{"a=v"});
}

TEST(RetainedStoreTest, BoundsRefuseWithoutChangingAnything) {
  RetainedStore s(2, 10);
  ASSERT_TRUE(s.Set(M("a", "1")).ok());
  ASSERT_TRUE(s.Set(M("b", "1")).ok());
  EXPECT_EQ(s.Set(M("c", "1")).code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(s.Set(M("a", "12345")).ok());  // replacing is not a new topic
  EXPECT_EQ(s.Set(M("b", "123456789")).code(),
            absl::StatusCode::kResourceExhausted);  // 6 + 10 > 10
  EXPECT_EQ(Topics(s, "b"), std::vector<std::string>{"b=1"});
  EXPECT_EQ(s.bytes(), 8u);
}

TEST(RetainedStoreTest, RestoredValuesPassTheBoundsWhichThenRefuse) {
  RetainedStore s(1, 100);
  ASSERT_TRUE(s.Set(M("a", "1")).ok());
  ASSERT_TRUE(s.Set(M("b", "1"), /*restored=*/true).ok());
  EXPECT_TRUE(s.over_bounds());
  EXPECT_EQ(Topics(s, ">").size(), 2u);
  EXPECT_EQ(s.Set(M("c", "1")).code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(s.Set(M("b", "")).ok());  // clearing is always fine
  EXPECT_FALSE(s.over_bounds());
}

// max_retained 0 turns retained values off: nothing new is kept, not even
// a replacement of a value restored from a stream, which an empty value
// still clears.
TEST(RetainedStoreTest, NoneAreKeptWhenTurnedOff) {
  RetainedStore s(0, 100);
  const absl::Status off = s.Set(M("a", "1"));
  EXPECT_EQ(off.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(off.message(),
            "retained values are off on this broker (max_retained is 0)");
  ASSERT_TRUE(s.Set(M("b", "1"), /*restored=*/true).ok());
  EXPECT_EQ(s.Set(M("b", "2")).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Topics(s, ">"), std::vector<std::string>{"b=1"});
  ASSERT_TRUE(s.Set(M("b", "")).ok());
  EXPECT_EQ(s.size(), 0u);
}

}  // namespace
}  // namespace sift::store
