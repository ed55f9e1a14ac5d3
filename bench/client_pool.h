// ClientPool holds many sift Clients (the public C++ client library) and the
// subscriptions they hold, for the workloads where other clients only hold
// subscriptions: the non-matching "noise" and the memory measurement. The
// clients share one ZeroMQ context, so a thousand clients cost a thousand
// client I/O threads rather than three thousand threads.
//
// Thread-safety: not thread-safe; use from one thread (it runs its own
// worker threads inside Connect() and SubscribeAll()).
#ifndef SIFT_BENCH_CLIENT_POOL_H_
#define SIFT_BENCH_CLIENT_POOL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clients/cpp/client.h"

namespace sift::bench {

class ClientPool {
 public:
  // Connects `clients` clients to `endpoint`, `threads` at a time.
  static absl::StatusOr<std::unique_ptr<ClientPool>> Connect(
      const std::string& endpoint, int clients, int threads,
      const std::string& name);
  ClientPool(const ClientPool&) = delete;
  ClientPool& operator=(const ClientPool&) = delete;
  ~ClientPool();  // Close()s.

  // Subscribes pattern_for(i) for i in [0, n), subscription i held by client
  // i % size(), with `threads` Subscribe() calls in flight at a time. Each
  // waits for the broker's answer, so when this returns all are in place.
  absl::Status SubscribeAll(uint64_t n,
                            const std::function<std::string(uint64_t)>& pattern_for,
                            int threads);

  // Closes every client (BYE; the broker drops their subscriptions), then
  // releases the subscriptions and the context.
  void Close();

  int size() const { return static_cast<int>(clients_.size()); }

 private:
  ClientPool() = default;

  void* context_ = nullptr;
  std::vector<std::unique_ptr<Client>> clients_;
  // subs_[c]: the subscriptions of clients_[c].
  std::vector<std::vector<std::unique_ptr<Subscription>>> subs_;
};

}  // namespace sift::bench

#endif  // SIFT_BENCH_CLIENT_POOL_H_
