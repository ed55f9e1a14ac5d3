#include "bench/receiver.h"

#include "bench/payload.h"

namespace sift::bench {

Receiver::Receiver(int publishers, uint64_t count, Clock clock)
    : count_(count),
      expected_(count * static_cast<uint64_t>(publishers)),
      clock_(clock != nullptr ? clock : &NowNs),
      seen_(publishers, std::vector<uint64_t>((count + 63) / 64, 0)),
      next_seq_(publishers, 0),
      probe_from_(new std::atomic<bool>[publishers]) {
  for (int p = 0; p < publishers; ++p) probe_from_[p].store(false);
}

void Receiver::Record(std::string_view payload) {
  Stamp stamp;
  if (!ReadStamp(payload, &stamp) || stamp.publisher >= seen_.size()) {
    ++invalid_;
    return;
  }
  if (stamp.seq == kProbeSeq) {
    probe_from_[stamp.publisher].store(true, std::memory_order_relaxed);
    any_probe_.store(true, std::memory_order_relaxed);
    return;
  }
  if (stamp.seq >= count_) {
    ++invalid_;
    return;
  }
  uint64_t& word = seen_[stamp.publisher][stamp.seq / 64];
  const uint64_t bit = uint64_t{1} << (stamp.seq % 64);
  if (word & bit) {
    ++duplicates_;
    return;
  }
  word |= bit;
  int64_t& next = next_seq_[stamp.publisher];
  const int64_t seq = static_cast<int64_t>(stamp.seq);
  if (seq < next) {
    ++out_of_order_;
  } else {
    next = seq + 1;
  }
  const uint64_t unique = unique_.load(std::memory_order_relaxed) + 1;
  if (stamp.send_ns != 0 || first_ns_ == 0 || unique % kClockEvery == 0 ||
      unique == expected_) {
    const int64_t now_ns = clock_();
    if (stamp.send_ns != 0) latency_.Record(now_ns - stamp.send_ns);
    if (first_ns_ == 0) first_ns_ = now_ns;
    last_ns_ = now_ns;
  }
  unique_.store(unique, std::memory_order_relaxed);
}

}  // namespace sift::bench
