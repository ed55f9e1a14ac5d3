// StreamManager is siftd's durable streams (docs/delivery.md §3, JetStream's
// streams and consumers): the streams in the data directory, what each
// captures, their consumers (durable and ephemeral, pushed to a
// subscription or pulled by FETCH), the confirms waiting for durability and
// the acks waiting for a consumer's position to be on disk.
//
// The routing thread calls it with decoded commands and the loop's clock,
// and sends what it hands back (StreamSend, StreamAnswer, DeadLetter); it
// never touches a socket. Disk writes happen on each stream's writer thread
// (store::StreamLog) and each stream's consumer writer (ConsumerStore); the
// routing thread polls their fds (PollFds) and calls Process. Reads of
// records (for consumers) are pread()s on the routing thread, which hit the
// page cache for records written recently.
//
// Layout: <data_dir>/streams/<name>/stream.toml (settings),
// <name>/log/ (segments), <name>/consumers/<consumer>.state.
//
// Thread-safety: none; routing thread only.
#ifndef SIFT_BROKER_STREAMS_STREAM_MANAGER_H_
#define SIFT_BROKER_STREAMS_STREAM_MANAGER_H_

#include <poll.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "broker/delivery/backoff.h"
#include "broker/delivery/deliveries.h"
#include "broker/store/dir_lock.h"
#include "broker/store/stream_log.h"
#include "broker/streams/consumer.h"
#include "broker/streams/consumer_store.h"
#include "broker/streams/stream_config.h"

namespace sift::streams {

// Where a new consumer starts (JetStream's deliver policy).
enum class DeliverPolicy { kNew = 0, kAll = 1, kFromSeq = 2, kFromTime = 3 };

struct StartSpec {
  std::string stream;
  std::string consumer;  // durable name; empty = ephemeral
  DeliverPolicy policy = DeliverPolicy::kNew;
  uint64_t start_seq = 0;
  int64_t start_time_ms = 0;  // Unix ms
};

// One DELIVER to send.
struct StreamSend {
  uint32_t client;
  uint64_t sid;
  uint64_t delivery_id;  // 0 without explicit acks
  uint32_t attempt;      // 0 without explicit acks
  uint64_t seq;
  int64_t unix_ms;
  delivery::MessageRef message;
};

// An answer to send: OK (with these fields) or `status`'s error. A status
// made by protocol::WireError carries its wire code.
struct StreamAnswer {
  uint32_t client;
  uint64_t request_id;
  absl::Status status;
  uint64_t stream_seq = 0;
  bool duplicate = false;
  uint32_t delivered = 0;
  uint64_t ended_sid = 0;  // a notice ending this subscription (ERROR.sid)
};

struct ConsumerView {
  std::string name;
  uint64_t ack_floor = 0;
  uint64_t delivered_seq = 0;
  uint32_t in_flight = 0;
  uint32_t waiting = 0;  // for redelivery
  bool attached = false;
};

struct StreamView {
  StreamSettings settings;
  bool from_config = false;
  uint64_t first_seq = 0, last_seq = 0, durable_seq = 0;
  uint64_t messages = 0, bytes = 0;
  uint64_t appended = 0, fsyncs = 0;  // since siftd started
  // Since siftd started: ids the dedup_max_ids cap forgot inside the dedup
  // window (StreamLogStats::dedup_ids_forgotten_early).
  uint64_t dedup_ids_forgotten_early = 0;
  std::vector<ConsumerView> consumers;
};

// A retained value or a delayed message of a stream's topic, as kept in the
// stream's directory (held/) so it outlives a restart.
struct HeldMessage {
  std::string stream;
  std::string key;           // delayed: what ForgetDelayed takes
  int64_t due_unix_ms = 0;   // delayed: when it is due; 0 for retained
  delivery::MessageRef message;
};

// What Append did for one publish.
struct Capture {
  bool captured = false;  // a stream's subjects matched the topic
  absl::Status status;    // STORE_FULL / INVALID_REQUEST on failure
  uint64_t seq = 0;
  bool duplicate = false;  // its sift-msg-id was seen: not stored again
  // The stream's name, valid while the stream exists (use it at once).
  std::string_view stream;
};

class StreamManager {
 public:
  // How the manager logs: `warning` for what an operator must look at
  // (damage cut, a writer that failed), else information.
  using Logger = std::function<void(
      bool warning, std::string_view message,
      std::vector<std::pair<std::string, std::string>>)>;

  // Opens every stream under <data_dir>/streams and creates those of
  // `configured` that are missing (a configured stream whose settings
  // changed takes the new ones; its records stay). Recovery cuts a torn
  // tail and says so through `log`. Errors: FailedPrecondition if another
  // process holds `data_dir` (store::DirLock, held until this manager is
  // destroyed); a stream that cannot be opened (DataLoss naming the file,
  // permissions, ...).
  static absl::StatusOr<std::unique_ptr<StreamManager>> Open(
      std::string data_dir, const std::vector<StreamSettings>& configured,
      Logger log);
  ~StreamManager();

  size_t size() const { return streams_.size(); }

  // Stream consumers' events, for STATS (added to its `deliveries`).
  struct Counters {
    uint64_t delivered = 0, redeliveries = 0, acks = 0, nacks = 0,
             progress = 0, expired = 0, dead_letters = 0;
  };
  const Counters& counters() const { return counters_; }
  // Stream consumers with explicit acks, and what they hold in flight.
  size_t consumers_with_acks() const;
  size_t in_flight() const;

  // ---- Publishing

  // The stream capturing `topic` (the first, in creation order, one of whose
  // subjects matches), appending the message. Reply inboxes ("_INBOX.")
  // are never captured. `msg_id` (the sift-msg-id
  // header) may be empty. `unix_ms` is the record's time.
  Capture Append(std::string_view topic, const delivery::MessageRef& message,
                 int64_t unix_ms, std::string_view msg_id);
  // Fast check before building a message: does any stream capture `topic`?
  bool Captures(std::string_view topic) const;
  // A confirmed publish's OK once record `seq` of `stream` is durable.
  // `held_ticket`: also wait for that write of the stream's held store (a
  // retained value), 0 for none.
  void ConfirmWhenDurable(std::string_view stream, uint64_t seq,
                          bool duplicate, uint32_t client,
                          uint64_t request_id, uint64_t held_ticket = 0);

  // ---- Retained values and delayed messages on stream topics (kept in
  // <stream>/held/, one file each, written off the routing thread).

  // Keeps `message` as its topic's retained value if a stream captures the
  // topic (an empty payload removes it). Returns the stream and the write's
  // ticket (for AnswerWhenSaved), or nullopt if no stream captures it.
  std::optional<std::pair<std::string, uint64_t>> SaveRetained(
      const delivery::MessageRef& message);
  // Keeps a delayed message of a stream topic until ForgetDelayed. Returns
  // the stream, the key and the ticket, or nullopt if no stream captures it.
  struct Saved {
    std::string stream;
    std::string key;
    uint64_t ticket;
  };
  std::optional<Saved> SaveDelayed(const delivery::MessageRef& message,
                                   int64_t due_unix_ms);
  // The delayed message was routed (or dropped): its file goes.
  void ForgetDelayed(const std::string& stream, const std::string& key);
  // The newest write of stream `name`'s held/ store not yet on disk, as
  // (stream, ticket) for AnswerWhenSaved; nullopt if every write is (or
  // there is no such stream).
  std::optional<std::pair<std::string, uint64_t>> PendingHeldWrite(
      const std::string& name);
  // What the streams' held/ directories held when they were opened; once.
  // Retained values first, then delayed messages by due time, those due at
  // the same time in the order they were published (their keys say it:
  // the directory's order is the keys' text order, "d-1-10" before
  // "d-1-2").
  std::vector<HeldMessage> TakeLoadedHeld();
  // An answer (OK, or `status` if not OK) once every (stream, ticket) of
  // `tickets` is on disk.
  void AnswerWhenSaved(uint32_t client, uint64_t request_id,
                       std::vector<std::pair<std::string, uint64_t>> tickets);

  // ---- STREAM commands. Errors carry wire codes (UNKNOWN_STREAM,
  // INVALID_STREAM, INTERNAL).
  // Add makes the stream, or gives the existing one's view for the same
  // settings; other settings under its name are INVALID_STREAM naming each
  // difference (SettingsDifferences) and what to do, by where the stream was
  // defined: "...; delete it first (sift stream rm two)", or "...; it is
  // defined in siftd's config ([[streams]]): change it there".
  absl::StatusOr<StreamView> Add(const StreamSettings& settings);
  // Deletes a stream made through the protocol (config ones: INVALID_STREAM)
  // with its records and consumers. Its subscriptions get ERROR
  // UNKNOWN_STREAM (request_id 0) and its waiting FETCHes that error as
  // their answer, at the next Process.
  absl::Status Delete(const std::string& name);
  absl::Status DeleteConsumer(const std::string& stream,
                              const std::string& consumer);
  absl::StatusOr<StreamView> Info(const std::string& name) const;
  std::vector<StreamView> List() const;

  // ---- Consumers

  // SUB with a stream: subscription (client, sid) consumes per `start`.
  // Errors: UNKNOWN_STREAM, INVALID_REQUEST (a durable consumer in use by
  // another subscription or FETCH, a pattern no subject of the stream can
  // match), DUPLICATE_SID.
  absl::Status Subscribe(uint32_t client, uint64_t sid, const StartSpec& start,
                         const ConsumerOptions& options, int64_t now);
  // UNSUB: false if (client, sid) is not a stream subscription.
  bool Unsubscribe(uint32_t client, uint64_t sid, int64_t now);
  // The client is gone: its subscriptions end, what it held is redelivered
  // (durable consumers) and its waiting FETCHes are dropped.
  void RemoveClient(uint32_t client, int64_t now);

  // FETCH. Its DELIVERs and its answer come out of Process. Errors (at
  // once): UNKNOWN_STREAM, INVALID_REQUEST.
  absl::Status Fetch(uint32_t client, uint64_t request_id, uint64_t sid,
                     const StartSpec& start, const ConsumerOptions& options,
                     uint32_t batch, uint32_t max_wait_ms, int64_t now);

  // Stream delivery ids (bit 62 set) are this manager's.
  static bool IsStreamDeliveryId(uint64_t id) { return (id >> 62) == 1; }
  // ACK/NACK/PROGRESS. NotFound if `id` is not in flight for `client`.
  absl::Status Ack(uint32_t client, uint64_t id, int64_t now);
  absl::Status Nack(uint32_t client, uint64_t id,
                    std::optional<uint32_t> delay_ms, int64_t now);
  absl::Status Progress(uint32_t client, uint64_t id, int64_t now);
  // An ACK with a request id: its OK once the acked consumers' positions
  // are on disk (at once if none is durable).
  void AnswerAckWhenSaved(uint32_t client, uint64_t request_id);

  // ---- The loop

  // Hands every stream's staged appends to its writer (StreamLog::HandOff):
  // the loop calls it once per pass, before it polls.
  void HandOff();
  // Appends the fds to poll (each stream's log and consumer store).
  void PollFds(std::vector<pollfd>* fds) const;
  // Takes durability news, answers confirms, pumps consumers (redeliveries,
  // new records), expires ack waits, ends FETCHes, saves consumer
  // positions. `has_room(client)` says whether a client can take more now.
  void Process(int64_t now, const std::function<bool(uint32_t)>& has_room,
               std::vector<StreamSend>* sends,
               std::vector<StreamAnswer>* answers,
               std::vector<delivery::DeadLetter>* dead);
  // When Process must run again at the latest (INT64_MAX: only on news);
  // `now` if it has work left (a consumer paused by its budget).
  int64_t NextDeadline(int64_t now) const;

  // Closes every log (flushing it). Called at shutdown.
  void Close();

 private:
  struct Stream;
  struct Slot;
  struct Pull {
    uint32_t client;
    uint64_t request_id;
    uint64_t sid;
    uint32_t remaining;
    uint32_t delivered;
    int64_t deadline;
  };

  StreamManager(std::string data_dir, Logger log);
  absl::Status OpenStream(StreamSettings settings, bool from_config,
                          bool create);
  Stream* Find(std::string_view name) const;
  // The stream whose subjects match `topic` (the first in creation order;
  // subjects do not overlap), or null. Answers from capturing_ when it can.
  Stream* Capturing(std::string_view topic) const;
  // Forgets Capturing's remembered answers: the set of streams changed.
  void StreamsChanged() {
    capturing_.clear();
    last_captured_known_ = false;
  }
  // INVALID_REQUEST if `pattern` (non-empty) can match no subject of `s`.
  absl::Status CheckPattern(const Stream& s, const std::string& pattern) const;
  StreamView ViewOf(const Stream& s) const;
  absl::StatusOr<uint64_t> StartFloor(const Stream& s, const StartSpec& spec);
  absl::StatusOr<Slot*> SlotFor(Stream* s, const StartSpec& spec,
                                const ConsumerOptions& options, bool temporary);
  void DestroySlot(uint64_t id);
  // Dead-letters `record` (waiting record r.seq of `slot`'s consumer, whose
  // max_deliver is reached) and gives it up.
  void DeadLetterRecord(Slot& slot, const store::StreamRecord& record,
                        std::vector<delivery::DeadLetter>* dead);
  // A consumer that cannot deliver now (Slot::CanDeliver: no subscription
  // or FETCH, no room): dead-letters its due records that max_deliver ended
  // (the others wait), at most kPumpBudget.
  void DeadLetterExhausted(Slot& slot, int64_t now,
                           std::vector<delivery::DeadLetter>* dead);
  // Sends what the consumer may take now; true if it stopped at its budget
  // with more at hand.
  bool Pump(Slot& slot, int64_t now,
            const std::function<bool(uint32_t)>& has_room,
            std::vector<StreamSend>* sends,
            std::vector<delivery::DeadLetter>* dead);
  // Puts every changed durable position to its store; the tickets, if
  // asked for.
  void SaveDirty(std::vector<std::pair<std::string, uint64_t>>* tickets);
  // Logs a warning when `s`'s log forgot message ids inside the dedup
  // window (dedup_max_ids) since the last one, at most once a minute.
  void WarnForgottenIds(Stream& s, int64_t now);
  static constexpr int64_t kForgottenWarnEveryMs = 60000;
  struct Found {
    Slot* slot;
    uint64_t seq;
  };
  Found FindDelivery(uint64_t id);

  const std::string data_dir_;
  store::DirLock lock_;  // of data_dir_: one broker per data directory
  Logger log_;
  std::vector<std::unique_ptr<Stream>> streams_;  // creation order
  // Capturing's answers by topic (null: no stream), so that a publish does
  // not match every stream's subjects; emptied when streams are added or
  // deleted, and when it reaches kCapturingCacheLimit topics.
  mutable absl::flat_hash_map<std::string, Stream*> capturing_;
  static constexpr size_t kCapturingCacheLimit = 65536;
  // The last answer, before capturing_ (a publisher often repeats a topic).
  mutable std::string last_captured_topic_;
  mutable Stream* last_captured_ = nullptr;
  mutable bool last_captured_known_ = false;
  std::map<uint64_t, std::unique_ptr<Slot>> slots_;
  uint64_t next_slot_ = 1;
  std::map<std::pair<uint32_t, uint64_t>, uint64_t> push_;  // (client, sid)
  absl::flat_hash_map<uint64_t, std::pair<uint64_t, uint64_t>> ids_;  // id ->
                                                           // (slot, seq)
  uint64_t next_id_ = (uint64_t{1} << 62) + 1;
  delivery::SplitMix64 random_{0x57ea4ULL};
  struct AckAnswer {
    uint32_t client;
    uint64_t request_id;
    std::vector<std::pair<std::string, uint64_t>> tickets;  // stream, ticket
    bool held = false;  // tickets of the held store, not the consumers'
  };
  std::vector<HeldMessage> loaded_held_;
  uint64_t next_held_key_ = 0;
  std::deque<AckAnswer> ack_answers_;
  bool work_left_ = false;
  // A consumer waits briefly (its client's queue is full, or the records it
  // is due are not readable yet): when to Process again, INT64_MAX if none.
  // Absolute, so the loop sees it come due.
  int64_t retry_at_ = INT64_MAX;
  Counters counters_;
  // Errors to send at the next Process (a deleted stream's consumers).
  std::vector<StreamAnswer> notices_;
};

}  // namespace sift::streams

#endif  // SIFT_BROKER_STREAMS_STREAM_MANAGER_H_
