// Tests of RunChain (wire form in and out, payload sharing, dead letters,
// malformed headers, counts), SubscriptionChains and IsReservedTopic.
#include "broker/plugin/chain_io.h"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "broker/plugin/chain.h"
#include "broker/plugin/message.h"
#include "broker/plugin/plugin.h"
#include "broker/plugin/registry.h"
#include "broker/protocol/headers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sift::plugin {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Pairs = std::vector<std::pair<std::string, std::string>>;

// "edit" transform. Settings (all optional): topic, reply_to, payload
// (set_* with that value), set (header "key=value", SetHeader), copies (emit
// N copies; default 1), number (a header key: copy i gets it set to i).
class EditTransform : public Transform {
 public:
  explicit EditTransform(PluginConfig config) : config_(std::move(config)) {}
  absl::Status Apply(Message message, const CallContext&,
                     std::vector<Message>* out) override {
    if (const std::string* v = config_.Find("topic")) message.set_topic(*v);
    if (const std::string* v = config_.Find("reply_to")) {
      message.set_reply_to(*v);
    }
    if (const std::string* v = config_.Find("payload")) {
      message.set_payload(*v);
    }
    if (const std::string* v = config_.Find("set")) {
      const size_t eq = v->find('=');
      message.SetHeader(v->substr(0, eq), v->substr(eq + 1));
    }
    const int64_t copies = *config_.GetInt("copies", 1);
    const std::string* number = config_.Find("number");
    for (int64_t i = 0; i < copies; ++i) {
      out->push_back(message);
      if (number != nullptr) out->back().SetHeader(*number, absl::StrCat(i));
    }
    return absl::OkStatus();
  }

 private:
  PluginConfig config_;
};

class EditFactory : public TransformFactory {
 public:
  std::string_view name() const override { return "edit"; }
  absl::StatusOr<std::unique_ptr<Transform>> Create(
      const PluginConfig& config) const override {
    return std::make_unique<EditTransform>(config);
  }
};

// "fail" filter: fails a message that has header `if` (equal to `equals`, if
// set; every message without `if`) with reason `reason` (default "boom");
// keeps the others.
class FailFilter : public Filter {
 public:
  explicit FailFilter(PluginConfig config) : config_(std::move(config)) {}
  absl::StatusOr<Verdict> Apply(const Message& message,
                                const CallContext&) override {
    const std::string* key = config_.Find("if");
    const std::string* equals = config_.Find("equals");
    auto value = key == nullptr ? std::nullopt : message.header(*key);
    if (key == nullptr ||
        (value.has_value() && (equals == nullptr || *value == *equals))) {
      return absl::InternalError(config_.GetString("reason", "boom"));
    }
    return Verdict::Keep();
  }

 private:
  PluginConfig config_;
};

class FailFactory : public FilterFactory {
 public:
  std::string_view name() const override { return "fail"; }
  absl::StatusOr<std::unique_ptr<Filter>> Create(
      const PluginConfig& config) const override {
    return std::make_unique<FailFilter>(config);
  }
};

// "drop" filter: drops every message.
class DropFactory : public FilterFactory {
 public:
  std::string_view name() const override { return "drop"; }
  absl::StatusOr<std::unique_ptr<Filter>> Create(
      const PluginConfig&) const override {
    class Drop : public Filter {
      absl::StatusOr<Verdict> Apply(const Message&,
                                    const CallContext&) override {
        return Verdict::Drop("test");
      }
    };
    return std::make_unique<Drop>();
  }
};

StageSpec Spec(std::string plugin, Pairs kv = {}) {
  return StageSpec{std::move(plugin), PluginConfig(std::move(kv))};
}

Pairs Decode(std::string_view wire) {
  std::vector<std::pair<std::string_view, std::string_view>> views;
  EXPECT_TRUE(protocol::DecodeHeaders(wire, &views));
  Pairs out;
  for (const auto& [k, v] : views) out.emplace_back(k, v);
  return out;
}

class ChainIoTest : public ::testing::Test {
 protected:
  ChainIoTest() {
    EXPECT_TRUE(registry_.Add(std::make_unique<EditFactory>()).ok());
    EXPECT_TRUE(registry_.Add(std::make_unique<FailFactory>()).ok());
    EXPECT_TRUE(registry_.Add(std::make_unique<DropFactory>()).ok());
  }

  std::unique_ptr<Chain> Build(const std::vector<StageSpec>& specs) {
    auto chain = Chain::Build(
        registry_, specs, "test", [this](std::string_view, size_t) {
          counters_.push_back(std::make_shared<StageCounters>());
          return counters_.back();
        });
    EXPECT_TRUE(chain.ok()) << chain.status();
    return chain.ok() ? *std::move(chain) : nullptr;
  }

  ChainResult Run(Chain& chain, std::string_view headers) {
    return RunChain(chain, topic_, reply_to_, headers, payload_, context_,
                    &out_);
  }

  Registry registry_;
  std::vector<std::shared_ptr<StageCounters>> counters_;
  CallContext context_;
  const std::string topic_ = "orders.eu";
  const std::string reply_to_ = "_INBOX.7";
  const std::string payload_ = "{\"id\": 1}";
  const std::string headers_ =
      protocol::EncodeHeaders(Pairs{{"region", "eu"}, {"trace", "t1"}});
  std::vector<OutMessage> out_;
};

TEST_F(ChainIoTest, UnchangedMessageComesOutAsItWentIn) {
  std::unique_ptr<Chain> chain = Build({Spec("edit")});
  ASSERT_NE(chain, nullptr);
  ChainResult r = Run(*chain, headers_);
  EXPECT_EQ(r.dropped, 0u);
  EXPECT_EQ(r.failed, 0u);
  ASSERT_EQ(out_.size(), 1u);
  const OutMessage& o = out_[0];
  EXPECT_EQ(o.topic, topic_);
  EXPECT_EQ(o.reply_to, reply_to_);
  EXPECT_EQ(o.headers, headers_);  // the same bytes
  EXPECT_TRUE(o.payload_is_input);
  EXPECT_EQ(o.payload.data(), payload_.data());  // not copied
  EXPECT_EQ(o.payload.size(), payload_.size());
  EXPECT_TRUE(o.payload_storage.empty());
  EXPECT_FALSE(o.dead_letter);
}

TEST_F(ChainIoTest, NoHeadersStayNoHeaders) {
  std::unique_ptr<Chain> chain = Build({Spec("edit")});
  ASSERT_NE(chain, nullptr);
  Run(*chain, "");
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].headers, "");
}

TEST_F(ChainIoTest, RewritesComeOutInWireForm) {
  std::unique_ptr<Chain> chain = Build({Spec("edit", {{"topic", "orders.us"},
                                                      {"reply_to", "_INBOX.8"},
                                                      {"set", "region=us"}}),
                                        Spec("edit", {{"set", "added=1"}})});
  ASSERT_NE(chain, nullptr);
  Run(*chain, headers_);
  ASSERT_EQ(out_.size(), 1u);
  const OutMessage& o = out_[0];
  EXPECT_EQ(o.topic, "orders.us");
  EXPECT_EQ(o.reply_to, "_INBOX.8");
  EXPECT_EQ(o.headers, protocol::EncodeHeaders(Pairs{
                           {"region", "us"}, {"trace", "t1"}, {"added", "1"}}));
  EXPECT_TRUE(o.payload_is_input);
  EXPECT_EQ(o.payload.data(), payload_.data());
}

TEST_F(ChainIoTest, ChangedPayloadIsCopied) {
  std::unique_ptr<Chain> chain = Build({Spec("edit", {{"payload", "new"}})});
  ASSERT_NE(chain, nullptr);
  Run(*chain, headers_);
  ASSERT_EQ(out_.size(), 1u);
  const OutMessage& o = out_[0];
  EXPECT_FALSE(o.payload_is_input);
  EXPECT_EQ(o.payload_storage, "new");
  EXPECT_EQ(o.payload, "new");
  EXPECT_EQ(o.payload.data(), o.payload_storage.data());
}

// Set to the same bytes, the payload is still the plugin's, not the input's.
TEST_F(ChainIoTest, PayloadSetToEqualBytesIsCopied) {
  std::unique_ptr<Chain> chain = Build({Spec("edit", {{"payload", payload_}})});
  ASSERT_NE(chain, nullptr);
  Run(*chain, headers_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_FALSE(out_[0].payload_is_input);
  EXPECT_EQ(out_[0].payload, payload_);
  EXPECT_NE(out_[0].payload.data(), payload_.data());
  EXPECT_EQ(out_[0].payload.data(), out_[0].payload_storage.data());
}

TEST_F(ChainIoTest, FanOutKeepsEveryPayloadViewRight) {
  std::unique_ptr<Chain> chain = Build(
      {Spec("edit", {{"copies", "40"}}), Spec("edit", {{"payload", "x"}})});
  ASSERT_NE(chain, nullptr);
  Run(*chain, headers_);
  ASSERT_EQ(out_.size(), 40u);
  for (const OutMessage& o : out_) {
    EXPECT_EQ(o.payload, "x");
    EXPECT_EQ(o.payload.data(), o.payload_storage.data());
  }
}

TEST_F(ChainIoTest, DroppedMessageIsCounted) {
  std::unique_ptr<Chain> chain = Build({Spec("drop")});
  ASSERT_NE(chain, nullptr);
  out_.push_back(OutMessage());  // cleared first
  ChainResult r = Run(*chain, headers_);
  EXPECT_EQ(r.dropped, 1u);
  EXPECT_EQ(r.failed, 0u);
  EXPECT_THAT(out_, IsEmpty());
}

TEST_F(ChainIoTest, FailedMessageBecomesADeadLetter) {
  std::unique_ptr<Chain> chain =
      Build({Spec("edit", {{"set", "stage=1"}, {"topic", "renamed"}}),
             Spec("fail", {{"reason", "bad order"}})});
  ASSERT_NE(chain, nullptr);
  ChainResult r = Run(*chain, headers_);
  EXPECT_EQ(r.dropped, 0u);
  EXPECT_EQ(r.failed, 1u);
  ASSERT_EQ(out_.size(), 1u);
  const OutMessage& d = out_[0];
  EXPECT_TRUE(d.dead_letter);
  // Under the topic it was published on, not the rewritten one.
  EXPECT_EQ(d.topic, "$sift.deadletter.orders.eu");
  EXPECT_EQ(d.reply_to, reply_to_);
  EXPECT_THAT(Decode(d.headers),
              ElementsAre(Pairs::value_type{"region", "eu"},
                          Pairs::value_type{"trace", "t1"},
                          Pairs::value_type{"stage", "1"},
                          Pairs::value_type{"sift-original-topic", "orders.eu"},
                          Pairs::value_type{"sift-plugin", "fail"},
                          Pairs::value_type{"sift-reason", "bad order"}));
  EXPECT_TRUE(d.payload_is_input);
  EXPECT_EQ(d.payload.data(), payload_.data());
}

TEST_F(ChainIoTest, DeadLetterCarriesTheFailedMessagesPayload) {
  std::unique_ptr<Chain> chain =
      Build({Spec("edit", {{"payload", "rewritten"}}), Spec("fail")});
  ASSERT_NE(chain, nullptr);
  Run(*chain, headers_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_TRUE(out_[0].dead_letter);
  EXPECT_FALSE(out_[0].payload_is_input);
  EXPECT_EQ(out_[0].payload, "rewritten");
  EXPECT_EQ(out_[0].payload.data(), out_[0].payload_storage.data());
}

TEST_F(ChainIoTest, DeadLetterReasonIsTruncated) {
  const std::string long_reason(kMaxDeadLetterReasonBytes + 100, 'r');
  std::unique_ptr<Chain> chain =
      Build({Spec("fail", {{"reason", long_reason}})});
  ASSERT_NE(chain, nullptr);
  Run(*chain, "");
  ASSERT_EQ(out_.size(), 1u);
  Pairs h = Decode(out_[0].headers);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[2].first, "sift-reason");
  EXPECT_EQ(h[2].second, long_reason.substr(0, 512));
  EXPECT_EQ(kMaxDeadLetterReasonBytes, 512u);

  const std::string exact(kMaxDeadLetterReasonBytes, 'e');
  chain = Build({Spec("fail", {{"reason", exact}})});
  ASSERT_NE(chain, nullptr);
  Run(*chain, "");
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(Decode(out_[0].headers)[2].second, exact);
}

TEST_F(ChainIoTest, PassedMessagesComeBeforeDeadLetters) {
  std::unique_ptr<Chain> chain =
      Build({Spec("edit", {{"copies", "3"}, {"number", "copy"}}),
             Spec("fail", {{"if", "copy"}, {"equals", "1"}, {"reason", "r1"}}),
             Spec("edit", {{"set", "after=1"}})});
  ASSERT_NE(chain, nullptr);
  ChainResult r = Run(*chain, headers_);
  EXPECT_EQ(r.failed, 1u);
  EXPECT_EQ(r.dropped, 0u);
  ASSERT_EQ(out_.size(), 3u);
  EXPECT_FALSE(out_[0].dead_letter);
  EXPECT_EQ(out_[0].topic, topic_);
  EXPECT_EQ(
      Decode(out_[0].headers),
      (Pairs{
          {"region", "eu"}, {"trace", "t1"}, {"copy", "0"}, {"after", "1"}}));
  EXPECT_FALSE(out_[1].dead_letter);
  EXPECT_EQ(
      Decode(out_[1].headers),
      (Pairs{
          {"region", "eu"}, {"trace", "t1"}, {"copy", "2"}, {"after", "1"}}));
  EXPECT_TRUE(out_[2].dead_letter);
  EXPECT_EQ(Decode(out_[2].headers),
            (Pairs{{"region", "eu"},
                   {"trace", "t1"},
                   {"copy", "1"},
                   {"sift-original-topic", "orders.eu"},
                   {"sift-plugin", "fail"},
                   {"sift-reason", "r1"}}));
  for (const OutMessage& o : out_) {
    EXPECT_TRUE(o.payload_is_input);
    EXPECT_EQ(o.payload.data(), payload_.data());
  }
}

TEST_F(ChainIoTest, EveryCopyCanFail) {
  std::unique_ptr<Chain> chain =
      Build({Spec("edit", {{"copies", "2"}}), Spec("fail", {{"if", "trace"}})});
  ASSERT_NE(chain, nullptr);
  ChainResult r = Run(*chain, headers_);
  EXPECT_EQ(r.failed, 2u);
  EXPECT_EQ(r.dropped, 0u);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_TRUE(out_[0].dead_letter);
  EXPECT_TRUE(out_[1].dead_letter);

  r = Run(*chain, protocol::EncodeHeaders(Pairs{{"region", "eu"}}));
  EXPECT_EQ(r.failed, 0u);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_FALSE(out_[0].dead_letter);
}

TEST_F(ChainIoTest, MalformedHeadersFailThePseudoPluginHeaders) {
  std::unique_ptr<Chain> chain = Build({Spec("edit")});
  ASSERT_NE(chain, nullptr);
  // An entry that claims 5 bytes and has 2, after a good one.
  const std::string bad =
      protocol::EncodeHeaders(Pairs{{"k", "v"}}) + std::string(
                                                       "\x22\x05"
                                                       "ab");
  ChainResult r = Run(*chain, bad);
  EXPECT_EQ(r.failed, 1u);
  EXPECT_EQ(r.dropped, 0u);
  ASSERT_EQ(out_.size(), 1u);
  const OutMessage& d = out_[0];
  EXPECT_TRUE(d.dead_letter);
  EXPECT_EQ(d.topic, "$sift.deadletter.orders.eu");
  EXPECT_EQ(d.reply_to, reply_to_);
  EXPECT_THAT(Decode(d.headers),
              ElementsAre(Pairs::value_type{"sift-original-topic", "orders.eu"},
                          Pairs::value_type{"sift-plugin", "headers"},
                          Pairs::value_type{"sift-reason",
                                            "malformed header entries"}));
  EXPECT_TRUE(d.payload_is_input);
  EXPECT_EQ(d.payload.data(), payload_.data());
  EXPECT_EQ(counters_[0]->calls, 0u);  // the chain did not run
}

TEST_F(ChainIoTest, SubscriptionChainsSetFindRemove) {
  SubscriptionChains chains;
  EXPECT_TRUE(chains.empty());
  EXPECT_EQ(chains.Find(1, 1), nullptr);

  std::unique_ptr<Chain> a = Build({Spec("edit")});
  std::unique_ptr<Chain> b = Build({Spec("edit")});
  std::unique_ptr<Chain> c = Build({Spec("edit")});
  std::unique_ptr<Chain> d = Build({Spec("edit")});
  Chain* pa = a.get();
  Chain* pb = b.get();
  Chain* pc = c.get();
  Chain* pd = d.get();
  chains.Set(1, 10, std::move(a));
  chains.Set(1, 11, std::move(b));
  chains.Set(2, 10, std::move(c));
  EXPECT_EQ(chains.size(), 3u);
  EXPECT_FALSE(chains.empty());
  EXPECT_EQ(chains.Find(1, 10), pa);
  EXPECT_EQ(chains.Find(1, 11), pb);
  EXPECT_EQ(chains.Find(2, 10), pc);
  EXPECT_EQ(chains.Find(2, 11), nullptr);
  EXPECT_EQ(chains.Find(3, 10), nullptr);

  // Set replaces.
  chains.Set(1, 10, std::move(d));
  EXPECT_EQ(chains.size(), 3u);
  EXPECT_EQ(chains.Find(1, 10), pd);

  chains.Remove(1, 10);
  EXPECT_EQ(chains.size(), 2u);
  EXPECT_EQ(chains.Find(1, 10), nullptr);
  chains.Remove(1, 10);  // again: nothing
  chains.Remove(9, 9);
  EXPECT_EQ(chains.size(), 2u);

  chains.RemoveClient(1);
  EXPECT_EQ(chains.size(), 1u);
  EXPECT_EQ(chains.Find(1, 11), nullptr);
  EXPECT_EQ(chains.Find(2, 10), pc);
  chains.RemoveClient(1);  // again: nothing
  chains.RemoveClient(7);
  EXPECT_EQ(chains.size(), 1u);

  chains.Remove(2, 10);
  EXPECT_TRUE(chains.empty());
  EXPECT_EQ(chains.Find(2, 10), nullptr);

  // A client emptied by Remove can come back.
  chains.Set(2, 10, Build({Spec("edit")}));
  EXPECT_EQ(chains.size(), 1u);
  EXPECT_NE(chains.Find(2, 10), nullptr);
}

TEST(IsReservedTopicTest, OnlyTheSiftPrefix) {
  EXPECT_TRUE(IsReservedTopic("$sift.deadletter.orders"));
  EXPECT_TRUE(IsReservedTopic("$sift.x"));
  EXPECT_TRUE(IsReservedTopic("$sift."));
  EXPECT_FALSE(IsReservedTopic("$sift"));
  EXPECT_FALSE(IsReservedTopic("$SIFT.x"));
  EXPECT_FALSE(IsReservedTopic("sift.x"));
  EXPECT_FALSE(IsReservedTopic("$siftx.y"));
  EXPECT_FALSE(IsReservedTopic("a.$sift.x"));
  EXPECT_FALSE(IsReservedTopic(""));
  EXPECT_EQ(kDeadLetterPrefix.substr(0, kReservedPrefix.size()),
            kReservedPrefix);
}

}  // namespace
}  // namespace sift::plugin
