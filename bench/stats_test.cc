// Tests of sift-bench's own measuring parts: the latency histogram, the
// payload stamp and the receiver's gap/duplicate/order accounting.
#include <string>

#include "bench/payload.h"
#include "bench/proxy_transport.h"
#include "bench/receiver.h"
#include "bench/stats.h"
#include "gtest/gtest.h"

namespace sift::bench {
namespace {

TEST(LatencyHistogramTest, PercentilesWithinOnePercent) {
  LatencyHistogram h;
  for (int64_t v = 1; v <= 100000; ++v) h.Record(v * 1000);  // 1us..100ms
  EXPECT_EQ(h.count(), 100000u);
  EXPECT_EQ(h.max(), 100000000u);
  const double p50 = static_cast<double>(h.Percentile(0.5));
  const double p99 = static_cast<double>(h.Percentile(0.99));
  EXPECT_NEAR(p50, 50000000.0, 50000000.0 * 0.01);
  EXPECT_NEAR(p99, 99000000.0, 99000000.0 * 0.01);
  EXPECT_EQ(h.Percentile(1.0), h.max());
  EXPECT_NEAR(h.mean(), 50000500.0, 1.0);
}

TEST(LatencyHistogramTest, SmallValuesExactAndMerge) {
  LatencyHistogram a, b;
  a.Record(5);
  a.Record(-3);  // clock skew counts as 0
  b.Record(100);
  a.Merge(b);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.Percentile(0.0), 0u);
  EXPECT_EQ(a.Percentile(0.5), 5u);
  EXPECT_EQ(a.Percentile(1.0), 100u);
  EXPECT_EQ(LatencyHistogram().Percentile(0.5), 0u);
}

TEST(StampTest, RoundTrip) {
  char buf[kStampSize];
  Stamp in{123456789012345, (uint64_t{1} << 47) + 5, 65534};
  WriteStamp(in, buf);
  Stamp out;
  ASSERT_TRUE(ReadStamp(std::string_view(buf, sizeof(buf)), &out));
  EXPECT_EQ(out.send_ns, in.send_ns);
  EXPECT_EQ(out.seq, in.seq);
  EXPECT_EQ(out.publisher, in.publisher);
  EXPECT_FALSE(ReadStamp(std::string_view(buf, 15), &out));
}

std::string Payload(uint16_t publisher, uint64_t seq, int64_t send_ns = 0) {
  std::string p(32, 'x');
  WriteStamp(Stamp{send_ns, seq, publisher}, p.data());
  return p;
}

// A fake clock: 1000, 1100, 1200, ... one step per read.
int64_t fake_now = 900;
int64_t FakeClock() { return fake_now += 100; }

TEST(ReceiverTest, CountsGapsDuplicatesOrderAndProbes) {
  fake_now = 900;
  Receiver r(/*publishers=*/2, /*count=*/10, &FakeClock);
  r.Record(Payload(0, 0, 100));  // clock 1000
  r.Record(Payload(0, 2, 200));  // 1100
  r.Record(Payload(0, 1, 300));  // 1200; late: out of order
  r.Record(Payload(0, 2, 400));  // duplicate: no clock read
  r.Record(Payload(1, 0, 500));  // 1300
  r.Record(Payload(1, kProbeSeq));  // probe: not counted
  r.Record(Payload(2, 0));          // no such publisher
  r.Record(Payload(1, 10));         // beyond count
  r.Record("short");
  EXPECT_EQ(r.unique(), 4u);
  EXPECT_EQ(r.duplicates(), 1u);
  EXPECT_EQ(r.out_of_order(), 1u);
  EXPECT_EQ(r.invalid(), 3u);
  EXPECT_TRUE(r.SawProbeFrom(1));
  EXPECT_FALSE(r.SawProbeFrom(0));
  EXPECT_TRUE(r.SawAnyProbe());
  EXPECT_EQ(r.first_ns(), 1000);
  EXPECT_EQ(r.last_ns(), 1300);
  EXPECT_EQ(r.latency().count(), 4u);
  EXPECT_EQ(r.latency().max(), 900u);
  EXPECT_EQ(r.seen(0)[0], 0b111u);
}

TEST(ReceiverTest, ReadsTheClockOnlyWhenNeeded) {
  fake_now = 900;
  constexpr uint64_t kCount = 200;
  Receiver r(/*publishers=*/1, kCount, &FakeClock);
  // No send times: the clock is read for the first message, every
  // kClockEvery-th and the last expected one.
  for (uint64_t seq = 0; seq < kCount; ++seq) r.Record(Payload(0, seq));
  EXPECT_EQ(r.unique(), kCount);
  EXPECT_EQ(r.latency().count(), 0u);
  EXPECT_EQ(r.first_ns(), 1000);
  // Reads: message 1, 64, 128, 192 and 200.
  EXPECT_EQ(r.last_ns(), 1400);
}

TEST(PrefixOfTest, CutsAtFirstWildcard) {
  EXPECT_EQ(PrefixOf("bench.topic"), "bench.topic");
  EXPECT_EQ(PrefixOf("bench.*.b"), "bench.");
  EXPECT_EQ(PrefixOf("a.>"), "a.");
  EXPECT_EQ(PrefixOf(">"), "");
}

}  // namespace
}  // namespace sift::bench
