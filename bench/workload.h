// What sift-bench runs (Options, from the command line) and what it measured
// (RunResult for a message run, MemoryResult for a memory run). Plain
// structs, filled by the runners and printed by bench/report.h.
#ifndef SIFT_BENCH_WORKLOAD_H_
#define SIFT_BENCH_WORKLOAD_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sift::bench {

// What is measured: a sift broker; the baseline zmq_proxy; plain ZeroMQ
// with no broker (the transport's limit); nats-server; redis-server.
enum class Mode { kSift, kProxy, kDirect, kNats, kRedis };
const char* ModeName(Mode mode);

// --replay (sift with --stream only): after the publishers are done, the
// subscribers read the stream back from its first record, pushed to a
// stream subscription (kSub) or polled with FETCH (kFetch).
enum class Replay { kNone, kSub, kFetch };
const char* ReplayName(Replay replay);

struct Options {
  Mode mode = Mode::kSift;
  // sift, nats and redis modes: an existing server (--server) or a binary
  // (siftd, nats-server, redis-server) to start on a free 127.0.0.1 port
  // (--spawn). With --server, --server_pid lets the report include the
  // server's CPU and RSS.
  std::string server;
  std::string spawn;
  pid_t server_pid = 0;
  std::vector<std::string> siftd_flags;  // extra flags for a spawned siftd
  // sift: ClientOptions::idle_spin of the subscribers' clients, in us.
  int client_spin_us = 0;

  size_t size = 128;         // payload bytes, >= kStampSize
  uint64_t count = 100000;   // messages per publisher
  int pubs = 1;
  // sift: the publishers share this many Clients (publisher p uses client
  // p mod pub_clients); 0: one Client per publisher.
  int pub_clients = 0;
  int subs = 1;
  std::string topic = "bench.topic";
  std::string pattern;       // subscribers' pattern; empty = topic
  // > 1: publishers spread their messages over the topics "<topic>.<i>",
  // i in [0, topics), round-robin, and every subscriber subscribes to each
  // of them (sift and nats only): a routing table of `topics` entries that
  // all match traffic.
  int topics = 1;
  std::string queue;         // queue group the subscribers join
  double rate = 0;           // total msgs/s over all publishers; 0 = max
  int noise = 0;             // non-matching wildcard subscriptions...
  int noise_clients = 10;    // ...spread over this many other clients
  bool use_next = false;     // sift: Subscription::Next() instead of callback

  // Delivery guarantees (issue 8; sift mode only).
  // Non-empty: the topic(s) are captured by a stream "sift-bench" with this
  // fsync policy ("always", "never", "<N>ms"); a spawned siftd gets a
  // temporary --data_dir, removed after the run.
  std::string stream_fsync;
  // > 0: publishers publish confirmed (PublishConfirmedAsync: answered once
  // routed, and for a stream once the record is durable), each keeping this
  // many confirms outstanding (from its one thread and Client). 0:
  // fire-and-forget.
  int confirm_window = 0;
  // Subscribers use explicit acks (at-least-once) and ACK every message.
  bool ack_explicit = false;
  uint32_t max_in_flight = 0;  // prefetch per subscriber; 0 = broker default
  Replay replay = Replay::kNone;
  uint32_t fetch_batch = 1000;  // --replay fetch: records per FETCH
  // Stream runs on a spawned siftd: seconds of append + fdatasync on the
  // data directory's disk before the run (the raw fsync rate); 0: none.
  double disk_probe_s = 1;
  bool stream() const { return !stream_fsync.empty(); }

  uint64_t memory_subs = 0;  // > 0: memory mode
  int memory_clients = 1000;
  int memory_threads = 32;   // concurrent subscribers during memory setup

  bool json = false;
  bool progress = true;      // a progress line on stderr every ~2 s
  double timeout_s = 300;    // whole-run bound
  double drain_s = 5;        // after publishing: wait this long without
                             // progress before giving up on missing messages

  // The topic publishers send message k to.
  std::string TopicOf(uint64_t k) const {
    return topics > 1 ? topic + "." + std::to_string(k % topics) : topic;
  }
  const std::string& SubscriberPattern() const {
    return pattern.empty() ? topic : pattern;
  }
  bool queue_group() const { return !queue.empty(); }
  // Distinct messages the subscribers must receive in all: every subscriber
  // gets every message (fan-out), or the group shares them (queue group).
  uint64_t ExpectedTotal() const {
    const uint64_t published = count * static_cast<uint64_t>(pubs);
    return queue_group() ? published : published * static_cast<uint64_t>(subs);
  }
};

struct LatencySummary {
  uint64_t count = 0;
  double p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0,
         mean_us = 0;
};

struct PublisherResult {
  int id = 0;
  uint64_t sent = 0;
  uint64_t retries = 0;  // Publish refused (backpressure), retried later
  double seconds = 0;    // first to last send
  double msgs_per_s = 0;
  std::string error;     // non-empty if the publisher stopped on an error
};

struct SubscriberResult {
  int id = 0;
  uint64_t expected = 0;  // 0 in a queue group (members share the messages)
  uint64_t received = 0;  // distinct counted messages
  uint64_t duplicates = 0;
  uint64_t out_of_order = 0;
  uint64_t invalid = 0;
  double seconds = 0;     // first to last message received
  double msgs_per_s = 0;
  double mb_per_s = 0;    // payload bytes, 10^6 bytes per MB
  LatencySummary latency;
};

// CPU and memory of a process over the measured interval.
struct ProcessUsage {
  bool known = false;
  pid_t pid = 0;
  double cpu_seconds = 0;  // used during the run
  uint64_t rss_bytes = 0;  // at the end of the run
  uint64_t peak_rss_bytes = 0;
  // Before the first message, with every client connected and subscribed:
  // what the subscriptions cost, without message buffers.
  uint64_t rss_ready_bytes = 0;
};

// The raw fsync rate of the disk under a stream's data directory: a loop
// of append (`bytes`) + fdatasync on one file, as a stream's log does at
// most once per record.
struct DiskProbeResult {
  bool measured = false;
  std::string dir;
  uint64_t bytes = 0;  // per append
  uint64_t fsyncs = 0;
  double seconds = 0;
  double fsyncs_per_s = 0;
  double p50_us = 0, p99_us = 0;
};

// The stream a run published to, as the broker reported it at the end.
struct StreamResult {
  bool known = false;
  std::string name;
  std::string fsync;
  uint64_t messages = 0;
  uint64_t last_seq = 0;
  uint64_t durable_seq = 0;
  uint64_t bytes = 0;
  uint64_t appended = 0;  // since siftd started
  uint64_t fsyncs = 0;    // ditto: fdatasync calls on its segments
};

struct RunResult {
  Options options;
  std::string server;  // endpoint(s) used
  bool spawned = false;

  uint64_t expected = 0;  // distinct deliveries expected in all
  uint64_t sent = 0;
  uint64_t publish_retries = 0;
  uint64_t received = 0;  // distinct deliveries (queue group: distinct msgs)
  uint64_t duplicates = 0;
  uint64_t out_of_order = 0;
  uint64_t invalid = 0;
  double delivered = 0;   // received / expected
  bool timed_out = false;
  bool complete = false;  // delivered == 1 and nothing duplicated/invalid

  double seconds = 0;     // first to last message received, any subscriber
  double msgs_per_s = 0;  // aggregate: received / seconds
  double mb_per_s = 0;
  double per_sub_msgs_per_s_mean = 0;
  double per_sub_msgs_per_s_min = 0;
  double publish_msgs_per_s = 0;  // all publishers' sends / publish interval
  LatencySummary latency;

  std::vector<PublisherResult> publishers;
  std::vector<SubscriberResult> subscribers;
  ProcessUsage server_usage;  // siftd, or the zmq proxy process
  double bench_cpu_seconds = 0;
  int server_exit_code = 0;   // spawned server's exit code at the end
  // The broker's own counters over the run (sift only): messages_in/out and
  // drops by reason.
  std::map<std::string, uint64_t> server_counters;
  // Confirmed publishes (--confirm_window): publish to confirmation.
  LatencySummary confirm_latency;
  StreamResult stream;    // --stream
  DiskProbeResult disk;   // --stream on a spawned siftd
  double replay_fill_seconds = 0;  // --replay: publishing before the reads
  // Before the first message: starting the server (--spawn), connecting
  // every client and placing every subscription. Not part of any rate.
  double setup_seconds = 0;
  std::vector<std::string> notes;
};

struct MemoryResult {
  Options options;
  std::string server;
  uint64_t subscriptions = 0;
  int clients = 0;
  uint64_t rss_empty_bytes = 0;    // broker before any client connected
  uint64_t rss_clients_bytes = 0;  // with the clients, before subscribing
  uint64_t rss_subs_bytes = 0;     // with every subscription in place
  double bytes_per_sub = 0;        // (rss_subs - rss_empty) / subscriptions
  double bytes_per_sub_excl_clients = 0;  // (rss_subs - rss_clients) / subs
  double setup_seconds = 0;        // time to place all subscriptions
  double subs_per_s = 0;
  double server_cpu_seconds = 0;   // during setup
  int server_exit_code = 0;
  std::vector<std::string> notes;
};

}  // namespace sift::bench

#endif  // SIFT_BENCH_WORKLOAD_H_
