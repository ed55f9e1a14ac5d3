// The servers sift-bench measures: siftd, nats-server and redis-server
// (spawned on a free 127.0.0.1 port, or one already running), and the
// baseline, a plain ZeroMQ zmq_proxy that sift-bench runs as its own hidden
// subcommand in a child process.
//
// Thread-safety: not thread-safe; used from sift-bench's main thread.
#ifndef SIFT_BENCH_SERVERS_H_
#define SIFT_BENCH_SERVERS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/child_process.h"
#include "bench/workload.h"

namespace sift::bench {

// A server under test. `child` is null for a broker sift-bench did not start.
struct Server {
  std::unique_ptr<ChildProcess> child;
  std::string endpoint;  // siftd's endpoint, the proxy's frontend, or the
                         // HOST:PORT of nats-server or redis-server
  std::string backend;   // the proxy's backend (proxy only)
  pid_t pid = 0;         // 0 if unknown
  std::string config_path;  // a temporary file removed by Stop()

  // Stops a spawned server; its exit code (0 if not spawned).
  int Stop();
};

// --spawn PATH: starts siftd with --endpoints=tcp://127.0.0.1:0 (plus
// options.siftd_flags, and a raised --max_subscriptions_per_client when one
// client will hold more than siftd's default allows) and reads the bound
// endpoint back from its log. --server: uses that broker (pid from
// --server_pid).
absl::StatusOr<Server> StartSiftd(const Options& options,
                                  uint64_t subscriptions_per_client);

// --spawn PATH: starts nats-server (PATH) on a free 127.0.0.1 port with a
// temporary configuration that gives a subscriber room for a whole burst
// (max_pending 4 GiB, as siftd gets; NATS's default 64 MiB would cut a
// slow subscriber off), and reads the port back from its log. --server: uses
// that HOST:PORT (pid from --server_pid).
absl::StatusOr<Server> StartNats(const Options& options);

// --spawn PATH: starts redis-server (PATH) on a free 127.0.0.1 port, no
// persistence, and no output limit for pub/sub clients ("pubsub 0 0 0";
// Redis's default, 32 MiB, disconnects a subscriber that falls behind).
// --server: uses that HOST:PORT.
absl::StatusOr<Server> StartRedis(const Options& options);

// How the baseline proxy connects its two sides.
enum class ProxyKind {
  kPubSub,    // XSUB frontend (publishers' PUB) -> XPUB backend (SUBs)
  kPushPull,  // PULL frontend (publishers' PUSH) -> PUSH backend (PULLs)
};

// Starts `sift-bench proxy-server` (this executable) on two free 127.0.0.1
// ports and reads the endpoints back from its output.
absl::StatusOr<Server> StartProxy(ProxyKind kind);

// The high-water mark sift's broker and client use by default; the baseline
// sets it on every socket.
inline constexpr int kHighWaterMark = 1000000;

// Sets kHighWaterMark both ways and linger 0 on a baseline ZeroMQ socket.
void SetHighWaterMarks(void* socket);

// `sift-bench proxy-server --frontend EP --backend EP [--kind pubsub|pushpull]`:
// binds both sides (ports may be 0), prints
// "proxy-server: ready frontend=EP backend=EP" and runs zmq_proxy until
// SIGTERM or SIGINT, then exits 0. argv[0] is "proxy-server".
int ProxyServerMain(int argc, char** argv);

}  // namespace sift::bench

#endif  // SIFT_BENCH_SERVERS_H_
