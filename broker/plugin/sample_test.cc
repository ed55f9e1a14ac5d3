#include "broker/plugin/sample.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "broker/plugin/builtin_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sift::plugin {
namespace {

using ::sift::plugin::testing::AtMs;
using ::sift::plugin::testing::ErrorOf;
using ::sift::plugin::testing::Msg;
using ::testing::AllOf;
using ::testing::Ge;
using ::testing::HasSubstr;
using ::testing::Le;

using Config = std::vector<std::pair<std::string, std::string>>;

std::unique_ptr<Filter> Make(Config kv) {
  auto f = SampleFactory().Create(PluginConfig(std::move(kv)));
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *std::move(f) : nullptr;
}

std::string CreateError(Config kv) {
  absl::Status s = SampleFactory().Create(PluginConfig(std::move(kv))).status();
  if (!s.ok()) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  }
  return ErrorOf(s);
}

// The filter's choices for `n` messages: 'K' kept, 'D' dropped as
// "sampled_out", '?' otherwise.
std::string Choices(Filter& f, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<Verdict> v = f.Apply(Msg("a"), AtMs(i));
    if (!v.ok()) {
      out += '?';
    } else if (v->keep) {
      out += 'K';
    } else {
      out += v->reason == "sampled_out" ? 'D' : '?';
    }
  }
  return out;
}

TEST(SampleTest, EveryNKeepsTheFirstOfEachN) {
  auto f = Make({{"every", "3"}});
  EXPECT_EQ(Choices(*f, 10), "KDDKDDKDDK");
  EXPECT_EQ(Choices(*f, 3), "DDK");  // the count goes on across calls
}

TEST(SampleTest, EveryOneKeepsAll) {
  auto f = Make({{"every", "1"}});
  EXPECT_EQ(Choices(*f, 5), "KKKKK");
}

TEST(SampleTest, ProbabilityZeroAndOne) {
  EXPECT_EQ(Choices(*Make({{"probability", "0"}}), 100), std::string(100, 'D'));
  EXPECT_EQ(Choices(*Make({{"probability", "1"}}), 100), std::string(100, 'K'));
}

TEST(SampleTest, ProbabilityKeepsAboutThatShare) {
  auto f = Make({{"probability", "0.25"}, {"seed", "42"}});
  const std::string c = Choices(*f, 10000);
  const auto kept = std::count(c.begin(), c.end(), 'K');
  EXPECT_EQ(std::count(c.begin(), c.end(), '?'), 0);
  // Binomial(10000, 0.25): sd 43; 2300..2700 is over 4.5 sd either side.
  EXPECT_THAT(kept, AllOf(Ge(2300), Le(2700)));
}

TEST(SampleTest, SameSeedSameChoices) {
  auto a = Make({{"probability", "0.5"}, {"seed", "7"}});
  auto b = Make({{"probability", "0.5"}, {"seed", "7"}});
  auto c = Make({{"probability", "0.5"}, {"seed", "18446744073709551615"}});
  const std::string ca = Choices(*a, 200);
  EXPECT_EQ(ca, Choices(*b, 200));
  EXPECT_NE(ca, Choices(*c, 200));  // 2^-200 chance of a false failure
}

TEST(SampleTest, UnseededInstancesDiffer) {
  auto a = Make({{"probability", "0.5"}});
  auto b = Make({{"probability", "0.5"}});
  EXPECT_NE(Choices(*a, 200), Choices(*b, 200));
}

TEST(SampleTest, ConfigErrors) {
  const std::string exactly_one =
      "sample takes exactly one of the settings \"every\" and \"probability\"";
  EXPECT_EQ(CreateError({}), exactly_one);
  EXPECT_EQ(CreateError({{"every", "2"}, {"probability", "0.5"}}), exactly_one);
  EXPECT_EQ(CreateError({{"seed", "1"}}), exactly_one);
  EXPECT_THAT(CreateError({{"every", "2"}, {"n", "1"}}),
              HasSubstr("unknown setting \"n\" (known: every, probability, "
                        "seed)"));
  EXPECT_EQ(CreateError({{"every", "0"}}),
            "setting \"every\": 0 is out of range (at least 1)");
  EXPECT_EQ(CreateError({{"every", "-3"}}),
            "setting \"every\": -3 is out of range (at least 1)");
  EXPECT_EQ(CreateError({{"every", "2.5"}}),
            "setting \"every\": \"2.5\" is not an integer");
  EXPECT_EQ(CreateError({{"every", "2"}, {"seed", "1"}}),
            "setting \"seed\": only applies with \"probability\"");
  EXPECT_EQ(CreateError({{"probability", "1.5"}}),
            "setting \"probability\": 1.5 is out of range (0 to 1)");
  EXPECT_EQ(CreateError({{"probability", "-0.1"}}),
            "setting \"probability\": -0.1 is out of range (0 to 1)");
  EXPECT_EQ(CreateError({{"probability", "nan"}}),
            "setting \"probability\": nan is out of range (0 to 1)");
  EXPECT_EQ(CreateError({{"probability", "half"}}),
            "setting \"probability\": \"half\" is not a number");
  EXPECT_EQ(CreateError({{"probability", "0.5"}, {"seed", "-1"}}),
            "setting \"seed\": \"-1\" is not an unsigned 64-bit integer");
}

}  // namespace
}  // namespace sift::plugin
