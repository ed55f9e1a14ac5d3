#include "broker/plugin/message.h"

#include <algorithm>

namespace sift::plugin {

Message& Message::operator=(const Message& o) {
  if (this == &o) return *this;
  headers_ = o.headers_;
  topic_storage_ = o.topic_storage_;
  reply_to_storage_ = o.reply_to_storage_;
  payload_storage_ = o.payload_storage_;
  topic_owned_ = o.topic_owned_;
  reply_to_owned_ = o.reply_to_owned_;
  payload_owned_ = o.payload_owned_;
  topic_ = topic_owned_ ? std::string_view(topic_storage_) : o.topic_;
  reply_to_ =
      reply_to_owned_ ? std::string_view(reply_to_storage_) : o.reply_to_;
  payload_ = payload_owned_ ? std::string_view(payload_storage_) : o.payload_;
  return *this;
}

Message& Message::operator=(Message&& o) noexcept {
  if (this == &o) return *this;
  headers_ = std::move(o.headers_);
  topic_storage_ = std::move(o.topic_storage_);
  reply_to_storage_ = std::move(o.reply_to_storage_);
  payload_storage_ = std::move(o.payload_storage_);
  topic_owned_ = o.topic_owned_;
  reply_to_owned_ = o.reply_to_owned_;
  payload_owned_ = o.payload_owned_;
  // A moved std::string may keep short contents inline: re-point the views.
  topic_ = topic_owned_ ? std::string_view(topic_storage_) : o.topic_;
  reply_to_ =
      reply_to_owned_ ? std::string_view(reply_to_storage_) : o.reply_to_;
  payload_ = payload_owned_ ? std::string_view(payload_storage_) : o.payload_;
  return *this;
}

std::optional<std::string_view> Message::header(std::string_view key) const {
  for (const HeaderField& h : headers_) {
    if (h.key == key) return std::string_view(h.value);
  }
  return std::nullopt;
}

void Message::SetHeader(std::string_view key, std::string_view value) {
  auto first = std::find_if(headers_.begin(), headers_.end(),
                            [&](const HeaderField& h) { return h.key == key; });
  if (first == headers_.end()) {
    headers_.push_back({std::string(key), std::string(value)});
    return;
  }
  first->value.assign(value.data(), value.size());
  headers_.erase(std::remove_if(first + 1, headers_.end(),
                                [&](const HeaderField& h) {
                                  return h.key == key;
                                }),
                 headers_.end());
}

int Message::RemoveHeader(std::string_view key) {
  const auto before = headers_.size();
  headers_.erase(std::remove_if(headers_.begin(), headers_.end(),
                                [&](const HeaderField& h) {
                                  return h.key == key;
                                }),
                 headers_.end());
  return static_cast<int>(before - headers_.size());
}

void Message::set_topic(std::string topic) {
  topic_storage_ = std::move(topic);
  topic_ = topic_storage_;
  topic_owned_ = true;
}

void Message::set_reply_to(std::string reply_to) {
  reply_to_storage_ = std::move(reply_to);
  reply_to_ = reply_to_storage_;
  reply_to_owned_ = true;
}

void Message::set_payload(std::string payload) {
  payload_storage_ = std::move(payload);
  payload_ = payload_storage_;
  payload_owned_ = true;
}

}  // namespace sift::plugin
