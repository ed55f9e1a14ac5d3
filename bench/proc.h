// CPU time and memory of a process, read from /proc/PID/stat and
// /proc/PID/status (Linux), for the broker (or proxy) under test and for
// sift-bench itself.
//
// Thread-safety: free functions, thread-safe.
#ifndef SIFT_BENCH_PROC_H_
#define SIFT_BENCH_PROC_H_

#include <sys/types.h>

#include <cstdint>

#include "absl/status/statusor.h"

namespace sift::bench {

struct ProcSample {
  double cpu_seconds = 0;    // user + system, whole process, since it started
  uint64_t rss_bytes = 0;    // VmRSS: resident set now
  uint64_t peak_rss_bytes = 0;  // VmHWM: peak resident set
};

// NotFound if the process does not exist (any more).
absl::StatusOr<ProcSample> SampleProcess(pid_t pid);

// User + system CPU seconds of this process (all threads).
double SelfCpuSeconds();

}  // namespace sift::bench

#endif  // SIFT_BENCH_PROC_H_
