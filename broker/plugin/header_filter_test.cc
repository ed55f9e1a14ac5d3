#include "broker/plugin/header_filter.h"

#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

// Counts allocations, to check the per-message path. gcc takes the malloc/free
// pair below for a mismatch with the built-in operator new; it is not one.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {
int g_allocations = 0;
}  // namespace

void* operator new(std::size_t size) {
  ++g_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace sift::plugin {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

Message WithHeaders(std::vector<HeaderField> headers) {
  return Message("orders.eu", "", std::move(headers), "payload");
}

std::unique_ptr<Filter> MustMake(std::string_view expr) {
  absl::StatusOr<std::unique_ptr<Filter>> f = MakeHeaderFilter(expr);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *std::move(f) : nullptr;
}

PluginConfig Config(std::vector<std::pair<std::string, std::string>> kv) {
  return PluginConfig(std::move(kv));
}

bool Keeps(Filter& filter, const Message& message) {
  absl::StatusOr<Verdict> v = filter.Apply(message, CallContext{});
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() && v->keep;
}

TEST(HeaderFieldSourceTest, FirstHeaderWithTheKeyAsText) {
  const Message m = WithHeaders({{"a", "1"}, {"b", "x"}, {"a", "2"}});
  const HeaderFieldSource source(m);
  std::optional<FieldValue> a = source.Get("a");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->kind, FieldValue::Kind::kText);
  EXPECT_EQ(a->text, "1");
  EXPECT_FALSE(source.Get("A").has_value());  // keys compare byte for byte
  EXPECT_FALSE(source.Get("c").has_value());
}

TEST(HeaderFilterTest, KeepsMatchingAndDropsTheRest) {
  std::unique_ptr<Filter> f = MustMake("region == 'eu' && priority >= 5");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(Keeps(*f, WithHeaders({{"region", "eu"}, {"priority", "7"}})));
  EXPECT_TRUE(Keeps(*f, WithHeaders({{"priority", "5.0"}, {"region", "eu"}})));
  EXPECT_FALSE(Keeps(*f, WithHeaders({{"region", "us"}, {"priority", "7"}})));
  EXPECT_FALSE(Keeps(*f, WithHeaders({{"region", "eu"}, {"priority", "4"}})));
  EXPECT_FALSE(Keeps(*f, WithHeaders({{"region", "eu"}, {"priority", "hi"}})));
  EXPECT_FALSE(Keeps(*f, WithHeaders({{"region", "eu"}})));
  EXPECT_FALSE(Keeps(*f, WithHeaders({})));

  absl::StatusOr<Verdict> v =
      f->Apply(WithHeaders({{"region", "us"}}), CallContext{});
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->keep);
  EXPECT_EQ(v->reason, "header_filter");
  v = f->Apply(WithHeaders({{"region", "eu"}, {"priority", "9"}}),
               CallContext{});
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->keep);
  EXPECT_TRUE(v->reason.empty());
}

TEST(HeaderFilterTest, UsesTheFirstOfRepeatedHeaders) {
  std::unique_ptr<Filter> f = MustMake("tier == 'gold'");
  EXPECT_TRUE(Keeps(*f, WithHeaders({{"tier", "gold"}, {"tier", "basic"}})));
  EXPECT_FALSE(Keeps(*f, WithHeaders({{"tier", "basic"}, {"tier", "gold"}})));
}

TEST(HeaderFilterTest, HeaderKeysWithDashesAndOddBytes) {
  std::unique_ptr<Filter> f =
      MustMake("x-region ^= 'eu-' && !exists(`x debug!`)");
  EXPECT_TRUE(Keeps(*f, WithHeaders({{"x-region", "eu-west-1"}})));
  EXPECT_FALSE(
      Keeps(*f, WithHeaders({{"x-region", "eu-west-1"}, {"x debug!", ""}})));
}

TEST(HeaderFilterTest, MakeHeaderFilterReportsTheParseError) {
  absl::StatusOr<std::unique_ptr<Filter>> f =
      MakeHeaderFilter("region == 'eu' && (priority > 5");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.status().message(),
            "filter: at position 32: expected '&&', '||' or ')' to close '(' "
            "at position 19, found end of filter");
}

TEST(HeaderFilterFactoryTest, Name) {
  EXPECT_EQ(MakeHeaderFilterFactory()->name(), "header_filter");
}

TEST(HeaderFilterFactoryTest, Creates) {
  std::unique_ptr<FilterFactory> factory = MakeHeaderFilterFactory();
  absl::StatusOr<std::unique_ptr<Filter>> f =
      factory->Create(Config({{"expr", "region in ('eu', 'uk')"}}));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(Keeps(**f, WithHeaders({{"region", "uk"}})));
  EXPECT_FALSE(Keeps(**f, WithHeaders({{"region", "us"}})));
}

TEST(HeaderFilterFactoryTest, RefusesMissingExpr) {
  absl::StatusOr<std::unique_ptr<Filter>> f =
      MakeHeaderFilterFactory()->Create(PluginConfig());
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(f.status().message()),
              StartsWith("header_filter: missing setting \"expr\""));
}

TEST(HeaderFilterFactoryTest, RefusesUnknownKeys) {
  absl::StatusOr<std::unique_ptr<Filter>> f = MakeHeaderFilterFactory()->Create(
      Config({{"expr", "a == 1"}, {"exp", "b == 2"}}));
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(f.status().message()),
              HasSubstr("unknown setting \"exp\""));
  EXPECT_THAT(std::string(f.status().message()), StartsWith("header_filter: "));
}

TEST(HeaderFilterFactoryTest, RefusesABadExpression) {
  absl::StatusOr<std::unique_ptr<Filter>> f =
      MakeHeaderFilterFactory()->Create(Config({{"expr", "a = 1"}}));
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.status().message(),
            "header_filter: setting \"expr\": filter: at position 3: expected "
            "an operator (==, !=, <, <=, >, >=, ^=, in, not in) after field "
            "'a', found '='; use '==' to compare");
}

TEST(HeaderFilterTest, ApplyAllocatesNothingForShortHeaderValues) {
  std::unique_ptr<Filter> f =
      MustMake("region == 'eu' && priority >= 5 || tier in ('gold', 'x')");
  const Message keep =
      WithHeaders({{"region", "eu"}, {"priority", "7"}, {"tier", "basic"}});
  const Message drop =
      WithHeaders({{"region", "us"}, {"priority", "7"}, {"tier", "basic"}});
  const CallContext context;
  const int before = g_allocations;
  bool kept = false, dropped = false;
  for (int i = 0; i < 100; ++i) {
    kept = f->Apply(keep, context)->keep;
    dropped = !f->Apply(drop, context)->keep;
  }
  EXPECT_EQ(g_allocations - before, 0);
  EXPECT_TRUE(kept);
  EXPECT_TRUE(dropped);
}

}  // namespace
}  // namespace sift::plugin
