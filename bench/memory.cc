#include "bench/memory.h"

#include <zmq.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/client_pool.h"
#include "bench/payload.h"
#include "bench/proc.h"
#include "bench/servers.h"

namespace sift::bench {
namespace {

constexpr auto kSettle = std::chrono::milliseconds(500);

absl::StatusOr<ProcSample> Settle(pid_t pid) {
  std::this_thread::sleep_for(kSettle);
  return SampleProcess(pid);
}

void Finish(MemoryResult* r) {
  const double n = static_cast<double>(r->subscriptions);
  if (n <= 0) return;
  r->bytes_per_sub =
      (static_cast<double>(r->rss_subs_bytes) - r->rss_empty_bytes) / n;
  r->bytes_per_sub_excl_clients =
      (static_cast<double>(r->rss_subs_bytes) - r->rss_clients_bytes) / n;
  r->subs_per_s = r->setup_seconds > 0 ? n / r->setup_seconds : 0;
}

}  // namespace

absl::StatusOr<MemoryResult> RunSiftMemory(const Options& options) {
  MemoryResult result;
  result.options = options;
  result.subscriptions = options.memory_subs;
  result.clients = options.memory_clients;
  const uint64_t per_client =
      (options.memory_subs + options.memory_clients - 1) /
      options.memory_clients;
  auto server = StartSiftd(options, per_client);
  if (!server.ok()) return server.status();
  result.server = server->endpoint;
  if (server->pid <= 0) {
    return absl::InvalidArgumentError(
        "memory mode reads the broker's RSS: use --spawn, or --server with "
        "--server_pid");
  }
  if (server->child == nullptr) {
    result.notes.push_back(
        "broker not spawned: \"empty\" RSS is the given broker's RSS at start");
  }
  auto empty = Settle(server->pid);
  if (!empty.ok()) return empty.status();
  result.rss_empty_bytes = empty->rss_bytes;

  auto pool = ClientPool::Connect(server->endpoint, options.memory_clients,
                                  options.memory_threads, "sift-bench-mem");
  if (!pool.ok()) return pool.status();
  auto connected = Settle(server->pid);
  if (!connected.ok()) return connected.status();
  result.rss_clients_bytes = connected->rss_bytes;

  const int64_t t0 = NowNs();
  absl::Status s = (*pool)->SubscribeAll(
      options.memory_subs,
      [](uint64_t i) { return absl::StrCat("mem.", i, ".*"); },
      options.memory_threads);
  if (!s.ok()) return s;
  result.setup_seconds = (NowNs() - t0) / 1e9;
  auto full = Settle(server->pid);
  if (!full.ok()) return full.status();
  result.rss_subs_bytes = full->rss_bytes;
  result.server_cpu_seconds = full->cpu_seconds - connected->cpu_seconds;
  (*pool)->Close();
  result.server_exit_code = server->Stop();
  Finish(&result);
  return result;
}

absl::StatusOr<MemoryResult> RunProxyMemory(const Options& options) {
  MemoryResult result;
  result.options = options;
  result.subscriptions = options.memory_subs;
  result.clients = options.memory_clients;
  auto server = StartProxy(ProxyKind::kPubSub);
  if (!server.ok()) return server.status();
  result.server = absl::StrCat("zmq_proxy XSUB ", server->endpoint,
                               " -> XPUB ", server->backend);
  auto empty = Settle(server->pid);
  if (!empty.ok()) return empty.status();
  result.rss_empty_bytes = empty->rss_bytes;

  const int clients = options.memory_clients;
  void* context = zmq_ctx_new();
  zmq_ctx_set(context, ZMQ_MAX_SOCKETS, clients + 64);
  std::vector<void*> sockets;
  void* probe = zmq_socket(context, ZMQ_PUB);
  auto cleanup = [&] {
    for (void* s : sockets) zmq_close(s);
    if (probe != nullptr) zmq_close(probe);
    zmq_ctx_term(context);
  };
  SetHighWaterMarks(probe);
  zmq_connect(probe, server->endpoint.c_str());
  for (int c = 0; c < clients; ++c) {
    void* s = zmq_socket(context, ZMQ_SUB);
    if (s == nullptr) {
      cleanup();
      return absl::InternalError(
          absl::StrCat("zmq_socket: ", zmq_strerror(zmq_errno())));
    }
    SetHighWaterMarks(s);
    sockets.push_back(s);
    zmq_connect(s, server->backend.c_str());
  }
  // Probes on "<stage>.<c>." reach socket c once its earlier subscriptions
  // have: one ordered pipe per socket.
  auto wait_for_probes = [&](const std::string& stage) -> absl::Status {
    for (int c = 0; c < clients; ++c) {
      const std::string p = absl::StrCat(stage, ".", c, ".");
      zmq_setsockopt(sockets[c], ZMQ_SUBSCRIBE, p.data(), p.size());
    }
    std::vector<bool> ready(clients, false);
    int missing = clients;
    const absl::Time deadline = absl::Now() + absl::Seconds(120);
    while (missing > 0) {
      for (int c = 0; c < clients; ++c) {
        if (ready[c]) continue;
        const std::string topic = absl::StrCat(stage, ".", c, ".x");
        zmq_send(probe, topic.data(), topic.size(), ZMQ_DONTWAIT);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      for (int c = 0; c < clients; ++c) {
        char buf[64];
        while (zmq_recv(sockets[c], buf, sizeof(buf), ZMQ_DONTWAIT) >= 0) {
          if (!ready[c]) {
            ready[c] = true;
            --missing;
          }
        }
      }
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(absl::StrCat(
            missing, " baseline SUB sockets saw no probe within 120s"));
      }
    }
    return absl::OkStatus();
  };
  if (absl::Status s = wait_for_probes("memprobe"); !s.ok()) {
    cleanup();
    return s;
  }
  auto connected = Settle(server->pid);
  if (!connected.ok()) {
    cleanup();
    return connected.status();
  }
  result.rss_clients_bytes = connected->rss_bytes;

  const int64_t t0 = NowNs();
  for (uint64_t i = 0; i < options.memory_subs; ++i) {
    const std::string prefix = absl::StrCat("mem.", i, ".");
    zmq_setsockopt(sockets[i % clients], ZMQ_SUBSCRIBE, prefix.data(),
                   prefix.size());
  }
  if (absl::Status s = wait_for_probes("memdone"); !s.ok()) {
    cleanup();
    return s;
  }
  result.setup_seconds = (NowNs() - t0) / 1e9;
  auto full = Settle(server->pid);
  if (!full.ok()) {
    cleanup();
    return full.status();
  }
  result.rss_subs_bytes = full->rss_bytes;
  result.server_cpu_seconds = full->cpu_seconds - connected->cpu_seconds;
  result.notes.push_back(
      "baseline subscriptions are SUB prefixes \"mem.<i>.\"; the proxy holds "
      "them in its XPUB and again in its XSUB (to resend upstream)");
  // Stop the proxy before closing the sockets: otherwise it first works
  // through a million unsubscriptions.
  result.server_exit_code = server->Stop();
  cleanup();
  Finish(&result);
  return result;
}

}  // namespace sift::bench
