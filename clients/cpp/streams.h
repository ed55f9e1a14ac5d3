// Durable streams in the C++ client's API (docs/client.md, "Streams";
// the wire form is in proto/sift.proto): plain structs for a stream's
// settings and state, where a consumer starts reading, and what a confirmed
// publish to a stream answers. Included by client.h; the calls that use them
// are Client::AddStream, GetStreamInfo, ListStreams, DeleteStream,
// DeleteConsumer, Fetch, Subscribe (SubscribeOptions::stream) and
// PublishConfirmedWith (PublishAck).
//
// Thread-safety: plain values, no shared state.
#ifndef SIFT_CLIENTS_CPP_STREAMS_H_
#define SIFT_CLIENTS_CPP_STREAMS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace sift {

// The header a publish carries to be deduplicated by a stream (JetStream's
// Nats-Msg-Id): a second publish with the same value within the stream's
// dedup window, and among its last StreamConfig::dedup_max_ids ids, is not
// stored again (PublishAck::duplicate).
inline constexpr char kMsgIdHeader[] = "sift-msg-id";

// Where a stream consumer starts reading (JetStream's deliver policy).
enum class DeliverPolicy {
  kNew = 0,       // records appended from now on
  kAll = 1,       // the stream's first record on
  kFromSeq = 2,   // StreamStart::start_seq on (the first record, if older)
  kFromTime = 3,  // the first record stamped at or after start_time
};

// A consumer of a stream: which stream, whether it is durable, and where it
// starts. A named (durable) consumer keeps its acknowledged position in the
// broker's data directory and resumes there after a reconnect or a broker
// restart; `deliver` applies only when the broker creates it. An unnamed
// (ephemeral) one lives as long as its subscription (or one Fetch) and
// starts per `deliver`.
struct StreamStart {
  std::string stream;    // the stream's name
  std::string consumer;  // durable consumer name; empty = ephemeral
  DeliverPolicy deliver = DeliverPolicy::kNew;
  uint64_t start_seq = 0;                       // kFromSeq only
  absl::Time start_time = absl::UnixEpoch();    // kFromTime only (ms precision)
};

// A stream's settings (docs/delivery.md §3). Zero limits mean unlimited;
// zero or empty settings take the broker's defaults (shown).
struct StreamConfig {
  // 1 to 64 characters of [A-Za-z0-9_-].
  std::string name;
  // Topic patterns (`*`, `>` allowed) whose publishes the stream appends.
  std::vector<std::string> subjects;
  // Retention: records older than max_age, or beyond max_bytes (of segment
  // files) or max_msgs, are removed oldest first. Milliseconds precision.
  absl::Duration max_age = absl::ZeroDuration();
  uint64_t max_bytes = 0;
  uint64_t max_msgs = 0;
  // When records are fsynced: "always" (every confirmed publish waits for
  // its fsync; group commit), "never" (left to the OS), or "<N>ms" (at most
  // N ms after the write). Empty: "always".
  std::string fsync;
  // Publishes with the same kMsgIdHeader value within this window are
  // stored once. Zero: 2 minutes. Milliseconds precision.
  absl::Duration dedup_window = absl::ZeroDuration();
  // The message ids the stream remembers, at most: the oldest is forgotten
  // first even inside dedup_window, so a publish is deduplicated only if
  // its id is among the last dedup_max_ids ids stored. Set it above the ids
  // a publisher may send within one window (each costs the broker memory,
  // docs/delivery.md §3). 1 to 100,000,000; 0: 100,000.
  uint64_t dedup_max_ids = 0;
  // Size at which a segment file is rotated. 0: 64 MiB.
  uint64_t segment_max_bytes = 0;
};

// A durable consumer's state, as the broker reports it.
struct ConsumerInfo {
  std::string name;
  uint64_t ack_floor = 0;      // every record up to this seq is acknowledged
  uint64_t delivered_seq = 0;  // the newest record delivered
  uint32_t in_flight = 0;      // delivered, not yet acknowledged
  bool attached = false;       // a subscription is consuming it now
  uint32_t waiting = 0;        // delivered, failed (NACK, ack wait, consumer
                               // left), waiting to be delivered again
};

// A stream's settings and state.
struct StreamInfo {
  StreamConfig config;  // as the broker holds it (defaults filled in)
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;     // the newest record written
  uint64_t durable_seq = 0;  // the newest record durable per config.fsync
  uint64_t messages = 0;
  uint64_t bytes = 0;        // of its segment files
  std::vector<ConsumerInfo> consumers;  // durable ones
  bool from_config = false;  // defined in siftd's config file
  // Since siftd started: records appended and fdatasync calls made;
  // appended / fsyncs is the records one fsync made durable (group commit).
  uint64_t appended = 0;
  uint64_t fsyncs = 0;
  // Since siftd started: message ids forgotten because
  // config.dedup_max_ids newer ones came while they were still inside the
  // dedup window (a republish of one is stored again). Not 0: raise
  // dedup_max_ids.
  uint64_t dedup_ids_forgotten_early = 0;
};

// What a confirmed publish was answered (Client::PublishConfirmedWith).
struct PublishAck {
  // The record's sequence number in the stream that captured the topic,
  // answered once the record is durable per the stream's fsync policy;
  // 0 if no stream captures the topic (the publish was only routed).
  uint64_t stream_seq = 0;
  // True if a record with the same kMsgIdHeader value was already stored
  // within the dedup window: nothing new was stored, and stream_seq is
  // that first record's.
  bool duplicate = false;
};

}  // namespace sift

#endif  // SIFT_CLIENTS_CPP_STREAMS_H_
