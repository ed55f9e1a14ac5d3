// LatencyHistogram records durations (nanoseconds) in log-linear buckets, the
// way HdrHistogram does: exact below 128 ns, then 128 linear sub-buckets per
// power of two, so a reported percentile is within 1% of the true value.
// Values from 0 to 2^47 ns (39 hours); larger ones land in the last bucket.
// The maximum is kept exactly.
//
// Thread-safety: not thread-safe; one histogram per receiving thread, merged
// afterwards.
#ifndef SIFT_BENCH_STATS_H_
#define SIFT_BENCH_STATS_H_

#include <cstdint>
#include <vector>

namespace sift::bench {

class LatencyHistogram {
 public:
  LatencyHistogram();

  // Negative values (clock skew between threads) count as 0.
  void Record(int64_t ns) {
    const uint64_t v = ns < 0 ? 0 : static_cast<uint64_t>(ns);
    ++counts_[IndexOf(v)];
    ++count_;
    sum_ += static_cast<double>(v);
    if (v > max_) max_ = v;
  }
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : sum_ / count_; }
  // The smallest recorded value v such that a fraction q (0..1) of all values
  // is <= v, reported as the upper edge of v's bucket (capped at max()).
  // 0 for an empty histogram.
  uint64_t Percentile(double q) const;

 private:
  static constexpr int kSubBits = 7;  // 128 sub-buckets per power of two
  static constexpr int kMaxExponent = 47;
  static constexpr int kBuckets =
      (1 << kSubBits) + (kMaxExponent - kSubBits) * (1 << kSubBits);

  static int IndexOf(uint64_t v) {
    if (v < (uint64_t{1} << kSubBits)) return static_cast<int>(v);
    int exponent = 63 - __builtin_clzll(v);
    if (exponent >= kMaxExponent) return kBuckets - 1;
    const int shift = exponent - kSubBits;
    const int sub = static_cast<int>(v >> shift) - (1 << kSubBits);
    return (1 << kSubBits) + shift * (1 << kSubBits) + sub;
  }
  // Largest value that falls in bucket `index`.
  static uint64_t UpperEdge(int index);

  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t max_ = 0;
  double sum_ = 0;
};

}  // namespace sift::bench

#endif  // SIFT_BENCH_STATS_H_
