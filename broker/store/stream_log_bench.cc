// StreamLog throughput: appends of 128 B and 1 KiB messages under each fsync
// policy (timed until the last record is durable, so the figure is durable
// records per second), reads, and the disk's raw write+fdatasync rate that
// group commit is measured against (issue 8: confirmed msgs/s with
// fsync=always >= 50x the raw fsync rate).
//
//   SIFT_BENCH_DIR=/var/tmp bazel run //broker/store:stream_log_bench
// The stream lives in $SIFT_BENCH_DIR (else $TMPDIR, else /tmp)
// /sift_stream_bench.<pid>, removed at exit. Use a
// directory on the disk you want measured (tmpfs makes fsync free).
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "broker/store/stream_log.h"

namespace sift::store {
namespace {

std::string BenchDir() {
  static const std::string dir = [] {
    const char* env = std::getenv("SIFT_BENCH_DIR");
    if (env == nullptr) env = std::getenv("TMPDIR");
    return absl::StrCat(env ? env : "/tmp", "/sift_stream_bench.", getpid());
  }();
  return dir;
}

std::string FreshDir(const char* name) {
  std::filesystem::create_directories(BenchDir());
  std::string dir = absl::StrCat(BenchDir(), "/", name);
  std::filesystem::remove_all(dir);
  return dir;
}

void WaitDurable(StreamLog* log, uint64_t seq) {
  while (log->DurableSeq() < seq) {
    struct pollfd p = {log->notify_fd(), POLLIN, 0};
    ::poll(&p, 1, 100);
    log->TakeDurable();
    if (!log->writer_status().ok()) return;
  }
}

// range(0): payload bytes; range(1): FsyncPolicy.
void BM_Append(benchmark::State& state) {
  const auto policy = static_cast<FsyncPolicy>(state.range(1));
  StreamLogOptions o;
  o.dir = FreshDir("append");
  o.fsync_policy = policy;
  o.fsync_every_ms = 10;
  o.segment_max_bytes = 16 << 20;
  o.max_bytes = 256 << 20;  // keep the disk bounded
  auto log = StreamLog::Open(o);
  if (!log.ok()) {
    state.SkipWithError(std::string(log.status().message()).c_str());
    return;
  }
  const delivery::MessageRef m = delivery::StoredMessage::Make(
      "bench.stream.append", "", "",
      std::string(static_cast<size_t>(state.range(0)), 'x'));
  uint64_t seq = 0, full = 0;
  int64_t ms = 1;
  for (auto _ : state) {
    for (;;) {
      absl::Status s = (*log)->Append(m, ++ms, "", &seq);
      if (s.ok()) break;
      if (!absl::IsResourceExhausted(s)) {
        state.SkipWithError(std::string(s.message()).c_str());
        return;
      }
      ++full;  // the writer is behind: wait for it as a publisher would
      WaitDurable(log->get(), (*log)->WrittenSeq() + 1);
    }
  }
  WaitDurable(log->get(), seq);
  const StreamLogStats& st = (*log)->stats();
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
  state.counters["fsyncs"] = static_cast<double>(st.fsyncs.load());
  state.counters["recs/fsync"] =
      st.fsyncs.load() ? static_cast<double>(st.records_written.load()) /
                             static_cast<double>(st.fsyncs.load())
                       : 0;
  state.counters["queue_full"] = static_cast<double>(full);
  state.SetLabel(FsyncPolicyName(policy));
  (*log)->Close().IgnoreError();
}
BENCHMARK(BM_Append)
    ->ArgsProduct({{128, 1024},
                   {static_cast<int>(FsyncPolicy::kAlways),
                    static_cast<int>(FsyncPolicy::kEveryMs),
                    static_cast<int>(FsyncPolicy::kNever)}})
    ->UseRealTime();

// Reads a 64 MiB stream of range(0)-byte payloads, 256 records a Read.
void BM_Read(benchmark::State& state) {
  StreamLogOptions o;
  o.dir = FreshDir("read");
  o.fsync_policy = FsyncPolicy::kNever;
  o.segment_max_bytes = 16 << 20;
  auto log = StreamLog::Open(o);
  if (!log.ok()) {
    state.SkipWithError(std::string(log.status().message()).c_str());
    return;
  }
  const delivery::MessageRef m = delivery::StoredMessage::Make(
      "bench.stream.read", "", "",
      std::string(static_cast<size_t>(state.range(0)), 'x'));
  const uint64_t n = (64 << 20) / (state.range(0) + 64);
  uint64_t seq = 0;
  for (uint64_t i = 0; i < n; ++i) {
    while (!(*log)->Append(m, 1, "", &seq).ok()) {
      WaitDurable(log->get(), (*log)->WrittenSeq() + 1);
    }
  }
  (*log)->Flush().IgnoreError();
  std::vector<StreamRecord> out;
  uint64_t from = 1, records = 0;
  for (auto _ : state) {
    out.clear();
    absl::Status s = (*log)->Read(from, 256, UINT64_MAX, &out);
    if (!s.ok()) {
      state.SkipWithError(std::string(s.message()).c_str());
      return;
    }
    records += out.size();
    from = out.empty() || out.back().seq >= seq ? 1 : out.back().seq + 1;
  }
  state.SetItemsProcessed(static_cast<int64_t>(records));
  state.SetBytesProcessed(static_cast<int64_t>(records) * state.range(0));
  (*log)->Close().IgnoreError();
}
BENCHMARK(BM_Read)->Arg(128)->Arg(1024)->UseRealTime();

// The baseline: one 128-byte write + fdatasync per iteration.
void BM_RawWriteFdatasync(benchmark::State& state) {
  const std::string path = FreshDir("raw");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const std::string rec(128, 'x');
  for (auto _ : state) {
    if (::write(fd, rec.data(), rec.size()) < 0 || ::fdatasync(fd) != 0) {
      state.SkipWithError("write/fdatasync failed");
      break;
    }
  }
  ::close(fd);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawWriteFdatasync)->UseRealTime();

struct Cleanup {
  ~Cleanup() { std::filesystem::remove_all(BenchDir()); }
} cleanup;

}  // namespace
}  // namespace sift::store
