#include "clients/cli/args.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "broker/base/flag_text.h"
#include "broker/base/number_text.h"

namespace sift::cli {
namespace {

constexpr char kDefaultServer[] = "tcp://127.0.0.1:7440";

// Bit per runnable command, for the flag table.
constexpr unsigned Bit(Command c) { return 1u << static_cast<unsigned>(c); }
constexpr unsigned kGlobal = 0;  // every command takes it

struct FlagSpec {
  const char* name;  // without "--", words joined by '_'
  bool takes_value;
  unsigned commands;  // Bit()s of the commands that take it, or kGlobal
  // May be given more than once, each adding to the others (--header).
  // Another flag given twice is a usage error, not the last one winning.
  bool repeatable = false;
};

// Every flag of every command. A flag has the same arity everywhere, which
// lets the tokenizer consume values before it knows the command (global flags
// may come first).
constexpr unsigned kStreamReaders = Bit(Command::kSub) | Bit(Command::kFetch);

constexpr FlagSpec kFlags[] = {
    {"server", true, kGlobal},
    {"connect_timeout", true, kGlobal},
    {"help", false, kGlobal},
    {"version", false, kGlobal},
    {"count", true,
     Bit(Command::kPub) | Bit(Command::kSub) | Bit(Command::kReply)},
    {"confirm", false, Bit(Command::kPub)},
    {"window", true, Bit(Command::kPub)},
    {"queue", true, Bit(Command::kSub) | Bit(Command::kReply)},
    {"timeout", true, Bit(Command::kSub) | Bit(Command::kReq)},
    {"echo", false, Bit(Command::kReply)},
    {"response", true, Bit(Command::kReply)},
    {"json", false, Bit(Command::kStats)},
    {"header", true, Bit(Command::kPub) | Bit(Command::kReq),
     /*repeatable=*/true},
    {"headers", false,
     Bit(Command::kSub) | Bit(Command::kReq) | Bit(Command::kFetch)},
    {"filter", true, Bit(Command::kSub)},
    {"plugin", true, Bit(Command::kSub), /*repeatable=*/true},
    {"with", true, Bit(Command::kSub), /*repeatable=*/true},
    {"ack", false, Bit(Command::kSub) | Bit(Command::kFetch)},
    // The explicit-ack policy (AckOptions) and NACKs; they need --ack.
    {"ack_wait", true, kStreamReaders},
    {"max_deliver", true, kStreamReaders},
    {"max_in_flight", true, kStreamReaders},
    {"max_queued", true, Bit(Command::kSub)},
    {"backoff_initial", true, kStreamReaders},
    {"backoff_multiplier", true, kStreamReaders},
    {"backoff_max", true, kStreamReaders},
    {"backoff_jitter", true, kStreamReaders},
    {"nack", false, kStreamReaders},
    {"nack_delay", true, kStreamReaders},
    {"slow", true, Bit(Command::kSub)},
    {"max_pending", true, Bit(Command::kSub)},
    {"max_pending_msgs", true, Bit(Command::kSub)},
    {"retain", false, Bit(Command::kPub)},
    {"file", true, Bit(Command::kPub)},
    {"delay", true, Bit(Command::kPub)},
    {"msg_id", true, Bit(Command::kPub)},
    {"stream", true, Bit(Command::kSub)},
    {"consumer", true, kStreamReaders},
    {"all", false, kStreamReaders},
    {"new", false, kStreamReaders},
    {"from_seq", true, kStreamReaders},
    {"since", true, kStreamReaders},
    {"batch", true, Bit(Command::kFetch)},
    {"wait", true, Bit(Command::kFetch)},
    {"filter_topic", true, Bit(Command::kFetch)},
    {"subjects", true, Bit(Command::kStreamAdd), /*repeatable=*/true},
    {"max_age", true, Bit(Command::kStreamAdd)},
    {"max_bytes", true, Bit(Command::kStreamAdd)},
    {"max_msgs", true, Bit(Command::kStreamAdd)},
    {"fsync", true, Bit(Command::kStreamAdd)},
    {"dedup_window", true, Bit(Command::kStreamAdd)},
    {"dedup_max_ids", true, Bit(Command::kStreamAdd)},
    {"segment_bytes", true, Bit(Command::kStreamAdd)},
};

const FlagSpec* FindFlag(std::string_view name) {
  for (const FlagSpec& spec : kFlags) {
    if (name == spec.name) return &spec;
  }
  return nullptr;
}

struct CommandInfo {
  Command command;
  const char* name;
  // Positional argument names, e.g. {"TOPIC", "MESSAGE"}.
  std::vector<const char*> positionals;
};

const std::vector<CommandInfo>& Commands() {
  static const auto* const kCommands = new std::vector<CommandInfo>{
      {Command::kPub, "pub", {"TOPIC", "MESSAGE"}},
      {Command::kSub, "sub", {"PATTERN"}},
      {Command::kReq, "req", {"TOPIC", "MESSAGE"}},
      {Command::kReply, "reply", {"TOPIC"}},
      {Command::kStats, "stats", {}},
      {Command::kReload, "reload", {}},
      {Command::kFetch, "fetch", {"STREAM"}},
      {Command::kStreamAdd, "stream add", {"NAME"}},
      {Command::kStreamInfo, "stream info", {"NAME"}},
      {Command::kStreamLs, "stream ls", {}},
      {Command::kStreamRm, "stream rm", {"NAME"}},
      {Command::kStreamRmConsumer, "stream rm-consumer", {"STREAM", "NAME"}},
  };
  return *kCommands;
}

const CommandInfo* FindCommand(std::string_view name) {
  for (const CommandInfo& info : Commands()) {
    if (name == info.name) return &info;
  }
  return nullptr;
}

absl::Status UsageError(std::string_view message) {
  return absl::InvalidArgumentError(std::string(message));
}

// A flag as written on the command line, after tokenizing.
struct FlagUse {
  const FlagSpec* spec;
  std::string written;  // as the user spelled it, e.g. "--connect-timeout"
  std::optional<std::string> value;  // after '=' or the next argument
};

struct Tokens {
  std::vector<std::string> positionals;
  std::vector<FlagUse> flags;
  bool help = false;
  bool version = false;
};

// A flag the tokenizer refused, with the positionals read before it (which
// name the command, when it came before the flag).
struct TokenError {
  std::string message;  // "unknown flag --x", "flag --x needs a value"
  bool unknown_flag;    // the message wants a pointer to the usage
  std::vector<std::string> positionals;
};

absl::StatusOr<Tokens> Tokenize(const std::vector<std::string>& argv,
                                TokenError* error) {
  Tokens tokens;
  auto fail = [&](std::string message, bool unknown_flag) {
    *error = {std::move(message), unknown_flag, tokens.positionals};
    return UsageError(error->message);
  };
  bool flags_ended = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (flags_ended || arg == "-" || arg.empty() || arg[0] != '-') {
      tokens.positionals.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_ended = true;
      continue;
    }
    if (arg == "-h") {
      tokens.help = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      return fail(absl::StrCat("unknown flag ", arg,
                               " (flags start with --; put -- before "
                               "arguments that start with '-')"),
                  /*unknown_flag=*/false);
    }
    std::string_view body = std::string_view(arg).substr(2);
    std::optional<std::string> value;
    if (size_t eq = body.find('='); eq != std::string_view::npos) {
      value = std::string(body.substr(eq + 1));
      body = body.substr(0, eq);
    }
    // --connect-timeout and --connect_timeout are the same flag.
    std::string name = absl::StrReplaceAll(std::string(body), {{"-", "_"}});
    const FlagSpec* spec = FindFlag(name);
    std::string written = "--" + std::string(body);
    if (spec == nullptr) {
      return fail(absl::StrCat("unknown flag ", written),
                  /*unknown_flag=*/true);
    }
    // --ack also takes the ack mode by name as a separate argument (`sift
    // sub PATTERN --ack explicit`); only those two words, so that a PATTERN
    // after a bare --ack is still read as one.
    if (!value.has_value() && name == "ack" && i + 1 < argv.size() &&
        (argv[i + 1] == "explicit" || argv[i + 1] == "none")) {
      value = argv[++i];
    }
    if (spec->takes_value && !value.has_value()) {
      if (i + 1 >= argv.size()) {
        return fail(absl::StrCat("flag ", written, " needs a value"),
                    /*unknown_flag=*/false);
      }
      if (std::string why = FlagInValuesPlace(written, argv[i + 1]);
          !why.empty()) {
        return fail(absl::StrCat("flag ", written, " needs a value", why),
                    /*unknown_flag=*/false);
      }
      value = argv[++i];
    }
    if (name == "help" || name == "version") {
      if (value.has_value()) {
        return fail(absl::StrCat("flag ", written, " takes no value"),
                    /*unknown_flag=*/false);
      }
      (name == "help" ? tokens.help : tokens.version) = true;
      continue;
    }
    tokens.flags.push_back({spec, std::move(written), std::move(value)});
  }
  return tokens;
}

// Flag values are taken as written. absl's SimpleAtoi, SimpleAtod and
// ParseTime skip ASCII whitespace around a value (" 300" and "300 " are
// 300; absl::ParseDuration does not), so every number, size, duration and
// time flag parses through ParseInteger and ParseDouble
// (broker/base/number_text.h: plain decimal, no whitespace around, no '+',
// no hex, no "-0") or these wrappers, which refuse such a value as they do
// any other malformed one.
bool ParseRfc3339(absl::string_view v, absl::Time* t) {
  std::string err;
  return !IsPadded(v) && absl::ParseTime(absl::RFC3339_full, v, t, &err);
}

// absl::ParseDuration, without the '+' or '-' sign it takes: no flag takes
// a negative duration, and "-0", "-0s" would pass a check of d >= 0.
bool ParseDurationText(absl::string_view v, absl::Duration* d) {
  return !(!v.empty() && (v.front() == '+' || v.front() == '-')) &&
         absl::ParseDuration(v, d);
}

// A refused value as an error message shows it: control characters and
// other bytes that would not print as themselves escaped (C style), so that
// '3\r' does not print as '3'; hex digits in uppercase ('\xE9'), as sift's
// other escapes and the broker's are.
std::string Shown(absl::string_view value) {
  std::string escaped = absl::CHexEscape(value);
  for (size_t i = 0; i + 1 < escaped.size(); ++i) {
    if (escaped[i] != '\\') continue;
    if (escaped[i + 1] == 'x') {
      for (size_t j = i + 2; j < std::min(i + 4, escaped.size()); ++j) {
        escaped[j] =
            absl::ascii_toupper(static_cast<unsigned char>(escaped[j]));
      }
    }
    ++i;  // past the escaped character
  }
  return absl::StrCat("'", escaped, "'");
}

absl::StatusOr<absl::Duration> ParseDurationFlag(const FlagUse& flag) {
  absl::Duration d;
  const absl::string_view v = *flag.value;
  if (!ParseDurationText(v, &d) || d <= absl::ZeroDuration()) {
    // A bare number ("1") is a missing unit, not a value out of range.
    return UsageError(absl::StrCat(
        "invalid duration ", Shown(*flag.value), " for ", flag.written,
        IsDigits(v) ? " (give its unit, e.g. 500ms, 2s, 1m30s; more than 0)"
             : " (use e.g. 500ms, 2s, 1m30s; more than 0)"));
  }
  return d;
}

// No upper bound for ParseCountFlag.
constexpr int64_t kNoMax = std::numeric_limits<int64_t>::max();

// A whole number from `min` to `max`. The error names the value as `noun`
// ("invalid count '0' for --count (1 or more)") and gives the range, with
// what 0 means if `zero_means` is set.
absl::StatusOr<int64_t> ParseCountFlag(const FlagUse& flag, int64_t min,
                                       int64_t max = kNoMax,
                                       absl::string_view noun = "count",
                                       absl::string_view zero_means = "") {
  int64_t n;
  const bool parsed = ParseInteger(*flag.value, &n);
  if (!parsed || n < min || n > max) {
    // Digits past int64's range: "1 or more" would read as no reason at all.
    const bool huge = !parsed && IsDigits(*flag.value);
    return UsageError(absl::StrCat(
        "invalid ", noun, " ", Shown(*flag.value), " for ", flag.written, " (",
        max == kNoMax ? absl::StrCat(min, huge ? " to " : " or more",
                                     huge ? absl::StrCat(kNoMax) : "")
                      : absl::StrCat(min, " to ", max),
        zero_means.empty() ? "" : "; 0: ", zero_means, ")"));
  }
  return n;
}

absl::StatusOr<bool> ParseBoolFlag(const FlagUse& flag) {
  if (!flag.value.has_value()) return true;
  const std::string& v = *flag.value;
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  return UsageError(
      absl::StrCat("invalid value ", Shown(v), " for ", flag.written,
                   " (a switch: give it alone, or =true/=false, =1/=0)"));
}

// --ack: a switch, which also takes the ack mode by the protocol's names
// (SUB.ack: none, explicit): --ack, --ack explicit, --ack=none.
absl::StatusOr<bool> ParseAckFlag(const FlagUse& flag) {
  if (flag.value == "explicit") return true;
  if (flag.value == "none") return false;
  if (absl::StatusOr<bool> b = ParseBoolFlag(flag); b.ok()) return b;
  return UsageError(absl::StrCat(
      "invalid value ", Shown(*flag.value), " for ", flag.written,
      " (the ack mode: explicit or none; --ack alone is explicit)"));
}

// A byte count: digits, optionally followed by KiB, MiB, GiB or TiB.
// `zero` says what 0 means, for the error message.
absl::StatusOr<uint64_t> ParseBytes(const FlagUse& flag,
                                    absl::string_view zero = "no limit") {
  absl::string_view v = *flag.value;
  uint64_t unit = 1;
  for (const auto& [suffix, size] :
       {std::pair<const char*, uint64_t>{"KiB", uint64_t{1} << 10},
        {"MiB", uint64_t{1} << 20},
        {"GiB", uint64_t{1} << 30},
        {"TiB", uint64_t{1} << 40}}) {
    if (absl::ConsumeSuffix(&v, suffix)) {
      unit = size;
      break;
    }
  }
  uint64_t n;
  if (v.empty() || v[0] == '-' || !ParseInteger(v, &n) ||
      n > UINT64_MAX / unit) {
    // Digits past 2^64 - 1 bytes: the format was right, the size is not.
    return UsageError(absl::StrCat(
        "invalid size ", Shown(*flag.value), " for ", flag.written,
        " (bytes, e.g. 1048576 or 512MiB; KiB, MiB, GiB, TiB; 0: ", zero,
        IsDigits(v) ? absl::StrCat("; at most ", UINT64_MAX, " bytes") : "", ")"));
  }
  return n * unit;
}

// The broker's defaults for the backoff (docs/protocol.md §6.2), which a
// lone --backoff-initial or --backoff-max must fit.
constexpr absl::Duration kDefaultBackoffInitial = absl::Seconds(1);
constexpr absl::Duration kDefaultBackoffMax = absl::Seconds(60);
constexpr int64_t kMaxWireMs = UINT32_MAX;  // AckPolicy's *_ms are uint32

// No upper bound for ParseMillisFlag (a uint64 field of the wire).
constexpr int64_t kUnboundedMs = std::numeric_limits<int64_t>::max() / 2;

// The broker's bounds on a stream's settings (broker/streams/
// stream_config.cc, ValidateStreamSettings), checked here so that a value
// it would refuse is a usage error.
constexpr int64_t kMaxStreamAgeMs = int64_t{1} << 53;
constexpr int64_t kMaxDedupWindowMs = int64_t{7} * 24 * 3600 * 1000;
constexpr uint64_t kMinStreamBytes = 4096;  // max_bytes (or 0), segments
constexpr uint64_t kMaxSegmentBytes = uint64_t{1} << 30;

// A duration in whole milliseconds, from `min_ms` to `max_ms` (by default
// 2^32-1 ms, the wire's uint32 fields): a duration such as 500ms or 30s, or
// a bare number of milliseconds. Sent to the broker in ms: a fraction of a
// millisecond is refused, not cut.
// `max_text`, if set, says max_ms in the error message (e.g. "168h").
absl::StatusOr<absl::Duration> ParseMillisFlag(
    const FlagUse& flag, int64_t min_ms, int64_t max_ms = kMaxWireMs,
    absl::string_view max_text = "") {
  const std::string& v = *flag.value;
  absl::Duration d;
  int64_t ms = 0;
  bool ok = false;
  if (!v.empty() && v[0] != '-' && ParseInteger(v, &ms)) {
    d = absl::Milliseconds(ms);
    ok = true;
  } else if (ParseDurationText(v, &d) && d >= absl::ZeroDuration() &&
             d != absl::InfiniteDuration()) {
    ok = d % absl::Milliseconds(1) == absl::ZeroDuration();
    ms = absl::ToInt64Milliseconds(d);
  }
  if (!ok || ms < min_ms || ms > max_ms) {
    const std::string range =
        max_ms >= kUnboundedMs
            ? absl::StrCat("whole milliseconds, at least ", min_ms, "ms")
            : absl::StrCat("whole milliseconds from ", min_ms, "ms to ",
                           max_text.empty() ? absl::StrCat(max_ms, "ms")
                                            : std::string(max_text));
    return UsageError(absl::StrCat(
        "invalid duration ", Shown(v), " for ", flag.written, " (", range,
        ", e.g. 500ms, 30s, 2m; a bare number is milliseconds)"));
  }
  return d;
}

// A count from `min` to 2^32-1 (the wire's uint32 fields).
absl::StatusOr<uint32_t> ParseUint32Flag(const FlagUse& flag, uint32_t min,
                                         absl::string_view zero_means) {
  int64_t n;
  if (!ParseInteger(*flag.value, &n) || n < min || n > UINT32_MAX) {
    return UsageError(absl::StrCat(
        "invalid count ", Shown(*flag.value), " for ", flag.written, " (", min,
        " to 4294967295", zero_means.empty() ? "" : "; 0: ", zero_means, ")"));
  }
  return static_cast<uint32_t>(n);
}

// A finite number from `min` to `max`.
absl::StatusOr<double> ParseNumberFlag(const FlagUse& flag, double min,
                                       double max, absl::string_view range) {
  double x;
  if (!ParseDouble(*flag.value, &x) || !(x >= min && x <= max)) {
    return UsageError(absl::StrCat("invalid number ", Shown(*flag.value),
                                   " for ", flag.written, " (", range, ")"));
  }
  return x;
}

// --slow: drop-newest, drop-oldest or disconnect.
absl::StatusOr<SlowFlag> ParseSlowFlag(const FlagUse& flag) {
  const std::string& v = *flag.value;
  if (v == "drop-newest") return SlowFlag::kDropNewest;
  if (v == "drop-oldest") return SlowFlag::kDropOldest;
  if (v == "disconnect") return SlowFlag::kDisconnect;
  return UsageError(absl::StrCat("invalid policy ", Shown(v), " for ",
                                 flag.written,
                                 " (drop-newest, drop-oldest or disconnect)"));
}

// --fsync: "always", "never", or an interval, as the broker spells it
// ("<N>ms", 1 to 60000).
absl::StatusOr<std::string> ParseFsync(const FlagUse& flag) {
  const std::string& v = *flag.value;
  if (v == "always" || v == "never") return v;
  if (absl::StatusOr<absl::Duration> d = ParseMillisFlag(flag, 1, 60000);
      d.ok()) {
    return absl::StrCat(absl::ToInt64Milliseconds(*d), "ms");
  }
  return UsageError(absl::StrCat(
      "invalid fsync policy ", Shown(v), " for ", flag.written,
      " (always, never, or an interval in whole milliseconds from 1ms to "
      "60s, such as 10ms)"));
}

// Records the message id `id` (pub --msg-id, or a header Msg-Id): in
// args.msg_id, and as the header kMsgIdHeaderKey where it is first given,
// so that the headers go out in the order written. `written` names the
// flag for the error of a second, different id.
absl::Status SetMsgId(const std::string& id, absl::string_view written,
                      Args& args) {
  if (args.msg_id.empty()) {
    args.msg_id = id;
    args.headers.emplace_back(kMsgIdHeaderKey, id);
    return absl::OkStatus();
  }
  if (args.msg_id != id) {
    return UsageError(absl::StrCat("two message ids: '", args.msg_id, "' and '",
                                   id, "'", written));
  }
  return absl::OkStatus();
}

// Sets the field of `args` that `flag` names.
absl::Status ApplyFlag(const FlagUse& flag, Args& args) {
  const std::string_view name = flag.spec->name;
  if (name == "server") {
    if (flag.value->empty()) {
      return UsageError(absl::StrCat(
          "flag ", flag.written, " needs an endpoint, e.g. ", kDefaultServer));
    }
    args.server = *flag.value;
  } else if (name == "connect_timeout") {
    absl::StatusOr<absl::Duration> d = ParseDurationFlag(flag);
    if (!d.ok()) return d.status();
    args.connect_timeout = *d;
  } else if (name == "timeout") {
    absl::StatusOr<absl::Duration> d = ParseDurationFlag(flag);
    if (!d.ok()) return d.status();
    args.timeout = *d;
  } else if (name == "count") {
    // pub sends at least one; sub and reply take 0 as no limit.
    absl::StatusOr<int64_t> n =
        args.command == Command::kPub
            ? ParseCountFlag(flag, 1)
            : ParseCountFlag(flag, 0, kNoMax, "count", "no limit");
    if (!n.ok()) return n.status();
    args.count = *n;
  } else if (name == "window") {
    absl::StatusOr<int64_t> n =
        ParseCountFlag(flag, 1, kMaxConfirmWindow, "window");
    if (!n.ok()) return n.status();
    args.window = *n;
  } else if (name == "queue") {
    args.queue_group = *flag.value;
  } else if (name == "response") {
    args.response = *flag.value;
  } else if (name == "file") {
    if (flag.value->empty()) {
      return UsageError(absl::StrCat("flag ", flag.written,
                                     " needs a file name (- for stdin)"));
    }
    args.payload_file = *flag.value;
  } else if (name == "delay") {
    absl::StatusOr<absl::Duration> d = ParseMillisFlag(flag, 1, kUnboundedMs);
    if (!d.ok()) return d.status();
    args.delay = *d;
  } else if (name == "filter") {
    args.filter = *flag.value;
  } else if (name == "plugin") {
    if (flag.value->empty()) {
      return UsageError(absl::StrCat("flag ", flag.written,
                                     " needs a plugin name, e.g. "
                                     "payload_filter"));
    }
    args.plugins.push_back({*flag.value, {}});
  } else if (name == "with") {
    const size_t eq = flag.value->find('=');
    if (args.plugins.empty()) {
      return UsageError(absl::StrCat(flag.written,
                                     " must follow a --plugin NAME it "
                                     "configures"));
    }
    if (eq == std::string::npos || eq == 0) {
      return UsageError(absl::StrCat("invalid setting '", *flag.value,
                                     "' for ", flag.written,
                                     " (use KEY=VALUE, e.g. format=json)"));
    }
    args.plugins.back().settings.emplace_back(flag.value->substr(0, eq),
                                              flag.value->substr(eq + 1));
  } else if (name == "msg_id") {
    if (flag.value->empty()) {
      return UsageError(absl::StrCat("flag ", flag.written,
                                     " needs a message id"));
    }
    if (absl::Status s = SetMsgId(*flag.value, "", args); !s.ok()) return s;
  } else if (name == "stream") {
    if (flag.value->empty()) {
      return UsageError(
          absl::StrCat("flag ", flag.written, " needs a stream name"));
    }
    args.stream = *flag.value;
  } else if (name == "consumer") {
    if (flag.value->empty()) {
      return UsageError(
          absl::StrCat("flag ", flag.written, " needs a consumer name"));
    }
    args.consumer = *flag.value;
  } else if (name == "from_seq") {
    // Sequence numbers start at 1.
    absl::StatusOr<int64_t> n =
        ParseCountFlag(flag, 1, kNoMax, "sequence number");
    if (!n.ok()) return n.status();
    args.from = StreamFrom::kFromSeq;
    args.from_seq = static_cast<uint64_t>(*n);
  } else if (name == "since") {
    absl::Time t;
    absl::Duration ago;
    if (ParseRfc3339(*flag.value, &t)) {
      args.since_time = t;
    } else if (ParseDurationText(*flag.value, &ago) &&
               ago > absl::ZeroDuration()) {
      args.since_time.reset();
      args.since_ago = ago;
    } else {
      return UsageError(absl::StrCat(
          "invalid time ", Shown(*flag.value), " for ", flag.written,
          " (an RFC 3339 time such as 2026-11-30T12:00:00Z, or how long "
          "ago, such as 90s or 2h)"));
    }
    args.from = StreamFrom::kSince;
  } else if (name == "batch") {
    absl::StatusOr<int64_t> n = ParseCountFlag(flag, 1, 10000, "batch");
    if (!n.ok()) return n.status();
    args.batch = *n;
  } else if (name == "wait") {
    // FETCH.max_wait_ms: whole ms (0 answers at once), at most an hour, as
    // the broker takes it.
    absl::StatusOr<absl::Duration> d = ParseMillisFlag(flag, 0, 3600000);
    if (!d.ok()) return d.status();
    args.wait = *d;
  } else if (name == "filter_topic") {
    args.filter_topic = *flag.value;
  } else if (name == "subjects") {
    for (absl::string_view subject : absl::StrSplit(*flag.value, ',')) {
      subject = absl::StripAsciiWhitespace(subject);
      if (subject.empty()) {
        return UsageError(absl::StrCat(
            "empty subject in '", *flag.value, "' for ", flag.written,
            " (comma-separated topic patterns, e.g. 'orders.>,billing.*')"));
      }
      args.subjects.emplace_back(subject);
    }
  } else if (name == "max_age") {
    // 0: unlimited, as in the config file and the API; at most the
    // broker's 2^53 ms.
    absl::StatusOr<absl::Duration> d = ParseMillisFlag(
        flag, 0, kMaxStreamAgeMs,
        absl::StrCat(kMaxStreamAgeMs, "ms (about 285,000 years)"));
    if (!d.ok()) return d.status();
    args.max_age = *d;
  } else if (name == "dedup_window") {
    // At most the broker's 7 days.
    absl::StatusOr<absl::Duration> d =
        ParseMillisFlag(flag, 1, kMaxDedupWindowMs, "168h (7 days)");
    if (!d.ok()) return d.status();
    args.dedup_window = *d;
  } else if (name == "max_bytes") {
    absl::StatusOr<uint64_t> n = ParseBytes(flag);
    if (!n.ok()) return n.status();
    if (*n != 0 && *n < kMinStreamBytes) {
      return UsageError(absl::StrCat(
          "invalid size ", Shown(*flag.value), " for ", flag.written,
          " (0: no limit, or at least 4096 bytes, 4KiB)"));
    }
    args.max_bytes = *n;
  } else if (name == "slow") {
    absl::StatusOr<SlowFlag> policy = ParseSlowFlag(flag);
    if (!policy.ok()) return policy.status();
    args.slow = *policy;
  } else if (name == "max_pending") {
    absl::StatusOr<uint64_t> n =
        ParseBytes(flag, "the broker's max_pending_bytes_per_client");
    if (!n.ok()) return n.status();
    args.max_pending = *n;
  } else if (name == "max_pending_msgs") {
    absl::StatusOr<int64_t> n = ParseCountFlag(flag, 1, UINT32_MAX);
    if (!n.ok()) return n.status();
    args.max_pending_msgs = static_cast<uint32_t>(*n);
  } else if (name == "segment_bytes") {
    constexpr char kDefaultSegment[] =
        "the broker's default, 64MiB, or a quarter of --max-bytes if less "
        "(at least 4KiB)";
    absl::StatusOr<uint64_t> n = ParseBytes(flag, kDefaultSegment);
    if (!n.ok()) return n.status();
    if (*n != 0 && (*n < kMinStreamBytes || *n > kMaxSegmentBytes)) {
      return UsageError(absl::StrCat(
          "invalid size ", Shown(*flag.value), " for ", flag.written,
          " (4096 to 1073741824 bytes, 4KiB to 1GiB; 0: ", kDefaultSegment,
          ")"));
    }
    args.segment_bytes = *n;
  } else if (name == "max_msgs") {
    absl::StatusOr<int64_t> n =
        ParseCountFlag(flag, 0, kNoMax, "count", "no limit");
    if (!n.ok()) return n.status();
    args.max_msgs = static_cast<uint64_t>(*n);
  } else if (name == "dedup_max_ids") {
    // The broker's bounds (stream_config.h's kMaxDedupMaxIds); no 0.
    absl::StatusOr<int64_t> n = ParseCountFlag(flag, 1, 100000000);
    if (!n.ok()) return n.status();
    args.dedup_max_ids = static_cast<uint64_t>(*n);
  } else if (name == "fsync") {
    absl::StatusOr<std::string> fsync = ParseFsync(flag);
    if (!fsync.ok()) return fsync.status();
    args.fsync = *fsync;
  } else if (name == "ack_wait") {
    absl::StatusOr<absl::Duration> d = ParseMillisFlag(flag, 1);
    if (!d.ok()) return d.status();
    args.ack_wait = *d;
  } else if (name == "max_deliver") {
    absl::StatusOr<uint32_t> n = ParseUint32Flag(flag, 0, "no limit");
    if (!n.ok()) return n.status();
    args.max_deliver = *n;
  } else if (name == "max_in_flight") {
    absl::StatusOr<uint32_t> n = ParseUint32Flag(flag, 1, "");
    if (!n.ok()) return n.status();
    args.max_in_flight = *n;
  } else if (name == "max_queued") {
    absl::StatusOr<uint32_t> n =
        ParseUint32Flag(flag, 0, "none wait, beyond max-in-flight");
    if (!n.ok()) return n.status();
    args.max_queued = *n;
  } else if (name == "backoff_initial" || name == "backoff_max") {
    absl::StatusOr<absl::Duration> d = ParseMillisFlag(flag, 0);
    if (!d.ok()) return d.status();
    (name == "backoff_initial" ? args.backoff_initial : args.backoff_max) = *d;
  } else if (name == "backoff_multiplier") {
    absl::StatusOr<double> x =
        ParseNumberFlag(flag, 1, 1e9, "a number from 1 to 1e9, e.g. 2 or 1.5");
    if (!x.ok()) return x.status();
    args.backoff_multiplier = *x;
  } else if (name == "backoff_jitter") {
    absl::StatusOr<double> x =
        ParseNumberFlag(flag, 0, 1, "a share from 0 to 1, e.g. 0.2; 0: none");
    if (!x.ok()) return x.status();
    args.backoff_jitter = *x;
  } else if (name == "nack_delay") {
    absl::StatusOr<absl::Duration> d = ParseMillisFlag(flag, 0);
    if (!d.ok()) return d.status();
    args.nack = true;
    args.nack_delay = *d;
  } else if (name == "header") {
    const size_t eq = flag.value->find('=');
    if (eq == std::string::npos || eq == 0) {
      return UsageError(absl::StrCat("invalid header '", *flag.value,
                                     "' for ", flag.written,
                                     " (use KEY=VALUE, e.g. region=eu)"));
    }
    const std::string key = flag.value->substr(0, eq);
    const std::string value = flag.value->substr(eq + 1);
    if (absl::EqualsIgnoreCase(key, "msg-id") ||
        absl::EqualsIgnoreCase(key, "sift-msg-id")) {
      // The message id a stream deduplicates on (--msg-id), however
      // spelled: the broker reads only "sift-msg-id".
      if (value.empty()) {
        return UsageError(absl::StrCat("flag ", flag.written,
                                       " needs a message id after ", key,
                                       "="));
      }
      const std::string why =
          absl::StrCat(" (", flag.written, " ", key, "= is --msg-id)");
      if (absl::Status s = SetMsgId(value, why, args); !s.ok()) return s;
    } else {
      args.headers.emplace_back(key, value);
    }
  } else {
    absl::StatusOr<bool> b =
        name == "ack" ? ParseAckFlag(flag) : ParseBoolFlag(flag);
    if (!b.ok()) return b.status();
    if (name == "confirm") {
      args.confirm = *b;
    } else if (name == "echo") {
      args.echo = *b;
    } else if (name == "json") {
      args.json = *b;
    } else if (name == "headers") {
      args.show_headers = *b;
    } else if (name == "ack") {
      args.ack = *b;
    } else if (name == "nack") {
      args.nack = *b;
    } else if (name == "retain") {
      args.retain = *b;
    } else if ((name == "all" || name == "new") && *b) {
      args.from = name == "all" ? StreamFrom::kAll : StreamFrom::kNew;
    }
  }
  return absl::OkStatus();
}

std::string SeeHelp(const CommandInfo& info) {
  return absl::StrCat(" (see sift ", info.name, " --help)");
}

// The usage error for a flag that is not repeatable, given as `first` and
// then `again`: "--count given twice ('5', then '7')"; both uses in full
// when they are spelled differently (--max-age, --max_age) or one has no
// value (a switch).
std::string GivenTwice(const FlagUse& first, const FlagUse& again) {
  std::string uses;
  if (first.written == again.written && first.value && again.value) {
    uses = absl::StrCat(" (", Shown(*first.value), ", then ",
                        Shown(*again.value), ")");
  } else if (first.written != again.written || first.value || again.value) {
    auto in_full = [](const FlagUse& use) {
      return use.value ? absl::StrCat(use.written, "=", Shown(*use.value))
                       : use.written;
    };
    uses = absl::StrCat(" (", in_full(first), ", then ", in_full(again), ")");
  }
  return absl::StrCat(again.written, " given twice", uses, "; give it once");
}

// sub's slow-consumer flags: the bounds need a policy they bound, and the
// broker applies a policy to live subscriptions without acks only.
absl::Status CheckSlowFlags(const Args& args, absl::string_view cmd,
                            const CommandInfo& info) {
  if (args.slow == SlowFlag::kUnset) {
    if (args.max_pending != 0 || args.max_pending_msgs != 0) {
      return UsageError(absl::StrCat(
          cmd, ": --max-pending and --max-pending-msgs bound a --slow "
               "policy: give --slow drop-newest, drop-oldest or disconnect",
          SeeHelp(info)));
    }
    return absl::OkStatus();
  }
  if (args.max_pending_msgs != 0 && args.slow != SlowFlag::kDropOldest) {
    return UsageError(absl::StrCat(
        cmd, ": --max-pending-msgs bounds the messages --slow drop-oldest "
             "keeps waiting; the other policies keep none",
        SeeHelp(info)));
  }
  if (args.ack || !args.stream.empty()) {
    return UsageError(absl::StrCat(
        cmd, ": --slow is for live subscriptions without --ack (with --ack "
             "the broker holds what is not acknowledged; a --stream's "
             "records wait in the stream)",
        SeeHelp(info)));
  }
  return absl::OkStatus();
}

// sub's and fetch's explicit-ack flags: they set the policy of --ack and
// must fit together and the broker's defaults. `given` is the first such
// flag as written ("" if none).
absl::Status CheckAckFlags(const Args& args, const std::string& given,
                           absl::string_view cmd, const CommandInfo& info) {
  if (given.empty()) return absl::OkStatus();
  if (!args.ack) {
    return UsageError(absl::StrCat(
        cmd, ": ", given,
        " is for explicit acks: give --ack (at-least-once delivery; "
        "without it, or with --ack none, delivery is at-most-once)",
        SeeHelp(info)));
  }
  const absl::Duration initial =
      args.backoff_initial.value_or(kDefaultBackoffInitial);
  const absl::Duration max = args.backoff_max.value_or(kDefaultBackoffMax);
  if (max < initial) {
    return UsageError(absl::StrCat(
        cmd, ": --backoff-max (",
        args.backoff_max ? "" : "the broker's default ",
        absl::FormatDuration(max), ") is below --backoff-initial (",
        args.backoff_initial ? "" : "the broker's default ",
        absl::FormatDuration(initial), ")", SeeHelp(info)));
  }
  if (args.max_queued.has_value() && !args.stream.empty()) {
    return UsageError(absl::StrCat(
        cmd, ": --max-queued bounds the messages a live queue group keeps "
             "waiting; a --stream's records wait in the stream",
        SeeHelp(info)));
  }
  return absl::OkStatus();
}

// A command named on the command line: one word, or two for the stream
// commands ("stream add"). `info` is null for "stream" alone (kStream),
// which only help may name.
struct Named {
  Command command;
  const CommandInfo* info;
  size_t words;
};

absl::StatusOr<Named> NameCommand(const std::vector<std::string>& pos,
                                  size_t at, bool for_help) {
  if (pos[at] != "stream") {
    const CommandInfo* info = FindCommand(pos[at]);
    if (info == nullptr) {
      return UsageError(
          absl::StrCat("unknown command '", pos[at], "' (see sift --help)"));
    }
    return Named{info->command, info, 1};
  }
  if (at + 1 >= pos.size()) {
    if (for_help) return Named{Command::kStream, nullptr, 1};
    return UsageError(
        "stream: missing ACTION: add, info, ls, rm or rm-consumer (see "
        "sift stream --help)");
  }
  const CommandInfo* info = FindCommand(absl::StrCat("stream ", pos[at + 1]));
  if (info == nullptr) {
    return UsageError(absl::StrCat(
        "stream: unknown action '", pos[at + 1],
        "' (add, info, ls, rm or rm-consumer; see sift stream --help)"));
  }
  return Named{info->command, info, 2};
}

}  // namespace

std::string_view CommandName(Command command) {
  switch (command) {
    case Command::kPub:
      return "pub";
    case Command::kSub:
      return "sub";
    case Command::kReq:
      return "req";
    case Command::kReply:
      return "reply";
    case Command::kStats:
      return "stats";
    case Command::kReload:
      return "reload";
    case Command::kFetch:
      return "fetch";
    case Command::kStreamAdd:
      return "stream add";
    case Command::kStreamInfo:
      return "stream info";
    case Command::kStreamLs:
      return "stream ls";
    case Command::kStreamRm:
      return "stream rm";
    case Command::kStreamRmConsumer:
      return "stream rm-consumer";
    case Command::kStream:
      return "stream";
    case Command::kHelp:
      return "help";
    case Command::kVersion:
      return "version";
  }
  return "?";
}

// The usage error for a flag Tokenize refused: prefixed with the command
// when one was named before it, as the errors found later are ("pub: flag
// --header needs a value"), and an unknown flag points to that command's
// usage ("unknown flag --bogus (see sift pub --help)").
absl::Status RefusedFlag(const TokenError& error) {
  const std::vector<std::string>& pos = error.positionals;
  const CommandInfo* info = nullptr;
  if (!pos.empty() && pos[0] != "help") {
    absl::StatusOr<Named> named = NameCommand(pos, 0, /*for_help=*/false);
    if (named.ok()) info = named->info;
  }
  if (info == nullptr) {
    return UsageError(absl::StrCat(error.message, " (see sift --help)"));
  }
  return UsageError(absl::StrCat(info->name, ": ", error.message,
                                 SeeHelp(*info)));
}

absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv,
                               std::string_view env_server) {
  TokenError token_error;
  absl::StatusOr<Tokens> tokens_or = Tokenize(argv, &token_error);
  if (!tokens_or.ok()) return RefusedFlag(token_error);
  Tokens& tokens = *tokens_or;

  Args args;
  if (tokens.version) {
    args.command = Command::kVersion;
    return args;
  }

  std::vector<std::string>& pos = tokens.positionals;
  if (!pos.empty() && pos[0] == "help") {
    // `sift help [COMMAND]`; COMMAND is two words for stream's.
    args.command = Command::kHelp;
    if (pos.size() == 1) return args;
    absl::StatusOr<Named> named = NameCommand(pos, 1, /*for_help=*/true);
    if (!named.ok()) return named.status();
    if (pos.size() > 1 + named->words) {
      return UsageError("help takes at most one command (see sift --help)");
    }
    args.help_for = named->command;
    return args;
  }
  if (pos.empty()) {
    if (tokens.help) return args;  // kHelp, overview
    return UsageError("missing command (see sift --help)");
  }
  absl::StatusOr<Named> named = NameCommand(pos, 0, tokens.help);
  if (!named.ok()) return named.status();
  if (tokens.help) {
    args.command = Command::kHelp;
    args.help_for = named->command;
    return args;
  }
  const CommandInfo* info = named->info;
  args.command = info->command;
  const std::string cmd = info->name;
  // The command's own positional arguments.
  pos.erase(pos.begin(), pos.begin() + named->words);

  // Flags: each must belong to this command (or be global).
  bool timeout_given = false;
  bool count_given = false;
  bool window_given = false;
  int start_flags = 0;
  bool nack_given = false, nack_delay_given = false;
  std::string ack_flag;  // the first flag that needs --ack, as written
  // The first use of each flag given so far.
  absl::flat_hash_map<const FlagSpec*, const FlagUse*> given;
  for (const FlagUse& flag : tokens.flags) {
    if (flag.spec->commands != kGlobal &&
        (flag.spec->commands & Bit(info->command)) == 0) {
      return UsageError(
          absl::StrCat(cmd, " does not take ", flag.written, SeeHelp(*info)));
    }
    if (auto [it, first] = given.emplace(flag.spec, &flag);
        !first && !flag.spec->repeatable) {
      return UsageError(absl::StrCat(cmd, ": ", GivenTwice(*it->second, flag),
                                     SeeHelp(*info)));
    }
    if (absl::Status s = ApplyFlag(flag, args); !s.ok()) {
      return UsageError(absl::StrCat(cmd, ": ", s.message(), SeeHelp(*info)));
    }
    const std::string_view flag_name = flag.spec->name;
    timeout_given |= flag_name == "timeout";
    count_given |= flag_name == "count";
    window_given |= flag_name == "window";
    nack_given |= flag_name == "nack" && args.nack;
    nack_delay_given |= flag_name == "nack_delay";
    start_flags += flag_name == "all" || flag_name == "new" ||
                   flag_name == "from_seq" || flag_name == "since";
    const bool needs_ack =
        flag_name == "ack_wait" || flag_name == "max_deliver" ||
        flag_name == "max_in_flight" || flag_name == "max_queued" ||
        flag_name.substr(0, 8) == "backoff_" ||
        flag_name == "nack_delay" || (flag_name == "nack" && args.nack);
    if (needs_ack && ack_flag.empty()) ack_flag = flag.written;
  }

  // Positional arguments. `pub --file F` takes its MESSAGE from F.
  const bool message_from_file =
      args.command == Command::kPub && !args.payload_file.empty();
  const size_t want = info->positionals.size() - (message_from_file ? 1 : 0);
  const size_t got = pos.size();
  if (got < want) {
    return UsageError(absl::StrCat(cmd, ": missing ", info->positionals[got],
                                   SeeHelp(*info)));
  }
  if (got > want && message_from_file) {
    return UsageError(absl::StrCat(
        cmd, ": give MESSAGE or --file, not both ('", pos[want],
        "' and --file ", args.payload_file, ")", SeeHelp(*info)));
  }
  if (got > want) {
    const bool has_message =
        want >= 2 && std::string_view(info->positionals[1]) == "MESSAGE";
    return UsageError(absl::StrCat(
        cmd, ": unexpected argument '", pos[want], "'",
        has_message ? " (quote a MESSAGE that contains spaces)" : "",
        SeeHelp(*info)));
  }
  switch (args.command) {
    case Command::kFetch:
    case Command::kStreamAdd:
    case Command::kStreamInfo:
    case Command::kStreamRm:
      args.stream = pos[0];
      break;
    case Command::kStreamRmConsumer:
      args.stream = pos[0];
      args.consumer = pos[1];
      break;
    default:
      if (want >= 1) args.topic = pos[0];
      if (want >= 2) args.message = pos[1];
      break;
  }

  // Per-command defaults and checks.
  switch (args.command) {
    case Command::kPub:
      if (args.retain && args.delay > absl::ZeroDuration()) {
        return UsageError(absl::StrCat(
            cmd, ": --retain and --delay cannot be combined (the broker "
                 "refuses it)",
            SeeHelp(*info)));
      }
      if (args.count < 1) {
        return UsageError(
            absl::StrCat(cmd, ": --count must be at least 1", SeeHelp(*info)));
      }
      if (window_given && !args.confirm && !args.retain &&
          args.delay == absl::ZeroDuration()) {
        return UsageError(absl::StrCat(
            cmd, ": --window bounds the confirms awaited at once: add "
                 "--confirm",
            SeeHelp(*info)));
      }
      break;
    case Command::kSub:
    case Command::kReply:
      if (!count_given) args.count = 0;
      break;
    case Command::kReq:
      if (!timeout_given) args.timeout = absl::Seconds(5);
      break;
    default:
      break;
  }
  if (start_flags > 1) {
    return UsageError(absl::StrCat(
        cmd, ": give at most one of --all, --new, --from-seq and --since",
        SeeHelp(*info)));
  }
  if (nack_given && nack_delay_given) {
    return UsageError(absl::StrCat(
        cmd, ": give --nack or --nack-delay D, not both (--nack-delay is "
             "--nack with its delay)",
        SeeHelp(*info)));
  }
  if (args.command == Command::kSub && args.stream.empty() &&
      (!args.consumer.empty() || start_flags > 0)) {
    return UsageError(absl::StrCat(
        cmd, ": --consumer, --all, --new, --from-seq and --since read a "
             "stream: give --stream NAME",
        SeeHelp(*info)));
  }
  if (args.command == Command::kSub) {
    if (absl::Status s = CheckSlowFlags(args, cmd, *info); !s.ok()) return s;
  }
  if (args.command == Command::kSub || args.command == Command::kFetch) {
    if (absl::Status s = CheckAckFlags(args, ack_flag, cmd, *info); !s.ok()) {
      return s;
    }
  }
  if (args.command == Command::kFetch && args.ack && args.consumer.empty()) {
    return UsageError(absl::StrCat(
        cmd, ": --ack needs --consumer NAME (an unnamed fetch keeps no "
             "position to acknowledge)",
        SeeHelp(*info)));
  }
  if (args.command == Command::kStreamAdd && args.max_bytes != 0 &&
      args.max_bytes < args.segment_bytes) {
    return UsageError(absl::StrCat(
        cmd, ": --max-bytes (", args.max_bytes,
        ") is below --segment-bytes (", args.segment_bytes,
        "): retention removes whole segments (leave --segment-bytes out "
        "and the broker picks it from --max-bytes)",
        SeeHelp(*info)));
  }
  if (args.command == Command::kStreamAdd && args.subjects.empty()) {
    return UsageError(absl::StrCat(
        cmd, ": give the topics to store with --subjects, e.g. "
             "--subjects 'orders.>,billing.*'",
        SeeHelp(*info)));
  }
  if (args.command == Command::kReply &&
      args.echo == args.response.has_value()) {
    return UsageError(absl::StrCat(
        cmd, ": give either --echo or --response TEXT", SeeHelp(*info)));
  }

  if (args.server.empty()) {
    args.server = env_server.empty() ? kDefaultServer : std::string(env_server);
  }
  return args;
}

std::string Usage() {
  return absl::StrCat(
      "sift - command-line client for the sift pub/sub broker\n"
      "\n"
      "Usage:\n"
      "  sift [--server ENDPOINT] COMMAND ARGS... [FLAGS]\n"
      "\n"
      "Commands:\n"
      "  pub TOPIC MESSAGE     publish MESSAGE on TOPIC\n"
      "  sub PATTERN           print the messages whose topic matches "
      "PATTERN\n"
      "  req TOPIC MESSAGE     send a request on TOPIC and print the reply\n"
      "  reply TOPIC           answer requests on TOPIC\n"
      "  stats                 show the broker's counters\n"
      "  reload                make the broker re-read its plugin config\n"
      "  fetch STREAM          print the next messages of a stream (polling)\n"
      "  stream add NAME       create a stream: topics kept on disk\n"
      "  stream info NAME      show a stream's settings, counts, consumers\n"
      "  stream ls             list the streams\n"
      "  stream rm NAME        delete a stream with its messages\n"
      "  stream rm-consumer STREAM NAME\n"
      "                        delete a durable consumer of a stream\n"
      "  help [COMMAND]        show this overview, or how to use COMMAND\n"
      "\n"
      "Global flags:\n"
      "  --server ENDPOINT     broker to talk to: tcp://HOST:PORT, ipc://PATH\n"
      "                        (default: $SIFT_SERVER, else ",
      kDefaultServer,
      ")\n"
      "  --connect_timeout D   how long to wait for the broker to answer\n"
      "                        (default 5s)\n"
      "  -h, --help            show help; sift COMMAND --help for a command\n"
      "  --version             print the version\n"
      "\n"
      "Flags may appear anywhere, as --flag VALUE or --flag=VALUE, each once\n"
      "unless repeatable (--header, --subjects, --plugin, --with); -- ends\n"
      "the flags. Durations look like 500ms, 2s, 1m30s.\n"
      "Topics are dot-separated (orders.eu.created); in patterns * matches\n"
      "one token and > one or more trailing tokens (orders.*, orders.>).\n"
      "Exit status: 0 success, 1 runtime error (e.g. no broker, timeout),\n"
      "2 usage error.\n");
}

std::string CommandUsage(Command command) {
  constexpr char kGlobalNote[] =
      "\nGlobal flags --server and --connect_timeout also apply "
      "(see sift --help).\n";
  switch (command) {
    case Command::kPub:
      return absl::StrCat(
          "Usage: sift pub TOPIC (MESSAGE | --file F) [--count N]\n"
          "                [--confirm [--window N]] [--header K=V]...\n"
          "                [--msg-id ID] [--retain] [--delay D]\n"
          "\n"
          "Publishes MESSAGE on TOPIC, a literal topic (no wildcards).\n"
          "Prints \"published N message(s) to TOPIC\" once the broker has read\n"
          "them all (without --confirm, not that it routed them; exit 1 if\n"
          "it did not read them within --connect_timeout, or refused any,\n"
          "e.g. a stream's writer queue full); with --confirm, when a\n"
          "stream stores TOPIC, also the sequence number(s) it gave them, e.g.\n"
          "\"(stream seq 7)\" or \"(stream seqs 7..9, 1 duplicate)\".\n"
          "\n"
          "Flags:\n"
          "  --count N    publish N times (default 1). With N > 1, every {n}\n"
          "               in MESSAGE becomes the sequence number 1..N.\n"
          "  --confirm    wait until the broker has routed each message (and,\n"
          "               if a stream stores TOPIC, made it durable), and\n"
          "               fail on the first one it refuses\n"
          "  --window N   with --confirm (or --retain, --delay): at most N\n"
          "               messages awaiting their confirm at once (1 to\n"
          "               65536; default 256). They go out in order; once\n"
          "               one is refused no more are sent, but those sent\n"
          "               before its answer came may be published (said\n"
          "               in the error). 1: one at a time\n"
          "  --msg-id ID  message id for stream dedup: the same ID again\n"
          "               within the stream's dedup window is stored once\n"
          "               (short for --header sift-msg-id=ID; a header\n"
          "               Msg-Id=ID, any case, is taken as --msg-id too;\n"
          "               {n} is expanded as in MESSAGE)\n"
          "  --retain     keep as the topic's retained value: subscriptions\n"
          "               made later get it first; an empty MESSAGE clears it\n"
          "  --delay D    have the broker route it after D (e.g. 30s, 5m)\n"
          "  --file F     publish the bytes of file F (- for stdin) instead\n"
          "               of MESSAGE, which is then left out (binary\n"
          "               payloads such as protobuf); read up to the\n"
          "               broker's max_payload_bytes, more is refused\n"
          "  --header K=V add header K with value V (repeatable; order kept;\n"
          "               keys are 1-64 token characters: A-Z a-z 0-9 and\n"
          "               ! # $ % & ' * + - . ^ _ ` | ~)\n"
          "\n"
          "Examples:\n"
          "  sift pub orders.eu.created '{\"id\": 7}'\n"
          "  sift pub load.test 'message {n}' --count 1000 --confirm\n"
          "  sift pub orders.eu.created '{}' --header region=eu "
          "--header priority=5\n"
          "  sift pub orders.eu.created '{\"id\": 7}' --msg-id order-7 "
          "--confirm\n",
          kGlobalNote);
    case Command::kSub:
      return absl::StrCat(
          "Usage: sift sub PATTERN [--queue GROUP] [--count N] "
          "[--timeout D] [--headers]\n"
          "                [--ack [ACK FLAGS]] [--filter EXPR]\n"
          "                [--plugin NAME [--with K=V]...]...\n"
          "                [--slow POLICY [--max-pending BYTES] "
          "[--max-pending-msgs N]]\n"
          "                [--stream NAME [--consumer NAME]\n"
          "                 [--all | --new | --from-seq N | --since TIME]]\n"
          "\n"
          "Subscribes to PATTERN and prints each message as one line,\n"
          "  [TOPIC] PAYLOAD\n"
          "with non-printable payload bytes escaped (\\n, \\t, \\\\, "
          "\\xHH).\n"
          "Runs until N messages arrived, --timeout passed, or SIGINT/SIGTERM\n"
          "(which exits 0; a second signal, or a stop stuck on output nobody\n"
          "reads, exits 130/143 at once).\n"
          "\n"
          "Flags:\n"
          "  --queue GROUP  join queue group GROUP: each message goes to one\n"
          "                 member of the group\n"
          "  --count N      exit 0 after N messages (default 0: no limit)\n"
          "  --timeout D    stop after D; exit 1 if fewer than N messages\n"
          "                 arrived (with no --count, D just bounds the wait\n"
          "                 and the exit status is 0)\n"
          "  --headers      also print each message's headers, one per line\n"
          "                 after it: '  KEY: VALUE' (escaped like payloads)\n"
          "  --filter EXPR  only messages whose headers satisfy EXPR, checked\n"
          "                 by the broker, e.g. \"region == 'eu' && priority\n"
          "                 >= 5\" (grammar: docs/plugins.md)\n"
          "  --plugin NAME  run broker plugin NAME on this subscription's\n"
          "                 messages (repeatable; in order, after --filter)\n"
          "  --ack          subscribe with explicit acks (at-least-once): each\n"
          "                 message is acknowledged once printed. With --queue,\n"
          "                 messages a killed sift held go to another member;\n"
          "                 without a group they are lost with it\n"
          "                 (protocol.md §6.2). Also --ack explicit; --ack\n"
          "                 none is at-most-once, the default\n"
          "  --with K=V     a setting of the --plugin before it, e.g.\n"
          "                 --plugin payload_filter --with format=json\n"
          "                 --with 'expr=amount > 100'\n"
          "\n"
          "ACK FLAGS (need --ack; left out, the broker's default applies;\n"
          "durations are whole ms: 500ms, 30s, or a bare number of ms):\n"
          "  --ack-wait D     redeliver what is not acknowledged within D\n"
          "                   (default 30s)\n"
          "  --max-deliver N  attempts before a message goes to the dead-letter\n"
          "                   topic $sift.deadletter.<topic> (default 5; 0: no\n"
          "                   limit)\n"
          "  --max-in-flight N  most messages unacknowledged at once (prefetch;\n"
          "                   default 1000)\n"
          "  --max-queued N   most messages a queue group keeps waiting for a\n"
          "                   member with room (default 100000); more are\n"
          "                   dead-lettered. Not with --stream\n"
          "  --backoff-initial D  wait before the first redelivery (default 1s)\n"
          "  --backoff-multiplier X  each later wait, times X (>= 1; default 2)\n"
          "  --backoff-max D  longest wait (default 60s; >= --backoff-initial)\n"
          "  --backoff-jitter X  cut each wait by a random share of up to X\n"
          "                   (0 to 1; default 0.2)\n"
          "  --nack           refuse (NACK) each message once printed instead of\n"
          "                   acknowledging it: it comes again after the backoff,\n"
          "                   up to --max-deliver attempts, then is dead-lettered\n"
          "                   (each delivery counts for --count)\n"
          "  --nack-delay D   --nack, redelivered after D instead of the backoff\n"
          "  In a --queue group, --max-deliver, --max-queued and the backoff are\n"
          "  the group's: a member asking for others is refused.\n"
          "\n"
          "When sift falls behind (the broker holds more than --max-pending\n"
          "bytes for it, handed to its connection and not yet written):\n"
          "  --slow POLICY  what the broker does (delivery.md §7):\n"
          "                 drop-newest  drop the new message (the default)\n"
          "                 drop-oldest  keep it waiting in the broker and\n"
          "                              drop the oldest waiting one, so the\n"
          "                              newest arrive once sift catches up\n"
          "                 disconnect   close sift's connection (sift\n"
          "                              reconnects and subscribes again;\n"
          "                              what came meanwhile is lost)\n"
          "                 Not with --ack or --stream\n"
          "  --max-pending BYTES\n"
          "                 the bound, e.g. 65536 or 1MiB (default 0: the\n"
          "                 broker's max_pending_bytes_per_client, which\n"
          "                 also caps it)\n"
          "  --max-pending-msgs N\n"
          "                 drop-oldest: most messages kept waiting (default\n"
          "                 1000; also at most --max-pending bytes)\n"
          "  Drops are counted in sift stats (slow_consumer), and sift sub\n"
          "  says on stderr how many the broker dropped for it.\n"
          "\n"
          "Reading a stream (its records whose topic matches PATTERN, then\n"
          "new ones as they are stored; each printed as [TOPIC #SEQ] PAYLOAD):\n"
          "  --stream NAME    read stream NAME instead of live messages\n"
          "  --consumer NAME  as durable consumer NAME: it resumes after the\n"
          "                   last message it acknowledged (use --ack), also\n"
          "                   after a broker restart; without it, an\n"
          "                   ephemeral consumer that lives as long as sift\n"
          "  --all            start at the stream's first message\n"
          "  --new            only messages stored from now on (default)\n"
          "  --from-seq N     start at sequence number N\n"
          "  --since TIME     start at the first message stored at or after\n"
          "                   TIME: RFC 3339 (2026-11-30T12:00:00Z) or how\n"
          "                   long ago (90s, 2h)\n"
          "  A durable consumer that already exists ignores the start flags.\n"
          "\n"
          "Examples:\n"
          "  sift sub 'orders.>'\n"
          "  sift sub 'orders.>' --stream orders --all --count 100\n"
          "  sift sub 'prices.>' --slow drop-oldest --max-pending 1MiB\n"
          "  sift sub 'jobs.>' --queue workers --ack --max-in-flight 10\n"
          "  sift sub 'jobs.>' --ack --nack --max-deliver 3 --backoff-initial "
          "100ms\n"
          "  sift sub 'orders.*.created' --queue billing --count 10 "
          "--timeout 30s\n",
          kGlobalNote);
    case Command::kReq:
      return absl::StrCat(
          "Usage: sift req TOPIC MESSAGE [--timeout D] [--header K=V]... "
          "[--headers]\n"
          "\n"
          "Publishes MESSAGE on TOPIC with a reply address in this client's\n"
          "inbox, waits for the first reply and prints its payload (escaped\n"
          "like sub's).\n"
          "\n"
          "Flags:\n"
          "  --timeout D  how long to wait for the reply (default 5s); exit 1\n"
          "               if none came\n"
          "  --header K=V add header K with value V to the request\n"
          "               (repeatable, as for pub)\n"
          "  --headers    also print the reply's headers, one per line after\n"
          "               it: '  KEY: VALUE'\n"
          "\n"
          "Example:\n"
          "  sift req time.now ''\n",
          kGlobalNote);
    case Command::kReply:
      return absl::StrCat(
          "Usage: sift reply TOPIC (--echo | --response TEXT) [--count N] "
          "[--queue GROUP]\n"
          "\n"
          "Answers requests published on TOPIC (a pattern may be used) and\n"
          "prints one line per request handled:\n"
          "  [TOPIC] REQUEST -> RESPONSE\n"
          "Messages without a reply address are reported on stderr and not\n"
          "answered. Runs until N requests were answered or SIGINT/SIGTERM.\n"
          "\n"
          "Flags:\n"
          "  --echo           reply with the request's payload\n"
          "  --response TEXT  reply with TEXT\n"
          "  --count N        exit 0 after N replies (default 0: no limit)\n"
          "  --queue GROUP    share the requests with the other members of\n"
          "                   queue group GROUP\n"
          "\n"
          "Examples:\n"
          "  sift reply echo.svc --echo\n"
          "  sift reply time.now --response 'noon' --queue timekeepers\n",
          kGlobalNote);
    case Command::kStats:
      return absl::StrCat(
          "Usage: sift stats [--json]\n"
          "\n"
          "Prints the broker's counters: traffic, clients, subscriptions,\n"
          "messages dropped by reason, and the busiest topics.\n"
          "\n"
          "Flags:\n"
          "  --json  print the STATS_REPLY message as JSON (protobuf's JSON\n"
          "          mapping with the .proto field names; 64-bit counters are\n"
          "          strings)\n",
          kGlobalNote);
    case Command::kReload:
      return absl::StrCat(
          "Usage: sift reload\n"
          "\n"
          "Asks the broker to re-read the plugin sections of its config file\n"
          "(routes, plugin libraries, [subscriptions]), as SIGHUP does.\n"
          "Clients stay connected and no message is lost. If the file is\n"
          "invalid, the broker keeps its old config and this prints why\n"
          "(exit 1).\n",
          kGlobalNote);
    case Command::kFetch:
      return absl::StrCat(
          "Usage: sift fetch STREAM [--consumer NAME] [--batch N] [--wait D]\n"
          "                  [--all | --new | --from-seq N | --since TIME]\n"
          "                  [--filter-topic PATTERN] [--ack [ACK FLAGS]] "
          "[--headers]\n"
          "\n"
          "Polls stream STREAM once (a pull consumer) and prints each message\n"
          "it returns as one line,\n"
          "  [TOPIC #SEQ] PAYLOAD\n"
          "escaped like sub's, in stream order. Prints nothing if there is\n"
          "nothing to fetch. Exit status 0 either way.\n"
          "\n"
          "Flags:\n"
          "  --consumer NAME  fetch as durable consumer NAME, which keeps its\n"
          "                   position across fetches and broker restarts;\n"
          "                   without it, each fetch reads from the start\n"
          "                   flag and keeps nothing\n"
          "  --batch N        at most N messages (1 to 10000; default 1)\n"
          "  --wait D         wait up to D (whole ms, at most 1h) for N messages\n"
          "                   to be there (default 0: answer with what is there\n"
          "                   now)\n"
          "  --all            start at the stream's first message (default)\n"
          "  --new            only messages stored from now on (within --wait)\n"
          "  --from-seq N     start at sequence number N\n"
          "  --since TIME     start at the first message stored at or after\n"
          "                   TIME: RFC 3339 (2026-11-30T12:00:00Z) or how\n"
          "                   long ago (90s, 2h)\n"
          "                   (a durable consumer that exists ignores these)\n"
          "  --filter-topic P only messages whose topic matches pattern P\n"
          "  --ack            explicit acks (needs --consumer): each message\n"
          "                   is acknowledged once printed; messages not\n"
          "                   acknowledged (sift killed) come again on a later\n"
          "                   fetch after the ack wait. Without --ack a\n"
          "                   message counts as acknowledged once sent\n"
          "  --headers        also print each message's headers, one per line\n"
          "\n"
          "ACK FLAGS (need --ack; as for sub, see sift sub --help):\n"
          "  --ack-wait D, --max-deliver N, --max-in-flight N,\n"
          "  --backoff-initial D, --backoff-multiplier X, --backoff-max D,\n"
          "  --backoff-jitter X: the ack policy this fetch asks for; --nack or\n"
          "  --nack-delay D: refuse each message once printed, so that a later\n"
          "  fetch gets it again (after D, or the backoff), up to --max-deliver\n"
          "  attempts, after which it is dead-lettered\n"
          "\n"
          "Examples:\n"
          "  sift fetch orders --all --batch 100\n"
          "  sift fetch orders --consumer billing --batch 10 --wait 5s --ack\n",
          kGlobalNote);
    case Command::kStream:
      return absl::StrCat(
          "Usage: sift stream ACTION ARGS... [FLAGS]\n"
          "\n"
          "Streams keep the messages published on their topics on the\n"
          "broker's disk (siftd --data_dir), for replay (sift sub --stream)\n"
          "and polling (sift fetch).\n"
          "\n"
          "Actions:\n"
          "  add NAME --subjects PATTERNS [limits]  create a stream\n"
          "  info NAME                 its settings, counts and consumers\n"
          "  ls                        every stream, one line each\n"
          "  rm NAME                   delete it with its messages\n"
          "  rm-consumer STREAM NAME   delete a durable consumer\n"
          "\n"
          "sift stream ACTION --help shows an action's flags.\n",
          kGlobalNote);
    case Command::kStreamAdd:
      return absl::StrCat(
          "Usage: sift stream add NAME --subjects PATTERNS [--max-age D]\n"
          "                       [--max-bytes N] [--max-msgs N]\n"
          "                       [--fsync always|never|INTERVAL] "
          "[--dedup-window D]\n"
          "                       [--dedup-max-ids N] [--segment-bytes N]\n"
          "\n"
          "Creates stream NAME (1-64 characters: A-Z a-z 0-9 _ -), which\n"
          "stores every message published on a topic matching one of\n"
          "PATTERNS, and prints it as stream info does. Adding the same\n"
          "stream again changes nothing; other settings for an existing name\n"
          "are refused.\n"
          "\n"
          "Flags:\n"
          "  --subjects P,P  topic patterns, comma-separated (repeatable),\n"
          "                  e.g. 'orders.>,billing.*'\n"
          "  --max-age D     drop messages older than D (e.g. 24h)\n"
          "  --max-bytes N   keep at most N bytes (e.g. 1073741824, 512MiB;\n"
          "                  at least 4KiB)\n"
          "  --max-msgs N    keep at most N messages\n"
          "                  (limits default to none; the oldest go first)\n"
          "  --fsync P       always (default: a confirmed publish waits for\n"
          "                  its fsync), never (left to the OS), or an\n"
          "                  interval of 1ms to 60s such as 10ms\n"
          "  --dedup-window D  publishes with the same message id (pub\n"
          "                  --msg-id) within D are stored once (default 2m;\n"
          "                  1ms to 168h)\n"
          "  --dedup-max-ids N  message ids the stream remembers, at most\n"
          "                  (default 100000; 1 to 100000000): the oldest is\n"
          "                  forgotten first, even within the window, so set\n"
          "                  N above the ids you may publish (or republish)\n"
          "                  within one window. Each id costs the broker\n"
          "                  memory (docs/delivery.md)\n"
          "  --segment-bytes N  size of a segment file before the next one\n"
          "                  is started, 4KiB to 1GiB (default, and 0:\n"
          "                  64MiB, or a quarter of --max-bytes if less).\n"
          "                  Retention removes whole segments: the broker\n"
          "                  wants --max-bytes of at least one segment\n"
          "\n"
          "Example:\n"
          "  sift stream add orders --subjects 'orders.>' --max-age 168h "
          "--fsync 10ms\n",
          kGlobalNote);
    case Command::kStreamInfo:
      return absl::StrCat(
          "Usage: sift stream info NAME\n"
          "\n"
          "Prints stream NAME's settings, its first and last sequence\n"
          "numbers, message and byte counts, and its durable consumers\n"
          "(acknowledged up to, delivered up to, in flight, attached).\n",
          kGlobalNote);
    case Command::kStreamLs:
      return absl::StrCat(
          "Usage: sift stream ls\n"
          "\n"
          "Lists every stream, one line each: name, subjects, messages,\n"
          "bytes, first and last sequence numbers, consumers.\n",
          kGlobalNote);
    case Command::kStreamRm:
      return absl::StrCat(
          "Usage: sift stream rm NAME\n"
          "\n"
          "Deletes stream NAME, its messages and its consumers. There is no\n"
          "undo and no confirmation prompt.\n",
          kGlobalNote);
    case Command::kStreamRmConsumer:
      return absl::StrCat(
          "Usage: sift stream rm-consumer STREAM NAME\n"
          "\n"
          "Deletes durable consumer NAME of stream STREAM: its position is\n"
          "forgotten (the next consumer of that name starts afresh).\n",
          kGlobalNote);
    case Command::kHelp:
    case Command::kVersion:
      break;
  }
  return Usage();
}

}  // namespace sift::cli
