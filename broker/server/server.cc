#include "broker/server/server.h"

#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/base/attributes.h"
#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "broker/base/absl_view.h"
#include "broker/base/utf8_text.h"
#include "broker/delivery/deliveries.h"
#include "broker/delivery/message_arena.h"
#include "broker/delivery/scheduled.h"
#include "broker/log/log.h"
#include "broker/plugin/chain_io.h"
#include "broker/plugin/plugin_set.h"
#include "broker/protocol/batch.h"
#include "broker/protocol/codec.h"
#include "broker/protocol/frame_limits.h"
#include "broker/protocol/headers.h"
#include "broker/router/router.h"
#include "broker/server/ipc_path.h"
#include "broker/server/log_limiter.h"
#include "broker/server/output_account.h"
#include "broker/server/peer_guard.h"
#include "broker/store/retained.h"
#include "broker/streams/stream_manager.h"
#include "broker/streams/stream_wire.h"

namespace sift {
namespace {

const std::string& VersionString() {
  static const std::string* const version =
      new std::string(absl::StrCat("siftd ", kSiftVersionNumber));
  return *version;
}

// How many messages one drain may handle (a BATCH counts its entries)
// before it sends what they produced and the loop looks at its shutdown
// signal and timers again: it bounds how late those are under load. A
// BATCH used to count as one message, so a drain could run through 4,096
// batches of ~400 PUBs each (a whole 1M-message burst) before a timer ran.
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
// Longest HELLO client_name (checked before it is stored or logged).
using protocol::kMaxClientNameBytes;

// DROP_OLDEST subscriptions: messages held per subscription unless the SUB
// says, and how often held messages are offered again while any wait.
constexpr uint32_t kDefaultHeldMessages = 1000;
constexpr int64_t kHeldRetryMs = 2;

// A stream publish's message id header (JetStream's Nats-Msg-Id): a repeat
// within the stream's dedup window is stored and routed once.
constexpr std::string_view kMsgIdHeader = "sift-msg-id";
// Stream consumers are sent more records only while their client has less
// than this queued (they wait in the stream, not in the broker's memory).
constexpr int64_t kStreamPendingBytes = 4 << 20;
// File descriptors kept free for everything but client connections (the
// process's own sockets, ZeroMQ's internal pipes, ipc files).
constexpr uint64_t kReservedFds = 64;

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Unix time in ms (absl::Now() costs several times more: per stream record).
int64_t UnixNowMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
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
  limits.headers.max_count = config.max_headers;
  limits.headers.max_bytes = config.max_headers_bytes;
  limits.max_subscriptions_per_client = config.max_subscriptions_per_client;
  limits.max_subscriptions = config.max_subscriptions;
  limits.match_cache_size = config.match_cache_size;
  limits.max_tracked_topics = config.max_tracked_topics;
  return limits;
}

// Largest frame 0 accepted (protocol::MaxFrame0Bytes). Every string a
// client sends is bounded by this before anything is parsed, stored or
// logged.
size_t MaxFrame0Bytes(const Config& config) {
  return protocol::MaxFrame0Bytes(config.max_topic_length, config.max_headers,
                                  config.max_headers_bytes);
}

// Connections the process can hold: its soft file-descriptor limit, less a
// reserve for everything else.
size_t FdCapacity() {
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 ||
      limit.rlim_cur == RLIM_INFINITY) {
    return SIZE_MAX;
  }
  return limit.rlim_cur > kReservedFds ? limit.rlim_cur - kReservedFds : 1;
}

bool IsBrokerOnly(const wire::Header& h) {
  switch (h.command_case()) {
    case wire::Header::kWelcome:
    case wire::Header::kDeliver:
    case wire::Header::kOk:
    case wire::Header::kError:
    case wire::Header::kStatsReply:
    case wire::Header::kStreamReply:
      return true;
    default:
      return false;
  }
}

}  // namespace

const char* ServerVersion() { return VersionString().c_str(); }

class Server::Loop {
 public:
  Loop(const Config& config, void* zmq_context,
       std::unique_ptr<plugin::PluginSet> plugins,
       std::vector<streams::StreamSettings> stream_settings,
       std::vector<delivery::Schedule> schedules)
      : config_(config),
        context_(zmq_context),
        router_(LimitsFrom(config)),
        plugins_(std::move(plugins)),
        stream_settings_(std::move(stream_settings)) {
    for (const delivery::Schedule& s : schedules) {
      schedule_headers_.push_back(protocol::EncodeHeaders(s.headers));
    }
    if (!schedules.empty()) {
      schedules_ = std::make_unique<delivery::ScheduleTimer>(
          std::move(schedules), absl::ToUnixMillis(absl::Now()));
    }
  }

  // Hands a new plugin set to the loop (any thread); it takes over at the
  // loop's next wake-up, between two messages.
  void Reload(std::unique_ptr<plugin::PluginSet> plugins) {
    {
      absl::MutexLock lock(&reload_mu_);
      pending_plugins_ = std::move(plugins);
    }
    Wake();
  }

  void SetReloader(Reloader reloader) { reloader_ = std::move(reloader); }

  ~Loop() {
    guard_.reset();
    if (socket_ != nullptr) zmq_close(socket_);
    if (wake_fd_ >= 0) close(wake_fd_);
    for (Session& s : sessions_) {
      if (s.account != nullptr) s.account->Unref();
    }
    all_output_->Unref();
  }

  absl::Status Bind() {
    if (absl::Status s = OpenStreams(); !s.ok()) return s;
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
        static_cast<int64_t>(
            std::max(config_.max_payload_bytes, config_.max_batch_bytes)) *
            2 +
        (1 << 20);
    const int linger_ms = 1000;
    zmq_setsockopt(socket_, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
    zmq_setsockopt(socket_, ZMQ_SNDHWM, &sndhwm, sizeof(sndhwm));
    zmq_setsockopt(socket_, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm));
    zmq_setsockopt(socket_, ZMQ_MAXMSGSIZE, &max_frame, sizeof(max_frame));
    zmq_setsockopt(socket_, ZMQ_LINGER, &linger_ms, sizeof(linger_ms));
    // Connections that never complete the handshake (no greeting, or
    // refused by the peer guard) are closed after this, not libzmq's 30 s.
    const int handshake_ms = static_cast<int>(config_.handshake_timeout_ms);
    zmq_setsockopt(socket_, ZMQ_HANDSHAKE_IVL, &handshake_ms,
                   sizeof(handshake_ms));
    auto guard = PeerGuard::Create(context_, socket_);
    if (!guard.ok()) return guard.status();
    guard_ = *std::move(guard);
    for (const std::string& endpoint : config_.endpoints) {
      // A refused endpoint leaves no socket file of an earlier one behind.
      if (absl::Status s = CheckIpcPathFree(endpoint); !s.ok()) {
        ipc_files_.RemoveAll();
        return s;
      }
      if (zmq_bind(socket_, endpoint.c_str()) != 0) {
        const int err = zmq_errno();
        ipc_files_.RemoveAll();
        return absl::UnavailableError(absl::StrCat(
            "cannot listen on ", endpoint, ": ", zmq_strerror(err)));
      }
      ipc_files_.Remember(endpoint);
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

  // Durable streams (broker/streams) when data_dir is set. [[streams]]
  // without a data_dir is a configuration error.
  absl::Status OpenStreams() {
    if (config_.data_dir.empty()) {
      if (!stream_settings_.empty()) {
        return absl::InvalidArgumentError(
            "the config defines [[streams]] but no data_dir: set data_dir "
            "(or --data_dir=DIR) to where siftd may keep them");
      }
      return absl::OkStatus();
    }
    auto opened = streams::StreamManager::Open(
        config_.data_dir, stream_settings_,
        [](bool warning, std::string_view message,
           std::vector<std::pair<std::string, std::string>> fields) {
          std::string details;
          for (const auto& [k, v] : fields) {
            absl::StrAppend(&details, details.empty() ? "" : " ", k, "=", v);
          }
          Log(warning ? LogLevel::kWarn : LogLevel::kInfo, message,
              {{"details", details}});
        });
    if (!opened.ok()) {
      return absl::Status(
          opened.status().code(),
          absl::StrCat("data_dir ", config_.data_dir, ": ",
                       opened.status().message()));
    }
    streams_ = *std::move(opened);
    // Retained values and delayed messages of stream topics come back.
    const int64_t now = NowMs();
    // All of them, past max_retained and max_delayed if those were lowered
    // meanwhile: each was confirmed to its publisher (a delayed one was
    // deleted from disk here, for good). Delayed ones come in due order,
    // those due together (all the overdue ones: now) in publish order.
    size_t retained = 0, delayed = 0;
    for (streams::HeldMessage& h : streams_->TakeLoadedHeld()) {
      if (h.due_unix_ms == 0) {
        if (retained_.Set(h.message, /*restored=*/true).ok()) ++retained;
        continue;
      }
      const int64_t due = std::max<int64_t>(now, LoopTimeOf(h.due_unix_ms));
      if (scheduled_.Add(due, h.message, /*restored=*/true).ok()) {
        held_delayed_[h.message.get()] = {h.stream, h.key};
        ++delayed;
      }
    }
    if (retained + delayed > 0) {
      Log(LogLevel::kInfo, "kept messages restored from streams",
          {{"retained", static_cast<uint64_t>(retained)},
           {"delayed", static_cast<uint64_t>(delayed)}});
    }
    // Each store over its limits says so on its own line, naming only
    // itself (a trial read "retained or delayed" of a broker whose retained
    // values were well within theirs).
    if (retained_.over_bounds()) {
      Log(LogLevel::kWarn,
          "kept messages restored past their limits: new retained values "
          "get STORE_FULL until fewer are held",
          {{"retained", static_cast<uint64_t>(retained_.size())},
           {"max_retained", static_cast<uint64_t>(config_.max_retained)},
           {"retained_bytes", retained_.bytes()},
           {"max_retained_bytes", config_.max_retained_bytes}});
    }
    if (scheduled_.over_bounds()) {
      Log(LogLevel::kWarn,
          "kept messages restored past their limits: new delayed publishes "
          "get STORE_FULL until fewer are held",
          {{"delayed", static_cast<uint64_t>(scheduled_.size())},
           {"max_delayed", static_cast<uint64_t>(config_.max_delayed)},
           {"delayed_bytes", scheduled_.bytes()},
           {"max_delayed_bytes", config_.max_delayed_bytes}});
    }
    return absl::OkStatus();
  }

  void Shutdown() {
    shutdown_.store(true, std::memory_order_release);
    Wake();
  }

  // Async-signal-safe; a failed write means a wake-up is already pending.
  void Wake() {
    const uint64_t one = 1;
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
          config_.max_subscriptions_per_client},
         {"max_connections", MaxConnections()},
         {"max_pending_bytes", config_.max_pending_bytes}});
    if (!guard_->has_zap_handler()) {
      Log(LogLevel::kWarn,
          "another ZAP handler serves this ZeroMQ context: connections are "
          "not bounded at the handshake, and a closed connection's session "
          "ends when its disconnect is seen",
          {});
    }
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
      // Replies batched since the last drain: the next drain sends them.
      if (!dirty_.empty()) armed = false;
      int64_t wait = armed ? next_housekeeping - now_ms_ : 0;
      if (armed && scheduled_.size() > 0) {
        wait = std::min<int64_t>(
            wait, std::max<int64_t>(0, scheduled_.NextDue() - now_ms_ + 1));
      }
      // Ack waits and redeliveries (broker/delivery) keep their own time.
      if (armed && !deliveries_idle_) {
        const int64_t due = deliveries_.NextDeadline();
        if (due == INT64_MAX) {
          deliveries_idle_ = deliveries_.in_flight() == 0 &&
                             deliveries_.delayed() == 0 &&
                             deliveries_.queued() == 0;
        } else if (due - now_ms_ < wait) {
          wait = std::max<int64_t>(0, due - now_ms_ + 1);
        }
      }
      if (armed && schedules_ != nullptr) {
        const int64_t until = schedules_->NextDue() -
                              absl::ToUnixMillis(absl::Now());
        if (until < wait) wait = std::max<int64_t>(0, until);
      }
      if (armed && streams_ != nullptr) {
        const int64_t due = streams_->NextDeadline(now_ms_);
        if (due - now_ms_ < wait) wait = std::max<int64_t>(0, due - now_ms_);
      }
      // Closing sessions end at the next drain; keep it near. Deliveries
      // held for slow DROP_OLDEST subscriptions are offered again soon.
      if (!closing_.empty() && wait > 1) wait = 1;
      if (!held_.empty() && wait > kHeldRetryMs) wait = kHeldRetryMs;
      if (wait < 0) wait = 0;
      // The stream appends of this pass (drains, due delayed messages,
      // schedules) go to their writers: every pass of the loop ends here.
      if (streams_ != nullptr) streams_->HandOff();
      // Messages acked this pass give their arena chunks back.
      delivery::MessageArena::FlushFrees();
      pollfds_.assign({{zmq_fd, POLLIN, 0},
                       {wake_fd_, POLLIN, 0},
                       {guard_->monitor_fd(), POLLIN, 0},
                       {guard_->zap_fd(), POLLIN, 0}});
      if (guard_->zap_fd() < 0) pollfds_.pop_back();
      const size_t fixed_fds = pollfds_.size();
      if (streams_ != nullptr) streams_->PollFds(&pollfds_);
      pollfd* fds = pollfds_.data();
      int rc = 0;
      if (wait > 0 && config_.idle_spin_us > 0) {
        rc = SpinPoll(fds, pollfds_.size(), config_.idle_spin_us);
      }
      if (rc == 0) rc = poll(fds, pollfds_.size(), static_cast<int>(wait));
      now_ms_ = NowMs();
      if (rc < 0 && errno != EINTR) {
        Log(LogLevel::kError, "poll failed", {{"error", std::strerror(errno)}});
        break;
      }
      if (fds[1].revents & POLLIN) {
        uint64_t count;
        ssize_t ignored = read(wake_fd_, &count, sizeof(count));
        (void)ignored;
        if (shutdown_.load(std::memory_order_acquire)) break;
        TakePendingPlugins();
      }
      // The guard's sockets signal through their fds like the ROUTER's;
      // reading them only then keeps their system calls off the hot path.
      if ((fds[2].revents | (fixed_fds > 3 ? fds[3].revents : 0)) & POLLIN) {
        PollGuard();
      }
      armed = Drain();
      if (!held_.empty()) {
        FlushHeld();
        armed = false;
      }
      if (!slow_disconnects_.empty()) DisconnectSlow();
      if (schedules_ != nullptr &&
          schedules_->NextDue() <= absl::ToUnixMillis(absl::Now())) {
        PublishSchedules();
        armed = false;
      }
      if (streams_ != nullptr) {
        bool news = streams_->NextDeadline(now_ms_) <= now_ms_;
        for (size_t i = fixed_fds; i < pollfds_.size() && !news; ++i) {
          news = (pollfds_[i].revents & POLLIN) != 0;
        }
        if (news) {
          ProcessStreams();
          armed = false;  // sending may consume the socket fd's edge
        }
      }
      if (scheduled_.size() > 0 && scheduled_.NextDue() <= now_ms_) {
        RouteDueMessages();
        armed = false;
      }
      if (!deliveries_idle_ && deliveries_.NextDeadline() <= now_ms_) {
        deliveries_.Tick(now_ms_, &ack_sends_, &ack_dead_);
        SendAckDeliveries();
        armed = false;  // sending may consume the socket fd's edge
      }
      // A connection whose admission waited for closing sessions is
      // answered once they are gone (its fd will not signal again).
      if (closing_.empty() && guard_->has_held_request()) PollGuard();
      if (now_ms_ >= next_housekeeping) {
        PollGuard();     // a safety net: costs little once a second
        Housekeeping();  // sends nothing, so the socket stays armed
        next_housekeeping = now_ms_ + kHousekeepingIntervalMs;
      }
    }
    if (streams_ != nullptr) streams_->Close();
    wire::StatsReply stats;
    router_.FillStats(0, &stats);
    if (scheduled_.size() > held_delayed_.size()) {
      Log(LogLevel::kWarn, "delayed messages lost",
          {{"count",
            static_cast<uint64_t>(scheduled_.size() - held_delayed_.size())},
           {"note", "delayed publishes are held in memory only, except on "
                    "stream topics"}});
    }
    Log(LogLevel::kInfo, "shutting down",
        {{"clients", stats.clients()},
         {"messages_in", stats.messages_in()},
         {"messages_out", stats.messages_out()}});
    zmq_close(socket_);
    socket_ = nullptr;
    guard_.reset();  // its sockets too, or zmq_ctx_term would wait for them
    ipc_files_.RemoveAll();
  }

 private:
  struct Session {
    std::string routing_id;
    int fd = -1;  // the connection's (ZMQ_SRCFD); -1 for inproc://
    int64_t last_seen_ms = 0;
    bool batches = false;  // the client accepts BATCH (said so in HELLO)
    // ... and OK and ERROR replies inside it (HELLO accepts_batched_replies).
    bool batched_replies = false;
    // Bytes handed to ZeroMQ for this client and not yet written.
    OutputAccount* account = nullptr;
    // DELIVERs waiting to go out as one BATCH, and each one's topic slot.
    std::unique_ptr<OutBuffer> out;
    std::vector<Router::TopicSlot> out_slots;
    // Of those, the at-most-once ones (no delivery_id: an explicit-ack
    // delivery lost with the connection is redelivered or counted by
    // Deliveries).
    uint32_t out_at_most_once = 0;
    uint32_t out_replies = 0;  // replies in `out`, after or among them
    uint64_t out_payload_bytes = 0;
    size_t last_batch_bytes = 0;  // size of the previous batch sent
    bool dirty = false;           // listed in dirty_
    // Its connection closed; what it sent before is still being read. The
    // session ends once the socket has nothing more to read (see
    // FinishClosing).
    bool closing = false;
    uint64_t closing_cycle = 0;
    int64_t closing_ms = 0;
    // Deliveries dropped because this client did not keep up.
    uint64_t slow_drops = 0;
    uint64_t slow_drops_unreported = 0;  // since the last SLOW_CONSUMER notice
    // Subscriptions of this client with a slow-consumer policy of their
    // own (slow_); 0 keeps deliveries on the plain path.
    uint32_t slow_subs = 0;
    // The broker's own client (declared queues): no connection, never
    // timed out.
    bool internal = false;
  };

  // Busy-polling (idle_spin_us): polls fds without sleeping for up to
  // spin_us. A message that comes meanwhile is read without waking this
  // thread, and the CPU does not go idle, so waking other threads there is
  // cheap too; the price is a CPU kept busy while idle. It yields between
  // polls: on 2 shared cores a pure spin starved the ZeroMQ I/O threads
  // (BENCHMARKS.md, "Latency (issue 11 item 4)"). Returns poll's result: 0
  // if nothing came.
  static int SpinPoll(pollfd* fds, size_t n, uint32_t spin_us) {
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    const int64_t until = t.tv_sec * 1000000000LL + t.tv_nsec +
                          static_cast<int64_t>(spin_us) * 1000;
    while (true) {
      const int rc = poll(fds, n, 0);
      if (rc != 0) return rc;
      sched_yield();
      clock_gettime(CLOCK_MONOTONIC, &t);
      if (t.tv_sec * 1000000000LL + t.tv_nsec >= until) return 0;
    }
  }

  // A subscription's slow-consumer policy (SUB.slow), and the deliveries
  // held for it under DROP_OLDEST, oldest first.
  struct SlowSettings {
    wire::SlowPolicy policy = wire::DROP_NEWEST;
    int64_t max_pending_bytes = 0;
    uint32_t max_pending_msgs = 0;
  };
  struct HeldQueue {
    std::deque<delivery::MessageRef> messages;
    uint64_t bytes = 0;
  };

  // Reads and handles queued messages, up to kMaxDrainPerWake, and sends
  // what they produced. Returns true if it ended on a receive that found
  // nothing after its last send (the socket's fd will signal the next
  // message), false if it stopped at the limit with input left.
  bool Drain() {
    ++drain_cycle_;
    for (int handled = 0; handled < kMaxDrainPerWake;) {
      if (zmq_msg_recv(id_.get(), socket_, ZMQ_DONTWAIT) < 0) {
        if (zmq_errno() == EINTR) continue;
        // EAGAIN: nothing more right now. Send what is pending; a send may
        // take the fd's signal, so then receive once more before sleeping.
        if (dirty_.empty()) {
          FlushGoneClients();
          if (!closing_.empty()) FinishClosing();
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
      batch_entries_ = 0;
      HandleMessage(frames);
      handled += static_cast<int>(std::max<uint32_t>(1, batch_entries_));
    }
    FlushBatches();
    FlushGoneClients();
    return false;
  }

  void HandleMessage(int frames) {
    const std::string_view routing_id = MsgView(id_.get());
    auto it = by_routing_id_.find(
        absl::string_view(routing_id.data(), routing_id.size()));
    bool known = it != by_routing_id_.end();
    Router::ClientHandle client = known ? it->second : 0;
    const int fd = zmq_msg_get(id_.get(), ZMQ_SRCFD);
    if (fd >= 0 && (static_cast<size_t>(fd) >= spoke_.size() || !spoke_[fd])) {
      NoteFirstMessage(fd);
    }
    if (known && sessions_[client].fd != fd) {
      // The routing id now names another connection: the session belonged
      // to one that closed, and is not this one's to use.
      EndSession(client, "connection replaced");
      known = false;
      client = 0;
    }
    if (known) sessions_[client].last_seen_ms = now_ms_;

    // Checks apply in this order (docs/protocol.md §2): frame 0 present,
    // bounded and parsable; a known command; one a client may send; its
    // frame count; a session; then the command's own fields.
    const size_t header_size = zmq_msg_size(header_.get());
    if (frames == 0 || header_size == 0) {
      return RejectFrame(routing_id, known, client, 0,
                         "message has no header frame (frame 0 is empty)");
    }
    if (header_size > max_frame0_bytes_) {
      return RejectFrame(
          routing_id, known, client, 0,
          absl::StrCat("frame 0 of ", header_size, " bytes exceeds ",
                       max_frame0_bytes_,
                       " (twice max_topic_length, plus 1280, plus "
                       "max_headers_bytes and 16 per header of "
                       "max_headers)"));
    }
    // The common case, a PUB from a live session, skips protobuf entirely.
    protocol::PubView fast;
    if (known && frames == 2 &&
        protocol::DecodePubFast(
            static_cast<const char*>(zmq_msg_data(header_.get())),
            header_size, &fast)) {
      return HandlePub(routing_id, client, fast, MsgView(payload_.get()),
                       payload_.get());
    }
    // And a subscriber's ACK of the deliveries it has processed.
    protocol::AckView ack;
    if (known && frames == 1 &&
        protocol::DecodeAckFast(
            static_cast<const char*>(zmq_msg_data(header_.get())),
            header_size, &ack, &ack_ids_)) {
      return HandleAckFast(routing_id, client, ack);
    }
    auto decoded = decoder_.Decode(zmq_msg_data(header_.get()), header_size);
    if (!decoded.ok()) {
      return RejectFrame(routing_id, known, client, 0,
                         decoded.status().message());
    }
    const wire::Header& h = **decoded;
    const uint64_t rid = h.request_id();
    if (h.command_case() == wire::Header::COMMAND_NOT_SET) {
      return SendClientError(
          routing_id, known, client, rid, wire::UNKNOWN_COMMAND,
          "header names no command this broker knows (protocol version 1)");
    }
    if (IsBrokerOnly(h)) {
      return SendClientError(
          routing_id, known, client, rid, wire::INVALID_REQUEST,
          absl::StrCat(protocol::CommandName(h),
                       " is sent by the broker, not by clients"));
    }
    const int want_frames = h.has_pub() || h.has_batch() ? 2 : 1;
    if (frames != want_frames) {
      return RejectFrame(
          routing_id, known, client, rid,
          absl::StrCat(protocol::CommandName(h), " must have ", want_frames,
                       " frame(s), got ", frames));
    }

    switch (h.command_case()) {
      case wire::Header::kHello:
        return HandleHello(routing_id, fd, known, client, h);
      case wire::Header::kBye:
        if (known) EndSession(client, "bye");
        return;
      default:
        break;
    }
    if (!known) {
      // A refused BATCH is one drop, whatever it claims to hold.
      if (h.has_pub() || h.has_batch()) {
        router_.RecordDrop(DropReason::kNotConnected);
      }
      return SendClientError(
          routing_id, known, client, rid, wire::HELLO_REQUIRED,
          absl::StrCat(protocol::CommandName(h),
                       " before HELLO: start the session with HELLO "
                       "(the broker may have restarted)"));
    }
    switch (h.command_case()) {
      case wire::Header::kPub:
        return HandlePub(routing_id, client,
                         protocol::PubViewOf(h, &headers_scratch_),
                         MsgView(payload_.get()), payload_.get());
      case wire::Header::kBatch:
        return HandleBatch(routing_id, client, h);
      case wire::Header::kSub:
        return HandleSub(routing_id, client, h);
      case wire::Header::kUnsub: {
        if (streams_ != nullptr &&
            streams_->Unsubscribe(client, h.unsub().sid(), now_ms_)) {
          return Answer(routing_id, client, rid, absl::OkStatus());
        }
        absl::Status s = router_.Unsubscribe(client, h.unsub().sid());
        if (s.ok()) {
          ClearSlowPolicy(client, h.unsub().sid());
          sub_chains_.Remove(client, h.unsub().sid());
          if (!deliveries_.empty()) {
            router_.RecordDrop(
                DropReason::kClientGone,
                deliveries_.RemoveConsumer(client, h.unsub().sid(), now_ms_,
                                           &ack_sends_, &ack_dead_));
            SendAckDeliveries();
          }
        }
        return Answer(routing_id, client, rid, s);
      }
      case wire::Header::kReload:
        return HandleReload(routing_id, client, rid);
      case wire::Header::kAck:
      case wire::Header::kNack:
      case wire::Header::kProgress:
        return HandleAck(routing_id, client, h);
      case wire::Header::kDeclare:
        return HandleDeclare(routing_id, client, h);
      case wire::Header::kFetch:
        return HandleFetch(routing_id, client, h);
      case wire::Header::kStream:
        return HandleStreamRequest(routing_id, client, h);
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
            routing_id, known, client, rid, wire::UNKNOWN_COMMAND,
            absl::StrCat(protocol::CommandName(h),
                         " is not handled by this broker"));
    }
  }

  void HandleHello(std::string_view routing_id, int fd, bool known,
                   Router::ClientHandle client, const wire::Header& h) {
    const uint32_t version = h.hello().protocol_version();
    if (version != wire::PROTOCOL_VERSION_CURRENT) {
      return SendClientError(
          routing_id, known, client, h.request_id(), wire::VERSION_MISMATCH,
          absl::StrCat("protocol version ", version,
                       " is not supported; this broker speaks version ",
                       static_cast<int>(wire::PROTOCOL_VERSION_CURRENT)));
    }
    if (h.request_id() == 0) {
      return SendClientError(routing_id, known, client, 0,
                             wire::INVALID_REQUEST,
                             "HELLO needs a non-zero request_id");
    }
    if (h.hello().client_name().size() > kMaxClientNameBytes) {
      return SendClientError(
          routing_id, known, client, h.request_id(), wire::INVALID_REQUEST,
          absl::StrCat("client_name of ", h.hello().client_name().size(),
                       " bytes exceeds ", kMaxClientNameBytes));
    }
    // HELLO on a live session starts a fresh one.
    if (known) EndSession(client, "hello again");
    if (router_.client_count() >= config_.max_clients) {
      return SendClientError(
          routing_id, false, 0, h.request_id(), wire::TOO_MANY_CLIENTS,
          absl::StrCat("the broker holds ", router_.client_count(),
                       " sessions, its limit (max_clients)"));
    }
    const Router::ClientHandle c = router_.AddClient(h.hello().client_name());
    if (sessions_.size() <= c) sessions_.resize(c + 1);
    Session& session = sessions_[c];
    session.routing_id.assign(routing_id.data(), routing_id.size());
    session.fd = fd;
    session.last_seen_ms = now_ms_;
    session.batches = h.hello().accepts_batches();
    session.batched_replies =
        session.batches && h.hello().accepts_batched_replies();
    session.account = OutputAccount::New(all_output_);
    session.slow_drops = 0;
    session.slow_drops_unreported = 0;
    by_routing_id_[absl::string_view(routing_id.data(), routing_id.size())] = c;
    if (fd >= 0) {
      if (by_fd_.size() <= static_cast<size_t>(fd)) by_fd_.resize(fd + 1, kNone);
      by_fd_[fd] = c;
    }

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
    w->set_max_batch_bytes(config_.max_batch_bytes);
    w->set_max_headers(config_.max_headers);
    w->set_max_headers_bytes(config_.max_headers_bytes);
    w->set_max_delay_ms(config_.max_delay_ms);
    SendHeader(routing_id, reply);
    if (session_log_limiter_.Allow(now_ms_)) {
      Log(LogLevel::kInfo, "client connected",
          {{"client", router_.client_id(c)},
           {"name", h.hello().client_name()}});
    }
  }

  // Routes one PUB. `payload_msg` is its own frame (forwarded by reference
  // when it goes out unbatched), or null for a PUB that came in a BATCH.
  void HandlePub(std::string_view routing_id, Router::ClientHandle client,
                 const protocol::PubView& pub, std::string_view payload,
                 zmq_msg_t* payload_msg) {
    if (pub.confirm && pub.request_id == 0) {
      router_.RecordDrop(DropReason::kInvalidRequest);
      return SendClientError(
          routing_id, true, client, 0, wire::INVALID_REQUEST,
          "a confirmed PUB needs a non-zero request_id; not published");
    }
    if (!pub.topic.empty() && pub.topic[0] == '$' &&
        plugin::IsReservedTopic(pub.topic)) {
      router_.RecordDrop(DropReason::kInvalidTopic);
      return SendClientError(
          routing_id, true, client, pub.request_id, wire::FORBIDDEN,
          "topics under \"$sift.\" are the broker's (dead letters): "
          "subscribe to them, do not publish on them");
    }
    if (pub.retain || pub.delay_ms != 0 || pub.deliver_at_ms != 0) {
      // Kept for later: checked whole first, so a refusal keeps nothing.
      absl::Status s = Keep(pub, payload);
      if (!s.ok()) {
        return SendClientError(routing_id, true, client, pub.request_id,
                               protocol::WireCodeOf(s), s.message());
      }
    }
    if (pub.delay_ms == 0 && pub.deliver_at_ms == 0) {
      absl::Status error;
      retain_current_ = pub.retain;
      const bool routed = Route(pub, payload, payload_msg, &error);
      retain_current_ = false;
      if (!routed) {
        return SendClientError(routing_id, true, client, pub.request_id,
                               protocol::WireCodeOf(error), error.message());
      }
      if (!gone_.empty()) FlushGoneClients();  // see below
      if (ABSL_PREDICT_FALSE(publish_queue_full_)) {
        publish_queue_full_ = false;
        retain_error_ = absl::OkStatus();
        return SendClientError(
            routing_id, true, client, pub.request_id, wire::QUEUE_FULL,
            "routed, but a work queue it went to holds max_queued messages "
            "waiting: dead-lettered for that queue (protocol.md §6.2)");
      }
      if (ABSL_PREDICT_FALSE(!retain_error_.ok())) {
        absl::Status full = std::move(retain_error_);
        retain_error_ = absl::OkStatus();
        return SendClientError(routing_id, true, client, pub.request_id,
                               wire::STORE_FULL,
                               absl::StrCat(full.message(),
                                            "; routed, but not retained"));
      }
    }
    // A member found gone leaves the router now, not at the end of the
    // drain: the next publish (even the next entry of this BATCH) must not
    // be routed to it again.
    if (!gone_.empty()) FlushGoneClients();
    if (ABSL_PREDICT_FALSE(capture_.captured)) {
      capture_.captured = false;
      uint64_t held = 0;  // a retained value kept with the stream
      if (held_ticket_.first == capture_.stream) held = held_ticket_.second;
      held_ticket_ = {};
      if (pub.confirm) {
        // Stored in a stream: OK (with its seq) once the record is durable.
        streams_->ConfirmWhenDurable(capture_.stream, capture_.seq,
                                     capture_.duplicate, client,
                                     pub.request_id, held);
        return;
      }
    }
    if (ABSL_PREDICT_FALSE(!held_ticket_.first.empty())) {
      // A delayed message kept with its stream: OK once it is on disk.
      auto ticket = std::move(held_ticket_);
      held_ticket_ = {};
      if (pub.confirm) {
        streams_->AnswerWhenSaved(client, pub.request_id, {ticket});
        return;
      }
    }
    if (pub.confirm) SendOk(client, {pub.request_id});
  }

  // A BATCH is checked whole before any entry is routed: its size, its
  // structure, and that it holds exactly Batch.count entries. A refused
  // batch is one ERROR and one drop.
  void HandleBatch(std::string_view routing_id, Router::ClientHandle client,
                   const wire::Header& h) {
    const std::string_view body = MsgView(payload_.get());
    const uint64_t batch_request_id = h.request_id();
    if (body.size() > config_.max_batch_bytes) {
      router_.RecordDrop(DropReason::kPayloadTooLarge);
      return SendClientError(
          routing_id, true, client, batch_request_id, wire::PAYLOAD_TOO_LARGE,
          absl::StrCat("BATCH of ", body.size(),
                       " bytes exceeds max_batch_bytes (",
                       config_.max_batch_bytes, "); nothing was routed"));
    }
    {
      protocol::BatchReader scan(body.data(), body.size());
      const uint64_t entries = scan.SkipRest();
      if (scan.error() || entries != h.batch().count()) {
        router_.RecordDrop(DropReason::kBadFrame);
        return SendClientError(
            routing_id, true, client, batch_request_id, wire::BAD_FRAME,
            scan.error()
                ? absl::StrCat("BATCH body is malformed after entry ",
                               entries, "; nothing was routed")
                : absl::StrCat("BATCH announces ", h.batch().count(),
                               " entries but holds ", entries,
                               "; nothing was routed"));
      }
    }
    batch_entries_ = h.batch().count();  // Drain's measure of its work
    protocol::BatchReader reader(body.data(), body.size());
    std::string_view header, payload;
    uint32_t seen = 0;
    in_batch_ = true;
    batch_unix_ms_ = 0;
    absl::Cleanup end_batch = [this] { in_batch_ = false; };
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
      HandlePub(routing_id, client,
                protocol::PubViewOf(**decoded, &headers_scratch_), payload,
                nullptr);
    }
  }

  // ---- Plugins (broker/plugin): route chains, subscription chains,
  // reloads. The server only moves messages in and out of them.

  // Routes an accepted PUB: through its route chain if one matches, else
  // straight to the subscribers. False, with the router's error in *error,
  // if the router refuses it. (A bool and an out-parameter rather than a
  // Status: this is every message's path.)
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool Route(const protocol::PubView& pub,
                                          std::string_view payload,
                                          zmq_msg_t* payload_msg,
                                          absl::Status* error) {
    if (ABSL_PREDICT_FALSE(plugins_->has_routes())) {
      if (plugin::Chain* route = plugins_->RouteFor(pub.topic)) {
        *error = router_.CheckPublish(pub.topic, pub.reply_to, pub.headers,
                                      payload.size());
        if (!error->ok()) return false;
        RunRouteChain(*route, pub, payload, payload_msg);
        return true;
      }
    }
    if (ABSL_PREDICT_FALSE(streams_ != nullptr)) {
      if (!CaptureInStream(pub, payload, error)) return false;
      if (capture_.duplicate) {  // stored and routed before
        router_.RecordDrop(DropReason::kDuplicate);
        return true;
      }
    }
    *error = router_.Publish(pub.topic, pub.reply_to, pub.headers,
                             payload.size(), &targets_, /*broker_made=*/false,
                             /*stored=*/streams_ != nullptr &&
                                 capture_.captured);
    if (ABSL_PREDICT_FALSE(!error->ok())) return false;
    if (ABSL_PREDICT_FALSE(retain_current_)) StoreRetained(pub, payload);
    for (const Router::Target& t : targets_) {
      Deliver(t, pub, payload, payload_msg);
    }
    return true;
  }

  // ---- Retained values and delayed publishes (broker/store/retained.h,
  // broker/delivery/scheduled.h).

  static delivery::MessageRef Stored(const protocol::PubView& pub,
                                     std::string_view payload,
                                     Router::TopicSlot topic_slot = 0) {
    return delivery::StoredMessage::Make(pub.topic, pub.reply_to, pub.headers,
                                         payload, topic_slot);
  }

  // A PUB with retain, delay_ms or deliver_at_ms: checked, then kept as the
  // topic's retained value or until it is due. Errors: INVALID_REQUEST,
  // the router's checks, STORE_FULL.
  absl::Status Keep(const protocol::PubView& pub, std::string_view payload) {
    const bool delayed = pub.delay_ms != 0 || pub.deliver_at_ms != 0;
    auto refuse = [&](wire::ErrorCode code, std::string text) {
      router_.RecordDrop(code == wire::STORE_FULL ? DropReason::kStoreFull
                                                  : DropReason::kInvalidRequest);
      return protocol::WireError(code, text);
    };
    if (delayed && pub.retain) {
      return refuse(wire::INVALID_REQUEST,
                    "retain and a delay cannot be combined; not published");
    }
    if (pub.delay_ms != 0 && pub.deliver_at_ms != 0) {
      return refuse(wire::INVALID_REQUEST,
                    "give delay_ms or deliver_at_ms, not both; not published");
    }
    int64_t delay = static_cast<int64_t>(std::min<uint64_t>(
        pub.delay_ms, uint64_t{1} << 62));
    if (pub.deliver_at_ms != 0) {
      // Through LoopTimeOf, so that publishes with one deliver_at_ms get
      // one due time and come out in publish order.
      delay = LoopTimeOf(static_cast<int64_t>(
                  std::min<uint64_t>(pub.deliver_at_ms, uint64_t{1} << 62))) -
              now_ms_;
      if (delay < 0) delay = 0;  // due already: routed at the next tick
    }
    if (delayed && delay > static_cast<int64_t>(config_.max_delay_ms)) {
      return refuse(wire::INVALID_REQUEST,
                    absl::StrCat("a delay of ", delay,
                                 " ms is over max_delay_ms (",
                                 config_.max_delay_ms, "); not published"));
    }
    if (absl::Status s = router_.CheckPublish(pub.topic, pub.reply_to,
                                              pub.headers, payload.size());
        !s.ok()) {
      return s;
    }
    if (!delayed) {
      // Kept once routed (StoreRetained); a store that cannot keep it, even
      // one turned off (max_retained 0), still routes it, as documented.
      return absl::OkStatus();
    }
    const delivery::MessageRef message = Stored(pub, payload);
    absl::Status s = scheduled_.Add(now_ms_ + delay, message);
    if (!s.ok()) {
      return refuse(wire::STORE_FULL, absl::StrCat(s.message(),
                                                   "; not published"));
    }
    if (streams_ != nullptr) {
      // On a stream's topic it is also kept on disk until it is due.
      if (auto saved = streams_->SaveDelayed(
              message, now_ms_ + delay + WallOffsetMs())) {
        held_delayed_[message.get()] = {saved->stream, saved->key};
        held_ticket_ = {saved->stream, saved->ticket};
      }
    }
    return absl::OkStatus();
  }

  // Unix time minus the loop's clock, in ms: CLOCK_MONOTONIC, which
  // NowMs's coarse clock follows within a tick. Read from fine clocks back
  // to back, and taken up only when it moves by more than 2 ms (a
  // wall-clock step), so that its rounding jitter does not give publishes
  // with one deliver_at_ms different due times.
  int64_t WallOffsetMs() {
    timespec real, mono;
    clock_gettime(CLOCK_REALTIME, &real);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    const int64_t offset =
        (static_cast<int64_t>(real.tv_sec) - mono.tv_sec) * 1000 +
        (static_cast<int64_t>(real.tv_nsec) - mono.tv_nsec) / 1000000;
    if (!wall_offset_ms_ || std::abs(offset - *wall_offset_ms_) > 2) {
      wall_offset_ms_ = offset;
    }
    return *wall_offset_ms_;
  }
  // The loop clock's time (now_ms_'s) at Unix time `unix_ms`.
  int64_t LoopTimeOf(int64_t unix_ms) { return unix_ms - WallOffsetMs(); }

  // Keeps a routed message (what a route chain made of it, if one ran) as
  // its topic's retained value; a refusal is reported to the publisher.
  void StoreRetained(const protocol::PubView& pub, std::string_view payload) {
    const delivery::MessageRef message = Stored(pub, payload);
    absl::Status s = retained_.Set(message);
    if (s.ok() && streams_ != nullptr) {
      // On a stream's topic it is also kept on disk (survives a restart).
      if (auto saved = streams_->SaveRetained(message)) held_ticket_ = *saved;
    }
    if (!s.ok()) {
      router_.RecordDrop(DropReason::kStoreFull);
      retain_error_ = std::move(s);
    }
  }

  // Routes the delayed publishes that are due.
  void RouteDueMessages() {
    std::vector<delivery::MessageRef> due;
    scheduled_.TakeDue(now_ms_, &due);
    for (const delivery::MessageRef& m : due) {
      const protocol::PubView view = ViewOf(*m);
      absl::Status ignored;  // checked when it was kept
      Route(view, m->payload(), nullptr, &ignored);
      capture_.captured = false;  // no publisher waits for this one
      if (!gone_.empty()) FlushGoneClients();
      if (!held_delayed_.empty()) {
        auto held = held_delayed_.find(m.get());
        if (held != held_delayed_.end()) {
          streams_->ForgetDelayed(held->second.first, held->second.second);
          held_delayed_.erase(held);
        }
      }
    }
  }

  // Sends a new subscription the retained values its pattern matches
  // (MQTT; not to queue-group members, as MQTT's shared subscriptions).
  void SendRetained(Router::ClientHandle client, const wire::Sub& sub) {
    if (retained_.size() == 0 || !sub.queue_group().empty()) return;
    std::vector<delivery::MessageRef> values;
    retained_.Match(sub.pattern(), &values);
    delivering_retained_ = true;
    for (const delivery::MessageRef& m : values) {
      const protocol::PubView view = ViewOf(*m);
      Deliver(
          Router::Target{client, sub.sid(), router_.SlotForTopic(m->topic())},
          view, m->payload(), nullptr);
    }
    delivering_retained_ = false;
  }

  // A SUB, with the chain its filter and plugins ask for, if any.
  void HandleSub(std::string_view routing_id, Router::ClientHandle client,
                 const wire::Header& h) {
    const wire::Sub& sub = h.sub();
    if (sub.has_stream()) return HandleStreamSub(routing_id, client, h);
    std::unique_ptr<plugin::Chain> chain;
    if (!sub.filter().empty() || sub.plugins_size() > 0) {
      std::vector<plugin::StageSpec> stages;
      for (const wire::PluginSpec& p : sub.plugins()) {
        plugin::StageSpec spec;
        spec.plugin = p.name();
        for (const wire::HeaderField& kv : p.settings()) {
          spec.config.Add(kv.key(), kv.value());
        }
        stages.push_back(std::move(spec));
      }
      auto made =
          plugins_->SubscriptionChain(sub.pattern(), sub.filter(), stages);
      if (!made.ok()) {
        const bool filter_error =
            !sub.filter().empty() &&
            made.status().code() == absl::StatusCode::kInvalidArgument &&
            made.status().message().substr(0, 6) == "filter";
        const wire::ErrorCode code =
            filter_error ? wire::INVALID_FILTER
            : made.status().code() == absl::StatusCode::kPermissionDenied
                ? wire::FORBIDDEN
                : wire::INVALID_PLUGIN;
        return SendClientError(routing_id, true, client, h.request_id(), code,
                               made.status().message());
      }
      chain = *std::move(made);
    }
    delivery::AckPolicy policy;
    if (sub.has_ack()) {
      policy = AckPolicyOf(sub.ack());
      if (absl::Status valid = delivery::ValidateAckPolicy(policy);
          !valid.ok()) {
        return SendClientError(routing_id, true, client, h.request_id(),
                               wire::INVALID_REQUEST,
                               absl::StrCat("ack: ", valid.message()));
      }
    }
    if (sub.has_slow() && (sub.slow().policy() < wire::DROP_NEWEST ||
                           sub.slow().policy() > wire::DISCONNECT)) {
      return SendClientError(routing_id, true, client, h.request_id(),
                             wire::INVALID_REQUEST,
                             "slow: unknown slow-consumer policy");
    }
    absl::Status s = router_.Subscribe(client, sub.sid(), sub.pattern(),
                                       sub.queue_group());
    if (s.ok()) SetSlowPolicy(client, sub);
    if (s.ok() && sub.has_ack()) {
      s = deliveries_.AddConsumer(client, sub.sid(), sub.pattern(),
                                  sub.queue_group(), policy, now_ms_,
                                  &ack_sends_);
      if (!s.ok()) {
        router_.Unsubscribe(client, sub.sid()).IgnoreError();
        s = protocol::WireError(wire::INVALID_REQUEST,
                                absl::StrCat("ack: ", s.message()));
      } else {
        deliveries_idle_ = false;
      }
    }
    if (s.ok() && chain != nullptr) {
      sub_chains_.Set(client, sub.sid(), std::move(chain));
    } else if (s.ok()) {
      sub_chains_.Remove(client, sub.sid());  // a reused sid: no old chain
    }
    Answer(routing_id, client, h.request_id(), s);
    SendAckDeliveries();  // a new group member takes its backlog
    if (s.ok()) SendRetained(client, sub);
  }

  // RELOAD: builds a new plugin set from the config file (on this thread:
  // the loop pauses for as long as that takes) and puts it in force.
  void HandleReload(std::string_view routing_id, Router::ClientHandle client,
                    uint64_t rid) {
    if (!reloader_) {
      return SendClientError(
          routing_id, true, client, rid, wire::INVALID_CONFIG,
          "this broker has no config file to reload (started without "
          "--config)");
    }
    absl::StatusOr<std::unique_ptr<plugin::PluginSet>> fresh = reloader_();
    if (!fresh.ok()) {
      Log(LogLevel::kWarn, "reload refused; the old plugin config stays",
          {{"error", std::string(fresh.status().message())}});
      return SendClientError(routing_id, true, client, rid,
                             wire::INVALID_CONFIG,
                             absl::StrCat(fresh.status().message(),
                                          " (the old plugin config stays)"));
    }
    InstallPlugins(*std::move(fresh), "RELOAD");
    Answer(routing_id, client, rid, absl::OkStatus());
  }

  void TakePendingPlugins() {
    std::unique_ptr<plugin::PluginSet> fresh;
    {
      absl::MutexLock lock(&reload_mu_);
      fresh = std::move(pending_plugins_);
    }
    if (fresh != nullptr) InstallPlugins(std::move(fresh), "SIGHUP");
  }

  // Subscription chains made before keep running as they were.
  void InstallPlugins(std::unique_ptr<plugin::PluginSet> fresh,
                      const char* how) {
    FlushBatches();
    fresh->InheritCounters(*plugins_);
    plugins_ = std::move(fresh);
    Log(LogLevel::kInfo, "plugin config reloaded",
        {{"by", how},
         {"routes", static_cast<uint64_t>(plugins_->route_count())}});
  }

  plugin::CallContext ContextNow() const {
    plugin::CallContext context;
    context.now = absl::Now();
    return context;
  }

  // Runs a route chain on a checked PUB and routes what comes out: each
  // passing message to its (possibly new) topic's subscribers, each failed
  // one to its dead-letter topic.
  void RunRouteChain(plugin::Chain& chain, const protocol::PubView& pub,
                     std::string_view payload, zmq_msg_t* payload_msg) {
    std::vector<plugin::OutMessage> out;
    out.swap(chain_out_);
    const plugin::ChainResult result =
        plugin::RunChain(chain, pub.topic, pub.reply_to, pub.headers, payload,
                         ContextNow(), &out);
    if (result.dropped > 0) router_.RecordDrop(DropReason::kFiltered);
    if (result.failed > 0) {
      router_.RecordDrop(DropReason::kPluginError, result.failed);
    }
    for (const plugin::OutMessage& m : out) {
      const protocol::PubView view = ViewOf(m);
      zmq_msg_t* share = m.payload_is_input ? payload_msg : nullptr;
      if (m.dead_letter) {
        RouteDeadLetter(view, m.payload, share, /*through_chains=*/true);
        continue;
      }
      absl::Status s;
      if (plugin::IsReservedTopic(m.topic)) {
        router_.RecordDrop(DropReason::kPluginError);
        s = protocol::WireError(wire::FORBIDDEN,
                                "a plugin may not publish under $sift.");
      } else if (streams_ != nullptr &&
                 !CaptureInStream(view, m.payload, &s)) {
        // Refused by its stream: dead-lettered below.
      } else if (streams_ != nullptr && capture_.duplicate) {
        // A repeated sift-msg-id: stored and routed before.
        router_.RecordDrop(DropReason::kDuplicate);
        continue;
      } else {
        s = router_.Publish(view.topic, view.reply_to, view.headers,
                            m.payload.size(), &targets_,
                            /*broker_made=*/false,
                            /*stored=*/streams_ != nullptr &&
                                capture_.captured);
      }
      if (!s.ok()) {
        // A plugin made a message the broker refuses (a topic too long,
        // too many headers): counted by the router under its reason, logged,
        // and dead-lettered like a plugin's failure, not lost.
        if (log_limiter_.Allow(now_ms_)) {
          Log(LogLevel::kWarn, "plugin output refused",
              {{"topic", std::string(m.topic)},
               {"error", std::string(s.message())}});
        }
        DeadLetterRefusedOutput(pub.topic, m, s, /*through_chains=*/true);
        continue;
      }
      if (retain_current_) StoreRetained(view, m.payload);
      for (const Router::Target& t : targets_) {
        Deliver(t, view, m.payload, share);
      }
    }
    out.clear();
    out.swap(chain_out_);
  }

  // ---- Recurring schedules (docs/schedules.md): published like a client's
  // PUB (route chains, streams, retained not), by the broker itself.
  void PublishSchedules() {
    std::vector<const delivery::Schedule*> due;
    schedules_->TakeDue(absl::ToUnixMillis(absl::Now()), &due);
    const std::vector<delivery::Schedule>& all = schedules_->schedules();
    for (const delivery::Schedule* s : due) {
      protocol::PubView view;
      view.topic = s->topic;
      view.headers = schedule_headers_[static_cast<size_t>(s - all.data())];
      absl::Status error;
      if (!Route(view, s->payload, nullptr, &error) &&
          log_limiter_.Allow(now_ms_)) {
        Log(LogLevel::kWarn, "schedule not published",
            {{"schedule", s->name}, {"error", std::string(error.message())}});
      }
      capture_.captured = false;  // no publisher waits for it
      held_ticket_ = {};
      if (!gone_.empty()) FlushGoneClients();
    }
    FlushBatches();
  }

  // ---- Slow-consumer policies (SUB.slow, docs/delivery.md §7).

  void SetSlowPolicy(Router::ClientHandle client, const wire::Sub& sub) {
    const auto key = std::make_pair(client, sub.sid());
    const bool had = slow_.contains(key);
    if (!sub.has_slow() || sub.has_ack()) {
      if (had) ClearSlowPolicy(client, sub.sid());  // a reused sid
      return;
    }
    SlowSettings settings;
    settings.policy = sub.slow().policy();
    const uint64_t cap = config_.max_pending_bytes_per_client;
    settings.max_pending_bytes = static_cast<int64_t>(
        sub.slow().max_pending_bytes() == 0
            ? cap
            : std::min<uint64_t>(sub.slow().max_pending_bytes(), cap));
    settings.max_pending_msgs = sub.slow().max_pending_msgs() == 0
                                    ? kDefaultHeldMessages
                                    : sub.slow().max_pending_msgs();
    slow_[key] = settings;
    if (!had) ++sessions_[client].slow_subs;
  }

  void ClearSlowPolicy(Router::ClientHandle client, uint64_t sid) {
    const auto key = std::make_pair(client, sid);
    if (slow_.erase(key) > 0) --sessions_[client].slow_subs;
    auto held = held_.find(key);
    if (held != held_.end()) {
      router_.RecordDrop(DropReason::kClientGone,
                         held->second.messages.size());
      held_.erase(held);
    }
  }

  void ClearSlowPolicies(Router::ClientHandle client) {
    for (auto it = slow_.begin(); it != slow_.end();) {
      if (it->first.first == client) {
        slow_.erase(it++);
      } else {
        ++it;
      }
    }
    for (auto it = held_.begin(); it != held_.end();) {
      if (it->first.first == client) {
        router_.RecordDrop(DropReason::kClientGone, it->second.messages.size());
        it = held_.erase(it);
      } else {
        ++it;
      }
    }
    sessions_[client].slow_subs = 0;
  }

  // Whether a delivery to a client with slow-consumer policies goes out
  // now. Its subscription's policy decides when the queue is full: drop it
  // (DROP_NEWEST), hold it and drop the oldest held (DROP_OLDEST), or
  // disconnect the client (DISCONNECT).
  bool SlowPolicyAllows(Session& session, const Router::Target& t,
                        const protocol::PubView& pub, std::string_view payload,
                        size_t need, uint64_t delivery_id) {
    auto it = delivery_id == 0 ? slow_.find(std::make_pair(t.client, t.sid))
                               : slow_.end();
    if (it == slow_.end()) return HasRoom(session, t.client, need);
    const SlowSettings& policy = it->second;
    const auto key = it->first;
    const bool full = !SlowRoom(session, policy, need);
    if (policy.policy == wire::DROP_OLDEST) {
      auto held = held_.find(key);
      if (held != held_.end() && !flushing_held_ && !full) {
        // What waits goes first, as far as the queue takes it now.
        FlushHeldOf(key, held->second, policy, session);
        if (held->second.messages.empty()) {
          held_.erase(held);
          held = held_.end();
        }
      }
      const bool behind = held != held_.end() && !flushing_held_;
      if (!full && !behind) return true;
      HeldQueue& q = held_[key];
      if (flushing_held_) {
        // FlushHeldOf's message, just taken from the front: back there
        // (FlushHeldOf then stops).
        q.messages.push_front(Stored(pub, payload));
        q.bytes += need;
        return false;
      }
      q.messages.push_back(Stored(pub, payload));
      q.bytes += need;
      while (q.messages.size() > policy.max_pending_msgs ||
             (q.bytes > static_cast<uint64_t>(policy.max_pending_bytes) &&
              q.messages.size() > 1)) {
        const delivery::StoredMessage& old = *q.messages.front();
        q.bytes -=
            old.payload().size() + old.topic().size() + old.headers().size();
        q.messages.pop_front();
        CountSlowDrops(session, t.client, 1, policy.max_pending_bytes);
      }
      return false;
    }
    if (!full) return true;
    if (policy.policy == wire::DISCONNECT) {
      CountSlowDrops(session, t.client, 1, policy.max_pending_bytes);
      if (std::find(slow_disconnects_.begin(), slow_disconnects_.end(),
                    t.client) == slow_disconnects_.end()) {
        slow_disconnects_.push_back(t.client);
      }
      return false;
    }
    CountSlowDrops(session, t.client, 1, policy.max_pending_bytes);
    return false;  // DROP_NEWEST
  }

  // Whether a client's queue has room for `need` more bytes under a
  // subscription's slow-consumer bound: what its connection holds, plus the
  // batch being built for it, plus `need`. The one test of SlowPolicyAllows
  // and FlushHeldOf: when they differed (FlushHeldOf left out the batch),
  // FlushHeldOf sent a held message that SlowPolicyAllows put back at the
  // end of the line, for ever, with the routing thread stuck in the loop.
  bool SlowRoom(const Session& session, const SlowSettings& policy,
                size_t need) const {
    const int64_t queued =
        session.account->pending_bytes() +
        static_cast<int64_t>(need +
                             (session.out ? session.out->bytes.size() : 0));
    return queued <= policy.max_pending_bytes && Fits(session, need);
  }

  // Offers the held deliveries of DROP_OLDEST subscriptions again, oldest
  // first, while their client has room.
  void FlushHeld() {
    flushing_held_ = true;
    for (auto it = held_.begin(); it != held_.end();) {
      const auto [client, sid] = it->first;
      HeldQueue& q = it->second;
      auto policy = slow_.find(it->first);
      if (!router_.IsLive(client) || policy == slow_.end()) {
        it = held_.erase(it);
        continue;
      }
      FlushHeldOf(it->first, q, policy->second, sessions_[client]);
      if (q.messages.empty()) {
        it = held_.erase(it);
      } else {
        ++it;
      }
    }
    flushing_held_ = false;
    FlushBatches();
  }

  // Sends one subscription's held deliveries, oldest first, while its
  // client's queue has room for them.
  void FlushHeldOf(std::pair<Router::ClientHandle, uint64_t> key, HeldQueue& q,
                   const SlowSettings& policy, Session& session) {
    const bool was_flushing = flushing_held_;
    flushing_held_ = true;
    while (!q.messages.empty()) {
      const delivery::MessageRef m = q.messages.front();
      const size_t need =
          m->payload().size() + m->topic().size() + m->headers().size();
      if (!SlowRoom(session, policy, need)) break;
      q.messages.pop_front();
      q.bytes -= need;
      const size_t left = q.messages.size();
      DeliverFrame(Router::Target{key.first, key.second,
                                  router_.SlotForTopic(m->topic())},
                   ViewOf(*m), m->payload(), nullptr, 0, 0);
      // Put back (it found no room after all): stop, rather than take it
      // again from the end of the line.
      if (q.messages.size() > left) break;
    }
    flushing_held_ = was_flushing;
  }

  // DISCONNECT: the client is told (ERROR SLOW_CONSUMER, if its queue
  // takes it) and its connection is closed; its session ends now.
  void DisconnectSlow() {
    std::vector<Router::ClientHandle> clients;
    clients.swap(slow_disconnects_);
    for (Router::ClientHandle c : clients) {
      if (!router_.IsLive(c)) continue;
      Session& session = sessions_[c];
      Log(LogLevel::kWarn, "slow consumer disconnected",
          {{"client", router_.client_id(c)},
           {"pending_bytes", session.account->pending_bytes()}});
      const int fd = session.fd;
      SendClientError(session.routing_id, true, c, 0, wire::SLOW_CONSUMER,
                      "a subscription with the DISCONNECT slow-consumer "
                      "policy found this client's queue full: the broker "
                      "closes the connection");
      EndSession(c, "slow consumer (DISCONNECT policy)",
                 DropReason::kSlowConsumer);
      if (fd >= 0) ::shutdown(fd, SHUT_RDWR);  // ZeroMQ sees it close
    }
  }

  // ---- Durable streams (broker/streams).

  // A publish whose topic a stream captures is appended to it before it is
  // routed; capture_ says what happened, for HandlePub's answer. Returns
  // false with *error set if it must not be routed (refused by the router's
  // checks or by its stream: STORE_FULL).
  bool CaptureInStream(const protocol::PubView& pub, std::string_view payload,
                       absl::Status* error) {
    capture_ = streams::Capture();
    if (streams_->size() == 0 || !streams_->Captures(pub.topic)) return true;
    *error = router_.CheckPublish(pub.topic, pub.reply_to, pub.headers,
                                  payload.size());
    if (!error->ok()) return false;
    std::string_view msg_id;
    protocol::HeaderReader headers(pub.headers);
    std::string_view key, value;
    while (headers.Next(&key, &value)) {
      if (key == kMsgIdHeader) msg_id = value;
    }
    capture_ = streams_->Append(pub.topic, Stored(pub, payload),
                                RecordUnixMs(), msg_id);
    if (!capture_.status.ok()) {
      router_.RecordDrop(DropReason::kStoreFull);
      *error = capture_.status;
      capture_ = streams::Capture();
      return false;
    }
    return true;
  }


  // A stream record's timestamp (Unix ms): one clock read per BATCH, whose
  // PUBs arrived together, instead of one per record.
  int64_t RecordUnixMs() {
    if (!in_batch_) return UnixNowMs();
    if (batch_unix_ms_ == 0) batch_unix_ms_ = UnixNowMs();
    return batch_unix_ms_;
  }

  // The consumer settings of a stream SUB or FETCH: explicit acks when
  // `ack` is present, and the topic filter. Errors: INVALID_REQUEST,
  // INVALID_PATTERN.
  absl::StatusOr<streams::ConsumerOptions> ConsumerOptionsOf(
      bool has_ack, const wire::AckPolicy& ack, std::string_view pattern,
      const wire::StreamStart& start) {
    if (start.deliver() < wire::DELIVER_NEW ||
        start.deliver() > wire::DELIVER_FROM_TIME) {
      return protocol::WireError(wire::INVALID_REQUEST,
                                 "unknown deliver policy");
    }
    streams::ConsumerOptions o;
    o.explicit_ack = has_ack;
    if (has_ack) {
      o.ack = AckPolicyOf(ack);
      if (absl::Status v = delivery::ValidateAckPolicy(o.ack); !v.ok()) {
        return protocol::WireError(wire::INVALID_REQUEST,
                                   absl::StrCat("ack: ", v.message()));
      }
    }
    if (!pattern.empty() && pattern != ">") {
      if (absl::Status v =
              topic::ValidatePattern(pattern, router_.limits().topic);
          !v.ok()) {
        return protocol::WireError(wire::INVALID_PATTERN, v.message());
      }
      o.pattern = std::string(pattern);
    }
    return o;
  }

  void HandleStreamSub(std::string_view routing_id,
                       Router::ClientHandle client, const wire::Header& h) {
    const wire::Sub& sub = h.sub();
    if (streams_ == nullptr) return StreamsOff(routing_id, client, h);
    if (sub.sid() == 0) {
      return SendClientError(routing_id, true, client, h.request_id(),
                             wire::INVALID_REQUEST, "SUB needs a non-zero sid");
    }
    if (!sub.queue_group().empty() || !sub.filter().empty() ||
        sub.plugins_size() > 0) {
      return SendClientError(
          routing_id, true, client, h.request_id(), wire::INVALID_REQUEST,
          "a stream SUB takes no queue_group, filter or plugins");
    }
    auto options =
        ConsumerOptionsOf(sub.has_ack(), sub.ack(), sub.pattern(), sub.stream());
    absl::Status s = options.status();
    if (s.ok()) {
      s = streams_->Subscribe(client, sub.sid(), streams::StartSpecFromWire(sub.stream()),
                              *options, now_ms_);
    }
    Answer(routing_id, client, h.request_id(), s);
    if (s.ok()) ProcessStreams();
  }

  void HandleFetch(std::string_view routing_id, Router::ClientHandle client,
                   const wire::Header& h) {
    if (streams_ == nullptr) return StreamsOff(routing_id, client, h);
    const wire::Fetch& f = h.fetch();
    auto options =
        ConsumerOptionsOf(f.has_ack(), f.ack(), f.pattern(), f.start());
    if (options.ok() && f.has_ack() && !f.ack().has_max_in_flight()) {
      // A FETCH of N with acks may hold N unacknowledged.
      options->ack.max_in_flight =
          std::max<uint32_t>(options->ack.max_in_flight, f.batch());
    }
    absl::Status s = options.status();
    if (s.ok()) {
      s = streams_->Fetch(client, h.request_id(), f.sid(),
                          streams::StartSpecFromWire(f.start()), *options, f.batch(),
                          f.max_wait_ms(), now_ms_);
    }
    if (!s.ok()) return Answer(routing_id, client, h.request_id(), s);
    ProcessStreams();
  }

  void StreamsOff(std::string_view routing_id, Router::ClientHandle client,
                  const wire::Header& h) {
    SendClientError(routing_id, true, client, h.request_id(),
                    wire::INVALID_STREAM,
                    absl::StrCat(protocol::CommandName(h),
                                 ": streams are off on this broker: it was "
                                 "started without a data directory (siftd "
                                 "--data_dir=DIR, or data_dir in its config "
                                 "file, turns them on)"));
  }

  // A stream just added takes on disk what siftd holds in memory only for
  // the topics it captures: their retained values (else a stream re-created
  // after `rm` showed them and lost them at the next restart) and the
  // delayed messages waiting for them (published before it, or while it
  // was deleted). Appends each write's (stream, ticket) to *writes.
  void SaveKeptValuesOf(const streams::StreamSettings& settings,
                        std::vector<std::pair<std::string, uint64_t>>* writes) {
    std::vector<delivery::MessageRef> values;
    for (const std::string& subject : settings.subjects) {
      retained_.Match(subject, &values);
    }
    for (const delivery::MessageRef& m : values) {
      if (auto saved = streams_->SaveRetained(m)) {
        writes->push_back(std::move(*saved));
      }
    }
    scheduled_.ForEach([&](int64_t due, const delivery::MessageRef& m) {
      if (held_delayed_.contains(m.get())) return;  // on disk already
      if (auto saved = streams_->SaveDelayed(m, due + WallOffsetMs())) {
        held_delayed_[m.get()] = {saved->stream, saved->key};
        writes->emplace_back(saved->stream, saved->ticket);
      }
    });
  }

  // STREAM: add, info, list, delete a stream; delete a durable consumer.
  void HandleStreamRequest(std::string_view routing_id,
                           Router::ClientHandle client, const wire::Header& h) {
    if (streams_ == nullptr) return StreamsOff(routing_id, client, h);
    const wire::StreamRequest& r = h.stream();
    if (h.request_id() == 0) {
      return SendClientError(routing_id, true, client, 0,
                             wire::INVALID_REQUEST,
                             "STREAM needs a request_id");
    }
    wire::Header reply;
    reply.set_request_id(h.request_id());
    wire::StreamReply* out = reply.mutable_stream_reply();
    absl::Status s;
    // STREAM_ADD: the writes of the retained values and delayed messages it
    // took on disk, (stream, ticket); its answer waits for them.
    std::vector<std::pair<std::string, uint64_t>> held_writes;
    switch (r.op()) {
      case wire::STREAM_ADD: {
        streams::StreamSettings settings;
        s = streams::SettingsFromWire(r.config(), &settings);
        if (!s.ok()) break;
        const bool existed = streams_->Info(settings.name).ok();
        auto view = streams_->Add(settings);
        s = view.status();
        if (!s.ok()) break;
        streams::FillStreamInfo(*view, out->add_streams());
        if (existed) {
          // The same settings again: nothing changes and nothing is
          // written, but the answer waits for the stream's kept values
          // still being written (an add that timed out, asked again).
          if (auto pending = streams_->PendingHeldWrite(settings.name)) {
            held_writes.push_back(std::move(*pending));
          }
        } else {
          Log(LogLevel::kInfo, "stream added",
              {{"stream", settings.name},
               {"client", router_.client_id(client)}});
          SaveKeptValuesOf(settings, &held_writes);
        }
        break;
      }
      case wire::STREAM_INFO: {
        auto view = streams_->Info(r.config().name());
        s = view.status();
        if (s.ok()) streams::FillStreamInfo(*view, out->add_streams());
        break;
      }
      case wire::STREAM_LIST:
        for (const streams::StreamView& v : streams_->List()) {
          streams::FillStreamInfo(v, out->add_streams());
        }
        break;
      case wire::STREAM_DELETE:
        s = streams_->Delete(r.config().name());
        if (s.ok()) {
          // Its delayed messages still wait in memory, now in memory only
          // (its files went with it); a stream added later saves them again.
          absl::erase_if(held_delayed_, [&](const auto& entry) {
            return entry.second.first == r.config().name();
          });
          Log(LogLevel::kInfo, "stream deleted",
              {{"stream", r.config().name()},
               {"client", router_.client_id(client)}});
        }
        break;
      case wire::CONSUMER_DELETE:
        s = streams_->DeleteConsumer(r.config().name(), r.consumer());
        break;
      default:
        s = protocol::WireError(wire::INVALID_REQUEST,
                                absl::StrCat("unknown STREAM op ", r.op()));
    }
    if (!s.ok()) return Answer(routing_id, client, h.request_id(), s);
    if (!held_writes.empty()) {
      // Answered once they are on disk (ProcessStreams), so that a crash
      // after the answer loses none of them.
      deferred_stream_replies_[{client, h.request_id()}] = std::move(reply);
      streams_->AnswerWhenSaved(client, h.request_id(), std::move(held_writes));
      return;
    }
    SendHeader(routing_id, reply);
  }

  // Takes the streams' news and sends what it produced: DELIVERs, answers
  // (confirms, FETCH ends, ACK OKs) and dead letters.
  void ProcessStreams() {
    streams_->Process(
        now_ms_,
        [this](uint32_t client) {
          if (!router_.IsLive(client)) return false;
          const Session& session = sessions_[client];
          // Stream consumers go at the pace the client reads: they wait
          // in the stream, not in the broker's output queue.
          return session.account != nullptr &&
                 session.account->pending_bytes() < kStreamPendingBytes;
        },
        &stream_sends_, &stream_answers_, &ack_dead_);
    for (const streams::StreamSend& send : stream_sends_) {
      SendStreamDeliver(send);
    }
    stream_sends_.clear();
    for (const streams::StreamAnswer& a : stream_answers_) {
      std::optional<wire::Header> deferred;
      if (!deferred_stream_replies_.empty()) {
        auto it = deferred_stream_replies_.find({a.client, a.request_id});
        if (it != deferred_stream_replies_.end()) {
          deferred = std::move(it->second);
          deferred_stream_replies_.erase(it);
        }
      }
      if (!router_.IsLive(a.client)) continue;
      if (deferred.has_value()) {  // AnswerWhenSaved's answers are OK
        SendReply(a.client, *deferred);
        continue;
      }
      if (a.ended_sid != 0) {  // a notice that ends a subscription
        wire::Header notice;
        notice.mutable_error()->set_code(protocol::WireCodeOf(a.status));
        const absl::string_view text = a.status.message();
        notice.mutable_error()->set_message(
            ToOneLineUtf8(std::string_view(text.data(), text.size())));
        notice.mutable_error()->set_sid(a.ended_sid);
        router_.RecordErrorSent();
        SendReply(a.client, notice);
        continue;
      }
      if (!a.status.ok()) {
        Answer(sessions_[a.client].routing_id, a.client, a.request_id,
               a.status);
        continue;
      }
      SendOk(a.client,
             {a.request_id, a.stream_seq, a.duplicate, a.delivered});
    }
    stream_answers_.clear();
    SendAckDeliveries();  // the dead letters
  }

  void SendStreamDeliver(const streams::StreamSend& send) {
    if (!router_.IsLive(send.client)) return;
    const delivery::StoredMessage& m = *send.message;
    wire::Header h;
    wire::Deliver* d = h.mutable_deliver();
    d->set_sid(send.sid);
    d->set_topic(std::string(m.topic()));
    if (!m.reply_to().empty()) d->set_reply_to(std::string(m.reply_to()));
    if (send.delivery_id != 0) {
      d->set_delivery_id(send.delivery_id);
      d->set_attempt(send.attempt);
    }
    d->set_stream_seq(send.seq);
    d->set_timestamp_ms(static_cast<uint64_t>(send.unix_ms));
    protocol::HeaderReader headers(m.headers());
    std::string_view key, value;
    while (headers.Next(&key, &value)) {
      wire::HeaderField* field = d->add_headers();
      field->set_key(std::string(key));
      field->set_value(std::string(value));
    }
    const std::string bytes = protocol::EncodeHeader(h);
    FlushSession(send.client);  // after what is batched for it already
    Session& session = sessions_[send.client];
    if (!HasRoom(session, send.client, bytes.size() + m.payload().size())) {
      return;
    }
    if (!SendRoutingFrame(session, send.client, 1)) return;
    zmq_msg_t part;
    InitAccountedCopy(&part, bytes, session.account);
    zmq_msg_send(&part, socket_, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    InitAccountedCopy(&part, m.payload(), session.account,
                      send.delivery_id == 0 ? 1 : 0);
    zmq_msg_send(&part, socket_, ZMQ_DONTWAIT);
    router_.RecordDelivered(router_.SlotForTopic(m.topic()),
                            m.payload().size());
  }

  // ---- At-least-once delivery (broker/delivery).

  static delivery::AckPolicy AckPolicyOf(const wire::AckPolicy& w) {
    delivery::AckPolicy p;
    if (w.has_ack_wait_ms()) p.ack_wait_ms = w.ack_wait_ms();
    if (w.has_max_deliver()) p.max_deliver = w.max_deliver();
    if (w.has_max_in_flight()) p.max_in_flight = w.max_in_flight();
    if (w.has_max_queued()) p.max_queued = w.max_queued();
    if (w.has_backoff_initial_ms()) {
      p.backoff.initial_ms = w.backoff_initial_ms();
    }
    if (w.has_backoff_multiplier()) {
      p.backoff.multiplier = w.backoff_multiplier();
    }
    if (w.has_backoff_max_ms()) p.backoff.max_ms = w.backoff_max_ms();
    if (w.has_backoff_jitter()) p.backoff.jitter = w.backoff_jitter();
    return p;
  }

  // A message routed to an explicit-ack subscription: kept (copied once)
  // until acked; delivered now if the consumer has room.
  void OfferTracked(const Router::Target& t, const protocol::PubView& pub,
                    std::string_view payload) {
    const size_t dead_before = ack_dead_.size();
    deliveries_
        .Offer(t.client, t.sid,
               delivery::StoredMessage::MakeQueued(pub.topic, pub.reply_to,
                                                   pub.headers, payload,
                                                   t.slot),
               now_ms_,
               &ack_sends_, &ack_dead_)
        .IgnoreError();  // NotFound: not a consumer (checked by the caller)
    for (size_t i = dead_before; i < ack_dead_.size(); ++i) {
      if (ack_dead_[i].reason == delivery::kReasonQueueFull) {
        publish_queue_full_ = true;  // the publisher is told (HandlePub)
      }
    }
    deliveries_idle_ = false;
    SendAckDeliveries();
  }

  // Sends what the delivery module asked for, and publishes its dead
  // letters. Re-entrant (a dead letter may go to an explicit-ack
  // subscriber): each call works on vectors of its own, taken from spares
  // so that their storage is reused.
  void SendAckDeliveries() {
    while (!ack_sends_.empty() || !ack_dead_.empty()) {
      std::vector<delivery::Send> sends = TakeSpare(&spare_sends_);
      sends.swap(ack_sends_);
      for (const delivery::Send& s : sends) SendAckDelivery(s);
      sends.clear();
      spare_sends_.push_back(std::move(sends));
      if (ack_dead_.empty()) continue;
      std::vector<delivery::DeadLetter> dead = TakeSpare(&spare_dead_);
      dead.swap(ack_dead_);
      for (const delivery::DeadLetter& d : dead) PublishAckDeadLetter(d);
      dead.clear();
      spare_dead_.push_back(std::move(dead));
    }
  }
  void SendAckDelivery(const delivery::Send& s) {
    // Ended since (an ACK later in the same command naming the id it was
    // given, a DELIVER before it that dropped the client): nothing to send.
    if (!deliveries_.InFlight(s)) return;
    const delivery::StoredMessage& m = *s.message;
    const protocol::PubView view = ViewOf(m);
    const Router::TopicSlot slot =
        m.topic_slot != 0 ? m.topic_slot : router_.SlotForTopic(m.topic());
    DeliverFrame(Router::Target{s.client, s.sid, slot}, view, m.payload(),
                 nullptr, s.delivery_id, s.attempt);
  }
  template <typename T>
  static std::vector<T> TakeSpare(std::vector<std::vector<T>>* spares) {
    if (spares->empty()) return {};
    std::vector<T> v = std::move(spares->back());
    spares->pop_back();
    return v;
  }

  // Dead letters of the delivery module and of stream consumers:
  // "$sift.deadletter.<topic>" with sift-original-topic, sift-reason and
  // sift-attempts, and for a stream's record sift-stream and sift-stream-seq.
  void PublishAckDeadLetter(const delivery::DeadLetter& d) {
    const delivery::StoredMessage& m = *d.message;
    router_.RecordDrop(DropReason::kDeadLettered);
    const std::string attempts = absl::StrCat(d.attempts);
    const std::string headers =
        d.stream_seq == 0
            ? plugin::DeadLetterHeaders(m.headers(),
                                        {{"sift-original-topic", m.topic()},
                                         {"sift-reason", d.reason},
                                         {"sift-attempts", attempts}})
            : plugin::DeadLetterHeaders(
                  m.headers(),
                  {{"sift-original-topic", m.topic()},
                   {"sift-reason", d.reason},
                   {"sift-attempts", attempts},
                   {"sift-stream", d.stream},
                   {"sift-stream-seq", absl::StrCat(d.stream_seq)}});
    const std::string topic =
        absl::StrCat(AV(plugin::kDeadLetterPrefix), AV(m.topic()));
    protocol::PubView view = ViewOf(m);
    view.topic = topic;
    view.headers = headers;
    // A dead-letter subscriber with explicit acks tracks them too.
    RouteDeadLetter(view, m.payload(), nullptr, /*through_chains=*/false);
  }


  // DECLARE: the broker's own placeholder member of the queue group (a
  // subscription of an internal client that never connects and never takes
  // a message), so the group's backlog holds messages while no worker is
  // there. Idempotent per (group, pattern).
  void HandleDeclare(std::string_view routing_id, Router::ClientHandle client,
                     const wire::Header& h) {
    const wire::Declare& d = h.declare();
    const std::string key = absl::StrCat(d.queue_group(), "\n", d.pattern());
    if (auto it = declared_.find(key); it != declared_.end()) {
      // Idempotent for the same group settings; others are refused, as a
      // member that disagrees with its group is, naming each that differs.
      const std::string differences = delivery::GroupPolicyDifferences(
          it->second, AckPolicyOf(d.ack()), "this declaration");
      if (!differences.empty()) {
        return SendClientError(
            routing_id, true, client, h.request_id(), wire::INVALID_REQUEST,
            absl::StrCat("queue group \"", d.queue_group(), "\" on \"",
                         d.pattern(), "\" was declared with ", differences,
                         ": the first declaration stands"));
      }
      return Answer(routing_id, client, h.request_id(), absl::OkStatus());
    }
    if (d.queue_group().empty()) {
      return SendClientError(routing_id, true, client, h.request_id(),
                             wire::INVALID_QUEUE_GROUP,
                             "DECLARE needs a queue_group");
    }
    delivery::AckPolicy policy = AckPolicyOf(d.ack());
    if (absl::Status valid = delivery::ValidateAckPolicy(policy);
        !valid.ok()) {
      return SendClientError(routing_id, true, client, h.request_id(),
                             wire::INVALID_REQUEST,
                             absl::StrCat("ack: ", valid.message()));
    }
    if (declared_client_ == kNone) {
      declared_client_ = router_.AddClient("(declared queues)");
      if (sessions_.size() <= declared_client_) {
        sessions_.resize(declared_client_ + 1);
      }
      Session& s = sessions_[declared_client_];
      s.internal = true;
      s.account = OutputAccount::New(all_output_);
    }
    const uint64_t sid = ++declared_sids_;
    absl::Status s = router_.Subscribe(declared_client_, sid, d.pattern(),
                                       d.queue_group());
    if (s.ok()) {
      s = deliveries_.AddPlaceholder(declared_client_, sid, d.pattern(),
                                     d.queue_group(), policy, now_ms_);
      if (!s.ok()) {
        router_.Unsubscribe(declared_client_, sid).IgnoreError();
        s = protocol::WireError(wire::INVALID_REQUEST,
                                absl::StrCat("ack: ", s.message()));
      } else {
        declared_.emplace(key, policy);
        deliveries_idle_ = false;
      }
    }
    Answer(routing_id, client, h.request_id(), s);
  }

  // ACK, NACK, PROGRESS, as decoded by protobuf; see ApplyAck.
  void HandleAck(std::string_view routing_id, Router::ClientHandle client,
                 const wire::Header& h) {
    AckCommand command;
    command.kind = h.command_case();
    command.name = protocol::CommandName(h);
    command.request_id = h.request_id();
    if (h.has_ack()) {
      command.ids = absl::MakeConstSpan(h.ack().delivery_ids().data(),
                                        h.ack().delivery_ids().size());
    } else if (h.has_nack()) {
      command.nack_id = h.nack().delivery_id();
      command.ids = absl::MakeConstSpan(&command.nack_id, 1);
      if (h.nack().delay_ms() > 0) command.delay = h.nack().delay_ms();
    } else {
      command.ids = absl::MakeConstSpan(h.progress().delivery_ids().data(),
                                        h.progress().delivery_ids().size());
    }
    ApplyAck(routing_id, client, command);
  }

  // An ACK read by DecodeAckFast (the common case: a subscriber's batch of
  // acks), its ids unpacked by it into ack_ids_, a reused vector.
  void HandleAckFast(std::string_view routing_id, Router::ClientHandle client,
                     const protocol::AckView& ack) {
    AckCommand command;
    command.kind = wire::Header::kAck;
    command.request_id = ack.request_id;
    command.ids = ack_ids_;
    ApplyAck(routing_id, client, command);
  }

  struct AckCommand {
    wire::Header::CommandCase kind = wire::Header::kAck;  // or kNack, kProgress
    const char* name = "ACK";  // protocol::CommandName's, for errors
    uint64_t request_id = 0;
    absl::Span<const uint64_t> ids;  // a NACK's: its nack_id
    uint64_t nack_id = 0;
    std::optional<uint32_t> delay;  // NACK
  };

  // ACK, NACK, PROGRESS. An id not in flight for this client gets ERROR
  // UNKNOWN_DELIVERY (one per command, naming the first such id); OK if the
  // command had a request_id and every id was known.
  void ApplyAck(std::string_view routing_id, Router::ClientHandle client,
                const AckCommand& command) {
    uint64_t unknown = 0;
    size_t unknown_count = 0;
    auto note = [&](absl::Status s, uint64_t id) {
      if (!s.ok()) {
        if (unknown_count++ == 0) unknown = id;
      }
    };
    // Stream consumers' delivery ids are the stream manager's.
    bool stream_ids = false;
    auto is_stream = [&](uint64_t id) {
      const bool yes = streams_ != nullptr &&
                       streams::StreamManager::IsStreamDeliveryId(id);
      stream_ids = stream_ids || yes;
      return yes;
    };
    const bool is_ack = command.kind == wire::Header::kAck;
    if (is_ack) {
      // Messages acked a few ids on start loading now (Deliveries'
      // PrefetchInFlight): by their ack they have often left the caches.
      constexpr size_t kAckPrefetchAhead = 4;
      const auto& ids = command.ids;
      for (size_t i = 0; i < ids.size(); ++i) {
        if (i + kAckPrefetchAhead < ids.size()) {
          deliveries_.PrefetchInFlight(ids[i + kAckPrefetchAhead]);
        }
        const uint64_t id = ids[i];
        note(is_stream(id) ? streams_->Ack(client, id, now_ms_)
                           : deliveries_.Ack(client, id, now_ms_, &ack_sends_),
             id);
      }
    } else if (command.kind == wire::Header::kNack) {
      const uint64_t id = command.ids[0];
      note(is_stream(id) ? streams_->Nack(client, id, command.delay, now_ms_)
                         : deliveries_.Nack(client, id, command.delay, now_ms_,
                                            &ack_sends_, &ack_dead_),
           id);
    } else {
      for (uint64_t id : command.ids) {
        note(is_stream(id) ? streams_->Progress(client, id, now_ms_)
                           : deliveries_.Progress(client, id, now_ms_),
             id);
      }
    }
    SendAckDeliveries();
    const uint64_t rid = command.request_id;
    if (stream_ids && unknown_count == 0 && rid != 0 && is_ack) {
      // OK once the consumers' new positions are on disk.
      streams_->AnswerAckWhenSaved(client, rid);
      ProcessStreams();
      return;
    }
    if (stream_ids) ProcessStreams();
    if (unknown_count > 0) {
      return SendClientError(
          routing_id, true, client, rid, wire::UNKNOWN_DELIVERY,
          absl::StrCat(command.name, ": delivery ", unknown,
                       unknown_count > 1
                           ? absl::StrCat(" (and ", unknown_count - 1,
                                          " more)")
                           : "",
                       " is not in flight for this client (acknowledged "
                       "already, its ack wait ran out and it was "
                       "redelivered, or it is another client's)"));
    }
    if (rid != 0) Answer(routing_id, client, rid, {});
  }

  // The client's explicit-ack subscriptions end: what they held goes to
  // other members of their groups (or is dropped, counted).
  void ReleaseConsumers(Router::ClientHandle client) {
    if (streams_ != nullptr) streams_->RemoveClient(client, now_ms_);
    // Its STREAM_ADD replies still waiting are not for the next client
    // that gets its handle (StreamManager::RemoveClient drops their turn).
    if (!deferred_stream_replies_.empty()) {
      absl::erase_if(deferred_stream_replies_, [&](const auto& entry) {
        return entry.first.first == client;
      });
    }
    if (deliveries_.empty()) return;
    const size_t dropped =
        deliveries_.RemoveClient(client, now_ms_, &ack_sends_, &ack_dead_);
    router_.RecordDrop(DropReason::kClientGone, dropped);
    SendAckDeliveries();
  }

  // Routes a dead letter. Its topic, "$sift.deadletter.<topic>", may be too
  // long for the topic limits; it then goes to "$sift.deadletter._too_long"
  // (its sift-original-topic header still names the topic).
  // Its subscribers get it through their own chains (Deliver) or not
  // (DeliverOne).
  void RouteDeadLetter(protocol::PubView view, std::string_view payload,
                       zmq_msg_t* payload_msg, bool through_chains) {
    if (!topic::ValidateTopic(view.topic, router_.limits().topic).ok()) {
      view.topic = kDeadLetterTooLong;
    }
    // The broker's own sift-* headers may take a message past the clients'
    // header limits: a dead letter is not bound by them.
    std::vector<Router::Target> targets;
    if (!router_
             .Publish(view.topic, view.reply_to, view.headers, payload.size(),
                      &targets, /*broker_made=*/true)
             .ok()) {
      return;
    }
    for (const Router::Target& t : targets) {
      if (through_chains) {
        Deliver(t, view, payload, payload_msg);
      } else {
        DeliverOne(t, view, payload, payload_msg);
      }
    }
  }

  // Dead-letters output `m` of a chain run on a message published on
  // `original_topic`, which the broker refused with `refusal` (already
  // counted and logged): sift-plugin "router", sift-reason the refusal. The
  // dead letter carries the output less each field the broker would not
  // route (a reply_to that is not a valid topic, a payload over
  // max_payload_bytes, headers past the header limits: left out, the
  // reason says why), so that it is itself routed, once, and within the
  // limits a client receives (its own three sift-* headers aside).
  void DeadLetterRefusedOutput(std::string_view original_topic,
                               const plugin::OutMessage& m,
                               const absl::Status& refusal,
                               bool through_chains) {
    const RouterLimits& limits = router_.limits();
    std::string reason(refusal.message());
    std::vector<std::string> left_out;
    std::string_view reply_to = m.reply_to;
    if (!reply_to.empty()) {
      absl::Status s = topic::ValidateTopic(reply_to, limits.topic);
      if (!s.ok()) {
        reply_to = {};
        left_out.push_back(absl::StrCat("reply_to (", s.message(), ")"));
      }
    }
    std::string_view payload = m.payload;
    if (payload.size() > limits.max_payload_bytes) {
      left_out.push_back(absl::StrCat("the payload (", payload.size(),
                                      " bytes, over max_payload_bytes)"));
      payload = {};
    }
    std::string_view headers = m.headers;
    if (!headers.empty()) {
      absl::Status s = protocol::ValidateHeaders(headers, limits.headers);
      if (!s.ok()) {
        headers = {};
        left_out.push_back(absl::StrCat("the headers (", s.message(), ")"));
      }
    }
    if (!left_out.empty()) {
      absl::StrAppend(&reason, "; left out of this dead letter: ",
                      absl::StrJoin(left_out, ", "));
    }
    const plugin::OutMessage d = plugin::MakeDeadLetter(
        original_topic, headers, reply_to, payload, "router", reason);
    RouteDeadLetter(ViewOf(d), d.payload, nullptr, through_chains);
  }

  // The PubView of a chain's OutMessage, or of a stored message.
  static protocol::PubView ViewOf(const plugin::OutMessage& m) {
    protocol::PubView view;
    view.topic = m.topic;
    view.reply_to = m.reply_to;
    view.headers = m.headers;
    return view;
  }
  static protocol::PubView ViewOf(const delivery::StoredMessage& m) {
    protocol::PubView view;
    view.topic = m.topic();
    view.reply_to = m.reply_to();
    view.headers = m.headers();
    return view;
  }
  static constexpr std::string_view kDeadLetterTooLong =
      "$sift.deadletter._too_long";

  // Runs a subscription's chain on one delivery and delivers what passes;
  // failed messages go to the dead-letter topic (all its subscribers).
  void DeliverThroughChain(plugin::Chain& chain, const Router::Target& t,
                           const protocol::PubView& pub,
                           std::string_view payload, zmq_msg_t* payload_msg) {
    std::vector<plugin::OutMessage> out;
    plugin::CallContext context = ContextNow();
    context.sid = t.sid;
    context.client_id = router_.client_id(t.client);
    const plugin::ChainResult result = plugin::RunChain(
        chain, pub.topic, pub.reply_to, pub.headers, payload, context, &out);
    if (result.dropped > 0) router_.RecordDrop(DropReason::kFiltered);
    if (result.failed > 0) {
      router_.RecordDrop(DropReason::kPluginError, result.failed);
    }
    for (const plugin::OutMessage& m : out) {
      const protocol::PubView view = ViewOf(m);
      zmq_msg_t* share = m.payload_is_input ? payload_msg : nullptr;
      if (!m.dead_letter) {
        // What a plugin made is checked as a publish would be: a topic the
        // broker would refuse (or one under $sift.) is not delivered.
        absl::Status s =
            plugin::IsReservedTopic(m.topic)
                ? protocol::WireError(wire::FORBIDDEN,
                                      "a plugin may not deliver under $sift.")
                : router_.CheckPublish(view.topic, view.reply_to,
                                       view.headers, m.payload.size());
        if (!s.ok()) {
          // CheckPublish counted its own refusals; $sift. is counted here.
          if (protocol::WireCodeOf(s) == wire::FORBIDDEN) {
            router_.RecordDrop(DropReason::kPluginError);
          }
          if (log_limiter_.Allow(now_ms_)) {
            Log(LogLevel::kWarn, "plugin output refused",
                {{"topic", std::string(m.topic)},
                 {"client", router_.client_id(t.client)},
                 {"error", std::string(s.message())}});
          }
          // Not through subscription chains (see below).
          DeadLetterRefusedOutput(pub.topic, m, s, /*through_chains=*/false);
          continue;
        }
        DeliverOne(t, view, m.payload, share);
        continue;
      }
      // Not through subscription chains: a dead-letter subscriber whose
      // own chain failed would feed itself for ever.
      RouteDeadLetter(view, m.payload, share, /*through_chains=*/false);
    }
  }

  // Whether `bytes` more may be queued for `session`: within the
  // per-client bound, and, once all clients together hold more than the
  // broker-wide bound, only for a client below its fair share of it
  // (max_pending_bytes / sessions), so that clients that keep up are not
  // punished for those that do not. (The total can thus pass the
  // broker-wide bound by at most the bound again.) If not, counts one
  // slow-consumer drop for the client.
  bool HasRoom(Session& session, Router::ClientHandle client, size_t bytes) {
    if (Fits(session, bytes + (session.out ? session.out->bytes.size() : 0))) {
      return true;
    }
    CountSlowDrops(session, client, 1);
    return false;
  }

  // Whether `bytes` more fit in `session`'s bounds (see HasRoom).
  bool Fits(const Session& session, size_t bytes) const {
    const int64_t pending =
        session.account->pending_bytes() + static_cast<int64_t>(bytes);
    if (pending > static_cast<int64_t>(config_.max_pending_bytes_per_client)) {
      return false;
    }
    return all_output_->pending_bytes() <=
               static_cast<int64_t>(config_.max_pending_bytes) ||
           pending <= static_cast<int64_t>(
                          config_.max_pending_bytes /
                          std::max<size_t>(1, router_.client_count()));
  }

  // `bound`: the subscription's own slow-consumer bound that was hit, or -1
  // for the broker's (max_pending_bytes_per_client, max_pending_bytes).
  void CountSlowDrops(Session& session, Router::ClientHandle client,
                      uint64_t count, int64_t bound = -1) {
    router_.RecordDrop(DropReason::kSlowConsumer, count);
    if (session.slow_drops_unreported == 0 && log_limiter_.Allow(now_ms_)) {
      Log(LogLevel::kWarn, "slow consumer: dropping deliveries",
          {{"client", router_.client_id(client)},
           {"pending_bytes", session.account->pending_bytes()},
           {"bound", bound >= 0 ? "subscription's slow.max_pending_bytes"
                                : "max_pending_bytes_per_client"},
           {"bound_bytes",
            bound >= 0 ? bound
                       : static_cast<int64_t>(
                             config_.max_pending_bytes_per_client)}});
    }
    session.slow_drops += count;
    session.slow_drops_unreported += count;
  }

  // Makes one delivery: into the session's pending BATCH, or (large payloads,
  // clients without batches) as [routing id][DELIVER][payload], the payload
  // frame shared by reference.
  ABSL_ATTRIBUTE_ALWAYS_INLINE void Deliver(const Router::Target& t,
                                            const protocol::PubView& pub,
               std::string_view payload, zmq_msg_t* payload_msg) {
    if (!sub_chains_.empty()) {
      if (plugin::Chain* chain = sub_chains_.Find(t.client, t.sid)) {
        return DeliverThroughChain(*chain, t, pub, payload, payload_msg);
      }
    }
    DeliverOne(t, pub, payload, payload_msg);
  }

  // Makes one delivery (after any subscription chain): tracked until acked
  // for an explicit-ack subscription, else at once.
  ABSL_ATTRIBUTE_ALWAYS_INLINE void DeliverOne(const Router::Target& t,
                                               const protocol::PubView& pub,
                  std::string_view payload, zmq_msg_t* payload_msg) {
    if (!deliveries_.empty() && deliveries_.IsConsumer(t.client, t.sid)) {
      return OfferTracked(t, pub, payload);
    }
    DeliverFrame(t, pub, payload, payload_msg, 0, 0);
  }

  // Sends one DELIVER (`delivery_id` and `attempt` 0 unless tracked): into
  // the session's pending BATCH, or (large payloads, clients without
  // batches) as [routing id][DELIVER][payload], the payload frame shared by
  // reference when there is one.
  void DeliverFrame(const Router::Target& t, const protocol::PubView& pub,
                    std::string_view payload, zmq_msg_t* payload_msg,
                    uint64_t delivery_id, uint32_t attempt) {
    if (!router_.IsLive(t.client)) {
      router_.RecordDrop(DropReason::kClientGone);
      return;
    }
    Session& session = sessions_[t.client];
    const size_t need = payload.size() + pub.topic.size() + pub.headers.size();
    if (ABSL_PREDICT_FALSE(session.slow_subs > 0)) {
      if (!SlowPolicyAllows(session, t, pub, payload, need, delivery_id)) {
        return;
      }
    } else if (!HasRoom(session, t.client, need)) {
      return;
    }
    if (session.batches && payload.size() <= kBatchPayloadLimit) {
      if (!session.out) {
        // Sized like this session's previous batch: a lone message at low
        // rates, close to kFlushBatchBytes under load.
        session.out = std::make_unique<OutBuffer>();
        session.out->bytes.reserve(session.last_batch_bytes + 256);
      }
      protocol::BatchWriter(&session.out->bytes)
          .AppendDeliver(t.sid, pub.topic, pub.reply_to, pub.headers,
                         payload, delivery_id, attempt, delivering_retained_);
      session.out_slots.push_back(t.slot);
      if (delivery_id == 0) ++session.out_at_most_once;
      session.out_payload_bytes += payload.size();
      if (!session.dirty) {
        session.dirty = true;
        dirty_.push_back(t.client);
      }
      if (session.out->bytes.size() >= kFlushBatchBytes) {
        FlushSession(t.client);
      }
      return;
    }
    FlushSession(t.client);  // keep this session's deliveries in order
    if (!SendRoutingFrame(session, t.client, 1)) return;
    // Once the routing frame is accepted, ZeroMQ takes the rest of the
    // message whole, so the remaining sends cannot fail on the water mark.
    zmq_msg_t part;
    const size_t header_size =
        protocol::DeliverSize(t.sid, pub.topic, pub.reply_to, pub.headers,
                              delivery_id, attempt, delivering_retained_);
    zmq_msg_init_size(&part, header_size);
    protocol::EncodeDeliver(t.sid, pub.topic, pub.reply_to, pub.headers,
                            delivery_id, attempt, delivering_retained_,
                            static_cast<char*>(zmq_msg_data(&part)));
    zmq_msg_send(&part, socket_, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    const int64_t lost_if_closed = delivery_id == 0 ? 1 : 0;
    if (payload_msg != nullptr) {
      InitAccountedShare(&part, payload_msg, header_size, session.account,
                         lost_if_closed);
    } else {
      InitAccountedCopy(&part, payload, session.account, lost_if_closed);
    }
    zmq_msg_send(&part, socket_, ZMQ_DONTWAIT);
    router_.RecordDelivered(t.slot, payload.size());
  }

  // Sends the routing frame of a message to `client`, which carries
  // `deliveries` deliveries. On failure counts them as dropped (and notes a
  // vanished peer) and returns false.
  bool SendRoutingFrame(Session& session, Router::ClientHandle client,
                        uint32_t deliveries) {
    const int err = SendRoutingId(session.routing_id);
    if (err == 0) return true;
    if (err == EHOSTUNREACH) {
      router_.RecordDrop(DropReason::kClientGone, deliveries);
      // A closing session ends when what it sent has been read, not now.
      if (!session.closing) gone_.push_back(client);
    } else {
      CountSlowDrops(session, client, deliveries);
    }
    return false;
  }

  // Sends the routing frame (ZMQ_SNDMORE) of a message to `routing_id`.
  // Returns 0, or the errno (EHOSTUNREACH: no such peer; EAGAIN: its queue
  // is at the high-water mark); then nothing was sent, and nothing counted.
  int SendRoutingId(std::string_view routing_id) {
    zmq_msg_t part;
    InitCopy(&part, routing_id);
    if (zmq_msg_send(&part, socket_, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0) {
      return 0;
    }
    const int err = zmq_errno();
    zmq_msg_close(&part);
    return err;
  }

  // Sends the session's pending BATCH, if any: a small body is copied into
  // its frame (the session keeps its buffer), a large one handed to ZeroMQ
  // without a copy (freed once sent). Both are charged to the session.
  void FlushSession(Router::ClientHandle client) {
    Session& session = sessions_[client];
    if (session.out_slots.empty() && session.out_replies == 0) return;
    const uint32_t count =
        static_cast<uint32_t>(session.out_slots.size()) + session.out_replies;
    session.out_replies = 0;
    const uint64_t bytes = session.out_payload_bytes;
    session.out_payload_bytes = 0;
    const int64_t at_most_once = session.out_at_most_once;
    session.out_at_most_once = 0;
    session.last_batch_bytes = session.out->bytes.size();

    if (!SendRoutingFrame(session, client, count)) {
      session.out->bytes.clear();  // dropped, and counted as such
      session.out_slots.clear();
      return;
    }
    zmq_msg_t part;
    zmq_msg_init_size(&part, protocol::BatchHeaderSize(count));
    protocol::EncodeBatchHeader(count, static_cast<char*>(zmq_msg_data(&part)));
    zmq_msg_send(&part, socket_, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (session.out->bytes.size() <= kCopyBatchBytes) {
      InitAccountedCopy(&part, session.out->bytes, session.account,
                        at_most_once);
      session.out->bytes.clear();  // keeps its capacity for the next batch
    } else {
      InitAccountedBuffer(&part, session.out.release(), session.account,
                          at_most_once);
    }
    zmq_msg_send(&part, socket_, ZMQ_DONTWAIT);
    for (Router::TopicSlot slot : session.out_slots) {
      router_.RecordDelivered(slot, 0);
    }
    router_.RecordDeliveredBytes(bytes);
    session.out_slots.clear();
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
    // counts in every reply.
    FlushBatches();
    wire::Header reply;
    reply.set_request_id(rid);
    wire::StatsReply* stats = reply.mutable_stats_reply();
    router_.FillStats(config_.stats_top_topics, stats);
    stats->set_server_version(VersionString());
    stats->set_uptime_ms(static_cast<uint64_t>(now_ms_ - started_ms_));
    stats->set_pending_bytes(static_cast<uint64_t>(
        std::max<int64_t>(0, all_output_->pending_bytes())));
    stats->set_connections(guard_->connections());
    stats->set_connections_refused(connections_refused_);
    stats->set_retained(retained_.size());
    stats->set_retained_bytes(retained_.bytes());
    stats->set_delayed(scheduled_.size());
    stats->set_delayed_bytes(scheduled_.bytes());
    stats->set_streams(streams_ != nullptr ? streams_->size() : 0);
    {
      wire::DeliveryCounts* d = stats->mutable_deliveries();
      const delivery::Deliveries::Counters& c = deliveries_.counters();
      d->set_consumers(deliveries_.consumer_count());
      d->set_in_flight(deliveries_.in_flight());
      d->set_queued(deliveries_.queued());
      d->set_delayed(deliveries_.delayed());
      d->set_delivered(c.delivered);
      d->set_redeliveries(c.redeliveries);
      d->set_acks(c.acks);
      d->set_nacks(c.nacks);
      d->set_progress(c.progress);
      d->set_expired(c.expired);
      d->set_dead_letters(c.dead_letters);
      if (streams_ != nullptr) {  // stream consumers count alongside
        const streams::StreamManager::Counters& sc = streams_->counters();
        d->set_consumers(d->consumers() + streams_->consumers_with_acks());
        d->set_in_flight(d->in_flight() + streams_->in_flight());
        d->set_delivered(d->delivered() + sc.delivered);
        d->set_redeliveries(d->redeliveries() + sc.redeliveries);
        d->set_acks(d->acks() + sc.acks);
        d->set_nacks(d->nacks() + sc.nacks);
        d->set_progress(d->progress() + sc.progress);
        d->set_expired(d->expired() + sc.expired);
        d->set_dead_letters(d->dead_letters() + sc.dead_letters);
      }
    }
    for (const plugin::PluginStatsRow& row : plugins_->Stats()) {
      wire::PluginCount* p = stats->add_plugins();
      p->set_plugin(row.plugin);
      p->set_chain(row.chain);
      p->set_calls(row.counters.calls);
      p->set_passes(row.counters.passes);
      p->set_drops(row.counters.drops);
      p->set_errors(row.counters.errors);
      p->set_time_ns(row.counters.nanos);
    }
    FillSlowClients(config_.stats_top_topics, stats);
    SendHeader(routing_id, reply);
  }

  // The clients that lost the most deliveries for not keeping up, bounded.
  void FillSlowClients(size_t limit, wire::StatsReply* stats) {
    std::vector<Router::ClientHandle> slow;
    for (Router::ClientHandle c = 0; c < sessions_.size(); ++c) {
      if (router_.IsLive(c) && sessions_[c].slow_drops > 0) slow.push_back(c);
    }
    const size_t n = std::min(limit, slow.size());
    std::partial_sort(slow.begin(), slow.begin() + n, slow.end(),
                      [this](Router::ClientHandle a, Router::ClientHandle b) {
                        return sessions_[a].slow_drops > sessions_[b].slow_drops;
                      });
    for (size_t i = 0; i < n; ++i) {
      const Session& s = sessions_[slow[i]];
      wire::ClientDrops* row = stats->add_slow_clients();
      row->set_client_id(router_.client_id(slow[i]));
      row->set_dropped(s.slow_drops);
      row->set_pending_bytes(
          static_cast<uint64_t>(std::max<int64_t>(0, s.account->pending_bytes())));
    }
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
    // A proto3 string: text quoting a client's bytes (a stream name of
    // Latin-1) must still be UTF-8, or the client cannot parse the answer.
    reply.mutable_error()->set_message(ToOneLineUtf8(message));
    router_.RecordErrorSent();
    SendHeader(routing_id, reply);
  }

  // Sends a header-only reply. Replies are never dropped silently: a full
  // queue is counted like any other slow-consumer drop.
  void SendHeader(std::string_view routing_id, const wire::Header& header) {
    auto found = by_routing_id_.find(
        absl::string_view(routing_id.data(), routing_id.size()));
    if (found != by_routing_id_.end()) {
      return SendReply(found->second, header);
    }
    // No session: nothing is queued for this peer that a reply could
    // overtake, and nothing to charge it to.
    if (const int err = SendRoutingId(routing_id); err != 0) {
      router_.RecordDrop(err == EHOSTUNREACH ? DropReason::kClientGone
                                             : DropReason::kSlowConsumer);
      return;
    }
    const std::string bytes = protocol::EncodeHeader(header);
    zmq_send(socket_, bytes.data(), bytes.size(), ZMQ_DONTWAIT);
  }

  // SendHeader to a session's client: an OK or ERROR into its pending BATCH
  // if it accepts batched replies, anything else after that batch.
  void SendReply(Router::ClientHandle client, const wire::Header& header) {
    Session& session = sessions_[client];
    if (session.batched_replies && (header.has_ok() || header.has_error())) {
      if (!HasRoom(session, client, header.ByteSizeLong())) return;
      AppendReply(session, client, header);
      return;
    }
    const std::string bytes = protocol::EncodeHeader(header);
    // Replies must not overtake deliveries already batched for this client.
    FlushSession(client);
    if (!HasRoom(session, client, bytes.size())) return;
    if (!SendRoutingFrame(session, client, 1)) return;
    zmq_msg_t part;
    InitAccountedCopy(&part, bytes, session.account);
    zmq_msg_send(&part, socket_, ZMQ_DONTWAIT);
  }

  // SendReply of an OK: one per confirmed publish, so written straight
  // into a batching session's BATCH without a protobuf message.
  void SendOk(Router::ClientHandle client, const protocol::OkView& ok) {
    Session& session = sessions_[client];
    if (!session.batched_replies) {
      reply_.Clear();
      reply_.set_request_id(ok.request_id);
      wire::Ok* o = reply_.mutable_ok();
      if (ok.stream_seq != 0) o->set_stream_seq(ok.stream_seq);
      if (ok.duplicate) o->set_duplicate(true);
      if (ok.delivered != 0) o->set_delivered(ok.delivered);
      return SendReply(client, reply_);
    }
    constexpr size_t kLargestOkEntry = 34;  // bytes
    if (!HasRoom(session, client, kLargestOkEntry)) return;
    AppendReplyWith(session, client, [&ok](protocol::BatchWriter& w) {
      w.AppendOk(ok);
    });
  }

  // Adds a reply to the session's pending BATCH (opened if need be); sent
  // with it at the end of the pass, or now if the batch is full.
  void AppendReply(Session& session, Router::ClientHandle client,
                   const wire::Header& reply) {
    AppendReplyWith(session, client, [&reply](protocol::BatchWriter& w) {
      w.AppendReply(reply);
    });
  }
  template <typename Append>
  void AppendReplyWith(Session& session, Router::ClientHandle client,
                       Append append) {
    if (!session.out) {
      session.out = std::make_unique<OutBuffer>();
      session.out->bytes.reserve(session.last_batch_bytes + 256);
    }
    protocol::BatchWriter writer(&session.out->bytes);
    append(writer);
    ++session.out_replies;
    if (!session.dirty) {
      session.dirty = true;
      dirty_.push_back(client);
    }
    if (session.out->bytes.size() >= kFlushBatchBytes) FlushSession(client);
  }

  // Ends `client`'s session. The at-most-once deliveries its connection
  // had not yet written (in the BATCH being built, or handed to ZeroMQ and
  // still queued) are lost with it: counted under `lost_as` (client_gone;
  // slow_consumer when the DISCONNECT policy closes it). What the kernel
  // had already taken is not counted: it may or may not have arrived.
  void EndSession(Router::ClientHandle client, std::string_view reason,
                  DropReason lost_as = DropReason::kClientGone) {
    // The handle may be reused by the next HELLO: it must not stay in gone_.
    gone_.erase(std::remove(gone_.begin(), gone_.end(), client), gone_.end());
    if (session_log_limiter_.Allow(now_ms_)) {
      Log(LogLevel::kInfo, "client disconnected",
          {{"client", router_.client_id(client)}, {"reason", reason}});
    }
    Session& s = sessions_[client];
    // Replies are not messages: an unsent one (the DISCONNECT policy's
    // ERROR SLOW_CONSUMER, say) is no drop.
    router_.RecordDrop(
        lost_as,
        s.out_at_most_once + (s.account != nullptr
                                  ? static_cast<uint64_t>(std::max<int64_t>(
                                        0, s.account->pending_deliveries()))
                                  : 0));
    s.out.reset();
    s.out_slots.clear();
    s.out_at_most_once = 0;
    s.out_replies = 0;
    s.batched_replies = false;
    s.out_payload_bytes = 0;
    s.batches = false;
    s.closing = false;
    if (s.account != nullptr) s.account->Unref();
    s.account = nullptr;
    if (s.fd >= 0 && static_cast<size_t>(s.fd) < by_fd_.size() &&
        by_fd_[s.fd] == client) {
      by_fd_[s.fd] = kNone;
    }
    s.fd = -1;
    by_routing_id_.erase(s.routing_id);
    s.routing_id.clear();
    sub_chains_.RemoveClient(client);
    if (s.slow_subs > 0) ClearSlowPolicies(client);
    ReleaseConsumers(client);
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

  // Learns of connections that closed (ending their sessions at once) and
  // answers connection requests; see PeerGuard.
  void PollGuard() {
    guard_->Poll(PeerGuard::Callbacks{
        [this](int fd) {
          if (fd >= 0 && static_cast<size_t>(fd) < spoke_.size() &&
              spoke_[fd]) {
            spoke_[fd] = 0;
            --spoken_;
          }
          if (fd >= 0 && static_cast<size_t>(fd) < by_fd_.size() &&
              by_fd_[fd] != kNone) {
            const Router::ClientHandle c = by_fd_[fd];
            if (router_.IsLive(c) && !sessions_[c].closing) StartClosing(c);
          }
        },
        [this](int error) {
          ++accept_failures_;
          if (accept_log_limiter_.Allow(now_ms_)) {
            Log(LogLevel::kError, "cannot accept a connection",
                {{"error", std::strerror(error)},
                 {"connections", guard_->connections()},
                 {"max_connections", MaxConnections()},
                 {"failures", accept_failures_}});
          }
        },
        [this] { return AdmitConnection(); }});
  }

  // A session whose connection closed gets nothing more from now on (its
  // subscriptions go at once), but ends only once the socket has had
  // nothing left to read in a later drain: ZeroMQ hands over what the
  // connection sent before it closed (a burst, then BYE) after reporting
  // the close, and that must still be handled in this session. Meanwhile
  // new connections wait at the handshake (AdmitConnection), so none can
  // reuse the closed one's fd or routing id before the session is gone.
  void StartClosing(Router::ClientHandle c) {
    Session& s = sessions_[c];
    s.closing = true;
    s.closing_cycle = drain_cycle_;
    s.closing_ms = now_ms_;
    router_.DropSubscriptions(c);
    sub_chains_.RemoveClient(c);
    // Its explicit-ack consumers stay until the session ends (EndSession):
    // ACKs it sent before closing are still to be read, and releasing now
    // would redeliver what it had acknowledged.
    closing_.push_back(c);
  }

  // Ends closing sessions noted before the current drain, and (from
  // housekeeping, when the socket is never empty under load) those noted
  // more than a second ago. Sends nothing.
  void FinishClosing(bool only_old = false) {
    std::vector<Router::ClientHandle> still;
    for (Router::ClientHandle c : closing_) {
      if (!router_.IsLive(c) || !sessions_[c].closing) continue;
      const Session& s = sessions_[c];
      if (only_old ? now_ms_ - s.closing_ms > kHousekeepingIntervalMs
                   : s.closing_cycle < drain_cycle_) {
        EndSession(c, "connection closed");
      } else {
        still.push_back(c);
      }
    }
    closing_.swap(still);
  }

  // Admits connections while those that have sent something plus those
  // admitted and silent so far stay below MaxConnections(). (Counting all
  // open connections instead would refuse a whole burst that arrives
  // together, again on every retry: the ones waiting for an answer count.)
  PeerGuard::Admission AdmitConnection() {
    if (!closing_.empty()) return PeerGuard::Admission::kWait;
    const size_t max = MaxConnections();
    if (spoken_ + admitted_silent_ < max) {
      ++admitted_silent_;
      return PeerGuard::Admission::kAdmit;
    }
    ++connections_refused_;
    if (refusal_log_limiter_.Allow(now_ms_)) {
      Log(LogLevel::kWarn, "connection refused: too many connections",
          {{"connections", spoken_ + admitted_silent_},
           {"max_connections", max},
           {"refused_total", connections_refused_},
           {"suppressed", refusal_log_limiter_.TakeSuppressed()}});
    }
    return PeerGuard::Admission::kRefuse;
  }

  // The first message from a tcp/ipc connection: it was admitted, and now
  // counts as a connection that spoke until it closes.
  void NoteFirstMessage(int fd) {
    if (spoke_.size() <= static_cast<size_t>(fd)) spoke_.resize(fd + 1, 0);
    spoke_[fd] = 1;
    ++spoken_;
    if (admitted_silent_ > 0) --admitted_silent_;
  }

  // tcp:// and ipc:// connections admitted at once: max_clients, and no
  // more than the file-descriptor limit allows (read now: it may change).
  size_t MaxConnections() const {
    return std::min<size_t>(config_.max_clients, FdCapacity());
  }

  // Tells clients that lost deliveries, once they have caught up (their
  // queue below half the bound), how many they lost since the last notice.
  void NotifySlowConsumers() {
    const int64_t low_water =
        static_cast<int64_t>(config_.max_pending_bytes_per_client / 2);
    for (Router::ClientHandle c = 0; c < sessions_.size(); ++c) {
      Session& s = sessions_[c];
      if (!router_.IsLive(c) || s.slow_drops_unreported == 0 ||
          s.account->pending_bytes() > low_water) {
        continue;
      }
      wire::Header notice;
      wire::Error* e = notice.mutable_error();
      e->set_code(wire::SLOW_CONSUMER);
      e->set_dropped(s.slow_drops_unreported);
      e->set_message(absl::StrCat(
          s.slow_drops_unreported,
          " deliveries or replies to this client were dropped: it did not "
          "read fast enough (more than max_pending_bytes_per_client, ",
          config_.max_pending_bytes_per_client,
          " bytes, or a subscription's own slow.max_pending_bytes, waited "
          "for it, or its share of the broker's max_pending_bytes, ",
          config_.max_pending_bytes, ", when that was full)"));
      // The notice waits, count kept, while the client is still behind in
      // any way (ZeroMQ's high-water mark, its share of the broker-wide
      // bound): it is never dropped, so no loss goes untold.
      FlushSession(c);
      const std::string bytes = protocol::EncodeHeader(notice);
      if (!Fits(s, bytes.size()) || SendRoutingId(s.routing_id) != 0) {
        continue;
      }
      zmq_msg_t part;
      InitAccountedCopy(&part, bytes, s.account);
      zmq_msg_send(&part, socket_, ZMQ_DONTWAIT);
      s.slow_drops_unreported = 0;
      router_.RecordErrorSent();
    }
  }

  // Messages held for explicit-ack consumers live in MessageArena chunks,
  // which go back to the system as they empty; those kept on the heap
  // (large ones, or while sparse survivors pin chunks) do not: the heap
  // keeps freed memory for reuse (main.cc's M_TRIM_THRESHOLD), and a
  // drained backlog leaves it in pieces no trim at its top returns. So once
  // kTrimAfterHeapKept messages were kept on the heap since the last trim
  // and consumers now hold fewer than kTrimWhenHeld, malloc_trim gives the
  // free pages back (madvise; tens of ms for a heap of hundreds of MB).
  // Housekeeping calls it once a second.
  static constexpr uint64_t kTrimAfterHeapKept = 1000;
  static constexpr size_t kTrimWhenHeld = 64;
  void TrimHeapAfterDrain() {
    const uint64_t on_heap = delivery::StoredMessage::QueuedOnHeap();
    if (on_heap - heap_kept_at_trim_ < kTrimAfterHeapKept) return;
    const size_t held =
        deliveries_.in_flight() + deliveries_.queued() + deliveries_.delayed();
    if (held >= kTrimWhenHeld) return;
    malloc_trim(0);
    Log(LogLevel::kInfo, "gave freed heap memory back after a drain",
        {{"kept_on_heap", on_heap - heap_kept_at_trim_}, {"held_now", held}});
    heap_kept_at_trim_ = on_heap;
  }

  void Housekeeping() {
    if (log_limiter_.suppressed() > 0 &&
        log_limiter_.Allow(now_ms_, /*count_if_denied=*/false)) {
      Log(LogLevel::kWarn, "client errors not logged (rate limit)",
          {{"suppressed", log_limiter_.TakeSuppressed()}});
    }
    if (session_log_limiter_.suppressed() > 0 &&
        session_log_limiter_.Allow(now_ms_, /*count_if_denied=*/false)) {
      Log(LogLevel::kInfo, "session lines not logged (rate limit)",
          {{"suppressed", session_log_limiter_.TakeSuppressed()}});
    }
    NotifySlowConsumers();
    TrimHeapAfterDrain();
    if (!closing_.empty()) FinishClosing(/*only_old=*/true);
    // Admitted connections that closed before sending anything no longer
    // count.
    admitted_silent_ = std::min(
        admitted_silent_,
        guard_->connections() > spoken_ ? guard_->connections() - spoken_ : 0);
    if (config_.client_timeout_ms == 0) return;
    for (Router::ClientHandle c = 0; c < sessions_.size(); ++c) {
      if (router_.IsLive(c) && !sessions_[c].internal &&
          now_ms_ - sessions_[c].last_seen_ms >
              static_cast<int64_t>(config_.client_timeout_ms)) {
        EndSession(c, "timeout");
      }
    }
  }

  // TrimHeapAfterDrain's: StoredMessage::QueuedOnHeap() at the last trim.
  uint64_t heap_kept_at_trim_ = 0;

  const Config config_;
  void* const context_;
  void* socket_ = nullptr;
  int wake_fd_ = -1;
  std::vector<std::string> endpoints_;

  Router router_;
  protocol::HeaderDecoder decoder_;
  wire::Header reply_;  // scratch for the OKs of the hot paths
  LogLimiter log_limiter_{/*per_window=*/50, /*window_ms=*/10000};

  // Sessions by Router::ClientHandle, and the reverse index.
  std::vector<Session> sessions_;
  absl::flat_hash_map<std::string, Router::ClientHandle> by_routing_id_;
  std::vector<Router::ClientHandle> gone_;
  std::vector<Router::ClientHandle> dirty_;  // sessions with a pending BATCH
  // Sessions by the fd of their connection (kNone: none).
  static constexpr Router::ClientHandle kNone = ~Router::ClientHandle{0};
  std::vector<Router::ClientHandle> by_fd_;
  std::unique_ptr<PeerGuard> guard_;
  const size_t max_frame0_bytes_ = MaxFrame0Bytes(config_);
  // Bytes handed to ZeroMQ for all clients and not yet written. Frames may
  // outlive the Loop (ZeroMQ lingers), so it is reference-counted.
  OutputAccount* const all_output_ = OutputAccount::New(nullptr);
  uint64_t accept_failures_ = 0;
  // tcp/ipc connections: by fd, whether one has sent a message since it was
  // accepted; how many have; how many were admitted and have not yet.
  std::vector<uint8_t> spoke_;
  size_t spoken_ = 0;
  size_t admitted_silent_ = 0;
  uint64_t connections_refused_ = 0;
  // Sessions whose connection closed, ending at a later drain.
  std::vector<Router::ClientHandle> closing_;
  uint64_t drain_cycle_ = 0;
  // Session start and end lines: a client that says HELLO in a loop must not
  // flood the log either.
  LogLimiter session_log_limiter_{/*per_window=*/200, /*window_ms=*/10000};
  LogLimiter refusal_log_limiter_{/*per_window=*/1, /*window_ms=*/10000};
  LogLimiter accept_log_limiter_{/*per_window=*/1, /*window_ms=*/10000};

  // Reused per message, so the hot path allocates nothing of its own.
  ZmqMsg id_, header_, payload_, extra_;
  std::vector<Router::Target> targets_;
  // Header entries of a PUB that protobuf decoded (the slow path),
  // re-encoded for the PubView.
  std::string headers_scratch_;

  // Plugins: the current set (never null once Run starts), one handed over
  // by Reload() and not yet taken, the RELOAD command's source of new sets,
  // and the chains subscriptions asked for.
  std::unique_ptr<plugin::PluginSet> plugins_;
  absl::Mutex reload_mu_;
  std::unique_ptr<plugin::PluginSet> pending_plugins_
      ABSL_GUARDED_BY(reload_mu_);
  Reloader reloader_;
  plugin::SubscriptionChains sub_chains_;
  // At-least-once delivery (broker/delivery): explicit-ack subscriptions,
  // what they hold in flight, and the Sends and dead letters to make.
  delivery::Deliveries deliveries_;
  // Slow-consumer policies of subscriptions that set one (SUB.slow), the
  // deliveries held for DROP_OLDEST subscriptions, in order, and clients to
  // disconnect (DISCONNECT) once the current message is handled.
  absl::flat_hash_map<std::pair<Router::ClientHandle, uint64_t>, SlowSettings>
      slow_;
  std::map<std::pair<Router::ClientHandle, uint64_t>, HeldQueue> held_;
  std::vector<Router::ClientHandle> slow_disconnects_;
  bool flushing_held_ = false;
  // Recurring schedules (null without [[schedules]]) and each one's
  // encoded headers.
  std::unique_ptr<delivery::ScheduleTimer> schedules_;
  std::vector<std::string> schedule_headers_;
  // Durable streams (null without data_dir), the stream definitions of the
  // config file, what the publish being routed did there, and the poll set.
  std::vector<streams::StreamSettings> stream_settings_;
  std::unique_ptr<streams::StreamManager> streams_;
  streams::Capture capture_;
  // The last held-store write of the publish being handled (a retained
  // value or a delayed message of a stream topic): its confirm waits for it.
  std::pair<std::string, uint64_t> held_ticket_;
  // Delayed messages kept with a stream: (stream, key) to forget when due.
  absl::flat_hash_map<const delivery::StoredMessage*,
                      std::pair<std::string, std::string>>
      held_delayed_;
  std::vector<pollfd> pollfds_;
  std::vector<streams::StreamSend> stream_sends_;
  std::vector<streams::StreamAnswer> stream_answers_;
  // STREAM_ADD replies waiting for the held writes the command started
  // (AnswerWhenSaved), by (client, request id).
  absl::flat_hash_map<std::pair<Router::ClientHandle, uint64_t>, wire::Header>
      deferred_stream_replies_;
  std::vector<delivery::Send> ack_sends_;
  std::vector<delivery::DeadLetter> ack_dead_;
  // Emptied vectors of SendAckDeliveries, kept for their storage.
  std::vector<std::vector<delivery::Send>> spare_sends_;
  std::vector<std::vector<delivery::DeadLetter>> spare_dead_;
  bool deliveries_idle_ = true;  // no timers to watch
  // Declared queues: the internal client holding their placeholder
  // members, and which (group, pattern) pairs it holds.
  Router::ClientHandle declared_client_ = kNone;
  uint64_t declared_sids_ = 0;
  absl::flat_hash_map<std::string, delivery::AckPolicy> declared_;
  store::RetainedStore retained_{config_.max_retained,
                                 config_.max_retained_bytes};
  delivery::ScheduledMessages scheduled_{config_.max_delayed,
                                         config_.max_delayed_bytes};
  // Set while SendRetained delivers: DELIVERs made meanwhile are marked
  // retained (whatever path, chain or ack tracking, they take).
  bool delivering_retained_ = false;
  // Set while a PUB with retain is routed: what it becomes is retained; a
  // refusal waits in retain_error_ for the publisher's answer.
  bool retain_current_ = false;
  absl::Status retain_error_;
  // Set when a work queue this PUB went to was full (dead-lettered there).
  bool publish_queue_full_ = false;
  std::vector<plugin::OutMessage> chain_out_;  // reused
  std::atomic<bool> shutdown_{false};

  int64_t started_ms_ = 0;
  int64_t now_ms_ = 0;
  // Unix ms minus loop ms (WallOffsetMs); changed only by a wall-clock
  // step; unset until first needed.
  std::optional<int64_t> wall_offset_ms_;
  std::vector<uint64_t> ack_ids_;  // HandleAckFast's, reused
  // RecordUnixMs: while HandleBatch routes a BATCH's entries, the clock
  // read for them (0: not yet).
  bool in_batch_ = false;
  int64_t batch_unix_ms_ = 0;
  uint32_t batch_entries_ = 0;  // of the BATCH HandleMessage just routed
  IpcSocketFiles ipc_files_;    // of the ipc:// endpoints bound
  // Spare chunks for the messages Deliveries holds, faulted in off this
  // thread (MessageArena::Warmer): half of what the arena keeps (8 MiB),
  // the other half left for chunks that empty during a burst.
  delivery::MessageArena::Warmer arena_warmer_{
      delivery::MessageArena::kMaxSpareChunks / 2};
};

absl::StatusOr<std::unique_ptr<Server>> Server::Create(
    const Config& config, void* zmq_context,
    std::unique_ptr<plugin::PluginSet> plugins,
    std::vector<streams::StreamSettings> streams,
    std::vector<delivery::Schedule> schedules) {
  if (plugins == nullptr) {
    auto empty = plugin::PluginSet::Build({}, LimitsFrom(config).topic, nullptr);
    if (!empty.ok()) return empty.status();
    plugins = *std::move(empty);
  }
  auto loop = std::make_unique<Loop>(config, zmq_context, std::move(plugins),
                                     std::move(streams), std::move(schedules));
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
void Server::Reload(std::unique_ptr<plugin::PluginSet> plugins) {
  loop_->Reload(std::move(plugins));
}
void Server::SetReloader(Reloader reloader) {
  loop_->SetReloader(std::move(reloader));
}

}  // namespace sift
