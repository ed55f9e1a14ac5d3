#include "broker/plugin/payload_fields.h"

#include <google/protobuf/descriptor.pb.h>

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "broker/plugin/payload_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sift::plugin {
namespace {

using testing::FromText;
using ::testing::HasSubstr;
using testing::OrderRegistry;
using testing::ToText;

// Short forms for expected values.
std::optional<FieldValue> Num(double d) { return FieldValue::Number(d); }
std::optional<FieldValue> Str(std::string s) { return FieldValue::String(s); }
std::optional<FieldValue> Bool(bool b) { return FieldValue::Bool(b); }

MATCHER_P(Is, expected, "") {
  const std::optional<FieldValue>& got = arg;
  const std::optional<FieldValue>& want = expected;
  if (!want.has_value() || !got.has_value()) {
    return want.has_value() == got.has_value();
  }
  if (got->kind != want->kind) return false;
  switch (want->kind) {
    case FieldValue::Kind::kNumber:
      return got->number == want->number;
    case FieldValue::Kind::kBool:
      return got->boolean == want->boolean;
    default:
      return got->text == want->text;
  }
}

const std::optional<FieldValue> kMissing = std::nullopt;

Json ParseOrDie(std::string_view text) {
  Json doc;
  absl::Status s = ParseJsonPayload(text, &doc);
  EXPECT_TRUE(s.ok()) << s;
  return doc;
}

TEST(JsonFieldSourceTest, ReadsScalarsByType) {
  const Json doc = ParseOrDie(
      R"({"id":"o1","amount":12.5,"qty":3,"big":18446744073709551615,)"
      R"("neg":-7,"paid":true,"off":false})");
  JsonFieldSource src(doc);
  EXPECT_THAT(src.Get("id"), Is(Str("o1")));
  EXPECT_THAT(src.Get("amount"), Is(Num(12.5)));
  EXPECT_THAT(src.Get("qty"), Is(Num(3)));
  EXPECT_THAT(src.Get("big"), Is(Num(18446744073709551615.0)));
  EXPECT_THAT(src.Get("neg"), Is(Num(-7)));
  EXPECT_THAT(src.Get("paid"), Is(Bool(true)));
  EXPECT_THAT(src.Get("off"), Is(Bool(false)));
}

TEST(JsonFieldSourceTest, WalksNestedObjects) {
  const Json doc =
      ParseOrDie(R"({"customer":{"tier":"gold","address":{"city":"Oslo"}}})");
  JsonFieldSource src(doc);
  EXPECT_THAT(src.Get("customer.tier"), Is(Str("gold")));
  EXPECT_THAT(src.Get("customer.address.city"), Is(Str("Oslo")));
  EXPECT_THAT(src.Get("customer.address.zip"), Is(kMissing));
  EXPECT_THAT(src.Get("customer.nope.city"), Is(kMissing));
  EXPECT_THAT(src.Get("customer.tier.x"), Is(kMissing));  // through a string
}

TEST(JsonFieldSourceTest, NullArraysAndObjectsAreMissing) {
  const Json doc =
      ParseOrDie(R"({"n":null,"a":[1,2],"o":{"x":1},"a2":[{"x":1}]})");
  JsonFieldSource src(doc);
  EXPECT_THAT(src.Get("n"), Is(kMissing));
  EXPECT_THAT(src.Get("a"), Is(kMissing));
  EXPECT_THAT(src.Get("o"), Is(kMissing));
  EXPECT_THAT(src.Get("a.0"), Is(kMissing));  // arrays are not walked
  EXPECT_THAT(src.Get("a2.x"), Is(kMissing));
  EXPECT_THAT(src.Get(""), Is(kMissing));
}

TEST(JsonFieldSourceTest, NonObjectDocumentHasNoFields) {
  const Json doc = ParseOrDie("[1,2,3]");
  EXPECT_THAT(JsonFieldSource(doc).Get("x"), Is(kMissing));
  const Json scalar = ParseOrDie("42");
  EXPECT_THAT(JsonFieldSource(scalar).Get("x"), Is(kMissing));
}

TEST(ParseJsonPayloadTest, InvalidJsonSaysWhy) {
  for (std::string_view bad : {"", "{", "{\"a\":}", "{\"a\":1} trailing", "nul",
                               "\"\xff\"", "{'a':1}"}) {
    Json doc;
    absl::Status s = ParseJsonPayload(bad, &doc);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("payload is not valid JSON: "));
    EXPECT_THAT(s.message(), HasSubstr("parse error")) << s;
  }
}

TEST(ParseJsonPayloadTest, NestingIsBounded) {
  auto nested = [](int depth) {
    return std::string(depth, '[') + std::string(depth, ']');
  };
  Json doc;
  EXPECT_TRUE(ParseJsonPayload(nested(kMaxJsonDepth), &doc).ok());
  absl::Status s = ParseJsonPayload(nested(kMaxJsonDepth + 1), &doc);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("deeper than"));
  // Deep enough to overflow a recursive writer's stack.
  EXPECT_FALSE(ParseJsonPayload(nested(1000000), &doc).ok());
}

TEST(ProtoFieldSourceTest, ReadsScalarsByType) {
  auto order = FromText("shop.Order", R"(
      id: "o1" amount: 12.5 quantity: -3 paid: true token: "\x01\x02"
      big: 18446744073709551615 ratio: 0.25 delta: -9)");
  ProtoFieldSource src(*order);
  EXPECT_THAT(src.Get("id"), Is(Str("o1")));
  EXPECT_THAT(src.Get("amount"), Is(Num(12.5)));
  EXPECT_THAT(src.Get("quantity"), Is(Num(-3)));
  EXPECT_THAT(src.Get("paid"), Is(Bool(true)));
  EXPECT_THAT(src.Get("token"), Is(Str("\x01\x02")));
  EXPECT_THAT(src.Get("big"), Is(Num(18446744073709551615.0)));
  EXPECT_THAT(src.Get("ratio"), Is(Num(0.25)));
  EXPECT_THAT(src.Get("delta"), Is(Num(-9)));
}

TEST(ProtoFieldSourceTest, WalksNestedMessagesAndNamesEnums) {
  auto order = FromText("shop.Order", R"(
      customer { name: "Ann" tier: TIER_GOLD address { city: "Oslo" } })");
  ProtoFieldSource src(*order);
  EXPECT_THAT(src.Get("customer.name"), Is(Str("Ann")));
  EXPECT_THAT(src.Get("customer.tier"), Is(Str("TIER_GOLD")));
  EXPECT_THAT(src.Get("customer.address.city"), Is(Str("Oslo")));
  EXPECT_THAT(src.Get("customer.address.street"), Is(Str("")));
  EXPECT_THAT(src.Get("customer"), Is(kMissing));  // a message, no value
  EXPECT_THAT(src.Get("customer.nope"), Is(kMissing));
  EXPECT_THAT(src.Get("customer.name.x"), Is(kMissing));
  EXPECT_THAT(src.Get("nope"), Is(kMissing));
}

TEST(ProtoFieldSourceTest, EnumValueWithoutANameIsItsNumber) {
  auto order = FromText("shop.Order", "");
  const auto* customer_field =
      order->GetDescriptor()->FindFieldByName("customer");
  google::protobuf::Message* customer =
      order->GetReflection()->MutableMessage(order.get(), customer_field);
  customer->GetReflection()->SetEnumValue(
      customer, customer->GetDescriptor()->FindFieldByName("tier"), 7);
  EXPECT_THAT(ProtoFieldSource(*order).Get("customer.tier"), Is(Num(7)));
}

TEST(ProtoFieldSourceTest, UnsetFieldsWithoutPresenceReadAsDefaults) {
  auto order = FromText("shop.Order", "customer { }");
  ProtoFieldSource src(*order);
  EXPECT_THAT(src.Get("id"), Is(Str("")));
  EXPECT_THAT(src.Get("amount"), Is(Num(0)));
  EXPECT_THAT(src.Get("paid"), Is(Bool(false)));
  EXPECT_THAT(src.Get("customer.tier"), Is(Str("TIER_UNSPECIFIED")));
}

TEST(ProtoFieldSourceTest, UnsetFieldsWithPresenceAreMissing) {
  auto order = FromText("shop.Order", "");
  ProtoFieldSource src(*order);
  EXPECT_THAT(src.Get("note"), Is(kMissing));           // proto3 optional
  EXPECT_THAT(src.Get("card"), Is(kMissing));           // oneof member
  EXPECT_THAT(src.Get("customer.name"), Is(kMissing));  // through unset
  EXPECT_THAT(src.Get("customer.age"), Is(kMissing));

  auto set =
      FromText("shop.Order", R"(note: "" iban: "DE00" customer { age: 0 })");
  ProtoFieldSource set_src(*set);
  EXPECT_THAT(set_src.Get("note"), Is(Str("")));
  EXPECT_THAT(set_src.Get("iban"), Is(Str("DE00")));
  EXPECT_THAT(set_src.Get("card"), Is(kMissing));
  EXPECT_THAT(set_src.Get("customer.age"), Is(Num(0)));
  EXPECT_THAT(set_src.Get("customer.name"), Is(Str("")));
}

TEST(ProtoFieldSourceTest, RepeatedAndMapFieldsAreMissing) {
  auto order =
      FromText("shop.Order", R"(tags: "a" attrs { key: "k" value: "v" })");
  ProtoFieldSource src(*order);
  EXPECT_THAT(src.Get("tags"), Is(kMissing));
  EXPECT_THAT(src.Get("attrs"), Is(kMissing));
  EXPECT_THAT(src.Get("attrs.k"), Is(kMissing));
}

TEST(ProtoPayloadParserTest, ParsesAndReusesItsMessage) {
  auto prototype = OrderRegistry().Prototype("shop.Order");
  ASSERT_TRUE(prototype.ok());
  ProtoPayloadParser parser(**prototype);
  auto first =
      parser.Parse(testing::Encode("shop.Order", "id: 'a' paid: true"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(ToText(**first), R"(id: "a" paid: true)");
  // Nothing of the previous payload remains.
  auto second = parser.Parse(testing::Encode("shop.Order", "amount: 2"));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(ToText(**second), "amount: 2");
  auto empty = parser.Parse("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(ToText(**empty), "");
}

TEST(ProtoPayloadParserTest, RefusesBadWireFormatAndUtf8) {
  auto prototype = OrderRegistry().Prototype("shop.Order");
  ASSERT_TRUE(prototype.ok());
  ProtoPayloadParser parser(**prototype);
  auto bad = parser.Parse("\xff\xff\xff");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("not a valid shop.Order"));
  // id (field 1, a proto3 string) holding a byte that is not UTF-8.
  auto not_utf8 = parser.Parse(std::string("\x0a\x01\xff", 3));
  EXPECT_EQ(not_utf8.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ProtoPayloadParserTest, ChecksProto2RequiredFields) {
  google::protobuf::FileDescriptorProto file;
  file.set_name("req.proto");
  file.set_syntax("proto2");
  google::protobuf::DescriptorProto* m = file.add_message_type();
  m->set_name("Req");
  google::protobuf::FieldDescriptorProto* f = m->add_field();
  f->set_name("x");
  f->set_number(1);
  f->set_label(google::protobuf::FieldDescriptorProto::LABEL_REQUIRED);
  f->set_type(google::protobuf::FieldDescriptorProto::TYPE_INT32);
  google::protobuf::FileDescriptorSet set;
  *set.add_file() = file;
  auto registry =
      DescriptorRegistry::FromSets({set.SerializeAsString()}, {"req.pb"});
  ASSERT_TRUE(registry.ok()) << registry.status();
  ProtoPayloadParser parser(**(*registry)->Prototype("Req"));
  EXPECT_FALSE(parser.Parse("").ok());
  EXPECT_TRUE(parser.Parse("\x08\x01").ok());
}

TEST(ResolveProtoPathTest, ResolvesThroughSingularMessages) {
  auto order = OrderRegistry().Find("shop.Order");
  ASSERT_TRUE(order.ok());
  auto path = ResolveProtoPath(*order, "customer.address.city");
  ASSERT_TRUE(path.ok()) << path.status();
  ASSERT_EQ(path->size(), 3u);
  EXPECT_EQ((*path)[2]->full_name(), "shop.Address.city");
  EXPECT_TRUE(ResolveProtoPath(*order, "tags").ok());  // ends at repeated
}

TEST(ResolveProtoPathTest, NamesTheComponentItCannotResolve) {
  auto order = OrderRegistry().Find("shop.Order");
  ASSERT_TRUE(order.ok());
  auto no_field = ResolveProtoPath(*order, "customer.teir");
  EXPECT_EQ(no_field.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(no_field.status().message(),
              HasSubstr("\"teir\" is not a field of shop.Customer"));
  auto through_scalar = ResolveProtoPath(*order, "id.x");
  EXPECT_THAT(through_scalar.status().message(),
              HasSubstr("not a singular message field"));
  auto through_repeated = ResolveProtoPath(*order, "tags.x");
  EXPECT_THAT(through_repeated.status().message(),
              HasSubstr("not a singular message field"));
}

}  // namespace
}  // namespace sift::plugin
