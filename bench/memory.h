// Memory mode (--memory_subs N --memory_clients M): the server's resident
// memory with N subscriptions held by M clients, and the bytes per
// subscription beyond the empty server.
//
// sift: M Clients (sharing one ZeroMQ context) subscribe "mem.<i>.*" for
// i in [0, N), subscription i on client i % M, each confirmed by the broker.
// Baseline: M SUB sockets on the proxy's XPUB subscribe the prefixes
// "mem.<i>."; a probe on a last prefix per socket confirms they all reached
// the proxy. RSS is sampled (VmRSS) after a short settle: before any client,
// with the clients connected, and with every subscription in place.
#ifndef SIFT_BENCH_MEMORY_H_
#define SIFT_BENCH_MEMORY_H_

#include "absl/status/statusor.h"
#include "bench/workload.h"

namespace sift::bench {

absl::StatusOr<MemoryResult> RunSiftMemory(const Options& options);
absl::StatusOr<MemoryResult> RunProxyMemory(const Options& options);

}  // namespace sift::bench

#endif  // SIFT_BENCH_MEMORY_H_
