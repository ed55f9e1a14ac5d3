// sift: the command-line client of the sift broker. Publishes, subscribes,
// makes and answers requests, shows the broker's stats, manages streams and
// fetches from them. `sift --help` lists the commands; args.h has the
// grammar.
//
// Exit status: 0 success, 1 runtime error (no broker, timeout, refused by the
// broker), 2 usage error. Errors go to stderr as one line starting "sift: ".

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/protocol/codec.h"
#include "clients/cli/args.h"
#include "clients/cli/confirm_window.h"
#include "clients/cli/format.h"
#include "clients/cpp/client.h"
#include "clients/cpp/endpoint.h"
#include "proto/sift.pb.h"

namespace sift::cli {
namespace {

// How often the receive loops look for SIGINT/SIGTERM and the deadline.
constexpr absl::Duration kPollSlice = absl::Milliseconds(100);

// Writes "sift: MESSAGE" to stderr as one line: control characters in it
// escaped (OneLine), such as those of a name the broker's reason quotes
// raw. Names sift quotes itself go through Escape first.
void PrintError(absl::string_view message) {
  const std::string line = absl::StrCat(
      "sift: ", OneLine(std::string_view(message.data(), message.size())),
      "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
}

int Fail(absl::string_view message) {
  PrintError(message);
  return 1;
}

void PrintLine(std::string_view line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

// A message's headers, one line each after the message: "  KEY: VALUE".
void PrintHeaders(const Message& message) {
  for (const auto& [key, value] : message.headers()) {
    PrintLine(absl::StrCat("  ", Escape(key), ": ", Escape(value)));
  }
}

// Turns SIGINT and SIGTERM into a flag the receive loops poll, so that they
// end with exit status 0 and close the client cleanly (BYE), and says what
// was not acknowledged.
//
// A loop may be unable to look: blocked writing to a stdout nobody reads,
// or in an acknowledgement that waits for a broker that has gone (up to
// --connect_timeout). So a watcher thread takes the signals; a second
// signal, or a stop still not done after `grace`, ends the process at once
// with 128 + the signal's number (130 for SIGINT) and a line on stderr.
//
// The constructor blocks both signals (and SIGUSR2, which wakes the watcher
// to end) in the calling thread; it must run before the client (and
// ZeroMQ) start their threads, which inherit the mask, so that only the
// watcher takes them. Requested() may be called from any thread.
// Once the loop has seen the stop, only a second signal forces it.
class StopSignals {
 public:
  // `acks`: the loop acknowledges what it prints (sub --ack), for the line
  // a forced stop writes.
  StopSignals(absl::Duration grace, bool acks) : grace_(grace), acks_(acks) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    watcher_ = std::thread([this] { Watch(); });
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  ~StopSignals() {
    done_.store(true);
    pthread_kill(watcher_.native_handle(), SIGUSR2);
    watcher_.join();
  }

  // Whether a signal asked to stop. Once it returned true, the stop is
  // under way (the loop was not stuck) and no longer timed: closing the
  // client after it is bounded on its own (Client::Close, 2 s).
  bool Requested() {
    if (!requested_.load()) return false;
    seen_.store(true);
    return true;
  }

 private:
  void Watch() {
    int first = 0;
    absl::Time force_at = absl::InfiniteFuture();
    while (!done_.load()) {
      const absl::Duration wait =
          std::min(absl::Seconds(1), force_at - absl::Now());
      const timespec ts =
          absl::ToTimespec(std::max(wait, absl::ZeroDuration()));
      const int sig = sigtimedwait(&set_, nullptr, &ts);
      if (done_.load()) return;
      if (sig == SIGINT || sig == SIGTERM) {
        if (first != 0) Force(sig, "a second signal");
        first = sig;
        force_at = absl::Now() + grace_;
        requested_.store(true);
      }
      if (first != 0 && !seen_.load() && absl::Now() >= force_at) {
        Force(first, absl::StrCat(
                         "still stopping after ", absl::FormatDuration(grace_),
                         ": its output was not being read",
                         acks_ ? ", or an acknowledgement waited for the broker"
                               : ""));
      }
    }
  }

  // Ends the process now, from the watcher: what the loop holds is not
  // acknowledged (it comes again where the broker keeps it, as any
  // unacknowledged delivery does).
  [[noreturn]] void Force(int sig, absl::string_view why) {
    const std::string line = absl::StrCat(
        "sift: stopped at once (", why, ")",
        acks_ ? "; the messages it held are not acknowledged: where the "
                "broker keeps them, they come again"
              : "",
        "\n");
    (void)!write(STDERR_FILENO, line.data(), line.size());
    _exit(128 + sig);
  }

  const absl::Duration grace_;
  const bool acks_;
  sigset_t set_;
  std::atomic<bool> requested_{false};
  std::atomic<bool> seen_{false};  // Requested() said true
  std::atomic<bool> done_{false};
  std::thread watcher_;
};

// How long a stop may take before StopSignals ends the process itself: an
// acknowledgement in progress waits up to --connect_timeout.
absl::Duration StopGrace(const Args& args) {
  return absl::Seconds(1) +
         (args.ack ? args.connect_timeout : absl::ZeroDuration());
}

absl::StatusOr<std::unique_ptr<Client>> ConnectOrExplain(const Args& args) {
  // The client library takes inproc:// (a broker embedded in the same
  // process); sift is a process of its own, so it would only wait out
  // --connect_timeout.
  if (absl::StartsWith(args.server, "inproc://")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot connect to \"", NameInError(args.server),
        "\": inproc:// reaches only a broker embedded in the same process, "
        "and sift runs in its own (use tcp:// or ipc://)"));
  }
  ClientOptions options;
  options.endpoint = args.server;
  options.name = absl::StrCat("sift ", std::string(CommandName(args.command)));
  options.connect_timeout = args.connect_timeout;
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
  if (client.ok()) return client;
  // ZeroMQ retries a refused or unresolvable endpoint quietly, so "nothing
  // listens there" cannot be told from "the broker is too busy": both
  // are no answer, and the hint names the likely ones (an ipc:// path
  // with no socket file is told).
  std::string reason(client.status().message());
  if (client.status().code() == absl::StatusCode::kDeadlineExceeded) {
    constexpr char kHint[] =
        "is siftd running there? check --server, or give it longer with "
        "--connect_timeout";
    reason = absl::StrCat("no answer within ",
                          absl::FormatDuration(args.connect_timeout));
    const std::string silence = internal::SilenceHint(args.server);
    if (silence.empty()) {
      absl::StrAppend(&reason, " (", kHint, ")");
    } else {
      absl::StrAppend(&reason, ": ", silence, "; ", kHint);
    }
  }
  // The client's own refusal of the endpoint says "cannot connect to" too.
  return absl::Status(
      client.status().code(),
      absl::StartsWith(reason, "cannot connect to ")
          ? reason
          : absl::StrCat("cannot connect to ", args.server, ": ", reason));
}

// ConnectOrExplain's error: exit 2 if the client refused --server itself
// (InvalidArgument: a usage error, as an empty --server is), else 1.
int FailToConnect(const absl::Status& status) {
  PrintError(status.message());
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

// "publish to TOPIC failed after 2 of 5 messages: WHY": message `n` of
// args.count could not be published. A retained publish past the broker's
// retained bounds was delivered all the same (STORE_FULL "routed, but not
// retained"): said so, since publishing it again would deliver it twice.
std::string PublishFailed(const Args& args, int64_t n, absl::string_view why) {
  if (args.retain && absl::EndsWith(why, "routed, but not retained")) {
    return absl::StrCat(
        args.count > 1 ? absl::StrCat("message ", n, " of ", args.count, " to ")
                       : "the message to ",
        NameInError(args.topic),
        " was routed (to its subscribers, if any) but not kept as its "
        "retained value: ",
        why);
  }
  return absl::StrCat("publish to ", NameInError(args.topic), " failed",
                      args.count > 1 ? absl::StrCat(" after ", n - 1, " of ",
                                                    Messages(args.count))
                                     : "",
                      ": ", why);
}

// Why a confirmed publish failed, as PublishConfirmedWith words a timeout.
std::string ConfirmFailure(const Args& args, const absl::Status& status) {
  if (status.code() == absl::StatusCode::kDeadlineExceeded) {
    return absl::StrCat("no answer from the broker within ",
                        absl::FormatDuration(args.connect_timeout),
                        "; the message may or may not have been routed or "
                        "stored");
  }
  return std::string(status.message());
}

// "; of the 5 messages sent after it before its answer came, 1 published,
// 2 refused, 2 with no answer (...)": what became of the messages sent
// after the first one that failed. A message without an answer (the
// connection lost, a timeout) is not refused: the broker may have routed or
// stored it. Refused and unanswered are said only when there are some.
std::string LaterOutcomes(const Args& args,
                          const ConfirmWindow::Refusal& refused) {
  const int64_t unknown = refused.later_unknown();
  const int64_t later = refused.later_ok + refused.later_refused + unknown;
  if (later == 0) return "";
  std::string text = absl::StrCat("; of the ", Messages(later),
                                  " sent after it before its answer came, ",
                                  refused.later_ok, " published");
  if (refused.later_refused > 0) {
    // A retained publish the broker refuses is one it could not keep
    // (STORE_FULL "routed, but not retained"): routed all the same.
    absl::StrAppend(&text, ", ", refused.later_refused,
                    args.retain ? " routed but not kept as the retained value"
                                : " refused");
  }
  if (unknown > 0) {
    const std::string timed_out = absl::StrCat(
        "no answer within ", absl::FormatDuration(args.connect_timeout));
    absl::StrAppend(
        &text, ", ", unknown, " with no answer (",
        refused.later_timed_out == 0 ? "the connection was lost"
        : refused.later_lost == 0
            ? timed_out
            : absl::StrCat("the connection was lost, or ", timed_out),
        ": ", unknown == 1 ? "it" : "they",
        " may or may not have been routed or stored",
        args.msg_id.empty()
            ? ""
            : "; republish with the same --msg-id to a stream to be sure",
        ")");
  }
  return text;
}

// pub --file's payload: the whole of `f`, read up to `max_bytes` (the
// broker's max_payload_bytes). Errors: the read's, or "more than" once one
// byte past max_bytes came (so /dev/zero or an endless pipe is refused
// without being read into memory). Closes `f` unless it is stdin.
absl::StatusOr<std::string> ReadPayload(const std::string& name, FILE* f,
                                        uint64_t max_bytes) {
  std::string payload;
  char buffer[64 * 1024];
  size_t n;
  while (payload.size() <= max_bytes &&
         (n = std::fread(buffer, 1, sizeof(buffer), f)) > 0) {
    payload.append(buffer, n);
  }
  // A read that failed part way (a directory opens, then reads EISDIR)
  // is not an empty or short message.
  const int read_error = std::ferror(f) ? errno : 0;
  if (f != stdin) std::fclose(f);
  if (read_error != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot read ", name, ": ", std::strerror(read_error)));
  }
  if (payload.size() > max_bytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot publish ", name, ": more than the broker's max_payload_bytes ",
        "(", max_bytes, " bytes); nothing was published"));
  }
  return payload;
}

int RunPub(const Args& args) {
  std::string message = args.message;
  // Opened first, so that a file that is not there fails before any
  // connection; read once connected, up to the broker's limit.
  FILE* file = nullptr;
  const std::string file_name =
      args.payload_file == "-" ? "stdin" : args.payload_file;
  if (!args.payload_file.empty()) {
    // A closed stdin's descriptor 0 would be the next one opened (one of
    // ZeroMQ's), read as the payload.
    if (args.payload_file == "-" && fcntl(STDIN_FILENO, F_GETFD) == -1) {
      return Fail("cannot read stdin (--file -): it is closed");
    }
    file = args.payload_file == "-"
               ? stdin
               : std::fopen(args.payload_file.c_str(), "rb");
    if (file == nullptr) {
      return Fail(absl::StrCat("cannot read ", file_name, ": ",
                               std::strerror(errno)));
    }
  }
  absl::StatusOr<std::unique_ptr<Client>> client = ConnectOrExplain(args);
  if (!client.ok()) {
    if (file != nullptr && file != stdin) std::fclose(file);
    return FailToConnect(client.status());
  }
  if (file != nullptr) {
    absl::StatusOr<std::string> payload =
        ReadPayload(file_name, file, (*client)->max_payload_bytes());
    if (!payload.ok()) return Fail(payload.status().message());
    message = *std::move(payload);
  }
  // A retained or delayed message is always confirmed: the broker may
  // refuse it (a delay past its max_delay_ms, its store full), and a
  // fire-and-forget publish would report success anyway.
  const bool confirm =
      args.confirm || args.retain || args.delay > absl::ZeroDuration();
  // Confirmed: up to --window messages await their answer at once, sent in
  // order by this thread; once one is refused, no more are sent.
  ConfirmWindow window(args.window);
  // The message id is one of the headers, where it was given (not
  // PublishOptions::msg_id, which goes after them all); {n} expands in it.
  const auto msg_id_header = std::find_if(
      args.headers.begin(), args.headers.end(),
      [](const auto& header) { return header.first == kMsgIdHeaderKey; });
  const size_t msg_id_at = msg_id_header - args.headers.begin();
  for (int64_t n = 1; n <= args.count; ++n) {
    const std::string payload =
        args.count > 1 && args.payload_file.empty()
            ? ExpandSequence(message, n)
            : message;
    PublishOptions options;
    options.headers = args.headers;
    options.retain = args.retain;
    options.delay = args.delay;
    if (args.count > 1 && msg_id_at < options.headers.size()) {
      options.headers[msg_id_at].second = ExpandSequence(args.msg_id, n);
    }
    if (confirm) {
      if (!window.WaitForRoom()) break;
      absl::Status status = (*client)->PublishConfirmedAsync(
          args.topic, payload, options, window.Sending(), args.connect_timeout);
      if (!status.ok()) {
        window.NotSent(std::move(status));
        break;
      }
      continue;
    }
    if (absl::Status status =
            (*client)->PublishWith(args.topic, payload, options);
        !status.ok()) {
      return Fail(PublishFailed(args, n, status.message()));
    }
  }
  if (confirm) {
    window.WaitForAll();
    if (std::optional<ConfirmWindow::Refusal> refused = window.FirstRefusal()) {
      return Fail(
          absl::StrCat(PublishFailed(args, refused->n,
                                     ConfirmFailure(args, refused->status)),
                       LaterOutcomes(args, *refused)));
    }
  } else {
    // Fire-and-forget: say "published" only once the broker has read them,
    // and none of them was refused (its ERRORs come before Flush's PONG).
    if (absl::Status flushed = (*client)->Flush(args.connect_timeout);
        !flushed.ok()) {
      return Fail(absl::StrCat(
          "the broker did not read all ", Messages(args.count), " to ",
          NameInError(args.topic), " within ",
          absl::FormatDuration(args.connect_timeout),
          " (--connect_timeout); some may be lost: ", flushed.message()));
    }
    if (const uint64_t refused = (*client)->async_errors(); refused > 0) {
      return Fail(
          absl::StrCat("the broker refused ", refused, " of ",
                       Messages(args.count), " to ", NameInError(args.topic),
                       " (the last: ", (*client)->last_async_error().message(),
                       "); use --confirm to see which"));
    }
  }
  (*client)->Close();
  PrintLine(absl::StrCat("published ", Messages(args.count), " to ",
                         Escape(args.topic), StreamSeqsNote(window.acks())));
  return 0;
}

// Where `fetch` and `sub --stream` start, from their flags.
StreamStart StartOf(const Args& args, DeliverPolicy by_default) {
  StreamStart start;
  start.stream = args.stream;
  start.consumer = args.consumer;
  switch (args.from) {
    case StreamFrom::kDefault:
      start.deliver = by_default;
      break;
    case StreamFrom::kAll:
      start.deliver = DeliverPolicy::kAll;
      break;
    case StreamFrom::kNew:
      start.deliver = DeliverPolicy::kNew;
      break;
    case StreamFrom::kFromSeq:
      start.deliver = DeliverPolicy::kFromSeq;
      start.start_seq = args.from_seq;
      break;
    case StreamFrom::kSince:
      start.deliver = DeliverPolicy::kFromTime;
      start.start_time = args.since_time.has_value()
                             ? *args.since_time
                             : absl::Now() - args.since_ago;
      break;
  }
  return start;
}

// The client library's policy for sub --slow. REQUIRES: slow is set.
sift::SlowPolicy SlowPolicyOf(SlowFlag slow) {
  switch (slow) {
    case SlowFlag::kDropOldest:
      return sift::SlowPolicy::kDropOldest;
    case SlowFlag::kDisconnect:
      return sift::SlowPolicy::kDisconnect;
    default:
      return sift::SlowPolicy::kDropNewest;
  }
}

// The broker's default prefetch (AckOptions::max_in_flight) and ack wait.
constexpr int64_t kDefaultMaxInFlight = 1000;
constexpr absl::Duration kDefaultAckWait = absl::Seconds(30);

// The explicit-ack policy of sub and fetch (--ack and its flags); unset
// without --ack. Fields not given keep the broker's defaults.
std::optional<AckOptions> AckOptionsOf(const Args& args) {
  if (!args.ack) return std::nullopt;
  AckOptions ack;
  ack.ack_wait = args.ack_wait;
  ack.max_deliver = args.max_deliver;
  ack.max_in_flight = args.max_in_flight;
  ack.max_queued = args.max_queued;
  ack.backoff_initial = args.backoff_initial;
  ack.backoff_multiplier = args.backoff_multiplier;
  ack.backoff_max = args.backoff_max;
  ack.backoff_jitter = args.backoff_jitter;
  return ack;
}

// After a message of an explicit-ack subscription or fetch was printed:
// with --ack, acknowledges it (or refuses it, --nack), fire-and-forget: the
// broker answers only an id it no longer holds (Client::async_errors). An
// ack that waits for the broker's answer (Client::AckSync: for a durable
// stream consumer, its position is then on disk), so that `sift` exits only
// once what it printed is acknowledged, is the caller's: SettleOrExplain,
// and RunFetch for its last message.
void Settle(const Args& args, Client& client, const Message& message) {
  if (!args.ack) return;
  // FailedPrecondition (the client is closing) or NotFound (a message of
  // an ended session): nothing comes of the ack either way.
  (args.nack ? client.Nack(message, args.nack_delay) : client.Ack(message))
      .IgnoreError();
}

// Messages of an explicit-ack subscription printed and not known to be
// acknowledged, which are not errors: said on stderr once they stop coming
// (or at the end). They do not count toward --count, which counts messages
// printed and acknowledged.
class Unsettled {
 public:
  explicit Unsettled(absl::Duration ack_timeout) : ack_timeout_(ack_timeout) {}
  Unsettled(const Unsettled&) = delete;
  Unsettled& operator=(const Unsettled&) = delete;
  ~Unsettled() { Report(); }

  // Its session ended before its ack was sent (a reconnect; or the client
  // had no session until the ack's timeout, and took it back): its
  // delivery id is gone, the ack cannot be sent any more.
  void NotAcknowledged() { ++gone_; }

  // An ack showed that the session ended (it was not sent for want of a
  // session, or the session ended before its answer) while the client had
  // reconnected `reconnects` times. Until the client has a new session, the
  // messages still queued are that session's: FromEndedSession.
  void SessionEnded(uint64_t reconnects) { ended_at_ = reconnects; }
  // Whether `message` came in a session that has ended: one the client
  // replaced (Client::FromEarlierSession), or the one SessionEnded saw end
  // when the client has not reconnected since. Its ack cannot be sent, so
  // it is not tried: with the broker gone for good, each try would wait
  // out --connect_timeout, and what was queued would come out one message
  // per timeout.
  bool FromEndedSession(const Client& client, const Message& message) const {
    return client.FromEarlierSession(message) ||
           (ended_at_.has_value() && *ended_at_ == client.reconnects());
  }
  // Its ack was sent and got no answer: the session ended meanwhile
  // (`timed_out` false: Unavailable), or none came within the ack's
  // timeout (DeadlineExceeded). The broker may have applied it.
  void Unanswered(bool timed_out) { ++(timed_out ? timed_out_ : lost_); }

  // Says what was counted since the last report, if anything.
  void Report() {
    if (gone_ > 0) {
      std::fprintf(stderr,
                   "sift: %s printed %s not acknowledged: the session %s "
                   "came in ended before %s acknowledgement was sent (the "
                   "broker restarted, or the connection to it was lost). A "
                   "named stream consumer, or a queue group whose broker kept "
                   "running, gets %s again; other deliveries are gone\n",
                   Messages(gone_).c_str(), gone_ == 1 ? "was" : "were",
                   gone_ == 1 ? "it" : "they", gone_ == 1 ? "its" : "their",
                   gone_ == 1 ? "it" : "them");
    }
    if (const uint64_t unknown = lost_ + timed_out_; unknown > 0) {
      const std::string timeout =
          absl::StrCat("no answer within ", absl::FormatDuration(ack_timeout_));
      const std::string why =
          timed_out_ == 0 ? "the connection to the broker was lost"
          : lost_ == 0
              ? timeout
              : absl::StrCat("the connection to the broker was lost, or ",
                             timeout);
      std::fprintf(stderr,
                   "sift: %s printed may or may not be acknowledged: the "
                   "acknowledgement got no answer (%s). One the broker did "
                   "not apply comes again as any unacknowledged delivery "
                   "does (after a reconnect, to a named stream consumer or a "
                   "queue group whose broker kept running)\n",
                   Messages(unknown).c_str(), why.c_str());
    }
    gone_ = lost_ = timed_out_ = 0;
  }

  // A message whose ack failed otherwise, and those printed after it
  // (the broker ended the subscription): not acknowledged. Says so at once.
  void ReportEnded(uint64_t count) {
    Report();
    std::fprintf(stderr,
                 "sift: %s printed %s not acknowledged: the broker ended "
                 "the subscription\n",
                 Messages(count).c_str(), count == 1 ? "was" : "were");
  }

 private:
  const absl::Duration ack_timeout_;
  uint64_t gone_ = 0;
  uint64_t lost_ = 0;
  uint64_t timed_out_ = 0;
  std::optional<uint64_t> ended_at_;  // see SessionEnded
};

// Settle, where the session may end between the message and its ack's
// answer. A message of the ended session (Client::FromEarlierSession), or
// one whose ack was not carried out for want of a session (HELLO_REQUIRED:
// the broker had lost it, or the client had none until --connect_timeout
// ran out and took the ack back, unsent), cannot be acknowledged any more;
// an ack that got no answer (Unavailable: its session ended after it was
// sent; DeadlineExceeded: none within --connect_timeout) may or may not
// have been applied. Neither is an error: each is counted in *unsettled.
// kFailed: the ack failed otherwise (the broker refused it, e.g.
// UNKNOWN_DELIVERY after its ack wait ran out), *failed says why (the
// caller explains it).
enum class Settled { kDone, kUnsettled, kFailed };
Settled SettleOrExplain(const Args& args, Client& client,
                        const Message& message, Unsettled* unsettled,
                        absl::Status* failed) {
  if (!args.ack || args.nack) {
    Settle(args, client, message);
    return Settled::kDone;
  }
  const uint64_t reconnects = client.reconnects();
  const bool old = unsettled->FromEndedSession(client, message);
  const absl::Status acked =
      old ? absl::OkStatus() : client.AckSync(message, args.connect_timeout);
  if (acked.ok() && !old) return Settled::kDone;
  // Before Unavailable, which HELLO_REQUIRED is too.
  if (protocol::WireCodeOf(acked) == wire::HELLO_REQUIRED) {
    unsettled->SessionEnded(reconnects);
    unsettled->NotAcknowledged();
    return Settled::kUnsettled;
  }
  if (acked.code() == absl::StatusCode::kUnavailable ||
      acked.code() == absl::StatusCode::kDeadlineExceeded) {
    const bool timed_out =
        acked.code() == absl::StatusCode::kDeadlineExceeded;
    if (!timed_out) unsettled->SessionEnded(reconnects);
    unsettled->Unanswered(timed_out);
    return Settled::kUnsettled;
  }
  if (old || client.FromEarlierSession(message)) {
    unsettled->NotAcknowledged();
    return Settled::kUnsettled;
  }
  *failed = acked;
  return Settled::kFailed;
}

// After an ack failed: the broker's reason if it ended the subscription
// (its stream was deleted), with the messages queued before its notice in
// *left; else nullopt. The broker drops the subscription's deliveries with
// it and says so, which sift may read only after it printed one of them
// and failed to acknowledge it: Next() returns the notice after the
// messages queued before it. It is waited for up to kPollSlice.
std::optional<absl::Status> EndOfSubscription(Subscription& sub,
                                              std::vector<Message>* left) {
  const absl::Time until = absl::Now() + kPollSlice;
  for (;;) {
    const absl::Time now = absl::Now();
    absl::StatusOr<Message> next =
        sub.Next(std::max(until - now, absl::ZeroDuration()));
    if (next.ok()) {
      left->push_back(*std::move(next));
    } else if (next.status().code() == absl::StatusCode::kCancelled) {
      return next.status();
    } else if (next.status().code() != absl::StatusCode::kResourceExhausted) {
      return std::nullopt;  // nothing more: the subscription lives on
    }
    if (now >= until) return std::nullopt;
  }
}

// The client library's notice of messages its subscription queue dropped
// ("N messages were dropped here: ... (Next() did not keep up; bounds:
// ClientOptions::...)"), in the CLI's terms: its count, and which queue.
std::string DroppedInQueue(absl::string_view notice) {
  constexpr absl::string_view kHere = " dropped here";
  const size_t at = notice.find(kHere);
  if (at == absl::string_view::npos) return std::string(notice);
  const ClientOptions defaults;  // sift keeps the library's queue bounds
  return absl::StrCat(notice.substr(0, at + kHere.size()),
                      ": sift's own queue (",
                      defaults.subscription_queue_max_bytes >> 20, " MiB or ",
                      defaults.subscription_queue_max_messages,
                      " messages) was full, its output did not keep up");
}

// Shared by sub and reply: subscribes to args.topic and hands each message to
// `handle` until args.count messages were handled (0: no limit), the
// deadline passed, or a stop signal came. `handle` returns whether the
// message counts. Returns the exit status.
template <typename Handler>
int ReceiveLoop(const Args& args, StopSignals& stop, Client& client,
                absl::Duration timeout, const char* what, Handler handle) {
  SubscribeOptions options;
  options.queue_group = args.queue_group;
  options.timeout = args.connect_timeout;
  options.filter = args.filter;
  options.ack = AckOptionsOf(args);
  if (options.ack && args.count > 0 && !args.max_in_flight) {
    // Hold no more than --count: what the broker hands this subscription
    // beyond what it prints would come back to others as a failed delivery
    // (its consumer left), and count toward --max-deliver.
    options.ack->max_in_flight = static_cast<uint32_t>(
        std::min<int64_t>(args.count, kDefaultMaxInFlight));
  }
  if (!args.stream.empty()) options.stream = StartOf(args, DeliverPolicy::kNew);
  if (args.slow != SlowFlag::kUnset) {
    options.slow = SlowConsumer{SlowPolicyOf(args.slow), args.max_pending,
                                args.max_pending_msgs};
  }
  for (const Args::Plugin& p : args.plugins) {
    options.plugins.push_back({p.name, p.settings});
  }
  absl::StatusOr<std::unique_ptr<Subscription>> sub =
      client.Subscribe(args.topic, options);
  if (!sub.ok()) {
    return Fail(absl::StrCat("cannot subscribe to ", NameInError(args.topic),
                             ": ", sub.status().message()));
  }
  const absl::Time deadline = timeout == absl::InfiniteDuration()
                                  ? absl::InfiniteFuture()
                                  : absl::Now() + timeout;
  int64_t handled = 0;
  uint64_t broker_dropped = 0;
  uint64_t reconnects = client.reconnects();
  // Messages of an explicit-ack subscription printed and not known to be
  // acknowledged (a reconnect, an ack without an answer).
  Unsettled unsettled(args.connect_timeout);
  while (args.count == 0 || handled < args.count) {
    if (stop.Requested()) return 0;
    // A new session: the broker restarted, the connection was lost (a
    // broker stall past the heartbeat, too), or the broker closed it (e.g.
    // --slow disconnect). The client subscribed again; live messages
    // published in between were not delivered.
    if (const uint64_t now_reconnects = client.reconnects();
        now_reconnects != reconnects) {
      std::fprintf(stderr,
                   "sift: the session with the broker ended (it restarted, "
                   "the connection was lost, or --slow disconnect); "
                   "reconnected and subscribed again\n");
      reconnects = now_reconnects;
    }
    // The broker tells a client that fell behind how much it dropped for it
    // (SLOW_CONSUMER notices): say so too.
    if (const uint64_t now_dropped = client.broker_dropped();
        now_dropped != broker_dropped) {
      std::fprintf(stderr,
                   "sift: the broker dropped %llu messages for this client "
                   "(it did not read fast enough; %llu in all)\n",
                   static_cast<unsigned long long>(now_dropped -
                                                   broker_dropped),
                   static_cast<unsigned long long>(now_dropped));
      broker_dropped = now_dropped;
    }
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      if (args.count == 0) return 0;  // the timeout only bounded the wait
      return Fail(absl::StrCat("timed out after ",
                               absl::FormatDuration(timeout), ": ", handled,
                               " of ", Messages(args.count), " ", what));
    }
    absl::StatusOr<Message> message =
        (*sub)->Next(std::min(kPollSlice, deadline - now));
    if (!message.ok()) {
      if (message.status().code() == absl::StatusCode::kDeadlineExceeded) {
        unsettled.Report();  // they stopped coming
        continue;
      }
      if (message.status().code() == absl::StatusCode::kResourceExhausted) {
        // Messages came faster than they were printed (stdout slow or
        // blocked) and the client's queue dropped some: say so, go on.
        // Without --ack they are lost (at most once). With it they were
        // delivered and are never acknowledged: the broker delivers them
        // again once their ack wait runs out.
        PrintError(absl::StrCat(
            "subscription to ", NameInError(args.topic), ": ",
            DroppedInQueue(message.status().message()),
            args.ack ? absl::StrCat("; with --ack they are not lost: "
                                    "unacknowledged, they are delivered "
                                    "again once their ack wait (",
                                    absl::FormatDuration(args.ack_wait.value_or(
                                        kDefaultAckWait)),
                                    ") runs out")
                     : ""));
        continue;
      }
      return Fail(absl::StrCat("subscription to ", NameInError(args.topic),
                               " failed: ", message.status().message()));
    }
    // A message received before a reconnect is printed all the same: an
    // ephemeral or in-memory consumer would never get it again.
    if (!unsettled.FromEndedSession(client, *message)) unsettled.Report();
    const bool counts = handle(*message);
    // Each ack waits for the broker: the next message may never come.
    absl::Status ack_failed;
    switch (SettleOrExplain(args, client, *message, &unsettled,
                            &ack_failed)) {
      case Settled::kDone:
        if (counts) ++handled;
        break;
      case Settled::kUnsettled:
        break;
      case Settled::kFailed: {
        // When the broker ended the subscription, its messages left are
        // printed and the reason said as without --ack (none can be
        // acknowledged any more). Otherwise those taken from the queue are
        // not printed: unacknowledged, they come again to a subscription
        // that lives on.
        std::vector<Message> left;
        if (std::optional<absl::Status> ended =
                EndOfSubscription(**sub, &left)) {
          for (const Message& m : left) handle(m);
          // This message and those left: none acknowledged.
          unsettled.ReportEnded(1 + left.size());
          return Fail(absl::StrCat("subscription to ", NameInError(args.topic),
                                   " failed: ", ended->message()));
        }
        return Fail(absl::StrCat("acknowledging ", Escape(message->topic()),
                                 " failed: ", ack_failed.message()));
      }
    }
  }
  return 0;
}

int RunSub(const Args& args) {
  // Before Connect: see StopSignals.
  StopSignals stop(StopGrace(args), args.ack);
  absl::StatusOr<std::unique_ptr<Client>> client = ConnectOrExplain(args);
  if (!client.ok()) return FailToConnect(client.status());
  return ReceiveLoop(args, stop, **client, args.timeout, "received",
                     [&args](const Message& message) {
                       PrintLine(MessageLine(message.topic(),
                                             message.stream_seq(),
                                             message.payload()));
                       if (args.show_headers) PrintHeaders(message);
                       return true;
                     });
}

// After the last acknowledgement of a fetch failed (`acked`): the broker's
// reason if the stream was deleted since the fetch was answered, else
// nullopt. The broker drops the consumer's deliveries with the stream, so
// that their acks are refused (UNKNOWN_DELIVERY), and tells a FETCH still
// waiting why (Fetch fails), a subscription too (EndOfSubscription), but
// not a fetch it answered already: sift asks for the stream.
std::optional<absl::Status> DeletedStream(const Args& args, Client& client,
                                          const Message& message,
                                          const absl::Status& acked) {
  if (protocol::WireCodeOf(acked) != wire::UNKNOWN_DELIVERY ||
      client.FromEarlierSession(message)) {
    return std::nullopt;
  }
  absl::StatusOr<StreamInfo> info =
      client.GetStreamInfo(args.stream, args.connect_timeout);
  if (info.ok() ||
      protocol::WireCodeOf(info.status()) != wire::UNKNOWN_STREAM) {
    return std::nullopt;
  }
  return info.status();
}

int RunFetch(const Args& args) {
  absl::StatusOr<std::unique_ptr<Client>> client = ConnectOrExplain(args);
  if (!client.ok()) return FailToConnect(client.status());
  FetchOptions options;
  options.start = StartOf(args, DeliverPolicy::kAll);
  options.batch = static_cast<uint32_t>(args.batch);
  options.max_wait = args.wait;
  options.pattern = args.filter_topic;
  options.ack = AckOptionsOf(args);
  absl::StatusOr<std::vector<Message>> messages =
      (*client)->Fetch(options, args.connect_timeout);
  if (!messages.ok()) {
    return Fail(absl::StrCat("cannot fetch from stream ",
                             NameInError(args.stream), ": ",
                             messages.status().message()));
  }
  Client& c = **client;
  const uint64_t refused_before = c.async_errors();
  for (size_t i = 0; i < messages->size(); ++i) {
    const Message& message = (*messages)[i];
    PrintLine(
        MessageLine(message.topic(), message.stream_seq(), message.payload()));
    if (args.show_headers) PrintHeaders(message);
    if (i + 1 < messages->size() || !args.ack || args.nack) {
      Settle(args, c, message);
      continue;
    }
    // The last ack waits for the broker's answer, which comes once it and
    // every ack before it are processed (and saved, for a named consumer).
    const absl::Status acked = c.AckSync(message, args.connect_timeout);
    if (acked.ok()) break;
    std::optional<absl::Status> gone = DeletedStream(args, c, message, acked);
    if (!gone) {
      return Fail(absl::StrCat("acknowledging ", Escape(message.topic()),
                               " failed: ", acked.message()));
    }
    // The broker dropped the consumer's deliveries with the stream, as it
    // does a subscription's (ReceiveLoop), and refused the last ack. The
    // earlier acks went out fire-and-forget, packed many to an ACK, and an
    // ERROR answers a whole ACK ("and N more"): with none, every earlier
    // one was applied; with any, how many were is not known here.
    const bool earlier_refused = c.async_errors() > refused_before;
    const int64_t printed = static_cast<int64_t>(messages->size());
    PrintError(absl::StrCat(
        printed == 1        ? "the message printed was"
        : !earlier_refused ? absl::StrCat("the last of the ",
                                          Messages(printed), " printed was")
                            : absl::StrCat("of the ", Messages(printed),
                                           " printed, the last and some "
                                           "before it were"),
        " not acknowledged: the stream was deleted (with its records)"));
    return Fail(absl::StrCat("fetch from stream ", NameInError(args.stream),
                             " failed: ", gone->message()));
  }
  c.Close();  // flushes the NACKs
  return 0;
}

int RunStream(const Args& args) {
  absl::StatusOr<std::unique_ptr<Client>> client = ConnectOrExplain(args);
  if (!client.ok()) return FailToConnect(client.status());
  Client& c = **client;
  const absl::Duration timeout = args.connect_timeout;
  switch (args.command) {
    case Command::kStreamAdd: {
      StreamConfig config;
      config.name = args.stream;
      config.subjects = args.subjects;
      config.max_age = args.max_age;
      config.max_bytes = args.max_bytes;
      config.max_msgs = args.max_msgs;
      config.fsync = args.fsync;
      config.dedup_window = args.dedup_window;
      config.dedup_max_ids = args.dedup_max_ids;
      config.segment_max_bytes = args.segment_bytes;
      absl::StatusOr<StreamInfo> info = c.AddStream(config, timeout);
      if (absl::IsDeadlineExceeded(info.status())) {
        // The broker answers once the retained values and delayed messages
        // it already held for the stream's topics are on disk: many take
        // longer than the timeout, and the stream exists meanwhile.
        return Fail(absl::StrCat(
            "no answer to stream add ", NameInError(args.stream), ": ",
            info.status().message(),
            ". The stream may have been added, with the retained values and "
            "delayed messages held for its topics still being written to "
            "disk (not yet safe from a crash); `sift stream add` again with "
            "the same settings and a longer --connect_timeout waits for "
            "them"));
      }
      if (!info.ok()) {
        return Fail(absl::StrCat("cannot add stream ", NameInError(args.stream),
                                 ": ", info.status().message()));
      }
      const std::string text = FormatStreamInfo(*info);
      std::fwrite(text.data(), 1, text.size(), stdout);
      return 0;
    }
    case Command::kStreamInfo: {
      absl::StatusOr<StreamInfo> info = c.GetStreamInfo(args.stream, timeout);
      if (!info.ok()) {
        return Fail(absl::StrCat("cannot get stream ", NameInError(args.stream),
                                 ": ", info.status().message()));
      }
      const std::string text = FormatStreamInfo(*info);
      std::fwrite(text.data(), 1, text.size(), stdout);
      return 0;
    }
    case Command::kStreamLs: {
      absl::StatusOr<std::vector<StreamInfo>> streams = c.ListStreams(timeout);
      if (!streams.ok()) {
        return Fail(absl::StrCat("cannot list streams: ",
                                 streams.status().message()));
      }
      const std::string text = FormatStreamList(*streams);
      std::fwrite(text.data(), 1, text.size(), stdout);
      return 0;
    }
    case Command::kStreamRm:
      if (absl::Status s = c.DeleteStream(args.stream, timeout); !s.ok()) {
        return Fail(absl::StrCat("cannot delete stream ",
                                 NameInError(args.stream), ": ", s.message()));
      }
      PrintLine(absl::StrCat("deleted stream ", Escape(args.stream)));
      return 0;
    case Command::kStreamRmConsumer:
      if (absl::Status s = c.DeleteConsumer(args.stream, args.consumer, timeout);
          !s.ok()) {
        return Fail(absl::StrCat("cannot delete consumer ",
                                 NameInError(args.consumer), " of stream ",
                                 NameInError(args.stream), ": ", s.message()));
      }
      PrintLine(absl::StrCat("deleted consumer ", Escape(args.consumer),
                             " of stream ", Escape(args.stream)));
      return 0;
    default:
      return 2;
  }
}

int RunReply(const Args& args) {
  StopSignals stop(StopGrace(args), args.ack);
  absl::StatusOr<std::unique_ptr<Client>> client = ConnectOrExplain(args);
  if (!client.ok()) return FailToConnect(client.status());
  Client& c = **client;
  return ReceiveLoop(
      args, stop, c, absl::InfiniteDuration(), "answered",
      [&args, &c](const Message& request) {
        if (request.reply_to().empty()) {
          PrintError(absl::StrCat("not answering a message on ",
                                  Escape(request.topic()),
                                  ": it has no reply_to"));
          return false;
        }
        const std::string_view response =
            args.echo ? request.payload() : std::string_view(*args.response);
        if (absl::Status status = c.Publish(request.reply_to(), response);
            !status.ok()) {
          PrintError(absl::StrCat("cannot reply to ",
                                  Escape(request.reply_to()), ": ",
                                  status.message()));
          return false;
        }
        PrintLine(absl::StrCat("[", Escape(request.topic()), "] ",
                               Escape(request.payload()), " -> ",
                               Escape(response)));
        return true;
      });
}

int RunReq(const Args& args) {
  absl::StatusOr<std::unique_ptr<Client>> client = ConnectOrExplain(args);
  if (!client.ok()) return FailToConnect(client.status());
  absl::StatusOr<Message> reply =
      (*client)->Request(args.topic, args.message, args.headers, args.timeout);
  if (!reply.ok()) {
    if (reply.status().code() == absl::StatusCode::kDeadlineExceeded) {
      return Fail(absl::StrCat("no reply on ", NameInError(args.topic),
                               " within ", absl::FormatDuration(args.timeout)));
    }
    return Fail(absl::StrCat("request on ", NameInError(args.topic),
                             " failed: ", reply.status().message()));
  }
  PrintLine(Escape(reply->payload()));
  if (args.show_headers) PrintHeaders(*reply);
  return 0;
}

int RunStats(const Args& args) {
  absl::StatusOr<std::unique_ptr<Client>> client = ConnectOrExplain(args);
  if (!client.ok()) return FailToConnect(client.status());
  absl::StatusOr<BrokerStats> stats = (*client)->Stats(args.connect_timeout);
  if (!stats.ok()) {
    return Fail(absl::StrCat("cannot get stats from ", args.server, ": ",
                             stats.status().message()));
  }
  if (!args.json) {
    const std::string text = FormatStats(*stats);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  absl::StatusOr<std::string> json = StatsToJson(*stats);
  if (!json.ok()) return Fail(json.status().message());
  PrintLine(*json);
  return 0;
}

int RunReload(const Args& args) {
  absl::StatusOr<std::unique_ptr<Client>> client = ConnectOrExplain(args);
  if (!client.ok()) return FailToConnect(client.status());
  absl::Status s = (*client)->Reload(absl::Seconds(30));
  if (!s.ok()) {
    return Fail(absl::StrCat("reload refused by ", args.server, ": ",
                             s.message()));
  }
  PrintLine("reloaded: the broker's new plugin config is in force");
  return 0;
}

int Main(int argc, char** argv) {
  const std::vector<std::string> words(argv + 1, argv + argc);
  if (words.empty()) {
    std::fputs(Usage().c_str(), stderr);
    return 2;
  }
  const char* env_server = std::getenv("SIFT_SERVER");
  absl::StatusOr<Args> args =
      ParseArgs(words, env_server == nullptr ? "" : env_server);
  if (!args.ok()) {
    PrintError(args.status().message());  // a word given may be raw in it
    return 2;
  }
  switch (args->command) {
    case Command::kHelp:
      std::fputs(args->help_for.has_value()
                     ? CommandUsage(*args->help_for).c_str()
                     : Usage().c_str(),
                 stdout);
      return 0;
    case Command::kVersion:
      std::printf("sift %s (protocol %d)\n", kSiftVersion,
                  static_cast<int>(wire::PROTOCOL_VERSION_CURRENT));
      return 0;
    case Command::kPub:
      return RunPub(*args);
    case Command::kSub:
      return RunSub(*args);
    case Command::kReq:
      return RunReq(*args);
    case Command::kReply:
      return RunReply(*args);
    case Command::kStats:
      return RunStats(*args);
    case Command::kReload:
      return RunReload(*args);
    case Command::kFetch:
      return RunFetch(*args);
    case Command::kStreamAdd:
    case Command::kStreamInfo:
    case Command::kStreamLs:
    case Command::kStreamRm:
    case Command::kStreamRmConsumer:
      return RunStream(*args);
    case Command::kStream:  // help only
      break;
  }
  return 2;
}

}  // namespace
}  // namespace sift::cli

int main(int argc, char** argv) { return sift::cli::Main(argc, argv); }
