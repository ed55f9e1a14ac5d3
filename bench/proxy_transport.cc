#include "bench/proxy_transport.h"

#include <zmq.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/payload.h"
#include "bench/servers.h"

namespace sift::bench {
namespace {

constexpr auto kProbeInterval = std::chrono::milliseconds(5);
constexpr absl::Duration kReadyTimeout = absl::Seconds(30);

absl::Status ZmqError(const std::string& what) {
  return absl::InternalError(
      absl::StrCat(what, ": ", zmq_strerror(zmq_errno())));
}

// Sends one frame, [topic] NUL [payload], as one zmq_msg built in place (a
// single copy of the payload, as zmq_send makes); blocks while the socket is
// at its water mark unless `flags` has ZMQ_DONTWAIT. One frame per message,
// not two ([topic][payload]): a second frame costs the baseline a second
// message through every pipe and the proxy (issue 11).
bool SendFrame(void* socket, std::string_view topic, std::string_view payload,
               int flags) {
  zmq_msg_t msg;
  zmq_msg_init_size(&msg, topic.size() + 1 + payload.size());
  char* data = static_cast<char*>(zmq_msg_data(&msg));
  std::memcpy(data, topic.data(), topic.size());
  data[topic.size()] = '\0';
  std::memcpy(data + topic.size() + 1, payload.data(), payload.size());
  while (zmq_msg_send(&msg, socket, flags) < 0) {
    if (zmq_errno() != EINTR) {
      zmq_msg_close(&msg);
      return false;
    }
  }
  return true;
}

// The payload of a frame SendFrame made: what follows the first NUL (empty,
// which the receiver counts as invalid, if there is none).
std::string_view PayloadOf(zmq_msg_t* msg) {
  const char* data = static_cast<const char*>(zmq_msg_data(msg));
  const size_t size = zmq_msg_size(msg);
  const void* nul = std::memchr(data, '\0', size);
  if (nul == nullptr) return {};
  const char* payload = static_cast<const char*>(nul) + 1;
  return std::string_view(payload, data + size - payload);
}

class ProxyTransport : public Transport {
 public:
  explicit ProxyTransport(const Options& options)
      : options_(options),
        direct_(options.mode == Mode::kDirect),
        kind_(options.queue_group() ? ProxyKind::kPushPull
                                    : ProxyKind::kPubSub),
        prefix_(PrefixOf(options.SubscriberPattern())) {}
  ~ProxyTransport() override {
    Disconnect();
    StopServer();
  }

  absl::Status Prepare(const std::vector<Receiver*>& receivers) override {
    if (direct_) {
      // No broker: each publisher binds, each subscriber connects to all.
      if (absl::Status s = ConnectPublishers(); !s.ok()) return s;
    } else {
      auto server = StartProxy(kind_);
      if (!server.ok()) return server.status();
      server_ = std::move(*server);
      sub_endpoints_ = {server_.backend};
    }

    // Subscribers: a thread each, with its own context and socket.
    std::atomic<int> connected{0};
    std::atomic<int> failed{0};
    for (size_t i = 0; i < receivers.size(); ++i) {
      sub_threads_.emplace_back([this, r = receivers[i], &connected, &failed] {
        SubscriberLoop(r, &connected, &failed);
      });
    }
    while (connected.load() + failed.load() <
           static_cast<int>(receivers.size())) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (failed.load() > 0) {
      return absl::InternalError("a baseline subscriber could not connect");
    }

    if (options_.noise > 0 && kind_ == ProxyKind::kPubSub && !direct_) {
      if (absl::Status s = ConnectNoise(); !s.ok()) return s;
    }
    if (!direct_) {
      if (absl::Status s = ConnectPublishers(); !s.ok()) return s;
    }
    return WaitUntilRoutesReady(receivers);
  }

  absl::Status Send(int p, std::string_view payload,
                    uint64_t* retries) override {
    if (!SendFrame(pub_sockets_[p], options_.topic, payload, 0)) {
      return ZmqError("zmq_send");
    }
    return absl::OkStatus();
  }

  void Disconnect() override {
    stop_.store(true);
    for (std::thread& t : sub_threads_) t.join();
    sub_threads_.clear();
    for (void* s : pub_sockets_) {
      if (s != nullptr) zmq_close(s);
    }
    for (void* c : pub_contexts_) zmq_ctx_term(c);
    pub_sockets_.clear();
    pub_contexts_.clear();
    for (void* s : noise_sockets_) zmq_close(s);
    noise_sockets_.clear();
    if (noise_probe_ != nullptr) zmq_close(noise_probe_);
    noise_probe_ = nullptr;
    if (noise_context_ != nullptr) zmq_ctx_term(noise_context_);
    noise_context_ = nullptr;
  }

  int StopServer() override { return server_.Stop(); }

  pid_t server_pid() const override { return server_.pid; }
  std::string server_description() const override {
    if (direct_) {
      return absl::StrCat(
          "no broker: ",
          kind_ == ProxyKind::kPubSub ? "PUB -> SUB " : "PUSH -> PULL ",
          absl::StrJoin(sub_endpoints_, ","));
    }
    return absl::StrCat("zmq_proxy ",
                        kind_ == ProxyKind::kPubSub ? "XSUB " : "PULL ",
                        server_.endpoint, " -> ",
                        kind_ == ProxyKind::kPubSub ? "XPUB " : "PUSH ",
                        server_.backend);
  }
  bool spawned() const override { return !direct_; }

  std::vector<std::string> notes() const override {
    std::vector<std::string> notes;
    if (direct_ && options_.noise > 0) {
      notes.push_back("noise ignored: there is no broker to hold it");
    }
    if (kind_ == ProxyKind::kPushPull) {
      notes.push_back(
          direct_ ? "queue group: PUSH -> PULL, round-robin, no broker"
                  : "queue group: PUB/SUB cannot share messages among "
                    "members, so the baseline is PUSH -> "
                    "zmq_proxy(PULL->PUSH) -> PULL, round-robin");
      if (options_.noise > 0) {
        notes.push_back("noise ignored: PUSH/PULL has no subscriptions");
      }
    }
    if (kind_ == ProxyKind::kPubSub &&
        prefix_ != options_.SubscriberPattern()) {
      notes.push_back(absl::StrCat("pattern \"", options_.SubscriberPattern(),
                                   "\" is the SUB prefix \"", prefix_, "\""));
    }
    return notes;
  }

 private:
  void SubscriberLoop(Receiver* receiver, std::atomic<int>* connected,
                      std::atomic<int>* failed) {
    void* context = zmq_ctx_new();
    void* socket = zmq_socket(
        context, kind_ == ProxyKind::kPubSub ? ZMQ_SUB : ZMQ_PULL);
    SetHighWaterMarks(socket);
    if (kind_ == ProxyKind::kPubSub) {
      zmq_setsockopt(socket, ZMQ_SUBSCRIBE, prefix_.data(), prefix_.size());
    }
    for (const std::string& endpoint : sub_endpoints_) {
      if (zmq_connect(socket, endpoint.c_str()) != 0) {
        failed->fetch_add(1);
        zmq_close(socket);
        zmq_ctx_term(context);
        return;
      }
    }
    connected->fetch_add(1);
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    while (!stop_.load(std::memory_order_relaxed)) {
      zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
      if (zmq_poll(&item, 1, 100) <= 0) continue;
      while (zmq_msg_recv(&msg, socket, ZMQ_DONTWAIT) >= 0) {
        receiver->Record(PayloadOf(&msg));
      }
    }
    zmq_msg_close(&msg);
    zmq_close(socket);
    zmq_ctx_term(context);
  }

  // The publishers' sockets: connected to the proxy's frontend, or (direct)
  // each bound to a free port that the subscribers will connect to.
  absl::Status ConnectPublishers() {
    for (int p = 0; p < options_.pubs; ++p) {
      void* context = zmq_ctx_new();
      void* socket = zmq_socket(
          context, kind_ == ProxyKind::kPubSub ? ZMQ_PUB : ZMQ_PUSH);
      pub_contexts_.push_back(context);
      pub_sockets_.push_back(socket);
      if (socket == nullptr) return ZmqError("zmq_socket");
      SetHighWaterMarks(socket);
      if (kind_ == ProxyKind::kPubSub) {
        const int one = 1;
        zmq_setsockopt(socket, ZMQ_XPUB_NODROP, &one, sizeof(one));
      }
      if (direct_) {
        if (zmq_bind(socket, "tcp://127.0.0.1:0") != 0) {
          return ZmqError("bind tcp://127.0.0.1:0");
        }
        char buf[256];
        size_t len = sizeof(buf);
        if (zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, buf, &len) != 0) {
          return ZmqError("ZMQ_LAST_ENDPOINT");
        }
        sub_endpoints_.emplace_back(buf, len > 0 ? len - 1 : 0);
      } else if (zmq_connect(socket, server_.endpoint.c_str()) != 0) {
        return ZmqError(absl::StrCat("connect ", server_.endpoint));
      }
    }
    return absl::OkStatus();
  }

  // Noise: SUB sockets holding prefixes that never match. Each also
  // subscribes "noiseprobe.<k>." last; once it receives a probe there, all
  // its earlier subscriptions have reached the proxy (one ordered pipe).
  absl::Status ConnectNoise() {
    noise_context_ = zmq_ctx_new();
    const int holders =
        std::max(1, std::min(options_.noise_clients, options_.noise));
    for (int k = 0; k < holders; ++k) {
      void* s = zmq_socket(noise_context_, ZMQ_SUB);
      if (s == nullptr) return ZmqError("zmq_socket");
      noise_sockets_.push_back(s);
      SetHighWaterMarks(s);
      if (zmq_connect(s, server_.backend.c_str()) != 0) {
        return ZmqError(absl::StrCat("connect ", server_.backend));
      }
    }
    for (int i = 0; i < options_.noise; ++i) {
      const std::string prefix = absl::StrCat("noise.", i, ".");
      zmq_setsockopt(noise_sockets_[i % holders], ZMQ_SUBSCRIBE,
                     prefix.data(), prefix.size());
    }
    for (int k = 0; k < holders; ++k) {
      const std::string probe = absl::StrCat("noiseprobe.", k, ".");
      zmq_setsockopt(noise_sockets_[k], ZMQ_SUBSCRIBE, probe.data(),
                     probe.size());
    }
    noise_probe_ = zmq_socket(noise_context_, ZMQ_PUB);
    SetHighWaterMarks(noise_probe_);
    if (zmq_connect(noise_probe_, server_.endpoint.c_str()) != 0) {
      return ZmqError(absl::StrCat("connect ", server_.endpoint));
    }
    std::vector<bool> ready(holders, false);
    int missing = holders;
    const absl::Time deadline = absl::Now() + kReadyTimeout;
    while (missing > 0) {
      for (int k = 0; k < holders; ++k) {
        if (ready[k]) continue;
        const std::string topic = absl::StrCat("noiseprobe.", k, ".x");
        SendFrame(noise_probe_, topic, "probe", ZMQ_DONTWAIT);
      }
      std::this_thread::sleep_for(kProbeInterval);
      for (int k = 0; k < holders; ++k) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        while (zmq_msg_recv(&m, noise_sockets_[k], ZMQ_DONTWAIT) >= 0) {
          if (!ready[k]) {
            ready[k] = true;
            --missing;
          }
        }
        zmq_msg_close(&m);
      }
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(
            "the baseline's noise subscriptions did not reach the proxy");
      }
    }
    return absl::OkStatus();
  }

  // Publishes probes from every publisher until every subscriber has seen
  // one from each (fan-out), or every subscriber has seen one and every
  // publisher's probe reached someone (PUSH/PULL).
  absl::Status WaitUntilRoutesReady(const std::vector<Receiver*>& receivers) {
    std::string probe(options_.size, 'p');
    const absl::Time deadline = absl::Now() + kReadyTimeout;
    while (true) {
      for (int p = 0; p < options_.pubs; ++p) {
        Stamp stamp;
        stamp.publisher = static_cast<uint16_t>(p);
        stamp.seq = kProbeSeq;
        stamp.send_ns = NowNs();
        WriteStamp(stamp, probe.data());
        SendFrame(pub_sockets_[p], options_.topic, probe, ZMQ_DONTWAIT);
      }
      std::this_thread::sleep_for(kProbeInterval);
      bool ready = true;
      if (kind_ == ProxyKind::kPubSub) {
        for (Receiver* r : receivers) {
          for (int p = 0; p < options_.pubs; ++p) {
            ready = ready && r->SawProbeFrom(p);
          }
        }
      } else {
        for (Receiver* r : receivers) ready = ready && r->SawAnyProbe();
        for (int p = 0; p < options_.pubs; ++p) {
          bool someone = false;
          for (Receiver* r : receivers) someone = someone || r->SawProbeFrom(p);
          ready = ready && someone;
        }
      }
      if (ready) return absl::OkStatus();
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(absl::StrCat(
            "baseline subscribers saw no probe within ",
            absl::FormatDuration(kReadyTimeout)));
      }
    }
  }

  const Options options_;
  const bool direct_;  // Mode::kDirect: no proxy
  const ProxyKind kind_;
  const std::string prefix_;
  Server server_;  // none when direct_
  // What every subscriber connects to: the proxy's backend, or (direct)
  // every publisher's bound endpoint.
  std::vector<std::string> sub_endpoints_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> sub_threads_;
  std::vector<void*> pub_contexts_;
  std::vector<void*> pub_sockets_;  // publisher p's thread owns [p] once it runs
  void* noise_context_ = nullptr;
  std::vector<void*> noise_sockets_;
  void* noise_probe_ = nullptr;
};

}  // namespace

std::string PrefixOf(const std::string& pattern) {
  size_t start = 0;
  while (start <= pattern.size()) {
    size_t end = pattern.find('.', start);
    if (end == std::string::npos) end = pattern.size();
    const std::string token = pattern.substr(start, end - start);
    if (token == "*" || token == ">") return pattern.substr(0, start);
    start = end + 1;
  }
  return pattern;
}

std::unique_ptr<Transport> MakeProxyTransport(const Options& options) {
  return std::make_unique<ProxyTransport>(options);
}

}  // namespace sift::bench
