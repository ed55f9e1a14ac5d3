// Costs of the at-least-once core, per message:
//   BM_OfferAck/1 and /4: Offer then Ack, one consumer or a group of 4
//     (the router's choice rotates; each member acks what it got), with
//     `in_flight` messages kept outstanding so the tables are not empty.
//   BM_OfferAckFullMember: a group of 4 whose chosen member is always full,
//     so every Offer looks for another member (pattern match per candidate).
//   BM_TickIdle: Tick with 100k in flight and nothing due (the loop's cost
//     per wake-up).
//   BM_TickExpireAll: 100k ack waits running out in one Tick, per message
//     (the expiry, the backoff timer; no redelivery yet).
//   bazel run //broker/delivery:deliveries_bench
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "broker/delivery/deliveries.h"

namespace sift::delivery {
namespace {

// The benchmarks' calls cannot fail; a failure is a bug.
void Ok(const absl::Status& s) {
  if (!s.ok()) std::abort();
}

MessageRef Message() {
  return StoredMessage::Make("orders.eu.created", "", "",
                             std::string(128, 'x'));
}

AckPolicy BenchPolicy() {
  AckPolicy p;
  p.max_in_flight = 1 << 20;
  p.max_queued = 1 << 20;
  return p;
}

void BM_OfferAck(benchmark::State& state) {
  const uint32_t members = static_cast<uint32_t>(state.range(0));
  constexpr size_t kOutstanding = 1000;
  Deliveries d(1);
  std::vector<Send> sends;
  std::vector<DeadLetter> dead;
  for (uint32_t c = 0; c < members; ++c) {
    Ok(d.AddConsumer(c, 1, "orders.>", members > 1 ? "workers" : "",
                     BenchPolicy(), 0, &sends));
  }
  const MessageRef m = Message();
  int64_t now = 0;
  // A ring of outstanding deliveries: each iteration offers one and acks
  // the oldest.
  std::vector<Send> ring;
  ring.reserve(kOutstanding);
  for (size_t i = 0; i < kOutstanding; ++i) {
    Ok(d.Offer(static_cast<uint32_t>(i % members), 1, m, now, &sends, &dead));
    ring.push_back(sends.back());
    sends.clear();
  }
  size_t next = 0;
  uint32_t turn = 0;
  for (auto _ : state) {
    ++now;
    Ok(d.Offer(turn, 1, m, now, &sends, &dead));
    if (++turn == members) turn = 0;
    const Send& old = ring[next];
    Ok(d.Ack(old.client, old.delivery_id, now, &sends));
    ring[next] = sends.back();
    sends.clear();
    if (++next == kOutstanding) next = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["in_flight"] = static_cast<double>(d.in_flight());
}
BENCHMARK(BM_OfferAck)->Arg(1)->Arg(4);

void BM_OfferAckFullMember(benchmark::State& state) {
  Deliveries d(1);
  std::vector<Send> sends;
  std::vector<DeadLetter> dead;
  AckPolicy one = BenchPolicy();
  one.max_in_flight = 1;
  Ok(d.AddConsumer(0, 1, "orders.>", "workers", one, 0, &sends));
  for (uint32_t c = 1; c < 4; ++c) {
    Ok(d.AddConsumer(c, 1, "orders.*.created", "workers", BenchPolicy(), 0,
                     &sends));
  }
  const MessageRef m = Message();
  int64_t now = 0;
  Ok(d.Offer(0, 1, m, now, &sends, &dead));  // member 0 is now full
  sends.clear();
  for (auto _ : state) {
    ++now;
    Ok(d.Offer(0, 1, m, now, &sends, &dead));
    const Send s = sends.back();
    Ok(d.Ack(s.client, s.delivery_id, now, &sends));
    sends.clear();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_OfferAckFullMember);

void Fill(Deliveries* d, size_t n, int64_t now) {
  std::vector<Send> sends;
  std::vector<DeadLetter> dead;
  Ok(d->AddConsumer(1, 1, "orders.>", "", BenchPolicy(), now, &sends));
  const MessageRef m = Message();
  for (size_t i = 0; i < n; ++i) Ok(d->Offer(1, 1, m, now, &sends, &dead));
}

void BM_TickIdle(benchmark::State& state) {
  Deliveries d(1);
  Fill(&d, 100000, 0);
  std::vector<Send> sends;
  std::vector<DeadLetter> dead;
  int64_t now = 0;
  for (auto _ : state) {
    d.Tick(++now % 1000, &sends, &dead);  // the ack waits end at 30000
    benchmark::DoNotOptimize(d.NextDeadline());
  }
  state.counters["in_flight"] = static_cast<double>(d.in_flight());
}
BENCHMARK(BM_TickIdle);

void BM_TickExpireAll(benchmark::State& state) {
  constexpr size_t kInFlight = 100000;
  std::vector<Send> sends;
  std::vector<DeadLetter> dead;
  for (auto _ : state) {
    state.PauseTiming();
    auto d = std::make_unique<Deliveries>(1);
    Fill(d.get(), kInFlight, 0);
    state.ResumeTiming();
    d->Tick(30000, &sends, &dead);
    state.PauseTiming();
    if (d->delayed() != kInFlight) state.SkipWithError("not all expired");
    d.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kInFlight);
}
BENCHMARK(BM_TickExpireAll)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sift::delivery
