// Receiver checks and measures what one subscriber gets: which (publisher,
// sequence) pairs arrived (a bitmap per publisher, so gaps and duplicates are
// exact), whether each publisher's messages came in order, the latency of
// each message that carries a send time in its stamp (bench/payload.h), and
// the time of the first and last counted message.
//
// The clock is read only when needed (a clock read costs ~50 ns here, a
// sizeable part of a 16-byte message's budget): for a stamped message, for
// the first one, for every kClockEvery-th one and for the last one expected.
// last_ns() is therefore exact when everything arrives and at most
// kClockEvery - 1 messages early otherwise (a queue-group member, a loss).
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
  using Clock = int64_t (*)();
  static constexpr uint64_t kClockEvery = 64;

  // Expects sequences 0..count-1 from each of publishers 0..publishers-1.
  // `clock` is bench::NowNs unless a test fakes it.
  Receiver(int publishers, uint64_t count, Clock clock = nullptr);
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  // Records one payload, received now.
  void Record(std::string_view payload);

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
  const uint64_t expected_;  // count_ from every publisher
  const Clock clock_;
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
