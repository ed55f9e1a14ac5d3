#include "broker/plugin/expression.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <random>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sift::plugin {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A FieldSource over a map; counts lookups.
class MapSource : public FieldSource {
 public:
  MapSource() = default;
  MapSource(std::initializer_list<std::pair<const std::string, FieldValue>> v)
      : values_(v) {}

  void Set(const std::string& path, FieldValue value) {
    values_[path] = std::move(value);
  }
  std::optional<FieldValue> Get(std::string_view path) const override {
    ++gets_;
    auto it = values_.find(std::string(path));
    if (it == values_.end()) return std::nullopt;
    return it->second;
  }
  int gets() const { return gets_; }

 private:
  std::map<std::string, FieldValue> values_;
  mutable int gets_ = 0;
};

FieldValue T(std::string_view s) { return FieldValue::Text(s); }
FieldValue S(std::string_view s) { return FieldValue::String(s); }
FieldValue N(double d) { return FieldValue::Number(d); }
FieldValue B(bool b) { return FieldValue::Bool(b); }

// Parses `text` (which must parse) and evaluates it over `source`.
bool Eval(std::string_view text, const FieldSource& source) {
  absl::StatusOr<Expression> e = Expression::Parse(text);
  EXPECT_TRUE(e.ok()) << text << ": " << e.status();
  if (!e.ok()) return false;
  return e->Evaluate(source);
}

// The error for `text` (which must not parse).
Expression::ParseError ErrorOf(std::string_view text) {
  Expression::ParseError error;
  absl::StatusOr<Expression> e = Expression::Parse(text, &error);
  EXPECT_FALSE(e.ok()) << text << " parsed as " << e->ToString();
  if (!e.ok()) {
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
    if (error.position > 0) {
      EXPECT_EQ(std::string(e.status().message()),
                "filter: at position " + std::to_string(error.position) + ": " +
                    error.message);
    }
  }
  return error;
}

std::string Canonical(std::string_view text) {
  absl::StatusOr<Expression> e = Expression::Parse(text);
  EXPECT_TRUE(e.ok()) << text << ": " << e.status();
  return e.ok() ? e->ToString() : "";
}

// --- Comparisons ----------------------------------------------------------

TEST(ExpressionTest, TextAgainstStrings) {
  MapSource src{{"region", T("eu")}};
  EXPECT_TRUE(Eval("region == 'eu'", src));
  EXPECT_FALSE(Eval("region == 'us'", src));
  EXPECT_TRUE(Eval("region != 'us'", src));
  EXPECT_FALSE(Eval("region != 'eu'", src));
  EXPECT_TRUE(Eval("region < 'f'", src));
  EXPECT_TRUE(Eval("region < 'eua'", src));  // a prefix orders first
  EXPECT_FALSE(Eval("region < 'eu'", src));
  EXPECT_TRUE(Eval("region <= 'eu'", src));
  EXPECT_TRUE(Eval("region > 'e'", src));
  EXPECT_FALSE(Eval("region > 'eu'", src));
  EXPECT_TRUE(Eval("region >= 'eu'", src));
  EXPECT_FALSE(Eval("region >= 'f'", src));
}

TEST(ExpressionTest, StringsOrderByUnsignedBytes) {
  MapSource src{{"k", T("\xff")}};
  EXPECT_TRUE(Eval("k > 'z'", src));
  EXPECT_TRUE(Eval("k > \"\x7f\"", src));
}

TEST(ExpressionTest, TextAgainstNumbers) {
  MapSource src{{"p", T("10")}};
  EXPECT_TRUE(Eval("p > 5", src));  // as numbers, not bytes ("10" < "5")
  EXPECT_TRUE(Eval("p >= 10", src));
  EXPECT_TRUE(Eval("p == 10.0", src));
  EXPECT_TRUE(Eval("p == 1e1", src));
  EXPECT_TRUE(Eval("p < 10.5", src));
  EXPECT_FALSE(Eval("p < -3", src));
  EXPECT_TRUE(Eval("p != 11", src));
  EXPECT_TRUE(Eval("p == '10'", src));
  EXPECT_FALSE(Eval("p == '10.0'", src));  // a string literal compares bytes
  for (const char* number : {"5", "5.0", "+5", "5.", "0.5e1", "50E-1"}) {
    MapSource s{{"p", T(number)}};
    EXPECT_TRUE(Eval("p == 5", s)) << number;
  }
  MapSource half{{"p", T(".5")}};
  EXPECT_TRUE(Eval("p == 0.5", half));
  MapSource negative{{"p", T("-2.5e-1")}};
  EXPECT_TRUE(Eval("p == -0.25", negative));
  // Integers of any length (a fast path reads up to 15 digits).
  MapSource big{{"p", T("123456789012345")}, {"q", T("-12345678901234567")}};
  EXPECT_TRUE(Eval("p == 123456789012345", big));
  EXPECT_TRUE(Eval("p > 123456789012344.5", big));
  EXPECT_TRUE(Eval("q == -12345678901234567", big));
  EXPECT_TRUE(Eval("q < -1e16", big));
}

TEST(ExpressionTest, TextThatIsNotANumberIsUnequalToEveryNumber) {
  // "1e400" and "-1e999": past a double's range, as a literal of that
  // spelling is refused; they compared as infinity before.
  for (const char* text : {"abc", "", " 5", "5 ", "nan", "inf", "-inf", "0x10",
                           "5e", "+-5", ".", "1e400", "-1e999"}) {
    MapSource src{{"p", T(text)}};
    EXPECT_FALSE(Eval("p == 5", src)) << text;
    EXPECT_TRUE(Eval("p != 5", src)) << text;
    EXPECT_FALSE(Eval("p < 5", src)) << text;
    EXPECT_FALSE(Eval("p <= 5", src)) << text;
    EXPECT_FALSE(Eval("p > 5", src)) << text;
    EXPECT_FALSE(Eval("p >= 5", src)) << text;
    EXPECT_FALSE(Eval("p in (5, 0, -1)", src)) << text;
    EXPECT_TRUE(Eval("p not in (5, 0)", src)) << text;
  }
}

TEST(ExpressionTest, TextAgainstBooleans) {
  MapSource src{{"t", T("true")}, {"f", T("false")}, {"x", T("1")}};
  EXPECT_TRUE(Eval("t == true", src));
  EXPECT_FALSE(Eval("t == false", src));
  EXPECT_TRUE(Eval("t != false", src));
  EXPECT_TRUE(Eval("f == false", src));
  EXPECT_FALSE(Eval("x == true", src));
  EXPECT_TRUE(Eval("x != true", src));
}

TEST(ExpressionTest, TypedValues) {
  MapSource src{{"s", S("5")}, {"n", N(5)}, {"b", B(true)}, {"nan", N(NAN)}};
  // kString: bytes against strings; another type is unequal.
  EXPECT_TRUE(Eval("s == '5'", src));
  EXPECT_FALSE(Eval("s == 5", src));
  EXPECT_TRUE(Eval("s != 5", src));
  EXPECT_FALSE(Eval("s < 6", src));
  EXPECT_TRUE(Eval("s < '6'", src));
  // kNumber.
  EXPECT_TRUE(Eval("n == 5", src));
  EXPECT_TRUE(Eval("n >= 4.5", src));
  EXPECT_FALSE(Eval("n == '5'", src));
  EXPECT_TRUE(Eval("n != '5'", src));
  EXPECT_FALSE(Eval("n > '4'", src));
  EXPECT_FALSE(Eval("n == true", src));
  // kBool.
  EXPECT_TRUE(Eval("b == true", src));
  EXPECT_FALSE(Eval("b == false", src));
  EXPECT_TRUE(Eval("b != false", src));
  EXPECT_FALSE(Eval("b == 'true'", src));
  EXPECT_TRUE(Eval("b != 'true'", src));
  EXPECT_FALSE(Eval("b == 1", src));
  // NaN: unequal to everything, unordered.
  EXPECT_FALSE(Eval("nan == 0", src));
  EXPECT_TRUE(Eval("nan != 0", src));
  EXPECT_FALSE(Eval("nan < 0", src));
  EXPECT_FALSE(Eval("nan >= 0", src));
}

TEST(ExpressionTest, NegativeZeroEqualsZero) {
  MapSource src{{"n", N(-0.0)}, {"t", T("-0")}};
  EXPECT_TRUE(Eval("n == 0", src));
  EXPECT_TRUE(Eval("t == 0", src));
  EXPECT_TRUE(Eval("t == -0", src));
}

TEST(ExpressionTest, MissingFieldMakesEveryComparisonFalse) {
  MapSource src;
  for (const char* text :
       {"a == 1", "a != 1", "a < 1", "a <= 1", "a > 1", "a >= 1", "a == 'x'",
        "a != 'x'", "a == true", "a != false", "a ^= ''", "a in (1, 'x')",
        "a not in (1, 'x')", "exists(a)"}) {
    EXPECT_FALSE(Eval(text, src)) << text;
  }
  EXPECT_TRUE(Eval("!(a == 1)", src));
  EXPECT_TRUE(Eval("!(a != 1)", src));
  EXPECT_TRUE(Eval("!exists(a)", src));
}

TEST(ExpressionTest, Exists) {
  MapSource src{{"a", T("")}, {"x-region", T("eu")}};
  EXPECT_TRUE(Eval("exists(a)", src));
  EXPECT_TRUE(Eval("exists( x-region )", src));
  EXPECT_TRUE(Eval("exists (a)", src));
  EXPECT_FALSE(Eval("exists(b)", src));
  EXPECT_TRUE(Eval("exists(`a`)", src));
}

TEST(ExpressionTest, Prefix) {
  MapSource src{{"t", T("eu-west-1")}, {"s", S("eu-west")}, {"n", N(12)}};
  EXPECT_TRUE(Eval("t ^= 'eu-'", src));
  EXPECT_TRUE(Eval("t ^= ''", src));
  EXPECT_TRUE(Eval("t ^= 'eu-west-1'", src));
  EXPECT_FALSE(Eval("t ^= 'eu-west-1a'", src));
  EXPECT_FALSE(Eval("t ^= 'us'", src));
  EXPECT_TRUE(Eval("s ^= \"eu\"", src));
  EXPECT_FALSE(Eval("n ^= '1'", src));  // a number has no bytes
  EXPECT_FALSE(Eval("!(t ^= 'eu')", src));
}

TEST(ExpressionTest, InAndNotIn) {
  MapSource src{{"r", T("eu")}, {"p", T("7")}, {"b", B(false)}};
  EXPECT_TRUE(Eval("r in ('us', 'eu')", src));
  EXPECT_FALSE(Eval("r in ('us', 'ap')", src));
  EXPECT_TRUE(Eval("r in ('eu')", src));
  EXPECT_FALSE(Eval("r not in ('us', 'eu')", src));
  EXPECT_TRUE(Eval("r not in ('us', 'ap')", src));
  EXPECT_TRUE(Eval("p in (1, 7.0, 'x')", src));
  EXPECT_TRUE(Eval("p in ('7')", src));
  EXPECT_TRUE(Eval("p not in (8, 9)", src));
  EXPECT_TRUE(Eval("b in (true, false)", src));
  EXPECT_TRUE(Eval("b not in (true, 'false', 0)", src));
  EXPECT_TRUE(Eval("r in( 'eu' ,'us' )", src));
  EXPECT_TRUE(Eval("r not\n in ('x')", src));
}

// --- Structure --------------------------------------------------------------

TEST(ExpressionTest, AndBindsTighterThanOr) {
  MapSource src{{"a", T("1")}, {"b", T("0")}, {"c", T("0")}};
  EXPECT_TRUE(Eval("a == 1 || b == 1 && c == 1", src));  // a || (b && c)
  EXPECT_FALSE(Eval("(a == 1 || b == 1) && c == 1", src));
  EXPECT_TRUE(Eval("b == 1 && c == 1 || a == 1", src));  // (b && c) || a
  EXPECT_FALSE(Eval("b == 1 && (c == 1 || a == 1)", src));
  EXPECT_EQ(Canonical("a == 1 || b == 1 && c == 1"),
            "a == 1 || b == 1 && c == 1");
  EXPECT_EQ(Canonical("(a == 1 || b == 1) && c == 1"),
            "(a == 1 || b == 1) && c == 1");
}

TEST(ExpressionTest, NotAppliesToTheWholeComparison) {
  MapSource src{{"a", T("1")}, {"b", T("1")}};
  EXPECT_FALSE(Eval("!a == 1", src));
  EXPECT_TRUE(Eval("!a == 2", src));
  EXPECT_FALSE(Eval("!a == 2 && b == 2", src));  // (!(a == 2)) && b == 2
  EXPECT_TRUE(Eval("!(a == 2 && b == 2)", src));
  EXPECT_TRUE(Eval("!!a == 1", src));
  EXPECT_TRUE(Eval("! ! ( a == 1 )", src));
  EXPECT_EQ(Canonical("!a == 1 && b == 2"), "!(a == 1) && b == 2");
  EXPECT_EQ(Canonical("!!exists(a)"), "!!exists(a)");
  EXPECT_EQ(Canonical("!(a == 1 || b == 1)"), "!(a == 1 || b == 1)");
}

TEST(ExpressionTest, ShortCircuits) {
  MapSource src{{"a", T("1")}};
  ASSERT_TRUE(Eval("a == 1 || b == 1 || c == 1", src));
  EXPECT_EQ(src.gets(), 1);
  MapSource src2{{"a", T("1")}};
  ASSERT_FALSE(Eval("a == 2 && b == 1 && c == 1", src2));
  EXPECT_EQ(src2.gets(), 1);
}

TEST(ExpressionTest, WhitespaceIsFree) {
  MapSource src{{"a", T("1")}, {"b", T("x")}};
  EXPECT_TRUE(Eval("a==1&&b=='x'", src));
  EXPECT_TRUE(Eval(" \t\r\n a\n==\t1 \n&&\n b == 'x' \n", src));
  EXPECT_TRUE(Eval("(a==1)||(b=='y')", src));
}

TEST(ExpressionTest, Fields) {
  MapSource src{{"customer.tier", T("gold")},
                {"x-region", T("eu")},
                {"_a1", T("1")},
                {"we ird!`\\key", T("v")},
                {"exists", T("e")},
                {"not", T("n")},
                {"in", T("i")},
                {"true", T("t")}};
  EXPECT_TRUE(Eval("customer.tier == 'gold'", src));
  EXPECT_TRUE(Eval("x-region == 'eu'", src));
  EXPECT_TRUE(Eval("_a1 == 1", src));
  EXPECT_TRUE(Eval("`we ird!\\`\\\\key` == 'v'", src));
  EXPECT_TRUE(Eval("`x-region` == 'eu'", src));
  EXPECT_TRUE(Eval("exists == 'e'", src));
  EXPECT_TRUE(Eval("exists in ('e')", src));
  EXPECT_TRUE(Eval("not == 'n'", src));
  EXPECT_TRUE(Eval("not not in ('x')", src));
  EXPECT_TRUE(Eval("in in ('i')", src));
  EXPECT_TRUE(Eval("true == 't'", src));
  EXPECT_EQ(Canonical("`we ird!\\`\\\\key` == 'v'"),
            "`we ird!\\`\\\\key` == 'v'");
  EXPECT_EQ(Canonical("`x-region` == 'eu'"), "x-region == 'eu'");
  EXPECT_EQ(Canonical("`9lives` == 1"), "`9lives` == 1");
}

TEST(ExpressionTest, FieldsAreListedOnce) {
  absl::StatusOr<Expression> e =
      Expression::Parse("b == 1 || a == 2 && exists(b) || `c` ^= 'x'");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->fields(), (std::vector<std::string>{"b", "a", "c"}));
}

TEST(ExpressionTest, StringEscapes) {
  MapSource src{{"s", T("it's \"q\" \\ \n\t`")}};
  EXPECT_TRUE(Eval("s == 'it\\'s \\\"q\\\" \\\\ \\n\\t\\`'", src));
  EXPECT_TRUE(Eval("s == \"it's \\\"q\\\" \\\\ \\n\\t`\"", src));
  // Raw newlines and tabs inside quotes are bytes like any other.
  EXPECT_TRUE(Eval("s == 'it\\'s \"q\" \\\\ \n\t`'", src));
  EXPECT_EQ(Canonical("s == \"it's \\\"q\\\" \\\\ \\n\\t`\""),
            "s == 'it\\'s \"q\" \\\\ \\n\\t`'");
  MapSource empty{{"s", T("")}};
  EXPECT_TRUE(Eval("s == ''", empty));
  EXPECT_TRUE(Eval("s == \"\"", empty));
}

TEST(ExpressionTest, NumberLiterals) {
  EXPECT_EQ(Canonical("a == 5"), "a == 5");
  EXPECT_EQ(Canonical("a == -5"), "a == -5");
  EXPECT_EQ(Canonical("a == 5.50"), "a == 5.5");
  EXPECT_EQ(Canonical("a == 1e3"), "a == 1000");
  EXPECT_EQ(Canonical("a == 1E-7"), "a == 1e-07");
  EXPECT_EQ(Canonical("a == 2.5e+2"), "a == 250");
  EXPECT_EQ(Canonical("a == 0.1"), "a == 0.1");
  EXPECT_EQ(Canonical("a == -0"), "a == -0");
  EXPECT_EQ(Canonical("a == 1e300"), "a == 1e+300");
  EXPECT_EQ(Canonical("a==-1.25"), "a == -1.25");
}

TEST(ExpressionTest, CanonicalForm) {
  EXPECT_EQ(Canonical("region=='eu'&&priority>=5"),
            "region == 'eu' && priority >= 5");
  EXPECT_EQ(Canonical("((a == 1))"), "a == 1");
  EXPECT_EQ(Canonical("(a == 1 && b == 2) && (c == 3 && d == 4)"),
            "a == 1 && b == 2 && c == 3 && d == 4");
  EXPECT_EQ(Canonical("a == 1 || (b == 2 || c == 3)"),
            "a == 1 || b == 2 || c == 3");
  EXPECT_EQ(Canonical("a == 1 || (b == 2 && c == 3)"),
            "a == 1 || b == 2 && c == 3");
  EXPECT_EQ(Canonical("a in(1,'x' ,true)"), "a in (1, 'x', true)");
  EXPECT_EQ(Canonical("a not   in(1)"), "a not in (1)");
  EXPECT_EQ(Canonical("exists ( a )"), "exists(a)");
  EXPECT_EQ(Canonical("a^=\"p\""), "a ^= 'p'");
  EXPECT_EQ(Canonical("a!=false"), "a != false");
  EXPECT_EQ(Canonical("a<1||a>2||a<=3||a>=4"),
            "a < 1 || a > 2 || a <= 3 || a >= 4");
}

TEST(ExpressionTest, CopyAndMove) {
  absl::StatusOr<Expression> e = Expression::Parse("a == 1 && b ^= 'x'");
  ASSERT_TRUE(e.ok());
  Expression copy = *e;
  Expression moved = *std::move(e);
  MapSource src{{"a", T("1")}, {"b", T("xy")}};
  EXPECT_TRUE(copy.Evaluate(src));
  EXPECT_TRUE(moved.Evaluate(src));
  EXPECT_EQ(copy.ToString(), moved.ToString());
}

// --- Errors -----------------------------------------------------------------

struct ErrorCase {
  const char* text;
  size_t position;
  const char* message;  // a substring of the message
};

TEST(ExpressionTest, ErrorsNameThePositionAndWhatWasExpected) {
  const ErrorCase kCases[] = {
      {"", 1,
       "expected a condition (a field, exists(field), '!' or '('), "
       "found end of filter"},
      {"   ", 4, "expected a condition"},
      {"a", 2,
       "expected an operator (==, !=, <, <=, >, >=, ^=, in, not in) "
       "after field 'a', found end of filter"},
      {"a = 1", 3, "found '='; use '==' to compare"},
      {"a === 1", 5, "expected a value"},
      {"a == ", 6,
       "expected a value (a quoted string, a number, true or "
       "false) after '==', found end of filter"},
      {"a == eu", 6, "found 'eu'; quote strings: 'eu'"},
      {"(a == 1", 8,
       "expected '&&', '||' or ')' to close '(' at position 1, "
       "found end of filter"},
      {"region == 'eu' && (priority > 5 x", 33,
       "expected '&&', '||' or ')' to close '(' at position 19, found 'x'"},
      {"a == 1)", 7, "found ')' with no '(' to close"},
      {"a == 1 b == 2", 8, "expected '&&', '||' or end of filter, found 'b'"},
      {"a == 1 & b == 2", 8, "found '&'"},
      {"a == 1 and b == 2", 8, "found 'and'; use '&&' for and"},
      {"(a == 1 or b == 2)", 9, "found 'or'; use '||' for or"},
      {"a == 1 | b == 2", 8, "found '|'"},
      {"a == 'x", 6,
       "unterminated string: expected a closing ' before the "
       "end of the filter"},
      {"a == \"x\\\"", 6, "unterminated string: expected a closing \""},
      {"a == 'x\\", 6, "unterminated string"},
      {"a == 'x\\q'", 8, "unknown escape"},
      {"`a == 1", 1, "unterminated field name: expected a closing `"},
      {"`` == 1", 1, "empty field name"},
      {"a == 1x", 6, "malformed number '1x'"},
      {"a == 1.2.3", 6, "malformed number '1.2.3'"},
      {"a == 1.", 8, "expected a digit after '.' in a number"},
      {"a == 1e", 8, "expected a digit in the exponent"},
      {"a == 1e+", 9, "expected a digit in the exponent"},
      {"a == -", 7, "expected a digit after '-'"},
      {"a == .5", 6, "expected a digit before '.'"},
      {"a == 1e999", 6, "number '1e999' is out of range"},
      {"a < true", 5,
       "expected a string or a number after '<' (true and "
       "false have no order)"},
      {"a >= false", 6, "true and false have no order"},
      {"a ^= 1", 6, "expected a quoted string after '^='"},
      {"a in 1", 6, "expected '(' to start the list after 'in', found '1'"},
      {"a in ()", 7, "expected a value"},
      {"a in (1, 2", 11,
       "expected ',' or ')' to close the list at position "
       "6, found end of filter"},
      {"a in (1 2)", 9, "expected ',' or ')'"},
      {"a not 1", 7, "expected 'in' after 'not', found '1'"},
      {"a not in 1", 10, "expected '(' to start the list after 'not in'"},
      {"exists(a", 9, "expected ')' to close 'exists(' at position 1"},
      {"exists()", 8, "expected a field name in exists(...)"},
      {"exists(a) == 1", 11, "expected '&&', '||' or end of filter"},
      {"!= 1", 1, "expected a field before '!='"},
      {"a == 1 && ", 11, "expected a condition"},
      {"a == 1 || || b == 1", 11, "found '|'"},
      {"!", 2, "expected a condition"},
      {"()", 2, "expected a condition"},
      {"a $ 1", 3, "found '$'"},
      {"a == 'x' \x01", 10, "found byte 0x01"},
      {"a == 1 && 'x' == a", 11,
       "expected a condition (a field, "
       "exists(field), '!' or '('), found \"'\""},
      {"9a == 1", 1, "found '9a'"},
  };
  for (const ErrorCase& c : kCases) {
    SCOPED_TRACE(c.text);
    const Expression::ParseError error = ErrorOf(c.text);
    EXPECT_EQ(error.position, c.position) << error.message;
    EXPECT_THAT(error.message, HasSubstr(c.message));
  }
}

TEST(ExpressionTest, StatusMessageIsFitForTheWire) {
  absl::StatusOr<Expression> e =
      Expression::Parse("region == 'eu' && (priority > 5");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(e.status().message(),
            "filter: at position 32: expected '&&', '||' or ')' to close '(' "
            "at position 19, found end of filter");
  // ParseError is optional.
  EXPECT_FALSE(Expression::Parse("a ==").ok());
}

// --- Bounds -------------------------------------------------------------

TEST(ExpressionTest, TextLengthBound) {
  // "a == '<padding>'" of exactly kMaxTextBytes bytes parses.
  std::string text = "a == ''";
  text.insert(6, Expression::kMaxTextBytes - text.size(), 'x');
  ASSERT_EQ(text.size(), Expression::kMaxTextBytes);
  EXPECT_TRUE(Expression::Parse(text).ok());
  text.insert(6, "x");
  Expression::ParseError error;
  absl::StatusOr<Expression> e = Expression::Parse(text, &error);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(e.status().message(),
            "filter: too long (4097 bytes; at most 4096)");
  EXPECT_EQ(error.position, 0u);
}

TEST(ExpressionTest, ParenthesesDepthBound) {
  auto nested = [](int n) {
    return std::string(n, '(') + "a == 1" + std::string(n, ')');
  };
  EXPECT_TRUE(Expression::Parse(nested(Expression::kMaxDepth)).ok());
  const Expression::ParseError error =
      ErrorOf(nested(Expression::kMaxDepth + 1));
  EXPECT_EQ(error.position, 65u);
  EXPECT_THAT(error.message, HasSubstr("nested too deep (at most 64 levels"));
}

TEST(ExpressionTest, NotDepthBound) {
  MapSource src{{"a", T("1")}};
  const std::string ok = std::string(Expression::kMaxDepth, '!') + "a == 1";
  EXPECT_TRUE(Eval(ok, src));  // an even number of '!'
  const Expression::ParseError error =
      ErrorOf(std::string(Expression::kMaxDepth + 1, '!') + "a == 1");
  EXPECT_EQ(error.position, 65u);
  EXPECT_THAT(error.message, HasSubstr("nested too deep"));
  // '(' and '!' count together.
  std::string mixed;
  for (int i = 0; i < 32; ++i) mixed += "!(";
  EXPECT_TRUE(Expression::Parse(mixed + "a == 1" + std::string(32, ')')).ok());
  EXPECT_THAT(ErrorOf("!" + mixed + "a == 1" + std::string(32, ')')).message,
              HasSubstr("nested too deep"));
}

TEST(ExpressionTest, TermBound) {
  auto terms = [](int n) {
    std::string text;
    for (int i = 0; i < n; ++i) {
      text += (i == 0 ? "" : "||") + std::string("a==") + std::to_string(i);
    }
    return text;
  };
  MapSource src{{"a", T("255")}};
  EXPECT_TRUE(Eval(terms(Expression::kMaxTerms), src));
  const std::string over = terms(Expression::kMaxTerms + 1);
  const Expression::ParseError error = ErrorOf(over);
  EXPECT_EQ(error.position, over.rfind("a==256") + 1);
  EXPECT_THAT(error.message, HasSubstr("too many terms (at most 256"));
}

TEST(ExpressionTest, InListValuesCountAsTerms) {
  auto list = [](int n) {
    std::string text = "a in (";
    for (int i = 0; i < n; ++i) text += (i ? "," : "") + std::to_string(i);
    return text + ")";
  };
  MapSource src{{"a", T("255")}};
  EXPECT_TRUE(Eval(list(256), src));
  EXPECT_THAT(ErrorOf(list(257)).message, HasSubstr("too many terms"));
  EXPECT_THAT(ErrorOf("exists(b) && " + list(256)).message,
              HasSubstr("too many terms"));
}

// --- Randomized: the parser and evaluator against a reference -----------
//
// Random trees over a few fields and literals of each type are printed to
// text (with random quoting, spacing and redundant parentheses), parsed and
// evaluated over random field values; a reference evaluator written here
// over the tree itself must agree. The canonical form must parse back to
// itself and evaluate the same.

struct Lit {
  enum Kind { kString, kNumber, kBool } kind;
  std::string s;
  double n = 0;
  bool b = false;
};

struct Tree {
  enum Kind { kAnd, kOr, kNot, kExists, kCmp, kPrefix, kIn, kNotIn } kind;
  std::string op;  // kCmp: "==", "!=", "<", "<=", ">", ">="
  int field = 0;
  std::vector<Lit> lits;
  std::vector<Tree> children;
};

const char* const kFields[] = {"a",        "b.c",    "x-region",
                               "we!rd `f", "exists", "not"};
constexpr int kFieldCount = sizeof(kFields) / sizeof(kFields[0]);

const char* const kStrings[] = {"",     "eu",   "e",     "5",    "10",
                                "abc",  "it's", "q\"uo", "b\\s", "t\tn\n",
                                "true", "\xff", "-5",    "5.0"};
const double kNumbers[] = {0, 5, -5, 10, 2.5, -0.0, 1000, 1e-7, 0.1, 1e21};
const char* const kTexts[] = {
    "",      "eu",   "e",    "5",    "5.0", "10",     "-5",    "abc",
    "+5",    ".5",   "5.",   "1e3",  " 5",  "nan",    "inf",   "true",
    "false", "it's", "\xff", "0x10", "2.5", "-0",     "1e-7",  "0.1",
    "5 ",    "1e",   "+-5",  "e5",   "--5", "1.5e+2", "1e400", "-1e999"};

// Reads text as a number the way FieldValue's comment says, independently of
// the implementation: a regular expression, then strtod.
bool RefTextNumber(const std::string& s, double* out) {
  static const std::regex kNumber(
      R"([+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?)");
  if (!std::regex_match(s, kNumber)) return false;
  *out = std::strtod(s.c_str(), nullptr);
  return std::isfinite(*out);  // past a double's range: not a number
}

// -1, 0, 1, or 2 for "not comparable".
int RefOrder(const FieldValue& v, const Lit& lit) {
  auto bytes = [](const std::string& a, const std::string& b) {
    std::vector<unsigned char> x(a.begin(), a.end()), y(b.begin(), b.end());
    if (x < y) return -1;
    if (y < x) return 1;
    return 0;
  };
  auto numbers = [](double a, double b) {
    if (std::isnan(a) || std::isnan(b)) return 2;
    return a < b ? -1 : a > b ? 1 : 0;
  };
  switch (v.kind) {
    case FieldValue::Kind::kText:
      if (lit.kind == Lit::kString) return bytes(v.text, lit.s);
      if (lit.kind == Lit::kBool) {
        return v.text == (lit.b ? "true" : "false") ? 0 : 2;
      }
      {
        double d;
        if (!RefTextNumber(v.text, &d)) return 2;
        return numbers(d, lit.n);
      }
    case FieldValue::Kind::kString:
      return lit.kind == Lit::kString ? bytes(v.text, lit.s) : 2;
    case FieldValue::Kind::kNumber:
      return lit.kind == Lit::kNumber ? numbers(v.number, lit.n) : 2;
    case FieldValue::Kind::kBool:
      return lit.kind == Lit::kBool ? (v.boolean == lit.b ? 0 : 2) : 2;
  }
  return 2;
}

bool RefEval(const Tree& t, const std::vector<std::optional<FieldValue>>& v) {
  switch (t.kind) {
    case Tree::kAnd:
      for (const Tree& c : t.children) {
        if (!RefEval(c, v)) return false;
      }
      return true;
    case Tree::kOr:
      for (const Tree& c : t.children) {
        if (RefEval(c, v)) return true;
      }
      return false;
    case Tree::kNot:
      return !RefEval(t.children[0], v);
    default:
      break;
  }
  const std::optional<FieldValue>& value = v[t.field];
  if (!value) return false;
  switch (t.kind) {
    case Tree::kExists:
      return true;
    case Tree::kPrefix:
      return (value->kind == FieldValue::Kind::kText ||
              value->kind == FieldValue::Kind::kString) &&
             value->text.size() >= t.lits[0].s.size() &&
             value->text.substr(0, t.lits[0].s.size()) == t.lits[0].s;
    case Tree::kIn:
    case Tree::kNotIn: {
      bool any = false;
      for (const Lit& lit : t.lits) any = any || RefOrder(*value, lit) == 0;
      return t.kind == Tree::kIn ? any : !any;
    }
    case Tree::kCmp: {
      const int o = RefOrder(*value, t.lits[0]);
      if (t.op == "==") return o == 0;
      if (t.op == "!=") return o != 0;
      if (t.op == "<") return o == -1;
      if (t.op == "<=") return o == -1 || o == 0;
      if (t.op == ">") return o == 1;
      if (t.op == ">=") return o == 1 || o == 0;
      ADD_FAILURE() << "bad op " << t.op;
      return false;
    }
    default:
      ADD_FAILURE() << "bad kind";
      return false;
  }
}

class RandomExpressions {
 public:
  explicit RandomExpressions(uint32_t seed) : rng_(seed) {}

  int Uniform(int n) { return static_cast<int>(rng_() % n); }
  bool OneIn(int n) { return Uniform(n) == 0; }

  Lit RandomLit(bool ordered) {
    Lit lit;
    switch (Uniform(ordered ? 2 : 3)) {
      case 0:
        lit.kind = Lit::kString;
        lit.s = kStrings[Uniform(sizeof(kStrings) / sizeof(kStrings[0]))];
        break;
      case 1:
        lit.kind = Lit::kNumber;
        lit.n = kNumbers[Uniform(sizeof(kNumbers) / sizeof(kNumbers[0]))];
        break;
      default:
        lit.kind = Lit::kBool;
        lit.b = OneIn(2);
    }
    return lit;
  }

  // A tree of at most `depth` levels, spending from *budget terms.
  Tree RandomTree(int depth, int* budget) {
    Tree t;
    if (depth > 0 && *budget > 1 && !OneIn(3)) {
      const int k = Uniform(5);
      if (k == 0) {
        t.kind = Tree::kNot;
        t.children.push_back(RandomTree(depth - 1, budget));
        return t;
      }
      t.kind = k < 3 ? Tree::kAnd : Tree::kOr;
      const int n = 2 + Uniform(3);
      for (int i = 0; i<n&& * budget> 0; ++i) {
        t.children.push_back(RandomTree(depth - 1, budget));
      }
      if (t.children.size() == 1) return std::move(t.children[0]);
      return t;
    }
    --*budget;
    t.field = Uniform(kFieldCount);
    switch (Uniform(6)) {
      case 0:
        t.kind = Tree::kExists;
        break;
      case 1: {
        t.kind = Tree::kPrefix;
        Lit lit;
        lit.kind = Lit::kString;
        lit.s = kStrings[Uniform(sizeof(kStrings) / sizeof(kStrings[0]))];
        t.lits.push_back(lit);
        break;
      }
      case 2:
      case 3: {
        t.kind = OneIn(2) ? Tree::kIn : Tree::kNotIn;
        const int n = 1 + Uniform(4);
        for (int i = 0; i < n; ++i) t.lits.push_back(RandomLit(false));
        break;
      }
      default: {
        static const char* const kOps[] = {"==", "!=", "<", "<=", ">", ">="};
        t.kind = Tree::kCmp;
        t.op = kOps[Uniform(6)];
        t.lits.push_back(RandomLit(t.op != "==" && t.op != "!="));
      }
    }
    return t;
  }

  std::optional<FieldValue> RandomValue() {
    switch (Uniform(6)) {
      case 0:
        return std::nullopt;
      case 1:
      case 2:
        return FieldValue::Text(
            kTexts[Uniform(sizeof(kTexts) / sizeof(kTexts[0]))]);
      case 3:
        return FieldValue::String(
            kStrings[Uniform(sizeof(kStrings) / sizeof(kStrings[0]))]);
      case 4:
        if (OneIn(8)) {
          return FieldValue::Number(std::numeric_limits<double>::quiet_NaN());
        }
        return FieldValue::Number(
            kNumbers[Uniform(sizeof(kNumbers) / sizeof(kNumbers[0]))]);
      default:
        return FieldValue::Bool(OneIn(2));
    }
  }

  // Prints `t` as filter text, varying what the grammar lets vary.
  std::string Print(const Tree& t) {
    std::string out;
    Print(t, &out);
    return out;
  }

 private:
  std::string Space() {
    switch (Uniform(6)) {
      case 0:
        return "";
      case 1:
        return "\n\t";
      default:
        return " ";
    }
  }

  void PrintQuoted(const std::string& s, char quote, std::string* out) {
    out->push_back(quote);
    for (char c : s) {
      if (c == '\\' || c == quote) {
        *out += '\\';
        *out += c;
      } else if ((c == '\n' || c == '\t') && OneIn(2)) {
        *out += c == '\n' ? "\\n" : "\\t";
      } else if ((c == '\'' || c == '"' || c == '`') && OneIn(2)) {
        *out += '\\';  // escaping another quote is allowed too
        *out += c;
      } else {
        *out += c;
      }
    }
    out->push_back(quote);
  }

  void PrintField(int field, std::string* out) {
    const std::string name = kFields[field];
    const bool ident = name.find_first_of("! `") == std::string::npos;
    if (ident && !OneIn(4)) {
      *out += name;
    } else {
      PrintQuoted(name, '`', out);
    }
  }

  void PrintLit(const Lit& lit, std::string* out) {
    switch (lit.kind) {
      case Lit::kString:
        PrintQuoted(lit.s, OneIn(2) ? '\'' : '"', out);
        return;
      case Lit::kBool:
        *out += lit.b ? "true" : "false";
        return;
      case Lit::kNumber: {
        char buf[64];
        std::snprintf(buf, sizeof(buf), OneIn(2) ? "%.17g" : "%.17e", lit.n);
        *out += buf;
        return;
      }
    }
  }

  // Parenthesizes when the grammar needs it, and sometimes when it does not.
  void PrintChild(const Tree& child, bool needed, std::string* out) {
    const bool parens = needed || OneIn(8);
    if (parens) *out += "(" + Space();
    Print(child, out);
    if (parens) *out += Space() + ")";
  }

  void Print(const Tree& t, std::string* out) {
    switch (t.kind) {
      case Tree::kAnd:
      case Tree::kOr:
        for (size_t i = 0; i < t.children.size(); ++i) {
          if (i > 0) {
            *out += Space() + (t.kind == Tree::kAnd ? "&&" : "||") + Space();
          }
          const Tree::Kind ck = t.children[i].kind;
          PrintChild(t.children[i], t.kind == Tree::kAnd && ck == Tree::kOr,
                     out);
        }
        return;
      case Tree::kNot: {
        *out += "!" + Space();
        const Tree::Kind ck = t.children[0].kind;
        PrintChild(t.children[0], ck == Tree::kAnd || ck == Tree::kOr, out);
        return;
      }
      case Tree::kExists:
        *out += "exists" + Space() + "(" + Space();
        PrintField(t.field, out);
        *out += Space() + ")";
        return;
      case Tree::kPrefix:
        PrintField(t.field, out);
        *out += Space() + "^=" + Space();
        PrintLit(t.lits[0], out);
        return;
      case Tree::kIn:
      case Tree::kNotIn:
        PrintField(t.field, out);
        *out += t.kind == Tree::kIn ? " in" : " not" + Space() + " in";
        *out += Space() + "(" + Space();
        for (size_t i = 0; i < t.lits.size(); ++i) {
          if (i > 0) *out += Space() + "," + Space();
          PrintLit(t.lits[i], out);
        }
        *out += Space() + ")";
        return;
      case Tree::kCmp:
        PrintField(t.field, out);
        *out += Space() + t.op + Space();
        PrintLit(t.lits[0], out);
        return;
    }
  }

  std::mt19937 rng_;
};

std::string Describe(const std::vector<std::optional<FieldValue>>& values) {
  std::string out;
  for (int i = 0; i < kFieldCount; ++i) {
    out += std::string("\n  ") + kFields[i] + " = ";
    const std::optional<FieldValue>& v = values[i];
    if (!v) {
      out += "(missing)";
      continue;
    }
    switch (v->kind) {
      case FieldValue::Kind::kText:
        out += "Text(\"" + v->text + "\")";
        break;
      case FieldValue::Kind::kString:
        out += "String(\"" + v->text + "\")";
        break;
      case FieldValue::Kind::kNumber:
        out += "Number(" + std::to_string(v->number) + ")";
        break;
      case FieldValue::Kind::kBool:
        out += v->boolean ? "Bool(true)" : "Bool(false)";
        break;
    }
  }
  return out;
}

class VectorSource : public FieldSource {
 public:
  explicit VectorSource(const std::vector<std::optional<FieldValue>>& values)
      : values_(values) {}
  std::optional<FieldValue> Get(std::string_view path) const override {
    for (int i = 0; i < kFieldCount; ++i) {
      if (path == kFields[i]) return values_[i];
    }
    ADD_FAILURE() << "unknown field " << path;
    return std::nullopt;
  }

 private:
  const std::vector<std::optional<FieldValue>>& values_;
};

TEST(ExpressionRandomizedTest, AgreesWithReferenceEvaluator) {
  constexpr int kExpressions = 5000;
  constexpr int kAssignments = 16;
  RandomExpressions gen(20240611);
  int true_count = 0, false_count = 0;
  for (int i = 0; i < kExpressions; ++i) {
    int budget = 1 + gen.Uniform(12);
    const Tree tree = gen.RandomTree(4, &budget);
    const std::string text = gen.Print(tree);
    absl::StatusOr<Expression> e = Expression::Parse(text);
    ASSERT_TRUE(e.ok()) << "case " << i << ": " << text << "\n" << e.status();
    const std::string canonical = e->ToString();
    absl::StatusOr<Expression> again = Expression::Parse(canonical);
    ASSERT_TRUE(again.ok()) << "case " << i << ": canonical form of " << text
                            << " is " << canonical << "\n"
                            << again.status();
    ASSERT_EQ(again->ToString(), canonical) << "case " << i << ": " << text;
    for (int j = 0; j < kAssignments; ++j) {
      std::vector<std::optional<FieldValue>> values;
      for (int f = 0; f < kFieldCount; ++f) values.push_back(gen.RandomValue());
      const VectorSource source(values);
      const bool want = RefEval(tree, values);
      ASSERT_EQ(e->Evaluate(source), want)
          << "case " << i << "." << j << ": " << text
          << "\n  canonical: " << canonical
          << "\n  values:" << Describe(values);
      ASSERT_EQ(again->Evaluate(source), want)
          << "case " << i << "." << j << " (canonical): " << canonical
          << "\n  values:" << Describe(values);
      (want ? true_count : false_count)++;
    }
  }
  // The generator must exercise both outcomes substantially.
  EXPECT_GT(true_count, kExpressions * kAssignments / 10);
  EXPECT_GT(false_count, kExpressions * kAssignments / 10);
}

}  // namespace
}  // namespace sift::plugin
