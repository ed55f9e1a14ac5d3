// The stamp sift-bench writes at the start of every payload, so a subscriber
// can measure latency and check delivery without any other channel:
//
//   bytes [0, 8)   send time, steady clock (CLOCK_MONOTONIC), ns, little-endian;
//                  0 if the publisher did not read the clock for this one
//   bytes [8, 14)  sequence number within its publisher (48 bits)
//   bytes [14, 16) publisher id
//
// The rest of the payload (up to --size) is filler. A stamp with sequence
// kProbeSeq is a probe: it checks the path is ready and is never counted.
//
// Thread-safety: free functions, thread-safe.
#ifndef SIFT_BENCH_PAYLOAD_H_
#define SIFT_BENCH_PAYLOAD_H_

#include <time.h>

#include <cstdint>
#include <cstring>
#include <string_view>

namespace sift::bench {

inline constexpr size_t kStampSize = 16;
inline constexpr uint64_t kProbeSeq = (uint64_t{1} << 48) - 1;
inline constexpr int kMaxPublishers = 65535;

struct Stamp {
  int64_t send_ns = 0;
  uint64_t seq = 0;  // < 2^48
  uint16_t publisher = 0;
};

// The steady clock every stamp and receive time uses.
inline int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// REQUIRES: out has room for kStampSize bytes.
inline void WriteStamp(const Stamp& stamp, char* out) {
  const uint64_t tail = (stamp.seq & kProbeSeq) |
                        (static_cast<uint64_t>(stamp.publisher) << 48);
  const uint64_t send = static_cast<uint64_t>(stamp.send_ns);
  std::memcpy(out, &send, 8);  // x86-64 and aarch64 are little-endian
  std::memcpy(out + 8, &tail, 8);
}

// False if the payload is too short to hold a stamp.
inline bool ReadStamp(std::string_view payload, Stamp* stamp) {
  if (payload.size() < kStampSize) return false;
  uint64_t send, tail;
  std::memcpy(&send, payload.data(), 8);
  std::memcpy(&tail, payload.data() + 8, 8);
  stamp->send_ns = static_cast<int64_t>(send);
  stamp->seq = tail & kProbeSeq;
  stamp->publisher = static_cast<uint16_t>(tail >> 48);
  return true;
}

}  // namespace sift::bench

#endif  // SIFT_BENCH_PAYLOAD_H_
