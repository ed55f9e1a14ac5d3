// RetainedStore keeps the last retained message of each topic (MQTT's
// retained messages): a PUB with `retain` sets its topic's value, one with
// an empty payload clears it, and a new subscription gets the values of
// every topic its pattern matches before anything else.
//
// In memory only: values do not survive a broker restart (durable streams
// will keep them). Bounded in topics and in bytes (topic, headers and
// payload of every value).
//
// Thread-safety: not thread-safe; owned by the routing thread.
#ifndef SIFT_BROKER_STORE_RETAINED_H_
#define SIFT_BROKER_STORE_RETAINED_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "broker/delivery/deliveries.h"

namespace sift::store {

using delivery::MessageRef;

class RetainedStore {
 public:
  RetainedStore(size_t max_topics, uint64_t max_bytes)
      : max_topics_(max_topics), max_bytes_(max_bytes) {}

  // Sets message->topic's value to `message`, or clears it if the payload
  // is empty. Errors: ResourceExhausted (nothing changed) if a new or larger
  // value would take the store past max_topics or max_bytes, unless
  // `restored` (a value kept on disk before a restart: it was accepted
  // once, so it is taken past the bounds, which then refuse new values
  // until the store is back under them).
  absl::Status Set(MessageRef message, bool restored = false);
  // Whether the store holds more than its bounds (after restored values).
  bool over_bounds() const {
    return values_.size() > max_topics_ || bytes_ > max_bytes_;
  }

  // Appends the values of every topic `pattern` matches (sift's wildcards),
  // in topic order (bytewise).
  void Match(std::string_view pattern, std::vector<MessageRef>* out) const;

  size_t size() const { return values_.size(); }
  uint64_t bytes() const { return bytes_; }

 private:
  static uint64_t Cost(const delivery::StoredMessage& m) {
    return m.topic().size() + m.reply_to().size() + m.headers().size() +
           m.payload().size();
  }

  const size_t max_topics_;
  const uint64_t max_bytes_;
  std::map<std::string, MessageRef, std::less<>> values_;  // by topic
  uint64_t bytes_ = 0;
};

}  // namespace sift::store

#endif  // SIFT_BROKER_STORE_RETAINED_H_
