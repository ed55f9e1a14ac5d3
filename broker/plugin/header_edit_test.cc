#include "broker/plugin/header_edit.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "broker/plugin/builtin_test_util.h"
#include "broker/plugin/header_key.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sift::plugin {
namespace {

using ::sift::plugin::testing::ErrorOf;
using ::sift::plugin::testing::Msg;
using ::sift::plugin::testing::RunOne;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using Config = std::vector<std::pair<std::string, std::string>>;

std::unique_ptr<Transform> MakeSet(Config kv) {
  auto t = HeaderSetFactory().Create(PluginConfig(std::move(kv)));
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}
std::unique_ptr<Transform> MakeRemove(std::string keys) {
  auto t = HeaderRemoveFactory().Create(PluginConfig({{"keys", keys}}));
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

std::string SetError(Config kv) {
  absl::Status s =
      HeaderSetFactory().Create(PluginConfig(std::move(kv))).status();
  if (!s.ok()) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  }
  return ErrorOf(s);
}
std::string RemoveError(Config kv) {
  absl::Status s =
      HeaderRemoveFactory().Create(PluginConfig(std::move(kv))).status();
  if (!s.ok()) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  }
  return ErrorOf(s);
}

HeaderField H(std::string k, std::string v) {
  return {std::move(k), std::move(v)};
}

TEST(HeaderSetTest, SetsSeveralHeadersInOrder) {
  auto t = MakeSet({{"set.tenant", "eu"}, {"set.source", "gateway"}});
  absl::StatusOr<Message> m = RunOne(*t, Msg("a", {H("x", "1")}));
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(m->headers(), ElementsAre(H("x", "1"), H("tenant", "eu"),
                                        H("source", "gateway")));
  EXPECT_EQ(m->topic(), "a");
  EXPECT_EQ(m->payload(), "payload");
}

TEST(HeaderSetTest, ReplacesEveryExistingHeaderOfTheKey) {
  auto t = MakeSet({{"set.tenant", "eu"}});
  absl::StatusOr<Message> m =
      RunOne(*t, Msg("a", {H("tenant", "us"), H("x", "1"), H("tenant", "ap")}));
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(m->headers(), ElementsAre(H("tenant", "eu"), H("x", "1")));
}

TEST(HeaderSetTest, KeysAreCaseSensitiveAndValuesAnyBytes) {
  auto t = MakeSet({{"set.Tenant", std::string("a\0b \n", 5)}, {"set.e", ""}});
  absl::StatusOr<Message> m = RunOne(*t, Msg("a", {H("tenant", "us")}));
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(m->headers(),
              ElementsAre(H("tenant", "us"),
                          H("Tenant", std::string("a\0b \n", 5)), H("e", "")));
}

TEST(HeaderSetTest, ConfigErrors) {
  EXPECT_EQ(SetError({}),
            "header_set needs at least one setting set.<header key> = <value>");
  EXPECT_EQ(SetError({{"tenant", "eu"}}),
            "unknown setting \"tenant\" (header_set takes set.<header key> = "
            "<value>)");
  EXPECT_EQ(SetError({{"set.a", "1"}, {"key", "b"}}),
            "unknown setting \"key\" (header_set takes set.<header key> = "
            "<value>)");
  EXPECT_EQ(SetError({{"set.", "1"}}),
            "setting \"set.\": header key \"\" is empty (keys are 1-64 bytes "
            "of A-Z a-z 0-9 ! # $ % & ' * + - . ^ _ ` | ~)");
  EXPECT_THAT(SetError({{"set.bad key", "1"}}),
              HasSubstr("setting \"set.bad key\": header key \"bad key\" has "
                        "character ' ' at offset 3"));
  EXPECT_THAT(SetError({{"set.a:b", "1"}}),
              HasSubstr("header key \"a:b\" has character ':' at offset 1"));
  EXPECT_THAT(SetError({{"set.\xC3\xA9", "1"}}),
              HasSubstr("header key \"\\xc3\\xa9\" has byte 0xC3 at offset 0"));
  EXPECT_EQ(SetError({{"set.a", "1"}, {"set.a", "2"}}),
            "setting \"set.a\": header \"a\" set twice");
  EXPECT_THAT(SetError({{"set." + std::string(65, 'k'), "1"}}),
              HasSubstr("is 65 bytes (at most 64)"));
  EXPECT_EQ(SetError({{"set." + std::string(64, 'k'), "1"}}), "OK");
}

TEST(HeaderKeyTest, AllTokenCharactersAndOnlyThose) {
  const std::string tchars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
      "!#$%&'*+-.^_`|~";
  for (int c = 0; c < 256; ++c) {
    const std::string key(1, static_cast<char>(c));
    EXPECT_EQ(IsHeaderKey(key),
              tchars.find(static_cast<char>(c)) != std::string::npos)
        << c;
    EXPECT_EQ(ValidateHeaderKey(key, "k").ok(), IsHeaderKey(key)) << c;
  }
  EXPECT_FALSE(IsHeaderKey(""));
  EXPECT_TRUE(IsHeaderKey(std::string(64, 'a')));
  EXPECT_FALSE(IsHeaderKey(std::string(65, 'a')));
}

TEST(HeaderRemoveTest, RemovesEveryHeaderOfEachKey) {
  auto t = MakeRemove("trace-id, debug");
  absl::StatusOr<Message> m =
      RunOne(*t, Msg("a", {H("trace-id", "1"), H("x", "1"), H("debug", "on"),
                           H("trace-id", "2"), H("Debug", "kept")}));
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(m->headers(), ElementsAre(H("x", "1"), H("Debug", "kept")));
}

TEST(HeaderRemoveTest, AbsentKeysAndNoHeadersAreFine) {
  auto t = MakeRemove("a,a,b");
  absl::StatusOr<Message> m = RunOne(*t, Msg("a"));
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->headers().empty());
  m = RunOne(*t, Msg("a", {H("c", "1")}));
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(m->headers(), ElementsAre(H("c", "1")));
}

TEST(HeaderRemoveTest, ConfigErrors) {
  EXPECT_EQ(RemoveError({}), "missing setting \"keys\"");
  EXPECT_EQ(RemoveError({{"keys", "a"}, {"key", "b"}}),
            "unknown setting \"key\" (known: keys)");
  EXPECT_THAT(RemoveError({{"keys", ""}}),
              HasSubstr("setting \"keys\": header key \"\" is empty"));
  EXPECT_THAT(RemoveError({{"keys", "a,,b"}}),
              HasSubstr("setting \"keys\": header key \"\" is empty"));
  EXPECT_THAT(RemoveError({{"keys", "a,"}}),
              HasSubstr("setting \"keys\": header key \"\" is empty"));
  EXPECT_THAT(RemoveError({{"keys", "a;b"}}),
              HasSubstr("header key \"a;b\" has character ';' at offset 1"));
}

}  // namespace
}  // namespace sift::plugin
