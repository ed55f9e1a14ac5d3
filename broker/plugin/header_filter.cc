#include "broker/plugin/header_filter.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "broker/plugin/expression.h"

namespace sift::plugin {
namespace {

constexpr std::string_view kName = "header_filter";

class HeaderFilter : public Filter {
 public:
  explicit HeaderFilter(Expression expression)
      : expression_(std::move(expression)) {}

  absl::StatusOr<Verdict> Apply(const Message& message,
                                const CallContext& context) override {
    const HeaderFieldSource source(message);
    if (expression_.Evaluate(source)) return Verdict::Keep();
    return Verdict::Drop(kName);
  }

 private:
  const Expression expression_;
};

class HeaderFilterFactory : public FilterFactory {
 public:
  std::string_view name() const override { return kName; }

  absl::StatusOr<std::unique_ptr<Filter>> Create(
      const PluginConfig& config) const override {
    if (absl::Status s = config.CheckOnly({"expr"}); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("header_filter: ", s.message()));
    }
    const std::string* expr = config.Find("expr");
    if (expr == nullptr) {
      return absl::InvalidArgumentError(
          "header_filter: missing setting \"expr\" (the filter expression, "
          "e.g. region == 'eu')");
    }
    absl::StatusOr<std::unique_ptr<Filter>> filter = MakeHeaderFilter(*expr);
    if (!filter.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "header_filter: setting \"expr\": ", filter.status().message()));
    }
    return filter;
  }
};

}  // namespace

std::optional<FieldValue> HeaderFieldSource::Get(std::string_view path) const {
  for (const HeaderField& h : message_.headers()) {
    if (h.key == path) return FieldValue::Text(h.value);
  }
  return std::nullopt;
}

std::unique_ptr<FilterFactory> MakeHeaderFilterFactory() {
  return std::make_unique<HeaderFilterFactory>();
}

absl::StatusOr<std::unique_ptr<Filter>> MakeHeaderFilter(
    std::string_view expr) {
  absl::StatusOr<Expression> expression = Expression::Parse(expr);
  if (!expression.ok()) return expression.status();
  return std::make_unique<HeaderFilter>(*std::move(expression));
}

}  // namespace sift::plugin
