#include "broker/plugin/expression.h"

#include <charconv>
#include <cmath>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "broker/base/absl_view.h"

namespace sift::plugin {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsIdentStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool IsIdentChar(char c) {
  return IsIdentStart(c) || IsDigit(c) || c == '.' || c == '-';
}
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool IsIdent(std::string_view s) {
  if (s.empty() || !IsIdentStart(s[0])) return false;
  for (char c : s) {
    if (!IsIdentChar(c)) return false;
  }
  return true;
}

// Text read as a number: optional sign, digits with an optional fraction
// (".5" and "5." as strtod reads them), optional exponent, nothing else, and
// finite. The check keeps out what SimpleAtod would also take (spaces,
// "nan", "inf"); text past a double's range ("1e400") is not a number, as
// such a literal is refused ("out of range"), not infinity.
bool TextAsNumber(std::string_view s, double* out) {
  size_t i = 0;
  const size_t n = s.size();
  if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
  size_t digits = 0;
  while (i < n && IsDigit(s[i])) ++i, ++digits;
  if (i < n && s[i] == '.') {
    ++i;
    while (i < n && IsDigit(s[i])) ++i, ++digits;
  }
  if (digits == 0) return false;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exponent_digits = 0;
    while (i < n && IsDigit(s[i])) ++i, ++exponent_digits;
    if (exponent_digits == 0) return false;
  }
  if (i != n) return false;
  // Fast path: a plain integer of up to 15 digits is exact in a double.
  const size_t sign = (s[0] == '+' || s[0] == '-') ? 1 : 0;
  if (n - sign == digits && digits <= 15) {
    int64_t v = 0;
    for (size_t k = sign; k < n; ++k) v = v * 10 + (s[k] - '0');
    *out = s[0] == '-' ? -static_cast<double>(v) : static_cast<double>(v);
    return true;
  }
  return absl::SimpleAtod(AV(s), out) && std::isfinite(*out);
}

enum class Order { kLess, kEqual, kGreater, kUnordered };

template <typename T>
Order Compare3(const T& a, const T& b) {
  if (a < b) return Order::kLess;
  if (b < a) return Order::kGreater;
  if (a == b) return Order::kEqual;
  return Order::kUnordered;  // NaN
}

}  // namespace

// ---------------------------------------------------------------------------
// Parsing: recursive descent straight over the text (no token list), into a
// temporary tree that is then laid out flat in prefix order.

class Expression::Parser {
 public:
  Parser(std::string_view text, Expression* out) : text_(text), out_(out) {}

  // Parses the whole text into out_. False on error (see error()).
  bool Run() {
    Ast root;
    if (!ParseOr(&root)) return false;
    SkipSpace();
    if (pos_ != text_.size()) {
      return Fail(
          pos_, absl::StrCat("expected '&&', '||' or end of filter, ", Found(),
                             Peek() == ')' ? " with no '(' to close"
                                           : ConnectiveHint()));
    }
    Emit(root);
    return true;
  }

  const ParseError& error() const { return error_; }

 private:
  struct Ast {
    Op op = Op::kAnd;
    uint32_t field = 0;
    uint32_t literal = 0;
    uint32_t literal_count = 0;
    std::vector<Ast> children;
  };

  bool Fail(size_t pos, std::string message) {
    error_.position = pos + 1;
    error_.message = std::move(message);
    return false;
  }

  void SkipSpace() {
    while (pos_ < text_.size() && IsSpace(text_[pos_])) ++pos_;
  }
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek(size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }
  // The identifier-like word at `pos` (possibly empty).
  std::string_view WordAt(size_t pos) const {
    size_t end = pos;
    while (end < text_.size() && IsIdentChar(text_[end])) ++end;
    return text_.substr(pos, end - pos);
  }

  // "found ..." for the text at pos_, for error messages.
  std::string Found() const {
    if (AtEnd()) return "found end of filter";
    const char c = text_[pos_];
    if (IsIdentChar(c)) {
      std::string_view word = WordAt(pos_);
      if (word.size() > 32) {
        return absl::StrCat("found '", AV(word.substr(0, 32)), "...'");
      }
      return absl::StrCat("found '", AV(word), "'");
    }
    if (c == '\'') return "found \"'\"";
    if (c >= 0x21 && c <= 0x7e) {
      return absl::StrCat("found '", std::string(1, c), "'");
    }
    return absl::StrFormat("found byte 0x%02x", static_cast<unsigned char>(c));
  }

  // A hint when the word at pos_ is "and" or "or".
  const char* ConnectiveHint() const {
    const std::string_view word = WordAt(pos_);
    if (word == "and" || word == "AND") return "; use '&&' for and";
    if (word == "or" || word == "OR") return "; use '||' for or";
    return "";
  }

  bool Enter(size_t pos) {
    if (++depth_ > kMaxDepth) {
      return Fail(pos, absl::StrCat("nested too deep (at most ", kMaxDepth,
                                    " levels of '(' and '!')"));
    }
    return true;
  }
  bool CountTerm(size_t pos) {
    if (++terms_ > kMaxTerms) {
      return Fail(pos, absl::StrCat("too many terms (at most ", kMaxTerms,
                                    "; each comparison, exists() and in-list "
                                    "value counts)"));
    }
    return true;
  }

  // Appends `operand` to the children of a kAnd/kOr node `op`, splicing in the
  // children of an operand that is the same operator (from parentheses).
  static void AddOperand(Op op, Ast operand, std::vector<Ast>* children) {
    if (operand.op == op) {
      for (Ast& c : operand.children) children->push_back(std::move(c));
    } else {
      children->push_back(std::move(operand));
    }
  }

  bool ParseOr(Ast* out) {
    Ast first;
    if (!ParseAnd(&first)) return false;
    SkipSpace();
    if (!(Peek() == '|' && Peek(1) == '|')) {
      *out = std::move(first);
      return true;
    }
    Ast node;
    node.op = Op::kOr;
    AddOperand(Op::kOr, std::move(first), &node.children);
    while (Peek() == '|' && Peek(1) == '|') {
      pos_ += 2;
      Ast next;
      if (!ParseAnd(&next)) return false;
      AddOperand(Op::kOr, std::move(next), &node.children);
      SkipSpace();
    }
    *out = std::move(node);
    return true;
  }

  bool ParseAnd(Ast* out) {
    Ast first;
    if (!ParseUnary(&first)) return false;
    SkipSpace();
    if (!(Peek() == '&' && Peek(1) == '&')) {
      *out = std::move(first);
      return true;
    }
    Ast node;
    node.op = Op::kAnd;
    AddOperand(Op::kAnd, std::move(first), &node.children);
    while (Peek() == '&' && Peek(1) == '&') {
      pos_ += 2;
      Ast next;
      if (!ParseUnary(&next)) return false;
      AddOperand(Op::kAnd, std::move(next), &node.children);
      SkipSpace();
    }
    *out = std::move(node);
    return true;
  }

  bool ParseUnary(Ast* out) {
    SkipSpace();
    if (Peek() == '!' && Peek(1) != '=') {
      if (!Enter(pos_)) return false;
      ++pos_;
      out->op = Op::kNot;
      out->children.resize(1);
      if (!ParseUnary(&out->children[0])) return false;
      --depth_;
      return true;
    }
    return ParsePrimary(out);
  }

  bool ParsePrimary(Ast* out) {
    SkipSpace();
    const size_t start = pos_;
    if (Peek() == '(') {
      if (!Enter(pos_)) return false;
      ++pos_;
      if (!ParseOr(out)) return false;
      SkipSpace();
      if (Peek() != ')') {
        return Fail(pos_,
                    absl::StrCat("expected '&&', '||' or ')' to close "
                                 "'(' at position ",
                                 start + 1, ", ", Found(), ConnectiveHint()));
      }
      ++pos_;
      --depth_;
      return true;
    }
    if (WordAt(pos_) == "exists") {
      size_t after = pos_ + 6;
      while (after < text_.size() && IsSpace(text_[after])) ++after;
      if (after < text_.size() && text_[after] == '(') {
        if (!CountTerm(start)) return false;
        pos_ = after + 1;
        SkipSpace();
        out->op = Op::kExists;
        if (!ParseField(&out->field, "a field name in exists(...)")) {
          return false;
        }
        SkipSpace();
        if (Peek() != ')') {
          return Fail(pos_, absl::StrCat("expected ')' to close 'exists(' at "
                                         "position ",
                                         start + 1, ", ", Found()));
        }
        ++pos_;
        return true;
      }
    }
    if (IsIdentStart(Peek()) || Peek() == '`') {
      return ParseComparison(out);
    }
    if (Peek() == '!' && Peek(1) == '=') {
      return Fail(pos_,
                  absl::StrCat("expected a field before '!=', ", Found()));
    }
    return Fail(pos_, absl::StrCat("expected a condition (a field, "
                                   "exists(field), '!' or '('), ",
                                   Found()));
  }

  // field = ident | "`" { char | escape } "`". `what` names the expectation.
  bool ParseField(uint32_t* index, std::string_view what) {
    std::string name;
    const size_t start = pos_;
    if (Peek() == '`') {
      ++pos_;
      if (!ParseQuotedBody('`', start, &name)) return false;
      if (name.empty()) return Fail(start, "empty field name ``");
    } else if (IsIdentStart(Peek())) {
      name = std::string(WordAt(pos_));
      pos_ += name.size();
    } else {
      return Fail(pos_, absl::StrCat("expected ", AV(what),
                                     " (letters, digits, '_', '.', '-', or "
                                     "any bytes in `backquotes`), ",
                                     Found()));
    }
    std::vector<std::string>& fields = out_->fields_;
    for (size_t i = 0; i < fields.size(); ++i) {
      if (fields[i] == name) {
        *index = static_cast<uint32_t>(i);
        return true;
      }
    }
    *index = static_cast<uint32_t>(fields.size());
    fields.push_back(std::move(name));
    return true;
  }

  bool ParseComparison(Ast* out) {
    const size_t field_start = pos_;
    if (!ParseField(&out->field, "a field")) return false;
    const std::string_view field =
        text_.substr(field_start, pos_ - field_start);
    SkipSpace();
    std::string_view op_text;
    const char c0 = Peek(), c1 = Peek(1);
    if (c0 == '=' && c1 == '=') {
      out->op = Op::kEq, op_text = "==";
    } else if (c0 == '!' && c1 == '=') {
      out->op = Op::kNe, op_text = "!=";
    } else if (c0 == '<' && c1 == '=') {
      out->op = Op::kLe, op_text = "<=";
    } else if (c0 == '>' && c1 == '=') {
      out->op = Op::kGe, op_text = ">=";
    } else if (c0 == '^' && c1 == '=') {
      out->op = Op::kPrefix, op_text = "^=";
    } else if (c0 == '<') {
      out->op = Op::kLt, op_text = "<";
    } else if (c0 == '>') {
      out->op = Op::kGt, op_text = ">";
    } else if (WordAt(pos_) == "in") {
      out->op = Op::kIn, op_text = "in";
    } else if (WordAt(pos_) == "not") {
      size_t after = pos_ + 3;
      while (after < text_.size() && IsSpace(text_[after])) ++after;
      if (WordAt(after) != "in") {
        pos_ = after;
        return Fail(pos_, absl::StrCat("expected 'in' after 'not', ", Found()));
      }
      out->op = Op::kNotIn, op_text = "not in";
      pos_ = after;  // at "in"; the += below skips it
    } else {
      std::string hint;
      if (c0 == '=') hint = "; use '==' to compare";
      return Fail(pos_, absl::StrCat("expected an operator (==, !=, <, <=, >, "
                                     ">=, ^=, in, not in) after field '",
                                     AV(field), "', ", Found(), hint));
    }
    pos_ += (out->op == Op::kIn || out->op == Op::kNotIn) ? 2 : op_text.size();
    if (out->op == Op::kIn || out->op == Op::kNotIn) {
      return ParseList(out, op_text);
    }
    if (!CountTerm(field_start)) return false;
    SkipSpace();
    const size_t literal_pos = pos_;
    Literal literal;
    if (!ParseLiteral(op_text, &literal)) return false;
    if (out->op == Op::kPrefix && literal.kind != Literal::Kind::kString) {
      return Fail(literal_pos,
                  "expected a quoted string after '^=' (a prefix is bytes)");
    }
    if (literal.kind == Literal::Kind::kBool && out->op != Op::kEq &&
        out->op != Op::kNe) {
      return Fail(
          literal_pos,
          absl::StrCat("expected a string or a number after '", AV(op_text),
                       "' (true and false have no order)"));
    }
    out->literal = static_cast<uint32_t>(out_->literals_.size());
    out->literal_count = 1;
    out_->literals_.push_back(std::move(literal));
    return true;
  }

  bool ParseList(Ast* out, std::string_view op_text) {
    SkipSpace();
    if (Peek() != '(') {
      return Fail(pos_, absl::StrCat("expected '(' to start the list after '",
                                     AV(op_text), "', ", Found()));
    }
    const size_t open = pos_;
    ++pos_;
    out->literal = static_cast<uint32_t>(out_->literals_.size());
    for (;;) {
      SkipSpace();
      if (!CountTerm(pos_)) return false;
      Literal literal;
      if (!ParseLiteral(op_text, &literal)) return false;
      out_->literals_.push_back(std::move(literal));
      ++out->literal_count;
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() == ')') {
        ++pos_;
        return true;
      }
      return Fail(pos_, absl::StrCat("expected ',' or ')' to close the list "
                                     "at position ",
                                     open + 1, ", ", Found()));
    }
  }

  // literal = string | number | "true" | "false". `after` names the operator
  // before it, for messages.
  bool ParseLiteral(std::string_view after, Literal* out) {
    const size_t start = pos_;
    const char c = Peek();
    if (c == '\'' || c == '"') {
      ++pos_;
      out->kind = Literal::Kind::kString;
      return ParseQuotedBody(c, start, &out->text);
    }
    if (c == '-' || IsDigit(c)) return ParseNumber(out);
    if (c == '.') {
      return Fail(pos_, "expected a digit before '.' in a number (write 0.5)");
    }
    std::string_view word = WordAt(pos_);
    if (word == "true" || word == "false") {
      out->kind = Literal::Kind::kBool;
      out->boolean = word == "true";
      pos_ += word.size();
      return true;
    }
    std::string hint;
    if (!word.empty()) {
      hint = absl::StrCat("; quote strings: '", AV(word), "'");
    }
    return Fail(pos_, absl::StrCat("expected a value (a quoted string, a "
                                   "number, true or false) after '",
                                   AV(after), "', ", Found(), hint));
  }

  bool ParseNumber(Literal* out) {
    const size_t start = pos_;
    if (Peek() == '-') ++pos_;
    if (!IsDigit(Peek())) {
      return Fail(pos_, absl::StrCat("expected a digit after '-', ", Found()));
    }
    while (IsDigit(Peek())) ++pos_;
    if (Peek() == '.') {
      ++pos_;
      if (!IsDigit(Peek())) {
        return Fail(pos_, absl::StrCat("expected a digit after '.' in a "
                                       "number, ",
                                       Found()));
      }
      while (IsDigit(Peek())) ++pos_;
    }
    if (Peek() == 'e' || Peek() == 'E') {
      ++pos_;
      if (Peek() == '+' || Peek() == '-') ++pos_;
      if (!IsDigit(Peek())) {
        return Fail(pos_, absl::StrCat("expected a digit in the exponent of a "
                                       "number, ",
                                       Found()));
      }
      while (IsDigit(Peek())) ++pos_;
    }
    const std::string_view spelled = text_.substr(start, pos_ - start);
    if (IsIdentChar(Peek())) {
      size_t end = pos_;
      while (end < text_.size() && IsIdentChar(text_[end])) ++end;
      return Fail(start, absl::StrCat("malformed number '",
                                      AV(text_.substr(start, end - start)),
                                      "' (quote strings)"));
    }
    out->kind = Literal::Kind::kNumber;
    if (!absl::SimpleAtod(AV(spelled), &out->number) ||
        !std::isfinite(out->number)) {
      return Fail(start,
                  absl::StrCat("number '", AV(spelled), "' is out of range"));
    }
    return true;
  }

  // The body of a quoted string or field after its opening `quote` (at
  // `open`), through the closing quote.
  bool ParseQuotedBody(char quote, size_t open, std::string* out) {
    for (;;) {
      if (AtEnd()) {
        return Fail(open,
                    absl::StrCat("unterminated ",
                                 quote == '`' ? "field name" : "string",
                                 ": expected a closing ", std::string(1, quote),
                                 " before the end of the filter"));
      }
      const char c = text_[pos_];
      if (c == quote) {
        ++pos_;
        return true;
      }
      if (c != '\\') {
        out->push_back(c);
        ++pos_;
        continue;
      }
      const char e = Peek(1);
      switch (e) {
        case '\\':
        case '\'':
        case '"':
        case '`':
          out->push_back(e);
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 't':
          out->push_back('\t');
          break;
        default:
          if (pos_ + 1 >= text_.size()) {
            return Fail(
                open,
                absl::StrCat("unterminated ",
                             quote == '`' ? "field name" : "string",
                             ": expected a closing ", std::string(1, quote),
                             " before the end of the filter"));
          }
          return Fail(pos_,
                      "unknown escape (use \\\\, \\', \\\", \\`, \\n or "
                      "\\t)");
      }
      pos_ += 2;
    }
  }

  // Lays `ast` out in prefix order at the end of out_->nodes_.
  void Emit(const Ast& ast) {
    const size_t index = out_->nodes_.size();
    Node node;
    node.op = ast.op;
    node.field = ast.field;
    node.literal = ast.literal;
    node.literal_count = ast.literal_count;
    out_->nodes_.push_back(node);
    for (const Ast& child : ast.children) Emit(child);
    out_->nodes_[index].size =
        static_cast<uint32_t>(out_->nodes_.size() - index);
  }

  const std::string_view text_;
  Expression* const out_;
  size_t pos_ = 0;
  int depth_ = 0;
  int terms_ = 0;
  ParseError error_;
};

absl::StatusOr<Expression> Expression::Parse(std::string_view text,
                                             ParseError* error) {
  if (text.size() > kMaxTextBytes) {
    std::string message = absl::StrCat("too long (", text.size(),
                                       " bytes; at most ", kMaxTextBytes, ")");
    absl::Status status =
        absl::InvalidArgumentError(absl::StrCat("filter: ", message));
    if (error != nullptr) *error = {0, std::move(message)};
    return status;
  }
  Expression expression;
  Parser parser(text, &expression);
  if (!parser.Run()) {
    const ParseError& e = parser.error();
    if (error != nullptr) *error = e;
    return absl::InvalidArgumentError(
        absl::StrCat("filter: at position ", e.position, ": ", e.message));
  }
  return expression;
}

// ---------------------------------------------------------------------------
// Evaluation.

namespace {

// One leaf's field value, whose text is read as a number at most once (an
// in-list may compare it with several numbers).
class Subject {
 public:
  explicit Subject(const FieldValue& value) : value_(value) {}

  template <typename Literal>
  Order CompareTo(const Literal& literal) {
    using Kind = typename Literal::Kind;
    switch (value_.kind) {
      case FieldValue::Kind::kText:
        switch (literal.kind) {
          case Kind::kString:
            return Compare3<std::string_view>(value_.text, literal.text);
          case Kind::kNumber:
            if (number_state_ == kUnknown) {
              number_state_ =
                  TextAsNumber(value_.text, &number_) ? kNumber : kNotNumber;
            }
            if (number_state_ == kNotNumber) return Order::kUnordered;
            return Compare3(number_, literal.number);
          case Kind::kBool:
            return value_.text == (literal.boolean ? "true" : "false")
                       ? Order::kEqual
                       : Order::kUnordered;
        }
        break;
      case FieldValue::Kind::kString:
        if (literal.kind != Kind::kString) return Order::kUnordered;
        return Compare3<std::string_view>(value_.text, literal.text);
      case FieldValue::Kind::kNumber:
        if (literal.kind != Kind::kNumber) return Order::kUnordered;
        return Compare3(value_.number, literal.number);
      case FieldValue::Kind::kBool:
        if (literal.kind != Kind::kBool) return Order::kUnordered;
        return value_.boolean == literal.boolean ? Order::kEqual
                                                 : Order::kUnordered;
    }
    return Order::kUnordered;
  }

 private:
  enum : uint8_t { kUnknown, kNumber, kNotNumber };
  const FieldValue& value_;
  uint8_t number_state_ = kUnknown;
  double number_ = 0;
};

}  // namespace

bool Expression::Evaluate(const FieldSource& source) const {
  return EvaluateNode(0, source);
}

bool Expression::EvaluateNode(uint32_t index, const FieldSource& source) const {
  const Node& node = nodes_[index];
  switch (node.op) {
    case Op::kAnd:
      for (uint32_t c = index + 1, end = index + node.size; c < end;
           c += nodes_[c].size) {
        if (!EvaluateNode(c, source)) return false;
      }
      return true;
    case Op::kOr:
      for (uint32_t c = index + 1, end = index + node.size; c < end;
           c += nodes_[c].size) {
        if (EvaluateNode(c, source)) return true;
      }
      return false;
    case Op::kNot:
      return !EvaluateNode(index + 1, source);
    default:
      break;
  }
  const std::optional<FieldValue> value = source.Get(fields_[node.field]);
  if (!value.has_value()) return false;
  if (node.op == Op::kExists) return true;
  if (node.op == Op::kPrefix) {
    if (value->kind != FieldValue::Kind::kText &&
        value->kind != FieldValue::Kind::kString) {
      return false;
    }
    const std::string& prefix = literals_[node.literal].text;
    return value->text.compare(0, prefix.size(), prefix) == 0;
  }
  Subject subject(*value);
  if (node.op == Op::kIn || node.op == Op::kNotIn) {
    bool found = false;
    for (uint32_t i = 0; i < node.literal_count && !found; ++i) {
      found = subject.CompareTo(literals_[node.literal + i]) == Order::kEqual;
    }
    return node.op == Op::kIn ? found : !found;
  }
  const Order order = subject.CompareTo(literals_[node.literal]);
  switch (node.op) {
    case Op::kEq:
      return order == Order::kEqual;
    case Op::kNe:
      return order != Order::kEqual;
    case Op::kLt:
      return order == Order::kLess;
    case Op::kLe:
      return order == Order::kLess || order == Order::kEqual;
    case Op::kGt:
      return order == Order::kGreater;
    case Op::kGe:
      return order == Order::kGreater || order == Order::kEqual;
    default:
      return false;  // unreachable: every op is handled above
  }
}

// ---------------------------------------------------------------------------
// Printing.

class Expression::Printer {
 public:
  explicit Printer(const Expression& e) : e_(e) {}

  void Print(uint32_t index, std::string* out) const {
    const Node& node = e_.nodes_[index];
    switch (node.op) {
      case Op::kAnd:
      case Op::kOr: {
        const char* sep = node.op == Op::kAnd ? " && " : " || ";
        bool first = true;
        for (uint32_t c = index + 1, end = index + node.size; c < end;
             c += e_.nodes_[c].size) {
          if (!first) out->append(sep);
          first = false;
          // && binds tighter: only an || inside an && needs parentheses.
          const bool parens = node.op == Op::kAnd && e_.nodes_[c].op == Op::kOr;
          if (parens) out->push_back('(');
          Print(c, out);
          if (parens) out->push_back(')');
        }
        return;
      }
      case Op::kNot: {
        out->push_back('!');
        const Op child = e_.nodes_[index + 1].op;
        const bool parens = child != Op::kNot && child != Op::kExists;
        if (parens) out->push_back('(');
        Print(index + 1, out);
        if (parens) out->push_back(')');
        return;
      }
      case Op::kExists:
        out->append("exists(");
        PrintField(e_.fields_[node.field], out);
        out->push_back(')');
        return;
      case Op::kIn:
      case Op::kNotIn:
        PrintField(e_.fields_[node.field], out);
        out->append(node.op == Op::kIn ? " in (" : " not in (");
        for (uint32_t i = 0; i < node.literal_count; ++i) {
          if (i > 0) out->append(", ");
          PrintLiteral(e_.literals_[node.literal + i], out);
        }
        out->push_back(')');
        return;
      default:
        PrintField(e_.fields_[node.field], out);
        out->append(OpText(node.op));
        PrintLiteral(e_.literals_[node.literal], out);
        return;
    }
  }

 private:
  static const char* OpText(Op op) {
    switch (op) {
      case Op::kEq:
        return " == ";
      case Op::kNe:
        return " != ";
      case Op::kLt:
        return " < ";
      case Op::kLe:
        return " <= ";
      case Op::kGt:
        return " > ";
      case Op::kGe:
        return " >= ";
      case Op::kPrefix:
        return " ^= ";
      default:
        return " ? ";
    }
  }

  static void PrintQuoted(const std::string& s, char quote, std::string* out) {
    out->push_back(quote);
    for (char c : s) {
      if (c == '\\' || c == quote) {
        out->push_back('\\');
        out->push_back(c);
      } else if (c == '\n') {
        out->append("\\n");
      } else if (c == '\t') {
        out->append("\\t");
      } else {
        out->push_back(c);
      }
    }
    out->push_back(quote);
  }

  static void PrintField(const std::string& name, std::string* out) {
    if (IsIdent(name)) {
      out->append(name);
    } else {
      PrintQuoted(name, '`', out);
    }
  }

  static void PrintLiteral(const Literal& literal, std::string* out) {
    switch (literal.kind) {
      case Literal::Kind::kString:
        PrintQuoted(literal.text, '\'', out);
        return;
      case Literal::Kind::kBool:
        out->append(literal.boolean ? "true" : "false");
        return;
      case Literal::Kind::kNumber: {
        // Shortest text that reads back as the same double.
        char buf[64];
        const auto result =
            std::to_chars(buf, buf + sizeof(buf), literal.number);
        out->append(buf, result.ptr);
        return;
      }
    }
  }

  const Expression& e_;
};

std::string Expression::ToString() const {
  std::string out;
  Printer(*this).Print(0, &out);
  return out;
}

}  // namespace sift::plugin
