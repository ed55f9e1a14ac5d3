// Receiver checks and measures what one subscriber gets: which (publisher,
// sequence) pairs arrived (a bitmap per publisher, so gaps and duplicates are
// exact), whether each publisher's messages came in order, the latency of
// each message from the stamp in its payload (bench/payload.h), and the time
// of the first and last counted message.
//
// Thread-safety: Record() is called from one thread at a time (the
// subscriber's receiving thread). unique() and SawProbe*() may be read from
// any thread while it runs; everything else only after the receiving thread
// has stopped (joined or otherwise synchronized).
#ifndef SIFT_BENCH_RECEIVER_H_
#define SIFT_BENCH_RECEIVER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "bench/stats.h"

namespace sift::bench {

class Receiver {
 public:
  // Expects sequences 0..count-1 from each of publishers 0..publishers-1.
  Receiver(int publishers, uint64_t count);
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  // Records one payload received at steady time now_ns (bench::NowNs()).
  void Record(std::string_view payload, int64_t now_ns);

  // Distinct counted messages so far.
  uint64_t unique() const { return unique_.load(std::memory_order_relaxed); }
  // True once a probe from `publisher` (or from any publisher) arrived.
  bool SawProbeFrom(int publisher) const {
    return probe_from_[publisher].load(std::memory_order_relaxed);
  }
  bool SawAnyProbe() const {
    return any_probe_.load(std::memory_order_relaxed);
  }

  // Results; call after the receiving thread has stopped.
  uint64_t duplicates() const { return duplicates_; }
  uint64_t out_of_order() const { return out_of_order_; }
  // Payloads without a valid stamp or with an out-of-range publisher/seq.
  uint64_t invalid() const { return invalid_; }
  int64_t first_ns() const { return first_ns_; }
  int64_t last_ns() const { return last_ns_; }
  const LatencyHistogram& latency() const { return latency_; }
  // Bit s of seen(p) is set if sequence s of publisher p arrived.
  const std::vector<uint64_t>& seen(int publisher) const {
    return seen_[publisher];
  }

 private:
  const uint64_t count_;
  std::vector<std::vector<uint64_t>> seen_;  // bitmaps, one per publisher
  std::vector<int64_t> next_seq_;            // highest seq seen + 1
  std::unique_ptr<std::atomic<bool>[]> probe_from_;
  std::atomic<bool> any_probe_{false};
  std::atomic<uint64_t> unique_{0};
  uint64_t duplicates_ = 0;
  uint64_t out_of_order_ = 0;
  uint64_t invalid_ = 0;
  int64_t first_ns_ = 0;
  int64_t last_ns_ = 0;
  LatencyHistogram latency_;
};

}  // namespace sift::bench

#endif  // SIFT_BENCH_RECEIVER_H_
