// Router is sift's routing core: it owns the client sessions (as handles),
// their subscriptions, the subject tree that matches topics to them, and the
// counters STATS reports. It knows nothing of sockets: the server feeds it
// decoded commands and sends the deliveries it computes.
//
// Thread-safety: not thread-safe. Owned by the broker's event-loop thread.
//
// Hot path: Publish() validates the topic, matches it (through the subject
// tree's cache) and appends (client, sid) targets to a caller-owned vector.
// After warm-up it allocates nothing, takes no lock and never sees the payload.
// Run //bench:router_bench before changing it.
#ifndef SIFT_BROKER_ROUTER_ROUTER_H_
#define SIFT_BROKER_ROUTER_ROUTER_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "broker/protocol/headers.h"
#include "broker/topic/subject_tree.h"
#include "broker/topic/topic.h"
#include "proto/sift.pb.h"

namespace sift {

// Why a message (or one delivery of it) was not delivered. Every drop is
// counted under one of these; the names appear in STATS.
enum class DropReason : int {
  kNoSubscribers = 0,  // a publish that matched no subscription
  kSlowConsumer,       // subscriber's send queue full (high-water mark)
  kClientGone,         // subscriber disconnected before delivery
  kPayloadTooLarge,    // publish refused: payload over the limit
  kInvalidTopic,       // publish refused: bad topic or reply_to
  kNotConnected,       // publish from a client that has not said HELLO
  kBadFrame,           // unparsable or malformed message
  kInvalidRequest,     // a field missing or out of range (confirm without id)
  kInvalidHeader,      // publish refused: a malformed header or key
  kHeadersTooLarge,    // publish refused: too many headers, or too many bytes
  kFiltered,           // a plugin (route or subscription chain) dropped it
  kPluginError,        // a plugin failed it (it was dead-lettered)
  kDeadLettered,       // delivery gave up (max_deliver, queue full): dead-lettered
  kStoreFull,          // a retained or delayed publish over its bounds
  kDuplicate,          // a repeated sift-msg-id its stream stored before
  kCount,
};
std::string_view DropReasonName(DropReason reason);

struct RouterLimits {
  topic::Limits topic;
  uint64_t max_payload_bytes = 1 << 20;
  protocol::HeaderLimits headers;
  uint32_t max_subscriptions_per_client = 10000;
  uint64_t max_subscriptions = 1000000;  // all clients together
  uint32_t match_cache_size = 4096;
  uint32_t max_tracked_topics = 10000;
};

class Router {
 public:
  using ClientHandle = uint32_t;

  // Names the per-topic counters a delivery is counted under (opaque).
  using TopicSlot = uint32_t;

  // One delivery the server must make.
  struct Target {
    ClientHandle client;
    uint64_t sid;
    TopicSlot slot;
  };

  explicit Router(const RouterLimits& limits);
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  const RouterLimits& limits() const { return limits_; }

  // Starts a session. Its id ("c<N>-<boot>": a counter and ten random
  // base-32 characters drawn when the Router is made, so ids repeat neither
  // in one broker's life nor across restarts; at most 32 bytes) and inbox
  // prefix ("_INBOX.<id>") are fixed for the session's life.
  ClientHandle AddClient(std::string_view name);
  // Ends a session and drops all its subscriptions.
  // REQUIRES: the handle is live.
  void RemoveClient(ClientHandle client);
  // Drops all of a session's subscriptions, keeping the session (its
  // connection closed; what it sent before is still to be handled).
  // REQUIRES: the handle is live.
  void DropSubscriptions(ClientHandle client);
  bool IsLive(ClientHandle client) const;
  const std::string& client_id(ClientHandle client) const;
  const std::string& inbox_prefix(ClientHandle client) const;
  const std::string& client_name(ClientHandle client) const;

  // Errors carry wire codes (protocol::WireError): INVALID_REQUEST (sid 0),
  // INVALID_PATTERN, INVALID_QUEUE_GROUP, DUPLICATE_SID,
  // TOO_MANY_SUBSCRIPTIONS (the client's or the broker-wide bound),
  // FORBIDDEN (another client's inbox).
  absl::Status Subscribe(ClientHandle client, uint64_t sid,
                         std::string_view pattern,
                         std::string_view queue_group);
  // INVALID_REQUEST for sid 0; UNKNOWN_SID if the client has no such
  // subscription.
  absl::Status Unsubscribe(ClientHandle client, uint64_t sid);

  // Validates a publish and appends one Target per delivery to *targets
  // (cleared first): one per matching plain subscription, one member per
  // matching queue group. A message in a client's inbox goes to that client
  // only: the restriction applies before a group member is chosen. Counts
  // the message (or its drop). `headers` is the PUB's raw header entries
  // (broker/protocol/headers.h), checked here when there are any. Errors:
  // INVALID_TOPIC, PAYLOAD_TOO_LARGE, INVALID_HEADER, HEADERS_TOO_LARGE.
  // Each Target carries the topic's counter slot, for RecordDelivered.
  // `broker_made`: a message the broker itself publishes (a dead letter),
  // whose headers the clients' header limits do not bound. `stored`: a
  // stream has stored the message, so finding no subscriber is not a drop
  // (no_subscribers counts only messages that went nowhere).
  absl::Status Publish(std::string_view topic, std::string_view reply_to,
                       std::string_view headers, size_t payload_size,
                       std::vector<Target>* targets, bool broker_made = false,
                       bool stored = false);
  // The checks of Publish alone (counting a refusal as a drop), for a
  // message that plugins see before it is routed.
  absl::Status CheckPublish(std::string_view topic, std::string_view reply_to,
                            std::string_view headers, size_t payload_size);

  // The server reports the fate of each delivery it attempted: a delivery
  // handed to ZeroMQ is counted here, globally and under its topic, so the
  // per-topic figures add up to the global ones; one not made is a drop.
  void RecordDelivered(TopicSlot slot, size_t payload_size) {
    ++messages_out_;
    bytes_out_ += payload_size;
    ++CountersAt(slot).out;
  }
  // The counter slot of `topic` (for deliveries made later than its
  // publish: redeliveries of explicit-ack subscriptions).
  TopicSlot SlotForTopic(std::string_view topic) {
    return SlotFor(topic, tree_.FindCached(topic));
  }
  void RecordDeliveredBytes(uint64_t payload_bytes) {
    bytes_out_ += payload_bytes;
  }
  void RecordDrop(DropReason reason, uint64_t count = 1) {
    drops_[static_cast<int>(reason)] += count;
  }
  void RecordErrorSent() { ++errors_sent_; }

  // Counters for STATS; `top_topics` bounds the per-topic list.
  void FillStats(size_t top_topics, wire::StatsReply* out) const;

  size_t client_count() const { return live_clients_; }
  size_t subscription_count() const { return live_subscriptions_; }
  uint64_t drops(DropReason reason) const {
    return drops_[static_cast<int>(reason)];
  }

 private:
  using SubHandle = topic::SubjectTree::Handle;

  struct Client {
    bool live = false;
    std::string id;
    std::string inbox_prefix;
    std::string name;
    absl::flat_hash_map<uint64_t, SubHandle> subs;  // sid -> subscription
  };
  // 48 bytes: pattern and queue group share one string (short ones stay
  // inside it, no allocation). A million of these is the broker's memory.
  struct Subscription {
    ClientHandle client = 0;
    uint32_t pattern_size = 0;
    uint64_t sid = 0;
    std::string pattern_and_group;

    std::string_view pattern() const {
      return std::string_view(pattern_and_group).substr(0, pattern_size);
    }
    std::string_view queue_group() const {
      return std::string_view(pattern_and_group).substr(pattern_size);
    }
  };
  struct TopicCounters {
    uint64_t in = 0;
    uint64_t out = 0;
  };

  void RemoveSubscription(SubHandle handle);
  // Publish's checks of everything but the topic (counting a refusal). The
  // common case (no reply_to, no headers, a payload within bounds) inline.
  absl::Status CheckFields(std::string_view reply_to, std::string_view headers,
                           size_t payload_size, bool check_headers = true) {
    if (reply_to.empty() && headers.empty() &&
        payload_size <= limits_.max_payload_bytes) {
      return absl::OkStatus();
    }
    return CheckFieldsSlow(reply_to, headers, payload_size, check_headers);
  }
  absl::Status CheckFieldsSlow(std::string_view reply_to,
                               std::string_view headers, size_t payload_size,
                               bool check_headers);
  // The counters of `topic`, found through the note on its match-cache entry
  // when it has one (no second hash lookup per message), else by name.
  TopicSlot SlotFor(std::string_view topic,
                    const topic::SubjectTree::MatchResult* cached);
  // A MatchResult::note naming a slot of topic_counters_ (slot + 1), or
  // kOtherTopicsNote / kInboxTopicsNote.
  uint32_t CountersNote(std::string_view topic);
  TopicCounters& CountersAt(TopicSlot note) {
    if (note == kOtherTopicsNote) return other_topics_;
    if (note == kInboxTopicsNote) return inbox_topics_;
    return topic_counters_[note - 1];
  }
  // True if `topic` lies in a client inbox ("_INBOX.<id>..."); then *owner
  // is that client, or ~0 if no live client has that id.
  bool InboxOwner(std::string_view topic, ClientHandle* owner) const;

  const RouterLimits limits_;
  topic::SubjectTree tree_;

  std::vector<Client> clients_;             // indexed by ClientHandle
  std::vector<ClientHandle> free_clients_;  // reusable slots
  absl::flat_hash_map<std::string, ClientHandle> client_by_id_;
  uint64_t next_client_number_ = 1;
  size_t live_clients_ = 0;

  std::vector<Subscription> subs_;       // indexed by SubHandle
  std::vector<SubHandle> free_subs_;     // reusable slots
  size_t live_subscriptions_ = 0;

  // Counters (STATS).
  uint64_t messages_in_ = 0;
  uint64_t messages_out_ = 0;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  uint64_t errors_sent_ = 0;
  std::array<uint64_t, static_cast<int>(DropReason::kCount)> drops_{};
  // Per-topic counters: the slot of each tracked topic, and the slots.
  absl::flat_hash_map<std::string, uint32_t> topic_slots_;
  std::vector<TopicCounters> topic_counters_;
  TopicCounters other_topics_;  // beyond max_tracked_topics
  TopicCounters inbox_topics_;  // every "_INBOX..." topic (request/reply)
  static constexpr uint32_t kOtherTopicsNote = ~uint32_t{0};
  static constexpr uint32_t kInboxTopicsNote = ~uint32_t{0} - 1;
  // Drawn once per Router; the second half of every client id.
  std::string boot_id_;
};

}  // namespace sift

#endif  // SIFT_BROKER_ROUTER_ROUTER_H_
