// TomlKeyValue(): one `key = value` line of TOML.
//
// A toml::table prints its keys sorted. The printers of siftd's config
// sections (siftd --print-config) keep the order in which siftd reads what
// is ordered (a chain entry's settings, a schedule's headers), so they write
// a line at a time with this. toml++ writes each value; strings are always
// basic strings ("..." with escapes), since toml++ 3.3's literal and
// multi-line forms do not read back the same for every string (a leading
// newline, a ''' inside), and arrays stay on one line. Free, thread-safe.
#ifndef SIFT_BROKER_BASE_TOML_TEXT_H_
#define SIFT_BROKER_BASE_TOML_TEXT_H_

#include <toml++/toml.h>

#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace sift {

// `node` as a TOML value on one line.
inline std::string TomlValueText(const toml::node& node) {
  if (const toml::array* array = node.as_array()) {
    if (array->empty()) return "[]";
    std::string out = "[";
    for (size_t i = 0; i < array->size(); ++i) {
      out += i == 0 ? " " : ", ";
      out += TomlValueText(*array->get(i));
    }
    return out + " ]";
  }
  std::ostringstream out;
  out << toml::toml_formatter{node, toml::format_flags::allow_unicode_strings};
  return out.str();
}

// `key` as a TOML key: bare when it may be ([A-Za-z0-9_-]+), else quoted
// ("set.tenant", "").
inline std::string TomlKeyText(std::string_view key) {
  bool bare = !key.empty();
  for (char c : key) {
    bare = bare && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '_' || c == '-');
  }
  if (bare) return std::string(key);
  return TomlValueText(toml::value<std::string>(std::string(key)));
}

// "key = value" on one line, without the newline. `value` is a toml::array
// or one of toml++'s value types (std::string, int64_t, bool, double).
template <typename V>
std::string TomlKeyValue(std::string_view key, V&& value) {
  std::string out = TomlKeyText(key) + " = ";
  if constexpr (std::is_base_of_v<toml::node, std::decay_t<V>>) {
    return out + TomlValueText(value);
  } else {
    return out + TomlValueText(toml::value(std::forward<V>(value)));
  }
}

// A toml::array of strings.
inline toml::array TomlStrings(const std::vector<std::string>& strings) {
  toml::array array;
  for (const std::string& s : strings) array.push_back(s);
  return array;
}

}  // namespace sift

#endif  // SIFT_BROKER_BASE_TOML_TEXT_H_
