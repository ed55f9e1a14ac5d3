#include "clients/cli/confirm_window.h"

#include <iterator>
#include <utility>

namespace sift::cli {

bool ConfirmWindow::WaitForRoom() {
  absl::MutexLock lock(&mu_);
  auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return awaited_ < window_ || !refused_.empty();
  };
  mu_.Await(absl::Condition(&room));
  return refused_.empty();
}

PublishDone ConfirmWindow::Sending() {
  const int64_t n = ++sent_;
  {
    absl::MutexLock lock(&mu_);
    ++awaited_;
    acks_.resize(n);
  }
  return [this, n](absl::Status status, const PublishAck& ack) {
    Answered(n, std::move(status), ack);
  };
}

void ConfirmWindow::NotSent(absl::Status why) {
  absl::MutexLock lock(&mu_);
  --awaited_;
  refused_.emplace(sent_, std::move(why));
}

void ConfirmWindow::Answered(int64_t n, absl::Status status,
                             const PublishAck& ack) {
  absl::MutexLock lock(&mu_);
  --awaited_;
  if (status.ok()) {
    acks_[n - 1] = ack;
  } else {
    refused_.emplace(n, std::move(status));
  }
}

void ConfirmWindow::WaitForAll() {
  absl::MutexLock lock(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return awaited_ == 0;
  };
  mu_.Await(absl::Condition(&done));
}

std::vector<PublishAck> ConfirmWindow::acks() const {
  absl::MutexLock lock(&mu_);
  return acks_;
}

std::optional<ConfirmWindow::Refusal> ConfirmWindow::FirstRefusal() const {
  absl::MutexLock lock(&mu_);
  if (refused_.empty()) return std::nullopt;
  const auto& [n, status] = *refused_.begin();
  Refusal refusal{n, status, 0, 0, 0, 0};
  for (auto it = std::next(refused_.begin()); it != refused_.end(); ++it) {
    switch (it->second.code()) {
      case absl::StatusCode::kUnavailable:
        ++refusal.later_lost;
        break;
      case absl::StatusCode::kDeadlineExceeded:
        ++refusal.later_timed_out;
        break;
      default:
        ++refusal.later_refused;
        break;
    }
  }
  refusal.later_ok = sent_ - n - static_cast<int64_t>(refused_.size() - 1);
  return refusal;
}

}  // namespace sift::cli
