// The message a plugin sees: topic, reply_to, headers and payload, and the
// changes a transform makes to them.
//
// A Message is built only for messages that meet a plugin (the no-plugin path
// never makes one). It starts as views into the frames the broker received
// (nothing copied but the headers, which are small); a transform that rewrites
// the topic or payload gives the new bytes to the Message, which then owns
// them. Plain value, owned by the routing thread; not thread-safe.
#ifndef SIFT_BROKER_PLUGIN_MESSAGE_H_
#define SIFT_BROKER_PLUGIN_MESSAGE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

namespace sift::plugin {

// One header: keys are tokens (docs/protocol.md §8.1), values any bytes.
struct HeaderField {
  std::string key;
  std::string value;

  bool operator==(const HeaderField& o) const {
    return key == o.key && value == o.value;
  }
};

class Message {
 public:
  Message() = default;
  // A message over borrowed bytes: `topic`, `reply_to` and `payload` must
  // outlive it unless replaced through the setters.
  Message(std::string_view topic, std::string_view reply_to,
          std::vector<HeaderField> headers, std::string_view payload)
      : topic_(topic),
        reply_to_(reply_to),
        payload_(payload),
        headers_(std::move(headers)) {}

  // Copyable (the copy owns what the original owned, and borrows what it
  // borrowed) and movable.
  Message(const Message& o) { *this = o; }
  Message& operator=(const Message& o);
  Message(Message&& o) noexcept { *this = std::move(o); }
  Message& operator=(Message&& o) noexcept;

  std::string_view topic() const { return topic_; }
  std::string_view reply_to() const { return reply_to_; }
  std::string_view payload() const { return payload_; }
  const std::vector<HeaderField>& headers() const { return headers_; }
  std::vector<HeaderField>* mutable_headers() { return &headers_; }

  // The value of the first header named `key` (keys compare byte for byte),
  // or nullopt.
  std::optional<std::string_view> header(std::string_view key) const;
  // Replaces every header named `key` by one with `value` (at the place of
  // the first; appended if there was none).
  void SetHeader(std::string_view key, std::string_view value);
  // Removes every header named `key`; returns how many there were.
  int RemoveHeader(std::string_view key);

  // Rewrites. The broker validates a rewritten topic (a literal topic,
  // within its limits) before it routes or delivers the message.
  void set_topic(std::string topic);
  void set_reply_to(std::string reply_to);
  void set_payload(std::string payload);

  bool topic_changed() const { return topic_owned_; }
  bool payload_changed() const { return payload_owned_; }

 private:
  std::string_view topic_;
  std::string_view reply_to_;
  std::string_view payload_;
  std::vector<HeaderField> headers_;
  // Storage for rewritten parts; the views above point into these when the
  // matching flag is set.
  std::string topic_storage_;
  std::string reply_to_storage_;
  std::string payload_storage_;
  bool topic_owned_ = false;
  bool reply_to_owned_ = false;
  bool payload_owned_ = false;
};

// What a plugin knows about the call besides the message. Valid for the call.
struct CallContext {
  absl::Time now;             // the routing loop's clock for this message
  // Per-subscription chains only (empty / 0 on a route chain): the
  // subscriber's client id and the subscription's sid.
  std::string_view client_id;
  uint64_t sid = 0;
};

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_MESSAGE_H_
