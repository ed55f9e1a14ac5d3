// sift-bench's output: a human-readable report, or one JSON object (--json)
// for scripts such as bench/run_matrix.sh.
#ifndef SIFT_BENCH_REPORT_H_
#define SIFT_BENCH_REPORT_H_

#include <string>

#include "bench/workload.h"

namespace sift::bench {

// `v` rounded to an integer with thousands separators: 1234567 -> "1,234,567".
std::string Thousands(double v);

std::string TextReport(const RunResult& r);
std::string JsonReport(const RunResult& r);
std::string TextReport(const MemoryResult& r);
std::string JsonReport(const MemoryResult& r);

}  // namespace sift::bench

#endif  // SIFT_BENCH_REPORT_H_
