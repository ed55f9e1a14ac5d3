#include "bench/client_pool.h"

#include <zmq.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bench/parallel_for.h"

namespace sift::bench {

absl::StatusOr<std::unique_ptr<ClientPool>> ClientPool::Connect(
    const std::string& endpoint, int clients, int threads,
    const std::string& name) {
  std::unique_ptr<ClientPool> pool(new ClientPool());
  pool->context_ = zmq_ctx_new();
  // Each client holds a DEALER plus a monitor pair.
  const int max_sockets = 4 * clients + 64;
  zmq_ctx_set(pool->context_, ZMQ_MAX_SOCKETS, max_sockets);
  pool->clients_.resize(clients);
  pool->subs_.resize(clients);
  absl::Status s = ParallelFor(clients, threads, [&](int c) -> absl::Status {
    ClientOptions options;
    options.endpoint = endpoint;
    options.name = absl::StrCat(name, "-", c);
    options.zmq_context = pool->context_;
    options.connect_timeout = absl::Seconds(30);
    auto client = Client::Connect(options);
    if (!client.ok()) return client.status();
    pool->clients_[c] = std::move(*client);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return pool;
}

ClientPool::~ClientPool() { Close(); }

absl::Status ClientPool::SubscribeAll(
    uint64_t n, const std::function<std::string(uint64_t)>& pattern_for,
    int threads) {
  const int clients = size();
  // Work item w: client w % clients, its k-th share of subscriptions, in
  // chunks so many clients are busy at once.
  constexpr uint64_t kChunk = 64;
  const uint64_t per_client = (n + clients - 1) / clients;
  const uint64_t chunks_per_client = (per_client + kChunk - 1) / kChunk;
  const uint64_t items = chunks_per_client * static_cast<uint64_t>(clients);
  std::vector<absl::Mutex> client_mu(clients);
  return ParallelFor(
      static_cast<int>(items), threads, [&](int w) -> absl::Status {
        const int c = w % clients;
        const uint64_t chunk = static_cast<uint64_t>(w / clients);
        absl::MutexLock lock(&client_mu[c]);  // guards subs_[c]
        for (uint64_t k = chunk * kChunk;
             k < std::min(per_client, (chunk + 1) * kChunk); ++k) {
          const uint64_t i = k * clients + c;
          if (i >= n) break;
          SubscribeOptions options;
          options.callback = [](const Message&) {};
          options.timeout = absl::Seconds(30);
          auto sub = clients_[c]->Subscribe(pattern_for(i), options);
          if (!sub.ok()) {
            return absl::Status(
                sub.status().code(),
                absl::StrCat("subscription ", i, " (\"", pattern_for(i),
                             "\"): ", sub.status().message()));
          }
          subs_[c].push_back(std::move(*sub));
        }
        return absl::OkStatus();
      });
}

void ClientPool::Close() {
  if (context_ == nullptr) return;
  // Closing first makes the subscriptions' destructors skip their UNSUB.
  ParallelFor(size(), 16, [&](int c) {
    if (clients_[c]) clients_[c]->Close();
    return absl::OkStatus();
  }).IgnoreError();
  subs_.clear();
  clients_.clear();
  zmq_ctx_term(context_);
  context_ = nullptr;
}

}  // namespace sift::bench
