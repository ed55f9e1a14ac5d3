#include "broker/delivery/deliveries.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "broker/base/absl_view.h"
#include "broker/delivery/block_cache.h"
#include "broker/delivery/message_arena.h"
#include "broker/topic/topic.h"

namespace sift::delivery {

namespace {

// The fields a queue group shares: they govern a message's retries and the
// backlog, whichever member holds it.
bool SameGroupPolicy(const AckPolicy& a, const AckPolicy& b) {
  return a.max_deliver == b.max_deliver && a.max_queued == b.max_queued &&
         a.backoff == b.backoff;
}

// The refusal of a member whose policy `asked` is not its group's `held`
// (SameGroupPolicy is false): "queue group 'g' has max_deliver 3 (this
// subscription: 5, the default); every member ...".
std::string GroupPolicyMismatch(std::string_view group, const AckPolicy& held,
                                const AckPolicy& asked, bool placeholder) {
  return absl::StrCat(
      "queue group '", AV(group), "' has ",
      GroupPolicyDifferences(
          held, asked, placeholder ? "this declaration" : "this subscription"),
      "; every member of a group must ask for the same max_deliver, "
      "max_queued and backoff");
}

// Waiting messages can sit in memory long enough to leave the caches (a
// burst queued behind a prefetch of 1,000 is hundreds of MB), and the first
// touch of one (Deliver's reference count) then stalls for a memory load.
// Refill starts loading the message this many places ahead of the one it
// delivers.
constexpr size_t kPrefetchAhead = 4;

// Starts loading message `m`'s reference counts (just before the object in
// std::allocate_shared's block) and its first field bytes.
inline void PrefetchMessage(const MessageRef& m) {
  const char* p = reinterpret_cast<const char*>(m.get());
  __builtin_prefetch(p - 16, 1);
  __builtin_prefetch(p + sizeof(StoredMessage), 0);
}

// The heap may hold this many cancelled timers beyond twice the live ones
// before it is swept: sweeps stay O(1) amortized per timer and rare when
// little is in flight.
constexpr size_t kTimerSlack = 1024;

}  // namespace

namespace {

// The allocator of StoredMessage::Make: std::allocate_shared asks it for
// one block holding the reference count and the object; it adds `extra`
// bytes behind them, where the object keeps its fields' bytes. Blocks come
// from MessageArena (`arena`) or BlockCache. One word (the control block
// keeps a copy): the extra bytes, and whether they came from the arena in
// the top bit.
template <typename T>
struct TrailingBytes {
  using value_type = T;
  static constexpr uint64_t kArenaBit = uint64_t{1} << 63;
  TrailingBytes(size_t extra_bytes, bool from_arena)
      : packed(extra_bytes | (from_arena ? kArenaBit : 0)) {}
  template <typename U>
  TrailingBytes(const TrailingBytes<U>& other) : packed(other.packed) {}
  size_t extra() const { return packed & ~kArenaBit; }
  bool arena() const { return (packed & kArenaBit) != 0; }
  T* allocate(size_t n) {
    assert(n == 1);
    const size_t bytes = n * sizeof(T) + extra();
    return static_cast<T*>(arena() ? MessageArena::Allocate(bytes)
                                   : BlockCache::Allocate(bytes));
  }
  void deallocate(T* p, size_t n) {
    const size_t bytes = n * sizeof(T) + extra();
    if (arena()) {
      MessageArena::Free(p, bytes);
    } else {
      BlockCache::Free(p, bytes);
    }
  }
  template <typename U>
  bool operator==(const TrailingBytes<U>& other) const {
    return packed == other.packed;
  }
  template <typename U>
  bool operator!=(const TrailingBytes<U>& other) const {
    return !(*this == other);
  }
  uint64_t packed;
};

// Room for std::allocate_shared's reference counts and the object, beyond
// the fields' bytes (MessageArena::Allocate asserts the real size fits).
constexpr size_t kBlockOverhead = 128;

}  // namespace

MessageRef StoredMessage::MakeIn(bool arena, std::string_view topic,
                                 std::string_view reply_to,
                                 std::string_view headers,
                                 std::string_view payload,
                                 uint32_t topic_slot) {
  const size_t extra =
      topic.size() + reply_to.size() + headers.size() + payload.size();
  return std::allocate_shared<StoredMessage>(
      TrailingBytes<StoredMessage>(extra, arena), Passkey(), topic, reply_to,
      headers, payload, topic_slot);
}

MessageRef StoredMessage::Make(std::string_view topic,
                               std::string_view reply_to,
                               std::string_view headers,
                               std::string_view payload, uint32_t topic_slot) {
  return MakeIn(false, topic, reply_to, headers, payload, topic_slot);
}

MessageRef StoredMessage::MakeQueued(std::string_view topic,
                                     std::string_view reply_to,
                                     std::string_view headers,
                                     std::string_view payload,
                                     uint32_t topic_slot) {
  const size_t extra =
      topic.size() + reply_to.size() + headers.size() + payload.size();
  const bool arena = extra + kBlockOverhead <= MessageArena::kMaxBlockBytes &&
                     MessageArena::ShouldUse();
  if (!arena) queued_on_heap_.fetch_add(1, std::memory_order_relaxed);
  return MakeIn(arena, topic, reply_to, headers, payload, topic_slot);
}

std::atomic<uint64_t> StoredMessage::queued_on_heap_{0};

StoredMessage::StoredMessage(Passkey, std::string_view topic_in,
                             std::string_view reply_to_in,
                             std::string_view headers_in,
                             std::string_view payload_in,
                             uint32_t topic_slot_in)
    : topic_slot(topic_slot_in),
      topic_size_(static_cast<uint32_t>(topic_in.size())),
      reply_to_size_(static_cast<uint32_t>(reply_to_in.size())),
      headers_size_(static_cast<uint32_t>(headers_in.size())),
      payload_size_(static_cast<uint32_t>(payload_in.size())) {
  // The block that holds this object ends no earlier than this object does,
  // and Make asked for the fields' bytes beyond that block's end.
  assert(topic_in.size() <= UINT32_MAX && reply_to_in.size() <= UINT32_MAX &&
         headers_in.size() <= UINT32_MAX && payload_in.size() <= UINT32_MAX);
  char* at = reinterpret_cast<char*>(this + 1);
  for (std::string_view in : {topic_in, reply_to_in, headers_in, payload_in}) {
    if (in.empty()) continue;
    std::memcpy(at, in.data(), in.size());
    at += in.size();
  }
}

namespace {
// A setting's value as text: a double in the fewest digits that read back
// as it (to_chars), so that two that differ never print alike (StrCat's six
// digits showed 0.2 for 0.20000000001).
std::string ValueText(uint32_t v) { return absl::StrCat(v); }
std::string ValueText(double v) {
  char buffer[32];
  const std::to_chars_result r =
      std::to_chars(buffer, buffer + sizeof(buffer), v);
  return std::string(buffer, r.ptr);
}
}  // namespace

// Each differing field as "<name> <held> (<who>: <asked>[, the default])",
// in AckPolicy's order; SameGroupPolicy compares the same fields.
std::string GroupPolicyDifferences(const AckPolicy& held,
                                   const AckPolicy& asked,
                                   std::string_view who) {
  const AckPolicy defaults;
  std::vector<std::string> differences;
  auto compare = [&](std::string_view name, auto group_value, auto asked_value,
                     auto default_value) {
    if (group_value == asked_value) return;
    differences.push_back(absl::StrCat(
        AV(name), " ", ValueText(group_value), " (", AV(who), ": ",
        ValueText(asked_value),
        asked_value == default_value ? ", the default" : "", ")"));
  };
  compare("max_deliver", held.max_deliver, asked.max_deliver,
          defaults.max_deliver);
  compare("max_queued", held.max_queued, asked.max_queued, defaults.max_queued);
  compare("backoff_initial_ms", held.backoff.initial_ms,
          asked.backoff.initial_ms, defaults.backoff.initial_ms);
  compare("backoff_multiplier", held.backoff.multiplier,
          asked.backoff.multiplier, defaults.backoff.multiplier);
  compare("backoff_max_ms", held.backoff.max_ms, asked.backoff.max_ms,
          defaults.backoff.max_ms);
  compare("backoff_jitter", held.backoff.jitter, asked.backoff.jitter,
          defaults.backoff.jitter);
  std::string out;
  for (size_t i = 0; i < differences.size(); ++i) {
    if (i > 0) {
      absl::StrAppend(&out, i + 1 == differences.size() ? " and " : ", ");
    }
    absl::StrAppend(&out, differences[i]);
  }
  return out;
}

absl::Status ValidateAckPolicy(const AckPolicy& policy) {
  if (policy.ack_wait_ms == 0) {
    return absl::InvalidArgumentError("ack_wait_ms must be at least 1");
  }
  if (policy.max_in_flight == 0) {
    return absl::InvalidArgumentError("max_in_flight must be at least 1");
  }
  return ValidateBackoff(policy.backoff);
}

Deliveries::Deliveries(uint64_t seed) : random_(seed) {}
Deliveries::~Deliveries() = default;

// --- Consumers and groups ---

absl::Status Deliveries::AddConsumer(uint32_t client, uint64_t sid,
                                     std::string_view pattern,
                                     std::string_view group,
                                     const AckPolicy& policy, int64_t now,
                                     std::vector<Send>* sends) {
  return AddConsumer(client, sid, pattern, group, policy, now, sends,
                     /*placeholder=*/false);
}

absl::Status Deliveries::AddPlaceholder(uint32_t client, uint64_t sid,
                                        std::string_view pattern,
                                        std::string_view group,
                                        const AckPolicy& policy, int64_t now) {
  if (group.empty()) {
    return absl::InvalidArgumentError("a declared queue needs a queue group");
  }
  std::vector<Send> none;
  AckPolicy held = policy;
  held.max_in_flight = 1;  // validated as a member; holds nothing
  return AddConsumer(client, sid, pattern, group, held, now, &none,
                     /*placeholder=*/true);
}

absl::Status Deliveries::AddConsumer(uint32_t client, uint64_t sid,
                                     std::string_view pattern,
                                     std::string_view group,
                                     const AckPolicy& policy_in, int64_t now,
                                     std::vector<Send>* sends,
                                     bool placeholder) {
  AckPolicy policy = policy_in;
  if (absl::Status s = ValidateAckPolicy(policy); !s.ok()) return s;
  if (placeholder) policy.max_in_flight = 0;  // never has capacity
  if (IsConsumer(client, sid)) {
    return absl::AlreadyExistsError(absl::StrCat(
        "subscription ", sid, " of client ", client, " is already a consumer"));
  }
  uint32_t g = kNone;
  if (!group.empty()) {
    auto it = groups_by_name_.find(AV(group));
    if (it != groups_by_name_.end()) {
      g = it->second;
      Group& existing = groups_[g];
      if (existing.members.empty()) {
        existing.policy = policy;  // an orphaned backlog takes the newcomer's
      } else if (!SameGroupPolicy(existing.policy, policy)) {
        return absl::FailedPreconditionError(
            GroupPolicyMismatch(group, existing.policy, policy, placeholder));
      }
    } else {
      if (free_groups_.empty()) {
        g = static_cast<uint32_t>(groups_.size());
        groups_.emplace_back();
      } else {
        g = free_groups_.back();
        free_groups_.pop_back();
      }
      Group& fresh = groups_[g];
      fresh.name.assign(group.data(), group.size());
      fresh.policy = policy;
      groups_by_name_.emplace(fresh.name, g);
    }
  }

  uint32_t c;
  if (free_consumers_.empty()) {
    c = static_cast<uint32_t>(consumers_.size());
    consumers_.emplace_back();
  } else {
    c = free_consumers_.back();
    free_consumers_.pop_back();
  }
  Consumer& co = consumers_[c];
  co.live = true;
  co.leaving = false;
  co.client = client;
  co.sid = sid;
  co.group = g;
  co.in_flight = 0;
  co.pattern.assign(pattern.data(), pattern.size());
  co.policy = policy;
  co.in_flight_list = EntryList{};
  co.waiting_list = EntryList{};
  co.timer = 0;
  co.delivered = 0;
  co.acks = 0;
  consumers_by_key_.emplace(Key{client, sid}, c);
  consumers_by_client_[client].push_back(c);
  if (g != kNone) {
    groups_[g].members.push_back(c);
    if (HasCapacity(co)) ++groups_[g].with_capacity;
    UpdateGroupPattern(g);
    Refill(c, now, sends);
  }
  return absl::OkStatus();
}

size_t Deliveries::RemoveConsumer(uint32_t client, uint64_t sid, int64_t now,
                                  std::vector<Send>* sends,
                                  std::vector<DeadLetter>* dead) {
  const uint32_t c = FindConsumer(client, sid);
  if (c == kNone) return 0;
  MarkLeaving(c);
  return RemoveConsumerAt(c, now, sends, dead);
}

size_t Deliveries::RemoveClient(uint32_t client, int64_t now,
                                std::vector<Send>* sends,
                                std::vector<DeadLetter>* dead) {
  auto it = consumers_by_client_.find(client);
  if (it == consumers_by_client_.end()) return 0;
  // Mark them all first: no member of this client may receive what another
  // of its members gives back.
  const std::vector<uint32_t> leaving = it->second;
  for (uint32_t c : leaving) MarkLeaving(c);
  size_t dropped = 0;
  for (uint32_t c : leaving) dropped += RemoveConsumerAt(c, now, sends, dead);
  return dropped;
}

void Deliveries::MarkLeaving(uint32_t c) {
  Consumer& co = consumers_[c];
  co.leaving = true;
  if (co.group != kNone && HasCapacity(co)) --groups_[co.group].with_capacity;
}

size_t Deliveries::RemoveConsumerAt(uint32_t c, int64_t now,
                                    std::vector<Send>* sends,
                                    std::vector<DeadLetter>* dead) {
  Consumer& co = consumers_[c];
  assert(co.live && co.leaving);
  consumers_by_key_.erase(Key{co.client, co.sid});
  found_.fill(Found{});
  if (auto it = consumers_by_client_.find(co.client);
      it != consumers_by_client_.end()) {
    std::vector<uint32_t>& mine = it->second;
    mine.erase(std::find(mine.begin(), mine.end(), c));
    if (mine.empty()) consumers_by_client_.erase(it);
  }
  const uint32_t g = co.group;
  if (g != kNone) {
    Group& gr = groups_[g];
    auto pos = std::find(gr.members.begin(), gr.members.end(), c);
    const size_t index = static_cast<size_t>(pos - gr.members.begin());
    gr.members.erase(pos);
    if (index < gr.cursor) --gr.cursor;
    UpdateGroupPattern(g);
  }

  // Its entries: waiting to come back to it, or in flight.
  size_t dropped = 0;
  for (uint32_t slot = co.waiting_list.head; slot != kNone;) {
    const uint32_t next = entries_[slot].next;
    if (g == kNone) {
      ++dropped;
      --delayed_;
      FreeEntry(slot);  // cancels its timer
    } else {
      Unlink(slot);  // still the group's; any member may take it
    }
    slot = next;
  }
  scratch_.clear();
  for (uint32_t slot = co.in_flight_list.head; slot != kNone;) {
    const uint32_t next = entries_[slot].next;
    ForgetInFlight(slot);
    if (g == kNone) {
      ++dropped;
      FreeEntry(slot);
    } else {
      scratch_.push_back(slot);  // in delivery order
    }
    slot = next;
  }
  co.timer = 0;
  if (g == kNone) {
    dropped += co.queue.size();
    queued_ -= co.queue.size();
    WaitingLine().swap(co.queue);
  }

  // A group member's in-flight messages go to the others now: leaving is a
  // failed delivery (attempt + 1 next time), not the message's backoff.
  for (uint32_t slot : scratch_) {
    Entry& e = entries_[slot];
    const AckPolicy& policy = groups_[g].policy;
    if (policy.max_deliver != 0 && e.attempt >= policy.max_deliver) {
      DeadLetterMessage(std::move(e.message), c,
                        kReasonMaxDeliverAfterConsumerLeft, e.attempt, dead);
      FreeEntry(slot);
      continue;
    }
    Unlink(slot);
    const uint32_t m = PickMember(g, kNone, e.message->topic());
    if (m != kNone) {
      Deliver(m, slot, now, sends);
    } else {
      ReturnToLine(slot, &groups_[g].backlog);
    }
  }
  scratch_.clear();
  assert(co.in_flight_list.head == kNone && co.waiting_list.head == kNone &&
         co.in_flight == 0);

  co.live = false;
  co.leaving = false;
  co.group = kNone;
  std::string().swap(co.pattern);
  free_consumers_.push_back(c);
  if (g != kNone) MaybeForgetGroup(g);
  counters_.dropped += dropped;
  return dropped;
}

void Deliveries::MaybeForgetGroup(uint32_t g) {
  Group& gr = groups_[g];
  if (!gr.members.empty() || !gr.backlog.empty() || gr.delayed != 0) return;
  groups_by_name_.erase(gr.name);
  std::string().swap(gr.name);
  WaitingLine().swap(gr.backlog);
  gr.cursor = 0;
  gr.uniform = false;
  std::string().swap(gr.pattern);
  free_groups_.push_back(g);
}

void Deliveries::UpdateGroupPattern(uint32_t g) {
  Group& gr = groups_[g];
  if (gr.members.empty()) return;  // keeps what its backlog was known to
  const std::string& first = consumers_[gr.members.front()].pattern;
  bool alike = true;
  for (uint32_t m : gr.members) alike = alike && consumers_[m].pattern == first;
  if (alike == gr.uniform && (!alike || first == gr.pattern)) return;
  gr.uniform = alike;
  if (alike) gr.pattern = first;
  ++gr.pattern_gen;  // what was known of the backlog no longer holds
  if (gr.pattern_gen == 0) gr.pattern_gen = 1;  // 0: known of nothing
}

uint32_t Deliveries::PickMember(uint32_t g, uint32_t avoid,
                                std::string_view topic, bool matches_all) {
  Group& gr = groups_[g];
  const size_t n = gr.members.size();
  if (n == 0 || gr.with_capacity == 0) return kNone;
  const size_t start = gr.cursor % n;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (start + k) % n;
    const uint32_t m = gr.members[i];
    if (m == avoid) continue;
    const Consumer& c = consumers_[m];
    if (c.leaving || !HasCapacity(c)) continue;
    if (!matches_all && !topic::PatternMatches(c.pattern, topic)) continue;
    gr.cursor = (i + 1) % n;
    return m;
  }
  return kNone;
}

bool Deliveries::CapacityCountsHold() const {
  for (const Group& gr : groups_) {
    uint32_t n = 0;
    for (uint32_t m : gr.members) {
      if (!consumers_[m].leaving && HasCapacity(consumers_[m])) ++n;
    }
    if (n != gr.with_capacity) return false;
  }
  return true;
}

size_t Deliveries::backlog(std::string_view group) const {
  auto it = groups_by_name_.find(AV(group));
  return it == groups_by_name_.end() ? 0 : groups_[it->second].backlog.size();
}

std::optional<Deliveries::ConsumerStats> Deliveries::consumer_stats(
    uint32_t client, uint64_t sid) const {
  const uint32_t c = FindConsumer(client, sid);
  if (c == kNone) return std::nullopt;
  const Consumer& co = consumers_[c];
  ConsumerStats stats;
  stats.in_flight = co.in_flight;
  stats.max_in_flight = co.policy.max_in_flight;
  stats.queued = co.queue.size();
  stats.delivered = co.delivered;
  stats.acks = co.acks;
  return stats;
}

// --- Entries and timers ---

uint32_t Deliveries::NewEntry(MessageRef message, uint64_t seq,
                              uint32_t attempts, uint32_t group) {
  uint32_t slot;
  if (free_entries_.empty()) {
    slot = static_cast<uint32_t>(entries_.size());
    entries_.emplace_back();
  } else {
    slot = free_entries_.back();
    free_entries_.pop_back();
  }
  Entry& e = entries_[slot];
  e.message = std::move(message);
  e.seq = seq;
  e.attempt = attempts;
  e.group = group;
  return slot;
}

void Deliveries::FreeEntry(uint32_t slot) {
  Unlink(slot);
  Entry& e = entries_[slot];
  e.message.reset();
  e.seq = 0;
  e.delivery_id = 0;
  e.timer = 0;  // cancels its timer, if any
  e.group = kNone;
  e.attempt = 0;
  e.in_flight = false;
  free_entries_.push_back(slot);
}

void Deliveries::Link(uint32_t c, uint32_t slot) {
  Entry& e = entries_[slot];
  EntryList& list = ListOf(c, e);
  e.consumer = c;
  e.prev = list.tail;
  e.next = kNone;
  if (list.tail == kNone) {
    list.head = slot;
  } else {
    entries_[list.tail].next = slot;
  }
  list.tail = slot;
}

void Deliveries::Unlink(uint32_t slot) {
  Entry& e = entries_[slot];
  if (e.consumer == kNone) return;
  EntryList& list = ListOf(e.consumer, e);
  if (e.prev == kNone) {
    list.head = e.next;
  } else {
    entries_[e.prev].next = e.next;
  }
  if (e.next == kNone) {
    list.tail = e.prev;
  } else {
    entries_[e.next].prev = e.prev;
  }
  e.consumer = e.prev = e.next = kNone;
}

void Deliveries::Schedule(uint32_t slot, int64_t when) {
  PushTimer(slot, when, &entries_[slot].timer);
}

void Deliveries::PushTimer(uint32_t key, int64_t when, uint64_t* seq) {
  *seq = timers_.Push(when, key);
  // Live timers: at most one per consumer and one per delayed entry.
  if (timers_.size() > 2 * (consumers_by_key_.size() + delayed_) + kTimerSlack) {
    timers_.Compact(
        [this](const TimerQueue::Timer& t) { return TimerLive(t); });
  }
}

void Deliveries::PruneTimers() {
  while (!timers_.empty()) {
    const TimerQueue::Timer t = timers_.top();
    if (!TimerLive(t)) {
      timers_.Pop();
      continue;
    }
    if ((t.slot & kConsumerTimer) == 0) return;
    // A consumer's timer may be early (the entry it was armed for was
    // acked): moved to its head's deadline, or dropped if nothing is in
    // flight, so the top is exact.
    const uint32_t c = t.slot & ~kConsumerTimer;
    const uint32_t head = consumers_[c].in_flight_list.head;
    if (head != kNone && entries_[head].deadline == t.when) return;
    timers_.Pop();
    RearmConsumerTimer(c);
  }
}

void Deliveries::RearmConsumerTimer(uint32_t c) {
  consumers_[c].timer = 0;
  const uint32_t head = consumers_[c].in_flight_list.head;
  if (head != kNone) ArmConsumerTimer(c, entries_[head].deadline);
}

int64_t Deliveries::NextDeadline() {
  PruneTimers();
  return timers_.empty() ? std::numeric_limits<int64_t>::max()
                         : timers_.top().when;
}

// --- Delivering ---

void Deliveries::Deliver(uint32_t c, uint32_t slot, int64_t now,
                         std::vector<Send>* sends) {
  Consumer& co = consumers_[c];
  assert(co.live && !co.leaving && HasCapacity(co));
  Unlink(slot);  // from a waiting list, if on one
  Entry& e = entries_[slot];
  e.in_flight = true;
  e.timer = 0;
  ++e.attempt;
  e.delivery_id = next_delivery_id_++;
  e.deadline = now + co.policy.ack_wait_ms;
  Link(c, slot);  // the tail of its in-flight list: the latest deadline
  ArmConsumerTimer(c, e.deadline);
  in_flight_by_id_.Insert(e.delivery_id, slot);
  ++co.in_flight;
  if (co.group != kNone && !HasCapacity(co)) --groups_[co.group].with_capacity;
  ++in_flight_;
  ++co.delivered;
  ++counters_.delivered;
  if (e.attempt > 1) ++counters_.redeliveries;
  sends->push_back(Send{co.client, co.sid, e.delivery_id, e.attempt,
                        e.message.get(), slot});
}

void Deliveries::DeliverWaiting(uint32_t c, Waiting waiting, int64_t now,
                                std::vector<Send>* sends) {
  const uint32_t slot = NewEntry(std::move(waiting.message), waiting.seq,
                                 waiting.attempts, consumers_[c].group);
  Deliver(c, slot, now, sends);
}

void Deliveries::ReturnToLine(uint32_t slot, WaitingLine* line) {
  Entry& e = entries_[slot];
  // Messages that came back sit at the head in Offer order; the scan stops
  // at the first message offered later, which is at once in the usual case.
  auto pos = line->begin();
  while (pos != line->end() && pos->seq < e.seq) ++pos;
  line->insert(pos, Waiting{std::move(e.message), e.seq, e.attempt});
  ++queued_;
  FreeEntry(slot);
}

void Deliveries::Refill(uint32_t c, int64_t now, std::vector<Send>* sends) {
  Consumer& co = consumers_[c];
  if (co.group == kNone) {
    while (HasCapacity(co) && !co.queue.empty()) {
      if (co.queue.size() > kPrefetchAhead) {
        PrefetchMessage(co.queue[kPrefetchAhead].message);
      }
      Waiting w = std::move(co.queue.front());
      co.queue.pop_front();
      --queued_;
      DeliverWaiting(c, std::move(w), now, sends);
    }
    return;
  }
  // The backlog in FIFO order, skipping what this member's pattern does not
  // match (another member's work).
  const Group& gr = groups_[co.group];
  WaitingLine& backlog = groups_[co.group].backlog;
  size_t i = 0;
  while (HasCapacity(co) && i < backlog.size()) {
    if (backlog.size() > i + kPrefetchAhead) {
      PrefetchMessage(backlog[i + kPrefetchAhead].message);
    }
    if (!MatchesAllMembers(gr, backlog[i]) &&
        !topic::PatternMatches(co.pattern, backlog[i].message->topic())) {
      ++i;
      continue;
    }
    Waiting w = std::move(backlog[i]);
    if (i == 0) {
      backlog.pop_front();  // the usual case, cheaper than erase
    } else {
      backlog.erase(backlog.begin() + static_cast<std::ptrdiff_t>(i));
    }
    --queued_;
    DeliverWaiting(c, std::move(w), now, sends);
  }
}

void Deliveries::DeadLetterMessage(MessageRef message, uint32_t c,
                                   std::string_view reason, uint32_t attempts,
                                   std::vector<DeadLetter>* dead) {
  const Consumer& co = consumers_[c];
  dead->push_back(DeadLetter{std::move(message), co.client, co.sid,
                             std::string(reason), attempts});
  ++counters_.dead_letters;
}

absl::Status Deliveries::Offer(uint32_t client, uint64_t sid,
                               MessageRef message, int64_t now,
                               std::vector<Send>* sends,
                               std::vector<DeadLetter>* dead) {
  const uint32_t c = FindConsumer(client, sid);
  if (c == kNone) {
    return absl::NotFoundError(absl::StrCat("subscription ", sid, " of client ",
                                            client, " is not a consumer"));
  }
  if (message == nullptr) return absl::InvalidArgumentError("null message");
  Consumer& co = consumers_[c];
  const uint64_t seq = next_seq_++;
  if (co.group == kNone) {
    if (HasCapacity(co) && co.queue.empty()) {
      Deliver(c, NewEntry(std::move(message), seq, 0, kNone), now, sends);
    } else if (co.queue.size() >= co.policy.max_queued) {
      DeadLetterMessage(std::move(message), c, kReasonQueueFull, 0, dead);
    } else {
      co.queue.push_back(Waiting{std::move(message), seq, 0});
      ++queued_;
    }
    return absl::OkStatus();
  }
  // A member with capacity matches nothing in the backlog (it would have
  // taken it), so sending to it keeps the backlog's order. The message
  // matches `co`'s pattern (the router chose `co`), so in a uniform group
  // it matches every member's.
  Group& gr = groups_[co.group];
  const uint32_t target =
      HasCapacity(co) ? c
                      : PickMember(co.group, c, message->topic(), gr.uniform);
  if (target != kNone) {
    Deliver(target, NewEntry(std::move(message), seq, 0, co.group), now,
            sends);
    return absl::OkStatus();
  }
  if (gr.backlog.size() >= gr.policy.max_queued) {
    DeadLetterMessage(std::move(message), c, kReasonQueueFull, 0, dead);
  } else {
    gr.backlog.push_back(Waiting{std::move(message), seq, 0,
                                 gr.uniform ? gr.pattern_gen : 0});
    ++queued_;
  }
  return absl::OkStatus();
}

// --- Acks, nacks, timers ---

uint32_t Deliveries::FindInFlight(uint32_t client,
                                  uint64_t delivery_id) const {
  const uint32_t slot = in_flight_by_id_.Find(delivery_id);
  if (slot != kNone && consumers_[entries_[slot].consumer].client != client) {
    return kNone;
  }
  return slot;
}

namespace {
absl::Status NotInFlight(uint32_t client, uint64_t delivery_id) {
  return absl::NotFoundError(absl::StrCat(
      "delivery ", delivery_id, " is not in flight at client ", client));
}
}  // namespace

uint32_t Deliveries::ForgetInFlight(uint32_t slot) {
  Entry& e = entries_[slot];
  assert(e.in_flight);
  in_flight_by_id_.Erase(e.delivery_id);
  const uint32_t c = e.consumer;
  Unlink(slot);
  e.delivery_id = 0;
  e.in_flight = false;
  Consumer& co = consumers_[c];
  --co.in_flight;
  if (co.group != kNone && !co.leaving &&
      co.in_flight + 1 == co.policy.max_in_flight) {
    ++groups_[co.group].with_capacity;  // it was full
  }
  --in_flight_;
  return c;
}

void Deliveries::EndInFlight(uint32_t slot) {
  Link(ForgetInFlight(slot), slot);  // onto the holder's waiting list
}

void Deliveries::PrefetchInFlight(uint64_t delivery_id) const {
  const uint32_t slot = in_flight_by_id_.Find(delivery_id);
  if (slot != kNone) PrefetchMessage(entries_[slot].message);
}

absl::Status Deliveries::Ack(uint32_t client, uint64_t delivery_id, int64_t now,
                             std::vector<Send>* sends) {
  const uint32_t slot = FindInFlight(client, delivery_id);
  if (slot == kNone) return NotInFlight(client, delivery_id);
  const uint32_t c = ForgetInFlight(slot);
  FreeEntry(slot);
  ++counters_.acks;
  ++consumers_[c].acks;
  Refill(c, now, sends);
  return absl::OkStatus();
}

absl::Status Deliveries::Nack(uint32_t client, uint64_t delivery_id,
                              std::optional<uint32_t> delay_ms, int64_t now,
                              std::vector<Send>* sends,
                              std::vector<DeadLetter>* dead) {
  const uint32_t slot = FindInFlight(client, delivery_id);
  if (slot == kNone) return NotInFlight(client, delivery_id);
  const uint32_t c = entries_[slot].consumer;
  EndInFlight(slot);
  ++counters_.nacks;
  Retry(slot, delay_ms, now, kReasonMaxDeliverAfterNack, now, sends, dead);
  Refill(c, now, sends);
  return absl::OkStatus();
}

absl::Status Deliveries::Progress(uint32_t client, uint64_t delivery_id,
                                  int64_t now) {
  const uint32_t slot = FindInFlight(client, delivery_id);
  if (slot == kNone) return NotInFlight(client, delivery_id);
  const uint32_t c = entries_[slot].consumer;
  // To the tail of the in-flight list, which stays in deadline order; the
  // consumer's timer, at or before the old head's deadline, still covers it.
  Unlink(slot);
  entries_[slot].deadline = now + consumers_[c].policy.ack_wait_ms;
  Link(c, slot);
  ++counters_.progress;
  return absl::OkStatus();
}

void Deliveries::Retry(uint32_t slot, std::optional<uint32_t> delay_ms,
                       int64_t from, std::string_view reason, int64_t now,
                       std::vector<Send>* sends,
                       std::vector<DeadLetter>* dead) {
  Entry& e = entries_[slot];
  const AckPolicy& policy = RetryPolicy(e.consumer, e.group);
  if (policy.max_deliver != 0 && e.attempt >= policy.max_deliver) {
    DeadLetterMessage(std::move(e.message), e.consumer, reason, e.attempt,
                      dead);
    FreeEntry(slot);
    return;
  }
  const uint32_t delay =
      delay_ms.has_value()
          ? *delay_ms
          : JitteredDelayMs(policy.backoff, e.attempt, random_.Next());
  e.deadline = from + delay;
  ++delayed_;
  if (e.group != kNone) ++groups_[e.group].delayed;
  if (e.deadline <= now) {
    Redeliver(slot, now, sends);
  } else {
    Schedule(slot, e.deadline);
  }
}

void Deliveries::Redeliver(uint32_t slot, int64_t now,
                           std::vector<Send>* sends) {
  Entry& e = entries_[slot];
  assert(!e.in_flight);
  e.timer = 0;
  --delayed_;
  if (e.group == kNone) {
    // Its consumer is live: a departing non-group consumer drops its entries.
    const uint32_t c = e.consumer;
    if (HasCapacity(consumers_[c])) {
      Deliver(c, slot, now, sends);
    } else {
      ReturnToLine(slot, &consumers_[c].queue);
    }
    return;
  }
  const uint32_t g = e.group;
  --groups_[g].delayed;
  // Prefer a member other than the one it failed at; that one (if still
  // there) is the fallback.
  const uint32_t avoid = e.consumer;
  uint32_t m = PickMember(g, avoid, e.message->topic());
  if (m == kNone && avoid != kNone && !consumers_[avoid].leaving &&
      HasCapacity(consumers_[avoid])) {
    m = avoid;
  }
  if (m != kNone) {
    Deliver(m, slot, now, sends);
  } else {
    ReturnToLine(slot, &groups_[g].backlog);
  }
}

void Deliveries::Tick(int64_t now, std::vector<Send>* sends,
                      std::vector<DeadLetter>* dead) {
  while (!timers_.empty()) {
    const TimerQueue::Timer t = timers_.top();
    if (!TimerLive(t)) {
      timers_.Pop();
      continue;
    }
    if (t.when > now) break;
    timers_.Pop();
    if ((t.slot & kConsumerTimer) != 0) {
      ConsumerTimerFired(t.slot & ~kConsumerTimer, now, sends, dead);
    } else {
      Redeliver(t.slot, now, sends);
    }
  }
}

void Deliveries::ConsumerTimerFired(uint32_t c, int64_t now,
                                    std::vector<Send>* sends,
                                    std::vector<DeadLetter>* dead) {
  const uint32_t slot = consumers_[c].in_flight_list.head;
  if (slot == kNone || entries_[slot].deadline > now) {
    // All acked since it was armed, or the entry it was armed for was.
    RearmConsumerTimer(c);
    return;
  }
  const int64_t deadline = entries_[slot].deadline;
  // Armed for the next one first: anything delivered to `c` below lands
  // behind it.
  consumers_[c].timer = 0;
  if (const uint32_t next = entries_[slot].next; next != kNone) {
    ArmConsumerTimer(c, entries_[next].deadline);
  }
  // The ack wait ran out: a failed delivery, retried after the backoff
  // counted from the deadline (so a late Tick does not add its lateness).
  EndInFlight(slot);
  ++counters_.expired;
  Retry(slot, std::nullopt, deadline, kReasonMaxDeliverAfterAckWait, now,
        sends, dead);
  Refill(c, now, sends);
}

}  // namespace sift::delivery
