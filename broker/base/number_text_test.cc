#include "broker/base/number_text.h"

#include <cstdint>

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

}  // namespace
}  // namespace sift
