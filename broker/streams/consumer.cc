#include "broker/streams/consumer.h"

#include <algorithm>
#include <climits>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "broker/base/absl_view.h"

namespace sift::streams {

Consumer::Consumer(std::string name, uint64_t ack_floor,
                   const std::vector<uint64_t>& acked)
    : name_(std::move(name)), floor_(ack_floor), next_(ack_floor + 1) {
  for (uint64_t seq : acked) {
    if (seq > floor_) acked_.insert(seq);
  }
  while (acked_.count(next_) > 0) ++next_;
}

bool Consumer::has_room() const {
  return !options_.explicit_ack ||
         in_flight_.size() < options_.ack.max_in_flight;
}

void Consumer::Forget(uint64_t first_seq) {
  if (first_seq == 0 || floor_ + 1 >= first_seq) return;
  floor_ = first_seq - 1;
  acked_.erase(acked_.begin(), acked_.lower_bound(first_seq));
  in_flight_.erase(in_flight_.begin(), in_flight_.lower_bound(first_seq));
  redeliver_.erase(redeliver_.begin(), redeliver_.lower_bound(first_seq));
  if (next_ < first_seq) next_ = first_seq;
  while (acked_.count(next_) > 0) ++next_;
  MarkAcked(floor_);  // advances over acks just above the new floor
  dirty_ = true;
}

std::vector<uint64_t> Consumer::DueRedeliveries(int64_t now,
                                                size_t limit) const {
  std::vector<uint64_t> out;
  for (const auto& [seq, w] : redeliver_) {
    if (out.size() >= limit) break;
    if (w.due <= now) out.push_back(seq);
  }
  return out;
}

uint32_t Consumer::NextAttempt(uint64_t seq) const {
  auto it = redeliver_.find(seq);
  return it == redeliver_.end() ? 1 : it->second.attempts + 1;
}

bool Consumer::ExhaustedAt(uint64_t seq) const {
  const uint32_t max = options_.ack.max_deliver;
  return options_.explicit_ack && max != 0 && NextAttempt(seq) > max;
}

void Consumer::Sent(uint64_t seq, uint64_t delivery_id, uint32_t client,
                    int64_t now) {
  const uint32_t attempt = NextAttempt(seq);
  redeliver_.erase(seq);
  if (seq == next_) {
    ++next_;
    while (acked_.count(next_) > 0) ++next_;
  }
  if (!options_.explicit_ack) {
    MarkAcked(seq);
    return;
  }
  in_flight_[seq] =
      InFlight{delivery_id, client, attempt, now + options_.ack.ack_wait_ms};
}

void Consumer::Skip(uint64_t seq) {
  if (seq == next_) {
    ++next_;
    while (acked_.count(next_) > 0) ++next_;
  }
  MarkAcked(seq);
}

void Consumer::GiveUp(uint64_t seq) {
  redeliver_.erase(seq);
  in_flight_.erase(seq);
  MarkAcked(seq);
}

void Consumer::MarkAcked(uint64_t seq) {
  if (seq > floor_) {
    acked_.insert(seq);
    dirty_ = true;
  }
  while (!acked_.empty() && *acked_.begin() == floor_ + 1) {
    acked_.erase(acked_.begin());
    ++floor_;
    dirty_ = true;
  }
}

absl::Status Consumer::Ack(uint64_t seq, uint64_t delivery_id,
                           uint32_t client) {
  auto it = in_flight_.find(seq);
  if (it == in_flight_.end() || it->second.delivery_id != delivery_id ||
      it->second.client != client) {
    return absl::NotFoundError("not in flight");
  }
  in_flight_.erase(it);
  MarkAcked(seq);
  return absl::OkStatus();
}

void Consumer::Retry(uint64_t seq, uint32_t attempts, uint32_t delay_ms,
                     int64_t now, std::string_view failure) {
  redeliver_[seq] = Waiting{attempts, now + delay_ms, failure};
}

std::string_view Consumer::FailureAt(uint64_t seq) const {
  auto it = redeliver_.find(seq);
  return it == redeliver_.end() ? delivery::kReasonMaxDeliverAfterAckWait
                                : it->second.failure;
}

absl::Status Consumer::Nack(uint64_t seq, uint64_t delivery_id,
                            uint32_t client, std::optional<uint32_t> delay_ms,
                            int64_t now, uint64_t random) {
  auto it = in_flight_.find(seq);
  if (it == in_flight_.end() || it->second.delivery_id != delivery_id ||
      it->second.client != client) {
    return absl::NotFoundError("not in flight");
  }
  const uint32_t attempts = it->second.attempt;
  in_flight_.erase(it);
  // At max_deliver there is nothing to wait for: due now, so the next pump
  // dead-letters it (as Deliveries::Nack does at once).
  const bool last = options_.ack.max_deliver != 0 &&
                    attempts >= options_.ack.max_deliver;
  Retry(seq, attempts,
        last       ? 0
        : delay_ms ? *delay_ms
                   : delivery::JitteredDelayMs(options_.ack.backoff, attempts,
                                               random),
        now, delivery::kReasonMaxDeliverAfterNack);
  return absl::OkStatus();
}

absl::Status Consumer::Progress(uint64_t seq, uint64_t delivery_id,
                                uint32_t client, int64_t now) {
  auto it = in_flight_.find(seq);
  if (it == in_flight_.end() || it->second.delivery_id != delivery_id ||
      it->second.client != client) {
    return absl::NotFoundError("not in flight");
  }
  it->second.deadline = now + options_.ack.ack_wait_ms;
  return absl::OkStatus();
}

size_t Consumer::Expire(int64_t now, uint64_t random,
                        std::vector<uint64_t>* expired_ids) {
  size_t n = 0;
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    expired_ids->push_back(it->second.delivery_id);
    Retry(it->first, it->second.attempt,
          delivery::JitteredDelayMs(options_.ack.backoff, it->second.attempt,
                                    random + it->first),
          now, delivery::kReasonMaxDeliverAfterAckWait);
    it = in_flight_.erase(it);
    ++n;
  }
  return n;
}

void Consumer::Release(uint32_t client, int64_t now,
                       std::vector<uint64_t>* ids) {
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    if (it->second.client != client) {
      ++it;
      continue;
    }
    ids->push_back(it->second.delivery_id);
    Retry(it->first, it->second.attempt, 0, now,
          delivery::kReasonMaxDeliverAfterConsumerLeft);
    it = in_flight_.erase(it);
  }
}

int64_t Consumer::NextDeadline(bool deliverable) const {
  int64_t next = INT64_MAX;
  for (const auto& [seq, f] : in_flight_) next = std::min(next, f.deadline);
  const uint32_t max = options_.ack.max_deliver;
  for (const auto& [seq, w] : redeliver_) {
    const bool exhausted =
        options_.explicit_ack && max != 0 && w.attempts + 1 > max;
    if (deliverable || exhausted) next = std::min(next, w.due);
  }
  return next;
}

std::string Consumer::State() const {
  std::string out = absl::StrCat("floor=", floor_, " acked=");
  bool first = true;
  for (uint64_t seq : acked_) {
    absl::StrAppend(&out, first ? "" : ",", seq);
    first = false;
  }
  out.push_back('\n');
  return out;
}

absl::Status Consumer::ParseState(std::string_view text, uint64_t* floor,
                                  std::vector<uint64_t>* acked) {
  *floor = 0;
  acked->clear();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  bool have_floor = false;
  for (absl::string_view part : absl::StrSplit(AV(text), ' ')) {
    if (absl::ConsumePrefix(&part, "floor=")) {
      have_floor = absl::SimpleAtoi(part, floor);
      if (!have_floor) break;
    } else if (absl::ConsumePrefix(&part, "acked=")) {
      for (absl::string_view n : absl::StrSplit(part, ',', absl::SkipEmpty())) {
        uint64_t seq;
        if (!absl::SimpleAtoi(n, &seq)) {
          return absl::DataLossError(
              absl::StrCat("bad acked sequence \"", n, "\""));
        }
        acked->push_back(seq);
      }
    }
  }
  if (!have_floor) {
    return absl::DataLossError("consumer state has no floor=N");
  }
  return absl::OkStatus();
}

}  // namespace sift::streams
