// The NATS side of sift-bench: the same workload against nats-server
// (spawned or given), through a lean client in this file's .cc that speaks
// the NATS text protocol over one TCP connection per publisher and per
// subscriber, as `nats bench` gives each its own connection.
//
// Publishers write "PUB <topic> <n>\r\n<payload>\r\n" into a 32 KiB buffer
// sent when full (nats.go's buffered writer) or when the publisher pauses
// (Transport::Flush: paced runs, the end); a blocked socket is their
// backpressure, nothing is dropped by the client. Subscribers "SUB
// <pattern> [<queue>] <sid>" (NATS patterns are sift's: "*" one token, ">"
// the rest) and parse "MSG" on a reader thread each; a PING/PONG round trip
// after SUB confirms the subscription is in place before the run. Noise:
// "noise.<i>.*" SUBs spread over --noise_clients other connections.
#ifndef SIFT_BENCH_NATS_TRANSPORT_H_
#define SIFT_BENCH_NATS_TRANSPORT_H_

#include <memory>

#include "bench/run.h"
#include "bench/workload.h"

namespace sift::bench {

std::unique_ptr<Transport> MakeNatsTransport(const Options& options);

}  // namespace sift::bench

#endif  // SIFT_BENCH_NATS_TRANSPORT_H_
