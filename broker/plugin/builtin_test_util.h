// Helpers for the built-in plugins' tests: a typical message, a context at a
// given time, and a transform's single output.
#ifndef SIFT_BROKER_PLUGIN_BUILTIN_TEST_UTIL_H_
#define SIFT_BROKER_PLUGIN_BUILTIN_TEST_UTIL_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "broker/plugin/message.h"
#include "broker/plugin/plugin.h"

namespace sift::plugin::testing {

// A fixed, arbitrary time (2023-11-14T22:13:20Z) tests count from.
inline absl::Time T0() { return absl::FromUnixSeconds(1700000000); }

inline CallContext At(absl::Time now) {
  CallContext c;
  c.now = now;
  return c;
}
// T0 + `ms` milliseconds.
inline CallContext AtMs(int64_t ms) {
  return At(T0() + absl::Milliseconds(ms));
}

// A message on `topic` (which must outlive it) with the given headers.
inline Message Msg(std::string_view topic,
                   std::vector<HeaderField> headers = {}) {
  return Message(topic, "", std::move(headers), "payload");
}

// Runs `transform` on `message` and returns the one message it emits.
// Errors: the transform's, or Internal if it emits other than one message.
inline absl::StatusOr<Message> RunOne(Transform& transform, Message message,
                                      const CallContext& context = AtMs(0)) {
  std::vector<Message> out;
  absl::Status s = transform.Apply(std::move(message), context, &out);
  if (!s.ok()) return s;
  if (out.size() != 1) {
    return absl::InternalError("expected one message out");
  }
  return std::move(out[0]);
}

// The error message of `status`, or "OK".
inline std::string ErrorOf(const absl::Status& status) {
  return status.ok() ? "OK" : std::string(status.message());
}

}  // namespace sift::plugin::testing

#endif  // SIFT_BROKER_PLUGIN_BUILTIN_TEST_UTIL_H_
