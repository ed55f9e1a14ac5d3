// Tests of Message (views over borrowed bytes, owned rewrites, headers) and
// of PluginConfig's getters.
#include "broker/plugin/message.h"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "broker/plugin/plugin.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sift::plugin {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// True if `view` starts inside the bytes of object `o` (a view that points
// into an SSO buffer of `o`).
template <typename T>
bool PointsInto(std::string_view view, const T& o) {
  const char* begin = reinterpret_cast<const char*>(&o);
  return view.data() >= begin && view.data() < begin + sizeof(T);
}

// Long enough not to fit in any std::string's inline buffer.
const std::string& LongText() {
  static const std::string* text = new std::string(100, 'L');
  return *text;
}

// --- Views: borrowed and owned ---

TEST(MessageTest, BorrowsItsBytesUntilRewritten) {
  const std::string topic = "orders.eu";
  const std::string reply = "_INBOX.1";
  const std::string payload = "body";
  Message m(topic, reply, {{"k", "v"}}, payload);
  EXPECT_EQ(m.topic().data(), topic.data());
  EXPECT_EQ(m.reply_to().data(), reply.data());
  EXPECT_EQ(m.payload().data(), payload.data());
  EXPECT_FALSE(m.topic_changed());
  EXPECT_FALSE(m.payload_changed());

  m.set_topic("orders.us");
  m.set_payload("new");
  m.set_reply_to("_INBOX.2");
  EXPECT_TRUE(m.topic_changed());
  EXPECT_TRUE(m.payload_changed());
  EXPECT_EQ(m.topic(), "orders.us");
  EXPECT_EQ(m.reply_to(), "_INBOX.2");
  EXPECT_EQ(m.payload(), "new");
  EXPECT_NE(m.topic().data(), topic.data());
  EXPECT_NE(m.payload().data(), payload.data());
}

TEST(MessageTest, CopyBorrowsWhatTheOriginalBorrowed) {
  const std::string topic = "t";
  const std::string payload = "p";
  Message a(topic, "", {{"k", "v"}}, payload);
  Message b(a);
  EXPECT_EQ(b.topic().data(), topic.data());
  EXPECT_EQ(b.payload().data(), payload.data());
  EXPECT_THAT(b.headers(), ElementsAre(HeaderField{"k", "v"}));
  EXPECT_FALSE(b.topic_changed());
  EXPECT_FALSE(b.payload_changed());
}

TEST(MessageTest, CopyOwnsItsOwnCopyOfWhatTheOriginalOwned) {
  const std::string topic = "t";
  auto a = std::make_unique<Message>(topic, "", std::vector<HeaderField>{},
                                     "borrowed");
  a->set_topic("short");       // fits inline
  a->set_payload(LongText());  // on the heap
  a->set_reply_to("r");
  Message b(*a);
  EXPECT_NE(b.topic().data(), a->topic().data());
  EXPECT_NE(b.payload().data(), a->payload().data());
  EXPECT_NE(b.reply_to().data(), a->reply_to().data());
  EXPECT_TRUE(PointsInto(b.topic(), b));
  a.reset();  // b must not need a
  EXPECT_EQ(b.topic(), "short");
  EXPECT_EQ(b.payload(), LongText());
  EXPECT_EQ(b.reply_to(), "r");
  EXPECT_TRUE(b.topic_changed());
  EXPECT_TRUE(b.payload_changed());
}

TEST(MessageTest, CopyAssignmentReplacesEverything) {
  const std::string p1 = "one";
  const std::string p2 = "two";
  Message a("a", "", {{"x", "1"}}, p1);
  a.set_topic("owned.a");
  Message b("b", "", {{"y", "2"}, {"z", "3"}}, p2);
  b = a;
  EXPECT_EQ(b.topic(), "owned.a");
  EXPECT_TRUE(PointsInto(b.topic(), b));
  EXPECT_EQ(b.payload().data(), p1.data());
  EXPECT_THAT(b.headers(), ElementsAre(HeaderField{"x", "1"}));

  // Owned over borrowed the other way round: b's owned topic goes back to
  // borrowing.
  Message c("c", "", {}, p2);
  b = c;
  EXPECT_FALSE(b.topic_changed());
  EXPECT_EQ(b.topic(), "c");
  EXPECT_EQ(b.payload().data(), p2.data());
}

TEST(MessageTest, SelfAssignmentKeepsTheMessage) {
  Message a("t", "", {{"k", "v"}}, "p");
  a.set_topic("owned");
  Message& same = a;
  a = same;
  EXPECT_EQ(a.topic(), "owned");
  EXPECT_THAT(a.headers(), ElementsAre(HeaderField{"k", "v"}));
  a = std::move(same);
  EXPECT_EQ(a.topic(), "owned");
  EXPECT_THAT(a.headers(), ElementsAre(HeaderField{"k", "v"}));
}

// A short owned string moves inline (SSO): the moved-to Message's view must
// point into its own storage, not into the moved-from object.
TEST(MessageTest, MoveRepointsShortOwnedStrings) {
  const std::string payload = "borrowed payload";
  auto a =
      std::make_unique<Message>("t", "", std::vector<HeaderField>{}, payload);
  a->set_topic("t2");
  a->set_reply_to("r");
  Message b(std::move(*a));
  EXPECT_FALSE(PointsInto(b.topic(), *a));
  EXPECT_FALSE(PointsInto(b.reply_to(), *a));
  EXPECT_TRUE(PointsInto(b.topic(), b));
  EXPECT_EQ(b.payload().data(), payload.data());  // still borrowed
  a.reset();
  EXPECT_EQ(b.topic(), "t2");
  EXPECT_EQ(b.reply_to(), "r");
  EXPECT_TRUE(b.topic_changed());
  EXPECT_FALSE(b.payload_changed());

  Message c;
  c = std::move(b);
  EXPECT_FALSE(PointsInto(c.topic(), b));
  EXPECT_TRUE(PointsInto(c.topic(), c));
  EXPECT_EQ(c.topic(), "t2");
}

TEST(MessageTest, MoveKeepsLongOwnedStringsAndHeaders) {
  auto a = std::make_unique<Message>("t", "", std::vector<HeaderField>{}, "p");
  a->set_payload(LongText());
  a->mutable_headers()->push_back({"k", "v"});
  const char* heap = a->payload().data();
  Message b(std::move(*a));
  a.reset();
  EXPECT_EQ(b.payload().data(), heap);  // the buffer moved, not copied
  EXPECT_EQ(b.payload(), LongText());
  EXPECT_THAT(b.headers(), ElementsAre(HeaderField{"k", "v"}));
}

// Messages in a vector survive its reallocation (which moves them).
TEST(MessageTest, VectorGrowthKeepsViewsValid) {
  std::vector<Message> v;
  for (int i = 0; i < 100; ++i) {
    Message m("t", "", {}, "p");
    m.set_topic("topic." + std::to_string(i));
    v.push_back(std::move(m));
  }
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(v[i].topic(), "topic." + std::to_string(i));
    EXPECT_TRUE(PointsInto(v[i].topic(), v[i]));
  }
}

// --- Headers ---

TEST(MessageTest, HeaderReturnsTheFirstOfAKey) {
  Message m("t", "", {{"a", "1"}, {"b", "2"}, {"a", "3"}}, "");
  EXPECT_EQ(m.header("a"), std::optional<std::string_view>("1"));
  EXPECT_EQ(m.header("b"), std::optional<std::string_view>("2"));
  EXPECT_EQ(m.header("A"), std::nullopt);  // byte for byte
  EXPECT_EQ(m.header("c"), std::nullopt);
  Message empty_value("t", "", {{"e", ""}}, "");
  EXPECT_EQ(empty_value.header("e"), std::optional<std::string_view>(""));
}

TEST(MessageTest, SetHeaderReplacesAllOfAKeyAtTheFirstsPlace) {
  Message m("t", "",
            {{"a", "1"}, {"b", "2"}, {"a", "3"}, {"c", "4"}, {"a", "5"}}, "");
  m.SetHeader("a", "x");
  EXPECT_THAT(m.headers(),
              ElementsAre(HeaderField{"a", "x"}, HeaderField{"b", "2"},
                          HeaderField{"c", "4"}));
  m.SetHeader("c", "y");
  EXPECT_THAT(m.headers(),
              ElementsAre(HeaderField{"a", "x"}, HeaderField{"b", "2"},
                          HeaderField{"c", "y"}));
}

TEST(MessageTest, SetHeaderAppendsANewKey) {
  Message m("t", "", {{"a", "1"}}, "");
  m.SetHeader("B", "2");
  m.SetHeader("b", std::string_view("\0z", 2));
  EXPECT_THAT(m.headers(),
              ElementsAre(HeaderField{"a", "1"}, HeaderField{"B", "2"},
                          HeaderField{"b", std::string("\0z", 2)}));
}

TEST(MessageTest, RemoveHeaderRemovesEveryOneAndCounts) {
  Message m("t", "", {{"a", "1"}, {"b", "2"}, {"a", "3"}, {"c", "4"}}, "");
  EXPECT_EQ(m.RemoveHeader("a"), 2);
  EXPECT_THAT(m.headers(),
              ElementsAre(HeaderField{"b", "2"}, HeaderField{"c", "4"}));
  EXPECT_EQ(m.RemoveHeader("a"), 0);
  EXPECT_EQ(m.RemoveHeader("C"), 0);
  EXPECT_EQ(m.RemoveHeader("c"), 1);
  EXPECT_THAT(m.headers(), ElementsAre(HeaderField{"b", "2"}));
}

// --- PluginConfig ---

TEST(PluginConfigTest, FindAndGetStringSeeTheFirstEntry) {
  PluginConfig c({{"k", "1"}, {"k", "2"}});
  ASSERT_NE(c.Find("k"), nullptr);
  EXPECT_EQ(*c.Find("k"), "1");
  EXPECT_EQ(c.Find("x"), nullptr);
  EXPECT_EQ(*c.GetString("k"), "1");
  EXPECT_EQ(c.GetString("x", "def"), "def");
  EXPECT_EQ(c.GetString("k", "def"), "1");
  absl::Status s = c.GetString("x").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "missing setting \"x\"");
}

TEST(PluginConfigTest, AddKeepsOrder) {
  PluginConfig c;
  c.Add("z", "1");
  c.Add("a", "2");
  ASSERT_EQ(c.entries().size(), 2u);
  EXPECT_EQ(c.entries()[0].first, "z");
  EXPECT_EQ(c.entries()[1].first, "a");
}

TEST(PluginConfigTest, GetIntNamesTheKey) {
  PluginConfig c({{"n", "42"}, {"neg", "-7"}, {"bad", "4x"}, {"f", "1.5"}});
  EXPECT_EQ(*c.GetInt("n"), 42);
  EXPECT_EQ(*c.GetInt("neg"), -7);
  EXPECT_EQ(*c.GetInt("n", 9), 42);
  EXPECT_EQ(*c.GetInt("absent", 9), 9);

  absl::Status s = c.GetInt("absent").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "missing setting \"absent\"");
  s = c.GetInt("bad").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "setting \"bad\": \"4x\" is not an integer");
  // With a default, a present but bad value is still an error.
  s = c.GetInt("f", 1).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "setting \"f\": \"1.5\" is not an integer");
}

TEST(PluginConfigTest, GetDoubleNamesTheKey) {
  PluginConfig c({{"p", "0.25"}, {"i", "3"}, {"bad", "half"}});
  EXPECT_DOUBLE_EQ(*c.GetDouble("p", 1), 0.25);
  EXPECT_DOUBLE_EQ(*c.GetDouble("i", 1), 3);
  EXPECT_DOUBLE_EQ(*c.GetDouble("absent", 1.5), 1.5);
  absl::Status s = c.GetDouble("bad", 0).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "setting \"bad\": \"half\" is not a number");
}

TEST(PluginConfigTest, GetBoolNamesTheKey) {
  PluginConfig c({{"t", "true"}, {"f", "false"}, {"one", "1"}, {"bad", "yep"}});
  EXPECT_TRUE(*c.GetBool("t", false));
  EXPECT_FALSE(*c.GetBool("f", true));
  EXPECT_TRUE(*c.GetBool("one", false));
  EXPECT_TRUE(*c.GetBool("absent", true));
  EXPECT_FALSE(*c.GetBool("absent", false));
  absl::Status s = c.GetBool("bad", false).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "setting \"bad\": \"yep\" is not true or false");
}

TEST(PluginConfigTest, CheckOnlyListsTheKnownKeys) {
  PluginConfig ok({{"a", "1"}, {"b", "2"}, {"a", "3"}});
  EXPECT_TRUE(ok.CheckOnly({"a", "b", "c"}).ok());
  EXPECT_TRUE(PluginConfig().CheckOnly({}).ok());

  PluginConfig typo({{"a", "1"}, {"bb", "2"}, {"cc", "3"}});
  absl::Status s = typo.CheckOnly({"a", "b", "c"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  // The first unknown key, and every known one.
  EXPECT_EQ(s.message(), "unknown setting \"bb\" (known: a, b, c)");
  s = typo.CheckOnly({});
  EXPECT_THAT(s.message(), HasSubstr("unknown setting \"a\""));
}

}  // namespace
}  // namespace sift::plugin
