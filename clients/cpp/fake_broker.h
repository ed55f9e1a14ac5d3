// A scripted fake broker for the C++ client's unit tests: a ZeroMQ ROUTER on
// inproc:// that answers HELLO itself (or leaves that to the test) and every
// other request with what the test's handler returns, and records what the
// client sent (the PUBs of a BATCH one by one). Plus helpers to build its
// answers. The real broker is exercised by tests/.
//
// Thread-safety: a FakeBroker runs one thread of its own, which owns the
// socket; received(), WaitFor() and Push() may be called from any thread.
#ifndef SIFT_CLIENTS_CPP_FAKE_BROKER_H_
#define SIFT_CLIENTS_CPP_FAKE_BROKER_H_

#include <zmq.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/protocol/batch.h"
#include "broker/protocol/codec.h"
#include "clients/cpp/client.h"
#include "gtest/gtest.h"
#include "proto/sift.pb.h"

namespace sift::test {

// One message to send: a header and, for DELIVER, a payload frame.
struct Out {
  wire::Header header;
  std::string payload;
  bool has_payload = false;
};

inline Out Answer(wire::Header h) { return Out{std::move(h), "", false}; }

inline Out DeliverOf(uint64_t sid, std::string topic, std::string payload,
                     uint64_t stream_seq, uint64_t timestamp_ms,
                     uint64_t delivery_id = 0) {
  Out out;
  wire::Deliver* d = out.header.mutable_deliver();
  d->set_sid(sid);
  d->set_topic(std::move(topic));
  d->set_stream_seq(stream_seq);
  d->set_timestamp_ms(timestamp_ms);
  if (delivery_id != 0) {
    d->set_delivery_id(delivery_id);
    d->set_attempt(1);
  }
  out.payload = std::move(payload);
  out.has_payload = true;
  return out;
}

inline wire::Header OkFor(uint64_t request_id) {
  wire::Header h;
  h.set_request_id(request_id);
  h.mutable_ok();
  return h;
}

inline wire::Header ErrorFor(uint64_t request_id, wire::ErrorCode code) {
  wire::Header h;
  h.set_request_id(request_id);
  h.mutable_error()->set_code(code);
  h.mutable_error()->set_message("scripted error");
  return h;
}

// A ROUTER that answers HELLO itself and every other request with what the
// test's handler returns (nothing: no answer). Records what it received.
class FakeBroker {
 public:
  using Handler = std::function<std::vector<Out>(const wire::Header&)>;

  explicit FakeBroker(Handler handler) : handler_(std::move(handler)) {
    context_ = zmq_ctx_new();
    socket_ = zmq_socket(context_, ZMQ_ROUTER);
    endpoint_ = absl::StrCat("inproc://fake-broker-", counter_++);
    EXPECT_EQ(zmq_bind(socket_, endpoint_.c_str()), 0);
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeBroker() {
    stop_ = true;
    thread_.join();
    zmq_close(socket_);
    zmq_ctx_term(context_);
  }

  ClientOptions Options() const {
    ClientOptions options;
    options.endpoint = endpoint_;
    options.zmq_context = context_;
    options.connect_timeout = absl::Seconds(5);
    return options;
  }

  // PINGs are answered with PONG (and they and BYEs are left out of
  // received()) unless this is set to false: then they are recorded like
  // any other header, and only Push() answers them.
  void set_answer_pings(bool on) { answer_pings_.store(on); }
  // HELLOs are answered with Welcome() unless this is set to false: then
  // they are only counted (hellos(), last_hello_id()), and the test Push()es
  // the answer.
  void set_answer_hellos(bool on) { answer_hellos_.store(on); }
  // WELCOME.max_batch_bytes (0, the default: the client sends no BATCH).
  void set_max_batch_bytes(uint64_t bytes) { max_batch_bytes_.store(bytes); }

  // The WELCOME answering HELLO `request_id`, for session number `n`
  // (client id "c<n>", inbox prefix "_INBOX.c<n>").
  wire::Header Welcome(uint64_t request_id, int n) const {
    wire::Header w;
    w.set_request_id(request_id);
    wire::Welcome* welcome = w.mutable_welcome();
    welcome->set_protocol_version(wire::PROTOCOL_VERSION_CURRENT);
    welcome->set_client_id(absl::StrCat("c", n));
    welcome->set_inbox_prefix(absl::StrCat("_INBOX.c", n));
    welcome->set_max_payload_bytes(1 << 20);
    welcome->set_max_topic_length(256);
    welcome->set_max_topic_tokens(16);
    welcome->set_max_subscriptions(1000);
    welcome->set_max_headers(16);
    welcome->set_max_headers_bytes(4096);
    welcome->set_max_batch_bytes(max_batch_bytes_.load());
    return w;
  }

  // Every header received, HELLO (and PINGs and BYEs, see above) left out;
  // for a BATCH, the header of each PUB in it.
  std::vector<wire::Header> received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }
  // The first received header for which `pred` holds, waiting up to 5 s.
  std::optional<wire::Header> WaitFor(
      std::function<bool(const wire::Header&)> pred) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline) {
      for (const wire::Header& h : received()) {
        if (pred(h)) return h;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    return std::nullopt;
  }
  // The `n`th (from 0) received header for which `pred` holds, waiting up
  // to 5 s: a resubscription is the second SUB for its pattern.
  std::optional<wire::Header> WaitForNth(
      size_t n, std::function<bool(const wire::Header&)> pred) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline) {
      size_t seen = 0;
      for (const wire::Header& h : received()) {
        if (pred(h) && seen++ == n) return h;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    return std::nullopt;
  }
  // How many received headers `pred` holds for, now.
  size_t Count(std::function<bool(const wire::Header&)> pred) {
    size_t n = 0;
    for (const wire::Header& h : received()) n += pred(h) ? 1 : 0;
    return n;
  }
  int hellos() const { return hellos_.load(); }
  uint64_t last_hello_id() const { return last_hello_id_.load(); }

  // Sends to the (last) connected client from any thread: queued for the
  // broker's thread, which owns the socket.
  void Push(Out out) {
    absl::MutexLock lock(&mu_);
    pushed_.push_back(std::move(out));
  }

 private:
  void Send(const std::string& peer, const Out& out) {
    const std::string header = protocol::EncodeHeader(out.header);
    zmq_send(socket_, peer.data(), peer.size(), ZMQ_SNDMORE);
    zmq_send(socket_, header.data(), header.size(),
             out.has_payload ? ZMQ_SNDMORE : 0);
    if (out.has_payload) {
      zmq_send(socket_, out.payload.data(), out.payload.size(), 0);
    }
  }

  void Loop() {
    std::string peer;
    while (!stop_) {
      std::vector<Out> pushed;
      {
        absl::MutexLock lock(&mu_);
        pushed.swap(pushed_);
      }
      for (const Out& out : pushed) Send(peer, out);
      zmq_pollitem_t item = {socket_, 0, ZMQ_POLLIN, 0};
      if (zmq_poll(&item, 1, 5) <= 0) continue;
      std::vector<std::string> frames;
      int more = 1;
      while (more) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, socket_, 0) < 0) {
          zmq_msg_close(&msg);
          break;
        }
        frames.emplace_back(static_cast<const char*>(zmq_msg_data(&msg)),
                            zmq_msg_size(&msg));
        more = zmq_msg_more(&msg);
        zmq_msg_close(&msg);
      }
      if (frames.size() < 2) continue;
      peer = frames[0];
      wire::Header h;
      if (!h.ParseFromString(frames[1])) continue;
      if (h.has_hello()) {
        const int n = ++hellos_;
        last_hello_id_.store(h.request_id());
        if (answer_hellos_.load()) {
          Send(peer, Answer(Welcome(h.request_id(), n)));
        }
        continue;
      }
      if (h.has_batch() && frames.size() >= 3) {
        // PUBs: each recorded and handled as if it came alone.
        protocol::BatchReader reader(frames[2].data(), frames[2].size());
        std::string_view entry, payload;
        while (reader.Next(&entry, &payload)) {
          wire::Header pub;
          if (pub.ParseFromArray(entry.data(),
                                 static_cast<int>(entry.size()))) {
            Handle(peer, pub);
          }
        }
        continue;
      }
      if (answer_pings_.load()) {
        if (h.has_ping()) {  // answered as siftd does (Close() waits for it)
          wire::Header pong;
          pong.set_request_id(h.request_id());
          pong.mutable_pong();
          Send(peer, Answer(std::move(pong)));
          continue;
        }
        if (h.has_bye()) continue;
      }
      Handle(peer, h);
    }
  }

  void Handle(const std::string& peer, const wire::Header& h) {
    {
      absl::MutexLock lock(&mu_);
      received_.push_back(h);
    }
    for (const Out& out : handler_(h)) Send(peer, out);
  }

  static inline std::atomic<int> counter_{0};
  Handler handler_;
  void* context_ = nullptr;
  void* socket_ = nullptr;
  std::string endpoint_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> hellos_{0};
  std::atomic<bool> answer_pings_{true};
  std::atomic<bool> answer_hellos_{true};
  std::atomic<uint64_t> max_batch_bytes_{0};
  std::atomic<uint64_t> last_hello_id_{0};
  absl::Mutex mu_;
  std::vector<wire::Header> received_ ABSL_GUARDED_BY(mu_);
  std::vector<Out> pushed_ ABSL_GUARDED_BY(mu_);
};

inline std::unique_ptr<Client> ConnectTo(const FakeBroker& broker) {
  auto client = Client::Connect(broker.Options());
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

}  // namespace sift::test

#endif  // SIFT_CLIENTS_CPP_FAKE_BROKER_H_
