// The header filter: keeps messages whose headers satisfy an expression
// (broker/plugin/expression.h), e.g. "region == 'eu' && priority >= 5", and
// drops the others with reason "header_filter".
//
// Fields are header keys; a field's value is the first header with that key
// (keys compare byte for byte), as text: compared with a number literal it is
// read as a number. Headers only: the payload is never looked at.
//
// Thread-safety: the factory is thread-compatible; a Filter it makes runs on
// the routing thread (see plugin.h). Run //broker/plugin:expression_bench
// before changing the per-message path.
#ifndef SIFT_BROKER_PLUGIN_HEADER_FILTER_H_
#define SIFT_BROKER_PLUGIN_HEADER_FILTER_H_

#include <memory>
#include <optional>
#include <string_view>

#include "absl/status/statusor.h"
#include "broker/plugin/field_source.h"
#include "broker/plugin/message.h"
#include "broker/plugin/plugin.h"

namespace sift::plugin {

// A FieldSource over a Message's headers: Get(key) is the first header named
// `key`, as FieldValue::Text, or nullopt. Borrows `message`, which must
// outlive it.
class HeaderFieldSource : public FieldSource {
 public:
  explicit HeaderFieldSource(const Message& message) : message_(message) {}

  std::optional<FieldValue> Get(std::string_view path) const override;

 private:
  const Message& message_;
};

// The factory for "header_filter". Settings: `expr` (required), the
// expression. Errors from Create: InvalidArgument for a missing `expr`, an
// unknown setting or an expression that does not parse (the message names
// the position, e.g. "header_filter: setting \"expr\": filter: at position
// 17: expected ...").
std::unique_ptr<FilterFactory> MakeHeaderFilterFactory();

// A header filter for `expr`, as for a SUB's filter option. Errors:
// InvalidArgument from Expression::Parse ("filter: at position N: ..."),
// fit to send back to the client as is.
absl::StatusOr<std::unique_ptr<Filter>> MakeHeaderFilter(std::string_view expr);

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_HEADER_FILTER_H_
