#include "broker/base/utf8_text.h"

#include <string>

#include "gtest/gtest.h"

namespace sift {
namespace {

TEST(Utf8TextTest, OneLineEscapesControlCharactersToo) {
  EXPECT_EQ(ToOneLineUtf8("a\nb\r\tc\x1B[31m\x7F caf\xC3\xA9 \xE9"),
            "a\\nb\\r\\tc\\x1B[31m\\x7F caf\xC3\xA9 \\xE9");
  EXPECT_EQ(ToValidUtf8("a\nb\x1B"), "a\nb\x1B");  // kept by ToValidUtf8
  EXPECT_EQ(ToOneLineUtf8("plain \\ text"), "plain \\ text");
}

TEST(Utf8TextTest, KeepsValidUtf8AndEscapesTheRest) {
  EXPECT_EQ(ToValidUtf8("orders"), "orders");
  EXPECT_EQ(ToValidUtf8("a\xC3\xB1o \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "a\xC3\xB1o \xE2\x82\xAC \xF0\x9F\x98\x80");  // ñ, €, an emoji
  EXPECT_EQ(ToValidUtf8("caf\xE9"), "caf\\xE9");           // Latin-1 é
  EXPECT_EQ(ToValidUtf8("\xFF"), "\\xFF");
  EXPECT_EQ(ToValidUtf8("\xC0\xAF"), "\\xC0\\xAF");        // overlong '/'
  EXPECT_EQ(ToValidUtf8("\xED\xA0\x80"), "\\xED\\xA0\\x80");  // a surrogate
  EXPECT_EQ(ToValidUtf8("\xE2\x82"), "\\xE2\\x82");        // cut short
  EXPECT_EQ(ToValidUtf8(std::string("a\0b", 3)), std::string("a\0b", 3));
}

}  // namespace
}  // namespace sift
