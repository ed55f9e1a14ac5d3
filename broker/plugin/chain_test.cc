// Tests of Chain: stage order, drops, fan-out, failures, the output bound,
// per-stage counters and Build's errors, with small test plugins.
#include "broker/plugin/chain.h"

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "broker/plugin/message.h"
#include "broker/plugin/plugin.h"
#include "broker/plugin/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sift::plugin {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr std::string_view kTopic = "orders.eu";
constexpr std::string_view kPayload = "body";

// The value of header `key`, or "-" if it has none.
std::string H(const Message& m, std::string_view key) {
  auto v = m.header(key);
  return v.has_value() ? std::string(*v) : "-";
}

// "key=value" from a setting, split.
std::pair<std::string, std::string> KeyValue(const std::string& text) {
  std::pair<std::string, std::string> kv =
      absl::StrSplit(text, absl::MaxSplits('=', 1));
  return kv;
}

bool Matches(const Message& m, const std::pair<std::string, std::string>& kv) {
  auto v = m.header(kv.first);
  return v.has_value() && *v == kv.second;
}

// Test filter. Settings:
//   mark     logged as "<mark>" on every call (default: the factory's name)
//   drop_if  a header key: a message that has it is dropped
//   fail_if  "key=value": a message whose header key has value fails with
//            "refused key=value"
class TestFilter : public Filter {
 public:
  TestFilter(std::vector<std::string>* log, std::string mark,
             std::string drop_if, std::string fail_if)
      : log_(log),
        mark_(std::move(mark)),
        drop_if_(std::move(drop_if)),
        fail_if_(std::move(fail_if)) {}

  absl::StatusOr<Verdict> Apply(const Message& message,
                                const CallContext&) override {
    log_->push_back(absl::StrCat(mark_, "(", H(message, "part"), ")"));
    if (!fail_if_.empty() && Matches(message, KeyValue(fail_if_))) {
      return absl::InvalidArgumentError(absl::StrCat("refused ", fail_if_));
    }
    if (!drop_if_.empty() && message.header(drop_if_).has_value()) {
      return Verdict::Drop("test");
    }
    return Verdict::Keep();
  }

 private:
  std::vector<std::string>* log_;
  std::string mark_, drop_if_, fail_if_;
};

class TestFilterFactory : public FilterFactory {
 public:
  TestFilterFactory(std::string name, std::vector<std::string>* log)
      : name_(std::move(name)), log_(log) {}
  std::string_view name() const override { return name_; }
  absl::StatusOr<std::unique_ptr<Filter>> Create(
      const PluginConfig& config) const override {
    if (absl::Status s = config.CheckOnly({"mark", "drop_if", "fail_if"});
        !s.ok()) {
      return s;
    }
    return std::make_unique<TestFilter>(log_, config.GetString("mark", name_),
                                        config.GetString("drop_if", ""),
                                        config.GetString("fail_if", ""));
  }

 private:
  std::string name_;
  std::vector<std::string>* log_;
};

// Test transform. Settings:
//   mark     appended to header "trail" (and logged)
//   copies   N >= 0: emits N copies; with the setting, copy i gets header
//            "part" = i, or "<part>.i" if it had one. Default: the message
//            itself, once.
//   fail_if  "key=value": such a message is first rewritten (header
//            "mutated", payload "mutated"), then failed with "refused ..."
class TestTransform : public Transform {
 public:
  TestTransform(std::vector<std::string>* log, std::string mark, int copies,
                std::string fail_if)
      : log_(log),
        mark_(std::move(mark)),
        copies_(copies),
        fail_if_(std::move(fail_if)) {}

  absl::Status Apply(Message message, const CallContext&,
                     std::vector<Message>* out) override {
    log_->push_back(absl::StrCat(mark_, "(", H(message, "part"), ")"));
    if (!mark_.empty()) {
      std::string trail(message.header("trail").value_or(""));
      message.SetHeader("trail", trail + mark_);
    }
    if (!fail_if_.empty() && Matches(message, KeyValue(fail_if_))) {
      message.SetHeader("mutated", "1");
      message.set_payload("mutated");
      message.set_topic("mutated");
      return absl::InvalidArgumentError(absl::StrCat("refused ", fail_if_));
    }
    if (copies_ < 0) {
      out->push_back(std::move(message));
      return absl::OkStatus();
    }
    for (int i = 0; i < copies_; ++i) {
      Message copy = message;
      auto part = message.header("part");
      copy.SetHeader("part", part.has_value()
                                 ? absl::StrCat(std::string(*part), ".", i)
                                 : absl::StrCat(i));
      out->push_back(std::move(copy));
    }
    return absl::OkStatus();
  }

 private:
  std::vector<std::string>* log_;
  std::string mark_;
  int copies_;
  std::string fail_if_;
};

class TestTransformFactory : public TransformFactory {
 public:
  TestTransformFactory(std::string name, std::vector<std::string>* log)
      : name_(std::move(name)), log_(log) {}
  std::string_view name() const override { return name_; }
  absl::StatusOr<std::unique_ptr<Transform>> Create(
      const PluginConfig& config) const override {
    if (absl::Status s = config.CheckOnly({"mark", "copies", "fail_if"});
        !s.ok()) {
      return s;
    }
    absl::StatusOr<int64_t> copies = config.GetInt("copies", -1);
    if (!copies.ok()) return copies.status();
    return std::make_unique<TestTransform>(log_, config.GetString("mark", ""),
                                           static_cast<int>(*copies),
                                           config.GetString("fail_if", ""));
  }

 private:
  std::string name_;
  std::vector<std::string>* log_;
};

StageSpec Spec(std::string plugin,
               std::vector<std::pair<std::string, std::string>> kv = {}) {
  return StageSpec{std::move(plugin), PluginConfig(std::move(kv))};
}

class ChainTest : public ::testing::Test {
 protected:
  ChainTest() {
    for (const char* name : {"filter", "filter2"}) {
      EXPECT_TRUE(
          registry_.Add(std::make_unique<TestFilterFactory>(name, &log_)).ok());
    }
    for (const char* name : {"transform", "transform2"}) {
      EXPECT_TRUE(
          registry_.Add(std::make_unique<TestTransformFactory>(name, &log_))
              .ok());
    }
    context_.now = absl::FromUnixSeconds(1700000000);
  }

  // Builds `specs`, keeping each stage's counters in counters_ and the
  // (plugin, position) it was asked for in counters_asked_.
  std::unique_ptr<Chain> Build(const std::vector<StageSpec>& specs) {
    auto chain =
        Chain::Build(registry_, specs, "test",
                     [this](std::string_view plugin, size_t position) {
                       counters_asked_.push_back(
                           absl::StrCat(std::string(plugin), "@", position));
                       counters_.push_back(std::make_shared<StageCounters>());
                       return counters_.back();
                     });
    EXPECT_TRUE(chain.ok()) << chain.status();
    return chain.ok() ? *std::move(chain) : nullptr;
  }

  // Runs `chain` on a message on kTopic with `headers`.
  void Run(Chain& chain, std::vector<HeaderField> headers = {}) {
    chain.Run(Message(kTopic, "reply", std::move(headers), kPayload), context_,
              &out_, &failures_);
  }

  std::vector<std::string> Parts() const {
    std::vector<std::string> parts;
    for (const Message& m : out_) parts.push_back(H(m, "part"));
    return parts;
  }

  Registry registry_;
  std::vector<std::string> log_;
  CallContext context_;
  std::vector<std::shared_ptr<StageCounters>> counters_;
  std::vector<std::string> counters_asked_;
  std::vector<Message> out_;
  std::vector<Chain::Failure> failures_;
};

TEST_F(ChainTest, EmptyChainPassesTheMessageThrough) {
  std::unique_ptr<Chain> chain = Build({});
  ASSERT_NE(chain, nullptr);
  EXPECT_TRUE(chain->empty());
  EXPECT_EQ(chain->size(), 0u);
  Run(*chain, {{"k", "v"}});
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_TRUE(failures_.empty());
  EXPECT_EQ(out_[0].topic().data(), kTopic.data());  // still borrowed
  EXPECT_EQ(out_[0].payload().data(), kPayload.data());
  EXPECT_EQ(out_[0].reply_to(), "reply");
  EXPECT_THAT(out_[0].headers(), ElementsAre(HeaderField{"k", "v"}));
}

TEST_F(ChainTest, StagesRunInOrder) {
  std::unique_ptr<Chain> chain =
      Build({Spec("transform", {{"mark", "a"}}), Spec("filter"),
             Spec("transform2", {{"mark", "b"}}), Spec("filter2"),
             Spec("transform", {{"mark", "c"}})});
  ASSERT_NE(chain, nullptr);
  EXPECT_EQ(chain->size(), 5u);
  EXPECT_FALSE(chain->empty());
  EXPECT_THAT(counters_asked_,
              ElementsAre("transform@0", "filter@1", "transform2@2",
                          "filter2@3", "transform@4"));
  Run(*chain);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_TRUE(failures_.empty());
  EXPECT_EQ(H(out_[0], "trail"), "abc");
  EXPECT_THAT(log_,
              ElementsAre("a(-)", "filter(-)", "b(-)", "filter2(-)", "c(-)"));
}

TEST_F(ChainTest, RunClearsOutAndFailuresFirst) {
  std::unique_ptr<Chain> chain = Build({Spec("filter", {{"drop_if", "x"}})});
  ASSERT_NE(chain, nullptr);
  out_.push_back(Message("stale", "", {}, ""));
  failures_.push_back({Message("stale", "", {}, ""), "p", "r"});
  Run(*chain, {{"x", "1"}});
  EXPECT_TRUE(out_.empty());
  EXPECT_TRUE(failures_.empty());
}

TEST_F(ChainTest, FilterDropStopsTheMessage) {
  std::unique_ptr<Chain> chain = Build(
      {Spec("filter", {{"drop_if", "x"}}), Spec("transform", {{"mark", "a"}})});
  ASSERT_NE(chain, nullptr);
  Run(*chain, {{"x", "1"}});
  EXPECT_TRUE(out_.empty());
  EXPECT_TRUE(failures_.empty());
  EXPECT_THAT(log_, ElementsAre("filter(-)"));  // the transform never ran
  EXPECT_EQ(counters_[0]->drops, 1u);
  EXPECT_EQ(counters_[1]->calls, 0u);

  Run(*chain, {{"y", "1"}});  // kept
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(H(out_[0], "trail"), "a");
  EXPECT_EQ(counters_[0]->passes, 1u);
  EXPECT_EQ(counters_[1]->calls, 1u);
}

TEST_F(ChainTest, TransformEmittingNothingDropsTheMessage) {
  std::unique_ptr<Chain> chain =
      Build({Spec("transform", {{"copies", "0"}}), Spec("filter")});
  ASSERT_NE(chain, nullptr);
  Run(*chain);
  EXPECT_TRUE(out_.empty());
  EXPECT_TRUE(failures_.empty());
  EXPECT_EQ(counters_[0]->calls, 1u);
  EXPECT_EQ(counters_[0]->drops, 1u);
  EXPECT_EQ(counters_[0]->passes, 0u);
  EXPECT_EQ(counters_[1]->calls, 0u);
}

TEST_F(ChainTest, TransformEmittingOneRewritesTheMessage) {
  std::unique_ptr<Chain> chain = Build({Spec("transform", {{"copies", "1"}})});
  ASSERT_NE(chain, nullptr);
  Run(*chain);
  EXPECT_THAT(Parts(), ElementsAre("0"));
  EXPECT_EQ(counters_[0]->passes, 1u);
}

TEST_F(ChainTest, FanOutGoesThroughEveryLaterStageInOrder) {
  std::unique_ptr<Chain> chain = Build({Spec("transform", {{"copies", "3"}}),
                                        Spec("transform2", {{"copies", "2"}}),
                                        Spec("transform", {{"mark", "z"}})});
  ASSERT_NE(chain, nullptr);
  Run(*chain);
  EXPECT_THAT(Parts(), ElementsAre("0.0", "0.1", "1.0", "1.1", "2.0", "2.1"));
  EXPECT_TRUE(failures_.empty());
  for (const Message& m : out_) EXPECT_EQ(H(m, "trail"), "z");
  EXPECT_EQ(counters_[0]->calls, 1u);
  EXPECT_EQ(counters_[1]->calls, 3u);
  EXPECT_EQ(counters_[2]->calls, 6u);
  EXPECT_EQ(counters_[2]->passes, 6u);
}

TEST_F(ChainTest, FanOutThenFilterKeepsSome) {
  std::unique_ptr<Chain> chain = Build({Spec("transform", {{"copies", "3"}}),
                                        Spec("filter", {{"drop_if", "drop"}}),
                                        Spec("transform2", {{"mark", "m"}})});
  ASSERT_NE(chain, nullptr);
  // No copy has "drop": all three pass.
  Run(*chain);
  EXPECT_THAT(Parts(), ElementsAre("0", "1", "2"));
  // Every copy has "drop".
  Run(*chain, {{"drop", "1"}});
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(counters_[1]->drops, 3u);
  EXPECT_EQ(counters_[2]->calls, 3u);
}

TEST_F(ChainTest, FailingFilterFailsOnlyThatMessage) {
  std::unique_ptr<Chain> chain =
      Build({Spec("transform", {{"copies", "3"}, {"mark", "a"}}),
             Spec("filter2", {{"fail_if", "part=1"}}),
             Spec("transform", {{"mark", "b"}})});
  ASSERT_NE(chain, nullptr);
  Run(*chain, {{"k", "v"}});
  EXPECT_THAT(Parts(), ElementsAre("0", "2"));
  for (const Message& m : out_) EXPECT_EQ(H(m, "trail"), "ab");
  ASSERT_EQ(failures_.size(), 1u);
  const Chain::Failure& f = failures_[0];
  EXPECT_EQ(f.plugin, "filter2");
  EXPECT_EQ(f.reason, "refused part=1");
  // The message as it entered the filter.
  EXPECT_EQ(f.message.topic(), kTopic);
  EXPECT_EQ(f.message.payload(), kPayload);
  EXPECT_EQ(f.message.reply_to(), "reply");
  EXPECT_THAT(f.message.headers(),
              ElementsAre(HeaderField{"k", "v"}, HeaderField{"trail", "a"},
                          HeaderField{"part", "1"}));
  EXPECT_EQ(counters_[1]->calls, 3u);
  EXPECT_EQ(counters_[1]->passes, 2u);
  EXPECT_EQ(counters_[1]->errors, 1u);
  EXPECT_EQ(counters_[1]->drops, 0u);
  EXPECT_EQ(counters_[2]->calls, 2u);
}

TEST_F(ChainTest, FailingTransformFailsTheMessageAsItEnteredTheStage) {
  std::unique_ptr<Chain> chain =
      Build({Spec("transform", {{"copies", "3"}}),
             Spec("transform2", {{"mark", "x"}, {"fail_if", "part=0"}}),
             Spec("filter")});
  ASSERT_NE(chain, nullptr);
  Run(*chain, {{"k", "v"}});
  EXPECT_THAT(Parts(), ElementsAre("1", "2"));
  ASSERT_EQ(failures_.size(), 1u);
  const Chain::Failure& f = failures_[0];
  EXPECT_EQ(f.plugin, "transform2");
  EXPECT_EQ(f.reason, "refused part=0");
  // Not the rewrites the transform made before failing.
  EXPECT_EQ(f.message.topic(), kTopic);
  EXPECT_EQ(f.message.payload(), kPayload);
  EXPECT_FALSE(f.message.payload_changed());
  EXPECT_THAT(f.message.headers(),
              ElementsAre(HeaderField{"k", "v"}, HeaderField{"part", "0"}));
  EXPECT_EQ(counters_[1]->errors, 1u);
  EXPECT_EQ(counters_[1]->passes, 2u);
  EXPECT_EQ(counters_[2]->calls, 2u);
  EXPECT_THAT(log_, ElementsAre("(-)", "x(0)", "x(1)", "x(2)", "filter(1)",
                                "filter(2)"));
}

TEST_F(ChainTest, EveryMessageCanFail) {
  std::unique_ptr<Chain> chain =
      Build({Spec("transform", {{"copies", "2"}}),
             Spec("filter", {{"fail_if", "k=v"}}), Spec("transform")});
  ASSERT_NE(chain, nullptr);
  Run(*chain, {{"k", "v"}});
  EXPECT_TRUE(out_.empty());
  ASSERT_EQ(failures_.size(), 2u);
  EXPECT_EQ(H(failures_[0].message, "part"), "0");
  EXPECT_EQ(H(failures_[1].message, "part"), "1");
  EXPECT_EQ(counters_[2]->calls, 0u);
}

TEST_F(ChainTest, OutputsAreBoundedPerInput) {
  const std::string max = absl::StrCat(kMaxChainOutputs);
  const std::string over = absl::StrCat(kMaxChainOutputs + 1);

  std::unique_ptr<Chain> at_max = Build({Spec("transform", {{"copies", max}})});
  ASSERT_NE(at_max, nullptr);
  Run(*at_max);
  EXPECT_EQ(out_.size(), kMaxChainOutputs);
  EXPECT_TRUE(failures_.empty());

  std::unique_ptr<Chain> beyond =
      Build({Spec("transform", {{"mark", "a"}}),
             Spec("transform2", {{"copies", over}})});
  ASSERT_NE(beyond, nullptr);
  Run(*beyond, {{"k", "v"}});
  EXPECT_TRUE(out_.empty());
  ASSERT_EQ(failures_.size(), 1u);
  EXPECT_EQ(failures_[0].plugin, "transform2");
  EXPECT_EQ(failures_[0].reason,
            absl::StrCat("emitted more than ", kMaxChainOutputs,
                         " messages for one input"));
  EXPECT_THAT(failures_[0].message.headers(),
              ElementsAre(HeaderField{"k", "v"}, HeaderField{"trail", "a"}));
  EXPECT_EQ(counters_.back()->errors, 1u);
}

// The bound counts everything a stage has emitted for the input so far:
// 2 x 600 > 1024, so the second copy fails and the first's 600 go on.
TEST_F(ChainTest, OutputBoundCountsTheWholeStage) {
  std::unique_ptr<Chain> chain =
      Build({Spec("transform", {{"copies", "2"}}),
             Spec("transform2", {{"copies", "600"}}), Spec("filter")});
  ASSERT_NE(chain, nullptr);
  Run(*chain);
  EXPECT_EQ(out_.size(), 600u);
  ASSERT_EQ(failures_.size(), 1u);
  EXPECT_EQ(failures_[0].plugin, "transform2");
  EXPECT_EQ(H(failures_[0].message, "part"), "1");
  EXPECT_EQ(counters_[1]->passes, 1u);
  EXPECT_EQ(counters_[1]->errors, 1u);
  EXPECT_EQ(counters_[2]->calls, 600u);
}

TEST_F(ChainTest, CountersPerStage) {
  std::unique_ptr<Chain> chain =
      Build({Spec("filter", {{"drop_if", "drop"}}),
             Spec("transform", {{"fail_if", "fail=1"}}),
             Spec("filter2", {{"fail_if", "fail=2"}}),
             Spec("transform2", {{"copies", "0"}})});
  ASSERT_NE(chain, nullptr);
  const std::vector<std::vector<HeaderField>> inputs = {
      {{"drop", "1"}}, {{"fail", "1"}}, {{"fail", "2"}}, {}, {}};
  for (int round = 0; round < 10; ++round) {
    for (const auto& headers : inputs) Run(*chain, headers);
  }
  ASSERT_EQ(counters_.size(), 4u);
  const StageCounters& f1 = *counters_[0];
  EXPECT_EQ(f1.calls, 50u);
  EXPECT_EQ(f1.passes, 40u);
  EXPECT_EQ(f1.drops, 10u);
  EXPECT_EQ(f1.errors, 0u);
  const StageCounters& t1 = *counters_[1];
  EXPECT_EQ(t1.calls, 40u);
  EXPECT_EQ(t1.passes, 30u);
  EXPECT_EQ(t1.drops, 0u);
  EXPECT_EQ(t1.errors, 10u);
  const StageCounters& f2 = *counters_[2];
  EXPECT_EQ(f2.calls, 30u);
  EXPECT_EQ(f2.passes, 20u);
  EXPECT_EQ(f2.drops, 0u);
  EXPECT_EQ(f2.errors, 10u);
  const StageCounters& t2 = *counters_[3];
  EXPECT_EQ(t2.calls, 20u);
  EXPECT_EQ(t2.passes, 0u);
  EXPECT_EQ(t2.drops, 20u);
  EXPECT_EQ(t2.errors, 0u);
  for (const auto& c : counters_) EXPECT_GT(c->nanos, 0u);
}

// Counters are shared: two chains given the same counters add up.
TEST_F(ChainTest, CountersCanBeSharedAndDefaultToPrivate) {
  auto shared = std::make_shared<StageCounters>();
  auto counters_for = [&](std::string_view, size_t) { return shared; };
  auto a = Chain::Build(registry_, {Spec("filter")}, "a", counters_for);
  auto b = Chain::Build(registry_, {Spec("filter")}, "b", counters_for);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  Run(**a);
  Run(**b);
  Run(**b);
  EXPECT_EQ(shared->calls, 3u);
  EXPECT_EQ(shared->passes, 3u);

  // Null counters: the chain keeps its own and still runs.
  auto c = Chain::Build(registry_, {Spec("filter")}, "c",
                        [](std::string_view, size_t) {
                          return std::shared_ptr<StageCounters>();
                        });
  ASSERT_TRUE(c.ok());
  Run(**c);
  EXPECT_EQ(out_.size(), 1u);
}

TEST_F(ChainTest, BuildNamesTheStageOfAnUnknownPlugin) {
  auto chain = Chain::Build(registry_, {Spec("filter"), Spec("nope")},
                            "route 1 (orders.>)",
                            [](std::string_view, size_t) { return nullptr; });
  ASSERT_FALSE(chain.ok());
  EXPECT_EQ(chain.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(chain.status().message(),
            "route 1 (orders.>) plugin 2 (nope): no plugin named \"nope\" "
            "(known: filter, filter2, transform, transform2)");
}

TEST_F(ChainTest, BuildNamesTheStageOfBadSettings) {
  auto no_counters = [](std::string_view, size_t) {
    return std::shared_ptr<StageCounters>();
  };
  auto chain =
      Chain::Build(registry_, {Spec("transform", {{"copies", "many"}})},
                   "subscription", no_counters);
  ASSERT_FALSE(chain.ok());
  EXPECT_EQ(chain.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(chain.status().message(),
            "subscription plugin 1 (transform): setting \"copies\": \"many\" "
            "is not an integer");

  chain = Chain::Build(
      registry_,
      {Spec("transform"), Spec("transform2"), Spec("filter2", {{"typo", "1"}})},
      "where", no_counters);
  ASSERT_FALSE(chain.ok());
  EXPECT_EQ(chain.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(chain.status().message()),
              StartsWith("where plugin 3 (filter2): unknown setting \"typo\""));
  EXPECT_THAT(std::string(chain.status().message()),
              HasSubstr("known: mark, drop_if"));
}

}  // namespace
}  // namespace sift::plugin
