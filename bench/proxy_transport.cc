#include "bench/proxy_transport.h"

#include <zmq.h>

#include <atomic>
#include <cerrno>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
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

// Sends [topic][payload]; blocks while the socket is at its water mark.
bool SendTwoFrames(void* socket, const std::string& topic,
                   std::string_view payload, int flags) {
  while (zmq_send(socket, topic.data(), topic.size(), ZMQ_SNDMORE | flags) <
         0) {
    if (zmq_errno() != EINTR) return false;
  }
  while (zmq_send(socket, payload.data(), payload.size(), flags) < 0) {
    if (zmq_errno() != EINTR) return false;
  }
  return true;
}

class ProxyTransport : public Transport {
 public:
  explicit ProxyTransport(const Options& options)
      : options_(options),
        kind_(options.queue_group() ? ProxyKind::kPushPull
                                    : ProxyKind::kPubSub),
        prefix_(PrefixOf(options.SubscriberPattern())) {}
  ~ProxyTransport() override {
    Disconnect();
    StopServer();
  }

  absl::Status Prepare(const std::vector<Receiver*>& receivers) override {
    auto server = StartProxy(kind_);
    if (!server.ok()) return server.status();
    server_ = std::move(*server);

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

    if (options_.noise > 0 && kind_ == ProxyKind::kPubSub) {
      if (absl::Status s = ConnectNoise(); !s.ok()) return s;
    }

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
      if (zmq_connect(socket, server_.endpoint.c_str()) != 0) {
        return ZmqError(absl::StrCat("connect ", server_.endpoint));
      }
    }
    return WaitUntilRoutesReady(receivers);
  }

  absl::Status Send(int p, std::string_view payload,
                    uint64_t* retries) override {
    if (!SendTwoFrames(pub_sockets_[p], options_.topic, payload, 0)) {
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
    return absl::StrCat("zmq_proxy ",
                        kind_ == ProxyKind::kPubSub ? "XSUB " : "PULL ",
                        server_.endpoint, " -> ",
                        kind_ == ProxyKind::kPubSub ? "XPUB " : "PUSH ",
                        server_.backend);
  }
  bool spawned() const override { return true; }

  std::vector<std::string> notes() const override {
    std::vector<std::string> notes;
    if (kind_ == ProxyKind::kPushPull) {
      notes.push_back(
          "queue group: PUB/SUB cannot share messages among members, so the "
          "baseline is PUSH -> zmq_proxy(PULL->PUSH) -> PULL, round-robin");
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
    if (zmq_connect(socket, server_.backend.c_str()) != 0) {
      failed->fetch_add(1);
      zmq_close(socket);
      zmq_ctx_term(context);
      return;
    }
    connected->fetch_add(1);
    zmq_msg_t topic, payload;
    zmq_msg_init(&topic);
    zmq_msg_init(&payload);
    while (!stop_.load(std::memory_order_relaxed)) {
      zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
      if (zmq_poll(&item, 1, 100) <= 0) continue;
      while (zmq_msg_recv(&topic, socket, ZMQ_DONTWAIT) >= 0) {
        if (!zmq_msg_more(&topic)) continue;
        zmq_msg_recv(&payload, socket, 0);
        receiver->Record(
            std::string_view(static_cast<const char*>(zmq_msg_data(&payload)),
                             zmq_msg_size(&payload)),
            NowNs());
      }
    }
    zmq_msg_close(&topic);
    zmq_msg_close(&payload);
    zmq_close(socket);
    zmq_ctx_term(context);
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
        SendTwoFrames(noise_probe_, topic, "probe", ZMQ_DONTWAIT);
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
        SendTwoFrames(pub_sockets_[p], options_.topic, probe, ZMQ_DONTWAIT);
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
  const ProxyKind kind_;
  const std::string prefix_;
  Server server_;
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
