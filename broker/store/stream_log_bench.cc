// StreamLog throughput: appends of 128 B and 1 KiB messages under each fsync
// policy (timed until the last record is durable, so the figure is durable
// records per second), reads, and the disk's raw write+fdatasync rate that
// group commit is measured against (issue 8: confirmed msgs/s with
// fsync=always >= 50x the raw fsync rate).
//
//   SIFT_BENCH_DIR=/var/tmp bazel run //broker/store:stream_log_bench
//
// Files go to a fresh directory sift_stream_bench.XXXXXX in $SIFT_BENCH_DIR
// (else $TMPDIR, else /tmp); use a directory on the disk you want measured
// (tmpfs makes fsync free). Each benchmark removes its files when it ends,
// also when it fails, and the directory is removed on every way out: a
// normal end, exit() (--help, a bad flag), std::terminate, and SIGINT,
// SIGTERM, SIGHUP or SIGQUIT (exit status 128 + the signal). Only SIGKILL
// and a crash leave it behind.
//
// Bounds, so that a run neither hangs nor fills the disk:
// - appends keep at most 256 MiB (retention), the read benchmark writes
//   $SIFT_BENCH_READ_MIB MiB (default 64, 1 to 4096) once;
// - a benchmark run that takes longer than $SIFT_BENCH_WAIT_S seconds
//   (default 60, 1 to 3600), and a wait for the writer (a full queue, the
//   last record becoming durable) that takes longer, fails that benchmark
//   with an error instead of hanging; every retry loop has a count bound.
//
// A smoke run (a few MiB, a second or so):
//   SIFT_BENCH_READ_MIB=1 bazel run //broker/store:stream_log_bench --
//       --benchmark_min_time=0.01   (one line)
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "broker/store/stream_log.h"

namespace sift::store {
namespace {

// Set by Main() before any benchmark runs, then constant.
std::string g_bench_dir;                        // the run's directory
absl::Duration g_time_limit = absl::Seconds(60);  // per run, and per wait
uint64_t g_read_bytes = uint64_t{64} << 20;     // BM_Read's stream

// Most times one append waits for a full queue to drain before giving up
// (each wait ends when the writer makes progress, or at the time limit).
constexpr int kMaxAppendWaits = 100000;

// Removes `path` with everything in it; never throws. Tried a few times: a
// log's writer thread may be adding a file while the tree is removed.
void RemoveTree(const std::string& path) {
  if (path.empty()) return;
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::error_code error;
    std::filesystem::remove_all(path, error);
    if (!std::filesystem::exists(path, error)) return;
  }
  std::fprintf(stderr, "stream_log_bench: could not remove %s\n",
               path.c_str());
}

void RemoveBenchDir() { RemoveTree(g_bench_dir); }

// One benchmark run's directory under the bench directory, removed when it
// goes out of scope, on every return path. Declare it before the StreamLog
// using it, so that the log (and its writer thread) is gone first.
class ScopedDir {
 public:
  explicit ScopedDir(const char* name)
      : path_(absl::StrCat(g_bench_dir, "/", name)) {
    RemoveTree(path_);
  }
  ~ScopedDir() { RemoveTree(path_); }
  ScopedDir(const ScopedDir&) = delete;
  ScopedDir& operator=(const ScopedDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  const std::string path_;
};

// A message of `bytes` payload bytes on `topic`.
delivery::MessageRef BenchMessage(const char* topic, int64_t bytes) {
  return delivery::StoredMessage::Make(
      topic, "", "", std::string(static_cast<size_t>(bytes), 'x'));
}

// Waits until record `seq` is durable. Errors: the writer's, or
// DeadlineExceeded at `deadline`. First hands the writer the records
// appended and still staged (StreamLog::HandOff): it would otherwise wait
// for records it was never given.
absl::Status WaitDurable(StreamLog* log, uint64_t seq, absl::Time deadline) {
  log->HandOff();
  while (log->DurableSeq() < seq) {
    if (absl::Status s = log->writer_status(); !s.ok()) return s;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("record ", seq, " not durable within ",
                       absl::FormatDuration(g_time_limit), " (durable: ",
                       log->DurableSeq(), ")"));
    }
    struct pollfd p = {log->notify_fd(), POLLIN, 0};
    ::poll(&p, 1, 100);
    log->TakeDurable();
  }
  return absl::OkStatus();
}

// Appends `m`; while the writer's queue is full, waits for it as a
// publisher would (counted in *full), a bounded number of times and until
// `deadline` at most (the run's).
absl::Status AppendWaiting(StreamLog* log, const delivery::MessageRef& m,
                           int64_t unix_ms, absl::Time deadline,
                           uint64_t* seq, uint64_t* full) {
  for (int waits = 0; waits <= kMaxAppendWaits; ++waits) {
    absl::Status s = log->Append(m, unix_ms, "", seq);
    if (!absl::IsResourceExhausted(s)) return s;
    ++*full;
    if (absl::Status w = WaitDurable(log, log->WrittenSeq() + 1, deadline);
        !w.ok()) {
      return w;
    }
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "the writer's queue stayed full after ", kMaxAppendWaits, " waits"));
}

void Fail(benchmark::State& state, const absl::Status& status) {
  state.SkipWithError(std::string(status.message()).c_str());
}

// True (after failing the run) once the run is past `deadline`. Looks at
// the clock when iteration & mask is 0: a mask of 1023 for iterations far
// below a millisecond (a wait for the writer in one ends at the deadline
// itself), 0 for slow ones.
bool OverTime(benchmark::State& state, uint64_t iteration, uint64_t mask,
              absl::Time deadline) {
  if ((iteration & mask) != 0 || absl::Now() < deadline) return false;
  Fail(state, absl::DeadlineExceededError(absl::StrCat(
                  "run took longer than ", absl::FormatDuration(g_time_limit),
                  " (SIFT_BENCH_WAIT_S)")));
  return true;
}

// range(0): payload bytes; range(1): FsyncPolicy.
void BM_Append(benchmark::State& state) {
  const absl::Time deadline = absl::Now() + g_time_limit;
  const auto policy = static_cast<FsyncPolicy>(state.range(1));
  const ScopedDir dir("append");
  StreamLogOptions o;
  o.dir = dir.path();
  o.fsync_policy = policy;
  o.fsync_every_ms = 10;
  o.segment_max_bytes = 16 << 20;
  o.max_bytes = 256 << 20;  // keep the disk bounded
  auto log = StreamLog::Open(o);
  if (!log.ok()) return Fail(state, log.status());
  const delivery::MessageRef m =
      BenchMessage("bench.stream.append", state.range(0));
  uint64_t seq = 0, full = 0, iteration = 0;
  int64_t ms = 1;
  for (auto _ : state) {
    if (OverTime(state, ++iteration, 1023, deadline)) break;
    if (absl::Status s =
            AppendWaiting(log->get(), m, ++ms, deadline, &seq, &full);
        !s.ok()) {
      Fail(state, s);
      break;
    }
  }
  if (absl::Status s = WaitDurable(log->get(), seq, absl::Now() + g_time_limit);
      !s.ok()) {
    Fail(state, s);
  }
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

// Reads a stream of SIFT_BENCH_READ_MIB MiB of range(0)-byte payloads, 256
// records a Read.
void BM_Read(benchmark::State& state) {
  const absl::Time deadline = absl::Now() + g_time_limit;
  const ScopedDir dir("read");
  StreamLogOptions o;
  o.dir = dir.path();
  o.fsync_policy = FsyncPolicy::kNever;
  o.segment_max_bytes = 16 << 20;
  auto log = StreamLog::Open(o);
  if (!log.ok()) return Fail(state, log.status());
  const delivery::MessageRef m =
      BenchMessage("bench.stream.read", state.range(0));
  const uint64_t n =
      std::max<uint64_t>(1, g_read_bytes / (state.range(0) + 64));
  uint64_t seq = 0, full = 0;
  for (uint64_t i = 0; i < n; ++i) {
    if (absl::Status s = AppendWaiting(log->get(), m, 1, deadline, &seq,
                                       &full);
        !s.ok()) {
      return Fail(state, s);
    }
    if ((i & 1023) == 0 && absl::Now() >= deadline) {
      return Fail(state, absl::DeadlineExceededError(absl::StrCat(
                             "writing the stream to read took longer than ",
                             absl::FormatDuration(g_time_limit))));
    }
  }
  if (absl::Status s = (*log)->Flush(); !s.ok()) return Fail(state, s);
  std::vector<StreamRecord> out;
  uint64_t from = 1, records = 0, iteration = 0;
  for (auto _ : state) {
    if (OverTime(state, ++iteration, 1023, deadline)) break;
    out.clear();
    absl::Status s = (*log)->Read(from, 256, UINT64_MAX, &out);
    if (!s.ok()) {
      Fail(state, s);
      break;
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
  const absl::Time deadline = absl::Now() + g_time_limit;
  const ScopedDir dir("raw");
  std::error_code error;
  std::filesystem::create_directories(dir.path(), error);
  const std::string path = dir.path() + "/file";
  const int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Fail(state, absl::ErrnoToStatus(errno, "open " + path));
  }
  const std::string rec(128, 'x');
  uint64_t iteration = 0;
  for (auto _ : state) {
    if (OverTime(state, ++iteration, 0, deadline)) break;
    if (::write(fd, rec.data(), rec.size()) < 0 || ::fdatasync(fd) != 0) {
      Fail(state, absl::ErrnoToStatus(errno, "write/fdatasync"));
      break;
    }
  }
  ::close(fd);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawWriteFdatasync)->UseRealTime();

// Reads $name, an integer in [min, max], into *out (left alone if unset).
// False, with a message on stderr, for anything else.
bool EnvNumber(const char* name, uint64_t min, uint64_t max, uint64_t* out) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return true;
  uint64_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < min || value > max) {
    std::fprintf(stderr,
                 "stream_log_bench: %s=%s: want a whole number from %llu to "
                 "%llu\n",
                 name, text, static_cast<unsigned long long>(min),
                 static_cast<unsigned long long>(max));
    return false;
  }
  *out = value;
  return true;
}

// Runs the benchmarks in a fresh directory that every way out removes.
int Main(int argc, char** argv) {
  uint64_t read_mib = 64, wait_s = 60;
  if (!EnvNumber("SIFT_BENCH_READ_MIB", 1, 4096, &read_mib) ||
      !EnvNumber("SIFT_BENCH_WAIT_S", 1, 3600, &wait_s)) {
    return 2;
  }
  g_read_bytes = read_mib << 20;
  g_time_limit = absl::Seconds(static_cast<int64_t>(wait_s));

  // Stop signals are blocked here, before any other thread exists, so every
  // thread (the logs' writers, benchmark's) inherits the mask; one thread
  // takes them, removes the directory and ends the process.
  sigset_t stop;
  sigemptyset(&stop);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&stop, sig);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  const char* base = std::getenv("SIFT_BENCH_DIR");
  if (base == nullptr || *base == '\0') base = std::getenv("TMPDIR");
  if (base == nullptr || *base == '\0') base = "/tmp";
  std::string dir = absl::StrCat(base, "/sift_stream_bench.XXXXXX");
  if (::mkdtemp(dir.data()) == nullptr) {
    std::fprintf(stderr, "stream_log_bench: cannot make %s: %s\n",
                 dir.c_str(), std::strerror(errno));
    return 1;
  }
  g_bench_dir = dir;
  std::atexit(RemoveBenchDir);  // Main's return and every exit()
  std::set_terminate([] {
    RemoveBenchDir();
    std::abort();
  });
  std::thread([stop] {
    int sig = 0;
    if (sigwait(&stop, &sig) != 0) return;
    std::fprintf(stderr, "stream_log_bench: signal %d, removing %s\n", sig,
                 g_bench_dir.c_str());
    RemoveBenchDir();
    std::_Exit(128 + sig);
  }).detach();

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::fprintf(stderr, "stream_log_bench: files in %s\n",
               g_bench_dir.c_str());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace
}  // namespace sift::store

// Its own main (not benchmark_main's, which the BUILD target still links:
// a static library's main is only taken when none is defined).
int main(int argc, char** argv) { return sift::store::Main(argc, argv); }
