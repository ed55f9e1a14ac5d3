// Consumer is one consumer's position in one stream (JetStream's consumer):
// which records are acknowledged (an ack floor and the acks above it), which
// are in flight with their ack deadlines, and which wait for redelivery. It
// is pure state over sequence numbers: StreamManager reads the records,
// sends them and feeds it the acks and the loop's time.
//
// Rules:
// - A record is delivered at most once at a time. Without explicit acks
//   (at-most-once) it counts as acknowledged when sent.
// - A record not matching the consumer's pattern is acknowledged unseen.
// - An in-flight record whose ack wait runs out (no ACK or PROGRESS), or
//   that is NACKed, waits out the backoff (or the NACK's delay) and is sent
//   again with attempt + 1, before any newer record; at max_deliver
//   attempts it is given up on (the manager dead-letters it) and counts as
//   acknowledged.
// - The persisted state (State()) is the ack floor and the acks above it:
//   after a restart every unacknowledged record is delivered again.
//
// Time: `now` is ms of the caller's monotonic clock and never goes back.
// Thread-safety: none; the routing thread owns it.
#ifndef SIFT_BROKER_STREAMS_CONSUMER_H_
#define SIFT_BROKER_STREAMS_CONSUMER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "broker/delivery/backoff.h"
#include "broker/delivery/deliveries.h"

namespace sift::streams {

struct ConsumerOptions {
  bool explicit_ack = false;
  delivery::AckPolicy ack;  // ack_wait_ms, max_deliver, max_in_flight,
                            // backoff (max_queued is not used)
  std::string pattern;      // records on other topics are skipped; "" = all
};

class Consumer {
 public:
  // `ack_floor`: every record up to it is acknowledged; `acked` are the
  // acknowledged records above it (from State()).
  Consumer(std::string name, uint64_t ack_floor,
           const std::vector<uint64_t>& acked);

  const std::string& name() const { return name_; }
  bool durable() const { return !name_.empty(); }
  ConsumerOptions& options() { return options_; }
  const ConsumerOptions& options() const { return options_; }

  uint64_t ack_floor() const { return floor_; }
  // The next record never yet sent.
  uint64_t next_seq() const { return next_; }
  uint64_t delivered_seq() const { return next_ - 1; }
  size_t in_flight() const { return in_flight_.size(); }
  bool has_room() const;
  size_t waiting() const { return redeliver_.size(); }

  // Records older than `first_seq` are gone (retention): they count as
  // acknowledged and leave every table.
  void Forget(uint64_t first_seq);

  // The records due for redelivery at `now`, oldest first, at most `limit`.
  // Each is either sent again (Sent) or given up on (GiveUp) by the caller.
  std::vector<uint64_t> DueRedeliveries(int64_t now, size_t limit) const;
  // The attempt the next delivery of `seq` would be (1 for a new record).
  uint32_t NextAttempt(uint64_t seq) const;
  // Whether NextAttempt(seq) would pass max_deliver (then GiveUp).
  bool ExhaustedAt(uint64_t seq) const;
  // Why waiting record `seq`'s last delivery failed, as a dead letter's
  // sift-reason: one of delivery::kReasonMaxDeliverAfter* (ack wait, nack,
  // consumer left).
  std::string_view FailureAt(uint64_t seq) const;

  // `seq` (next_seq(), or a due redelivery) was sent with `delivery_id` to
  // `client`.
  void Sent(uint64_t seq, uint64_t delivery_id, uint32_t client, int64_t now);
  // next_seq() is skipped unseen (another topic): acknowledged.
  void Skip(uint64_t seq);
  // A record given up on (max_deliver): acknowledged, never sent again.
  void GiveUp(uint64_t seq);

  // Errors: NotFound if `seq` is not in flight with that delivery id for
  // that client.
  absl::Status Ack(uint64_t seq, uint64_t delivery_id, uint32_t client);
  absl::Status Nack(uint64_t seq, uint64_t delivery_id, uint32_t client,
                    std::optional<uint32_t> delay_ms, int64_t now,
                    uint64_t random);
  absl::Status Progress(uint64_t seq, uint64_t delivery_id, uint32_t client,
                        int64_t now);

  // In-flight records whose ack wait ran out go to redelivery (their
  // delivery ids are appended to *expired_ids). Returns how many.
  size_t Expire(int64_t now, uint64_t random,
                std::vector<uint64_t>* expired_ids);
  // Everything `client` holds goes back for redelivery now (it left);
  // its delivery ids are appended to *ids.
  void Release(uint32_t client, int64_t now, std::vector<uint64_t>* ids);
  // The earliest ack deadline or redelivery due time; INT64_MAX if none.
  // `deliverable` false: no delivery can go out now (no subscription or
  // FETCH, no room), so redeliveries wait for one and only those
  // max_deliver ended (to dead-letter) count, with the ack deadlines.
  int64_t NextDeadline(bool deliverable = true) const;

  // The persisted state: "floor=N acked=a,b,c". Changed since the last
  // TakeDirty()?
  std::string State() const;
  static absl::Status ParseState(std::string_view text, uint64_t* floor,
                                 std::vector<uint64_t>* acked);
  bool TakeDirty() {
    const bool d = dirty_;
    dirty_ = false;
    return d;
  }

 private:
  struct InFlight {
    uint64_t delivery_id;
    uint32_t client;
    uint32_t attempt;
    int64_t deadline;
  };
  struct Waiting {
    uint32_t attempts;  // deliveries made so far
    int64_t due;
    std::string_view failure;  // a delivery::kReasonMaxDeliverAfter*
  };

  void MarkAcked(uint64_t seq);
  void Retry(uint64_t seq, uint32_t attempts, uint32_t delay_ms, int64_t now,
             std::string_view failure);

  std::string name_;
  ConsumerOptions options_;
  uint64_t floor_ = 0;
  uint64_t next_ = 1;
  std::set<uint64_t> acked_;  // above floor_
  std::map<uint64_t, InFlight> in_flight_;
  std::map<uint64_t, Waiting> redeliver_;
  bool dirty_ = false;
};

}  // namespace sift::streams

#endif  // SIFT_BROKER_STREAMS_CONSUMER_H_
