// The Redis side of sift-bench: the same workload against redis-server
// (spawned or given), through a lean RESP client in this file's .cc, one
// TCP connection per publisher and per subscriber.
//
// Publishers pipeline "PUBLISH <topic> <payload>" into a 32 KiB buffer sent
// when full or when the publisher pauses (Transport::Flush), reading the
// integer replies back without waiting after each send (redis-benchmark -P
// pipelines the same way); a blocked socket is their backpressure.
// Subscribers SUBSCRIBE to the topic, or PSUBSCRIBE when the pattern has a
// wildcard (sift's "*" and ">" both become Redis's glob "*", which also
// crosses dots), wait for the confirmation, and parse "message"/"pmessage"
// pushes on a reader thread each. Noise: PSUBSCRIBE "noise.<i>.*" spread
// over --noise_clients other connections (Redis checks every pattern on
// every PUBLISH). Redis pub/sub has no queue groups: --queue is refused.
#ifndef SIFT_BENCH_REDIS_TRANSPORT_H_
#define SIFT_BENCH_REDIS_TRANSPORT_H_

#include <memory>
#include <string_view>
#include <vector>

#include "bench/run.h"
#include "bench/workload.h"

namespace sift::bench {

std::unique_ptr<Transport> MakeRedisTransport(const Options& options);

// Parses one RESP2 reply at the start of `in`: a simple string (+), error
// (-), integer (:), bulk string ($) or an array (*) of those. Returns the
// bytes it spans and fills *items with its elements (one for a non-array),
// views into `in`: a bulk string's bytes, or a simple string's, error's or
// integer's line with its type character (":1", "-ERR ..."). A null bulk
// string is an empty element. Returns 0 if `in` does not hold all of it
// yet; returns 0 and sets *error for what this client does not expect
// (not RESP, nested arrays).
size_t ParseResp(std::string_view in, std::vector<std::string_view>* items,
                 bool* error);

}  // namespace sift::bench

#endif  // SIFT_BENCH_REDIS_TRANSPORT_H_
