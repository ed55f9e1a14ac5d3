// Command-line parsing for the `sift` command: which command to run, with
// which arguments, plus the help and version texts.
//
// The grammar is `sift [GLOBAL FLAGS] COMMAND ARGS... [FLAGS]`: flags may
// appear anywhere (before or after the command, between its arguments), as
// `--flag value` or `--flag=value`; `--` ends the flags, so a later argument
// that starts with '-' is taken literally. Each command accepts the global
// flags and its own; a flag of another command is a usage error, and so is
// a flag given twice, except the repeatable --header, --subjects, --plugin
// and --with. Numbers are plain decimal (broker/base/number_text.h). The
// parser does no I/O and reads no environment, so it is fully
// unit-testable.
//
// Thread-safety: free functions, no shared state.
#ifndef SIFT_CLIENTS_CLI_ARGS_H_
#define SIFT_CLIENTS_CLI_ARGS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sift::cli {

// The version printed by `sift --version`.
inline constexpr char kSiftVersion[] = "0.1.0";

// Most confirms `pub --window` may keep awaited at once (the client
// library's default ClientOptions::max_async_confirms).
inline constexpr int64_t kMaxConfirmWindow = 65536;

// The header a stream deduplicates on (the client library's kMsgIdHeader).
inline constexpr char kMsgIdHeaderKey[] = "sift-msg-id";

enum class Command {
  kPub,
  kSub,
  kReq,
  kReply,
  kStats,
  kReload,
  kFetch,              // fetch STREAM: poll a stream
  kStreamAdd,          // stream add NAME
  kStreamInfo,         // stream info NAME
  kStreamLs,           // stream ls
  kStreamRm,           // stream rm NAME
  kStreamRmConsumer,   // stream rm-consumer STREAM NAME
  kStream,   // only as help_for: the overview of the stream commands
  kHelp,     // print usage: overall, or of `help_for`
  kVersion,  // print the version
};

// Where `fetch` and `sub --stream` start reading a stream.
enum class StreamFrom {
  kDefault,  // fetch: the first record; sub --stream: new records
  kAll,      // --all
  kNew,      // --new
  kFromSeq,  // --from-seq N
  kSince,    // --since TIME
};

// sub --slow: what the broker does when this subscriber falls behind.
enum class SlowFlag {
  kUnset,       // not given: the broker's default (drop-newest)
  kDropNewest,  // drop-newest
  kDropOldest,  // drop-oldest
  kDisconnect,  // disconnect
};

// The parsed command line. Fields that a command does not take keep their
// defaults.
struct Args {
  Command command = Command::kHelp;
  // For kHelp: the command whose usage to print; empty for the overview.
  std::optional<Command> help_for;

  // Global flags.
  std::string server;  // --server, else $SIFT_SERVER, else the default
  absl::Duration connect_timeout = absl::Seconds(5);

  // Positional arguments.
  std::string topic;    // pub, req, reply: TOPIC; sub: PATTERN
  std::string message;  // pub, req: MESSAGE

  // Command flags.
  int64_t count = 1;        // pub: default 1; sub, reply: 0 = no limit
  bool confirm = false;     // pub
  // pub, confirmed (--confirm, --retain, --delay): --window N, the most
  // messages awaiting their confirm at once, 1 to kMaxConfirmWindow.
  int64_t window = 256;
  std::string queue_group;  // sub, reply
  // sub: how long to wait for messages (infinite by default);
  // req: how long to wait for the reply (5s by default).
  absl::Duration timeout = absl::InfiniteDuration();
  bool echo = false;                    // reply
  std::optional<std::string> response;  // reply: --response TEXT
  bool json = false;                    // stats
  // pub, req: --header KEY=VALUE, in the order given (repeatable). The
  // message id (msg_id) is one of them, as kMsgIdHeaderKey, where it was
  // first given.
  std::vector<std::pair<std::string, std::string>> headers;
  bool show_headers = false;            // sub, req: --headers
  // sub: --filter EXPR (a header expression the broker evaluates), and
  // --plugin NAME, each followed by its --with KEY=VALUE settings.
  std::string filter;
  struct Plugin {
    std::string name;
    std::vector<std::pair<std::string, std::string>> settings;
  };
  std::vector<Plugin> plugins;
  // sub, fetch: explicit acks, each message acknowledged once printed (or
  // refused: `nack`).
  bool ack = false;
  // sub, fetch with --ack: the explicit-ack policy, field by field as the C++
  // client's AckOptions (unset: the broker's default). Durations are whole
  // milliseconds (the wire's unit), at most 2^32-1 ms. max_queued: sub only.
  std::optional<absl::Duration> ack_wait;         // --ack-wait D (>= 1ms)
  std::optional<uint32_t> max_deliver;            // --max-deliver N (0: no limit)
  std::optional<uint32_t> max_in_flight;          // --max-in-flight N (>= 1)
  std::optional<uint32_t> max_queued;             // --max-queued N
  std::optional<absl::Duration> backoff_initial;  // --backoff-initial D
  std::optional<double> backoff_multiplier;       // --backoff-multiplier X
  std::optional<absl::Duration> backoff_max;      // --backoff-max D
  std::optional<double> backoff_jitter;           // --backoff-jitter X
  // sub, fetch with --ack: --nack, or --nack-delay D: refuse each message
  // once printed (NACK), to be redelivered after D (0: the backoff), up to
  // max_deliver attempts, then dead-lettered.
  bool nack = false;
  absl::Duration nack_delay = absl::ZeroDuration();
  // sub: --slow POLICY, --max-pending BYTES (0: the broker's per-client
  // bound), --max-pending-msgs N (drop-oldest; 0: the broker's default).
  SlowFlag slow = SlowFlag::kUnset;
  uint64_t max_pending = 0;
  uint32_t max_pending_msgs = 0;
  bool retain = false;                           // pub: --retain
  std::string payload_file;                      // pub: --file F ("-": stdin)
  absl::Duration delay = absl::ZeroDuration();   // pub: --delay D
  // pub: --msg-id ID, or --header Msg-Id=ID (any case; req too): the value
  // of its entry in `headers` ({n} expands, with pub --count).
  std::string msg_id;

  // Streams. `stream`: the NAME of stream add/info/rm, the STREAM of fetch
  // and stream rm-consumer, sub's --stream. `consumer`: --consumer of fetch
  // and sub, the NAME of stream rm-consumer.
  std::string stream;
  std::string consumer;
  // stream add: --subjects (comma-separated, repeatable), limits (0:
  // unlimited), --fsync normalized to "always", "never" or "<N>ms" (""
  // when not given: the broker's default), --dedup-window (0: default),
  // --dedup-max-ids (0: default; given, 1 to 100000000).
  std::vector<std::string> subjects;
  absl::Duration max_age = absl::ZeroDuration();
  uint64_t max_bytes = 0;
  uint64_t max_msgs = 0;
  std::string fsync;
  absl::Duration dedup_window = absl::ZeroDuration();
  uint64_t dedup_max_ids = 0;
  uint64_t segment_bytes = 0;  // --segment-bytes (0: the broker's default)
  // fetch: --batch N (1..10000), --wait D (0: answer at once),
  // --filter-topic PATTERN.
  int64_t batch = 1;
  absl::Duration wait = absl::ZeroDuration();
  std::string filter_topic;
  // fetch, sub --stream: where a new consumer starts. --since is either a
  // time (RFC 3339) or a duration before now (resolved when run).
  StreamFrom from = StreamFrom::kDefault;
  uint64_t from_seq = 0;
  std::optional<absl::Time> since_time;
  absl::Duration since_ago = absl::ZeroDuration();
};

// Parses `argv` without the program name, e.g. {"pub", "a.b", "hi"}.
// `env_server` is the value of $SIFT_SERVER ("" if unset); --server overrides
// it. Usage errors are InvalidArgument with a one-line message meant to
// follow "sift: ", e.g. "unknown command 'pbu' (see sift --help)".
// --help (or -h) anywhere wins over every other argument except an unknown
// command; --version wins over everything.
absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv,
                               std::string_view env_server);

// The overview printed by `sift --help`: every command and the global flags.
std::string Usage();
// The usage of one command: its arguments, flags and defaults, and examples.
// REQUIRES: command is not kHelp or kVersion.
std::string CommandUsage(Command command);
// "pub", "sub", "stream add", ...
std::string_view CommandName(Command command);

}  // namespace sift::cli

#endif  // SIFT_CLIENTS_CLI_ARGS_H_
