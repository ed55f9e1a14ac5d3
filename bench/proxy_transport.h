// The baseline side of sift-bench: the same workload through a plain ZeroMQ
// zmq_proxy in a child process (`sift-bench proxy-server`).
//
// Fan-out (no --queue): publishers' PUB -> proxy XSUB | XPUB -> subscribers'
// SUB, each SUB subscribed to the prefix of the subscribers' pattern up to
// its first wildcard. Queue group (--queue): PUB/SUB cannot share messages
// among members, so the baseline is PUSH -> proxy PULL | PUSH -> PULL
// (round-robin). Noise (--noise N, fan-out only): N extra SUB prefixes
// "noise.<i>." spread over --noise_clients other SUB sockets.
//
// Every socket uses sift's high-water mark (1,000,000 messages); the proxy's
// XPUB and the publishers' PUB set ZMQ_XPUB_NODROP, so a full queue blocks
// the sender instead of dropping. Each message is one frame, [topic] NUL
// [payload], built in place (one copy of the payload, as zmq_send makes):
// bench/plain_zmq_proxy.cc is the check that this costs no more per message
// than a minimal ZeroMQ program.
//
// --mode direct: the same sockets with no proxy at all (each publisher's PUB
// or PUSH binds a free port, every subscriber connects to all of them), the
// physical limit of ZeroMQ over loopback on this machine.
//
// Publishers and subscribers each have their own thread and ZeroMQ context,
// like sift Clients. Before the run, probe messages are published until
// every subscriber has seen one from every publisher (subscriptions have
// propagated); probes are never counted.
#ifndef SIFT_BENCH_PROXY_TRANSPORT_H_
#define SIFT_BENCH_PROXY_TRANSPORT_H_

#include <memory>
#include <string>

#include "bench/run.h"
#include "bench/workload.h"

namespace sift::bench {

std::unique_ptr<Transport> MakeProxyTransport(const Options& options);

// The SUB prefix equivalent to a sift pattern: the pattern up to its first
// wildcard token ("a.b.*" -> "a.b.", "a.>" -> "a."), the whole pattern if it
// has none.
std::string PrefixOf(const std::string& pattern);

}  // namespace sift::bench

#endif  // SIFT_BENCH_PROXY_TRANSPORT_H_
