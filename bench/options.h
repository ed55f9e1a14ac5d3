// sift-bench's command line: flags to Options, and the usage text.
#ifndef SIFT_BENCH_OPTIONS_H_
#define SIFT_BENCH_OPTIONS_H_

#include "absl/status/statusor.h"
#include "bench/workload.h"

namespace sift::bench {

extern const char kUsage[];

// Parses argv[1..] ("--name value" or "--name=value"). Returns
// InvalidArgument naming the bad flag; a NotFound status means --help.
absl::StatusOr<Options> ParseOptions(int argc, char** argv);

}  // namespace sift::bench

#endif  // SIFT_BENCH_OPTIONS_H_
