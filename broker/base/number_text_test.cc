#include "broker/base/number_text.h"

#include <cstdint>
#include <utility>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace sift {
namespace {

TEST(NumberTextTest, IntegersWithoutPaddingOrPlus) {
  int64_t n = 0;
  EXPECT_TRUE(ParseInteger("300", &n));
  EXPECT_EQ(n, 300);
  EXPECT_TRUE(ParseInteger("-7", &n));
  EXPECT_EQ(n, -7);
  for (const char* bad : {" 300", "300 ", "\t3", "+5", "", "3x", "0x10"}) {
    EXPECT_FALSE(ParseInteger(bad, &n)) << "'" << bad << "'";
  }
  uint32_t u = 0;
  EXPECT_FALSE(ParseInteger("-1", &u));
  EXPECT_FALSE(ParseInteger("4294967296", &u));
}

TEST(NumberTextTest, DoublesWithoutPaddingOrPlus) {
  double x = 0;
  EXPECT_TRUE(ParseDouble("0.5", &x));
  EXPECT_EQ(x, 0.5);
  for (const char* bad : {" 0.5", "0.5 ", "+0.5", "", "1s"}) {
    EXPECT_FALSE(ParseDouble(bad, &x)) << "'" << bad << "'";
  }
}

// Plain decimal only: no hex (SimpleAtod read "0x0.1p0" as 0.0625), no
// "inf" or "nan", no out-of-range value that becomes infinite.
TEST(NumberTextTest, DoublesArePlainDecimal) {
  double x = 0;
  for (const auto& [text, value] :
       {std::pair<const char*, double>{"2", 2}, {"1.5", 1.5}, {".5", 0.5},
        {"5.", 5}, {"0", 0}, {"0.0", 0}, {"1e3", 1000}, {"1E3", 1000},
        {"2.5e-1", 0.25}, {"1e+3", 1000}, {"-0.5", -0.5}, {"007", 7}}) {
    EXPECT_TRUE(ParseDouble(text, &x)) << "'" << text << "'";
    EXPECT_EQ(x, value) << "'" << text << "'";
  }
  for (const char* bad :
       {"0x0.1p0", "0x10", "0X1P3", "0x1p-2", "inf", "-inf", "infinity",
        "INF", "nan", "NaN", "nan(1)", "1e400", "-1e400", ".", "-", "-.",
        "e3", "1e", "1e+", "1.2.3", "1,5", "1_000", "1e3.5", "--1", "5f"}) {
    EXPECT_FALSE(ParseDouble(bad, &x)) << "'" << bad << "'";
  }
  EXPECT_FALSE(ParseDouble(absl::string_view("1\0", 2), &x));  // a NUL
}

// A '-' sign before a zero is refused: callers that refuse negatives do so
// by value (n < 0, x >= 0), which -0 passes.
TEST(NumberTextTest, NegativeZeroIsRefused) {
  int64_t n = 5;
  for (const char* bad : {"-0", "-00"}) {
    EXPECT_FALSE(ParseInteger(bad, &n)) << "'" << bad << "'";
  }
  EXPECT_TRUE(ParseInteger("0", &n));
  EXPECT_EQ(n, 0);
  uint64_t u = 5;
  EXPECT_FALSE(ParseInteger("-0", &u));
  double x = 5;
  // -1e-400 is negative, too small for a double: it would be -0.0.
  for (const char* bad : {"-0", "-0.0", "-.0", "-0e5", "-0.000", "-1e-400"}) {
    EXPECT_FALSE(ParseDouble(bad, &x)) << "'" << bad << "'";
  }
}

}  // namespace
}  // namespace sift

namespace sift {
namespace {

TEST(IsDigitsTest, OnlyAsciiDigitsAndAtLeastOne) {
  EXPECT_TRUE(IsDigits("0"));
  EXPECT_TRUE(IsDigits("99999999999999999999"));
  EXPECT_FALSE(IsDigits(""));
  EXPECT_FALSE(IsDigits("-1"));
  EXPECT_FALSE(IsDigits("1s"));
  EXPECT_FALSE(IsDigits(" 1"));
  EXPECT_FALSE(IsDigits("1.5"));
}

}  // namespace
}  // namespace sift
