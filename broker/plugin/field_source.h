// FieldSource: where an expression (broker/plugin/expression.h) reads the
// fields it compares. Header filters read headers by key; payload filters read
// JSON or protobuf fields by dotted path ("customer.tier").
//
// A source is made per message, on the routing thread, and lives for one
// Evaluate() call. Not thread-safe.
#ifndef SIFT_BROKER_PLUGIN_FIELD_SOURCE_H_
#define SIFT_BROKER_PLUGIN_FIELD_SOURCE_H_

#include <optional>
#include <string>
#include <string_view>

namespace sift::plugin {

// One field's value as an expression sees it.
//  - kText: bytes whose type is not known (a header value). Compared with a
//    string literal as bytes; with a number literal, as the number the text
//    spells (decimal, optional sign, fraction and exponent), and unequal to
//    it if the text is not a number; with true/false, as the text "true" or
//    "false".
//  - kString, kNumber, kBool: typed values (JSON, protobuf). A comparison
//    between different types is false (and != is true).
struct FieldValue {
  enum class Kind { kText, kString, kNumber, kBool };
  Kind kind = Kind::kText;
  std::string text;    // kText, kString
  double number = 0;   // kNumber
  bool boolean = false;  // kBool

  static FieldValue Text(std::string_view s) {
    FieldValue v;
    v.kind = Kind::kText;
    v.text.assign(s.data(), s.size());
    return v;
  }
  static FieldValue String(std::string_view s) {
    FieldValue v;
    v.kind = Kind::kString;
    v.text.assign(s.data(), s.size());
    return v;
  }
  static FieldValue Number(double d) {
    FieldValue v;
    v.kind = Kind::kNumber;
    v.number = d;
    return v;
  }
  static FieldValue Bool(bool b) {
    FieldValue v;
    v.kind = Kind::kBool;
    v.boolean = b;
    return v;
  }
};

class FieldSource {
 public:
  virtual ~FieldSource() = default;
  // The value at `path`, or nullopt if the message has no such field (an
  // absent header, a missing JSON key, an unset proto3 optional field...).
  virtual std::optional<FieldValue> Get(std::string_view path) const = 0;
};

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_FIELD_SOURCE_H_
