#include "bench/sift_transport.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/client_pool.h"
#include "bench/payload.h"
#include "bench/servers.h"
#include "clients/cpp/client.h"

namespace sift::bench {
namespace {

// Pause before retrying a Publish the client refused (its send queue is
// full): long enough to let the I/O thread drain some, short enough not to
// idle the pipeline.
constexpr auto kBackoff = std::chrono::microseconds(200);

class SiftTransport : public Transport {
 public:
  explicit SiftTransport(const Options& options) : options_(options) {}
  ~SiftTransport() override {
    Disconnect();
    StopServer();
  }

  absl::Status Prepare(const std::vector<Receiver*>& receivers) override {
    // The noise subscriptions are spread over this many clients.
    const int holders =
        std::max(1, std::min(options_.noise_clients, options_.noise));
    auto server = StartSiftd(
        options_, std::max<uint64_t>((options_.noise + holders - 1) / holders,
                                     static_cast<uint64_t>(options_.topics)));
    if (!server.ok()) return server.status();
    server_ = std::move(*server);

    auto control = Connect("sift-bench-control");
    if (!control.ok()) return control.status();
    control_ = std::move(*control);

    for (size_t i = 0; i < receivers.size(); ++i) {
      Receiver* receiver = receivers[i];
      auto client = Connect(absl::StrCat("sift-bench-sub-", i));
      if (!client.ok()) return client.status();
      SubscribeOptions so;
      so.queue_group = options_.queue;
      if (!options_.use_next) {
        so.callback = [receiver](const Message& m) {
          receiver->Record(m.payload());
        };
      }
      // --topics: every topic but the last gets its own subscription here;
      // the last one is `sub` below.
      for (int t = 0; t + 1 < options_.topics; ++t) {
        auto extra = (*client)->Subscribe(options_.TopicOf(t), so);
        if (!extra.ok()) return extra.status();
        subs_.push_back(std::move(*extra));
      }
      const std::string pattern = options_.topics > 1
                                      ? options_.TopicOf(options_.topics - 1)
                                      : options_.SubscriberPattern();
      auto sub = (*client)->Subscribe(pattern, so);
      if (!sub.ok()) {
        return absl::Status(sub.status().code(),
                            absl::StrCat("subscribe \"", pattern, "\": ",
                                         sub.status().message()));
      }
      if (options_.use_next) {
        Subscription* s = sub->get();
        next_threads_.emplace_back([this, s, receiver] {
          while (!stop_.load(std::memory_order_relaxed)) {
            auto m = s->Next(absl::Milliseconds(100));
            if (m.ok()) {
              receiver->Record(m->payload());
            } else if (absl::IsCancelled(m.status())) {
              return;
            }
          }
        });
      }
      sub_clients_.push_back(std::move(*client));
      subs_.push_back(std::move(*sub));
    }

    if (options_.noise > 0) {
      auto pool = ClientPool::Connect(server_.endpoint, holders, holders,
                                      "sift-bench-noise");
      if (!pool.ok()) return pool.status();
      noise_ = std::move(*pool);
      if (absl::Status s = noise_->SubscribeAll(
              static_cast<uint64_t>(options_.noise), NoisePattern, holders);
          !s.ok()) {
        return s;
      }
    }

    for (int p = 0; p < options_.pubs; ++p) {
      auto client = Connect(absl::StrCat("sift-bench-pub-", p));
      if (!client.ok()) return client.status();
      pub_clients_.push_back(std::move(*client));
    }
    for (int t = 0; t < options_.topics; ++t) {
      topics_.push_back(options_.TopicOf(t));
    }
    next_topic_.assign(options_.pubs, 0);
    // Each Subscribe() above returned after the broker's OK, so the routes
    // exist before the first PUB.
    baseline_ = Counters();
    return absl::OkStatus();
  }

  absl::Status Send(int p, std::string_view payload,
                    uint64_t* retries) override {
    Client& client = *pub_clients_[p];
    size_t& t = next_topic_[p];
    const std::string& topic = topics_[t];
    if (++t == topics_.size()) t = 0;
    while (true) {
      absl::Status s = client.Publish(topic, payload);
      if (s.ok()) return s;
      if (!absl::IsResourceExhausted(s)) return s;
      ++*retries;
      std::this_thread::sleep_for(kBackoff);
    }
  }

  void CollectServerCounters(std::map<std::string, uint64_t>* out) override {
    std::map<std::string, uint64_t> now = Counters();
    for (const auto& [name, value] : now) {
      auto it = baseline_.find(name);
      (*out)[name] = value - (it == baseline_.end() ? 0 : it->second);
    }
  }

  void Disconnect() override {
    stop_.store(true);
    // Publishers first: Close() flushes what they still queue (bounded).
    for (auto& c : pub_clients_) c->Close();
    for (auto& c : sub_clients_) c->Close();  // ends Next() with Cancelled
    for (std::thread& t : next_threads_) t.join();
    next_threads_.clear();
    subs_.clear();
    sub_clients_.clear();
    pub_clients_.clear();
    noise_.reset();
    if (control_) control_->Close();
    control_.reset();
  }

  int StopServer() override { return server_.Stop(); }
  pid_t server_pid() const override { return server_.pid; }
  std::string server_description() const override { return server_.endpoint; }
  bool spawned() const override { return server_.child != nullptr; }

 private:
  absl::StatusOr<std::unique_ptr<Client>> Connect(const std::string& name) {
    ClientOptions co;
    co.endpoint = server_.endpoint;
    co.name = name;
    return Client::Connect(co);
  }

  // messages_in/out and drops by reason, from the broker's STATS.
  std::map<std::string, uint64_t> Counters() {
    std::map<std::string, uint64_t> out;
    if (!control_) return out;
    auto stats = control_->Stats(absl::Seconds(5));
    if (!stats.ok()) return out;
    out["messages_in"] = stats->messages_in();
    out["messages_out"] = stats->messages_out();
    out["errors_sent"] = stats->errors_sent();
    for (const auto& d : stats->drops()) {
      out[absl::StrCat("drops.", d.reason())] = d.count();
    }
    return out;
  }

  const Options options_;
  Server server_;
  std::unique_ptr<Client> control_;
  std::vector<std::unique_ptr<Client>> sub_clients_;
  std::vector<std::unique_ptr<Subscription>> subs_;
  std::vector<std::unique_ptr<Client>> pub_clients_;
  std::unique_ptr<ClientPool> noise_;
  std::vector<std::string> topics_;  // what publishers send to, round-robin
  std::vector<size_t> next_topic_;   // publisher p's thread owns [p]
  std::vector<std::thread> next_threads_;
  std::atomic<bool> stop_{false};
  std::map<std::string, uint64_t> baseline_;
};

}  // namespace

std::string NoisePattern(uint64_t i) { return absl::StrCat("noise.", i, ".*"); }

std::unique_ptr<Transport> MakeSiftTransport(const Options& options) {
  return std::make_unique<SiftTransport>(options);
}

}  // namespace sift::bench
