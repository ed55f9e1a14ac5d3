#include "clients/cpp/client.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <future>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "broker/base/absl_view.h"
#include "broker/protocol/batch.h"
#include "broker/protocol/codec.h"
#include "broker/protocol/frame_limits.h"
#include "broker/protocol/headers.h"
#include "broker/topic/topic.h"
#include "clients/cpp/endpoint.h"
#include "clients/cpp/fast_mutex.h"
#include "clients/cpp/stream_wire.h"
#include "clients/cpp/subscription_queue.h"

namespace sift {

class ClientCore;

namespace {

// A timeout as std::future::wait_for takes it. That adds it to
// steady_clock::now() in int64 nanoseconds, so a timeout near that range
// (absl::InfiniteDuration(), or 2562048h: ToChronoNanoseconds saturates)
// overflowed and the wait ended at once, as if timed out. Capped at 100
// years, which is as good as forever; a negative one is 0.
std::chrono::nanoseconds WaitSpan(absl::Duration timeout) {
  constexpr absl::Duration kForever = absl::Hours(24 * 365 * 100);
  return absl::ToChronoNanoseconds(
      std::clamp(timeout, absl::ZeroDuration(), kForever));
}

// Client-side batching (see Batch in proto/sift.proto): Publish appends to
// the open batch at the back of the outbox, and the I/O thread sends what has
// accumulated as soon as it can, so batches form only while it is busy and a
// lone message is never held back. Run bench/run_matrix.sh before changing.
constexpr size_t kFlushBatchBytes = 64 * 1024;
constexpr size_t kBatchPayloadLimit = 16 * 1024;
// ZeroMQ's reconnect backoff (ZMQ_RECONNECT_IVL, _MAX): the wait before the
// first retry, doubling up to the maximum. A HELLO that the broker refuses
// for lack of room is retried with the same (ClientCore::RetryHelloLater).
constexpr int kReconnectIvlMs = 100;
constexpr int kReconnectIvlMaxMs = 1000;
// A publish that finds nothing queued and follows the previous one by more
// than this is sent by the calling thread itself, saving the hand-off to the
// I/O thread (one thread wake-up of latency). Faster publishers go through
// the I/O thread, where their messages batch. See BENCHMARKS.md, latency.
constexpr int64_t kDirectSendGapNs = 20000;

// For the I/O loop's timers (pings, the close budget), where a few
// milliseconds of granularity are fine: the coarse clock costs a fraction of
// the precise one, and the loop reads it on every turn.
int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// last_publish_ns_ after a publish that was queued behind others: it reads
// as "just now" to the next publish, so a burst keeps batching without a
// clock read per message.
constexpr int64_t kInBurst = std::numeric_limits<int64_t>::max();

// A zmq_msg_t that closes itself; movable.
class Frame {
 public:
  Frame() { zmq_msg_init(&msg_); }
  Frame(const void* data, size_t size) {
    zmq_msg_init_size(&msg_, size);
    if (size > 0) std::memcpy(zmq_msg_data(&msg_), data, size);
  }
  // An uninitialized frame of `size` bytes, to be written in place.
  static Frame OfSize(size_t size) {
    Frame f;
    zmq_msg_close(&f.msg_);
    zmq_msg_init_size(&f.msg_, size);
    return f;
  }
  // Takes ownership of *body without copying.
  explicit Frame(std::unique_ptr<std::string> body) {
    std::string* raw = body.release();
    zmq_msg_init_data(
        &msg_, raw->data(), raw->size(),
        [](void*, void* hint) { delete static_cast<std::string*>(hint); },
        raw);
  }
  ~Frame() { zmq_msg_close(&msg_); }
  Frame(Frame&& other) noexcept {
    zmq_msg_init(&msg_);
    zmq_msg_move(&msg_, &other.msg_);
  }
  Frame& operator=(Frame&& other) noexcept {
    zmq_msg_move(&msg_, &other.msg_);
    return *this;
  }
  zmq_msg_t* get() { return &msg_; }
  const char* data() const {
    return static_cast<const char*>(zmq_msg_data(const_cast<zmq_msg_t*>(&msg_)));
  }
  char* mutable_data() { return static_cast<char*>(zmq_msg_data(&msg_)); }
  size_t size() const { return zmq_msg_size(const_cast<zmq_msg_t*>(&msg_)); }
  std::string_view view() const { return std::string_view(data(), size()); }

 private:
  zmq_msg_t msg_;
};

// The header frame of a PUB.
// `headers`: encoded header entries (broker/protocol/headers.h), or empty.
Frame PubHeader(uint64_t request_id, std::string_view topic,
                std::string_view reply_to, bool confirm,
                std::string_view headers) {
  Frame header = Frame::OfSize(
      protocol::PubSize(request_id, topic, reply_to, confirm, headers));
  protocol::EncodePub(request_id, topic, reply_to, confirm, headers,
                      header.mutable_data());
  return header;
}

// One item the I/O thread must send: a message of its own (header frame,
// optional payload frame) or a batch of PUBs (body only).
// Most delivery ids one ACK command carries (about 10 bytes each).
constexpr size_t kMaxAckIdsPerAck = 4096;

struct Outgoing {
  Frame header;
  Frame payload;
  bool has_payload = false;
  // An ACK whose header is built when it is sent: consecutive Ack() calls
  // add their ids to it (one ACK command for many deliveries).
  std::vector<uint64_t> ack_ids;
  std::unique_ptr<std::string> batch;
  uint32_t batch_count = 0;
  // An ACK, NACK or PROGRESS: the session whose delivery ids it names (not
  // sent in a later one); 0 for anything else.
  uint64_t session = 0;
  // The request id of a message of its own (0: none, and for a batch, whose
  // PUBs carry theirs): a caller may wait for its answer (AckSync, a
  // confirmed publish, Call...), and a session that ends leaves such a
  // caller waiting only while this is still queued.
  uint64_t request_id = 0;
  size_t messages() const { return batch ? batch_count : 1; }
};

using Reply = absl::StatusOr<wire::Header>;

// Unavailable, for a call whose request went to a session that ended before
// the broker answered (the connection dropped, or the broker lost the
// session): the answer cannot come, since a restarted broker knows nothing
// of the request. `outcome` says what became of the request.
absl::Status LostAnswer(std::string_view outcome) {
  return absl::UnavailableError(
      absl::StrCat("the connection to the broker was lost before it answered; ",
                   AV(outcome)));
}
constexpr char kMayHaveRun[] =
    "the request may or may not have been carried out";
constexpr char kMayHaveStored[] =
    "the message may or may not have been routed or stored";

// ClientOptions::reconnect false: the cause of the client's end when its
// connection drops (ClientCore::Die), with which every Unavailable it gives
// from then on starts.
constexpr char kLostConnectionNoReconnect[] =
    "lost the connection to the broker (ClientOptions::reconnect is false)";

// The ZeroMQ context of the Clients given none (ClientOptions::zmq_context):
// one per process, as the ZeroMQ guide advises, so they share its one I/O
// thread (each Client still has its own socket and thread). Made on first
// use and never terminated (a Client closes only its own sockets); a child
// after fork() makes its own, since a context does not survive a fork.
void* ProcessContext() {
  static std::mutex mu;
  static void* context = nullptr;  // guarded by mu
  static pid_t owner = 0;          // guarded by mu
  std::lock_guard<std::mutex> lock(mu);
  if (context == nullptr || owner != getpid()) {
    context = zmq_ctx_new();
    if (context != nullptr) {
      // Each Client takes three sockets (its DEALER and a monitor pair):
      // allow as many as ZeroMQ can, not its default 1023.
      zmq_ctx_set(context, ZMQ_MAX_SOCKETS,
                  zmq_ctx_get(context, ZMQ_SOCKET_LIMIT));
    }
    owner = getpid();
  }
  return context;
}

// The ClientCore whose I/O thread this is (null on other threads).
thread_local const ClientCore* io_thread_core = nullptr;

std::string NextMonitorName() {
  static std::atomic<uint64_t> counter{0};
  return absl::StrCat("inproc://sift-client-monitor-", getpid(), "-",
                      counter.fetch_add(1));
}

}  // namespace

// ClientCore holds what the public objects share with the I/O thread. User
// threads talk to the I/O thread through outbox_ (under mu_) and an eventfd.
// The DEALER socket is used by the I/O thread and, for direct publishes, by
// user threads, always under sock_mu_: a deliberate exception to "one socket,
// one thread" (STYLE.md), serialized by the mutex as ZeroMQ requires, that
// saves a thread hand-off per low-rate publish. The monitor socket is the
// I/O thread's alone. The I/O thread holds a reference to its ClientCore
// while it runs, so a Client closed or destroyed inside one of its own
// callbacks is freed by that thread once it stops.
class ClientCore : public std::enable_shared_from_this<ClientCore> {
 public:
  explicit ClientCore(ClientOptions options) : options_(std::move(options)) {}

  // No deadline: next_confirm_deadline_ms_ when no confirm awaits.
  static constexpr int64_t kNoDeadline = std::numeric_limits<int64_t>::max();
  struct AsyncConfirm {
    PublishDone done;
    int64_t deadline_ms;  // when it fails with DeadlineExceeded
  };

  // A Request() awaiting its reply (requests_).
  using RequestPromise = std::promise<absl::StatusOr<Message>>;

  // What a call waiting in waiters_ asked for, which decides what it gets
  // if its session ends unanswered (TakeEndedLocked).
  enum class Asked : uint8_t {
    kAnswer,       // Unavailable: may or may not have been carried out
    kPublish,      // Unavailable: may or may not have been routed or stored
    kSubscribe,    // Unavailable; the subscription is dropped, not resent
    kUnsubscribe,  // done: the next session does not hold the subscription
  };
  // A call waiting for the broker's answer to its request.
  struct Waiter {
    std::promise<Reply> promise;
    Asked asked = Asked::kAnswer;
    uint64_t sid = 0;  // kSubscribe: the subscription's sid
  };
  // Who waits for a confirmed publish's answer: registered by Publish()
  // under mu_ in the critical section that sends or queues the PUB, so a
  // session that ends finds the caller's PUB either sent or queued, never
  // in between. One of the two is set.
  struct ConfirmWaiter {
    Waiter* sync = nullptr;         // PublishConfirmed
    AsyncConfirm* async = nullptr;  // PublishConfirmedAsync
    // Out: the async confirm's deadline is now the earliest (wake the I/O
    // thread, which may sleep past it otherwise).
    bool earliest = false;
  };

  ~ClientCore() {
    Close();
    // The I/O thread's own reference was the last: this runs at its end,
    // on it, and a thread cannot join itself.
    if (io_thread_.joinable()) io_thread_.detach();
    if (wake_fd_ >= 0) close(wake_fd_);
  }

  // Creates the sockets, starts the I/O thread and waits for WELCOME.
  absl::Status Start() {
    options_.ping_interval =
        std::max(options_.ping_interval, absl::Milliseconds(10));
    spin_ns_ =
        std::max<int64_t>(0, absl::ToInt64Nanoseconds(options_.idle_spin));
    context_ = options_.zmq_context != nullptr ? options_.zmq_context
                                               : ProcessContext();
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    socket_ = context_ == nullptr ? nullptr : zmq_socket(context_, ZMQ_DEALER);
    if (socket_ == nullptr || wake_fd_ < 0) {
      return absl::InternalError(
          absl::StrCat("cannot create socket: ", zmq_strerror(zmq_errno())));
    }
    const int hwm = 1000000;
    const int linger = 0;
    const int heartbeat_ivl = 1000, heartbeat_timeout = 3000;
    const int reconnect_ivl = kReconnectIvlMs,
              reconnect_max = kReconnectIvlMaxMs;
    zmq_setsockopt(socket_, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(socket_, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(socket_, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(socket_, ZMQ_HEARTBEAT_IVL, &heartbeat_ivl,
                   sizeof(heartbeat_ivl));
    zmq_setsockopt(socket_, ZMQ_HEARTBEAT_TIMEOUT, &heartbeat_timeout,
                   sizeof(heartbeat_timeout));
    zmq_setsockopt(socket_, ZMQ_RECONNECT_IVL, &reconnect_ivl,
                   sizeof(reconnect_ivl));
    zmq_setsockopt(socket_, ZMQ_RECONNECT_IVL_MAX, &reconnect_max,
                   sizeof(reconnect_max));
    // A connection the broker refused for lack of room (docs/protocol.md
    // §1) is given up after this and retried, not after libzmq's 30 s.
    const int handshake_ivl = 3000;
    zmq_setsockopt(socket_, ZMQ_HANDSHAKE_IVL, &handshake_ivl,
                   sizeof(handshake_ivl));
    const std::string monitor_name = NextMonitorName();
    if (zmq_socket_monitor(socket_, monitor_name.c_str(),
                           ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) ==
        0) {
      monitor_ = zmq_socket(context_, ZMQ_PAIR);
      if (monitor_ != nullptr &&
          zmq_connect(monitor_, monitor_name.c_str()) != 0) {
        zmq_close(monitor_);
        monitor_ = nullptr;
      }
    }
    std::string problem = internal::EndpointProblem(options_.endpoint);
    if (problem.empty() &&
        zmq_connect(socket_, options_.endpoint.c_str()) != 0) {
      problem = zmq_strerror(zmq_errno());
    }
    if (!problem.empty()) {
      CloseSockets();
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot connect to \"", options_.endpoint, "\": ", problem,
          " (endpoints look like tcp://127.0.0.1:7440",
          options_.zmq_context != nullptr ? ", ipc:///path or inproc://name)"
                                          : " or ipc:///path)"));
    }
    if (monitor_ != nullptr) {
      size_t monitor_fd_size = sizeof(monitor_fd_);
      zmq_getsockopt(monitor_, ZMQ_FD, &monitor_fd_, &monitor_fd_size);
    }
    size_t fd_size = sizeof(zmq_fd_);
    if (zmq_getsockopt(socket_, ZMQ_FD, &zmq_fd_, &fd_size) != 0) {
      const int err = zmq_errno();
      CloseSockets();
      return absl::InternalError(
          absl::StrCat("cannot get the socket's fd: ", zmq_strerror(err)));
    }
    uint64_t hello_id;
    std::future<Reply> welcome;
    {
      internal::FastMutexLock lock(&mu_);
      hello_id = hello_id_ = NextId();
      welcome = waiters_[hello_id].promise.get_future();
    }
    SendHello(hello_id);  // before the I/O thread exists, which owns it next
    io_thread_ = std::thread([this, self = shared_from_this()] {
      pthread_setname_np(pthread_self(), "sift-client");  // for top -H, perf
      io_thread_core = this;
      IoLoop();
      bool in_callback;
      {
        internal::FastMutexLock lock(&mu_);
        in_callback = closed_in_callback_;
      }
      // Closed from a callback (Close() could not wait for this thread):
      // finish here. Otherwise Close() does, after joining.
      if (in_callback) FinishClose();
    });

    auto ready = WaitFor(std::move(welcome), hello_id, options_.connect_timeout);
    if (!ready.ok()) {
      Close();
      if (absl::IsDeadlineExceeded(ready.status())) {
        internal::FastMutexLock lock(&mu_);
        if (!hello_refused_.ok()) {
          // The HELLOs answered were all refused for now (RetryHelloLater).
          const wire::ErrorCode code = protocol::WireCodeOf(hello_refused_);
          return protocol::WireError(
              code,
              absl::StrCat("the broker refused a session ",
                           code == wire::TOO_MANY_CLIENTS
                               ? "for lack of room"
                               : "after a failure of its own",
                           " throughout the connect timeout of ",
                           absl::FormatDuration(options_.connect_timeout),
                           " (", hello_refusals_,
                           " HELLOs, said again with backoff): ",
                           hello_refused_.message()));
        }
        std::string hint = " (is siftd running there?)";
        if (absl::StartsWith(options_.endpoint, "inproc://") &&
            options_.zmq_context == nullptr) {
          hint =
              " (an inproc:// endpoint is reached only through the embedded "
              "broker's context: set ClientOptions::zmq_context to "
              "EmbeddedBroker::zmq_context())";
        } else if (std::string silence =
                       internal::SilenceHint(options_.endpoint);
                   !silence.empty()) {
          hint = absl::StrCat(": ", silence, "; is siftd running there?");
        }
        return absl::DeadlineExceededError(absl::StrCat(
            "cannot connect to ", options_.endpoint, ": no answer within ",
            absl::FormatDuration(options_.connect_timeout), hint));
      }
      return ready.status();
    }
    return absl::OkStatus();
  }

  void Close() {
    const bool in_callback = OnIoThread();
    {
      internal::FastMutexLock lock(&mu_);
      closing_ = true;  // a second Close() just waits for the first
      if (in_callback) closed_in_callback_ = true;
    }
    Wake();
    if (in_callback) {
      // From one of this client's callbacks: the I/O thread flushes, says
      // BYE and stops once the callback returns, then FinishClose()s.
      return;
    }
    internal::FastMutexLock join_lock(&join_mu_);
    if (io_thread_.joinable()) io_thread_.join();
    FinishClose();
  }

  // Whether the caller is this client's I/O thread (one of its callbacks).
  bool OnIoThread() const { return io_thread_core == this; }

  // FailedPrecondition for a call that waits for the broker's answer when
  // made from a callback: the I/O thread running it is the one that would
  // read the answer, so the call could only time out.
  absl::Status NotInCallback(std::string_view call,
                             std::string_view instead = "") const {
    if (!OnIoThread()) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(
        AV(call),
        " waits for the broker's answer, which this client's I/O thread "
        "reads, and a callback runs on that thread: call it from another "
        "thread",
        AV(instead)));
  }

  // After the I/O thread stopped: closes the sockets and fails what still
  // waits (requests, async confirms, subscription queues). Idempotent.
  void FinishClose() {
    CloseSockets();
    // Wake everything still waiting.
    absl::flat_hash_map<uint64_t, Waiter> waiters;
    absl::flat_hash_map<uint64_t, std::shared_ptr<SubTarget>> subs;
    absl::flat_hash_map<uint64_t, AsyncConfirm> confirms;
    absl::flat_hash_map<uint64_t, std::shared_ptr<RequestPromise>> requests;
    {
      internal::FastMutexLock lock(&mu_);
      waiters.swap(waiters_);
      subs.swap(subs_);
      requests.swap(requests_);
      confirms.swap(async_confirms_);
      confirm_deadlines_.clear();
      next_confirm_deadline_ms_.store(kNoDeadline);
    }
    for (auto& [id, waiter] : waiters) {
      waiter.promise.set_value(absl::FailedPreconditionError("client closed"));
    }
    for (auto& [token, request] : requests) {
      request->set_value(absl::FailedPreconditionError("client closed"));
    }
    for (auto& [id, confirm] : confirms) {
      confirm.done(absl::FailedPreconditionError("client closed"),
                   PublishAck{});
    }
    for (auto& [sid, sub] : subs) CloseQueue(sub->queue.get());
  }

  // `headers`: encoded header entries, or empty. `later`: retain or a
  // delay (rare: encoded by protobuf, never batched or sent directly).
  // `waiter`: who waits for a confirmed publish's answer, registered once
  // nothing can refuse the PUB any more (a refusal registers nothing).
  absl::Status Publish(std::string_view topic, std::string_view payload,
                       std::string_view reply_to, uint64_t request_id,
                       bool confirm, std::string_view headers = {},
                       const PublishOptions* later = nullptr,
                       ConfirmWaiter* waiter = nullptr) {
    if (absl::Status s = CheckPublish(topic, payload, reply_to, headers);
        !s.ok()) {
      return s;
    }
    if (later != nullptr && later->delay < absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "PublishOptions.delay is negative (",
          absl::FormatDuration(later->delay), "): zero publishes now"));
    }
    if (later != nullptr &&
        (later->retain || later->delay > absl::ZeroDuration() ||
         later->deliver_at.has_value())) {
      return PublishLater(topic, payload, reply_to, request_id, confirm,
                          headers, *later, waiter);
    }
    bool wake;
    {
      internal::FastMutexLock lock(&mu_);
      if (absl::Status s = CheckQueueLocked(); !s.ok()) return s;
      if (waiter != nullptr) {
        if (absl::Status s = RegisterConfirmLocked(request_id, waiter);
            !s.ok()) {
          return s;
        }
      }
      if (queued_ == 0 && ready_.load(std::memory_order_acquire)) {
        const int64_t now = NowNs();
        const bool direct = last_publish_ns_ != kInBurst &&
                            now - last_publish_ns_ > kDirectSendGapNs;
        last_publish_ns_ = now;
        if (direct &&
            SendDirect(request_id, topic, reply_to, confirm, headers,
                       payload)) {
          return absl::OkStatus();
        }
      } else {
        last_publish_ns_ = kInBurst;
      }
      wake = outbox_.empty();
      if (batching_ && payload.size() <= kBatchPayloadLimit) {
        // Append to the open batch, or open one.
        if (outbox_.empty() || !outbox_.back().batch ||
            outbox_.back().batch->size() >= kFlushBatchBytes) {
          Outgoing out;
          out.batch = std::make_unique<std::string>();
          out.batch->reserve(std::min(kFlushBatchBytes + kBatchPayloadLimit,
                                      size_t{4096} + payload.size()));
          outbox_.push_back(std::move(out));
        }
        Outgoing& batch = outbox_.back();
        protocol::BatchWriter(batch.batch.get())
            .AppendPub(request_id, topic, reply_to, confirm, headers,
                       payload);
        ++batch.batch_count;
      } else {
        Outgoing out;
        out.header = PubHeader(request_id, topic, reply_to, confirm, headers);
        out.payload = Frame(payload.data(), payload.size());
        out.has_payload = true;
        out.request_id = request_id;
        outbox_.push_back(std::move(out));
      }
      ++queued_;
    }
    if (wake) Wake();
    return absl::OkStatus();
  }

  absl::Status PublishLater(std::string_view topic, std::string_view payload,
                            std::string_view reply_to, uint64_t request_id,
                            bool confirm, std::string_view headers,
                            const PublishOptions& later,
                            ConfirmWaiter* waiter) {
    wire::Header h;
    h.set_request_id(request_id);
    wire::Pub* pub = h.mutable_pub();
    pub->set_topic(std::string(topic));
    pub->set_reply_to(std::string(reply_to));
    pub->set_confirm(confirm);
    pub->set_retain(later.retain);
    if (later.delay > absl::ZeroDuration()) {
      pub->set_delay_ms(static_cast<uint64_t>(
          std::max<int64_t>(1, absl::ToInt64Milliseconds(later.delay))));
    }
    if (later.deliver_at.has_value()) {
      pub->set_deliver_at_ms(static_cast<uint64_t>(
          std::max<int64_t>(1, absl::ToUnixMillis(*later.deliver_at))));
    }
    std::string bytes = pub->SerializeAsString();  // fields 1-3, 5-7
    bytes.append(headers.data(), headers.size());  // field 4 entries
    wire::Header outer;
    outer.set_request_id(request_id);
    if (!outer.mutable_pub()->ParseFromString(bytes)) {
      return absl::InternalError("cannot encode PUB");
    }
    Outgoing out;
    const std::string encoded = protocol::EncodeHeader(outer);
    out.header = Frame(encoded.data(), encoded.size());
    out.payload = Frame(payload.data(), payload.size());
    out.has_payload = true;
    out.request_id = request_id;
    bool wake;
    {
      internal::FastMutexLock lock(&mu_);
      if (absl::Status s = CheckQueueLocked(); !s.ok()) return s;
      if (waiter != nullptr) {
        if (absl::Status s = RegisterConfirmLocked(request_id, waiter);
            !s.ok()) {
          return s;
        }
      }
      last_publish_ns_ = kInBurst;
      wake = outbox_.empty();
      outbox_.push_back(std::move(out));
      ++queued_;
    }
    if (wake) Wake();
    return absl::OkStatus();
  }

  // Sends one PUB from the calling thread. False if the socket would block
  // (the caller then queues it). REQUIRES: mu_ held, nothing queued.
  bool SendDirect(uint64_t request_id, std::string_view topic,
                  std::string_view reply_to, bool confirm,
                  std::string_view headers, std::string_view payload)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Frame header = PubHeader(request_id, topic, reply_to, confirm, headers);
    Frame body(payload.data(), payload.size());
    bool input_pending;
    {
      internal::FastMutexLock lock(&sock_mu_);
      if (zmq_msg_send(header.get(), socket_, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        return false;
      }
      zmq_msg_send(body.get(), socket_, ZMQ_DONTWAIT);
      // Sending may consume the edge of the socket's fd that the I/O thread
      // sleeps on: if input is waiting, wake it explicitly.
      input_pending = (SocketEvents() & ZMQ_POLLIN) != 0;
    }
    if (input_pending) Wake();
    return true;
  }

  // `ack`, if not null, gets the OK's stream fields.
  absl::Status PublishConfirmed(std::string_view topic,
                                std::string_view payload,
                                std::string_view headers,
                                absl::Duration timeout,
                                const PublishOptions* later = nullptr,
                                std::string_view reply_to = {},
                                PublishAck* ack = nullptr) {
    if (absl::Status s = NotInCallback("PublishConfirmed",
                                       " (or use PublishConfirmedAsync)");
        !s.ok()) {
      return s;
    }
    const uint64_t id = NextId();
    Waiter waiter;
    waiter.asked = Asked::kPublish;
    std::future<Reply> reply = waiter.promise.get_future();
    ConfirmWaiter confirm{&waiter};
    if (absl::Status s = Publish(topic, payload, reply_to, id, true, headers,
                                 later, &confirm);
        !s.ok()) {
      return s;
    }
    Reply answer = WaitFor(std::move(reply), id, timeout);
    if (!answer.ok()) return answer.status();
    if (ack != nullptr) {
      ack->stream_seq = answer->ok().stream_seq();
      ack->duplicate = answer->ok().duplicate();
    }
    return absl::OkStatus();
  }

  // The answer is matched by request id in AnswerOks or Fulfil
  // (async_confirms_), and timed out by the I/O thread (ExpireConfirms).
  // Publish() adds the entry, with its deadline, in the critical section
  // that sends or queues the PUB, once nothing can refuse it: no answer is
  // missed, and a local refusal never reaches `done`.
  absl::Status PublishConfirmedAsync(std::string_view topic,
                                     std::string_view payload,
                                     std::string_view headers,
                                     const PublishOptions& later,
                                     absl::Duration timeout,
                                     PublishDone done) {
    if (!done) {
      return absl::FailedPreconditionError(
          "PublishConfirmedAsync needs a done callback");
    }
    const uint64_t id = NextId();
    const int64_t ms = absl::ToInt64Milliseconds(timeout);
    const int64_t now = NowMs();
    const int64_t deadline =
        ms >= kNoDeadline - now ? kNoDeadline - 1 : now + std::max<int64_t>(ms, 0);
    AsyncConfirm async{std::move(done), deadline};
    ConfirmWaiter confirm{nullptr, &async};
    if (absl::Status s = Publish(topic, payload, later.reply_to, id, true,
                                 headers, &later, &confirm);
        !s.ok()) {
      return s;  // not registered: `done` is never called
    }
    if (confirm.earliest) Wake();  // the I/O thread may sleep past it otherwise
    return absl::OkStatus();
  }

  // Registers who waits for the answer to confirmed publish `id` (see
  // ConfirmWaiter). ResourceExhausted if ClientOptions::max_async_confirms
  // are awaited already.
  absl::Status RegisterConfirmLocked(uint64_t id, ConfirmWaiter* waiter)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (waiter->sync != nullptr) {
      waiters_.emplace(id, std::move(*waiter->sync));
      return absl::OkStatus();
    }
    if (async_confirms_.size() >= options_.max_async_confirms) {
      return absl::ResourceExhaustedError(absl::StrCat(
          async_confirms_.size(),
          " confirmed publishes already await their answer "
          "(ClientOptions::max_async_confirms); not sent, try again later"));
    }
    const int64_t deadline = waiter->async->deadline_ms;
    async_confirms_.emplace(id, std::move(*waiter->async));
    waiter->earliest = PushConfirmDeadlineLocked(deadline, id);
    return absl::OkStatus();
  }

  // Adds a confirm's deadline to the heap; true if it is now the earliest.
  // Answered confirms leave their entries behind (ExpireConfirms skips
  // them): the heap is rebuilt from async_confirms_ when they are more than
  // half of it, so it stays within twice the confirms awaited (plus 1024).
  bool PushConfirmDeadlineLocked(int64_t deadline, uint64_t id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto& heap = confirm_deadlines_;
    if (heap.size() >= 2 * async_confirms_.size() + 1024) {
      heap.erase(std::remove_if(heap.begin(), heap.end(),
                                [this](const std::pair<int64_t, uint64_t>& e) {
                                  auto it = async_confirms_.find(e.second);
                                  return it == async_confirms_.end() ||
                                         it->second.deadline_ms != e.first;
                                }),
                 heap.end());
      std::make_heap(heap.begin(), heap.end(), std::greater<>());
      UpdateConfirmDeadlineLocked();
    }
    heap.emplace_back(deadline, id);
    std::push_heap(heap.begin(), heap.end(), std::greater<>());
    if (deadline >= next_confirm_deadline_ms_.load(std::memory_order_relaxed)) {
      return false;
    }
    next_confirm_deadline_ms_.store(deadline);
    return true;
  }

  absl::StatusOr<uint64_t> Subscribe(
      std::string_view pattern, const SubscribeOptions& options,
      std::shared_ptr<internal::SubscriptionQueue> queue, bool inbox) {
    if (absl::Status s = NotInCallback("Subscribe"); !s.ok()) return s;
    if (options.ack.has_value()) {
      if (absl::Status s = CheckAckDurations(*options.ack); !s.ok()) return s;
    }
    if (absl::Status s = topic::ValidatePattern(pattern, TopicLimits());
        !s.ok()) {
      return protocol::WireError(wire::INVALID_PATTERN, s.message());
    }
    if (absl::Status s = topic::ValidateQueueGroup(options.queue_group);
        !s.ok()) {
      return protocol::WireError(wire::INVALID_QUEUE_GROUP, s.message());
    }
    const uint64_t sid = NextId();
    const uint64_t id = NextId();
    auto target = std::make_shared<SubTarget>();
    target->pattern = std::string(pattern);
    target->queue_group = options.queue_group;
    target->filter = options.filter;
    target->plugins = options.plugins;
    target->ack = options.ack;
    target->stream = options.stream;
    target->slow = options.slow;
    target->callback = options.callback;
    target->queue = std::move(queue);
    target->inbox = inbox;
    {
      internal::FastMutexLock lock(&mu_);
      if (absl::Status s = CheckLiveLocked(); !s.ok()) return s;
      subs_[sid] = target;
      subs_generation_.fetch_add(1, std::memory_order_release);
    }
    Waiter waiter;
    waiter.asked = Asked::kSubscribe;
    waiter.sid = sid;
    std::future<Reply> reply = waiter.promise.get_future();
    if (absl::Status s = EnqueueHeader(SubHeader(id, sid, *target), 0, &waiter);
        !s.ok()) {
      ForgetSub(sid);
      return s;
    }
    auto answer = WaitFor(std::move(reply), id, options.timeout);
    // DUPLICATE_SID: a resubscription after a reconnect got there first; sids
    // are unique per client, so the broker holds exactly this subscription.
    // Another error, or a session that ended unanswered (Unavailable), has
    // dropped the subscription already (Fulfil, TakeEndedLocked), before a
    // new session could make it again.
    if (!answer.ok() &&
        protocol::WireCodeOf(answer.status()) != wire::DUPLICATE_SID) {
      ForgetSub(sid);
      if (absl::IsDeadlineExceeded(answer.status())) {
        // The broker may take it after all: take it back.
        EnqueueHeader(UnsubHeader(0, sid)).IgnoreError();
      }
      return answer.status();
    }
    return sid;
  }

  // Stops deliveries at once and tells the broker without waiting for it.
  void UnsubscribeNoWait(uint64_t sid) {
    ForgetSub(sid);
    EnqueueHeader(UnsubHeader(0, sid)).IgnoreError();  // fails only if closed
  }

  absl::Status Unsubscribe(uint64_t sid) {
    if (OnIoThread()) {
      // In a callback: the answer could not be read while this waited.
      UnsubscribeNoWait(sid);
      return absl::OkStatus();
    }
    ForgetSub(sid);
    const uint64_t id = NextId();
    Waiter waiter;
    waiter.asked = Asked::kUnsubscribe;
    std::future<Reply> reply = waiter.promise.get_future();
    if (!EnqueueHeader(UnsubHeader(id, sid), 0, &waiter).ok()) {
      // Closed, or the session ended for good (Die): the subscription is
      // gone with it.
      return absl::OkStatus();
    }
    absl::Status s = WaitFor(std::move(reply), id, options_.connect_timeout)
                         .status();
    // The broker no longer holds it (e.g. it restarted and this sid was not
    // resubscribed): that is what was asked for.
    if (protocol::WireCodeOf(s) == wire::UNKNOWN_SID) return absl::OkStatus();
    return s;
  }

  absl::StatusOr<Message> Request(std::string_view topic,
                                  std::string_view payload,
                                  std::string_view headers,
                                  absl::Duration timeout) {
    if (absl::Status s = NotInCallback("Request"); !s.ok()) return s;
    absl::Duration left = timeout;
    if (!ready_.load(std::memory_order_acquire)) {
      // No session (the client is reconnecting): a reply_to made now would
      // name the ended session's inbox. Wait for the next session, whose
      // WELCOME resubscribes the inbox under its new prefix before
      // anything queued goes out.
      const absl::Time start = absl::Now();
      const absl::Status s = AwaitSession(timeout);
      // No session came in time: its PING was taken back (Call).
      if (absl::IsDeadlineExceeded(s) ||
          protocol::WireCodeOf(s) == wire::HELLO_REQUIRED) {
        return absl::DeadlineExceededError(absl::StrCat(
            "no reply to request on \"", AV(topic), "\" within ",
            absl::FormatDuration(timeout),
            ": the client had no session with the broker (reconnecting), "
            "and did not send it"));
      }
      if (!s.ok()) {
        return absl::Status(s.code(),
                            absl::StrCat("request on \"", AV(topic),
                                         "\" not sent (no session with the "
                                         "broker): ",
                                         s.message()));
      }
      left -= absl::Now() - start;
    }
    if (absl::Status s = EnsureInbox(); !s.ok()) return s;
    const uint64_t token = NextId();
    auto promise = std::make_shared<RequestPromise>();
    std::future<absl::StatusOr<Message>> reply = promise->get_future();
    std::string reply_to;
    {
      internal::FastMutexLock lock(&mu_);
      reply_to = absl::StrCat(inbox_prefix_, ".", token);
      requests_[token] = promise;
    }
    if (absl::Status s = Publish(topic, payload, reply_to, 0, false, headers);
        !s.ok()) {
      internal::FastMutexLock lock(&mu_);
      requests_.erase(token);
      return s;
    }
    if (reply.wait_for(WaitSpan(left)) !=
        std::future_status::ready) {
      internal::FastMutexLock lock(&mu_);
      requests_.erase(token);
      return absl::DeadlineExceededError(
          absl::StrCat("no reply to request on \"", AV(topic), "\" within ",
                       absl::FormatDuration(timeout)));
    }
    return reply.get();
  }

  // A duration for a uint32 *_ms field: whole ms rounded up (a positive
  // duration never becomes 0, which the wire reads as "none"), negative as
  // 0, at most 2^32-1.
  static uint32_t ToMs(absl::Duration d) {
    if (d <= absl::ZeroDuration()) return 0;
    const int64_t ms =
        absl::ToInt64Milliseconds(absl::Ceil(d, absl::Milliseconds(1)));
    return static_cast<uint32_t>(std::min<int64_t>(ms, UINT32_MAX));
  }

  // An ACK with a request id, answered once it and every ack before it are
  // processed (Client::AckSync).
  absl::Status AckSync(const Message& m, absl::Duration timeout) {
    if (m.delivery_id() == 0) return SendAck(m, 0, timeout);  // its error
    wire::Header h;
    h.mutable_ack()->add_delivery_ids(m.delivery_id());
    return Call(std::move(h), timeout, m.session_).status();
  }

  // UNKNOWN_DELIVERY for an ACK, NACK or PROGRESS of a delivery made in
  // an earlier session: a restarted broker numbers its deliveries from 1
  // again, so the id would name another (as AMQP's channel-scoped delivery
  // tags: the client must not carry them over).
  static absl::Status StaleDelivery(uint64_t delivery_id) {
    return protocol::WireError(
        wire::UNKNOWN_DELIVERY,
        absl::StrCat("delivery ", delivery_id,
                     " came in an earlier session with the broker (it "
                     "restarted, or the connection was lost since): it can "
                     "no longer be acknowledged; a named stream consumer "
                     "gets it again, and so does a queue group whose broker "
                     "kept running; other deliveries are gone"));
  }

  // ACK, NACK and PROGRESS go out fire-and-forget (request_id 0): the
  // broker answers only an unknown delivery id, with ERROR UNKNOWN_DELIVERY.
  absl::Status SendAck(const Message& m, int kind, absl::Duration delay) {
    if (m.delivery_id() == 0) {
      return absl::FailedPreconditionError(
          "this message came from a subscription without explicit acks "
          "(SubscribeOptions::ack): there is nothing to acknowledge");
    }
    wire::Header h;
    if (kind == 0) return EnqueueAck(m.delivery_id(), m.session_);
    if (kind == 1 &&
        (delay < absl::ZeroDuration() || delay == absl::InfiniteDuration())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Nack delay is ", absl::FormatDuration(delay),
          ": it must be finite and not negative (zero redelivers after the "
          "backoff)"));
    }
    if (kind == 1) {
      h.mutable_nack()->set_delivery_id(m.delivery_id());
      h.mutable_nack()->set_delay_ms(ToMs(delay));
    } else {
      h.mutable_progress()->add_delivery_ids(m.delivery_id());
    }
    return EnqueueHeader(h, m.session_);
  }

  // Sends a request (its request_id is set here) and waits up to `timeout`
  // for the answer: the reply header, or the ERROR as a Status. A request
  // still queued at the timeout, for want of a session, is taken back
  // (Unqueue): Unavailable with wire code HELLO_REQUIRED, not sent.
  // `session`: for an ACK, the session of its delivery (EnqueueHeader).
  Reply Call(wire::Header h, absl::Duration timeout, uint64_t session = 0) {
    if (absl::Status s = NotInCallback("this call"); !s.ok()) return s;
    const uint64_t id = NextId();
    h.set_request_id(id);
    Waiter waiter;
    std::future<Reply> reply = waiter.promise.get_future();
    if (absl::Status s = EnqueueHeader(h, session, &waiter); !s.ok()) {
      return s;
    }
    Reply answer = WaitFor(std::move(reply), id, timeout);
    if (absl::IsDeadlineExceeded(answer.status()) && Unqueue(id)) {
      return protocol::WireError(
          wire::HELLO_REQUIRED,
          absl::StrCat("not sent: the client has no session with the "
                       "broker (it lost the connection or the session, and "
                       "is reconnecting), and none came within ",
                       absl::FormatDuration(timeout),
                       "; taken out of the queue, the request will not be "
                       "sent"));
    }
    return answer;
  }

  // Takes the request with id `id` out of the outbox if it is still there
  // while the client has no session (nothing is sent before the next
  // WELCOME), so that it never goes out. True if it did. Rare (a call
  // that timed out): walks the outbox.
  bool Unqueue(uint64_t id) {
    internal::FastMutexLock lock(&mu_);
    if (ready_.load(std::memory_order_acquire)) return false;
    for (auto it = outbox_.begin(); it != outbox_.end(); ++it) {
      if (it->request_id == id) {
        outbox_.erase(it);
        --queued_;
        return true;
      }
    }
    return false;
  }

  absl::Status Declare(std::string_view pattern, std::string_view group,
                       const AckOptions& ack, absl::Duration timeout) {
    if (absl::Status s = CheckAckDurations(ack); !s.ok()) return s;
    wire::Header h;
    h.mutable_declare()->set_pattern(std::string(pattern));
    h.mutable_declare()->set_queue_group(std::string(group));
    FillAckPolicy(ack, h.mutable_declare()->mutable_ack());
    return Call(std::move(h), timeout).status();
  }

  absl::Status Reload(absl::Duration timeout) {
    wire::Header h;
    h.mutable_reload();
    return Call(std::move(h), timeout).status();
  }

  absl::StatusOr<BrokerStats> Stats(absl::Duration timeout) {
    wire::Header h;
    h.mutable_stats();
    auto answer = Call(std::move(h), timeout);
    if (!answer.ok()) return answer.status();
    return answer->stats_reply();
  }

  // A STREAM request; the StreamInfos of its STREAM_REPLY (none for an OK).
  absl::StatusOr<std::vector<StreamInfo>> StreamCall(wire::Header h,
                                                     absl::Duration timeout) {
    auto answer = Call(std::move(h), timeout);
    if (!answer.ok()) return answer.status();
    std::vector<StreamInfo> streams;
    if (answer->has_stream_reply()) {
      for (const wire::StreamInfo& info : answer->stream_reply().streams()) {
        streams.push_back(internal::FromWire(info));
      }
    }
    return streams;
  }

  // FETCH under a sid of its own, registered like a subscription's so that
  // the I/O thread collects its DELIVERs; they all arrive before the OK
  // that ends the fetch (one socket, in order).
  absl::StatusOr<std::vector<Message>> Fetch(const FetchOptions& options,
                                             absl::Duration timeout) {
    if (options.max_wait < absl::ZeroDuration() ||
        options.max_wait > absl::Hours(1)) {
      return protocol::WireError(
          wire::INVALID_REQUEST,
          absl::StrCat("fetch max_wait is ",
                       absl::FormatDuration(options.max_wait),
                       ": from 0 (answer at once) to 1h, as the broker takes "
                       "it"));
    }
    if (options.ack.has_value()) {
      if (absl::Status s = CheckAckDurations(*options.ack); !s.ok()) return s;
    }
    if (options.batch < 1 || options.batch > 10000) {
      return protocol::WireError(
          wire::INVALID_REQUEST,
          absl::StrCat("fetch batch ", options.batch,
                       " is out of range (1 to 10000)"));
    }
    const uint64_t sid = NextId();
    auto target = std::make_shared<SubTarget>();
    target->pattern = options.pattern;
    target->fetch = std::make_shared<FetchCollector>();
    wire::Header h;
    wire::Fetch* fetch = h.mutable_fetch();
    fetch->set_sid(sid);
    internal::ToWire(options.start, fetch->mutable_start());
    fetch->set_batch(options.batch);
    fetch->set_max_wait_ms(ToMs(options.max_wait));
    fetch->set_pattern(options.pattern);
    if (options.ack.has_value()) FillAckPolicy(*options.ack, fetch->mutable_ack());
    {
      internal::FastMutexLock lock(&mu_);
      if (absl::Status s = CheckLiveLocked(); !s.ok()) return s;
      subs_[sid] = target;
      subs_generation_.fetch_add(1, std::memory_order_release);
    }
    // The broker answers after max_wait at the latest: wait that, plus
    // `timeout` for the answer to come back.
    Reply answer = Call(std::move(h), options.max_wait + timeout);
    ForgetSub(sid);
    if (!answer.ok()) return answer.status();
    internal::FastMutexLock lock(&target->fetch->mu);
    return std::move(target->fetch->messages);
  }

  // The queue for a new subscription without a callback.
  std::shared_ptr<internal::SubscriptionQueue> NewQueue() const {
    return std::make_shared<internal::SubscriptionQueue>(
        options_.subscription_queue_max_messages,
        options_.subscription_queue_max_bytes);
  }

  std::string client_id() const {
    internal::FastMutexLock lock(&mu_);
    return client_id_;
  }
  std::string inbox_prefix() const {
    internal::FastMutexLock lock(&mu_);
    return inbox_prefix_;
  }
  uint64_t reconnects() const { return reconnects_.load(); }
  uint64_t broker_dropped() const { return broker_dropped_.load(); }
  uint64_t max_payload_bytes() const { return max_payload_.load(); }
  uint64_t async_errors() const {
    internal::FastMutexLock lock(&mu_);
    return async_errors_;
  }
  absl::Status last_async_error() const {
    internal::FastMutexLock lock(&mu_);
    return last_async_error_;
  }
  bool FromEarlierSession(const Message& m) const {
    return m.delivery_id() != 0 &&
           m.session_ != session_.load(std::memory_order_relaxed);
  }

 private:
  // Where the DELIVERs of one Fetch() go until its OK.
  struct FetchCollector {
    internal::FastMutex mu;
    std::vector<Message> messages ABSL_GUARDED_BY(mu);
  };

  // A subscription as the client remembers it (to resubscribe after a
  // reconnect) and as the I/O thread delivers to it.
  struct SubTarget {
    std::string pattern;  // the inbox's pattern changes with the session
    std::string queue_group;
    std::string filter;
    std::vector<PluginSpec> plugins;
    std::optional<AckOptions> ack;
    std::optional<StreamStart> stream;
    std::optional<SlowConsumer> slow;
    MessageCallback callback;
    std::shared_ptr<internal::SubscriptionQueue> queue;
    bool inbox = false;  // the client's own request/reply inbox
    // A Fetch() in progress rather than a subscription: never resubscribed.
    std::shared_ptr<FetchCollector> fetch;
    // Stream subscriptions: the newest record delivered, where an ephemeral
    // consumer resumes after a reconnect. The I/O thread's alone.
    mutable uint64_t last_stream_seq = 0;
  };

  uint64_t NextId() { return next_id_.fetch_add(1) + 1; }

  topic::Limits TopicLimits() const {
    return topic::Limits{max_topic_length_.load(), max_topic_tokens_.load()};
  }

  absl::Status CheckPublish(std::string_view topic, std::string_view payload,
                            std::string_view reply_to,
                            std::string_view headers) const {
    if (topic.substr(0, 6) == "$sift.") {
      return protocol::WireError(
          wire::FORBIDDEN,
          "topics under \"$sift.\" are the broker's (dead letters): "
          "subscribe to them, do not publish on them");
    }
    if (absl::Status s = topic::ValidateTopic(topic, TopicLimits()); !s.ok()) {
      return protocol::WireError(wire::INVALID_TOPIC, s.message());
    }
    if (!reply_to.empty()) {
      if (absl::Status s = topic::ValidateTopic(reply_to, TopicLimits());
          !s.ok()) {
        return protocol::WireError(wire::INVALID_TOPIC,
                                   absl::StrCat("reply_to: ", s.message()));
      }
    }
    if (payload.size() > max_payload_.load()) {
      return protocol::WireError(
          wire::PAYLOAD_TOO_LARGE,
          absl::StrCat("payload of ", payload.size(),
                       " bytes exceeds the broker's max_payload_bytes (",
                       max_payload_.load(), ")"));
    }
    if (!headers.empty()) {
      const protocol::HeaderLimits limits{max_headers_.load(),
                                          max_headers_bytes_.load()};
      if (limits.max_count == 0) {
        return absl::FailedPreconditionError(
            "the broker takes no message headers (its WELCOME allows 0: "
            "max_headers is 0, or it predates headers)");
      }
      return protocol::ValidateHeaders(headers, limits);
    }
    return absl::OkStatus();
  }

  absl::Status CheckQueueLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (absl::Status s = CheckLiveLocked(); !s.ok()) return s;
    if (queued_ >= options_.max_pending) {
      return absl::ResourceExhaustedError(absl::StrCat(
          queued_,
          " messages are already waiting to be sent (broker unreachable or "
          "too slow); not queued, try again later"));
    }
    return absl::OkStatus();
  }

  // FailedPrecondition once Close() was called; dead_ (Unavailable) once
  // the client lost its session for good (Die); OK otherwise.
  absl::Status CheckLiveLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (closing_) return absl::FailedPreconditionError("client closed");
    return dead_;
  }

  // For the I/O thread's own PING at Close(), sent at once (SendNow).
  // Callers register theirs as they queue the request (EnqueueHeader,
  // Publish).
  std::future<Reply> AddWaiter(uint64_t id) {
    internal::FastMutexLock lock(&mu_);
    return waiters_[id].promise.get_future();
  }

  void DropWaiter(uint64_t id) {
    internal::FastMutexLock lock(&mu_);
    waiters_.erase(id);
  }

  static void CloseQueue(
      internal::SubscriptionQueue* queue, std::string why = "",
      absl::StatusCode code = absl::StatusCode::kCancelled) {
    if (queue != nullptr) queue->Close(std::move(why), code);
  }

  // `why`: the broker's reason when it ended the subscription (Next() says
  // it), empty when the client did.
  void ForgetSub(uint64_t sid, std::string why = "") {
    std::shared_ptr<SubTarget> sub;
    {
      internal::FastMutexLock lock(&mu_);
      auto it = subs_.find(sid);
      if (it == subs_.end()) return;
      sub = std::move(it->second);
      subs_.erase(it);
      subs_generation_.fetch_add(1, std::memory_order_release);
    }
    CloseQueue(sub->queue.get(), std::move(why));
  }

  Reply WaitFor(std::future<Reply> reply, uint64_t id,
                absl::Duration timeout) {
    if (reply.wait_for(WaitSpan(timeout)) !=
        std::future_status::ready) {
      DropWaiter(id);
      return absl::DeadlineExceededError(absl::StrCat(
          "no answer from the broker within ", absl::FormatDuration(timeout)));
    }
    return reply.get();
  }

  static wire::Header SubHeader(uint64_t request_id, uint64_t sid,
                                const SubTarget& sub) {
    wire::Header h;
    h.set_request_id(request_id);
    h.mutable_sub()->set_sid(sid);
    h.mutable_sub()->set_pattern(sub.pattern);
    h.mutable_sub()->set_queue_group(sub.queue_group);
    h.mutable_sub()->set_filter(sub.filter);
    if (sub.ack.has_value()) {
      FillAckPolicy(*sub.ack, h.mutable_sub()->mutable_ack());
    }
    if (sub.stream.has_value()) {
      StreamStart start = *sub.stream;
      if (start.consumer.empty() && sub.last_stream_seq > 0) {
        // Resubscribing an ephemeral consumer: go on after what came.
        start.deliver = DeliverPolicy::kFromSeq;
        start.start_seq = sub.last_stream_seq + 1;
      }
      internal::ToWire(start, h.mutable_sub()->mutable_stream());
    }
    if (sub.slow.has_value()) {
      static_assert(static_cast<int>(SlowPolicy::kDropNewest) ==
                        wire::DROP_NEWEST &&
                    static_cast<int>(SlowPolicy::kDropOldest) ==
                        wire::DROP_OLDEST &&
                    static_cast<int>(SlowPolicy::kDisconnect) ==
                        wire::DISCONNECT);
      wire::SlowConsumer* slow = h.mutable_sub()->mutable_slow();
      slow->set_policy(static_cast<wire::SlowPolicy>(sub.slow->policy));
      slow->set_max_pending_bytes(sub.slow->max_pending_bytes);
      slow->set_max_pending_msgs(sub.slow->max_pending_msgs);
    }
    for (const PluginSpec& p : sub.plugins) {
      wire::PluginSpec* spec = h.mutable_sub()->add_plugins();
      spec->set_name(p.name);
      for (const auto& [key, value] : p.settings) {
        wire::HeaderField* kv = spec->add_settings();
        kv->set_key(key);
        kv->set_value(value);
      }
    }
    return h;
  }

  // InvalidArgument for an AckOptions duration that is negative or infinite
  // (a caller's mistake the wire could only misread: sent as whole ms).
  static absl::Status CheckAckDurations(const AckOptions& a) {
    const std::pair<const char*, const std::optional<absl::Duration>*>
        fields[] = {{"ack_wait", &a.ack_wait},
                    {"backoff_initial", &a.backoff_initial},
                    {"backoff_max", &a.backoff_max}};
    for (const auto& [name, d] : fields) {
      if (d->has_value() &&
          (**d < absl::ZeroDuration() || **d == absl::InfiniteDuration())) {
        return absl::InvalidArgumentError(
            absl::StrCat("AckOptions.", name, " is ",
                         absl::FormatDuration(**d),
                         ": it must be a finite, non-negative duration"));
      }
    }
    return absl::OkStatus();
  }

  static void FillAckPolicy(const AckOptions& a, wire::AckPolicy* p) {
    if (a.ack_wait) p->set_ack_wait_ms(ToMs(*a.ack_wait));
    if (a.max_deliver) p->set_max_deliver(*a.max_deliver);
    if (a.max_in_flight) p->set_max_in_flight(*a.max_in_flight);
    if (a.backoff_initial) {
      p->set_backoff_initial_ms(ToMs(*a.backoff_initial));
    }
    if (a.backoff_multiplier) p->set_backoff_multiplier(*a.backoff_multiplier);
    if (a.backoff_max) p->set_backoff_max_ms(ToMs(*a.backoff_max));
    if (a.backoff_jitter) p->set_backoff_jitter(*a.backoff_jitter);
    if (a.max_queued) p->set_max_queued(*a.max_queued);
  }


  static wire::Header UnsubHeader(uint64_t request_id, uint64_t sid) {
    wire::Header h;
    h.set_request_id(request_id);
    h.mutable_unsub()->set_sid(sid);
    return h;
  }

  // Waits up to `timeout` until the client has a session: a PING queued
  // while there is none goes out once the next one starts, after its
  // resubscriptions, and is answered in it (Flush()'s errors).
  absl::Status AwaitSession(absl::Duration timeout) {
    wire::Header ping;
    ping.mutable_ping();
    return Call(std::move(ping), timeout).status();
  }

  // Subscribes the client's inbox (once) so Request() can get replies.
  absl::Status EnsureInbox() {
    internal::FastMutexLock inbox_lock(&inbox_mu_);
    if (inbox_sid_ != 0) return absl::OkStatus();
    auto sid = Subscribe(absl::StrCat(AV(inbox_prefix()), ".>"),
                         SubscribeOptions{}, nullptr, /*inbox=*/true);
    if (!sid.ok()) return sid.status();
    inbox_sid_ = *sid;
    return absl::OkStatus();
  }

  // Whether a delivery of `session` may still be acknowledged: it is the
  // current session and has not ended. Once it has (the connection or the
  // session was lost), no ACK of it can ever be applied: the broker ended
  // it, and a new session drops what was queued for it (TakeAcksLocked).
  // mu_ held.
  bool OfOpenSessionLocked(uint64_t session) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return session == session_.load(std::memory_order_relaxed) &&
           session_open_.load();
  }

  // AckSync's answer for an ACK its session could not carry: Unavailable
  // with HELLO_REQUIRED, as any call that found no session (Call).
  static absl::Status AckNotSent() {
    return protocol::WireError(
        wire::HELLO_REQUIRED,
        "not sent: the session its delivery came in has ended (the client "
        "lost the connection or the session, and is reconnecting); the "
        "acknowledgement will not be sent: a delivery id is its session's. "
        "A named stream consumer gets the message again, and so does a "
        "queue group whose broker kept running");
  }

  // Queues an ACK of `id`, joining the ACK at the tail of the outbox if
  // there is one (acks stay in order with everything else the client
  // sends, and the broker parses one ACK per batch of them, not per id).
  // `session`: the session delivery `id` came in (Message::session_);
  // UNKNOWN_DELIVERY if that session has ended (StaleDelivery).
  absl::Status EnqueueAck(uint64_t id, uint64_t session) {
    bool wake;
    {
      internal::FastMutexLock lock(&mu_);
      if (absl::Status s = CheckLiveLocked(); !s.ok()) return s;
      if (!OfOpenSessionLocked(session)) return StaleDelivery(id);
      wake = outbox_.empty();
      if (!outbox_.empty() && !outbox_.back().ack_ids.empty() &&
          outbox_.back().session == session &&
          outbox_.back().ack_ids.size() < kMaxAckIdsPerAck) {
        outbox_.back().ack_ids.push_back(id);
        return absl::OkStatus();  // its wake-up is on its way
      }
      Outgoing out;
      out.ack_ids.push_back(id);
      out.session = session;
      outbox_.push_back(std::move(out));
      ++queued_;
    }
    if (wake) Wake();
    return absl::OkStatus();
  }

  // `session`: nonzero for an ACK, NACK or PROGRESS, the session of the
  // delivery it names (UNKNOWN_DELIVERY if it has ended; see EnqueueAck).
  // `waiter`: the caller waiting for the answer to h.request_id(),
  // registered in the critical section that queues it (so a session that
  // ends finds it either queued or sent), and only if it is queued.
  absl::Status EnqueueHeader(const wire::Header& h, uint64_t session = 0,
                             Waiter* waiter = nullptr) {
    const std::string bytes = protocol::EncodeHeader(h);
    // The broker answers a frame 0 over its bound with BAD_FRAME and
    // request id 0 (it does not parse it), which no caller could be matched
    // to: it would wait out its timeout.
    const size_t bound = protocol::MaxFrame0Bytes(
        max_topic_length_.load(), max_headers_.load(),
        max_headers_bytes_.load());
    if (bytes.size() > bound) {
      return protocol::WireError(
          wire::BAD_FRAME,
          absl::StrCat("the request would be ", bytes.size(),
                       " bytes, over the broker's bound of ", bound,
                       " bytes for frame 0: a name, filter or plugin "
                       "setting in it is too long"));
    }
    bool wake;
    {
      internal::FastMutexLock lock(&mu_);
      if (absl::Status s = CheckLiveLocked(); !s.ok()) return s;
      if (session != 0 && !OfOpenSessionLocked(session)) {
        const uint64_t id = h.has_nack() ? h.nack().delivery_id()
                            : h.has_ack() ? h.ack().delivery_ids(0)
                                          : h.progress().delivery_ids(0);
        // AckSync: as one queued when its session ended (AckNotSent).
        if (waiter != nullptr && session == session_.load()) {
          return AckNotSent();
        }
        return StaleDelivery(id);
      }
      if (waiter != nullptr) {
        waiters_.emplace(h.request_id(), std::move(*waiter));
      }
      wake = outbox_.empty();
      Outgoing out;
      out.session = session;
      out.request_id = h.request_id();
      out.header = Frame(bytes.data(), bytes.size());
      outbox_.push_back(std::move(out));
      ++queued_;
    }
    if (wake) Wake();
    return absl::OkStatus();
  }

  // Wakes the I/O thread to send what was queued. On the I/O thread itself
  // (a callback publishing or acking) only notes it: the loop polls without
  // sleeping next, so a write and a read of wake_fd_ are saved per callback
  // batch.
  void Wake() {
    if (OnIoThread()) {
      woken_on_io_thread_ = true;
      return;
    }
    const uint64_t one = 1;
    ssize_t ignored = write(wake_fd_, &one, sizeof(one));
    (void)ignored;
  }

  // ---- Below: the I/O thread ----

  void SendHello(uint64_t id) {
    wire::Header h;
    h.set_request_id(id);
    h.mutable_hello()->set_protocol_version(wire::PROTOCOL_VERSION_CURRENT);
    h.mutable_hello()->set_client_name(options_.name);
    h.mutable_hello()->set_accepts_batches(true);
    h.mutable_hello()->set_accepts_batched_replies(true);
    SendNow(h);
  }

  // Sends a header-only message at once (control traffic of the I/O thread).
  void SendNow(const wire::Header& h) {
    const std::string bytes = protocol::EncodeHeader(h);
    internal::FastMutexLock lock(&sock_mu_);
    zmq_send(socket_, bytes.data(), bytes.size(), ZMQ_DONTWAIT);
    check_events_ = true;  // sending may consume the fd's signal
  }

  // ZMQ_EVENTS of the socket; also re-arms its fd. REQUIRES: sock_mu_.
  int SocketEvents() ABSL_EXCLUSIVE_LOCKS_REQUIRED(sock_mu_) {
    int events = 0;
    size_t size = sizeof(events);
    zmq_getsockopt(socket_, ZMQ_EVENTS, &events, &size);
    return events;
  }

  // Busy-polling (ClientOptions::idle_spin): polls fds without sleeping
  // for up to spin_ns_, yielding the CPU between polls (a pure spin
  // starved ZeroMQ's I/O threads on 2 shared cores). poll's result: 0 if
  // nothing came.
  int SpinPoll(pollfd* fds, nfds_t n) {
    const int64_t until = NowNs() + spin_ns_;
    while (true) {
      const int rc = poll(fds, n, 0);
      if (rc != 0) return rc;
      sched_yield();
      if (NowNs() >= until) return 0;
    }
  }

  void IoLoop() {
    next_ping_ms_ = NowMs() + absl::ToInt64Milliseconds(options_.ping_interval);
    if (monitor_ != nullptr) ReadMonitor();  // events from before the loop
    bool flushing = false;
    int64_t flush_deadline = 0;
    // Closing: the PING sent once all was handed to ZeroMQ, answered once
    // the broker has read everything before it.
    std::optional<std::future<Reply>> closing_pong;
    while (true) {
      // The loop sleeps on the socket's fd, not in zmq_poll on the socket,
      // so that publishers may send on it meanwhile (under sock_mu_). That
      // fd signals new commands, not messages: after a receive that ended
      // in EAGAIN the next message is sure to signal it, but a send may
      // consume a signal, so after sending look at ZMQ_EVENTS (which costs
      // a system call, hence only then).
      int64_t wait = std::min({next_ping_ms_, next_confirm_deadline_ms_.load(),
                               hello_retry_ms_}) -
                     NowMs();
      if (flushing) wait = std::min<int64_t>(wait, 10);
      if (woken_on_io_thread_) {
        woken_on_io_thread_ = false;
        wait = 0;
      }
      if (check_events_ || !sending_.empty()) {
        int events;
        {
          internal::FastMutexLock lock(&sock_mu_);
          events = SocketEvents();
        }
        check_events_ = false;
        if ((events & ZMQ_POLLIN) != 0 ||
            (ready_ && !sending_.empty() && (events & ZMQ_POLLOUT) != 0)) {
          wait = 0;
        }
      }
      if (wait < 0) wait = 0;
      pollfd fds[3] = {{zmq_fd_, POLLIN, 0},
                       {wake_fd_, POLLIN, 0},
                       {monitor_fd_, POLLIN, 0}};
      const nfds_t nfds = monitor_fd_ >= 0 ? 3 : 2;
      int rc = 0;
      if (wait > 0 && spin_ns_ > 0) rc = SpinPoll(fds, nfds);
      if (rc == 0) rc = poll(fds, nfds, static_cast<int>(wait));
      if (rc < 0 && errno != EINTR) break;
      if (fds[1].revents & POLLIN) {
        uint64_t count;
        ssize_t ignored = read(wake_fd_, &count, sizeof(count));
        (void)ignored;
      }
      // The monitor socket is read to EAGAIN each time, so its fd too
      // signals the next event.
      if (monitor_fd_ >= 0 && (fds[2].revents & POLLIN)) ReadMonitor();
      switch (ReadAll()) {
        case ReadResult::kDrained:
          break;
        case ReadResult::kMore:
          check_events_ = true;  // come straight back for the rest
          break;
        case ReadResult::kEnded:
          return;
      }
      // After reading, so that answers which came before the connection
      // dropped still reach their callers.
      if (end_session_) {
        if (options_.reconnect) {
          EndSession();
        } else {
          Die(kLostConnectionNoReconnect);
        }
      }
      if (ready_ && SendQueued() > 0) check_events_ = true;

      const int64_t now = NowMs();
      if (now >= next_confirm_deadline_ms_.load()) ExpireConfirms(now);
      if (now >= next_ping_ms_) {
        next_ping_ms_ =
            now + absl::ToInt64Milliseconds(options_.ping_interval);
        if (ready_) {
          wire::Header h;
          h.mutable_ping();
          SendNow(h);
        }
      }
      if (now >= hello_retry_ms_) Rehello();
      if (!flushing) {
        internal::FastMutexLock lock(&mu_);
        if (closing_) {
          flushing = true;
          flush_deadline = now + 2000;  // bounded flush of queued messages
        }
      }
      if (flushing) {
        bool empty;
        {
          internal::FastMutexLock lock(&mu_);
          empty = outbox_.empty() && sending_.empty();
        }
        if (empty && ready_ && !closing_pong.has_value()) {
          // The sockets of a shared context are not waited for when they
          // close, nor at exit: before saying BYE, make sure the broker has
          // read what was sent (a PING's PONG comes after it all).
          const uint64_t id = NextId();
          closing_pong = AddWaiter(id);
          wire::Header h;
          h.set_request_id(id);
          h.mutable_ping();
          SendNow(h);
        }
        bool read_by_broker = false;
        if (closing_pong.has_value() &&
            closing_pong->wait_for(std::chrono::seconds(0)) ==
                std::future_status::ready) {
          read_by_broker = closing_pong->get().ok();
          // Not answered (its session ended): ask the next session.
          if (!read_by_broker) closing_pong.reset();
        }
        if (read_by_broker || !ready_ || now >= flush_deadline) {
          if (ready_) {
            wire::Header h;
            h.mutable_bye();
            SendNow(h);
            // What is still in ZeroMQ's pipe (the BYE; everything, if the
            // broker did not answer in time) gets the rest of the flush
            // budget to go out when the socket closes (linger is 0 until
            // now).
            const int linger =
                static_cast<int>(std::max<int64_t>(flush_deadline - now, 0));
            internal::FastMutexLock lock(&sock_mu_);
            zmq_setsockopt(socket_, ZMQ_LINGER, &linger, sizeof(linger));
          }
          break;
        }
      }
    }
  }

  // Moves the outbox into sending_ and sends until the socket would block.
  // Lock order: mu_ before sock_mu_ (SendDirect holds both); here they are
  // taken one after the other, never nested.
  size_t SendQueued() {
    {
      internal::FastMutexLock lock(&mu_);
      for (Outgoing& o : outbox_) sending_.push_back(std::move(o));
      outbox_.clear();
    }
    size_t sent = 0;
    {
      internal::FastMutexLock socket_lock(&sock_mu_);
      while (!sending_.empty()) {
        Outgoing& o = sending_.front();
        const size_t messages = o.messages();  // before the batch is handed off
        if (o.batch) {
          char header[16];
          const size_t n = protocol::EncodeBatchHeader(o.batch_count, header);
          if (zmq_send(socket_, header, n, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0) {
            break;  // EAGAIN: the loop waits for ZMQ_POLLOUT
          }
          Frame body(std::move(o.batch));
          zmq_msg_send(body.get(), socket_, ZMQ_DONTWAIT);
        } else {
          if (!o.ack_ids.empty()) {
            protocol::EncodeAck(o.ack_ids.data(), o.ack_ids.size(),
                                &ack_bytes_);
            o.header = Frame(ack_bytes_.data(), ack_bytes_.size());
            o.ack_ids.clear();
          }
          const int flags = ZMQ_DONTWAIT | (o.has_payload ? ZMQ_SNDMORE : 0);
          if (zmq_msg_send(o.header.get(), socket_, flags) < 0) break;
          if (o.has_payload) {
            zmq_msg_send(o.payload.get(), socket_, ZMQ_DONTWAIT);
          }
        }
        sent += messages;
        sending_.pop_front();
      }
    }
    if (sent > 0) {
      internal::FastMutexLock lock(&mu_);
      queued_ -= sent;
    }
    return sent;
  }

  void ReadMonitor() {
    while (true) {
      Frame event;
      if (zmq_msg_recv(event.get(), monitor_, ZMQ_DONTWAIT) < 0) return;
      uint16_t id = 0;
      if (event.size() >= 2) std::memcpy(&id, event.data(), sizeof(id));
      while (zmq_msg_more(event.get())) {
        Frame rest;
        if (zmq_msg_recv(rest.get(), monitor_, ZMQ_DONTWAIT) < 0) break;
        event = std::move(rest);
      }
      if (id == ZMQ_EVENT_DISCONNECTED) {
        // Without reconnect no HELLO follows: the session's end makes the
        // client end for good (IoLoop, Die).
        if (had_session_ && options_.reconnect) {
          lost_connection_ = true;
          hello_retry_ms_ = kNoDeadline;  // the next CONNECTED says HELLO
        }
        ready_ = false;
        // siftd ends a session whose connection closes (docs/protocol.md
        // §1): what it did not answer, it never will.
        if (session_open_) end_session_ = true;
      } else if (id == ZMQ_EVENT_CONNECTED && lost_connection_) {
        lost_connection_ = false;
        Rehello();
      }
    }
  }

  void Rehello() {
    hello_retry_ms_ = kNoDeadline;
    uint64_t id;
    {
      internal::FastMutexLock lock(&mu_);
      // Under mu_: a direct publish (SendDirect) either went out before
      // the HELLO, in the old session, or sees ready_ false and is queued.
      ready_ = false;
      // The first HELLO's retries keep its request id, whose WELCOME
      // Connect() waits for.
      if (had_session_) hello_id_ = NextId();
      id = hello_id_;
    }
    SendHello(id);
  }

  // One message as received: header frame and optional payload frame.
  struct Received {
    Frame header;
    Frame payload;
    bool has_payload = false;
  };

  enum class ReadResult { kDrained, kMore, kEnded };

  // Reads what is available (bounded) under sock_mu_, then handles it
  // without the lock, so callbacks may publish. kDrained: the socket said
  // EAGAIN; kMore: stopped at the bound; kEnded: the context is ending.
  ReadResult ReadAll() {
    constexpr size_t kMaxPerLock = 256;
    for (int round = 0; round < 16; ++round) {
      received_.clear();
      bool more = true;
      {
        internal::FastMutexLock lock(&sock_mu_);
        while (received_.size() < kMaxPerLock) {
          Received r;
          if (zmq_msg_recv(r.header.get(), socket_, ZMQ_DONTWAIT) < 0) {
            if (zmq_errno() == ETERM) return ReadResult::kEnded;
            more = false;
            break;
          }
          if (zmq_msg_more(r.header.get())) {
            zmq_msg_recv(r.payload.get(), socket_, 0);
            r.has_payload = true;
            while (zmq_msg_more(r.payload.get())) {  // tolerate extra frames
              Frame extra;
              if (zmq_msg_recv(extra.get(), socket_, 0) < 0) break;
            }
          }
          received_.push_back(std::move(r));
        }
      }
      for (Received& r : received_) Handle(r);
      if (!more) return ReadResult::kDrained;
    }
    return ReadResult::kMore;
  }

  void Handle(Received& r) {
    const Frame& header = r.header;
    if (r.has_payload && protocol::IsBatchHeader(header.view())) {
      return ReadBatch(r.payload);
    }
    protocol::DeliverView d;
    if (r.has_payload &&
        protocol::DecodeDeliverFast(header.data(), header.size(), &d)) {
      // An unbatched DELIVER (large payload). Move the frames to their
      // final place before taking views: ZeroMQ keeps short messages inside
      // zmq_msg_t itself, so moving a frame can move its bytes.
      auto frames = std::make_shared<std::pair<Frame, Frame>>(
          std::move(r.header), std::move(r.payload));
      protocol::DecodeDeliverFast(frames->first.data(), frames->first.size(),
                                  &d);
      return Deliver(d, frames->second.view(),
                     [&frames] { return std::shared_ptr<const void>(frames); });
    }
    protocol::OkView ok;
    if (!r.has_payload &&
        protocol::DecodeOkFast(header.data(), header.size(), &ok) &&
        ok.request_id != 0) {
      // A lone OK (a broker that does not batch replies, or a reply sent
      // when nothing else was due): answered as a batch's are.
      oks_.push_back(ok);
      return AnswerOks();
    }
    auto decoded = decoder_.Decode(header.data(), header.size());
    if (!decoded.ok()) return;  // not from a broker: ignore
    if ((*decoded)->has_deliver()) {
      // A DELIVER the fast decoder does not know (e.g. a newer broker's
      // extra field): its strings live in the decoder, so copy if kept.
      if (r.has_payload) DeliverDecoded((*decoded)->deliver(), r.payload.view());
      return;
    }
    Dispatch(**decoded);
  }

  void DeliverDecoded(const wire::Deliver& deliver, std::string_view payload) {
    Deliver(protocol::DeliverViewOf(deliver, &headers_scratch_), payload,
            [] { return std::shared_ptr<const void>(); },
            deliver.stream_seq(), deliver.timestamp_ms());
  }

  void ReadBatch(const Frame& body) {
    protocol::BatchReader reader(body.data(), body.size());
    std::string_view header, payload;
    while (reader.Next(&header, &payload)) {
      protocol::DeliverView d;
      if (protocol::DecodeDeliverFast(header.data(), header.size(), &d)) {
        AnswerOks();
        Deliver(d, payload, [] { return std::shared_ptr<const void>(); });
        continue;
      }
      // Replies (accepts_batched_replies): consecutive OKs are answered
      // together, under one lock.
      protocol::OkView ok;
      if (protocol::DecodeOkFast(header.data(), header.size(), &ok) &&
          ok.request_id != 0) {
        oks_.push_back(ok);
        continue;
      }
      auto decoded = decoder_.Decode(header.data(), header.size());
      if (!decoded.ok()) continue;  // not from a broker: ignore
      const wire::Header& h = **decoded;
      if (h.has_ok() && h.request_id() != 0) {
        oks_.push_back({h.request_id(), h.ok().stream_seq(),
                        h.ok().duplicate(), h.ok().delivered()});
        continue;
      }
      AnswerOks();
      if (h.has_deliver()) {
        DeliverDecoded(h.deliver(), payload);
      } else {
        Dispatch(h);  // an ERROR (accepts_batched_replies)
      }
    }
    AnswerOks();
  }

  // Answers the OKs gathered in oks_, in order: the async confirms among
  // them under one lock, the others (synchronous waiters) through Fulfil.
  void AnswerOks() {
    if (oks_.empty()) return;
    ok_dones_.clear();
    {
      internal::FastMutexLock lock(&mu_);
      for (const protocol::OkView& ok : oks_) {
        auto confirm = async_confirms_.find(ok.request_id);
        if (confirm == async_confirms_.end()) {
          ok_dones_.emplace_back();  // a waiter, late, or unknown
          continue;
        }
        ok_dones_.push_back(std::move(confirm->second.done));
        async_confirms_.erase(confirm);  // its deadline entry stays, stale
      }
    }
    for (size_t i = 0; i < oks_.size(); ++i) {
      const protocol::OkView& ok = oks_[i];
      if (!ok_dones_[i]) {
        wire::Header h;
        h.set_request_id(ok.request_id);
        if (ok.stream_seq != 0) h.mutable_ok()->set_stream_seq(ok.stream_seq);
        if (ok.delivered != 0) h.mutable_ok()->set_delivered(ok.delivered);
        if (ok.duplicate) h.mutable_ok()->set_duplicate(true);
        h.mutable_ok();
        Fulfil(ok.request_id, std::move(h));
        continue;
      }
      PublishAck ack;
      ack.stream_seq = ok.stream_seq;
      ack.duplicate = ok.duplicate;
      ok_dones_[i](absl::OkStatus(), ack);
    }
    oks_.clear();
    ok_dones_.clear();
  }

  void Dispatch(const wire::Header& h) {
    switch (h.command_case()) {
      case wire::Header::kWelcome:
        return OnWelcome(h);
      case wire::Header::kError: {
        if (h.error().code() == wire::SLOW_CONSUMER) {
          // A notice, not an answer: deliveries the broker dropped for us.
          broker_dropped_.fetch_add(h.error().dropped());
          return;
        }
        if (h.request_id() == 0 && h.error().sid() != 0) {
          // A notice that one of our subscriptions ended (its stream was
          // deleted): Next() returns what is left, then Cancelled.
          ForgetSub(h.error().sid(), h.error().message());
          return;
        }
        const bool lost_session = h.error().code() == wire::HELLO_REQUIRED;
        if (auto resub = resubscriptions_.find(h.request_id());
            resub != resubscriptions_.end()) {
          const uint64_t sid = resub->second;
          resubscriptions_.erase(resub);
          // DUPLICATE_SID: in place already. HELLO_REQUIRED: the session
          // was lost again; the next WELCOME subscribes again (below).
          if (!lost_session && h.error().code() != wire::DUPLICATE_SID) {
            // The new broker refused it (a lower limit, a stream that is
            // gone): the subscription ends, as at a notice, and the error
            // is counted for callback subscriptions, which have no Next().
            const std::string why = absl::StrCat(
                "the broker refused this subscription when the client "
                "subscribed again after a reconnect: ",
                h.error().message());
            {
              internal::FastMutexLock lock(&mu_);
              ++async_errors_;
              last_async_error_ = protocol::WireError(h.error().code(), why);
            }
            ForgetSub(sid, why);
            return;
          }
          if (!lost_session) return;
        }
        if (h.request_id() == 0 && !lost_session) {
          // The answer to a fire-and-forget command (a refused PUB, an ACK
          // of an unknown delivery): nobody waits for it; counted.
          internal::FastMutexLock lock(&mu_);
          ++async_errors_;
          last_async_error_ =
              protocol::WireError(h.error().code(), h.error().message());
          return;
        }
        // A HELLO refused for now, for lack of room (TOO_MANY_CLIENTS: the
        // broker holds max_clients sessions) or a failure of its own
        // (INTERNAL), is said again later (RetryHelloLater). The first one
        // too: Connect() waits on, within its timeout, and says why at its
        // end.
        const bool refused_for_now =
            h.request_id() == hello_id_ &&
            (h.error().code() == wire::TOO_MANY_CLIENTS ||
             h.error().code() == wire::INTERNAL);
        if (refused_for_now && !had_session_) {
          {
            internal::FastMutexLock lock(&mu_);
            hello_refused_ =
                protocol::WireError(h.error().code(), h.error().message());
            ++hello_refusals_;
          }
          RetryHelloLater();
          return;
        }
        Fulfil(h.request_id(),
               protocol::WireError(h.error().code(), h.error().message()));
        // The broker lost our session (restart): start a new one, once.
        // Messages sent before it noticed all get this error; they arrive
        // before the WELCOME to our new HELLO, while ready_ is false. Those
        // it took before it lost the session are never answered: the
        // WELCOME ends them (OnWelcome).
        // Without reconnect, no new session: the client ends here.
        if (lost_session && had_session_ && ready_ &&
            h.request_id() != hello_id_) {
          if (options_.reconnect) {
            Rehello();
          } else {
            Die(absl::StrCat("the broker lost this client's session "
                             "(ClientOptions::reconnect is false): ",
                             h.error().message()));
          }
        }
        // The broker refused our new HELLO: no session follows the old one
        // for now, and what it did not answer it never will.
        if (h.request_id() == hello_id_) {
          if (session_open_) EndSession();
          if (refused_for_now) RetryHelloLater();
        }
        return;
      }
      case wire::Header::kPing: {
        wire::Header pong;
        pong.set_request_id(h.request_id());
        pong.mutable_pong();
        return SendNow(pong);
      }
      case wire::Header::kOk:
      case wire::Header::kPong:
      case wire::Header::kStatsReply:
      case wire::Header::kStreamReply:
        return Fulfil(h.request_id(), h);
      default:
        return;
    }
  }

  // A HELLO was refused for now (TOO_MANY_CLIENTS: the broker holds
  // max_clients sessions; INTERNAL): says HELLO again after ZeroMQ's
  // reconnect backoff, as the Python client does (docs/protocol.md §12);
  // the next WELCOME resets it. Calls made meanwhile wait, within their
  // timeouts; so does Connect(), for the first. I/O thread.
  void RetryHelloLater() {
    hello_retry_ms_ = NowMs() + hello_backoff_ms_;
    hello_backoff_ms_ =
        std::min(2 * hello_backoff_ms_, int64_t{kReconnectIvlMaxMs});
  }

  void OnWelcome(const wire::Header& h) {
    std::vector<wire::Header> resubscribe;
    std::vector<uint64_t> stale;  // AckSync waiters of dropped ACKs
    Ended ended;
    {
      internal::FastMutexLock lock(&mu_);
      if (h.request_id() != hello_id_) return;  // answer to an older HELLO
      // A new session: the old one has ended, if no dropped connection said
      // so yet (the broker lost it: HELLO_REQUIRED). Before anything below
      // takes queued messages out or resubscribes.
      if (session_open_) TakeEndedLocked(&ended);
      // Request()s since, made as it ended (before ready_ fell): their
      // reply_to names the old session's inbox.
      TakeRequestsLocked(&ended);
      const wire::Welcome& w = h.welcome();
      client_id_ = w.client_id();
      inbox_prefix_ = w.inbox_prefix();
      batching_ = w.max_batch_bytes() >= kFlushBatchBytes + kBatchPayloadLimit +
                                             4096;
      max_payload_.store(w.max_payload_bytes());
      max_headers_.store(w.max_headers());
      max_headers_bytes_.store(w.max_headers_bytes());
      max_topic_length_.store(w.max_topic_length());
      max_topic_tokens_.store(w.max_topic_tokens());
      session_.fetch_add(1, std::memory_order_relaxed);
      stale = TakeAcksLocked(session_.load(std::memory_order_relaxed));
      resubscriptions_.clear();  // the old session's answers are moot
      if (had_session_) {
        // A new session after losing the broker: subscribe again, the inbox
        // under its new prefix.
        for (auto& [sid, sub] : subs_) {
          if (sub->fetch) continue;  // a FETCH, not a subscription
          if (sub->inbox) sub->pattern = absl::StrCat(inbox_prefix_, ".>");
          const uint64_t id = NextId();
          resubscriptions_[id] = sid;
          resubscribe.push_back(SubHeader(id, sid, *sub));
        }
      }
    }
    if (h.welcome().client_timeout_ms() > 0) {
      options_.ping_interval = std::max(
          absl::Milliseconds(10),
          std::min(options_.ping_interval,
                   absl::Milliseconds(h.welcome().client_timeout_ms() / 3)));
      next_ping_ms_ = std::min(
          next_ping_ms_,
          NowMs() + absl::ToInt64Milliseconds(options_.ping_interval));
    }
    for (uint64_t id : stale) {
      Fulfil(id, protocol::WireError(
                     wire::UNKNOWN_DELIVERY,
                     "the session ended before this ACK was sent: it was "
                     "not sent (its delivery ids were that session's); a "
                     "named stream consumer gets the message again, and so "
                     "does a queue group whose broker kept running"));
    }
    FinishEnded(ended);
    if (had_session_) reconnects_.fetch_add(1);
    had_session_ = true;
    session_open_ = true;
    hello_backoff_ms_ = kReconnectIvlMs;
    for (const wire::Header& s : resubscribe) SendNow(s);
    ready_ = true;
    Fulfil(h.request_id(), h);
  }

  // The calls a session that ended leaves to finish once mu_ is released
  // (TakeEndedLocked or Die, then FinishEnded).
  struct Ended {
    std::vector<std::pair<std::promise<Reply>, Reply>> answers;
    std::vector<std::pair<PublishDone, absl::Status>> confirms;
    std::vector<std::shared_ptr<RequestPromise>> requests;
    std::vector<std::shared_ptr<SubTarget>> subs;  // dropped subscriptions
    // Die's cause: the client ends for good. Empty: a new session may
    // follow.
    std::string cause;
  };

  // The session ended (its connection dropped, or the broker refused a new
  // HELLO) with no new one yet: its unanswered calls end now, not at their
  // timeouts. I/O thread.
  // What a call still waiting when its session ended may have had done, by
  // what it asked (a Subscribe: `not_subscribed`); nullopt for an
  // Unsubscribe, which is done then (no later session holds the sid).
  static std::optional<std::string_view> LostOutcome(
      Asked asked, std::string_view not_subscribed) {
    switch (asked) {
      case Asked::kAnswer:
        return kMayHaveRun;
      case Asked::kPublish:
        return kMayHaveStored;
      case Asked::kSubscribe:
        return not_subscribed;
      case Asked::kUnsubscribe:
        return std::nullopt;
    }
    return kMayHaveRun;
  }

  void EndSession() {
    Ended ended;
    {
      internal::FastMutexLock lock(&mu_);
      TakeEndedLocked(&ended);
    }
    FinishEnded(ended);
  }

  // Takes out the calls waiting for an answer to a request sent in the
  // session that ended: it will never come (a restarted broker knows
  // nothing of the request; siftd ends a session whose connection closes).
  // They are the waiters whose request is no longer queued: requests are
  // registered in the critical section that sends or queues them, and
  // ready_ is false, so nothing is sent again before the next WELCOME.
  // Those still queued stay: they go out in the next session. Also takes
  // every Request() (TakeRequestsLocked). A Subscribe()'s subscription is
  // dropped here, before the next WELCOME could make it again; an
  // Unsubscribe() is done. I/O thread, mu_ held.
  void TakeEndedLocked(Ended* ended) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    session_open_ = false;
    end_session_ = false;
    // ACKs, NACKs and PROGRESSes still queued name this session's
    // deliveries: never to be applied, they are taken out now, and an
    // AckSync waiting for one ends now instead of at its timeout.
    for (uint64_t id : TakeAcksLocked(/*keep_session=*/0)) {
      auto it = waiters_.find(id);
      if (it == waiters_.end()) continue;
      ended->answers.emplace_back(std::move(it->second.promise),
                                  Reply(AckNotSent()));
      waiters_.erase(it);
    }
    const absl::flat_hash_set<uint64_t> queued = QueuedRequestIdsLocked();
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      const uint64_t id = it->first;
      if (id == hello_id_ || queued.contains(id)) {
        ++it;
        continue;
      }
      Waiter& waiter = it->second;
      if (waiter.asked == Asked::kSubscribe) TakeSubLocked(waiter.sid, ended);
      const std::optional<std::string_view> outcome = LostOutcome(
          waiter.asked,
          "not subscribed (the session that may have taken the subscription "
          "is gone, and it is not made again): subscribe again");
      ended->answers.emplace_back(
          std::move(waiter.promise),
          outcome ? Reply(LostAnswer(*outcome)) : Reply(wire::Header()));
      waiters_.erase(it++);
    }
    for (auto it = async_confirms_.begin(); it != async_confirms_.end();) {
      if (queued.contains(it->first)) {
        ++it;
        continue;
      }
      // Its deadline entry stays, stale (ExpireConfirms skips it).
      ended->confirms.emplace_back(std::move(it->second.done),
                                   LostAnswer(kMayHaveStored));
      async_confirms_.erase(it++);
    }
    TakeRequestsLocked(ended);
  }

  // Request()s wait for a reply to their session's inbox, which ends with
  // it, whether their PUB went out or is still queued (it then still goes
  // out). mu_ held.
  void TakeRequestsLocked(Ended* ended) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (auto& [token, request] : requests_) {
      ended->requests.push_back(std::move(request));
    }
    requests_.clear();
  }

  // Drops subscription `sid` (its queue is closed by FinishEnded).
  void TakeSubLocked(uint64_t sid, Ended* ended)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto sub = subs_.find(sid);
    if (sub == subs_.end()) return;
    ended->subs.push_back(std::move(sub->second));
    subs_.erase(sub);
    subs_generation_.fetch_add(1, std::memory_order_release);
  }

  // The request ids of the messages queued and not yet handed to the
  // socket (outbox_, sending_): those of a batch's PUBs, as
  // BatchWriter::AppendPub wrote them, and the others' own. Rare (a
  // session's end): walking the batches costs the hot path nothing. I/O
  // thread (sending_ is its own), mu_ held. Not through decoder_: the
  // header OnWelcome is reading lives in it.
  absl::flat_hash_set<uint64_t> QueuedRequestIdsLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::flat_hash_set<uint64_t> ids;
    auto add = [&](const Outgoing& o) {
      if (!o.batch) {
        if (o.request_id != 0) ids.insert(o.request_id);
        return;
      }
      protocol::BatchReader reader(o.batch->data(), o.batch->size());
      std::string_view header, payload;
      while (reader.Next(&header, &payload)) {
        protocol::PubView pub;
        if (protocol::DecodePubFast(header.data(), header.size(), &pub)) {
          if (pub.request_id != 0) ids.insert(pub.request_id);
          continue;
        }
        wire::Header h;
        if (h.ParseFromArray(header.data(), static_cast<int>(header.size())) &&
            h.request_id() != 0) {
          ids.insert(h.request_id());
        }
      }
    };
    for (const Outgoing& o : outbox_) add(o);
    for (const Outgoing& o : sending_) add(o);
    return ids;
  }

  // Completes what TakeEndedLocked or Die took. Without mu_: `done` may
  // publish.
  void FinishEnded(Ended& ended) {
    for (auto& [promise, reply] : ended.answers) {
      promise.set_value(std::move(reply));
    }
    for (auto& [done, status] : ended.confirms) done(status, PublishAck{});
    constexpr char kNoReply[] =
        "a reply to the request (which may or may not have reached a "
        "responder) would go to that session's inbox, which is gone";
    for (auto& request : ended.requests) {
      request->set_value(ended.cause.empty()
                             ? LostAnswer(kNoReply)
                             : absl::UnavailableError(absl::StrCat(
                                   ended.cause, "; ", kNoReply)));
    }
    for (auto& sub : ended.subs) {
      if (ended.cause.empty()) {
        CloseQueue(sub->queue.get());
      } else {
        CloseQueue(sub->queue.get(), ended.cause,
                   absl::StatusCode::kUnavailable);
      }
    }
  }

  // The session ended and ClientOptions::reconnect is false: the client
  // ends for good, for `cause` (as the Python client's die()). No HELLO
  // follows, and ZeroMQ stops reconnecting: zmq_disconnect, at once, so
  // that it does not connect to a broker that comes back (its first retry
  // is 100 ms or more away). Not ZMQ_RECONNECT_IVL -1 at zmq_connect: that
  // would also stop it retrying the first connection, which Connect()
  // relies on while the broker is not up yet. Every call waiting for an
  // answer fails with Unavailable: its request was handed to ZeroMQ (it
  // may or may not have been carried out; what ZeroMQ had not written yet
  // is dropped with its pipe) or is still queued (not sent: the outbox is
  // dropped). An Unsubscribe() is done. Every
  // subscription ends: Next() returns Unavailable once its queue is empty,
  // callbacks get nothing more. Later calls that need the broker fail
  // with dead_. I/O thread.
  void Die(std::string cause) {
    Ended ended;
    {
      internal::FastMutexLock lock(&mu_);
      if (!dead_.ok()) return;
      dead_ = absl::UnavailableError(absl::StrCat(
          cause, "; this client has no session any more: connect a new "
                 "Client"));
      ready_ = false;
      session_open_ = false;
      end_session_ = false;
      lost_connection_ = false;
      const absl::flat_hash_set<uint64_t> queued = QueuedRequestIdsLocked();
      auto lost = [&](uint64_t id, std::string_view outcome) {
        return absl::UnavailableError(absl::StrCat(
            cause, "; ",
            queued.contains(id)
                ? "it was not sent"
                : absl::StrCat("it was sent, and no answer can come: ",
                               AV(outcome))));
      };
      for (auto& [id, waiter] : waiters_) {
        const std::optional<std::string_view> outcome =
            LostOutcome(waiter.asked, "not subscribed");
        ended.answers.emplace_back(
            std::move(waiter.promise),
            outcome ? Reply(lost(id, *outcome)) : Reply(wire::Header()));
      }
      waiters_.clear();
      for (auto& [id, confirm] : async_confirms_) {
        ended.confirms.emplace_back(std::move(confirm.done),
                                    lost(id, kMayHaveStored));
      }
      async_confirms_.clear();
      confirm_deadlines_.clear();
      next_confirm_deadline_ms_.store(kNoDeadline);
      TakeRequestsLocked(&ended);
      for (auto& [sid, sub] : subs_) ended.subs.push_back(std::move(sub));
      subs_.clear();
      subs_generation_.fetch_add(1, std::memory_order_release);
      outbox_.clear();
      sending_.clear();
      queued_ = 0;
    }
    {
      internal::FastMutexLock lock(&sock_mu_);
      zmq_disconnect(socket_, options_.endpoint.c_str());
      check_events_ = true;
    }
    ended.cause = std::move(cause);
    FinishEnded(ended);
  }

  // Drops the ACKs, NACKs and PROGRESSes queued for a session other than
  // `keep_session` (0: every one): as a session ends (TakeEndedLocked), and
  // as a new one starts (their delivery ids mean nothing now, or another
  // delivery of a restarted broker). Returns the request ids of those a
  // caller waits for. I/O thread, mu_ held (sending_ is the I/O thread's).
  std::vector<uint64_t> TakeAcksLocked(uint64_t keep_session)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<uint64_t> waiting;
    auto stale = [&](const Outgoing& o) {
      if (o.session == 0 || o.session == keep_session) return false;
      queued_ -= o.messages();
      if (o.request_id != 0) waiting.push_back(o.request_id);
      return true;
    };
    outbox_.erase(std::remove_if(outbox_.begin(), outbox_.end(), stale),
                  outbox_.end());
    sending_.erase(std::remove_if(sending_.begin(), sending_.end(), stale),
                   sending_.end());
    return waiting;
  }

  void Fulfil(uint64_t id, Reply reply) {
    if (id == 0) return;
    std::promise<Reply> promise;
    PublishDone done;
    Ended refused;  // a refused SUB's subscription
    {
      internal::FastMutexLock lock(&mu_);
      auto it = waiters_.find(id);
      if (it != waiters_.end()) {
        // A SUB refused (HELLO_REQUIRED among others): dropped here, on the
        // I/O thread, so that a new session does not make it again before
        // Subscribe() wakes up. DUPLICATE_SID means it is in place.
        if (it->second.asked == Asked::kSubscribe && !reply.ok() &&
            protocol::WireCodeOf(reply.status()) != wire::DUPLICATE_SID) {
          TakeSubLocked(it->second.sid, &refused);
        }
        promise = std::move(it->second.promise);
        waiters_.erase(it);
      } else {
        auto confirm = async_confirms_.find(id);
        if (confirm == async_confirms_.end()) return;  // late or unknown
        done = std::move(confirm->second.done);
        async_confirms_.erase(confirm);  // its deadline entry stays, stale
      }
    }
    if (!done) {
      FinishEnded(refused);
      promise.set_value(std::move(reply));
      return;
    }
    PublishAck ack;
    if (!reply.ok()) return done(reply.status(), ack);
    ack.stream_seq = reply->ok().stream_seq();
    ack.duplicate = reply->ok().duplicate();
    done(absl::OkStatus(), ack);
  }

  // Fails the async confirms whose deadline has passed. I/O thread.
  void ExpireConfirms(int64_t now) {
    std::vector<PublishDone> expired;
    {
      internal::FastMutexLock lock(&mu_);
      auto& heap = confirm_deadlines_;
      while (!heap.empty() && heap.front().first <= now) {
        const auto [deadline, id] = heap.front();
        std::pop_heap(heap.begin(), heap.end(), std::greater<>());
        heap.pop_back();
        auto it = async_confirms_.find(id);
        if (it == async_confirms_.end() || it->second.deadline_ms != deadline) {
          continue;  // answered already
        }
        expired.push_back(std::move(it->second.done));
        async_confirms_.erase(it);
      }
      UpdateConfirmDeadlineLocked();
    }
    for (PublishDone& done : expired) {
      done(absl::DeadlineExceededError(
               "no answer from the broker to a confirmed publish in time"),
           PublishAck{});
    }
  }

  void UpdateConfirmDeadlineLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    next_confirm_deadline_ms_.store(confirm_deadlines_.empty()
                                        ? kNoDeadline
                                        : confirm_deadlines_.front().first);
  }

  // The I/O thread's view of subs_, refreshed when subs_generation_ moves,
  // so a delivery takes no lock.
  const SubTarget* FindTarget(uint64_t sid) {
    const uint64_t generation = subs_generation_.load(std::memory_order_acquire);
    if (generation != local_generation_) {
      internal::FastMutexLock lock(&mu_);
      local_subs_ = subs_;
      local_generation_ = subs_generation_.load(std::memory_order_relaxed);
    }
    auto it = local_subs_.find(sid);
    return it == local_subs_.end() ? nullptr : it->second.get();
  }

  // Hands one delivery to its subscription. `owner` makes the storage that
  // keeps the bytes alive, for messages that outlive this call.
  // `stream_seq` and `timestamp_ms`: the DELIVER's stream fields.
  template <typename MakeOwner>
  void Deliver(const protocol::DeliverView& d, std::string_view payload,
               MakeOwner owner, uint64_t stream_seq = 0,
               uint64_t timestamp_ms = 0) {
    const SubTarget* target = FindTarget(d.sid);
    if (target == nullptr) return;  // unsubscribed meanwhile
    if (stream_seq > target->last_stream_seq) {
      target->last_stream_seq = stream_seq;
    }
    Message m;
    m.session_ = session_.load(std::memory_order_relaxed);  // this thread's
    m.stream_seq_ = stream_seq;
    m.timestamp_ms_ = timestamp_ms;
    m.topic_ = d.topic;
    m.reply_to_ = d.reply_to;
    m.payload_ = payload;
    m.sid_ = d.sid;
    m.delivery_id_ = d.delivery_id;
    m.attempt_ = d.attempt;
    m.retained_ = d.retained;
    if (!d.headers.empty()) {
      m.headers_wire_ = d.headers;
      // The broker checked them; a malformed list (not from a broker) is
      // dropped rather than half-read.
      if (!protocol::DecodeHeaders(d.headers, &m.headers_)) {
        m.headers_.clear();
        m.headers_wire_ = {};
      }
    }
    if (target->callback) {
      target->callback(m);  // borrowed: valid for the call
      return;
    }
    m.storage_ = owner();
    if (!m.storage_) Own(&m);
    if (target->inbox) return AnswerRequest(std::move(m));
    if (target->fetch) {
      internal::FastMutexLock lock(&target->fetch->mu);
      target->fetch->messages.push_back(std::move(m));
      return;
    }
    if (target->queue) target->queue->Push(std::move(m));  // bounded
  }

  // Copies a borrowed message's bytes into storage of its own.
  static void Own(Message* m) {
    auto bytes = std::make_shared<std::string>();
    bytes->reserve(m->topic_.size() + m->reply_to_.size() +
                   m->payload_.size() + m->headers_wire_.size());
    bytes->append(m->topic_).append(m->reply_to_).append(m->payload_);
    bytes->append(m->headers_wire_);
    const char* p = bytes->data();
    m->topic_ = std::string_view(p, m->topic_.size());
    p += m->topic_.size();
    m->reply_to_ = std::string_view(p, m->reply_to_.size());
    p += m->reply_to_.size();
    m->payload_ = std::string_view(p, m->payload_.size());
    p += m->payload_.size();
    if (!m->headers_wire_.empty()) {
      m->headers_wire_ = std::string_view(p, m->headers_wire_.size());
      protocol::DecodeHeaders(m->headers_wire_, &m->headers_);
    }
    m->storage_ = std::move(bytes);
  }

  // A message in the inbox answers the request whose token ends its topic.
  void AnswerRequest(Message m) {
    std::string_view topic = m.topic();
    uint64_t token = 0;
    const size_t dot = topic.rfind('.');
    if (dot == std::string_view::npos ||
        !absl::SimpleAtoi(AV(topic.substr(dot + 1)), &token)) {
      return;
    }
    std::shared_ptr<RequestPromise> request;
    {
      internal::FastMutexLock lock(&mu_);
      auto it = requests_.find(token);
      if (it == requests_.end()) return;  // late reply: request timed out
      request = std::move(it->second);
      requests_.erase(it);
    }
    request->set_value(std::move(m));
  }

  void CloseSockets() {
    if (monitor_ != nullptr) {
      zmq_socket_monitor(socket_, nullptr, 0);
      zmq_close(monitor_);
      monitor_ = nullptr;
    }
    if (socket_ != nullptr) {
      zmq_close(socket_);
      socket_ = nullptr;
    }
  }

  // Constant after Start() (except options_.ping_interval: I/O thread).
  ClientOptions options_;
  void* context_ = nullptr;  // not ours: never terminated here
  int wake_fd_ = -1;

  // The I/O thread's while it runs (socket_ also SendDirect's, under
  // sock_mu_).
  void* socket_ = nullptr;
  void* monitor_ = nullptr;
  std::thread io_thread_;
  std::deque<Outgoing> sending_;
  protocol::HeaderDecoder decoder_;
  // Header entries of a DELIVER that protobuf decoded (the slow path).
  std::string headers_scratch_;
  std::vector<Received> received_;  // reused by ReadAll
  // Session established (WELCOME received). Written by the I/O thread only;
  // read by publishers deciding whether to send directly.
  std::atomic<bool> ready_{false};
  bool had_session_ = false;      // a WELCOME was ever received
  bool lost_connection_ = false;  // disconnected; HELLO again on connect
  // A WELCOME started the current session, and it has not been ended yet
  // (TakeEndedLocked: its unanswered calls failed). Written by the I/O
  // thread; read under mu_ by callers acknowledging (EnqueueAck).
  std::atomic<bool> session_open_{false};
  // The connection dropped: end the session once what arrived before is
  // read (IoLoop).
  bool end_session_ = false;
  int64_t next_ping_ms_ = 0;
  // When to say HELLO again after a refusal (kNoDeadline: not due), and
  // the wait before the next one's retry (RetryHelloLater).
  int64_t hello_retry_ms_ = kNoDeadline;
  int64_t hello_backoff_ms_ = kReconnectIvlMs;
  absl::flat_hash_map<uint64_t, std::shared_ptr<SubTarget>> local_subs_;
  uint64_t local_generation_ = 0;

  std::atomic<uint64_t> next_id_{0};
  std::atomic<uint64_t> reconnects_{0};
  std::atomic<uint64_t> broker_dropped_{0};
  std::atomic<uint64_t> subs_generation_{0};
  std::atomic<uint64_t> max_payload_{1 << 20};
  std::atomic<uint32_t> max_headers_{0};
  std::atomic<uint64_t> max_headers_bytes_{0};
  std::atomic<uint32_t> max_topic_length_{256};
  std::atomic<uint32_t> max_topic_tokens_{16};

  mutable internal::FastMutex mu_;
  std::vector<Outgoing> outbox_ ABSL_GUARDED_BY(mu_);
  uint64_t async_errors_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_async_error_ ABSL_GUARDED_BY(mu_);
  size_t queued_ ABSL_GUARDED_BY(mu_) = 0;  // messages in outbox_ + sending_
  bool batching_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<uint64_t, Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  // PublishConfirmedAsync calls awaiting their answer, by request id, and
  // their deadlines (PushConfirmDeadlineLocked); next_confirm_deadline_ms_
  // mirrors the earliest, for the I/O thread's sleep.
  absl::flat_hash_map<uint64_t, AsyncConfirm> async_confirms_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<int64_t, uint64_t>> confirm_deadlines_
      ABSL_GUARDED_BY(mu_);  // a min-heap (std::greater)
  // I/O thread: the OKs of a BATCH being read, and their callbacks
  // (AnswerOks).
  std::vector<protocol::OkView> oks_;
  // I/O thread: the request ids of the SUBs the last WELCOME sent again,
  // and their sids, so that one the new session refuses ends its
  // subscription (Dispatch) instead of leaving it silently without
  // messages. Cleared at each WELCOME; an OK leaves its entry until then.
  absl::flat_hash_map<uint64_t, uint64_t> resubscriptions_;
  bool woken_on_io_thread_ = false;  // Wake() on the I/O thread; only it
  // Counts WELCOMEs: the session a Message's delivery id belongs to
  // (Message::session_). Written by the I/O thread with mu_ held.
  std::atomic<uint64_t> session_{0};
  std::string ack_bytes_;  // SendQueued's ACK header, reused (sock_mu_)
  std::vector<PublishDone> ok_dones_;
  std::atomic<int64_t> next_confirm_deadline_ms_{kNoDeadline};
  absl::flat_hash_map<uint64_t, std::shared_ptr<SubTarget>> subs_
      ABSL_GUARDED_BY(mu_);
  // Request() calls awaiting their reply, by inbox token (FailedPrecondition
  // at Close; Unavailable when their session ends, TakeRequestsLocked).
  absl::flat_hash_map<uint64_t, std::shared_ptr<RequestPromise>> requests_
      ABSL_GUARDED_BY(mu_);
  std::string client_id_ ABSL_GUARDED_BY(mu_);
  std::string inbox_prefix_ ABSL_GUARDED_BY(mu_);
  uint64_t hello_id_ ABSL_GUARDED_BY(mu_) = 0;
  // The last refusal of the first HELLO (RetryHelloLater), and how many
  // there were: what Connect() says if its timeout runs out.
  absl::Status hello_refused_ ABSL_GUARDED_BY(mu_);
  int hello_refusals_ ABSL_GUARDED_BY(mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  // Unavailable once the session ended for good (ClientOptions::reconnect
  // false: Die), naming why: what later calls that need the broker return.
  // OK until then.
  absl::Status dead_ ABSL_GUARDED_BY(mu_);
  // Close() was called on the I/O thread, which then finishes it itself.
  bool closed_in_callback_ ABSL_GUARDED_BY(mu_) = false;

  // Serializes use of socket_ between the I/O thread and SendDirect callers
  // once the I/O thread runs. Lock order: mu_, then sock_mu_.
  internal::FastMutex sock_mu_;
  int zmq_fd_ = -1;      // socket_'s ZMQ_FD, which the I/O thread sleeps on
  int64_t spin_ns_ = 0;  // options_.idle_spin
  int monitor_fd_ = -1;  // monitor_'s ZMQ_FD
  bool check_events_ = true;  // I/O thread: look at ZMQ_EVENTS before sleeping
  int64_t last_publish_ns_ ABSL_GUARDED_BY(mu_) = 0;

  internal::FastMutex join_mu_;
  internal::FastMutex inbox_mu_;
  uint64_t inbox_sid_ ABSL_GUARDED_BY(inbox_mu_) = 0;
};

// ---- Subscription ----

Subscription::Subscription(std::shared_ptr<ClientCore> core, uint64_t sid,
                           std::string pattern,
                           std::shared_ptr<internal::SubscriptionQueue> queue)
    : core_(std::move(core)),
      sid_(sid),
      pattern_(std::move(pattern)),
      queue_(std::move(queue)) {}

Subscription::~Subscription() {
  if (active_) core_->UnsubscribeNoWait(sid_);
}

absl::StatusOr<Message> Subscription::Next(absl::Duration timeout) {
  if (!queue_) {
    return absl::FailedPreconditionError(
        "this subscription delivers to its callback; Next() is not used");
  }
  if (core_->OnIoThread() && timeout > absl::ZeroDuration()) {
    // Only what is queued already: nothing more arrives while it waits.
    absl::StatusOr<Message> m = queue_->Pop(absl::ZeroDuration());
    if (absl::IsDeadlineExceeded(m.status())) {
      return absl::DeadlineExceededError(
          "no message queued: Next() in one of this client's callbacks "
          "does not wait, since messages arrive on the thread running it");
    }
    return m;
  }
  return queue_->Pop(timeout);
}

uint64_t Subscription::dropped() const {
  return queue_ ? queue_->dropped() : 0;
}

absl::Status Subscription::Unsubscribe() {
  if (!active_) return absl::OkStatus();
  active_ = false;
  return core_->Unsubscribe(sid_);
}

// ---- Client ----

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(ClientOptions options) {
  auto core = std::make_shared<ClientCore>(std::move(options));
  if (absl::Status s = core->Start(); !s.ok()) return s;
  return std::unique_ptr<Client>(new Client(std::move(core)));
}

Client::Client(std::shared_ptr<ClientCore> core) : core_(std::move(core)) {}
Client::~Client() { Close(); }

absl::Status Client::Publish(std::string_view topic, std::string_view payload,
                             std::string_view reply_to) {
  return core_->Publish(topic, payload, reply_to, 0, false);
}

absl::Status Client::Publish(std::string_view topic, std::string_view payload,
                             const Headers& headers,
                             std::string_view reply_to) {
  return core_->Publish(topic, payload, reply_to, 0, false,
                        protocol::EncodeHeaders(headers));
}

absl::Status Client::PublishConfirmed(std::string_view topic,
                                      std::string_view payload,
                                      absl::Duration timeout) {
  return core_->PublishConfirmed(topic, payload, {}, timeout);
}

namespace {

// The header bytes of a publish: its headers, then its message id.
std::string EncodedHeaders(const PublishOptions& options) {
  std::string out = protocol::EncodeHeaders(options.headers);
  if (!options.msg_id.empty()) {
    protocol::AppendHeader(kMsgIdHeader, options.msg_id, &out);
  }
  return out;
}

}  // namespace

absl::Status Client::PublishWith(std::string_view topic,
                                 std::string_view payload,
                                 const PublishOptions& options) {
  return core_->Publish(topic, payload, options.reply_to, 0, false,
                        EncodedHeaders(options), &options);
}

absl::Status Client::PublishConfirmedWith(std::string_view topic,
                                          std::string_view payload,
                                          const PublishOptions& options,
                                          absl::Duration timeout,
                                          PublishAck* ack) {
  return core_->PublishConfirmed(topic, payload, EncodedHeaders(options),
                                 timeout, &options, options.reply_to, ack);
}

absl::Status Client::PublishConfirmedAsync(std::string_view topic,
                                           std::string_view payload,
                                           const PublishOptions& options,
                                           PublishDone done,
                                           absl::Duration timeout) {
  return core_->PublishConfirmedAsync(topic, payload, EncodedHeaders(options),
                                      options, timeout, std::move(done));
}

absl::Status Client::PublishConfirmed(std::string_view topic,
                                      std::string_view payload,
                                      const Headers& headers,
                                      absl::Duration timeout) {
  return core_->PublishConfirmed(topic, payload,
                                 protocol::EncodeHeaders(headers), timeout);
}

std::optional<std::string_view> Message::header(std::string_view key) const {
  for (const auto& [k, v] : headers_) {
    if (k == key) return v;
  }
  return std::nullopt;
}

absl::StatusOr<std::unique_ptr<Subscription>> Client::Subscribe(
    std::string_view pattern, SubscribeOptions options) {
  std::shared_ptr<internal::SubscriptionQueue> queue;
  if (!options.callback) queue = core_->NewQueue();
  auto sid = core_->Subscribe(pattern, options, queue, /*inbox=*/false);
  if (!sid.ok()) return sid.status();
  return std::unique_ptr<Subscription>(
      new Subscription(core_, *sid, std::string(pattern), std::move(queue)));
}

absl::StatusOr<Message> Client::Request(std::string_view topic,
                                        std::string_view payload,
                                        absl::Duration timeout) {
  return core_->Request(topic, payload, {}, timeout);
}

absl::StatusOr<Message> Client::Request(std::string_view topic,
                                        std::string_view payload,
                                        const Headers& headers,
                                        absl::Duration timeout) {
  return core_->Request(topic, payload, protocol::EncodeHeaders(headers),
                        timeout);
}

absl::Status Client::Declare(std::string_view pattern,
                             std::string_view queue_group,
                             const AckOptions& ack, absl::Duration timeout) {
  return core_->Declare(pattern, queue_group, ack, timeout);
}

absl::Status Client::Ack(const Message& message) {
  return core_->SendAck(message, 0, absl::ZeroDuration());
}

absl::Status Client::AckSync(const Message& message,
                             absl::Duration timeout) {
  return core_->AckSync(message, timeout);
}

absl::Status Client::Nack(const Message& message, absl::Duration delay) {
  return core_->SendAck(message, 1, delay);
}

absl::Status Client::InProgress(const Message& message) {
  return core_->SendAck(message, 2, absl::ZeroDuration());
}

absl::Status Client::Reload(absl::Duration timeout) {
  return core_->Reload(timeout);
}

absl::StatusOr<BrokerStats> Client::Stats(absl::Duration timeout) {
  return core_->Stats(timeout);
}

absl::Status Client::Flush(absl::Duration timeout) {
  wire::Header ping;
  ping.mutable_ping();
  return core_->Call(std::move(ping), timeout).status();
}

absl::StatusOr<StreamInfo> Client::AddStream(const StreamConfig& config,
                                             absl::Duration timeout) {
  // Zero means "unlimited" or "the default": a negative one is a mistake,
  // not either (the wire has no sign).
  for (const auto& [name, d] : {std::pair<const char*, absl::Duration>{
                                    "max_age", config.max_age},
                                {"dedup_window", config.dedup_window}}) {
    if (d < absl::ZeroDuration()) {
      return protocol::WireError(
          wire::INVALID_STREAM,
          absl::StrCat("StreamConfig.", name, " is negative (",
                       absl::FormatDuration(d), "); 0 means ",
                       std::string_view(name) == "max_age" ? "unlimited"
                                                           : "the default"));
    }
  }
  auto streams = core_->StreamCall(
      internal::StreamRequestHeader(0, wire::STREAM_ADD, config.name, {},
                                    &config),
      timeout);
  if (!streams.ok()) return streams.status();
  if (!streams->empty()) return std::move(streams->front());
  // Answered OK without the stream: ask for it.
  return GetStreamInfo(config.name, timeout);
}

absl::StatusOr<StreamInfo> Client::GetStreamInfo(std::string_view name,
                                                 absl::Duration timeout) {
  auto streams = core_->StreamCall(
      internal::StreamRequestHeader(0, wire::STREAM_INFO, name), timeout);
  if (!streams.ok()) return streams.status();
  if (streams->empty()) {
    return protocol::WireError(
        wire::UNKNOWN_STREAM,
        absl::StrCat("the broker answered no stream for \"", AV(name), "\""));
  }
  return std::move(streams->front());
}

absl::StatusOr<std::vector<StreamInfo>> Client::ListStreams(
    absl::Duration timeout) {
  return core_->StreamCall(
      internal::StreamRequestHeader(0, wire::STREAM_LIST, {}), timeout);
}

absl::Status Client::DeleteStream(std::string_view name,
                                  absl::Duration timeout) {
  return core_
      ->StreamCall(internal::StreamRequestHeader(0, wire::STREAM_DELETE, name),
                   timeout)
      .status();
}

absl::Status Client::DeleteConsumer(std::string_view stream,
                                    std::string_view consumer,
                                    absl::Duration timeout) {
  return core_
      ->StreamCall(internal::StreamRequestHeader(0, wire::CONSUMER_DELETE,
                                                 stream, consumer),
                   timeout)
      .status();
}

absl::StatusOr<std::vector<Message>> Client::Fetch(const FetchOptions& options,
                                                   absl::Duration timeout) {
  return core_->Fetch(options, timeout);
}

void Client::Close() { core_->Close(); }

std::string Client::client_id() const { return core_->client_id(); }
std::string Client::inbox_prefix() const { return core_->inbox_prefix(); }
uint64_t Client::reconnects() const { return core_->reconnects(); }
uint64_t Client::async_errors() const { return core_->async_errors(); }
absl::Status Client::last_async_error() const {
  return core_->last_async_error();
}
bool Client::FromEarlierSession(const Message& message) const {
  return core_->FromEarlierSession(message);
}
uint64_t Client::broker_dropped() const { return core_->broker_dropped(); }
uint64_t Client::max_payload_bytes() const {
  return core_->max_payload_bytes();
}

}  // namespace sift
