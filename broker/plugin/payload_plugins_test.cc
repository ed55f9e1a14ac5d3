#include "broker/plugin/payload_plugins.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "broker/plugin/payload_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sift::plugin {
namespace {

using testing::Encode;
using testing::FromText;
using ::testing::HasSubstr;
using testing::kOrderSet;
using testing::NewMessage;
using ::testing::Optional;
using testing::ToText;

using KV = std::vector<std::pair<std::string, std::string>>;

PluginConfig Config(KV kv) { return PluginConfig(std::move(kv)); }

// Config for the test's protobuf type plus `more`.
PluginConfig ProtoConfig(KV more) {
  KV kv = {{"type", "shop.Order"}, {"descriptor_set", kOrderSet}};
  for (auto& e : more) kv.push_back(std::move(e));
  return Config(std::move(kv));
}

std::unique_ptr<Filter> MakeFilter(const PluginConfig& config) {
  auto filter = MakePayloadFilterFactory()->Create(config);
  EXPECT_TRUE(filter.ok()) << filter.status();
  return filter.ok() ? *std::move(filter) : nullptr;
}

std::unique_ptr<Transform> MakeTransform(
    const std::unique_ptr<TransformFactory>& factory,
    const PluginConfig& config) {
  auto transform = factory->Create(config);
  EXPECT_TRUE(transform.ok()) << transform.status();
  return transform.ok() ? *std::move(transform) : nullptr;
}

// Runs `transform` on a message with `payload`; expects one message out.
absl::StatusOr<Message> RunOne(Transform& transform,
                               const std::string& payload) {
  std::vector<Message> out;
  Message in("orders.new", "", {{"x-keep", "1"}}, payload);
  if (absl::Status s = transform.Apply(std::move(in), CallContext{}, &out);
      !s.ok()) {
    return s;
  }
  EXPECT_EQ(out.size(), 1u);
  if (out.empty()) return absl::InternalError("nothing emitted");
  return std::move(out[0]);
}

absl::StatusOr<Verdict> Filter1(Filter& filter, const std::string& payload) {
  Message m("orders.new", "", {}, payload);
  return filter.Apply(m, CallContext{});
}

std::string ParseToText(const std::string& binary) {
  auto m = NewMessage("shop.Order");
  EXPECT_TRUE(m->ParseFromString(binary));
  return ToText(*m);
}

// --- payload_filter --------------------------------------------------------

TEST(PayloadFilterTest, FactoryName) {
  EXPECT_EQ(MakePayloadFilterFactory()->name(), "payload_filter");
  EXPECT_EQ(MakeProtoToJsonFactory()->name(), "proto_to_json");
  EXPECT_EQ(MakeJsonToProtoFactory()->name(), "json_to_proto");
  EXPECT_EQ(MakeRedactFactory()->name(), "redact");
}

TEST(PayloadFilterTest, JsonKeepsAndDrops) {
  auto filter = MakeFilter(Config({{"format", "json"},
                                   {"expr",
                                    "customer.tier == 'gold' && "
                                    "amount >= 100"}}));
  ASSERT_NE(filter, nullptr);
  auto keep = Filter1(*filter, R"({"amount":150,"customer":{"tier":"gold"}})");
  ASSERT_TRUE(keep.ok()) << keep.status();
  EXPECT_TRUE(keep->keep);
  auto drop = Filter1(*filter, R"({"amount":50,"customer":{"tier":"gold"}})");
  ASSERT_TRUE(drop.ok());
  EXPECT_FALSE(drop->keep);
  EXPECT_EQ(drop->reason, "payload_filter");
  // A missing field fails the comparison.
  auto missing = Filter1(*filter, R"({"amount":150})");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->keep);
  // Types compare strictly: the string "150" is not the number 150.
  auto typed =
      Filter1(*filter, R"({"amount":"150","customer":{"tier":"gold"}})");
  ASSERT_TRUE(typed.ok());
  EXPECT_FALSE(typed->keep);
}

TEST(PayloadFilterTest, JsonInvalidPayloadIsAnError) {
  auto filter = MakeFilter(Config({{"format", "json"}, {"expr", "exists(a)"}}));
  ASSERT_NE(filter, nullptr);
  auto bad = Filter1(*filter, "{\"a\":");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("payload is not valid JSON"));
  // The filter still works afterwards.
  auto good = Filter1(*filter, R"({"a":1})");
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(good->keep);
}

TEST(PayloadFilterTest, ProtobufKeepsAndDrops) {
  auto filter = MakeFilter(ProtoConfig(
      {{"format", "protobuf"},
       {"expr",
        "customer.tier == 'TIER_GOLD' && amount > 10 && paid == false"}}));
  ASSERT_NE(filter, nullptr);
  auto keep = Filter1(
      *filter, Encode("shop.Order", "amount: 11 customer { tier: TIER_GOLD }"));
  ASSERT_TRUE(keep.ok()) << keep.status();
  EXPECT_TRUE(keep->keep);
  auto drop = Filter1(*filter, Encode("shop.Order",
                                      "amount: 11 paid: true "
                                      "customer { tier: TIER_GOLD }"));
  ASSERT_TRUE(drop.ok());
  EXPECT_FALSE(drop->keep);
  EXPECT_EQ(drop->reason, "payload_filter");
  // Unset customer: customer.tier is missing, the comparison false.
  auto no_customer = Filter1(*filter, Encode("shop.Order", "amount: 11"));
  ASSERT_TRUE(no_customer.ok());
  EXPECT_FALSE(no_customer->keep);
  // Reused scratch message: nothing of the previous payload remains.
  auto keep_again = Filter1(
      *filter, Encode("shop.Order", "amount: 99 customer { tier: TIER_GOLD }"));
  ASSERT_TRUE(keep_again.ok());
  EXPECT_TRUE(keep_again->keep);
}

TEST(PayloadFilterTest, ProtobufDefaultsAndOptionals) {
  auto defaults = MakeFilter(
      ProtoConfig({{"format", "protobuf"}, {"expr", "quantity == 0"}}));
  ASSERT_NE(defaults, nullptr);
  EXPECT_TRUE(Filter1(*defaults, "")->keep);  // unset proto3 scalar: 0
  auto optional = MakeFilter(
      ProtoConfig({{"format", "protobuf"}, {"expr", "exists(note)"}}));
  ASSERT_NE(optional, nullptr);
  EXPECT_FALSE(Filter1(*optional, "")->keep);
  EXPECT_TRUE(Filter1(*optional, Encode("shop.Order", "note: ''"))->keep);
}

TEST(PayloadFilterTest, ProtobufInvalidPayloadIsAnError) {
  auto filter = MakeFilter(ProtoConfig({{"format", "protobuf"},
                                        {"expr",
                                         "paid"
                                         " == true"}}));
  ASSERT_NE(filter, nullptr);
  auto bad = Filter1(*filter, "\xff\xff\xff\xff");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(),
              HasSubstr("payload is not a valid shop.Order protobuf message"));
}

TEST(PayloadFilterTest, ConfigErrors) {
  auto factory = MakePayloadFilterFactory();
  struct Case {
    PluginConfig config;
    absl::StatusCode code;
    std::string mentions;
  };
  const std::vector<Case> cases = {
      {Config({{"expr", "a == 1"}}), absl::StatusCode::kInvalidArgument,
       "\"format\""},
      {Config({{"format", "xml"}, {"expr", "a == 1"}}),
       absl::StatusCode::kInvalidArgument, "\"format\""},
      {Config({{"format", "json"}}), absl::StatusCode::kInvalidArgument,
       "\"expr\""},
      {Config({{"format", "json"}, {"expr", "a =="}}),
       absl::StatusCode::kInvalidArgument, "\"expr\""},
      {Config({{"format", "json"}, {"expr", "a == 1"}, {"exp", "x"}}),
       absl::StatusCode::kInvalidArgument, "\"exp\""},
      {Config({{"format", "json"}, {"expr", "a == 1"}, {"type", "x.Y"}}),
       absl::StatusCode::kInvalidArgument, "\"type\""},
      {Config({{"format", "protobuf"}, {"expr", "a == 1"}}),
       absl::StatusCode::kInvalidArgument, "\"descriptor_set\""},
      {Config({{"format", "protobuf"},
               {"expr", "id == 'x'"},
               {"descriptor_set", kOrderSet}}),
       absl::StatusCode::kInvalidArgument, "\"type\""},
      {ProtoConfig({{"format", "protobuf"}, {"expr", "customer.teir == 1"}}),
       absl::StatusCode::kInvalidArgument, "teir"},
      {ProtoConfig({{"format", "protobuf"}, {"expr", "exists(customer)"}}),
       absl::StatusCode::kInvalidArgument, "message field"},
      {ProtoConfig({{"format", "protobuf"}, {"expr", "tags == 'a'"}}),
       absl::StatusCode::kInvalidArgument, "repeated field"},
      {Config({{"format", "protobuf"},
               {"expr", "id == 'x'"},
               {"type", "shop.Nope"},
               {"descriptor_set", kOrderSet}}),
       absl::StatusCode::kInvalidArgument, "shop.Nope"},
      {Config({{"format", "protobuf"},
               {"expr", "id == 'x'"},
               {"type", "shop.Order"},
               {"descriptor_set", "missing.pb"}}),
       absl::StatusCode::kFailedPrecondition, "missing.pb"},
      {Config({{"format", "protobuf"},
               {"expr", "id == 'x'"},
               {"type", "shop.Order"},
               {"descriptor_set", std::string(kOrderSet) + ","}}),
       absl::StatusCode::kInvalidArgument, "\"descriptor_set\""},
  };
  for (const Case& c : cases) {
    auto filter = factory->Create(c.config);
    EXPECT_EQ(filter.status().code(), c.code) << filter.status();
    EXPECT_THAT(filter.status().message(), HasSubstr(c.mentions));
  }
}

TEST(PayloadFilterTest, SeveralDescriptorSets) {
  auto filter = MakeFilter(
      Config({{"format", "protobuf"},
              {"expr", "order.customer.tier == 'TIER_GOLD'"},
              {"type", "shop.Envelope"},
              {"descriptor_set",
               std::string(testing::kEnvelopeOnlySet) + ", " + kOrderSet}}));
  ASSERT_NE(filter, nullptr);
  // Envelope{order=2: Order{customer=6: Customer{tier=2: GOLD}}}.
  const std::string customer = "\x10\x01";
  const std::string order =
      "\x32" + std::string(1, char(customer.size())) + customer;
  const std::string envelope =
      "\x12" + std::string(1, char(order.size())) + order;
  auto v = Filter1(*filter, envelope);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->keep);
}

// --- proto_to_json / json_to_proto ---------------------------------------

constexpr char kOrderText[] =
    "id: \"o-17\" amount: 12.5 quantity: 3 paid: true token: \"\\001\\002\" "
    "customer { name: \"Ann\" tier: TIER_GOLD email: \"ann@example.com\" "
    "age: 41 address { city: \"Oslo\" } } tags: \"a\" tags: \"b\" "
    "note: \"\" big: 18446744073709551615 card: \"4111\" "
    "attrs { key: \"k\" value: \"v\" } delta: -9";

TEST(ProtoJsonTest, ProtoToJsonWritesProtoNamesAndSetsContentType) {
  auto to_json = MakeTransform(MakeProtoToJsonFactory(), ProtoConfig({}));
  ASSERT_NE(to_json, nullptr);
  auto out = RunOne(*to_json, Encode("shop.Order",
                                     "id: 'o1' quantity: 2 "
                                     "customer { tier: TIER_GOLD }"));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->payload(),
            R"({"id":"o1","quantity":"2","customer":{"tier":"TIER_GOLD"}})");
  EXPECT_THAT(out->header("content-type"),
              Optional(std::string_view("application/json")));
  EXPECT_THAT(out->header("x-keep"), Optional(std::string_view("1")));
  EXPECT_EQ(out->topic(), "orders.new");
}

TEST(ProtoJsonTest, ProtoToJsonOptions) {
  auto to_json =
      MakeTransform(MakeProtoToJsonFactory(),
                    ProtoConfig({{"preserve_field_names", "false"},
                                 {"always_print_primitive_fields", "true"},
                                 {"enums_as_ints", "true"}}));
  ASSERT_NE(to_json, nullptr);
  auto out = RunOne(*to_json, Encode("shop.Order",
                                     "big: 5 customer { "
                                     "tier: TIER_SILVER }"));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(std::string(out->payload()), HasSubstr(R"("customer":{)"));
  EXPECT_THAT(std::string(out->payload()), HasSubstr(R"("tier":2)"));
  EXPECT_THAT(std::string(out->payload()), HasSubstr(R"("paid":false)"));
  EXPECT_THAT(std::string(out->payload()), HasSubstr(R"("id":"")"));
}

TEST(ProtoJsonTest, RoundTripsBothWays) {
  auto to_json = MakeTransform(MakeProtoToJsonFactory(), ProtoConfig({}));
  auto to_proto = MakeTransform(MakeJsonToProtoFactory(), ProtoConfig({}));
  ASSERT_NE(to_json, nullptr);
  ASSERT_NE(to_proto, nullptr);
  const std::string binary = Encode("shop.Order", kOrderText);
  auto json = RunOne(*to_json, binary);
  ASSERT_TRUE(json.ok()) << json.status();
  auto back = RunOne(*to_proto, std::string(json->payload()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(ParseToText(std::string(back->payload())),
            ToText(*FromText("shop.Order", kOrderText)));
  EXPECT_THAT(back->header("content-type"),
              Optional(std::string_view("application/x-protobuf")));
  // And JSON -> proto -> JSON gives the same JSON.
  auto json_again = RunOne(*to_json, std::string(back->payload()));
  ASSERT_TRUE(json_again.ok());
  EXPECT_EQ(json_again->payload(), json->payload());
}

TEST(ProtoJsonTest, JsonToProtoAcceptsCamelCaseNames) {
  auto to_proto = MakeTransform(MakeJsonToProtoFactory(), ProtoConfig({}));
  ASSERT_NE(to_proto, nullptr);
  auto out = RunOne(*to_proto, R"({"id":"x","customer":{"tier":"TIER_GOLD"}})");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(ParseToText(std::string(out->payload())),
            R"(id: "x" customer { tier: TIER_GOLD })");
}

TEST(ProtoJsonTest, BadPayloadsAreErrors) {
  auto to_json = MakeTransform(MakeProtoToJsonFactory(), ProtoConfig({}));
  auto to_proto = MakeTransform(MakeJsonToProtoFactory(), ProtoConfig({}));
  ASSERT_NE(to_json, nullptr);
  ASSERT_NE(to_proto, nullptr);
  auto bad_proto = RunOne(*to_json, "\xff\xff\xff");
  EXPECT_EQ(bad_proto.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_proto.status().message(), HasSubstr("shop.Order"));
  for (const std::string bad :
       {"{", "[1]", R"({"nope":1})", R"({"quantity":"many"})",
        R"({"customer":{"tier":"TIER_BRONZE"}})"}) {
    auto out = RunOne(*to_proto, bad);
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(out.status().message(), HasSubstr("shop.Order")) << bad;
  }
}

TEST(ProtoJsonTest, JsonToProtoCanIgnoreUnknownFields) {
  auto to_proto =
      MakeTransform(MakeJsonToProtoFactory(),
                    ProtoConfig({{"ignore_unknown_fields", "true"}}));
  ASSERT_NE(to_proto, nullptr);
  auto out = RunOne(*to_proto, R"({"id":"x","nope":1})");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(ParseToText(std::string(out->payload())), R"(id: "x")");
}

TEST(ProtoJsonTest, ConfigErrors) {
  struct Case {
    const std::unique_ptr<TransformFactory> factory;
    PluginConfig config;
    absl::StatusCode code;
    std::string mentions;
  };
  Case cases[] = {
      {MakeProtoToJsonFactory(), ProtoConfig({{"pretty", "true"}}),
       absl::StatusCode::kInvalidArgument, "\"pretty\""},
      {MakeProtoToJsonFactory(),
       ProtoConfig({{"preserve_field_names", "maybe"}}),
       absl::StatusCode::kInvalidArgument, "\"preserve_field_names\""},
      {MakeProtoToJsonFactory(), Config({{"type", "shop.Order"}}),
       absl::StatusCode::kInvalidArgument, "\"descriptor_set\""},
      {MakeProtoToJsonFactory(), ProtoConfig({{"format", "json"}}),
       absl::StatusCode::kInvalidArgument, "\"format\""},
      {MakeJsonToProtoFactory(), ProtoConfig({{"ignore_unknown_fields", "2"}}),
       absl::StatusCode::kInvalidArgument, "\"ignore_unknown_fields\""},
      {MakeJsonToProtoFactory(),
       Config({{"type", "shop.Order"}, {"descriptor_set", "/nonexistent"}}),
       absl::StatusCode::kFailedPrecondition, "/nonexistent"},
  };
  for (Case& c : cases) {
    auto t = c.factory->Create(c.config);
    EXPECT_EQ(t.status().code(), c.code) << t.status();
    EXPECT_THAT(t.status().message(), HasSubstr(c.mentions));
  }
}

// --- redact ----------------------------------------------------------------

constexpr char kJsonOrder[] =
    R"({"id":"o1","amount":12.5,"paid":true,"note":null,)"
    R"("customer":{"name":"Ann","email":"a@x","age":41,"tags":["x"]},)"
    R"("items":[1]})";

TEST(RedactTest, JsonDrop) {
  auto redact = MakeTransform(
      MakeRedactFactory(), Config({{"format", "json"},
                                   {"fields",
                                    "customer.email, customer.age,amount,items,"
                                    "absent,customer.name.x,id.x"}}));
  ASSERT_NE(redact, nullptr);
  auto out = RunOne(*redact, kJsonOrder);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->payload(), R"({"id":"o1","paid":true,"note":null,)"
                            R"("customer":{"name":"Ann","tags":["x"]}})");
  EXPECT_THAT(out->header("x-keep"), Optional(std::string_view("1")));
}

TEST(RedactTest, JsonMask) {
  auto redact =
      MakeTransform(MakeRedactFactory(),
                    Config({{"format", "json"},
                            {"mode", "mask"},
                            {"mask", "[hidden]"},
                            {"fields",
                             "customer.email,customer.age,amount,paid,note,"
                             "customer.tags,absent"}}));
  ASSERT_NE(redact, nullptr);
  auto out = RunOne(*redact, kJsonOrder);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->payload(),
            R"({"id":"o1","amount":0,"paid":false,"note":null,)"
            R"("customer":{"name":"Ann","email":"[hidden]","age":0},)"
            R"("items":[1]})");
}

TEST(RedactTest, JsonDefaultMaskAndBadPayload) {
  auto redact = MakeTransform(
      MakeRedactFactory(),
      Config({{"format", "json"}, {"mode", "mask"}, {"fields", "a"}}));
  ASSERT_NE(redact, nullptr);
  auto out = RunOne(*redact, R"({"a":"secret"})");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->payload(), R"({"a":"***"})");
  auto bad = RunOne(*redact, R"({"a":)");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("payload is not valid JSON"));
}

TEST(RedactTest, ProtobufDrop) {
  auto redact =
      MakeTransform(MakeRedactFactory(),
                    ProtoConfig({{"format", "protobuf"},
                                 {"fields",
                                  "customer.email,customer.age,token,tags,card,"
                                  "customer.address"}}));
  ASSERT_NE(redact, nullptr);
  auto out = RunOne(*redact, Encode("shop.Order", kOrderText));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(ParseToText(std::string(out->payload())),
            ToText(*FromText("shop.Order",
                             "id: \"o-17\" amount: 12.5 quantity: 3 paid: true "
                             "customer { name: \"Ann\" tier: TIER_GOLD } "
                             "note: \"\" big: 18446744073709551615 "
                             "attrs { key: \"k\" value: \"v\" } delta: -9")));
}

TEST(RedactTest, ProtobufMask) {
  auto redact =
      MakeTransform(MakeRedactFactory(),
                    ProtoConfig({{"format", "protobuf"},
                                 {"mode", "mask"},
                                 {"fields",
                                  "customer.email,customer.age,customer.tier,"
                                  "amount,paid,token,tags,card,iban,big,"
                                  "customer.address.street"}}));
  ASSERT_NE(redact, nullptr);
  auto out = RunOne(*redact, Encode("shop.Order", kOrderText));
  ASSERT_TRUE(out.ok()) << out.status();
  // Unset fields stay unset (iban, street); masked proto3 scalars at their
  // default vanish from the encoding; optional age stays present as 0.
  EXPECT_EQ(ParseToText(std::string(out->payload())),
            ToText(*FromText("shop.Order",
                             "id: \"o-17\" quantity: 3 token: \"***\" "
                             "customer { name: \"Ann\" email: \"***\" age: 0 "
                             "address { city: \"Oslo\" } } "
                             "note: \"\" card: \"***\" "
                             "attrs { key: \"k\" value: \"v\" } delta: -9")));
}

TEST(RedactTest, ProtobufDoesNotCreateAbsentMessages) {
  auto redact = MakeTransform(MakeRedactFactory(),
                              ProtoConfig({{"format", "protobuf"},
                                           {"mode", "mask"},
                                           {"fields", "customer.email"}}));
  ASSERT_NE(redact, nullptr);
  auto out = RunOne(*redact, Encode("shop.Order", "id: 'x'"));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(ParseToText(std::string(out->payload())), R"(id: "x")");
}

TEST(RedactTest, ProtobufRemovesUnknownFields) {
  auto redact =
      MakeTransform(MakeRedactFactory(),
                    ProtoConfig({{"format", "protobuf"}, {"fields", "id"}}));
  ASSERT_NE(redact, nullptr);
  // Field 3 (quantity, a varint) sent as a string: kept as an unknown field
  // by the parser, and must not be passed on.
  const std::string payload = Encode("shop.Order", "amount: 1") + std::string(
                                                                      "\x1a\x03"
                                                                      "abc",
                                                                      5);
  auto out = RunOne(*redact, payload);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->payload(), Encode("shop.Order", "amount: 1"));
}

TEST(RedactTest, ProtobufBadPayload) {
  auto redact =
      MakeTransform(MakeRedactFactory(),
                    ProtoConfig({{"format", "protobuf"}, {"fields", "id"}}));
  ASSERT_NE(redact, nullptr);
  auto out = RunOne(*redact, "\xff\xff");
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RedactTest, ConfigErrors) {
  auto factory = MakeRedactFactory();
  struct Case {
    PluginConfig config;
    std::string mentions;
  };
  const std::vector<Case> cases = {
      {Config({{"fields", "a"}}), "\"format\""},
      {Config({{"format", "json"}}), "\"fields\""},
      {Config({{"format", "json"}, {"fields", ""}}), "\"fields\""},
      {Config({{"format", "json"}, {"fields", "a,,b"}}), "\"fields\""},
      {Config({{"format", "json"}, {"fields", "a..b"}}), "\"fields\""},
      {Config({{"format", "json"}, {"fields", "a"}, {"mode", "erase"}}),
       "\"mode\""},
      {Config({{"format", "json"}, {"fields", "a"}, {"mask", "x"}}),
       "\"mask\""},
      {Config({{"format", "json"},
               {"fields", "a"},
               {"mode", "mask"},
               {"mask", "\xff"}}),
       "\"mask\""},
      {Config({{"format", "json"}, {"fields", "a"}, {"field", "b"}}),
       "\"field\""},
      {Config({{"format", "json"},
               {"fields", "a"},
               {"descriptor_set", kOrderSet}}),
       "\"descriptor_set\""},
      {ProtoConfig({{"format", "protobuf"}, {"fields", "customer.mail"}}),
       "mail"},
      {ProtoConfig({{"format", "protobuf"}, {"fields", "tags.x"}}),
       "\"fields\""},
  };
  for (const Case& c : cases) {
    auto t = factory->Create(c.config);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument)
        << t.status();
    EXPECT_THAT(t.status().message(), HasSubstr(c.mentions));
  }
  auto missing_set =
      factory->Create(Config({{"format", "protobuf"},
                              {"fields", "id"},
                              {"type", "shop.Order"},
                              {"descriptor_set", "no/such.pb"}}));
  EXPECT_EQ(missing_set.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace sift::plugin
