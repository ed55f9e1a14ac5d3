#include "broker/plugin/header_key.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "broker/base/absl_view.h"
#include "broker/protocol/headers.h"

namespace sift::plugin {
namespace {

// The offset of the first byte of `key` that is not a tchar, or npos.
size_t FirstBadByte(std::string_view key) {
  for (size_t i = 0; i < key.size(); ++i) {
    if (!protocol::IsHeaderKeyChar(static_cast<unsigned char>(key[i]))) {
      return i;
    }
  }
  return std::string_view::npos;
}

}  // namespace

bool IsHeaderKey(std::string_view key) { return protocol::IsHeaderKey(key); }

absl::Status ValidateHeaderKey(std::string_view key, std::string_view setting) {
  std::string problem;
  if (key.empty()) {
    problem = "is empty";
  } else if (key.size() > kMaxHeaderKeyLength) {
    problem = absl::StrCat("is ", key.size(), " bytes (at most ",
                           kMaxHeaderKeyLength, ")");
  } else if (size_t i = FirstBadByte(key); i != std::string_view::npos) {
    const unsigned char c = static_cast<unsigned char>(key[i]);
    problem = c >= 0x20 && c < 0x7F
                  ? absl::StrFormat("has character '%c' at offset %d", c, i)
                  : absl::StrFormat("has byte 0x%02X at offset %d", c, i);
  } else {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "setting \"", AV(setting), "\": header key \"",
      absl::CHexEscape(AV(key.substr(0, 80))), "\" ", problem,
      " (keys are 1-64 bytes of A-Z a-z 0-9 ! # $ % & ' * + - . ^ _ ` | ~)"));
}

}  // namespace sift::plugin
