// ParallelFor runs independent, blocking pieces of benchmark setup (connects,
// Subscribe() calls that each wait for the broker's answer) on several
// threads at once, so their round trips overlap.
//
// Thread-safety: fn is called from up to `threads` threads at once and must
// be safe for that; ParallelFor itself may be called from any thread.
#ifndef SIFT_BENCH_PARALLEL_FOR_H_
#define SIFT_BENCH_PARALLEL_FOR_H_

#include <functional>

#include "absl/status/status.h"

namespace sift::bench {

// Runs fn(i) for each i in [0, n) on up to `threads` threads (each takes the
// next i as it finishes one) and returns when all are done. Returns the first
// error; after one, the i not yet started are skipped.
absl::Status ParallelFor(int n, int threads,
                         const std::function<absl::Status(int)>& fn);

}  // namespace sift::bench

#endif  // SIFT_BENCH_PARALLEL_FOR_H_
