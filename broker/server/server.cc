#include "broker/server/server.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "broker/log/log.h"
#include "broker/protocol/batch.h"
#include "broker/protocol/codec.h"
#include "broker/router/router.h"
#include "broker/server/log_limiter.h"

namespace sift {
namespace {

const std::string& VersionString() {
  static const std::string* const version =
      new std::string(absl::StrCat("siftd ", kSiftVersionNumber));
  return *version;
}

// How many messages one wake-up may drain before the loop looks at its
// shutdown signal and timers again; bounds latency of housekeeping under load.
constexpr int kMaxDrainPerWake = 4096;
constexpr int64_t kHousekeepingIntervalMs = 1000;

// Batching (see Batch in proto/sift.proto). DELIVERs for a session are
// coalesced while the loop drains its input and flushed as soon as there is
// nothing more to read, so a lone message is never held back. A batch is sent
// early once it reaches kFlushBatchBytes. Payloads above kBatchPayloadLimit
// travel in their own frame, forwarded by reference instead of copied.
// Run bench/run_matrix.sh before changing these.
constexpr size_t kFlushBatchBytes = 64 * 1024;
constexpr size_t kBatchPayloadLimit = 16 * 1024;
// A batch body up to this size is copied into its frame and the session's
// buffer reused; a larger one is handed to ZeroMQ without a copy.
constexpr size_t kCopyBatchBytes = 4096;
// Largest BATCH body the broker accepts from a client (WELCOME says so).
constexpr size_t kMaxInboundBatchBytes = 1 << 20;

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Initializes *m as a new frame holding a copy of `bytes`.
void InitCopy(zmq_msg_t* m, std::string_view bytes) {
  zmq_msg_init_size(m, bytes.size());
  if (!bytes.empty()) std::memcpy(zmq_msg_data(m), bytes.data(), bytes.size());
}

std::string_view MsgView(zmq_msg_t* m) {
  return std::string_view(static_cast<const char*>(zmq_msg_data(m)),
                          zmq_msg_size(m));
}

// An initialized zmq_msg_t that closes itself.
class ZmqMsg {
 public:
  ZmqMsg() { zmq_msg_init(&msg_); }
  ~ZmqMsg() { zmq_msg_close(&msg_); }
  ZmqMsg(const ZmqMsg&) = delete;
  ZmqMsg& operator=(const ZmqMsg&) = delete;
  zmq_msg_t* get() { return &msg_; }

 private:
  zmq_msg_t msg_;
};

RouterLimits LimitsFrom(const Config& config) {
  RouterLimits limits;
  limits.topic.max_length = config.max_topic_length;
  limits.topic.max_tokens = config.max_topic_tokens;
  limits.max_payload_bytes = config.max_payload_bytes;
  limits.max_subscriptions_per_client = config.max_subscriptions_per_client;
  limits.match_cache_size = config.match_cache_size;
  limits.max_tracked_topics = config.max_tracked_topics;
  return limits;
}

}  // namespace

const char* ServerVersion() { return VersionString().c_str(); }

class Server::Loop {
 public:
  Loop(const Config& config, void* zmq_context)
      : config_(config), context_(zmq_context), router_(LimitsFrom(config)) {}

  ~Loop() {
    if (socket_ != nullptr) zmq_close(socket_);
    if (wake_fd_ >= 0) close(wake_fd_);
  }

  absl::Status Bind() {
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) {
      return absl::InternalError(
          absl::StrCat("eventfd: ", std::strerror(errno)));
    }
    socket_ = zmq_socket(context_, ZMQ_ROUTER);
    if (socket_ == nullptr) {
      return absl::InternalError(
          absl::StrCat("zmq_socket: ", zmq_strerror(zmq_errno())));
    }
    const int one = 1;
    const int sndhwm = static_cast<int>(config_.send_hwm);
    const int rcvhwm = static_cast<int>(config_.recv_hwm);
    // Frames far beyond the payload limit are refused by ZeroMQ itself (the
    // peer is disconnected) so no one can make the broker buffer gigabytes;
    // anything up to that size gets a PAYLOAD_TOO_LARGE error instead.
    const int64_t max_frame =
        static_cast<int64_t>(config_.max_payload_bytes) * 2 + (1 << 20);
    const int linger_ms = 1000;
    zmq_setsockopt(socket_, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
    zmq_setsockopt(socket_, ZMQ_SNDHWM, &sndhwm, sizeof(sndhwm));
    zmq_setsockopt(socket_, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm));
    zmq_setsockopt(socket_, ZMQ_MAXMSGSIZE, &max_frame, sizeof(max_frame));
    zmq_setsockopt(socket_, ZMQ_LINGER, &linger_ms, sizeof(linger_ms));
    for (const std::string& endpoint : config_.endpoints) {
      if (zmq_bind(socket_, endpoint.c_str()) != 0) {
        return absl::UnavailableError(
            absl::StrCat("cannot listen on ", endpoint, ": ",
                         zmq_strerror(zmq_errno())));
      }
      char last[1024];
      size_t len = sizeof(last);
      if (zmq_getsockopt(socket_, ZMQ_LAST_ENDPOINT, last, &len) == 0 &&
          len > 1) {
        endpoints_.emplace_back(last, len - 1);
      } else {
        endpoints_.push_back(endpoint);
      }
    }
    return absl::OkStatus();
  }

  const std::vector<std::string>& endpoints() const { return endpoints_; }

  void Shutdown() {
    const uint64_t one = 1;
    // Async-signal-safe; a failed write means a wake-up is already pending.
    ssize_t ignored = write(wake_fd_, &one, sizeof(one));
    (void)ignored;
  }

  void Run() {
    started_ms_ = NowMs();
    now_ms_ = started_ms_;
    for (const std::string& endpoint : endpoints_) {
      Log(LogLevel::kInfo, "listening", {{"endpoint", endpoint}});
    }
    Log(LogLevel::kInfo, "ready",
        {{"version", VersionString()},
         {"max_payload_bytes", config_.max_payload_bytes},
         {"max_subscriptions_per_client",
          config_.max_subscriptions_per_client}});
    // The loop sleeps in poll(2) on the socket's ZMQ_FD and the wake fd
    // rather than in zmq_poll, which costs several more system calls per
    // wake-up. ZMQ_FD signals new commands for the socket, not messages, and
    // any call on the socket may consume that signal; Drain therefore ends
    // on a receive that finds nothing after its last send, and only then
    // ("armed") may the loop sleep on the fd.
    int zmq_fd = -1;
    size_t fd_size = sizeof(zmq_fd);
    if (zmq_getsockopt(socket_, ZMQ_FD, &zmq_fd, &fd_size) != 0) {
      Log(LogLevel::kError, "cannot get the socket's fd",
          {{"error", zmq_strerror(zmq_errno())}});
      return;
    }
    int64_t next_housekeeping = now_ms_ + kHousekeepingIntervalMs;
    bool armed = Drain();
    while (true) {
      int64_t wait = armed ? next_housekeeping - now_ms_ : 0;
      if (wait < 0) wait = 0;
      pollfd fds[2] = {{zmq_fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      const int rc = poll(fds, 2, static_cast<int>(wait));
      now_ms_ = NowMs();
      if (rc < 0 && errno != EINTR) {
        Log(LogLevel::kError, "poll failed", {{"error", std::strerror(errno)}});
        break;
      }
      if (fds[1].revents & POLLIN) break;
      armed = Drain();
      if (now_ms_ >= next_housekeeping) {
        Housekeeping();  // sends nothing, so the socket stays armed
        next_housekeeping = now_ms_ + kHousekeepingIntervalMs;
      }
    }
    wire::StatsReply stats;
    router_.FillStats(0, &stats);
    Log(LogLevel::kInfo, "shutting down",
        {{"clients", stats.clients()},
         {"messages_in", stats.messages_in()},
         {"messages_out", stats.messages_out()}});
    zmq_close(socket_);
    socket_ = nullptr;
  }

 private:
  struct Session {
    std::string routing_id;
    int64_t last_seen_ms = 0;
    bool batches = false;  // the client accepts BATCH (said so in HELLO)
    // DELIVERs waiting to go out as one BATCH.
    std::unique_ptr<std::string> out;
    uint32_t out_count = 0;
    uint64_t out_payload_bytes = 0;
    size_t last_batch_bytes = 0;  // size of the previous batch sent
    bool dirty = false;           // listed in dirty_
  };

  // Reads and handles queued messages, up to kMaxDrainPerWake, and sends
  // what they produced. Returns true if it ended on a receive that found
  // nothing after its last send (the socket's fd will signal the next
  // message), false if it stopped at the limit with input left.
  bool Drain() {
    for (int handled = 0; handled < kMaxDrainPerWake;) {
      if (zmq_msg_recv(id_.get(), socket_, ZMQ_DONTWAIT) < 0) {
        if (zmq_errno() == EINTR) continue;
        // EAGAIN: nothing more right now. Send what is pending; a send may
        // take the fd's signal, so then receive once more before sleeping.
        if (dirty_.empty()) {
          FlushGoneClients();
          return true;
        }
        FlushBatches();
        FlushGoneClients();
        continue;
      }
      // The remaining parts of a multipart message are already here.
      int frames = 0;
      bool more = zmq_msg_more(id_.get());
      if (more && zmq_msg_recv(header_.get(), socket_, 0) >= 0) {
        ++frames;
        more = zmq_msg_more(header_.get());
      }
      if (more && zmq_msg_recv(payload_.get(), socket_, 0) >= 0) {
        ++frames;
        more = zmq_msg_more(payload_.get());
      }
      while (more && zmq_msg_recv(extra_.get(), socket_, 0) >= 0) {
        ++frames;
        more = zmq_msg_more(extra_.get());
      }
      HandleMessage(frames);
      ++handled;
    }
    FlushBatches();
    FlushGoneClients();
    return false;
  }

  void HandleMessage(int frames) {
    const std::string_view routing_id = MsgView(id_.get());
    auto it = by_routing_id_.find(
        absl::string_view(routing_id.data(), routing_id.size()));
    const bool known = it != by_routing_id_.end();
    const Router::ClientHandle client = known ? it->second : 0;
    if (known) sessions_[client].last_seen_ms = now_ms_;

    if (frames == 0 || zmq_msg_size(header_.get()) == 0) {
      return RejectFrame(routing_id, known, client, 0,
                         "message has no header frame (frame 0 is empty)");
    }
    // The common case, a PUB from a live session, skips protobuf entirely.
    protocol::PubView fast;
    if (known && frames == 2 &&
        protocol::DecodePubFast(
            static_cast<const char*>(zmq_msg_data(header_.get())),
            zmq_msg_size(header_.get()), &fast)) {
      return HandlePub(routing_id, client, fast, MsgView(payload_.get()),
                       payload_.get());
    }
    auto decoded =
        decoder_.Decode(zmq_msg_data(header_.get()), zmq_msg_size(header_.get()));
    if (!decoded.ok()) {
      return RejectFrame(routing_id, known, client, 0,
                         decoded.status().message());
    }
    const wire::Header& h = **decoded;
    const uint64_t rid = h.request_id();
    const bool wants_payload = h.has_pub() || h.has_batch();
    if (h.command_case() != wire::Header::COMMAND_NOT_SET &&
        frames != (wants_payload ? 2 : 1)) {
      return RejectFrame(
          routing_id, known, client, rid,
          absl::StrCat(protocol::CommandName(h), " must have ",
                       wants_payload ? 2 : 1, " frame(s), got ", frames));
    }

    switch (h.command_case()) {
      case wire::Header::kHello:
        return HandleHello(routing_id, known, client, h);
      case wire::Header::kBye:
        if (known) EndSession(client, "bye");
        return;
      case wire::Header::COMMAND_NOT_SET:
        return SendClientError(
            routing_id, known, client, rid, wire::UNKNOWN_COMMAND,
            "header names no command this broker knows (protocol version 1)");
      default:
        break;
    }
    if (!known) {
      if (h.has_pub()) router_.RecordDrop(DropReason::kNotConnected);
      if (h.has_batch()) {
        router_.RecordDrop(DropReason::kNotConnected,
                           CountEntries(MsgView(payload_.get())));
      }
      return SendClientError(
          routing_id, known, client, rid, wire::HELLO_REQUIRED,
          absl::StrCat(protocol::CommandName(h),
                       " before HELLO: start the session with HELLO "
                       "(the broker may have restarted)"));
    }
    switch (h.command_case()) {
      case wire::Header::kPub:
        return HandlePub(routing_id, client, protocol::PubViewOf(h),
                         MsgView(payload_.get()), payload_.get());
      case wire::Header::kBatch:
        return HandleBatch(routing_id, client, h);
      case wire::Header::kSub: {
        absl::Status s = router_.Subscribe(client, h.sub().sid(),
                                           h.sub().pattern(),
                                           h.sub().queue_group());
        return Answer(routing_id, client, rid, s);
      }
      case wire::Header::kUnsub:
        return Answer(routing_id, client, rid,
                      router_.Unsubscribe(client, h.unsub().sid()));
      case wire::Header::kPing: {
        wire::Header reply;
        reply.set_request_id(rid);
        reply.mutable_pong();
        return SendHeader(routing_id, reply);
      }
      case wire::Header::kPong:
        return;  // liveness already noted
      case wire::Header::kStats:
        return HandleStats(routing_id, rid);
      default:
        return SendClientError(
            routing_id, known, client, rid, wire::INVALID_REQUEST,
            absl::StrCat(protocol::CommandName(h),
                         " is sent by the broker, not by clients"));
    }
  }

  void HandleHello(std::string_view routing_id, bool known,
                   Router::ClientHandle client, const wire::Header& h) {
    const uint32_t version = h.hello().protocol_version();
    if (version != wire::PROTOCOL_VERSION_CURRENT) {
      return SendClientError(
          routing_id, known, client, h.request_id(), wire::VERSION_MISMATCH,
          absl::StrCat("protocol version ", version,
                       " is not supported; this broker speaks version ",
                       static_cast<int>(wire::PROTOCOL_VERSION_CURRENT)));
    }
    // HELLO on a live session starts a fresh one.
    if (known) EndSession(client, "hello again");
    const Router::ClientHandle c = router_.AddClient(h.hello().client_name());
    if (sessions_.size() <= c) sessions_.resize(c + 1);
    sessions_[c].routing_id.assign(routing_id.data(), routing_id.size());
    sessions_[c].last_seen_ms = now_ms_;
    sessions_[c].batches = h.hello().accepts_batches();
    by_routing_id_[absl::string_view(routing_id.data(), routing_id.size())] = c;

    wire::Header reply;
    reply.set_request_id(h.request_id());
    wire::Welcome* w = reply.mutable_welcome();
    w->set_protocol_version(wire::PROTOCOL_VERSION_CURRENT);
    w->set_server_version(VersionString());
    w->set_client_id(router_.client_id(c));
    w->set_inbox_prefix(router_.inbox_prefix(c));
    w->set_max_payload_bytes(config_.max_payload_bytes);
    w->set_max_topic_length(config_.max_topic_length);
    w->set_max_topic_tokens(config_.max_topic_tokens);
    w->set_max_subscriptions(config_.max_subscriptions_per_client);
    w->set_client_timeout_ms(config_.client_timeout_ms);
    w->set_max_batch_bytes(kMaxInboundBatchBytes);
    SendHeader(routing_id, reply);
    Log(LogLevel::kInfo, "client connected",
        {{"client", router_.client_id(c)},
         {"name", h.hello().client_name()}});
  }

  // Routes one PUB. `payload_msg` is its own frame (forwarded by reference
  // when it goes out unbatched), or null for a PUB that came in a BATCH.
  void HandlePub(std::string_view routing_id, Router::ClientHandle client,
                 const protocol::PubView& pub, std::string_view payload,
                 zmq_msg_t* payload_msg) {
    absl::Status s =
        router_.Publish(pub.topic, pub.reply_to, payload.size(), &targets_);
    if (!s.ok()) {
      return SendClientError(routing_id, true, client, pub.request_id,
                             protocol::WireCodeOf(s), s.message());
    }
    for (const Router::Target& t : targets_) {
      Deliver(t, pub, payload, payload_msg);
    }
    // A member found gone leaves the router now, not at the end of the
    // drain: the next publish (even the next entry of this BATCH) must not
    // be routed to it again.
    if (!gone_.empty()) FlushGoneClients();
    if (pub.confirm) {
      wire::Header reply;
      reply.set_request_id(pub.request_id);
      reply.mutable_ok();
      SendHeader(routing_id, reply);
    }
  }

  void HandleBatch(std::string_view routing_id, Router::ClientHandle client,
                   const wire::Header& h) {
    const std::string_view body = MsgView(payload_.get());
    if (body.size() > kMaxInboundBatchBytes) {
      router_.RecordDrop(DropReason::kPayloadTooLarge, CountEntries(body));
      return SendClientError(
          routing_id, true, client, h.request_id(), wire::PAYLOAD_TOO_LARGE,
          absl::StrCat("BATCH of ", body.size(),
                       " bytes exceeds max_batch_bytes (",
                       kMaxInboundBatchBytes, ")"));
    }
    const uint64_t batch_request_id = h.request_id();
    protocol::BatchReader reader(body.data(), body.size());
    std::string_view header, payload;
    uint32_t seen = 0;
    while (reader.Next(&header, &payload)) {
      ++seen;
      protocol::PubView pub;
      if (protocol::DecodePubFast(header.data(), header.size(), &pub)) {
        HandlePub(routing_id, client, pub, payload, nullptr);
        continue;
      }
      // Not a plain PUB: the full decoder tells what it is. (`h` lives in
      // the decoder's arena, so it must not be used past this point.)
      auto decoded = decoder_.Decode(header.data(), header.size());
      if (!decoded.ok() || !(*decoded)->has_pub()) {
        // Stop here: one ERROR, not one per entry of a hostile batch.
        const uint64_t rest = reader.SkipRest();
        router_.RecordDrop(DropReason::kBadFrame, 1 + rest);
        SendClientError(
            routing_id, true, client, batch_request_id, wire::BAD_FRAME,
            absl::StrCat("BATCH entry ", seen,
                         " is not a PUB header; it and the ", rest,
                         " entries after it were not routed"));
        return;
      }
      HandlePub(routing_id, client, protocol::PubViewOf(**decoded), payload,
                nullptr);
    }
    if (reader.error()) {
      router_.RecordDrop(DropReason::kBadFrame);
      SendClientError(routing_id, true, client, batch_request_id,
                      wire::BAD_FRAME,
                      absl::StrCat("BATCH body is malformed after entry ",
                                   seen));
    }
  }

  // The entries a BATCH body really holds (its header's count is only a
  // claim), at least 1 so a refused batch is never counted as nothing.
  static uint64_t CountEntries(std::string_view body) {
    const uint64_t n = protocol::BatchReader(body.data(), body.size()).SkipRest();
    return n > 0 ? n : 1;
  }

  // Makes one delivery: into the session's pending BATCH, or (large payloads,
  // clients without batches) as [routing id][DELIVER][payload], the payload
  // frame shared by reference.
  void Deliver(const Router::Target& t, const protocol::PubView& pub,
               std::string_view payload, zmq_msg_t* payload_msg) {
    if (!router_.IsLive(t.client)) {
      router_.RecordDrop(DropReason::kClientGone);
      return;
    }
    Session& session = sessions_[t.client];
    if (session.batches && payload.size() <= kBatchPayloadLimit) {
      if (!session.out) {
        // Sized like this session's previous batch: a lone message at low
        // rates, close to kFlushBatchBytes under load.
        session.out = std::make_unique<std::string>();
        session.out->reserve(session.last_batch_bytes + 256);
      }
      protocol::BatchWriter(session.out.get())
          .AppendDeliver(t.sid, pub.topic, pub.reply_to, payload);
      ++session.out_count;
      session.out_payload_bytes += payload.size();
      if (!session.dirty) {
        session.dirty = true;
        dirty_.push_back(t.client);
      }
      if (session.out->size() >= kFlushBatchBytes) FlushSession(t.client);
      return;
    }
    FlushSession(t.client);  // keep this session's deliveries in order
    if (!SendRoutingFrame(session.routing_id, t.client, 1)) return;
    // Once the routing frame is accepted, ZeroMQ takes the rest of the
    // message whole, so the remaining sends cannot fail on the water mark.
    zmq_msg_t part;
    zmq_msg_init_size(&part, protocol::DeliverSize(t.sid, pub.topic,
                                                   pub.reply_to));
    protocol::EncodeDeliver(t.sid, pub.topic, pub.reply_to,
                            static_cast<char*>(zmq_msg_data(&part)));
    zmq_msg_send(&part, socket_, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (payload_msg != nullptr) {
      zmq_msg_init(&part);
      zmq_msg_copy(&part, payload_msg);
    } else {
      InitCopy(&part, payload);
    }
    zmq_msg_send(&part, socket_, ZMQ_DONTWAIT);
    router_.RecordDelivered(payload.size());
  }

  // Sends the routing frame of a message to `client`, which carries
  // `deliveries` deliveries. On failure counts them as dropped (and notes a
  // vanished peer) and returns false.
  bool SendRoutingFrame(std::string_view routing_id,
                        Router::ClientHandle client, uint32_t deliveries) {
    zmq_msg_t part;
    InitCopy(&part, routing_id);
    if (zmq_msg_send(&part, socket_, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0) {
      return true;
    }
    const int err = zmq_errno();
    zmq_msg_close(&part);
    const DropReason reason = err == EHOSTUNREACH ? DropReason::kClientGone
                                                  : DropReason::kSlowConsumer;
    router_.RecordDrop(reason, deliveries);
    if (err == EHOSTUNREACH) gone_.push_back(client);
    return false;
  }

  // Sends the session's pending BATCH, if any: a small body is copied into
  // its frame (the session keeps its buffer), a large one handed to ZeroMQ
  // without a copy (freed once sent).
  void FlushSession(Router::ClientHandle client) {
    Session& session = sessions_[client];
    if (session.out_count == 0) return;
    const uint32_t count = session.out_count;
    const uint64_t bytes = session.out_payload_bytes;
    session.out_count = 0;
    session.out_payload_bytes = 0;
    session.last_batch_bytes = session.out->size();

    if (!SendRoutingFrame(session.routing_id, client, count)) {
      session.out->clear();  // dropped, and counted as such
      return;
    }
    zmq_msg_t part;
    zmq_msg_init_size(&part, protocol::BatchHeaderSize(count));
    protocol::EncodeBatchHeader(count, static_cast<char*>(zmq_msg_data(&part)));
    zmq_msg_send(&part, socket_, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (session.out->size() <= kCopyBatchBytes) {
      InitCopy(&part, *session.out);
      session.out->clear();  // keeps its capacity for the next batch
    } else {
      std::string* raw = session.out.release();
      zmq_msg_init_data(
          &part, raw->data(), raw->size(),
          [](void*, void* hint) { delete static_cast<std::string*>(hint); },
          raw);
    }
    zmq_msg_send(&part, socket_, ZMQ_DONTWAIT);
    router_.RecordDeliveredBatch(count, bytes);
  }

  void FlushBatches() {
    for (Router::ClientHandle c : dirty_) {
      sessions_[c].dirty = false;
      if (router_.IsLive(c)) FlushSession(c);
    }
    dirty_.clear();
  }

  void HandleStats(std::string_view routing_id, uint64_t rid) {
    // Send what is batched first, so the totals agree with the per-topic
    // counts (which are taken at routing time) in every reply.
    FlushBatches();
    wire::Header reply;
    reply.set_request_id(rid);
    wire::StatsReply* stats = reply.mutable_stats_reply();
    router_.FillStats(config_.stats_top_topics, stats);
    stats->set_server_version(VersionString());
    stats->set_uptime_ms(static_cast<uint64_t>(now_ms_ - started_ms_));
    SendHeader(routing_id, reply);
  }

  // OK for a request that wants one (request_id != 0), ERROR for a failure.
  void Answer(std::string_view routing_id, Router::ClientHandle client,
              uint64_t rid, const absl::Status& status) {
    if (!status.ok()) {
      return SendClientError(routing_id, true, client, rid,
                             protocol::WireCodeOf(status), status.message());
    }
    if (rid == 0) return;
    wire::Header reply;
    reply.set_request_id(rid);
    reply.mutable_ok();
    SendHeader(routing_id, reply);
  }

  void RejectFrame(std::string_view routing_id, bool known,
                   Router::ClientHandle client, uint64_t rid,
                   absl::string_view why) {
    router_.RecordDrop(DropReason::kBadFrame);
    SendClientError(routing_id, known, client, rid, wire::BAD_FRAME, why);
  }

  void SendClientError(std::string_view routing_id, bool known,
                       Router::ClientHandle client, uint64_t rid,
                       wire::ErrorCode code, absl::string_view text) {
    const std::string_view message(text.data(), text.size());
    if (log_limiter_.Allow(now_ms_)) {
      Log(LogLevel::kWarn, "client error",
          {{"client", known ? router_.client_id(client) : "(no session)"},
           {"code", wire::ErrorCode_Name(code)},
           {"request_id", rid},
           {"error", message}});
    }
    wire::Header reply;
    reply.set_request_id(rid);
    reply.mutable_error()->set_code(code);
    reply.mutable_error()->set_message(message.data(), message.size());
    router_.RecordErrorSent();
    SendHeader(routing_id, reply);
  }

  // Sends a header-only reply. Replies are never dropped silently: a full
  // queue is counted like any other slow-consumer drop.
  void SendHeader(std::string_view routing_id, const wire::Header& header) {
    // Replies must not overtake deliveries already batched for this client.
    auto session = by_routing_id_.find(
        absl::string_view(routing_id.data(), routing_id.size()));
    if (session != by_routing_id_.end()) FlushSession(session->second);
    const std::string bytes = protocol::EncodeHeader(header);
    if (zmq_send(socket_, routing_id.data(), routing_id.size(),
                 ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
      router_.RecordDrop(zmq_errno() == EHOSTUNREACH
                             ? DropReason::kClientGone
                             : DropReason::kSlowConsumer);
      return;
    }
    zmq_send(socket_, bytes.data(), bytes.size(), ZMQ_DONTWAIT);
  }

  void EndSession(Router::ClientHandle client, std::string_view reason) {
    // The handle may be reused by the next HELLO: it must not stay in gone_.
    gone_.erase(std::remove(gone_.begin(), gone_.end(), client), gone_.end());
    Log(LogLevel::kInfo, "client disconnected",
        {{"client", router_.client_id(client)}, {"reason", reason}});
    Session& s = sessions_[client];
    router_.RecordDrop(DropReason::kClientGone, s.out_count);
    s.out.reset();
    s.out_count = 0;
    s.out_payload_bytes = 0;
    s.batches = false;
    by_routing_id_.erase(s.routing_id);
    s.routing_id.clear();
    router_.RemoveClient(client);
  }

  void FlushGoneClients() {
    // EndSession removes its client from gone_, so take the list first.
    std::vector<Router::ClientHandle> gone;
    gone.swap(gone_);
    for (Router::ClientHandle c : gone) {
      if (router_.IsLive(c)) EndSession(c, "peer gone");
    }
  }

  void Housekeeping() {
    if (log_limiter_.suppressed() > 0 && log_limiter_.Allow(now_ms_)) {
      Log(LogLevel::kWarn, "client errors not logged (rate limit)",
          {{"suppressed", log_limiter_.TakeSuppressed()}});
    }
    if (config_.client_timeout_ms == 0) return;
    for (Router::ClientHandle c = 0; c < sessions_.size(); ++c) {
      if (router_.IsLive(c) &&
          now_ms_ - sessions_[c].last_seen_ms >
              static_cast<int64_t>(config_.client_timeout_ms)) {
        EndSession(c, "timeout");
      }
    }
  }

  const Config config_;
  void* const context_;
  void* socket_ = nullptr;
  int wake_fd_ = -1;
  std::vector<std::string> endpoints_;

  Router router_;
  protocol::HeaderDecoder decoder_;
  LogLimiter log_limiter_{/*per_window=*/50, /*window_ms=*/10000};

  // Sessions by Router::ClientHandle, and the reverse index.
  std::vector<Session> sessions_;
  absl::flat_hash_map<std::string, Router::ClientHandle> by_routing_id_;
  std::vector<Router::ClientHandle> gone_;
  std::vector<Router::ClientHandle> dirty_;  // sessions with a pending BATCH

  // Reused per message, so the hot path allocates nothing of its own.
  ZmqMsg id_, header_, payload_, extra_;
  std::vector<Router::Target> targets_;

  int64_t started_ms_ = 0;
  int64_t now_ms_ = 0;
};

absl::StatusOr<std::unique_ptr<Server>> Server::Create(const Config& config,
                                                       void* zmq_context) {
  auto loop = std::make_unique<Loop>(config, zmq_context);
  if (absl::Status s = loop->Bind(); !s.ok()) return s;
  return std::unique_ptr<Server>(new Server(std::move(loop)));
}

Server::Server(std::unique_ptr<Loop> loop) : loop_(std::move(loop)) {}
Server::~Server() = default;

const std::vector<std::string>& Server::endpoints() const {
  return loop_->endpoints();
}

void Server::Run() { loop_->Run(); }
void Server::Shutdown() { loop_->Shutdown(); }

}  // namespace sift
