#include "broker/server/library_log.h"

#include <time.h>

#include <mutex>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "broker/log/log.h"
#include "broker/server/log_limiter.h"

namespace sift {
namespace {

int64_t MonotonicMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// At most 20 lines per 10 s; the count of the rest goes with the next line
// that passes.
std::mutex limiter_mu;
LogLimiter* limiter = new LogLimiter(/*per_window=*/20, /*window_ms=*/10000);

void ProtobufLog(google::protobuf::LogLevel level, const char* filename,
                 int line, const std::string& message) {
  uint64_t suppressed = 0;
  {
    std::lock_guard<std::mutex> lock(limiter_mu);
    if (!limiter->Allow(MonotonicMs())) return;
    suppressed = limiter->TakeSuppressed();
  }
  const LogLevel ours = level >= google::protobuf::LOGLEVEL_ERROR
                            ? LogLevel::kError
                            : level == google::protobuf::LOGLEVEL_WARNING
                                  ? LogLevel::kWarn
                                  : LogLevel::kInfo;
  // A message may quote client bytes: bounded here, escaped by the logger.
  constexpr size_t kMaxMessage = 512;
  Log(ours, "libprotobuf",
      {{"error", std::string_view(message).substr(0, kMaxMessage)},
       {"source", filename},
       {"line", line},
       {"suppressed_before", suppressed}});
}

}  // namespace

void InstallLibraryLogHandlers() {
  google::protobuf::SetLogHandler(&ProtobufLog);
}

}  // namespace sift
