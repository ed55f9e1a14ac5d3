#include "tests/raw_dealer.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace sift::test {

RawDealer::RawDealer(const std::string& endpoint) : context_(1) {
  socket_.emplace(context_, zmq::socket_type::dealer);
  // Bounded close even if the test forgets CloseNow().
  socket_->set(zmq::sockopt::linger, 1000);
  socket_->connect(endpoint);
}

RawDealer::RawDealer(const std::string& endpoint,
                     const std::string& routing_id)
    : context_(1) {
  socket_.emplace(context_, zmq::socket_type::dealer);
  socket_->set(zmq::sockopt::linger, 1000);
  socket_->set(zmq::sockopt::routing_id, routing_id);
  socket_->connect(endpoint);
}

RawDealer::RawDealer(const std::string& endpoint, int rcvhwm, int rcvbuf)
    : context_(1) {
  socket_.emplace(context_, zmq::socket_type::dealer);
  socket_->set(zmq::sockopt::linger, 1000);
  socket_->set(zmq::sockopt::rcvhwm, rcvhwm);
  socket_->set(zmq::sockopt::rcvbuf, rcvbuf);
  socket_->connect(endpoint);
}

RawDealer::~RawDealer() { socket_.reset(); }

void RawDealer::SendFrames(const std::vector<std::string>& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    const bool more = i + 1 < frames.size();
    socket_->send(zmq::buffer(frames[i]),
                  more ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

void RawDealer::Send(const wire::Header& header,
                     const std::optional<std::string>& payload) {
  std::vector<std::string> frames = {Serialize(header)};
  if (payload.has_value()) frames.push_back(*payload);
  SendFrames(frames);
}

std::optional<RawReply> RawDealer::Recv(absl::Duration timeout) {
  zmq::pollitem_t item{static_cast<void*>(*socket_), 0, ZMQ_POLLIN, 0};
  const long timeout_ms = static_cast<long>(absl::ToInt64Milliseconds(timeout));
  if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) <= 0 ||
      (item.revents & ZMQ_POLLIN) == 0) {
    return std::nullopt;
  }
  RawReply reply;
  // A multipart message arrives whole, so the remaining parts are ready.
  for (int part = 0; part < 64; ++part) {
    zmq::message_t msg;
    if (!socket_->recv(msg, zmq::recv_flags::none)) break;
    reply.frames.push_back(msg.to_string());
    if (!msg.more()) break;
  }
  if (!reply.frames.empty()) {
    wire::Header header;
    if (header.ParseFromString(reply.frames[0])) reply.header = header;
  }
  return reply;
}

absl::StatusOr<wire::Header> RawDealer::AwaitReply(uint64_t request_id,
                                                   absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (int i = 0; i < 1000000; ++i) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    std::optional<RawReply> reply = Recv(left);
    if (!reply.has_value()) break;
    if (!reply->header.has_value()) continue;
    const wire::Header& header = *reply->header;
    switch (header.command_case()) {
      case wire::Header::kOk:
      case wire::Header::kError:
      case wire::Header::kWelcome:
      case wire::Header::kPong:
      case wire::Header::kStatsReply:
      case wire::Header::kStreamReply:
        if (header.request_id() == request_id) return header;
        break;
      default:
        break;  // DELIVER, PING, ...: not what we wait for
    }
  }
  return absl::DeadlineExceededError(
      absl::StrCat("no reply with request_id ", request_id, " within ",
                   absl::FormatDuration(timeout)));
}

absl::StatusOr<wire::Header> RawDealer::Call(
    const wire::Header& header, const std::optional<std::string>& payload,
    absl::Duration timeout) {
  Send(header, payload);
  return AwaitReply(header.request_id(), timeout);
}

absl::StatusOr<wire::Header> RawDealer::Hello(uint32_t version,
                                              uint64_t request_id) {
  return Call(HelloHeader(request_id, version));
}

void RawDealer::CloseNow() {
  if (!socket_.has_value()) return;
  socket_->set(zmq::sockopt::linger, 0);
  socket_.reset();
}

wire::Header HelloHeader(uint64_t request_id, uint32_t version) {
  wire::Header header;
  header.set_request_id(request_id);
  header.mutable_hello()->set_protocol_version(version);
  header.mutable_hello()->set_client_name("raw-dealer");
  return header;
}

wire::Header PubHeader(uint64_t request_id, const std::string& topic,
                       bool confirm, const std::string& reply_to) {
  wire::Header header;
  header.set_request_id(request_id);
  header.mutable_pub()->set_topic(topic);
  header.mutable_pub()->set_confirm(confirm);
  if (!reply_to.empty()) header.mutable_pub()->set_reply_to(reply_to);
  return header;
}

wire::Header SubHeader(uint64_t request_id, uint64_t sid,
                       const std::string& pattern,
                       const std::string& queue_group) {
  wire::Header header;
  header.set_request_id(request_id);
  header.mutable_sub()->set_sid(sid);
  header.mutable_sub()->set_pattern(pattern);
  if (!queue_group.empty()) header.mutable_sub()->set_queue_group(queue_group);
  return header;
}

wire::Header UnsubHeader(uint64_t request_id, uint64_t sid) {
  wire::Header header;
  header.set_request_id(request_id);
  header.mutable_unsub()->set_sid(sid);
  return header;
}

wire::Header BatchHeader(uint64_t request_id, uint32_t count) {
  wire::Header header;
  header.set_request_id(request_id);
  header.mutable_batch()->set_count(count);
  return header;
}

wire::Header PingHeader(uint64_t request_id) {
  wire::Header header;
  header.set_request_id(request_id);
  header.mutable_ping();
  return header;
}

wire::Header StatsHeader(uint64_t request_id) {
  wire::Header header;
  header.set_request_id(request_id);
  header.mutable_stats();
  return header;
}

std::string Serialize(const wire::Header& header) {
  std::string out;
  header.SerializeToString(&out);
  return out;
}

}  // namespace sift::test
