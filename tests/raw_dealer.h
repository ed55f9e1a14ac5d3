// RawDealer speaks the sift wire protocol by hand over a plain ZeroMQ DEALER
// socket (cppzmq), so tests can send what the client library never would:
// garbage frames, wrong frame counts, commands before HELLO, and so on.
//
// Thread-safety: not thread-safe (it owns one ZeroMQ socket); use it from one
// thread. Every receive is bounded by a timeout.
#ifndef SIFT_TESTS_RAW_DEALER_H_
#define SIFT_TESTS_RAW_DEALER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/sift.pb.h"

namespace sift::test {

// A received multipart message: frame 0 parsed if it is a Header.
struct RawReply {
  std::vector<std::string> frames;
  std::optional<wire::Header> header;  // nullopt if frame 0 did not parse
};

class RawDealer {
 public:
  // Connects a DEALER (own ZeroMQ context) to `endpoint`; the connection is
  // established in the background by ZeroMQ.
  explicit RawDealer(const std::string& endpoint);
  // The same with ZMQ_ROUTING_ID set to `routing_id` (what the broker's
  // ROUTER will call this connection), as a client may choose.
  RawDealer(const std::string& endpoint, const std::string& routing_id);
  // The same with a receive high-water mark (messages) and kernel receive
  // buffer (bytes) this small: a reader that stops reading stops the
  // broker's writes to it soon, as a stalled client over a slow link would.
  RawDealer(const std::string& endpoint, int rcvhwm, int rcvbuf);
  ~RawDealer();
  RawDealer(const RawDealer&) = delete;
  RawDealer& operator=(const RawDealer&) = delete;

  // Sends the frames as one multipart message (at least one frame).
  void SendFrames(const std::vector<std::string>& frames);
  // Sends a header, followed by `payload` as frame 1 if given.
  void Send(const wire::Header& header,
            const std::optional<std::string>& payload = std::nullopt);

  // The next message, or nullopt after `timeout`.
  std::optional<RawReply> Recv(absl::Duration timeout);
  // Waits for a reply (OK, ERROR, WELCOME, PONG, STATS_REPLY) whose
  // request_id is `request_id`, skipping DELIVERs, PINGs and other replies.
  // DeadlineExceeded if none came within `timeout`.
  absl::StatusOr<wire::Header> AwaitReply(uint64_t request_id,
                                          absl::Duration timeout);
  // Sends `header` and AwaitReply()s its request_id.
  absl::StatusOr<wire::Header> Call(
      const wire::Header& header,
      const std::optional<std::string>& payload = std::nullopt,
      absl::Duration timeout = absl::Seconds(5));

  // HELLO with `version`; returns the broker's answer (WELCOME or ERROR).
  absl::StatusOr<wire::Header> Hello(uint32_t version = 1,
                                     uint64_t request_id = 1);

  // Closes the socket at once, discarding anything unsent (linger 0), as a
  // client that vanishes would.
  void CloseNow();

 private:
  zmq::context_t context_;
  std::optional<zmq::socket_t> socket_;
};

// Header builders for tests.
wire::Header HelloHeader(uint64_t request_id, uint32_t version);
wire::Header PubHeader(uint64_t request_id, const std::string& topic,
                       bool confirm, const std::string& reply_to = "");
wire::Header SubHeader(uint64_t request_id, uint64_t sid,
                       const std::string& pattern,
                       const std::string& queue_group = "");
wire::Header UnsubHeader(uint64_t request_id, uint64_t sid);
// A BATCH header claiming `count` entries (the body goes in frame 1).
wire::Header BatchHeader(uint64_t request_id, uint32_t count);
wire::Header PingHeader(uint64_t request_id);
wire::Header StatsHeader(uint64_t request_id);
std::string Serialize(const wire::Header& header);

}  // namespace sift::test

#endif  // SIFT_TESTS_RAW_DEALER_H_
