#include "broker/log/log.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

#include <charconv>
#include <utility>

#include "absl/base/attributes.h"
#include "absl/base/const_init.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "broker/base/utf8_text.h"

namespace sift {
namespace log_internal {

std::atomic<int> min_level{static_cast<int>(LogLevel::kInfo)};

}  // namespace log_internal

namespace {

// Serialises output so that lines never interleave, and guards the sink.
ABSL_CONST_INIT absl::Mutex output_mutex(absl::kConstInit);
// nullptr means stderr. Replaced (and the old one freed) by
// SetLogSinkForTesting; never freed at exit, so logging from other static
// destructors stays safe.
LogSink* sink ABSL_GUARDED_BY(output_mutex) = nullptr;

// True for the ASCII bytes that force a value into quotes.
bool NeedsQuotingAscii(unsigned char c) {
  return c <= ' ' || c == '=' || c == '"' || c == 0x7F;
}

// The quoted form described at AppendLogfmtValue().
void AppendQuoted(std::string_view value, std::string* out) {
  out->push_back('"');
  for (size_t i = 0; i < value.size();) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c >= 0x80) {
      const size_t len = Utf8SequenceLength(value.substr(i));
      if (len == 0) {
        absl::StrAppendFormat(out, "\\x%02x", c);
        ++i;
      } else {
        out->append(value.substr(i, len));
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < ' ' || c == 0x7F) {
          absl::StrAppendFormat(out, "\\u%04x", c);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

bool NeedsQuoting(std::string_view value) {
  if (value.empty()) return true;
  for (size_t i = 0; i < value.size();) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c < 0x80) {
      if (NeedsQuotingAscii(c)) return true;
      ++i;
      continue;
    }
    const size_t len = Utf8SequenceLength(value.substr(i));
    if (len == 0) return true;
    i += len;
  }
  return false;
}

void AppendKey(std::string_view key, std::string* out) {
  if (key.empty()) {
    out->push_back('_');
    return;
  }
  for (char ch : key) {
    const auto c = static_cast<unsigned char>(ch);
    out->push_back(c >= 0x80 || NeedsQuotingAscii(c) ? '_' : ch);
  }
}

template <typename T>
void AppendNumber(T value, std::string* out) {
  char buf[64];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), value);
  out->append(buf, r.ptr);
}

// "2026-11-24T10:00:00.123Z": UTC, milliseconds.
void AppendTimestamp(std::string* out) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct tm utc;
  gmtime_r(&now.tv_sec, &utc);
  absl::StrAppendFormat(out, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                        utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
                        utc.tm_hour, utc.tm_min, utc.tm_sec,
                        static_cast<int>(now.tv_nsec / 1000000));
}

// Writes all of `line` to stderr, retrying on EINTR and short writes. A line
// normally goes out in one write(2); the output mutex keeps lines whole even
// when the kernel splits one.
void WriteToStderr(std::string_view line) {
  while (!line.empty()) {
    const ssize_t n = write(STDERR_FILENO, line.data(), line.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // Nowhere left to report the failure.
    }
    line.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

void SetLogLevel(LogLevel level) {
  log_internal::min_level.store(static_cast<int>(level),
                                std::memory_order_relaxed);
}

LogLevel GetLogLevel() {
  return static_cast<LogLevel>(
      log_internal::min_level.load(std::memory_order_relaxed));
}

absl::StatusOr<LogLevel> ParseLogLevel(std::string_view name) {
  const std::string lower =
      absl::AsciiStrToLower(absl::string_view(name.data(), name.size()));
  for (LogLevel level :
       {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (lower == LogLevelName(level)) return level;
  }
  std::string shown;
  AppendQuoted(name, &shown);
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown log level ", shown, " (expected debug, info, warn or error)"));
}

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "unknown";
}

void AppendLogfmtValue(std::string_view value, std::string* out) {
  if (NeedsQuoting(value)) {
    AppendQuoted(value, out);
  } else {
    out->append(value);
  }
}

void LogField::AppendTo(std::string* out) const {
  out->push_back(' ');
  AppendKey(key_, out);
  out->push_back('=');
  switch (kind_) {
    case Kind::kString:
      AppendLogfmtValue(string_, out);
      break;
    case Kind::kInt:
      AppendNumber(int_, out);
      break;
    case Kind::kUint:
      AppendNumber(uint_, out);
      break;
    case Kind::kDouble:
      AppendNumber(double_, out);
      break;
    case Kind::kBool:
      out->append(bool_ ? "true" : "false");
      break;
  }
}

namespace log_internal {

void LogLine(LogLevel level, std::string_view msg,
             std::initializer_list<LogField> fields) {
  const int saved_errno = errno;  // Logging must not disturb the caller.
  std::string line;
  line.reserve(128);
  line.append("ts=");
  AppendTimestamp(&line);
  line.append(" level=");
  line.append(LogLevelName(level));
  line.append(" msg=");
  AppendLogfmtValue(msg, &line);
  for (const LogField& field : fields) field.AppendTo(&line);
  line.push_back('\n');
  {
    absl::MutexLock lock(&output_mutex);
    if (sink != nullptr) {
      (*sink)(line);
    } else {
      WriteToStderr(line);
    }
  }
  errno = saved_errno;
}

}  // namespace log_internal

void SetLogSinkForTesting(LogSink new_sink) {
  auto* replacement =
      new_sink == nullptr ? nullptr : new LogSink(std::move(new_sink));
  LogSink* old;
  {
    absl::MutexLock lock(&output_mutex);
    old = std::exchange(sink, replacement);
  }
  delete old;
}

}  // namespace sift
