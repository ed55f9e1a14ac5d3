#include "broker/base/quoted_text.h"

#include <string>

#include "gtest/gtest.h"

namespace sift {
namespace {

TEST(QuotedTextTest, ShortNamesAreShownWhole) {
  EXPECT_EQ(Quoted("orders"), "\"orders\"");
  EXPECT_EQ(Bounded("orders"), "orders");
  EXPECT_EQ(Quoted(std::string(80, 'a')), "\"" + std::string(80, 'a') + "\"");
}

TEST(QuotedTextTest, LongNamesAreCutWithTheirSize) {
  EXPECT_EQ(Bounded(std::string(3000, 'a')),
            std::string(80, 'a') + "... (3000 bytes)");
  EXPECT_EQ(Quoted(std::string(3000, 'a')),
            "\"" + std::string(80, 'a') + "\"... (3000 bytes)");
  // Not inside a UTF-8 character.
  EXPECT_EQ(Bounded(std::string(79, 'a') + "\xc3\xa9zz"),
            std::string(79, 'a') + "... (83 bytes)");
}

}  // namespace
}  // namespace sift
