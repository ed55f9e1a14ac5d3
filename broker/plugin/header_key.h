// Header keys as plugins check them in their configuration: 1 to 64 bytes of
// RFC 7230 token characters (A-Z a-z 0-9 ! # $ % & ' * + - . ^ _ ` | ~), the
// rule the broker applies to a PUB's headers (protocol::IsHeaderKey, which
// this uses), with error messages that name the setting.
//
// Free functions; thread-safe.
#ifndef SIFT_BROKER_PLUGIN_HEADER_KEY_H_
#define SIFT_BROKER_PLUGIN_HEADER_KEY_H_

#include <cstddef>
#include <string_view>

#include "absl/status/status.h"
#include "broker/protocol/headers.h"

namespace sift::plugin {

inline constexpr size_t kMaxHeaderKeyLength = protocol::kMaxHeaderKeyBytes;

// True if `key` is a valid header key.
bool IsHeaderKey(std::string_view key);

// OK if `key` is a valid header key, else InvalidArgument naming `setting`
// (the config key the header key came from) and what is wrong.
absl::Status ValidateHeaderKey(std::string_view key, std::string_view setting);

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_HEADER_KEY_H_
