#include "broker/plugin/chain_io.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "broker/protocol/headers.h"

namespace sift::plugin {
namespace {

std::string EncodeFields(const std::vector<HeaderField>& headers) {
  std::string out;
  for (const HeaderField& h : headers) {
    protocol::AppendHeader(h.key, h.value, &out);
  }
  return out;
}

OutMessage DeadLetter(std::string_view original_topic,
                      std::string_view headers, std::string_view reply_to,
                      std::string_view payload, std::string_view input_payload,
                      std::string_view plugin, std::string_view reason) {
  OutMessage d;
  d.dead_letter = true;
  d.topic = std::string(kDeadLetterPrefix);
  d.topic.append(original_topic.data(), original_topic.size());
  d.reply_to = std::string(reply_to);
  d.headers = DeadLetterHeaders(
      headers, {{"sift-original-topic", original_topic},
                {"sift-plugin", plugin},
                {"sift-reason", reason.substr(0, kMaxDeadLetterReasonBytes)}});
  if (payload.data() == input_payload.data() &&
      payload.size() == input_payload.size()) {
    d.payload = input_payload;
  } else {
    d.payload_storage = std::string(payload);
    d.payload_is_input = false;
  }
  return d;
}

}  // namespace

ChainResult RunChain(Chain& chain, std::string_view topic,
                     std::string_view reply_to, std::string_view headers,
                     std::string_view payload, const CallContext& context,
                     std::vector<OutMessage>* out) {
  out->clear();
  ChainResult result;
  std::vector<HeaderField> fields;
  protocol::HeaderReader reader(headers);
  std::string_view key, value;
  while (reader.Next(&key, &value)) {
    fields.push_back({std::string(key), std::string(value)});
  }
  if (reader.error()) {
    result.failed = 1;
    out->push_back(DeadLetter(topic, "", reply_to, payload, payload, "headers",
                              "malformed header entries"));
    return result;
  }
  // Reused per call on the routing thread.
  static thread_local std::vector<Message> passed;
  static thread_local std::vector<Chain::Failure> failures;
  chain.Run(Message(topic, reply_to, std::move(fields), payload), context,
            &passed, &failures);
  for (Message& m : passed) {
    OutMessage o;
    o.topic = std::string(m.topic());
    o.reply_to = std::string(m.reply_to());
    o.headers = EncodeFields(m.headers());
    if (m.payload().data() == payload.data() &&
        m.payload().size() == payload.size()) {
      o.payload = payload;
    } else {
      o.payload_storage = std::string(m.payload());
      o.payload_is_input = false;
    }
    out->push_back(std::move(o));
  }
  if (passed.empty() && failures.empty()) result.dropped = 1;
  for (Chain::Failure& f : failures) {
    ++result.failed;
    out->push_back(DeadLetter(topic, EncodeFields(f.message.headers()),
                              f.message.reply_to(), f.message.payload(),
                              payload, f.plugin, f.reason));
  }
  for (OutMessage& o : *out) {
    if (!o.payload_is_input) o.payload = o.payload_storage;
  }
  passed.clear();
  failures.clear();
  return result;
}

std::string DeadLetterHeaders(
    std::string_view headers,
    std::initializer_list<std::pair<std::string_view, std::string_view>>
        broker) {
  std::string out;
  protocol::HeaderReader reader(headers);
  std::string_view key, value;
  while (reader.Next(&key, &value)) {
    bool broker_name = false;
    for (const auto& [name, unused] : broker) broker_name |= key == name;
    if (!broker_name) protocol::AppendHeader(key, value, &out);
  }
  for (const auto& [name, v] : broker) protocol::AppendHeader(name, v, &out);
  return out;
}

OutMessage MakeDeadLetter(std::string_view original_topic,
                          std::string_view headers, std::string_view reply_to,
                          std::string_view payload, std::string_view plugin,
                          std::string_view reason) {
  OutMessage d = DeadLetter(original_topic, headers, reply_to, payload, {},
                            plugin, reason);
  d.payload = d.payload_storage;
  return d;
}

void SubscriptionChains::Set(uint32_t client, uint64_t sid,
                             std::unique_ptr<Chain> chain) {
  if (chain == nullptr) return Remove(client, sid);
  auto& slot = by_client_[client][sid];
  if (slot == nullptr) ++count_;
  slot = std::move(chain);
}

void SubscriptionChains::Remove(uint32_t client, uint64_t sid) {
  auto c = by_client_.find(client);
  if (c == by_client_.end()) return;
  if (c->second.erase(sid) > 0) --count_;
  if (c->second.empty()) by_client_.erase(c);
}

void SubscriptionChains::RemoveClient(uint32_t client) {
  auto c = by_client_.find(client);
  if (c == by_client_.end()) return;
  count_ -= c->second.size();
  by_client_.erase(c);
}

}  // namespace sift::plugin
