// The sift C++ client library: connect to a broker, publish, subscribe,
// request/reply. The same API talks to a standalone siftd (tcp://, ipc://) and
// to a broker embedded in the process (inproc://, see broker/embedded).
//
// Thread-safety: a Client is safe to use from any number of threads at once.
// Each Client runs one background I/O thread that receives, sends what is
// queued and keeps the session alive; a publish may also be sent by the
// calling thread when nothing is queued (the socket is shared under a mutex).
// Subscription callbacks run on the I/O thread, one at a time, in arrival order,
// and must not block for long. They may call Publish, PublishConfirmedAsync,
// Ack/Nack and the like on the same Client; a call that waits for the
// broker's answer (Subscribe, PublishConfirmed, Request, Stats, stream admin,
// Fetch, AckSync) fails there at once with FailedPrecondition, since the
// answer would be read by the very thread that waits; Unsubscribe() there
// does not wait for its answer, and Next() returns only what is queued
// already. Close(), or destroying the Client, in a callback returns at once:
// the I/O thread stops when the callback returns. A Subscription's
// Next() may be called from one thread at a time; its queue is bounded
// (ClientOptions::subscription_queue_max_messages), and what a slow Next()
// loop misses is counted and reported, not held without limit.
//
// Oversized requests: a call whose request would exceed the broker's bound
// on frame 0 (protocol.md §2: from the session's max_topic_length,
// max_headers and max_headers_bytes; 68,352 bytes with the defaults),
// e.g. for a name, filter or plugin settings tens of KB long, fails at once
// with InvalidArgument (wire code BAD_FRAME) and is not sent: the broker
// would refuse it with no request id to match, and the call would wait
// out its timeout.
//
// Lost sessions: a call that waits for the broker's answer (Subscribe,
// PublishConfirmed*, Request, Stats, Flush, Reload, Declare, the stream
// calls, Fetch, AckSync) fails at once with Unavailable when the session
// its request went to ends before the broker answered, since the answer
// can no longer come (a restarted broker knows nothing of the request):
// when the connection drops (siftd killed or restarted, the network; at
// once for a closed connection, after ZeroMQ's 3 s heartbeat timeout for
// one gone silent), or when the broker lost the session on a live
// connection (its HELLO_REQUIRED, then the WELCOME to the client's new
// HELLO). The request may or may not have been carried out; the message
// says so. A request still queued in the client at that moment (the broker
// was already gone when it was made) is not failed: it goes out in the
// next session, within the call's timeout. Except an AckSync (its delivery
// id was the ended session's: NotFound, not sent) and a Request (a reply
// would go to the ended session's inbox: Unavailable); a Request made once
// the client knows it has no session waits for the next one and is sent
// there. A call whose timeout runs out with its request still so queued,
// no session having come (Stats, Flush, Reload, Declare, the stream calls,
// Fetch, AckSync), fails with Unavailable (wire code HELLO_REQUIRED), not
// DeadlineExceeded: its request is taken out of the queue, not sent, and
// never will be. docs/protocol.md §3.3. With ClientOptions::reconnect
// false there is no next session: the client ends with its first, and
// every call fails with Unavailable (see there).
#ifndef SIFT_CLIENTS_CPP_CLIENT_H_
#define SIFT_CLIENTS_CPP_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clients/cpp/streams.h"
#include "proto/sift.pb.h"

namespace sift {

// The default endpoint of siftd's embedded configuration.
inline constexpr char kDefaultEndpoint[] = "tcp://127.0.0.1:7440";

struct ClientOptions {
  std::string endpoint = kDefaultEndpoint;
  // Free text the broker shows in logs.
  std::string name;
  // How long Connect() waits for the broker's WELCOME. This and every
  // call's timeout may be absl::InfiniteDuration() (waits for ever; any
  // timeout is capped at 100 years).
  absl::Duration connect_timeout = absl::Seconds(5);
  // True: after losing the broker (its restart, the network, or the broker
  // losing the session: HELLO_REQUIRED), start a new session, subscribe
  // again and send what was queued meanwhile (reconnects() counts these).
  // A new HELLO the broker refuses for now (TOO_MANY_CLIENTS: it holds
  // max_clients sessions; INTERNAL) is said again after a backoff (100 ms,
  // doubling up to 1 s, as ZeroMQ retries a connection) until a WELCOME
  // comes; calls made meanwhile wait, within their timeouts.
  // False: the client ends with its first session. When its connection
  // drops (at once when it closes, after ZeroMQ's 3 s heartbeat timeout
  // when the broker goes silent) or the broker answers HELLO_REQUIRED, the
  // client says no HELLO again and disconnects, so ZeroMQ does not connect
  // to a broker that comes back. Then every call waiting for the broker's
  // answer fails at once with Unavailable (its request sent: it may or may
  // not have been carried out; still queued: not sent, and dropped), and so
  // does every later call that needs the broker, Publish included (nothing
  // is queued), with a message naming the cause: "lost the connection to
  // the broker (ClientOptions::reconnect is false)", or "the broker lost
  // this client's session (...)". Every subscription ends: Next() returns
  // what was queued, then that Unavailable; callbacks get nothing more;
  // Unsubscribe() is OK. Close() is still to be called (or the Client
  // destroyed), and returns at once. Connect() is the same either way:
  // until the first WELCOME, ZeroMQ retries the connection (and the client
  // a refused HELLO, see Connect()).
  bool reconnect = true;
  // Interval of client PINGs; the broker drops clients silent for longer
  // than its client_timeout_ms.
  absl::Duration ping_interval = absl::Seconds(5);
  // Messages the client may hold while it is not connected; beyond this,
  // Publish fails with ResourceExhausted (nothing is dropped silently).
  size_t max_pending = 100000;
  // Bound of the queue behind each Subscription::Next() (subscriptions
  // without a callback), per subscription: at most this many messages and
  // this many payload bytes (topic and reply_to not counted), whichever is
  // reached first. A message arriving when it would not fit is dropped: the
  // newest, never one already queued, as NATS clients do with their pending
  // limits (nats.go Subscription.SetPendingLimits). It is counted in
  // Subscription::dropped() and reported by Next(). 0: no bound of that
  // kind. Callback subscriptions have no queue and are unaffected.
  size_t subscription_queue_max_messages = 65536;
  size_t subscription_queue_max_bytes = 64 << 20;  // 64 MiB
  // The ZeroMQ context the client's socket lives in, which must outlive the
  // Client. For inproc:// endpoints: the embedded broker's
  // (EmbeddedBroker::zmq_context()). Null (the default): one context the
  // process's Clients share, as the ZeroMQ guide advises: their sockets are
  // served by its one ZeroMQ I/O thread, saving a thread and its wake-ups
  // per Client (BENCHMARKS.md, "Group commit"). Pass a context of your own
  // to give a Client its own I/O thread(s).
  void* zmq_context = nullptr;
  // Busy-polling, for lower latency at the price of CPU (as siftd's
  // idle_spin_us). Zero (the default): the client's I/O thread, which runs
  // callbacks, sleeps as soon as it has nothing to do. Longer: it first
  // keeps polling its socket for this long, yielding the CPU between polls,
  // so a message that comes meanwhile costs no thread wake-up; a client
  // receiving steadily then keeps a CPU busy. See BENCHMARKS.md ("Latency
  // (issue 11 item 4)") for the measured trade-off.
  absl::Duration idle_spin = absl::ZeroDuration();
  // Most PublishConfirmedAsync calls awaiting their answer at once; past
  // this the call fails with ResourceExhausted (nothing is sent).
  size_t max_async_confirms = 65536;
};

// Message headers (docs/protocol.md §8.1): ordered (key, value) pairs; a key
// may repeat. Keys are 1 to 64 bytes of RFC 7230 token characters
// (A-Z a-z 0-9 ! # $ % & ' * + - . ^ _ ` | ~), compared byte for byte;
// values are any bytes.
using Headers = std::vector<std::pair<std::string, std::string>>;

namespace internal {
class SubscriptionQueue;
struct MessageForTest;  // builds Messages in clients/cpp's unit tests
}  // namespace internal

// A received message. Cheap to move. A Message passed to a subscription
// callback borrows the bytes of the frame it arrived in and is valid only for
// the duration of the call (copy what you keep); one returned by Next() or
// Request() owns its bytes.
class Message {
 public:
  Message() = default;
  Message(Message&&) noexcept = default;
  Message& operator=(Message&&) noexcept = default;

  std::string_view topic() const { return topic_; }
  std::string_view reply_to() const { return reply_to_; }
  std::string_view payload() const { return payload_; }
  uint64_t sid() const { return sid_; }
  // Explicit-ack subscriptions only (SubscribeOptions::ack): the id the
  // broker knows this delivery by, and which attempt it is (1 = first; more
  // after a NACK, an ack wait that ran out, or a worker that went away).
  // 0 and 0 otherwise.
  uint64_t delivery_id() const { return delivery_id_; }
  uint32_t attempt() const { return attempt_; }
  // True for a retained value the broker sent because this subscription
  // was just made (docs/protocol.md §8.2), not a new publish.
  bool retained() const { return retained_; }
  // From a stream (SubscribeOptions::stream, Client::Fetch): the record's
  // sequence number in its stream and the time it was stored (Unix ms).
  // 0 and 0 for messages routed live.
  uint64_t stream_seq() const { return stream_seq_; }
  uint64_t timestamp_ms() const { return timestamp_ms_; }
  // The message's headers as published, in order (empty if none). The views
  // live as long as the Message.
  const std::vector<std::pair<std::string_view, std::string_view>>& headers()
      const {
    return headers_;
  }
  // The value of the first header named `key`, or nullopt.
  std::optional<std::string_view> header(std::string_view key) const;

 private:
  friend class ClientCore;
  friend struct internal::MessageForTest;
  std::string_view topic_;
  std::string_view reply_to_;
  std::string_view payload_;
  uint64_t sid_ = 0;
  uint64_t delivery_id_ = 0;
  uint32_t attempt_ = 0;
  bool retained_ = false;
  uint64_t stream_seq_ = 0;
  uint64_t timestamp_ms_ = 0;
  std::vector<std::pair<std::string_view, std::string_view>> headers_;
  std::string_view headers_wire_;  // the encoded entries headers_ points into
  // The client's session it came in (its delivery_id is that session's).
  uint64_t session_ = 0;
  // Owns the bytes the views point into; null while borrowed by a callback.
  std::shared_ptr<const void> storage_;
};

using MessageCallback = std::function<void(const Message&)>;

// A plugin a subscription asks the broker to run on its deliveries
// (docs/plugins.md): its name and settings, e.g. {"payload_filter",
// {{"format", "json"}, {"expr", "amount > 100"}}}.
struct PluginSpec {
  std::string name;
  std::vector<std::pair<std::string, std::string>> settings;
};

// Everything a publish may carry besides topic and payload.
struct PublishOptions {
  Headers headers;
  std::string reply_to;
  // Keep as the topic's retained value (MQTT retained): subscriptions made
  // later get it first; an empty payload clears it. docs/protocol.md §8.2.
  bool retain = false;
  // Route later (Celery's countdown / eta): after `delay`, or at
  // `deliver_at`; at most one, at most WELCOME.max_delay_ms ahead. Held in
  // the broker's memory until then.
  absl::Duration delay = absl::ZeroDuration();
  std::optional<absl::Time> deliver_at;
  // Non-empty: sent as header kMsgIdHeader ("sift-msg-id"), after
  // `headers`. A stream that captures the topic stores a message id once
  // per dedup window, among its last StreamConfig::dedup_max_ids ids
  // (PublishAck::duplicate on later ones).
  std::string msg_id;
};

// At-least-once delivery (docs/protocol.md §6.2): the broker keeps each
// delivery until it is acknowledged (Client::Ack), redelivers it after a
// NACK or when its ack wait runs out (with exponential backoff and jitter,
// as Celery's retry_backoff/retry_jitter), to another member of the queue
// group when there is one, and sends it to the dead-letter topic
// "$sift.deadletter.<topic>" after max_deliver attempts. Unset fields take
// the broker's defaults (shown). Durations go to the broker in whole
// milliseconds, rounded up (at most 2^32-1 ms).
struct AckOptions {
  std::optional<absl::Duration> ack_wait;        // 30 s (JetStream AckWait)
  std::optional<uint32_t> max_deliver;           // 5; 0 = unlimited
  std::optional<uint32_t> max_in_flight;         // 1000 (prefetch)
  std::optional<absl::Duration> backoff_initial; // 1 s
  std::optional<double> backoff_multiplier;      // 2.0
  std::optional<absl::Duration> backoff_max;     // 60 s
  std::optional<double> backoff_jitter;          // 0.2 (0..1)
  std::optional<uint32_t> max_queued;            // 100000
};

// What the broker does when a subscription's client does not read fast
// enough (docs/delivery.md §7). Numbered as SlowPolicy in proto/sift.proto.
enum class SlowPolicy {
  // A delivery that finds the queue full is dropped (the broker's default).
  kDropNewest = 0,
  // Deliveries that find the queue full wait in the broker, at most
  // SlowConsumer::max_pending_msgs and _bytes of them; past that the oldest
  // waiting one is dropped. They are sent as the client catches up, so it
  // gets the newest.
  kDropOldest = 1,
  // The broker closes the client's connection (after an ERROR
  // SLOW_CONSUMER, if it fits): its session ends, and with
  // ClientOptions::reconnect the client starts a new one and subscribes
  // again (what was published meanwhile is lost); without it, the client
  // ends (see there).
  kDisconnect = 2,
};

// A subscription's slow-consumer policy and bounds (SubscribeOptions::slow).
// The queue counts as full when more than max_pending_bytes of deliveries to
// this client (all its subscriptions) are handed to its connection and not
// yet written. Every delivery dropped is counted in the broker's STATS
// ("slow_consumer") and told to the client (Client::broker_dropped()).
struct SlowConsumer {
  SlowPolicy policy = SlowPolicy::kDropNewest;
  // Bytes (payload, topic and headers); 0: the broker's
  // max_pending_bytes_per_client (default 64 MiB), and larger values are
  // cut to it.
  uint64_t max_pending_bytes = 0;
  // kDropOldest only: most messages waiting in the broker for this
  // subscription (they also stay within max_pending_bytes); 0: 1000.
  uint32_t max_pending_msgs = 0;
};

struct SubscribeOptions {
  // Members of one queue group share the messages: each goes to one of them.
  std::string queue_group;
  // Deliver only messages whose headers satisfy this expression, evaluated
  // by the broker (docs/plugins.md, "Filter expressions"), e.g.
  // "region == 'eu' && priority >= 5". Empty: no filter. A bad expression
  // fails Subscribe() with InvalidArgument (wire code INVALID_FILTER) whose
  // message gives the position.
  std::string filter;
  // Plugins the broker runs on this subscription's deliveries, in order,
  // after `filter`. Only those the broker's [subscriptions] section allows:
  // PermissionDenied (FORBIDDEN) otherwise; InvalidArgument
  // (INVALID_PLUGIN) for an unknown plugin or settings it refuses. In a
  // queue group the chosen member's plugins decide; a message they drop is
  // not offered to another member.
  std::vector<PluginSpec> plugins;
  // Set: explicit acks (at-least-once) for this subscription; each Message
  // then has a delivery_id() to Ack/Nack. Unset: at-most-once (the default).
  std::optional<AckOptions> ack;
  // Set: consume a stream instead of live routing (docs/client.md,
  // "Streams"). The broker delivers the stream's records whose topic
  // matches the pattern, from the consumer's position on, then new ones as
  // they become durable; each Message has a stream_seq(). With `ack` the
  // records must be acknowledged, and a durable consumer resumes from its
  // acknowledged position; without it a record counts as acknowledged once
  // sent. After a reconnect the client subscribes again: a durable consumer
  // resumes where the broker has it, an ephemeral one after the last record
  // this subscription received. Errors of Subscribe(): NotFound
  // (UNKNOWN_STREAM) for a stream the broker does not have,
  // InvalidArgument (INVALID_STREAM) if the broker has streams disabled.
  std::optional<StreamStart> stream;
  // Set: what the broker does with this subscription's deliveries when this
  // client does not read fast enough (see SlowConsumer); sent again with
  // the subscription after a reconnect. Unset: kDropNewest at the broker's
  // per-client bound. At-most-once live subscriptions only: ignored by the
  // broker with `ack` (bounded by AckOptions::max_in_flight instead) and
  // with `stream` (records wait in the stream). Independent of the
  // client's own queue behind Next() (ClientOptions::subscription_queue_*).
  std::optional<SlowConsumer> slow;
  // If set, messages are passed to it on the client's I/O thread and Next()
  // is not used. If empty, messages queue up for Next(), within
  // ClientOptions::subscription_queue_max_messages and _bytes.
  MessageCallback callback;
  // How long Subscribe() waits for the broker to accept the subscription
  // (also for a new session, if the broker is away when it is called).
  absl::Duration timeout = absl::Seconds(5);
};

// One poll of a stream (Client::Fetch; JetStream's pull consumer fetch).
struct FetchOptions {
  // The stream, the consumer (named: its position is kept across fetches,
  // connections and broker restarts; unnamed: one-off, reads from
  // start.deliver and keeps no state), and where a new consumer starts.
  StreamStart start;
  // Most records to return: 1 to 10000 (InvalidArgument otherwise).
  uint32_t batch = 1;
  // How long the broker waits for `batch` records before answering with
  // what it has; zero: answer with what is there now. Sent in whole
  // milliseconds, rounded up; the broker takes at most 1 hour. Negative:
  // Fetch fails with InvalidArgument.
  absl::Duration max_wait = absl::ZeroDuration();
  // Only records whose topic matches this pattern; empty: all.
  std::string pattern;
  // Set (named consumers only): the records must be acknowledged
  // (Client::Ack), else the broker hands them out again after the ack wait,
  // on a later Fetch. Unset: a record counts as acknowledged once sent.
  std::optional<AckOptions> ack;
};

class Client;

// A live subscription. Destroying it unsubscribes without waiting for the
// broker's answer (deliveries stop at once).
class Subscription {
 public:
  ~Subscription();
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

  // Waits up to `timeout` for the next message (subscriptions without a
  // callback), in arrival order. Errors:
  //   - ResourceExhausted: messages were dropped here because the queue was
  //     full (ClientOptions::subscription_queue_max_*; the message says how
  //     many). Reported once per run of drops, at its place in the stream:
  //     messages returned before it arrived before the dropped ones, those
  //     after it, after them. Not an end: call Next() again.
  //   - DeadlineExceeded: nothing came within `timeout`.
  //   - Cancelled: after Unsubscribe() or Close(), once the queue is empty;
  //     also when the broker ended the subscription (its stream was
  //     deleted, or it refused the SUB the client sent again after a
  //     reconnect, e.g. under a lower max_subscriptions_per_client): the
  //     message gives the broker's reason.
  //   - Unavailable: the client lost the broker for good
  //     (ClientOptions::reconnect false), once the queue is empty.
  //   - FailedPrecondition: the subscription has a callback.
  absl::StatusOr<Message> Next(absl::Duration timeout);
  // How many messages this subscription has dropped because its Next()
  // queue was full, since it was made (never decreases; 0 for callback
  // subscriptions). Any thread may call it; it takes no lock.
  uint64_t dropped() const;
  // Stops deliveries; waits for the broker's answer up to the client's
  // connect timeout (DeadlineExceeded after). OK also when the session
  // ends first: the next one does not hold the subscription (the client
  // does not make it again).
  absl::Status Unsubscribe();

  uint64_t sid() const { return sid_; }
  const std::string& pattern() const { return pattern_; }

 private:
  friend class Client;
  friend class ClientCore;
  Subscription(std::shared_ptr<class ClientCore> core, uint64_t sid,
               std::string pattern,
               std::shared_ptr<internal::SubscriptionQueue> queue);
  std::shared_ptr<class ClientCore> core_;
  uint64_t sid_;
  std::string pattern_;
  std::shared_ptr<internal::SubscriptionQueue> queue_;  // null: callback
  bool active_ = true;
};

// The outcome of a PublishConfirmedAsync: the broker's answer (OK, or its
// ERROR as a Status; DeadlineExceeded, Unavailable for a lost session,
// FailedPrecondition "client closed"), and on OK what a stream made of the
// message (zeros if no stream took it).
using PublishDone = std::function<void(absl::Status, const PublishAck&)>;

// The broker's counters, as answered to STATS.
using BrokerStats = wire::StatsReply;

class Client {
 public:
  // Connects and completes the HELLO/WELCOME handshake within
  // options.connect_timeout. A HELLO the broker refuses for now
  // (TOO_MANY_CLIENTS: it holds max_clients sessions; INTERNAL) is said
  // again with backoff, as in later sessions (ClientOptions::reconnect),
  // until a WELCOME comes or the timeout runs out. Errors: DeadlineExceeded
  // (no broker answered; the message names an ipc:// path with no socket
  // file), InvalidArgument (bad endpoint: one ZeroMQ refuses, or a tcp://
  // one with no host or whose port is not 1 to 65535, at once),
  // FailedPrecondition (protocol version), ResourceExhausted (wire code
  // TOO_MANY_CLIENTS: the broker refused a session for lack of room
  // throughout the timeout, as the message says, with how long that was;
  // Internal if its last refusal was INTERNAL).
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      ClientOptions options = {});
  ~Client();  // Close()s.

  // Fire-and-forget publish. Validates the topic and size locally first
  // (InvalidArgument, ResourceExhausted; PermissionDenied for topics under
  // "$sift.", which are the broker's). Returns once the message is queued
  // for sending; the broker reports later errors to the log and its stats.
  // FailedPrecondition for a closed client; Unavailable once the client
  // has lost the broker for good (ClientOptions::reconnect false).
  absl::Status Publish(std::string_view topic, std::string_view payload,
                       std::string_view reply_to = {});
  // The same with headers, checked locally against the broker's WELCOME
  // limits first: InvalidArgument (wire code INVALID_HEADER) for a key that
  // is not a token, ResourceExhausted (HEADERS_TOO_LARGE) for more than
  // max_headers headers or max_headers_bytes key + value bytes,
  // FailedPrecondition if the broker takes no headers (max_headers 0, or a
  // broker older than headers).
  absl::Status Publish(std::string_view topic, std::string_view payload,
                       const Headers& headers,
                       std::string_view reply_to = {});
  // Publish / PublishConfirmed with any PublishOptions. A negative delay is
  // InvalidArgument at once. A retained or delayed publish is refused by
  // the broker with ResourceExhausted (STORE_FULL) when it holds its bound
  // of them, InvalidArgument (INVALID_REQUEST) for retain with a delay,
  // both delays, or a delay past max_delay_ms: use PublishConfirmed to see
  // those.
  absl::Status PublishWith(std::string_view topic, std::string_view payload,
                           const PublishOptions& options);
  // With a non-null `ack`, a successful confirmed publish also says what a
  // stream made of it: the record's stream_seq (answered only once the
  // record is durable per the stream's fsync policy) and whether it was a
  // duplicate of an earlier PublishOptions::msg_id; *ack is left zero when
  // no stream captures the topic, and untouched on error. Errors as for
  // PublishConfirmed.
  absl::Status PublishConfirmedWith(std::string_view topic,
                                    std::string_view payload,
                                    const PublishOptions& options,
                                    absl::Duration timeout = absl::Seconds(5),
                                    PublishAck* ack = nullptr);
  // The non-blocking PublishConfirmedWith, for keeping many confirms in
  // flight from one thread (group commit of a stream with fsync=always
  // answers all that arrived during one fsync together). Returns at once:
  // OK once the message is queued, or a local refusal, after which `done`
  // is never called: InvalidArgument, ResourceExhausted, PermissionDenied,
  // FailedPrecondition, Unavailable as for Publish, ResourceExhausted also
  // when ClientOptions::max_async_confirms answers are already awaited, and
  // FailedPrecondition for a closed client or an empty `done`.
  // After OK, `done` runs exactly once, with what PublishConfirmedWith
  // would have returned: the broker's OK (and its PublishAck) or ERROR
  // (e.g. ResourceExhausted: not stored, publish again), DeadlineExceeded
  // if no answer came within `timeout` (the message may still have been
  // routed or stored), or Unavailable, at once, if the session the PUB went
  // to ended before the broker answered (connection lost, siftd killed or
  // restarted: it may or may not have been routed or stored). A message
  // queued while disconnected goes out on the new session, and is answered
  // there. Answers come in any order. `done` runs on the client's I/O
  // thread (as subscription callbacks do: keep it short; it may publish,
  // also with this call, but not block on this Client), or on the thread
  // that Close()s the client, with FailedPrecondition, for those still
  // awaited then. Thread-safe.
  absl::Status PublishConfirmedAsync(std::string_view topic,
                                     std::string_view payload,
                                     const PublishOptions& options,
                                     PublishDone done,
                                     absl::Duration timeout = absl::Seconds(5));
  // Publish and wait until the broker has routed the message (OK) or
  // refused it (its ERROR as a Status), up to `timeout`. Errors: those of
  // Publish; the broker's (e.g. ResourceExhausted STORE_FULL: not stored);
  // DeadlineExceeded if no answer came in time, Unavailable at once if the
  // session the PUB went to ended first (connection lost, siftd killed or
  // restarted): either way it may or may not have been routed or stored.
  // FailedPrecondition for a closed client or from a callback.
  absl::Status PublishConfirmed(std::string_view topic,
                                std::string_view payload,
                                absl::Duration timeout = absl::Seconds(5));
  absl::Status PublishConfirmed(std::string_view topic,
                                std::string_view payload,
                                const Headers& headers,
                                absl::Duration timeout = absl::Seconds(5));

  // Subscribes to `pattern` and waits up to options.timeout for the broker
  // to accept. After a reconnect the client makes its subscriptions again
  // by itself; a Subscribe() made while the broker is away waits for the
  // next session. Errors: InvalidArgument for a bad pattern or queue group
  // (checked locally), and the broker's refusals (see SubscribeOptions;
  // ResourceExhausted for too many subscriptions, PermissionDenied for
  // another client's inbox); DeadlineExceeded if the broker did not answer
  // in time (the client then takes the subscription back); Unavailable at
  // once if the session the SUB went to ended before the broker answered:
  // not subscribed (the client does not make it in the next session),
  // subscribe again. FailedPrecondition for a closed client or from a
  // callback.
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(
      std::string_view pattern, SubscribeOptions options = {});

  // Publishes to `topic` with a reply_to in this client's inbox and waits up
  // to `timeout` for the first reply. Made while the client has no session
  // (it lost the broker and is reconnecting), it first waits for the next
  // session, which subscribes the inbox again, and is sent there, all
  // within `timeout`. Errors: those of Publish; DeadlineExceeded if no
  // reply came in time (or no session: then not sent); Unavailable at once
  // when the session it was sent or queued in ends first (connection lost,
  // siftd killed or restarted), since a reply would go to that session's
  // inbox. The request may or may not have reached a responder (a queued
  // one still goes out). FailedPrecondition for a closed client or from a
  // callback.
  absl::StatusOr<Message> Request(std::string_view topic,
                                  std::string_view payload,
                                  absl::Duration timeout = absl::Seconds(5));
  absl::StatusOr<Message> Request(std::string_view topic,
                                  std::string_view payload,
                                  const Headers& headers,
                                  absl::Duration timeout = absl::Seconds(5));

  // The broker's counters. DeadlineExceeded if no answer came within
  // `timeout`; Unavailable at once if the session the STATS went to ended
  // first; FailedPrecondition for a closed client or from a callback.
  absl::StatusOr<BrokerStats> Stats(absl::Duration timeout = absl::Seconds(5));

  // Waits until the broker has read everything this client sent or queued
  // before the call (a PING, answered after it all: NATS's Flush). It says
  // nothing about what the broker did with fire-and-forget publishes, only
  // that they were not left in this process. DeadlineExceeded if no answer
  // came within `timeout`; Unavailable at once if the session the PING
  // went to ended first (what was sent before may not have been read);
  // FailedPrecondition after Close() or from a callback. Thread-safe.
  absl::Status Flush(absl::Duration timeout = absl::Seconds(5));

  // Asks the broker to re-read the plugin sections of its config file
  // (routes, plugin libraries, [subscriptions]), as SIGHUP does. OK once the
  // new config is in force; InvalidArgument (INVALID_CONFIG) if it is
  // invalid or the broker has no config file (the old config stays);
  // DeadlineExceeded, Unavailable (session lost) as for Stats.
  absl::Status Reload(absl::Duration timeout = absl::Seconds(5));

  // Declares a work queue (AMQP's queue.declare; protocol.md §6.2): the
  // broker keeps queue group `queue_group` on `pattern` alive with explicit
  // acks, so messages routed to it wait in its backlog (up to max_queued)
  // while no worker is subscribed. Idempotent; lasts for the broker's life.
  // `ack` is the group's retry policy if the broker has none yet for it;
  // workers must then subscribe with the same max_deliver, max_queued and
  // backoff. Errors: InvalidArgument (INVALID_PATTERN,
  // INVALID_QUEUE_GROUP, INVALID_REQUEST for a policy out of range or at
  // odds with the group's), DeadlineExceeded, Unavailable (the session
  // ended before the broker answered: declared or not).
  absl::Status Declare(std::string_view pattern, std::string_view queue_group,
                       const AckOptions& ack = {},
                       absl::Duration timeout = absl::Seconds(5));

  // ---- Streams (docs/client.md, "Streams"; docs/delivery.md §3) ----
  // A broker without a data directory (siftd --data_dir) has streams
  // disabled: every call below then fails with InvalidArgument
  // (INVALID_STREAM). Each waits up to `timeout` for the broker's answer
  // (DeadlineExceeded after), and fails at once with Unavailable if the
  // session its request went to ended first (the request may or may not
  // have been carried out); a closed client fails with FailedPrecondition.
  // Thread-safe; not from a subscription callback.

  // Creates a stream (STREAM ADD) and returns it as the broker holds it
  // (defaults filled in). The broker answers once the retained values and
  // delayed messages it already held for the stream's topics are on disk
  // (docs/delivery.md §5, §6): many of them can outlast `timeout`, and then
  // DeadlineExceeded means the stream may exist with those still being
  // written; the same config again (OK, changes nothing) is answered once
  // they are. InvalidArgument (INVALID_STREAM): a bad name, subject pattern
  // or setting (a negative max_age or dedup_window among them, refused
  // before sending), or the name is taken with other settings.
  absl::StatusOr<StreamInfo> AddStream(
      const StreamConfig& config, absl::Duration timeout = absl::Seconds(5));
  // One stream's settings, counts and durable consumers. NotFound
  // (UNKNOWN_STREAM) if there is no such stream.
  absl::StatusOr<StreamInfo> GetStreamInfo(
      std::string_view name, absl::Duration timeout = absl::Seconds(5));
  // Every stream, as GetStreamInfo shows it (empty if none).
  absl::StatusOr<std::vector<StreamInfo>> ListStreams(
      absl::Duration timeout = absl::Seconds(5));
  // Deletes a stream with its records and consumers. NotFound
  // (UNKNOWN_STREAM) if there is no such stream.
  absl::Status DeleteStream(std::string_view name,
                            absl::Duration timeout = absl::Seconds(5));
  // Deletes durable consumer `consumer` of `stream` (its position is
  // forgotten). NotFound (UNKNOWN_STREAM) if either does not exist.
  absl::Status DeleteConsumer(std::string_view stream,
                              std::string_view consumer,
                              absl::Duration timeout = absl::Seconds(5));
  // Polls a stream (FETCH): returns up to options.batch records, in stream
  // order, as soon as that many are there or after options.max_wait with
  // what there is (possibly none). Waits at most options.max_wait +
  // `timeout` for the broker's answer. The Messages own their bytes; with
  // options.ack, Ack/Nack/InProgress each. Errors: NotFound
  // (UNKNOWN_STREAM) for an unknown stream, InvalidArgument
  // (INVALID_REQUEST, INVALID_PATTERN; INVALID_STREAM with streams
  // disabled) for a bad batch, pattern or ack policy, DeadlineExceeded, or
  // Unavailable at once if the session the FETCH went to ended before the
  // broker answered (either way, records the broker sent meanwhile are
  // lost to this call: without ack they count as acknowledged). Thread-safe,
  // several at once; not from a subscription callback.
  absl::StatusOr<std::vector<Message>> Fetch(
      const FetchOptions& options, absl::Duration timeout = absl::Seconds(5));

  // Acknowledges a delivery of an explicit-ack subscription (or of a Fetch
  // with FetchOptions::ack): the broker forgets it; for a stream consumer,
  // its acknowledged position moves on. Fire-and-forget (queued, returns
  // at once); an id the broker no longer holds in flight (acknowledged
  // twice, or its ack wait ran out and it was redelivered) is answered with
  // ERROR UNKNOWN_DELIVERY, counted in async_errors(). Errors here:
  // FailedPrecondition for a message without a delivery id, or a closed
  // client; NotFound (UNKNOWN_DELIVERY) for a message of an earlier session
  // (FromEarlierSession), or of the current one once it has ended (the
  // connection or the session lost, no new session yet): no session could
  // apply it. Thread-safe; also from callbacks.
  absl::Status Ack(const Message& message);
  // Acknowledges and waits up to `timeout` for the broker's answer
  // (JetStream's AckSync): OK once the broker has processed it, and for a
  // durable stream consumer once its new acknowledged position is on disk,
  // so it survives a broker restart. Acks queued before it (Ack) are
  // processed first, in order. Errors: NotFound (UNKNOWN_DELIVERY) if the
  // broker no longer holds it in flight (acknowledged already, or its ack
  // wait ran out), or for a message of an earlier session
  // (FromEarlierSession; not sent); DeadlineExceeded if no answer came in
  // time (processed or not); Unavailable with wire code HELLO_REQUIRED,
  // not sent, at once, if the session it came in has ended and no new one
  // has started (the client lost the connection and is reconnecting), or
  // as that session ends if the ACK was still queued: no session could
  // apply it, so it is not waited for (a session the broker lost while the
  // connection stayed ends at the next WELCOME, which comes within
  // `timeout` or the call ends then, not sent, the same way); Unavailable
  // at once if the session ended after it was sent, before the answer
  // (processed or not). A delivery not acknowledged is
  // handled as any of an ended session (see FromEarlierSession).
  // FailedPrecondition as for Ack.
  // Thread-safe; not from a subscription callback (the answer is read on
  // the thread that runs callbacks).
  absl::Status AckSync(const Message& message,
                       absl::Duration timeout = absl::Seconds(5));
  // Refuses it: the broker redelivers it after `delay` (zero: the
  // subscription's backoff for its attempt; else whole ms, rounded up), to
  // another group member when there is one. Same errors as Ack, and
  // InvalidArgument for a negative delay.
  absl::Status Nack(const Message& message,
                    absl::Duration delay = absl::ZeroDuration());
  // Work goes on: the broker restarts the delivery's ack wait (JetStream's
  // in-progress ack). Send it more often than the ack wait.
  absl::Status InProgress(const Message& message);

  // Sends BYE, flushes queued messages (bounded wait, 2 s) and stops the
  // I/O thread; what still waits for an answer fails with
  // FailedPrecondition, as do further calls. Waits for the I/O thread,
  // except in one of this client's callbacks: there it returns at once and
  // the I/O thread stops once the callback returns. Thread-safe.
  void Close();

  // The id the broker gave this connection, and its inbox prefix.
  std::string client_id() const;
  std::string inbox_prefix() const;
  // How many times the client has re-established its session.
  uint64_t reconnects() const;
  // ERRORs the broker sent for fire-and-forget commands, which nobody
  // waits for: a PUB it refused (STORE_FULL when a stream's writer queue
  // is full, QUEUE_FULL, PAYLOAD_TOO_LARGE, ...), an ACK, NACK or PROGRESS
  // of a delivery it no longer holds (UNKNOWN_DELIVERY), a subscription it
  // refused when the client subscribed again after a reconnect (which
  // ends that subscription: see Subscription::Next). Counted since the
  // client was made; last_async_error() is the latest, as a Status with its
  // wire code (OK if none). They arrive in order with everything else, so
  // after Flush() every ERROR for what was sent before it is counted.
  // Thread-safe.
  uint64_t async_errors() const;
  absl::Status last_async_error() const;
  // True if `message` (of an explicit-ack subscription or fetch) came in a
  // session with the broker that has since ended: the client reconnected,
  // after a broker restart or a lost connection. Its delivery id belongs to
  // that session (a restarted broker numbers deliveries from 1 again, as
  // AMQP's delivery tags are per channel), so Ack, AckSync, Nack and
  // InProgress refuse it with NotFound (wire code UNKNOWN_DELIVERY). A named
  // stream consumer gets it again, and so does a queue group whose broker
  // kept running (a lost connection); other deliveries are gone (a session
  // that ends drops its deliveries; a restart, those outside streams).
  // Thread-safe.
  bool FromEarlierSession(const Message& message) const;
  // Deliveries the broker dropped for this client because it did not read
  // fast enough (more than the broker's max_pending_bytes_per_client waited
  // for it), as the broker's SLOW_CONSUMER notices reported them; they come
  // once the client has caught up, so the count may lag. Thread-safe.
  // Distinct from Subscription::dropped(), which counts this library's own
  // queue. See docs/protocol.md §10.
  uint64_t broker_dropped() const;
  // The largest payload the broker takes, in bytes: its max_payload_bytes,
  // from its WELCOME (it may change across a reconnect). A publish with a
  // larger payload fails at once with InvalidArgument (wire code
  // PAYLOAD_TOO_LARGE). Thread-safe.
  uint64_t max_payload_bytes() const;

 private:
  explicit Client(std::shared_ptr<ClientCore> core);
  std::shared_ptr<ClientCore> core_;
};

}  // namespace sift

#endif  // SIFT_CLIENTS_CPP_CLIENT_H_
