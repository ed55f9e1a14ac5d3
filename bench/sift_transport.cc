#include "bench/sift_transport.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/client_pool.h"
#include "bench/disk_probe.h"
#include "bench/parallel_for.h"
#include "bench/payload.h"
#include "bench/servers.h"
#include "clients/cpp/client.h"

namespace sift::bench {
namespace {

// Pause before retrying a Publish the client refused (its send queue is
// full): long enough to let the I/O thread drain some, short enough not to
// idle the pipeline.
constexpr auto kBackoff = std::chrono::microseconds(200);

// --stream: the stream the run publishes to.
constexpr char kStreamName[] = "sift-bench";
// How long a confirmed publish may wait for its OK: a stream with
// fsync=always under a deep window on a slow disk answers late, not never.
constexpr absl::Duration kConfirmTimeout = absl::Seconds(60);
// --replay fetch: how long one FETCH waits for its batch.
constexpr absl::Duration kFetchWait = absl::Milliseconds(100);
// --topics: Subscribe() calls a subscriber's client has in flight at once
// while it subscribes to the topics (see SubscribeReceiver). Setup is then
// bound by CPU (each call blocks, so each costs a thread wake-up), not by
// round trips: on the 2-CPU machine 32 to 128 place 300,000 in about the
// same time, 8 take twice as long.
constexpr int kSubscribeThreads = 64;

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
    Options spawn_options = options_;
    if (options_.stream() && !options_.spawn.empty()) {
      auto dir = MakeTempDir("sift-bench-data-");
      if (!dir.ok()) return dir.status();
      data_dir_ = *dir;
      if (options_.disk_probe_s > 0) {
        auto probe =
            ProbeFsync(data_dir_, options_.size, options_.disk_probe_s);
        if (!probe.ok()) return probe.status();
        disk_ = *probe;
      }
      spawn_options.siftd_flags.push_back("--data_dir=" + data_dir_);
    }
    auto server = StartSiftd(
        spawn_options,
        std::max<uint64_t>((options_.noise + holders - 1) / holders,
                           static_cast<uint64_t>(options_.topics)));
    if (!server.ok()) return server.status();
    server_ = std::move(*server);

    auto control = Connect("sift-bench-control");
    if (!control.ok()) return control.status();
    control_ = std::move(*control);

    if (options_.stream()) {
      // A running broker may hold one from an earlier run.
      (void)control_->DeleteStream(kStreamName);
      StreamConfig config;
      config.name = kStreamName;
      config.subjects = {options_.topics > 1 ? options_.topic + ".*"
                                             : options_.topic};
      config.fsync = options_.stream_fsync;
      auto info = control_->AddStream(config);
      if (!info.ok()) {
        return absl::Status(info.status().code(),
                            absl::StrCat("add stream: ",
                                         info.status().message()));
      }
      stream_added_ = true;
    }

    receivers_ = receivers;
    for (size_t i = 0; i < receivers.size(); ++i) {
      auto client = Connect(absl::StrCat("sift-bench-sub-", i),
                            absl::Microseconds(options_.client_spin_us));
      if (!client.ok()) return client.status();
      sub_clients_.push_back(std::move(*client));
      if (options_.replay != Replay::kNone) continue;  // StartReplay()
      if (absl::Status s = SubscribeReceiver(i); !s.ok()) return s;
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

    const int pub_clients =
        options_.pub_clients > 0 ? options_.pub_clients : options_.pubs;
    for (int p = 0; p < pub_clients; ++p) {
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

  absl::Status SendConfirmedAsync(
      int p, uint64_t seq, std::string_view payload,
      std::function<void(absl::Status)> done) override {
    const std::string& topic = topics_[seq % topics_.size()];
    return pub_clients_[p % pub_clients_.size()]->PublishConfirmedAsync(
        topic, payload, no_publish_options_,
        [this, done = std::move(done)](absl::Status s, const PublishAck& ack) {
          if (s.ok() && options_.stream() && ack.stream_seq == 0) {
            unsequenced_.fetch_add(1, std::memory_order_relaxed);
          }
          done(std::move(s));
        },
        kConfirmTimeout);
  }

  absl::Status StartReplay() override {
    if (auto info = WaitForStream(); !info.ok()) return info.status();
    for (size_t i = 0; i < receivers_.size(); ++i) {
      if (options_.replay == Replay::kFetch) {
        fetch_threads_.emplace_back([this, i] { FetchLoop(i); });
      } else if (absl::Status s = SubscribeReceiver(i); !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

  void CollectDurability(RunResult* result) override {
    result->disk = disk_;
    if (options_.stream() && control_) {
      auto info = WaitForStream();
      if (info.ok()) {
        StreamResult& st = result->stream;
        st.known = true;
        st.name = info->config.name;
        st.fsync = info->config.fsync;
        st.messages = info->messages;
        st.last_seq = info->last_seq;
        st.durable_seq = info->durable_seq;
        st.bytes = info->bytes;
        st.appended = info->appended;
        st.fsyncs = info->fsyncs;
      } else {
        result->notes.push_back(absl::StrCat("stream info: ",
                                             info.status().message()));
      }
    }
    if (const uint64_t n = unsequenced_.load(); n > 0) {
      result->notes.push_back(absl::StrCat(
          n, " confirmed publishes had no stream_seq (no stream took them)"));
    }
    if (const uint64_t n = ack_errors_.load(); n > 0) {
      result->notes.push_back(absl::StrCat(n, " Ack() calls failed"));
    }
    std::lock_guard<std::mutex> l(fetch_mu_);
    for (const std::string& e : fetch_errors_) result->notes.push_back(e);
  }

  absl::Status Send(int p, std::string_view payload,
                    uint64_t* retries) override {
    Client& client = *pub_clients_[p % pub_clients_.size()];
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
    if (options_.ack_explicit) {
      // The ACKs the subscribers queued reach the broker before their
      // PINGs' PONGs come back: the counts then hold every one of them.
      for (auto& c : sub_clients_) (void)c->Flush(absl::Seconds(5));
    }
    std::map<std::string, uint64_t> now = Counters();
    for (const auto& [name, value] : now) {
      auto it = baseline_.find(name);
      (*out)[name] = value - (it == baseline_.end() ? 0 : it->second);
    }
  }

  void Disconnect() override {
    stop_.store(true);
    for (std::thread& t : fetch_threads_) t.join();
    fetch_threads_.clear();
    // Publishers first: Close() flushes what they still queue (bounded).
    for (auto& c : pub_clients_) c->Close();
    for (auto& c : sub_clients_) c->Close();  // ends Next() with Cancelled
    for (std::thread& t : next_threads_) t.join();
    next_threads_.clear();
    subs_.clear();
    sub_clients_.clear();
    pub_clients_.clear();
    noise_.reset();
    // A broker sift-bench did not start keeps no stream of ours.
    if (control_ && stream_added_ && server_.child == nullptr) {
      (void)control_->DeleteStream(kStreamName);
    }
    stream_added_ = false;
    if (control_) control_->Close();
    control_.reset();
  }

  int StopServer() override {
    const int code = server_.Stop();
    if (!data_dir_.empty()) {
      if (!RemoveTree(data_dir_)) {
        std::fprintf(stderr, "sift-bench: could not remove all of %s\n",
                     data_dir_.c_str());
      }
      data_dir_.clear();
    }
    return code;
  }
  pid_t server_pid() const override { return server_.pid; }
  std::string server_description() const override { return server_.endpoint; }
  bool spawned() const override { return server_.child != nullptr; }

 private:
  // The stream's info once it has caught up: the broker appends on a writer
  // thread of its own, so records may still be queued for the log (and
  // fsyncs pending) after every subscriber has its messages, and
  // fire-and-forget publishes may still be on their way. Waits (bounded)
  // until it holds every message published, durable, or stops moving for
  // 2 s.
  absl::StatusOr<StreamInfo> WaitForStream() {
    const uint64_t total =
        options_.count * static_cast<uint64_t>(options_.pubs);
    std::pair<uint64_t, uint64_t> last{0, 0};
    absl::Time changed = absl::Now();
    const absl::Time give_up = changed + absl::Seconds(60);
    while (true) {
      auto info = control_->GetStreamInfo(kStreamName);
      if (!info.ok()) return info.status();
      if (info->last_seq >= total && info->durable_seq >= info->last_seq) {
        return info;
      }
      const std::pair<uint64_t, uint64_t> now{info->last_seq,
                                              info->durable_seq};
      if (now != last) {
        last = now;
        changed = absl::Now();
      } else if (absl::Now() - changed > absl::Seconds(2) ||
                 absl::Now() > give_up) {
        return info;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // Subscribes receiver i's client (live routing, or with --replay sub the
  // stream from its first record), acking each message with --ack explicit.
  absl::Status SubscribeReceiver(size_t i) {
    Receiver* receiver = receivers_[i];
    Client* client = sub_clients_[i].get();
    const bool ack = options_.ack_explicit;
    SubscribeOptions so;
    so.queue_group = options_.queue;
    if (ack) so.ack = Policy();
    if (options_.replay == Replay::kSub) {
      so.stream = StreamStart{kStreamName, "", DeliverPolicy::kAll};
    }
    if (!options_.use_next) {
      // Acked before it is recorded, so that the run's end (its last
      // message recorded) comes after the last Ack() is queued.
      so.callback = [this, receiver, client, ack](const Message& m) {
        if (ack && !client->Ack(m).ok()) {
          ack_errors_.fetch_add(1, std::memory_order_relaxed);
        }
        receiver->Record(m.payload());
      };
    }
    // --topics: every topic but the last gets its own subscription here, on
    // this receiver's client; the last one is `sub` below. Each Subscribe()
    // waits for the broker's OK, so one caller places one subscription per
    // round trip (5 to 9 s per 100,000 on the 2-CPU machine); kSubscribeThreads
    // callers on the same Client (thread-safe, client.h) keep that many SUBs
    // in flight (~13 s per million there). Every one has been answered OK
    // when ParallelFor returns, so the routes exist before the first PUB.
    if (options_.topics > 1) {
      std::vector<std::unique_ptr<Subscription>> extra(options_.topics - 1);
      absl::Status s = ParallelFor(
          options_.topics - 1, kSubscribeThreads, [&](int t) -> absl::Status {
            const std::string topic = options_.TopicOf(t);
            auto sub = client->Subscribe(topic, so);
            if (!sub.ok()) {
              return absl::Status(sub.status().code(),
                                  absl::StrCat("subscribe \"", topic, "\": ",
                                               sub.status().message()));
            }
            extra[t] = std::move(*sub);
            return absl::OkStatus();
          });
      subs_.reserve(subs_.size() + extra.size() + 1);
      for (auto& sub : extra) {
        if (sub) subs_.push_back(std::move(sub));
      }
      if (!s.ok()) return s;
    }
    const std::string pattern = options_.topics > 1
                                    ? options_.TopicOf(options_.topics - 1)
                                    : options_.SubscriberPattern();
    auto sub = client->Subscribe(pattern, so);
    if (!sub.ok()) {
      return absl::Status(sub.status().code(),
                          absl::StrCat("subscribe \"", pattern, "\": ",
                                       sub.status().message()));
    }
    if (options_.use_next) {
      Subscription* s = sub->get();
      next_threads_.emplace_back([this, s, receiver, client, ack] {
        while (!stop_.load(std::memory_order_relaxed)) {
          auto m = s->Next(absl::Milliseconds(100));
          if (m.ok()) {
            if (ack && !client->Ack(*m).ok()) {  // before, as above
              ack_errors_.fetch_add(1, std::memory_order_relaxed);
            }
            receiver->Record(m->payload());
          } else if (absl::IsCancelled(m.status())) {
            return;
          }
        }
      });
    }
    subs_.push_back(std::move(*sub));
    return absl::OkStatus();
  }

  // --ack explicit: the broker's defaults, but room for the whole run in
  // the broker's queue (its default, 100,000, would dead-letter the rest of
  // an unpaced burst) and --max_in_flight.
  AckOptions Policy() const {
    AckOptions a;
    if (options_.max_in_flight > 0) a.max_in_flight = options_.max_in_flight;
    const uint64_t total =
        options_.count * static_cast<uint64_t>(options_.pubs);
    a.max_queued = static_cast<uint32_t>(
        std::min<uint64_t>(std::max<uint64_t>(total, 100000), UINT32_MAX));
    return a;
  }

  // --replay fetch: receiver i polls the stream until it has every record:
  // an ephemeral read from the next sequence number, or with --ack explicit
  // a durable consumer of its own whose records it acknowledges.
  void FetchLoop(size_t i) {
    Receiver* receiver = receivers_[i];
    Client* client = sub_clients_[i].get();
    const uint64_t want =
        options_.count * static_cast<uint64_t>(options_.pubs);
    FetchOptions fo;
    fo.start.stream = kStreamName;
    fo.batch = options_.fetch_batch;
    fo.max_wait = kFetchWait;
    if (options_.ack_explicit) {
      fo.start.consumer = absl::StrCat("sift-bench-fetch-", i);
      fo.start.deliver = DeliverPolicy::kAll;
      fo.ack = Policy();
    } else {
      fo.start.deliver = DeliverPolicy::kFromSeq;
    }
    uint64_t next = 1;  // sequence numbers start at 1
    while (!stop_.load(std::memory_order_relaxed) &&
           receiver->unique() < want) {
      fo.start.start_seq = next;
      auto got = client->Fetch(fo, absl::Seconds(10));
      if (!got.ok()) {
        std::lock_guard<std::mutex> l(fetch_mu_);
        fetch_errors_.push_back(absl::StrCat("fetch by subscriber ", i,
                                             " stopped: ",
                                             got.status().message()));
        return;
      }
      for (const Message& m : *got) {
        receiver->Record(m.payload());
        next = std::max(next, m.stream_seq() + 1);
        if (options_.ack_explicit && !client->Ack(m).ok()) {
          ack_errors_.fetch_add(1, std::memory_order_relaxed);
        }
      }
    }
  }

  // idle_spin: subscribers' only (--client_spin_us); a publisher's sends
  // do not wait for its I/O thread.
  absl::StatusOr<std::unique_ptr<Client>> Connect(
      const std::string& name,
      absl::Duration idle_spin = absl::ZeroDuration()) {
    ClientOptions co;
    co.endpoint = server_.endpoint;
    co.name = name;
    co.idle_spin = idle_spin;
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
    if (options_.ack_explicit) {
      const auto& d = stats->deliveries();
      out["deliveries.acks"] = d.acks();
      out["deliveries.redeliveries"] = d.redeliveries();
      out["deliveries.expired"] = d.expired();
      out["deliveries.dead_letters"] = d.dead_letters();
    }
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

  std::vector<Receiver*> receivers_;     // Prepare()'s, one per sub client
  std::vector<std::thread> fetch_threads_;
  const PublishOptions no_publish_options_;
  std::string data_dir_;  // a spawned siftd's temporary --data_dir
  bool stream_added_ = false;
  DiskProbeResult disk_;
  std::atomic<uint64_t> unsequenced_{0};
  std::atomic<uint64_t> ack_errors_{0};
  std::mutex fetch_mu_;
  std::vector<std::string> fetch_errors_;  // guarded by fetch_mu_
};

}  // namespace

std::string NoisePattern(uint64_t i) { return absl::StrCat("noise.", i, ".*"); }

std::unique_ptr<Transport> MakeSiftTransport(const Options& options) {
  return std::make_unique<SiftTransport>(options);
}

}  // namespace sift::bench
