#include "bench/options.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "bench/payload.h"
#include "broker/base/flag_text.h"
#include "broker/base/number_text.h"
#include "clients/cpp/client.h"

namespace sift::bench {

const char kUsage[] =
    R"(Usage: sift-bench [FLAGS]

Measures a sift broker (or a baseline: a plain ZeroMQ XSUB/XPUB zmq_proxy,
ZeroMQ with no broker, nats-server or redis-server) with publishers and
subscribers in threads of this process, each with its own client or
connection, like `nats bench`. Every payload carries
its send time, publisher id and sequence number, so subscribers measure
latency and check for gaps, duplicates and order.

Server:
  --server ENDPOINT     use a running server: siftd (default
                        tcp://127.0.0.1:7440), nats-server (HOST:PORT,
                        default 127.0.0.1:4222), redis-server (HOST:PORT,
                        default 127.0.0.1:6379)
  --server_pid PID      its pid, to report its CPU seconds and RSS
  --spawn PATH          start PATH (siftd, nats-server or redis-server, as
                        --mode says) on a free 127.0.0.1 port for the run
                        and stop it after (SIGTERM, by pid)
  --siftd_flag FLAG     extra flag for the spawned siftd (repeatable)
  --client_spin_us N    sift: the subscribers' ClientOptions::idle_spin, in
                        us (busy-polling; 0, the default, sleeps at once)
  --mode MODE           sift (default); proxy: the same workload through
                        `sift-bench proxy-server` (zmq_proxy) in a child
                        process; direct: ZeroMQ PUB -> SUB with no broker;
                        nats: nats-server (NATS text protocol, buffered
                        writes, as nats bench); redis: redis-server
                        (pipelined PUBLISH, SUBSCRIBE/PSUBSCRIBE; no queue
                        groups). --server/--spawn are unused by proxy and
                        direct

Workload:
  --size BYTES          payload size, >= 16 (default 128)
  --count N             messages per publisher (default 100000)
  --pubs N              publishers (default 1)
  --pub_clients N       sift: the publishers share N Clients, publisher p
                        using client p mod N, each from its own thread
                        (default: a Client per publisher)
  --subs N              subscribers (default 1)
  --topic TOPIC         topic published to (default bench.topic)
  --pattern PATTERN     subscribers' pattern (default: the topic)
  --topics N            publish round-robin to N topics "<topic>.<i>", each
                        subscriber subscribing to all N (sift and nats
                        only; default 1: the topic itself)
  --queue GROUP         subscribers join this queue group (each message goes
                        to one of them; proxy and direct: PUSH/PULL; nats:
                        a NATS queue group; redis: refused)
  --rate MSGS_PER_S     total publish rate over all publishers, paced; for
                        latency runs (default 0: as fast as possible)
  --noise N             N extra non-matching subscriptions "noise.<i>.*"
                        held by other clients (default 0)
  --noise_clients N     clients holding the noise (default 10)
  --next                sift subscribers receive with Subscription::Next()
                        on their own thread instead of a callback

Delivery guarantees (sift only; docs/delivery.md):
  --stream FSYNC        a stream "sift-bench" captures the topic(s), with
                        fsync policy FSYNC as siftd's fsync setting takes
                        it: always, never or <N>ms, N whole milliseconds
                        from 1 to 60000 (e.g. 10ms; 5s is written 5000ms).
                        A spawned siftd gets a temporary --data_dir
                        (under $TEST_TMPDIR, else $TMPDIR, else /tmp),
                        removed after; a running one (--server) needs its
                        own: sift-bench adds a stream named sift-bench
                        there and deletes it after the run (one of that
                        name already there is lost)
  --disk_probe SECONDS  with --stream and --spawn: before the run, append
                        --size bytes + fdatasync in a loop for this long in
                        the data directory and report the disk's raw fsync
                        rate (default 1; 0: no probe). Given without
                        --stream or --spawn, it is ignored with a warning
  --confirm_window N    publish confirmed (answered once routed; to a
                        stream, once the record is durable per its fsync
                        policy), each publisher keeping N confirms
                        outstanding with Client::PublishConfirmedAsync:
                        its thread sends the first N, then each answer's
                        callback sends the next (a publish refused for
                        now is sent again by the thread, so a subscriber
                        may see some out of order). Default 0:
                        fire-and-forget. Not with --rate
  --ack MODE            none (at-most-once, default) or explicit
                        (at-least-once: every subscriber ACKs each
                        message; the broker may queue the whole run)
  --max_in_flight N     with --ack explicit: each subscriber's prefetch
                        (default: the broker's, 1000)
  --replay HOW          with --stream: publish first with no subscriber
                        reading, then measure reading the stream back from
                        its first record: sub (a stream subscription,
                        DELIVER_ALL) or fetch (FETCH polls, each from the
                        next sequence number; with --ack explicit a durable
                        consumer per subscriber, ACKing each record)
  --fetch_batch N       records per FETCH (1 to 10000, default 1000)

Memory mode (no messages):
  --memory_subs N       broker RSS with N subscriptions "mem.<i>.*" ...
  --memory_clients M    ... held by M clients (default 1000); reports bytes
                        per subscription beyond the empty broker
  --memory_threads T    concurrent Subscribe() callers (default 32)

Output and bounds:
  --json                one JSON object on stdout instead of text
  --quiet               no progress line on stderr (default: every ~2 s)
  --timeout SECONDS     bound on the whole run (default 300)
  --drain SECONDS       after the last publish, wait at most this long
                        without progress for missing messages (default 5)
  --help                this text

Exit status: 0 if every expected message arrived once (delivered = 1.0),
3 if not (losses, duplicates, timeout; the report is still printed),
1 on a setup error, 2 on bad flags.
)";

namespace {

absl::Status Bad(const std::string& flag, const std::string& value,
                 const std::string& why) {
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, "=", value, ": ", why, " (see --help)"));
}

template <typename T>
absl::Status ParseInt(const std::string& flag, const std::string& value,
                      T min, T max, T* out) {
  int64_t v = 0;
  if (!ParseInteger(value, &v) || v < static_cast<int64_t>(min) ||
      v > static_cast<int64_t>(max)) {
    return Bad(flag, value,
               absl::StrCat("want an integer from ", min, " to ", max));
  }
  *out = static_cast<T>(v);
  return absl::OkStatus();
}

// --stream FSYNC: the broker's fsync setting, as siftd's config and STREAM
// ADD take it (broker/streams/stream_config.cc): "always", "never" or
// "<N>ms" with 1 <= N <= 60000, in milliseconds only. Refused here, as a
// bad flag, rather than by the broker after setup. The broker's parser
// also skips whitespace and a sign around N, which are refused here: the
// report compares FSYNC with the policy the broker gives back.
absl::Status ParseFsync(const std::string& flag, const std::string& value) {
  if (value == "always" || value == "never") return absl::OkStatus();
  absl::string_view n = value;
  int64_t ms = 0;
  if (absl::ConsumeSuffix(&n, "ms") && !n.empty() &&
      std::all_of(n.begin(), n.end(), absl::ascii_isdigit) &&
      absl::SimpleAtoi(n, &ms) && ms >= 1 && ms <= 60000) {
    return absl::OkStatus();
  }
  // A duration in other units: say how the broker spells it.
  std::string hint;
  absl::Duration d;
  if (absl::ParseDuration(value, &d) && d >= absl::Milliseconds(1) &&
      d <= absl::Seconds(60) &&
      d % absl::Milliseconds(1) == absl::ZeroDuration()) {
    hint =
        absl::StrCat("; ", value, " is ", absl::ToInt64Milliseconds(d), "ms");
  }
  return Bad(flag, value,
             absl::StrCat("want always, never or <N>ms, N whole "
                          "milliseconds from 1 to 60000 (siftd's fsync "
                          "setting takes milliseconds only",
                          hint, ")"));
}

absl::Status ParseSeconds(const std::string& flag, const std::string& value,
                          double* out) {
  double v = 0;
  if (!ParseDouble(value, &v) || !(v >= 0)) {
    return Bad(flag, value, "want a number of seconds >= 0");
  }
  *out = v;
  return absl::OkStatus();
}

}  // namespace

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kSift:
      return "sift";
    case Mode::kProxy:
      return "proxy";
    case Mode::kDirect:
      return "direct";
    case Mode::kNats:
      return "nats";
    case Mode::kRedis:
      return "redis";
  }
  return "?";
}

const char* ReplayName(Replay replay) {
  switch (replay) {
    case Replay::kNone:
      return "none";
    case Replay::kSub:
      return "sub";
    case Replay::kFetch:
      return "fetch";
  }
  return "?";
}

absl::StatusOr<Options> ParseOptions(int argc, char** argv) {
  Options o;
  bool server_given = false;
  bool disk_probe_given = false;
  const std::vector<std::string> bool_flags = {"json", "quiet", "next",
                                               "help"};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument \"", arg, "\" (see --help)"));
    }
    arg = arg.substr(2);
    std::string name = arg, value;
    bool has_value = false;
    if (const size_t eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    bool is_bool = false;
    for (const auto& b : bool_flags) is_bool = is_bool || b == name;
    if (is_bool) {
      if (has_value && value != "true" && value != "false") {
        return Bad(name, value, "want true or false");
      }
      const bool on = !has_value || value == "true";
      if (name == "json") o.json = on;
      if (name == "quiet") o.progress = !on;
      if (name == "next") o.use_next = on;
      if (name == "help" && on) return absl::NotFoundError("help");
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value (see --help)"));
      }
      // The next flag is not taken as the value (`--queue --ack explicit`).
      if (std::string why = FlagInValuesPlace(absl::StrCat("--", name),
                                              argv[i + 1]);
          !why.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value", why));
      }
      value = argv[++i];
    }
    absl::Status s;
    if (name == "server") {
      o.server = value;
      server_given = true;
    } else if (name == "server_pid") {
      s = ParseInt<pid_t>(name, value, 1, 1 << 30, &o.server_pid);
    } else if (name == "spawn") {
      o.spawn = value;
    } else if (name == "siftd_flag") {
      o.siftd_flags.push_back(value);
    } else if (name == "mode") {
      bool known = false;
      for (Mode m : {Mode::kSift, Mode::kProxy, Mode::kDirect, Mode::kNats,
                     Mode::kRedis}) {
        if (value == ModeName(m)) {
          o.mode = m;
          known = true;
        }
      }
      if (!known) {
        s = Bad(name, value, "want sift, proxy, direct, nats or redis");
      }
    } else if (name == "size") {
      s = ParseInt<size_t>(name, value, kStampSize, size_t{1} << 30, &o.size);
    } else if (name == "count") {
      s = ParseInt<uint64_t>(name, value, 1, kProbeSeq - 1, &o.count);
    } else if (name == "pubs") {
      s = ParseInt<int>(name, value, 1, kMaxPublishers - 1, &o.pubs);
    } else if (name == "pub_clients") {
      s = ParseInt<int>(name, value, 1, kMaxPublishers - 1, &o.pub_clients);
    } else if (name == "subs") {
      s = ParseInt<int>(name, value, 0, 100000, &o.subs);
    } else if (name == "topic") {
      o.topic = value;
    } else if (name == "topics") {
      s = ParseInt<int>(name, value, 1, 100000000, &o.topics);
    } else if (name == "pattern") {
      o.pattern = value;
    } else if (name == "queue") {
      o.queue = value;
    } else if (name == "rate") {
      s = ParseSeconds(name, value, &o.rate);
    } else if (name == "noise") {
      s = ParseInt<int>(name, value, 0, 100000000, &o.noise);
    } else if (name == "client_spin_us") {
      s = ParseInt<int>(name, value, 0, 1000000, &o.client_spin_us);
    } else if (name == "noise_clients") {
      s = ParseInt<int>(name, value, 1, 100000, &o.noise_clients);
    } else if (name == "memory_subs") {
      s = ParseInt<uint64_t>(name, value, 1, uint64_t{1} << 40,
                             &o.memory_subs);
    } else if (name == "memory_clients") {
      s = ParseInt<int>(name, value, 1, 100000, &o.memory_clients);
    } else if (name == "memory_threads") {
      s = ParseInt<int>(name, value, 1, 10000, &o.memory_threads);
    } else if (name == "stream") {
      s = ParseFsync(name, value);
      o.stream_fsync = value;
    } else if (name == "disk_probe") {
      s = ParseSeconds(name, value, &o.disk_probe_s);
      disk_probe_given = true;
    } else if (name == "confirm_window") {
      s = ParseInt<int>(name, value, 0, 100000, &o.confirm_window);
    } else if (name == "ack") {
      if (value == "explicit" || value == "none") {
        o.ack_explicit = value == "explicit";
      } else {
        s = Bad(name, value, "want none or explicit");
      }
    } else if (name == "max_in_flight") {
      s = ParseInt<uint32_t>(name, value, 1, 1u << 30, &o.max_in_flight);
    } else if (name == "replay") {
      if (value == "sub") {
        o.replay = Replay::kSub;
      } else if (value == "fetch") {
        o.replay = Replay::kFetch;
      } else {
        s = Bad(name, value, "want sub or fetch");
      }
    } else if (name == "fetch_batch") {
      s = ParseInt<uint32_t>(name, value, 1, 10000, &o.fetch_batch);
    } else if (name == "timeout") {
      s = ParseSeconds(name, value, &o.timeout_s);
    } else if (name == "drain") {
      s = ParseSeconds(name, value, &o.drain_s);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    if (!s.ok()) return s;
  }
  if (server_given && !o.spawn.empty()) {
    return absl::InvalidArgumentError(
        "give --server (a running broker) or --spawn (start one), not both");
  }
  if (!server_given && o.spawn.empty()) {
    o.server = o.mode == Mode::kNats    ? "127.0.0.1:4222"
               : o.mode == Mode::kRedis ? "127.0.0.1:6379"
                                        : kDefaultEndpoint;
  }
  if (o.topics > 1 && ((o.mode != Mode::kSift && o.mode != Mode::kNats) ||
                       !o.pattern.empty() || o.use_next)) {
    return absl::InvalidArgumentError(
        "--topics: sift and nats modes only, without --pattern or --next");
  }
  if (o.mode == Mode::kRedis && o.queue_group()) {
    return absl::InvalidArgumentError(
        "--queue: Redis pub/sub has no queue groups");
  }
  if (o.memory_subs > 0 && o.mode != Mode::kSift && o.mode != Mode::kProxy) {
    return absl::InvalidArgumentError(
        "--memory_subs: memory mode runs against sift or proxy");
  }
  const bool delivery = o.stream() || o.confirm_window > 0 ||
                        o.ack_explicit || o.replay != Replay::kNone;
  if (delivery && (o.mode != Mode::kSift || o.memory_subs > 0)) {
    return absl::InvalidArgumentError(
        "--stream, --confirm_window, --ack explicit and --replay: sift mode "
        "message runs only");
  }
  if (o.pub_clients > 0 && (o.mode != Mode::kSift || o.pub_clients > o.pubs)) {
    return absl::InvalidArgumentError(
        "--pub_clients: sift mode, at most --pubs");
  }
  if (o.confirm_window > 0 && o.rate > 0) {
    return absl::InvalidArgumentError(
        "--confirm_window: unpaced runs only (not with --rate)");
  }
  if (o.max_in_flight > 0 && !o.ack_explicit) {
    return absl::InvalidArgumentError("--max_in_flight needs --ack explicit");
  }
  if (o.replay != Replay::kNone && (!o.stream() || o.queue_group() ||
                                    o.topics > 1 || !o.pattern.empty())) {
    return absl::InvalidArgumentError(
        "--replay needs --stream, and no --queue, --topics or --pattern");
  }
  if (o.replay == Replay::kFetch && o.use_next) {
    return absl::InvalidArgumentError("--replay fetch: not with --next");
  }
  if (disk_probe_given && o.disk_probe_s > 0 &&
      (!o.stream() || o.spawn.empty())) {
    return absl::InvalidArgumentError(
        "--disk_probe probes the data directory of a siftd started for a "
        "--stream run: it needs --stream and --spawn (--disk_probe 0: no "
        "probe)");
  }
  if (o.memory_subs == 0 && o.subs < 1) {
    return absl::InvalidArgumentError("--subs must be at least 1");
  }
  if (o.memory_subs > 0 &&
      o.memory_subs < static_cast<uint64_t>(o.memory_clients)) {
    o.memory_clients = static_cast<int>(o.memory_subs);
  }
  return o;
}

}  // namespace sift::bench
