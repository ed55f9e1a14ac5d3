// The sift side of sift-bench: publishers and subscribers are Clients of the
// public C++ client library (clients/cpp/client.h), one Client each, talking
// to siftd (spawned or given). Subscribers receive on their client's I/O
// thread through a callback (or, with --next, on a thread of their own
// through Subscription::Next()). Publishers retry a Publish refused with
// ResourceExhausted after a short pause, never dropping a message. With
// --topics N a subscriber's client subscribes to the N topics from several
// threads at once, so its Subscribe() round trips overlap.
//
// Delivery guarantees (issue 8): with --stream a stream "sift-bench"
// captures the topic(s) (a spawned siftd gets a temporary data directory,
// whose disk's raw fsync rate is probed first); --confirm_window publishes
// with PublishConfirmedAsync, N awaited per publisher Client;
// --ack explicit subscribes with an AckOptions and ACKs every message from
// the callback; --replay reads the stream back after the publishers are
// done, through a stream subscription or FETCH polls.
#ifndef SIFT_BENCH_SIFT_TRANSPORT_H_
#define SIFT_BENCH_SIFT_TRANSPORT_H_

#include <memory>

#include "bench/run.h"
#include "bench/workload.h"

namespace sift::bench {

std::unique_ptr<Transport> MakeSiftTransport(const Options& options);

// The noise subscriptions' patterns: "noise.<i>.*".
std::string NoisePattern(uint64_t i);

}  // namespace sift::bench

#endif  // SIFT_BENCH_SIFT_TRANSPORT_H_
