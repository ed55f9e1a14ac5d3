#include "broker/plugin/registry.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "broker/plugin/builtins.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sift::plugin {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class FakeFilterFactory : public FilterFactory {
 public:
  explicit FakeFilterFactory(std::string name) : name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  absl::StatusOr<std::unique_ptr<Filter>> Create(
      const PluginConfig& config) const override {
    return absl::UnimplementedError("fake");
  }

 private:
  std::string name_;
};

class FakeTransformFactory : public TransformFactory {
 public:
  explicit FakeTransformFactory(std::string name) : name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  absl::StatusOr<std::unique_ptr<Transform>> Create(
      const PluginConfig& config) const override {
    return absl::UnimplementedError("fake");
  }

 private:
  std::string name_;
};

TEST(RegistryTest, FindsWhatWasAdded) {
  Registry r;
  auto filter = std::make_unique<FakeFilterFactory>("f");
  auto transform = std::make_unique<FakeTransformFactory>("t");
  const FilterFactory* f = filter.get();
  const TransformFactory* t = transform.get();
  ASSERT_TRUE(r.Add(std::move(filter)).ok());
  ASSERT_TRUE(r.Add(std::move(transform)).ok());
  EXPECT_EQ(r.size(), 2u);

  absl::StatusOr<Registry::Entry> e = r.Find("f");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->filter, f);
  EXPECT_EQ(e->transform, nullptr);
  e = r.Find("t");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->filter, nullptr);
  EXPECT_EQ(e->transform, t);

  absl::StatusOr<const FilterFactory*> ff = r.FindFilter("f");
  ASSERT_TRUE(ff.ok());
  EXPECT_EQ(*ff, f);
  absl::StatusOr<const TransformFactory*> tf = r.FindTransform("t");
  ASSERT_TRUE(tf.ok());
  EXPECT_EQ(*tf, t);
}

TEST(RegistryTest, DuplicateNamesAreRefusedAcrossKinds) {
  Registry r;
  ASSERT_TRUE(r.Add(std::make_unique<FakeFilterFactory>("x")).ok());
  absl::Status s = r.Add(std::make_unique<FakeFilterFactory>("x"));
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(s.message(), "a filter named \"x\" is already registered");
  s = r.Add(std::make_unique<FakeTransformFactory>("x"));
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  // The first stays.
  absl::StatusOr<Registry::Entry> e = r.Find("x");
  ASSERT_TRUE(e.ok());
  EXPECT_NE(e->filter, nullptr);
  EXPECT_EQ(e->transform, nullptr);
  EXPECT_EQ(r.size(), 1u);
}

TEST(RegistryTest, NotFoundListsKnownNames) {
  Registry r;
  EXPECT_EQ(r.Find("x").status().message(),
            "no plugin named \"x\" (known: none)");
  ASSERT_TRUE(r.Add(std::make_unique<FakeTransformFactory>("zeta")).ok());
  ASSERT_TRUE(r.Add(std::make_unique<FakeFilterFactory>("beta")).ok());
  ASSERT_TRUE(r.Add(std::make_unique<FakeFilterFactory>("alpha")).ok());

  absl::Status s = r.Find("gamma").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(),
            "no plugin named \"gamma\" (known: alpha, beta, zeta)");

  s = r.FindFilter("zeta").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(),
            "no filter named \"zeta\": it is a transform (known filters: "
            "alpha, beta)");
  s = r.FindTransform("alpha").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(),
            "no transform named \"alpha\": it is a filter (known transforms: "
            "zeta)");
  s = r.FindTransform("nope").status();
  EXPECT_EQ(s.message(),
            "no transform named \"nope\" (known transforms: zeta)");
}

TEST(RegistryTest, NamesAreSortedByKind) {
  Registry r;
  ASSERT_TRUE(r.Add(std::make_unique<FakeFilterFactory>("b")).ok());
  ASSERT_TRUE(r.Add(std::make_unique<FakeTransformFactory>("c")).ok());
  ASSERT_TRUE(r.Add(std::make_unique<FakeFilterFactory>("a")).ok());
  EXPECT_THAT(r.FilterNames(), ElementsAre("a", "b"));
  EXPECT_THAT(r.TransformNames(), ElementsAre("c"));
}

TEST(RegistryTest, RefusesNullAndUnnamedFactories) {
  Registry r;
  EXPECT_EQ(r.Add(std::unique_ptr<FilterFactory>()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.Add(std::unique_ptr<TransformFactory>()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.Add(std::make_unique<FakeFilterFactory>("")).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.size(), 0u);
}

TEST(BuiltinsTest, RegistersEachBuiltInOnce) {
  Registry r;
  ASSERT_TRUE(AddBuiltins(&r).ok());
  EXPECT_THAT(r.FilterNames(), ElementsAre("dedup", "rate_limit", "sample"));
  EXPECT_THAT(r.TransformNames(), ElementsAre("enrich", "header_remove",
                                              "header_set", "topic_map"));
  // Registering them again collides with the first.
  EXPECT_EQ(AddBuiltins(&r).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(r.size(), 7u);
}

TEST(BuiltinsTest, OtherPluginsCanJoinAndNotTakeABuiltInName) {
  Registry r;
  ASSERT_TRUE(AddBuiltins(&r).ok());
  EXPECT_TRUE(r.Add(std::make_unique<FakeFilterFactory>("lua_filter")).ok());
  EXPECT_EQ(r.Add(std::make_unique<FakeFilterFactory>("topic_map")).code(),
            absl::StatusCode::kAlreadyExists);
}

// Every built-in refuses a setting it does not know, naming it, so a typo
// in a config is an error at load time.
TEST(BuiltinsTest, EveryBuiltInRefusesUnknownSettings) {
  Registry r;
  ASSERT_TRUE(AddBuiltins(&r).ok());
  PluginConfig config;
  config.Add("no_such_setting", "1");
  for (const std::string& name : r.FilterNames()) {
    absl::Status s = (*r.FindFilter(name))->Create(config).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(s.message(), HasSubstr("no_such_setting")) << name;
  }
  for (const std::string& name : r.TransformNames()) {
    absl::Status s = (*r.FindTransform(name))->Create(config).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(s.message(), HasSubstr("no_such_setting")) << name;
  }
}

TEST(BuiltinsTest, TopicMapUsesTheBrokersTopicLimits) {
  Registry r;
  topic::Limits limits;
  limits.max_length = 8;
  ASSERT_TRUE(AddBuiltins(&r, limits).ok());
  const TransformFactory* f = *r.FindTransform("topic_map");
  EXPECT_TRUE(f->Create(PluginConfig({{"from", "a.>"}, {"to", "b.$1"}})).ok());
  EXPECT_EQ(f->Create(PluginConfig({{"from", "a.>"}, {"to", "bbbbbbbb.$1"}}))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sift::plugin
