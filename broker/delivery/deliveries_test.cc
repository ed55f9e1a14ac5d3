#include "broker/delivery/deliveries.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "broker/delivery/message_arena.h"
#include "broker/topic/topic.h"
#include "gtest/gtest.h"

namespace sift::delivery {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

// Send::message is a plain pointer, valid while its delivery is in flight;
// the tests read Sends after their deliveries ended, so every message made
// here is kept for the life of the test binary.
MessageRef Msg(std::string topic, std::string payload) {
  static auto* const kept = new std::vector<MessageRef>;
  kept->push_back(StoredMessage::Make(topic, "", "", payload));
  return kept->back();
}

// Exact timings: ack wait 1 s, backoff 100, 200, 400 ... ms without jitter,
// three deliveries at most.
AckPolicy TestPolicy(uint32_t max_in_flight = 10, uint32_t max_queued = 100) {
  AckPolicy p;
  p.ack_wait_ms = 1000;
  p.max_deliver = 3;
  p.max_in_flight = max_in_flight;
  p.max_queued = max_queued;
  p.backoff.initial_ms = 100;
  p.backoff.multiplier = 2.0;
  p.backoff.max_ms = 10000;
  p.backoff.jitter = 0.0;
  return p;
}

// A fake clock the tests advance, and the outputs collected since the last
// Take*().
class DeliveriesTest : public ::testing::Test {
 protected:
  void Add(uint32_t client, uint64_t sid, std::string_view pattern,
           std::string_view group = "",
           const AckPolicy& policy = TestPolicy()) {
    ASSERT_TRUE(
        d_.AddConsumer(client, sid, pattern, group, policy, now_, &sends_)
            .ok());
  }
  void Offer(uint32_t client, uint64_t sid, const MessageRef& m) {
    ASSERT_TRUE(d_.Offer(client, sid, m, now_, &sends_, &dead_).ok());
  }
  absl::Status Ack(uint32_t client, uint64_t id) {
    return d_.Ack(client, id, now_, &sends_);
  }
  absl::Status Nack(uint32_t client, uint64_t id,
                    std::optional<uint32_t> delay = std::nullopt) {
    return d_.Nack(client, id, delay, now_, &sends_, &dead_);
  }
  // Moves the clock to `t` and runs the timers.
  void TickAt(int64_t t) {
    now_ = t;
    d_.Tick(now_, &sends_, &dead_);
  }
  void Advance(int64_t ms) { TickAt(now_ + ms); }

  std::vector<Send> TakeSends() { return std::exchange(sends_, {}); }
  std::vector<DeadLetter> TakeDead() { return std::exchange(dead_, {}); }
  // The one Send made since the last Take, checked.
  Send TakeOne() {
    std::vector<Send> s = TakeSends();
    EXPECT_EQ(s.size(), 1u);
    return s.empty() ? Send{} : s[0];
  }
  static std::vector<std::string> Payloads(const std::vector<Send>& sends) {
    std::vector<std::string> out;
    for (const Send& s : sends) out.emplace_back(s.message->payload());
    return out;
  }

  Deliveries d_{1};
  int64_t now_ = 1000000;
  std::vector<Send> sends_;
  std::vector<DeadLetter> dead_;
};

// --- Stored messages ---

// MakeQueued keeps the fields as Make does, in MessageArena; the last
// reference's release gives the block back (its chunk goes once the thread
// that bumped in it is done with it). A message over the arena's block size
// comes from the heap.
TEST(StoredMessageTest, MakeQueuedKeepsTheFieldsInTheArena) {
  const MessageArena::Stats before = MessageArena::stats();
  std::thread([] {
    MessageRef m = StoredMessage::MakeQueued("orders.eu", "_INBOX.1",
                                             "\x01h", "payload", 7);
    EXPECT_EQ(m->topic(), "orders.eu");
    EXPECT_EQ(m->reply_to(), "_INBOX.1");
    EXPECT_EQ(m->headers(), "\x01h");
    EXPECT_EQ(m->payload(), "payload");
    EXPECT_EQ(m->topic_slot, 7u);
    const std::string big(MessageArena::kMaxBlockBytes, 'x');
    MessageRef large = StoredMessage::MakeQueued("t", "", "", big);
    EXPECT_EQ(large->payload(), big);
    MessageRef copy = m;
    m.reset();
    EXPECT_EQ(copy->payload(), "payload");
  }).join();
  const MessageArena::Stats after = MessageArena::stats();
  EXPECT_EQ(after.chunks_in_use, before.chunks_in_use);
  EXPECT_EQ(after.live_bytes, before.live_bytes);
}

// --- Consumers ---

TEST_F(DeliveriesTest, AddConsumerChecksAndEmptyTracksConsumers) {
  EXPECT_TRUE(d_.empty());
  EXPECT_FALSE(d_.IsConsumer(1, 1));
  Add(1, 1, "a.>");
  EXPECT_FALSE(d_.empty());
  EXPECT_TRUE(d_.IsConsumer(1, 1));
  EXPECT_FALSE(d_.IsConsumer(1, 2));
  EXPECT_EQ(d_.AddConsumer(1, 1, "a.>", "", TestPolicy(), now_, &sends_).code(),
            absl::StatusCode::kAlreadyExists);

  AckPolicy bad = TestPolicy();
  bad.max_in_flight = 0;
  EXPECT_EQ(d_.AddConsumer(1, 2, "a", "", bad, now_, &sends_).code(),
            absl::StatusCode::kInvalidArgument);
  bad = TestPolicy();
  bad.ack_wait_ms = 0;
  EXPECT_EQ(d_.AddConsumer(1, 2, "a", "", bad, now_, &sends_).code(),
            absl::StatusCode::kInvalidArgument);
  bad = TestPolicy();
  bad.backoff.jitter = 2;
  EXPECT_EQ(d_.AddConsumer(1, 2, "a", "", bad, now_, &sends_).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(d_.IsConsumer(1, 2));

  EXPECT_EQ(d_.RemoveConsumer(1, 1, now_, &sends_, &dead_), 0u);
  EXPECT_TRUE(d_.empty());
  EXPECT_EQ(d_.RemoveConsumer(1, 1, now_, &sends_, &dead_), 0u);  // unknown
}

TEST_F(DeliveriesTest, GroupMembersMustAgreeOnTheGroupsPolicy) {
  Add(1, 1, "a", "g");
  AckPolicy other = TestPolicy();
  other.max_in_flight = 3;  // a member's own: fine
  other.ack_wait_ms = 5000;
  Add(2, 1, "a", "g", other);
  other.max_deliver = 9;  // the group's: refused
  EXPECT_EQ(d_.AddConsumer(3, 1, "a", "g", other, now_, &sends_).code(),
            absl::StatusCode::kFailedPrecondition);
  other = TestPolicy();
  other.backoff.initial_ms = 7;
  EXPECT_EQ(d_.AddConsumer(3, 1, "a", "g", other, now_, &sends_).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(d_.group_count(), 1u);
  EXPECT_EQ(d_.consumer_count(), 2u);
}

// The refusal names each group setting that differs, with both values (a
// user trial got one message for every case, naming fields it had not set).
TEST_F(DeliveriesTest, GroupPolicyRefusalNamesWhatDiffers) {
  AckPolicy first;  // the CLI's `--ack --max-deliver 3`
  first.max_deliver = 3;
  Add(1, 1, "wq2.x", "g2", first);
  AckPolicy later;  // `--ack --ack-wait 5s`: ack_wait is each member's own
  later.ack_wait_ms = 5000;
  absl::Status s = d_.AddConsumer(2, 1, "wq2.x", "g2", later, now_, &sends_);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "queue group 'g2' has max_deliver 3 (this subscription: 5, the "
            "default); every member of a group must ask for the same "
            "max_deliver, max_queued and backoff");

  later = first;
  later.max_queued = 10;
  later.backoff.jitter = 0;
  s = d_.AddConsumer(2, 1, "wq2.x", "g2", later, now_, &sends_);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "queue group 'g2' has max_queued 100000 (this subscription: 10) "
            "and backoff_jitter 0.2 (this subscription: 0); every member of a "
            "group must ask for the same max_deliver, max_queued and backoff");

  later = AckPolicy();
  later.backoff.initial_ms = 250;
  later.backoff.multiplier = 1.5;
  s = d_.AddConsumer(2, 1, "wq2.x", "g2", later, now_, &sends_);
  EXPECT_EQ(s.message(),
            "queue group 'g2' has max_deliver 3 (this subscription: 5, the "
            "default), backoff_initial_ms 1000 (this subscription: 250) and "
            "backoff_multiplier 2 (this subscription: 1.5); every member of a "
            "group must ask for the same max_deliver, max_queued and backoff");

  // A declared queue's placeholder is refused the same way, as a declaration.
  later = AckPolicy();
  EXPECT_EQ(d_.AddPlaceholder(9, 1, "wq2.x", "g2", later, now_).message(),
            "queue group 'g2' has max_deliver 3 (this declaration: 5, the "
            "default); every member of a group must ask for the same "
            "max_deliver, max_queued and backoff");
  EXPECT_EQ(d_.consumer_count(), 1u);
}

// The differences alone, as a repeated DECLARE's refusal words them: empty
// when the group would take the policy (ack_wait and max_in_flight are each
// member's own).
TEST(GroupPolicyDifferencesTest, NamesTheGroupSettingsThatDiffer) {
  AckPolicy held;
  held.max_deliver = 3;
  AckPolicy asked = held;
  asked.ack_wait_ms = 5000;
  asked.max_in_flight = 1;
  EXPECT_EQ(GroupPolicyDifferences(held, asked, "this declaration"), "");
  asked.backoff.max_ms = 1000;
  EXPECT_EQ(GroupPolicyDifferences(held, asked, "this declaration"),
            "backoff_max_ms 60000 (this declaration: 1000)");
  // Doubles in the digits that tell them apart (six showed 0.2 for both).
  AckPolicy close = held;
  close.backoff.jitter = 0.20000000001;
  EXPECT_EQ(GroupPolicyDifferences(held, close, "this declaration"),
            "backoff_jitter 0.2 (this declaration: 0.20000000001)");
  asked.max_deliver = 5;
  asked.max_queued = 7;
  EXPECT_EQ(GroupPolicyDifferences(held, asked, "this declaration"),
            "max_deliver 3 (this declaration: 5, the default), max_queued "
            "100000 (this declaration: 7) and backoff_max_ms 60000 (this "
            "declaration: 1000)");
}

// --- Offer, ack, prefetch ---

TEST_F(DeliveriesTest, OfferSendsFirstAttemptWithUniqueIds) {
  Add(7, 3, "orders.>");
  Offer(7, 3, Msg("orders.eu", "m1"));
  Offer(7, 3, Msg("orders.us", "m2"));
  std::vector<Send> s = TakeSends();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].client, 7u);
  EXPECT_EQ(s[0].sid, 3u);
  EXPECT_EQ(s[0].attempt, 1u);
  EXPECT_EQ(s[1].attempt, 1u);
  EXPECT_NE(s[0].delivery_id, s[1].delivery_id);
  EXPECT_NE(s[0].delivery_id, 0u);
  EXPECT_EQ(s[0].message->payload(), "m1");
  EXPECT_EQ(d_.in_flight(), 2u);
  EXPECT_EQ(d_.NextDeadline(), now_ + 1000);
  EXPECT_EQ(d_.counters().delivered, 2u);
}

TEST_F(DeliveriesTest, OfferToANonConsumerIsNotFound) {
  EXPECT_EQ(d_.Offer(1, 1, Msg("a", "x"), now_, &sends_, &dead_).code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(sends_.empty());
  EXPECT_TRUE(dead_.empty());
}

TEST_F(DeliveriesTest, PrefetchBoundsInFlightAndAckPullsTheQueueInOrder) {
  Add(1, 1, "t", "", TestPolicy(/*max_in_flight=*/2));
  for (int i = 0; i < 5; ++i) Offer(1, 1, Msg("t", "m" + std::to_string(i)));
  std::vector<Send> s = TakeSends();
  EXPECT_EQ(Payloads(s), (std::vector<std::string>{"m0", "m1"}));
  EXPECT_EQ(d_.in_flight(), 2u);
  EXPECT_EQ(d_.queued(), 3u);
  EXPECT_EQ(d_.consumer_stats(1, 1)->queued, 3u);

  ASSERT_TRUE(Ack(1, s[1].delivery_id).ok());
  Send next = TakeOne();
  EXPECT_EQ(next.message->payload(), "m2");
  EXPECT_EQ(next.attempt, 1u);
  ASSERT_TRUE(Ack(1, s[0].delivery_id).ok());
  EXPECT_EQ(TakeOne().message->payload(), "m3");
  EXPECT_EQ(d_.in_flight(), 2u);
  EXPECT_EQ(d_.queued(), 1u);
  EXPECT_EQ(d_.counters().acks, 2u);
  EXPECT_EQ(d_.consumer_stats(1, 1)->in_flight, 2u);
  EXPECT_EQ(d_.consumer_stats(1, 1)->acks, 2u);
  EXPECT_EQ(d_.consumer_stats(1, 1)->max_in_flight, 2u);
}

// A Send's message is only the caller's to read while its delivery is in
// flight; InFlight tells, also once the entry's slot serves another delivery.
TEST_F(DeliveriesTest, InFlightTellsWhetherASendsDeliveryGoesOn) {
  Add(1, 1, "t", "", TestPolicy(/*max_in_flight=*/1));
  Offer(1, 1, Msg("t", "a"));
  Offer(1, 1, Msg("t", "b"));  // queued
  const Send a = TakeOne();
  EXPECT_TRUE(d_.InFlight(a));
  ASSERT_TRUE(Ack(1, a.delivery_id).ok());
  const Send b = TakeOne();  // reuses a's slot
  EXPECT_EQ(b.slot, a.slot);
  EXPECT_FALSE(d_.InFlight(a));
  EXPECT_TRUE(d_.InFlight(b));
  ASSERT_TRUE(Nack(1, b.delivery_id, 0).ok());  // redelivered at once
  const Send b2 = TakeOne();
  EXPECT_FALSE(d_.InFlight(b));
  EXPECT_TRUE(d_.InFlight(b2));
  EXPECT_EQ(d_.RemoveConsumer(1, 1, now_, &sends_, &dead_), 1u);
  EXPECT_FALSE(d_.InFlight(b2));
}

TEST_F(DeliveriesTest, FullQueueDeadLettersAsQueueFull) {
  Add(1, 1, "t", "", TestPolicy(/*max_in_flight=*/1, /*max_queued=*/2));
  for (int i = 0; i < 5; ++i) Offer(1, 1, Msg("t", "m" + std::to_string(i)));
  EXPECT_EQ(TakeSends().size(), 1u);
  EXPECT_EQ(d_.queued(), 2u);
  std::vector<DeadLetter> dead = TakeDead();
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(dead[0].message->payload(), "m3");
  EXPECT_EQ(dead[1].message->payload(), "m4");
  EXPECT_EQ(dead[0].reason, kReasonQueueFull);
  EXPECT_EQ(dead[0].attempts, 0u);
  EXPECT_EQ(dead[0].client, 1u);
  EXPECT_EQ(dead[0].sid, 1u);
  EXPECT_EQ(d_.counters().dead_letters, 2u);
}

TEST_F(DeliveriesTest, MaxQueuedZeroDeadLettersWhatFindsNoCapacity) {
  Add(1, 1, "t", "", TestPolicy(/*max_in_flight=*/1, /*max_queued=*/0));
  Offer(1, 1, Msg("t", "a"));
  Offer(1, 1, Msg("t", "b"));
  EXPECT_EQ(TakeSends().size(), 1u);
  ASSERT_EQ(TakeDead().size(), 1u);
}

TEST_F(DeliveriesTest, UnknownAckedAndForeignIdsAreNotFound) {
  Add(1, 1, "t");
  Add(2, 1, "t");
  Offer(1, 1, Msg("t", "x"));
  const Send s = TakeOne();
  EXPECT_EQ(Ack(1, 999999).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Ack(1, 0).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Ack(2, s.delivery_id).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Nack(2, s.delivery_id).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(d_.Progress(2, s.delivery_id, now_).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(d_.in_flight(), 1u);  // untouched by the foreign client
  EXPECT_TRUE(Ack(1, s.delivery_id).ok());
  EXPECT_EQ(Ack(1, s.delivery_id).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Nack(1, s.delivery_id).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(d_.Progress(1, s.delivery_id, now_).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(d_.counters().acks, 1u);
  EXPECT_EQ(d_.counters().nacks, 0u);
}

// --- Ack wait, backoff, progress ---

TEST_F(DeliveriesTest, AckWaitExpiryRedeliversAfterTheBackoffAsAttemptTwo) {
  Add(1, 1, "t");
  const int64_t t0 = now_;
  Offer(1, 1, Msg("t", "x"));
  const Send first = TakeOne();
  EXPECT_EQ(d_.NextDeadline(), t0 + 1000);

  TickAt(t0 + 999);
  EXPECT_TRUE(TakeSends().empty());
  EXPECT_EQ(d_.counters().expired, 0u);

  TickAt(t0 + 1000);  // expired: waits out 100 ms of backoff
  EXPECT_TRUE(TakeSends().empty());
  EXPECT_EQ(d_.counters().expired, 1u);
  EXPECT_EQ(d_.in_flight(), 0u);
  EXPECT_EQ(d_.delayed(), 1u);
  EXPECT_EQ(d_.NextDeadline(), t0 + 1100);
  EXPECT_EQ(Ack(1, first.delivery_id).code(), absl::StatusCode::kNotFound);

  TickAt(t0 + 1099);
  EXPECT_TRUE(TakeSends().empty());
  TickAt(t0 + 1100);
  const Send second = TakeOne();
  EXPECT_EQ(second.attempt, 2u);
  EXPECT_NE(second.delivery_id, first.delivery_id);
  EXPECT_EQ(second.message, first.message);  // the same stored message
  EXPECT_EQ(d_.NextDeadline(), t0 + 2100);
  EXPECT_EQ(d_.counters().redeliveries, 1u);
  EXPECT_EQ(Ack(1, first.delivery_id).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Ack(1, second.delivery_id).ok());
  EXPECT_EQ(d_.NextDeadline(), kNever);
}

TEST_F(DeliveriesTest, BackoffIsCountedFromTheDeadlineAndGrows) {
  AckPolicy p = TestPolicy();
  p.max_deliver = 0;  // unlimited
  Add(1, 1, "t", "", p);
  const int64_t t0 = now_;
  Offer(1, 1, Msg("t", "x"));
  TakeSends();
  // Tick late: 1 s + 500 ms after the first deadline. The backoff (100 ms)
  // runs from the deadline, so the redelivery is already due.
  TickAt(t0 + 1500);
  Send s = TakeOne();
  EXPECT_EQ(s.attempt, 2u);
  EXPECT_EQ(d_.NextDeadline(), t0 + 1500 + 1000);
  // Then 200, 400, 800 ... ms after each deadline.
  int64_t deadline = t0 + 2500;
  uint32_t backoff = 200;
  for (uint32_t attempt = 3; attempt <= 12; ++attempt) {
    TickAt(deadline);
    EXPECT_TRUE(TakeSends().empty());
    EXPECT_EQ(d_.NextDeadline(), deadline + backoff);
    TickAt(deadline + backoff);
    s = TakeOne();
    EXPECT_EQ(s.attempt, attempt);
    deadline += backoff + 1000;
    backoff = std::min<uint32_t>(backoff * 2, 10000);
  }
  EXPECT_TRUE(TakeDead().empty());
  EXPECT_EQ(d_.counters().expired, 11u);
}

TEST_F(DeliveriesTest, ExpiryFreesCapacityForTheNextQueuedMessage) {
  Add(1, 1, "t", "", TestPolicy(/*max_in_flight=*/1));
  Offer(1, 1, Msg("t", "a"));
  Offer(1, 1, Msg("t", "b"));
  EXPECT_EQ(TakeOne().message->payload(), "a");
  Advance(1000);  // a expires; b takes the slot
  const Send b = TakeOne();
  EXPECT_EQ(b.message->payload(), "b");
  Advance(100);  // a is due but there is no capacity: head of the queue
  EXPECT_TRUE(TakeSends().empty());
  EXPECT_EQ(d_.queued(), 1u);
  ASSERT_TRUE(Ack(1, b.delivery_id).ok());
  const Send a2 = TakeOne();
  EXPECT_EQ(a2.message->payload(), "a");
  EXPECT_EQ(a2.attempt, 2u);
}

TEST_F(DeliveriesTest, RedeliveriesWithoutCapacityKeepTheirOrderAtTheHead) {
  Add(1, 1, "t", "", TestPolicy(/*max_in_flight=*/3));
  for (const char* p : {"a", "b", "c", "d", "e", "f"}) Offer(1, 1, Msg("t", p));
  EXPECT_EQ(Payloads(TakeSends()), (std::vector<std::string>{"a", "b", "c"}));
  Advance(1000);  // a, b, c expire together; d, e, f take the slots
  std::vector<Send> def = TakeSends();
  EXPECT_EQ(Payloads(def), (std::vector<std::string>{"d", "e", "f"}));
  Offer(1, 1, Msg("t", "g"));  // queued behind
  Advance(100);                // a, b, c due: no capacity
  EXPECT_EQ(d_.queued(), 4u);
  for (const Send& s : def) ASSERT_TRUE(Ack(1, s.delivery_id).ok());
  std::vector<Send> s = TakeSends();
  EXPECT_EQ(Payloads(s), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(s[0].attempt, 2u);
  ASSERT_TRUE(Ack(1, s[0].delivery_id).ok());
  EXPECT_EQ(TakeOne().message->payload(), "g");
}

TEST_F(DeliveriesTest, ProgressRestartsTheAckWait) {
  Add(1, 1, "t");
  const int64_t t0 = now_;
  Offer(1, 1, Msg("t", "x"));
  const Send s = TakeOne();
  TickAt(t0 + 900);
  ASSERT_TRUE(d_.Progress(1, s.delivery_id, now_).ok());
  EXPECT_EQ(d_.NextDeadline(), t0 + 1900);
  TickAt(t0 + 1000);  // the old deadline: nothing
  EXPECT_EQ(d_.counters().expired, 0u);
  TickAt(t0 + 1800);
  ASSERT_TRUE(d_.Progress(1, s.delivery_id, now_).ok());
  TickAt(t0 + 2700);
  EXPECT_EQ(d_.counters().expired, 0u);
  EXPECT_EQ(d_.counters().progress, 2u);
  TickAt(t0 + 2800);  // 1 s after the last progress
  EXPECT_EQ(d_.counters().expired, 1u);
  EXPECT_EQ(d_.Progress(1, s.delivery_id, now_).code(),
            absl::StatusCode::kNotFound);
}

// --- Nack ---

TEST_F(DeliveriesTest, NackWithoutDelayWaitsTheBackoff) {
  Add(1, 1, "t");
  Offer(1, 1, Msg("t", "x"));
  const Send s = TakeOne();
  ASSERT_TRUE(Nack(1, s.delivery_id).ok());
  EXPECT_TRUE(TakeSends().empty());
  EXPECT_EQ(d_.in_flight(), 0u);
  EXPECT_EQ(d_.delayed(), 1u);
  EXPECT_EQ(d_.NextDeadline(), now_ + 100);
  Advance(99);
  EXPECT_TRUE(TakeSends().empty());
  Advance(1);
  const Send again = TakeOne();
  EXPECT_EQ(again.attempt, 2u);
  ASSERT_TRUE(Nack(1, again.delivery_id).ok());
  EXPECT_EQ(d_.NextDeadline(), now_ + 200);  // backoff for attempt 2
  EXPECT_EQ(d_.counters().nacks, 2u);
}

TEST_F(DeliveriesTest, NackWithADelayWaitsExactlyThatLong) {
  Add(1, 1, "t");
  Offer(1, 1, Msg("t", "x"));
  const Send s = TakeOne();
  ASSERT_TRUE(Nack(1, s.delivery_id, 5000).ok());
  EXPECT_EQ(d_.NextDeadline(), now_ + 5000);
  Advance(4999);
  EXPECT_TRUE(TakeSends().empty());
  Advance(1);
  EXPECT_EQ(TakeOne().attempt, 2u);
}

TEST_F(DeliveriesTest, NackWithZeroDelayRedeliversAtOnceAheadOfTheQueue) {
  Add(1, 1, "t", "", TestPolicy(/*max_in_flight=*/1));
  Offer(1, 1, Msg("t", "a"));
  Offer(1, 1, Msg("t", "b"));
  const Send a = TakeOne();
  ASSERT_TRUE(Nack(1, a.delivery_id, 0).ok());
  const Send again = TakeOne();
  EXPECT_EQ(again.message->payload(), "a");
  EXPECT_EQ(again.attempt, 2u);
  EXPECT_EQ(d_.queued(), 1u);
}

TEST_F(DeliveriesTest, NackFreesCapacityForTheQueueWhileTheMessageWaits) {
  Add(1, 1, "t", "", TestPolicy(/*max_in_flight=*/1));
  Offer(1, 1, Msg("t", "a"));
  Offer(1, 1, Msg("t", "b"));
  const Send a = TakeOne();
  ASSERT_TRUE(Nack(1, a.delivery_id).ok());
  const Send b = TakeOne();
  EXPECT_EQ(b.message->payload(), "b");
  Advance(100);  // a due, no capacity
  EXPECT_TRUE(TakeSends().empty());
  ASSERT_TRUE(Ack(1, b.delivery_id).ok());
  EXPECT_EQ(TakeOne().message->payload(), "a");
}

// --- max_deliver ---

TEST_F(DeliveriesTest, MaxDeliverAfterAckWaitDeadLetters) {
  Add(1, 1, "t");
  Offer(1, 1, Msg("t", "x"));
  TakeSends();
  Advance(1000);  // attempt 1 expires
  Advance(100);
  EXPECT_EQ(TakeOne().attempt, 2u);
  Advance(1000);
  Advance(200);
  EXPECT_EQ(TakeOne().attempt, 3u);
  Advance(1000);  // attempt 3 of 3 expires: dead
  EXPECT_TRUE(TakeSends().empty());
  std::vector<DeadLetter> dead = TakeDead();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].reason, kReasonMaxDeliverAfterAckWait);
  EXPECT_EQ(dead[0].attempts, 3u);
  EXPECT_EQ(dead[0].client, 1u);
  EXPECT_EQ(dead[0].sid, 1u);
  EXPECT_EQ(dead[0].message->payload(), "x");
  EXPECT_EQ(d_.in_flight() + d_.queued() + d_.delayed(), 0u);
  EXPECT_EQ(d_.NextDeadline(), kNever);
  EXPECT_EQ(d_.counters().expired, 3u);
  EXPECT_EQ(d_.counters().dead_letters, 1u);
}

TEST_F(DeliveriesTest, MaxDeliverAfterNackDeadLettersAtOnce) {
  Add(1, 1, "t");
  Offer(1, 1, Msg("t", "x"));
  for (uint32_t attempt = 1; attempt <= 2; ++attempt) {
    const Send s = TakeOne();
    EXPECT_EQ(s.attempt, attempt);
    ASSERT_TRUE(Nack(1, s.delivery_id, 0).ok());
  }
  const Send last = TakeOne();
  EXPECT_EQ(last.attempt, 3u);
  ASSERT_TRUE(Nack(1, last.delivery_id, 60000).ok());  // delay is moot
  std::vector<DeadLetter> dead = TakeDead();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].reason, kReasonMaxDeliverAfterNack);
  EXPECT_EQ(dead[0].attempts, 3u);
  EXPECT_EQ(d_.NextDeadline(), kNever);
}

TEST_F(DeliveriesTest, MaxDeliverZeroIsUnlimited) {
  AckPolicy p = TestPolicy();
  p.max_deliver = 0;
  Add(1, 1, "t", "", p);
  Offer(1, 1, Msg("t", "x"));
  for (uint32_t attempt = 1; attempt <= 50; ++attempt) {
    const Send s = TakeOne();
    ASSERT_EQ(s.attempt, attempt);
    ASSERT_TRUE(Nack(1, s.delivery_id, 0).ok());
  }
  EXPECT_TRUE(TakeDead().empty());
}

// --- Queue groups ---

TEST_F(DeliveriesTest, GroupSkipsAFullMemberRoundRobin) {
  for (uint32_t c = 1; c <= 3; ++c) Add(c, 1, "jobs.>", "w", TestPolicy(1));
  // The router picks member 1 every time; once full it is skipped.
  for (int i = 0; i < 3; ++i)
    Offer(1, 1, Msg("jobs.x", "m" + std::to_string(i)));
  std::vector<Send> s = TakeSends();
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].client, 1u);
  std::set<uint32_t> clients{s[0].client, s[1].client, s[2].client};
  EXPECT_EQ(clients, (std::set<uint32_t>{1, 2, 3}));
  EXPECT_EQ(d_.queued(), 0u);
}

TEST_F(DeliveriesTest, GroupSkipsAMemberWhosePatternDoesNotMatch) {
  Add(1, 1, "jobs.>", "w", TestPolicy(1));
  Add(2, 1, "jobs.eu", "w", TestPolicy(1));  // does not match jobs.us
  Add(3, 1, "jobs.*", "w", TestPolicy(1));
  Offer(1, 1, Msg("jobs.us", "a"));
  Offer(1, 1, Msg("jobs.us", "b"));
  std::vector<Send> s = TakeSends();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].client, 1u);
  EXPECT_EQ(s[1].client, 3u);
  Offer(1, 1, Msg("jobs.us", "c"));  // 2 is free but does not match
  EXPECT_TRUE(TakeSends().empty());
  EXPECT_EQ(d_.backlog("w"), 1u);
}

TEST_F(DeliveriesTest, GroupBacklogWhenAllAreFullDrainsFifoOnAck) {
  Add(1, 1, "q", "w", TestPolicy(1));
  Add(2, 1, "q", "w", TestPolicy(1));
  for (int i = 0; i < 6; ++i) Offer(1, 1, Msg("q", "m" + std::to_string(i)));
  std::vector<Send> s = TakeSends();
  EXPECT_EQ(Payloads(s), (std::vector<std::string>{"m0", "m1"}));
  EXPECT_EQ(d_.backlog("w"), 4u);
  EXPECT_EQ(d_.queued(), 4u);
  EXPECT_EQ(d_.consumer_stats(1, 1)->queued, 0u);  // the group's, not 1's

  std::vector<std::string> order;
  std::map<uint32_t, uint64_t> held{{s[0].client, s[0].delivery_id},
                                    {s[1].client, s[1].delivery_id}};
  // Members ack alternately; each pulls the backlog's head.
  for (int i = 0; i < 4; ++i) {
    const uint32_t c = 1 + i % 2;
    ASSERT_TRUE(Ack(c, held[c]).ok());
    const Send n = TakeOne();
    EXPECT_EQ(n.client, c);
    held[c] = n.delivery_id;
    order.emplace_back(n.message->payload());
  }
  EXPECT_EQ(order, (std::vector<std::string>{"m2", "m3", "m4", "m5"}));
  EXPECT_EQ(d_.backlog("w"), 0u);
}

TEST_F(DeliveriesTest, GroupBacklogFullDeadLetters) {
  Add(1, 1, "q", "w", TestPolicy(1, /*max_queued=*/1));
  Offer(1, 1, Msg("q", "a"));
  Offer(1, 1, Msg("q", "b"));
  Offer(1, 1, Msg("q", "c"));
  EXPECT_EQ(TakeSends().size(), 1u);
  std::vector<DeadLetter> dead = TakeDead();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].message->payload(), "c");
  EXPECT_EQ(dead[0].reason, kReasonQueueFull);
}

TEST_F(DeliveriesTest, MemberPullsOnlyBacklogMessagesItMatches) {
  Add(1, 1, "jobs.*", "w", TestPolicy(1));
  Add(2, 1, "jobs.eu", "w", TestPolicy(1));
  Offer(1, 1, Msg("jobs.eu", "e0"));  // -> 1
  Offer(2, 1, Msg("jobs.eu", "e1"));  // -> 2
  Offer(1, 1, Msg("jobs.us", "u0"));  // backlog
  Offer(1, 1, Msg("jobs.eu", "e2"));  // backlog
  std::vector<Send> s = TakeSends();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(d_.backlog("w"), 2u);
  ASSERT_TRUE(Ack(2, s[1].delivery_id).ok());  // 2 cannot take u0: takes e2
  EXPECT_EQ(TakeOne().message->payload(), "e2");
  ASSERT_TRUE(Ack(1, s[0].delivery_id).ok());
  EXPECT_EQ(TakeOne().message->payload(), "u0");
}

TEST_F(DeliveriesTest, NackInAGroupGoesToAnotherMember) {
  Add(1, 1, "q", "w");
  Add(2, 1, "q", "w");
  Offer(1, 1, Msg("q", "x"));
  const Send s = TakeOne();
  EXPECT_EQ(s.client, 1u);
  ASSERT_TRUE(Nack(1, s.delivery_id, 0).ok());
  const Send again = TakeOne();
  EXPECT_EQ(again.client, 2u);
  EXPECT_EQ(again.attempt, 2u);
  ASSERT_TRUE(Nack(2, again.delivery_id).ok());  // backoff, then member 1
  Advance(200);
  const Send third = TakeOne();
  EXPECT_EQ(third.client, 1u);
  EXPECT_EQ(third.attempt, 3u);
}

TEST_F(DeliveriesTest, ExpiryInAGroupGoesToAnotherMember) {
  Add(1, 1, "q", "w");
  Add(2, 1, "q", "w");
  Offer(2, 1, Msg("q", "x"));
  EXPECT_EQ(TakeOne().client, 2u);
  Advance(1000);
  Advance(100);
  const Send again = TakeOne();
  EXPECT_EQ(again.client, 1u);
  EXPECT_EQ(again.attempt, 2u);
}

TEST_F(DeliveriesTest, GroupRedeliveryFallsBackToTheSameMember) {
  Add(1, 1, "q", "w", TestPolicy(1));
  Add(2, 1, "q", "w", TestPolicy(1));
  Offer(1, 1, Msg("q", "a"));
  Offer(2, 1, Msg("q", "b"));
  std::vector<Send> s = TakeSends();
  ASSERT_EQ(s.size(), 2u);
  ASSERT_TRUE(Nack(1, s[0].delivery_id, 0).ok());  // 2 is full: back to 1
  const Send again = TakeOne();
  EXPECT_EQ(again.client, 1u);
  EXPECT_EQ(again.attempt, 2u);

  // A lone member gets its own nacks back.
  Add(9, 1, "solo", "alone");
  Offer(9, 1, Msg("solo", "z"));
  const Send z = TakeOne();
  ASSERT_TRUE(Nack(9, z.delivery_id, 0).ok());
  EXPECT_EQ(TakeOne().client, 9u);
}

TEST_F(DeliveriesTest, GroupRedeliveryWithNoCapacityGoesToTheBacklogHead) {
  Add(1, 1, "q", "w", TestPolicy(1));
  Add(2, 1, "q", "w", TestPolicy(1));
  Offer(1, 1, Msg("q", "a"));
  Offer(1, 1, Msg("q", "b"));
  std::vector<Send> s = TakeSends();
  ASSERT_TRUE(Nack(1, s[0].delivery_id).ok());  // a waits 100 ms
  Offer(2, 1, Msg("q", "c"));                   // 1 is free again
  EXPECT_EQ(TakeOne().client, 1u);
  Offer(2, 1, Msg("q", "d"));  // backlog
  Advance(100);                // a due: everyone full, ahead of d
  EXPECT_EQ(d_.backlog("w"), 2u);
  ASSERT_TRUE(Ack(2, s[1].delivery_id).ok());
  const Send a = TakeOne();
  EXPECT_EQ(a.message->payload(), "a");
  EXPECT_EQ(a.attempt, 2u);
}

// --- Consumers leaving ---

TEST_F(DeliveriesTest, RemovedMemberRedeliversItsInFlightToOthers) {
  Add(1, 1, "q", "w", TestPolicy(2));
  Add(2, 1, "q", "w", TestPolicy(5));
  Offer(1, 1, Msg("q", "a"));
  Offer(1, 1, Msg("q", "b"));
  EXPECT_EQ(TakeSends().size(), 2u);
  EXPECT_EQ(d_.RemoveConsumer(1, 1, now_, &sends_, &dead_), 0u);
  std::vector<Send> s = TakeSends();
  EXPECT_EQ(Payloads(s), (std::vector<std::string>{"a", "b"}));
  for (const Send& x : s) {
    EXPECT_EQ(x.client, 2u);
    EXPECT_EQ(x.attempt, 2u);  // every redelivery counts
  }
  EXPECT_FALSE(d_.IsConsumer(1, 1));
  EXPECT_EQ(d_.in_flight(), 2u);
  EXPECT_EQ(d_.counters().dropped, 0u);
}

TEST_F(DeliveriesTest, RemovedMemberWithOthersFullFillsTheBacklogHead) {
  Add(1, 1, "q", "w", TestPolicy(2));
  Add(2, 1, "q", "w", TestPolicy(1));
  Offer(1, 1, Msg("q", "a"));  // -> 1
  Offer(1, 1, Msg("q", "b"));  // -> 1
  Offer(2, 1, Msg("q", "c"));  // -> 2
  Offer(2, 1, Msg("q", "d"));  // backlog
  std::vector<Send> s = TakeSends();
  ASSERT_EQ(s.size(), 3u);
  d_.RemoveConsumer(1, 1, now_, &sends_, &dead_);
  EXPECT_TRUE(TakeSends().empty());
  EXPECT_EQ(d_.backlog("w"), 3u);
  std::vector<std::string> order;
  uint64_t held = s[2].delivery_id;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Ack(2, held).ok());
    const Send n = TakeOne();
    held = n.delivery_id;
    order.push_back(std::string(n.message->payload()) +
                    std::to_string(n.attempt));
  }
  EXPECT_EQ(order, (std::vector<std::string>{"a2", "b2", "d1"}));
}

TEST_F(DeliveriesTest, RemovedMemberAtMaxDeliverDeadLetters) {
  Add(1, 1, "q", "w");
  Add(2, 1, "q", "w");
  Offer(1, 1, Msg("q", "x"));
  Send s = TakeOne();
  ASSERT_TRUE(Nack(1, s.delivery_id, 0).ok());  // -> 2
  s = TakeOne();
  ASSERT_TRUE(Nack(2, s.delivery_id, 0).ok());  // -> 1, attempt 3 of 3
  s = TakeOne();
  EXPECT_EQ(s.client, 1u);
  EXPECT_EQ(s.attempt, 3u);
  d_.RemoveConsumer(1, 1, now_, &sends_, &dead_);
  EXPECT_TRUE(TakeSends().empty());
  std::vector<DeadLetter> dead = TakeDead();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].reason, kReasonMaxDeliverAfterConsumerLeft);
  EXPECT_EQ(dead[0].attempts, 3u);
  EXPECT_EQ(dead[0].client, 1u);
}

TEST_F(DeliveriesTest, RemovedMembersPendingRedeliveryStaysWithTheGroup) {
  Add(1, 1, "q", "w");
  Add(2, 1, "q", "w");
  Offer(1, 1, Msg("q", "x"));
  const Send s = TakeOne();
  ASSERT_TRUE(Nack(1, s.delivery_id).ok());  // waits 100 ms
  d_.RemoveConsumer(1, 1, now_, &sends_, &dead_);
  EXPECT_EQ(d_.delayed(), 1u);
  Advance(100);
  const Send again = TakeOne();
  EXPECT_EQ(again.client, 2u);
  EXPECT_EQ(again.attempt, 2u);
}

TEST_F(DeliveriesTest, RemovedNonGroupConsumerDropsEverythingCounted) {
  Add(1, 1, "t", "", TestPolicy(2));
  for (const char* p : {"a", "b", "c", "d"}) Offer(1, 1, Msg("t", p));
  std::vector<Send> s = TakeSends();
  ASSERT_TRUE(Nack(1, s[0].delivery_id).ok());  // a waits; c goes out
  EXPECT_EQ(TakeSends().size(), 1u);
  EXPECT_EQ(d_.in_flight(), 2u);
  EXPECT_EQ(d_.queued(), 1u);
  EXPECT_EQ(d_.delayed(), 1u);
  EXPECT_EQ(d_.RemoveConsumer(1, 1, now_, &sends_, &dead_), 4u);
  EXPECT_EQ(d_.counters().dropped, 4u);
  EXPECT_EQ(d_.in_flight() + d_.queued() + d_.delayed(), 0u);
  EXPECT_EQ(d_.NextDeadline(), kNever);
  Advance(100000);
  EXPECT_TRUE(TakeSends().empty());
  EXPECT_TRUE(TakeDead().empty());
  EXPECT_TRUE(d_.empty());
}

TEST_F(DeliveriesTest, RemoveClientNeverSendsToItsOwnOtherMembers) {
  Add(1, 1, "q", "w");
  Add(1, 2, "q", "w");  // the same client twice in the group
  Add(1, 3, "t");       // and a plain consumer
  Add(2, 1, "q", "w", TestPolicy(1));
  Offer(1, 1, Msg("q", "a"));
  Offer(1, 2, Msg("q", "b"));
  Offer(1, 3, Msg("t", "c"));
  EXPECT_EQ(TakeSends().size(), 3u);
  EXPECT_EQ(d_.RemoveClient(1, now_, &sends_, &dead_), 1u);  // c dropped
  std::vector<Send> s = TakeSends();
  ASSERT_EQ(s.size(), 1u);  // a to 2; b into the backlog
  EXPECT_EQ(s[0].client, 2u);
  EXPECT_EQ(s[0].message->payload(), "a");
  EXPECT_EQ(d_.backlog("w"), 1u);
  EXPECT_EQ(d_.consumer_count(), 1u);
  EXPECT_EQ(d_.RemoveClient(1, now_, &sends_, &dead_), 0u);
}

TEST_F(DeliveriesTest, JoiningMemberPullsTheBacklog) {
  Add(1, 1, "q", "w", TestPolicy(1));
  for (const char* p : {"a", "b", "c", "d"}) Offer(1, 1, Msg("q", p));
  TakeSends();
  EXPECT_EQ(d_.backlog("w"), 3u);
  Add(2, 1, "q", "w", TestPolicy(2));
  std::vector<Send> s = TakeSends();
  EXPECT_EQ(Payloads(s), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(s[0].client, 2u);
  EXPECT_EQ(d_.backlog("w"), 1u);
}

TEST_F(DeliveriesTest, GroupWithoutMembersKeepsItsMessagesForTheNextOne) {
  Add(1, 1, "q", "w", TestPolicy(1));
  Offer(1, 1, Msg("q", "a"));
  Offer(1, 1, Msg("q", "b"));
  TakeSends();
  d_.RemoveClient(1, now_, &sends_, &dead_);  // a back to the backlog
  EXPECT_TRUE(d_.empty());
  EXPECT_EQ(d_.group_count(), 1u);
  EXPECT_EQ(d_.backlog("w"), 2u);
  // The next member sets the group's policy and takes the work, in order.
  AckPolicy p = TestPolicy(5);
  p.max_deliver = 7;
  Add(3, 1, "q", "w", p);
  std::vector<Send> s = TakeSends();
  EXPECT_EQ(Payloads(s), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(s[0].attempt, 2u);
  EXPECT_EQ(s[1].attempt, 1u);
  for (const Send& x : s) ASSERT_TRUE(Ack(3, x.delivery_id).ok());
  d_.RemoveConsumer(3, 1, now_, &sends_, &dead_);
  EXPECT_EQ(d_.group_count(), 0u);  // forgotten: no members, no messages
}

// --- NextDeadline ---

TEST_F(DeliveriesTest, NextDeadlineIsTheEarliestLiveTimer) {
  EXPECT_EQ(d_.NextDeadline(), kNever);
  AckPolicy slow = TestPolicy();
  slow.ack_wait_ms = 5000;
  Add(1, 1, "t", "", slow);
  Add(2, 1, "t");
  const int64_t t0 = now_;
  Offer(1, 1, Msg("t", "a"));  // deadline t0 + 5000
  const Send a = TakeOne();
  now_ = t0 + 10;
  Offer(2, 1, Msg("t", "b"));  // deadline t0 + 1010
  const Send b = TakeOne();
  EXPECT_EQ(d_.NextDeadline(), t0 + 1010);
  ASSERT_TRUE(Ack(2, b.delivery_id).ok());
  EXPECT_EQ(d_.NextDeadline(), t0 + 5000);
  ASSERT_TRUE(Nack(1, a.delivery_id, 30).ok());
  EXPECT_EQ(d_.NextDeadline(), t0 + 40);
  TickAt(t0 + 40);
  const Send a2 = TakeOne();
  EXPECT_EQ(d_.NextDeadline(), t0 + 5040);
  ASSERT_TRUE(Ack(1, a2.delivery_id).ok());
  EXPECT_EQ(d_.NextDeadline(), kNever);
}

TEST_F(DeliveriesTest, TimerHeapStaysCorrectUnderChurn) {
  // Many offers and acks leave cancelled timers behind; NextDeadline must
  // still name the earliest live one, through compactions.
  Add(1, 1, "t", "", TestPolicy(100000, 0));
  const int64_t t0 = now_;
  Offer(1, 1, Msg("t", "oldest"));
  const Send oldest = TakeOne();
  for (int i = 0; i < 20000; ++i) {
    now_ = t0 + 1 + i / 100;
    Offer(1, 1, Msg("t", "x"));
    ASSERT_TRUE(Ack(1, TakeOne().delivery_id).ok());
  }
  EXPECT_EQ(d_.NextDeadline(), t0 + 1000);
  ASSERT_TRUE(Ack(1, oldest.delivery_id).ok());
  EXPECT_EQ(d_.NextDeadline(), kNever);
  TickAt(t0 + 100000);
  EXPECT_EQ(d_.counters().expired, 0u);
}

// --- Jitter and counters ---

TEST_F(DeliveriesTest, JitteredRedeliveryIsWithinBoundsAndSeedDeterministic) {
  auto run = [](uint64_t seed) {
    Deliveries d(seed);
    std::vector<Send> sends;
    std::vector<DeadLetter> dead;
    AckPolicy p = TestPolicy(1000);
    p.backoff.initial_ms = 1000;
    p.backoff.jitter = 0.5;
    int64_t now = 0;
    EXPECT_TRUE(d.AddConsumer(1, 1, "t", "", p, now, &sends).ok());
    std::vector<int64_t> delays;
    for (int i = 0; i < 200; ++i) {
      EXPECT_TRUE(d.Offer(1, 1, Msg("t", "x"), now, &sends, &dead).ok());
      EXPECT_TRUE(
          d.Nack(1, sends.back().delivery_id, std::nullopt, now, &sends, &dead)
              .ok());
      const int64_t due = d.NextDeadline();  // the only timer
      delays.push_back(due - now);
      now = due;
      d.Tick(now, &sends, &dead);
      EXPECT_EQ(sends.back().attempt, 2u);
      EXPECT_TRUE(d.Ack(1, sends.back().delivery_id, now, &sends).ok());
    }
    return delays;
  };
  const std::vector<int64_t> a = run(5);
  EXPECT_EQ(a, run(5));
  EXPECT_NE(a, run(6));
  std::set<int64_t> distinct(a.begin(), a.end());
  EXPECT_GT(distinct.size(), 50u);
  for (int64_t d : a) {
    EXPECT_GE(d, 500);
    EXPECT_LE(d, 1000);
  }
}

// --- Randomized: nothing lost, nothing twice ---

// Many consumers (plain and in two groups with mixed patterns), messages,
// acks, nacks, progress, expiries and members leaving and joining, in a
// random order from a fixed seed. Checks, as it goes: every Send goes to a
// live consumer whose pattern matches, with a fresh delivery id and the next
// attempt number of its message; no consumer ever holds more than its
// max_in_flight; an ack of anything but a message's latest delivery is
// NotFound; a message is acked at most once and never both acked and
// dead-lettered; NextDeadline always names a timer that does something. At
// the end, with every group staffed and every delivery acked, each offered
// message was acked exactly once or dead-lettered exactly once.
class DeliveriesRandomTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(DeliveriesRandomTest, EveryMessageIsAckedOnceOrDeadLettered) {
  constexpr uint32_t kMaxDeliver = 4;
  std::mt19937_64 rng(GetParam());
  auto chance = [&](int percent) {
    return static_cast<int>(rng() % 100) < percent;
  };
  Deliveries d(GetParam() * 7 + 1);
  int64_t now = 0;

  struct Consumer {
    uint32_t client;
    uint64_t sid;
    std::string pattern;
    std::string group;
    AckPolicy policy;
  };
  std::vector<Consumer> consumers;
  auto policy = [&]() {
    AckPolicy p;
    p.ack_wait_ms = 50 + rng() % 150;
    p.max_deliver = kMaxDeliver;
    p.max_in_flight = 1 + rng() % 4;
    p.max_queued = 15;
    p.backoff.initial_ms = 10;
    p.backoff.multiplier = 2.0;
    p.backoff.max_ms = 200;
    p.backoff.jitter = 0.5;
    return p;
  };
  // Group members share the group's fields (max_deliver, max_queued,
  // backoff); policy() varies only the members' own.
  uint32_t next_client = 1;
  std::vector<Send> sends;
  std::vector<DeadLetter> dead;

  struct Message {
    uint32_t deliveries = 0;
    uint64_t latest_id = 0;
    int acked = 0;
    int dead = 0;
  };
  std::vector<Message> messages;
  absl::flat_hash_set<uint64_t> ids_seen;
  absl::flat_hash_map<uint64_t, size_t> message_of_id;
  std::map<std::string, int> dead_reasons;
  std::vector<std::pair<uint32_t, uint64_t>> outstanding;  // client, id

  auto find = [&](uint32_t client, uint64_t sid) -> const Consumer* {
    for (const Consumer& c : consumers) {
      if (c.client == client && c.sid == sid) return &c;
    }
    return nullptr;
  };
  auto check_outputs = [&]() {
    for (const Send& s : sends) {
      const Consumer* c = find(s.client, s.sid);
      ASSERT_NE(c, nullptr) << "send to a consumer that left";
      ASSERT_TRUE(d.IsConsumer(s.client, s.sid));
      ASSERT_TRUE(topic::PatternMatches(c->pattern, s.message->topic()));
      ASSERT_TRUE(ids_seen.insert(s.delivery_id).second) << "id reused";
      message_of_id[s.delivery_id] =
          std::stoul(std::string(s.message->payload()));
      Message& m = messages[std::stoul(std::string(s.message->payload()))];
      ASSERT_EQ(m.acked, 0);
      ASSERT_EQ(m.dead, 0);
      ASSERT_EQ(s.attempt, m.deliveries + 1);
      ASSERT_LE(s.attempt, kMaxDeliver);
      m.deliveries = s.attempt;
      m.latest_id = s.delivery_id;
      outstanding.emplace_back(s.client, s.delivery_id);
    }
    sends.clear();
    for (const DeadLetter& x : dead) {
      Message& m = messages[std::stoul(std::string(x.message->payload()))];
      ASSERT_EQ(m.acked, 0);
      ASSERT_EQ(m.dead, 0);
      m.dead = 1;
      ++dead_reasons[x.reason];
      if (x.reason == kReasonQueueFull) {
        ASSERT_EQ(x.attempts, 0u);
        ASSERT_EQ(m.deliveries, 0u);
      } else {
        ASSERT_EQ(x.attempts, kMaxDeliver);
        ASSERT_EQ(m.deliveries, kMaxDeliver);
      }
    }
    dead.clear();
    for (const Consumer& c : consumers) {
      auto stats = d.consumer_stats(c.client, c.sid);
      ASSERT_TRUE(stats.has_value());
      ASSERT_LE(stats->in_flight, c.policy.max_in_flight);
    }
  };
  auto add = [&](std::string pattern, std::string group) {
    Consumer c{next_client++, 1 + rng() % 3, std::move(pattern),
               std::move(group), policy()};
    ASSERT_TRUE(d.AddConsumer(c.client, c.sid, c.pattern, c.group, c.policy,
                              now, &sends)
                    .ok());
    consumers.push_back(c);
  };
  // An outstanding delivery: mostly a recent one (a worker acks what it
  // just got), sometimes any (stale ones included).
  auto pick = [&]() -> size_t {
    if (chance(20)) return rng() % outstanding.size();
    return outstanding.size() - 1 -
           rng() % std::min<size_t>(8, outstanding.size());
  };
  // Ack (or fail to ack) one outstanding delivery.
  auto ack = [&](size_t i) {
    const auto [client, id] = outstanding[i];
    outstanding[i] = outstanding.back();
    outstanding.pop_back();
    Message& m = messages[message_of_id.at(id)];
    const absl::Status s = d.Ack(client, id, now, &sends);
    if (m.latest_id != id || m.acked || m.dead) {
      ASSERT_EQ(s.code(), absl::StatusCode::kNotFound);
    } else if (s.ok()) {
      m.acked = 1;
    } else {
      ASSERT_EQ(s.code(), absl::StatusCode::kNotFound);  // expired
    }
  };

  add("jobs.>", "g1");
  add("jobs.>", "g1");
  add("work.a", "g2");
  add("work.*", "g2");
  add("solo.1.>", "");
  add("solo.2.>", "");
  ASSERT_NO_FATAL_FAILURE(check_outputs());
  const std::vector<std::string> topics = {"jobs.x", "jobs.y.z", "work.a",
                                           "work.b", "solo.1.x", "solo.2.y"};

  for (int step = 0; step < 20000; ++step) {
    const int op = static_cast<int>(rng() % 100);
    if (op < 30) {  // publish: the router picks a matching consumer
      const std::string& t = topics[rng() % topics.size()];
      std::vector<const Consumer*> eligible;
      for (const Consumer& c : consumers) {
        if (topic::PatternMatches(c.pattern, t)) eligible.push_back(&c);
      }
      if (eligible.empty()) continue;
      const Consumer* c = eligible[rng() % eligible.size()];
      const size_t id = messages.size();
      messages.emplace_back();
      ASSERT_TRUE(d.Offer(c->client, c->sid, Msg(t, std::to_string(id)), now,
                          &sends, &dead)
                      .ok());
    } else if (op < 65) {
      if (!outstanding.empty()) ack(pick());
    } else if (op < 71) {
      if (outstanding.empty()) continue;
      const auto [client, id] = outstanding[pick()];
      std::optional<uint32_t> delay;
      if (chance(50))
        delay = static_cast<uint32_t>(rng() % 3 == 0 ? 0 : rng() % 100);
      const absl::Status s = d.Nack(client, id, delay, now, &sends, &dead);
      ASSERT_TRUE(s.ok() || s.code() == absl::StatusCode::kNotFound);
    } else if (op < 75) {
      if (outstanding.empty()) continue;
      const auto [client, id] = outstanding[pick()];
      const absl::Status s = d.Progress(client, id, now);
      ASSERT_TRUE(s.ok() || s.code() == absl::StatusCode::kNotFound);
    } else if (op < 77) {  // someone else's id
      if (outstanding.empty()) continue;
      const auto [client, id] = outstanding[pick()];
      ASSERT_EQ(d.Ack(client + 1000, id, now, &sends).code(),
                absl::StatusCode::kNotFound);
    } else if (op < 95) {
      now += static_cast<int64_t>(rng() % 40);
      d.Tick(now, &sends, &dead);
      ASSERT_GT(d.NextDeadline(), now);
    } else if (op < 97) {  // jump to the next deadline: something happens
      const int64_t next = d.NextDeadline();
      if (next == std::numeric_limits<int64_t>::max()) continue;
      const auto before = std::make_pair(d.counters().expired, d.delayed());
      now = next;
      d.Tick(now, &sends, &dead);
      ASSERT_NE(before, std::make_pair(d.counters().expired, d.delayed()));
    } else if (op < 98) {  // a group member's client disconnects
      std::vector<size_t> members;
      for (size_t i = 0; i < consumers.size(); ++i) {
        if (!consumers[i].group.empty()) members.push_back(i);
      }
      if (members.empty()) continue;
      const size_t i = members[rng() % members.size()];
      const uint32_t client = consumers[i].client;
      consumers.erase(consumers.begin() + static_cast<std::ptrdiff_t>(i));
      ASSERT_EQ(d.RemoveClient(client, now, &sends, &dead), 0u);
    } else {  // a worker joins
      switch (rng() % 4) {
        case 0:
          add("jobs.>", "g1");
          break;
        case 1:
          add("work.a", "g2");
          break;
        case 2:
          // g1's members are mostly alike ("jobs.>"), and sometimes not:
          // its backlog then has messages this one must not take.
          if (chance(50)) {
            add("jobs.*", "g1");
          } else {
            add("jobs.>", "g1");
          }
          break;
        default:
          add("work.*", "g2");
          break;
      }
    }
    ASSERT_NO_FATAL_FAILURE(check_outputs()) << "step " << step;
    ASSERT_TRUE(d.CapacityCountsHold()) << "step " << step;
  }

  // Staff every group and drain: ack whatever arrives until nothing is left.
  add("jobs.>", "g1");
  add("work.*", "g2");
  ASSERT_NO_FATAL_FAILURE(check_outputs());
  for (int round = 0; round < 10000; ++round) {
    while (!outstanding.empty()) ack(outstanding.size() - 1);
    ASSERT_NO_FATAL_FAILURE(check_outputs());
    if (d.in_flight() + d.queued() + d.delayed() == 0) break;
    now += 50;
    d.Tick(now, &sends, &dead);
    ASSERT_NO_FATAL_FAILURE(check_outputs());
  }
  EXPECT_EQ(d.in_flight() + d.queued() + d.delayed(), 0u);
  EXPECT_EQ(d.NextDeadline(), std::numeric_limits<int64_t>::max());

  uint64_t acked = 0, dead_count = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    ASSERT_EQ(messages[i].acked + messages[i].dead, 1) << "message " << i;
    acked += messages[i].acked;
    dead_count += messages[i].dead;
  }
  EXPECT_EQ(d.counters().acks, acked);
  EXPECT_EQ(d.counters().dead_letters, dead_count);
  EXPECT_EQ(d.counters().dropped, 0u);
  // The run exercised every path it checks.
  EXPECT_GT(messages.size(), 5000u);
  EXPECT_GT(acked, 1000u);
  EXPECT_GT(d.counters().expired, 100u);
  EXPECT_GT(d.counters().redeliveries, 100u);
  EXPECT_GT(d.counters().nacks, 100u);
  EXPECT_GT(dead_count, 10u);
  EXPECT_GT(dead_reasons[std::string(kReasonMaxDeliverAfterAckWait)], 0);
  EXPECT_GT(dead_reasons[std::string(kReasonMaxDeliverAfterNack)], 0);
  std::printf(
      "messages %zu acked %llu expired %llu redeliveries %llu nacks "
      "%llu\n",
      messages.size(), static_cast<unsigned long long>(acked),
      static_cast<unsigned long long>(d.counters().expired),
      static_cast<unsigned long long>(d.counters().redeliveries),
      static_cast<unsigned long long>(d.counters().nacks));
  for (const auto& [reason, n] : dead_reasons) {
    std::printf("dead letters '%s': %d\n", reason.c_str(), n);
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, DeliveriesRandomTest,
                         ::testing::Range<uint64_t>(1, 9));

}  // namespace
}  // namespace sift::delivery
