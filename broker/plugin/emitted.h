// EmittedMessage: one message a plugin outside the broker (a C ABI library,
// a Lua script) emitted, held until the call returns. Each part is either a
// copy of what the plugin gave or "the same as the input" (nullopt), so that
// a part passed through unchanged keeps the input's bytes (often views into
// the frames the broker received) instead of a copy.
//
// Plain value; not thread-safe. Internal to the plugin loaders.
#ifndef SIFT_BROKER_PLUGIN_EMITTED_H_
#define SIFT_BROKER_PLUGIN_EMITTED_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/plugin/message.h"

namespace sift::plugin {

struct EmittedMessage {
  std::optional<std::string> topic;
  std::optional<std::string> reply_to;
  std::optional<std::string> payload;
  std::optional<std::vector<HeaderField>> headers;
};

// True if `emitted` is byte for byte `original` (a pointer comparison first:
// a plugin that hands back the input's own bytes costs no memcmp).
inline bool SameBytes(std::string_view emitted, std::string_view original) {
  return emitted.size() == original.size() &&
         (emitted.data() == original.data() || emitted == original);
}

// Appends to *out the messages `emitted` describes, in order: each is
// `input` with the parts the plugin changed replaced. The last one takes
// `input` itself (moved), so a one-to-one transform copies only what it
// changed.
inline void AppendEmitted(Message input, std::vector<EmittedMessage>* emitted,
                          std::vector<Message>* out) {
  for (size_t i = 0; i < emitted->size(); ++i) {
    EmittedMessage& e = (*emitted)[i];
    if (i + 1 == emitted->size()) {
      out->push_back(std::move(input));
    } else {
      out->push_back(input);
    }
    Message& m = out->back();
    if (e.topic) m.set_topic(std::move(*e.topic));
    if (e.reply_to) m.set_reply_to(std::move(*e.reply_to));
    if (e.payload) m.set_payload(std::move(*e.payload));
    if (e.headers) *m.mutable_headers() = std::move(*e.headers);
  }
}

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_EMITTED_H_
