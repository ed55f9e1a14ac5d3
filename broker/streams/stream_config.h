// StreamSettings is one durable stream's definition (docs/delivery.md §3):
// its name, the topic patterns it captures, retention, fsync policy and
// dedup window. They come from siftd's config file ([[streams]] tables) or
// from a client's STREAM ADD, and are kept in the stream's directory
// (stream.toml) so a stream made through the protocol outlives a restart.
//
// Pure functions of their arguments: any thread.
#ifndef SIFT_BROKER_STREAMS_STREAM_CONFIG_H_
#define SIFT_BROKER_STREAMS_STREAM_CONFIG_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "broker/store/stream_log.h"

namespace sift::streams {

struct StreamSettings {
  std::string name;                   // [A-Za-z0-9_-], 1..64 bytes
  std::vector<std::string> subjects;  // topic patterns, at least one
  // Retention; 0 = unlimited.
  uint64_t max_age_ms = 0;
  uint64_t max_bytes = 0;
  uint64_t max_msgs = 0;
  store::FsyncPolicy fsync = store::FsyncPolicy::kAlways;
  uint64_t fsync_every_ms = 10;  // kEveryMs only
  uint64_t dedup_window_ms = 120000;
  // The message ids remembered for dedup, at most (oldest forgotten first,
  // even inside the window): 1 to kMaxDedupMaxIds. Each costs memory while
  // remembered (docs/delivery.md §3).
  uint64_t dedup_max_ids = 100000;
  uint64_t segment_max_bytes = 64 << 20;

  // Equal when SettingsDifferences finds none (fsync_every_ms counts only
  // with fsync "<N>ms").
  bool operator==(const StreamSettings& o) const;
  bool operator!=(const StreamSettings& o) const { return !(*this == o); }
};

inline constexpr uint64_t kMaxDedupMaxIds = 100000000;

// Each setting in which `requested` differs from `existing`, as
// "<key> <existing value> (requested <requested value>)", keys as the
// config file names them ("max_msgs 100 (requested 0)", "fsync 10ms
// (requested always)", "subjects [\"a.>\"] (requested [\"b.>\"])"): name,
// subjects, fsync, then the numbers in the config file's order. Empty when
// they are the same stream.
std::vector<std::string> SettingsDifferences(const StreamSettings& existing,
                                             const StreamSettings& requested);

// The segment size when a stream's settings leave it out: 64 MiB, or a
// quarter of max_bytes (at least 4 KiB) when that is smaller, so a small
// max_bytes needs no segment size of its own.
uint64_t DefaultSegmentBytes(uint64_t max_bytes);

// "always", "never" or "<N>ms" (1 <= N <= 60000) into settings->fsync and
// fsync_every_ms. InvalidArgument naming the value otherwise.
absl::Status ParseFsync(std::string_view text, StreamSettings* settings);
// The inverse: "always", "never", "10ms".
std::string FsyncText(const StreamSettings& settings);

// What a stream's name may be: kStreamNameRule says it in words.
bool ValidStreamName(std::string_view name);
inline constexpr char kStreamNameRule[] =
    "a stream name is 1 to 64 bytes of letters, digits, '_' and '-'";

// InvalidArgument naming the field: a bad name, no subjects, a subject that
// is not a valid pattern under topic::Limits{} defaults or that is under
// "$sift.", an integer setting out of its range ("stream \"x\"
// dedup_max_ids must be between 1 and 100000000 (got 0)"): max_age_ms up
// to 2^53, max_bytes 0 or at least 4 KiB, dedup_window_ms up to 7 days,
// dedup_max_ids 1 to kMaxDedupMaxIds (0 is refused: dedup_window_ms = 0
// turns dedup off), segment_max_bytes 4 KiB to 1 GiB; a max_bytes below
// segment_max_bytes (retention works a segment at a time).
absl::Status ValidateStreamSettings(const StreamSettings& settings);

// The [[streams]] tables of a siftd config file (other keys are ignored):
//   [[streams]]
//   name = "orders"
//   subjects = ["orders.>"]
//   max_age_ms = 86400000     # also max_bytes, max_msgs, dedup_window_ms,
//   fsync = "always"          # dedup_max_ids, segment_max_bytes
// Errors are InvalidArgument naming `source_name`, the line and the key;
// duplicate names are refused. An integer setting must be a TOML integer
// in its range (a float such as 5.0 or 1e3 is refused, with its value:
// "s.toml:4: stream setting \"dedup_max_ids\" must be an integer (got
// 5.0)"; "... must be between 1 and 100000000 (got -1)"). Each stream
// passes ValidateStreamSettings.
absl::StatusOr<std::vector<StreamSettings>> ParseStreamSections(
    std::string_view toml_text, std::string_view source_name);

// `streams` as [[streams]] tables, every setting written (segment_max_bytes
// too, so it does not depend on max_bytes when read back), in the order
// given. For siftd --print-config: ParseStreamSections of the result gives
// `streams` back. The tables go after a file's top-level keys.
std::string StreamSectionsToToml(const std::vector<StreamSettings>& streams);

// One stream as the TOML of its stream.toml file, and back.
std::string StreamSettingsToToml(const StreamSettings& settings);
absl::StatusOr<StreamSettings> StreamSettingsFromToml(
    std::string_view toml_text, std::string_view source_name);

// The StreamLogOptions for this stream's log in `dir`.
store::StreamLogOptions LogOptionsFor(const StreamSettings& settings,
                                      std::string dir);

}  // namespace sift::streams

#endif  // SIFT_BROKER_STREAMS_STREAM_CONFIG_H_
