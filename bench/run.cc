#include "bench/run.h"

#include <sys/prctl.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "bench/payload.h"
#include "bench/proc.h"
#include "bench/report.h"
#include "bench/stats.h"

namespace sift::bench {
namespace {

constexpr int64_t kProgressIntervalNs = 2'000'000'000;
// Unpaced runs measure throughput: the publisher reads the clock for one
// message in this many (latency is sampled), paced runs for every message. A
// clock read costs ~50 ns here, a sizeable share of a 16-byte message's
// budget, and the baseline program (bench/plain_zmq_proxy.cc) reads none.
constexpr uint64_t kUnpacedStampEvery = 64;
// --confirm_window: pause before sending again a confirmed publish that was
// refused for now (the client's or the stream writer's queue was full).
constexpr auto kConfirmRetryPause = std::chrono::microseconds(200);

LatencySummary Summarize(const LatencyHistogram& h) {
  LatencySummary s;
  s.count = h.count();
  s.p50_us = h.Percentile(0.50) / 1e3;
  s.p90_us = h.Percentile(0.90) / 1e3;
  s.p99_us = h.Percentile(0.99) / 1e3;
  s.p999_us = h.Percentile(0.999) / 1e3;
  s.max_us = h.max() / 1e3;
  s.mean_us = h.mean() / 1e3;
  return s;
}

// What one publisher thread shares with the main thread.
struct PublisherState {
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> retries{0};
  std::atomic<bool> done{false};
  PublisherResult result;  // written by the thread, read after join
};

void SleepUntil(int64_t target_ns) {
  timespec ts;
  ts.tv_sec = target_ns / 1000000000;
  ts.tv_nsec = target_ns % 1000000000;
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) ==
         EINTR) {
  }
}

void PublisherLoop(const Options& options, int p, Transport* transport,
                   const std::atomic<bool>* go, const std::atomic<bool>* stop,
                   PublisherState* state) {
  // Paced runs sleep to an absolute time per message; ask for exact wake-ups.
  prctl(PR_SET_TIMERSLACK, 1UL);
  std::string payload(options.size, 'x');
  Stamp stamp;
  stamp.publisher = static_cast<uint16_t>(p);
  const double per_publisher_rate = options.rate / options.pubs;
  const double interval_ns =
      per_publisher_rate > 0 ? 1e9 / per_publisher_rate : 0;
  while (!go->load(std::memory_order_acquire)) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  PublisherResult& r = state->result;
  r.id = p;
  const int64_t start = NowNs();
  for (uint64_t seq = 0; seq < options.count; ++seq) {
    if (stop->load(std::memory_order_relaxed)) break;
    if (interval_ns > 0) {
      const int64_t target =
          start + static_cast<int64_t>(static_cast<double>(seq) * interval_ns);
      if (NowNs() < target) {
        if (absl::Status s = transport->Flush(p); !s.ok()) {
          r.error = std::string(s.message());
          break;
        }
        SleepUntil(target);
      }
    }
    stamp.seq = seq;
    stamp.send_ns =
        interval_ns > 0 || seq % kUnpacedStampEvery == 0 ? NowNs() : 0;
    WriteStamp(stamp, payload.data());
    absl::Status s = transport->Send(p, payload, &r.retries);
    if (!s.ok()) {
      r.error = std::string(s.message());
      break;
    }
    ++r.sent;
    state->sent.store(r.sent, std::memory_order_relaxed);
    state->retries.store(r.retries, std::memory_order_relaxed);
  }
  if (absl::Status s = transport->Flush(p); !s.ok() && r.error.empty()) {
    r.error = std::string(s.message());
  }
  // One clock read at the end, not one per message: at full speed the
  // publisher thread is the bottleneck of both modes.
  r.seconds = (NowNs() - start) / 1e9;
  r.msgs_per_s = r.seconds > 0 ? r.sent / r.seconds : 0;
  state->done.store(true, std::memory_order_release);
}

// --confirm_window: publisher p keeping up to options.confirm_window
// confirmed publishes outstanding (Transport::SendConfirmedAsync). Its
// thread fills the window; after that each answer, on the client's I/O
// thread, sends the next message from its callback, as an async publisher
// with a pending limit does (nats.go's PublishAsync, a Netty handler): the
// window stays full without waking this thread per confirm, which cost it
// a context switch per message. A publish the broker or the client refused
// for now goes back to this thread, which sends it again, with its
// sequence number, after kConfirmRetryPause.
class ConfirmedPublisher
    : public std::enable_shared_from_this<ConfirmedPublisher> {
 public:
  ConfirmedPublisher(const Options& options, int p, Transport* transport,
                     const std::atomic<bool>* stop, PublisherState* state)
      : options_(options),
        p_(p),
        transport_(transport),
        stop_(stop),
        state_(state) {}

  // Fills the window, then waits until every message is answered (or an
  // error or `stop`), sending again what was refused. Publisher p's thread.
  void Run(LatencyHistogram* confirm_latency) {
    PublisherResult& r = state_->result;
    r.id = p_;
    const int64_t start = NowNs();
    std::unique_lock<std::mutex> l(mu_);
    while (error_.empty() && !stop_->load(std::memory_order_relaxed)) {
      if (!again_.empty()) {
        l.unlock();
        std::this_thread::sleep_for(kConfirmRetryPause);
        l.lock();
        const uint64_t seq = again_.front();  // only this thread takes
        again_.pop_front();
        ++outstanding_;
        SendLocked(seq);
        continue;
      }
      if (outstanding_ < options_.confirm_window &&
          next_seq_ < options_.count) {
        ++outstanding_;
        SendLocked(next_seq_++);
        continue;
      }
      if (outstanding_ == 0) break;  // all answered
      // Timed: `stop` is not signalled.
      changed_.wait_for(l, std::chrono::milliseconds(10));
    }
    // Wait for the answers still due (the client times them out).
    changed_.wait(l, [&] { return outstanding_ == 0; });
    r.error = error_;
    r.retries = retries_;
    confirm_latency->Merge(latency_);
    r.sent = state_->sent.load();
    r.seconds = (NowNs() - start) / 1e9;
    r.msgs_per_s = r.seconds > 0 ? r.sent / r.seconds : 0;
    state_->done.store(true, std::memory_order_release);
  }

 private:
  // Sends message `seq`, counted in outstanding_ by the caller; on a
  // refusal to send, gives it back (ResourceExhausted: to again_, after the
  // pause; else as the error that ends the run). Under mu_, so that new
  // messages go out in the order of their seq, whichever thread sends them
  // (a receiver counts any other order as out of order). The client calls
  // no `done` from inside SendConfirmedAsync.
  void SendLocked(uint64_t seq) {
    // The payload is copied by the client before the call returns: one
    // buffer per thread (this one, or a transport thread in a callback).
    thread_local std::string payload;
    if (payload.size() != options_.size) payload.assign(options_.size, 'x');
    Stamp stamp;
    stamp.publisher = static_cast<uint16_t>(p_);
    stamp.seq = seq;
    // A confirm costs a round trip: reading the clock for each is cheap
    // beside it, and gives the confirm latency.
    const int64_t t0 = NowNs();
    stamp.send_ns = t0;
    WriteStamp(stamp, payload.data());
    absl::Status s = transport_->SendConfirmedAsync(
        p_, seq, payload,
        [self = shared_from_this(), seq, t0](absl::Status s) {
          self->Answered(seq, t0, std::move(s));
        });
    if (s.ok()) return;
    --outstanding_;
    if (absl::IsResourceExhausted(s) &&
        !stop_->load(std::memory_order_relaxed)) {
      again_.push_back(seq);
      ++retries_;
      state_->retries.fetch_add(1, std::memory_order_relaxed);
    } else if (error_.empty()) {
      error_ = absl::StrCat("seq ", seq, ": ", s.message());
    }
    changed_.notify_one();
  }

  // The answer to message `seq`, sent at t0; on the transport's thread.
  void Answered(uint64_t seq, int64_t t0, absl::Status s) {
    const int64_t now = NowNs();
    std::lock_guard<std::mutex> l(mu_);
    if (s.ok()) {
      latency_.Record(now - t0);
      state_->sent.fetch_add(1, std::memory_order_relaxed);
    } else if (absl::IsResourceExhausted(s)) {  // not stored: again
      again_.push_back(seq);
      ++retries_;
      state_->retries.fetch_add(1, std::memory_order_relaxed);
    } else if (error_.empty()) {
      error_ = absl::StrCat("seq ", seq, ": ", s.message());
    }
    if (s.ok() && error_.empty() && again_.empty() &&
        next_seq_ < options_.count &&
        !stop_->load(std::memory_order_relaxed)) {
      SendLocked(next_seq_++);  // takes this answer's place in the window
    } else {
      --outstanding_;
      changed_.notify_one();
    }
  }

  const Options& options_;
  const int p_;
  Transport* const transport_;
  const std::atomic<bool>* const stop_;
  PublisherState* const state_;

  std::mutex mu_;  // guards the members below
  std::condition_variable changed_;
  int outstanding_ = 0;        // sent, not yet answered
  uint64_t next_seq_ = 0;      // the next new message
  std::deque<uint64_t> again_;  // refused for now: send again
  std::string error_;
  LatencyHistogram latency_;
  uint64_t retries_ = 0;
};

void ConfirmedPublisherLoop(const Options& options, int p,
                            Transport* transport, const std::atomic<bool>* go,
                            const std::atomic<bool>* stop,
                            PublisherState* state,
                            LatencyHistogram* confirm_latency) {
  while (!go->load(std::memory_order_acquire)) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  // Shared with the callbacks, which may run while this thread returns.
  std::make_shared<ConfirmedPublisher>(options, p, transport, stop, state)
      ->Run(confirm_latency);
}

}  // namespace

absl::StatusOr<RunResult> RunMessages(const Options& options,
                                      Transport* transport) {
  RunResult result;
  result.options = options;
  result.expected = options.ExpectedTotal();

  std::vector<std::unique_ptr<Receiver>> receivers;
  std::vector<Receiver*> receiver_ptrs;
  for (int i = 0; i < options.subs; ++i) {
    receivers.push_back(std::make_unique<Receiver>(options.pubs, options.count));
    receiver_ptrs.push_back(receivers.back().get());
  }
  const int64_t prepare_ns = NowNs();
  if (absl::Status s = transport->Prepare(receiver_ptrs); !s.ok()) {
    transport->Disconnect();
    transport->StopServer();
    return s;
  }
  result.setup_seconds = (NowNs() - prepare_ns) / 1e9;
  result.server = transport->server_description();
  result.spawned = transport->spawned();
  result.notes = transport->notes();

  const pid_t server_pid = transport->server_pid();
  absl::StatusOr<ProcSample> server_start = absl::NotFoundError("no pid");
  if (server_pid > 0) server_start = SampleProcess(server_pid);
  const double bench_cpu_start = SelfCpuSeconds();

  std::atomic<bool> go{false}, stop{false};
  std::vector<std::unique_ptr<PublisherState>> pub_states;
  std::vector<std::unique_ptr<LatencyHistogram>> confirm_latency;
  std::vector<std::thread> pub_threads;
  for (int p = 0; p < options.pubs; ++p) {
    pub_states.push_back(std::make_unique<PublisherState>());
    if (options.confirm_window > 0) {
      confirm_latency.push_back(std::make_unique<LatencyHistogram>());
      pub_threads.emplace_back(ConfirmedPublisherLoop, std::cref(options), p,
                               transport, &go, &stop, pub_states.back().get(),
                               confirm_latency.back().get());
    } else {
      pub_threads.emplace_back(PublisherLoop, std::cref(options), p,
                               transport, &go, &stop, pub_states.back().get());
    }
  }
  const int64_t start_ns = NowNs();
  go.store(true, std::memory_order_release);

  const int64_t deadline_ns =
      start_ns + static_cast<int64_t>(options.timeout_s * 1e9);
  const int64_t drain_ns = static_cast<int64_t>(options.drain_s * 1e9);
  const uint64_t per_sub =
      options.count * static_cast<uint64_t>(options.pubs);
  int64_t last_change_ns = start_ns;
  absl::Status replay_status = absl::OkStatus();
  if (options.replay != Replay::kNone) {
    // Fill the stream first, with nobody reading; then read it back.
    for (std::thread& t : pub_threads) t.join();
    pub_threads.clear();
    result.replay_fill_seconds = (NowNs() - start_ns) / 1e9;
    replay_status = transport->StartReplay();
    last_change_ns = NowNs();
  }
  uint64_t last_total = 0;
  int64_t next_progress_ns = start_ns + kProgressIntervalNs;
  uint64_t progress_last_total = 0;
  int64_t progress_last_ns = start_ns;
  while (replay_status.ok()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const int64_t now = NowNs();
    uint64_t total = 0;
    bool all_subs_done = true;
    for (const auto& r : receivers) {
      const uint64_t u = r->unique();
      total += u;
      if (u < per_sub) all_subs_done = false;
    }
    const bool complete = options.queue_group() ? total >= result.expected
                                                : all_subs_done;
    if (complete) break;
    bool pubs_done = true;
    uint64_t sent = 0, retries = 0;
    for (const auto& s : pub_states) {
      pubs_done = pubs_done && s->done.load(std::memory_order_acquire);
      sent += s->sent.load(std::memory_order_relaxed);
      retries += s->retries.load(std::memory_order_relaxed);
    }
    if (total != last_total) {
      last_total = total;
      last_change_ns = now;
    }
    if (now >= deadline_ns) {
      result.timed_out = true;
      break;
    }
    if (pubs_done && now - last_change_ns >= drain_ns) break;
    if (options.progress && now >= next_progress_ns) {
      const double rate = (total - progress_last_total) * 1e9 /
                          static_cast<double>(now - progress_last_ns);
      std::fprintf(stderr,
                   "sift-bench [%s] %.1fs: sent %s/%s, received %s/%s "
                   "(%s msgs/s), %s publish retries\n",
                   ModeName(options.mode), (now - start_ns) / 1e9,
                   Thousands(sent).c_str(),
                   Thousands(options.count * options.pubs).c_str(),
                   Thousands(total).c_str(),
                   Thousands(result.expected).c_str(),
                   Thousands(rate).c_str(),
                   Thousands(retries).c_str());
      progress_last_total = total;
      progress_last_ns = now;
      next_progress_ns = now + kProgressIntervalNs;
    }
  }
  stop.store(true);
  for (std::thread& t : pub_threads) t.join();

  if (server_pid > 0 && server_start.ok()) {
    auto server_end = SampleProcess(server_pid);
    if (server_end.ok()) {
      result.server_usage.known = true;
      result.server_usage.pid = server_pid;
      result.server_usage.cpu_seconds =
          server_end->cpu_seconds - server_start->cpu_seconds;
      result.server_usage.rss_bytes = server_end->rss_bytes;
      result.server_usage.peak_rss_bytes = server_end->peak_rss_bytes;
      result.server_usage.rss_ready_bytes = server_start->rss_bytes;
    }
  }
  result.bench_cpu_seconds = SelfCpuSeconds() - bench_cpu_start;
  transport->CollectServerCounters(&result.server_counters);
  transport->CollectDurability(&result);
  if (!replay_status.ok()) {
    result.notes.push_back(
        absl::StrCat("replay did not start: ", replay_status.message()));
  }
  transport->Disconnect();
  result.server_exit_code = transport->StopServer();

  // Publishers.
  double pub_seconds = 0;
  for (const auto& s : pub_states) {
    result.publishers.push_back(s->result);
    result.sent += s->result.sent;
    result.publish_retries += s->result.retries;
    pub_seconds = std::max(pub_seconds, s->result.seconds);
    if (!s->result.error.empty()) {
      result.notes.push_back(absl::StrCat("publisher ", s->result.id,
                                          " stopped: ", s->result.error));
    }
  }
  result.publish_msgs_per_s = pub_seconds > 0 ? result.sent / pub_seconds : 0;
  if (!confirm_latency.empty()) {
    LatencyHistogram all;
    for (const auto& h : confirm_latency) all.Merge(*h);
    result.confirm_latency = Summarize(all);
  }

  // Subscribers.
  LatencyHistogram all_latency;
  int64_t first = std::numeric_limits<int64_t>::max(), last = 0;
  double rate_sum = 0, rate_min = std::numeric_limits<double>::max();
  uint64_t deliveries = 0;  // counted by every subscriber, duplicates aside
  for (int i = 0; i < options.subs; ++i) {
    const Receiver& r = *receivers[i];
    SubscriberResult sr;
    sr.id = i;
    sr.expected = options.queue_group() ? 0 : per_sub;
    sr.received = r.unique();
    deliveries += sr.received;
    sr.duplicates = r.duplicates();
    sr.out_of_order = r.out_of_order();
    sr.invalid = r.invalid();
    if (sr.received > 0) {
      sr.seconds = (r.last_ns() - r.first_ns()) / 1e9;
      first = std::min(first, r.first_ns());
      last = std::max(last, r.last_ns());
    }
    sr.msgs_per_s = sr.seconds > 0 ? sr.received / sr.seconds : 0;
    sr.mb_per_s = sr.msgs_per_s * options.size / 1e6;
    sr.latency = Summarize(r.latency());
    all_latency.Merge(r.latency());
    rate_sum += sr.msgs_per_s;
    rate_min = std::min(rate_min, sr.msgs_per_s);
    result.duplicates += sr.duplicates;
    result.out_of_order += sr.out_of_order;
    result.invalid += sr.invalid;
    result.subscribers.push_back(sr);
  }
  if (options.queue_group()) {
    // Distinct messages over the whole group; one message delivered to two
    // members counts as a duplicate.
    uint64_t distinct = 0;
    for (int p = 0; p < options.pubs; ++p) {
      const size_t words = receivers[0]->seen(p).size();
      for (size_t w = 0; w < words; ++w) {
        uint64_t bits = 0;
        for (const auto& r : receivers) bits |= r->seen(p)[w];
        distinct += static_cast<uint64_t>(__builtin_popcountll(bits));
      }
    }
    result.received = distinct;
    result.duplicates += deliveries - distinct;
  } else {
    result.received = deliveries;
  }
  result.delivered = result.expected > 0
                         ? static_cast<double>(result.received) /
                               static_cast<double>(result.expected)
                         : 0;
  // A stream must hold every message sent, once.
  const bool stored = !result.stream.known ||
                      result.stream.messages == result.sent;
  if (!stored) {
    result.notes.push_back(absl::StrCat("the stream holds ",
                                        result.stream.messages, " of ",
                                        result.sent, " messages sent"));
  }
  result.complete = result.received == result.expected &&
                    result.duplicates == 0 && result.invalid == 0 &&
                    !result.timed_out && stored;
  if (last > first) {
    result.seconds = (last - first) / 1e9;
    result.msgs_per_s = deliveries / result.seconds;
    result.mb_per_s = result.msgs_per_s * options.size / 1e6;
  }
  result.per_sub_msgs_per_s_mean = options.subs > 0 ? rate_sum / options.subs
                                                    : 0;
  result.per_sub_msgs_per_s_min = options.subs > 0 ? rate_min : 0;
  result.latency = Summarize(all_latency);
  return result;
}

}  // namespace sift::bench
