// Expression: the filter language. A filter such as
//
//   region == 'eu' && (priority >= 5 || exists(x-urgent))
//
// is parsed once (Parse) into a flat, pre-compiled form and then evaluated per
// message (Evaluate) against a FieldSource (broker/plugin/field_source.h):
// header filters read headers, payload filters read JSON or protobuf fields.
//
// Grammar (EBNF; whitespace -- space, tab, CR, LF -- may separate tokens):
//
//   filter     = or ;
//   or         = and { "||" and } ;
//   and        = unary { "&&" unary } ;                && binds tighter than ||
//   unary      = "!" unary | primary ;
//   primary    = "(" or ")"
//              | "exists" "(" field ")"
//              | field compare literal
//              | field "^=" string                     byte prefix of the value
//              | field [ "not" ] "in" "(" literal { "," literal } ")" ;
//   compare    = "==" | "!=" | "<" | "<=" | ">" | ">=" ;
//   literal    = string | number | "true" | "false" ;
//   string     = "'" { char | escape } "'" | '"' { char | escape } '"' ;
//   escape     = "\" ( "\" | "'" | '"' | "n" | "t" | "`" ) ;
//   number     = [ "-" ] digit { digit } [ "." digit { digit } ]
//                [ ( "e" | "E" ) [ "+" | "-" ] digit { digit } ] ;
//   field      = ident | "`" { char | escape } "`" ;
//   ident      = ( letter | "_" ) { letter | digit | "_" | "." | "-" } ;
//
// A `char` is any byte but the closing quote and "\". A field is an identifier
// (dots make paths such as customer.tier; header keys such as x-region are
// identifiers too) or, for any other bytes, backquoted: `any!key`. "exists" is
// a function only when "(" follows it; otherwise it is a field like any other
// word ("not", "in", "true" too, on the left of an operator). "!" applies to
// the whole comparison: `!a == 1` is `!(a == 1)`. Ordering (<, <=, >, >=) takes
// a string or a number, not true/false; ^= takes a string.
//
// Semantics (see FieldValue in field_source.h):
//  - A missing field makes every comparison false: ==, !=, <..., ^=, in and
//    not in alike; exists(f) is false. So `!(a == 1)` is true when a is
//    missing, and `a != 1` is false.
//  - A present field of another type than the literal is unequal: == and in
//    are false, != and not in are true, orderings and ^= are false.
//  - Text (header values) against a number literal is read as a number:
//    optional sign, digits with an optional fraction, optional exponent, the
//    whole text (no spaces, no "nan" or "inf"); text that is not one is
//    unequal to every number. Against true/false it is the text "true" or
//    "false"; against a string, bytes.
//  - Strings order by bytes (unsigned, shorter prefix first); numbers as
//    doubles (NaN is unequal to everything and unordered).
//  - `a not in (l1, l2)` is `a != l1 && a != l2`; `a in (...)` is
//    `a == l1 || a == l2`.
//
// Bounds (each an InvalidArgument error when exceeded): the text at most
// kMaxTextBytes bytes; at most kMaxDepth levels of nesting, where each "("
// and each "!" opens a level; at most kMaxTerms terms, where a comparison,
// prefix match or exists() is one term and an in-list one per literal.
//
// Thread-safety: an Expression is immutable after Parse; Evaluate may be
// called from several threads at once. Evaluate allocates nothing itself (a
// FieldSource may allocate to return a value). Run
// //broker/plugin:expression_bench before changing it.
#ifndef SIFT_BROKER_PLUGIN_EXPRESSION_H_
#define SIFT_BROKER_PLUGIN_EXPRESSION_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "broker/plugin/field_source.h"

namespace sift::plugin {

class Expression {
 public:
  static constexpr size_t kMaxTextBytes = 4096;
  static constexpr int kMaxDepth = 64;
  static constexpr int kMaxTerms = 256;

  // Where and why a text did not parse. `position` is the 1-based byte offset
  // of the problem (0 for a text over kMaxTextBytes); `message` says what was
  // expected there, e.g. "expected ')' to close '(' at position 5, found end
  // of filter".
  struct ParseError {
    size_t position = 0;
    std::string message;
  };

  // Parses `text`. Errors: InvalidArgument with the message
  // "filter: at position <N>: <what was expected>" (fit to send back to a
  // client), or "filter: too long ..." beyond kMaxTextBytes. If `error` is
  // not null, it receives the position and message on failure.
  static absl::StatusOr<Expression> Parse(std::string_view text,
                                          ParseError* error = nullptr);

  // True if the fields `source` returns satisfy the expression. Allocates
  // nothing beyond what `source` allocates. Fields are looked up as often
  // as they appear (short-circuit: && and || stop at the first deciding
  // term).
  bool Evaluate(const FieldSource& source) const;

  // The canonical form: single-quoted strings, shortest round-trip numbers,
  // single spaces around binary operators, parentheses only where needed
  // (and around the operand of "!" unless it is exists() or another "!"),
  // nested && (or ||) flattened. Parse(ToString()) gives an equal expression.
  std::string ToString() const;

  // The distinct fields the expression reads, in order of first appearance.
  const std::vector<std::string>& fields() const { return fields_; }

 private:
  enum class Op : uint8_t {
    kAnd,  // children follow
    kOr,   // children follow
    kNot,  // one child follows
    kExists,
    kEq,
    kNe,
    kLt,
    kLe,
    kGt,
    kGe,
    kPrefix,
    kIn,
    kNotIn,
  };

  struct Literal {
    enum class Kind : uint8_t { kString, kNumber, kBool };
    Kind kind = Kind::kString;
    bool boolean = false;
    double number = 0;
    std::string text;  // kString
  };

  // Nodes are stored in prefix order: a node's subtree is the `size` nodes
  // starting at it, so the first child of node i is i + 1 and the next
  // sibling of child c is c + nodes_[c].size.
  struct Node {
    Op op;
    uint32_t size = 1;           // nodes in this subtree, itself included
    uint32_t field = 0;          // leaves: index into fields_
    uint32_t literal = 0;        // comparisons: index into literals_
    uint32_t literal_count = 0;  // kIn / kNotIn: literals_[literal, +count)
  };

  class Parser;
  class Printer;

  Expression() = default;  // made by Parse only

  bool EvaluateNode(uint32_t index, const FieldSource& source) const;

  std::vector<Node> nodes_;
  std::vector<Literal> literals_;
  std::vector<std::string> fields_;
};

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_EXPRESSION_H_
