// The disk under a stream: a temporary data directory for a spawned siftd,
// and the disk's raw fsync rate there, the yardstick for a stream's
// fsync=always numbers (issue 8: group commit should beat it many times).
//
// Thread-safety: free functions; each touches only its own files.
#ifndef SIFT_BENCH_DISK_PROBE_H_
#define SIFT_BENCH_DISK_PROBE_H_

#include <string>

#include "absl/status/statusor.h"
#include "bench/workload.h"

namespace sift::bench {

// Creates a fresh directory "<tmp>/<prefix>XXXXXX", where <tmp> is
// $TEST_TMPDIR, else $TMPDIR, else /tmp.
absl::StatusOr<std::string> MakeTempDir(const std::string& prefix);

// Removes `path` and everything under it (no symlinks followed). Best
// effort: returns false if anything was left.
bool RemoveTree(const std::string& path);

// Appends `bytes` bytes to a new file in `dir` and fdatasyncs it, in a loop,
// for `seconds` (at least 10 times), then removes the file.
absl::StatusOr<DiskProbeResult> ProbeFsync(const std::string& dir, size_t bytes,
                                           double seconds);

}  // namespace sift::bench

#endif  // SIFT_BENCH_DISK_PROBE_H_
