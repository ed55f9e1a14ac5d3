// One-line structured logs in logfmt, written to stderr:
//
//   ts=2026-11-24T10:00:00.123Z level=info msg="client connected" client=c7
//
// Usage:
//   sift::Log(sift::LogLevel::kInfo, "client connected",
//             {{"client", id}, {"endpoint", endpoint}, {"bytes", 12}});
//
// All functions here are thread-safe. Each line reaches stderr in one write(2)
// under a process-wide lock, so lines from different threads never interleave.
// A disabled level costs one relaxed atomic load: the fields are built (cheap,
// they only point at their values) but nothing is formatted. Arguments that
// are expensive to compute belong behind `if (sift::LogEnabled(level))`.

#ifndef SIFT_BROKER_LOG_LOG_H_
#define SIFT_BROKER_LOG_LOG_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sift {

// Severity of a log line. Lines below the level set by SetLogLevel() are
// dropped. The numbering is the order of severity.
enum class LogLevel : int {
  kDebug = 0,
  kInfo = 1,
  kWarn = 2,
  kError = 3,
};

// Sets the lowest level that is written. The initial level is kInfo.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();

// Parses "debug", "info", "warn" or "error" (ASCII case-insensitive).
// Returns InvalidArgument naming the accepted values otherwise.
absl::StatusOr<LogLevel> ParseLogLevel(std::string_view name);

// The lower-case name used in log lines and in the config: "debug", ...
std::string_view LogLevelName(LogLevel level);

// One key=value pair of a log line. Holds a string_view, an integer, a double
// or a bool; strings are referenced, not copied, so a LogField must not
// outlive the full expression it is created in: use it only as an argument
// of Log(). Keys are code-chosen identifiers; characters that logfmt does not
// allow in a key (space, '=', '"', control bytes) are replaced by '_'.
class LogField {
 public:
  LogField(std::string_view key, std::string_view value)
      : key_(key), kind_(Kind::kString), string_(value) {}
  LogField(std::string_view key, const char* value)
      : LogField(key, std::string_view(value == nullptr ? "" : value)) {}
  LogField(std::string_view key, const std::string& value)
      : LogField(key, std::string_view(value)) {}
  // This abseil build has its own string_view type, distinct from std's.
  LogField(std::string_view key, absl::string_view value)
      : LogField(key, std::string_view(value.data(), value.size())) {}
  LogField(std::string_view key, bool value)
      : key_(key), kind_(Kind::kBool), bool_(value) {}
  LogField(std::string_view key, double value)
      : key_(key), kind_(Kind::kDouble), double_(value) {}
  // Every integer type except bool and the character types.
  template <typename T, typename std::enable_if_t<
                            std::is_integral_v<T> && !std::is_same_v<T, bool> &&
                                !std::is_same_v<T, char>,
                            int> = 0>
  LogField(std::string_view key, T value) : key_(key) {
    if constexpr (std::is_signed_v<T>) {
      kind_ = Kind::kInt;
      int_ = static_cast<int64_t>(value);
    } else {
      kind_ = Kind::kUint;
      uint_ = static_cast<uint64_t>(value);
    }
  }

  // Appends ` key=value` (with the leading space) to *out, quoting and
  // escaping the value where logfmt needs it.
  void AppendTo(std::string* out) const;

 private:
  enum class Kind { kString, kInt, kUint, kDouble, kBool };

  std::string_view key_;
  Kind kind_;
  union {
    std::string_view string_;
    int64_t int_;
    uint64_t uint_;
    double double_;
    bool bool_;
  };
};

namespace log_internal {
extern std::atomic<int> min_level;
void LogLine(LogLevel level, std::string_view msg,
             std::initializer_list<LogField> fields);
}  // namespace log_internal

// True if a line at `level` would be written. One relaxed atomic load.
inline bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >=
         log_internal::min_level.load(std::memory_order_relaxed);
}

// Writes one line `ts=... level=... msg=... key=value...` if `level` is
// enabled. The timestamp is UTC with milliseconds.
inline void Log(LogLevel level, std::string_view msg,
                std::initializer_list<LogField> fields = {}) {
  if (LogEnabled(level)) log_internal::LogLine(level, msg, fields);
}

// Appends `value` to *out as a logfmt value: unchanged if it is non-empty and
// has no space, '"', '=', control byte or invalid UTF-8; otherwise in double
// quotes with '"' and '\' backslash-escaped, \n \r \t, other control bytes as
// \u00XX and invalid UTF-8 bytes as \xXX. Exposed for tests and for tools
// that print logfmt.
void AppendLogfmtValue(std::string_view value, std::string* out);

// Receives every written line, including its trailing '\n', instead of
// stderr. Pass nullptr to restore stderr. Called under the logging lock, so
// the sink must not log.
using LogSink = std::function<void(std::string_view line)>;
void SetLogSinkForTesting(LogSink sink);

}  // namespace sift

#endif  // SIFT_BROKER_LOG_LOG_H_
