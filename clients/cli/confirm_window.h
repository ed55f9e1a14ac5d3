// ConfirmWindow paces `sift pub`'s confirmed publishes: messages numbered
// 1, 2, ... in the order sent, at most `window` of them awaiting their
// answer at once, and what the broker answered to each (Client::
// PublishConfirmedAsync's PublishDone). It does not send anything itself.
//
// Thread-safety: WaitForRoom, Sending, NotSent, WaitForAll and the readers
// are called by one sending thread; the callbacks Sending returns run on
// the client's I/O thread. State shared with them is guarded by mu_.
#ifndef SIFT_CLIENTS_CLI_CONFIRM_WINDOW_H_
#define SIFT_CLIENTS_CLI_CONFIRM_WINDOW_H_

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "clients/cpp/client.h"

namespace sift::cli {

class ConfirmWindow {
 public:
  // REQUIRES: window >= 1.
  explicit ConfirmWindow(int64_t window) : window_(window) {}
  ConfirmWindow(const ConfirmWindow&) = delete;
  ConfirmWindow& operator=(const ConfirmWindow&) = delete;

  // Waits until fewer than `window` messages await their answer. False,
  // at once, if a message was refused meanwhile: send no more.
  bool WaitForRoom();
  // The next message, number sent() + 1, is about to be sent: it awaits
  // its answer, which the returned callback records. It must be called
  // exactly once, unless NotSent() is called instead.
  PublishDone Sending();
  // The message Sending() was last called for was not sent after all
  // (refused locally, `why`); its callback is never called.
  void NotSent(absl::Status why);
  // Waits until every message sent has its answer.
  void WaitForAll();

  // Messages numbered so far (Sending() calls; NotSent's one included).
  int64_t sent() const { return sent_; }

  // The readers below REQUIRE WaitForAll() first.
  // The acks of messages 1..sent(), in that order (zero for one refused).
  std::vector<PublishAck> acks() const;
  // The lowest-numbered message refused, if any, and what became of those
  // sent after it (before its answer came back). A message whose answer
  // did not come (Unavailable: the session ended; DeadlineExceeded: a
  // timeout) is not refused: its outcome is unknown, the broker may have
  // routed or stored it.
  struct Refusal {
    int64_t n;             // 1-based
    absl::Status status;   // the broker's ERROR, a timeout, or local
    int64_t later_ok;       // messages after n that were published
    int64_t later_refused;  // messages after n the broker refused (ERROR)
    int64_t later_lost;     // messages after n answered Unavailable
    int64_t later_timed_out;  // messages after n answered DeadlineExceeded
    int64_t later_unknown() const { return later_lost + later_timed_out; }
  };
  std::optional<Refusal> FirstRefusal() const;

 private:
  void Answered(int64_t n, absl::Status status, const PublishAck& ack);

  // Constant after construction.
  const int64_t window_;

  // Only the sending thread touches this.
  int64_t sent_ = 0;

  // State below is protected by mu_.
  mutable absl::Mutex mu_;
  int64_t awaited_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<PublishAck> acks_ ABSL_GUARDED_BY(mu_);  // by number - 1
  std::map<int64_t, absl::Status> refused_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sift::cli

#endif  // SIFT_CLIENTS_CLI_CONFIRM_WINDOW_H_
