#include "broker/router/router.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "broker/base/absl_view.h"
#include "broker/protocol/codec.h"

namespace sift {
namespace {

constexpr std::string_view kInboxRoot = "_INBOX";

// Re-labels a validation error with the wire code the client should see.
absl::Status WithWireCode(const absl::Status& status, wire::ErrorCode code) {
  return protocol::WireError(code, status.message());
}

// The second token of a topic or pattern whose first token is "_INBOX", or
// an empty view if it is not an inbox name.
std::string_view InboxToken(std::string_view name) {
  if (name.size() <= kInboxRoot.size() + 1 ||
      name.compare(0, kInboxRoot.size(), kInboxRoot) != 0 ||
      name[kInboxRoot.size()] != '.') {
    return {};
  }
  std::string_view rest = name.substr(kInboxRoot.size() + 1);
  return rest.substr(0, rest.find('.'));
}

// Ten base-32 characters (50 bits) from the system's random source.
std::string NewBootId() {
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuv";
  std::random_device random;
  uint64_t bits = (uint64_t{random()} << 32) | random();
  std::string id(10, '0');
  for (char& c : id) {
    c = kDigits[bits & 31];
    bits >>= 5;
  }
  return id;
}

}  // namespace

std::string_view DropReasonName(DropReason reason) {
  switch (reason) {
    case DropReason::kNoSubscribers: return "no_subscribers";
    case DropReason::kSlowConsumer: return "slow_consumer";
    case DropReason::kClientGone: return "client_gone";
    case DropReason::kPayloadTooLarge: return "payload_too_large";
    case DropReason::kInvalidTopic: return "invalid_topic";
    case DropReason::kNotConnected: return "not_connected";
    case DropReason::kBadFrame: return "bad_frame";
    case DropReason::kInvalidRequest: return "invalid_request";
    case DropReason::kInvalidHeader: return "invalid_header";
    case DropReason::kHeadersTooLarge: return "headers_too_large";
    case DropReason::kFiltered: return "filtered";
    case DropReason::kPluginError: return "plugin_error";
    case DropReason::kDeadLettered: return "dead_lettered";
    case DropReason::kStoreFull: return "store_full";
    case DropReason::kDuplicate: return "duplicate";
    case DropReason::kCount: break;
  }
  return "unknown";
}

Router::Router(const RouterLimits& limits)
    : limits_(limits), tree_(limits.match_cache_size), boot_id_(NewBootId()) {}

Router::ClientHandle Router::AddClient(std::string_view name) {
  ClientHandle handle;
  if (!free_clients_.empty()) {
    handle = free_clients_.back();
    free_clients_.pop_back();
  } else {
    handle = static_cast<ClientHandle>(clients_.size());
    clients_.emplace_back();
  }
  Client& c = clients_[handle];
  c.live = true;
  c.id = absl::StrCat("c", next_client_number_++, "-", boot_id_);
  c.inbox_prefix = absl::StrCat(AV(kInboxRoot), ".", c.id);
  c.name = std::string(name);
  c.subs.clear();
  client_by_id_[c.id] = handle;
  ++live_clients_;
  return handle;
}

void Router::RemoveClient(ClientHandle client) {
  DropSubscriptions(client);
  Client& c = clients_[client];
  client_by_id_.erase(c.id);
  c.live = false;
  c.id.clear();
  c.inbox_prefix.clear();
  c.name.clear();
  free_clients_.push_back(client);
  --live_clients_;
}

void Router::DropSubscriptions(ClientHandle client) {
  Client& c = clients_[client];
  for (const auto& [sid, sub] : c.subs) RemoveSubscription(sub);
  c.subs.clear();
}

bool Router::IsLive(ClientHandle client) const {
  return client < clients_.size() && clients_[client].live;
}

const std::string& Router::client_id(ClientHandle client) const {
  return clients_[client].id;
}

const std::string& Router::inbox_prefix(ClientHandle client) const {
  return clients_[client].inbox_prefix;
}

const std::string& Router::client_name(ClientHandle client) const {
  return clients_[client].name;
}

absl::Status Router::Subscribe(ClientHandle client, uint64_t sid,
                               std::string_view pattern,
                               std::string_view queue_group) {
  Client& c = clients_[client];
  if (sid == 0) {
    return protocol::WireError(wire::INVALID_REQUEST,
                               "SUB needs a non-zero sid");
  }
  if (absl::Status s = topic::ValidatePattern(pattern, limits_.topic);
      !s.ok()) {
    return WithWireCode(s, wire::INVALID_PATTERN);
  }
  if (absl::Status s = topic::ValidateQueueGroup(queue_group); !s.ok()) {
    return WithWireCode(s, wire::INVALID_QUEUE_GROUP);
  }
  // Inboxes are private: only their owner may name one in a pattern.
  // (Wildcards that would reach into inboxes are filtered in Publish.)
  std::string_view inbox = InboxToken(pattern);
  if (!inbox.empty() && inbox != "*" && inbox != ">" &&
      inbox != std::string_view(c.id)) {
    return protocol::WireError(
        wire::FORBIDDEN,
        absl::StrCat("pattern \"", AV(pattern),
                     "\" names the inbox of another client; subscribe under "
                     "your own inbox prefix \"",
                     c.inbox_prefix, "\""));
  }
  if (c.subs.contains(sid)) {
    return protocol::WireError(
        wire::DUPLICATE_SID,
        absl::StrCat("sid ", sid, " is already used by this client"));
  }
  if (c.subs.size() >= limits_.max_subscriptions_per_client) {
    return protocol::WireError(
        wire::TOO_MANY_SUBSCRIPTIONS,
        absl::StrCat("client holds ", c.subs.size(),
                     " subscriptions, the limit is ",
                     limits_.max_subscriptions_per_client));
  }
  if (live_subscriptions_ >= limits_.max_subscriptions) {
    return protocol::WireError(
        wire::TOO_MANY_SUBSCRIPTIONS,
        absl::StrCat("the broker holds ", live_subscriptions_,
                     " subscriptions of all clients, its limit "
                     "(max_subscriptions)"));
  }
  SubHandle handle;
  if (!free_subs_.empty()) {
    handle = free_subs_.back();
    free_subs_.pop_back();
  } else {
    handle = static_cast<SubHandle>(subs_.size());
    subs_.emplace_back();
  }
  Subscription& s = subs_[handle];
  s.client = client;
  s.sid = sid;
  s.pattern_size = static_cast<uint32_t>(pattern.size());
  s.pattern_and_group.reserve(pattern.size() + queue_group.size());
  s.pattern_and_group.assign(pattern.data(), pattern.size());
  s.pattern_and_group.append(queue_group.data(), queue_group.size());
  tree_.Insert(s.pattern(), s.queue_group(), handle);
  c.subs.emplace(sid, handle);
  ++live_subscriptions_;
  return absl::OkStatus();
}

absl::Status Router::Unsubscribe(ClientHandle client, uint64_t sid) {
  if (sid == 0) {
    return protocol::WireError(wire::INVALID_REQUEST,
                               "UNSUB needs a non-zero sid");
  }
  Client& c = clients_[client];
  auto it = c.subs.find(sid);
  if (it == c.subs.end()) {
    return protocol::WireError(
        wire::UNKNOWN_SID,
        absl::StrCat("no subscription with sid ", sid, " on this client"));
  }
  RemoveSubscription(it->second);
  c.subs.erase(it);
  return absl::OkStatus();
}

void Router::RemoveSubscription(SubHandle handle) {
  Subscription& s = subs_[handle];
  tree_.Remove(s.pattern(), s.queue_group(), handle);
  // Release the string so a churn of long patterns does not pin memory.
  std::string().swap(s.pattern_and_group);
  s.pattern_size = 0;
  free_subs_.push_back(handle);
  --live_subscriptions_;
}

bool Router::InboxOwner(std::string_view topic, ClientHandle* owner) const {
  std::string_view inbox = InboxToken(topic);
  if (inbox.empty()) return false;
  auto it = client_by_id_.find(AV(inbox));
  *owner = it == client_by_id_.end() ? ~ClientHandle{0} : it->second;
  return true;
}

uint32_t Router::CountersNote(std::string_view topic) {
  // Reply topics are many and short-lived, and belong to one client each:
  // one row for all of them, so they neither fill the table nor show.
  if (!InboxToken(topic).empty()) return kInboxTopicsNote;
  auto it = topic_slots_.find(AV(topic));
  if (it != topic_slots_.end()) return it->second + 1;
  if (topic_slots_.size() >= limits_.max_tracked_topics) {
    return kOtherTopicsNote;
  }
  const auto slot = static_cast<uint32_t>(topic_counters_.size());
  topic_counters_.emplace_back();
  topic_slots_.emplace(AV(topic), slot);
  return slot + 1;
}

Router::TopicSlot Router::SlotFor(
    std::string_view topic, const topic::SubjectTree::MatchResult* cached) {
  uint32_t note = cached != nullptr ? cached->note : 0;
  if (note == 0) {
    note = CountersNote(topic);
    if (cached != nullptr) cached->note = note;
  }
  return note;
}

absl::Status Router::CheckPublish(std::string_view topic,
                                  std::string_view reply_to,
                                  std::string_view headers,
                                  size_t payload_size) {
  if (absl::Status s = topic::ValidateTopic(topic, limits_.topic); !s.ok()) {
    RecordDrop(DropReason::kInvalidTopic);
    return WithWireCode(s, wire::INVALID_TOPIC);
  }
  return CheckFields(reply_to, headers, payload_size);
}

absl::Status Router::CheckFieldsSlow(std::string_view reply_to,
                                     std::string_view headers,
                                     size_t payload_size, bool check_headers) {
  if (!reply_to.empty()) {
    if (absl::Status s = topic::ValidateTopic(reply_to, limits_.topic);
        !s.ok()) {
      RecordDrop(DropReason::kInvalidTopic);
      return protocol::WireError(
          wire::INVALID_TOPIC,
          absl::StrCat("reply_to: ", s.message()));
    }
  }
  if (payload_size > limits_.max_payload_bytes) {
    RecordDrop(DropReason::kPayloadTooLarge);
    return protocol::WireError(
        wire::PAYLOAD_TOO_LARGE,
        absl::StrCat("payload of ", payload_size,
                     " bytes exceeds max_payload_bytes (",
                     limits_.max_payload_bytes, ")"));
  }
  if (!headers.empty() && check_headers) {
    if (absl::Status s = protocol::ValidateHeaders(headers, limits_.headers);
        !s.ok()) {
      RecordDrop(protocol::WireCodeOf(s) == wire::HEADERS_TOO_LARGE
                     ? DropReason::kHeadersTooLarge
                     : DropReason::kInvalidHeader);
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status Router::Publish(std::string_view topic, std::string_view reply_to,
                             std::string_view headers, size_t payload_size,
                             std::vector<Target>* targets, bool broker_made,
                             bool stored) {
  targets->clear();
  // A topic in the match cache was valid when it was matched (and the limits
  // do not change), so a hit skips validation.
  const topic::SubjectTree::MatchResult* cached = tree_.FindCached(topic);
  if (cached == nullptr) {
    if (absl::Status s = topic::ValidateTopic(topic, limits_.topic);
        !s.ok()) {
      RecordDrop(DropReason::kInvalidTopic);
      return WithWireCode(s, wire::INVALID_TOPIC);
    }
  }
  if (absl::Status s =
          CheckFields(reply_to, headers, payload_size, !broker_made);
      !s.ok()) {
    return s;
  }
  ++messages_in_;
  bytes_in_ += payload_size;

  const topic::SubjectTree::MatchResult& match =
      cached != nullptr ? *cached : tree_.MatchUncached(topic);
  const TopicSlot slot = SlotFor(topic, cached);
  ClientHandle owner;
  if (InboxOwner(topic, &owner)) {
    // A message in a client's inbox reaches only that client, whatever
    // wildcards or queue groups others hold: filter before choosing.
    for (SubHandle h : match.plain) {
      const Subscription& s = subs_[h];
      if (s.client == owner) targets->push_back(Target{s.client, s.sid, slot});
    }
    for (const topic::SubjectTree::Group& g : match.groups) {
      for (SubHandle h : g.members) {
        const Subscription& s = subs_[h];
        if (s.client == owner) {
          targets->push_back(Target{s.client, s.sid, slot});
          break;
        }
      }
    }
  } else {
    for (SubHandle h : match.plain) {
      const Subscription& s = subs_[h];
      targets->push_back(Target{s.client, s.sid, slot});
    }
    for (const topic::SubjectTree::Group& g : match.groups) {
      const Subscription& s = subs_[topic::SubjectTree::PickMember(g)];
      targets->push_back(Target{s.client, s.sid, slot});
    }
  }

  ++CountersAt(slot).in;
  if (targets->empty() && !stored) RecordDrop(DropReason::kNoSubscribers);
  return absl::OkStatus();
}

void Router::FillStats(size_t top_topics, wire::StatsReply* out) const {
  out->set_messages_in(messages_in_);
  out->set_messages_out(messages_out_);
  out->set_bytes_in(bytes_in_);
  out->set_bytes_out(bytes_out_);
  out->set_clients(live_clients_);
  out->set_subscriptions(live_subscriptions_);
  out->set_errors_sent(errors_sent_);
  for (int i = 0; i < static_cast<int>(DropReason::kCount); ++i) {
    wire::DropCount* d = out->add_drops();
    std::string_view name = DropReasonName(static_cast<DropReason>(i));
    d->set_reason(name.data(), name.size());
    d->set_count(drops_[i]);
  }
  // Busiest topics first (by messages in), bounded; the rows that sum
  // other topics ("(other topics)": beyond max_tracked_topics; "(inbox topics)": reply
  // topics) are ranked and bounded like any topic.
  std::vector<std::pair<std::string_view, const TopicCounters*>> sorted;
  sorted.reserve(topic_slots_.size() + 2);
  for (const auto& [name, slot] : topic_slots_) {
    sorted.emplace_back(name, &topic_counters_[slot]);
  }
  // (Their names hold a space, which no topic can: they cannot be faked.)
  if (other_topics_.in > 0) {
    sorted.emplace_back("(other topics)", &other_topics_);
  }
  if (inbox_topics_.in > 0) {
    sorted.emplace_back("(inbox topics)", &inbox_topics_);
  }
  size_t n = std::min(top_topics, sorted.size());
  std::partial_sort(sorted.begin(), sorted.begin() + n, sorted.end(),
                    [](const auto& a, const auto& b) {
                      if (a.second->in != b.second->in) {
                        return a.second->in > b.second->in;
                      }
                      return a.first < b.first;
                    });
  for (size_t i = 0; i < n; ++i) {
    wire::TopicCount* t = out->add_topics();
    t->set_topic(sorted[i].first.data(), sorted[i].first.size());
    t->set_messages_in(sorted[i].second->in);
    t->set_messages_out(sorted[i].second->out);
  }
  out->set_topics_tracked(topic_slots_.size());
}

}  // namespace sift
