// ChainIo: runs a chain on a message as the broker holds it (topic,
// reply_to, raw header entries, payload bytes) and gives back what the
// broker must route: the messages that passed, in wire form again, then a
// dead letter for each message a plugin failed.
//
// Dead letters (docs/plugins.md): topic "$sift.deadletter.<original
// topic>", the failed message's payload and headers, plus the headers
//   sift-original-topic  the topic it was published on
//   sift-plugin          the plugin that failed it
//   sift-reason          the plugin's error (at most 512 bytes)
// Topics under "$sift." are reserved: clients may subscribe, not publish.
//
// Also SubscriptionChains, the chains of subscriptions that asked for
// plugins, by (client, sid).
//
// Thread-safety: the routing thread only.
#ifndef SIFT_BROKER_PLUGIN_CHAIN_IO_H_
#define SIFT_BROKER_PLUGIN_CHAIN_IO_H_

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "broker/plugin/chain.h"

namespace sift::plugin {

inline constexpr std::string_view kReservedPrefix = "$sift.";
inline constexpr std::string_view kDeadLetterPrefix = "$sift.deadletter.";
inline constexpr size_t kMaxDeadLetterReasonBytes = 512;

// A message to route, in wire form. `payload` may point into this object's
// own payload_storage: do not copy or move one after RunChain made it
// (vectors of them are swapped, not grown).
struct OutMessage {
  std::string topic;
  std::string reply_to;
  std::string headers;  // raw header entries (broker/protocol/headers.h)
  // The payload: the input's own bytes when unchanged (payload_is_input),
  // else payload_storage.
  std::string_view payload;
  std::string payload_storage;
  bool payload_is_input = true;
  bool dead_letter = false;
};

struct ChainResult {
  uint64_t dropped = 0;  // messages a filter (or an empty transform) dropped
  uint64_t failed = 0;   // messages a plugin failed (each dead-lettered)
};

// Runs `chain` on the message. *out is cleared first and gets the passed
// messages, then the dead letters. Malformed header bytes (not from the
// broker's checks) count as a failure of the pseudo-plugin "headers".
ChainResult RunChain(Chain& chain, std::string_view topic,
                     std::string_view reply_to, std::string_view headers,
                     std::string_view payload, const CallContext& context,
                     std::vector<OutMessage>* out);

// The headers of a dead letter: the message's own (`headers`, raw entries)
// less any named like one of `broker`'s (so a message cannot pass its own
// sift-reason off as the broker's), then `broker`'s, in order.
std::string DeadLetterHeaders(
    std::string_view headers,
    std::initializer_list<std::pair<std::string_view, std::string_view>>
        broker);

// A dead letter for a message the broker itself refused after a chain made
// it (a topic or headers past the limits): `headers` are raw header entries
// (as the router saw them), `plugin` names who refused it ("router").
OutMessage MakeDeadLetter(std::string_view original_topic,
                          std::string_view headers, std::string_view reply_to,
                          std::string_view payload, std::string_view plugin,
                          std::string_view reason);

// True for topics a client may not publish on.
inline bool IsReservedTopic(std::string_view topic) {
  return topic.size() >= kReservedPrefix.size() &&
         topic.substr(0, kReservedPrefix.size()) == kReservedPrefix;
}

// The chains of subscriptions, by client handle and sid.
class SubscriptionChains {
 public:
  bool empty() const { return count_ == 0; }
  size_t size() const { return count_; }
  // Replaces any chain of (client, sid); a null chain removes it.
  void Set(uint32_t client, uint64_t sid, std::unique_ptr<Chain> chain);
  // The chain of (client, sid), or null.
  Chain* Find(uint32_t client, uint64_t sid) const {
    if (count_ == 0) return nullptr;
    auto c = by_client_.find(client);
    if (c == by_client_.end()) return nullptr;
    auto s = c->second.find(sid);
    return s == c->second.end() ? nullptr : s->second.get();
  }
  void Remove(uint32_t client, uint64_t sid);
  void RemoveClient(uint32_t client);

 private:
  absl::flat_hash_map<uint32_t,
                      absl::flat_hash_map<uint64_t, std::unique_ptr<Chain>>>
      by_client_;
  size_t count_ = 0;
};

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_CHAIN_IO_H_
