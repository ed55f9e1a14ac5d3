// siftd's settings, and where they come from: built-in defaults, then a TOML
// file (--config FILE), then command-line flags; a later source wins.
//
// One table in config.cc lists every setting with its type, range and
// description; it drives the TOML keys, the flags, --help, --print-config
// and Validate, so they cannot drift apart. docs/configuration.md is the
// operator's guide; default_config.toml is the commented default file,
// compiled into siftd.
//
// Everything here is a pure function of its arguments (no global flag
// state), so it is thread-safe and can be called repeatedly, e.g. by tests.

#ifndef SIFT_BROKER_CONFIG_CONFIG_H_
#define SIFT_BROKER_CONFIG_CONFIG_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sift {

// The broker's settings. The initialisers are the built-in defaults.
// Adding a field: add a row to kSettings in config.cc and a paragraph to
// default_config.toml and docs/configuration.md; config_test fails until the
// row and the default file agree.
struct Config {
  // Endpoints to bind: tcp://HOST:PORT, ipc://PATH or inproc://NAME.
  std::vector<std::string> endpoints = {"tcp://127.0.0.1:7440"};
  uint64_t max_payload_bytes = 1 << 20;  // 1 MiB
  uint32_t max_topic_length = 256;
  uint32_t max_topic_tokens = 16;  // At most 64.
  uint32_t max_subscriptions_per_client = 10000;
  // Broker-wide bounds: sessions, and subscriptions of all sessions.
  uint32_t max_clients = 100000;
  uint64_t max_subscriptions = 1000000;
  // Bytes queued for sending to one client, and to all clients together,
  // beyond which deliveries are dropped (slow_consumer).
  uint64_t max_pending_bytes_per_client = 64 << 20;  // 64 MiB
  uint64_t max_pending_bytes = 1 << 30;              // 1 GiB
  // Largest BATCH body (frame 1) accepted from a client; 0 = none.
  uint64_t max_batch_bytes = 1 << 20;  // 1 MiB
  // Message headers on one PUB: how many, and their key + value bytes.
  uint32_t max_headers = 64;
  uint32_t max_headers_bytes = 65536;
  // Retained values (MQTT retained): topics and bytes held.
  uint32_t max_retained = 100000;
  uint64_t max_retained_bytes = 256 << 20;  // 256 MiB
  // Delayed publishes: messages and bytes held, and how far ahead.
  uint32_t max_delayed = 1000000;
  uint32_t max_delay_ms = 2592000000u;      // 30 days
  uint64_t max_delayed_bytes = 1 << 30;     // 1 GiB
  // Clients silent for longer than this are dropped (0 = never).
  uint32_t client_timeout_ms = 30000;
  // A tcp/ipc connection that has not finished ZeroMQ's handshake within
  // this is closed (ZMQ_HANDSHAKE_IVL).
  uint32_t handshake_timeout_ms = 5000;
  // ZeroMQ high-water marks (messages) on the broker socket; 0 = no limit.
  uint32_t send_hwm = 1000000;
  // Per connection: what siftd has not read yet (ZeroMQ's own default).
  // Past it ZeroMQ stops reading the connection, so a client that sends
  // faster than siftd routes waits in TCP, not in siftd's memory.
  uint32_t recv_hwm = 1000;
  // Subject-tree match cache entries (0 disables the cache).
  uint32_t match_cache_size = 4096;
  // Topics listed in a STATS reply.
  uint32_t stats_top_topics = 50;
  // Per-topic counters kept; beyond this, counted under "(other topics)".
  uint32_t max_tracked_topics = 10000;
  // Busy-polling: how long the routing thread keeps looking for input
  // before it sleeps, in microseconds (0 = it sleeps at once). Opt-in: it
  // trades a CPU for latency (docs/configuration.md).
  uint32_t idle_spin_us = 0;
  // debug|info|warn|error; see ParseLogLevel() in broker/log/log.h.
  std::string log_level = "info";
  // Where durable streams keep their files (docs/delivery.md); empty =
  // streams are off.
  std::string data_dir;
};

// Topic limits below these leave no room for request/reply inbox topics
// ("_INBOX.<client id>.<token>"): they are the settings' lower bounds.
inline constexpr uint32_t kMinTopicLengthForInboxes = 64;
inline constexpr uint32_t kMinTopicTokensForInboxes = 3;

// Compares every setting.
bool operator==(const Config& a, const Config& b);
inline bool operator!=(const Config& a, const Config& b) { return !(a == b); }

// The TOML text compiled into siftd (broker/config/default_config.toml):
// every setting with its default value and an explanation. Parsing it yields
// Config{}.
std::string_view DefaultConfigToml();

// Parses TOML `text` on top of `base`: every key is optional and a key that is
// absent keeps base's value. An unknown key, a value of the wrong type or out
// of range, and a syntax error are InvalidArgument errors that name
// `source_name` and the line, e.g.
//   siftd.toml:7: unknown setting "max_paylod_bytes" (did you mean
//       "max_payload_bytes"?)
//   siftd.toml:3: setting "max_topic_tokens" must be between 1 and 64 (got 65)
//   siftd.toml:2:14: syntax error: ...
// Several problems are reported together, one per line, in file order.
// The result has passed ValidateConfig().
absl::StatusOr<Config> ParseConfigToml(std::string_view text,
                                       std::string_view source_name,
                                       Config base = {});

// Checks ranges, endpoint syntax (tcp://HOST:PORT, ipc://PATH, inproc://NAME;
// at least one, no duplicates), the log level, and settings that depend on
// each other (the broker-wide pending-bytes bound at least the per-client
// one). Returns InvalidArgument
// naming the setting, e.g. `setting "endpoints" entry "http://x" must start
// with tcp://, ipc:// or inproc://`.
absl::Status ValidateConfig(const Config& config);

// `config` as TOML, one commented key per setting, in table order.
// ParseConfigToml(ConfigToToml(c), ...) == c for every valid c. The file's
// sections are not settings: SiftdConfigToToml (siftd_config.h) adds them.
std::string ConfigToToml(const Config& config);

// Reads a whole config file (at most 16 MiB). Errors name the file.
absl::StatusOr<std::string> ReadConfigFile(const std::string& path);

// The result of ParseCommandLine: run the broker with `config`; print
// `output` to stdout and exit with `exit_code` (--help, --version); or, for
// --print-config, print the effective configuration and exit 0. That is
// `config` and the sections of the --config file, which other modules read
// (broker/config/siftd_config.h: LoadSiftdConfig, SiftdConfigToToml).
struct CommandLine {
  enum class Action { kRun, kExit, kPrintConfig };

  Config config;
  Action action = Action::kRun;
  int exit_code = 0;
  std::string output;  // Text to print for kExit; empty otherwise.
  // The --config file, if one was given: siftd reads its sections (plugins,
  // [[streams]], [[schedules]]) at start, and its plugin sections again on
  // SIGHUP and RELOAD.
  std::string config_path;
};

// Parses siftd's command line (argv[0] is the program name). Flags:
//   --config=FILE     read settings from a TOML file
//   --SETTING=VALUE   every setting of Config, by its field name; lists are
//                     comma-separated (--endpoints=tcp://*:7440,ipc:///tmp/s)
//   --print-config    Action::kPrintConfig: print the effective config
//                     (settings and the file's sections) as TOML, exit 0
//   --version         print "siftd <version_string>" and exit 0
//   --help, -h        print usage (every flag, its default and meaning), exit 0
// `--flag value` works as well as `--flag=value`, one dash as well as two,
// and '-' as well as '_' inside a name. Order: defaults < --config file <
// flags, wherever --config appears; a repeated flag takes its last value.
// Errors (unknown or malformed flag, bad value, unreadable file, bad TOML)
// are returned; the caller prints them to stderr and exits with status 2.
absl::StatusOr<CommandLine> ParseCommandLine(int argc, char** argv,
                                             std::string_view version_string);

}  // namespace sift

#endif  // SIFT_BROKER_CONFIG_CONFIG_H_
