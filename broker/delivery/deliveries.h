// Deliveries is the at-least-once core of the broker: for every subscription
// in explicit-ack mode (a "consumer") it keeps the messages delivered and not
// yet acknowledged (in flight), those waiting for capacity, and those waiting
// out a backoff before their next delivery; it picks queue-group members when
// the one the router chose is full, and it dead-letters what cannot be
// delivered. It knows nothing of sockets, protobuf or clocks: the routing
// thread calls it with decoded commands and the loop's time, and sends the
// Sends (and publishes the DeadLetters) it hands back.
//
// Thread-safety: not thread-safe. Owned by the routing thread ("routing
// thread only"), like the Router.
//
// Time: every `now` is ms of a monotonic clock the caller reads (the event
// loop's); Deliveries never reads a clock. `now` must not go backwards.
// Deadlines are absolute ms of that clock.
//
// Rules (the contract; deliveries_test.cc checks each):
// - Delivery ids are unique for the object's life (one Deliveries per
//   broker), starting at 1. Every delivery of a message, redeliveries
//   included, gets a new id: an ack or nack naming an earlier delivery of a
//   message that has since been redelivered is NotFound.
// - `attempt` is the number of the delivery: 1 for the first, and +1 for
//   every later delivery, whatever caused it (nack, ack wait, a consumer that
//   left). So max_deliver bounds the deliveries of a message, and a message
//   that kills every worker that takes it is dead-lettered, not passed around
//   forever.
// - A consumer has capacity when in_flight < max_in_flight. A message is in
//   flight from its Send until it is acked, nacked, its ack wait runs out or
//   its consumer leaves; a message waiting out a backoff does not hold
//   capacity (the slot goes to the next queued message).
// - Messages that find no capacity wait in FIFO order: in the consumer's own
//   queue, or for a queue group in the group's backlog. Offer admits at most
//   max_queued of them (else: dead letter "queue full"). Messages coming back
//   (a redelivery finding no capacity, a departed member's in-flight
//   messages) go to the head of the line even when it is full: they were
//   admitted once, so a queue holds at most max_queued plus what was in
//   flight. Among themselves they keep the order they were offered in.
// - Nothing is dropped silently: a message ends acked, dead-lettered (handed
//   back with the reason), or dropped because its non-group consumer left
//   (counted, and the count returned to the caller).
// - Queue groups: consumers that share a group name form one work queue
//   whatever their patterns; a member only ever receives messages whose
//   topic (StoredMessage::topic) its pattern matches (topic::PatternMatches).
//   Members choose round robin among those with capacity. max_in_flight and
//   ack_wait_ms are each member's own; max_deliver, max_queued and the
//   backoff are the group's (the first member's; a member that disagrees is
//   refused). A group keeps its backlog and pending redeliveries after its
//   last member leaves, and hands them to the next member that joins (a work
//   queue whose workers all restart loses nothing); it is forgotten once it
//   has neither members nor messages. A group here is its explicit-ack
//   members only: whether one group may mix ack modes is the caller's call.
//
// Output parameters (`sends`, `dead`) are appended to, never cleared, so a
// loop can collect one batch across calls. REQUIRES: they are non-null.
//
// Costs: Offer and Ack are a hash lookup of the consumer (none when it is
// the one found last), an id lookup in a direct-mapped ring (InFlightIndex)
// and O(1) list links; no timer per delivery: a consumer's in-flight
// messages are kept in deadline order (one ack wait per consumer, and a
// clock that does not go back), so one timer per consumer, for the earliest
// of them, covers them all. A message that finds capacity costs no heap
// allocation after warm-up beyond the caller's StoredMessage (made with
// StoredMessage::MakeQueued: a pointer bump in MessageArena): entries, the
// id index and the timer heap reuse their storage; waiting messages live in
// std::deque blocks. A Send carries no reference count of its own.
// Choosing another group member is O(members) with a pattern match each; a
// member that regains capacity in a group whose members have different
// patterns scans the backlog for the first message it matches (O(backlog)
// at worst). Tick is O(log n) per timer that fires and O(1) when none is
// due. Run //broker/delivery:deliveries_bench before changing them.
#ifndef SIFT_BROKER_DELIVERY_DELIVERIES_H_
#define SIFT_BROKER_DELIVERY_DELIVERIES_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "broker/delivery/arena_allocator.h"
#include "broker/delivery/backoff.h"
#include "broker/delivery/in_flight_index.h"
#include "broker/delivery/timer_queue.h"

namespace sift::delivery {

// The at-least-once settings of one explicit-ack subscription.
struct AckPolicy {
  // JetStream AckWait: no ack or progress by then -> the delivery failed.
  // >= 1.
  uint32_t ack_wait_ms = 30000;
  // Deliveries of a message before it is dead-lettered; 0 = unlimited.
  uint32_t max_deliver = 5;
  // Prefetch per consumer (RabbitMQ basic.qos). >= 1.
  uint32_t max_in_flight = 1000;
  // Messages waiting for capacity, per consumer or per group. 0 = none wait:
  // a message that finds no capacity is dead-lettered.
  uint32_t max_queued = 100000;
  // Delay before redelivery after a nack without a delay or an expired ack
  // wait.
  Backoff backoff;
};

// InvalidArgument naming the field for a policy AddConsumer would refuse.
absl::Status ValidateAckPolicy(const AckPolicy& policy);

// The settings a queue group shares (max_deliver, max_queued, the backoff)
// in which `asked` differs from the group's `held`, each under its wire
// name with both values, `who` naming the asker: "max_deliver 3 (this
// subscription: 5, the default) and backoff_jitter 0.2 (this subscription:
// 0)". "the default" means the asked value is AckPolicy's default (the
// request's fields are not seen here). Empty when the group would take
// `asked`. For refusals (AddConsumer's, a repeated DECLARE's): not for a
// hot path.
std::string GroupPolicyDifferences(const AckPolicy& held,
                                   const AckPolicy& asked,
                                   std::string_view who);

struct StoredMessage;
using MessageRef = std::shared_ptr<const StoredMessage>;

// A published message as delivery keeps it until it is acked: shared by
// every consumer it was offered to, immutable. Made only by Make(), which
// copies the four fields into the same allocation as the object and its
// reference count (one block per message), right behind the object; the
// object keeps only their lengths (20 bytes with topic_slot, where four
// string_views took 72: a burst held for slow consumers is mostly these
// blocks, and every fresh page costs). The views the accessors return live
// as long as the object. Not copyable. Thread-safety: immutable, so any
// thread may read it; the MessageRef is a std::shared_ptr.
struct StoredMessage {
  struct Passkey {
   private:
    friend struct StoredMessage;
    Passkey() = default;
  };

  // Errors: none (std::bad_alloc as `new`).
  static MessageRef Make(std::string_view topic, std::string_view reply_to,
                         std::string_view headers, std::string_view payload,
                         uint32_t topic_slot = 0);
  // Make for a message explicit-ack consumers will hold (Deliveries::Offer):
  // its block comes from MessageArena (see there why), unless the message
  // is large or the arena wastes too much. Same errors.
  static MessageRef MakeQueued(std::string_view topic,
                               std::string_view reply_to,
                               std::string_view headers,
                               std::string_view payload,
                               uint32_t topic_slot = 0);
  // How many MakeQueued messages were kept on the heap instead (large, or
  // the arena declined), since the process started. Any thread.
  static uint64_t QueuedOnHeap() {
    return queued_on_heap_.load(std::memory_order_relaxed);
  }

  // For Make only (std::allocate_shared needs it public).
  StoredMessage(Passkey, std::string_view topic, std::string_view reply_to,
                std::string_view headers, std::string_view payload,
                uint32_t topic_slot);
  StoredMessage(const StoredMessage&) = delete;
  StoredMessage& operator=(const StoredMessage&) = delete;

  std::string_view topic() const { return {bytes(), topic_size_}; }
  std::string_view reply_to() const {
    return {bytes() + topic_size_, reply_to_size_};
  }
  // Raw wire header entries (protocol/headers.h).
  std::string_view headers() const {
    return {bytes() + topic_size_ + reply_to_size_, headers_size_};
  }
  std::string_view payload() const {
    return {bytes() + topic_size_ + reply_to_size_ + headers_size_,
            payload_size_};
  }

  // The router's counters slot of topic() (Router::TopicSlot), when the
  // server knew it on storing; 0: look it up. Delivery does not read it.
  const uint32_t topic_slot;

 private:
  // The fields' bytes, in order, right behind the object (Make).
  const char* bytes() const { return reinterpret_cast<const char*>(this + 1); }

  const uint32_t topic_size_;
  const uint32_t reply_to_size_;
  const uint32_t headers_size_;
  const uint32_t payload_size_;

  static std::atomic<uint64_t> queued_on_heap_;
  static MessageRef MakeIn(bool arena, std::string_view topic,
                           std::string_view reply_to, std::string_view headers,
                           std::string_view payload, uint32_t topic_slot);
};

// One DELIVER the caller must send.
// `message` is not a reference of its own (no count to take and give back
// per delivery): Deliveries holds the message while the delivery is in
// flight, so a caller that made other calls on Deliveries since it got the
// Send checks Deliveries::InFlight(send) before reading it.
struct Send {
  uint32_t client;
  uint64_t sid;
  uint64_t delivery_id;
  uint32_t attempt;  // 1 for the first delivery
  const StoredMessage* message;
  uint32_t slot;  // Deliveries' own, for InFlight
};

// Reasons a message is dead-lettered (DeadLetter::reason).
inline constexpr std::string_view kReasonQueueFull = "queue full";
inline constexpr std::string_view kReasonMaxDeliverAfterAckWait =
    "max_deliver after ack_wait";
inline constexpr std::string_view kReasonMaxDeliverAfterNack =
    "max_deliver after nack";
inline constexpr std::string_view kReasonMaxDeliverAfterConsumerLeft =
    "max_deliver after consumer left";

// A message delivery gave up on; the caller publishes it to the dead-letter
// topic with these facts as headers.
struct DeadLetter {
  MessageRef message;
  uint32_t client;  // the consumer it was last at, or was offered to
  uint64_t sid;
  std::string reason;  // one of the kReason* above
  uint32_t attempts;   // deliveries made; 0 when refused by a full queue
  // A stream consumer's dead letter: the stream and the record's seq (the
  // sift-stream and sift-stream-seq headers); empty and 0 otherwise.
  std::string stream = {};
  uint64_t stream_seq = 0;
};

class Deliveries {
 public:
  // Event counters for STATS; all only grow.
  struct Counters {
    uint64_t delivered = 0;     // Sends made, redeliveries included
    uint64_t redeliveries = 0;  // Sends with attempt > 1
    uint64_t acks = 0;
    uint64_t nacks = 0;
    uint64_t progress = 0;
    uint64_t expired = 0;       // ack waits that ran out
    uint64_t dead_letters = 0;  // DeadLetters handed back
    uint64_t dropped = 0;       // messages of non-group consumers that left
  };

  // One consumer, for a STATS row.
  struct ConsumerStats {
    uint32_t in_flight = 0;
    uint32_t max_in_flight = 0;
    size_t queued = 0;  // its own queue (0 for a group member: see backlog)
    uint64_t delivered = 0;
    uint64_t acks = 0;
  };

  // `seed` drives the backoff jitter: equal seeds and equal calls give equal
  // results.
  explicit Deliveries(uint64_t seed = 0x5eedULL);
  ~Deliveries();
  Deliveries(const Deliveries&) = delete;
  Deliveries& operator=(const Deliveries&) = delete;

  // Makes subscription (client, sid) an explicit-ack consumer of `pattern`,
  // in queue group `group` (empty = none). Joining a group that has a
  // backlog pulls from it at once (Sends). Errors: AlreadyExists if (client,
  // sid) is a consumer; InvalidArgument for a bad policy; FailedPrecondition
  // if the group has members whose max_deliver, max_queued or backoff
  // differ. REQUIRES: `pattern` passed topic::ValidatePattern and `group`
  // topic::ValidateQueueGroup (the router checks both).
  absl::Status AddConsumer(uint32_t client, uint64_t sid,
                           std::string_view pattern, std::string_view group,
                           const AckPolicy& policy, int64_t now,
                           std::vector<Send>* sends);

  // A member of `group` that never takes a message (a declared queue, as
  // AMQP's queue.declare): while it stays, messages routed to the group wait
  // in its backlog for real members even when none is connected. Its policy
  // is the group's if it is the first member. Errors as AddConsumer;
  // InvalidArgument for an empty group.
  absl::Status AddPlaceholder(uint32_t client, uint64_t sid,
                              std::string_view pattern, std::string_view group,
                              const AckPolicy& policy, int64_t now);

  // Removes a consumer (UNSUB). Its in-flight messages, if it was in a
  // group, are redelivered at once (attempt + 1) to other members whose
  // pattern matches and that have capacity, else go to the head of the
  // group's backlog, in their delivery order; one already at max_deliver is
  // dead-lettered ("max_deliver after consumer left"). Its pending group
  // redeliveries stay the group's. A non-group consumer's messages (in
  // flight, queued, waiting for redelivery) have nowhere to go: they are
  // dropped. Returns the number dropped (0 if (client, sid) is no consumer),
  // also counted in counters().dropped.
  size_t RemoveConsumer(uint32_t client, uint64_t sid, int64_t now,
                        std::vector<Send>* sends,
                        std::vector<DeadLetter>* dead);
  // RemoveConsumer for every consumer of `client` (it disconnected). No
  // Send goes to any of them, even between two of its own group members.
  size_t RemoveClient(uint32_t client, int64_t now, std::vector<Send>* sends,
                      std::vector<DeadLetter>* dead);

  // True if there are no consumers at all: the routing path's fast check
  // before asking IsConsumer per target. (Orphaned group backlogs may still
  // hold messages; NextDeadline covers their timers.)
  bool empty() const { return consumers_by_key_.empty(); }
  bool IsConsumer(uint32_t client, uint64_t sid) const {
    return FindConsumer(client, sid) != kNone;
  }

  // The router routed `message` to consumer (client, sid) (for a group: the
  // member the router chose). With capacity -> a Send, attempt 1, its ack
  // wait running from `now`. Else, in a group: another member whose pattern
  // matches message->topic and that has capacity (round robin), else the
  // tail of the group's backlog; not in a group: the tail of the consumer's
  // queue. A full queue or backlog -> a DeadLetter ("queue full", attempts
  // 0). NotFound (nothing appended) if (client, sid) is not a consumer;
  // InvalidArgument for a null message. REQUIRES: message->topic matches
  // the consumer's pattern (the router's choice): in a group whose members
  // share one pattern, no other member's is matched again.
  absl::Status Offer(uint32_t client, uint64_t sid, MessageRef message,
                     int64_t now, std::vector<Send>* sends,
                     std::vector<DeadLetter>* dead);

  // Acknowledges delivery `delivery_id`: the message is done. The freed
  // capacity takes the next waiting message (the consumer's queue, or the
  // first message in the group's backlog that its pattern matches). NotFound
  // if that id is not in flight at `client` (unknown, acked, nacked, expired,
  // or another client's).
  absl::Status Ack(uint32_t client, uint64_t delivery_id, int64_t now,
                   std::vector<Send>* sends);

  // Negative acknowledgement: deliver the message again after `delay_ms`
  // (0 = at once), or, with no delay given, after the backoff for this
  // attempt (jittered). Then it goes to another member of the group that
  // has capacity and matches when there is one, else back to the same
  // consumer, else to the head of the line (queue or backlog). At
  // max_deliver it is dead-lettered at once ("max_deliver after nack").
  // Frees capacity like Ack. NotFound as for Ack.
  absl::Status Nack(uint32_t client, uint64_t delivery_id,
                    std::optional<uint32_t> delay_ms, int64_t now,
                    std::vector<Send>* sends, std::vector<DeadLetter>* dead);

  // Whether `send`'s delivery is still in flight (not acked, nacked,
  // expired, or ended by its consumer leaving), so send.message is valid.
  bool InFlight(const Send& send) const {
    return send.slot < entries_.size() && entries_[send.slot].in_flight &&
           entries_[send.slot].delivery_id == send.delivery_id;
  }

  // A hint, no effect on state: starts loading what Ack(delivery_id) will
  // touch (its entry and its message's reference count), which has often
  // left the caches since the delivery. A caller acking a list of ids calls
  // it a few ids ahead. Unknown ids are ignored.
  void PrefetchInFlight(uint64_t delivery_id) const;

  // "Still working on it" (JetStream in-progress): the ack wait restarts
  // from `now`. Same delivery id, same attempt. NotFound as for Ack.
  absl::Status Progress(uint32_t client, uint64_t delivery_id, int64_t now);

  // Runs every timer due at `now`, earliest first: an ack wait that ran out
  // counts as a failed delivery (expired), frees its capacity, and the
  // message is redelivered after the backoff (counted from the deadline, not
  // from `now`) or dead-lettered at max_deliver ("max_deliver after
  // ack_wait"); a redelivery that is due is sent as Nack describes. Cheap
  // when nothing is due.
  void Tick(int64_t now, std::vector<Send>* sends,
            std::vector<DeadLetter>* dead);

  // The earliest time at which Tick has work, or INT64_MAX if none: the loop
  // may sleep until then. Discards cancelled timers from the front of the
  // heap and corrects an early one (hence not const); O(log consumers) at
  // worst, amortized O(1) per timer.
  int64_t NextDeadline();

  // Gauges.
  size_t in_flight() const { return in_flight_; }
  size_t queued() const { return queued_; }    // consumer queues + backlogs
  size_t delayed() const { return delayed_; }  // waiting out a backoff/delay
  size_t consumer_count() const { return consumers_by_key_.size(); }
  size_t group_count() const { return groups_by_name_.size(); }
  // Messages in a group's backlog (0 for an unknown group).
  size_t backlog(std::string_view group) const;
  std::optional<ConsumerStats> consumer_stats(uint32_t client,
                                              uint64_t sid) const;
  const Counters& counters() const { return counters_; }
  // For tests: whether every group's count of members with capacity is
  // what its members say.
  bool CapacityCountsHold() const;

 private:
  using Key = std::pair<uint32_t, uint64_t>;  // (client, sid)
  absl::Status AddConsumer(uint32_t client, uint64_t sid,
                           std::string_view pattern, std::string_view group,
                           const AckPolicy& policy, int64_t now,
                           std::vector<Send>* sends, bool placeholder);
  static constexpr uint32_t kNone = ~uint32_t{0};

  // A message waiting for capacity; `attempts` deliveries were made before.
  // `seq` orders messages by Offer: one coming back to the head of a line is
  // put among the others that came back in that order, not reversed.
  // `pattern_gen`: in a group's backlog, the group's pattern_gen when the
  // message was admitted if its members then all had one pattern (which
  // the message matches), else 0: while the group's pattern_gen is
  // unchanged, every member matches it without a pattern match.
  struct Waiting {
    MessageRef message;
    uint64_t seq;
    uint32_t attempts;
    uint32_t pattern_gen = 0;
  };
  // A line of messages waiting for capacity, in the order they are handed
  // out. Its nodes come from MessageArena (arena_allocator.h: a burst held
  // here faulted in fresh heap pages, and fragmented the heap, before).
  using WaitingLine = std::deque<Waiting, ArenaAllocator<Waiting>>;

  // A message in flight (delivered, not yet acked), or waiting out a
  // backoff before its next delivery. Slots are reused through free_entries_.
  struct Entry {
    MessageRef message;        // null while the slot is free
    uint64_t seq = 0;          // Waiting::seq
    uint64_t delivery_id = 0;  // in flight: its current delivery id
    // Waiting: seq of its live redelivery timer (0: none). In flight: 0, the
    // consumer's timer covers it.
    uint64_t timer = 0;
    int64_t deadline = 0;  // ack-wait deadline, or redelivery due time
    // In flight: the holder. Waiting: the consumer to return to, or in a
    // group the member it left (to prefer another), kNone if gone.
    uint32_t consumer = kNone;
    uint32_t group = kNone;
    uint32_t attempt = 0;  // deliveries made so far
    bool in_flight = false;
    // The list of `consumer` this entry is on: its in-flight list (deadline
    // order) while in flight, else its waiting list (delivery order).
    uint32_t prev = kNone;
    uint32_t next = kNone;
  };

  // The two lists of entries a consumer names.
  struct EntryList {
    uint32_t head = kNone;
    uint32_t tail = kNone;
  };

  struct Consumer {
    bool live = false;
    bool leaving = false;  // being removed: never chosen
    uint32_t client = 0;
    uint64_t sid = 0;
    uint32_t group = kNone;
    uint32_t in_flight = 0;
    std::string pattern;
    AckPolicy policy;
    // In flight here, earliest ack-wait deadline first: delivery order, an
    // entry moving to the tail on PROGRESS (now + ack_wait_ms is never
    // earlier than a deadline set before).
    EntryList in_flight_list;
    // Waiting out a backoff to come back here (or, in a group, having left
    // here), in the order they failed.
    EntryList waiting_list;
    // While in_flight_list is not empty: seq of a live timer at or before
    // its head's deadline (0: none).
    uint64_t timer = 0;
    WaitingLine queue;  // not in a group only
    uint64_t delivered = 0;
    uint64_t acks = 0;
  };

  struct Group {
    std::string name;
    AckPolicy policy;               // max_deliver, max_queued, backoff apply
    std::vector<uint32_t> members;  // in joining order
    size_t cursor = 0;              // round robin: next member to try
    WaitingLine backlog;
    uint32_t delayed = 0;  // entries waiting to be redelivered to the group
    // While `uniform`, every member's pattern is `pattern` (the usual work
    // queue: workers alike). pattern_gen changes whenever that stops being
    // true or `pattern` changes (UpdateGroupPattern); a group without
    // members keeps both, so a worker that rejoins with the same pattern
    // finds its backlog still known to match.
    bool uniform = false;
    uint32_t pattern_gen = 1;
    std::string pattern;
    // Members not leaving that have capacity: PickMember looks no further
    // when there are none (a work queue whose workers are all busy).
    uint32_t with_capacity = 0;
  };

  bool HasCapacity(const Consumer& c) const {
    return c.in_flight < c.policy.max_in_flight;
  }
  // The policy that governs a message's retries (the group's in a group).
  const AckPolicy& RetryPolicy(uint32_t consumer, uint32_t group) const {
    return group != kNone ? groups_[group].policy : consumers_[consumer].policy;
  }
  // The consumer number of (client, sid), or kNone. Remembers the last few
  // found: the routing path asks for the same subscriptions message after
  // message (one, or the members of a queue group in turn).
  uint32_t FindConsumer(uint32_t client, uint64_t sid) const {
    const Key key{client, sid};
    for (const Found& f : found_) {
      if (f.consumer != kNone && f.key == key) return f.consumer;
    }
    auto it = consumers_by_key_.find(key);
    if (it == consumers_by_key_.end()) return kNone;
    found_[found_next_++ % found_.size()] = Found{key, it->second};
    return it->second;
  }
  // The slot of the in-flight entry of `delivery_id` at `client`, or kNone.
  uint32_t FindInFlight(uint32_t client, uint64_t delivery_id) const;

  uint32_t NewEntry(MessageRef message, uint64_t seq, uint32_t attempts,
                    uint32_t group);
  void FreeEntry(uint32_t slot);
  // The list of consumer `c` that entry `slot` belongs on (by in_flight).
  EntryList& ListOf(uint32_t c, const Entry& e) {
    return e.in_flight ? consumers_[c].in_flight_list
                       : consumers_[c].waiting_list;
  }
  // Appends `slot` to the tail of ListOf(c, entry).
  void Link(uint32_t c, uint32_t slot);
  void Unlink(uint32_t slot);
  // Sets waiting entry `slot`'s redelivery timer.
  void Schedule(uint32_t slot, int64_t when);
  void PushTimer(uint32_t key, int64_t when, uint64_t* seq);
  // Arms consumer `c`'s ack-wait timer for `when` unless one is live.
  void ArmConsumerTimer(uint32_t c, int64_t when) {
    if (consumers_[c].timer == 0) {
      PushTimer(c | kConsumerTimer, when, &consumers_[c].timer);
    }
  }
  // Drops consumer `c`'s timer and arms one for its in-flight head's
  // deadline, if anything is in flight.
  void RearmConsumerTimer(uint32_t c);
  // Timer keys (TimerQueue::Timer::slot): an entry's slot, or a consumer's
  // number with this bit set.
  static constexpr uint32_t kConsumerTimer = uint32_t{1} << 31;

  // Sends entry `slot` to `consumer`. REQUIRES: it has capacity.
  void Deliver(uint32_t consumer, uint32_t slot, int64_t now,
               std::vector<Send>* sends);
  void DeliverWaiting(uint32_t consumer, Waiting waiting, int64_t now,
                      std::vector<Send>* sends);
  // Ends the in-flight state of `slot` (nack, expiry, removal): the id is
  // forgotten, the holder's capacity freed, and the entry moves to the
  // holder's waiting list.
  void EndInFlight(uint32_t slot);
  // EndInFlight, but the entry is left on no list (about to be freed or
  // handed on). Returns the consumer that held it.
  uint32_t ForgetInFlight(uint32_t slot);
  // The timer of consumer `c` fired at `now`: expires its earliest in-flight
  // entry if that is due, and re-arms for the next.
  void ConsumerTimerFired(uint32_t c, int64_t now, std::vector<Send>* sends,
                          std::vector<DeadLetter>* dead);
  // The message failed at delivery `attempt`: dead letter at max_deliver
  // (freeing the slot), else wait `delay` ms from `from` (or the backoff).
  void Retry(uint32_t slot, std::optional<uint32_t> delay_ms, int64_t from,
             std::string_view reason, int64_t now, std::vector<Send>* sends,
             std::vector<DeadLetter>* dead);
  // A waiting entry is due: deliver it or put it at the head of the line.
  void Redeliver(uint32_t slot, int64_t now, std::vector<Send>* sends);
  // Puts entry `slot`'s message back at the head of `line` (freeing the
  // slot), after the messages there that were offered before it.
  void ReturnToLine(uint32_t slot, WaitingLine* line);
  // Fills `consumer`'s free capacity from its queue or its group's backlog.
  void Refill(uint32_t consumer, int64_t now, std::vector<Send>* sends);
  // A member of `group` other than `avoid`, not leaving, with capacity,
  // whose pattern matches `topic`; round robin. kNone if there is none.
  // `matches_all`: the caller knows every member matches `topic` (no
  // pattern match is made).
  uint32_t PickMember(uint32_t group, uint32_t avoid, std::string_view topic,
                      bool matches_all = false);
  // Recomputes group `g`'s uniform/pattern/pattern_gen after its members
  // changed.
  void UpdateGroupPattern(uint32_t g);
  // Whether backlog message `w` of group `gr` is known to match every
  // member's pattern.
  static bool MatchesAllMembers(const Group& gr, const Waiting& w) {
    return gr.uniform && w.pattern_gen == gr.pattern_gen;
  }
  void DeadLetterMessage(MessageRef message, uint32_t consumer,
                         std::string_view reason, uint32_t attempts,
                         std::vector<DeadLetter>* dead);
  // Marks consumer `c` as leaving (never chosen again), before
  // RemoveConsumerAt.
  void MarkLeaving(uint32_t c);
  size_t RemoveConsumerAt(uint32_t consumer, int64_t now,
                          std::vector<Send>* sends,
                          std::vector<DeadLetter>* dead);
  // Forgets a group with neither members nor messages.
  void MaybeForgetGroup(uint32_t group);
  // Pops cancelled timers off the top of the heap, and moves an early
  // consumer timer there to its exact time.
  void PruneTimers();
  bool TimerLive(const TimerQueue::Timer& t) const {
    return (t.slot & kConsumerTimer) != 0
               ? consumers_[t.slot & ~kConsumerTimer].timer == t.seq
               : entries_[t.slot].timer == t.seq;
  }

  SplitMix64 random_;
  uint64_t next_delivery_id_ = 1;
  uint64_t next_seq_ = 1;

  std::vector<Consumer> consumers_;  // indexed by consumer number
  std::vector<uint32_t> free_consumers_;
  absl::flat_hash_map<Key, uint32_t> consumers_by_key_;
  // FindConsumer's last answers (consumer kNone: none); forgotten when a
  // consumer goes.
  struct Found {
    Key key{0, 0};
    uint32_t consumer = kNone;
  };
  mutable std::array<Found, 4> found_{};
  mutable uint32_t found_next_ = 0;
  absl::flat_hash_map<uint32_t, std::vector<uint32_t>> consumers_by_client_;

  std::vector<Group> groups_;
  std::vector<uint32_t> free_groups_;
  absl::flat_hash_map<std::string, uint32_t> groups_by_name_;

  std::vector<Entry> entries_;  // indexed by slot
  std::vector<uint32_t> free_entries_;
  InFlightIndex in_flight_by_id_;
  TimerQueue timers_;
  std::vector<uint32_t> scratch_;  // RemoveConsumerAt's returning entries

  size_t in_flight_ = 0;
  size_t queued_ = 0;
  size_t delayed_ = 0;
  Counters counters_;
};

}  // namespace sift::delivery

#endif  // SIFT_BROKER_DELIVERY_DELIVERIES_H_
