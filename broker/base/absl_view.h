// AV(): std::string_view -> absl::string_view.
//
// Debian's abseil (20220623, built as C++14) has its own absl::string_view,
// which does not convert from std::string_view; code that hands a
// std::string_view to an abseil call (StrCat, SimpleAtoi, ...) goes through
// this. Free, thread-safe.
#ifndef SIFT_BROKER_BASE_ABSL_VIEW_H_
#define SIFT_BROKER_BASE_ABSL_VIEW_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace sift {

inline absl::string_view AV(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

}  // namespace sift

#endif  // SIFT_BROKER_BASE_ABSL_VIEW_H_
